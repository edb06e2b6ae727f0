"""Fast numpy randomized Hadamard projection: the exact butterflies of
:func:`~clark_hash_web.codecs.exact_projection.fwht_python`, column-wise, skipping zeros.

:class:`HadamardProjector` computes ``y = FWHT(pad(x * D))[:m]`` for a chunk
of rows at a time, in column layout ``(n, rows)`` so every butterfly stage is
two long vector operations (``a + b`` and ``a - b``: the float32 operations
of the reference, in its order), into two buffers allocated once:

* rows become columns in cheap copies (:mod:`.columns`: the rows in order
  with the exact sign flip ``x * D``, then whole 8-byte pairs of coordinates,
  when ``d`` is even); the first stage (the pairs' sums and differences)
  reads the two coordinates of each pair from the strided pair view, so the
  last transpose step costs no pass of its own;
* the zero padding ``[d, n)`` is never transformed while it is all zero: a
  stage only runs over the blocks that hold a nonzero input (``+0 + +0`` and
  ``+0 - +0`` are ``+0``, what the skipped blocks would hold anyway); rows
  past the live range are set to ``+0.0`` where a stage reads them;
* the last stage computes only the first ``m`` outputs;
* when ``n/2 < d <= 3n/4`` (``d = 384``, ``n = 512``) the second block of the
  penultimate stage has an all-zero second half ``a1``: its outputs are
  ``(T + 0, T - 0)`` with ``T - 0 == T`` bit for bit, so only ``T + 0`` is
  computed (it differs from ``T`` on ``-0.0``) and the last stage reads ``T``
  where the reference reads ``T - 0`` (no zero fill, no subtraction there);
* the operations of a chunk width are built once, as (function, arguments)
  pairs on views of the fixed buffers (making the views cost about as much as
  running the smaller stages);
* ``codes`` can also return ``max |x_i|`` per row, taken from the chunk while
  it is in cache (the binary codecs' row check, without another pass over the input);
* codes: the signs of the ``m`` outputs are packed eight rows at a time
  (8 rows of 0/1 bytes viewed as uint64 words, shifted and OR-ed), so only
  the packed bytes are transposed back.

The values (and so the codes) are bit-identical to the reference.
"""

from __future__ import annotations

from .columns import group_columns, group_width, rows_to_groups

CHUNK_ROWS = 1024         # rows per step: two (n, 1024) float32 buffers, 4 MiB at n = 512


class HadamardProjector:
    """Exact ``FWHT(pad(x * signs))[:m]`` of float32 rows, a chunk at a time.

    Parameters
    ----------
    signs : (d,) float32 of +1/-1
    n : int, power of two >= d
    m : int, outputs kept (<= n)
    width : int, rows per chunk
    """

    def __init__(self, signs, n: int, m: int, width: int = CHUNK_ROWS):
        import numpy as np

        self.signs = np.asarray(signs, dtype=np.float32)[:, None]
        self.d, self.n, self.m = len(self.signs), int(n), int(m)
        self.grouped = group_width(self.d, 2) == 2 and self.n > 2   # pairs, then stage 1
        self.width = max(8, -(-int(width) // 8) * 8)
        # flat buffers, viewed as contiguous (rows, chunk) arrays of each chunk's width
        self.bufs = [np.zeros(self.n * self.width, dtype=np.float32) for _ in range(2)]
        self.rows = np.empty(self.d * self.width, dtype=np.float32)
        self.bits = np.zeros(-(-self.m // 8) * 8 * self.width, dtype=np.bool_)
        self.words = np.empty(-(-self.m // 8) * self.width, dtype="<u8")
        self.packed = np.empty(-(-self.m // 8) * self.width // 8, dtype="<u8")
        self.shifts = np.arange(8, dtype="<u8")[:, None]
        self.low = np.empty(2 * self.width, dtype=np.float32)
        q = self.n // 4
        self.mirror_stage = q if q and 2 * q < self.d <= 3 * q else None
        self._plans = {}

    def _transform(self, rows, amax=None):
        """Columns ``(n, b)`` whose first ``m`` rows are the outputs of ``rows`` (b <= width).

        ``amax``: if given, a float32 array that receives ``max |x_i|`` of every
        row (NaN for a row holding a NaN), per row and ``i mod 2`` (2 b values, row
        major) for the pair layout, else per row (b values).
        """
        import numpy as np

        b = len(rows)
        plan = self._plans.get(b)
        if plan is None:
            plan = self._plans[b] = self._plan(b)
        first, ops, out = plan
        if self.grouped:
            rows_to_groups(rows, self.rows[:b * self.d].reshape(b, self.d), first, self.signs[:, 0])
        else:
            np.multiply(rows.T, self.signs, out=first)
        if amax is not None:
            self._lane_amax(first, amax)
        for f, args in ops:
            f(*args)
        return out

    def _plan(self, b):
        """``(first, ops, out)`` of a chunk of ``b`` rows: ``first`` receives the rows
        (the (d/2, 2 b) pairs, or the (d, b) columns times the signs), ``ops`` are
        the stages as (function, arguments) pairs, ``out`` holds the outputs."""
        import numpy as np

        d, n, m = self.d, self.n, self.m
        src, dst = (buf[:n * b].reshape(n, b) for buf in self.bufs)
        ops = []
        live, h = d, 1
        if self.grouped:       # the first stage (not the last) reads the strided pair view
            first = dst[:d].reshape(d // 2, 2 * b)
            cols = group_columns(first, b)
            o = src[:d].reshape(d // 2, 2, b)
            ops += [(np.add, (cols[:, 0], cols[:, 1], o[:, 0])),
                    (np.subtract, (cols[:, 0], cols[:, 1], o[:, 1]))]
            h = 2
        else:
            first = src[:d]
        while h < n:
            if h == self.mirror_stage:
                return first, ops + self._mirrored_last_stages(src, dst, live), src
            end = -(-live // (2 * h)) * (2 * h)              # the blocks holding a live row
            if end > live:
                ops.append((np.copyto, (src[live:end], np.float32(0))))
            a = src[:end].reshape(end // (2 * h), 2, h * b)
            o = dst[:end].reshape(end // (2 * h), 2, h * b)
            last = 2 * h == n                                 # one block: m outputs
            keep = (min(m, h) if last else h) * b
            ops.append((np.add, (a[:, 0, :keep], a[:, 1, :keep], o[:, 0, :keep])))
            if not last or m > h:
                keep = (m - h) * b if last else h * b
                ops.append((np.subtract, (a[:, 0, :keep], a[:, 1, :keep], o[:, 1, :keep])))
            src, dst, live, h = dst, src, end, 2 * h
        return first, ops, src

    def _mirrored_last_stages(self, src, dst, live):
        """The stages ``h = n/4`` and ``h = n/2`` when ``n/2 < live <= 3n/4``.

        Penultimate stage: ``A = (a0 + a1, a0 - a1)`` of block ``[0, n/2)``, and
        ``(T + 0, T - 0)`` of block ``[n/2, n)`` (``T`` = rows ``[n/2, 3n/4)``,
        ``a1 = 0``), of which only ``T + 0`` is stored. Last stage, first ``m``
        outputs, into ``src``: ``y = (A0 + (T + 0), A1 + T, A0 - (T + 0), A1 - T)``
        (quarters), ``T`` read before its rows are overwritten.
        """
        import numpy as np

        q, m = self.mirror_stage, self.m
        ops = []
        if live < 3 * q:
            ops.append((np.copyto, (src[live:3 * q], np.float32(0))))
        a0, a1, t = src[:q], src[q:2 * q], src[2 * q:3 * q]
        A0, A1, tz = dst[:q], dst[q:2 * q], dst[2 * q:3 * q]
        ops += [(np.add, (a0, a1, A0)), (np.subtract, (a0, a1, A1)),
                (np.add, (t, np.float32(0), tz))]
        for start, op, left, right in ((0, np.add, A0, tz), (q, np.add, A1, t),
                                       (3 * q, np.subtract, A1, t), (2 * q, np.subtract, A0, tz)):
            k = min(q, m - start)
            if k > 0:
                ops.append((op, (left[:k], right[:k], src[start:start + k])))
        return ops

    def _lane_amax(self, first, out):
        """``max |x_i|`` into ``out`` across the rows of ``first`` (the chunk times +-1):
        per row of (d, b) columns, or per row and coordinate ``i mod 2`` of (d/2, 2 b)
        pairs; ``max(max x, -min x)``, NaN propagates."""
        import numpy as np

        low = self.low[:len(out)]
        np.maximum.reduce(first, axis=0, out=out)
        np.minimum.reduce(first, axis=0, out=low)
        np.negative(low, out=low)
        np.maximum(out, low, out=out)

    def values(self, rows):
        """(N, m) float32 outputs of (N, d) float32 rows."""
        import numpy as np

        rows = np.asarray(rows, dtype=np.float32)
        out = np.empty((len(rows), self.m), dtype=np.float32)
        for s in range(0, len(rows), self.width):
            chunk = rows[s:s + self.width]
            out[s:s + len(chunk)] = self._transform(chunk)[:self.m].T
        return out

    def codes(self, rows, amax=None):
        """(N, ceil(m / 8)) uint8 sign codes (bit j of byte j // 8, LSB first, ``y_j > 0``).

        ``amax``: if given, an (N,) float32 array that receives ``max |x_i|`` per
        row (rows may then hold NaN/inf: their codes are meaningless, no warning).
        """
        import numpy as np

        rows = np.asarray(rows, dtype=np.float32)
        nbytes = -(-self.m // 8)
        out = np.empty((len(rows), nbytes), dtype=np.uint8)
        lanes = 2 if self.grouped else 1
        maxima = None if amax is None else np.empty(len(rows) * lanes, dtype=np.float32)
        for s in range(0, len(rows), self.width):
            chunk = rows[s:s + self.width]
            b = len(chunk)
            bp = -(-b // 8) * 8
            with np.errstate(invalid="ignore", over="ignore"):
                cols = self._transform(chunk, None if amax is None else
                                       maxima[s * lanes:(s + b) * lanes])
            bits = self.bits[:nbytes * 8 * bp].reshape(nbytes * 8, bp)
            np.greater(cols[:self.m], np.float32(0), out=bits[:self.m, :b])
            bits[self.m:] = False
            if bp > b:
                bits[:, b:] = False
            words = self.words[:nbytes * bp].reshape(nbytes, 8, bp // 8)
            np.left_shift(bits.view("<u8").reshape(nbytes, 8, bp // 8), self.shifts, out=words)
            packed = self.packed[:nbytes * bp // 8].reshape(nbytes, bp // 8)
            np.bitwise_or.reduce(words, axis=1, out=packed)
            out[s:s + b] = packed.view(np.uint8)[:, :b].T
        if amax is not None:
            v = maxima.reshape(len(rows), lanes)
            np.maximum(v[:, 0], v[:, -1], out=amax)  # the two lanes of a row
        return out
