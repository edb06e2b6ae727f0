"""The codec registry: config bytes and spec strings to configs and codecs."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from clark_hash_web import (ClarkHash, ClarkHashConfig, E8Codes, E8Config, HyperplaneLSH,
                            HyperplaneLSHConfig, SignBits, SignBitsConfig, train_itq)
from clark_hash_web.codecs import registry
from clark_hash_web.errors import ConfigError

STATELESS = {
    "clark-hash:384": ClarkHashConfig(384),
    "clark-hash:100:sketch_dim=384,bits=1": ClarkHashConfig(100, sketch_dim=384, bits=1),
    "clark-hash:384:metric=dot,seed=0x7": ClarkHashConfig(384, metric="dot", seed=7),
    "e8:384": E8Config(384),
    "e8:100": E8Config(100),
    "sign-bits:384": SignBitsConfig(384),
    "sign-bits:100:rotation=hadamard": SignBitsConfig(100, rotation="hadamard"),
    "hyperplane-lsh:384": HyperplaneLSHConfig(384),
    "hyperplane-lsh:100:n_bits=256,seed=0x9": HyperplaneLSHConfig(100, n_bits=256, seed=9),
}


def test_every_known_kind_is_registered_under_its_byte():
    kinds = registry.registered()
    assert sorted(kinds) == sorted(registry.KNOWN)
    for kind, entry in kinds.items():
        assert entry.kind == kind and entry.name == registry.KNOWN[kind][0]


@pytest.mark.parametrize("spec", list(STATELESS))
def test_spec_names_the_config_and_back(spec):
    cfg = STATELESS[spec]
    assert registry.config_from_spec(spec) == cfg
    assert registry.spec_of(cfg) == spec
    assert registry.config_from_spec(registry.spec_of(cfg)) == cfg


@pytest.mark.parametrize("spec", list(STATELESS))
def test_config_bytes_give_back_config_and_codec(spec):
    cfg = STATELESS[spec]
    data = cfg.to_bytes()
    assert registry.config_from_bytes(data) == cfg
    codec = registry.codec_from_config(data, backend="python")
    assert codec.config == cfg and codec.backend == "python"
    assert type(codec) is registry.kind_of(cfg).codec_type
    assert type(registry.codec_from_spec(spec)) is type(codec)


def test_codec_types():
    assert isinstance(registry.codec_from_spec("e8:384"), E8Codes)
    assert isinstance(registry.codec_from_spec("clark-hash:384"), ClarkHash)
    assert isinstance(registry.codec_from_spec("sign-bits:384"), SignBits)
    assert isinstance(registry.codec_from_spec("hyperplane-lsh:384"), HyperplaneLSH)


def test_trained_itq_round_trips_by_bytes_only():
    rng = np.random.default_rng(0)
    cfg = train_itq(rng.standard_normal((300, 20)).astype(np.float32), iterations=3, seed=2)
    assert registry.config_from_bytes(cfg.to_bytes()) == cfg
    assert registry.describe(cfg)["spec"] is None and registry.describe(cfg)["name"] == "itq"
    with pytest.raises(ConfigError, match="ITQ is trained"):
        registry.config_from_spec("itq:20")
    with pytest.raises(ConfigError, match="no spec string"):
        registry.spec_of(cfg)


def test_as_codec_accepts_every_form():
    codec = E8Codes(E8Config(16), backend="python")
    assert registry.as_codec(codec) is codec
    for form in ("e8:16", E8Config(16), E8Config(16).to_bytes()):
        assert registry.as_codec(form).config == E8Config(16)
    with pytest.raises(ConfigError, match="python backend, not numpy"):
        registry.as_codec(codec, backend="numpy")


def test_describe():
    d = registry.describe(E8Config(384))
    assert d == {"kind": 5, "name": "e8", "title": "E8 lattice", "spec": "e8:384",
                 "fingerprint": E8Config(384).fingerprint, "input_dim": 384, "code_bytes": 48,
                 "metric": "cosine", "bytes_per_vector": 48}


@pytest.mark.parametrize("spec, words", [
    ("e8", "not NAME:INPUT_DIM"),
    ("e8:", "not NAME:INPUT_DIM"),
    ("nope:384", "unknown codec 'nope' \\(known: clark-hash, hyperplane-lsh, sign-bits, itq, e8, learned-e8\\)"),
    ("e8:abc", "input dimension 'abc' is not an integer"),
    ("e8:0", "input_dim must be in 1..65536"),
    ("clark-hash:384:bits=9", "bits must be in 1..8"),
    ("clark-hash:384:bitz=2", "has no option 'bitz'"),
    ("clark-hash:384:bits", "'bits' is not KEY=VALUE"),
    ("sign-bits:384:rotation=spin", "rotation must be one of"),
    ("e8:384:input_dim=3", "has no option 'input_dim'"),
])
def test_bad_specs_say_what(spec, words):
    with pytest.raises(ConfigError, match=words):
        registry.config_from_spec(spec)


@pytest.mark.parametrize("data, words", [
    (b"", "config bytes are empty"),
    (b"\x09\x00", "unknown codec kind 9"),
    (b"\x05\x01", "an E8 config is 16 bytes, got 2"),
    (bytes([5, 1]) + bytes(14), "input_dim must be in 1..65536"),
])
def test_bad_config_bytes_say_what(data, words):
    with pytest.raises(ConfigError, match=words):
        registry.config_from_bytes(data)


def test_kind_of_rejects_non_configs():
    with pytest.raises(ConfigError, match="not a codec config"):
        registry.kind_of(object())


def test_register_refuses_bad_entries():
    with pytest.raises(ConfigError, match="1..255"):
        registry.register(registry.CodecKind(0, "zero", "Zero", object, object))
    with pytest.raises(ConfigError, match="already kind 5"):
        registry.register(registry.CodecKind(77, "e8", "E8 again", object, object))


def test_a_file_kind_imports_its_module_in_a_fresh_interpreter():
    """Reading a config never depends on which codec modules the caller imported."""
    code = (
        "import sys\n"
        "from clark_hash_web.codecs import registry\n"
        "registry._KINDS.pop(5)\n"
        "del sys.modules['clark_hash_web.codecs.e8']\n"
        "cfg = registry.config_from_bytes(bytes.fromhex(%r))\n"
        "assert type(cfg).__name__ == 'E8Config' and cfg.input_dim == 384\n"
        % E8Config(384).to_bytes().hex())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
