"""Learned E8 head, format 2: principal axes, bytes where the variance is, exact integer rotation.

E8 codes spend one byte on every 8 input dimensions. Sentence embeddings
are far from isotropic: on SOTU / all-MiniLM-L6-v2 the top quarter of the
principal axes holds 74 % of the variance and the bottom quarter 1.7 %. This
head (codec kind 6, config format 2, :class:`StagedE8Config`) rotates onto
the principal axes and spends the same byte budget where it pays (reverse
water-filling with E8 stages):

* blocks of 8 principal axes, in order of variance;
* a block gets ``s`` bytes: ``s`` *stages* of E8 roots, each coding the
  residual of the previous ones with a learned scale,
  ``x_b ~ c_{b,0} r_0 + c_{b,1} r_1 + ...``;
* blocks with no byte are dropped;
* the blocks that got the same number of bytes are mixed by one seeded
  random rotation of their axes (``mix``), so that each carries about the
  same share of every vector: an E8 code has no per-block gain.

The allocation is greedy on the training sample: each byte goes to the block
whose next stage lowers the query-weighted squared error most (weight of an
axis: ``(lambda_i + (mu . v_i)^2) ** query_weight``, the second moment of data-like
queries along it, softened by the exponent); by default a block gets at
most 2 bytes (``max_stages``), which keeps more axes. Scores are sums of
per-byte tables (``c_{b,s} (q_b . root)``), so every index, the browser scans
and the sketch files read them; a *normalized* head (the default, flags bit
0) then turns the sum into the cosine with the decoded row, one bias per
query and one scale per row (:mod:`.normalized_scores`). Measured (SOTU 30k,
1k held-out queries, 48 bytes, default options): recall@10 0.750 against
0.661 for stateless E8, the true top 10 within the top 50 99.6 % of the
time, STS-B Pearson against dense 0.991 for a head trained on STS-B dev
sentences (0.981 for the SOTU head): see ``benchmarks/README.md``.

Encoding (exact, defines the code)
----------------------------------
All rotation arithmetic is on integers, so any summation order (BLAS, FMA,
pure Python, Pyodide) gives the same result:

1. ``m = max_i |x_i|`` (rows with ``m < 2**-60`` or ``> 2**60`` are refused
   like everywhere), ``e`` its binary exponent (``m = f 2**e``, ``0.5 <= f < 1``);
2. ``n_i = rint(x_i 2**(15 - e))`` (round half to even; ``|n_i| <= 2**15``);
3. ``p_j = sum_i n_i V_ij`` with the stored integer rotation ``V`` (``|V_ij|
   <= 2**14``) and ``N = sum_i n_i^2``: exact integers (``< 2**46``);
4. ``y_j = fl(p_j / fl(sqrt(N))) 2**-14 - o_j`` in float64 (sqrt and division
   correctly rounded, the power of two exact, the subtraction of the stored
   offset ``o`` one float64 rounding): the row is normalized, as training
   normalizes its sample (the metric is cosine);
5. per kept block ``b`` (8 values of ``y``) and stage ``s``: the code byte is
   the E8 root number of the residual (the rule of :mod:`.e8` evaluated in
   float64), then ``res_k = res_k - c_{b,s} root_k`` (float64).

The numpy backend encodes with :mod:`.learned_e8_stages_fast` (same bytes,
transposed layout, all blocks of one stage level at once);
:func:`rotate_numpy` and :func:`stage_codes_numpy` are the steps as written.

A query is rotated by steps 1-4 without the offset (a constant shift of all
its scores), rounded to float32 (``v``), and expanded to one 8-block per code
byte, ``fl32(v_{b,k} c_{b,s})``; its byte tables and table sums ``S`` are then
exactly those of the E8 codec on that expanded vector. The score is ``S``
for a head without the normalized flag, and ``fl32(fl32(S + v . o) / ||o +
decoded residual||)`` (exactly as :mod:`.normalized_scores` defines it) for
a normalized one.

Canonical config bytes (``to_bytes``, little-endian)
----------------------------------------------------
==================  ==========  ===============================================
offset              size        field
==================  ==========  ===============================================
0                   1           codec kind = 6
1                   1           format of this config = 2
2                   2           flags (u16): bit 0 = normalized (cosine scores,
                                :mod:`.normalized_scores`); other bits 0
4                   4           input_dim d (u32)
8                   4           kept rotated dimensions K (u32, multiple of 8)
12                  4           code bytes C (u32)
16                  16          training fingerprint
32                  4 K         offset o (f32)
32 + 4 K            2 d K       rotation V (i16, row-major: input i, output j;
                                ``-16384 <= V_ij <= 16384``, scale ``2**14``)
...                 K / 8       stages per kept block (u8, >= 1, sum C)
...                 4 C         stage scales c (f32), block-major, stage order
==================  ==========  ===============================================
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from array import array
from dataclasses import dataclass

from .binary import check_int
from .e8 import ROOTS, _encode_block_python
from .learned_e8 import LearnedE8, LearnedE8Head, _flag, e8_codes_numpy, training_sample
from . import normalized_scores
from .learned_e8_stages_fast import StagedEncoderNumpy
from ..errors import ConfigError, InvalidInputError
from ..little_endian import bytes_array

FORMAT = 2
X_BITS = 15          # input integers: |n_i| <= 2**15
V_BITS = 14          # rotation integers: |V_ij| <= 2**14
FLAG_NORMALIZED = 1  # flags bit 0: cosine scores (normalized_scores)
_HEAD = struct.Struct("<BBHIII16s")


@dataclass(frozen=True, repr=False)
class StagedE8Config(LearnedE8Head):
    """A trained format-2 learned-E8 head (module docstring for the fields).

    Build one with :func:`train_staged_e8`, or from stored bytes with
    :meth:`from_bytes`.

    Parameters
    ----------
    input_dim : int
        1..65535.
    train_fingerprint : bytes
        16 bytes identifying the training run.
    offset : bytes
        ``4 K`` bytes (f32).
    rotation : bytes
        ``2 d K`` bytes (i16).
    stages : bytes
        ``K / 8`` bytes, each >= 1; their sum is the number of code bytes.
    scales : bytes
        ``4 C`` bytes (f32), one per code byte.
    normalized : bool, default False
        Cosine scores: each score divided by the norm of the decoded row
        (flags bit 0; :mod:`.normalized_scores`). ``train_staged_e8`` sets it
        by default; configs written before it existed read as ``False``.
    """

    input_dim: int
    train_fingerprint: bytes
    offset: bytes
    rotation: bytes
    stages: bytes
    scales: bytes
    normalized: bool = False

    format = FORMAT

    def __post_init__(self):
        d = check_int("input_dim", self.input_dim, 1, 65535)
        object.__setattr__(self, "input_dim", d)
        if not isinstance(self.normalized, bool):
            raise ConfigError(f"normalized must be True or False, got {self.normalized!r}")
        for name in ("train_fingerprint", "offset", "rotation", "stages", "scales"):
            v = getattr(self, name)
            if not isinstance(v, (bytes, bytearray, memoryview)):
                raise ConfigError(f"{name} must be bytes, got {type(v).__name__}")
            object.__setattr__(self, name, bytes(v))
        if len(self.train_fingerprint) != 16:
            raise ConfigError(f"train_fingerprint must be 16 bytes, got {len(self.train_fingerprint)}")
        nk = len(self.stages)
        if not 1 <= nk <= 8191:
            raise ConfigError(f"stages must hold 1..8191 kept blocks, got {nk}")
        if min(self.stages) < 1:
            raise ConfigError(f"stages value {self.stages.index(0)} is 0 (every kept block has "
                              f">= 1 stage)")
        K, C = 8 * nk, sum(self.stages)
        for name, size in (("offset", 4 * K), ("rotation", 2 * d * K), ("scales", 4 * C)):
            if len(getattr(self, name)) != size:
                raise ConfigError(f"{name} must be {size} bytes for input_dim={d}, {nk} kept "
                                  f"blocks and {C} code bytes; got {len(getattr(self, name))}")
        for name in ("offset", "scales"):
            vals = bytes_array("f", getattr(self, name))
            bad = next((i for i, x in enumerate(vals) if not math.isfinite(x)), None)
            if bad is not None:
                raise ConfigError(f"{name} value {bad} is not finite")
        rot = bytes_array("h", self.rotation)
        lim = 1 << V_BITS
        bad = next((i for i, v in enumerate(rot) if not -lim <= v <= lim), None)
        if bad is not None:
            raise ConfigError(f"rotation value {bad} (input {bad // K}, output {bad % K}) is "
                              f"{rot[bad]}, outside -{lim}..{lim}")

    def __repr__(self):
        return (f"StagedE8Config(input_dim={self.input_dim}, kept={self.kept_dim}, "
                f"code_bytes={self.code_bytes}, normalized={self.normalized}, "
                f"fingerprint={self.fingerprint})")

    @property
    def kept_dim(self) -> int:
        """K: rotated dimensions that are coded."""
        return 8 * len(self.stages)

    @property
    def n_blocks(self) -> int:
        """Number of code bytes (E8 stages); each is scored like an E8 block."""
        return sum(self.stages)

    @property
    def n_bits(self) -> int:
        return 8 * self.n_blocks

    def to_bytes(self) -> bytes:
        return (_HEAD.pack(self.kind, FORMAT, FLAG_NORMALIZED if self.normalized else 0,
                           self.input_dim, self.kept_dim, self.n_blocks,
                           self.train_fingerprint)
                + self.offset + self.rotation + self.stages + self.scales)

    @classmethod
    def from_bytes(cls, data) -> "StagedE8Config":
        data = bytes(data)
        if len(data) < _HEAD.size:
            raise ConfigError(f"a learned-E8 config is at least {_HEAD.size} bytes, got {len(data)}")
        kind, fmt, flags, d, K, C, tfp = _HEAD.unpack_from(data)
        if kind != cls.kind:
            raise ConfigError(f"codec kind {kind} at byte 0 is not learned E8 ({cls.kind})")
        if fmt != FORMAT:
            raise ConfigError(f"learned-E8 config format {fmt} at byte 1 is not {FORMAT}")
        if flags & ~FLAG_NORMALIZED:
            raise ConfigError(f"flags (bytes 2..3) of a learned-E8 config are {flags:#06x}: only "
                              f"bit 0 (normalized) is defined")
        if not 1 <= d <= 65535 or K < 8 or K % 8 or K > 8 * 8191 or C < 1:
            raise ConfigError(f"bad sizes in a learned-E8 config: input_dim={d}, kept={K}, "
                              f"code_bytes={C}")
        sizes = [4 * K, 2 * d * K, K // 8, 4 * C]
        want = _HEAD.size + sum(sizes)
        if len(data) != want:
            raise ConfigError(f"learned-E8 format-2 config with input_dim={d}, kept={K}, "
                              f"code_bytes={C} is {want} bytes, got {len(data)}")
        parts, off = [], _HEAD.size
        for s in sizes:
            parts.append(data[off:off + s])
            off += s
        if sum(parts[2]) != C:
            raise ConfigError(f"stages sum to {sum(parts[2])}, but the header says {C} code bytes")
        return cls(d, tfp, *parts, normalized=bool(flags & FLAG_NORMALIZED))

    def to_dict(self) -> dict:
        return {"codec": "learned-e8", "format": FORMAT, "input_dim": self.input_dim,
                "kept_dim": self.kept_dim, "code_bytes": self.code_bytes,
                "stages": list(self.stages), "normalized": self.normalized,
                "train_fingerprint": self.train_fingerprint.hex(), "fingerprint": self.fingerprint}


# ---------------------------------------------------------------------------
# exact rotation (steps 1-4 of the module docstring)
# ---------------------------------------------------------------------------
def rotate_numpy(rows, rot64, offset64=None):
    """(N, d) float32 rows -> (N, K) float64 ``y`` (offset subtracted when given).

    ``rot64``: (d, K) float64 holding the integer rotation.
    """
    import numpy as np

    x = np.asarray(rows, dtype=np.float64)
    e = np.frexp(np.abs(x).max(axis=1))[1]
    n = np.rint(np.ldexp(x, (X_BITS - e)[:, None]))
    p = n @ rot64  # integers below 2**53: exact in any summation order
    norm = np.sqrt(np.einsum("ij,ij->i", n, n))  # exact integer sum, then one rounding
    y = np.ldexp(p / norm[:, None], -V_BITS)
    if offset64 is not None:
        y -= offset64
    return y


SLOT_BIAS = 1 << 62   # added to every 64-bit slot of a packed rotation sum (|p_j| < 2**45)


class PackedRotation:
    """The integer rotation ``V`` (d x K) as d Python ints, for :func:`rotate_python`.

    Input ``i``'s row is ``sum_j V_ij 2**(64 j)``: one exact big-int
    multiply-add per input gives all K sums ``p_j = sum_i n_i V_ij`` at once
    (``|p_j| < 2**45``, so with ``SLOT_BIAS`` added to each slot no slot
    borrows from the next), about 10x faster in pure Python than K separate
    dot products, and the same integers.
    """

    def __init__(self, rotation: bytes, d: int, K: int):
        rot = bytes_array("h", rotation)
        self.K = K

        def slots(values) -> int:   # sum_j (SLOT_BIAS + v_j) 2**(64 j)
            return int.from_bytes(struct.pack(f"<{K}q", *(SLOT_BIAS + v for v in values)), "little")
        self.bias = slots([0] * K)
        self.rows = [slots(rot[i * K:(i + 1) * K]) - self.bias for i in range(d)]

    def sums(self, n) -> array:
        """``p_j = sum_i n_i V_ij`` (exact ints) as an array('q') of K values."""
        acc = self.bias
        for ni, row in zip(n, self.rows):
            if ni:
                acc += ni * row
        p = bytes_array("q", acc.to_bytes(8 * self.K, "little"))
        return array("q", [v - SLOT_BIAS for v in p])


def rotate_python(row, packed: PackedRotation, offset=None) -> list:
    """Pure-Python twin of :func:`rotate_numpy` for one row (a list of K floats)."""
    x = [float(v) for v in row]
    e = math.frexp(max(abs(v) for v in x))[1]
    n = [round(math.ldexp(v, X_BITS - e)) for v in x]
    norm = math.sqrt(float(sum(v * v for v in n)))
    y = [math.ldexp(p / norm, -V_BITS) for p in packed.sums(n)]
    if offset is not None:
        y = [a - o for a, o in zip(y, offset)]
    return y


def stage_codes_numpy(y, stages, scales64):
    """(N, K) float64 -> (N, C) uint8: E8 stages per kept block (step 5).

    Stage ``s`` of every block that has one is coded in one call (the blocks
    are independent), so there are ``max(stages)`` E8 calls, not ``C``.
    """
    import numpy as np

    roots = np.zeros((256, 8))
    roots[:len(ROOTS)] = ROOTS
    stages = np.asarray(stages)
    first = np.concatenate([[0], np.cumsum(stages)[:-1]])   # code column of stage 0 per block
    out = np.empty((len(y), int(stages.sum())), dtype=np.uint8)
    res = np.array(y, dtype=np.float64).reshape(len(y), len(stages), 8)
    for level in range(int(stages.max())):
        blocks = np.flatnonzero(stages > level)   # a prefix: stages do not have to be sorted
        part = res[:, blocks] if len(blocks) < len(stages) else res
        codes = e8_codes_numpy(part.reshape(len(y), -1))
        out[:, first[blocks] + level] = codes
        part -= scales64[first[blocks] + level][None, :, None] * roots[codes]
        if len(blocks) < len(stages):
            res[:, blocks] = part
    return out


def stage_codes_python(y, stages, scales) -> bytes:
    out = bytearray()
    col = 0
    for b, ns in enumerate(stages):
        res = y[8 * b:8 * b + 8]
        for _ in range(ns):
            code = _encode_block_python(res, f32=False)
            out.append(code)
            c = scales[col]
            res = [r - c * rk for r, rk in zip(res, ROOTS[code])]
            col += 1
    return bytes(out)


class StagedE8(LearnedE8):
    """Codec of a format-2 learned-E8 head (built by :class:`LearnedE8` for such configs)."""

    config_type = StagedE8Config

    def _prepare(self):
        super(LearnedE8, self)._prepare()  # the E8 root tables
        cfg = self.config
        K = cfg.kept_dim
        stages = list(cfg.stages)
        self._stages = stages
        block_of = [b for b, ns in enumerate(stages) for _ in range(ns)]
        self._offset32 = list(bytes_array("f", cfg.offset))   # float32 values (the bias, row scales)
        if self.backend == "numpy":
            import numpy as np

            self._rot = np.frombuffer(cfg.rotation, dtype="<i2").astype(np.float64) \
                .reshape(cfg.input_dim, K)
            self._offset = np.frombuffer(cfg.offset, dtype="<f4").astype(np.float64)
            scales32 = np.frombuffer(cfg.scales, dtype="<f4").astype(np.float32)
            self._scales64 = scales32.astype(np.float64)
            # query expansion: code byte c reads block block_of[c], times its scale
            self._expand = (np.asarray(block_of)[:, None] * 8 + np.arange(8)).ravel()
            self._expand_scale = np.repeat(scales32, 8)
            self._encoder = StagedEncoderNumpy(self._rot, self._offset, stages, self._scales64)
        else:
            self._packed = PackedRotation(cfg.rotation, cfg.input_dim, K)
            self._offset = list(bytes_array("f", cfg.offset))
            self._scales = list(bytes_array("f", cfg.scales))
            self._block_of = block_of

    # encode
    def _encode_numpy(self, rows):
        return self._encoder.encode(rows)

    def _encode_numpy_reference(self, rows, chunk: int = 4096):
        """Steps 1-5 as written (:func:`rotate_numpy`, :func:`stage_codes_numpy`); tests pin
        the fast encoder (:mod:`.learned_e8_stages_fast`) to it."""
        import numpy as np

        out = np.empty((len(rows), self.config.n_blocks), dtype=np.uint8)
        for s in range(0, len(rows), chunk):
            y = rotate_numpy(rows[s:s + chunk], self._rot, self._offset)
            out[s:s + chunk] = stage_codes_numpy(y, self._stages, self._scales64)
        return out

    def _encode_python(self, row) -> bytes:
        y = rotate_python(row, self._packed, self._offset)
        return stage_codes_python(y, self._stages, self._scales)

    # query
    def _rotated_numpy(self, rows):
        """(N, K) float32 ``v``: the rows rotated onto the kept axes, no offset."""
        import numpy as np

        return rotate_numpy(rows, self._rot).astype(np.float32)

    def _rotated_python(self, row) -> array:
        return array("f", rotate_python(row, self._packed))

    def _expand_numpy(self, v):
        return v[:, self._expand] * self._expand_scale

    def _expand_python(self, v) -> array:
        sc = self._scales
        return array("f", [v[8 * b + k] * sc[c] for c, b in enumerate(self._block_of)
                           for k in range(8)])

    def _project_numpy(self, rows, exact):
        return self._expand_numpy(self._rotated_numpy(rows))

    def _project_python(self, row):
        return self._expand_python(self._rotated_python(row))

    def _query_values(self, rows):
        """Expanded float32 values and, for a normalized head, ``bias = v . o``."""
        if self.backend == "numpy":
            v = self._rotated_numpy(rows)
            values, v = self._expand_numpy(v)[0], v[0].tolist()
        else:
            v = self._rotated_python(rows[0])
            values = self._expand_python(v)
        if not self.config.normalized:
            return values, 0.0
        return values, normalized_scores.query_bias(v, self._offset32)

    @property
    def has_row_scales(self) -> bool:
        return self.config.normalized

    def row_scales(self, encoded):
        """``1 / ||decoded row||`` per row (float32) for a normalized head, else None."""
        if not self.has_row_scales:
            return None
        if self.backend == "numpy":
            import numpy as np

            return normalized_scores.row_scales_numpy(
                np.asarray(encoded.codes), self._stages,
                np.frombuffer(self.config.scales, dtype="<f4"), self._offset32)
        return normalized_scores.row_scales_python(
            encoded.codes_bytes(), len(encoded), self._stages, self._scales, self._offset32)

    def _query_code(self, rows, values) -> bytes:
        if self.backend == "numpy":
            return self._encode_numpy(rows)[0].tobytes()
        return self._encode_python(rows[0])


# ---------------------------------------------------------------------------
# training (numpy, float64)
# ---------------------------------------------------------------------------
def _allocate(y, weights, budget, max_stages):
    """Greedy stage allocation and stage scales on training rows ``y`` (n, D).

    Returns (stages per block (nb,), scales per block (nb, max_stages)).
    """
    import numpy as np

    nb = y.shape[1] // 8
    roots = np.zeros((256, 8))
    roots[:len(ROOTS)] = ROOTS
    scales = np.zeros((nb, max_stages))
    gain = np.zeros((nb, max_stages))
    for b in range(nb):
        res = np.array(y[:, 8 * b:8 * b + 8])
        w = weights[8 * b:8 * b + 8]
        before = np.mean(res ** 2 @ w)
        for s in range(max_stages):
            r = roots[e8_codes_numpy(res)[:, 0]]
            c = float(np.sum(res * r) / np.sum(r * r))
            scales[b, s] = c
            res -= np.float64(np.float32(c)) * r
            after = np.mean(res ** 2 @ w)
            gain[b, s] = before - after
            before = after
    stages = np.zeros(nb, dtype=np.int64)
    for _ in range(budget):
        nxt = np.where(stages < max_stages, gain[np.arange(nb), np.minimum(stages, max_stages - 1)],
                       -np.inf)
        stages[int(np.argmax(nxt))] += 1   # first block on ties: deterministic
    return stages, scales


def _option_int(name, value, lo, hi) -> int:
    """A training option that must be an int in lo..hi (InvalidInputError otherwise)."""
    try:
        return check_int(name, value, lo, hi)
    except ConfigError as exc:
        raise InvalidInputError(str(exc)) from None


def train_staged_e8(sample, seed: int = 0, code_bytes=None, query_weight: float = 0.25,
                    max_stages: int = 2, max_rows: int = 10_000, center: bool = True,
                    mix: bool = True, normalize: bool = True, log=None) -> StagedE8Config:
    """Train a format-2 learned-E8 head on a sample of your embeddings (numpy required).

    Parameters
    ----------
    sample : array-like (n, d)
        Training vectors (finite, nonzero rows), the corpus you will store.
        Rows are L2-normalized for training.
    seed : int
        Seeds the row subset. Same data + options + seed -> same config bytes
        (on one machine: the principal axes come from LAPACK).
    code_bytes : int, optional
        Bytes per vector (default ``ceil(d / 8)``, the size of the E8 code).
    query_weight : float, default 0.25
        Exponent of the per-axis query weight in the allocation (0: plain
        squared error; 1: the full second moment of data-like queries).
    max_stages : int, default 2
        At most this many bytes per block of 8 axes (raised to ``ceil(code_bytes
        / blocks)`` when the bytes need it). 2 (the default) keeps more
        axes (STS-B Pearson against dense 0.99 in-domain, recall@10 0.750 on
        SOTU); 8 puts more bytes on the top axes (recall@10 0.777, Pearson 0.98).
    max_rows : int, default 10000
        At most this many rows (a seeded subset) are used.
    mix : bool, default True
        After the allocation, rotate the axes of all blocks with the same
        number of stages by one seeded random orthogonal matrix (E8 codes
        carry no per-block gain; mixing evens the blocks' energies out).
    normalize : bool, default True
        Cosine scores: divide each score by the norm of the decoded row
        (:mod:`.normalized_scores`; recall@10 0.742 -> 0.777 on SOTU). ``False``
        writes a head whose scores are the plain table sums.
    center : bool, default True
        Rotate ``x - mean`` (the offset ``o``): no bytes spent on the direction
        all embeddings share. ``False``: principal axes of the uncentered
        second moment, offset 0.
    log : callable, optional
        Called with progress strings.

    Returns
    -------
    StagedE8Config
    """
    import numpy as np

    x = training_sample(sample)
    n, d = x.shape
    norms = np.linalg.norm(x, axis=1)
    nb = (d + 7) // 8
    code_bytes = nb if code_bytes is None else _option_int("code_bytes", code_bytes, 1, 65535)
    max_stages = _option_int("max_stages", max_stages, 1, 255)
    if code_bytes > nb * max_stages:   # more bytes than max_stages can place: raise the cap
        max_stages = -(-code_bytes // nb)
        if max_stages > 255:
            raise InvalidInputError(f"code_bytes={code_bytes} needs more than 255 stages per "
                                    f"block for {nb} blocks of 8 axes")
    max_rows = _option_int("max_rows", max_rows, 16, 1 << 40)
    try:
        query_weight = float(query_weight)
    except (TypeError, ValueError):
        raise InvalidInputError(f"query_weight must be a number, got {query_weight!r}") from None
    if not 0.0 <= query_weight <= 4.0:
        raise InvalidInputError(f"query_weight must be in 0..4, got {query_weight}")
    center, mix = _flag("center", center), _flag("mix", mix)
    normalize = _flag("normalize", normalize)
    options = {"format": FORMAT, "code_bytes": code_bytes, "query_weight": query_weight,
               "max_stages": max_stages, "max_rows": max_rows, "center": center, "mix": mix,
               "seed": seed}
    if normalize:   # (absent for False: such heads keep the fingerprints they always had)
        options["normalize"] = True
    h = hashlib.sha256(b"clark-hash-web/learned-e8 training\x00")
    h.update(json.dumps(options, sort_keys=True).encode())
    h.update(struct.pack("<QQ", n, d))
    h.update(np.ascontiguousarray(x, dtype="<f8").tobytes())
    tfp = h.digest()[:16]

    rng = np.random.default_rng(seed)
    x = x / norms[:, None]
    if n > max_rows:
        x = x[np.sort(rng.choice(n, max_rows, replace=False))]
    mu = x.mean(axis=0) if center else np.zeros(d)
    lam, vec = np.linalg.eigh((x - mu).T @ (x - mu) / len(x))
    lam, vec = lam[::-1], vec[:, ::-1]
    flip = np.sign(vec[np.argmax(np.abs(vec), axis=0), np.arange(d)])
    vec = vec * np.where(flip == 0, 1.0, flip)  # sign convention: largest entry positive
    D = 8 * nb
    axes = np.zeros((d, D))
    axes[:, :d] = vec
    lam = np.concatenate([np.maximum(lam, 0.0), np.zeros(D - d)])
    weights = (lam + (mu @ axes) ** 2) ** query_weight
    rot_int = np.rint(axes * (1 << V_BITS))
    offset_all = (mu @ rot_int) / (1 << V_BITS)
    y = rotate_numpy(x.astype(np.float32), rot_int, offset_all.astype(np.float32).astype(np.float64))
    stages, scales = _allocate(y, weights, code_bytes, max_stages)
    if log:
        log(f"stages per block of 8 axes: {stages.tolist()}")
    if mix:
        # blocks with the same number of stages share one seeded random rotation of their
        # axes: every block of a rate class then carries about the same energy in every
        # vector (E8 codes carry no per-block gain), the allocation is unchanged
        for ns in sorted(set(stages.tolist()) - {0}):
            blocks = np.flatnonzero(stages == ns)
            if len(blocks) < 2:
                continue
            cols_ns = (blocks[:, None] * 8 + np.arange(8)).ravel()
            q, r = np.linalg.qr(rng.standard_normal((len(cols_ns), len(cols_ns))))
            axes[:, cols_ns] = axes[:, cols_ns] @ (q * np.sign(np.diag(r)))
        rot_int = np.rint(axes * (1 << V_BITS))
        offset_all = (mu @ rot_int) / (1 << V_BITS)
        y = rotate_numpy(x.astype(np.float32), rot_int,
                         offset_all.astype(np.float32).astype(np.float64))
        _, scales = _allocate(y, weights, 0, max_stages)
    kept = np.flatnonzero(stages > 0)
    cols = (kept[:, None] * 8 + np.arange(8)).ravel()
    stage_scales = np.concatenate([scales[b, :stages[b]] for b in kept])
    return StagedE8Config(
        d, tfp, offset_all[cols].astype("<f4").tobytes(),
        np.ascontiguousarray(rot_int[:, cols]).astype("<i2").tobytes(),
        bytes(int(s) for s in stages[kept]), stage_scales.astype("<f4").tobytes(), normalize)
