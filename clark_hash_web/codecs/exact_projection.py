"""Deterministic projections in exact float32 arithmetic.

The binary codecs project an input vector ``x`` (float32, length ``d``) with
a matrix ``P`` (float32, ``d x m``) and keep the signs. For the bytes to be
identical on every machine, the projection is *defined* as a sequential
float32 sum over the input dimensions::

    y_j = fl(... fl(fl(0 + fl(x_0 * P[0, j])) + fl(x_1 * P[1, j])) ... + fl(x_{d-1} * P[d-1, j]))

(every ``fl`` a float32 rounding, ties to even). BLAS (``@``, ``dot``) sums in
machine-dependent orders, so it is never trusted with a sign on its own:

* :func:`project_exact_numpy` computes ``y`` exactly with ``d`` elementwise
  float32 steps (used for queries, whose float values are needed);
* :func:`project_signs_numpy` (batches, only signs needed) first computes a
  float64 BLAS estimate and a proven bound on the distance between it and the
  exact float32 ``y``; only entries whose sign the bound cannot decide (a tiny
  fraction) are recomputed with the exact sequential sum.

Error bound: Higham's dot-product bound gives
``|fl32(x.P_j) - x.P_j| <= gamma_d * sum_i |x_i P_ij|`` with
``gamma_d = d u / (1 - d u)``, ``u = 2**-24``, plus ``d * 2**-150`` for
underflow in the products; the float64 estimate adds ``gamma64_{d+1}`` of the
same sum. We use ``((d + 2) * 2**-24 * 1.01 + 2**-40) * sum|x_i P_ij| + d *
2**-140``, where ``sum|x_i P_ij|`` is itself a float64 BLAS product (relative
error far below the margin).

Planes from a seed (:func:`gaussian_planes`): entry ``k = i * m + j`` is built
from ``h = splitmix64(seed ^ (k * 0x9E3779B97F4A7C15 mod 2**64))`` as the sum
of its four 16-bit chunks minus ``2 * 65535``, times ``2**-16`` (an
Irwin-Hall(4) approximation of a Gaussian, exact in float32). Pure integer
arithmetic: identical everywhere.
"""

from __future__ import annotations

from array import array

from .hashing import GOLDEN, MASK64, splitmix64

U32 = 2.0**-24


# -- planes --------------------------------------------------------------------------
def gaussian_planes_python(seed: int, rows: int, cols: int) -> list:
    """``rows`` lists of ``cols`` float values (exact float32), row-major."""
    out = []
    seed &= MASK64
    for i in range(rows):
        row = []
        for j in range(cols):
            h = splitmix64(seed ^ (((i * cols + j) * GOLDEN) & MASK64))
            s = (h & 0xFFFF) + ((h >> 16) & 0xFFFF) + ((h >> 32) & 0xFFFF) + (h >> 48)
            row.append((s - 131070) * 2.0**-16)
        out.append(array("f", row))
    return out


def gaussian_planes_numpy(seed: int, rows: int, cols: int):
    """(rows, cols) float32 planes, equal to :func:`gaussian_planes_python`."""
    import numpy as np

    with np.errstate(over="ignore"):
        k = np.arange(rows * cols, dtype=np.uint64)
        key = np.uint64(seed & MASK64) ^ (k * np.uint64(GOLDEN))
        z = key + np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h = z ^ (z >> np.uint64(31))
    m16 = np.uint64(0xFFFF)
    s = ((h & m16) + ((h >> np.uint64(16)) & m16) + ((h >> np.uint64(32)) & m16)
         + (h >> np.uint64(48))).astype(np.int64) - 131070
    return (s.astype(np.float32) * np.float32(2.0**-16)).reshape(rows, cols)


# -- exact projection ------------------------------------------------------------------------
def project_exact_python(x, planes) -> array:
    """Sequential float32 projection of one row ``x`` by ``planes`` (list of rows)."""
    m = len(planes[0]) if planes else 0
    acc = array("f", bytes(4 * m))
    for xi, prow in zip(x, planes):
        xi = float(xi)
        prod = array("f", [xi * p for p in prow])
        acc = array("f", [a + b for a, b in zip(acc, prod)])
    return acc


def project_exact_numpy(x, planes):
    """Sequential float32 projection of rows ``x`` (N, d) by ``planes`` (d, m) -> (N, m)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float32)
    acc = np.zeros((x.shape[0], planes.shape[1]), dtype=np.float32)
    tmp = np.empty_like(acc)
    for i in range(planes.shape[0]):
        np.multiply(x[:, i:i + 1], planes[i][None, :], out=tmp)
        acc += tmp
    return acc


def project_pairs_exact_numpy(x, planes, rows, cols):
    """Exact sequential projections for selected (row, col) pairs only -> (K,)."""
    import numpy as np

    acc = np.zeros(len(rows), dtype=np.float32)
    xs = np.asarray(x, dtype=np.float32)[rows]
    ps = planes[:, cols]
    for i in range(planes.shape[0]):
        acc += xs[:, i] * ps[i]
    return acc


def project_signs_numpy(x, planes, chunk: int = 4096):
    """Boolean (N, m) ``y > 0`` of the exact sequential projection, fast.

    See the module docstring for the bound that makes the BLAS estimate safe.
    """
    import numpy as np

    x = np.asarray(x, dtype=np.float32)
    n, d = x.shape
    p64 = planes.astype(np.float64)
    pabs = np.abs(p64)
    rel = (d + 2) * U32 * 1.01 + 2.0**-40
    absolute = d * 2.0**-140
    out = np.empty((n, planes.shape[1]), dtype=bool)
    for s in range(0, n, chunk):
        xc = x[s:s + chunk].astype(np.float64)
        est = xc @ p64
        bound = (np.abs(xc) @ pabs) * rel + absolute
        out[s:s + chunk] = est > 0
        unsure_r, unsure_c = np.nonzero(np.abs(est) <= bound)
        if len(unsure_r):
            exact = project_pairs_exact_numpy(x[s:s + chunk], planes, unsure_r, unsure_c)
            out[s + unsure_r, unsure_c] = exact > 0
    return out


# -- randomized Hadamard rotation ---------------------------------------------------------------
def next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def fwht_python(v) -> array:
    """Unnormalized fast Walsh-Hadamard transform, float32, fixed butterfly order.

    For ``h = 1, 2, 4, ...``: every block of ``2h`` becomes
    ``(a + b, a - b)`` with ``a`` its first and ``b`` its second half.
    """
    v = array("f", v)
    n = len(v)
    h = 1
    while h < n:
        out = array("f", bytes(4 * n))
        for s in range(0, n, 2 * h):
            a = v[s:s + h]
            b = v[s + h:s + 2 * h]
            out[s:s + h] = array("f", [p + q for p, q in zip(a, b)])
            out[s + h:s + 2 * h] = array("f", [p - q for p, q in zip(a, b)])
        v = out
        h *= 2
    return v


def fwht_numpy(x):
    """Row-wise :func:`fwht_python` of (N, n) float32, n a power of two."""
    import numpy as np

    x = np.asarray(x, dtype=np.float32)
    n_rows, n = x.shape
    out = np.empty((n_rows, n), dtype=np.float32)
    step = max(1, (1 << 17) // n)          # rows per block: ~0.5 MB, stays in cache
    for s in range(0, n_rows, step):
        out[s:s + step] = _fwht_columns(np.ascontiguousarray(x[s:s + step].T)).T
    return out


def _fwht_columns(src):
    """FWHT of each column of (n, N) float32 (consumed); returns (n, N).

    Column layout: every butterfly stage is two long contiguous vector
    operations (the same float32 ``a + b`` and ``a - b`` as :func:`fwht_python`).
    """
    import numpy as np

    n, cols = src.shape
    dst = np.empty_like(src)
    h = 1
    while h < n:
        a = src.reshape(n // (2 * h), 2, h * cols)
        o = dst.reshape(n // (2 * h), 2, h * cols)
        np.add(a[:, 0], a[:, 1], out=o[:, 0])
        np.subtract(a[:, 0], a[:, 1], out=o[:, 1])
        src, dst = dst, src
        h *= 2
    return src


def random_signs(seed: int, n: int) -> list:
    """n values +1.0/-1.0 from the top bit of ``splitmix64(seed ^ (i * GOLDEN))``."""
    seed &= MASK64
    return [-1.0 if splitmix64(seed ^ ((i * GOLDEN) & MASK64)) >> 63 else 1.0 for i in range(n)]
