"""Hyperplane LSH: config bytes, seeded planes, exact sign projection, angle estimate."""

from __future__ import annotations

import numpy as np
import pytest

from binary_helpers import clustered
from clark_hash_web.codecs import exact_projection as xp
from clark_hash_web.errors import ConfigError
from clark_hash_web.codecs.hashing import splitmix64
from clark_hash_web.codecs.hyperplane_lsh import HyperplaneLSH, HyperplaneLSHConfig


def test_config_bytes_round_trip_and_fingerprint():
    cfg = HyperplaneLSHConfig(input_dim=384)
    assert (cfg.n_bits, cfg.code_bytes, cfg.storage_bytes_per_vector) == (384, 48, 48)
    raw = cfg.to_bytes()
    assert len(raw) == 24 and raw[0] == 2
    assert HyperplaneLSHConfig.from_bytes(raw) == cfg
    assert len(cfg.fingerprint) == 16
    assert HyperplaneLSHConfig(input_dim=384, seed=1).fingerprint != cfg.fingerprint
    assert HyperplaneLSHConfig(input_dim=384, n_bits=383).fingerprint != cfg.fingerprint
    for bad in (dict(input_dim=0), dict(input_dim=4, n_bits=0), dict(input_dim=4, seed=-1),
                dict(input_dim=4.5), dict(input_dim=True)):
        with pytest.raises(ConfigError):
            HyperplaneLSHConfig(**bad)
    with pytest.raises(ConfigError):
        HyperplaneLSHConfig.from_bytes(raw[:-1])
    with pytest.raises(ConfigError):
        HyperplaneLSHConfig.from_bytes(b"\x03" + raw[1:])
    with pytest.raises(ConfigError):
        HyperplaneLSHConfig.from_bytes(raw[:2] + b"\x01" + raw[3:])


def test_planes_are_the_documented_integers():
    seed = 12345
    planes = xp.gaussian_planes_numpy(seed, 7, 5)
    assert planes.dtype == np.float32
    py = xp.gaussian_planes_python(seed, 7, 5)
    assert planes.tobytes() == b"".join(r.tobytes() for r in py)
    h = splitmix64(seed ^ ((3 * 5 + 2) * 0x9E3779B97F4A7C15 % 2**64))
    s = sum((h >> (16 * t)) & 0xFFFF for t in range(4)) - 131070
    assert planes[3, 2] == s / 65536
    big = xp.gaussian_planes_numpy(seed, 200, 200)
    assert abs(big.mean()) < 0.01 and abs(big.std() - (4 * (65536**2 - 1) / 12) ** 0.5 / 65536) < 0.01


def _near_zero_inputs(planes, n, seed):
    """Rows whose projections on some planes are within a few ulps of zero."""
    rng = np.random.default_rng(seed)
    d, m = planes.shape
    x = rng.standard_normal((n, d))
    p = planes.astype(np.float64)
    for r in range(n):
        j = r % m
        x[r] -= (x[r] @ p[:, j]) / (p[:, j] @ p[:, j]) * p[:, j]
    return x.astype(np.float32)


def test_fast_signs_equal_exact_sequential_signs_even_near_zero():
    planes = xp.gaussian_planes_numpy(99, 64, 40)
    x = _near_zero_inputs(planes, 200, 1)
    exact = xp.project_exact_numpy(x, planes)
    # the construction must really produce undecidable-by-BLAS entries
    est = x.astype(np.float64) @ planes.astype(np.float64)
    bound = (np.abs(x).astype(np.float64) @ np.abs(planes).astype(np.float64)) * 66 * 2.0**-24
    assert (np.abs(est) <= bound).sum() >= 100
    np.testing.assert_array_equal(xp.project_signs_numpy(x, planes, chunk=37), exact > 0)
    # and the exact numpy projection is the sequential float32 sum of the spec
    for r in (0, 17, 199):
        py = xp.project_exact_python(x[r].tolist(), [row for row in
                                                      xp.gaussian_planes_python(99, 64, 40)])
        assert py.tobytes() == exact[r].tobytes()


def test_hamming_estimates_the_angle():
    d = 64
    codec = HyperplaneLSH(HyperplaneLSHConfig(input_dim=d, n_bits=4096), "numpy")
    x = clustered(20, d, seed=8)
    enc = codec.encode(x)
    h = codec.hamming(codec.sketch_query(x[0]), enc)
    angle = np.arccos(np.clip(x.astype(np.float64) @ x[0].astype(np.float64), -1, 1))
    np.testing.assert_allclose(np.pi * h / 4096, angle, atol=0.08)
