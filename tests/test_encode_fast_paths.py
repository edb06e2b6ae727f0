"""The encoders' speed paths, pinned byte for byte to the pure-Python reference.

* Clark Hash quantization (uint8 ``trunc + (fraction >= 0.5)`` levels, NaN
  columns found from the norms) on every level boundary's float32
  neighbourhood, exact ties and the one value ``v = 0.5 - 2**-25`` where
  ``floor(v + 0.5)`` would round up;
* Clark Hash encode at batch sizes around the chunk boundaries, and the one-column
  norm sum of a query sketch (one np.add.accumulate);
* the Hadamard projector's mirrored last block (the penultimate stage's
  all-zero half is not transformed) and the row check fused into its chunks.
"""

import numpy as np
import pytest

from clark_hash_web import ClarkHash, ClarkHashConfig
from clark_hash_web.backends import numpy_backend
from clark_hash_web.codecs import bitpack
from clark_hash_web.codecs import exact_projection as xp
from clark_hash_web.codecs.sign_bits import SignBits, SignBitsConfig
from clark_hash_web.errors import InvalidVectorError

# (config, whether some float32 z gives v = 0.5 - 2**-25 exactly)
QUANT_CONFIGS = [(ClarkHashConfig(384), False), (ClarkHashConfig(20, sketch_dim=9, bits=1, clip=0.5), False),
                 (ClarkHashConfig(20, sketch_dim=7, bits=3, clip=2.0), True),
                 (ClarkHashConfig(20, sketch_dim=5, bits=8, clip=4.0), True),
                 (ClarkHashConfig(20, sketch_dim=11, bits=4, clip=1.0), True),
                 (ClarkHashConfig(20, sketch_dim=11, bits=5, clip=0.7), False)]


def _boundary_values(cfg):
    """float32 z near every level boundary (+-40 ulps), clip edges, zeros, ties."""
    L, c = cfg.levels, np.float32(cfg.clip)
    centers = [((k + 0.5) / L) * 2 * float(c) - float(c) for k in range(L)]
    centers += [0.0, float(c), -float(c), 2 * float(c), -2 * float(c), 1e-30, -1e-30]
    out = []
    for z0 in np.asarray(centers, dtype=np.float32):
        z = z0
        for _ in range(40):
            z = np.nextafter(z, np.float32(-np.inf))
        for _ in range(81):
            out.append(z)
            z = np.nextafter(z, np.float32(np.inf))
    out += [np.float32(-0.0), np.float32(3e38), np.float32(-3e38)]
    return np.asarray(out, dtype=np.float32)


def _v(cfg, z):
    c = np.float32(cfg.clip)
    t = numpy_backend.CodecTables(cfg)
    return ((np.clip(z, -c, c) + c) / np.float32(t.two_c)) * np.float32(t.L)


@pytest.mark.parametrize("cfg,reaches", QUANT_CONFIGS,
                         ids=[f"b{c.bits}c{c.clip}" for c, _ in QUANT_CONFIGS])
def test_quantization_matches_the_python_backend_on_every_boundary(cfg, reaches):
    m = cfg.sketch_dim
    z = _boundary_values(cfg)
    v = _v(cfg, z)
    assert (v == np.float32(0.5 - 2.0**-25)).any() == reaches   # floor(v + 0.5) would say 1
    assert (v == np.round(v)).any() and (v - np.floor(v) == np.float32(0.5)).any()   # ties
    pad = -len(z) % m
    z = np.concatenate([z, np.zeros(pad, np.float32)])
    cols = z.reshape(-1, m).T.copy()                     # (m, n) columns of a chunk
    n = cols.shape[1]
    norms = np.ones(n, dtype=np.float32)
    cols[3, :5] = np.nan                                  # reference-mode NaN coordinates
    norms[:5] = np.inf
    cols[:, 6] = np.nan
    norms[6] = np.nan
    np_be = numpy_backend.NumpyBackend(cfg)
    got = np_be.pack_t(np_be.quantize_t(cols.copy(), norms)).T
    py = ClarkHash(cfg, "python")._impl
    want = b"".join(py.quantize(cols[:, j].tolist()) for j in range(n))
    assert got.tobytes() == want


@pytest.mark.parametrize("cfg", [ClarkHashConfig(384), ClarkHashConfig(384, metric="dot"),
                                 ClarkHashConfig(40, sketch_dim=13, bits=3, hashes_per_input=3)])
def test_clark_hash_encode_batches_match_the_python_backend(cfg):
    rng = np.random.default_rng(7)
    chunk = numpy_backend.CHUNK_ROWS
    n = chunk + 3
    x = rng.standard_normal((n, cfg.input_dim)).astype(np.float32)
    x[::7, ::3] = 0.0
    x[5] = np.round(x[5])
    x[9] *= np.float32(2.0**-18)
    x[11] *= np.float32(2.0**40)
    x[12, ::2] = np.float32(1e-40)                       # subnormal entries in a valid row
    x[13] = np.float32(2.0**-149) * rng.integers(-3, 4, cfg.input_dim).astype(np.float32)
    x[13, 0] = 1.0
    num, py = ClarkHash(cfg, "numpy"), ClarkHash(cfg, "python")
    full = num.encode(x)
    ref = py.encode(x.tolist())
    assert full.codes_bytes() == ref.codes_bytes()
    assert full.norm_codes_bytes() == ref.norm_codes_bytes()
    cb = cfg.code_bytes
    for size in (1, 2, chunk - 1, chunk, chunk + 1):
        assert num.encode(x[:size]).codes_bytes() == ref.codes_bytes()[:size * cb]
    assert num.encode(x[0]).codes_bytes() == ref.codes_bytes()[:cb]


def _reference_values(signs, n, m, x):
    z = np.zeros((len(x), n), dtype=np.float32)
    z[:, :len(signs)] = x * signs
    return xp.fwht_numpy(z)[:, :m]


@pytest.mark.parametrize("d,m", [(384, 384), (384, 512), (384, 300), (384, 100), (320, 512),
                                 (352, 512), (400, 512), (300, 260), (200, 256), (100, 128), (24, 32),
                                 (3, 4), (5, 8), (2, 2), (6, 8), (6, 3), (10, 16), (12, 16)])
def test_hadamard_mirrored_last_block_is_bit_identical(d, m):
    """Values (signed zeros included) and codes, for inputs whose padded length ``n``
    has ``n/2 < d <= 3n/4`` (the mirrored path, also after a partial block earlier:
    (320, 512), (352, 512)) and others ((400, 512), (300, 260): the plain stages)."""
    from clark_hash_web.codecs.hadamard_fast import HadamardProjector

    rng = np.random.default_rng(d * 1000 + m)
    codec = SignBits(SignBitsConfig(d, m, rotation="hadamard", seed=d + 1), "numpy")
    signs, n = codec._signs_np, codec.config.padded_dim
    x = rng.standard_normal((130, d)).astype(np.float32)
    x[:10] = -0.0
    x[10:20, n // 2:] = 0.0                              # the mirrored block is all zeros
    x[20:30, : n // 2] = -0.0
    x[30:40] = signs                                     # exact cancellations
    x[40:50] = np.round(x[40:50] * 2) / 2
    x[50:60, n // 2:] = np.where(signs[n // 2:] > 0, np.float32(-0.0), np.float32(0.0))
    x[60:70] = np.where(signs > 0, np.float32(-0.0), np.float32(0.0))      # D x = -0.0
    x[70:80, ::3] = np.float32(1e-40)                    # subnormal entries
    x[80:90] = np.float32(2.0**-149) * rng.integers(-3, 4, (10, d)).astype(np.float32)
    want = _reference_values(signs, n, m, x)
    zero = want == 0
    assert (zero & ~np.signbit(want)).any()
    if m > n // 2:
        assert (zero & np.signbit(want)).any()
    for width in (8, 16, 1024):
        p = HadamardProjector(signs, n, m, width)
        assert p.values(x).tobytes() == want.tobytes()
        assert p.codes(x).tobytes() == bitpack.pack_signs_numpy(want).tobytes()


def test_hadamard_mirror_is_taken_for_the_profile():
    """The fast path must actually run for sign-bits:384:rotation=hadamard."""
    from clark_hash_web.codecs.hadamard_fast import HadamardProjector

    p = HadamardProjector(np.ones(384, np.float32), 512, 384, 8)
    assert p.mirror_stage == 128
    assert HadamardProjector(np.ones(400, np.float32), 512, 384, 8).mirror_stage is None


@pytest.mark.parametrize("d,m", [(384, 384), (13, 16), (100, 64)])
def test_hadamard_encode_checks_rows_like_the_python_backend(d, m):
    """The max |x_i| taken inside the projector's chunks rejects the same rows for
    the same reasons, and keeps the same codes, at batch sizes around a chunk."""
    from clark_hash_web.codecs.hadamard_fast import CHUNK_ROWS

    rng = np.random.default_rng(d)
    cfg = SignBitsConfig(d, m, rotation="hadamard")
    num, py = SignBits(cfg, "numpy"), SignBits(cfg, "python")
    x = rng.standard_normal((CHUNK_ROWS + 5, d)).astype(np.float32)
    x[3, 1] = np.nan
    x[4, 0] = np.inf
    x[5, -1] = -np.inf
    x[6] = 0.0
    x[7] = -0.0
    x[8] *= np.float32(2.0**-70)
    x[9, 2] = np.float32(2.0**61)
    x[10, 2] = np.float32(-2.0**61)
    x[11] = np.float32(2.0**-60)                          # exactly at the limits: accepted
    x[12] = np.float32(2.0**60)
    x[CHUNK_ROWS] = np.nan
    with pytest.raises(InvalidVectorError) as e_num:
        num.encode(x)
    with pytest.raises(InvalidVectorError) as e_py:
        py.encode(x.tolist())
    assert e_num.value.rows == e_py.value.rows
    for size in (1, 13, CHUNK_ROWS, CHUNK_ROWS + 5):
        a = num.encode(x[:size], errors="skip")
        b = py.encode(x[:size].tolist(), errors="skip")
        assert a.codes_bytes() == b.codes_bytes()
        assert a.skipped == b.skipped and list(a.rows) == list(b.rows)


def test_single_column_norm_sum_is_sequential():
    """A query sketch (one column) sums its squares with one np.add.accumulate: the
    same bits as a plain loop, on data where numpy's pairwise sum differs."""
    from clark_hash_web.backends.numpy_backend import _sequential_row_sum

    rng = np.random.default_rng(3)
    for trial in range(20):
        sq = (rng.standard_normal((384, 1)) * 10.0 ** rng.integers(-3, 4, (384, 1))) ** 2
        sq = np.ascontiguousarray(sq.astype(np.float32))
        want = np.float32(0)
        for v in sq[:, 0]:
            want = np.float32(want + v)
        got = _sequential_row_sum(sq, np.empty(1, dtype=np.float32))
        assert got.tobytes() == np.float32(want).tobytes()
        if np.float32(sq[:, 0].sum(dtype=np.float32)) != want:
            break
    else:
        raise AssertionError("the data never told pairwise and sequential sums apart")
    cfg = ClarkHashConfig(384)
    x = sq[:, 0] ** 0.5 * np.where(rng.random(384) < 0.5, -1, 1).astype(np.float32)
    num, py = ClarkHash(cfg, "numpy").sketch_query(x), ClarkHash(cfg, "python").sketch_query(x.tolist())
    assert np.asarray(num.values).tobytes() == py.values.tobytes()
    assert np.float32(num.norm).tobytes() == np.float32(py.norm).tobytes()
