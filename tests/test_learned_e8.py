"""Learned E8 head (kind 6): training, exact encoding on both backends, config bytes."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from binary_helpers import clustered
from clark_hash_web.codecs import registry
from clark_hash_web.codecs.e8 import E8Codes, E8Config
from clark_hash_web.codecs.learned_e8 import (
    LearnedE8, LearnedE8Config, nearest_roots, train_learned_e8)
from clark_hash_web.errors import (
    ConfigError, ConfigMismatchError, InvalidInputError, InvalidVectorError, SketchFileError)
from clark_hash_web.formats import sketch_file


def anisotropic(n, d, seed=0):
    """Clustered unit vectors with a shared offset and uneven per-dimension scales
    (like real sentence embeddings: a common direction, correlated dimensions)."""
    rng = np.random.default_rng(seed)
    x = clustered(n, d, clusters=40, spread=0.5, seed=seed).astype(np.float64)
    mix = np.linalg.qr(rng.standard_normal((d, d)))[0] * np.geomspace(3.0, 0.3, d)
    x = x @ mix + 0.8 * rng.standard_normal(d)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    return anisotropic(2400, 64, seed=3)


@pytest.fixture(scope="module")
def trained(data):
    return train_learned_e8(data[:2000], **TRAIN)


TRAIN = dict(seed=5, group=16, iterations=8, queries=100, center=True, weights=True,
             assign="balanced", init="random")


def test_same_data_and_seed_give_same_bytes_other_seed_differs(data, trained):
    again = train_learned_e8(data[:2000], **TRAIN)
    assert again.to_bytes() == trained.to_bytes()
    other = train_learned_e8(data[:2000], **{**TRAIN, "seed": 6})
    assert other.to_bytes() != trained.to_bytes()
    assert other.train_fingerprint != trained.train_fingerprint


def test_config_bytes_layout_and_round_trip(trained):
    raw = trained.to_bytes()
    d, D, g = 64, 64, 16
    assert raw[0] == 6 and len(raw) == 32 + 4 * d + 2 * D + 4 * D * g + 4 * (D // 8)
    assert struct.unpack_from("<II", raw, 4) == (d, g)
    back = LearnedE8Config.from_bytes(raw)
    assert back == trained and back.to_bytes() == raw and back.fingerprint == trained.fingerprint
    assert registry.config_from_bytes(raw) == trained
    assert isinstance(registry.codec_from_config(trained, "python"), LearnedE8)
    assert registry.codec_kind(6).trained and registry.codec_kind_named("learned-e8").kind == 6


def test_rotations_are_orthogonal_and_perm_is_a_permutation(trained):
    rot = np.frombuffer(trained.rotations, "<f4").reshape(4, 16, 16).astype(np.float64)
    for r in rot:
        assert np.abs(r @ r.T - np.eye(16)).max() < 1e-5
    perm = np.frombuffer(trained.perm, "<u2")
    assert sorted(perm.tolist()) == list(range(64))


@pytest.mark.parametrize("d,group", [(64, 16), (37, 40), (20, 8)])
def test_numpy_and_python_backends_write_same_bytes_and_score_bits(d, group):
    x = anisotropic(700, d, seed=d)
    cfg = train_learned_e8(x[:600], seed=1, group=group, iterations=4, queries=50)
    a, b = LearnedE8(cfg, "numpy"), LearnedE8(cfg, "python")
    rows = x[600:]
    rows[0] = rows[0] * np.float32(1e-3)  # small magnitudes: same rounding path
    assert len(assert_backends_agree(a, b, rows, (0, 7))) == len(rows) * ((d + 7) // 8)


def assert_backends_agree(a, b, rows, query_rows):
    """Codecs ``a`` (numpy) and ``b`` (python) write the same codes, query values and
    score bits for ``rows``, queried with the rows numbered ``query_rows``; the codes."""
    ea, eb = a.encode(rows), b.encode(rows.tolist())
    codes, cb = ea.codes_bytes(), a.code_bytes
    assert codes == eb.codes_bytes()
    for qi in query_rows:
        qa, qb = a.sketch_query(rows[qi]), b.sketch_query(rows[qi].tolist())
        assert np.asarray(qa.values, np.float32).tobytes() == np.asarray(qb.values, np.float32).tobytes()
        assert qa.code == qb.code == codes[qi * cb:(qi + 1) * cb]
        sa = np.asarray(a.score(qa, ea), np.float32)
        sb = np.asarray(b.score(qb, eb), np.float32)
        assert sa.tobytes() == sb.tobytes()
    return codes


def test_chunked_numpy_encode_equals_one_row_at_a_time(trained, data):
    codec = LearnedE8(trained, "numpy")
    rows = np.concatenate([data] * 2)  # > one 1024-row chunk
    whole = codec.encode(rows).codes_bytes()
    one = b"".join(codec.encode(r).codes_bytes() for r in rows[:40])
    assert whole[:len(one)] == one and len(whole) == len(rows) * 8


def _alignment(y):
    """Mean cosine between each rotated 8-block and its chosen E8 root."""
    roots = E8Codes(E8Config(8), "numpy")._roots_np.astype(np.float64)
    c = roots[nearest_roots(y)]
    yb = y.reshape(len(y), -1, 8)
    return float(np.mean(np.einsum("nbk,nbk->nb", yb, c)
                         / (np.linalg.norm(yb, axis=2) * np.sqrt(2.0) + 1e-30)))


def _recall10(codec, base, queries):
    enc = codec.encode(base)
    exact = queries.astype(np.float64) @ base.astype(np.float64).T
    hits = 0
    for i, q in enumerate(queries):
        s = np.asarray(codec.score(codec.sketch_query(q), enc), np.float64)
        hits += len(set(np.argsort(-s, kind="stable")[:10]) & set(np.argsort(-exact[i])[:10]))
    return hits / (10 * len(queries))


def test_training_improves_alignment_and_recall_over_unrotated_e8(data, trained):
    base, queries = data[:2000], data[2000:2150]
    learned = LearnedE8(trained, "numpy")
    start = train_learned_e8(base, seed=5, group=16, iterations=0, center=False,
                             weights=False, assign="identity", queries=100)
    y_learned = learned._padded_numpy(base).astype(np.float64)
    y_plain = base.astype(np.float64)
    assert _alignment(y_learned) > _alignment(y_plain) + 0.01
    plain = _recall10(E8Codes(E8Config(64), "numpy"), base, queries)
    random_start = _recall10(LearnedE8(start, "numpy"), base, queries)
    got = _recall10(learned, base, queries)
    print("recall@10 learned %.3f plain %.3f random start %.3f" % (got, plain, random_start))
    assert got > plain + 0.03 and got > random_start + 0.03, (got, plain, random_start)


def test_sketch_file_round_trip_keeps_config_and_codes(tmp_path, trained, data):
    codec = LearnedE8(trained, "numpy")
    enc = codec.encode(data[:50])
    path = tmp_path / "learned.chs"
    sketch_file.save_encoded(path, enc, ids=list(range(100, 150)))
    back = sketch_file.load(path)
    assert back.config == trained and back.codes == enc.codes_bytes()
    assert back.ids == list(range(100, 150))
    py = LearnedE8(back.config, "python")
    assert py.encode(data[:3].tolist()).codes_bytes() == enc.codes_bytes()[:24]
    bad = bytearray(enc.codes_bytes())
    bad[13] = 250  # a code byte that is not a root number
    with pytest.raises(Exception, match="row 1 byte 5 is 250") as err:
        sketch_file.to_bytes(trained, bytes(bad))
    assert isinstance(err.value, (SketchFileError, ConfigMismatchError, InvalidInputError))


def test_bad_training_input_says_what():
    x = anisotropic(100, 16)
    with pytest.raises(InvalidInputError, match="2-D"):
        train_learned_e8(x[0])
    bad = x.copy()
    bad[7, 3] = np.nan
    with pytest.raises(InvalidInputError, match="row 7"):
        train_learned_e8(bad)
    zero = x.copy()
    zero[9] = 0
    with pytest.raises(InvalidInputError, match="row 9 is a zero"):
        train_learned_e8(zero)
    with pytest.raises(InvalidInputError, match="group"):
        train_learned_e8(x, group=12)
    with pytest.raises(InvalidInputError, match="assign"):
        train_learned_e8(x, group=8, assign="sorted")


def test_bad_config_bytes_say_what(trained):
    raw = trained.to_bytes()
    with pytest.raises(ConfigError, match="got 10"):
        LearnedE8Config.from_bytes(raw[:10])
    with pytest.raises(ConfigError, match="bytes, got"):
        LearnedE8Config.from_bytes(raw[:-1])
    wrong = bytearray(raw)
    wrong[0] = 5
    with pytest.raises(ConfigError, match="not learned E8"):
        LearnedE8Config.from_bytes(bytes(wrong))
    dup = bytearray(raw)
    at = 32 + 4 * 64
    dup[at:at + 4] = struct.pack("<HH", 3, 3)
    with pytest.raises(ConfigError, match="slot 1 holds 3"):
        LearnedE8Config.from_bytes(bytes(dup))
    nan = bytearray(raw)
    at = 32 + 4 * 64 + 2 * 64
    nan[at:at + 4] = struct.pack("<f", float("nan"))
    with pytest.raises(ConfigError, match="rotations value 0 is not finite"):
        LearnedE8Config.from_bytes(bytes(nan))


def test_bad_vectors_and_foreign_batches_are_refused(trained, data):
    for backend in ("numpy", "python"):
        codec = LearnedE8(trained, backend)
        rows = data[:3].copy()
        rows[1, 0] = np.inf
        with pytest.raises(InvalidVectorError, match="row 1"):
            codec.encode(rows if backend == "numpy" else rows.tolist())
        with pytest.raises(InvalidInputError, match="dim|length|64"):
            codec.encode(data[:2, :10] if backend == "numpy" else data[:2, :10].tolist())
    other = train_learned_e8(data[:2000], seed=9, group=16, iterations=1, queries=100)
    enc = LearnedE8(other, "numpy").encode(data[:5])
    with pytest.raises(ConfigMismatchError):
        LearnedE8(trained, "numpy").score(data[0], enc)


def test_columnwise_e8_equals_the_e8_codec_including_ties_and_tiny_values():
    from clark_hash_web.codecs.learned_e8 import e8_codes_numpy

    ref = E8Codes(E8Config(64), "numpy")
    rng = np.random.default_rng(11)
    for trial in range(12):
        x = rng.standard_normal((300, 64)).astype(np.float32)
        if trial % 2:
            x = np.round(x * 2).astype(np.float32)  # exact ties, zeros, -0.0
        if trial % 3 == 0:
            x *= np.float32(1e-30)
        if trial % 4 == 0:
            x[:, :8] = 0.0  # an all-zero block: every |y_k| ties
            x[::2, 8:16] = np.float32(-0.5)
        assert (e8_codes_numpy(x) == ref._encode_numpy(x)).all(), trial


def test_cli_train_writes_a_config_file_that_encode_uses(tmp_path, monkeypatch, capsys, data):
    from clark_hash_web.cli import main

    monkeypatch.chdir(tmp_path)
    np.save("base.npy", data[:600])
    status = main(["train", "--codec", "learned-e8", "base.npy", "le8.chs",
                   "--options", "head=rotation,group=8,iterations=3,center=false", "--seed", "4"])
    out = capsys.readouterr().out
    assert status == 0 and "trained learned E8 on 600 x 64" in out
    cfg = sketch_file.load("le8.chs").config
    assert cfg == train_learned_e8(data[:600], seed=4, group=8, iterations=3, center=False)
    assert main(["encode", "base.npy", "s.chs", "--config", "le8.chs"]) == 0
    assert sketch_file.load("s.chs").codes == LearnedE8(cfg).encode(data[:600]).codes_bytes()
    capsys.readouterr()
    assert main(["train", "--codec", "learned-e8", "base.npy", "x.chs",
                 "--options", "head=rotation,center=maybe"]) == 2
    assert "center must be true or false, got 'maybe'" in capsys.readouterr().err


def test_default_group_is_16_when_it_divides_else_8():
    assert train_learned_e8(anisotropic(200, 64), iterations=1).group == 16
    assert train_learned_e8(anisotropic(200, 24), iterations=1).group == 8
