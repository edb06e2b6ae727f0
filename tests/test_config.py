"""ClarkHashConfig: validation, canonical bytes, fingerprint."""

import pytest

from clark_hash_web import ClarkHashConfig, ConfigError, SQuaJLConfig


def test_defaults_match_the_crate():
    c = ClarkHashConfig(384)
    assert (c.sketch_dim, c.bits, c.hashes_per_input, c.clip, c.seed, c.metric) == (
        96, 4, 4, 3.0, 0x5EEDCAFE12345678, "cosine")
    assert (c.norm_log2_min, c.norm_log2_max) == (-16.0, 16.0)
    assert c.code_bytes == 48 and c.storage_bytes_per_vector == 48
    assert c.compression_ratio_vs_f32 == 32.0
    assert ClarkHashConfig(384, metric="dot").storage_bytes_per_vector == 50
    assert SQuaJLConfig is ClarkHashConfig


@pytest.mark.parametrize("kwargs, field", [
    (dict(input_dim=0), "input_dim"), (dict(input_dim=3.5), "input_dim"),
    (dict(input_dim=8, sketch_dim=0), "sketch_dim"), (dict(input_dim=8, bits=0), "bits"),
    (dict(input_dim=8, bits=9), "bits"), (dict(input_dim=8, hashes_per_input=0), "hashes_per_input"),
    (dict(input_dim=8, hashes_per_input=256), "hashes_per_input"),
    (dict(input_dim=8, clip=0.0), "clip"), (dict(input_dim=8, clip=float("nan")), "clip"),
    (dict(input_dim=8, clip=1e39), "clip"), (dict(input_dim=8, seed=-1), "seed"),
    (dict(input_dim=8, seed=2**64), "seed"), (dict(input_dim=8, metric="l2"), "metric"),
    (dict(input_dim=8, norm_log2_min=1.0, norm_log2_max=1.0), "norm_log2_min"),
    (dict(input_dim=8, bits=True), "bits"),
])
def test_invalid_fields_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        ClarkHashConfig(**kwargs)


def test_bytes_round_trip_and_fingerprint():
    c = ClarkHashConfig(768, sketch_dim=128, bits=3, hashes_per_input=7, clip=2.5, seed=777,
                        metric="dot", norm_log2_min=-8.0, norm_log2_max=20.0)
    raw = c.to_bytes()
    assert len(raw) == 32
    again = ClarkHashConfig.from_bytes(raw)
    assert again == c and again.fingerprint == c.fingerprint
    assert ClarkHashConfig.from_dict(c.to_dict()) == c
    fps = {c.fingerprint}
    for change in (dict(seed=778), dict(bits=4), dict(clip=2.0), dict(metric="cosine"),
                   dict(norm_log2_max=21.0), dict(hashes_per_input=6)):
        d = c.to_dict()
        d.update(change)
        fps.add(ClarkHashConfig.from_dict(d).fingerprint)
    assert len(fps) == 7


def test_clip_is_stored_as_float32():
    c = ClarkHashConfig(8, clip=0.1)
    assert c.clip != 0.1 and abs(c.clip - 0.1) < 1e-8
    assert ClarkHashConfig.from_bytes(c.to_bytes()) == c


def test_from_bytes_rejects_garbage():
    with pytest.raises(ConfigError):
        ClarkHashConfig.from_bytes(b"\x01" * 31)
    raw = bytearray(ClarkHashConfig(8).to_bytes())
    raw[0] = 9
    with pytest.raises(ConfigError, match="codec kind"):
        ClarkHashConfig.from_bytes(bytes(raw))
    with pytest.raises(ConfigError, match="unknown config field"):
        ClarkHashConfig.from_dict({"input_dim": 8, "dims": 3})
