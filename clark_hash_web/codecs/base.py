"""What every codec shares: :class:`EncodedBatch` (packed codes of a batch) and
the :class:`Codec` base (config, backend, sizes, input parsing).
"""

from __future__ import annotations

from array import array
from typing import Optional

from ..backends import numpy_available, resolve_backend
from ..errors import ConfigMismatchError
from ..little_endian import array_bytes, bytes_array
from ..validation import as_numpy_rows, as_python_rows


def _check_fingerprint(expected, fingerprint: str, what: str):
    if fingerprint != expected.fingerprint:
        raise ConfigMismatchError(
            f"{what} belongs to config {fingerprint}, this codec is {expected.fingerprint}")


class CodeRows:
    """Codes of a batch without numpy: a read-only sequence of rows.

    ``rows[i]`` is the ``bytes`` of row ``i`` (``code_bytes`` long; negative
    indexes count from the end), a slice is another :class:`CodeRows`, and
    ``shape``/``ndim`` match the ``(N, code_bytes)`` uint8 array that numpy
    gives. ``tobytes()`` returns every row, row after row.
    """

    ndim = 2

    def __init__(self, data: bytes, code_bytes: int):
        self._data = bytes(data)
        self._cb = code_bytes

    @property
    def shape(self) -> tuple:
        return (len(self._data) // self._cb, self._cb)

    def __len__(self) -> int:
        return len(self._data) // self._cb

    def __getitem__(self, i):
        n, cb = len(self), self._cb
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            if step == 1:
                return CodeRows(self._data[start * cb:max(start, stop) * cb], cb)
            return CodeRows(b"".join(self[r] for r in range(start, stop, step)), cb)
        if isinstance(i, bool) or not hasattr(i, "__index__"):
            raise TypeError(f"code rows are indexed by int or slice, not {type(i).__name__}")
        r = i.__index__()
        if not -n <= r < n:
            raise IndexError(f"code row {r} out of range for {n} rows")
        r %= n
        return self._data[r * cb:(r + 1) * cb]

    def __iter__(self):
        cb = self._cb
        return (self._data[r * cb:(r + 1) * cb] for r in range(len(self)))

    def __eq__(self, other):
        return isinstance(other, CodeRows) and (self._cb, self._data) == (other._cb, other._data)

    def tobytes(self) -> bytes:
        return self._data

    def __repr__(self):
        return f"CodeRows(shape={self.shape})"


class EncodedBatch:
    """Packed codes of a batch (and u16 norm codes in dot mode).

    Attributes
    ----------
    config : ClarkHashConfig
    codes : numpy.ndarray or CodeRows
        uint8 (N, code_bytes); a numpy array whenever numpy is importable,
        otherwise a :class:`CodeRows` (``codes[i]`` is the bytes of row ``i``).
    norm_codes : numpy.ndarray, array or None
        uint16 (N,) in dot mode, else None.
    rows : list[int]
        For each code, the row number of the input vector it encodes.
    skipped : dict[int, str]
        Input rows left out with ``errors="skip"``, with the reason.
    """

    def __init__(self, config, codes, norm_codes=None, rows=None, skipped=None):
        self.config = config
        cb = config.code_bytes
        if isinstance(codes, (bytes, bytearray, memoryview)):
            raw = memoryview(codes).cast("B")
            if len(raw) % cb:
                raise ConfigMismatchError(
                    f"codes hold {len(raw)} bytes, not a multiple of this config's "
                    f"code_bytes={cb} (fingerprint {config.fingerprint})")
            count = len(raw) // cb
            data = codes if type(codes) is bytes else bytes(raw)   # bytes are immutable: no copy
            if numpy_available():
                import numpy as np

                codes = np.frombuffer(data, dtype=np.uint8).reshape(count, cb)
            else:
                codes = data
        else:
            if codes.ndim != 2 or codes.shape[1] != cb:
                raise ConfigMismatchError(
                    f"codes have shape {codes.shape}, this config needs (N, {cb}) "
                    f"(fingerprint {config.fingerprint})")
            count = codes.shape[0]
        self._codes = codes
        self._count = count
        if config.metric == "dot":
            if norm_codes is None:
                raise ConfigMismatchError("dot-metric codes need norm codes, none were given")
            if isinstance(norm_codes, (bytes, bytearray, memoryview)):
                raw = bytes(memoryview(norm_codes).cast("B"))
                if len(raw) != 2 * count:
                    raise ConfigMismatchError(
                        f"norm codes hold {len(raw)} bytes, expected 2 * {count}")
                if numpy_available():
                    import numpy as np

                    norm_codes = np.frombuffer(raw, dtype="<u2").astype(np.uint16)
                else:
                    norm_codes = bytes_array("H", raw)
            elif numpy_available():
                import numpy as np

                norm_codes = np.asarray(norm_codes, dtype=np.uint16)
            else:
                norm_codes = array("H", norm_codes)
            if len(norm_codes) != count:
                raise ConfigMismatchError(
                    f"{len(norm_codes)} norm codes for {count} codes")
        elif norm_codes is not None:
            raise ConfigMismatchError("cosine-metric codes carry no norm codes")
        self._norm_codes = norm_codes
        self.rows = list(range(count)) if rows is None else list(rows)
        self.skipped = dict(skipped or {})
        self._check_padding()

    def _check_padding(self):
        cfg = self.config
        pad = cfg.code_bytes * 8 - cfg.sketch_dim * cfg.bits
        if not pad or not self._count:
            return
        mask = (0xFF << (8 - pad)) & 0xFF
        last = self._column_last_byte()
        bad = [i for i, v in enumerate(last) if v & mask]
        if bad:
            raise ConfigMismatchError(
                f"code row(s) {bad[:5]} have padding bits set: they were not written by "
                f"config {cfg.fingerprint} (sketch_dim={cfg.sketch_dim}, bits={cfg.bits})")

    def _column_last_byte(self):
        if isinstance(self._codes, bytes):
            cb = self.config.code_bytes
            return self._codes[cb - 1::cb]
        return self._codes[:, -1].tolist()

    @classmethod
    def from_bytes(cls, config, codes, norm_codes=None, fingerprint=None):
        """Wrap stored bytes (e.g. from IndexedDB or a sync body) as a batch.

        Raises ConfigMismatchError when ``fingerprint`` is given and differs
        from ``config.fingerprint``, or when the lengths or padding bits do not
        fit the config.
        """
        if fingerprint is not None:
            _check_fingerprint(config, fingerprint, "these codes")
        return cls(config, codes, norm_codes)

    def __len__(self):
        return self._count

    @property
    def fingerprint(self) -> str:
        return self.config.fingerprint

    @property
    def codes(self):
        if isinstance(self._codes, bytes):
            return CodeRows(self._codes, self.config.code_bytes)
        return self._codes

    @property
    def norm_codes(self):
        return self._norm_codes

    def codes_bytes(self) -> bytes:
        """All codes, row after row."""
        return self._codes if isinstance(self._codes, bytes) else self._codes.tobytes()

    def norm_codes_bytes(self) -> Optional[bytes]:
        """Norm codes as little-endian u16 bytes (None in cosine mode)."""
        if self._norm_codes is None:
            return None
        if isinstance(self._norm_codes, array):
            return array_bytes("H", self._norm_codes)
        return self._norm_codes.astype("<u2").tobytes()

    def code(self, i: int) -> bytes:
        """The packed code of row ``i`` as bytes."""
        cb = self.config.code_bytes
        return self.codes_bytes()[i * cb:(i + 1) * cb] if isinstance(self._codes, bytes) \
            else self._codes[i].tobytes()

    def __repr__(self):
        return (f"EncodedBatch({self._count} codes x {self.config.code_bytes} bytes, "
                f"fingerprint={self.fingerprint}, skipped={len(self.skipped)})")


class Codec:
    """What every codec shares: its config, its backend, sizes and input parsing.

    Subclasses (:class:`ClarkHash`, the binary codecs) add ``encode``,
    ``sketch_query``, ``score`` and ``decode_sketch``.
    """

    def __init__(self, config, backend=None):
        self.config = config
        self.backend = resolve_backend(backend)

    @property
    def code_bytes(self) -> int:
        return self.config.code_bytes

    @property
    def storage_bytes_per_vector(self) -> int:
        return self.config.storage_bytes_per_vector

    @property
    def compression_ratio_vs_f32(self) -> float:
        return self.config.compression_ratio_vs_f32

    def __repr__(self):
        return f"{type(self).__name__}({self.config!r}, backend={self.backend!r})"

    def _rows(self, vectors):
        if self.backend == "numpy":
            return as_numpy_rows(vectors, self.config.input_dim)
        return as_python_rows(vectors, self.config.input_dim)
