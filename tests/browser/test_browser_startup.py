"""How the browser runtime starts: bytecode stdlib, numpy after start-up, opt-in snapshot.

- The site serves Pyodide's stdlib zip with a .pyc beside every .py
  (build_scripts/compile_stdlib.mjs), and the interpreter really imports them.
- numpy is not part of the start: "auto" stores run on the numpy-free backend
  until numpy has loaded (when the worker is idle), then move to it with the
  same rows and results. Without a numpy wheel those tests skip (and say so).
- The opt-in interpreter snapshot is saved, restored, and thrown away when damaged.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from clark_hash_web import ClarkHash, ClarkHashConfig, FlatIndex

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_helpers import b64, config_js, f32_rows, unb64  # noqa: E402

CFG = ClarkHashConfig(input_dim=32, sketch_dim=96, bits=4, hashes_per_input=2)


def vectors(n, seed, d=CFG.input_dim):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def desktop_codes(rows, cfg=CFG):
    return ClarkHash(cfg, backend="numpy").encode(rows).codes_bytes()


def open_harness(page, base_url):
    page.goto(base_url + "static/harness.html")
    page.wait_for_function("window.CH !== undefined")


def test_stdlib_and_package_are_served_as_bytecode_and_imported_from_it(site_dir, page, base_url):
    info = json.loads((site_dir / "build-info.json").read_text())
    assert info["stdlibBytecode"] is True and info["wheelBytecode"]
    with zipfile.ZipFile(site_dir / info["wheel"]) as w, zipfile.ZipFile(site_dir / info["wheelBytecode"]) as b:
        modules = sorted(n for n in w.namelist() if n.endswith(".py"))
        cached = sorted(b.namelist())
    assert len(cached) == len(modules) > 30
    assert all("/__pycache__/" in n and n.endswith(".cpython-314.pyc") for n in cached)
    with zipfile.ZipFile(site_dir / "pyodide" / "python_stdlib.zip") as z:
        names = set(z.namelist())
        sources = sorted(n for n in names if n.endswith(".py"))
        assert sources and all(n + "c" in names for n in sources)
        # unchecked-hash pycs (PEP 552 flags = 0b01): valid without reading the source
        assert int.from_bytes(z.read("json/__init__.pyc")[4:8], "little") == 1
    open_harness(page, base_url)
    got = page.evaluate("""async () => {
      window.rt = new CH.ClarkHashRuntime({numpy: false});
      await rt.ready;
      return await rt.call("runPython", {code: `
import json, os, sys, traceback
import clark_hash_web.codecs.clark_hash as codec
def fail():
    json.loads("{")
try:
    fail()
except ValueError as e:
    where = traceback.extract_tb(e.__traceback__)[-1].filename
[json.__spec__.origin, sys.modules["encodings"].__spec__.origin, where,
 codec.__cached__, os.path.exists(codec.__cached__), open(codec.__cached__, "rb").read(8)[4]]`});
    }""")
    assert got[0].endswith("/json/__init__.pyc") and got[1].endswith("/encodings/__init__.pyc"), got
    assert got[2].endswith("/json/decoder.py"), got   # tracebacks still name the sources
    # our package: its unchecked-hash pyc sits where the import system looks first
    assert got[3].endswith("clark_hash_web/codecs/__pycache__/clark_hash.cpython-314.pyc") and got[4] is True and got[5] == 1, got


def test_without_numpy_the_runtime_says_so_and_refuses_a_numpy_store(page, base_url):
    open_harness(page, base_url)
    got = page.evaluate("""async () => {
      window.rt = new CH.ClarkHashRuntime({numpy: false});
      const info = await rt.ready;
      const state = await rt.loadNumpy();
      let err = null;
      try {
        await CH.ClarkHashStore.open({name: "np-refused", config: {inputDim: 8}, backend: "numpy", runtime: rt});
      } catch (e) { err = {type: e.type, message: e.message}; }
      const names = (await indexedDB.databases()).map((d) => d.name);
      return {numpyAtBoot: info.numpy, backend: info.backend, state, err, names};
    }""")
    assert got["numpyAtBoot"] == "off" and got["state"] == "off" and got["backend"] == "python"
    assert got["err"]["type"] == "InvalidInputError" and 'backend "numpy" is not available' in got["err"]["message"]
    assert "clark-hash:np-refused" not in got["names"]   # nothing was created


MOVE_JS = """async ({config, rows, more, n, m, q}) => {
  window.rt = new CH.ClarkHashRuntime({numpy: true});
  const info = await rt.ready;
  const events = [];
  rt.addEventListener("backend", (ev) => events.push(ev.detail));
  const store = await CH.ClarkHashStore.open({name: "moves", config, runtime: rt});
  const opened = store.backend;
  const d = config.inputDim;
  const split = (b64, k) => { const f = new Float32Array(CH.b64dec(b64).buffer);
    return Array.from({length: k}, (_, i) => f.subarray(i * d, (i + 1) * d)); };
  await store.addMany(split(rows, n));
  const query = new Float32Array(CH.b64dec(q).buffer);
  const before = await store.search(query, 10);
  // no loadNumpy(): numpy must arrive by itself once the worker is idle
  const t0 = performance.now();
  while (store.backend !== "numpy" && performance.now() - t0 < 60000) await new Promise((r) => setTimeout(r, 50));
  const after = await store.search(query, 10);
  await store.addMany(split(more, m));
  const c = await store.codes();
  return {numpyAtBoot: info.numpy, opened, now: store.backend, events,
          before: {ids: before.ids, scores: CH.b64enc(new Uint8Array(before.scores.buffer))},
          after: {ids: after.ids, scores: CH.b64enc(new Uint8Array(after.scores.buffer))},
          stats: await store.stats(), codes: CH.b64enc(c.codes)};
}"""


def test_auto_store_starts_without_numpy_and_moves_to_it_when_it_loads(page, base_url, numpy_wheel):
    if not numpy_wheel:
        pytest.skip("BROWSER NUMPY BACKEND: SKIPPED (set CLARK_HASH_PYODIDE_NUMPY=...)")
    rows, more, q = vectors(300, 1), vectors(50, 2), vectors(1, 3)
    open_harness(page, base_url)
    got = page.evaluate(MOVE_JS, {"config": {"inputDim": CFG.input_dim, "hashesPerInput": 2}, "rows": f32_rows(rows),
                                  "more": f32_rows(more), "n": 300, "m": 50, "q": b64(q.tobytes())})
    assert got["numpyAtBoot"] == "waiting" and got["opened"] == "python", got
    assert got["now"] == "numpy" and got["stats"]["backend"] == "numpy"
    assert got["events"] == [{"store": "moves", "backend": "numpy"}]
    assert got["before"] == got["after"]
    index_codes = desktop_codes(np.concatenate([rows, more]))
    assert unb64(got["codes"]) == index_codes
    codec = ClarkHash(CFG, backend="numpy")
    scores = codec.score(codec.sketch_query(q[0]), codec.encode(rows))
    top = sorted(range(300), key=lambda i: (-float(scores[i]), i))[:10]
    assert got["after"]["ids"] == top
    assert unb64(got["after"]["scores"]) == np.asarray(scores, dtype="<f4")[top].tobytes()


def test_interpreter_snapshot_start_gives_the_same_bytes(launch_persistent, base_url, tmp_path):
    """The opt-in snapshot start (ClarkHashRuntime({snapshot: true})): saved on the
    first visit, restored on the next, and the codec writes the same bytes; a
    corrupt snapshot is thrown away (a normal start, then a new snapshot)."""
    profile = tmp_path / "snap-profile"
    rows = vectors(200, 11)
    boots = []
    for visit in range(4):
        ctx = launch_persistent(profile)
        page = ctx.new_page()
        page.goto(base_url + "static/harness.html")
        page.wait_for_function("window.CH !== undefined")
        got = page.evaluate("""async ({config, rows, n}) => {
          window.rt = new CH.ClarkHashRuntime({numpy: false, snapshot: true});
          const info = await rt.ready;
          const enc = await rt.call("encode", {config, backend: "python",
                                               vectors: CH.b64dec(rows).buffer, n});
          return {snapshot: info.snapshot, written: await rt.snapshotStatus(),
                  codes: CH.b64enc(new Uint8Array(enc.codes))};
        }""", {"config": config_js(CFG), "rows": f32_rows(rows), "n": 200})
        boots.append((got["snapshot"], got["written"]))
        assert unb64(got["codes"]) == desktop_codes(rows)
        if visit == 1:   # scramble the stored heap image: the next start must not use it
            page.evaluate("""async () => {
              const db = await new Promise((res, rej) => { const r = indexedDB.open("clark-hash-runtime");
                r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
              const tx = db.transaction("snapshots", "readwrite"), os = tx.objectStore("snapshots");
              const rec = await new Promise((res) => { const r = os.get("interpreter"); r.onsuccess = () => res(r.result); });
              rec.bytes = rec.bytes.slice(0, 4096);
              os.put(rec, "interpreter");
              await new Promise((res) => { tx.oncomplete = res; });
              db.close();
            }""")
        ctx.close()
    assert boots == [("saving", "saved"), ("restored", "restored"), ("saving", "saved"), ("restored", "restored")]


def test_a_numpy_wheel_that_fails_to_load_leaves_the_store_on_the_numpy_free_backend(page, base_url, site_dir):
    """build-info.json names a numpy wheel the server does not have: loading fails with
    a clear state, the "auto" store keeps working on the numpy-free backend."""
    info = json.loads((site_dir / "build-info.json").read_text())
    info["numpyWheel"] = "pyodide/numpy-0.0-missing.whl"
    page.route("**/build-info.json", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(info)))
    rows = vectors(20, 8)
    open_harness(page, base_url)
    got = page.evaluate("""async ({config, rows, n}) => {
      window.rt = new CH.ClarkHashRuntime({numpy: true});
      const info = await rt.ready;
      const store = await CH.ClarkHashStore.open({name: "np-missing", config, runtime: rt});
      const state = await rt.loadNumpy();
      const d = config.inputDim, f = new Float32Array(CH.b64dec(rows).buffer);
      await store.addMany(Array.from({length: n}, (_, i) => f.subarray(i * d, (i + 1) * d)));
      let err = null;
      try { await CH.ClarkHashStore.open({name: "np-missing-2", config, backend: "numpy", runtime: rt}); }
      catch (e) { err = e.type; }
      return {numpyAtBoot: info.numpy, state, backend: store.backend, err,
              codes: CH.b64enc((await store.codes()).codes)};
    }""", {"config": {"inputDim": CFG.input_dim, "hashesPerInput": 2}, "rows": f32_rows(rows), "n": 20})
    assert got["numpyAtBoot"] == "waiting"
    assert got["state"].startswith("failed: ") and "numpy-0.0-missing.whl" in got["state"], got["state"]
    assert got["backend"] == "python" and got["err"] == "InvalidInputError"
    assert unb64(got["codes"]) == desktop_codes(rows)


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_a_store_opened_while_pyodide_starts_is_read_in_the_meantime(launch_persistent, base_url, tmp_path, metric):
    """open() right after new ClarkHashRuntime(): the worker reads the store's IndexedDB
    records during start-up and hands them to the JS scan as they are; the store
    comes back whole, its first search equals the desktop's, and a foreign config
    is still refused (with the store left as it was)."""
    profile = tmp_path / "prefetch-profile"
    rows = vectors(2500, 9) * np.exp2(np.random.default_rng(10).uniform(-2, 2, (2500, 1))).astype(np.float32)
    q = vectors(1, 12)
    cfg = ClarkHashConfig(input_dim=CFG.input_dim, hashes_per_input=2, metric=metric)
    config = {"inputDim": CFG.input_dim, "hashesPerInput": 2, "metric": metric}
    ctx = launch_persistent(profile)
    page = ctx.new_page()
    open_harness(page, base_url)
    page.evaluate("""async ({config, rows, n}) => {
      window.rt = new CH.ClarkHashRuntime({numpy: false});
      const s = await CH.ClarkHashStore.open({name: "early", config, runtime: rt});
      const d = config.inputDim, f = new Float32Array(CH.b64dec(rows).buffer);
      await s.addMany(Array.from({length: n}, (_, i) => f.subarray(i * d, (i + 1) * d)));
    }""", {"config": config, "rows": f32_rows(rows), "n": 2500})
    ctx.close()
    for foreign in (True, False):
        ctx = launch_persistent(profile)
        page = ctx.new_page()
        open_harness(page, base_url)
        got = page.evaluate("""async ({config, q}) => {
          window.rt = new CH.ClarkHashRuntime({numpy: false});
          let err = null, store = null;
          try { store = await CH.ClarkHashStore.open({name: "early", config, runtime: rt}); }   // before ready
          catch (e) { err = {type: e.type, message: e.message}; }
          if (!store) return {err};
          const r = await rt.call("search", {handle: store.handle, query: CH.b64dec(q).buffer, k: 10});
          const c = await store.codes();
          return {count: await store.count(), ids: c.ids, codes: CH.b64enc(c.codes), mode: r.scan.mode,
                  top: r.ids, scores: CH.b64enc(new Uint8Array(r.scores))};
        }""", {"config": {**config, "bits": 3} if foreign else config, "q": b64(q.tobytes())})
        ctx.close()
        if foreign:
            assert got["err"]["type"] == "ConfigMismatchError", got
        else:
            assert got["count"] == 2500 and got["ids"] == list(range(2500))
            assert unb64(got["codes"]) == desktop_codes(rows, cfg)
            index = FlatIndex(ClarkHash(cfg, backend="numpy"))
            index.add(rows)
            ids, scores = index.search(q[0], 10)
            assert got["mode"] == "js-prefilter" and got["top"] == list(ids)
            assert unb64(got["scores"]) == np.asarray(scores, dtype="<f4").tobytes()
