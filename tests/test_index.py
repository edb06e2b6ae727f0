"""FlatIndex: exact crate ranking (ties by insertion order), ids, deletes."""

import numpy as np
import pytest

from clark_hash_web import (ClarkHash, ClarkHashConfig, DuplicateIdError, EncodedBatch, FlatIndex,
                            InvalidInputError)


def brute_force(codec, enc, q, k):
    s = np.asarray(codec.score(q, enc), dtype=np.float32)
    bits = s.view(np.uint32).astype(np.int64)
    key = np.where(bits < 0x80000000, bits, -(bits & 0x7FFFFFFF) - 1)
    order = sorted(range(len(s)), key=lambda r: (-key[r], r))[:k]
    return order, s[order]


@pytest.mark.parametrize("cfg", [
    ClarkHashConfig(64, sketch_dim=32, bits=4),
    ClarkHashConfig(64, sketch_dim=40, bits=1),
    ClarkHashConfig(64, sketch_dim=23, bits=3, metric="dot"),
    ClarkHashConfig(64, sketch_dim=16, bits=8, metric="dot", norm_log2_min=-4, norm_log2_max=4),
], ids=["b4", "b1", "b3dot", "b8dot"])
def test_search_equals_brute_force(cfg, backend):
    rng = np.random.default_rng(cfg.bits)
    codec = ClarkHash(cfg, backend)
    base = rng.standard_normal((40, 64)).astype(np.float32)
    # many duplicates and scaled copies: exact score ties everywhere
    x = np.concatenate([base, base[:10], base[:10] * 3, base[:5] * -1])
    if cfg.metric == "dot":
        x *= (2.0 ** rng.uniform(-3, 3, (len(x), 1))).astype(np.float32)
    idx = FlatIndex(codec)
    idx.add(x)
    enc = codec.encode(x)
    for k in (1, 7, 30, len(x), len(x) + 10):
        for q in rng.standard_normal((4, 64)).astype(np.float32):
            qs = codec.sketch_query(q)
            ids, scores = idx.search_prepared(qs, k)
            exp_ids, exp_scores = brute_force(codec, enc, qs, k)
            assert ids == exp_ids
            assert np.asarray(scores, np.float32).tobytes() == exp_scores.tobytes()


def test_fast_scan_with_near_ties_numpy():
    """Codes differing in one low-weight bit: approximate scores nearly tie."""
    cfg = ClarkHashConfig(96, sketch_dim=96, bits=4)
    codec = ClarkHash(cfg, "numpy")
    rng = np.random.default_rng(9)
    one = np.asarray(codec.encode(rng.standard_normal((1, 96)).astype(np.float32)).codes)
    codes = np.repeat(one, 3000, axis=0)
    pos = rng.integers(0, 48, 3000)
    codes[np.arange(3000), pos] ^= rng.integers(1, 4, 3000).astype(np.uint8)
    enc = EncodedBatch(cfg, codes)
    idx = FlatIndex(codec)
    idx.add_encoded(enc)
    for _ in range(5):
        q = codec.sketch_query(rng.standard_normal(96).astype(np.float32))
        ids, scores = idx.search_prepared(q, 25)
        exp_ids, exp_scores = brute_force(codec, enc, q, 25)
        assert ids == exp_ids and scores.tobytes() == exp_scores.tobytes()


def test_ids_and_remove(backend):
    codec = ClarkHash(ClarkHashConfig(8, sketch_dim=8), backend)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 8)).astype(np.float32)
    idx = FlatIndex(codec)
    assert idx.add(x[:3]) == [0, 1, 2]
    assert idx.add(x[3:5]) == [3, 4]
    assert len(idx) == 5
    with pytest.raises(DuplicateIdError, match="already"):
        idx.add(x[:1], ids=[4])
    assert len(idx) == 5
    assert idx.remove([1, 3]) == 2
    assert idx.ids == [0, 2, 4] and len(idx) == 3
    ids, _ = idx.search(x[2], 3)
    assert ids[0] == 2 and sorted(ids) == [0, 2, 4]
    with pytest.raises(KeyError):
        idx.remove(1)
    assert idx.encoded().codes_bytes() == codec.encode(x[[0, 2, 4]]).codes_bytes()
    assert idx.add(x[5:6]) == [5]
    with pytest.raises(InvalidInputError, match="all be int or all be str"):
        idx.add(x[:1], ids=["s"])


def test_string_ids_and_duplicates_in_batch(backend):
    codec = ClarkHash(ClarkHashConfig(8, sketch_dim=8), backend)
    x = np.eye(8, dtype=np.float32)
    idx = FlatIndex(codec)
    with pytest.raises(DuplicateIdError, match="twice"):
        idx.add(x[:2], ids=["a", "a"])
    assert len(idx) == 0
    idx.add(x[:2], ids=["a", "b"])
    assert "a" in idx and idx.search(x[1], 1)[0] == ["b"]
    with pytest.raises(InvalidInputError, match="3 ids for 2"):
        idx.add(x[2:4], ids=["c", "d", "e"])


def test_skip_bad_rows_keeps_their_ids_out(backend):
    codec = ClarkHash(ClarkHashConfig(8, sketch_dim=8), backend)
    x = np.eye(8, dtype=np.float32)[:4].copy()
    x[1] = 0
    idx = FlatIndex(codec)
    assert idx.add(x, ids=["a", "b", "c", "d"], errors="skip") == ["a", "c", "d"]


def test_search_batch_and_k_edges(backend):
    codec = ClarkHash(ClarkHashConfig(8, sketch_dim=8), backend)
    x = np.eye(8, dtype=np.float32)
    idx = FlatIndex(codec)
    assert idx.search(x[0], 5)[0] == []
    idx.add(x)
    res = idx.search_batch(x[:3], 2)
    assert [r[0][0] for r in res] == [0, 1, 2]
    assert idx.search(x[0], 0)[0] == []
    with pytest.raises(InvalidInputError):
        idx.search(x[0], -1)


def _external_prefilter(index, plan, codes, norm_codes, decoded, k):
    """What the browser's JavaScript scan does, written in float64 Python."""
    import struct

    from clark_hash_web.index import fast_scan

    cb = index.config.code_bytes
    values = struct.unpack(f"<{len(plan['values']) // 4}f", plan["values"])
    tables, const = fast_scan.byte_tables(values, index.config)
    assert const == plan["const"]
    n, m = plan["count"], plan["m"]
    lower, upper = [], []
    for i in range(n):
        acc = const
        for j in range(cb):
            acc += tables[j * 256 + codes[i * cb + j]]
        scale = plan["queryNorm"] * decoded[norm_codes[i]] if plan["dot"] else 1.0
        approx = acc / m * scale
        err = 1.5 * (plan["errAcc"] / m * scale + abs(approx) * 4 * 2.0**-24 + 1e-45)
        lower.append(approx - err)
        upper.append(approx + err)
    tau = sorted(lower, reverse=True)[min(k, n) - 1]
    return [i for i in range(n) if upper[i] >= tau]


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_prefilter_plan_and_rank_rows(backend, metric):
    from clark_hash_web.codecs.norm_channel import decode_table

    cfg = ClarkHashConfig(32, sketch_dim=30, bits=3, metric=metric)
    codec = ClarkHash(cfg, backend)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 32)).astype(np.float32)
    x = np.concatenate([x, x[:50]])
    x *= (2.0 ** rng.uniform(-4, 4, (len(x), 1))).astype(np.float32)
    idx = FlatIndex(codec)
    idx.add(x)
    enc = idx.encoded()
    codes = enc.codes_bytes()
    ncodes = list(np.asarray(enc.norm_codes)) if metric == "dot" else None
    decoded = decode_table() if metric == "dot" else None
    for q in rng.standard_normal((3, 32)).astype(np.float32):
        qs = codec.sketch_query(q)
        plan = idx.prefilter_plan(qs)
        rows = _external_prefilter(idx, plan, codes, ncodes, decoded, 10)
        assert len(rows) < len(x)
        ids, scores = idx.rank_rows(qs, rows, 10)
        exp_ids, exp_scores = idx.search_prepared(qs, 10)
        assert ids == exp_ids
        assert np.asarray(scores, np.float32).tobytes() == np.asarray(exp_scores, np.float32).tobytes()
    with pytest.raises(InvalidInputError):
        idx.rank_rows(qs, [len(x)], 3)


@pytest.mark.parametrize("bits,metric", [(1, "cosine"), (2, "dot"), (3, "cosine"), (4, "cosine"),
                                         (4, "dot"), (5, "dot"), (8, "cosine")])
def test_python_score_of_few_rows_matches_full_score(bits, metric):
    """score(rows=...) with fewer rows than levels (the browser's rank path) == the full score."""
    cfg = ClarkHashConfig(48, sketch_dim=37, bits=bits, metric=metric)
    codec = ClarkHash(cfg, "python")
    rng = np.random.default_rng(bits)
    x = rng.standard_normal((60, 48)).astype(np.float32)
    x[30:40] = x[0]                                   # exact duplicates: equal scores
    x *= (2.0 ** rng.uniform(-3, 3, (len(x), 1))).astype(np.float32)
    enc = codec.encode(x)
    q = codec.sketch_query(rng.standard_normal(48).astype(np.float32))
    full = np.asarray(codec.score(q, enc), dtype=np.float32)
    impl = codec._impl
    for rows in ([], [5], [59, 0, 31, 30], list(range(0, 60, 7)), [3] * 4,
                 list(range(min(len(impl.t.deq) - 1, 60)))):
        got = impl.score(q.values, q.norm, enc.codes_bytes(), len(enc), enc.norm_codes, rows=rows)
        assert np.asarray(got, dtype=np.float32).tobytes() == full[rows].tobytes(), rows


def test_rank_rows_python_and_numpy_agree_on_small_candidate_sets():
    """rank_rows with a handful of candidates (near ties, k near the candidate count) on both backends."""
    cfg = ClarkHashConfig(32, sketch_dim=24, bits=4)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((80, 32)).astype(np.float32)
    x[40:50] = x[1] + rng.standard_normal((10, 32)).astype(np.float32) * np.float32(1e-6)
    indexes = {}
    for be in ("python", "numpy"):
        indexes[be] = FlatIndex(ClarkHash(cfg, be))
        indexes[be].add(x)
    q = x[1]
    for rows in ([1, 40, 41, 42], list(range(40, 50)) + [1], [7]):
        for k in (1, len(rows) - 1, len(rows), len(rows) + 3):
            if k < 1:
                continue
            got = {}
            for be, idx in indexes.items():
                ids, scores = idx.rank_rows(idx.codec.sketch_query(q), rows, k)
                got[be] = (ids, np.asarray(scores, np.float32).tobytes())
            assert got["python"] == got["numpy"], (rows, k)
            codec = indexes["python"].codec
            full = np.asarray(codec.score(codec.sketch_query(q), codec.encode(x)), dtype=np.float32)
            cand = sorted(rows)   # ties rank by insertion order, whatever order rows came in
            order, _ = brute_force(codec, codec.encode(x[cand]), codec.sketch_query(q), k)
            assert got["python"][0] == [cand[j] for j in order]     # ids are row numbers here
            assert got["python"][1] == full[[cand[j] for j in order]].tobytes()


@pytest.mark.parametrize("n", [1, 3, 256, 257])   # one np.add.accumulate up to SMALL_ROWS rows, a loop above
@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_numpy_score_of_few_rows_matches_python(n, metric):
    """Sequential float32 sums of the numpy backend == the python backend, signed zeros included."""
    from clark_hash_web.backends.numpy_backend import NumpyBackend
    from clark_hash_web.backends.python_backend import PythonBackend

    cfg = ClarkHashConfig(16, sketch_dim=12, bits=4, metric=metric)
    rng = np.random.default_rng(n)
    codes = rng.integers(0, 256, (n, cfg.code_bytes), dtype=np.uint8)
    codes[0] = 0xFF     # every level positive: with q = -0.0 every term is -0.0
    norms = rng.integers(0, 65536, n).astype(np.uint16) if metric == "dot" else None
    for q in (rng.standard_normal(12).astype(np.float32),
              np.zeros(12, np.float32),                      # every term +-0.0: the sum must be +0.0
              -np.zeros(12, np.float32),
              np.array([0.0] * 6 + [1e-3] * 6, np.float32)):
        want = PythonBackend(cfg).score(array_f(q), 1.5, codes.tobytes(), n,
                                        None if norms is None else norms.tolist())
        got = NumpyBackend(cfg).score(q, 1.5, codes, norms)
        assert np.asarray(got, np.float32).tobytes() == np.asarray(want, np.float32).tobytes()


def array_f(values):
    from array import array

    return array("f", [float(v) for v in values])


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_many_small_adds_and_removes_match_the_pure_python_index(metric):
    """The numpy index's growable columns (codes and norm codes) keep every row in order."""
    cfg = ClarkHashConfig(input_dim=24, sketch_dim=20, bits=3, metric=metric)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((700, 24)).astype(np.float32) * 3
    idx = {b: FlatIndex(ClarkHash(cfg, backend=b)) for b in ("numpy", "python")}
    for s in range(0, 700, 37):
        for index in idx.values():
            index.add(x[s:s + 37])
        if s % 111 == 0:
            for index in idx.values():
                index.remove([s + 1, s + 5])
    a, b = idx["numpy"], idx["python"]
    assert a.ids == b.ids and len(a) == len(b)
    assert a.encoded().codes_bytes() == b.encoded().codes_bytes()
    assert a.encoded().norm_codes_bytes() == b.encoded().norm_codes_bytes()
    for qi in (0, 333):
        ia, sa = a.search(x[qi], 15)
        ib, sb = b.search(x[qi].tolist(), 15)
        assert ia == ib and np.asarray(sa).tobytes() == np.asarray(sb, dtype=np.float32).tobytes()
