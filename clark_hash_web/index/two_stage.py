"""Two-stage search: compact codes in memory, exact rescoring from a vector file.

Stage 1: an in-memory index (:class:`~clark_hash_web.FlatIndex` over Clark
Hash codes, or :class:`~clark_hash_web.codecs.binary.BinaryIndex` over binary
codes) returns the top ``N = k * rescore_multiplier`` candidates. Stage 2:
only those candidates' rows are read (seek + read per row) from a :class:`VectorFile` on disk
(float32 or int8 per row) and rescored; the top ``k`` of the rescored
candidates are returned.

When ``N >= len(index)`` every row is rescored, so the result equals an
exact brute-force search by the rescoring score.

Rescoring score (exact, the same bits with and without numpy)
-------------------------------------------------------------
Cosine files store unit vectors: ``norm = sqrt(s)`` with ``s`` the sequential
float32 sum of ``x_i * x_i`` (i = 0..d-1), then ``v_i = x_i / norm`` in
float32. The query is normalized the same way. The score of a row is the
sequential float32 sum over i of ``fl(q_i * v_i)``; for int8 rows
``fl(q_i * c_i)`` is summed and the sum multiplied by the row's scale.
Dot files store the raw vectors and use the raw query.

int8 rows: ``scale = fl(max_i |v_i| / 127)``, ``c_i = round_half_away(fl(v_i / scale))``
(in -127..127).

VectorFile layout (little-endian)
---------------------------------
======  ====  =====================================================
offset  size  field
======  ====  =====================================================
0       8     magic b"CHVECTRS"
8       2     format version (u16) = 1
10      1     row kind: 1 = float32, 2 = int8 (+ f32 scale)
11      1     metric: 0 = cosine (rows normalized), 1 = dot (raw rows)
12      4     dim d (u32)
16      16    reserved, 0
32      ...   rows: float32: 4 d bytes; int8: 4-byte f32 scale, then d int8
======  ====  =====================================================

The row count is ``(file size - 32) / row bytes``. Appends write all rows of
a batch with one write and truncate the file back to its old size if the
write fails; a file ending in a partial row (a crash during a write) is
refused on open unless ``recover=True``, which cuts the partial row.
"""

from __future__ import annotations

import math
import os
import struct
import sys
import tempfile
from array import array

from ..errors import InvalidInputError, InvalidVectorError, SketchFileError
from ..float32 import f32, round_half_away
from ..validation import REASON_NONFINITE, as_numpy_rows, as_python_rows
from .base import Index
from .ids import ids_of_encoded_rows

MAGIC = b"CHVECTRS"
VERSION = 1
HEADER = struct.Struct("<8sHBBI16s")
HEADER_BYTES = HEADER.size  # 32
KINDS = {"float32": 1, "int8": 2}
METRICS = {"cosine": 0, "dot": 1}
REASON_ZERO_NORM = "vector norm is zero (cannot be normalized for cosine)"


def _numpy_ok(backend) -> bool:
    if backend == "python":
        return False
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True


# -- exact float32 kernels ---------------------------------------------------------------
def _normalize_python(row):
    s = 0.0
    for v in row:
        s = f32(s + f32(v * v))
    norm = f32(math.sqrt(s))
    return array("f", [v / norm for v in row]), norm


def _normalize_numpy(rows):
    import numpy as np

    s = np.zeros(len(rows), dtype=np.float32)
    for i in range(rows.shape[1]):
        s += rows[:, i] * rows[:, i]
    norm = np.sqrt(s)
    with np.errstate(all="ignore"):
        return rows / norm[:, None], norm


def _int8_python(v):
    scale = f32(max(abs(x) for x in v) / 127.0)
    codes = [int(max(-127.0, min(127.0, round_half_away(f32(x / scale))))) for x in v]
    return scale, codes


def _int8_numpy(v):
    import numpy as np

    scale = (np.abs(v).max(axis=1) / np.float32(127)).astype(np.float32)
    t = (v / scale[:, None]).astype(np.float64)
    c = np.sign(t) * np.floor(np.abs(t) + 0.5)  # exact in float64: round half away from zero
    return scale, np.clip(c, -127, 127).astype(np.int8)


class VectorFile:
    """Append-only file of full vectors for rescoring; reads only the rows asked for.

    Parameters
    ----------
    path : str or os.PathLike
    dim : int, optional
        Needed to create a new file; checked against an existing one.
    kind : {"float32", "int8"}, default "float32"
    metric : {"cosine", "dot"}, default "cosine"
    backend : {"numpy", "python", None}
    recover : bool, default False
        Cut a trailing partial row (left by a crash) instead of refusing the file.
    """

    def __init__(self, path, dim=None, kind: str = "float32", metric: str = "cosine",
                 backend=None, recover: bool = False):
        if kind not in KINDS:
            raise InvalidInputError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
        if metric not in METRICS:
            raise InvalidInputError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
        self.path = os.fspath(path)
        self.use_numpy = _numpy_ok(backend)
        if os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            self._open_existing(dim, kind, metric, recover)
        else:
            if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim < 2**32:
                raise InvalidInputError(f"dim must be a positive int to create {self.path}, got {dim!r}")
            self.dim, self.kind, self.metric = dim, kind, metric
            with open(self.path, "wb") as f:
                f.write(HEADER.pack(MAGIC, VERSION, KINDS[kind], METRICS[metric], dim, bytes(16)))
        self.row_bytes = 4 * self.dim if self.kind == "float32" else 4 + self.dim
        self._count = (os.path.getsize(self.path) - HEADER_BYTES) // self.row_bytes

    def _open_existing(self, dim, kind, metric, recover):
        size = os.path.getsize(self.path)
        with open(self.path, "rb") as f:
            head = f.read(HEADER_BYTES)
        if len(head) < HEADER_BYTES:
            raise SketchFileError(f"{self.path}: {size} bytes, a vector file header is {HEADER_BYTES}")
        magic, version, k, m, d, reserved = HEADER.unpack(head)
        if magic != MAGIC:
            raise SketchFileError(f"{self.path}: bad magic {magic!r} at byte 0 (expected {MAGIC!r})")
        if version != VERSION:
            raise SketchFileError(f"{self.path}: unknown version {version} at byte 8")
        names = {v: n for n, v in KINDS.items()}
        mnames = {v: n for n, v in METRICS.items()}
        if k not in names or m not in mnames or reserved != bytes(16) or d == 0:
            raise SketchFileError(f"{self.path}: corrupt header (row kind {k} at byte 10, "
                                  f"metric {m} at byte 11, dim {d} at byte 12, reserved 16..31)")
        self.dim, self.kind, self.metric = d, names[k], mnames[m]
        if dim is not None and dim != d:
            raise SketchFileError(f"{self.path}: holds dim {d}, expected {dim}")
        if (kind, metric) != (self.kind, self.metric) and (kind, metric) != ("float32", "cosine"):
            raise SketchFileError(f"{self.path}: holds {self.kind}/{self.metric} rows, "
                                  f"expected {kind}/{metric}")
        row_bytes = 4 * d if self.kind == "float32" else 4 + d
        extra = (size - HEADER_BYTES) % row_bytes
        if extra:
            if not recover:
                raise SketchFileError(
                    f"{self.path}: truncated: ends in a partial row ({extra} of {row_bytes} "
                    f"bytes after {(size - HEADER_BYTES) // row_bytes} rows); "
                    f"open with recover=True to cut it")
            with open(self.path, "r+b") as f:
                f.truncate(size - extra)

    def __len__(self):
        return self._count

    # -- writing --------------------------------------------------------------------------
    def prepare_rows(self, vectors) -> bytes:
        """Validated, normalized (cosine), quantized (int8) row bytes of a batch, as stored."""
        if self.use_numpy:
            import numpy as np

            rows, _ = as_numpy_rows(vectors, self.dim)
            bad = {i: REASON_NONFINITE for i in np.flatnonzero(~np.isfinite(rows).all(axis=1)).tolist()}
            if bad:
                raise InvalidVectorError(bad)
            if self.metric == "cosine":
                rows, norm = _normalize_numpy(rows)
                bad = {i: REASON_ZERO_NORM
                       for i in np.flatnonzero(~(np.isfinite(norm) & (norm > 0))).tolist()}
                if bad:
                    raise InvalidVectorError(bad)
            rows = rows.astype("<f4")
            if self.kind == "float32":
                return rows.tobytes()
            if len(rows) and not (np.abs(rows).max(axis=1) > 0).all():
                zero = np.flatnonzero(~(np.abs(rows).max(axis=1) > 0)).tolist()
                raise InvalidVectorError({i: "all-zero vector cannot be int8-scaled" for i in zero})
            scale, codes = _int8_numpy(rows.astype(np.float32))
            out = np.empty((len(rows), self.row_bytes), dtype=np.uint8)
            out[:, :4] = scale.astype("<f4").view(np.uint8).reshape(-1, 4)
            out[:, 4:] = codes.view(np.uint8)
            return out.tobytes()
        rows, _ = as_python_rows(vectors, self.dim)
        bad = {i: REASON_NONFINITE for i, r in enumerate(rows)
               if any(v != v or v in (math.inf, -math.inf) for v in r)}
        if bad:
            raise InvalidVectorError(bad)
        if self.metric == "cosine":
            normed = []
            for i, r in enumerate(rows):
                v, norm = _normalize_python(r)
                if not (math.isfinite(norm) and norm > 0):
                    bad[i] = REASON_ZERO_NORM
                normed.append(v)
            if bad:
                raise InvalidVectorError(bad)
            rows = normed
        parts = []
        for i, r in enumerate(rows):
            if self.kind == "float32":
                a = array("f", r)
                if sys.byteorder != "little":
                    a.byteswap()
                parts.append(a.tobytes())
                continue
            if not max(abs(x) for x in r) > 0:
                bad[i] = "all-zero vector cannot be int8-scaled"
                continue
            scale, codes = _int8_python(r)
            parts.append(struct.pack("<f", scale) + struct.pack(f"<{self.dim}b", *codes))
        if bad:
            raise InvalidVectorError(bad)
        return b"".join(parts)

    def append(self, vectors) -> range:
        """Append a batch (all rows or none); returns the new row numbers."""
        return self.append_prepared(self.prepare_rows(vectors))

    def append_prepared(self, data: bytes) -> range:
        """Append row bytes from :meth:`prepare_rows` (all or none); returns the new row numbers."""
        if len(data) % self.row_bytes:
            raise InvalidInputError(f"{len(data)} bytes are not whole rows of {self.row_bytes}")
        n = len(data) // self.row_bytes
        size = HEADER_BYTES + self._count * self.row_bytes
        with open(self.path, "r+b") as f:
            f.seek(size)
            try:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            except BaseException:
                f.truncate(size)
                raise
        start = self._count
        self._count += n
        return range(start, start + n)

    def compact(self, rows) -> None:
        """Rewrite the file with only ``rows``, in that order (atomic replace).

        A failure leaves the old file as it was.
        """
        rows = self._check_rows(rows)
        folder = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(self.path) + ".",
                                   suffix=".tmp")
        try:
            with open(self.path, "rb") as src, os.fdopen(fd, "wb") as out:
                out.write(src.read(HEADER_BYTES))
                for r in rows:
                    src.seek(HEADER_BYTES + r * self.row_bytes)
                    out.write(src.read(self.row_bytes))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self._count = len(rows)

    # -- reading and scoring ----------------------------------------------------------
    def _check_rows(self, rows):
        rows = [int(r) for r in rows]
        bad = [r for r in rows if not 0 <= r < self._count]
        if bad:
            raise InvalidInputError(f"row(s) {bad[:5]} out of range 0..{self._count - 1}")
        return rows

    def read(self, rows):
        """Stored rows as float32 ``(len(rows), d)`` (int8 rows dequantized: ``fl(c_i * scale)``)."""
        raw = self._raw(self._check_rows(rows))
        if self.use_numpy:
            import numpy as np

            if self.kind == "float32":
                return raw.view("<f4").astype(np.float32)
            scale = raw[:, :4].copy().view("<f4").astype(np.float32)
            return raw[:, 4:].view(np.int8).astype(np.float32) * scale
        return [array("f", v) if self.kind == "float32" else
                array("f", [c * s for c in v]) for v, s in raw]

    def _raw(self, rows):
        """The stored bytes of ``rows`` (plain seeks and reads: works in Pyodide too)."""
        parts = []
        with open(self.path, "rb") as f:
            for r in rows:
                f.seek(HEADER_BYTES + r * self.row_bytes)
                parts.append(f.read(self.row_bytes))
        if self.use_numpy:
            import numpy as np

            return np.frombuffer(b"".join(parts), dtype=np.uint8).reshape(len(rows), self.row_bytes)
        out = []
        for b in parts:
            if self.kind == "float32":
                a = array("f")
                a.frombytes(b)
                if sys.byteorder != "little":
                    a.byteswap()
                out.append((a, None))
            else:
                out.append((struct.unpack(f"<{self.dim}b", b[4:]), struct.unpack("<f", b[:4])[0]))
        return out

    def prepare_query(self, query):
        """The float32 query the scores use (normalized for cosine files)."""
        if self.use_numpy:
            import numpy as np

            q, _ = as_numpy_rows(query, self.dim)
            if len(q) != 1 or not np.isfinite(q).all():
                raise InvalidInputError("the query must be one finite vector")
            if self.metric == "cosine":
                q, norm = _normalize_numpy(q)
                if not (np.isfinite(norm[0]) and norm[0] > 0):
                    raise InvalidVectorError({0: REASON_ZERO_NORM}, what="query")
            return q[0].astype(np.float32)
        q, _ = as_python_rows(query, self.dim)
        if len(q) != 1 or any(v != v or v in (math.inf, -math.inf) for v in q[0]):
            raise InvalidInputError("the query must be one finite vector")
        if self.metric == "cosine":
            v, norm = _normalize_python(q[0])
            if not (math.isfinite(norm) and norm > 0):
                raise InvalidVectorError({0: REASON_ZERO_NORM}, what="query")
            return v
        return q[0]

    def score(self, query, rows):
        """Exact float32 rescoring scores of ``rows`` (module docstring)."""
        q = self.prepare_query(query)
        rows = self._check_rows(rows)
        raw = self._raw(rows)
        if self.use_numpy:
            import numpy as np

            if self.kind == "float32":
                vals = raw.view("<f4").astype(np.float32)
            else:
                vals = raw[:, 4:].view(np.int8).astype(np.float32)
            acc = np.zeros(len(rows), dtype=np.float32)
            for i in range(self.dim):
                acc += q[i] * vals[:, i]
            if self.kind == "int8":
                acc = acc * raw[:, :4].copy().view("<f4").astype(np.float32)[:, 0]
            return acc
        out = array("f", bytes(4 * len(rows)))
        for j, (v, scale) in enumerate(raw):
            prods = array("f", [a * b for a, b in zip(q, v)])
            acc = 0.0
            for p in prods:
                acc = f32(acc + p)
            out[j] = acc if scale is None else f32(acc * scale)
        return out


def _order_key(score_bits: int) -> int:
    return score_bits if score_bits < 0x80000000 else -(score_bits & 0x7FFFFFFF) - 1


class TwoStageIndex(Index):
    """Compact-code index plus exact rescoring of the top candidates.

    Parameters
    ----------
    index : FlatIndex or BinaryIndex
        The stage-1 index (:func:`clark_hash_web.index.make_index` builds both).
    vectors : VectorFile
        Where the full vectors live. If it already holds rows, they must be
        the index's rows in insertion order (``len(vectors) == len(index)``).
    rescore_multiplier : int, default 10
        Stage 1 returns ``k * rescore_multiplier`` candidates unless a
        search asks for another number (``rescore=``).
    """

    def __init__(self, index, vectors: VectorFile, rescore_multiplier: int = 10):
        self.index = index
        self.vectors = vectors
        self.rescore_multiplier = _positive("rescore_multiplier", rescore_multiplier)
        if len(vectors) != len(index):
            raise InvalidInputError(
                f"the vector file holds {len(vectors)} rows, the index {len(index)}: "
                "they must describe the same rows in the same order")
        self._row_of = {i: r for r, i in enumerate(index.ids)}

    @classmethod
    def accepts(cls, codec) -> bool:
        """Any codec that has a stage-1 index."""
        from .factory import index_type_for

        return index_type_for(codec) is not None

    @property
    def codec(self):
        return self.index.codec

    @property
    def config(self):
        return self.index.config

    @property
    def ids(self) -> list:
        return self.index.ids

    def ids_at(self, rows) -> list:
        return self.index.ids_at(rows)

    def __len__(self):
        return len(self.index)

    def __contains__(self, id_):
        return id_ in self.index

    def add(self, vectors, ids=None, errors: str = "raise") -> list:
        """Encode, store the codes and the vectors (both or neither); returns the ids.

        With ``errors="skip"`` rows the codec rejects are left out of both.
        """
        enc = self.codec.encode(vectors, errors=errors)
        if enc.skipped:
            rows, _ = self.codec._rows(vectors)
            vectors = rows[enc.rows] if hasattr(rows, "dtype") else [rows[r] for r in enc.rows]
        return self.add_encoded(enc, ids_of_encoded_rows(ids, enc), vectors=vectors)

    def add_encoded(self, encoded, ids=None, vectors=None) -> list:
        """Store codes and their vectors (row for row; both or neither); returns the ids.

        ``vectors`` is required: stage 2 rescores from them.
        """
        if vectors is None:
            raise InvalidInputError("a two-stage index rescores from vectors: pass vectors= "
                                    "(one per encoded row)")
        if _numpy_ok(None) and self.vectors.use_numpy:
            import numpy as np

            if not isinstance(vectors, (bytes, bytearray, memoryview)):
                vectors = np.asarray(vectors, dtype=np.float32)
        prepared = self.vectors.prepare_rows(vectors)
        if len(prepared) // self.vectors.row_bytes != len(encoded):
            raise InvalidInputError(f"{len(prepared) // self.vectors.row_bytes} vectors for "
                                    f"{len(encoded)} encoded rows")
        new_ids = self.index.add_encoded(encoded, ids)
        try:
            rows = self.vectors.append_prepared(prepared)
        except BaseException:
            self.index.remove(new_ids)
            raise
        for i, r in zip(new_ids, rows):
            self._row_of[i] = r
        return new_ids

    def remove(self, ids) -> int:
        """Remove from the index (the vector file keeps the unused rows until :meth:`save`)."""
        ids = [ids] if isinstance(ids, (int, str)) else list(ids)
        n = self.index.remove(ids)
        for i in ids:
            self._row_of.pop(i, None)
        return n

    def encoded(self, rows=None):
        return self.index.encoded(rows)

    def search(self, query, k: int = 10, rescore=None, rescore_multiplier=None, **index_kw):
        """Top ``k`` ``(ids, scores)`` after rescoring the stage-1 candidates exactly.

        Parameters
        ----------
        query : vector (d,)
        k : int
        rescore : int, optional
            Number of stage-1 candidates to rescore (default ``k * rescore_multiplier``).
        rescore_multiplier : int, optional
            Overrides the index's multiplier for this search.
        **index_kw
            Passed to the stage-1 search (e.g. ``candidates=`` for BinaryIndex).

        Scores are the exact rescoring scores (float32); ranking is descending,
        exact ties by vector-file row (insertion order).
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise InvalidInputError(f"k must be a non-negative int, got {k!r}")
        if rescore is None:
            mult = self.rescore_multiplier if rescore_multiplier is None else \
                _positive("rescore_multiplier", rescore_multiplier)
            n = k * mult
        else:
            n = _positive("rescore", rescore)
        cand_ids, _ = self.index.search(query, max(n, k), **index_kw)
        rows = [self._row_of[i] for i in cand_ids]
        scores = self.vectors.score(query, rows)
        bits = array("I", bytes(memoryview(scores).cast("B")))
        order = sorted(range(len(rows)), key=lambda j: (-_order_key(bits[j]), rows[j]))[:k]
        out_scores = scores[order] if hasattr(scores, "dtype") else \
            array("f", [scores[j] for j in order])
        return [cand_ids[j] for j in order], out_scores

    # -- files ----------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the codes and ids to a sketch file; compact the vector file to match.

        After removals the vector file still holds the removed rows; they are
        dropped here (atomic replace), so :meth:`load` finds row ``i`` of the
        vector file beside row ``i`` of the sketch file.
        """
        rows = [self._row_of[i] for i in self.ids]
        if rows != list(range(len(self.vectors))):
            self.vectors.compact(rows)
            self._row_of = {i: r for r, i in enumerate(self.ids)}
        self.index.save(path)

    @classmethod
    def load(cls, path, backend=None, vectors=None, rescore_multiplier: int = 10):
        """A two-stage index from a sketch file and the vector file saved with it.

        ``vectors``: a :class:`VectorFile` or the path of one (required).
        """
        from .factory import load_index

        if vectors is None:
            raise InvalidInputError("TwoStageIndex.load needs vectors= (the vector file saved "
                                    "with the sketch file)")
        if not isinstance(vectors, VectorFile):
            vectors = VectorFile(vectors, backend=backend)
        return cls(load_index(path, backend=backend), vectors, rescore_multiplier)


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} must be a positive int, got {value!r}")
    return value
