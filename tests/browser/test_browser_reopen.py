"""Opening a stored store: the packed read path (idb.readRows) and the JS-only search.

A reopened store is searched from the codes read at open, and its ids come
from the blocks' id records (range / int / str) without Python loading its
copy, also after writes (the worker applies each committed plan to its rows,
static/stored-rows.js). These tests pin, for every codec kind, that a
reopened store finds exactly what the desktop finds (ids and score bits),
before and after deletes and writes, that stats() from the rows equal the
records' sizes, that
records of any block size and id kind (as any runtime wrote them) open, and
that the word-at-a-time table scan equals the byte-at-a-time one bit for bit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from clark_hash_web.codecs import registry
from clark_hash_web.codecs.base import EncodedBatch
from clark_hash_web.index import make_index

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_helpers import b64, f32_rows, unb64  # noqa: E402

# int stores: blocks of automatic ids (range records) and scattered ints (int records);
# str stores: str records (one store holds ints or strs, not both). 3001 rows: two full
# blocks and one of 953, a row count that is not a multiple of 4
INT_BATCHES = [("auto", 1024), ("int", 1024), ("auto", 953)]
STR_BATCHES = [("str", 1024), ("str", 1024), ("str", 953)]
N = 3001
D = 64
# E8 and sign bits: the word kernel; 100-bit LSH (13 bytes): the byte kernel; sign-bits:60
# has padding bits; Clark Hash (cosine and dot): the JS prefilter, Python ranking the
# candidates' codes (BrowserStore.rank_codes)
KINDS = [("e8:64", "int"), ("e8:64", "str"), ("sign-bits:64", "int"), ("sign-bits:60", "str"),
         ("hyperplane-lsh:64:n_bits=100", "int"), ("clark-hash:64", "int"),
         ("clark-hash:64:metric=dot", "str")]

REOPEN_JS = """
async ({name, codec, rows, batches, ids, queries, nq, k, drop, pyRowsCode}) => {
  await CH.ClarkHashStore.destroy(name, rt);
  await rt.call("setPrefilterMinRows", {rows: 100});
  let s = await CH.ClarkHashStore.open({name, codec, runtime: rt});
  const flat = new Float32Array(CH.b64dec(rows).buffer);
  const d = s.config.input_dim;
  let at = 0;
  for (const [kind, n] of batches) {
    const vecs = [];
    for (let i = at; i < at + n; i++) vecs.push(flat.subarray(i * d, (i + 1) * d));
    await s.addMany(vecs, kind === "auto" ? {} : {ids: ids.slice(at, at + n)});
    at += n;
  }
  const qf = new Float32Array(CH.b64dec(queries).buffer);
  const searchAll = async () => {
    const out = [];
    for (let j = 0; j < nq; j++) {
      const q = qf.slice(j * d, (j + 1) * d);
      const r = await rt.call("search", {handle: s.handle, query: q.buffer, k});
      out.push({ids: r.ids, scores: CH.b64enc(new Uint8Array(r.scores)), by: r.scan.ids || r.scan.mode});
    }
    return out;
  };
  const reopen = async () => { await s.close(); s = await CH.ClarkHashStore.open({name, runtime: rt}); };
  // stats() answered from the rows (Python not loaded); codes() loads Python's copy
  const pyRows = () => rt.call("runPython", {code: pyRowsCode});
  const statsTwice = async () => {
    const fromRows = await s.stats();
    const loadedAfterStats = await pyRows();
    const codes = await rt.call("codes", {handle: s.handle});   // Python loads its copy
    return {fromRows, loadedAfterStats, loadedAfterCodes: await pyRows(), codesIds: codes.ids,
            again: await s.stats()};
  };
  await reopen();
  const stats = await statsTwice();
  await reopen();
  const count = await s.count();
  const firstIds = await s.ids();       // from the id records, before Python loads
  const first = await searchAll();
  await s.delete(drop);                 // planned from the worker's rows: Python loads nothing
  const loadedAfterDelete = await pyRows();
  const idsAfterDelete = await s.ids();
  const statsAfterDelete = await s.stats();
  const afterDelete = await searchAll();
  await reopen();
  const reopened = await searchAll();
  const reopenedIds = await s.ids();
  const statsReopened = await statsTwice();
  await s.close();
  await CH.ClarkHashStore.destroy(name, rt);
  await rt.call("setPrefilterMinRows", {rows: 2000});
  return {count, firstIds, first, loadedAfterDelete, idsAfterDelete, afterDelete, reopened, reopenedIds,
          stats, statsAfterDelete, statsReopened};
}
"""

#: rows Python holds in the open stores (0 until a store loads its copy)
PY_ROWS = """
import gc
from clark_hash_web.browser.bridge import BrowserStore
sum(len(o.index) for o in gc.get_objects() if isinstance(o, BrowserStore))
"""


def vectors(n, d, seed):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(d).astype(np.float32)
    return (rng.standard_normal((n, d)).astype(np.float32) + base).astype(np.float32)


def ids_of_batches(batches):
    ids = []
    for kind, n in batches:
        if kind == "auto":   # the store's next automatic id: after the largest int id
            start = max((i + 1 for i in ids), default=0)
            ids += list(range(start, start + n))
        elif kind == "str":
            ids += [f"note {len(ids) + i}" for i in range(n)]
        else:
            ids += [10_000 + 7 * i for i in range(n)]
    return ids


def desktop(config, rows, ids, queries, k, drop=()):
    index = make_index(config, backend="numpy")
    index.add(rows, ids)
    if drop:
        index.remove(list(drop))
    out = []
    for q in queries:
        got, scores = index.search(q, k)
        out.append((list(got), np.asarray(scores, dtype="<f4").tobytes()))
    return out, list(index.ids)


def same(got, want, where):
    for j, (g, (ids, scores)) in enumerate(zip(got, want)):
        assert g["ids"] == ids, f"{where}, query {j}: ids differ"
        assert unb64(g["scores"]) == scores, f"{where}, query {j}: score bits differ"


@pytest.mark.parametrize("spec,id_kind", KINDS, ids=[f"{s}-{i}" for s, i in KINDS])
def test_reopened_store_finds_what_the_desktop_finds(runtime_page, spec, id_kind):
    """Reopen -> search (JS ids from range/int or str records) == desktop; delete rows of
    every block -> search (Python) == desktop; reopen again -> search (JS) and ids == desktop."""
    backend, page = runtime_page
    config = registry.config_from_spec(spec)
    batches = INT_BATCHES if id_kind == "int" else STR_BATCHES
    d = config.input_dim
    rows = vectors(N, d, 5)
    rows[2500:2504] = rows[7]                       # exact ties in the last block (insertion order)
    ids = ids_of_batches(batches)
    queries = np.concatenate([rows[[7, 1500]], vectors(2, d, 6)])
    drop = [ids[r] for r in (0, 1023, 5, 1024, 1500, 2047, 2048, 3000)]
    k = 12
    got = page.evaluate(REOPEN_JS, {
        "name": f"reopen-{spec}-{id_kind}", "codec": spec, "rows": f32_rows(rows), "batches": batches,
        "ids": ids, "queries": f32_rows(queries), "nq": len(queries), "k": k, "drop": drop,
        "pyRowsCode": PY_ROWS})
    assert got["count"] == N and got["firstIds"] == ids
    want, _ = desktop(config, rows, ids, queries, k)
    want_after, ids_after = desktop(config, rows, ids, queries, k, drop)
    same(got["first"], want, f"{spec} {backend} reopened")
    same(got["afterDelete"], want_after, f"{spec} {backend} after delete")
    same(got["reopened"], want_after, f"{spec} {backend} reopened after delete")
    assert got["reopenedIds"] == ids_after == got["idsAfterDelete"]
    assert got["loadedAfterDelete"] == 0   # the write never loaded Python's copy of the rows
    blocks = [ids[a:a + n] for a, n in zip((0, 1024, 2048), (1024, 1024, 953))]
    gone = set(drop)
    for key, count, kept in (("stats", N, blocks), ("statsReopened", N - len(drop),
                                                    [[i for i in b if i not in gone] for b in blocks])):
        st = got[key]
        assert st["loadedAfterStats"] == 0 and st["loadedAfterCodes"] == count, key
        assert st["codesIds"] == (ids if count == N else ids_after), key
        want = record_stats(config, kept, backend)
        assert st["fromRows"] == st["again"] and {f: st["fromRows"][f] for f in want} == want, key
    assert got["statsAfterDelete"] == got["statsReopened"]["fromRows"]   # the applied plan == a reopen
    # the rows are named in JS after each open and after the write
    assert {g["by"] for g in got["first"]} == {"js"}
    assert {g["by"] for g in got["afterDelete"]} == {"js"}
    assert {g["by"] for g in got["reopened"]} == {"js"}


def record_stats(config, blocks, backend):
    """stats() of block records holding these ids (BrowserStore.stats_of_blocks of their sizes)."""
    from clark_hash_web.browser import bridge as bb

    dot = registry.kind_of(config).name == "clark-hash" and config.metric == "dot"
    sizes = [(len(b), 2 * len(b) if dot else 0, bb._ids_record_bytes(bb._ids_record(b))) for b in blocks]
    st = bb.BrowserStore(config.to_bytes(), "python").stats_of_blocks(sizes, 0, 0)
    st["backend"] = backend
    return st


WRITE_RAW_JS = """async ({name, configBytes, fingerprint, codes, blocks, nextAuto}) => {
  await CH.ClarkHashStore.destroy(name, rt);
  const req = indexedDB.open("clark-hash:" + name, 1);
  req.onupgradeneeded = () => { for (const s of ["meta", "blocks", "ids"]) req.result.createObjectStore(s); };
  const db = await new Promise((ok, bad) => { req.onsuccess = () => ok(req.result); req.onerror = () => bad(req.error); });
  const tx = db.transaction(["meta", "blocks", "ids"], "readwrite");
  tx.objectStore("meta").put({schema: 1, configBytes: CH.b64dec(configBytes).buffer, fingerprint, created: 1, nextAuto}, "meta");
  const all = CH.b64dec(codes);
  const cb = all.length / blocks.reduce((a, b) => a + b.n, 0);
  let row = 0;
  for (const b of blocks) {
    tx.objectStore("blocks").put({n: b.n, codes: all.slice(row * cb, (row + b.n) * cb).buffer, norms: null}, b.key);
    const ids = b.ids.kind === "int" ? {kind: "int", data: new Float64Array(b.ids.data).buffer} : b.ids;
    tx.objectStore("ids").put(ids, b.key);
    row += b.n;
  }
  await new Promise((ok, bad) => { tx.oncomplete = ok; tx.onerror = () => bad(tx.error); });
  db.close();
}"""

RAW_SEARCH_JS = """async ({name, queries, nq, k, more}) => {
  const s = await CH.ClarkHashStore.open({name, runtime: rt});
  const d = s.config.input_dim;
  const qf = new Float32Array(CH.b64dec(queries).buffer);
  const run = async () => {
    const out = [];
    for (let j = 0; j < nq; j++) {
      const r = await s.search(qf.slice(j * d, (j + 1) * d), k);
      out.push({ids: r.ids, scores: CH.b64enc(new Uint8Array(r.scores.buffer))});
    }
    return out;
  };
  const count = await s.count();
  const before = await run();
  const mf = new Float32Array(CH.b64dec(more).buffer);
  const added = await s.addMany([mf.subarray(0, d), mf.subarray(d, 2 * d)]);
  const after = await run();
  await s.close();
  await CH.ClarkHashStore.destroy(name, rt);
  return {count, before, added, after};
}"""


def test_records_of_any_block_size_and_id_kind_open(runtime_page):
    """An E8 store whose records have uneven block sizes (as deletes leave them), gaps in the
    block keys and range and int id records (negative ints too) opens, searches like the
    desktop, and takes writes (automatic ids continue after the meta record's nextAuto)."""
    backend, page = runtime_page
    config = registry.config_from_spec(f"e8:{D}")
    sizes = [1024, 300, 7, 1024, 1]
    n = sum(sizes)
    rows = vectors(n, D, 9)
    codes = registry.codec_from_config(config, "numpy").encode(rows).codes_bytes()
    blocks, ids, at = [], [], 0
    kinds = ["range", "int", "range", "range", "int"]
    for b, (m, kind) in enumerate(zip(sizes, kinds)):
        if kind == "range":
            rec, bids = {"kind": "range", "start": 10_000 * b, "n": m}, list(range(10_000 * b, 10_000 * b + m))
        elif kind == "int":
            bids = [-(5 * i + b) for i in range(m)]
            rec = {"kind": "int", "data": bids}
        blocks.append({"key": 3 * b + 1, "n": m, "ids": rec})
        ids += bids
        at += m
    assert len(set(ids)) == n
    page.evaluate(WRITE_RAW_JS, {"name": "raw-e8", "configBytes": b64(config.to_bytes()),
                                 "fingerprint": config.fingerprint, "codes": b64(codes),
                                 "blocks": blocks, "nextAuto": 50_000})
    queries = np.concatenate([rows[[0, 1500, n - 1]], vectors(2, D, 10)])
    more = vectors(2, D, 11)
    got = page.evaluate(RAW_SEARCH_JS, {"name": "raw-e8", "queries": f32_rows(queries),
                                        "nq": len(queries), "k": 15, "more": f32_rows(more)})
    assert got["count"] == n
    index = make_index(config, backend="numpy")
    index.add_encoded(EncodedBatch.from_bytes(config, codes), ids)
    want = [(list(i), np.asarray(s, "<f4").tobytes()) for i, s in (index.search(q, 15) for q in queries)]
    same(got["before"], want, f"raw records ({backend})")
    assert got["added"] == [50_000, 50_001]
    index.add(more, [50_000, 50_001])
    want = [(list(i), np.asarray(s, "<f4").tobytes()) for i, s in (index.search(q, 15) for q in queries)]
    same(got["after"], want, f"raw records after a write ({backend})")


SCAN_JS = """async ({url, cases}) => {
  const m = await import(url);
  const out = [];
  for (const c of cases) {
    const codes = CH.b64dec(c.codes);
    const tables = new Float32Array(CH.b64dec(c.tables).buffer);
    const n = codes.length / c.codeBytes;
    const aligned = new m.TableScanner(codes, c.codeBytes, n);
    const shifted = new Uint8Array(codes.length + 1);   // byteOffset 1: the byte-at-a-time path
    shifted.set(codes, 1);
    const bytes = new m.TableScanner(shifted.subarray(1), c.codeBytes, n);
    const top = aligned.top(tables, c.k);
    out.push({words: !!aligned.words, bytesPath: !bytes.words,
              a: CH.b64enc(new Uint8Array(aligned.scores(tables).slice().buffer)),
              b: CH.b64enc(new Uint8Array(bytes.scores(tables).slice().buffer)),
              top: Array.from(top.rows)});
  }
  return out;
}"""


def test_word_scan_equals_byte_scan_bit_for_bit(runtime_page, base_url):
    """The 4-rows-at-a-time Uint32 kernel == the byte kernel == float32 bitpack-order sums
    computed here, for row counts that are not multiples of 4, with ties and tiny table values
    (rounding matters); the top k ranks ties by row."""
    _, page = runtime_page
    rng = np.random.default_rng(3)
    cases, wants = [], []
    for cb, n, k in [(48, 1027, 10), (8, 5, 5), (12, 3, 2), (4, 4099, 40)]:
        codes = rng.integers(0, 256, (n, cb), dtype=np.uint8)
        codes[n // 2:] = codes[0] if n > 8 else codes[n // 2:]   # many exact ties
        tables = (rng.standard_normal((cb, 256)) * np.exp2(rng.integers(-30, 4, (cb, 256)))).astype(np.float32)
        acc = np.zeros(n, np.float32)
        for p in range(0, cb, 2):
            u = (tables[p][codes[:, p]] + tables[p + 1][codes[:, p + 1]]).astype(np.float32)
            acc = (acc + u).astype(np.float32)
        order = sorted(range(n), key=lambda r: (-float(acc[r]), r))[:k]
        cases.append({"codes": b64(codes.tobytes()), "tables": b64(tables.tobytes()), "codeBytes": cb, "k": k})
        wants.append((acc.astype("<f4").tobytes(), order))
    got = page.evaluate(SCAN_JS, {"url": base_url + "static/table-scan.js", "cases": cases})
    for g, (scores, order), c in zip(got, wants, cases):
        assert g["words"] and g["bytesPath"]
        assert unb64(g["a"]) == scores, f"word kernel, code bytes {c['codeBytes']}"
        assert unb64(g["b"]) == scores, f"byte kernel, code bytes {c['codeBytes']}"
        assert g["top"] == order
