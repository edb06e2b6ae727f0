"""FlatIndex (Clark Hash, numpy) cosine search through the integer pair-table bound
(:func:`clark_hash_web.index.fast_scan.quick_bound`) pinned to brute force: built ties,
near-ties, rows whose quick order is the reverse of their exact order, the bound checked
row by row, the float32 refinement past ``REFINE_ABOVE`` survivors, and a weakened bound
that must fail."""

from __future__ import annotations

import numpy as np
import pytest

from binary_helpers import clustered
from clark_hash_web import ClarkHash, ClarkHashConfig, EncodedBatch, FlatIndex
from clark_hash_web.codecs.clark_hash import QuerySketch
from clark_hash_web.index import fast_scan, flat, table_bound
from clark_hash_web.index.code_columns import CodeColumns
from test_e8_scan import quick_order_inversion, total_order_ranking

CONFIGS = [ClarkHashConfig(96, sketch_dim=96, bits=4),            # the crate profile's shape
           ClarkHashConfig(40, sketch_dim=30, bits=3),            # 12 code bytes, a partial last one
           ClarkHashConfig(64, sketch_dim=25, bits=1),            # 4 code bytes: an odd pair count
           ClarkHashConfig(48, sketch_dim=20, bits=8)]            # one coordinate per byte
IDS = ["96x4", "30x3", "25x1", "20x8"]


def quick_scores(bound, codes):
    cols = CodeColumns(codes.shape[1], 2)
    cols.append(codes)
    return bound.sums(cols.pair_columns()).astype(np.int64)


def single_byte_changes(cfg, top):
    """Every valid code (padding bits zero) that differs from ``top`` in exactly one byte."""
    rows = []
    for j in range(cfg.code_bytes):
        used = min(8, cfg.sketch_dim * cfg.bits - 8 * j)
        vals = np.arange(1 << used, dtype=np.uint8)
        c = np.repeat(top[None, :], len(vals) - 1, axis=0)
        c[:, j] = vals[vals != top[j]]
        rows.append(c)
    return np.concatenate(rows)


def inverted_pair(codec, q, top):
    """Two changes ``a``, ``b`` of ``top`` with exact score(a) > score(b) but a smaller
    quick score, by a gap of several levels (:func:`quick_order_inversion` on the real
    byte weights): a cut between them is only right with the slack."""
    cfg = codec.config
    bound = fast_scan.quick_bound(q.values, cfg)
    weights = fast_scan.byte_weights(q.values, cfg)[:cfg.code_bytes]
    sizes = [1 << min(8, cfg.sketch_dim * cfg.bits - 8 * j) for j in range(cfg.code_bytes)]
    (a, b), gap = quick_order_inversion(weights, top, bound.step, sizes)
    qa, qb = quick_scores(bound, np.array([a, b]))
    assert qb - qa == gap
    return a, b, gap


def tied_codes(codec, n, seed):
    """Clustered codes plus, near the top: the query's own code three times, an inverted
    pair twice, single-byte changes of the top code (near-ties, many of them exact ties
    through coordinates the query weighs zero) and 200 duplicates of early rows."""
    rng = np.random.default_rng(seed)
    d = codec.config.input_dim
    x = clustered(n, d, seed=seed)
    qv = x[0].copy()
    qv[: d // 6] = 0.0                               # many sketch coordinates near zero
    q = codec.sketch_query(qv)
    codes = np.asarray(codec.encode(x).codes).copy()
    top = np.asarray(codec.encode(qv[None, :]).codes)[0]
    a, b, gap = inverted_pair(codec, q, top)
    near = single_byte_changes(codec.config, top)
    near = near[rng.choice(len(near), size=min(300, len(near)), replace=False)]
    first = np.array([top, top, top, a, b, a, b])
    where = np.sort(rng.choice(n, size=len(first) + len(near), replace=False))
    codes[where[:len(first)]] = first
    codes[where[len(first):]] = near
    dup = rng.choice(np.setdiff1d(np.arange(n), where), size=200, replace=False)
    codes[dup] = codes[rng.integers(0, 5, size=200)]
    return EncodedBatch(codec.config, codes), q, (a, b, gap)


def check_ranking(index, codec, enc, q, ks):
    scores = np.asarray(codec.score(q, enc), dtype=np.float32)
    ref = total_order_ranking(scores)
    for k in ks:
        ids, got = index.search_prepared(q, k)
        assert ids == (ref[:k] + 7).tolist(), k
        assert got.tobytes() == scores[ref[:k]].tobytes(), k
    return scores, ref


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_quick_bound_holds_for_every_row(cfg):
    """m * score (float64) lies in const + [base + step Q + low, base + step Q + high] for
    every row, the width is covered by the slack, and random rows fill much of it."""
    codec = ClarkHash(cfg, "numpy")
    x = clustered(3000, cfg.input_dim, seed=cfg.bits)
    rng = np.random.default_rng(cfg.bits)
    codes = np.concatenate([np.asarray(codec.encode(x).codes),
                            rng.integers(0, 256, (2000, cfg.code_bytes), dtype=np.uint8)])
    if cfg.sketch_dim * cfg.bits % 8:                # padding bits stay zero
        codes[:, -1] &= (1 << (cfg.sketch_dim * cfg.bits % 8)) - 1
    enc = EncodedBatch(cfg, codes)
    for qi in range(3):
        q = codec.sketch_query(x[qi] * np.float32(4.0 ** qi))
        bound = fast_scan.quick_bound(q.values, cfg)
        quick = quick_scores(bound, codes).astype(np.float64)
        exact = np.asarray(codec.score(q, enc), dtype=np.float64) * cfg.sketch_dim
        off = exact - fast_scan.const_term(q.values, cfg) - bound.base - bound.step * quick
        assert np.all(off >= bound.low) and np.all(off <= bound.high)
        assert off.max() - off.min() > 0.25 * (bound.high - bound.low)
        assert bound.slack * bound.step >= bound.high - bound.low


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_flat_search_equals_brute_force_with_ties_and_near_ties(cfg, monkeypatch):
    """The quick pass prunes, keeps every row of the exact top k (ties by insertion order),
    and a cut between an inverted pair is right."""
    monkeypatch.setattr(table_bound, "CHUNK", 1000)                 # several quick-pass steps
    monkeypatch.setattr(table_bound, "HEAD_ROWS", 1000)             # a first cut below Q_k
    codec = ClarkHash(cfg, "numpy")
    enc, q, (a, b, gap) = tied_codes(codec, 6000, seed=cfg.bits)
    assert gap >= 1
    index = FlatIndex(codec)
    index.add_encoded(enc, ids=list(range(7, 7 + len(enc))))
    scores = np.asarray(codec.score(q, enc), dtype=np.float32)
    ref = total_order_ranking(scores)
    assert len(np.unique(scores[ref[:300]])) < 300                  # exact ties near the top
    codes = np.asarray(enc.codes)[ref]
    rank_a = int(np.flatnonzero((codes == a).all(axis=1))[0])
    rank_b = int(np.flatnonzero((codes == b).all(axis=1))[0])
    assert rank_a < rank_b
    check_ranking(index, codec, enc, q, list(range(1, 40)) + [rank_a + 1, rank_b, 700])
    kept = fast_scan.quick_bound(q.values, cfg).survivors(index._store.pair_columns(), 10)
    assert kept is not None and len(kept) < len(enc) // 2           # the bound pruned
    assert set(ref[:10].tolist()) <= set(kept.tolist())


def test_a_bound_without_slack_fails(monkeypatch):
    """The tests above can fail: with the slack set to zero the inverted pair (or the
    quantization in general) breaks the ranking for some k."""
    cfg = CONFIGS[0]
    codec = ClarkHash(cfg, "numpy")
    enc, q, (a, b, _) = tied_codes(codec, 6000, seed=cfg.bits)
    index = FlatIndex(codec)
    index.add_encoded(enc, ids=list(range(7, 7 + len(enc))))
    real_init = table_bound.TableBound.__init__

    def no_slack(self, *args, **kw):
        real_init(self, *args, **kw)
        self.slack = 0
    monkeypatch.setattr(table_bound.TableBound, "__init__", no_slack)
    with pytest.raises(AssertionError):
        check_ranking(index, codec, enc, q, range(1, 60))


def near_identical_codes(codec, n, seed):
    """One code with a low bit or two flipped in one byte per row: every row nearly ties."""
    cfg = codec.config
    rng = np.random.default_rng(seed)
    one = np.asarray(codec.encode(rng.standard_normal((1, cfg.input_dim)).astype(np.float32)).codes)
    codes = np.repeat(one, n, axis=0)
    codes[np.arange(n), rng.integers(0, cfg.code_bytes, n)] ^= rng.integers(1, 4, n).astype(np.uint8)
    return EncodedBatch(cfg, codes), codec.sketch_query(rng.standard_normal(cfg.input_dim))


@pytest.mark.parametrize("data", ["near_identical", "tied"])
def test_many_survivors_pass_the_float32_bound(monkeypatch, data):
    """More than REFINE_ABOVE rows survive the quick pass (all of them when every row nearly
    ties; a subset of the tied codes with a small REFINE_ABOVE): the float32 pair-table bound
    narrows them, and the ranking is still exact."""
    cfg = CONFIGS[0]
    codec = ClarkHash(cfg, "numpy")
    n = 4000
    if data == "tied":
        enc, q, _ = tied_codes(codec, n, seed=5)
        monkeypatch.setattr(flat, "REFINE_ABOVE", 10)
    else:
        enc, q = near_identical_codes(codec, n, seed=9)
        monkeypatch.setattr(flat, "REFINE_ABOVE", 100)
    index = FlatIndex(codec)
    index.add_encoded(enc, ids=list(range(7, 7 + n)))
    calls = []
    real = fast_scan.candidate_rows
    monkeypatch.setattr(fast_scan, "candidate_rows",
                        lambda approx, *a, **kw: calls.append(len(approx)) or real(approx, *a, **kw))
    check_ranking(index, codec, enc, q, (1, 10, 25))
    assert calls and all(flat.REFINE_ABOVE < c <= n for c in calls)
    if data == "tied":
        assert max(calls) < n // 2                     # the refinement saw a strict subset


def test_tables_that_cannot_prune_use_the_float32_bound():
    """A zero query sketch gives flat tables (no integer bound): the float32 path ranks
    every row (all scores tie: insertion order); so does k >= the number of rows."""
    cfg = ClarkHashConfig(8, sketch_dim=8, bits=4)
    codec = ClarkHash(cfg, "numpy")
    x = clustered(300, 8, seed=2)
    enc = codec.encode(x)
    index = FlatIndex(codec)
    index.add_encoded(enc, ids=list(range(7, 307)))
    q = codec.sketch_query(x[3])
    zero = QuerySketch(cfg, np.zeros(8, dtype=np.float32), q.norm)
    assert fast_scan.quick_bound(zero.values, cfg).pairs is None
    check_ranking(index, codec, enc, zero, (1, 5, 299, 300, 301))
    check_ranking(index, codec, enc, q, (1, 5, 299, 300, 301))


@pytest.mark.parametrize("scale", [2.0**-120, 2.0**-140, 2.0**100])
def test_tiny_and_huge_queries(scale):
    """Sketch values near the subnormal range (products and sums round absolutely, not
    relatively) or large: still exactly the brute-force ranking; a query whose
    accumulators could overflow float32 gets no integer bound."""
    cfg = CONFIGS[0]
    codec = ClarkHash(cfg, "numpy")
    enc, q, _ = tied_codes(codec, 3000, seed=11)
    index = FlatIndex(codec)
    index.add_encoded(enc, ids=list(range(7, 3007)))
    scaled = QuerySketch(cfg, (q.values * np.float32(scale)).astype(np.float32), q.norm)
    check_ranking(index, codec, enc, scaled, (1, 10, 50))
    huge = QuerySketch(cfg, np.full(cfg.sketch_dim, 2.0**120, dtype=np.float32), 1.0)
    assert fast_scan.quick_bound(huge.values, cfg).pairs is None


def test_wide_codes_accumulate_in_uint32():
    """Past 258 byte pairs the quick scores may exceed uint16: they are uint32. A query of
    equal magnitudes gives every byte the full 127 levels, so the best codes (each byte
    at its largest weight, and near-ties of them) score above 65,535; the bound still
    holds for every row and the ranking is brute force's."""
    cfg = ClarkHashConfig(64, sketch_dim=1120, bits=4)                # 560 bytes, 280 pairs
    codec = ClarkHash(cfg, "numpy")
    rng = np.random.default_rng(12)
    q = QuerySketch(cfg, rng.choice([-1.0, 1.0], cfg.sketch_dim).astype(np.float32), 1.0)
    best = fast_scan.byte_weights(q.values, cfg)[:cfg.code_bytes].argmax(axis=1).astype(np.uint8)
    codes = rng.integers(0, 256, (3000, cfg.code_bytes), dtype=np.uint8)
    near = single_byte_changes(cfg, best)
    where = rng.choice(3000, 60, replace=False)
    codes[where[:3]] = best
    codes[where[3:]] = near[rng.choice(len(near), 57, replace=False)]
    enc = EncodedBatch(cfg, codes)
    bound = fast_scan.quick_bound(q.values, cfg)
    cols = CodeColumns(cfg.code_bytes, 2)
    cols.append(codes)
    assert bound.sums(cols.pair_columns()).dtype == np.uint32
    quick = quick_scores(bound, codes)
    assert quick.max() > 0xFFFF
    exact = np.asarray(codec.score(q, enc), dtype=np.float64) * cfg.sketch_dim
    off = exact - fast_scan.const_term(q.values, cfg) - bound.base - bound.step * quick
    assert np.all(off >= bound.low) and np.all(off <= bound.high)
    index = FlatIndex(codec)
    index.add_encoded(enc, ids=list(range(7, 3007)))
    check_ranking(index, codec, enc, q, (1, 10, 40))
    kept = bound.survivors(cols.pair_columns(), 10)
    assert kept is not None and len(kept) < 300
