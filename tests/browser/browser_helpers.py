"""Helpers shared by the browser tests: moving float32/bytes to and from the page."""

from __future__ import annotations

import base64
import http.server

import numpy as np

from clark_hash_web import ClarkHash, ClarkHashConfig, FlatIndex
from clark_hash_web.formats import sketch_file

BOOT_TIMEOUT_MS = 120_000


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the built site quietly, with module/wasm MIME types and no caching."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mjs": "text/javascript", ".js": "text/javascript",
                      ".wasm": "application/wasm", ".json": "application/json",
                      ".whl": "application/zip", ".onnx": "application/octet-stream"}

    def log_message(self, *args):
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()


def boot_harness(page, base_url, numpy=False):
    """Load static/harness.html and boot a runtime as window.rt; returns its boot info.

    With ``numpy`` the runtime also loads numpy before returning (it would
    otherwise load once the worker is idle); ``backend`` is then "numpy".
    """
    page.set_default_timeout(BOOT_TIMEOUT_MS)
    page.goto(base_url + "static/harness.html")
    page.wait_for_function("window.CH !== undefined")
    return page.evaluate(
        """async (numpy) => {
             window.rt = new CH.ClarkHashRuntime({numpy});
             const info = await window.rt.ready;
             if (numpy) {
               info.numpy = await window.rt.loadNumpy();
               if (info.numpy === "ready") info.backend = "numpy";
             }
             return info;
           }""", numpy)


# Runs in the page (static/harness.html): fill a fresh store and read everything back.
FILL_AND_READ_JS = """
async ({name, config, backend, rows, n, ids, queries, nq, k, batch}) => {
  await CH.ClarkHashStore.destroy(name, rt);
  const s = await CH.ClarkHashStore.open({name, config, backend, runtime: rt});
  const d = s.config.input_dim;
  const flat = new Float32Array(CH.b64dec(rows).buffer);
  const vecs = [];
  for (let i = 0; i < n; i++) vecs.push(flat.subarray(i * d, (i + 1) * d));
  const got = [];
  for (let i = 0; i < n; i += batch) {
    got.push(...await s.addMany(vecs.slice(i, i + batch), ids ? {ids: ids.slice(i, i + batch)} : {}));
  }
  const c = await s.codes();
  const qf = new Float32Array(CH.b64dec(queries).buffer);
  const searches = [];
  for (let j = 0; j < nq; j++) {
    const r = await s.search(qf.subarray(j * d, (j + 1) * d), k);
    searches.push({ids: r.ids, scores: CH.b64enc(new Uint8Array(r.scores.buffer))});
  }
  const file = CH.b64enc(await s.exportSketchFile());
  const enc = await rt.call("encode", {config: s.config, backend, vectors: flat.buffer.slice(0), n});
  const out = {
    backend: s.backend, encodeBackend: enc.backend, ids: got, count: await s.count(),
    codes: CH.b64enc(c.codes), norms: c.normCodes ? CH.b64enc(new Uint8Array(c.normCodes.buffer)) : null,
    rawCodes: CH.b64enc(new Uint8Array(enc.codes)),
    rawNorms: enc.normCodes ? CH.b64enc(new Uint8Array(enc.normCodes)) : null,
    searches, file,
  };
  await s.close();
  await CH.ClarkHashStore.destroy(name, rt);
  return out;
}
"""


def b64(data) -> str:
    return base64.b64encode(bytes(data)).decode()


def unb64(s) -> bytes:
    return base64.b64decode(s) if s is not None else None


def f32_rows(a) -> str:
    return b64(np.ascontiguousarray(a, dtype="<f4").tobytes())


def config_js(cfg: ClarkHashConfig) -> dict:
    d = cfg.to_dict()
    d["seed"] = str(cfg.seed)
    return d


def desktop(cfg: ClarkHashConfig, rows, ids, queries, k):
    """What the desktop (native numpy) writes and finds for the same input."""
    codec = ClarkHash(cfg, backend="numpy")
    enc = codec.encode(np.asarray(rows, dtype=np.float32))
    index = FlatIndex(codec)
    index.add_encoded(enc, ids=ids)
    searches = []
    for q in queries:
        got_ids, scores = index.search(np.asarray(q, dtype=np.float32), k)
        searches.append((list(got_ids), np.asarray(scores, dtype="<f4").tobytes()))
    file = sketch_file.to_bytes(cfg, enc.codes_bytes(), enc.norm_codes_bytes(), list(ids))
    return enc, searches, file


_SESSION_PORTS: dict = {}


def bind_session_port(start, key: str, preferred: int, tries: int = 20):
    """``start(port)`` on this test session's port for ``key``; returns what it returned.

    The first call tries ``preferred`` and, when another test session holds it,
    the next ports up to ``preferred + tries - 1``; later calls reuse the port
    that worked, so an origin (IndexedDB, service worker) stays the same for
    the whole session.
    """
    if key in _SESSION_PORTS:
        return start(_SESSION_PORTS[key])
    error = None
    for port in range(preferred, preferred + tries):
        try:
            started = start(port)
        except OSError as exc:
            error = exc
            continue
        _SESSION_PORTS[key] = port
        return started
    raise OSError(f"no free port for {key} in 127.0.0.1:{preferred}..{preferred + tries - 1}: "
                  f"{error}")


# page.evaluate(ADD_JS, {rows: b64 float32 rows, n, ids or None, batch}): window.store.addMany
# in batches of ``batch`` rows; returns the stored ids.
ADD_JS = """async ({rows, n, ids, batch}) => {
  const d = store.config.input_dim;
  const flat = new Float32Array(CH.b64dec(rows).buffer);
  const vecs = [];
  for (let i = 0; i < n; i++) vecs.push(flat.subarray(i * d, (i + 1) * d));
  const out = [];
  for (let i = 0; i < n; i += batch) {
    out.push(...await store.addMany(vecs.slice(i, i + batch), ids ? {ids: ids.slice(i, i + batch)} : {}));
  }
  return out;
}"""
