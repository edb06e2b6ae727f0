"""Flat in-memory index of binary codes: :class:`BinaryIndex`."""

from __future__ import annotations

from array import array

from ..codecs import bitpack
from ..codecs.binary import SCORINGS, BinaryCodec, BinaryQuery
from ..codecs.base import EncodedBatch, _check_fingerprint
from ..errors import InvalidInputError
from .base import Index
from .ids import IdMap


def _total_order_key(bits: int) -> int:
    return bits if bits < 0x80000000 else -(bits & 0x7FFFFFFF) - 1


class BinaryIndex(Index):
    """Flat in-memory index of binary codes with an optional Hamming prefilter.

    Parameters
    ----------
    codec : BinaryCodec (HyperplaneLSH, SignBits, ITQ or E8Codes)

    Notes
    -----
    ``search`` ranks by descending float32 score, exact ties by insertion
    order (like :class:`~clark_hash_web.FlatIndex`). The prefilter keeps the
    rows with Hamming distance ``<= max_hamming`` and/or the ``candidates``
    rows nearest in Hamming distance (ties by insertion order) before
    scoring. Ids are ints or strs, unique.
    """

    def __init__(self, codec: BinaryCodec):
        if not isinstance(codec, BinaryCodec):
            raise InvalidInputError(
                f"BinaryIndex needs a binary codec, got {type(codec).__name__}")
        self.codec = codec
        self.config = codec.config
        self._ids = IdMap()
        cb = self.config.code_bytes
        if codec.backend == "numpy":
            import numpy as np

            self._width = 8 * ((cb + 7) // 8)
            self._cols = None
            self._buf = np.zeros((0, self._width), dtype=np.uint8)
        else:
            self._codes = bytearray()

    @classmethod
    def accepts(cls, codec) -> bool:
        """BinaryIndex holds the codes of every binary codec (sign bits, LSH, ITQ, E8)."""
        return isinstance(codec, BinaryCodec)

    def __len__(self):
        return len(self._ids)

    def __contains__(self, id_):
        return id_ in self._ids

    @property
    def ids(self) -> list:
        """Ids in insertion order."""
        return self._ids.ids

    def _codes_numpy(self):
        return self._buf[:len(self._ids), :self.config.code_bytes]

    # -- adding / removing -------------------------------------------------------------
    def add_encoded(self, encoded: EncodedBatch, ids=None) -> list:
        """Store codes of the same config; returns their ids."""
        _check_fingerprint(self.config, encoded.fingerprint, "the encoded batch")
        self.codec.check_codes(encoded)
        n = len(encoded)
        new_ids = self._ids.check_new(ids, n)
        if self.codec.backend == "numpy":
            import numpy as np

            old = len(self._ids)
            if old + n > self._buf.shape[0]:
                grown = np.zeros((max(old + n, 2 * self._buf.shape[0], 1024), self._width),
                                 dtype=np.uint8)
                grown[:old] = self._buf[:old]
                self._buf = grown
            self._buf[old:old + n, :self.config.code_bytes] = np.asarray(encoded.codes)
            self._cols = None
        else:
            self._codes += encoded.codes_bytes()
        self._ids.append(new_ids)
        return new_ids

    def remove(self, ids) -> int:
        """Delete rows by id (one or a list); unknown ids raise KeyError."""
        if isinstance(ids, (int, str)):
            ids = [ids]
        ids = list(ids)
        keep = self._ids.rows_to_keep(ids)
        removed = len(self._ids) - len(keep)
        if self.codec.backend == "numpy":
            import numpy as np

            self._buf = np.ascontiguousarray(self._buf[np.asarray(keep, dtype=np.intp)])
            self._cols = None
        else:
            cb = self.config.code_bytes
            self._codes = bytearray(b"".join(bytes(self._codes[r * cb:(r + 1) * cb])
                                             for r in keep))
        self._ids.keep(keep)
        return removed

    delete = remove

    def encoded(self, rows=None) -> EncodedBatch:
        """Stored codes (all, or the given row numbers) as an EncodedBatch."""
        if self.codec.backend == "numpy":
            import numpy as np

            codes = self._codes_numpy()
            if rows is not None:
                codes = codes[np.asarray(rows, dtype=np.intp)]
            return EncodedBatch(self.config, np.ascontiguousarray(codes))
        if rows is None:
            return EncodedBatch(self.config, bytes(self._codes))
        cb = self.config.code_bytes
        return EncodedBatch(self.config, b"".join(bytes(self._codes[r * cb:(r + 1) * cb])
                                                  for r in rows))

    # -- search ------------------------------------------------------------------------
    def hamming_candidates(self, query, candidates=None, max_hamming=None) -> list:
        """Row numbers passing the Hamming prefilter, in insertion order.

        ``max_hamming``: keep distances ``<= max_hamming``; ``candidates``:
        then keep the ``candidates`` nearest (ties by insertion order).
        """
        if not self.codec.supports_hamming:
            raise InvalidInputError(f"{type(self.codec).__name__} codes have no Hamming distance: "
                                    "no Hamming prefilter or scoring")
        q = self.codec._as_query(query)
        n = len(self._ids)
        if self.codec.backend == "numpy":
            import numpy as np

            words = self._buf[:n].view(np.uint64)
            dist = bitpack.hamming_numpy(q.code, words)
            rows = np.arange(n)
            if max_hamming is not None:
                rows = rows[dist <= max_hamming]
            if candidates == 0:
                return []
            if candidates is not None and candidates < len(rows):
                dsel = dist[rows]
                kth = np.partition(dsel, candidates - 1)[candidates - 1]
                below = rows[dsel < kth]
                equal = rows[dsel == kth][:candidates - len(below)]
                rows = np.sort(np.concatenate([below, equal]))
            return rows.tolist()
        dist = bitpack.hamming_python(q.code, bytes(self._codes), n)
        rows = [r for r in range(n) if max_hamming is None or dist[r] <= max_hamming]
        if candidates is not None and candidates < len(rows):
            rows = sorted(sorted(rows, key=lambda r: (dist[r], r))[:candidates])
        return rows

    def search(self, query, k: int = 10, scoring: str = "asymmetric", candidates=None,
               max_hamming=None):
        """Top ``k`` ``(ids, scores)`` for a query vector or BinaryQuery.

        Parameters
        ----------
        query : vector (d,) or BinaryQuery
        k : int
        scoring : {"asymmetric", "hamming"}
        candidates : int, optional
            Hamming prefilter: score only the ``candidates`` nearest codes.
        max_hamming : int, optional
            Hamming prefilter: score only codes within this distance.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise InvalidInputError(f"k must be a non-negative int, got {k!r}")
        if scoring not in SCORINGS:
            raise InvalidInputError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
        for name, v in (("candidates", candidates), ("max_hamming", max_hamming)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise InvalidInputError(f"{name} must be a non-negative int, got {v!r}")
        q = self.codec._as_query(query)
        n = len(self._ids)
        if candidates is None and max_hamming is None:
            rows = None
            n_sel = n
        else:
            rows = self.hamming_candidates(q, candidates, max_hamming)
            n_sel = len(rows)
        k = min(k, n_sel)
        if scoring == "hamming" and not self.codec.supports_hamming:
            raise InvalidInputError(f"{type(self.codec).__name__} supports only asymmetric scoring")
        if self.codec.backend == "numpy":
            return self._search_numpy(q, k, rows, scoring)
        enc = self.encoded(rows)
        scores = self.codec.score(q, enc, scoring=scoring)
        sel = list(range(n)) if rows is None else rows
        bits = array("I", scores.tobytes())
        order = sorted(range(len(sel)), key=lambda j: (-_total_order_key(bits[j]), sel[j]))[:k]
        return [self._ids[sel[j]] for j in order], array("f", [scores[j] for j in order])

    def _columns(self):
        """Cached (P, N) uint16 columns of the stored codes (numpy backend)."""
        cols = getattr(self, "_cols", None)
        if cols is None:
            cols = bitpack.u16_columns(self._codes_numpy())
            self._cols = cols
        return cols

    def _search_numpy(self, q, k, rows, scoring):
        import numpy as np

        m = self.config.n_bits
        n = len(self._ids)
        sel = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
        if k == 0:
            return [], np.zeros(0, dtype=np.float32)
        if scoring == "hamming":
            words = self._buf[:n].view(np.uint64)
            dist = bitpack.hamming_numpy(q.code, words if rows is None else words[sel])
            scores = bitpack.hamming_score_numpy(dist, m)
        else:
            tables = bitpack.pair_tables_numpy(self.codec._tables_numpy(q.values))
            cols = self._columns()
            scores = bitpack.asymmetric_scores_numpy(tables, cols if rows is None else cols[:, sel])
        bits = scores.view(np.uint32).astype(np.int64)
        neg = -np.where(bits < 0x80000000, bits, -(bits & 0x7FFFFFFF) - 1)
        pre = np.arange(len(sel))
        if k < len(sel):
            kth = np.partition(neg, k - 1)[k - 1]
            pre = np.flatnonzero(neg <= kth)
        order = pre[np.lexsort((sel[pre], neg[pre]))][:k]
        return [self._ids[r] for r in sel[order].tolist()], scores[order]

    def search_prepared(self, query: BinaryQuery, k: int = 10, **kw):
        """:meth:`search` with a prepared :class:`BinaryQuery`."""
        return self.search(query, k, **kw)
