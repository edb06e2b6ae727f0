"""A learned E8 head: train once on your embeddings, then encode anywhere with identical bytes.

Two config formats share codec kind 6 (byte 1 of the config says which):
format 2 (:mod:`clark_hash_web.codecs.learned_e8_stages`: principal axes and
E8 stages where the variance is, cosine scores; recall@10 0.750 on SOTU, the default of
``clark-hash train --codec learned-e8``) and format 1, described here (a
block rotation before the plain E8 code; ``head="rotation"``).
:class:`LearnedE8` builds the right codec for either.

:class:`LearnedE8` (codec kind 6) is the E8 lattice codec of
:mod:`clark_hash_web.codecs.e8` (one root byte per 8 dimensions, 48 bytes for
384 dimensions) preceded by a *learned, structured rotation* and followed by
learned per-block query weights. The parameters come from
:func:`train_learned_e8` (numpy, float64, seeded, deterministic for given
data) and live in the config bytes, so a config file written once is all a
desktop, a server or a browser tab needs.

The rotation ``y = B(Pi(x - mu))``
------------------------------------
* ``mu``: the training mean (float32, d), subtracted elementwise;
* ``Pi``: a learned assignment of the ``d`` input dimensions to ``D =
  8 * ceil(d / 8)`` slots (a permutation; padding slots read 0);
* ``B``: block-diagonal, ``G = D / g`` learned orthogonal ``g x g`` blocks
  (float32), ``g`` the *group size* (8, 16, 32, ... dividing ``D``).

Subtracting a constant ``mu`` changes every score of one query by the same
amount, so rankings are unaffected while the codes spend no bits on the
direction shared by all embeddings. The block structure keeps encoding at
``g`` multiply-adds per dimension (a dense 384 x 384 rotation costs 384), so
the exact sequential float32 order below stays fast in numpy.

Encoding (exact, defines the code; every ``fl`` a float32 rounding)
-------------------------------------------------------------------
1. ``c_i = fl(x_i - mu_i)``;
2. ``z_p = c_{perm[p]}`` (``0.0`` where ``perm[p] = 0xFFFF``);
3. ``y_{b g + j} = fl(... fl(fl(0 + fl(z_{b g} R_b[0, j])) + fl(z_{b g + 1} R_b[1, j])) ...
   + fl(z_{b g + g - 1} R_b[g - 1, j]))`` (sequential in ``k``);
4. the E8 code of ``y`` (:mod:`clark_hash_web.codecs.e8`: nearest root per 8 values).

Only elementwise float32 operations (no BLAS, no ``dot``), so numpy, pure
Python and Pyodide write the same bytes. A query is rotated the same way and
scaled per 8-block, ``v_{8 c + k} = fl(y_{8 c + k} * w_c)``; its byte tables
and scores are then exactly those of the E8 codec.

Training (:func:`train_learned_e8`)
-----------------------------------
Rows are L2-normalized (float64); by default a seeded subset of 8,000 rows is
used. Starting from the identity (the plain E8 code), the rotation alternates
(``iterations`` times, default 10) nearest-E8-root assignment of every
8-block with an orthogonal Procrustes step per group (the SVD of
``Z_b^T C_b``). Options (all measured on SOTU / all-MiniLM-L6-v2, see
``benchmarks/README.md``, none of them helped there, so all are off by
default): ``center`` (subtract the training mean; rankings of one query are
unchanged by a constant shift), ``assign="balanced"`` (deal dimensions
sorted by variance round-robin over the groups), ``init="random"`` (seeded
random orthogonal starting blocks) and ``weights`` (per-8-block query
weights fitted by least squares so that the asymmetric score tracks the
true cosine on held-out query/neighbour pairs of the sample, per-query
offsets removed).

Measured (SOTU 30k, 1k held-out queries, trained on the base vectors):
recall@10 0.665 against 0.661 for stateless E8 (g = 16); a dense 384 x 384
rotation 0.667. A head trained on another corpus is slightly worse than
stateless E8: retrain per corpus, or use :mod:`~clark_hash_web.codecs.e8`.

Canonical config bytes (``to_bytes``, little-endian)
----------------------------------------------------
==================  ==========  ===============================================
offset              size        field
==================  ==========  ===============================================
0                   1           codec kind = 6
1                   1           format of this config = 1
2                   2           reserved, 0
4                   4           input_dim d (u32)
8                   4           group size g (u32)
12                  4           reserved, 0
16                  16          training fingerprint (sha256 prefix of the
                                sample bytes, options and seed)
32                  4 d         mean mu (f32)
32 + 4 d            2 D         perm (u16 per slot; 0xFFFF = zero padding)
...                 4 G g g     rotations R_b[k, j], block-major, row-major
...                 4 D / 8     query weights w (f32, one per 8-block)
==================  ==========  ===============================================

``D = 8 * ceil(d / 8)``, ``G = D / g``. For d = 384: 32 + 1536 + 768 +
4 * 384 * g + 192 bytes (g = 384, one dense rotation: 592,320 bytes).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from array import array
from dataclasses import dataclass, field

from .binary import BinaryConfigMixin, check_int
from .e8 import E8Codes, _encode_block_python, check_codes
from .e8_columns import encode_columns
from .registry import CodecKind, register
from ..errors import ConfigError, InvalidInputError
from ..little_endian import bytes_array

CODEC_LEARNED_E8 = 6
PAD = 0xFFFF
_HEAD = struct.Struct("<BBHIII16s")


def padded_dim(d: int) -> int:
    """``D = 8 * ceil(d / 8)``: the number of slots (and of rotated values)."""
    return 8 * ((d + 7) // 8)


class LearnedE8Head(BinaryConfigMixin):
    """Base of the learned-E8 configs (codec kind 6); byte 1 says the format.

    Format 1: :class:`LearnedE8Config` (block rotation, this module); format 2:
    :class:`~clark_hash_web.codecs.learned_e8_stages.StagedE8Config`
    (principal axes + E8 stages, the default of ``clark-hash train --codec
    learned-e8``). :meth:`from_bytes` reads either.
    """

    kind = CODEC_LEARNED_E8

    @classmethod
    def from_bytes(cls, data) -> "LearnedE8Head":
        data = bytes(data)
        if len(data) < 2:
            raise ConfigError(f"a learned-E8 config is at least {_HEAD.size} bytes, got {len(data)}")
        if data[1] == 2:
            from .learned_e8_stages import StagedE8Config

            return StagedE8Config.from_bytes(data)
        return LearnedE8Config.from_bytes(data)


@dataclass(frozen=True, repr=False)
class LearnedE8Config(LearnedE8Head):
    """A trained learned-E8 head: sizes plus float32 parameters (little-endian bytes).

    Build one with :func:`train_learned_e8`, or from stored bytes with
    :meth:`from_bytes`. Field layout and meaning: module docstring.

    Parameters
    ----------
    input_dim : int
        1..65535.
    group : int
        Rotation block size ``g``: a multiple of 8 dividing ``D``.
    train_fingerprint : bytes
        16 bytes identifying the training run.
    mean : bytes
        ``4 d`` bytes (f32).
    perm : bytes
        ``2 D`` bytes (u16): each input index in ``0..d-1`` exactly once, the
        other ``D - d`` slots 0xFFFF.
    rotations : bytes
        ``4 G g g`` bytes (f32).
    weights : bytes
        ``4 D / 8`` bytes (f32).
    """

    input_dim: int
    group: int
    train_fingerprint: bytes
    mean: bytes = field(compare=True)
    perm: bytes = field(compare=True)
    rotations: bytes = field(compare=True)
    weights: bytes = field(compare=True)

    format = 1

    def __post_init__(self):
        d = check_int("input_dim", self.input_dim, 1, 65535)
        D = padded_dim(d)
        g = check_int("group", self.group, 8, D)
        if g % 8 or D % g:
            raise ConfigError(f"group must be a multiple of 8 dividing {D} (input_dim={d}), got {g}")
        object.__setattr__(self, "input_dim", d)
        object.__setattr__(self, "group", g)
        sizes = (("train_fingerprint", 16), ("mean", 4 * d), ("perm", 2 * D),
                 ("rotations", 4 * D * g), ("weights", D // 2))
        for name, size in sizes:
            v = getattr(self, name)
            if not isinstance(v, (bytes, bytearray, memoryview)):
                raise ConfigError(f"{name} must be bytes, got {type(v).__name__}")
            v = bytes(v)
            if len(v) != size:
                raise ConfigError(f"{name} must be {size} bytes for input_dim={d}, group={g}; "
                                  f"got {len(v)}")
            object.__setattr__(self, name, v)
        for name in ("mean", "rotations", "weights"):
            vals = bytes_array("f", getattr(self, name))
            bad = next((i for i, x in enumerate(vals) if not math.isfinite(x)), None)
            if bad is not None:
                raise ConfigError(f"{name} value {bad} is not finite")
        perm = bytes_array("H", self.perm)
        used = sorted(p for p in perm if p != PAD)
        if used != list(range(d)):
            seen, dup = set(), None
            for slot, p in enumerate(perm):
                if p != PAD and (p >= d or p in seen):
                    dup = (slot, p)
                    break
                seen.add(p)
            where = f" (slot {dup[0]} holds {dup[1]})" if dup else ""
            raise ConfigError(f"perm must hold each input index 0..{d - 1} exactly once and "
                              f"0xFFFF elsewhere{where}")

    def __repr__(self):
        return (f"LearnedE8Config(input_dim={self.input_dim}, group={self.group}, "
                f"fingerprint={self.fingerprint})")

    @property
    def padded_dim(self) -> int:
        return padded_dim(self.input_dim)

    @property
    def n_blocks(self) -> int:
        """Number of E8 blocks (= code bytes)."""
        return self.padded_dim // 8

    @property
    def n_groups(self) -> int:
        return self.padded_dim // self.group

    @property
    def n_bits(self) -> int:
        """8 bits per block (so ``code_bytes = n_blocks``)."""
        return self.padded_dim

    def to_bytes(self) -> bytes:
        return (_HEAD.pack(CODEC_LEARNED_E8, 1, 0, self.input_dim, self.group, 0,
                           self.train_fingerprint)
                + self.mean + self.perm + self.rotations + self.weights)

    @classmethod
    def from_bytes(cls, data) -> "LearnedE8Config":
        data = bytes(data)
        if len(data) < _HEAD.size:
            raise ConfigError(f"a learned-E8 config is at least {_HEAD.size} bytes, got {len(data)}")
        kind, fmt, r0, d, g, r1, tfp = _HEAD.unpack_from(data)
        if kind != CODEC_LEARNED_E8:
            raise ConfigError(f"codec kind {kind} at byte 0 is not learned E8 ({CODEC_LEARNED_E8})")
        if fmt != 1:
            raise ConfigError(f"unknown learned-E8 config format {fmt} at byte 1")
        if r0 or r1:
            raise ConfigError("reserved bytes 2..3 / 12..15 of a learned-E8 config must be 0")
        if not 1 <= d <= 65535 or g < 8 or g % 8 or padded_dim(d) % g:
            raise ConfigError(f"bad sizes in a learned-E8 config: input_dim={d}, group={g}")
        D = padded_dim(d)
        sizes = [4 * d, 2 * D, 4 * D * g, D // 2]
        want = _HEAD.size + sum(sizes)
        if len(data) != want:
            raise ConfigError(f"learned-E8 config with input_dim={d}, group={g} is {want} bytes, "
                              f"got {len(data)}")
        parts, off = [], _HEAD.size
        for s in sizes:
            parts.append(data[off:off + s])
            off += s
        return cls(d, g, tfp, *parts)

    def to_dict(self) -> dict:
        return {"codec": "learned-e8", "input_dim": self.input_dim, "group": self.group,
                "train_fingerprint": self.train_fingerprint.hex(), "fingerprint": self.fingerprint}


# ---------------------------------------------------------------------------
# exact rotation (both backends)
# ---------------------------------------------------------------------------
def rotate_numpy(rows, mean, slots, rot):
    """Exact float32 rotation of (N, d) rows -> (N, D) (module docstring, steps 1-3).

    ``slots``: (D,) int index into the centered row extended by one 0.0
    column (index d); ``rot``: (G, g, g) float32.
    """
    import numpy as np

    n = len(rows)
    G, g, _ = rot.shape
    c = np.zeros((n, len(mean) + 1), dtype=np.float32)
    np.subtract(rows, mean, out=c[:, :-1])
    z = c[:, slots].reshape(n, G, g)
    acc = np.zeros((n, G, g), dtype=np.float32)
    tmp = np.empty_like(acc)
    for k in range(g):
        np.multiply(z[:, :, k:k + 1], rot[None, :, k, :], out=tmp)
        np.add(acc, tmp, out=acc)
    return acc.reshape(n, G * g)


def rotate_python(row, mean, perm, rot_rows, g) -> array:
    """Pure-Python twin of :func:`rotate_numpy` for one row (``array('f')`` of D)."""
    c = array("f", [float(a) - b for a, b in zip(row, mean)])
    z = [0.0 if p == PAD else c[p] for p in perm]
    out = array("f", bytes(4 * len(z)))
    for b in range(len(z) // g):
        acc = array("f", bytes(4 * g))
        base = b * g
        for k in range(g):
            zk = z[base + k]
            r = rot_rows[base + k]
            prods = array("f", [zk * rk for rk in r])
            acc = array("f", [a + p for a, p in zip(acc, prods)])
        out[base:base + g] = acc
    return out


def scale_blocks_python(y, weights) -> array:
    return array("f", [y[i] * weights[i >> 3] for i in range(len(y))])


class LearnedE8(E8Codes):
    """Learned-E8 codec (kind 6): rotation + E8 roots; same verbs as the E8 codec.

    Examples
    --------
    >>> cfg = train_learned_e8(sample)          # once, numpy
    >>> codec = LearnedE8(cfg)                  # anywhere, any backend
    >>> enc = codec.encode(vectors)             # (N, 48) uint8 for d = 384
    >>> scores = codec.score(codec.sketch_query(q), enc)
    """

    config_type = LearnedE8Head

    def __new__(cls, config=None, backend=None):
        if cls is LearnedE8 and getattr(config, "format", 1) == 2:
            from .learned_e8_stages import StagedE8

            cls = StagedE8
        return super().__new__(cls)

    def _prepare(self):
        super()._prepare()
        cfg = self.config
        g, D = cfg.group, cfg.padded_dim
        perm = bytes_array("H", cfg.perm)
        if self.backend == "numpy":
            import numpy as np

            self._mean = np.frombuffer(cfg.mean, dtype="<f4").astype(np.float32)
            p = np.frombuffer(cfg.perm, dtype="<u2").astype(np.intp)
            self._slots = np.where(p == PAD, cfg.input_dim, p)
            self._rot = np.frombuffer(cfg.rotations, dtype="<f4").astype(np.float32) \
                .reshape(cfg.n_groups, g, g)
            self._weights = np.repeat(np.frombuffer(cfg.weights, dtype="<f4").astype(np.float32), 8)
        else:
            rot = bytes_array("f", cfg.rotations)
            self._mean = bytes_array("f", cfg.mean)
            self._perm = list(perm)
            self._rot_rows = [rot[i * g:(i + 1) * g] for i in range(D)]
            self._weights = bytes_array("f", cfg.weights)

    def _padded_numpy(self, rows):
        import numpy as np

        return rotate_numpy(np.asarray(rows, dtype=np.float32), self._mean, self._slots, self._rot)

    def _project_numpy(self, rows, exact):
        return self._padded_numpy(rows) * self._weights

    def _rotated_python(self, row) -> array:
        return rotate_python(row, self._mean, self._perm, self._rot_rows, self.config.group)

    def _project_python(self, row):
        return scale_blocks_python(self._rotated_python(row), self._weights)

    def _encode_python(self, row) -> bytes:
        y = self._rotated_python(row)
        return bytes(_encode_block_python(y[8 * b:8 * b + 8]) for b in range(self.config.n_blocks))

    def _encode_numpy(self, rows, chunk: int = 1024):
        import numpy as np

        if len(rows) <= chunk:
            return e8_codes_numpy(self._padded_numpy(rows))
        return np.concatenate([e8_codes_numpy(self._padded_numpy(rows[i:i + chunk]))
                               for i in range(0, len(rows), chunk)])


# ---------------------------------------------------------------------------
# training (numpy, float64)
# ---------------------------------------------------------------------------
def e8_codes_numpy(y):
    """E8 codes of (N, D) rows (D a multiple of 8): (N, D / 8) uint8.

    The decision rule of :mod:`clark_hash_web.codecs.e8` computed column-wise
    by :func:`.e8_columns.encode_columns` (equal bytes for float32 input;
    float64 input is used in training and by the format-2 stages).
    """
    import numpy as np

    n, D = y.shape
    columns = np.ascontiguousarray(y.reshape(-1, 8).T)  # (8, M): one row per coordinate
    return encode_columns(columns).reshape(n, D // 8)


def nearest_roots(y):
    """Nearest E8 root of every 8-block of ``y``: (N, D/8) byte values (training helper)."""
    return e8_codes_numpy(y)


_PLAIN = {}


def _plain_e8(D):
    from .e8 import E8Config

    if D not in _PLAIN:
        _PLAIN[D] = E8Codes(E8Config(D), "numpy")
    return _PLAIN[D]


def _roots64():
    import numpy as np

    return _plain_e8(8)._roots_np.astype(np.float64)


def _assignment(x, D, g, how, rng):
    """Slots -> input dims (D,), -1 for padding: ``how`` in identity/balanced."""
    import numpy as np

    n, d = x.shape
    if how == "identity":
        return np.concatenate([np.arange(d), -np.ones(D - d, dtype=np.int64)])
    if how != "balanced":
        raise InvalidInputError(f"assign must be 'identity' or 'balanced', got {how!r}")
    G = D // g
    order = np.argsort(-x.var(axis=0), kind="stable")
    slots = -np.ones(D, dtype=np.int64)
    fill = np.zeros(G, dtype=np.int64)
    for r, dim in enumerate(order):  # snake over groups: 0..G-1, G-1..0, ...
        lap, pos = divmod(r, G)
        grp = pos if lap % 2 == 0 else G - 1 - pos
        slots[grp * g + fill[grp]] = dim
        fill[grp] += 1
    # within each group, shuffle slot order (seeded) so E8 blocks mix energies
    for grp in range(G):
        seg = slots[grp * g:(grp + 1) * g]
        slots[grp * g:(grp + 1) * g] = seg[rng.permutation(g)]
    return slots


def _fit_weights(feats, target, n_queries):
    """Least squares w (nb,) on per-query-centered features and targets (mean 1)."""
    import numpy as np

    f, t = feats, target
    q = n_queries
    f = f.reshape(q, -1, f.shape[1])
    t = t.reshape(q, -1)
    f = f - f.mean(axis=1, keepdims=True)
    t = t - t.mean(axis=1, keepdims=True)
    f = f.reshape(-1, f.shape[2])
    a = f.T @ f
    a += 1e-6 * np.trace(a) / len(a) * np.eye(len(a))
    w = np.linalg.solve(a, f.T @ t.ravel())
    return w / np.mean(w)


def training_sample(sample):
    """A training sample as float64 rows, or a clear error (both learned-E8 trainers).

    Parameters
    ----------
    sample : array_like
        (n, d) rows, n >= 16, d <= 65535, finite, none all zero.

    Returns
    -------
    numpy.ndarray
        The rows as float64.
    """
    import numpy as np

    x = np.asarray(sample)
    if x.ndim != 2 or len(x) < 16:
        raise InvalidInputError(f"sample must be 2-D with at least 16 rows, got shape {x.shape}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise InvalidInputError(f"sample row {bad} contains NaN or inf")
    norms = np.linalg.norm(x, axis=1)
    if (norms == 0).any():
        raise InvalidInputError(f"sample row {int(np.flatnonzero(norms == 0)[0])} is a zero vector")
    if x.shape[1] > 65535:
        raise InvalidInputError(f"input_dim must be <= 65535, got {x.shape[1]}")
    return x


def train_learned_e8(sample, seed: int = 0, group=None, iterations: int = 10,
                     assign: str = "identity", center: bool = False, weights: bool = False,
                     init: str = "identity", max_rows: int = 8_000, queries: int = 500,
                     neighbours: int = 50, log=None) -> LearnedE8Config:
    """Train a learned-E8 head on a sample of your embeddings (numpy required).

    Parameters
    ----------
    sample : array-like (n, d)
        Training vectors (finite, nonzero rows; n >= 2 * queries advisable).
        Rows are L2-normalized for training. Use the corpus you will store,
        not the queries.
    seed : int
        Seeds the initial rotations, the slot shuffle and the sample split.
        Same data + same options + same seed -> same config bytes.
    group : int, optional
        Rotation block size ``g`` (multiple of 8 dividing ``8 ceil(d/8)``);
        encoding costs ``g`` multiply-adds per dimension. Default 16 when it
        divides ``8 ceil(d/8)``, else 8.
    iterations : int, default 10
        Alternations of E8 assignment and Procrustes.
    assign : {"identity", "balanced"}
        Dimension-to-group assignment (see module docstring).
    init : {"identity", "random"}
        Starting blocks: the identity (the plain E8 code), or seeded random
        orthogonal blocks.
    center : bool, default False
        Subtract the training mean before rotating.
    weights : bool, default False
        Fit per-block query weights (else all 1).
    max_rows : int, default 8000
        At most this many rows (a seeded subset) are used.
    queries, neighbours : int
        Held-out rows and neighbours per row for the weight fit.
    log : callable, optional
        Called with progress strings.

    Returns
    -------
    LearnedE8Config
    """
    import numpy as np

    x = training_sample(sample)
    n, d = x.shape
    norms = np.linalg.norm(x, axis=1)
    D = padded_dim(d)
    if group is None:
        group = 16 if D % 16 == 0 else 8
    if not isinstance(group, int) or group < 8 or group % 8 or D % group:
        raise InvalidInputError(f"group must be a multiple of 8 dividing {D}, got {group!r}")
    check_int("iterations", iterations, 0, 10_000)
    center, weights = _flag("center", center), _flag("weights", weights)
    if init not in ("random", "identity"):
        raise InvalidInputError(f"init must be 'random' or 'identity', got {init!r}")
    options = {"group": group, "iterations": iterations, "assign": assign, "center": bool(center),
               "init": init,
               "weights": bool(weights), "max_rows": max_rows, "queries": queries,
               "neighbours": neighbours, "seed": seed}
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
    mu32 = mu.astype(np.float32)
    xc = x - mu32.astype(np.float64)
    slots = _assignment(xc, D, group, assign, rng)
    G = D // group
    z = np.zeros((len(xc), D))
    z[:, slots >= 0] = xc[:, slots[slots >= 0]]
    zt = np.ascontiguousarray(z.reshape(len(z), G, group).transpose(1, 0, 2))  # (G, n, g)
    if init == "random":
        rot = np.stack([np.linalg.qr(rng.standard_normal((group, group)))[0] for _ in range(G)])
    else:
        rot = np.stack([np.eye(group)] * G)
    roots = _roots64()
    zt32 = zt.astype(np.float32)  # the assignment step runs in float32 (speed)
    for it in range(iterations):
        y = np.ascontiguousarray((zt32 @ rot.astype(np.float32)).transpose(1, 0, 2)).reshape(len(z), D)
        c = roots[nearest_roots(y)].reshape(len(z), G, group).transpose(1, 0, 2)
        m = zt.transpose(0, 2, 1) @ c
        u, _, vt = np.linalg.svd(m)
        rot = u @ vt
        if log:
            log(f"iteration {it + 1}: fit {np.einsum('gnj,gnj->', zt @ rot, c) / len(z):.4f}")
    rot32 = rot.astype(np.float32)
    nb = D // 8
    w = np.ones(nb)
    if weights and len(x) >= 4 * max(queries, 1):
        nq = min(queries, len(x) // 4)
        qi = rng.choice(len(x), nq, replace=False)
        keep = np.setdiff1d(np.arange(len(x)), qi)
        y = np.ascontiguousarray((zt32[:, keep] @ rot32).transpose(1, 0, 2)).reshape(len(keep), D)
        codes = nearest_roots(y)  # (n, nb)
        cos = x[qi] @ x[keep].T
        k = min(neighbours, len(keep) - 1)
        top = np.argpartition(-cos, k, axis=1)[:, :k]
        rnd = rng.choice(len(keep), (nq, k))
        pick = np.concatenate([top, rnd], axis=1)
        qz = np.zeros((nq, D))
        qz[:, slots >= 0] = (x[qi] - mu32)[:, slots[slots >= 0]]
        qy = np.einsum("ngk,gkj->ngj", qz.reshape(nq, G, group), rot32).reshape(nq, nb, 8)
        tables = qy @ roots.T  # (nq, nb, 256): score of each root per block
        picked = codes[pick]  # (nq, p, nb)
        feats = np.take_along_axis(tables[:, None, :, :], picked[..., None].astype(np.intp),
                                   axis=3)[..., 0].reshape(-1, nb)
        target = np.take_along_axis(cos, pick, axis=1).ravel()
        w = _fit_weights(feats, target, nq)
        if not np.isfinite(w).all() or (w <= 0).any():
            w = np.clip(np.nan_to_num(w, nan=1.0), 0.05, None)
    perm = np.where(slots < 0, PAD, slots).astype("<u2")
    return LearnedE8Config(d, group, tfp, mu32.astype("<f4").tobytes(), perm.tobytes(),
                           np.ascontiguousarray(rot32.astype("<f4")).tobytes(),
                           w.astype("<f4").tobytes())


def _flag(name, value) -> bool:
    """A boolean option (also the words true/false/yes/no/1/0 from the CLI)."""
    if isinstance(value, bool):
        return value
    words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    key = str(value).strip().lower()
    if key not in words:
        raise InvalidInputError(f"{name} must be true or false, got {value!r}")
    return words[key]


def _trainer(sample, seed=0, head="stages", **options):
    """``head="stages"`` (default): format 2 (:func:`~.learned_e8_stages.train_staged_e8`);
    ``head="rotation"``: format 1 (:func:`train_learned_e8`)."""
    if head == "stages":
        from .learned_e8_stages import train_staged_e8

        return train_staged_e8(sample, seed=seed, **options)
    if head == "rotation":
        return train_learned_e8(sample, seed=seed, **options)
    raise InvalidInputError(f"head must be 'stages' (default) or 'rotation', got {head!r}")


register(CodecKind(CODEC_LEARNED_E8, "learned-e8", "learned E8", LearnedE8Head, LearnedE8,
                   check_codes, trained=True, trainer=_trainer))
