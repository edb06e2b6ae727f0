"""Learned E8 head, format 2 (principal axes + E8 stages): exact integer rotation on both
backends, config bytes, allocation, recall, CLI default."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from test_learned_e8 import _recall10, anisotropic, assert_backends_agree
from clark_hash_web.codecs import registry
from clark_hash_web.codecs.e8 import E8Codes, E8Config
from clark_hash_web.codecs.learned_e8 import LearnedE8, LearnedE8Config, train_learned_e8
from clark_hash_web.codecs.learned_e8_stages import (
    StagedE8, StagedE8Config, rotate_numpy, train_staged_e8)
from clark_hash_web.errors import ConfigError, InvalidInputError
from clark_hash_web.formats import sketch_file


@pytest.fixture(scope="module")
def data():
    return anisotropic(2400, 64, seed=3)


@pytest.fixture(scope="module")
def staged(data):
    return train_staged_e8(data[:2000], seed=2)


def test_config_bytes_round_trip_and_registry_reads_both_formats(staged, data):
    raw = staged.to_bytes()
    assert raw[:2] == bytes([6, 2])
    d, K, C = struct.unpack_from("<III", raw, 4)
    assert (d, K, C) == (64, staged.kept_dim, 8) and C == sum(staged.stages)
    assert len(raw) == 32 + 4 * K + 2 * d * K + K // 8 + 4 * C
    back = registry.config_from_bytes(raw)
    assert isinstance(back, StagedE8Config) and back == staged and back.to_bytes() == raw
    old = train_learned_e8(data[:600], seed=1, group=16, iterations=2)
    assert isinstance(registry.config_from_bytes(old.to_bytes()), LearnedE8Config)
    assert type(registry.codec_from_config(staged, "python")) is StagedE8
    assert type(LearnedE8(old)) is LearnedE8 and type(LearnedE8(staged)) is StagedE8
    assert staged.code_bytes == 8 and train_staged_e8(data[:600], code_bytes=5).code_bytes == 5


def test_training_is_deterministic_and_spends_bytes_on_high_variance_axes(data, staged):
    assert train_staged_e8(data[:2000], seed=2).to_bytes() == staged.to_bytes()
    assert train_staged_e8(data[:2000], seed=3, max_rows=1500).to_bytes() != staged.to_bytes()
    unmixed = train_staged_e8(data[:2000], seed=2, mix=False)
    assert unmixed.stages == staged.stages and unmixed.rotation != staged.rotation
    stages = list(staged.stages)
    # the test data has a decaying spectrum: the first block (largest variance) gets the most
    # stages, and some low-variance blocks are dropped (fewer kept blocks than 64 / 8)
    assert stages[0] == max(stages) and stages[0] >= 2 and len(stages) < 8
    flat = train_staged_e8(data[:2000], seed=2, max_stages=1)
    assert list(flat.stages) == [1] * 8
    assert np.abs(np.frombuffer(staged.offset, "<f4")).max() > 0.01  # centered by default
    uncentered = train_staged_e8(data[:2000], seed=2, center=False)
    assert not any(np.frombuffer(uncentered.offset, "<f4"))


@pytest.mark.parametrize("d,code_bytes", [(64, None), (37, 7), (20, 9)])
def test_numpy_and_python_backends_write_same_bytes_and_score_bits(d, code_bytes):
    x = anisotropic(700, d, seed=d)
    cfg = train_staged_e8(x[:600], seed=1, code_bytes=code_bytes)
    a, b = LearnedE8(cfg, "numpy"), LearnedE8(cfg, "python")
    rows = x[600:].copy()
    rows[0] *= np.float32(1e-3)
    rows[1] *= np.float32(3e5)  # the codes do not depend on the row's scale
    rows[2] = np.round(rows[2] * 8) / 8  # exact ties in the integer rotation
    assert len(assert_backends_agree(a, b, rows, (0, 1, 7))) == len(rows) * cfg.code_bytes


def test_rotation_is_exact_integer_arithmetic(staged, data):
    """rotate_numpy (float64 BLAS) equals the same integers multiplied in int64 (no rounding
    anywhere), and scaling a row by a power of two only scales y."""
    codec = LearnedE8(staged, "numpy")
    rows = data[:300]
    y = rotate_numpy(rows, codec._rot)
    x = rows.astype(np.float64)
    e = np.frexp(np.abs(x).max(axis=1))[1]
    n = np.rint(np.ldexp(x, (15 - e)[:, None])).astype(np.int64)
    p = n @ codec._rot.astype(np.int64)
    norm = np.sqrt((n * n).sum(axis=1).astype(np.float64))
    assert np.array_equal(y, np.ldexp(p.astype(np.float64) / norm[:, None], -14))
    assert np.array_equal(rotate_numpy(rows * np.float32(8), codec._rot), y)
    assert codec.encode(rows * np.float32(0.25)).codes_bytes() == codec.encode(rows).codes_bytes()


def test_staged_head_beats_plain_e8_and_one_stage_per_block(data, staged):
    base, queries = data[:2000], data[2000:2150]
    got = _recall10(LearnedE8(staged, "numpy"), base, queries)
    plain = _recall10(E8Codes(E8Config(64), "numpy"), base, queries)
    flat = _recall10(LearnedE8(train_staged_e8(base, seed=2, max_stages=1), "numpy"), base, queries)
    print("recall@10 staged %.3f plain e8 %.3f one stage per block %.3f" % (got, plain, flat))
    assert got > plain + 0.1 and got > flat + 0.02, (got, plain, flat)


def test_sketch_file_round_trip(tmp_path, staged, data):
    codec = LearnedE8(staged, "numpy")
    enc = codec.encode(data[:30])
    path = tmp_path / "staged.chs"
    sketch_file.save_encoded(path, enc, ids=list(range(30)))
    back = sketch_file.load(path)
    assert back.config == staged and back.codes == enc.codes_bytes()
    assert LearnedE8(back.config, "python").encode(data[:2].tolist()).codes_bytes() == \
        enc.codes_bytes()[:16]


def test_bad_config_bytes_and_training_options_say_what(staged, data):
    raw = staged.to_bytes()
    K, d = staged.kept_dim, 64
    with pytest.raises(ConfigError, match="bytes, got"):
        registry.config_from_bytes(raw[:-1])
    at = 32 + 4 * K
    big = bytearray(raw)
    big[at + 2 * 5:at + 2 * 6] = struct.pack("<h", 20000)
    with pytest.raises(ConfigError, match="rotation value 5 .* is 20000"):
        registry.config_from_bytes(bytes(big))
    at_stages = 32 + 4 * K + 2 * d * K
    zero = bytearray(raw)
    zero[at_stages] = 0
    with pytest.raises(ConfigError, match="stages sum"):
        registry.config_from_bytes(bytes(zero))
    nan = bytearray(raw)
    nan[-4:] = struct.pack("<f", float("inf"))
    with pytest.raises(ConfigError, match="scales value 7 is not finite"):
        registry.config_from_bytes(bytes(nan))
    with pytest.raises(InvalidInputError, match="query_weight"):
        train_staged_e8(data[:100], query_weight="heavy")
    with pytest.raises(InvalidInputError, match="code_bytes"):
        train_staged_e8(data[:100], code_bytes=0)
    with pytest.raises(InvalidInputError, match="head must be"):
        registry.codec_kind(6).trainer(data[:100], head="pca")


def test_cli_train_default_is_the_staged_head(tmp_path, monkeypatch, capsys, data):
    from clark_hash_web.cli import main

    monkeypatch.chdir(tmp_path)
    np.save("base.npy", data[:600])
    assert main(["train", "--codec", "learned-e8", "base.npy", "h.chs",
                 "--options", "query_weight=1,code_bytes=6", "--seed", "3"]) == 0
    assert "trained learned E8 on 600 x 64" in capsys.readouterr().out
    cfg = sketch_file.load("h.chs").config
    assert cfg == train_staged_e8(data[:600], seed=3, query_weight=1, code_bytes=6)
    assert main(["encode", "base.npy", "s.chs", "--config", "h.chs"]) == 0
    assert sketch_file.load("s.chs").codes == LearnedE8(cfg).encode(data[:600]).codes_bytes()


def test_float64_column_rule_equals_python_rule_on_ties():
    """e8_columns.encode_columns on float64 columns (the stages' rule) gives the pure-Python
    float64 rule's bytes on blocks full of ties (equal magnitudes, zeros, -0.0, s1 == s2
    exactly) and on near-ties that float32 rounding would flip."""
    from clark_hash_web.codecs.e8 import _encode_block_python
    from clark_hash_web.codecs.e8_columns import encode_columns
    from clark_hash_web.codecs.learned_e8 import e8_codes_numpy

    rng = np.random.default_rng(5)
    small = np.array([0.0, -0.0, 0.125, -0.125, 0.375, -0.375, 0.25, -0.25, 0.5])
    x = small[rng.integers(0, len(small), size=(4000, 8))]
    x[2000:] = rng.standard_normal((2000, 8))
    x[1000:1500] = np.nextafter(x[1000:1500], np.inf)
    tie = np.array([3, 3, 1, 1, 1, 1, 1, 1]) / 8.0          # s1 = s2 = 0.75: the half root
    x[10], x[11] = tie, tie
    x[11, 0] += 2.0 ** -40                                  # s1 > s2 in float64, not in float32
    x[12] = 0.0
    fast = encode_columns(np.ascontiguousarray(x.T))
    py = bytes(_encode_block_python(row.tolist(), f32=False) for row in x)
    assert fast.tobytes() == py == e8_codes_numpy(x).tobytes()
    assert fast[10] < 128 <= fast[11] and fast[12] == 0
    x32 = x.astype(np.float32)
    codes32 = encode_columns(np.ascontiguousarray(x32.T))
    assert codes32[11] == fast[10]                          # float32 rounds the near-tie away
    keep = x32.any(axis=1)                                  # the E8 codec refuses zero rows
    assert codes32[keep].tobytes() == E8Codes(E8Config(8), "numpy").encode(x32[keep]).codes_bytes()


def _crafted_config():
    """d=40, 4 kept blocks with unsorted stage counts [1, 3, 2, 4], a signed identity
    rotation (exact y); blocks 1 and 3 have powers of two as scales, block 3 a zero
    offset, blocks 1 and 2 an offset of +-2**-40 on their first axis (a float64-only
    difference)."""
    d, K = 40, 32
    rot = np.zeros((d, K), dtype="<i2")
    for j in range(K):
        rot[j, j] = (1 << 14) * (-1 if j % 5 == 3 else 1)     # minus on axes 8, 13, 23, 28
    offset = (np.arange(K) % 7 - 3) / 16.0
    offset[8:16] = 0.0
    offset[8] = 2.0 ** -40
    offset[24:32] = 0.0
    offset[16:24] = 0.0
    offset[16] = -(2.0 ** -40)
    stages = [1, 3, 2, 4]
    scales = [0.3, 0.25, 0.25, 0.5, 0.2, 0.07, 0.25, 0.25, 0.5, -0.01]
    return StagedE8Config(d, bytes(16), offset.astype("<f4").tobytes(), rot.tobytes(),
                          bytes(stages), np.asarray(scales, "<f4").tobytes())


def test_fast_encoder_equals_reference_and_python_on_ties_zero_residuals_and_chunks(monkeypatch):
    """The fast numpy encoder (transposed BLAS rotation, blocks sorted by stages, the E8 rule
    in float32 where provably equal and in float64 elsewhere, residual tables, chunks) writes
    the bytes of the step-by-step numpy reference and of pure Python: exact root ties,
    near-ties that float32 would decide the other way, residuals that become exactly zero
    or 2**-40, unsorted stage counts, rows of small integers (equal magnitudes), extreme row
    scales with subnormal entries, chunk boundaries."""
    from clark_hash_web.codecs import learned_e8_stages_fast

    cfg = _crafted_config()
    rng = np.random.default_rng(8)
    x = anisotropic(300, 40, seed=4)
    x[:100] = rng.integers(-2, 3, size=(100, 40))
    x[:100, 0] = 2.0                                    # no zero rows
    tie = np.zeros(40, dtype=np.float32)
    tie[8:16] = [3, 3, 1, 1, 1, 1, 1, 1]
    tie[24:32] = [3, 3, 1, 1, -1, 1, 1, 1]
    tie[32] = 4                                         # |x| = 8: y = x / 8 exactly
    x[100], x[101], x[102] = tie, tie * np.float32(2.0 ** -50), tie * np.float32(2.0 ** 40)
    near = np.zeros(40, dtype=np.float32)
    near[16:24] = [16, 12, 8, 6, 5, 4, 3, 2]           # distinct magnitudes
    near[32:35] = [21, 5, 2]                            # |x| = 32
    x[103], x[104] = near, -near
    # the edges of valid row scales: float32 subnormal entries scaled up (exact), and
    # entries that underflow in float32 once scaled down (rint gives 0 either way)
    x[105] = x[105] / np.abs(x[105]).max() * np.float32(2.0 ** -59)
    x[105, 5:9] = np.float32(2.0 ** -140) * np.array([1, -3, 5, -7], dtype=np.float32)
    x[106] = x[106] / np.abs(x[106]).max() * np.float32(2.0 ** 59)
    x[106, 3:6] = np.float32(2.0 ** -140) * np.array([1, -1, 3], dtype=np.float32)
    x[107] = x[106] * np.float32(0.75)
    monkeypatch.setattr(learned_e8_stages_fast, "CHUNK_VALUES", 8 * 4 * 7)   # 7 rows a chunk
    monkeypatch.setattr(learned_e8_stages_fast, "CHUNK_COLUMNS", 13)          # 16-block steps
    monkeypatch.setattr(learned_e8_stages_fast, "PREP_ROWS", 3)               # 3-row input steps
    a, b = LearnedE8(cfg, "numpy"), LearnedE8(cfg, "python")
    fast = a.encode(x).codes
    assert fast.tobytes() == a._encode_numpy_reference(x).tobytes()
    assert fast.tobytes() == b.encode(x.tolist()).codes_bytes()
    for s, e in ((100, 101), (97, 104), (0, 1), (200, 223)):     # batches of 1 and odd sizes
        assert a.encode(x[s:e]).codes.tobytes() == fast[s:e].tobytes()
    # block 3 (code columns 6..9): y = (3,3,1,1,1,1,1,1)/8 is an exact tie s1 = s2 (half
    # root 0), the residual (1/4, 1/4, 0, ..) takes root (1, 1, 0, ..) = 128, then the
    # residual is exactly 0 (half root 0), then -1/4 everywhere (half root 127)
    assert fast[100:103, 6:10].tolist() == [[0, 128, 0, 127]] * 3
    # block 1 (columns 1..3): y = (-3/8 - 2**-40, 3/8, 1/8, 1/8, 1/8, -1/8, 1/8, 1/8):
    # s1 > s2 by 2**-41 in float64 (root (-1, 1, 0, ..) = 130; float32 sees a tie: half
    # root 33), then (-1/8 - 2**-40, 1/8, ..) is a half root again (33), then the residual
    # (-2**-40, 0, .., 0) takes the integer root (-1, 1, 0, ..) = 130
    assert fast[100:103, 1:4].tolist() == [[130, 33, 130]] * 3
    # block 2 (column 4): y = (1/2 + 2**-40, 3/8, -1/4, 3/16, 5/32, 1/8, 3/32, -1/16): distinct
    # magnitudes, s1 = 7/8 + 2**-40 > s2 = 7/8 + 2**-41 only in float64 (integer root
    # (1, 1, 0, ..) = 128; float32: an exact tie, half root 4): only the margin check sees it
    assert fast[103, 4] == 128


@pytest.mark.parametrize("width", [8, 24, 1 << 14])
def test_doubted_columns_equal_the_float64_rule(width):
    """DoubtedColumns (float32 rule in buffers, the float64 rule where the doubt test
    fires) gives encode_columns' float64 bytes on columns full of exact ties, zeros and
    -0.0, near-ties one float64 ulp apart (float32 sees ties), near-ties only float64
    sees, magnitudes among float32 subnormals and beyond its range, strided rows and
    widths that leave a partial step. Leaving out any doubt condition fails this test but
    "smallest is 0", which is conservative (a lone float32 zero gives the same half root)."""
    from clark_hash_web.codecs.e8_columns import DoubtedColumns, encode_columns

    rng = np.random.default_rng(11)
    small = np.array([0.0, -0.0, 0.125, -0.125, 0.375, -0.375, 0.25, -0.25, 0.5])
    x = small[rng.integers(0, len(small), size=(6001, 8))]
    x[3000:] = rng.standard_normal((3001, 8))
    x[1000:2000] = np.nextafter(x[1000:2000], np.inf)
    x[4000:5000] *= np.exp2(rng.integers(-160, 140, size=(1000, 1)))
    tie = np.array([3, 3, 1, 1, 1, 1, 1, 1]) / 8.0          # s1 = s2 exactly: half root
    x[10], x[11] = tie, tie
    x[11, 0] += 2.0 ** -40                                  # s1 > s2 in float64 only
    x[12] = [0.5 + 2.0 ** -40, 0.375, -0.25, 0.1875, 0.15625, 0.125, 0.09375, -0.0625]
    x[13] = 0.0
    # magnitudes among float32 subnormals: their roundings beat the 2**-16 max margin
    x[14] = [float.fromhex(h) for h in (
        "0x1.7b4b42d7dbf2dp-138", "0x1.475e1d9a41b13p-139", "0x1.523be81e02c70p-136",
        "-0x1.07d62a530da7ap-136", "-0x1.1c70814750ec2p-135", "-0x1.54001b709b74dp-138",
        "-0x1.573645e6dd21ep-136", "0x1.652e02c052b0ap-138")]
    x[15] = [float.fromhex(h) for h in (
        "-0x1.602872af3a15ep-142", "-0x1.1616680d5031fp-140", "-0x1.c3a46bd4a4ce1p-142",
        "-0x1.ff5c962091393p-142", "-0x1.724aaf36cf93bp-144", "0x1.dd6cc13f695eap-141",
        "-0x1.3d0ef16e990a4p-141", "0x1.93472fac1cfbdp-146")]
    up = np.nextafter(0.25, 1.0)                            # float32 rounds it to 0.25
    x[16] = [0.0625, -0.25, 0.03125, -up, 0.046875, 0.0234375, 0.015625, 0.0078125]  # top two
    x[17] = [0.0625, -0.25, 0.03125, -up, 0.046875, 0.0234375, 0.5, 0.0078125]  # 2nd and 3rd
    cols = np.zeros((8, 3 * len(x)))
    cols[:, ::3] = x.T
    view = cols[:, ::3]                                     # strided rows
    want = encode_columns(np.ascontiguousarray(x.T))
    assert want[10] < 128 <= want[11] and want[12] >= 128
    assert min(want[16], want[17]) >= 128                   # integer roots
    with np.errstate(over="ignore", invalid="ignore"):      # float32 alone gets these wrong
        f32 = encode_columns(np.ascontiguousarray(x.T.astype(np.float32)))
    assert f32[[11, 12]].max() < 128 and f32[16] == want[16] and f32[17] != want[17]
    out = np.full(len(x), 255, dtype=np.uint8)
    got = DoubtedColumns(width)(view, out)
    assert got is out and out.tobytes() == want.tobytes()


def test_packed_rotation_sums_are_the_exact_integer_dot_products():
    """PackedRotation (64-bit slots of one big int) gives every p_j = sum_i n_i V_ij exactly,
    also at the extremes (|n_i| = 2**15, |V_ij| = 2**14, signs mixed, many inputs)."""
    from clark_hash_web.codecs.learned_e8_stages import PackedRotation

    rng = np.random.default_rng(9)
    d, K = 1500, 24
    rot = rng.integers(-16384, 16385, size=(d, K)).astype("<i2")
    rot[:, 0], rot[:, 1] = 16384, -16384
    packed = PackedRotation(rot.tobytes(), d, K)
    for n in (rng.integers(-32768, 32769, size=d), np.full(d, 32768), np.full(d, -32768),
              np.zeros(d, dtype=np.int64)):
        want = [int(v) for v in n.astype(object) @ rot.astype(object)]
        assert list(packed.sums([int(v) for v in n])) == want
