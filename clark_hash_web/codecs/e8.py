"""E8 lattice codes: one byte per 8 dimensions, the recommended stateless 48-byte profile.

Sign bits quantize each block of 8 coordinates to one of the 256 corners of
a cube. The 240 shortest vectors ("roots") of the E8 lattice are a far better
set of 8-dimensional directions (every pair at least 60 degrees apart,
against 41 degrees for cube corners), and 240 still fits in one byte. This
codec stores, per block of 8 input coordinates, the number of the root with
the largest inner product, and scores a float query asymmetrically with the
same byte lookup tables as the binary codecs. No training, no parameters
except the input dimension: stateless like sign bits, same size (384 dims ->
48 bytes), and better recall (SOTU / all-MiniLM-L6-v2, 30k x 1k queries:
recall@10 0.66 against 0.63 for sign bits).

Roots and their byte numbers (all have squared length 2)
--------------------------------------------------------
* ``0..127`` ("half" roots): entries ``+-1/2`` with an even number of minus
  signs. Byte ``v``: coordinate ``k < 7`` is negative when bit ``k`` of ``v`` is
  set; coordinate 7 is negative when ``v`` has an odd number of set bits.
* ``128..239`` ("integer" roots) ``+-e_i +- e_j``, ``i < j``: byte
  ``128 + 4 p + 2 n_i + n_j`` where ``p`` numbers the pairs (0,1), (0,2), ...,
  (6,7) in that order and ``n_i``/``n_j`` are 1 for a minus sign.
* ``240..255`` are never written (codes holding them are refused).

Encoding of one block ``x_0..x_7`` (float32; exact, defines the code)
-----------------------------------------------------------------------
``a_k = |x_k|``, ``n_k = x_k < 0``.

* Integer candidate: ``i`` = first index of the largest ``a``, ``j`` = first
  index of the largest ``a`` among the others; ``s1 = fl(a_i + a_j)``.
* Half candidate: signs ``n_k``; if their count is odd, the sign of ``m`` =
  first index of the smallest ``a`` is flipped. ``s2 = 0.5 * T`` with ``T`` the
  sequential float32 sum over k of ``a_k`` (``-a_m`` for a flipped ``m``).
* The integer root is chosen when ``s1 > s2``, else the half root.

Inputs are zero-padded to a multiple of 8 dimensions.

Asymmetric score: byte table ``t[b][v]`` = sequential float32 sum over k of
``fl(q_{8b+k} * root_v[k])`` (exact products: entries are 0, +-1/2, +-1);
pairs and the final sum exactly as in :mod:`clark_hash_web.codecs.bitpack`
(bytes 240..255 get 0).

Canonical config bytes (``to_bytes``, 16 bytes, little-endian)
----------------------------------------------------------------
======  ====  ======================================
offset  size  field
======  ====  ======================================
0       1     codec kind = 5
1       1     format of this config = 1
2       2     reserved, 0
4       4     input_dim (u32)
8       8     reserved, 0
======  ====  ======================================
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass
from itertools import combinations

from .binary import BinaryCodec, BinaryConfigMixin, check_int
from .registry import CodecKind, register
from ..errors import ConfigError, ConfigMismatchError, InvalidInputError

CODEC_E8 = 5
N_ROOTS = 240
_LAYOUT = struct.Struct("<BBHIQ")
PAIRS = list(combinations(range(8), 2))
_PAIR_INDEX = {p: i for i, p in enumerate(PAIRS)}


def _roots() -> list:
    """The 240 roots as lists of 8 floats, indexed by byte value."""
    out = []
    for v in range(128):
        neg = [(v >> k) & 1 for k in range(7)]
        neg.append(sum(neg) & 1)
        out.append([-0.5 if n else 0.5 for n in neg])
    for (i, j) in PAIRS:
        for ni in (0, 1):
            for nj in (0, 1):
                r = [0.0] * 8
                r[i] = -1.0 if ni else 1.0
                r[j] = -1.0 if nj else 1.0
                out.append(r)
    return out


ROOTS = _roots()


@dataclass(frozen=True)
class E8Config(BinaryConfigMixin):
    """Config of the E8 lattice codec: only the input dimension.

    Parameters
    ----------
    input_dim : int
        1..65536; codes have ``ceil(input_dim / 8)`` bytes.
    """

    input_dim: int

    kind = CODEC_E8

    def __post_init__(self):
        object.__setattr__(self, "input_dim", check_int("input_dim", self.input_dim, 1, 65536))

    @property
    def n_blocks(self) -> int:
        return (self.input_dim + 7) // 8

    @property
    def n_bits(self) -> int:
        """8 bits per block (so ``code_bytes = n_blocks``)."""
        return 8 * self.n_blocks

    def to_bytes(self) -> bytes:
        return _LAYOUT.pack(CODEC_E8, 1, 0, self.input_dim, 0)

    @classmethod
    def from_bytes(cls, data) -> "E8Config":
        data = bytes(data)
        if len(data) != _LAYOUT.size:
            raise ConfigError(f"an E8 config is {_LAYOUT.size} bytes, got {len(data)}")
        kind, fmt, r0, d, r1 = _LAYOUT.unpack(data)
        if kind != CODEC_E8:
            raise ConfigError(f"codec kind {kind} at byte 0 is not E8 ({CODEC_E8})")
        if fmt != 1:
            raise ConfigError(f"unknown E8 config format {fmt} at byte 1")
        if r0 or r1:
            raise ConfigError("reserved bytes 2..3 / 8..15 of an E8 config must be 0")
        return cls(input_dim=d)

    def to_dict(self) -> dict:
        return {"codec": "e8", "input_dim": self.input_dim}


def _encode_block_python(x, f32: bool = True) -> int:
    """Root number of one block; the sums are rounded to float32 (the codec's rule),
    or kept in float64 with ``f32=False`` (the rule on float64 values, as
    :func:`~clark_hash_web.codecs.learned_e8.e8_codes_numpy` on float64 input)."""
    a = [abs(float(v)) for v in x]
    neg = [float(v) < 0 for v in x]
    i = max(range(8), key=lambda k: (a[k], -k))
    j = max((k for k in range(8) if k != i), key=lambda k: (a[k], -k))
    t = array("f" if f32 else "d", [0.0])
    s1 = float(array(t.typecode, [a[i] + a[j]])[0])
    flip = -1
    if sum(neg) % 2:
        flip = min(range(8), key=lambda k: (a[k], k))
    for k in range(8):
        t[0] = t[0] + (-a[k] if k == flip else a[k])
    s2 = 0.5 * t[0]
    if s1 > s2:
        lo, hi = min(i, j), max(i, j)
        return 128 + 4 * _PAIR_INDEX[(lo, hi)] + 2 * neg[lo] + neg[hi]
    signs = [n != (k == flip) for k, n in enumerate(neg)]
    return sum(1 << k for k in range(7) if signs[k])


_ROOT_BYTES = bytes(range(N_ROOTS))


def check_codes(config, codes: bytes, count: int):
    """Sketch-file check: every byte must be a root number (< 240)."""
    codes = bytes(codes)
    if not codes.translate(None, _ROOT_BYTES):     # C speed: drops every valid byte
        return None
    bad = next(p for p, v in enumerate(codes) if v >= N_ROOTS)
    return (f"code row {bad // config.code_bytes} byte {bad % config.code_bytes} is {codes[bad]}: "
            f"E8 codes hold root numbers 0..239")


class E8Codes(BinaryCodec):
    """E8 lattice codec (kind 5); same verbs as :class:`~clark_hash_web.ClarkHash`.

    Only ``scoring="asymmetric"`` exists (codes are root numbers, not bits).

    Examples
    --------
    >>> codec = E8Codes(E8Config(input_dim=384))
    >>> enc = codec.encode(vectors)            # (N, 48) uint8
    >>> scores = codec.score(codec.sketch_query(q), enc)
    """

    config_type = E8Config
    supports_hamming = False

    def _prepare(self):
        if self.backend == "numpy":
            import numpy as np

            roots = np.zeros((256, 8), dtype=np.float32)
            roots[:N_ROOTS] = np.asarray(ROOTS, dtype=np.float32)
            self._roots_np = roots
            pair_code = np.zeros((8, 8), dtype=np.int64)
            for (i, j), p in _PAIR_INDEX.items():
                pair_code[i, j] = pair_code[j, i] = 128 + 4 * p
            self._pair_code = pair_code

    def _padded_numpy(self, rows):
        import numpy as np

        cfg = self.config
        if cfg.input_dim == cfg.n_bits:
            return np.asarray(rows, dtype=np.float32)
        out = np.zeros((len(rows), cfg.n_bits), dtype=np.float32)
        out[:, :cfg.input_dim] = rows
        return out

    def _project_numpy(self, rows, exact):
        return self._padded_numpy(rows)

    def _project_python(self, row):
        return array("f", list(row) + [0.0] * (self.config.n_bits - self.config.input_dim))

    def _encode_python(self, row) -> bytes:
        x = self._project_python(row)
        return bytes(_encode_block_python(x[8 * b:8 * b + 8]) for b in range(self.config.n_blocks))

    def _encode_numpy(self, rows):
        """Codes of valid float32 rows, a chunk of rows at a time (:mod:`.e8_fast`).

        Peak extra memory is a few MB of per-chunk temporaries plus the output.
        """
        import numpy as np

        from .e8_fast import CHUNK_BLOCKS, BlockEncoder

        cfg = self.config
        nb = cfg.n_blocks
        out = np.empty((len(rows), nb), dtype=np.uint8)
        step = max(1, CHUNK_BLOCKS // nb)
        encode = BlockEncoder(min(step, len(rows)) * nb)
        for s in range(0, len(rows), step):
            chunk = self._padded_numpy(rows[s:s + step])
            out[s:s + step] = encode(chunk.reshape(-1, 8)).reshape(-1, nb)
        return out

    def _encode_numpy_reference(self, rows):
        """The straightforward (slow, memory-hungry) numpy encoder; tests pin the fast one to it."""
        import numpy as np

        x = self._padded_numpy(rows).reshape(-1, 8)
        a = np.abs(x)
        neg = x < 0
        r = np.arange(len(x))
        i = np.argmax(a, axis=1)
        a2 = a.copy()
        a2[r, i] = -1.0
        j = np.argmax(a2, axis=1)
        s1 = a[r, i] + a[r, j]
        odd = (neg.sum(axis=1) % 2) == 1
        m = np.argmin(a, axis=1)
        flip = np.zeros_like(neg)
        flip[r, m] = odd
        t = np.zeros(len(x), dtype=np.float32)
        for k in range(8):
            t = t + np.where(flip[:, k], -a[:, k], a[:, k])
        s2 = np.float32(0.5) * t
        signs = neg ^ flip
        half = (signs[:, :7].astype(np.int64) << np.arange(7)).sum(axis=1)
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        integer = self._pair_code[lo, hi] + 2 * neg[r, lo] + neg[r, hi]
        code = np.where(s1 > s2, integer, half).astype(np.uint8)
        return code.reshape(len(rows), self.config.n_blocks)

    def _query_code(self, rows, values) -> bytes:
        if self.backend == "numpy":
            return self._encode_numpy(rows)[0].tobytes()
        return self._encode_python(rows[0])

    def _tables_numpy(self, values):
        import numpy as np

        q = np.asarray(values, dtype=np.float32).reshape(-1, 8)
        acc = np.zeros((len(q), 256), dtype=np.float32)
        for k in range(8):
            acc = acc + q[:, k:k + 1] * self._roots_np[None, :, k]
        return acc

    def _tables_python(self, values) -> list:
        tables = []
        for b in range(self.config.n_blocks):
            q = [float(v) for v in values[8 * b:8 * b + 8]]
            t = array("f", bytes(4 * 256))
            for k in range(8):
                prods = array("f", [q[k] * ROOTS[v][k] for v in range(N_ROOTS)] + [0.0] * 16)
                t = array("f", [x + y for x, y in zip(t, prods)])
            tables.append(t)
        return tables

    def check_codes(self, encoded):
        """Refuse codes holding bytes 240..255 (not root numbers)."""
        if self.backend == "numpy":
            import numpy as np

            codes = np.asarray(encoded.codes)
            if not codes.size or int(codes.max()) < N_ROOTS:
                return
        problem = check_codes(self.config, encoded.codes_bytes(), len(encoded))
        if problem:
            raise ConfigMismatchError(f"{problem} (config {self.config.fingerprint})")

    def hamming(self, query, encoded):
        raise InvalidInputError("E8 codes are root numbers, not bits: Hamming distance does "
                                "not apply (use the asymmetric score)")

    def score(self, query, encoded, rows=None, scoring: str = "asymmetric"):
        """Float32 asymmetric scores (N,) (``scoring`` must be ``"asymmetric"``)."""
        if scoring != "asymmetric":
            raise InvalidInputError(f"E8 codes only support scoring='asymmetric', got {scoring!r}")
        return super().score(query, encoded, rows=rows, scoring=scoring)

    def decode_sketch(self, encoded):
        """The chosen roots, (N, 8 * n_blocks) float32 (entries 0, +-1/2, +-1)."""
        from .base import _check_fingerprint

        _check_fingerprint(self.config, encoded.fingerprint, "the encoded batch")
        if self.backend == "numpy":
            import numpy as np

            codes = np.asarray(encoded.codes)
            return self._roots_np[codes].reshape(len(codes), -1)
        raw, cb = encoded.codes_bytes(), self.code_bytes
        return [array("f", [x for v in raw[i * cb:(i + 1) * cb] for x in ROOTS[v]])
                for i in range(len(encoded))]


register(CodecKind(CODEC_E8, "e8", "E8 lattice", E8Config, E8Codes, check_codes))
