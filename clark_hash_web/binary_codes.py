"""Common machinery of the binary (1 bit per coordinate) codecs.

A binary codec projects a float32 vector to ``m`` values with a
deterministic, exactly specified float32 computation, keeps the signs as
``m`` packed bits (layout: :mod:`clark_hash_web.bitpack`), and scores stored
codes against a query either

* ``"asymmetric"`` (default): the float query projection against the stored
  bits, ``sum_j (bit_j ? q_j : -q_j)`` in a fixed float32 order, or
* ``"hamming"``: ``(m - 2 * hamming(query bits, code)) / m``.

The concrete codecs differ only in the projection:

==========================  ====  ==========================================
codec                       kind  projection
==========================  ====  ==========================================
:class:`HyperplaneLSH`      2     seeded Gaussian planes (``hyperplane_lsh``)
:class:`SignBits`           3     identity or a seeded randomized Hadamard
                                  rotation (``sign_bits``)
:class:`ITQ`                4     learned mean + rotation (``itq``)
:class:`E8Codes`            5     one E8 root (byte) per 8 dimensions
                                  (``e8_codes``; asymmetric scoring only)
==========================  ====  ==========================================

Every config is a frozen dataclass with ``to_bytes``/``from_bytes``, a
``fingerprint`` (first 8 bytes of ``sha256(b"clark-hash-web/config\\x00" +
to_bytes())``, like :class:`ClarkHashConfig`), ``code_bytes``,
``storage_bytes_per_vector`` and ``compression_ratio_vs_f32``; the first byte
of ``to_bytes()`` is the codec kind. Encoded batches are the package's
:class:`~clark_hash_web.codec.EncodedBatch` (configs expose ``sketch_dim`` =
number of bits, ``bits`` = 1 and ``metric`` = "cosine" for it).

Input rules (both backends): NaN/inf rows, rows whose largest ``|x_i|`` is
below ``2**-60`` (zero vectors) and rows with an ``|x_i|`` above ``2**60``
(float32 overflow risk in the projection) are rejected.
"""

from __future__ import annotations

import hashlib
from array import array

from . import bitpack
from .codec import Codec, EncodedBatch, _check_fingerprint
from .errors import ConfigError, InvalidInputError, InvalidVectorError
from .ids import IdMap, ids_of_encoded_rows
from .validation import REASON_NONFINITE

CODEC_HYPERPLANE_LSH = 2
CODEC_SIGN_BITS = 3
CODEC_ITQ = 4

TINY = 2.0**-60
HUGE = 2.0**60
REASON_TINY = "vector is zero or too small to have a direction (max |x_i| < 2**-60)"
REASON_HUGE = "entries too large to project in float32 (max |x_i| > 2**60)"
SCORINGS = ("asymmetric", "hamming")


def check_padding(config, codes: bytes, count: int):
    """Sketch-file check: the padding bits past ``n_bits`` must be zero."""
    pad = config.code_bytes * 8 - config.n_bits
    if not pad or not count:
        return None
    cb = config.code_bytes
    mask = (0xFF << (8 - pad)) & 0xFF
    for row, v in enumerate(codes[cb - 1::cb]):
        if v & mask:
            return (f"code row {row} has padding bits set (mask 0x{mask:02x} on its last byte): "
                    f"n_bits={config.n_bits} leaves {pad} zero bits")
    return None


def register_sketch_codec(kind: int, name: str, parse, check_codes=check_padding):
    """Register a codec's config parser (and code check) with :mod:`clark_hash_web.sketch_file`."""
    try:
        from .sketch_file import register_codec
    except ImportError:  # sketch files not available in this build
        return
    register_codec(kind, name, parse, check_codes)


def fingerprint_of(canonical: bytes) -> str:
    """16 hex digits: the package-wide config fingerprint of canonical bytes."""
    return hashlib.sha256(b"clark-hash-web/config\x00" + canonical).digest()[:8].hex()


def check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and type(value).__name__ not in (
            "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be in {lo}..{hi}, got {value}")
    return value


class BinaryConfigMixin:
    """Sizes and fingerprint shared by the binary codec configs.

    Subclasses are frozen dataclasses with ``input_dim`` and ``n_bits`` and a
    ``to_bytes`` method.
    """

    metric = "cosine"
    bits = 1

    @property
    def sketch_dim(self) -> int:
        """Number of bits ``m`` (the name EncodedBatch expects)."""
        return self.n_bits

    @property
    def code_bytes(self) -> int:
        """``ceil(n_bits / 8)``."""
        return bitpack.code_bytes_for(self.n_bits)

    @property
    def storage_bytes_per_vector(self) -> int:
        return self.code_bytes

    @property
    def compression_ratio_vs_f32(self) -> float:
        return 4 * self.input_dim / self.storage_bytes_per_vector

    @property
    def fingerprint(self) -> str:
        fp = self.__dict__.get("_fp")
        if fp is None:
            fp = fingerprint_of(self.to_bytes())
            object.__setattr__(self, "_fp", fp)
        return fp


class BinaryQuery:
    """A prepared query: float32 projection ``values`` (m,) and its packed ``code``."""

    def __init__(self, config, values, code: bytes):
        self.config = config
        self.values = values
        self.code = bytes(code)

    @property
    def fingerprint(self) -> str:
        return self.config.fingerprint

    def __repr__(self):
        return f"BinaryQuery(m={len(self.values)}, fingerprint={self.fingerprint})"


class BinaryCodec(Codec):
    """Base of the binary codecs (same verbs as :class:`~clark_hash_web.ClarkHash`).

    Subclasses set ``config_type`` and implement ``_prepare`` (build the
    projection parameters for the backend), ``_project_numpy(rows, exact)``
    and ``_project_python(row)``.
    """

    config_type = None
    supports_hamming = True

    def __init__(self, config, backend=None):
        if self.config_type is not None and not isinstance(config, self.config_type):
            raise InvalidInputError(
                f"config must be a {self.config_type.__name__}, got {type(config).__name__}")
        super().__init__(config, backend)
        self._prepare()

    # -- to implement ----------------------------------------------------------------
    def _prepare(self):
        raise NotImplementedError

    def _project_numpy(self, rows, exact: bool):
        """(N, d) float32 -> (N, m): float32 values if ``exact``, else booleans ``y > 0``."""
        raise NotImplementedError

    def _project_python(self, row) -> array:
        """One row -> ``array('f')`` of m values."""
        raise NotImplementedError

    def _bad_rows(self, rows) -> dict:
        bad = {}
        if self.backend == "numpy":
            import numpy as np

            if len(rows) == 0:
                return bad
            finite = np.isfinite(rows).all(axis=1)
            with np.errstate(invalid="ignore"):
                amax = np.abs(rows).max(axis=1)
            for i in np.flatnonzero(~finite).tolist():
                bad[i] = REASON_NONFINITE
            for i in np.flatnonzero(finite & (amax < TINY)).tolist():
                bad[i] = REASON_TINY
            for i in np.flatnonzero(finite & (amax > HUGE)).tolist():
                bad[i] = REASON_HUGE
            return bad
        for i, r in enumerate(rows):
            if any(v != v or v in (float("inf"), float("-inf")) for v in r):
                bad[i] = REASON_NONFINITE
                continue
            amax = max((abs(v) for v in r), default=0.0)
            if amax < TINY:
                bad[i] = REASON_TINY
            elif amax > HUGE:
                bad[i] = REASON_HUGE
        return bad

    # -- encode ------------------------------------------------------------------------
    def encode(self, vectors, errors: str = "raise") -> EncodedBatch:
        """Encode vectors (N, d) or one vector (d,) into packed sign bits.

        Parameters
        ----------
        vectors : array-like, list of rows, or bytes of little-endian float32
        errors : {"raise", "skip"}
            ``"raise"``: any bad row raises InvalidVectorError (its ``rows``
            name each row and rule) and nothing is encoded. ``"skip"``: bad
            rows are left out, listed in ``EncodedBatch.skipped``.

        Returns
        -------
        EncodedBatch
            ``codes`` uint8 (N, code_bytes).
        """
        if errors not in ("raise", "skip"):
            raise InvalidInputError(f"errors must be 'raise' or 'skip', got {errors!r}")
        rows, _ = self._rows(vectors)
        bad = self._bad_rows(rows)
        if bad and errors == "raise":
            raise InvalidVectorError(bad)
        keep = [i for i in range(len(rows)) if i not in bad]
        if self.backend == "numpy":
            import numpy as np

            good = rows[keep] if bad else rows
            if len(good):
                codes = self._encode_numpy(good)
            else:
                codes = np.zeros((0, self.code_bytes), dtype=np.uint8)
        else:
            codes = b"".join(self._encode_python(rows[i]) for i in keep)
        return EncodedBatch(self.config, codes, None, rows=keep, skipped=bad)

    def _encode_numpy(self, rows):
        """Valid float32 rows (N, d) -> uint8 codes (N, code_bytes)."""
        import numpy as np

        return np.packbits(self._project_numpy(rows, exact=False), axis=1, bitorder="little")

    def _encode_python(self, row) -> bytes:
        return bitpack.pack_signs_python(self._project_python(row), self.config.n_bits)

    def _tables_numpy(self, values):
        """(code_bytes, 256) float32 byte tables of a query (see :mod:`bitpack`)."""
        return bitpack.byte_tables_numpy(values, self.config.n_bits)

    def _tables_python(self, values) -> list:
        return bitpack.byte_tables_python(values, self.config.n_bits)

    def encode_vector(self, vector) -> bytes:
        """The packed code of one vector (d,) as ``code_bytes`` bytes."""
        return self.encode(vector).codes_bytes()

    # -- query ---------------------------------------------------------------------------
    def sketch_query(self, x) -> BinaryQuery:
        """Float32 projection and packed bits of one query vector (d,)."""
        rows, _ = self._rows(x)
        if len(rows) != 1:
            raise InvalidInputError(f"sketch_query takes one vector, got {len(rows)} rows")
        bad = self._bad_rows(rows)
        if bad:
            raise InvalidVectorError(bad, what="query")
        if self.backend == "numpy":
            values = self._project_numpy(rows, exact=True)[0]
        else:
            values = self._project_python(rows[0])
        return BinaryQuery(self.config, values, self._query_code(rows, values))

    def _query_code(self, rows, values) -> bytes:
        """The stored-form code of the query (the signs of its exact projection)."""
        if self.backend == "numpy":
            return bitpack.pack_signs_numpy(values[None, :])[0].tobytes()
        return bitpack.pack_signs_python(values, self.config.n_bits)

    def _as_query(self, query) -> BinaryQuery:
        if isinstance(query, BinaryQuery):
            _check_fingerprint(self.config, query.fingerprint, "the query sketch")
            return query
        return self.sketch_query(query)

    def check_codes(self, encoded: EncodedBatch):
        """Raise ConfigMismatchError when stored codes cannot come from this codec.

        Bit codes: any bits are valid (padding bits are checked by
        EncodedBatch). Codecs with invalid byte values override this.
        """

    # -- scoring ---------------------------------------------------------------------------
    def hamming(self, query, encoded: EncodedBatch):
        """Hamming distances (ints) between the query bits and each code."""
        q = self._as_query(query)
        _check_fingerprint(self.config, encoded.fingerprint, "the encoded batch")
        if self.backend == "numpy":
            import numpy as np

            return bitpack.hamming_numpy(q.code, bitpack.words_of(np.asarray(encoded.codes)))
        return bitpack.hamming_python(q.code, encoded.codes_bytes(), len(encoded))

    def score(self, query, encoded: EncodedBatch, rows=None, scoring: str = "asymmetric"):
        """Float32 scores (N,) of the codes for a query (BinaryQuery or vector).

        ``scoring="asymmetric"`` (default) or ``"hamming"``; see the module
        docstring. ``rows`` restricts scoring to those row numbers.
        """
        if scoring not in SCORINGS:
            raise InvalidInputError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
        q = self._as_query(query)
        _check_fingerprint(self.config, encoded.fingerprint, "the encoded batch")
        m = self.config.n_bits
        if self.backend == "numpy":
            import numpy as np

            codes = np.asarray(encoded.codes)
            if rows is not None:
                codes = codes[np.asarray(rows, dtype=np.intp)]
            if scoring == "hamming":
                d = bitpack.hamming_numpy(q.code, bitpack.words_of(codes))
                return bitpack.hamming_score_numpy(d, m)
            tables = bitpack.pair_tables_numpy(self._tables_numpy(q.values))
            return bitpack.asymmetric_scores_numpy(tables, bitpack.u16_columns(codes))
        raw = encoded.codes_bytes()
        count = len(encoded)
        if rows is not None:
            cb = self.code_bytes
            raw = b"".join(raw[r * cb:(r + 1) * cb] for r in rows)
            count = len(rows)
        if scoring == "hamming":
            return array("f", [bitpack.hamming_score_python(h, m)
                               for h in bitpack.hamming_python(q.code, raw, count)])
        return bitpack.asymmetric_scores_python(self._tables_python(q.values), raw, count)

    def decode_sketch(self, encoded: EncodedBatch):
        """The stored bits as +1.0/-1.0 float32, (N, m)."""
        _check_fingerprint(self.config, encoded.fingerprint, "the encoded batch")
        m = self.config.n_bits
        if self.backend == "numpy":
            import numpy as np

            bits = np.unpackbits(np.asarray(encoded.codes), axis=1, bitorder="little")[:, :m]
            return np.where(bits == 1, np.float32(1), np.float32(-1)).astype(np.float32)
        raw, cb = encoded.codes_bytes(), self.code_bytes
        return [array("f", [1.0 if b else -1.0 for b in
                            bitpack.unpack_bits_python(raw[i * cb:(i + 1) * cb], m)])
                for i in range(len(encoded))]


def _total_order_key(bits: int) -> int:
    return bits if bits < 0x80000000 else -(bits & 0x7FFFFFFF) - 1


class BinaryIndex:
    """Flat in-memory index of binary codes with an optional Hamming prefilter.

    Parameters
    ----------
    codec : BinaryCodec (HyperplaneLSH, SignBits or ITQ)

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

    def __len__(self):
        return len(self._ids)

    def __contains__(self, id_):
        return id_ in self._ids

    @property
    def ids(self) -> list:
        """Ids in insertion order."""
        return self._ids.ids

    @property
    def backend(self) -> str:
        return self.codec.backend

    def _codes_numpy(self):
        return self._buf[:len(self._ids), :self.config.code_bytes]

    # -- adding / removing -------------------------------------------------------------
    def add(self, vectors, ids=None, errors: str = "raise") -> list:
        """Encode and store vectors; returns the stored ids."""
        enc = self.codec.encode(vectors, errors=errors)
        return self.add_encoded(enc, ids_of_encoded_rows(ids, enc))

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

    def search_batch(self, queries, k: int = 10, **kw) -> list:
        """:meth:`search` for each row of ``queries``; a list of ``(ids, scores)``."""
        return [self.search(q, k, **kw) for q in queries]
