"""ClarkHash: numpy/python parity, input forms, bad input, EncodedBatch."""

import struct
from array import array

import numpy as np
import pytest

from clark_hash_web import (ClarkHash, ClarkHashConfig, ConfigMismatchError, DimensionError,
                            EncodedBatch, FlatIndex, InvalidInputError, InvalidVectorError, SQuaJL)

CONFIGS = [
    ClarkHashConfig(384),
    ClarkHashConfig(384, metric="dot"),
    ClarkHashConfig(100, sketch_dim=37, bits=3, hashes_per_input=3, clip=2.0, seed=1),
    ClarkHashConfig(64, sketch_dim=64, bits=1, hashes_per_input=1, seed=2**64 - 1),
    ClarkHashConfig(50, sketch_dim=21, bits=7, hashes_per_input=9, clip=0.7, metric="dot",
                    norm_log2_min=-5.0, norm_log2_max=9.0),
    ClarkHashConfig(33, sketch_dim=10, bits=8, hashes_per_input=255, clip=4.0),
    ClarkHashConfig(20, sketch_dim=50, bits=5, hashes_per_input=2),
]


def random_rows(rng, n, d, metric):
    x = rng.standard_normal((n, d)).astype(np.float32)
    if metric == "dot":
        x *= (2.0 ** rng.uniform(-12, 12, (n, 1))).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = 0.0
    return x


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"d{c.input_dim}m{c.sketch_dim}b{c.bits}{c.metric}")
def test_backends_write_the_same_bytes_and_scores(cfg):
    rng = np.random.default_rng(cfg.sketch_dim)
    x = random_rows(rng, 150, cfg.input_dim, cfg.metric)
    npc, pyc = ClarkHash(cfg, "numpy"), ClarkHash(cfg, "python")
    a, b = npc.encode(x), pyc.encode(x.tolist())
    assert a.codes_bytes() == b.codes_bytes()
    assert a.norm_codes_bytes() == b.norm_codes_bytes()
    for q in random_rows(rng, 3, cfg.input_dim, cfg.metric):
        qa, qb = npc.sketch_query(q), pyc.sketch_query(list(q))
        assert qa.values.tobytes() == array("f", qb.values).tobytes()
        assert qa.norm == qb.norm
        assert npc.score(qa, a).tobytes() == array("f", pyc.score(qb, b)).tobytes()
    da, db = npc.decode_sketch(a), pyc.decode_sketch(b)
    assert da.tobytes() == b"".join(r.tobytes() for r in db)


def test_input_forms_agree(backend):
    cfg = ClarkHashConfig(16, sketch_dim=8)
    codec = ClarkHash(cfg, backend)
    x = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    ref = codec.encode(x).codes_bytes()
    assert codec.encode(x.tolist()).codes_bytes() == ref
    assert codec.encode(x.astype("<f4").tobytes()).codes_bytes() == ref
    assert codec.encode(memoryview(x.astype("<f4").tobytes())).codes_bytes() == ref
    assert codec.encode(x[2]).codes_bytes() == ref[2 * 4:3 * 4]
    assert codec.encode_vector(x[2]) == ref[8:12]
    assert codec.encode(x.astype(np.float64)).codes_bytes() == ref
    ints = np.arange(16).reshape(1, 16)
    assert len(codec.encode(ints)) == 1
    assert len(codec.encode(np.zeros((0, 16), np.float32))) == 0


@pytest.mark.parametrize("bad, err, text", [
    (np.zeros((2, 15)), DimensionError, "dimension 15"),
    (np.zeros((2, 2, 16)), InvalidInputError, "1-D or 2-D"),
    (np.array([["a"] * 16]), InvalidInputError, "dtype"),
    (np.zeros((1, 16), dtype=complex), InvalidInputError, "dtype"),
    (b"\x00" * 10, DimensionError, "multiple of"),
])
def test_bad_shapes_and_types(bad, err, text):
    with pytest.raises(err, match=text):
        ClarkHash(ClarkHashConfig(16), "numpy").encode(bad)


def test_bad_shapes_python_backend():
    codec = ClarkHash(ClarkHashConfig(4), "python")
    with pytest.raises(DimensionError, match="row 1 has dimension 3"):
        codec.encode([[1, 2, 3, 4], [1, 2, 3]])
    with pytest.raises(InvalidInputError, match="row 0"):
        codec.encode([[1, 2, "x", 4]])
    with pytest.raises(InvalidInputError, match="deeper"):
        codec.encode([[[1], 2, 3, 4]])


def test_bad_rows_name_rows_and_add_nothing(backend):
    codec = ClarkHash(ClarkHashConfig(8, sketch_dim=8), backend)
    x = np.ones((6, 8), np.float32)
    x[1, 3] = np.nan
    x[2] = 0.0
    x[3, 0] = np.inf
    x[4, 0] = 1e30  # squared norm overflows float32
    with pytest.raises(InvalidVectorError) as info:
        codec.encode(x)
    assert sorted(info.value.rows) == [1, 2, 3, 4]
    assert "row 1: contains NaN" in str(info.value)
    assert "norm must be positive" in info.value.rows[2]
    assert "overflows" in info.value.rows[4]
    enc = codec.encode(x, errors="skip")
    assert enc.rows == [0, 5] and sorted(enc.skipped) == [1, 2, 3, 4]
    assert enc.codes_bytes() == codec.encode(x[[0, 5]]).codes_bytes()
    for q in (x[1], x[2], x[3], x[4]):
        with pytest.raises(InvalidVectorError):
            codec.sketch_query(q)
    with pytest.raises(InvalidInputError, match="errors must be"):
        codec.encode(x, errors="ignore")


def test_tiny_but_valid_norm_is_accepted(backend):
    codec = ClarkHash(ClarkHashConfig(8, sketch_dim=8), backend)
    x = np.zeros((1, 8), np.float32)
    x[0, 0] = np.nextafter(np.float32(2**-23), np.float32(1))
    assert len(codec.encode(x)) == 1
    x[0, 0] = np.float32(2**-23)
    with pytest.raises(InvalidVectorError):
        codec.encode(x)


def test_foreign_codes_are_refused():
    cfg = ClarkHashConfig(16, sketch_dim=10, bits=3)  # 30 bits -> 4 bytes, 2 padding bits
    other = ClarkHashConfig(16, sketch_dim=10, bits=3, seed=5)
    codec = ClarkHash(cfg)
    enc = codec.encode(np.ones((2, 16), np.float32))
    with pytest.raises(ConfigMismatchError, match="multiple of"):
        EncodedBatch.from_bytes(cfg, enc.codes_bytes()[:-1])
    with pytest.raises(ConfigMismatchError, match="padding bits"):
        EncodedBatch.from_bytes(cfg, b"\xff" * 4)
    with pytest.raises(ConfigMismatchError, match=other.fingerprint):
        EncodedBatch.from_bytes(cfg, enc.codes_bytes(), fingerprint=other.fingerprint)
    foreign = ClarkHash(other).encode(np.ones((1, 16), np.float32))
    with pytest.raises(ConfigMismatchError):
        codec.score(codec.sketch_query(np.ones(16)), foreign)
    with pytest.raises(ConfigMismatchError):
        ClarkHash(other).score(codec.sketch_query(np.ones(16)), foreign)
    dot = ClarkHashConfig(16, metric="dot")
    with pytest.raises(ConfigMismatchError, match="norm codes"):
        EncodedBatch.from_bytes(dot, bytes(dot.code_bytes))
    with pytest.raises(ConfigMismatchError, match="norm codes hold"):
        EncodedBatch.from_bytes(dot, bytes(dot.code_bytes), b"\x00")


def test_decode_sketch_is_what_scores_use(backend):
    cfg = ClarkHashConfig(32, sketch_dim=16, bits=4)
    codec = ClarkHash(cfg, backend)
    rng = np.random.default_rng(4)
    enc = codec.encode(rng.standard_normal((20, 32)).astype(np.float32))
    deq = np.asarray(codec.decode_sketch(enc), dtype=np.float32)
    q = codec.sketch_query(rng.standard_normal(32).astype(np.float32))
    qv = np.asarray(q.values, dtype=np.float32)
    acc = np.zeros(20, np.float32)
    for k in range(16):  # the crate's sequential order
        acc = acc + qv[k] * deq[:, k]
    assert (acc / np.float32(16)).tobytes() == np.asarray(codec.score(q, enc), np.float32).tobytes()
    assert (np.abs(deq) <= cfg.clip).all()


def test_alias_and_sizes():
    codec = SQuaJL(ClarkHashConfig(384))
    assert codec.code_bytes == 48 and codec.storage_bytes_per_vector == 48
    assert codec.compression_ratio_vs_f32 == 32.0
    assert codec.backend in ("numpy", "python")


def test_python_backend_needs_no_numpy(tmp_path):
    """Run encode + search in a subprocess where importing numpy fails."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "numpy" or name.startswith("numpy."):
                    raise ImportError("numpy blocked for this test")
        sys.meta_path.insert(0, Block())
        from clark_hash_web import ClarkHash, ClarkHashConfig, FlatIndex, available_backends
        assert available_backends() == ["python"], available_backends()
        codec = ClarkHash(ClarkHashConfig(8, sketch_dim=8))
        assert codec.backend == "python"
        idx = FlatIndex(codec)
        idx.add([[1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3, 2, 1]], ids=["a", "b"])
        ids, scores = idx.search([1, 2, 3, 4, 5, 6, 7, 8], 2)
        print(",".join(ids), scores.tobytes().hex(), idx.encoded().codes_bytes().hex())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=str(tmp_path), env={"PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[1])})
    assert out.returncode == 0, out.stderr
    ids, scores, hexcodes = out.stdout.split()
    ref = FlatIndex(ClarkHash(ClarkHashConfig(8, sketch_dim=8), "numpy"))
    ref.add([[1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3, 2, 1]], ids=["a", "b"])
    ref_ids, ref_scores = ref.search([1, 2, 3, 4, 5, 6, 7, 8], 2)
    assert ids.split(",") == ref_ids and scores == ref_scores.tobytes().hex()
    assert hexcodes == ref.encoded().codes_bytes().hex()


def test_struct_helpers_round_trip():
    from clark_hash_web.float32 import bits_of, f32, from_bits, round_half_away

    assert bits_of(from_bits(0x3F800001)) == 0x3F800001
    assert f32(1e39) == float("inf")
    assert round_half_away(2.5) == 3 and round_half_away(-2.5) == -3
    assert round_half_away(0.49999997) == 0
    assert struct.pack("<f", f32(0.1)) == struct.pack("<f", 0.1)


@pytest.mark.parametrize("n", [1, 2, 3, 8, 100, 700])
def test_norm_sums_are_sequential_like_the_crate(n):
    """The numpy backend sums squared coordinates feature after feature, for every batch
    width: bit-identical to a plain loop, on data where numpy's pairwise summation
    (a contiguous-axis sum) gives other bits."""
    from clark_hash_web.backends.numpy_backend import _sequential_row_sum

    rng = np.random.default_rng(n)
    sq = (rng.standard_normal((384, n)) * 10.0 ** rng.integers(-3, 4, (384, n))) ** 2
    sq = np.ascontiguousarray(sq.astype(np.float32))
    want = np.zeros(n, dtype=np.float32)
    for row in sq:
        want = want + row
    got = _sequential_row_sum(sq, np.empty(n, dtype=np.float32))
    assert got.tobytes() == want.tobytes()
    pairwise = np.ascontiguousarray(sq.T).sum(axis=1, dtype=np.float32)
    assert n < 8 or pairwise.tobytes() != want.tobytes()      # the data tells them apart
