"""FlatIndex: exact crate ranking (ties by insertion order), ids, deletes."""

import numpy as np
import pytest

from clark_hash_web import (ClarkHash, ClarkHashConfig, DuplicateIdError, EncodedBatch,
                            FlatIndex, InvalidInputError)


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

    from clark_hash_web import fast_scan

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
    from clark_hash_web.norm_channel import decode_table

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
