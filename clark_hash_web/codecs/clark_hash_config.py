"""Codec configuration: :class:`ClarkHashConfig`.

A configuration fixes every number that influences the bytes of a code. It is
frozen, validated on construction, and identified by a ``fingerprint`` that
every stored artifact (sketch files, browser stores, sync collections)
carries, so that codes of different configurations are never mixed.

Canonical bytes (``to_bytes``, 32 bytes, little-endian)
--------------------------------------------------------
======  ====  =====================================================
offset  size  field
======  ====  =====================================================
0       1     codec kind: 1 = Clark Hash
1       1     metric: 0 = cosine, 1 = dot
2       1     bits (1..8)
3       1     hashes_per_input (1..255)
4       4     input_dim (u32)
8       4     sketch_dim (u32)
12      4     clip (f32)
16      8     seed (u64)
24      4     norm_log2_min (f32)
28      4     norm_log2_max (f32)
======  ====  =====================================================

``fingerprint`` is the first 8 bytes of
``sha256(b"clark-hash-web/config\\x00" + to_bytes())``, as 16 hex digits.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass, field
from typing import Literal

from ..errors import ConfigError
from ..float32 import f32

Metric = Literal["cosine", "dot"]

CODEC_CLARK_HASH = 1
DEFAULT_SEED = 0x5EEDCAFE12345678
_METRICS = ("cosine", "dot")
_LAYOUT = struct.Struct("<BBBBIIfQff")
CONFIG_BYTES = _LAYOUT.size  # 32


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) or type(v).__name__ in (
        "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


def _f32_field(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    r = f32(v)
    if not math.isfinite(v) or not math.isfinite(r):
        raise ConfigError(f"{name} must be finite in float32, got {value!r}")
    return r


@dataclass(frozen=True)
class ClarkHashConfig:
    """Everything that determines the bytes of a Clark Hash code.

    Parameters
    ----------
    input_dim : int
        Length ``d`` of the input embeddings (> 0).
    sketch_dim : int, default 96
        Number ``m`` of sketch coordinates (> 0).
    bits : int, default 4
        Bits per stored coordinate, 1..8.
    hashes_per_input : int, default 4
        Buckets each input dimension is added to, 1..255.
    clip : float, default 3.0
        Sketch coordinates are clamped to [-clip, clip] before quantization;
        stored as float32, finite and > 0.
    seed : int, default 0x5EEDCAFE12345678
        u64 seed of the sign/bucket hash.
    metric : {"cosine", "dot"}, default "cosine"
        ``"dot"`` also stores a 16-bit log-scale norm code per vector.
    norm_log2_min, norm_log2_max : float, default -16.0, 16.0
        Range of log2(norm) covered by the norm code (float32, min < max).

    Examples
    --------
    >>> cfg = ClarkHashConfig(input_dim=384)
    >>> cfg.code_bytes, cfg.fingerprint
    (48, '...')
    """

    input_dim: int
    sketch_dim: int = 96
    bits: int = 4
    hashes_per_input: int = 4
    clip: float = 3.0
    seed: int = DEFAULT_SEED
    metric: Metric = "cosine"
    norm_log2_min: float = -16.0
    norm_log2_max: float = 16.0
    fingerprint: str = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        def setf(name, value):
            object.__setattr__(self, name, value)

        for name, lo, hi in (("input_dim", 1, 2**32 - 1), ("sketch_dim", 1, 2**32 - 1),
                             ("bits", 1, 8), ("hashes_per_input", 1, 255)):
            v = getattr(self, name)
            if not _is_int(v):
                raise ConfigError(f"{name} must be an integer, got {v!r}")
            v = int(v)
            if not lo <= v <= hi:
                raise ConfigError(f"{name} must be in {lo}..{hi}, got {v}")
            setf(name, v)
        if not _is_int(self.seed) or not 0 <= int(self.seed) < 2**64:
            raise ConfigError(f"seed must be an integer in 0..2**64-1, got {self.seed!r}")
        setf("seed", int(self.seed))
        clip = _f32_field("clip", self.clip)
        if not clip > 0:
            raise ConfigError(f"clip must be > 0, got {self.clip!r}")
        setf("clip", clip)
        if self.metric not in _METRICS:
            raise ConfigError(f"metric must be 'cosine' or 'dot', got {self.metric!r}")
        lo = _f32_field("norm_log2_min", self.norm_log2_min)
        hi = _f32_field("norm_log2_max", self.norm_log2_max)
        if not lo < hi:
            raise ConfigError(
                f"norm_log2_min must be < norm_log2_max, got {lo!r} >= {hi!r}")
        if not math.isfinite(f32(hi - lo)):
            raise ConfigError("norm_log2_max - norm_log2_min overflows float32")
        setf("norm_log2_min", lo)
        setf("norm_log2_max", hi)
        digest = hashlib.sha256(b"clark-hash-web/config\x00" + self.to_bytes()).digest()
        setf("fingerprint", digest[:8].hex())

    # -- derived sizes -----------------------------------------------------
    @property
    def levels(self) -> int:
        """Largest quantization level ``L = 2**bits - 1``."""
        return (1 << self.bits) - 1

    @property
    def code_bytes(self) -> int:
        """Bytes of one packed code: ``ceil(sketch_dim * bits / 8)``."""
        return (self.sketch_dim * self.bits + 7) // 8

    @property
    def storage_bytes_per_vector(self) -> int:
        """Packed code bytes plus 2 for the norm code in dot mode."""
        return self.code_bytes + (2 if self.metric == "dot" else 0)

    @property
    def compression_ratio_vs_f32(self) -> float:
        """Dense float32 bytes (``4 * input_dim``) per stored byte."""
        return 4 * self.input_dim / self.storage_bytes_per_vector

    # -- serialization -----------------------------------------------------
    def to_bytes(self) -> bytes:
        """The 32 canonical bytes described in the module docstring."""
        return _LAYOUT.pack(CODEC_CLARK_HASH, _METRICS.index(self.metric), self.bits,
                            self.hashes_per_input, self.input_dim, self.sketch_dim,
                            self.clip, self.seed, self.norm_log2_min, self.norm_log2_max)

    @classmethod
    def from_bytes(cls, data: bytes) -> "ClarkHashConfig":
        """Inverse of :meth:`to_bytes`; raises ConfigError on malformed bytes."""
        if len(data) != CONFIG_BYTES:
            raise ConfigError(f"a config is {CONFIG_BYTES} bytes, got {len(data)}")
        kind, metric, bits, s, d, m, clip, seed, lo, hi = _LAYOUT.unpack(bytes(data))
        if kind != CODEC_CLARK_HASH:
            raise ConfigError(f"unknown codec kind {kind} (expected {CODEC_CLARK_HASH})")
        if metric >= len(_METRICS):
            raise ConfigError(f"unknown metric number {metric}")
        return cls(input_dim=d, sketch_dim=m, bits=bits, hashes_per_input=s, clip=clip,
                   seed=seed, metric=_METRICS[metric], norm_log2_min=lo, norm_log2_max=hi)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict of the fields (seed as an int)."""
        return {"input_dim": self.input_dim, "sketch_dim": self.sketch_dim,
                "bits": self.bits, "hashes_per_input": self.hashes_per_input,
                "clip": self.clip, "seed": self.seed, "metric": self.metric,
                "norm_log2_min": self.norm_log2_min, "norm_log2_max": self.norm_log2_max}

    @classmethod
    def from_dict(cls, d: dict) -> "ClarkHashConfig":
        """Build from a dict such as :meth:`to_dict` returns (unknown keys are errors)."""
        allowed = set(cls.__dataclass_fields__) - {"fingerprint"}
        unknown = set(d) - allowed
        if unknown:
            raise ConfigError(f"unknown config field(s): {sorted(unknown)}")
        if "input_dim" not in d:
            raise ConfigError("config needs input_dim")
        return cls(**d)


SQuaJLConfig = ClarkHashConfig
