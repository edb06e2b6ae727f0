"""Column-major code storage for scans: :class:`CodeColumns` (numpy only).

A code of ``cb`` bytes is held as ``W = ceil(cb / 8)`` little-endian uint64
words (zero padded), or, for codes that are only scored through byte-pair
lookup tables (E8), as ``ceil(cb / 2)`` uint16 words (``word_bytes=2``). Word ``w`` of every row lives in one contiguous column
``cols[w, :]``, so a scan reads each column once, in order, with whole-array
operations (XOR, AND, ``np.bitwise_count``). The byte layout inside a word is
the code's own byte order: byte ``8 w + t`` of row ``i`` is byte ``t`` of
``cols[w, i]``, so ``cols.view("<u2")`` also exposes 16-bit code-byte pairs
(pair ``p`` of row ``i`` is ``cols.view("<u2")[p // 4, 4 * i + p % 4]``) without
a second copy of the codes.

Capacity grows geometrically (by half when full), so a stream of appends
costs amortized O(1) per row and an append of N rows copies the N codes
once (from rows into columns).
"""

from __future__ import annotations

MIN_CAPACITY = 1024


class CodeColumns:
    """Growable column-major uint64 words of fixed-width codes.

    Parameters
    ----------
    code_bytes : int
        Bytes per code (1 or more).
    word_bytes : {8, 2}
        Width of a stored word.
    """

    def __init__(self, code_bytes: int, word_bytes: int = 8):
        import numpy as np

        if word_bytes not in (8, 2):
            raise ValueError(f"word_bytes must be 8 or 2, got {word_bytes!r}")
        self.code_bytes = int(code_bytes)
        self.word_bytes = word_bytes
        self.dtype = f"<u{word_bytes}"
        self.words = (self.code_bytes + word_bytes - 1) // word_bytes
        self._cols = np.zeros((self.words, 0), dtype=self.dtype)
        self._n = 0

    def __len__(self):
        return self._n

    @property
    def nbytes(self) -> int:
        """Bytes held (capacity included)."""
        return self._cols.nbytes

    def columns(self):
        """(W, N) view of the stored words (no copy)."""
        return self._cols[:, :self._n]

    def pair_columns(self) -> list:
        """P = ceil(cb / 2) strided uint16 views (N,): bytes ``2p | 2p+1 << 8`` of each row."""
        pairs = (self.code_bytes + 1) // 2
        if self.word_bytes == 2:
            return [self._cols[p, :self._n] for p in range(pairs)]
        u16 = self._cols.view("<u2")
        return [u16[p // 4, p % 4::4][:self._n] for p in range(pairs)]

    def _reserve(self, count: int) -> None:
        import numpy as np

        cap = self._cols.shape[1]
        if count <= cap:
            return
        grown = np.zeros((self.words, max(count, cap * 3 // 2, MIN_CAPACITY)), dtype=self.dtype)
        grown[:, :self._n] = self._cols[:, :self._n]
        self._cols = grown

    def append(self, codes) -> None:
        """Append (N, code_bytes) uint8 codes as the next rows."""
        import numpy as np

        codes = np.asarray(codes, dtype=np.uint8)
        if codes.ndim != 2 or codes.shape[1] != self.code_bytes:
            raise ValueError(f"codes must be (N, {self.code_bytes}) uint8, got {codes.shape}")
        n = len(codes)
        if not n:
            return
        self._reserve(self._n + n)
        width = self.word_bytes * self.words
        if self.code_bytes == width and codes.flags.c_contiguous:
            words = codes.view(self.dtype)
        else:
            padded = np.zeros((n, width), dtype=np.uint8)
            padded[:, :self.code_bytes] = codes
            words = padded.view(self.dtype)
        self._cols[:, self._n:self._n + n] = words.T
        self._n += n

    def rows(self, rows=None):
        """(N, code_bytes) uint8 codes of all rows or of the given row numbers (a copy)."""
        import numpy as np

        cols = self.columns()
        if rows is not None:
            cols = cols[:, np.asarray(rows, dtype=np.intp)]
        out = np.ascontiguousarray(cols.T).view(np.uint8)
        return np.ascontiguousarray(out[:, :self.code_bytes]) \
            if self.code_bytes != self.word_bytes * self.words else out

    def keep(self, rows) -> None:
        """Keep only these rows (ascending row numbers), renumbered from 0."""
        import numpy as np

        idx = np.asarray(rows, dtype=np.intp)
        kept = self._cols[:, :self._n][:, idx]
        self._cols = np.ascontiguousarray(kept)
        self._n = len(idx)
