"""Learned E8 head, format 2 (principal axes + E8 stages): exact integer rotation on both
backends, config bytes, allocation, recall, CLI default."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from test_learned_e8 import _recall10, anisotropic
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
    ea, eb = a.encode(rows), b.encode(rows.tolist())
    assert ea.codes_bytes() == eb.codes_bytes()
    assert len(ea.codes_bytes()) == len(rows) * cfg.code_bytes
    for qi in (0, 1, 7):
        qa, qb = a.sketch_query(rows[qi]), b.sketch_query(rows[qi].tolist())
        assert np.asarray(qa.values, np.float32).tobytes() == np.asarray(qb.values, np.float32).tobytes()
        assert qa.code == qb.code == ea.codes_bytes()[qi * cfg.code_bytes:(qi + 1) * cfg.code_bytes]
        sa = np.asarray(a.score(qa, ea), np.float32)
        sb = np.asarray(b.score(qb, eb), np.float32)
        assert sa.tobytes() == sb.tobytes()


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
