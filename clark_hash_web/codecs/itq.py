"""A learned binary head: ITQ (iterative quantization), :class:`ITQConfig`, :class:`ITQ`.

Training (:func:`train_itq`, numpy, float64, once, on a sample): center the
sample on its mean ``mu``, take the top ``n_bits`` principal directions
``W`` (d x c), then find the orthogonal rotation ``R`` (c x c) minimizing the
quantization loss ``||sign(V R) - V R||`` (``V`` = centered sample in PCA
space) by alternating sign assignment and orthogonal Procrustes (Gong &
Lazebnik, 2011). The result is stored as float32 parameters: the mean
``mu`` (d) and the projection ``A = W R`` (d x c).

Encoding (anywhere, any backend, identical bytes): ``xc = fl32(x - mu)``
elementwise, then ``y = xc A`` with the exact sequential float32 projection of
:mod:`clark_hash_web.codecs.exact_projection`, bit ``j`` = ``y_j > 0``.

What this is, honestly: a linear, unsupervised, data-dependent rotation
fitted to the embedding distribution. It is *not* the CVA-Hash head of the
guide in the seeds (a small MLP trained with contrastive + quantization +
bit-balance losses while LoRA adapters fine-tune the CLIP encoders): that
needs paired multimodal data, the encoder weights and GPU training, which are
out of reach offline. ITQ keeps the spirit (learned projection, then sign)
with a closed-form, reproducible fit.

The parameters are part of the config: they are in ``to_bytes()``, so the
``fingerprint`` changes whenever any parameter bit changes.

Canonical bytes (``to_bytes``, little-endian)
---------------------------------------------
==========  ===========  ==========================================
offset      size         field
==========  ===========  ==========================================
0           1            codec kind = 4
1           1            format of this config = 1
2           2            reserved, 0
4           4            input_dim d (u32)
8           4            n_bits c (u32)
12          4            reserved, 0
16          4 d          mean (f32 x d)
16 + 4d     4 d c        projection A, row-major (row i = input dim i), f32
==========  ===========  ==========================================
"""

from __future__ import annotations

import math
import struct
from array import array
from dataclasses import dataclass, field

from . import exact_projection as xp
from .binary import CODEC_ITQ, BinaryCodec, BinaryConfigMixin, check_int, check_padding
from .registry import CodecKind, register
from ..errors import ConfigError, InvalidInputError
from ..little_endian import bytes_array

_HEAD = struct.Struct("<BBHIII")


@dataclass(frozen=True, repr=False)
class ITQConfig(BinaryConfigMixin):
    """A trained ITQ head: sizes plus float32 parameters (as little-endian bytes).

    Parameters
    ----------
    input_dim : int
    n_bits : int
        1..input_dim.
    mean : bytes
        ``4 * input_dim`` bytes, little-endian float32.
    projection : bytes
        ``4 * input_dim * n_bits`` bytes, little-endian float32, row-major.

    Build one with :func:`train_itq`, or from stored bytes with :meth:`from_bytes`.
    """

    input_dim: int
    n_bits: int
    mean: bytes = field(compare=True)
    projection: bytes = field(compare=True)

    kind = CODEC_ITQ

    def __post_init__(self):
        d = check_int("input_dim", self.input_dim, 1, 65536)
        c = check_int("n_bits", self.n_bits, 1, d)
        object.__setattr__(self, "input_dim", d)
        object.__setattr__(self, "n_bits", c)
        for name, size in (("mean", 4 * d), ("projection", 4 * d * c)):
            v = getattr(self, name)
            if not isinstance(v, (bytes, bytearray, memoryview)):
                raise ConfigError(f"{name} must be bytes of little-endian float32, "
                                  f"got {type(v).__name__}")
            v = bytes(v)
            if len(v) != size:
                raise ConfigError(f"{name} must be {size} bytes for input_dim={d}, "
                                  f"n_bits={c}; got {len(v)}")
            vals = bytes_array("f", v)
            bad = next((i for i, x in enumerate(vals) if not math.isfinite(x)), None)
            if bad is not None:
                raise ConfigError(f"{name} value {bad} is not finite")
            object.__setattr__(self, name, v)

    def __repr__(self):
        return f"ITQConfig(input_dim={self.input_dim}, n_bits={self.n_bits}, fingerprint={self.fingerprint})"

    def mean_values(self) -> array:
        return bytes_array("f", self.mean)

    def projection_rows(self) -> list:
        """``input_dim`` rows of ``n_bits`` float32 values (``array('f')``)."""
        a, c = bytes_array("f", self.projection), self.n_bits
        return [a[i * c:(i + 1) * c] for i in range(self.input_dim)]

    def to_bytes(self) -> bytes:
        return _HEAD.pack(CODEC_ITQ, 1, 0, self.input_dim, self.n_bits, 0) + self.mean \
            + self.projection

    @classmethod
    def from_bytes(cls, data) -> "ITQConfig":
        data = bytes(data)
        if len(data) < _HEAD.size:
            raise ConfigError(f"an ITQ config is at least {_HEAD.size} bytes, got {len(data)}")
        kind, fmt, r0, d, c, r1 = _HEAD.unpack_from(data)
        if kind != CODEC_ITQ:
            raise ConfigError(f"codec kind {kind} at byte 0 is not ITQ ({CODEC_ITQ})")
        if fmt != 1:
            raise ConfigError(f"unknown ITQ config format {fmt} at byte 1")
        if r0 or r1:
            raise ConfigError("reserved bytes 2..3 / 12..15 of an ITQ config must be 0")
        want = _HEAD.size + 4 * d + 4 * d * c
        if len(data) != want:
            raise ConfigError(f"ITQ config with input_dim={d}, n_bits={c} is {want} bytes, "
                              f"got {len(data)}")
        return cls(input_dim=d, n_bits=c, mean=data[16:16 + 4 * d], projection=data[16 + 4 * d:])

    def to_dict(self) -> dict:
        return {"codec": "itq", "input_dim": self.input_dim, "n_bits": self.n_bits,
                "fingerprint": self.fingerprint}


def train_itq(sample, n_bits=None, iterations: int = 50, seed: int = 0) -> ITQConfig:
    """Fit an ITQ head on a sample of embeddings (numpy required).

    Parameters
    ----------
    sample : array-like (n, d)
        Training vectors, finite; n >= n_bits is advisable.
    n_bits : int, optional
        Code bits (<= d); default d.
    iterations : int, default 50
    seed : int
        Seed of the random initial rotation (training only; the result is
        fully described by the returned config).
    """
    import numpy as np

    x = np.asarray(sample, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise InvalidInputError(f"sample must be 2-D with at least 2 rows, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InvalidInputError("sample contains NaN or inf")
    n, d = x.shape
    c = d if n_bits is None else check_int("n_bits", n_bits, 1, d)
    mu = x.mean(axis=0)
    xc = x - mu
    evals, evecs = np.linalg.eigh(xc.T @ xc / n)
    w = evecs[:, np.argsort(evals)[::-1][:c]]
    v = xc @ w
    rng = np.random.default_rng(seed)
    r, _ = np.linalg.qr(rng.standard_normal((c, c)))
    for _ in range(iterations):
        b = np.where(v @ r >= 0, 1.0, -1.0)
        u, _, vt = np.linalg.svd(v.T @ b)
        r = u @ vt
    a = (w @ r).astype("<f4")
    return ITQConfig(input_dim=d, n_bits=c, mean=mu.astype("<f4").tobytes(),
                     projection=np.ascontiguousarray(a).tobytes())


class ITQ(BinaryCodec):
    """ITQ codec (learned head); same verbs as :class:`~clark_hash_web.ClarkHash`."""

    config_type = ITQConfig

    def _prepare(self):
        cfg = self.config
        if self.backend == "numpy":
            import numpy as np

            self._mean = np.frombuffer(cfg.mean, dtype="<f4").astype(np.float32)
            self._planes = np.frombuffer(cfg.projection, dtype="<f4").astype(np.float32) \
                .reshape(cfg.input_dim, cfg.n_bits)
        else:
            self._mean = cfg.mean_values()
            self._planes = cfg.projection_rows()

    def _project_numpy(self, rows, exact):
        xc = rows - self._mean
        if exact:
            return xp.project_exact_numpy(xc, self._planes)
        return xp.project_signs_numpy(xc, self._planes)

    def _project_python(self, row):
        xc = array("f", [float(a) - b for a, b in zip(row, self._mean)])
        return xp.project_exact_python(xc, self._planes)


register(CodecKind(CODEC_ITQ, "itq", "ITQ", ITQConfig, ITQ, check_padding, trained=True,
                   trainer=train_itq))
