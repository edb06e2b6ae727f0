"""Random-hyperplane LSH bit codes: :class:`HyperplaneLSHConfig`, :class:`HyperplaneLSH`.

Bit ``j`` of a code is the sign of ``x . P[:, j]`` for ``m`` random Gaussian
planes derived from a seed (:func:`clark_hash_web.codecs.exact_projection.gaussian_planes_numpy`),
the projection computed in the exact sequential float32 order described in
:mod:`clark_hash_web.codecs.exact_projection`. The Hamming distance between two
codes estimates the angle between the vectors (``angle ~ pi * h / m``), as in
the random-projection write-up; the default ``"asymmetric"`` score uses the
float projection of the query against the stored bits.

Canonical bytes (``to_bytes``, 24 bytes, little-endian)
--------------------------------------------------------
======  ====  ==========================================
offset  size  field
======  ====  ==========================================
0       1     codec kind = 2
1       1     format of this config = 1
2       2     reserved, 0
4       4     input_dim (u32)
8       4     n_bits (u32)
12      4     reserved, 0
16      8     seed (u64)
======  ====  ==========================================
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from . import exact_projection as xp
from .binary import (CODEC_HYPERPLANE_LSH, BinaryCodec, BinaryConfigMixin, check_int,
                     check_padding)
from .registry import CodecKind, register
from ..errors import ConfigError

DEFAULT_SEED = 0x5EEDCAFE12345678
_LAYOUT = struct.Struct("<BBHIIIQ")


@dataclass(frozen=True)
class HyperplaneLSHConfig(BinaryConfigMixin):
    """Everything that determines the bytes of a hyperplane LSH code.

    Parameters
    ----------
    input_dim : int
        Length ``d`` of the input vectors (1..65536).
    n_bits : int, default 384
        Number of planes = bits per code (1..65536); 384 bits = 48 bytes.
    seed : int
        u64 seed of the planes.
    """

    input_dim: int
    n_bits: int = 384
    seed: int = DEFAULT_SEED

    def __post_init__(self):
        object.__setattr__(self, "input_dim", check_int("input_dim", self.input_dim, 1, 65536))
        object.__setattr__(self, "n_bits", check_int("n_bits", self.n_bits, 1, 65536))
        object.__setattr__(self, "seed", check_int("seed", self.seed, 0, 2**64 - 1))

    kind = CODEC_HYPERPLANE_LSH

    def to_bytes(self) -> bytes:
        return _LAYOUT.pack(CODEC_HYPERPLANE_LSH, 1, 0, self.input_dim, self.n_bits, 0, self.seed)

    @classmethod
    def from_bytes(cls, data) -> "HyperplaneLSHConfig":
        data = bytes(data)
        if len(data) != _LAYOUT.size:
            raise ConfigError(f"a hyperplane LSH config is {_LAYOUT.size} bytes, got {len(data)}")
        kind, fmt, r0, d, m, r1, seed = _LAYOUT.unpack(data)
        if kind != CODEC_HYPERPLANE_LSH:
            raise ConfigError(f"codec kind {kind} at byte 0 is not hyperplane LSH ({CODEC_HYPERPLANE_LSH})")
        if fmt != 1:
            raise ConfigError(f"unknown hyperplane LSH config format {fmt} at byte 1")
        if r0 or r1:
            raise ConfigError("reserved bytes 2..3 / 12..15 of a hyperplane LSH config must be 0")
        return cls(input_dim=d, n_bits=m, seed=seed)

    def to_dict(self) -> dict:
        return {"codec": "hyperplane_lsh", "input_dim": self.input_dim, "n_bits": self.n_bits,
                "seed": self.seed}


class HyperplaneLSH(BinaryCodec):
    """Random-hyperplane LSH codec (same verbs as :class:`~clark_hash_web.ClarkHash`).

    Examples
    --------
    >>> codec = HyperplaneLSH(HyperplaneLSHConfig(input_dim=384))
    >>> enc = codec.encode(vectors)                 # (N, 48) uint8
    >>> scores = codec.score(codec.sketch_query(q), enc)
    """

    config_type = HyperplaneLSHConfig

    def _prepare(self):
        cfg = self.config
        if self.backend == "numpy":
            self._planes = xp.gaussian_planes_numpy(cfg.seed, cfg.input_dim, cfg.n_bits)
        else:
            self._planes = xp.gaussian_planes_python(cfg.seed, cfg.input_dim, cfg.n_bits)

    def _project_numpy(self, rows, exact):
        if exact:
            return xp.project_exact_numpy(rows, self._planes)
        return xp.project_signs_numpy(rows, self._planes)

    def _project_python(self, row):
        return xp.project_exact_python(row, self._planes)


register(CodecKind(CODEC_HYPERPLANE_LSH, "hyperplane-lsh", "hyperplane LSH", HyperplaneLSHConfig,
                   HyperplaneLSH, check_padding))
