"""The browser's JS prefilter scan (static/prefilter-scan.js) keeps search exact.

Stores full of exact and near ties (duplicated vectors, slightly perturbed
copies, in dot mode also rescaled copies) are searched in the browser with the
JS prefilter forced on (``setPrefilterMinRows(0)``); ids and float32 score bits
must equal the desktop FlatIndex search (native numpy), also after deletes
(the worker must refetch the codes it scans). Runs once per backend, like
test_browser_parity.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from clark_hash_web import ClarkHash, ClarkHashConfig, FlatIndex

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_helpers import b64, config_js, f32_rows, unb64  # noqa: E402

N = 600
D = 64
KS = (1, 3, 10, 150)
CONFIGS = [(bits, metric) for bits in (1, 3, 4, 8) for metric in ("cosine", "dot")]

SEARCH_JS = """
async ({name, config, backend, rows, n, queries, nq, ks, drop}) => {
  await rt.call("setPrefilterMinRows", {rows: 0});
  await CH.ClarkHashStore.destroy(name, rt);
  const s = await CH.ClarkHashStore.open({name, config, backend, runtime: rt});
  const d = s.config.input_dim;
  const flat = new Float32Array(CH.b64dec(rows).buffer);
  const vecs = [];
  for (let i = 0; i < n; i++) vecs.push(flat.subarray(i * d, (i + 1) * d));
  await s.addMany(vecs);
  const qf = new Float32Array(CH.b64dec(queries).buffer);
  const run = async () => {
    const out = [];
    for (let j = 0; j < nq; j++) {
      for (const k of ks) {
        const q = qf.slice(j * d, (j + 1) * d);
        const r = await rt.call("search", {handle: s.handle, query: q.buffer, k}, [q.buffer]);
        out.push({ids: r.ids, scores: CH.b64enc(new Uint8Array(r.scores)), scan: r.scan});
      }
    }
    return out;
  };
  const before = await run();
  await s.delete(drop);
  const after = await run();
  await s.close();
  await CH.ClarkHashStore.destroy(name, rt);
  await rt.call("setPrefilterMinRows", {rows: 2000});
  return {backend: s.backend, before, after};
}
"""


def tie_heavy_rows(metric, seed):
    """N rows: random ones, exact duplicates, tiny perturbations (and rescaled copies in dot mode)."""
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((N, D)).astype(np.float32)
    rows[50:200] = rows[0]                                   # 151 exact duplicates of row 0
    noise = rng.standard_normal((100, D)).astype(np.float32) * np.float32(1e-6)
    rows[200:300] = rows[1] + noise                          # near-duplicates of row 1
    rows[300:340] = rows[2] * np.float32(1.0 + 2.0**-20)     # one-ulp-ish rescaled copies
    if metric == "dot":
        rows[340:400] = rows[3] * np.exp2(rng.integers(-3, 4, (60, 1))).astype(np.float32)
        rows[400:] *= np.exp2(rng.uniform(-4, 4, (N - 400, 1))).astype(np.float32)
    return rows


def desktop_searches(cfg, rows, queries, drop):
    index = FlatIndex(ClarkHash(cfg, backend="numpy"))
    index.add(rows)
    out = []
    for phase in ("before", "after"):
        if phase == "after":
            index.remove(drop)
        res = []
        for q in queries:
            for k in KS:
                ids, scores = index.search(q, k)
                res.append((list(ids), np.asarray(scores, dtype="<f4").tobytes()))
        out.append(res)
    return out


@pytest.mark.parametrize("bits,metric", CONFIGS, ids=[f"b{b}_{m}" for b, m in CONFIGS])
def test_prefilter_ties_match_desktop(runtime_page, bits, metric):
    backend, page = runtime_page
    cfg = ClarkHashConfig(input_dim=D, sketch_dim=48, bits=bits, hashes_per_input=4, metric=metric,
                          seed=0x5EEDCAFE12345678 ^ (bits * 131))
    rows = tie_heavy_rows(metric, bits * 10 + (metric == "dot"))
    rng = np.random.default_rng(bits)
    queries = np.concatenate([rows[[0, 1, 2, 3]], rng.standard_normal((2, D)).astype(np.float32)])
    drop = [0, 60, 61, 201, 300, 599]
    want_before, want_after = desktop_searches(cfg, rows, queries, drop)
    got = page.evaluate(SEARCH_JS, {
        "name": f"prefilter-{bits}-{metric}", "config": config_js(cfg), "backend": backend,
        "rows": f32_rows(rows), "n": N, "queries": f32_rows(queries), "nq": len(queries),
        "ks": list(KS), "drop": drop})
    assert got["backend"] == backend
    for phase, want, have in (("before delete", want_before, got["before"]),
                              ("after delete", want_after, got["after"])):
        assert len(have) == len(want)
        for j, ((ids, scores), g) in enumerate(zip(want, have)):
            where = f"{phase}, query {j // len(KS)}, k={KS[j % len(KS)]}"
            assert g["scan"]["mode"] == "js-prefilter", where
            assert g["scan"]["candidates"] >= len(ids), where
            assert g["ids"] == ids, f"{where}: ranking differs"
            assert unb64(g["scores"]) == scores, f"{where}: score bits differ"
    # the scan must actually prune: a random query keeps far fewer than all rows
    assert min(g["scan"]["candidates"] for g in got["before"][-len(KS):]) < N // 2


IMPORT_SEARCH_JS = """
async ({name, config, backend, file, queries, nq, ks}) => {
  await rt.call("setPrefilterMinRows", {rows: 0});
  await CH.ClarkHashStore.destroy(name, rt);
  const s = await CH.ClarkHashStore.open({name, config, backend, runtime: rt});
  await s.importSketchFile(CH.b64dec(file));
  const d = s.config.input_dim;
  const qf = new Float32Array(CH.b64dec(queries).buffer);
  const out = [];
  for (let j = 0; j < nq; j++) {
    for (const k of ks) {
      const q = qf.slice(j * d, (j + 1) * d);
      const r = await rt.call("search", {handle: s.handle, query: q.buffer, k}, [q.buffer]);
      out.push({ids: r.ids, scores: CH.b64enc(new Uint8Array(r.scores)), scan: r.scan});
    }
  }
  await s.close();
  await CH.ClarkHashStore.destroy(name, rt);
  await rt.call("setPrefilterMinRows", {rows: 2000});
  return out;
}
"""


def near_tie_codes(cfg, query, rng, pairs=60, samples=20000):
    """8-bit codes crafted for ``query``: pairs whose real scores differ by ~1e-9 (relative).

    Every row is a base code (levels aligned with the query's signs) plus a
    {-1, 0, 1} change per coordinate; of ``samples`` random changes, the
    ``pairs`` pairs with the closest real accumulators are kept. Their float32
    scores tie or order differently from any float64 approximation, so only
    a correct error bound keeps the exact top k (tests that the bound is used).
    """
    v = np.asarray(ClarkHash(cfg, backend="numpy").sketch_query(query).values, dtype=np.float64)
    base = np.where(v > 0, 200, 55)
    deltas = rng.integers(-1, 2, (samples, cfg.sketch_dim))
    order = np.argsort(deltas @ v)
    gaps = np.diff((deltas @ v)[order])
    rows = []
    for g in np.argsort(gaps)[:pairs]:
        rows += [base + deltas[order[g]], base + deltas[order[g + 1]]]
    rows += list(rng.integers(0, 256, (200, cfg.sketch_dim)))   # lower-scoring background
    codes = np.asarray(rows, dtype=np.uint8)
    return codes[rng.permutation(len(codes))]


@pytest.mark.parametrize("metric", ["cosine", "dot"])
@pytest.mark.parametrize("m", [48, 46], ids=["word_scan", "byte_scan"])   # code_bytes % 4 == 0 or not
def test_prefilter_crafted_near_ties(runtime_page, metric, m):
    from clark_hash_web import EncodedBatch
    from clark_hash_web.formats import sketch_file

    backend, page = runtime_page
    cfg = ClarkHashConfig(input_dim=D, sketch_dim=m, bits=8, hashes_per_input=4, metric=metric)
    rng = np.random.default_rng(7)
    query = rng.standard_normal(D).astype(np.float32)
    codes = near_tie_codes(cfg, query, rng)
    norms = np.full(len(codes), 40000, dtype="<u2").tobytes() if metric == "dot" else None
    enc = EncodedBatch.from_bytes(cfg, codes.tobytes(), norms)
    codec = ClarkHash(cfg, backend="numpy")
    index = FlatIndex(codec)
    index.add_encoded(enc)
    scores = np.asarray(codec.score(codec.sketch_query(query), enc))
    distinct_codes = len({c.tobytes() for c in codes})
    assert len(set(scores.tolist())) < distinct_codes, "no exact float32 ties between distinct codes"
    ks = list(range(1, 41))
    want = [index.search(query, k) for k in ks]
    got = page.evaluate(IMPORT_SEARCH_JS, {
        "name": f"prefilter-crafted-{metric}-{m}", "config": config_js(cfg), "backend": backend,
        "file": b64(sketch_file.to_bytes(cfg, codes.tobytes(), norms, None)),
        "queries": f32_rows(query[None]), "nq": 1, "ks": ks})
    for k, (ids, sc), g in zip(ks, want, got):
        assert g["scan"]["mode"] == "js-prefilter"
        assert g["ids"] == list(ids), f"k={k}: ranking differs"
        assert unb64(g["scores"]) == np.asarray(sc, dtype="<f4").tobytes(), f"k={k}: score bits differ"


TABLE_CONFIGS = [(1, 128, "cosine"), (3, 50, "dot"), (4, 96, "cosine"), (5, 7, "cosine"),
                 (7, 33, "dot"), (8, 48, "cosine")]


def test_js_byte_tables_match_python(runtime_page, base_url):
    """prefilter-scan.js byteTables() == fast_scan.byte_tables, bit for bit."""
    from clark_hash_web.index import fast_scan

    _, page = runtime_page
    rng = np.random.default_rng(4)
    for bits, m, metric in TABLE_CONFIGS:
        cfg = ClarkHashConfig(input_dim=D, sketch_dim=m, bits=bits, metric=metric)
        index = FlatIndex(ClarkHash(cfg, backend="numpy"))
        q = index.codec.sketch_query(rng.standard_normal(D).astype(np.float32))
        plan = index.prefilter_plan(q)
        got = page.evaluate("""async ({url, values, bits, codeBytes, step}) => {
            const mod = await import(url);
            const t = mod.byteTables(new Float32Array(CH.b64dec(values).buffer), bits, codeBytes, step);
            return CH.b64enc(new Uint8Array(t.buffer));
          }""", {"url": base_url + "static/prefilter-scan.js", "values": b64(plan["values"]),
                 "bits": bits, "codeBytes": cfg.code_bytes, "step": plan["step"]})
        assert unb64(got) == fast_scan.byte_tables(q.values, cfg)[0].tobytes(), (bits, m, metric)


def test_bridge_prefilter_and_rank_errors():
    """Small stores (and k >= n) are searched directly; rank() without a planned query fails clearly."""
    from clark_hash_web.browser.bridge import BrowserStore, open_store
    from clark_hash_web.errors import InvalidInputError

    cfg = ClarkHashConfig(input_dim=D, sketch_dim=48, bits=4)
    store = BrowserStore(cfg.to_bytes(), "python")
    rows = np.random.default_rng(9).standard_normal((30, D)).astype(np.float32)
    plan = store.plan_add(rows.tobytes(), len(rows))
    store.commit(plan["token"])
    store, _ = open_store(cfg.to_bytes(), "python", plan["puts"], plan["nextAuto"])   # the read cache
    q = rows[3].tobytes()
    want_ids, want_scores = store.index.search(rows[3], 5)
    direct = store.prefilter(q, 5, 30)
    assert direct["direct"] and direct["ids"] == list(want_ids)
    assert store.prefilter(q, 30, 0)["direct"]            # k >= n: nothing to prune
    with pytest.raises(InvalidInputError, match="prefilter"):
        store.rank(np.arange(30, dtype="<u4").tobytes(), 5)
    plan = store.prefilter(q, 5, 0)
    assert not plan["direct"] and plan["count"] == 30
    with pytest.raises(InvalidInputError, match="uint32"):
        store.rank(b"\0\0\0", 5)
    plan = store.prefilter(q, 5, 0)
    got = store.rank(np.arange(30, dtype="<u4").tobytes(), 5)   # every row: the exact top 5
    assert got["ids"] == list(want_ids)
    assert got["scores"] == np.asarray(want_scores, dtype="<f4").tobytes()
    with pytest.raises(InvalidInputError, match="prefilter"):   # a plan serves one rank() only
        store.rank(np.arange(30, dtype="<u4").tobytes(), 5)


SCANNER_JS = """async ({url, cases}) => {
  const mod = await import(url);
  const out = [];
  for (const c of cases) {
    const codes = CH.b64dec(c.codes);
    const normCodes = c.normCodes ? new Uint16Array(CH.b64dec(c.normCodes).buffer) : null;
    const decoded = c.decoded ? new Float64Array(CH.b64dec(c.decoded).buffer) : null;
    const scanner = new mod.PrefilterScanner(codes, c.codeBytes, c.n, normCodes, decoded);
    const got = [];
    for (const p of c.plans) {
      const plan = {...p, values: CH.b64dec(p.values)};
      for (const k of c.ks) {
        const reused = Array.from(scanner.rows(plan, k));   // the same scanner for every query and k
        const fresh = Array.from(mod.prefilterRows(plan, codes, c.codeBytes, c.n, normCodes, decoded, k));
        got.push({k, reused, fresh});
      }
    }
    out.push(got);
  }
  return out;
}"""


# code bytes 48: the unrolled kernel; 44 / 40: word kernel with an odd / even word count;
# 46: byte kernel. n around the scanner's block size (2048 rows).
SCANNER_CASES = [(48, 2049, "cosine"), (44, 2047, "dot"), (40, 4100, "cosine"), (46, 2048, "dot"),
                 (48, 300, "dot")]


def test_scanner_kernels_keep_the_exact_top_k(runtime_page, base_url):
    """PrefilterScanner.rows (buffers reused across queries) == prefilterRows, and rank_rows of
    its candidates == the exact search, for every kernel, near block edges, with near ties."""
    from clark_hash_web.codecs.norm_channel import decode_table

    _, page = runtime_page
    rng = np.random.default_rng(12)
    cases, checks = [], []
    for code_bytes, n, metric in SCANNER_CASES:
        cfg = ClarkHashConfig(input_dim=D, sketch_dim=code_bytes, bits=8, metric=metric)
        index = FlatIndex(ClarkHash(cfg, backend="numpy"))
        rows = rng.standard_normal((n, D)).astype(np.float32)
        rows[n // 2:n // 2 + 40] = rows[3]                          # exact ties across a block edge
        rows[-30:] = rows[5] + rng.standard_normal((30, D)).astype(np.float32) * np.float32(1e-6)
        if metric == "dot":
            rows *= np.exp2(rng.integers(-2, 3, (n, 1))).astype(np.float32)
        index.add(rows)
        enc = index.encoded()
        queries = [index.codec.sketch_query(q) for q in (rows[3], rows[5], rng.standard_normal(D))]
        plans = [index.prefilter_plan(q) for q in queries]
        ks = [1, 10, 41, n - 1, n]
        cases.append({
            "codes": b64(enc.codes_bytes()), "codeBytes": code_bytes, "n": n, "ks": ks,
            "normCodes": b64(enc.norm_codes_bytes()) if metric == "dot" else None,
            "decoded": b64(np.asarray(decode_table(), dtype="<f8").tobytes()) if metric == "dot" else None,
            "plans": [{**p, "values": b64(p["values"])} for p in plans]})
        checks.append((index, queries, ks))
    got = page.evaluate(SCANNER_JS, {"url": base_url + "static/prefilter-scan.js", "cases": cases})
    for (index, queries, ks), case_got in zip(checks, got):
        results = iter(case_got)
        for j, q in enumerate(queries):
            for k in ks:
                g = next(results)
                where = f"code_bytes={index.config.code_bytes}, n={len(index)}, query {j}, k={k}"
                assert g["k"] == k and g["reused"] == g["fresh"], where
                cand = g["reused"]
                assert cand == sorted(set(cand)) and len(cand) >= k, where
                ids, scores = index.rank_rows(q, cand, k)
                want_ids, want_scores = index.search_prepared(q, k)
                assert ids == list(want_ids), where
                assert np.asarray(scores, "<f4").tobytes() == np.asarray(want_scores, "<f4").tobytes(), where
