"""The Clark Hash codec: :class:`ClarkHash`, :class:`EncodedBatch`, :class:`QuerySketch`.

``encode`` turns float32 vectors into packed codes (and u16 norm codes in dot
mode) byte-identical to the clark-hash 0.1.1 crate; ``sketch_query`` makes the
float32 query sketch; ``score`` computes the crate's float32 scores. The same
methods work with the ``"numpy"`` and the ``"python"`` (numpy-free) backend
and give the same bytes and score bits.
"""

from __future__ import annotations

import math
from array import array
from typing import Literal, Optional

from ..backends import make_backend
from ..errors import ConfigMismatchError, InvalidInputError, InvalidVectorError
from ..validation import (EPSILON, REASON_NONFINITE, REASON_OVERFLOW, REASON_ZERO,
                          nonfinite_rows_python)
from .base import Codec, EncodedBatch, _check_fingerprint
from .clark_hash_config import CODEC_CLARK_HASH, ClarkHashConfig
from .registry import CodecKind, register

Errors = Literal["raise", "skip"]
NonFinite = Literal["reject", "reference"]


class QuerySketch:
    """A float32 query sketch: ``values`` (m,) and the query ``norm``.

    ``values`` is a numpy float32 array under the numpy backend and an
    ``array('f')`` under the python backend; both hold the same bits.
    """

    def __init__(self, config: ClarkHashConfig, values, norm: float):
        self.config = config
        self.values = values
        self.norm = float(norm)

    @property
    def fingerprint(self) -> str:
        return self.config.fingerprint

    def __repr__(self):
        return f"QuerySketch(m={len(self.values)}, norm={self.norm!r}, fingerprint={self.fingerprint})"


class ClarkHash(Codec):
    """Clark Hash codec (the crate's ``SQuaJL``/``ClarkHash``).

    Parameters
    ----------
    config : ClarkHashConfig
    backend : {"numpy", "python", None}
        ``None`` picks numpy when it is importable (override with the
        environment variable ``CLARK_HASH_BACKEND``).

    Examples
    --------
    >>> codec = ClarkHash(ClarkHashConfig(input_dim=384))
    >>> enc = codec.encode(vectors)          # vectors: (N, 384)
    >>> scores = codec.score(codec.sketch_query(q), enc)
    """

    def __init__(self, config: ClarkHashConfig, backend=None):
        if not isinstance(config, ClarkHashConfig):
            raise InvalidInputError(f"config must be a ClarkHashConfig, got {type(config).__name__}")
        super().__init__(config, backend)
        self._impl = make_backend(config, self.backend)

    def _nonfinite(self, rows):
        if self.backend == "numpy":
            import numpy as np

            return np.flatnonzero(~np.isfinite(rows).all(axis=1)).tolist()
        return nonfinite_rows_python(rows)

    # -- encode -----------------------------------------------------------------
    def encode(self, vectors, errors: Errors = "raise", nonfinite: NonFinite = "reject") -> EncodedBatch:
        """Encode a batch (N, d) (or one vector (d,)) into packed codes.

        Parameters
        ----------
        vectors : array-like, list of rows, or bytes of little-endian float32
        errors : {"raise", "skip"}
            ``"raise"``: any bad row raises InvalidVectorError and nothing is
            encoded. ``"skip"``: bad rows are left out and listed in
            ``EncodedBatch.skipped``; ``EncodedBatch.rows`` maps codes to input rows.
        nonfinite : {"reject", "reference"}
            ``"reference"`` encodes NaN/inf rows the way the crate does
            (meaningless codes), for compatibility checks only.

        Returns
        -------
        EncodedBatch
        """
        if errors not in ("raise", "skip"):
            raise InvalidInputError(f"errors must be 'raise' or 'skip', got {errors!r}")
        if nonfinite not in ("reject", "reference"):
            raise InvalidInputError(f"nonfinite must be 'reject' or 'reference', got {nonfinite!r}")
        rows, _ = self._rows(vectors)
        codes, ncodes, norms = self._impl.encode(rows)
        bad = self._bad_rows(rows, norms, nonfinite)
        if not bad:
            return EncodedBatch(self.config, codes, ncodes)
        if errors == "raise":
            raise InvalidVectorError(bad)
        keep = [i for i in range(len(rows)) if i not in bad]
        codes, ncodes = self._take(codes, ncodes, keep)
        return EncodedBatch(self.config, codes, ncodes, rows=keep, skipped=bad)

    def _bad_rows(self, rows, norms, nonfinite) -> dict:
        """Rows to reject, with the reason, judged from the float32 norms.

        A NaN/inf entry makes the norm NaN/inf; a finite row can also
        overflow the float32 squared norm (the crate then stores only middle
        levels). Zero vectors (norm <= float32 epsilon) are always rejected,
        like the crate does; the others only with ``nonfinite="reject"``.
        """
        if self.backend == "numpy":
            import numpy as np

            if nonfinite == "reference":
                suspects = np.flatnonzero(norms <= np.float32(EPSILON)).tolist()
            else:
                suspects = np.flatnonzero(~(np.isfinite(norms) & (norms > np.float32(EPSILON)))).tolist()
        else:
            suspects = [i for i, v in enumerate(norms)
                        if v <= EPSILON or (nonfinite == "reject" and not math.isfinite(v))]
        bad = {}
        for i in suspects:
            v = float(norms[i])
            if v <= EPSILON:
                bad[i] = REASON_ZERO
            elif self._nonfinite([rows[i]]):
                bad[i] = REASON_NONFINITE
            else:
                bad[i] = REASON_OVERFLOW
        return bad

    def _take(self, codes, ncodes, idx):
        if self.backend == "numpy":
            return codes[idx], (ncodes[idx] if ncodes is not None else None)
        cb = self.config.code_bytes
        out = b"".join(codes[j * cb:(j + 1) * cb] for j in idx)
        return out, ([ncodes[j] for j in idx] if ncodes is not None else None)

    def encode_vector(self, vector) -> bytes:
        """Encode one vector (d,); returns its packed code (plus 2 norm-code
        bytes, little-endian, in dot mode) as ``storage_bytes_per_vector`` bytes."""
        enc = self.encode(vector)
        if len(enc) != 1:
            raise InvalidInputError(f"encode_vector takes one vector, got {len(enc)} rows")
        return enc.codes_bytes() + (enc.norm_codes_bytes() or b"")

    # -- query --------------------------------------------------------------------
    def sketch_query(self, x) -> QuerySketch:
        """Float32 query sketch of one vector (d,).

        Rejects NaN/inf entries, zero vectors and norms that overflow float32.
        """
        rows, single = self._rows(x)
        if len(rows) != 1:
            raise InvalidInputError(f"sketch_query takes one vector, got {len(rows)} rows")
        if self._nonfinite(rows):
            raise InvalidVectorError({0: REASON_NONFINITE}, what="query")
        if self.backend == "numpy":
            values, norm = self._impl.sketch_query(rows[0])
        else:
            values, norm = self._impl.project_row(rows[0])
        if not norm > EPSILON:
            raise InvalidVectorError({0: REASON_ZERO}, what="query")
        if not math.isfinite(norm):  # the crate would score everything NaN
            raise InvalidVectorError({0: REASON_OVERFLOW}, what="query")
        return QuerySketch(self.config, values, norm)

    def _as_query(self, query) -> QuerySketch:
        if isinstance(query, QuerySketch):
            _check_fingerprint(self.config, query.fingerprint, "the query sketch")
            if self.backend == "numpy" and not hasattr(query.values, "dtype"):
                import numpy as np

                query = QuerySketch(self.config, np.asarray(query.values, dtype=np.float32), query.norm)
            return query
        return self.sketch_query(query)

    def score(self, query, encoded: EncodedBatch, rows=None):
        """Float32 scores of ``encoded`` for ``query`` (a QuerySketch or a vector).

        Bit-identical to the crate: cosine estimates, or dot estimates
        ``(cosine * query_norm) * decoded_norm`` in dot mode.
        """
        q = self._as_query(query)
        _check_fingerprint(self.config, encoded.fingerprint, "the encoded batch")
        if self.backend == "numpy":
            import numpy as np

            codes = np.asarray(encoded.codes)
            nc = encoded.norm_codes
            if rows is not None:
                codes, nc = codes[rows], (np.asarray(nc)[rows] if nc is not None else None)
            return self._impl.score(q.values, q.norm, codes, None if nc is None else np.asarray(nc))
        return self._impl.score(q.values, q.norm, encoded.codes_bytes(), len(encoded),
                                encoded.norm_codes, rows=rows)

    # -- decode -------------------------------------------------------------------
    def decode_sketch(self, encoded: EncodedBatch):
        """Dequantized float32 sketch coordinates, (N, m).

        These are the values the scores use: ``deq(level) = level / L * 2c - c``.
        Returns a numpy array (numpy backend) or a list of ``array('f')``.
        """
        _check_fingerprint(self.config, encoded.fingerprint, "the encoded batch")
        if self.backend == "numpy":
            import numpy as np

            return self._impl.decode_sketch(np.asarray(encoded.codes))
        return self._impl.decode_sketch(encoded.codes_bytes(), len(encoded))

    def decode_norms(self, encoded: EncodedBatch):
        """Decoded float32 norms of a dot-mode batch (the crate's ``decode_norm``)."""
        from .norm_channel import decode_norms_numpy, decode_table

        cfg = self.config
        if cfg.metric != "dot":
            raise ConfigMismatchError("decode_norms needs metric='dot'")
        if self.backend == "numpy":
            return decode_norms_numpy(encoded.norm_codes, cfg.norm_log2_min, cfg.norm_log2_max)
        table = decode_table(cfg.norm_log2_min, cfg.norm_log2_max)
        return array("f", [table[c] for c in encoded.norm_codes])


SQuaJL = ClarkHash


def check_codes(config: ClarkHashConfig, codes: bytes, count: int) -> Optional[str]:
    """Padding bits past ``sketch_dim * bits`` must be zero (the crate writes zeros)."""
    pad = config.code_bytes * 8 - config.sketch_dim * config.bits
    if not pad or not count:
        return None
    cb = config.code_bytes
    mask = (0xFF << (8 - pad)) & 0xFF
    masked = codes[cb - 1::cb].translate(bytes(v & mask for v in range(256)))
    nonzero = len(masked) - len(masked.lstrip(b"\0"))
    if nonzero == len(masked):
        return None
    return (f"code row {nonzero} has padding bits set (mask 0x{mask:02x} on its last byte): "
            f"sketch_dim={config.sketch_dim} x bits={config.bits} leaves {pad} zero bits")


register(CodecKind(CODEC_CLARK_HASH, "clark-hash", "Clark Hash", ClarkHashConfig, ClarkHash,
                   check_codes))
