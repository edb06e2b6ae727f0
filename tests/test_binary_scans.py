"""BinaryIndex fast scans pinned to brute force: Hamming top-k (integer distances) and the
bit-plane prefilter of float queries, on built ties and near-ties large enough to prune."""

from __future__ import annotations

import numpy as np
import pytest

from binary_helpers import clustered, make_codec
from clark_hash_web.codecs import bitpack
from clark_hash_web.codecs.base import EncodedBatch
from clark_hash_web.codecs.e8 import E8Codes, E8Config
from clark_hash_web.index import bit_scan
from clark_hash_web.index.binary import BinaryIndex
from clark_hash_web.index.code_columns import CodeColumns


def total_order_ranking(scores, rows=None):
    """Row numbers by descending float32 (IEEE total order), ties by row: the reference rule."""
    bits = np.asarray(scores, dtype=np.float32).view(np.uint32).astype(np.int64)
    key = np.where(bits < 0x80000000, bits, -(bits & 0x7FFFFFFF) - 1)
    rows = np.arange(len(key)) if rows is None else np.asarray(rows)
    return rows[np.lexsort((rows, -key))]


def tied_codes(codec, n, seed):
    """Codes with built ties and near-ties around a query.

    Duplicates of a few base codes (exact ties), and codes one or two bit flips
    away from the query's own code (integer-distance ties; float near-ties:
    flipping bit a on and bit b off changes the score by 2(|q_a| - |q_b|)).
    """
    rng = np.random.default_rng(seed)
    d = codec.config.input_dim
    x = clustered(n, d, seed=seed)
    codes = np.asarray(codec.encode(x).codes).copy()
    q = codec.sketch_query(x[0])
    qcode = np.frombuffer(q.code, dtype=np.uint8)
    m = codec.config.n_bits
    order = np.argsort(np.abs(np.asarray(q.values, dtype=np.float64)), kind="stable")
    near = []
    for t in range(min(40, m - 1)):                       # pairs of nearly equal |q|
        a, b = order[t], order[t + 1]
        c = qcode.copy()
        c[a // 8] ^= 1 << (a % 8)
        c[b // 8] ^= 1 << (b % 8)
        near.append(c)
    for a in order[:40]:                                  # single flips: distance 1
        c = qcode.copy()
        c[a // 8] ^= 1 << (a % 8)
        near.append(c)
    near = np.array(near)
    pos = rng.choice(n, size=len(near) * 3, replace=False)
    codes[pos] = np.concatenate([near, near, near])       # each near code three times
    dup = rng.choice(n, size=200, replace=False)
    codes[dup] = codes[rng.integers(0, 5, size=200)]      # exact duplicates of rows 0..4
    return EncodedBatch(codec.config, codes), q


@pytest.mark.parametrize("name,d,m", [("sign", 64, 64), ("sign_hadamard", 48, 64),
                                      ("lsh", 32, 100), ("itq", 40, 40)])
def test_hamming_top_k_and_distances_equal_brute_force(name, d, m):
    codec = make_codec(name, d, m, "numpy")
    enc, q = tied_codes(codec, 6000, seed=len(name) + m)
    index = BinaryIndex(codec)
    index.add_encoded(enc, ids=np.arange(10, 10 + len(enc)))
    dist = np.asarray(codec.hamming(q, enc))
    ref = np.lexsort((np.arange(len(dist)), dist))
    for k in (1, 3, 10, 57, 200, 6000, 7000):
        ids, got = index.search_hamming(q, k)
        want = ref[:k]
        assert ids == (want + 10).tolist()
        assert got.dtype == np.int64 and got.tolist() == dist[want].tolist()
        ids2, scores = index.search(q, k, scoring="hamming")
        assert ids2 == ids
        assert scores.tobytes() == bitpack.hamming_score_numpy(dist[want], m).tobytes()
    for t in (0, 1, 2, 9):
        ids, got = index.search_hamming(q, 50, max_hamming=t)
        want = [r for r in ref if dist[r] <= t][:50]
        assert ids == [r + 10 for r in want] and all(h <= t for h in got)


@pytest.mark.parametrize("name,d,m", [("sign", 64, 64), ("sign_hadamard", 48, 64),
                                      ("lsh", 32, 100), ("itq", 40, 40)])
def test_float_query_ranking_equals_brute_force_with_ties_and_near_ties(name, d, m):
    codec = make_codec(name, d, m, "numpy")
    enc, q = tied_codes(codec, 6000, seed=m)
    index = BinaryIndex(codec)
    index.add_encoded(enc)
    scores = np.asarray(codec.score(q, enc), dtype=np.float32)
    ref = total_order_ranking(scores)
    for k in (1, 5, 10, 41, 121, 500):
        ids, got = index.search(q, k)
        assert ids == ref[:k].tolist()
        assert got.tobytes() == scores[ref[:k]].tobytes()
    # the prefilter pruned: the test exercises the bound, not a full scan
    bound = bit_scan.PlaneBound(q.values, q.code, index._store.words,
                                (codec.config.code_bytes + 1) // 2, 4)
    assert len(bound.survivors(index._store.columns(), 10)) < len(enc) // 2


def test_float_query_exact_ties_keep_insertion_order_across_the_cut():
    """k cuts through a group of identical codes: the earliest rows win."""
    codec = make_codec("sign", 64, 64, "numpy")
    x = clustered(3000, 64, seed=3)
    codes = np.asarray(codec.encode(x).codes).copy()
    q = codec.sketch_query(x[7])
    best = np.frombuffer(q.code, dtype=np.uint8)
    where = np.sort(np.random.default_rng(0).choice(3000, 30, replace=False))
    codes[where] = best
    where = np.flatnonzero((codes == best).all(axis=1))     # row 7 itself is one of them
    assert len(where) >= 30
    index = BinaryIndex(codec)
    index.add_encoded(EncodedBatch(codec.config, codes))
    for k in (1, 12, 30, 31):
        ids, _ = index.search(q, k)
        assert ids == where[:k].tolist()


def test_plane_bound_holds_for_every_row():
    """The integer sums bound every exact float32 score (checked row by row), including
    the two rows where every quantization error has the same sign (the bound's extremes:
    the query's code with every over- resp. under-estimated coordinate flipped), and the
    slack covers the full gap between those two extremes (not half of it)."""
    codec = make_codec("lsh", 32, 96, "numpy")
    enc, q = tied_codes(codec, 3000, seed=1)
    a = np.abs(np.asarray(q.values, dtype=np.float64))
    qbits = np.unpackbits(np.frombuffer(q.code, dtype=np.uint8), bitorder="little")[:96]
    for bits in (2, 3, 4, 8):
        pb = bit_scan.PlaneBound(q.values, q.code, 2, 6, bits)
        s = pb.scale
        assert np.all(pb.levels == np.clip(np.floor(a / s + 0.5), 0, (1 << bits) - 1))
        e = a - s * pb.levels
        extremes = [np.packbits(qbits ^ (e < 0), bitorder="little"),
                    np.packbits(qbits ^ (e > 0), bitorder="little")]
        codes = np.concatenate([np.asarray(enc.codes), np.array(extremes)])
        batch = EncodedBatch(codec.config, codes)
        cols = CodeColumns(codec.config.code_bytes)
        cols.append(codes)
        exact = np.asarray(codec.score(q, batch), dtype=np.float64)
        sums = pb.sums(cols.columns()).astype(np.float64)
        approx = a.sum() - 2 * s * sums
        tol = 1e-5 * a.sum()
        assert np.all(exact >= approx - 2 * pb.e_plus - tol)
        assert np.all(exact <= approx - 2 * pb.e_minus + tol)
        lo, hi = exact[-2] - approx[-2], exact[-1] - approx[-1]
        assert lo == pytest.approx(-2 * pb.e_minus, abs=tol)
        assert hi == pytest.approx(-2 * pb.e_plus, abs=tol)
        # the under-estimated extreme beats the over-estimated one by this much of I:
        assert pb.slack * s >= (lo - hi) / 2 > 0.6 * (pb.slack - 1) * s
        assert np.all(sums >= 0)


@pytest.mark.parametrize("n_under,n_exact", [(4, 8), (8, 5)])
def test_plane_bound_prunes_no_row_at_the_opposite_ends_of_the_error_interval(
        monkeypatch, n_under, n_exact):
    """A row whose code flips the under-estimated coordinates (sum of errors E-) beats k rows
    flipping the over-estimated ones (E+) while its I exceeds theirs by more than
    (E+ - E-) / (2 s): a half-width slack would drop it from the top k. Its score sits at
    its upper bound ``A - 2 s I - 2 E-``, just above the k-th score (the probe cut must
    use the whole ``-2 E-``; with (8, 5) half of it would drop the row)."""
    from clark_hash_web.codecs.binary import BinaryQuery
    from clark_hash_web.index import binary

    monkeypatch.setattr(bit_scan.PlaneBound, "SCALES", 1)     # the scale max|q| / 7
    codec = make_codec("sign", 64, 64, "numpy")
    s0 = 1.0 / 7
    v = np.zeros(64, dtype=np.float32)
    v[0] = 7 * s0                      # max |q| on a level: scale s0 for 3 planes
    over = np.arange(1, 41)
    under = np.arange(41, 41 + n_under)
    exact = np.arange(41 + n_under, 41 + n_under + n_exact)
    v[over] = 0.45 * s0                # level 0, error +0.45 s0
    v[under] = 1.55 * s0               # level 2, error -0.45 s0
    v[exact] = s0                      # level 1, error 0
    code = np.packbits(v > 0, bitorder="little").tobytes()
    q = BinaryQuery(codec.config, v, code)
    z = np.unpackbits(np.frombuffer(code, dtype=np.uint8), bitorder="little")

    def flipped(dims):
        b = z.copy()
        b[dims] ^= 1
        return np.packbits(b, bitorder="little")

    codes = np.stack([flipped(over)] * 10 + [flipped(np.concatenate([under, exact]))])
    enc = EncodedBatch(codec.config, codes)
    pb = bit_scan.PlaneBound(q.values, q.code, 1, 4, 3)
    assert pb.scale == pytest.approx(s0) and pb.e_minus < 0 < pb.e_plus
    width = (pb.e_plus - pb.e_minus) / pb.scale
    assert width / 2 + 2 < 2 * n_under + n_exact < width    # I of the last row minus the others
    scores = np.asarray(codec.score(q, enc), dtype=np.float32)
    assert scores[10] > scores[0]
    monkeypatch.setattr(binary, "PLANE_STAGES", (3,))
    index = BinaryIndex(codec)
    index.add_encoded(enc)
    ids, got = index.search(q, 10)
    assert ids == [10] + list(range(9))
    assert got.tobytes() == scores[[10] + list(range(9))].tobytes()


def test_prefiltered_float_search_and_empty_index():
    codec = make_codec("sign_hadamard", 32, 32, "numpy")
    index = BinaryIndex(codec)
    x = clustered(500, 32, seed=9)
    ids, scores = index.search(x[0], 5)
    assert ids == [] and len(scores) == 0
    assert index.search_hamming(x[0], 5)[0] == []
    index.add(x)
    enc = codec.encode(x)
    q = codec.sketch_query(x[3])
    cand = index.hamming_candidates(q, candidates=80)
    scores = np.asarray(codec.score(q, enc), dtype=np.float32)
    want = total_order_ranking(scores[cand], cand)[:10]
    ids, got = index.search(q, 10, candidates=80)
    assert ids == want.tolist() and got.tobytes() == scores[want].tobytes()


def test_e8_search_equals_brute_force_with_duplicates():
    codec = E8Codes(E8Config(40), "numpy")
    x = clustered(2000, 40, seed=2)
    x[100:400] = x[:300:1]                                  # duplicates
    index = BinaryIndex(codec)
    index.add(x)
    enc = codec.encode(x)
    for qi in (0, 5, 150):
        q = codec.sketch_query(x[qi])
        scores = np.asarray(codec.score(q, enc), dtype=np.float32)
        ref = total_order_ranking(scores)
        ids, got = index.search(q, 25)
        assert ids == ref[:25].tolist() and got.tobytes() == scores[ref[:25]].tobytes()


@pytest.mark.parametrize("code_bytes,word_bytes", [(48, 8), (5, 8), (13, 8), (48, 2), (7, 2)])
def test_code_columns_round_trip_growth_and_keep(code_bytes, word_bytes):
    rng = np.random.default_rng(code_bytes)
    codes = rng.integers(0, 256, size=(3000, code_bytes), dtype=np.uint8)
    cols = CodeColumns(code_bytes, word_bytes)
    for s, e in ((0, 1), (1, 1), (1, 700), (700, 2100), (2100, 3000)):
        cols.append(codes[s:e])
    assert len(cols) == 3000 and cols.rows().tobytes() == codes.tobytes()
    assert cols.rows([5, 0, 2999]).tobytes() == codes[[5, 0, 2999]].tobytes()
    pairs = bitpack.u16_columns(codes)
    for p, col in enumerate(cols.pair_columns()):
        assert np.array_equal(col, pairs[p])
    keep = np.flatnonzero(rng.random(3000) < 0.5)
    cols.keep(keep)
    assert cols.rows().tobytes() == codes[keep].tobytes()
    cols.append(codes[:3])
    assert cols.rows().tobytes() == np.concatenate([codes[keep], codes[:3]]).tobytes()
    with pytest.raises(ValueError):
        cols.append(codes[:, :code_bytes - 1] if code_bytes > 1 else codes[:, :0])


def test_smallest_uses_insertion_order_for_ties():
    v = np.array([3, 1, 2, 1, 0, 3, 1, 2], dtype=np.uint16)
    assert bit_scan.smallest(v, 3).tolist() == [4, 1, 3]
    assert bit_scan.smallest(v, 5).tolist() == [4, 1, 3, 6, 2]
    assert bit_scan.smallest(v, 20).tolist() == [4, 1, 3, 6, 2, 7, 0, 5]
    assert bit_scan.smallest(v, 0).tolist() == []


def test_top_scores_uses_the_total_order_of_float32():
    from clark_hash_web.index.binary import top_scores

    s = np.array([-0.0, 0.0, -0.0, 1.0, -1.0, 0.0, np.float32(1e-45)], dtype=np.float32)
    assert top_scores(s, 7).tolist() == total_order_ranking(s).tolist() == [3, 6, 1, 5, 0, 2, 4]
    for k in range(8):
        assert top_scores(s, k).tolist() == total_order_ranking(s)[:k].tolist()


def test_search_hamming_is_the_same_on_both_backends():
    x = clustered(400, 32, seed=12)
    x = np.concatenate([x, x[:50]])
    out = []
    for backend in ("numpy", "python"):
        codec = make_codec("lsh", 32, 48, backend)
        index = BinaryIndex(codec)
        index.add(x if backend == "numpy" else x.tolist(), ids=[f"r{i}" for i in range(450)])
        out.append([index.search_hamming(x[i] if backend == "numpy" else x[i].tolist(), 30,
                                         max_hamming=m) for i, m in ((0, None), (3, 6))])
    for (ia, da), (ib, db) in zip(*out):
        assert ia == ib and list(map(int, da)) == list(db) and isinstance(db, list)
    with pytest.raises(Exception, match="Hamming"):
        BinaryIndex(E8Codes(E8Config(16), "numpy")).search_hamming(np.ones(16), 3)


@pytest.mark.parametrize("stages", [(2,), (3, 5, 8), (1, 2, 3, 4)])
def test_every_prefilter_stage_keeps_the_exact_ranking(monkeypatch, stages):
    """All passes run (REFINE_ABOVE = 0): each stage's survivors still hold the exact top k."""
    from clark_hash_web.index import binary

    monkeypatch.setattr(binary, "PLANE_STAGES", stages)
    monkeypatch.setattr(binary, "REFINE_ABOVE", 0)
    codec = make_codec("itq", 40, 40, "numpy")
    enc, q = tied_codes(codec, 5000, seed=21)
    index = BinaryIndex(codec)
    index.add_encoded(enc)
    scores = np.asarray(codec.score(q, enc), dtype=np.float32)
    ref = total_order_ranking(scores)
    for k in (1, 10, 121):
        ids, got = index.search(q, k)
        assert ids == ref[:k].tolist() and got.tobytes() == scores[ref[:k]].tobytes()



# -- the scan kernels against numpy brute force (several word counts, chunk and head sizes) ------
def _bits(codes):
    return np.unpackbits(np.asarray(codes, dtype=np.uint8), axis=1, bitorder="little")


@pytest.mark.parametrize("code_bytes", [1, 8, 13, 16, 24, 33, 48, 56])
def test_hamming_distances_and_plane_sums_equal_brute_force(monkeypatch, code_bytes):
    """Word counts summed three words at a time in uint8 (W = 1 .. 7 words), chunked."""
    monkeypatch.setattr(bit_scan, "CHUNK", 700)
    rng = np.random.default_rng(code_bytes)
    codes = rng.integers(0, 256, size=(2500, code_bytes), dtype=np.uint8)
    codes[:300] = 255                          # every bit set: the largest counts
    cols = CodeColumns(code_bytes)
    cols.append(codes)
    q = rng.integers(0, 256, size=code_bytes, dtype=np.uint8)
    x = _bits(codes) ^ _bits(q[None])
    qw = bit_scan.query_words(q.tobytes(), cols.words)
    got = bit_scan.hamming_distances(cols.columns(), qw, 8 * code_bytes)
    assert got.tolist() == x.sum(axis=1).tolist()
    rows = rng.choice(2500, 900, replace=False)
    assert bit_scan.hamming_distances(cols.columns(), qw, 8 * code_bytes, rows).tolist() == \
        x[rows].sum(axis=1).tolist()
    signs = np.where(_bits(q[None])[0] == 1, 1.0, -1.0)    # the query code: signs of the values
    values = (np.abs(rng.standard_normal(8 * code_bytes)) * signs).astype(np.float32)
    for bits in (1, 3, 8):
        pb = bit_scan.PlaneBound(values, q.tobytes(), cols.words, (code_bytes + 1) // 2, bits)
        want = (x * pb.levels[None, :]).sum(axis=1)
        assert pb.sums(cols.columns()).tolist() == want.tolist()
        assert pb.sums(cols.columns(), rows).tolist() == want[rows].tolist()


@pytest.mark.parametrize("head", [1, 7, 64, 5000])
def test_smallest_and_at_most_kth_equal_a_sort_with_ties(monkeypatch, head):
    """The first-block bound (``HEAD`` rows) over values with many ties, cuts through ties."""
    monkeypatch.setattr(bit_scan, "HEAD", head)
    rng = np.random.default_rng(head)
    for n, top in ((3000, 5), (3000, 400), (50, 3), (1, 0)):
        v = rng.integers(0, top + 1, size=n).astype(np.uint16)
        v[n // 2:] = np.maximum(v[n // 2:], top // 2)     # the far half is worse: head bound is loose
        ref = np.lexsort((np.arange(n), v))
        for k in (1, 2, 9, 10, 57, n - 1, n, n + 3):
            if k < 1:
                continue
            assert bit_scan.smallest(v, k).tolist() == ref[:k].tolist()
            if k <= n:
                kth = int(v[ref[k - 1]])
                for slack in (0, 1, 3):
                    cand, vals, got_kth = bit_scan.at_most_kth(v, k, slack)
                    assert got_kth == kth
                    assert cand.tolist() == np.flatnonzero(v <= kth + slack).tolist()
                    assert vals.tolist() == v[cand].tolist()


@pytest.mark.parametrize("chunk,head,probes", [(600, 64, 10), (256, 1, 1), (4096, 10_000, 500)])
@pytest.mark.parametrize("name,d,m", [("sign", 64, 64), ("lsh", 32, 100), ("itq", 40, 40)])
def test_chunked_probe_cut_keeps_the_exact_ranking(monkeypatch, chunk, head, probes, name, d, m):
    """The per-chunk cut from exactly scored probe rows (first from the head, then from all
    candidates): many chunks, a head bound far from the final one, probes = 1 .. 500."""
    monkeypatch.setattr(bit_scan, "CHUNK", chunk)
    monkeypatch.setattr(bit_scan, "HEAD", head)
    monkeypatch.setattr(bit_scan.PlaneBound, "PROBES", probes)
    codec = make_codec(name, d, m, "numpy")
    enc, q = tied_codes(codec, 6000, seed=m + chunk)
    index = BinaryIndex(codec)
    index.add_encoded(enc)
    scores = np.asarray(codec.score(q, enc), dtype=np.float32)
    ref = total_order_ranking(scores)
    for k in (1, 7, 10, 121, 600):
        ids, got = index.search(q, k)
        assert ids == ref[:k].tolist()
        assert got.tobytes() == scores[ref[:k]].tobytes()
    # the probe cut prunes more than the slack alone, and keeps the top k
    from clark_hash_web.index import table_bound

    tables = codec._tables_numpy(q.values)
    pairs = index._store.pair_columns()
    pb = bit_scan.PlaneBound(q.values, q.code, index._store.words, len(pairs), 3)
    cols = index._store.columns()
    tight = pb.survivors(cols, 10, None, lambda r: table_bound.exact_scores(tables, pairs, r))
    loose = pb.survivors(cols, 10)
    assert set(ref[:10]) <= set(tight.tolist()) and set(tight.tolist()) <= set(loose.tolist())
    assert len(tight) < len(enc) // 2


@pytest.mark.parametrize("chunk,head", [(512, 7), (1000, 1), (333, 2000)])
def test_chunked_hamming_search_with_a_loose_head_bound_equals_brute_force(monkeypatch, chunk, head):
    """Many chunks and a head block far from the nearest codes (its k-th distance is a loose
    bound), on built ties: ids and integer distances equal a sort by (distance, row)."""
    monkeypatch.setattr(bit_scan, "CHUNK", chunk)
    monkeypatch.setattr(bit_scan, "HEAD", head)
    codec = make_codec("lsh", 32, 100, "numpy")
    enc, q = tied_codes(codec, 6000, seed=chunk)
    codes = np.asarray(enc.codes).copy()
    dist = np.asarray(codec.hamming(q, enc))
    far = np.argsort(-dist, kind="stable")[:head]             # the farthest codes come first
    codes = np.concatenate([codes[far], np.delete(codes, far, axis=0)])
    enc = EncodedBatch(codec.config, codes)
    dist = np.asarray(codec.hamming(q, enc))
    ref = np.lexsort((np.arange(len(dist)), dist))
    index = BinaryIndex(codec)
    index.add_encoded(enc)
    for k in (1, 10, 57, 300):
        ids, got = index.search_hamming(q, k)
        assert ids == ref[:k].tolist() and got.tolist() == dist[ref[:k]].tolist()
