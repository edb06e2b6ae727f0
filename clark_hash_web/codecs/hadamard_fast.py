"""Fast numpy randomized Hadamard projection: the exact butterflies of
:func:`~clark_hash_web.codecs.exact_projection.fwht_python`, column-wise, skipping zeros.

:class:`HadamardProjector` computes ``y = FWHT(pad(x * D))[:m]`` for a chunk
of rows at a time, in column layout ``(n, rows)`` so every butterfly stage is
two long vector operations (``a + b`` and ``a - b``: the float32 operations
of the reference, in its order), into two buffers allocated once:

* rows become columns in cheap copies (the rows in order, whole 32-byte
  groups of 8 coordinates, then 8 coordinates inside each group with the
  exact sign flip ``x * D``), instead of one element-by-element transpose;
* the zero padding ``[d, n)`` is never transformed while it is all zero: a
  stage only runs over the blocks that hold a nonzero input (``+0 + +0`` and
  ``+0 - +0`` are ``+0``, what the skipped blocks would hold anyway); the
  buffers' rows past the live range are kept at ``+0.0``;
* the last stage computes only the first ``m`` outputs;
* codes: the signs of the ``m`` outputs are packed eight rows at a time
  (8 rows of 0/1 bytes viewed as uint64 words, shifted and OR-ed), so only
  the packed bytes are transposed back.

The values (and so the codes) are bit-identical to the reference.
"""

from __future__ import annotations

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
        self.signs8 = self.signs.reshape(-1, 8, 1) if self.d % 8 == 0 else None
        self.width = max(8, -(-int(width) // 8) * 8)
        # flat buffers, viewed as contiguous (rows, chunk) arrays of each chunk's width
        self.bufs = [np.zeros(self.n * self.width, dtype=np.float32) for _ in range(2)]
        self.rows = np.empty(self.d * self.width, dtype=np.float32)
        self.bits = np.zeros(-(-self.m // 8) * 8 * self.width, dtype=np.bool_)
        self.words = np.empty(-(-self.m // 8) * self.width, dtype="<u8")
        self.packed = np.empty(-(-self.m // 8) * self.width // 8, dtype="<u8")
        self.shifts = np.arange(8, dtype="<u8")[:, None]

    def _transform(self, rows):
        """Columns ``(n, b)`` whose first ``m`` rows are the outputs of ``rows`` (b <= width)."""
        import numpy as np

        b, d = len(rows), self.d
        src, dst = (buf[:self.n * b].reshape(self.n, b) for buf in self.bufs)
        if d % 8 == 0:
            # transpose in cheap steps: the rows in order into a buffer (memory reads
            # them sequentially), whole 32-byte groups of 8 coordinates (b, d/8) ->
            # (d/8, b) into dst, then (b, 8) -> (8, b) inside each group
            copy = self.rows[:b * d].reshape(b, d)
            np.copyto(copy, rows)
            groups = dst[:d].reshape(d // 8, b * 8)
            groups.view("V32")[...] = copy.view("V32").T
            np.multiply(groups.reshape(d // 8, b, 8).transpose(0, 2, 1), self.signs8,
                        out=src[:d].reshape(d // 8, 8, b))
        else:
            np.multiply(rows.T, self.signs, out=src[:d])
        live, h = d, 1                                       # rows >= live are +0.0
        while h < self.n:
            end = -(-live // (2 * h)) * (2 * h)              # the blocks holding a live row
            if end > live:
                src[live:end] = 0.0
            a = src[:end].reshape(end // (2 * h), 2, h * b)
            o = dst[:end].reshape(end // (2 * h), 2, h * b)
            np.add(a[:, 0], a[:, 1], out=o[:, 0])
            if 2 * h < self.n or self.m > h:
                keep = h * b if 2 * h < self.n else (self.m - h) * b   # last stage: m outputs
                np.subtract(a[:, 0, :keep], a[:, 1, :keep], out=o[:, 1, :keep])
            src, dst, live, h = dst, src, end, 2 * h
        return src

    def values(self, rows):
        """(N, m) float32 outputs of (N, d) float32 rows."""
        import numpy as np

        rows = np.asarray(rows, dtype=np.float32)
        out = np.empty((len(rows), self.m), dtype=np.float32)
        for s in range(0, len(rows), self.width):
            chunk = rows[s:s + self.width]
            out[s:s + len(chunk)] = self._transform(chunk)[:self.m].T
        return out

    def codes(self, rows):
        """(N, ceil(m / 8)) uint8 sign codes (bit j of byte j // 8, LSB first, ``y_j > 0``)."""
        import numpy as np

        rows = np.asarray(rows, dtype=np.float32)
        nbytes = -(-self.m // 8)
        out = np.empty((len(rows), nbytes), dtype=np.uint8)
        for s in range(0, len(rows), self.width):
            chunk = rows[s:s + self.width]
            b = len(chunk)
            bp = -(-b // 8) * 8
            cols = self._transform(chunk)
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
        return out
