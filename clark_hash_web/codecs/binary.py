"""Common machinery of the binary (1 bit per coordinate) codecs.

A binary codec projects a float32 vector to ``m`` values with a
deterministic, exactly specified float32 computation, keeps the signs as
``m`` packed bits (layout: :mod:`clark_hash_web.codecs.bitpack`), and scores stored
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
:class:`~clark_hash_web.codecs.base.EncodedBatch` (configs expose ``sketch_dim`` =
number of bits, ``bits`` = 1 and ``metric`` = "cosine" for it).

Input rules (both backends): NaN/inf rows, rows whose largest ``|x_i|`` is
below ``2**-60`` (zero vectors) and rows with an ``|x_i|`` above ``2**60``
(float32 overflow risk in the projection) are rejected.
"""

from __future__ import annotations

import hashlib
from array import array

from . import bitpack, normalized_scores
from .base import Codec, EncodedBatch, _check_fingerprint
from ..errors import ConfigError, InvalidInputError, InvalidVectorError
from ..validation import REASON_NONFINITE

CODEC_HYPERPLANE_LSH = 2
CODEC_SIGN_BITS = 3
CODEC_ITQ = 4

TINY = 2.0**-60
HUGE = 2.0**60
REASON_TINY = "vector is zero or too small to have a direction (max |x_i| < 2**-60)"
REASON_HUGE = "entries too large to project in float32 (max |x_i| > 2**60)"
SCORINGS = ("asymmetric", "hamming")
ENCODE_CHUNK = 2048          # rows per numpy encode step


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
    """A prepared query: float32 projection ``values`` (m,), its packed ``code``, and
    ``bias``, a float32 added to the table sum before the row scale (0.0 except
    for normalized learned-E8 heads, :mod:`.normalized_scores`)."""

    def __init__(self, config, values, code: bytes, bias: float = 0.0):
        self.config = config
        self.values = values
        self.code = bytes(code)
        self.bias = float(bias)

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
        if self.backend == "numpy":
            return self._bad_from_amax(self._row_amax_numpy(rows)) if len(rows) else {}
        bad = {}
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

    @staticmethod
    def _row_amax_numpy(rows):
        """max |x_i| per row of float32 (N, d) ``rows`` (NaN for a row holding a NaN)."""
        import numpy as np

        # a chunk at a time (NaN propagates through max, inf is not finite): one pass,
        # temporaries of one chunk
        amax = np.empty(len(rows), dtype=rows.dtype)
        buf = np.empty((min(len(rows), 4096), rows.shape[1]), dtype=rows.dtype)
        with np.errstate(invalid="ignore"):
            for s in range(0, len(rows), 4096):
                chunk = rows[s:s + 4096]
                b = buf[:len(chunk)]
                np.abs(chunk, out=b)
                b.max(axis=1, out=amax[s:s + 4096])
        return amax

    @staticmethod
    def _bad_from_amax(amax) -> dict:
        """The rejected rows and their rules, from max |x_i| per row (numpy)."""
        import numpy as np

        bad = {}
        finite = np.isfinite(amax)
        for i in np.flatnonzero(~finite).tolist():
            bad[i] = REASON_NONFINITE
        for i in np.flatnonzero(finite & (amax < TINY)).tolist():
            bad[i] = REASON_TINY
        for i in np.flatnonzero(finite & (amax > HUGE)).tolist():
            bad[i] = REASON_HUGE
        return bad

    def _encode_checked_numpy(self, rows):
        """``(codes or None, max |x_i| per row)`` of float32 (N >= 1, d) ``rows``.

        Codecs whose encoder sees every row in cache override this to return
        the codes of all rows (bad rows included, meaningless) with the row
        maxima taken on the way; the default only checks, and :meth:`encode`
        then encodes the good rows.
        """
        return None, self._row_amax_numpy(rows)

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
        codes = None
        if self.backend == "numpy" and len(rows):
            codes, amax = self._encode_checked_numpy(rows)
            bad = self._bad_from_amax(amax)
        else:
            bad = self._bad_rows(rows)
        if bad and errors == "raise":
            raise InvalidVectorError(bad)
        keep = [i for i in range(len(rows)) if i not in bad] if bad else list(range(len(rows)))
        if self.backend == "numpy":
            import numpy as np

            if codes is not None:
                codes = codes[keep] if bad else codes
            elif len(keep):
                codes = self._encode_numpy(rows[keep] if bad else rows)
            else:
                codes = np.zeros((0, self.code_bytes), dtype=np.uint8)
        else:
            codes = b"".join(self._encode_python(rows[i]) for i in keep)
        return EncodedBatch(self.config, codes, None, rows=keep, skipped=bad)

    def _encode_numpy(self, rows):
        """Valid float32 rows (N, d) -> uint8 codes (N, code_bytes).

        A chunk of rows at a time: the projection's temporaries stay small
        (and in cache) whatever N is.
        """
        import numpy as np

        out = np.empty((len(rows), self.code_bytes), dtype=np.uint8)
        for s in range(0, len(rows), ENCODE_CHUNK):
            bits = self._project_numpy(rows[s:s + ENCODE_CHUNK], exact=False)
            out[s:s + ENCODE_CHUNK] = np.packbits(bits, axis=1, bitorder="little")
        return out

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
        values, bias = self._query_values(rows)
        return BinaryQuery(self.config, values, self._query_code(rows, values), bias)

    def _query_values(self, rows):
        """(float32 projection of the one query row, bias); the bias is 0.0 here."""
        if self.backend == "numpy":
            return self._project_numpy(rows, exact=True)[0], 0.0
        return self._project_python(rows[0]), 0.0

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
    #: True when the asymmetric score has per-row factors (:meth:`row_scales`)
    has_row_scales = False

    def row_scales(self, encoded: EncodedBatch):
        """Per-row factors of the asymmetric score, or None (scores are the table sums).

        Only normalized learned-E8 heads have them (``1 / ||decoded row||``,
        :mod:`.normalized_scores`): their score is ``fl32(fl32(S + bias) * scale)``.
        """
        return None

    def asymmetric_python(self, q: BinaryQuery, raw: bytes, count: int, scales=None) -> array:
        """Pure-Python asymmetric scores of ``count`` codes in ``raw``: the float32 table
        sums, finished with the query's bias and ``scales`` (the codes' row scales, or
        None for codecs without them)."""
        sums = bitpack.asymmetric_scores_python(self._tables_python(q.values), raw, count)
        return sums if scales is None else normalized_scores.finish_python(sums, q.bias, scales)

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
            sums = bitpack.asymmetric_scores_numpy(tables, bitpack.u16_columns(codes))
            scales = self.row_scales(EncodedBatch(self.config, codes))
            return sums if scales is None else normalized_scores.finish_numpy(sums, q.bias, scales)
        raw = encoded.codes_bytes()
        count = len(encoded)
        if rows is not None:
            cb = self.code_bytes
            raw = b"".join(raw[r * cb:(r + 1) * cb] for r in rows)
            count = len(rows)
        if scoring == "hamming":
            return array("f", [bitpack.hamming_score_python(h, m)
                               for h in bitpack.hamming_python(q.code, raw, count)])
        return self.asymmetric_python(q, raw, count, self.row_scales(EncodedBatch(self.config, raw)))

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
