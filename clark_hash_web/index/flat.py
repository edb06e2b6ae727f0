"""Exact flat search over stored codes: :class:`FlatIndex`.

Ranking follows the crate's ``FlatIndex::search_prepared``: every stored row
is scored in insertion order, then a stable sort by descending float32 score
(IEEE total order), truncated to ``min(k, n)``; exactly equal scores keep
insertion order. Returned scores are bit-identical to ``ClarkHash.score``.

With the numpy backend the codes live column-wise as 16-bit "planes"
(``planes[p, i]`` = bytes 2p and 2p+1 of row i, in a
:class:`~clark_hash_web.index.code_columns.CodeColumns` grown geometrically), so a query scans them with
lookup tables (:mod:`clark_hash_web.index.fast_scan`: 8-bit integer pair tables
with a proven bound for cosine, float32 pair tables for dot) and only the
provable candidates get the exact sequential score.
"""

from __future__ import annotations

import heapq
from array import array

from ..codecs.clark_hash import ClarkHash, QuerySketch
from ..codecs.base import EncodedBatch, _check_fingerprint
from ..errors import InvalidInputError
from .base import Index
from .code_columns import CodeColumns
from .ids import IdMap

REFINE_ABOVE = 4096    # cosine: integer survivors past this also pass the float32 bound


def _total_order_key(bits: int) -> int:
    """Integer key whose order is the IEEE total order of float32 bit patterns."""
    return bits if bits < 0x80000000 else -(bits & 0x7FFFFFFF) - 1


class FlatIndex(Index):
    """All stored codes of one codec, searchable exactly.

    Parameters
    ----------
    codec : ClarkHash

    Notes
    -----
    Ids are ints or strs (one kind per index), unique. ``add`` without ids
    numbers rows with consecutive ints after the largest int id so far.
    """

    def __init__(self, codec: ClarkHash):
        if not isinstance(codec, ClarkHash):
            raise InvalidInputError(f"FlatIndex needs a ClarkHash codec, got {type(codec).__name__}")
        self.codec = codec
        self.config = codec.config
        self._ids = IdMap(numpy=codec.backend == "numpy")
        self._count = 0
        if codec.backend == "numpy":
            # (P, N) uint16 byte pairs, grown geometrically; norm codes likewise (1, N)
            self._store = CodeColumns(self.config.code_bytes, 2)
            self._norm_store = CodeColumns(2, 2)
        else:
            self._codes = bytearray()
            self._norms = []

    @classmethod
    def accepts(cls, codec) -> bool:
        """FlatIndex holds Clark Hash codes."""
        return isinstance(codec, ClarkHash)

    # -- bookkeeping --------------------------------------------------------------
    def __len__(self):
        return self._count

    @property
    def ids(self) -> list:
        """Ids in insertion order."""
        return self._ids.ids

    def __contains__(self, id_):
        return id_ in self._ids

    def check_new_ids(self, ids, count: int) -> list:
        """Validate ids for ``count`` new rows without adding anything.

        Raises InvalidInputError (wrong count, type, or a mix of int and str)
        or DuplicateIdError (already stored, or repeated in ``ids``).
        """
        return self._ids.check_new(ids, count)

    # -- adding -------------------------------------------------------------------
    def add_encoded(self, encoded: EncodedBatch, ids=None) -> list:
        """Store already encoded codes (same config); returns their ids."""
        _check_fingerprint(self.config, encoded.fingerprint, "the encoded batch")
        n = len(encoded)
        new_ids = self._ids.prepare(ids, n)
        if self.codec.backend == "numpy":
            import numpy as np

            if n:
                self._store.append(np.asarray(encoded.codes, dtype=np.uint8))
                if self.config.metric == "dot":
                    norms = np.ascontiguousarray(encoded.norm_codes, dtype="<u2")
                    self._norm_store.append(norms.view(np.uint8).reshape(-1, 2))
        else:
            self._codes += encoded.codes_bytes()
            if self.config.metric == "dot":
                self._norms.extend(int(c) for c in encoded.norm_codes)
        new_ids = self._ids.append(new_ids)
        self._count += n
        return new_ids

    # -- removing -------------------------------------------------------------------
    def remove(self, ids) -> int:
        """Delete rows by id (one id or a list); unknown ids raise KeyError.

        Returns the number of rows removed. The remaining rows keep their
        relative order, so ties still rank by insertion order.
        """
        if isinstance(ids, (int, str)):
            ids = [ids]
        ids = list(ids)
        keep = self._ids.rows_to_keep(ids)
        if self.codec.backend == "numpy":
            import numpy as np

            k = np.asarray(keep, dtype=np.intp)
            self._store.keep(k)
            if self.config.metric == "dot":
                self._norm_store.keep(k)
        else:
            cb = self.config.code_bytes
            self._codes = bytearray(b"".join(bytes(self._codes[r * cb:(r + 1) * cb]) for r in keep))
            if self.config.metric == "dot":
                self._norms = [self._norms[r] for r in keep]
        removed = self._count - len(keep)
        self._ids.keep(keep)
        self._count = len(keep)
        return removed

    delete = remove

    # -- reading back -------------------------------------------------------------
    def encoded(self, rows=None) -> EncodedBatch:
        """Stored codes (all, or the given row numbers) as an EncodedBatch."""
        if self.codec.backend == "numpy":
            import numpy as np

            codes = self._store.rows(rows)
            nc = None
            if self.config.metric == "dot":
                nc = self._norm_store.rows(rows).view("<u2")[:, 0].astype(np.uint16)
            return EncodedBatch(self.config, codes, nc)
        cb = self.config.code_bytes
        rows = range(self._count) if rows is None else rows
        codes = b"".join(bytes(self._codes[r * cb:(r + 1) * cb]) for r in rows)
        nc = [self._norms[r] for r in rows] if self.config.metric == "dot" else None
        return EncodedBatch(self.config, codes, nc)

    # -- search -------------------------------------------------------------------
    def search(self, query, k: int = 10):
        """Top ``k`` ``(ids, scores)`` for a query vector (d,)."""
        return self.search_prepared(self.codec.sketch_query(query), k)

    def search_prepared(self, query: QuerySketch, k: int = 10):
        """Top ``k`` for a prepared QuerySketch: ``(ids, scores)``.

        ``scores`` is float32 (numpy array or ``array('f')``), bit-identical
        to ``codec.score``; ranking: descending, ties by insertion order.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise InvalidInputError(f"k must be a non-negative int, got {k!r}")
        query = self.codec._as_query(query)
        n = self._count
        k = min(k, n)
        if self.codec.backend == "numpy":
            return self._search_numpy(query, k)
        scores = self.codec._impl.score(query.values, query.norm, self._codes, n,
                                        self._norms if self.config.metric == "dot" else None)
        bits = array("I", scores.tobytes())
        order = heapq.nsmallest(k, range(n), key=lambda r: (-_total_order_key(bits[r]), r))
        return [self._ids[r] for r in order], array("f", [scores[r] for r in order])

    def _search_numpy(self, query, k):
        """Exact top ``k`` through proven prefilters (numpy backend).

        Cosine: the integer quick pass of :func:`fast_scan.quick_bound`
        (8-bit pair tables, 64 KiB each) keeps every row that can reach the
        top ``k``; when more than ``REFINE_ABOVE`` rows survive (codes that
        nearly tie everywhere), the float32 pair-table bound narrows them.
        Dot (every row has its own scale): the float32 pair-table bound over
        all rows. Only the remaining candidates get the exact score.
        """
        import numpy as np

        from . import fast_scan
        from ..codecs.norm_channel import decode_norms_numpy

        cfg = self.config
        if k == 0:
            return [], np.zeros(0, dtype=np.float32)
        rows, dn = None, None
        if cfg.metric == "dot":
            dn = decode_norms_numpy(self._norm_store.columns()[0].astype(np.uint16),
                                    cfg.norm_log2_min, cfg.norm_log2_max)
        else:
            rows = fast_scan.quick_bound(query.values, cfg).survivors(
                self._store.pair_columns(), k)
            if rows is not None and len(rows) <= REFINE_ABOVE:
                return self._rank_numpy(query, rows, k)
        planes = self._store.columns() if rows is None else self._store.columns()[:, rows]
        tables, const = fast_scan.pair_tables(query.values, cfg)
        approx = fast_scan.approximate_accumulators(planes, planes.shape[1], tables, const)
        cand = fast_scan.candidate_rows(approx, query.values, query.norm, cfg, k, dn)
        return self._rank_numpy(query, cand if rows is None else rows[cand], k)

    def _rank_numpy(self, query, cand, k):
        """Exact top ``k`` among ``cand`` (ascending, distinct row numbers, intp)."""
        import numpy as np

        enc = self.encoded(cand)
        scores = self.codec._impl.score(query.values, query.norm, np.asarray(enc.codes),
                                        enc.norm_codes)
        bits = scores.view(np.uint32).astype(np.int64)
        key = np.where(bits < 0x80000000, bits, -(bits & 0x7FFFFFFF) - 1)
        order = np.lexsort((cand, -key))[:k]
        return self._ids.ids_at(cand[order]), scores[order]

    def rank_rows(self, query: QuerySketch, rows, k: int):
        """Exact top ``k`` among the given row numbers: ``(ids, scores)``.

        For callers that select candidates themselves (the browser runtime's
        JavaScript prefilter, which uses :func:`fast_scan.byte_tables` and
        :func:`fast_scan.accumulator_error_bound`): the result equals
        :meth:`search_prepared` whenever ``rows`` contains every row whose
        upper score bound reaches the k-th largest lower bound.
        """
        query = self.codec._as_query(query)
        rows = sorted(set(int(r) for r in rows))
        if rows and not 0 <= rows[0] <= rows[-1] < self._count:
            raise InvalidInputError(f"row numbers must be in 0..{self._count - 1}")
        if self.codec.backend == "numpy":
            import numpy as np

            return self._rank_numpy(query, np.asarray(rows, dtype=np.intp), k)
        scores = self.codec._impl.score(query.values, query.norm, self._codes, self._count,
                                        self._norms if self.config.metric == "dot" else None,
                                        rows=rows)
        bits = array("I", scores.tobytes())
        order = heapq.nsmallest(k, range(len(rows)),
                                key=lambda j: (-_total_order_key(bits[j]), rows[j]))
        return [self._ids[rows[j]] for j in order], array("f", [scores[j] for j in order])

    def prefilter_plan(self, query: QuerySketch) -> dict:
        """What an external scan needs to select exact-search candidates.

        Returns ``values`` (the query sketch, float32 LE bytes), ``bits``,
        ``step`` and ``const``, from which the scanner builds the per-byte
        lookup tables exactly as :func:`fast_scan.byte_tables` does;
        ``errAcc`` (the accumulator error bound), ``m``, ``queryNorm``,
        ``dot`` and ``count``. A row's approximate score is ``acc / m``
        (times ``queryNorm * decoded_norm`` in dot mode) and its error bound
        ``1.5 * (errAcc / m * scale + 4 * 2**-24 * |approx| + 1e-45)``; keep
        rows whose upper bound reaches the k-th largest lower bound, then call
        :meth:`rank_rows`. Pure Python: the browser's numpy-free runtime uses it.
        """
        import sys

        from . import fast_scan

        query = self.codec._as_query(query)
        values = [float(v) for v in query.values]
        packed = array("f", values)
        if sys.byteorder != "little":
            packed.byteswap()
        cfg = self.config
        return {"values": packed.tobytes(), "bits": cfg.bits, "step": fast_scan.level_step(cfg),
                "const": fast_scan.const_term(values, cfg),
                "errAcc": fast_scan.accumulator_error_bound(values, cfg), "m": cfg.sketch_dim,
                "queryNorm": query.norm, "dot": cfg.metric == "dot", "count": self._count}
