"""ITQ learned head: training, parameters in the config bytes and fingerprint."""

from __future__ import annotations

import numpy as np
import pytest

from binary_helpers import clustered
from clark_hash_web.errors import ConfigError, InvalidInputError
from clark_hash_web.codecs.itq import ITQ, ITQConfig, train_itq


@pytest.fixture(scope="module")
def trained():
    return train_itq(clustered(600, 32, seed=1), n_bits=24, iterations=30)


def test_parameters_round_trip_through_bytes(trained):
    raw = trained.to_bytes()
    assert raw[0] == 4 and len(raw) == 16 + 4 * 32 + 4 * 32 * 24
    back = ITQConfig.from_bytes(raw)
    assert back == trained and back.fingerprint == trained.fingerprint
    assert back.to_bytes() == raw
    x = clustered(20, 32, seed=2)
    assert ITQ(back, "python").encode(x).codes_bytes() == ITQ(trained, "numpy").encode(x).codes_bytes()


def test_fingerprint_changes_when_any_parameter_changes(trained):
    raw = bytearray(trained.to_bytes())
    seen = {trained.fingerprint}
    for pos in (16, 16 + 4 * 31 + 3, 16 + 4 * 32, len(raw) - 1):
        changed = bytearray(raw)
        changed[pos] ^= 0x01
        cfg = ITQConfig.from_bytes(bytes(changed))
        assert cfg != trained
        seen.add(cfg.fingerprint)
    assert len(seen) == 5


def test_itq_lowers_quantization_loss_and_is_deterministic(trained):
    x = clustered(600, 32, seed=1).astype(np.float64)
    proj = np.frombuffer(trained.projection, dtype="<f4").reshape(32, 24).astype(np.float64)
    mean = np.frombuffer(trained.mean, dtype="<f4").astype(np.float64)
    v = (x - mean) @ proj
    np.testing.assert_allclose(proj.T @ proj, np.eye(24), atol=1e-5)  # orthonormal columns
    loss = lambda y: np.square(np.sign(y) - y / np.abs(y).mean()).mean()
    start = train_itq(x, n_bits=24, iterations=0)
    v0 = (x - mean) @ np.frombuffer(start.projection, dtype="<f4").reshape(32, 24)
    assert loss(v) < loss(v0)
    assert train_itq(x, n_bits=24, iterations=30).to_bytes() == trained.to_bytes()


def test_bad_parameters_and_samples():
    with pytest.raises(ConfigError):
        ITQConfig(input_dim=4, n_bits=5, mean=bytes(16), projection=bytes(80))
    with pytest.raises(ConfigError):
        ITQConfig(input_dim=4, n_bits=2, mean=bytes(15), projection=bytes(32))
    with pytest.raises(ConfigError):
        ITQConfig(input_dim=1, n_bits=1, mean=b"\x00\x00\xc0\x7f", projection=bytes(4))  # NaN
    cfg = ITQConfig(input_dim=4, n_bits=2, mean=bytes(16), projection=bytes(32))
    with pytest.raises(ConfigError):
        ITQConfig.from_bytes(cfg.to_bytes()[:-4])
    with pytest.raises(InvalidInputError):
        train_itq(np.ones((1, 4)))
    with pytest.raises(InvalidInputError):
        train_itq(np.full((5, 4), np.nan))
