"""Hamming scans over column-major code words (numpy only).

:func:`hamming_distances` XORs each uint64 word column with the query's word,
counts bits with ``np.bitwise_count``, adds the counts of three words at a
time in uint8 (at most 192) and only then widens to uint16 (uint32 past
65,535 bits), a chunk of rows at a time so the temporaries stay in cache.
:func:`smallest` selects the ``k`` smallest distances, ties by row number:
the k-th value of the first :data:`HEAD` rows bounds the k-th value of all
rows from above, so one comparison pass leaves only a few candidates
(:func:`at_most_kth`), and the cut is found among them.
:class:`PlaneBound` is the proven prefilter of float-query scans over the
same words: the query magnitudes in a few bit planes (AND + popcount), cut
at the ``k``-th exact score of a few probe rows.
"""

from __future__ import annotations

CHUNK = 1 << 15
HEAD = 1 << 14


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


class WordCounts:
    """Reused buffers that sum the popcounts of ``W`` uint64 words per row.

    ``add(x, out)``: ``x`` is ``(..., W, m)`` uint64, ``out`` ``(..., m)``.
    The counts (at most 64 each) go into a zero-padded ``(..., 3 G, chunk)``
    uint8 buffer (``G = ceil(W / 3)``); groups of three words are added in
    uint8 (at most 192, no overflow), and only the ``G`` group sums are
    widened into ``out``: fewer, narrower passes than one widening sum over
    all ``W`` words.
    """

    def __init__(self, lead: tuple, words: int, chunk: int):
        import numpy as np

        self.words, self.groups = words, (words + 2) // 3
        self.counts = np.zeros(lead + (3 * self.groups, chunk), dtype=np.uint8)
        self.group_sums = np.empty(lead + (self.groups, chunk), dtype=np.uint8)

    def add(self, x, out):
        import numpy as np

        m, g = x.shape[-1], self.groups
        c, t = self.counts[..., :m], self.group_sums[..., :m]
        _popcount_into(x, c[..., :self.words, :])
        np.add(c[..., :g, :], c[..., g:2 * g, :], out=t)
        t += c[..., 2 * g:, :]
        np.sum(t, axis=-2, dtype=out.dtype, out=out)
        return out


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
    ch = min(n, CHUNK)
    x = np.empty((w, ch), dtype="<u8")
    counts = WordCounts((), w, ch)
    q = np.asarray(qwords, dtype="<u8")[:, None]
    for s in range(0, n, CHUNK):
        e = min(n, s + CHUNK)
        xx = x[:, :e - s]
        np.bitwise_xor(cols[:, s:e], q, out=xx)
        counts.add(xx, out[s:e])
    return out


def at_most_kth(values, k: int, slack: int = 0):
    """Positions (ascending) of the ``values`` that are ``<= v_k + slack``, and ``v_k``.

    ``v_k`` is the ``k``-th smallest of the non-negative ints ``values``
    (``1 <= k <= len(values)``). The ``k``-th smallest of the first
    ``max(HEAD, k)`` values is ``>= v_k``, so the rows at most that bound
    plus ``slack`` hold every answer; ``v_k`` is then the ``k``-th smallest
    among them.
    """
    import numpy as np

    top = int(np.iinfo(values.dtype).max)
    head = values[:max(HEAD, k)]
    bound = int(np.partition(head, k - 1)[k - 1])
    cand = np.flatnonzero(values <= min(bound + slack, top))
    v = values[cand]
    kth = int(np.partition(v, k - 1)[k - 1])
    if bound > kth:
        keep = v <= min(kth + slack, top)
        cand, v = cand[keep], v[keep]
    return cand, v, kth


def smallest(values, k: int):
    """Positions of the ``k`` smallest of non-negative ints ``values``, ties by position.

    Returns an int64 array ordered by ``(value, position)``. Only the rows
    below the ``k``-th value are sorted; rows equal to it are taken in
    position order (so a cut through many ties costs no sort).
    """
    import numpy as np

    n = len(values)
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k == n:
        return np.argsort(values, kind="stable").astype(np.int64)
    cand, v, kth = at_most_kth(values, k)
    below = v < kth
    lower = cand[below][np.argsort(v[below], kind="stable")]
    equal = cand[~below][:k - len(lower)]
    return np.concatenate([lower, equal]).astype(np.int64)


# -- float queries: a proven prefilter from bit planes of |q| ---------------------------------
class PlaneBound:
    """Bit planes of a float query and the bound that makes them a proven prefilter.

    For a sign code with bits ``c`` and a float query ``q`` (query sign bits
    ``z``), the asymmetric score is ``S = sum_j (c_j ? q_j : -q_j) = A - 2 D``
    with ``A = sum_j |q_j|`` and ``D = sum_{j: c_j != z_j} |q_j|``. With
    ``|q_j| = s U_j + e_j`` (``U_j`` the ``|q_j| / s`` rounded to ``B`` bits,
    clipped at ``2**B - 1``), ``D = s I + sum_{j in X} e_j`` where
    ``I = sum_b 2**b popcount(X & plane_b)`` and ``X = c XOR z``: an exact
    integer per row, from AND and popcount. So ``S`` lies within
    ``[A - 2 s I - 2 E+, A - 2 s I - 2 E-]`` (``E+``/``E-`` the sums of the
    positive/negative ``e_j``), and the float32 score the codec computes lies
    within ``R = 2 (P + 8) 2**-24 A`` of ``S`` (its byte tables, pair sums and
    final sum are at most ``P + 8`` sequential float32 roundings; ``P`` =
    number of byte pairs). The ``k`` rows with the smallest ``I`` score at
    least ``A - 2 s I_k - 2 E+ - R``; a row scores at most
    ``A - 2 s I - 2 E- + R``. Hence a row can reach the top ``k`` only if
    ``I <= I_k + slack`` with ``slack = ceil((E+ - E- + 2 R) / s)`` (with
    margin): every other row scores strictly below ``k`` rows, ties included.
    (The two sides can sit at opposite ends of their intervals: the full
    width ``E+ - E-`` is needed, not half of it.)

    The scale ``s`` is the one (on a grid from ``max|q| / (2**B - 1)`` down
    to a quarter of it) with the smallest ``E+ - E-``: clipping a few
    large ``|q_j|`` costs less than coarse steps for all the others.

    Parameters
    ----------
    values : (m,) float32 query projection
    code : bytes, the query's packed sign bits (``values > 0``)
    words : int, uint64 words per code
    n_pairs : int, byte pairs per code
    bits : int, planes ``B``
    """

    SCALES = 32       # candidate scales tried between max|q| / (2**B - 1) and a quarter of it
    PROBES = 64       # rows (at least k) scored exactly to set the cut of :meth:`survivors`

    def __init__(self, values, code: bytes, words: int, n_pairs: int, bits: int):
        import numpy as np

        a = np.abs(np.asarray(values, dtype=np.float64))
        self.qwords = query_words(code, words)
        self.bits = bits
        top = (1 << bits) - 1
        self.max_sum = int(a.size) * top
        self.dtype = np.uint16 if self.max_sum <= 0xFFFF else np.int32
        amax = float(a.max()) if a.size else 0.0
        if amax == 0.0:
            self.planes = None          # every score is 0: no pruning
            return
        scales = amax / top * np.linspace(1.0, 0.25, self.SCALES)
        u = np.clip(np.floor(a / scales[:, None] + 0.5), 0, top)
        best = int(np.argmin(np.abs(a - scales[:, None] * u).sum(axis=1)))
        s = float(scales[best])
        u = u[best].astype(np.int64)
        e = a - s * u
        total = float(a.sum())
        r = 2.0 * (n_pairs + 8) * 2.0**-24 * total + a.size * 2.0**-140
        self.scale, self.levels, self.total, self.rounding = s, u, total, r
        self.e_plus, self.e_minus = float(e[e > 0].sum()), float(e[e < 0].sum())
        width = self.e_plus - self.e_minus + 2.0 * r
        width = width * (1 + 1e-6) + 1e-12 * total
        self.slack = int(np.ceil(width / s)) + 1
        padded = np.zeros(64 * words, dtype=np.int64)
        padded[:len(u)] = u
        # highest plane first (Horner order in :meth:`sums`)
        self.planes = np.stack([
            np.packbits(((padded >> b) & 1).astype(np.uint8), bitorder="little").view("<u8")
            for b in reversed(range(bits))])

    def sums(self, cols, rows=None):
        """The integer ``I`` (uint16, or int32 past 65,535) of every row (or of ``rows``)."""
        import numpy as np

        if rows is not None:
            cols = cols[:, np.asarray(rows, dtype=np.intp)]
        out = np.empty(cols.shape[1], dtype=self.dtype)
        for _ in self._fill(cols, out):
            pass
        return out

    def _fill(self, cols, out):
        """Write ``I`` of the rows of ``cols`` into ``out``, yielding ``(start, end)`` per chunk.

        Per chunk of rows: one XOR with the query words, one AND with all
        planes at once (``(B, W, rows)``), the popcounts summed over the words
        (:class:`WordCounts`), then the planes combined by Horner's rule
        (``I = (..(p_{B-1} * 2 + p_{B-2}) * 2 ..) + p_0``).
        """
        import numpy as np

        w, n = cols.shape
        bits = self.bits
        ch = min(n, CHUNK)
        per_plane = np.uint16 if 64 * w <= 0xFFFF else np.int32
        x = np.empty((w, ch), dtype="<u8")
        y = np.empty((bits, w, ch), dtype="<u8")
        counts = WordCounts((bits,), w, ch)
        part = np.empty((bits, ch), dtype=per_plane)
        q, planes = self.qwords[:, None], self.planes[:, :, None]
        for s in range(0, n, CHUNK):
            e = min(n, s + CHUNK)
            xx, yy, pp, acc = x[:, :e - s], y[:, :, :e - s], part[:, :e - s], out[s:e]
            np.bitwise_xor(cols[:, s:e], q, out=xx)
            np.bitwise_and(xx[None], planes, out=yy)
            counts.add(yy, pp)
            acc[:] = pp[0]
            for b in range(1, bits):
                acc <<= 1
                acc += pp[b]
            yield s, e

    def survivors(self, cols, k: int, rows=None, score=None):
        """Row numbers (ascending) that may reach the top ``k``: all rows, or within ``rows``.

        Without ``score``: the rows with ``I <= I_k + slack``. With ``score``
        (row numbers -> the float32 scores the final ranking uses), the cut
        is tighter: ``k`` actual rows (those with the smallest ``I``, first
        among the first :data:`HEAD` rows, then among all candidates) are
        scored exactly; their lowest score ``F`` is reached by ``k`` rows, and
        a row scores at most ``A - 2 s I - 2 E- + R``, so only rows with
        ``A - 2 s I - 2 E- + R >= F`` can still reach the top ``k``
        (:meth:`limit`). The exact score of the ``k``-th row sits inside its
        interval, not at its bottom, so this keeps about half the slack.
        The first cut filters each chunk while it is still in cache.
        """
        import numpy as np

        n = cols.shape[1] if rows is None else len(rows)
        if self.planes is None or k >= n:
            return np.arange(n) if rows is None else np.asarray(rows)
        if score is None:
            keep, _, _ = at_most_kth(self.sums(cols, rows), k, self.slack)
            return keep if rows is None else np.asarray(rows)[keep]
        if rows is not None:
            rows = np.asarray(rows, dtype=np.intp)
            cols = cols[:, rows]
        top = int(np.iinfo(self.dtype).max)

        probes = min(n, max(k, self.PROBES))

        def cut_from(pos):
            f = score(pos if rows is None else rows[pos])
            return min(self.limit(float(np.partition(f, len(f) - k)[len(f) - k])), top)

        sums = np.empty(n, dtype=self.dtype)
        parts, cut, head = [], None, min(n, max(HEAD, probes))
        for s, e in self._fill(cols, sums):
            if cut is not None:
                parts.append(np.flatnonzero(sums[s:e] <= cut) + s)
            elif e >= head:
                cut = cut_from(smallest(sums[:e], probes))
                parts.append(np.flatnonzero(sums[:e] <= cut))
        keep = np.concatenate(parts)
        v = sums[keep]
        cut = min(cut_from(keep[smallest(v, probes)]),
                  int(np.partition(v, k - 1)[k - 1]) + self.slack)
        keep = keep[v <= cut]
        return keep if rows is None else rows[keep]

    def limit(self, floor_score: float) -> int:
        """Largest ``I`` whose score bound ``A - 2 s I - 2 E- + R`` may reach ``floor_score``.

        Rounded up with margin (float64 arithmetic): every row with a larger
        ``I`` scores strictly below ``floor_score``.
        """
        import math

        num = self.total - 2.0 * self.e_minus + 2.0 * self.rounding - floor_score
        lim = num / (2.0 * self.scale)
        lim += 1e-6 * abs(lim) + 1e-6 * self.total / self.scale
        return max(0, math.floor(lim) + 1)
