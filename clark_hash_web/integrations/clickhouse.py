"""Compact-code search inside ClickHouse (in-process ``chdb`` or a server).

The random-projection approach of the ClickHouse write-up (seeds/003),
on our codes:

* a MergeTree table keeps, per row, an id, the sign/hyperplane bit code
  (``bits``: ``UInt128`` for 128 bits, ``UInt256`` for 256, else
  ``FixedString(B)``), optionally the Clark Hash code (``code``,
  ``FixedString(code_bytes)``, plus ``norm_code UInt16`` in dot mode) and
  optionally the float vector (``vector Array(Float32)``);
* the table is ``ORDER BY (bits, id)``: rows whose codes share their leading
  bits sit in the same granules, so a ``PREWHERE`` Hamming condition reads
  the small ``bits`` column first and loads the large ``vector``/``code``
  columns only for the granules that pass;
* queries: Hamming order (``bitHammingDistance``), Hamming prefilter by
  threshold or top-N, exact rescoring with ``cosineDistance`` on the stored
  vectors, and asymmetric rescoring from the compact codes when no floats are
  stored.

Every statement is in :data:`SQL` (parameterized with ClickHouse query
parameters ``{name:Type}``, so the text is the same for ``chdb`` and for a
server's HTTP interface, where parameters are sent as ``param_<name>``). Only
the code column's type and the fixed sizes of a table (bit count, code
length, bits per level) are written into the text, from validated integers.

Bit layouts (what the SQL assumes)
----------------------------------
* ``bits``: the codec's packed bytes, as stored in sketch files.
  ``UInt128``/``UInt256`` hold them through ``reinterpretAsUInt128/256``
  (byte 0 = least significant byte). The binary codecs of
  :mod:`clark_hash_web.codecs.bitpack` put bit ``j`` at bit ``j % 8`` of byte
  ``j // 8`` (least significant first, ``numpy.packbits(bitorder="little")``);
  Hamming distances do not depend on it, the asymmetric bit score
  (:data:`SQL` ``top_bits``) does.
* ``code``: Clark Hash levels, coordinate ``k`` in bits ``[k*b, k*b+b)`` of a
  little-endian bit stream (least significant bit first; NUMERICS.md).

Ranking and ties
----------------
Hamming rankings are ``ORDER BY distance ASC, id ASC``: integer distances,
exact ties broken by the smaller id. With ids = insertion row numbers that
is the in-process rule (stable sort, insertion order). Float rescoring
(``cosineDistance``, the asymmetric scores) is computed by ClickHouse in its
own summation order: the values agree with ``codec.score`` to ~1e-6, not
bit for bit, so rankings agree except between scores closer than that; ties
again go to the smaller id.

>>> from clark_hash_web.integrations.clickhouse import ChdbClient, CodeTable
>>> table = CodeTable(ChdbClient(), "docs", n_bits=128, dim=384)
>>> table.create()
>>> table.insert(ids, bits=lsh.encode(X).codes_bytes(), vectors=X)
>>> table.prefilter_exact(lsh_query_code, q, k=10, candidates=500)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import urllib.parse
import urllib.request

from ..errors import InvalidInputError

# ---------------------------------------------------------------------------
# All SQL. Placeholders in <ANGLE> brackets are filled from validated ints /
# fixed fragments by CodeTable; {name:Type} are ClickHouse query parameters.
# ---------------------------------------------------------------------------
SQL = {
    "create": (
        "CREATE TABLE IF NOT EXISTS {table:Identifier} (\n"
        "  id Int64,\n"
        "  bits <BITS_TYPE><EXTRA_COLUMNS>\n"
        ") ENGINE = MergeTree\n"
        "ORDER BY (bits, id)\n"
        "SETTINGS index_granularity = <GRANULARITY>"),
    "drop": "DROP TABLE IF EXISTS {table:Identifier}",
    "count": "SELECT count() FROM {table:Identifier}",
    "column_sizes": (
        "SELECT name, sum(data_compressed_bytes), sum(data_uncompressed_bytes)\n"
        "FROM system.columns WHERE database = currentDatabase() AND table = {table_name:String}\n"
        "GROUP BY name ORDER BY name"),
    # rows come from a Parquet file (chdb) or the request body (server: FORMAT Parquet)
    "insert": ("INSERT INTO {table:Identifier} (<COLUMNS>)\n"
               "SELECT <SELECT_COLUMNS> FROM <SOURCE>"),
    # 1. brute force: exact cosine over every stored vector
    "exact": (
        "SELECT id, cosineDistance(vector, {q:Array(Float32)}) AS dist\n"
        "FROM {table:Identifier}\n"
        "ORDER BY dist ASC, id ASC LIMIT {k:UInt32}"),
    # 2. Hamming order only
    "hamming_top": (
        "SELECT id, bitHammingDistance(bits, <QBITS>) AS hd\n"
        "FROM {table:Identifier}\n"
        "ORDER BY hd ASC, id ASC LIMIT {k:UInt32}"),
    # 3. Hamming threshold
    "hamming_within": (
        "SELECT id, bitHammingDistance(bits, <QBITS>) AS hd\n"
        "FROM {table:Identifier}\n"
        "PREWHERE hd <= {max_distance:UInt32}\n"
        "ORDER BY hd ASC, id ASC"),
    # 4. prefilter (threshold) + exact cosine rescoring
    "within_exact": (
        "SELECT id, cosineDistance(vector, {q:Array(Float32)}) AS dist\n"
        "FROM {table:Identifier}\n"
        "PREWHERE bitHammingDistance(bits, <QBITS>) <= {max_distance:UInt32}\n"
        "ORDER BY dist ASC, id ASC LIMIT {k:UInt32}"),
    # 5. prefilter (top-N by Hamming) + exact cosine rescoring
    "top_exact": (
        "SELECT id, cosineDistance(vector, {q:Array(Float32)}) AS dist\n"
        "FROM {table:Identifier}\n"
        "PREWHERE id IN (SELECT id FROM {table:Identifier}\n"
        "                ORDER BY bitHammingDistance(bits, <QBITS>) ASC, id ASC\n"
        "                LIMIT {candidates:UInt32})\n"
        "ORDER BY dist ASC, id ASC LIMIT {k:UInt32}"),
    # 6. prefilter (top-N) + asymmetric rescoring from the Clark Hash code:
    #    score = (sum_k q_k * deq(level_k)) / m, deq(l) = l / L * 2c - c
    "top_clark": (
        "SELECT id, <CLARK_SCORE> AS score\n"
        "FROM {table:Identifier}\n"
        "PREWHERE id IN (SELECT id FROM {table:Identifier}\n"
        "                ORDER BY bitHammingDistance(bits, <QBITS>) ASC, id ASC\n"
        "                LIMIT {candidates:UInt32})\n"
        "ORDER BY score DESC, id ASC LIMIT {k:UInt32}"),
    # 7. prefilter (top-N) + asymmetric rescoring from the bits themselves:
    #    score = sum_j (bit_j ? q_j : -q_j)
    "top_bits": (
        "SELECT id, <BITS_SCORE> AS score\n"
        "FROM {table:Identifier}\n"
        "PREWHERE id IN (SELECT id FROM {table:Identifier}\n"
        "                ORDER BY bitHammingDistance(bits, <QBITS>) ASC, id ASC\n"
        "                LIMIT {candidates:UInt32})\n"
        "ORDER BY score DESC, id ASC LIMIT {k:UInt32}"),
    # 8. asymmetric Clark Hash scores of every row (no prefilter)
    "all_clark": (
        "SELECT id, <CLARK_SCORE> AS score\n"
        "FROM {table:Identifier}\n"
        "ORDER BY score DESC, id ASC LIMIT {k:UInt32}"),
}

# level k of a Clark Hash code (b bits, LSB-first stream): two bytes from byte
# (k*b)//8, shifted right by (k*b)%8, masked with L. One past the end reads as 0.
_CLARK_LEVEL = ("bitAnd(bitShiftRight(reinterpretAsUInt16(substring(code, intDiv(k * <B>, 8) + 1, 2)),"
                " (k * <B>) % 8), <L>)")
_CLARK_SCORE = ("arraySum(arrayMap((qk, k) -> toFloat64(qk) * ((toFloat64(" + _CLARK_LEVEL + ") / <L>)"
                " * (2 * toFloat64({clip:Float32})) - toFloat64({clip:Float32})),"
                " {q_sketch:Array(Float32)}, range(<M>))) / <M>")
# bit j of the packed bits: bit j % 8 of byte j // 8 (least significant first)
_BITS_SCORE = ("arraySum(arrayMap((qj, j) -> if(bitAnd(reinterpretAsUInt8(substring(<BITS_STR>,"
               " intDiv(j, 8) + 1, 1)), bitShiftLeft(1, j % 8)) != 0, toFloat64(qj), -toFloat64(qj)),"
               " {q_proj:Array(Float32)}, range(<NBITS>)))")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def bits_type(n_bits: int) -> str:
    """ClickHouse type of a code of ``n_bits`` bits (UInt128/UInt256/FixedString)."""
    if n_bits == 128:
        return "UInt128"
    if n_bits == 256:
        return "UInt256"
    return f"FixedString({(n_bits + 7) // 8})"


def _f32_list(values) -> str:
    """A float array as a ClickHouse literal for an Array(Float32) parameter."""
    import numpy as np

    a = np.asarray(values, dtype=np.float32).ravel()
    return "[" + ",".join(repr(float(v)) for v in a) + "]"


# ---------------------------------------------------------------------------
# clients: anything with query(sql, params) -> list of rows and
# insert_parquet(sql_template, parquet_path, params)
# ---------------------------------------------------------------------------
class ChdbClient:
    """In-process ClickHouse (``chdb``) with a private on-disk database.

    Parameters
    ----------
    path : str, optional
        Database folder (default: a new temporary folder, removed by ``close``).
    """

    def __init__(self, path=None):
        try:
            from chdb import session
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("ChdbClient needs chdb: pip install 'clark-hash-web[scale-out]'") from exc
        self._own = path is None
        self.path = path or tempfile.mkdtemp(prefix="clark-hash-chdb-")
        self._session = session.Session(os.path.join(self.path, "db"))

    def query(self, sql: str, params=None) -> list:
        res = self._session.query(sql + "\nFORMAT JSONCompact", "JSONCompact", params=params or {})
        text = res.bytes().decode() if hasattr(res, "bytes") else str(res)
        return json.loads(text)["data"] if text.strip() else []

    def command(self, sql: str, params=None) -> None:
        self._session.query(sql, "CSV", params=params or {})

    def insert_parquet(self, sql: str, parquet_path: str, params=None) -> None:
        """Run an ``insert`` statement whose <SOURCE> reads the Parquet file."""
        params = dict(params or {})
        params["source_path"] = os.path.abspath(parquet_path)
        self.command(sql.replace("<SOURCE>", "file({source_path:String}, 'Parquet')"), params)

    def close(self):
        try:
            self._session.close()
        finally:
            if self._own:
                shutil.rmtree(self.path, ignore_errors=True)


class HttpClient:
    """A ClickHouse server's HTTP interface (same SQL, parameters as ``param_*``).

    Parameters
    ----------
    url : str
        e.g. ``http://localhost:8123``; ``user``/``password`` as headers.
    """

    def __init__(self, url: str, user: str = "default", password: str = "", timeout: float = 60.0):
        self.url = url.rstrip("/") + "/"
        self.headers = {"X-ClickHouse-User": user, "X-ClickHouse-Key": password}
        self.timeout = timeout

    def _post(self, sql, params, body=None):
        qs = {f"param_{k}": v for k, v in (params or {}).items()}
        if body is not None:
            qs["query"] = sql
            data = body
        else:
            data = sql.encode()
        req = urllib.request.Request(self.url + "?" + urllib.parse.urlencode(qs), data=data,
                                     headers=self.headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as r:  # noqa: S310 - user's server
            return r.read()

    def query(self, sql: str, params=None) -> list:
        text = self._post(sql + "\nFORMAT JSONCompact", params).decode()
        return json.loads(text)["data"] if text.strip() else []

    def command(self, sql: str, params=None) -> None:
        self._post(sql, params)

    def insert_parquet(self, sql: str, parquet_path: str, params=None) -> None:
        """The <SOURCE> is the request body: ``input(...)`` with ``FORMAT Parquet``."""
        raise NotImplementedError(
            "HttpClient.insert_parquet: use CodeTable.insert, which passes the structure")

    def insert_parquet_structure(self, sql: str, parquet_path: str, structure: str, params=None):
        src = f"input('{structure}') FORMAT Parquet"
        with open(parquet_path, "rb") as f:
            self._post(sql.replace("<SOURCE>", src), params, body=f.read())

    def close(self):
        pass


# ---------------------------------------------------------------------------
class CodeTable:
    """One MergeTree table of compact codes (and optionally vectors).

    Parameters
    ----------
    client : ChdbClient or HttpClient
    name : str
        Table name (letters, digits, underscore).
    n_bits : int
        Bits of the prefilter code (hyperplane LSH / sign bits / ITQ).
    dim : int, optional
        Vector dimension; given => a ``vector Array(Float32)`` column.
    clark_config : ClarkHashConfig, optional
        Given => a ``code FixedString(code_bytes)`` column (and
        ``norm_code UInt16`` in dot mode) for asymmetric rescoring.
    granularity : int
        ``index_granularity`` (rows per granule; ClickHouse's default 8192).
    """

    def __init__(self, client, name: str, n_bits: int, dim=None, clark_config=None,
                 granularity: int = 8192):
        if not _IDENT.match(name or ""):
            raise InvalidInputError(f"table name {name!r} must be letters, digits and underscores")
        for what, v in (("n_bits", n_bits), ("granularity", granularity)) + (
                (("dim", dim),) if dim is not None else ()):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise InvalidInputError(f"{what} must be a positive int, got {v!r}")
        self.client, self.name, self.n_bits = client, name, n_bits
        self.dim, self.clark_config, self.granularity = dim, clark_config, granularity
        self.bits_type = bits_type(n_bits)
        self.code_bytes = (n_bits + 7) // 8

    # -- SQL text ------------------------------------------------------------
    def _columns(self):
        cols = [("id", "Int64", "id"), ("bits", self.bits_type, self._bits_from_bytes("bits"))]
        if self.clark_config is not None:
            cols.append(("code", f"FixedString({self.clark_config.code_bytes})", "code"))
            if self.clark_config.metric == "dot":
                cols.append(("norm_code", "UInt16", "norm_code"))
        if self.dim is not None:
            cols.append(("vector", "Array(Float32)", "vector"))
        return cols

    def _bits_from_bytes(self, expr):
        if self.bits_type.startswith("UInt"):
            return f"reinterpretAs{self.bits_type}({expr})"
        return f"toFixedString({expr}, {self.code_bytes})"

    def _bits_string(self):
        """The bits column as its packed bytes (a string of code_bytes bytes)."""
        if self.bits_type.startswith("UInt"):
            return "reinterpretAsFixedString(bits)"
        return "bits"

    def sql(self, name: str) -> str:
        """The text of statement ``name`` of :data:`SQL` for this table."""
        text = SQL[name]
        cols = self._columns()
        subs = {
            "<BITS_TYPE>": self.bits_type,
            "<EXTRA_COLUMNS>": "".join(f",\n  {c} {t}" for c, t, _ in cols[2:]),
            "<GRANULARITY>": str(self.granularity),
            "<COLUMNS>": ", ".join(c for c, _, _ in cols),
            "<SELECT_COLUMNS>": ", ".join(e for _, _, e in cols),
            "<QBITS>": self._bits_from_bytes("unhex({q_bits:String})"),
            "<BITS_SCORE>": _BITS_SCORE.replace("<BITS_STR>", self._bits_string()),
        }
        if self.clark_config is not None:
            cfg = self.clark_config
            subs["<CLARK_SCORE>"] = (_CLARK_SCORE.replace("<B>", str(cfg.bits))
                                     .replace("<L>", str((1 << cfg.bits) - 1))
                                     .replace("<M>", str(cfg.sketch_dim)))
        subs["<NBITS>"] = str(self.n_bits)
        for _ in range(2):  # fragments may hold placeholders themselves
            for k, v in subs.items():
                text = text.replace(k, v)
        missing = set(re.findall(r"<[A-Z_]+>", text)) - {"<SOURCE>"}
        if missing:
            raise InvalidInputError(
                f"statement {name!r} needs {sorted(missing)}: this table lacks those columns")
        return text

    def _params(self, **kw):
        p = {"table": self.name}
        p.update(kw)
        return p

    # -- schema and data ---------------------------------------------------
    def create(self, replace: bool = False):
        """Create the table (``replace`` drops an existing one first)."""
        if replace:
            self.client.command(self.sql("drop"), self._params())
        self.client.command(self.sql("create"), self._params())

    def drop(self):
        self.client.command(self.sql("drop"), self._params())

    def __len__(self):
        return int(self.client.query(self.sql("count"), self._params())[0][0])

    def column_sizes(self) -> dict:
        """{column: (compressed bytes, uncompressed bytes)} on disk."""
        rows = self.client.query(self.sql("column_sizes"), self._params(table_name=self.name))
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}

    def insert(self, ids, bits, vectors=None, clark=None):
        """Insert rows: ``bits`` (N * code_bytes packed bytes, or (N, B) uint8).

        Parameters
        ----------
        ids : sequence of int
        bits : bytes-like or uint8 array
            The prefilter codes exactly as the codec wrote them.
        vectors : float array (N, dim), required when the table has vectors
        clark : EncodedBatch, required when the table has Clark Hash codes
        """
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        ids = np.asarray(list(ids) if not hasattr(ids, "dtype") else ids, dtype=np.int64)
        n = len(ids)
        raw = np.frombuffer(bytes(memoryview(np.ascontiguousarray(bits)).cast("B")), dtype=np.uint8)
        if raw.size != n * self.code_bytes:
            raise InvalidInputError(
                f"bits hold {raw.size} bytes, expected {n} rows x {self.code_bytes} bytes")
        cols = {"id": pa.array(ids), "bits": _binary_column(raw, self.code_bytes)}
        if self.clark_config is not None:
            if clark is None or len(clark) != n:
                raise InvalidInputError("this table stores Clark Hash codes: pass clark= (N rows)")
            if clark.fingerprint != self.clark_config.fingerprint:
                from ..errors import ConfigMismatchError

                raise ConfigMismatchError(
                    f"codes of config {clark.fingerprint}, table holds {self.clark_config.fingerprint}")
            cols["code"] = _binary_column(np.frombuffer(clark.codes_bytes(), dtype=np.uint8),
                                          self.clark_config.code_bytes)
            if self.clark_config.metric == "dot":
                cols["norm_code"] = pa.array(np.frombuffer(clark.norm_codes_bytes(), "<u2")
                                             .astype(np.uint16))
        if self.dim is not None:
            if vectors is None:
                raise InvalidInputError("this table stores vectors: pass vectors=")
            v = np.asarray(vectors, dtype=np.float32)
            if v.shape != (n, self.dim):
                raise InvalidInputError(f"vectors have shape {v.shape}, expected ({n}, {self.dim})")
            cols["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), self.dim).cast(
                pa.list_(pa.float32()))
        folder = tempfile.mkdtemp(prefix="clark-hash-insert-")
        try:
            path = os.path.join(folder, "rows.parquet")
            pq.write_table(pa.table(cols), path)
            if isinstance(self.client, HttpClient):
                source_types = {"id": "Int64", "bits": "String", "code": "String",
                                "norm_code": "UInt16", "vector": "Array(Float32)"}
                structure = ", ".join(f"{c} {source_types[c]}" for c, _, _ in self._columns())
                self.client.insert_parquet_structure(self.sql("insert"), path, structure, self._params())
            else:
                self.client.insert_parquet(self.sql("insert"), path, self._params())
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    # -- queries --------------------------------------------------------------
    def _run(self, name, **params):
        return [(int(r[0]), r[1]) for r in self.client.query(self.sql(name), self._params(**params))]

    def exact(self, query_vector, k: int = 10):
        """Brute force: [(id, cosine distance)] ascending, ties by id."""
        return self._run("exact", q=_f32_list(query_vector), k=int(k))

    def hamming_top(self, query_bits: bytes, k: int = 10):
        """[(id, Hamming distance)] ascending, ties by id."""
        return self._run("hamming_top", q_bits=bytes(query_bits).hex(), k=int(k))

    def hamming_within(self, query_bits: bytes, max_distance: int):
        """Every row within ``max_distance`` bits: [(id, distance)], ties by id."""
        return self._run("hamming_within", q_bits=bytes(query_bits).hex(),
                         max_distance=int(max_distance))

    def prefilter_exact(self, query_bits: bytes, query_vector, k: int = 10,
                        candidates=None, max_distance=None):
        """Hamming prefilter (top ``candidates`` or ``<= max_distance``), then cosine.

        Returns [(id, cosine distance)] ascending, ties by id.
        """
        if (candidates is None) == (max_distance is None):
            raise InvalidInputError("give exactly one of candidates= and max_distance=")
        if candidates is not None:
            return self._run("top_exact", q_bits=bytes(query_bits).hex(), q=_f32_list(query_vector),
                             k=int(k), candidates=int(candidates))
        return self._run("within_exact", q_bits=bytes(query_bits).hex(), q=_f32_list(query_vector),
                         k=int(k), max_distance=int(max_distance))

    def prefilter_clark(self, query_bits: bytes, query_sketch, k: int = 10, candidates: int = 100):
        """Hamming top-``candidates``, rescored from the Clark Hash codes.

        ``query_sketch`` is ``codec.sketch_query(x)`` (its float32 values);
        scores are the codec's cosine estimates (float64 sums in ClickHouse),
        descending, ties by id.
        """
        return self._run("top_clark", q_bits=bytes(query_bits).hex(),
                         q_sketch=_f32_list(query_sketch.values),
                         clip=float(self.clark_config.clip), k=int(k), candidates=int(candidates))

    def all_clark(self, query_sketch, k: int = 10):
        """Asymmetric Clark Hash scores of every row, top ``k`` (no prefilter)."""
        return self._run("all_clark", q_sketch=_f32_list(query_sketch.values),
                         clip=float(self.clark_config.clip), k=int(k))

    def prefilter_bits(self, query_bits: bytes, query_projection, k: int = 10,
                       candidates: int = 100):
        """Hamming top-``candidates``, rescored asymmetrically from the bits.

        ``query_projection``: the float query projection of the bit codec
        (one value per bit); score ``sum_j (bit_j ? q_j : -q_j)``.
        """
        return self._run("top_bits", q_bits=bytes(query_bits).hex(),
                         q_proj=_f32_list(query_projection), k=int(k), candidates=int(candidates))


def _binary_column(raw, width):
    import pyarrow as pa

    n = raw.size // width
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(raw.tobytes())]
                                                ).cast(pa.binary())
