"""A proven prefilter for codes scored through byte lookup tables (E8, Clark Hash), numpy only.

E8 codes are root numbers, not bits, so the bit-plane bound of
:mod:`.bit_scan` does not apply. Their exact asymmetric score (see
:mod:`clark_hash_web.codecs.bitpack`) is

    ``F = (((0 + u_0) + u_1) + ...) + u_{P-1}``,  ``u_p = t[2p][lo_p] + t[2p+1][hi_p]``

in float32, with ``t[b]`` the query's float32 byte tables and ``lo_p``/``hi_p``
the code bytes ``2p``/``2p+1``. :class:`TableBound` scores every row instead
with small integers and proves which rows can still reach the top ``k``:

1. Floor quantization: with one step ``s`` for all bytes (the widest table
   range over ``LEVELS``), ``g[b][v] = floor((t[b][v] - lo_b) / s)``, so
   ``t[b][v] = lo_b + s g[b][v] + e[b][v]`` with ``e[b][v]`` in ``[0, s)``.
   Per byte the actual smallest and largest ``e`` (over the table) are kept.
2. Quick score: ``Q = sum_b g[b][code byte b]``, an exact integer, from
   8-bit pair tables (``g[2p][lo] + g[2p+1][hi] <= 254``, 64 KiB each: they
   stay in cache) gathered over the 16-bit code columns and accumulated in
   uint16 (uint32 past 258 pairs).
3. Bound: the real sum ``S = sum_b t[b][v_b]`` lies in
   ``[C + s Q + E-, C + s Q + E+]`` (``C = sum lo_b``, ``E-``/``E+`` the sums of
   the per-byte smallest/largest ``e``), and the float32 ``F`` within
   ``R = (2 P + 8) 2**-24 M`` of ``S`` (``P`` pair additions and ``P - 1``
   sequential additions, each rounding by at most ``2**-24`` times a partial
   sum bounded by ``M = sum_b max_v |t[b][v]|``; plus the subnormal spacing).
   So with ``Q_k`` the ``k``-th largest ``Q``, ``k`` rows score at least
   ``C + s Q_k + E- - R``, and a row can reach the top ``k`` (ties included)
   only if ``Q >= Q_k - slack``, ``slack = ceil((E+ - E- + 2 R) / s)`` (with
   margin). Every other row scores strictly below ``k`` rows.

Only the survivors get the exact float32 score (:func:`exact_scores`: the
same float32 operations as the full scan, read from the byte tables, so the
scores are bit-identical and no 65,536-entry float table is built).

Other scores: any exact score within a known ``R`` of the real table sum
``S`` (the caller passes ``error=R``) gets the same prefilter. Clark Hash
(:func:`~.fast_scan.quick_bound`) passes the error of its sequential float32
accumulator plus a margin that keeps rounded divisions strictly ordered.
"""

from __future__ import annotations

LEVELS = 127          # per byte: two bytes sum to <= 254, one uint8 pair-table entry
CHUNK = 1 << 17       # rows per step of the quick pass (a 1 MiB index buffer; measured:
                      # 2**17..2**20 beat 2**15 by 10-20%, fewer numpy calls)
HEAD_ROWS = 1 << 15   # rows whose k-th largest quick score is the first cut (survivors)
U = 2.0**-24


class TableBound:
    """Integer pair tables of a query's byte tables and the slack that makes them a prefilter.

    Parameters
    ----------
    tables : (code_bytes, 256) float
        The query's byte tables (``codec._tables_numpy(values)``), or any real
        per-byte weights whose sum over a code's bytes is its real score.
    error : float, optional
        Bound on ``|exact score - real table sum|``; by default ``R`` of the
        float32 pair-table sum (see the module docstring).

    Attributes
    ----------
    pairs : (P, 65536) uint8 or None
        ``g[2p][lo] + g[2p+1][hi]`` at ``lo | hi << 8``; None when the tables
        cannot prune (not finite, or every entry equal).
    step, base, low, high : float
        Every row's exact float32 score lies in
        ``[base + step * Q + low, base + step * Q + high]`` (``base = C``,
        ``low = E- - R``, ``high = E+ + R``).
    slack : int
        Quick-score margin, ``>= (high - low) / step`` (see the module docstring).
    """

    def __init__(self, tables, error=None):
        import numpy as np

        t = np.asarray(tables, dtype=np.float64)            # float32 values exactly, or float64
        cb = len(t)
        self.n_pairs = (cb + 1) // 2
        self.pairs = None
        if not cb or not np.isfinite(t).all():
            return
        lo = t.min(axis=1)
        span = float((t.max(axis=1) - lo).max())
        if span == 0.0:
            return
        s = span / LEVELS * (1 + 2.0**-40)
        g = np.clip(np.floor((t - lo[:, None]) / s), 0, LEVELS)
        e = t - lo[:, None] - s * g
        m = float(np.abs(t).max(axis=1).sum())
        r = (2 * self.n_pairs + 8) * U * m + 2 * self.n_pairs * 2.0**-149 \
            if error is None else float(error)
        if not np.isfinite(r):
            return
        margin = 1e-12 * (m + cb * span)                     # float64 evaluation of e
        self.step, self.base = s, float(lo.sum())
        self.low = float(e.min(axis=1).sum()) - r - margin
        self.high = float(e.max(axis=1).sum()) + r + margin
        self.slack = int(np.ceil((self.high - self.low) * (1 + 1e-9) / s)) + 1
        g8 = g.astype(np.uint8)
        if cb % 2:
            g8 = np.concatenate([g8, np.zeros((1, 256), dtype=np.uint8)])
        pairs = np.empty((self.n_pairs, 256, 256), dtype=np.uint8)
        np.add(g8[0::2, None, :], g8[1::2, :, None], out=pairs)    # [p, hi, lo]
        self.pairs = pairs.reshape(self.n_pairs, 65536)
        self.max_sum = 2 * LEVELS * self.n_pairs

    def sums(self, columns):
        """Quick scores ``Q`` of all rows: uint16 (uint32 past 258 pairs).

        ``columns`` holds P uint16 arrays (N,): code bytes ``2p | 2p+1 << 8``
        (:meth:`~.code_columns.CodeColumns.pair_columns`). ``CHUNK`` rows at a
        time: each 16-bit column is widened into one reused index buffer, its
        8-bit table entries gathered (``take`` without ``out`` and without
        clipping: the fastest numpy gather, about 1.3x ``mode="clip"``; the
        indices are < 65536 by construction) and added into the accumulator.
        """
        import numpy as np

        n = len(columns[0])
        acc_type = np.uint16 if self.max_sum <= 0xFFFF else np.uint32
        out = np.empty(n, dtype=acc_type)
        idx = np.empty(min(n, CHUNK), dtype=np.intp)
        for s in range(0, n, CHUNK):
            e = min(n, s + CHUNK)
            ii, acc = idx[:e - s], out[s:e]
            for p in range(self.n_pairs):
                np.copyto(ii, columns[p][s:e], casting="unsafe")
                if p:
                    np.add(acc, self.pairs[p].take(ii), out=acc)
                else:
                    np.copyto(acc, self.pairs[p].take(ii))
        return out

    def survivors(self, columns, k: int, row_scales=None, bias: float = 0.0):
        """Ascending row numbers that may reach the top ``k``, or None for "all rows".

        The ``k``-th largest ``Q`` is found without a histogram or a partition
        of all rows: the ``k``-th largest of the first ``HEAD_ROWS`` rows is a lower
        bound of it, so the rows at or above that (minus the slack) hold every
        survivor; a partition of those few gives the exact ``Q_k``.

        ``row_scales`` (float32, one per row, all > 0 or 0) with ``bias``: the
        scores are ``fl32(fl32(S + bias) * scale)`` (normalized learned-E8
        heads, :mod:`clark_hash_web.codecs.normalized_scores`), bounded per row
        by :meth:`_scaled_survivors`.
        """
        import numpy as np

        n = len(columns[0])
        if self.pairs is None or k >= n:
            return None
        q = self.sums(columns)
        if row_scales is not None:
            return self._scaled_survivors(q, k, np.asarray(row_scales, dtype=np.float64), bias)
        head = q[:max(k, HEAD_ROWS)]
        low = int(np.partition(head, len(head) - k)[len(head) - k])    # <= Q_k
        cand = np.flatnonzero(q >= max(0, low - self.slack))
        qc = q[cand]
        kth = int(np.partition(qc, len(qc) - k)[len(qc) - k])          # Q_k
        if kth - self.slack <= 0:
            return None
        return cand[qc >= kth - self.slack]

    def _scaled_survivors(self, q, k, scale, bias):
        """Survivors when every score is ``fl32(fl32(S + bias) * scale)``.

        ``S`` lies in ``[base + step Q + low, base + step Q + high]``; both
        float32 steps are monotone in ``S`` (``scale >= 0``) and round by at
        most ``2**-24`` relative each, so ``(S_lo + bias) scale`` and ``(S_hi +
        bias) scale``, widened by ``2**-21`` of their magnitude plus the
        subnormal spacing, bound the exact score. The ``k``-th largest lower
        bound (over the rows whose upper bound passes the head rows' ``k``-th
        lower bound: no other row can hold it) is the cut.
        """
        import numpy as np

        qf = q.astype(np.float64) * self.step + (self.base + bias)
        lo_raw = (qf + self.low) * scale
        hi_raw = (qf + self.high) * scale
        pad = (np.maximum(np.abs(lo_raw), np.abs(hi_raw)) * 2.0**-21) + 2.0**-140
        lo, hi = lo_raw - pad, hi_raw + pad
        head = lo[:max(k, HEAD_ROWS)]
        first = float(np.partition(head, len(head) - k)[len(head) - k])   # <= the k-th lower bound
        cand = np.flatnonzero(hi >= first)
        lc = lo[cand]
        cut = float(np.partition(lc, len(lc) - k)[len(lc) - k])
        keep = cand[hi[cand] >= cut]
        return None if len(keep) == len(q) else keep


def exact_scores(tables, columns, rows):
    """Exact float32 asymmetric scores of ``rows``: bit-identical to the full scan.

    ``u_p = t[2p][lo] + t[2p+1][hi]`` (just ``t[2p][lo]`` for the last byte of
    an odd count) and ``(((0 + u_0) + u_1) + ...)`` in float32, as
    :func:`~clark_hash_web.codecs.bitpack.asymmetric_scores_numpy` does with
    its pair tables.
    """
    import numpy as np

    t = np.asarray(tables, dtype=np.float32)
    cb = len(t)
    acc = np.zeros(len(rows), dtype=np.float32)
    for p in range((cb + 1) // 2):
        v = columns[p][rows]
        u = t[2 * p][v & 0xFF]
        if 2 * p + 1 < cb:
            u = u + t[2 * p + 1][v >> 8]
        acc += u
    return acc
