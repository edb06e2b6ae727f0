"""Flat in-memory index of binary codes: :class:`BinaryIndex`.

Storage (numpy backend)
-----------------------
One copy of the codes, column-major (:class:`~.code_columns.CodeColumns`):
sign codes (sign bits, hyperplane LSH, ITQ) as uint64 words, E8 codes as
uint16 byte pairs. ``add_encoded`` copies the codes once into the columns
(capacity grows by half when full: amortized appends); nothing is
re-encoded and no other copy is cached. Int ids (and the automatic ones) are
an int64 array (:mod:`.ids`). The pure-Python backend keeps a ``bytearray``.

Search
------
* ``search_hamming(q, k)``: ``(ids, distances)`` with integer Hamming
  distances, nearest first, ties by insertion order. XOR + ``np.bitwise_count``
  over the word columns, the k-th distance from a histogram
  (:mod:`.bit_scan`).
* ``search(q, k, scoring="hamming")``: the same ranking, float32 scores
  ``(m - 2 h) / m``.
* ``search(q, k)`` (asymmetric, float query): exactly the ranking and score
  bits of a brute-force ``codec.score`` scan. For sign codes a proven
  prefilter (:class:`.bit_scan.PlaneBound`: the query magnitudes in a few
  bit planes, AND + popcount, cut at the k-th exact score of a few probe
  rows) first drops every row that cannot reach the top k; only the rest
  are scored exactly (from the byte tables). E8 codes (root numbers, no bits)
  first get an integer quick score from 8-bit pair tables with a proven
  bound (:class:`.table_bound.TableBound`); only the rows that can still
  reach the top k are scored exactly.
"""

from __future__ import annotations

from array import array

from ..codecs import bitpack, normalized_scores
from ..codecs.binary import SCORINGS, BinaryCodec, BinaryQuery
from ..codecs.base import EncodedBatch, _check_fingerprint
from ..errors import InvalidInputError
from . import bit_scan, table_bound
from .base import Index
from .code_columns import CodeColumns
from .ids import IdMap


PLANE_STAGES = (3, 8)         # bit planes of each prefilter pass (see _search_asymmetric_numpy)
REFINE_ABOVE = 16384          # run the next pass while more rows than this survive


def _total_order_key(bits: int) -> int:
    return bits if bits < 0x80000000 else -(bits & 0x7FFFFFFF) - 1


def _check_k(k) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise InvalidInputError(f"k must be a non-negative int, got {k!r}")


def _check_count(name, v) -> None:
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
        raise InvalidInputError(f"{name} must be a non-negative int, got {v!r}")


def top_scores(scores, k: int):
    """Positions of the ``k`` largest float32 ``scores`` (IEEE total order), ties by position.

    The cut is found on the float values (``np.partition``); only the rows at or
    above it get the total-order key (which also orders -0.0 below +0.0).
    """
    import numpy as np

    n = len(scores)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < n:
        kth = np.partition(scores, n - k)[n - k]
        pre = np.flatnonzero(scores >= kth)
    else:
        pre = np.arange(n)
    bits = scores[pre].view(np.int32)
    key = np.where(bits < 0, bits ^ np.int32(0x7FFFFFFF), bits).astype(np.int64)
    return pre[np.argsort(-key, kind="stable")][:k]


def _joined(old, new, numpy: bool):
    """``old`` (or nothing) followed by ``new``: float32 numpy array or array('f')."""
    if numpy:
        import numpy as np

        new = np.asarray(new, dtype=np.float32)
        return new if old is None else np.concatenate([old, new])
    return array("f", new) if old is None else old + array("f", new)


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
        self._numpy = codec.backend == "numpy"
        self._ids = IdMap(numpy=self._numpy)
        if self._numpy:
            # Sign codes: uint64 words (Hamming and bit-plane scans); E8 root numbers:
            # uint16 byte pairs (the pair lookup tables read them directly).
            self._store = CodeColumns(self.config.code_bytes,
                                      8 if codec.supports_hamming else 2)
        else:
            self._codes = bytearray()
        self._scales = None      # row scales (normalized learned-E8 heads): see _row_scales

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

    def check_new_ids(self, ids, count: int) -> list:
        """Validate ids for ``count`` new rows without adding anything (see :class:`IdMap`)."""
        return self._ids.check_new(ids, count)

    # -- adding / removing -------------------------------------------------------------
    def add_encoded(self, encoded: EncodedBatch, ids=None) -> list:
        """Store codes of the same config; returns their ids.

        The numpy backend copies the codes once, into its column-major words
        (capacity grows geometrically, so appends are amortized O(1) per row).
        """
        _check_fingerprint(self.config, encoded.fingerprint, "the encoded batch")
        self.codec.check_codes(encoded)
        n = len(encoded)
        new_ids = self._ids.prepare(ids, n)
        scales = self.codec.row_scales(encoded) if n and self._scales is not None else None
        if self._numpy:
            if n:
                self._store.append(encoded.codes)
        else:
            self._codes += encoded.codes_bytes()
        if scales is not None:
            self._scales = _joined(self._scales, scales, self._numpy)
        return self._ids.append(new_ids)

    def _row_scales(self):
        """Per-row factors of the stored rows' scores (float32), or None (plain table sums).

        Only normalized learned-E8 heads have them. They are made from the codes
        at the first search that needs them, then kept through adds and
        removes, so loading or exporting rows never pays for them.
        """
        if self._scales is None and self.codec.has_row_scales:
            self._scales = self.codec.row_scales(self.encoded())
        return self._scales

    def remove(self, ids) -> int:
        """Delete rows by id (one or a list); unknown ids raise KeyError."""
        if isinstance(ids, (int, str)):
            ids = [ids]
        keep = self._ids.rows_to_keep(ids)
        removed = len(self._ids) - len(keep)
        if self._numpy:
            self._store.keep(keep)
        else:
            cb = self.config.code_bytes
            self._codes = bytearray(b"".join(bytes(self._codes[r * cb:(r + 1) * cb])
                                             for r in keep))
        if self._scales is not None:
            self._scales = self._scales[keep] if self._numpy else \
                array("f", [self._scales[r] for r in keep])
        self._ids.keep(keep)
        return removed

    delete = remove

    def encoded(self, rows=None) -> EncodedBatch:
        """Stored codes (all, or the given row numbers) as an EncodedBatch."""
        if self._numpy:
            return EncodedBatch(self.config, self._store.rows(rows))
        if rows is None:
            return EncodedBatch(self.config, bytes(self._codes))
        cb = self.config.code_bytes
        return EncodedBatch(self.config, b"".join(bytes(self._codes[r * cb:(r + 1) * cb])
                                                  for r in rows))

    # -- Hamming -------------------------------------------------------------------------
    def _check_hamming(self):
        if not self.codec.supports_hamming:
            raise InvalidInputError(f"{type(self.codec).__name__} codes have no Hamming distance: "
                                    "no Hamming prefilter or scoring")

    def _distances(self, q, rows=None):
        """Hamming distances of all rows (or of ``rows``): uint array or list of ints."""
        if self._numpy:
            qw = bit_scan.query_words(q.code, self._store.words)
            return bit_scan.hamming_distances(self._store.columns(), qw, self.config.n_bits, rows)
        n = len(self._ids)
        dist = bitpack.hamming_python(q.code, bytes(self._codes), n)
        return dist if rows is None else [dist[r] for r in rows]

    def _nearest_rows(self, q, k, max_hamming=None):
        """Row numbers of the ``k`` nearest codes (ties by row), nearest first, and their distances."""
        dist = self._distances(q)
        n = len(dist)
        if self._numpy:
            import numpy as np

            if max_hamming is None:
                order = bit_scan.smallest(dist, k)
                return order, dist[order].astype(np.int64)
            rows = np.flatnonzero(dist <= max_hamming)
            order = rows[bit_scan.smallest(dist[rows], k)]
            return order, dist[order].astype(np.int64)
        rows = [r for r in range(n) if max_hamming is None or dist[r] <= max_hamming]
        order = sorted(rows, key=lambda r: (dist[r], r))[:k]
        return order, [dist[r] for r in order]

    def hamming_candidates(self, query, candidates=None, max_hamming=None) -> list:
        """Row numbers passing the Hamming prefilter, in insertion order.

        ``max_hamming``: keep distances ``<= max_hamming``; ``candidates``:
        then keep the ``candidates`` nearest (ties by insertion order).
        """
        self._check_hamming()
        q = self.codec._as_query(query)
        n = len(self._ids)
        if candidates == 0:
            return []
        if candidates is None or candidates >= n:
            if max_hamming is None:
                return list(range(n))
            dist = self._distances(q)
            if self._numpy:
                import numpy as np

                return np.flatnonzero(dist <= max_hamming).tolist()
            return [r for r in range(n) if dist[r] <= max_hamming]
        rows, _ = self._nearest_rows(q, candidates, max_hamming)
        return sorted(rows.tolist() if self._numpy else rows)

    def search_hamming(self, query, k: int = 10, max_hamming=None):
        """Top ``k`` by integer Hamming distance: ``(ids, distances)``.

        The ``k`` codes nearest to the query's bits, nearest first, ties by
        insertion order (the same ranking as ``search(..., scoring="hamming")``,
        whose scores are ``(m - 2 h) / m``). ``distances`` are ints: an int64
        numpy array (numpy backend) or a list of ints (pure Python).
        ``max_hamming`` keeps only codes within that distance.
        """
        _check_k(k)
        _check_count("max_hamming", max_hamming)
        self._check_hamming()
        q = self.codec._as_query(query)
        rows, dist = self._nearest_rows(q, k, max_hamming)
        return self._ids.ids_at(rows), dist

    # -- search ------------------------------------------------------------------------
    def search(self, query, k: int = 10, scoring: str = "asymmetric", candidates=None,
               max_hamming=None):
        """Top ``k`` ``(ids, scores)`` for a query vector or BinaryQuery.

        Parameters
        ----------
        query : vector (d,) or BinaryQuery
        k : int
        scoring : {"asymmetric", "hamming"}
            Scores are float32; for integer Hamming distances use
            :meth:`search_hamming` (same ranking as ``scoring="hamming"``).
        candidates : int, optional
            Hamming prefilter: score only the ``candidates`` nearest codes.
        max_hamming : int, optional
            Hamming prefilter: score only codes within this distance.
        """
        _check_k(k)
        if scoring not in SCORINGS:
            raise InvalidInputError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
        _check_count("candidates", candidates)
        _check_count("max_hamming", max_hamming)
        if scoring == "hamming" and not self.codec.supports_hamming:
            raise InvalidInputError(f"{type(self.codec).__name__} supports only asymmetric scoring")
        q = self.codec._as_query(query)
        m = self.config.n_bits
        if scoring == "hamming":
            # Ranking by (m - 2h)/m descending is ranking by h ascending (distinct h give
            # distinct float32 scores), so the top k among the prefiltered rows are the
            # min(k, candidates) nearest within max_hamming.
            top = k if candidates is None else min(k, candidates)
            rows, dist = self._nearest_rows(q, top, max_hamming)
            if self._numpy:
                return self._ids.ids_at(rows), bitpack.hamming_score_numpy(dist, m)
            return self._ids.ids_at(rows), array(
                "f", [bitpack.hamming_score_python(h, m) for h in dist])
        if candidates is None and max_hamming is None:
            rows = None
        else:
            rows = self.hamming_candidates(q, candidates, max_hamming)
        if self._numpy:
            return self._search_asymmetric_numpy(q, k, rows)
        n = len(self._ids)
        enc = self.encoded(rows)
        scales = self._row_scales()     # kept, not recomputed per search
        if scales is not None and rows is not None:
            scales = array("f", [scales[r] for r in rows])
        scores = self.codec.asymmetric_python(q, enc.codes_bytes(), len(enc), scales)
        sel = list(range(n)) if rows is None else rows
        bits = array("I", scores.tobytes())
        order = sorted(range(len(sel)), key=lambda j: (-_total_order_key(bits[j]), sel[j]))[:k]
        return self._ids.ids_at([sel[j] for j in order]), array("f", [scores[j] for j in order])

    def _search_asymmetric_numpy(self, q, k, rows):
        """Exact asymmetric top ``k`` (all rows, or the prefiltered ``rows``).

        Sign codes first pass through :class:`~.bit_scan.PlaneBound`
        (``PLANE_STAGES[0]`` bit planes over every row, then more planes over
        the survivors while more than ``REFINE_ABOVE`` remain); only the rows
        that can still reach the top ``k`` get the exact float32 score (each
        pass also scores a few probe rows exactly: the ``k``-th of their
        scores sets its cut, see :meth:`~.bit_scan.PlaneBound.survivors`).
        E8 codes (no bits to compare) pass through
        :class:`~.table_bound.TableBound` (integer pair tables over the 16-bit
        pair columns); the survivors get the exact score from the byte tables.
        """
        import numpy as np

        n = len(self._ids) if rows is None else len(rows)
        k = min(k, n)
        if k == 0:
            return [], np.zeros(0, dtype=np.float32)
        byte_tables = self.codec._tables_numpy(q.values)
        sel = None if rows is None else np.asarray(rows, dtype=np.int64)
        pair_cols = self._store.pair_columns()
        if not self.codec.supports_hamming and sel is None:
            # E8 (root numbers): the integer pair-table bound first (None: no pruning)
            sel = table_bound.TableBound(byte_tables).survivors(pair_cols, k, self._row_scales(),
                                                                q.bias)
        elif self.codec.supports_hamming:
            cols, pairs = self._store.columns(), (self.config.code_bytes + 1) // 2

            def exact(found):
                return table_bound.exact_scores(byte_tables, pair_cols, found)
            for bits in PLANE_STAGES:
                bound = bit_scan.PlaneBound(q.values, q.code, self._store.words, pairs, bits)
                sel = bound.survivors(cols, k, sel, exact)
                if len(sel) <= REFINE_ABOVE:
                    break
        if sel is None:
            tables = bitpack.pair_tables_numpy(byte_tables)
            scores = bitpack.asymmetric_scores_numpy(tables, pair_cols)
        else:       # few rows: byte tables, the same float32 sums as the pair tables
            scores = table_bound.exact_scores(byte_tables, pair_cols, sel)
        scales = self._row_scales()
        if scales is not None:
            scores = normalized_scores.finish_numpy(scores, q.bias, scales if sel is None else scales[sel])
        order = top_scores(scores, k)
        found = order if sel is None else sel[order]
        return self._ids.ids_at(found), scores[order]

    def search_prepared(self, query: BinaryQuery, k: int = 10, **kw):
        """:meth:`search` with a prepared :class:`BinaryQuery`."""
        return self.search(query, k, **kw)
