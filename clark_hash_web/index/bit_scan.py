"""Hamming scans over column-major code words (numpy only).

:func:`hamming_distances` XORs each uint64 word column with the query's word,
counts bits with ``np.bitwise_count`` and accumulates in uint16 (uint32 past
65,535 bits), a chunk of rows at a time so the temporaries stay in cache.
:func:`smallest` selects the ``k`` smallest distances, ties by row number,
with a histogram (``bincount`` + ``cumsum``) instead of a partition: the
k-th distance is the first value whose running count reaches ``k``.
"""

from __future__ import annotations

CHUNK = 1 << 14


def query_words(code: bytes, words: int):
    """The query code as ``words`` little-endian uint64 (zero padded)."""
    import numpy as np

    raw = bytes(code).ljust(8 * words, b"\0")
    return np.frombuffer(raw, dtype="<u8")


def distance_dtype(n_bits: int):
    import numpy as np

    return np.uint16 if n_bits <= 0xFFFF else np.uint32


def _popcount_into(x, out):
    import numpy as np

    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x, out=out)
    from ..codecs.bitpack import POP8

    lut = np.frombuffer(POP8, dtype=np.uint8)
    return lut[x.view(np.uint8)].reshape(x.shape + (8,)).sum(axis=-1, dtype=np.uint8, out=out)


def hamming_distances(cols, qwords, n_bits: int, rows=None):
    """Hamming distances of stored rows to the query words.

    Parameters
    ----------
    cols : (W, N) uint64 column-major words (:class:`~.code_columns.CodeColumns`)
    qwords : (W,) uint64 query words
    n_bits : int
        Code length (picks the accumulator type).
    rows : int array, optional
        Only these row numbers (in this order).

    Returns
    -------
    (N,) or (len(rows),) uint16 / uint32 distances
    """
    import numpy as np

    if rows is not None:
        cols = cols[:, np.asarray(rows, dtype=np.intp)]
    w, n = cols.shape
    out = np.empty(n, dtype=distance_dtype(n_bits))
    x = np.empty((w, min(n, CHUNK)), dtype="<u8")
    c = np.empty((w, min(n, CHUNK)), dtype=np.uint8)
    q = np.asarray(qwords, dtype="<u8")[:, None]
    for s in range(0, n, CHUNK):
        e = min(n, s + CHUNK)
        xx, cc = x[:, :e - s], c[:, :e - s]
        np.bitwise_xor(cols[:, s:e], q, out=xx)
        _popcount_into(xx, cc)
        np.sum(cc, axis=0, dtype=out.dtype, out=out[s:e])
    return out


def smallest(values, k: int, max_value: int):
    """Positions of the ``k`` smallest of non-negative ints ``values``, ties by position.

    Returns an int64 array ordered by ``(value, position)``.
    """
    import numpy as np

    n = len(values)
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < n:
        counts = np.bincount(values, minlength=max_value + 1)
        kth = int(np.searchsorted(np.cumsum(counts), k))
        cand = np.flatnonzero(values <= kth)
    else:
        cand = np.arange(n)
    order = np.argsort(values[cand], kind="stable")[:k]
    return cand[order]


# -- float queries: a proven prefilter from bit planes of |q| ---------------------------------
class PlaneBound:
    """Bit planes of a float query and the bound that makes them a proven prefilter.

    For a sign code with bits ``c`` and a float query ``q`` (query sign bits
    ``z``), the asymmetric score is ``S = sum_j (c_j ? q_j : -q_j) = A - 2 D``
    with ``A = sum_j |q_j|`` and ``D = sum_{j: c_j != z_j} |q_j|``. With
    ``|q_j| = s U_j + e_j`` (``U_j`` the ``|q_j| / s`` rounded to ``B`` bits),
    ``D = s I + sum_{j in X} e_j`` where ``I = sum_b 2**b popcount(X & plane_b)``
    and ``X = c XOR z``: an exact integer per row, from AND and popcount.
    So ``S`` lies within ``[A - 2 s I - 2 E+, A - 2 s I - 2 E-]`` (``E+``/``E-``
    the sums of the positive/negative ``e_j``), and the float32 score the
    codec computes lies within ``R = 2 (P + 8) 2**-24 A`` of ``S`` (its byte
    tables, pair sums and final sum are at most ``P + 8`` sequential
    float32 roundings; ``P`` = number of byte pairs). Hence a row can reach the
    top ``k`` only if ``I <= I_k + slack`` with ``I_k`` the ``k``-th smallest
    ``I`` and ``slack = ceil((E+ - E- + 2 R) / (2 s))`` (with margin): every
    other row scores strictly below ``k`` rows, ties included.

    Parameters
    ----------
    values : (m,) float32 query projection
    code : bytes, the query's packed sign bits (``values > 0``)
    words : int, uint64 words per code
    n_pairs : int, byte pairs per code
    bits : int, planes ``B``
    """

    def __init__(self, values, code: bytes, words: int, n_pairs: int, bits: int):
        import numpy as np

        a = np.abs(np.asarray(values, dtype=np.float64))
        self.qwords = query_words(code, words)
        self.bits = bits
        self.max_sum = int(a.size) * ((1 << bits) - 1)
        amax = float(a.max()) if a.size else 0.0
        if amax == 0.0:
            self.planes = None          # every score is 0: no pruning
            return
        s = amax / ((1 << bits) - 1)
        u = np.clip(np.floor(a / s + 0.5), 0, (1 << bits) - 1).astype(np.int64)
        e = a - s * u
        total = float(a.sum())
        r = 2.0 * (n_pairs + 8) * 2.0**-24 * total + a.size * 2.0**-140
        width = float(e[e > 0].sum()) - float(e[e < 0].sum()) + 2.0 * r
        width = width * (1 + 1e-6) + 1e-12 * total
        self.slack = int(np.ceil(width / (2.0 * s))) + 1
        padded = np.zeros(64 * words, dtype=np.int64)
        padded[:len(u)] = u
        self.planes = np.stack([
            np.packbits(((padded >> b) & 1).astype(np.uint8), bitorder="little").view("<u8")
            for b in range(bits)])

    def sums(self, cols, rows=None):
        """The integer ``I`` (int32) of every row (or of ``rows``), see the class docstring.

        Per chunk of rows: one XOR with the query words, one AND with all
        planes at once (``(B, W, rows)``), one popcount, one sum over the
        words, then the planes weighted by ``2**b``.
        """
        import numpy as np

        if rows is not None:
            cols = cols[:, np.asarray(rows, dtype=np.intp)]
        w, n = cols.shape
        bits = self.bits
        out = np.empty(n, dtype=np.int32)
        ch = min(n, CHUNK)
        per_plane = np.uint16 if 64 * w << (bits - 1) <= 0xFFFF else np.int32
        x = np.empty((w, ch), dtype="<u8")
        y = np.empty((bits, w, ch), dtype="<u8")
        c = np.empty((bits, w, ch), dtype=np.uint8)
        part = np.empty((bits, ch), dtype=per_plane)
        q, planes = self.qwords[:, None], self.planes[:, :, None]
        for s in range(0, n, CHUNK):
            e = min(n, s + CHUNK)
            xx, yy, cc, pp, acc = x[:, :e - s], y[:, :, :e - s], c[:, :, :e - s], \
                part[:, :e - s], out[s:e]
            np.bitwise_xor(cols[:, s:e], q, out=xx)
            np.bitwise_and(xx[None], planes, out=yy)
            _popcount_into(yy, cc)
            np.sum(cc, axis=1, dtype=per_plane, out=pp)
            acc[:] = pp[0]
            for b in range(1, bits):
                np.left_shift(pp[b], b, out=pp[b])
                acc += pp[b]
        return out

    def survivors(self, cols, k: int, rows=None):
        """Row numbers (ascending) that may reach the top ``k``: all rows, or within ``rows``."""
        import numpy as np

        n = cols.shape[1] if rows is None else len(rows)
        if self.planes is None or k >= n:
            return np.arange(n) if rows is None else np.asarray(rows)
        sums = self.sums(cols, rows)
        counts = np.bincount(sums, minlength=self.max_sum + 1)
        kth = int(np.searchsorted(np.cumsum(counts), k))
        keep = np.flatnonzero(sums <= kth + self.slack)
        return keep if rows is None else np.asarray(rows)[keep]
