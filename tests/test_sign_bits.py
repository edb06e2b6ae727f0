"""Sign-bit (binary hypercube) codes: config, identity and Hadamard rotations."""

from __future__ import annotations

import numpy as np
import pytest

from binary_helpers import clustered
from clark_hash_web.codecs import exact_projection as xp
from clark_hash_web.errors import ConfigError
from clark_hash_web.codecs.sign_bits import SignBits, SignBitsConfig


def test_config_defaults_bytes_and_validation():
    cfg = SignBitsConfig(input_dim=384)
    assert (cfg.n_bits, cfg.code_bytes, cfg.rotation, cfg.seed) == (384, 48, "none", 0)
    assert SignBitsConfig.from_bytes(cfg.to_bytes()) == cfg and cfg.to_bytes()[0] == 3
    h = SignBitsConfig(input_dim=384, rotation="hadamard")
    assert h.padded_dim == 512 and h.fingerprint != cfg.fingerprint
    assert SignBitsConfig.from_bytes(h.to_bytes()) == h
    assert SignBitsConfig(input_dim=384, rotation="hadamard", seed=1).fingerprint != h.fingerprint
    assert SignBitsConfig(input_dim=384, rotation="hadamard", n_bits=512).code_bytes == 64
    with pytest.raises(ConfigError):
        SignBitsConfig(input_dim=384, n_bits=385)
    with pytest.raises(ConfigError):
        SignBitsConfig(input_dim=384, rotation="hadamard", n_bits=513)
    with pytest.raises(ConfigError):
        SignBitsConfig(input_dim=384, rotation="random")
    raw = bytearray(h.to_bytes())
    raw[2] = 7
    with pytest.raises(ConfigError):
        SignBitsConfig.from_bytes(bytes(raw))


@pytest.mark.parametrize("backend", ["numpy", "python"])
def test_plain_sign_bits_are_the_signs(backend):
    x = clustered(10, 20, seed=3)
    codec = SignBits(SignBitsConfig(input_dim=20, n_bits=12), backend)
    bits = np.unpackbits(np.asarray(codec.encode(x).codes), axis=1, bitorder="little")[:, :12]
    np.testing.assert_array_equal(bits, (x[:, :12] > 0).astype(np.uint8))


def test_fwht_python_numpy_identical_and_is_hadamard():
    rng = np.random.default_rng(0)
    for n in (1, 2, 8, 64, 512):
        v = rng.standard_normal((3, n)).astype(np.float32)
        a = xp.fwht_numpy(v)
        for r in range(3):
            assert xp.fwht_python(v[r].tolist()).tobytes() == a[r].tobytes()
        h = np.array([[1.0]])
        while len(h) < n:
            h = np.block([[h, h], [h, -h]])
        np.testing.assert_allclose(a, v.astype(np.float64) @ h.T, rtol=1e-5, atol=1e-4)


def test_hadamard_rotation_preserves_angles():
    d = 96
    x = clustered(30, d, seed=9)
    codec = SignBits(SignBitsConfig(input_dim=d, n_bits=128, rotation="hadamard", seed=3), "numpy")
    y = np.stack([np.asarray(codec.sketch_query(r).values, dtype=np.float64) for r in x])
    # n_bits = padded length: an orthogonal transform up to the factor sqrt(128)
    np.testing.assert_allclose(y @ y.T / 128, x.astype(np.float64) @ x.T.astype(np.float64),
                               atol=1e-5)


def _reference_values(codec, x):
    """FWHT(pad(x * D))[:m] the straightforward way (exact_projection.fwht_numpy)."""
    cfg = codec.config
    z = np.zeros((len(x), cfg.padded_dim), dtype=np.float32)
    z[:, :cfg.input_dim] = x * codec._signs_np
    return xp.fwht_numpy(z)[:, :cfg.n_bits]


@pytest.mark.parametrize("d,m", [(384, 384), (384, 512), (384, 200), (13, 16), (13, 5),
                                 (100, 128), (1, 1), (64, 40)])
def test_hadamard_projector_is_bit_identical_to_the_reference(d, m):
    """Zero-skipping, two-step transposes and the partial last stage change no bit:
    values (signed zeros included: rows that cancel exactly, zeros, -0.0) and codes,
    for chunk widths that leave a partial chunk, and a non-contiguous input."""
    from clark_hash_web.codecs import bitpack
    from clark_hash_web.codecs.hadamard_fast import HadamardProjector

    rng = np.random.default_rng(d + m)
    codec = SignBits(SignBitsConfig(d, m, rotation="hadamard", seed=d), "numpy")
    x = rng.standard_normal((300, d)).astype(np.float32)
    x[:40, : d // 2] = 0.0
    x[40:80] = np.round(x[40:80])
    x[80:90] = -0.0
    x[90:100, ::2] = -0.0
    x[100:110] = codec._signs_np                      # D x = all ones: many exact cancellations
    x[110:120] = np.where(codec._signs_np > 0, np.float32(-0.0), np.float32(0.0))   # D x = -0
    want = _reference_values(codec, x)
    assert (want == 0).any()
    if d == 384 and m >= 384:
        assert (np.signbit(want) & (want == 0)).any()         # -0.0 outputs too
    for width in (8, 40, 1024):
        p = HadamardProjector(codec._signs_np, codec.config.padded_dim, m, width)
        assert p.values(x).tobytes() == want.tobytes()
        assert p.codes(x).tobytes() == bitpack.pack_signs_numpy(want).tobytes()
    wide = np.zeros((300, 2 * d), dtype=np.float32)
    wide[:, ::2] = x
    assert p.values(wide[:, ::2]).tobytes() == want.tobytes()
    assert codec.encode(x[120:]).codes_bytes() == bitpack.pack_signs_numpy(want[120:]).tobytes()
    py = SignBits(SignBitsConfig(d, m, rotation="hadamard", seed=d), "python")
    for i in (0, 95, 105, 299):
        if not np.abs(x[i]).max():
            continue                                   # an all-zero row is refused
        q = py.sketch_query(x[i].tolist())
        assert q.values.tobytes() == want[i].tobytes()
