"""E8 float-query scans pinned to brute force: the integer pair-table prefilter
(:mod:`clark_hash_web.index.table_bound`) on built ties and near-ties large enough to prune,
its bound checked row by row, and the cases where it cannot prune."""

from __future__ import annotations

import numpy as np
import pytest

from binary_helpers import clustered
from clark_hash_web.codecs.base import EncodedBatch
from clark_hash_web.codecs.binary import BinaryQuery
from clark_hash_web.codecs.e8 import N_ROOTS, E8Codes, E8Config
from clark_hash_web.index import table_bound
from clark_hash_web.index.binary import BinaryIndex
from clark_hash_web.index.code_columns import CodeColumns


def total_order_ranking(scores):
    """Row numbers by descending float32 (IEEE total order), ties by row: the reference rule."""
    bits = np.asarray(scores, dtype=np.float32).view(np.uint32).astype(np.int64)
    key = np.where(bits < 0x80000000, bits, -(bits & 0x7FFFFFFF) - 1)
    rows = np.arange(len(key))
    return rows[np.lexsort((rows, -key))]


def quick_order_inversion(tables, top, step, sizes=None):
    """Two changes of the code ``top``: ``a`` gives up less exact score than ``b`` but
    more quick-score levels (floor quantization with ``step``), so ranking by the quick
    score would put ``b`` first; returns ``[a, b]`` and the level gap.

    Floor quantization is monotone inside a block, so the inversion pairs blocks: in
    block ``x`` ``a`` takes a root that costs less score but more levels than the root
    ``b`` takes in block ``y``. The gap adds up over the pairs, so only a slack near
    its full size keeps ``a``. ``sizes[b]``: the valid values of byte ``b`` (E8: the
    ``N_ROOTS`` root numbers).
    """
    lo = tables.astype(np.float64).min(axis=1, keepdims=True)
    t = tables.astype(np.float64)
    g = np.floor((t - lo) / step)
    sizes = [N_ROOTS] * len(t) if sizes is None else sizes
    cands = []                                   # per block: the 12 cheapest changes
    for blk in range(len(t)):
        loss = t[blk, top[blk]] - t[blk, :sizes[blk]]
        levels = g[blk, top[blk]] - g[blk, :sizes[blk]]
        roots = np.flatnonzero(loss > 0)
        roots = roots[np.argsort(loss[roots], kind="stable")[:12]]
        cands.append((loss[roots], levels[roots], roots))
    a, b = top.copy(), top.copy()
    gap, used = 0, set()
    for x in range(len(t)):
        for y in range(len(t)):
            if x == y or x in used or y in used or not len(cands[x][2]) or not len(cands[y][2]):
                continue
            lx, vx, rx = cands[x]
            ly, vy, ry = cands[y]
            ok = (vx[:, None] > vy[None, :]) & (lx[:, None] < ly[None, :])
            if ok.any():
                i, j = np.unravel_index(np.argmax(np.where(ok, vx[:, None] - vy[None, :], -1)),
                                        ok.shape)
                a[x], b[y] = rx[i], ry[j]
                gap += int(vx[i] - vy[j])
                used |= {x, y}
    return [a, b], gap


def tied_e8_codes(codec, n, seed):
    """Codes with built ties and near-ties around a query whose coordinates repeat.

    The query has zeros and repeated values, so many roots score exactly alike in a
    block (exact ties between different codes). Near the top: the query's own code
    three times, a pair of one-block changes whose quick-score order is the reverse
    of their exact order (twice each: the cut at k = 4..7 needs the slack), the code
    with one block swapped for the root of next-lower table value (near-ties), the
    same with two swaps, and exact duplicates of a few rows.
    """
    rng = np.random.default_rng(seed)
    d = codec.config.input_dim
    x = clustered(n, d, seed=seed)
    q = x[0].copy()
    q[: d // 8] = 0.0
    q[d // 8: d // 4] = q[d // 2]
    codes = np.asarray(codec.encode(x).codes).copy()
    query = codec.sketch_query(q)
    full = codec._tables_numpy(query.values)
    tables = full[:, :N_ROOTS]
    top = np.frombuffer(query.code, dtype=np.uint8).copy()
    inverted, gap = quick_order_inversion(full, top, table_bound.TableBound(full).step)
    assert gap >= 1
    near = []
    for b in range(codec.code_bytes):
        order = np.argsort(-tables[b], kind="stable")
        pos = int(np.flatnonzero(order == top[b])[0])
        for step in (1, 2):
            if pos + step < N_ROOTS:
                c = top.copy()
                c[b] = order[pos + step]
                near.append(c)
    for t in range(len(near) - 1):                       # two swaps
        c = near[t].copy()
        c[near[t + 1] != top] = near[t + 1][near[t + 1] != top]
        near.append(c)
    first = np.array([top, top, top] + inverted + inverted)
    where = np.sort(rng.choice(n, size=len(first) + len(near), replace=False))
    codes[where[:len(first)]] = first
    codes[where[len(first):]] = np.array(near)
    dup = rng.choice(np.setdiff1d(np.arange(n), where), size=200, replace=False)
    codes[dup] = codes[rng.integers(0, 5, size=200)]
    return EncodedBatch(codec.config, codes), query, inverted


@pytest.mark.parametrize("d,chunk", [(64, None), (40, 1000), (384, 700)])
def test_e8_ranking_equals_brute_force_with_ties_and_near_ties(monkeypatch, d, chunk):
    """d=40: an odd number of code bytes; small chunks: several quick-pass steps."""
    if chunk:
        monkeypatch.setattr(table_bound, "CHUNK", chunk)
        monkeypatch.setattr(table_bound, "HEAD_ROWS", chunk)
    codec = E8Codes(E8Config(d), "numpy")
    enc, q, (a, b) = tied_e8_codes(codec, 6000, seed=d)
    index = BinaryIndex(codec)
    index.add_encoded(enc, ids=np.arange(7, 7 + len(enc)))
    scores = np.asarray(codec.score(q, enc), dtype=np.float32)
    ref = total_order_ranking(scores)
    assert len(np.unique(scores[ref[:200]])) < 200            # ties near the top
    codes = np.asarray(enc.codes)[ref]
    rank_a = int(np.flatnonzero((codes == a).all(axis=1))[0])
    rank_b = int(np.flatnonzero((codes == b).all(axis=1))[0])
    assert rank_a < rank_b                                    # a scores higher: the cut
    for k in list(range(1, 60)) + [rank_a + 1, rank_b, 500]:  # between them needs slack
        ids, got = index.search(q, k)
        assert ids == (ref[:k] + 7).tolist()
        assert got.tobytes() == scores[ref[:k]].tobytes()
    # the prefilter pruned: the test exercises the bound, not a full scan
    bound = table_bound.TableBound(codec._tables_numpy(q.values))
    kept = bound.survivors(index._store.pair_columns(), 10)
    assert kept is not None and len(kept) < len(enc) // 2
    assert set(ref[:10]) <= set(kept.tolist())


def test_e8_exact_ties_keep_insertion_order_across_the_cut():
    """k cuts through a group of identical best codes: the earliest rows win."""
    codec = E8Codes(E8Config(64), "numpy")
    x = clustered(3000, 64, seed=3)
    codes = np.asarray(codec.encode(x).codes).copy()
    q = codec.sketch_query(x[7])
    best = np.frombuffer(q.code, dtype=np.uint8)
    codes[np.random.default_rng(0).choice(3000, 30, replace=False)] = best
    where = np.flatnonzero((codes == best).all(axis=1))
    assert len(where) >= 30
    index = BinaryIndex(codec)
    index.add_encoded(EncodedBatch(codec.config, codes))
    for k in (1, 12, 30, len(where)):
        ids, _ = index.search(q, k)
        assert ids == where[:k].tolist()


def test_table_bound_holds_for_every_row():
    """Every exact float32 score lies in [base + step Q + low, base + step Q + high], and
    the rows made of the bytes with the largest (smallest) quantization remainder reach
    the top (bottom) of that interval: the bound is tight, not just safe."""
    codec = E8Codes(E8Config(48), "numpy")
    x = clustered(2000, 48, seed=4)
    codes = np.asarray(codec.encode(x).codes)
    for qi in (0, 1, 2):
        q = codec.sketch_query(x[qi] * np.float32(3.0 ** qi))
        t = codec._tables_numpy(q.values)
        bound = table_bound.TableBound(t)
        tv = t[:, :N_ROOTS].astype(np.float64)
        lo = t.astype(np.float64).min(axis=1, keepdims=True)
        rem = tv - lo - bound.step * np.floor((tv - lo) / bound.step)
        extremes = np.stack([rem.argmax(axis=1), rem.argmin(axis=1)]).astype(np.uint8)
        rows = np.concatenate([codes, extremes])
        cols = CodeColumns(codec.code_bytes, 2)
        cols.append(rows)
        quick = bound.sums(cols.pair_columns()).astype(np.float64)
        exact = np.asarray(codec.score(q, EncodedBatch(codec.config, rows)), dtype=np.float64)
        off = exact - bound.base - bound.step * quick
        width = bound.high - bound.low
        assert np.all(off >= bound.low) and np.all(off <= bound.high)
        assert off[-2] >= bound.high - 0.05 * width and off[-1] <= bound.low + 0.05 * width
        assert bound.slack * bound.step >= width


def test_e8_scan_without_pruning_is_still_exact():
    """Tables that cannot prune (all zero, or not finite) fall back to the full scan;
    so does k >= the number of rows."""
    codec = E8Codes(E8Config(32), "numpy")
    x = clustered(500, 32, seed=8)
    index = BinaryIndex(codec)
    index.add(x)
    enc = codec.encode(x)
    zero = BinaryQuery(codec.config, np.zeros(32, dtype=np.float32), bytes(4))
    assert table_bound.TableBound(codec._tables_numpy(zero.values)).pairs is None
    ids, scores = index.search(zero, 20)
    assert ids == list(range(20)) and not scores.any()
    bad = np.ones(32, dtype=np.float32)
    bad[3] = np.inf
    with np.errstate(invalid="ignore"):                   # inf * 0 in the tables
        assert table_bound.TableBound(codec._tables_numpy(bad)).pairs is None
    q = codec.sketch_query(x[9])
    scores = np.asarray(codec.score(q, enc), dtype=np.float32)
    ref = total_order_ranking(scores)
    for k in (499, 500, 600):
        ids, got = index.search(q, k)
        assert ids == ref[:k].tolist() and got.tobytes() == scores[ref[:k]].tobytes()


def test_exact_scores_equal_the_pair_table_scan():
    """Scores of selected rows read from the byte tables are bit-identical to codec.score."""
    codec = E8Codes(E8Config(40), "numpy")
    x = clustered(800, 40, seed=10)
    enc = codec.encode(x)
    cols = CodeColumns(codec.code_bytes, 2)
    cols.append(np.asarray(enc.codes))
    q = codec.sketch_query(x[1])
    rows = np.array([799, 0, 5, 5, 400])
    got = table_bound.exact_scores(codec._tables_numpy(q.values), cols.pair_columns(), rows)
    assert got.tobytes() == np.asarray(codec.score(q, enc), dtype=np.float32)[rows].tobytes()
