"""The E8 store (the recommended profile) in a real browser: persistence, crash
safety, two-stage search against the desktop TwoStageIndex, and stores made
before codecs other than Clark Hash existed.

Runs on the numpy-free runtime unless CLARK_HASH_PYODIDE_NUMPY is set (numpy
is then loaded to save time; both backends write the same bytes).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from clark_hash_web import ClarkHash, ClarkHashConfig
from clark_hash_web.codecs import registry
from clark_hash_web.index import make_index
from clark_hash_web.index.two_stage import VectorFile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_helpers import ADD_JS, b64, boot_harness, f32_rows, unb64  # noqa: E402

SPEC = "e8:384"
D = 384

OPEN_JS = """async ({name, codec, vectors}) => {
  window.store = await CH.ClarkHashStore.open({name, codec: codec ?? undefined, vectors: vectors ?? undefined, runtime: rt});
  return {backend: store.backend, count: await store.count(), fingerprint: store.config.fingerprint,
          kind: store.config.codec.name, vectors: store.vectors};
}"""

READ_JS = """async () => {
  const c = await store.codes();
  return {count: await store.count(), ids: c.ids, codes: CH.b64enc(c.codes)};
}"""

SEARCH_JS = """async ({qs, nq, k, rescore}) => {
  const d = store.config.input_dim;
  const flat = new Float32Array(CH.b64dec(qs).buffer);
  const out = [];
  for (let j = 0; j < nq; j++) {
    const r = await store.search(flat.subarray(j * d, (j + 1) * d), k, {rescore});
    out.push({ids: r.ids, scores: CH.b64enc(new Uint8Array(r.scores.buffer))});
  }
  return out;
}"""


def vectors(n, seed, d=D):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(d).astype(np.float32)
    return (rng.standard_normal((n, d)) + base).astype(np.float32)


def desktop_two_stage(tmp_path, spec, rows, ids, name="v.bin"):
    """Desktop TwoStageIndex (int8 VectorFile) holding ``rows``."""
    index = make_index(spec, backend="numpy",
                       vectors=VectorFile(tmp_path / name, D, "int8"))
    index.add(rows, ids)
    return index


def searches_of(index, queries, k, **kw):
    out = []
    for q in queries:
        ids, scores = index.search(q, k, **kw)
        out.append({"ids": list(ids), "scores": b64(np.asarray(scores, dtype="<f4").tobytes())})
    return out


@pytest.fixture
def use_numpy(numpy_wheel):
    return bool(numpy_wheel)


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    return tmp_path_factory.mktemp("chromium-profile-two-stage")


@pytest.mark.parametrize("spec", [SPEC, "clark-hash:384"])
def test_two_stage_matches_desktop_two_stage_index(page, base_url, use_numpy, tmp_path, spec):
    """search(q, 10, {rescore: 100}) == TwoStageIndex.search(q, 10, rescore=100): ids and score bits;
    without rescore == the stage-1 index; after deletes too."""
    boot_harness(page, base_url, numpy=use_numpy)
    page.evaluate("async () => rt.call('setPrefilterMinRows', {rows: 500})")   # Clark Hash: JS prefilter
    rows = vectors(2500, 11)
    rows[2000:2004] = rows[10]   # exact ties
    ids = list(range(2500))
    assert page.evaluate(OPEN_JS, {"name": f"two-{spec}", "codec": spec, "vectors": "int8"})["vectors"] == "int8"
    page.evaluate(ADD_JS, {"rows": f32_rows(rows), "n": 2500, "ids": None, "batch": 1000})
    desk = desktop_two_stage(tmp_path, spec, rows, ids)
    queries = np.concatenate([rows[10:12], vectors(6, 12)])
    args = {"qs": f32_rows(queries), "nq": len(queries), "k": 10}
    assert page.evaluate(SEARCH_JS, {**args, "rescore": 100}) == searches_of(desk, queries, 10, rescore=100)
    assert page.evaluate(SEARCH_JS, {**args, "rescore": 0}) == searches_of(desk.index, queries, 10)
    # rescoring every row is exact cosine on the int8 rows
    assert page.evaluate(SEARCH_JS, {**args, "rescore": 2500}) == searches_of(desk, queries, 10, rescore=2500)
    gone = list(range(5, 2500, 7))
    page.evaluate("async (ids) => store.delete(ids)", gone)
    desk.remove(gone)
    assert page.evaluate(SEARCH_JS, {**args, "rescore": 100}) == searches_of(desk, queries, 10, rescore=100)
    stats = page.evaluate("async () => store.stats()")
    print(f"\n{spec} two-stage stats: {stats}")
    cb = registry.config_from_spec(spec).storage_bytes_per_vector
    assert stats["codeBytes"] == registry.config_from_spec(spec).code_bytes
    assert stats["vectorBytesPerNote"] == 4 + D and stats["bytesPerNote"] == cb + 4 + D
    assert stats["vectorRecordBytes"] == (2500 - len(gone)) * (4 + D)
    # a store without int8 rows says so instead of rescoring
    page.evaluate(OPEN_JS, {"name": f"one-{spec}", "codec": spec})
    page.evaluate(ADD_JS, {"rows": f32_rows(rows[:20]), "n": 20, "ids": None, "batch": 20})
    err = page.evaluate("""async (q) => { try { await store.search(new Float32Array(CH.b64dec(q).buffer), 5, {rescore: 10}); return null; }
                                         catch (e) { return e.type + ": " + e.message; } }""", f32_rows(rows[0]))
    assert err and err.startswith("InvalidInputError") and "vectors" in err


def test_e8_store_persists_across_browser_restarts(launch_persistent, base_url, profile, use_numpy,
                                                   tmp_path):
    rows = vectors(3000, 1)
    ids = [f"note-{i}" for i in range(3000)]
    ctx = launch_persistent(profile)
    page = ctx.new_page()
    boot_harness(page, base_url, numpy=use_numpy)
    opened = page.evaluate(OPEN_JS, {"name": "e8-persist", "codec": SPEC, "vectors": "int8"})
    assert opened["kind"] == "e8" and opened["count"] == 0
    page.evaluate(ADD_JS, {"rows": f32_rows(rows), "n": 3000, "ids": ids, "batch": 1000})
    page.evaluate("async (ids) => store.delete(ids)", ids[100:150])
    queries = vectors(4, 2)
    args = {"qs": f32_rows(queries), "nq": 4, "k": 10}
    before = [page.evaluate(SEARCH_JS, {**args, "rescore": r}) for r in (0, 100)]
    ctx.close()

    ctx = launch_persistent(profile)
    page = ctx.new_page()
    boot_harness(page, base_url, numpy=use_numpy)
    # opening without a codec uses the stored one (and its int8 rows)
    opened = page.evaluate(OPEN_JS, {"name": "e8-persist"})
    cfg = registry.config_from_spec(SPEC)
    assert opened["count"] == 2950 and opened["fingerprint"] == cfg.fingerprint
    assert opened["kind"] == "e8" and opened["vectors"] == "int8"
    got = page.evaluate(READ_JS)
    keep = [i for i in range(3000) if not 100 <= i < 150]
    assert got["ids"] == [ids[i] for i in keep]
    assert unb64(got["codes"]) == registry.codec_from_spec(SPEC, "numpy").encode(rows[keep]).codes_bytes()
    after = [page.evaluate(SEARCH_JS, {**args, "rescore": r}) for r in (0, 100)]
    assert after == before
    desk = desktop_two_stage(tmp_path, SPEC, rows[keep], [ids[i] for i in keep])
    assert after[1] == searches_of(desk, queries, 10, rescore=100)
    assert after[0] == searches_of(desk.index, queries, 10)
    # the stored codec cannot be swapped under the store
    err = page.evaluate("""async () => { try { await CH.ClarkHashStore.open({name: "e8-persist", codec: "sign-bits:384", runtime: rt}); return null; }
                                         catch (e) { return e.type; } }""")
    assert err == "ConfigMismatchError"
    ctx.close()


@pytest.mark.parametrize("phase", ["write-start", "encoding"])
def test_e8_killed_tab_mid_write_keeps_all_or_nothing(launch_persistent, base_url, profile, use_numpy,
                                                      phase):
    """Close the browser during one large two-stage batch; on reopen codes AND int8 rows
    are all there or all absent (one transaction)."""
    first = vectors(200, 3)
    big = vectors(6000 if phase == "write-start" else 3000, 4)
    name = f"e8-crash-{phase}"
    ctx = launch_persistent(profile)
    page = ctx.new_page()
    boot_harness(page, base_url, numpy=use_numpy)
    page.evaluate(OPEN_JS, {"name": name, "codec": SPEC, "vectors": "int8"})
    page.evaluate(ADD_JS, {"rows": f32_rows(first), "n": 200, "ids": None, "batch": 200})
    page.evaluate("""() => {
      window.writeStarted = false;
      rt.addEventListener("write-start", () => { window.writeStarted = true; });
    }""")
    page.evaluate("""({rows, n}) => {
      const d = store.config.input_dim;
      const flat = new Float32Array(CH.b64dec(rows).buffer);
      const vecs = [];
      for (let i = 0; i < n; i++) vecs.push(flat.subarray(i * d, (i + 1) * d));
      window.pending = store.addMany(vecs).then(() => "done", (e) => e.message);
    }""", {"rows": f32_rows(big), "n": len(big)})
    if phase == "write-start":
        page.wait_for_function("window.writeStarted", polling=1, timeout=600_000)
    else:
        time.sleep(0.3)
    ctx.close()   # the tab goes away with the batch in flight

    ctx = launch_persistent(profile)
    page = ctx.new_page()
    boot_harness(page, base_url, numpy=use_numpy)
    opened = page.evaluate(OPEN_JS, {"name": name})
    count = opened["count"]
    print(f"\nE8 store closed at {phase}: reopened with {count} notes")
    codec = registry.codec_from_spec(SPEC, "numpy")
    got = page.evaluate(READ_JS)
    if count == 200:
        assert got["ids"] == list(range(200)) and unb64(got["codes"]) == codec.encode(first).codes_bytes()
    else:
        total = 200 + len(big)
        assert count == total, f"half a batch survived: {count} notes"
        assert unb64(got["codes"]) == codec.encode(np.concatenate([first, big])).codes_bytes()
    stats = page.evaluate("async () => store.stats()")
    assert stats["vectorRecordBytes"] == count * (4 + D), "int8 rows and codes disagree after the crash"
    # the store still takes writes and rescoring works on every row
    more = vectors(5, 5)
    page.evaluate(ADD_JS, {"rows": f32_rows(more), "n": 5, "ids": None, "batch": 5})
    r = page.evaluate(SEARCH_JS, {"qs": f32_rows(more[:1]), "nq": 1, "k": 3, "rescore": count + 5})
    assert r[0]["ids"][0] == count   # the vector itself is its own best match
    ctx.close()


def test_store_made_before_other_codecs_still_opens(page, base_url, use_numpy):
    """IndexedDB records exactly as the Clark-Hash-only runtime wrote them (meta without
    `vectors`, blocks without a `vectors` field) open, search and take writes."""
    cfg = ClarkHashConfig(input_dim=32, sketch_dim=96, bits=4, hashes_per_input=2)
    rows = vectors(1500, 6, d=32)
    codes = ClarkHash(cfg, backend="numpy").encode(rows).codes_bytes()
    boot_harness(page, base_url, numpy=use_numpy)
    page.evaluate("""async ({configBytes, fingerprint, codes, n}) => {
      const req = indexedDB.open("clark-hash:legacy", 1);
      req.onupgradeneeded = () => { for (const s of ["meta", "blocks", "ids"]) req.result.createObjectStore(s); };
      const db = await new Promise((ok, bad) => { req.onsuccess = () => ok(req.result); req.onerror = () => bad(req.error); });
      const tx = db.transaction(["meta", "blocks", "ids"], "readwrite");
      tx.objectStore("meta").put({schema: 1, configBytes: CH.b64dec(configBytes).buffer, fingerprint, created: 1, nextAuto: n}, "meta");
      const all = CH.b64dec(codes);
      for (let b = 0, start = 0; start < n; b++, start += 1024) {
        const m = Math.min(1024, n - start);
        tx.objectStore("blocks").put({n: m, codes: all.slice(start * 48, (start + m) * 48).buffer, norms: null}, b);
        tx.objectStore("ids").put({kind: "range", start, n: m}, b);
      }
      await new Promise((ok, bad) => { tx.oncomplete = ok; tx.onerror = () => bad(tx.error); });
      db.close();
    }""", {"configBytes": b64(cfg.to_bytes()), "fingerprint": cfg.fingerprint, "codes": b64(codes),
           "n": 1500})
    opened = page.evaluate(OPEN_JS, {"name": "legacy"})
    assert opened == {"backend": opened["backend"], "count": 1500, "fingerprint": cfg.fingerprint,
                      "kind": "clark-hash", "vectors": None}
    assert unb64(page.evaluate(READ_JS)["codes"]) == codes
    index = make_index(cfg, backend="numpy")
    index.add(rows)
    q = vectors(2, 7, d=32)
    assert page.evaluate(SEARCH_JS, {"qs": f32_rows(q), "nq": 2, "k": 10, "rescore": 0}) == \
        searches_of(index, q, 10)
    assert page.evaluate(ADD_JS, {"rows": f32_rows(q), "n": 2, "ids": None, "batch": 2}) == [1500, 1501]
