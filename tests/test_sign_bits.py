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
