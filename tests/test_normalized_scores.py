"""Normalized (cosine) scores of format-2 learned-E8 heads: the row scales and query bias
of codecs/normalized_scores.py on both backends, their meaning, the flag in the config
bytes, and the index's pruned search against brute force."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from test_learned_e8 import anisotropic
from clark_hash_web.codecs import normalized_scores, registry
from clark_hash_web.codecs.base import EncodedBatch
from clark_hash_web.codecs.e8 import ROOTS
from clark_hash_web.codecs.learned_e8 import LearnedE8
from clark_hash_web.codecs.learned_e8_stages import StagedE8Config, rotate_numpy, train_staged_e8
from clark_hash_web.errors import ConfigError
from clark_hash_web.index.binary import BinaryIndex
from clark_hash_web.index import table_bound


@pytest.fixture(scope="module")
def data():
    return anisotropic(6000, 64, seed=11)


@pytest.fixture(scope="module")
def head(data):
    return train_staged_e8(data[:3000], seed=4)


def _decoded(cfg, codes):
    """(N, K) float64 ``o + sum_s c_s root_s`` per kept block, written independently."""
    roots = np.zeros((256, 8))
    roots[:len(ROOTS)] = ROOTS
    sc = np.frombuffer(cfg.scales, "<f4").astype(np.float64)
    out = np.tile(np.frombuffer(cfg.offset, "<f4").astype(np.float64), (len(codes), 1))
    c = 0
    for b, ns in enumerate(cfg.stages):
        for _ in range(ns):
            out[:, 8 * b:8 * b + 8] += sc[c] * roots[codes[:, c]]
            c += 1
    return out


def test_flag_is_in_the_config_bytes_and_defaults_on(head, data):
    assert head.normalized and head.to_bytes()[2:4] == b"\x01\x00"
    plain = train_staged_e8(data[:3000], seed=4, normalize=False)
    assert not plain.normalized and plain.to_bytes()[2:4] == b"\x00\x00"
    assert plain.fingerprint != head.fingerprint
    assert registry.config_from_bytes(head.to_bytes()) == head
    assert registry.config_from_bytes(plain.to_bytes()) == plain
    bad = bytearray(head.to_bytes())
    bad[2:4] = struct.pack("<H", 3)
    with pytest.raises(ConfigError, match="flags .* 0x0003"):
        registry.config_from_bytes(bytes(bad))
    assert LearnedE8(plain, "numpy").row_scales(LearnedE8(plain, "numpy").encode(data[:5])) is None


@pytest.mark.parametrize("d,code_bytes", [(64, None), (37, 7)])
def test_row_scales_and_bias_are_the_same_bits_on_both_backends(d, code_bytes):
    x = anisotropic(900, d, seed=d)
    cfg = train_staged_e8(x[:800], seed=1, code_bytes=code_bytes)
    a, b = LearnedE8(cfg, "numpy"), LearnedE8(cfg, "python")
    ea = a.encode(x[800:])
    eb = EncodedBatch(cfg, ea.codes_bytes())
    sa = a.row_scales(ea)
    sb = np.frombuffer(b.row_scales(eb).tobytes(), np.float32)
    assert sa.dtype == np.float32 and sa.tobytes() == sb.tobytes()
    # the meaning: 1 / ||decoded row||, to float32 rounding
    want = 1.0 / np.linalg.norm(_decoded(cfg, np.asarray(ea.codes)), axis=1)
    assert np.allclose(sa, want, rtol=2e-7, atol=0)
    for qi in (0, 5, 50):
        qa, qb = a.sketch_query(x[800 + qi]), b.sketch_query(x[800 + qi].tolist())
        assert np.float32(qa.bias).tobytes() == np.float32(qb.bias).tobytes()
        assert a.score(qa, ea).tobytes() == np.asarray(b.score(qb, eb), np.float32).tobytes()


def test_scores_are_the_cosine_with_the_decoded_row(head, data):
    codec = LearnedE8(head, "numpy")
    enc = codec.encode(data[3000:3500])
    dec = _decoded(head, np.asarray(enc.codes))
    rot = np.frombuffer(head.rotation, "<i2").astype(np.float64).reshape(head.input_dim, -1)
    for q in data[3500:3510]:
        v = rotate_numpy(q[None], rot)[0]
        want = dec @ v / np.linalg.norm(dec, axis=1)
        assert np.allclose(codec.score(q, enc), want, rtol=0, atol=3e-6)


def test_normalized_ranking_is_not_the_plain_table_sum_ranking(head, data):
    """The scales matter: ignoring them would change the top 10 on this data."""
    codec = LearnedE8(head, "numpy")
    enc = codec.encode(data[:3000])
    plain_cfg = StagedE8Config(*[getattr(head, f) for f in (
        "input_dim", "train_fingerprint", "offset", "rotation", "stages", "scales")])
    plain, plain_enc = LearnedE8(plain_cfg, "numpy"), EncodedBatch(plain_cfg, enc.codes)
    differ = sum(list(np.argsort(-codec.score(q, enc), kind="stable")[:10])
                 != list(np.argsort(-plain.score(q, plain_enc), kind="stable")[:10])
                 for q in data[3000:3050])
    assert differ >= 25, differ


def test_zero_decoded_row_gets_scale_zero():
    cfg = StagedE8Config(8, bytes(16), bytes(32), struct.pack("<64h", *np.eye(8, dtype=int).ravel() * 16384),
                         bytes([1]), struct.pack("<f", 0.0), normalized=True)
    codes = bytes([3, 200])
    for backend in ("numpy", "python"):
        c = LearnedE8(cfg, backend)
        enc = EncodedBatch(cfg, codes)
        assert list(c.row_scales(enc)) == [0.0, 0.0]
        assert list(c.score(np.eye(8, dtype=np.float32)[0], enc)) == [0.0, 0.0]


def _brute(codec, enc, q, k):
    s = codec.score(q, enc)
    order = np.argsort(-s, kind="stable")[:k]
    return list(order), s[order]


@pytest.mark.parametrize("k", [1, 10, 64])
def test_index_search_equals_brute_force_with_ties(head, data, k):
    """Duplicated rows (exact ties) and near-duplicates (near ties) in a store big enough
    for the scaled TableBound cut to prune; ids and float32 score bits must match."""
    codec = LearnedE8(head, "numpy")
    rows = np.concatenate([data[:3000], data[:400], data[:400] * np.float32(1 + 1e-7)])
    enc = codec.encode(rows)
    idx = BinaryIndex(codec)
    idx.add_encoded(enc)
    pruned = 0
    bound_cols = idx._store.pair_columns()
    for q in np.concatenate([data[3000:3040], data[:5]]):
        ids, scores = idx.search(q, k)
        want, ws = _brute(codec, enc, q, k)
        assert list(ids) == want and np.asarray(scores).tobytes() == ws.tobytes()
        tables = codec._tables_numpy(codec.sketch_query(q).values)
        sel = table_bound.TableBound(tables).survivors(bound_cols, k, idx._row_scales(),
                                                       codec.sketch_query(q).bias)
        pruned += sel is not None and len(sel) < len(rows) // 2
    assert pruned >= 30, pruned   # the bound really cuts


def test_scaled_bound_keeps_a_row_the_plain_bound_would_drop():
    """Two rows with the same table sums but different scales: the plain cut (on Q) cannot
    tell them apart, the scaled cut must keep the one that wins after scaling."""
    rng = np.random.default_rng(0)
    tables = rng.standard_normal((4, 256)).astype(np.float32)
    codes = rng.integers(0, 240, size=(5000, 4)).astype(np.uint8)
    cols = [codes[:, 2 * p].astype(np.uint16) | (codes[:, 2 * p + 1].astype(np.uint16) << 8)
            for p in range(2)]
    sums = table_bound.exact_scores(tables, cols, np.arange(len(codes)))
    scales = np.full(len(codes), 1.0, dtype=np.float32)
    low = int(np.argmin(np.abs(sums - np.quantile(sums, 0.9))))   # a positive, not top row ...
    scales[low] = np.float32(1e3)                           # ... that scaling puts on top
    keep = table_bound.TableBound(tables).survivors(cols, 5, scales, 0.0)
    assert keep is not None and low in set(keep.tolist())
    scores = normalized_scores.finish_numpy(sums, 0.0, scales)
    top = np.argsort(-scores, kind="stable")[:5]
    assert set(top.tolist()) <= set(keep.tolist())


def test_index_after_remove_and_python_backend_agree(head, data):
    codec, slow = LearnedE8(head, "numpy"), LearnedE8(head, "python")
    enc = codec.encode(data[:1200])
    a, b = BinaryIndex(codec), BinaryIndex(slow)
    a.add_encoded(enc, ids=list(range(1200)))
    b.add_encoded(EncodedBatch(head, enc.codes_bytes()), ids=list(range(1200)))
    gone = list(range(0, 1200, 3))
    a.remove(gone)
    b.remove(gone)
    fresh = BinaryIndex(codec)
    kept = [i for i in range(1200) if i % 3]
    fresh.add_encoded(EncodedBatch(head, np.asarray(enc.codes)[kept]), ids=kept)
    for q in data[3000:3004]:
        ia, sa = a.search(q, 10)
        ib, sb = b.search(q.tolist(), 10)
        ifr, sfr = fresh.search(q, 10)
        assert list(ia) == list(ib) == list(ifr)
        assert np.asarray(sa).tobytes() == np.asarray(sb, np.float32).tobytes() == \
            np.asarray(sfr).tobytes()


def test_cli_writes_normalized_heads_unless_told_not_to(tmp_path, monkeypatch, data):
    from clark_hash_web.cli import main
    from clark_hash_web.formats import sketch_file

    monkeypatch.chdir(tmp_path)
    np.save("base.npy", data[:600])
    assert main(["train", "--codec", "learned-e8", "base.npy", "on.chs", "--seed", "3"]) == 0
    assert main(["train", "--codec", "learned-e8", "base.npy", "off.chs", "--seed", "3",
                 "--options", "normalize=false"]) == 0
    on, off = sketch_file.load("on.chs").config, sketch_file.load("off.chs").config
    assert on.normalized and not off.normalized
    assert on == train_staged_e8(data[:600], seed=3)
    assert off == train_staged_e8(data[:600], seed=3, normalize=False)


@pytest.mark.parametrize("backend", ["numpy", "python"])
def test_row_scales_are_made_at_the_first_search_and_kept_through_writes(head, data, backend):
    """Adding rows computes no row scales until a search needs them; rows added and
    removed after that keep them right (the same results as a fresh index)."""
    codec = LearnedE8(head, backend)
    rows = data[:900] if backend == "numpy" else data[:900].tolist()
    idx = BinaryIndex(codec)
    idx.add(rows[:500], ids=list(range(500)))
    assert idx._scales is None
    q = data[3000] if backend == "numpy" else data[3000].tolist()
    idx.search(q, 5)
    assert len(idx._scales) == 500
    idx.add(rows[500:], ids=list(range(500, 900)))
    idx.remove(list(range(0, 900, 4)))
    fresh = BinaryIndex(codec)
    kept = [i for i in range(900) if i % 4]
    fresh.add([rows[i] for i in kept] if backend == "python" else rows[kept], ids=kept)
    assert np.asarray(idx._scales).tobytes() == np.asarray(fresh._row_scales()).tobytes()
    for q in data[3001:3004]:
        q = q if backend == "numpy" else q.tolist()
        a, b = idx.search(q, 10), fresh.search(q, 10)
        assert list(a[0]) == list(b[0])
        assert np.asarray(a[1], np.float32).tobytes() == np.asarray(b[1], np.float32).tobytes()
