"""The IndexedDB store in a real browser: persistence, crash safety, bad input.

These run on the numpy-free runtime (the one every deployment has) unless
CLARK_HASH_PYODIDE_NUMPY is set, in which case numpy is loaded to save time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from clark_hash_web import ClarkHash, ClarkHashConfig, FlatIndex
from clark_hash_web.formats import sketch_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_helpers import ADD_JS, b64, boot_harness, config_js, f32_rows, unb64  # noqa: E402

# 48-byte sketches of small vectors: the storage layout is what is tested here.
CFG = ClarkHashConfig(input_dim=32, sketch_dim=96, bits=4, hashes_per_input=2)

OPEN_JS = """async ({name, config}) => {
  window.store = await CH.ClarkHashStore.open({name, config, runtime: rt});
  return {backend: store.backend, count: await store.count(), fingerprint: store.config.fingerprint};
}"""

READ_JS = """async () => {
  const c = await store.codes();
  return {count: await store.count(), ids: c.ids, codes: CH.b64enc(c.codes),
          norms: c.normCodes ? CH.b64enc(new Uint8Array(c.normCodes.buffer)) : null};
}"""

SEARCH_JS = """async ({q, k}) => {
  const r = await store.search(new Float32Array(CH.b64dec(q).buffer), k);
  return {ids: r.ids, scores: CH.b64enc(new Uint8Array(r.scores.buffer))};
}"""


def vectors(n, seed, d=CFG.input_dim):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def desktop_codes(rows, cfg=CFG):
    return ClarkHash(cfg, backend="numpy").encode(rows).codes_bytes()


def read(page):
    got = page.evaluate(READ_JS)
    return got["count"], got["ids"], unb64(got["codes"])


@pytest.fixture
def use_numpy(numpy_wheel):
    return bool(numpy_wheel)


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    """One Chromium profile for the module (a warm HTTP cache after the first
    launch); each test uses its own store names."""
    return tmp_path_factory.mktemp("chromium-profile")


def test_persistence_10k_across_browser_restarts(launch_persistent, base_url, profile, use_numpy):
    rows = vectors(10_000, 1)
    ids = list(range(10_000))
    ctx = launch_persistent(profile)
    page = ctx.new_page()
    boot_harness(page, base_url, numpy=use_numpy)
    assert page.evaluate(OPEN_JS, {"name": "persist", "config": config_js(CFG)})["count"] == 0
    assert page.evaluate(ADD_JS, {"rows": f32_rows(rows), "n": 10_000, "ids": None,
                                  "batch": 2500}) == ids
    query = vectors(1, 99)[0]
    before = page.evaluate(SEARCH_JS, {"q": f32_rows(query), "k": 25})
    stats = page.evaluate("async () => await store.stats()")
    print(f"\nIndexedDB after 10,000 sketches: {stats}")
    ctx.close()

    ctx = launch_persistent(profile)
    page = ctx.new_page()
    boot_harness(page, base_url, numpy=use_numpy)
    # opening without a config uses the stored one
    opened = page.evaluate("""async () => {
      window.store = await CH.ClarkHashStore.open({name: "persist", runtime: rt});
      return {count: await store.count(), fingerprint: store.config.fingerprint};
    }""")
    assert opened == {"count": 10_000, "fingerprint": CFG.fingerprint}
    count, got_ids, codes = read(page)
    assert count == 10_000 and got_ids == ids
    assert codes == desktop_codes(rows), "codes changed across a browser restart"
    after = page.evaluate(SEARCH_JS, {"q": f32_rows(query), "k": 25})
    assert after == before
    index = FlatIndex(ClarkHash(CFG, backend="numpy"))
    index.add(rows)
    want_ids, want_scores = index.search(query, 25)
    assert after["ids"] == list(want_ids)
    assert unb64(after["scores"]) == np.asarray(want_scores, dtype="<f4").tobytes()
    ctx.close()


@pytest.mark.parametrize("phase", ["import-write-start", "add-encoding"])
def test_closing_mid_batch_keeps_all_or_nothing(launch_persistent, base_url, profile, use_numpy,
                                                phase):
    """Kill the browser during one large batch; on reopen the batch is all there or absent.

    "import-write-start": a 60,000-sketch file import (59 blocks, one
    transaction), the browser closed as soon as its transaction starts.
    "add-encoding": a 4,000-vector addMany, closed while Python encodes it.
    """
    first = vectors(300, 2)
    big = vectors(60_000 if phase.startswith("import") else 4_000, 3)
    ctx = launch_persistent(profile)
    page = ctx.new_page()
    boot_harness(page, base_url, numpy=use_numpy)
    page.evaluate(OPEN_JS, {"name": f"crash-{phase}", "config": config_js(CFG)})
    page.evaluate(ADD_JS, {"rows": f32_rows(first), "n": 300, "ids": None, "batch": 300})
    page.evaluate("""() => {
      window.writeStarted = false;
      rt.addEventListener("write-start", () => { window.writeStarted = true; });
    }""")
    if phase.startswith("import"):
        data = sketch_file.to_bytes(CFG, desktop_codes(big), None, list(range(300, 300 + len(big))))
        page.evaluate("""(b) => {
          window.pending = store.importSketchFile(CH.b64dec(b)).then(() => "done", (e) => e.message);
        }""", b64(data))
        page.wait_for_function("window.writeStarted", polling=1)
    else:
        page.evaluate("""({rows, n}) => {
          const d = store.config.input_dim;
          const flat = new Float32Array(CH.b64dec(rows).buffer);
          const vecs = [];
          for (let i = 0; i < n; i++) vecs.push(flat.subarray(i * d, (i + 1) * d));
          window.pending = store.addMany(vecs).then(() => "done", (e) => e.message);
        }""", {"rows": f32_rows(big), "n": len(big)})
        time.sleep(0.3)
    ctx.close()   # the browser goes away with the batch in flight

    ctx = launch_persistent(profile)
    page = ctx.new_page()
    boot_harness(page, base_url, numpy=use_numpy)
    page.evaluate(OPEN_JS, {"name": f"crash-{phase}", "config": config_js(CFG)})
    count, ids, codes = read(page)
    print(f"\nclosed at {phase}: reopened with {count} sketches")
    total = 300 + len(big)
    if count == 300:
        assert ids == list(range(300)) and codes == desktop_codes(first)
    else:
        assert count == total, f"half a batch survived: {count} sketches"
        assert ids == list(range(total))
        assert codes == desktop_codes(np.concatenate([first, big]))
    # the store still takes writes after the crash
    more = vectors(5, 4)
    page.evaluate(ADD_JS, {"rows": f32_rows(more), "n": 5, "ids": None, "batch": 5})
    assert read(page)[0] == count + 5
    ctx.close()


def test_bad_input_from_js_is_rejected_and_changes_nothing(page, base_url, use_numpy):
    boot_harness(page, base_url, numpy=use_numpy)
    page.evaluate(OPEN_JS, {"name": "bad", "config": config_js(CFG)})
    rows = vectors(50, 5)
    page.evaluate(ADD_JS, {"rows": f32_rows(rows), "n": 50, "ids": [f"n{i}" for i in range(50)],
                           "batch": 50})
    state = read(page)
    foreign = ClarkHashConfig(input_dim=32, sketch_dim=64, bits=4)
    foreign_file = sketch_file.to_bytes(foreign, ClarkHash(foreign, backend="numpy").encode(
        rows[:3]).codes_bytes(), None, ["x0", "x1", "x2"])
    good_file = bytearray(sketch_file.to_bytes(CFG, desktop_codes(rows[:2]), None, ["y0", "y1"]))
    good_file[60] ^= 0xFF   # corrupt one code byte: the CRC catches it
    errors = page.evaluate("""async ({d, foreignFile, badFile, config, foreignConfig}) => {
      const out = {};
      const attempt = async (name, f) => {
        try { await f(); out[name] = "no error"; } catch (e) { out[name] = {type: e.type, message: e.message}; }
      };
      const ok = Array.from({length: d}, (_, i) => Math.cos(i + 1));
      await attempt("wrongLength", () => store.add(ok.slice(1)));
      await attempt("wrongLengthInBatch", () => store.addMany([ok, ok.concat([1])]));
      await attempt("rawWrongBytes", () => rt.call("add", {handle: store.handle, vectors: new Float32Array(d + 1).buffer, n: 1}));
      const nan = ok.slice(); nan[7] = NaN;
      await attempt("nan", () => store.addMany([ok, nan]));
      const inf = ok.slice(); inf[0] = Infinity;
      await attempt("inf", () => store.add(inf));
      await attempt("zero", () => store.add(new Float32Array(d)));
      await attempt("duplicateId", () => store.add(ok, {id: "n3"}));
      await attempt("mixedIdKinds", () => store.add(ok, {id: 7}));
      await attempt("foreignConfig", () => CH.ClarkHashStore.open({name: "bad", config: foreignConfig, runtime: rt}));
      await attempt("foreignFile", () => store.importSketchFile(CH.b64dec(foreignFile)));
      await attempt("corruptFile", () => store.importSketchFile(CH.b64dec(badFile)));
      await attempt("deleteUnknown", () => store.delete(["n1", "nope"]));
      await attempt("quota", async () => {
        await rt.call("failNextWrite", {name: "QuotaExceededError"});
        await store.add(ok, {id: "q1"});
      });
      await attempt("nanQuery", () => store.search(nan, 5));
      return out;
    }""", {"d": CFG.input_dim, "foreignFile": b64(foreign_file), "badFile": b64(good_file),
           "config": config_js(CFG), "foreignConfig": config_js(foreign)})
    expected = {"wrongLength": "DimensionError", "wrongLengthInBatch": "DimensionError",
                "rawWrongBytes": "InvalidInputError", "nan": "InvalidVectorError",
                "inf": "InvalidVectorError", "zero": "InvalidVectorError",
                "duplicateId": "DuplicateIdError", "mixedIdKinds": "InvalidInputError",
                "foreignConfig": "ConfigMismatchError", "foreignFile": "ConfigMismatchError",
                "corruptFile": "SketchFileError", "deleteUnknown": "KeyError",
                "quota": "QuotaExceededError", "nanQuery": "InvalidVectorError"}
    for name, want in expected.items():
        got = errors[name]
        assert isinstance(got, dict) and got["type"] == want, f"{name}: {got}"
        assert got["message"], name
    assert "row 1" in errors["nan"]["message"]
    assert "row 1" in errors["wrongLengthInBatch"]["message"]
    assert "n3" in errors["duplicateId"]["message"]
    assert foreign.fingerprint in errors["foreignConfig"]["message"]
    assert read(page) == state, "a rejected write changed the store"
    # and after all that, the same store (reloaded from IndexedDB) is unchanged too
    page.evaluate("async () => { await store.close(); }")
    page.evaluate(OPEN_JS, {"name": "bad", "config": config_js(CFG)})
    assert read(page) == state


def test_delete_import_export_round_trip(page, base_url, use_numpy):
    boot_harness(page, base_url, numpy=use_numpy)
    page.evaluate(OPEN_JS, {"name": "rt", "config": config_js(CFG)})
    rows = vectors(2500, 6)
    page.evaluate(ADD_JS, {"rows": f32_rows(rows), "n": 2500, "ids": None, "batch": 2500})
    drop = [0, 5, 1023, 1024, 2047, 2499]
    assert page.evaluate("async (ids) => await store.delete(ids)", drop) == len(drop)
    keep = [i for i in range(2500) if i not in drop]
    exported = unb64(page.evaluate("async () => CH.b64enc(await store.exportSketchFile())"))
    enc = ClarkHash(CFG, backend="numpy").encode(rows[keep])
    assert exported == sketch_file.to_bytes(CFG, enc.codes_bytes(), None, keep)
    # reload from IndexedDB: deletes persisted, insertion order kept
    page.evaluate("async () => { await store.close(); }")
    page.evaluate(OPEN_JS, {"name": "rt", "config": config_js(CFG)})
    count, ids, codes = read(page)
    assert (count, ids, codes) == (len(keep), keep, enc.codes_bytes())
    # a desktop file imports into a fresh store byte for byte
    desk = sketch_file.to_bytes(CFG, enc.codes_bytes(), None, [f"d{i}" for i in keep])
    page.evaluate(OPEN_JS, {"name": "rt2", "config": config_js(CFG)})
    added = page.evaluate("async (b) => await store.importSketchFile(CH.b64dec(b))", b64(desk))
    assert added == [f"d{i}" for i in keep]
    assert unb64(page.evaluate("async () => CH.b64enc(await store.exportSketchFile())")) == desk
