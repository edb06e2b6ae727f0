"""Every codec kind in the browser store == desktop, byte for byte.

For E8, sign bits (with and without rotation), hyperplane LSH, ITQ, learned
E8 and Clark Hash, each at d=384 and at a d that is not a multiple of 8: the codes a
store writes, its exported sketch file, its search ids and score bits (the
exact JS table scan for the binary/E8 kinds, the JS prefilter + Python
ranking for Clark Hash), and the stateless encode all equal what the desktop
(native numpy, :func:`clark_hash_web.index.make_index`) writes and finds.
Runs on both browser backends (the numpy one when CLARK_HASH_PYODIDE_NUMPY
names a wheel); the numpy-free one never loads numpy.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from clark_hash_web.codecs import registry
from clark_hash_web.codecs.itq import train_itq
from clark_hash_web.codecs.learned_e8 import train_learned_e8
from clark_hash_web.formats import sketch_file
from clark_hash_web.index import make_index

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_helpers import b64, f32_rows, unb64  # noqa: E402

N_ROWS = 700
CASES = [(kind, d) for kind in ("e8", "sign-bits", "sign-bits-hadamard", "hyperplane-lsh", "itq",
                                "learned-e8", "clark-hash") for d in (384, 100)]

# Runs in the page: fill a fresh store named by a spec or config bytes, read everything back.
FILL_JS = """
async ({name, codec, configBytes, backend, rows, n, ids, queries, nq, k, batch, prefilterRows}) => {
  await CH.ClarkHashStore.destroy(name, rt);
  await rt.call("setPrefilterMinRows", {rows: prefilterRows});
  const cfg = configBytes ? CH.b64dec(configBytes) : undefined;
  const s = await CH.ClarkHashStore.open({name, codec: codec ?? undefined, config: cfg, backend, runtime: rt});
  const d = s.config.input_dim;
  const flat = new Float32Array(CH.b64dec(rows).buffer);
  const vecs = [];
  for (let i = 0; i < n; i++) vecs.push(flat.subarray(i * d, (i + 1) * d));
  for (let i = 0; i < n; i += batch) await s.addMany(vecs.slice(i, i + batch), {ids: ids.slice(i, i + batch)});
  const c = await s.codes();
  const qf = new Float32Array(CH.b64dec(queries).buffer);
  const searches = [];
  for (let j = 0; j < nq; j++) {
    const r = await s.search(qf.subarray(j * d, (j + 1) * d), k);
    searches.push({ids: r.ids, scores: CH.b64enc(new Uint8Array(r.scores.buffer))});
  }
  const file = CH.b64enc(await s.exportSketchFile());
  const enc = await rt.call("encode", {codec: codec ?? undefined, configBytes: cfg, backend,
                                       vectors: flat.buffer.slice(0), n});
  const out = {backend: s.backend, encodeBackend: enc.backend, kind: s.config.codec.name,
               fingerprint: s.config.fingerprint, count: await s.count(), codes: CH.b64enc(c.codes),
               rawCodes: CH.b64enc(new Uint8Array(enc.codes)), searches, file};
  await s.close();
  await CH.ClarkHashStore.destroy(name, rt);
  await rt.call("setPrefilterMinRows", {rows: 2000});
  return out;
}
"""


def vectors(n, d, seed):
    rng = np.random.default_rng(seed)
    # a shared direction makes the scores spread (and ITQ's mean matter)
    base = rng.standard_normal(d).astype(np.float32)
    return (rng.standard_normal((n, d)).astype(np.float32) + base).astype(np.float32)


@lru_cache(maxsize=None)
def config_for(kind, d):
    if kind == "itq":
        return train_itq(vectors(2000, d, 7).astype(np.float64), n_bits=min(d, 256), iterations=10)
    if kind == "learned-e8":   # rotation, centering and query weights all exercised
        return train_learned_e8(vectors(2000, d, 8), group=8, iterations=3, center=True, weights=True,
                                queries=100, neighbours=10)
    spec = {"sign-bits-hadamard": f"sign-bits:{d}:rotation=hadamard"}.get(kind, f"{kind}:{d}")
    return registry.config_from_spec(spec)


def desktop(config, rows, ids, queries, k):
    index = make_index(config, backend="numpy")
    index.add(rows, ids)
    enc = index.encoded()
    searches = []
    for q in queries:
        got, scores = index.search(q, k)
        searches.append((list(got), np.asarray(scores, dtype="<f4").tobytes()))
    return enc.codes_bytes(), searches, sketch_file.to_bytes(config, enc.codes_bytes(), None, ids)


@pytest.mark.parametrize("kind,d", CASES, ids=[f"{k}-d{d}" for k, d in CASES])
def test_codec_kind_matches_desktop(runtime_page, kind, d):
    backend, page = runtime_page
    config = config_for(kind, d)
    rows = vectors(N_ROWS, d, d + len(kind))
    rows[600:605] = rows[3]          # exact score ties rank by insertion order
    ids = [f"n{i}" for i in range(N_ROWS)]
    queries = np.concatenate([rows[:2], vectors(3, d, 99)])
    k = 25
    codes, searches, file = desktop(config, rows, ids, queries, k)
    trained = registry.kind_of(config).trained
    got = page.evaluate(FILL_JS, {
        "name": f"kind-{kind}-{d}", "backend": backend,
        "codec": None if trained else registry.spec_of(config),
        "configBytes": b64(config.to_bytes()) if trained else None,
        "rows": f32_rows(rows), "n": N_ROWS, "ids": ids, "queries": f32_rows(queries),
        "nq": len(queries), "k": k, "batch": 300,
        "prefilterRows": 100})   # Clark Hash: the JS prefilter path, not Python alone
    assert got["backend"] == backend and got["encodeBackend"] == backend
    assert got["kind"] == registry.kind_of(config).name
    assert got["fingerprint"] == config.fingerprint
    assert got["count"] == N_ROWS
    assert unb64(got["rawCodes"]) == codes, "stateless encode: codes differ"
    assert unb64(got["codes"]) == codes, "stored codes differ"
    for j, ((want_ids, want_scores), s) in enumerate(zip(searches, got["searches"])):
        assert s["ids"] == want_ids, f"query {j}: ranking differs"
        assert unb64(s["scores"]) == want_scores, f"query {j}: score bits differ"
    assert unb64(got["file"]) == file, "exported sketch file differs from the desktop one"
