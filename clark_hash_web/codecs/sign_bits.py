"""Binary "hypercube" sign codes: :class:`SignBitsConfig`, :class:`SignBits`.

Bit ``j`` is the sign of coordinate ``j`` of the (optionally rotated)
embedding, as in the CVA-Hash guide's sign-binarized codes, without any
training. Rotations (both exact and deterministic):

* ``"none"``: ``y = x[:n_bits]``;
* ``"hadamard"``: a seeded randomized Hadamard transform. ``x`` is multiplied
  elementwise by seeded random signs ``D`` (exact), zero-padded to
  ``n = next power of two >= input_dim``, transformed with the unnormalized
  fast Walsh-Hadamard transform in float32 with a fixed butterfly order
  (:func:`clark_hash_web.codecs.exact_projection.fwht_python`; numpy:
  :mod:`clark_hash_web.codecs.hadamard_fast`), and the first
  ``n_bits`` outputs are kept (``n_bits <= n``). This spreads every input
  dimension over all bits, so bits become equally informative.

A permutation or sign flip alone would only relabel bits (Hamming distances
and asymmetric scores unchanged), so it is not offered.

Canonical bytes (``to_bytes``, 24 bytes, little-endian)
--------------------------------------------------------
======  ====  ==========================================
offset  size  field
======  ====  ==========================================
0       1     codec kind = 3
1       1     format of this config = 1
2       1     rotation: 0 = none, 1 = hadamard
3       1     reserved, 0
4       4     input_dim (u32)
8       4     n_bits (u32)
12      4     reserved, 0
16      8     seed (u64; 0 when rotation is none)
======  ====  ==========================================
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass
from typing import Optional

from . import exact_projection as xp
from .binary import CODEC_SIGN_BITS, BinaryCodec, BinaryConfigMixin, check_int, check_padding
from .registry import CodecKind, register
from ..errors import ConfigError

DEFAULT_SEED = 0x5EEDCAFE12345678
ROTATIONS = ("none", "hadamard")
_LAYOUT = struct.Struct("<BBBBIIIQ")


@dataclass(frozen=True)
class SignBitsConfig(BinaryConfigMixin):
    """Everything that determines the bytes of a sign-bit code.

    Parameters
    ----------
    input_dim : int
        Length ``d`` of the input vectors (1..65536).
    n_bits : int, optional
        Bits per code. Default ``input_dim``. At most ``input_dim`` with
        ``rotation="none"``, at most the next power of two >= ``input_dim``
        with ``"hadamard"``.
    rotation : {"none", "hadamard"}, default "none"
    seed : int
        u64 seed of the random signs (``"hadamard"`` only; stored as 0 for ``"none"``).
    """

    input_dim: int
    n_bits: Optional[int] = None
    rotation: str = "none"
    seed: int = DEFAULT_SEED

    kind = CODEC_SIGN_BITS

    def __post_init__(self):
        d = check_int("input_dim", self.input_dim, 1, 65536)
        object.__setattr__(self, "input_dim", d)
        if self.rotation not in ROTATIONS:
            raise ConfigError(f"rotation must be one of {ROTATIONS}, got {self.rotation!r}")
        top = d if self.rotation == "none" else xp.next_pow2(d)
        m = d if self.n_bits is None else check_int("n_bits", self.n_bits, 1, top)
        object.__setattr__(self, "n_bits", m)
        seed = check_int("seed", self.seed, 0, 2**64 - 1)
        object.__setattr__(self, "seed", 0 if self.rotation == "none" else seed)

    @property
    def padded_dim(self) -> int:
        """Length of the Hadamard transform (``input_dim`` without rotation)."""
        return self.input_dim if self.rotation == "none" else xp.next_pow2(self.input_dim)

    def to_bytes(self) -> bytes:
        return _LAYOUT.pack(CODEC_SIGN_BITS, 1, ROTATIONS.index(self.rotation), 0,
                            self.input_dim, self.n_bits, 0, self.seed)

    @classmethod
    def from_bytes(cls, data) -> "SignBitsConfig":
        data = bytes(data)
        if len(data) != _LAYOUT.size:
            raise ConfigError(f"a sign-bits config is {_LAYOUT.size} bytes, got {len(data)}")
        kind, fmt, rot, r0, d, m, r1, seed = _LAYOUT.unpack(data)
        if kind != CODEC_SIGN_BITS:
            raise ConfigError(f"codec kind {kind} at byte 0 is not sign bits ({CODEC_SIGN_BITS})")
        if fmt != 1:
            raise ConfigError(f"unknown sign-bits config format {fmt} at byte 1")
        if rot >= len(ROTATIONS):
            raise ConfigError(f"unknown rotation number {rot} at byte 2")
        if r0 or r1:
            raise ConfigError("reserved bytes 3 / 12..15 of a sign-bits config must be 0")
        if rot == 0 and seed:
            raise ConfigError("a sign-bits config without rotation must have seed 0")
        return cls(input_dim=d, n_bits=m, rotation=ROTATIONS[rot], seed=seed)

    def to_dict(self) -> dict:
        return {"codec": "sign_bits", "input_dim": self.input_dim, "n_bits": self.n_bits,
                "rotation": self.rotation, "seed": self.seed}


class SignBits(BinaryCodec):
    """Sign-bit ("binary hypercube") codec; same verbs as :class:`~clark_hash_web.ClarkHash`.

    Examples
    --------
    >>> codec = SignBits(SignBitsConfig(input_dim=384, rotation="hadamard"))
    >>> enc = codec.encode(vectors)                 # (N, 48) uint8
    """

    config_type = SignBitsConfig

    def _prepare(self):
        cfg = self.config
        self._signs = xp.random_signs(cfg.seed, cfg.input_dim) if cfg.rotation == "hadamard" \
            else None
        if self._signs is not None and self.backend == "numpy":
            import numpy as np

            self._signs_np = np.asarray(self._signs, dtype=np.float32)

    def _projector(self, count: int):
        """A :class:`~.hadamard_fast.HadamardProjector` sized for ``count`` rows."""
        from .hadamard_fast import CHUNK_ROWS, HadamardProjector

        cfg = self.config
        return HadamardProjector(self._signs_np, cfg.padded_dim, cfg.n_bits,
                                 min(CHUNK_ROWS, max(1, count)))

    def _project_numpy(self, rows, exact):
        cfg = self.config
        m = cfg.n_bits
        if cfg.rotation == "none":
            return rows[:, :m] if exact else rows[:, :m] > 0
        out = self._projector(len(rows)).values(rows)
        return out if exact else out > 0

    def _encode_numpy(self, rows):
        """Codes of valid float32 rows; the Hadamard rotation packs its signs in place
        (:meth:`~.hadamard_fast.HadamardProjector.codes`)."""
        if self.config.rotation == "none":
            return super()._encode_numpy(rows)
        return self._projector(len(rows)).codes(rows)

    def _encode_checked_numpy(self, rows):
        """The Hadamard rotation takes the row maxima from each chunk while it is in cache."""
        if self.config.rotation == "none":
            return super()._encode_checked_numpy(rows)
        import numpy as np

        amax = np.empty(len(rows), dtype=np.float32)
        return self._projector(len(rows)).codes(rows, amax), amax

    def _project_python(self, row):
        cfg = self.config
        m = cfg.n_bits
        if cfg.rotation == "none":
            return array("f", row[:m])
        z = array("f", [float(v) * s for v, s in zip(row, self._signs)])
        z.extend([0.0] * (cfg.padded_dim - cfg.input_dim))
        return xp.fwht_python(z)[:m]


register(CodecKind(CODEC_SIGN_BITS, "sign-bits", "sign bits", SignBitsConfig, SignBits,
                   check_padding))
