"""Bulk encoding with Apache Spark (``mapInArrow``).

>>> from clark_hash_web import ClarkHash, ClarkHashConfig
>>> from clark_hash_web.integrations import spark as chs
>>> codec = ClarkHash(ClarkHashConfig(input_dim=384))
>>> df = spark.read.parquet("embeddings.parquet")          # column "embedding": array<float>
>>> enc = chs.encode_dataframe(df, codec, "embedding", keep=["doc_id"])
>>> enc.write.parquet("codes.parquet")                      # row, doc_id, code, (norm_code), error
>>> chs.write_sketch_files(df, codec, "/shared/corpus.chs.d", "embedding", id_col="doc_id")

Both functions work for the Clark Hash codec and for any codec with the same
verbs (``config`` with ``to_bytes``/``fingerprint``/``code_bytes``/
``input_dim``, ``encode(vectors, errors="skip")``), e.g. the binary codecs;
the codec is shipped to the Python workers as its config bytes (Clark Hash)
or pickled (others).

Row numbers
-----------
The GLOBAL row number of a row is its position in ``df``: partition by
partition (in partition order), then in the order the partition yields its
rows; this is what ``rdd.zipWithIndex`` numbers. It is found with one cheap
JVM-side count per partition before encoding, so ``df`` must produce the same
partitions in the same order when evaluated twice (true for files read from
storage; after a shuffle, ``cache()``/``localCheckpoint()`` it first). A
partition that yields more rows than were counted, or one that was not
counted, fails the job with :class:`PartitionError` instead of numbering rows
wrongly.

The input partition of every row travels WITH the row, as a
``spark_partition_id()`` column evaluated on ``df`` itself, not as the id of
the task that happens to run the Python code. Row numbers therefore stay right
whatever runs after the encode: ``coalesce`` (one task runs several input
partitions), ``union`` (task ids of the second input are shifted), joins,
``cache``, adaptive query execution, retried or speculative tasks.

Output column (what the sync server ingests)
--------------------------------------------
``encode_dataframe`` returns ``row`` (long), the ``keep`` columns, ``code``
(binary, exactly ``code_bytes`` bytes, the packed code as written by
``codec.encode``), ``norm_code`` (int, u16 norm code; dot metric only) and
``error`` (string, null when the row was encoded; otherwise the reason, and
``code`` is null). Concatenated in ``row`` order, ``code`` equals
``codec.encode(all_rows).codes_bytes()``.

Vectors may be ``array<float>`` or ``array<double>`` (rounded to float32, as
``codec.encode`` does with float64 input); a null vector or one of the wrong
length is reported in ``error``, never silently dropped.
"""

from __future__ import annotations

import json

from ..errors import InvalidInputError
from ._partition import (REASON_NULL, PartitionRowsError, atomic_output_dir, codec_factory,
                         encode_slice, rows_from_lists, write_manifest, write_part)


class PartitionError(RuntimeError):
    """A Spark partition failed while writing sketch files (nothing was written),
    or the input DataFrame changed its partitions between counting and encoding."""


#: Internal column holding ``spark_partition_id()`` of the input DataFrame.
PARTITION_COL = "__clark_hash_input_partition__"


def _pyspark():
    try:
        import pyspark  # noqa: F401
        from pyspark.sql import functions as F
        from pyspark.sql import types as T
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "clark_hash_web.integrations.spark needs pyspark and pyarrow: "
            "pip install 'clark-hash-web[scale-out]'") from exc
    return F, T


def partition_offsets(df) -> dict:
    """Global row number of the first row of every partition of ``df``.

    One aggregation over ``spark_partition_id()`` (no Python, no vector data
    moved). Partitions without rows are absent from the count and get the
    offset of the next one.
    """
    return partition_layout(df)[0]


def partition_layout(df):
    """``(offsets, ends)``: global rows ``offsets[p]`` to ``ends[p] - 1`` are partition ``p``'s."""
    F, _ = _pyspark()
    counts = dict(df.select(F.spark_partition_id().alias("p")).groupBy("p").count().collect())
    offsets, ends, start = {}, {}, 0
    for p in range(df.rdd.getNumPartitions()):
        offsets[p] = start
        start += counts.get(p, 0)
        ends[p] = start
    return offsets, ends


def _with_partition(df, cols):
    """``df`` reduced to ``cols``, preceded by its input partition id (PARTITION_COL)."""
    F, _ = _pyspark()
    if PARTITION_COL in cols:
        raise InvalidInputError(f"column name {PARTITION_COL!r} is reserved by clark_hash_web")
    return df.select(F.spark_partition_id().alias(PARTITION_COL), *cols)


def _runs(batch, offsets, ends, next_row):
    """Split an Arrow batch into runs of one input partition.

    Yields ``(partition, first_row, sub_batch)``; ``next_row`` (partition ->
    next global row, updated) carries the numbering across batches.

    Raises
    ------
    PartitionError
        A partition that was not counted, or one yielding more rows than
        counted (the input is not deterministic).
    """
    import numpy as np

    pids = np.asarray(batch.column(batch.schema.get_field_index(PARTITION_COL)))
    if len(pids) == 0:
        return
    cuts = [0] + (np.flatnonzero(np.diff(pids)) + 1).tolist() + [len(pids)]
    for a, b in zip(cuts[:-1], cuts[1:]):
        p = int(pids[a])
        if p not in offsets:
            raise PartitionError(
                f"input partition {p} was not counted before encoding ({len(offsets)} partitions "
                "were): the DataFrame changed its partitioning; cache() or localCheckpoint() it first")
        row = next_row.get(p, offsets[p])
        if row + (b - a) > ends[p]:
            raise PartitionError(
                f"input partition {p} yields more than the {ends[p] - offsets[p]} rows counted "
                "before encoding: the DataFrame is not deterministic (e.g. a shuffle or a random "
                "sample); cache() or localCheckpoint() it first")
        next_row[p] = row + (b - a)
        yield p, row, batch.slice(a, b - a)


def _check_column(df, vector_col):
    _, T = _pyspark()
    if vector_col not in df.columns:
        raise InvalidInputError(f"DataFrame has no column {vector_col!r} (columns: {df.columns})")
    dt = df.schema[vector_col].dataType
    if not (isinstance(dt, T.ArrayType) and isinstance(dt.elementType, (T.FloatType, T.DoubleType))):
        raise InvalidInputError(
            f"column {vector_col!r} must be array<float> or array<double>, got {dt.simpleString()}")


def _batch_rows(batch, vector_col, dim):
    """(n, dim) float32 rows of one Arrow record batch, and bad local rows."""
    import numpy as np

    arr = batch.column(batch.schema.get_field_index(vector_col))
    n = len(arr)
    if n == 0:
        return np.zeros((0, dim), dtype=np.float32), {}
    offsets = np.asarray(arr.offsets)
    rows, bad = rows_from_lists(arr.values, offsets, dim)
    if arr.null_count:
        nulls = np.flatnonzero(np.asarray(arr.is_null()))
        for i in nulls.tolist():
            bad[i] = "vector " + REASON_NULL
    return rows, bad


def _codes_column(codes: bytes, good, n, cb):
    """Arrow binary array: row i holds its code, or null when not encoded."""
    import numpy as np
    import pyarrow as pa

    mask = np.zeros(n, dtype=bool)
    mask[good] = True
    lengths = np.where(mask, cb, 0).astype(np.int32)
    offs = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offs[1:])
    validity = pa.array(mask).buffers()[1] if not mask.all() else None
    return pa.Array.from_buffers(pa.binary(), n, [validity, pa.py_buffer(offs.tobytes()),
                                                  pa.py_buffer(codes)],
                                 null_count=int(n - mask.sum()))


def encode_dataframe(df, codec, vector_col: str = "embedding", keep=(), row_col: str = "row",
                     code_col: str = "code", norm_col: str = "norm_code", error_col: str = "error"):
    """Lazily encode an embedding column into a binary code column.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
    codec : ClarkHash (or a codec with the same verbs)
    vector_col : str
        ``array<float>`` / ``array<double>`` column of ``input_dim`` entries.
    keep : sequence of str
        Columns copied to the output (e.g. document ids).
    row_col, code_col, norm_col, error_col : str
        Output column names (see the module docstring).

    Returns
    -------
    pyspark.sql.DataFrame
        One row per input row, same partitioning and order. Rows that could
        not be encoded have a null code and the reason in ``error_col``; use
        :func:`check_errors` to raise for them.
    """
    F, T = _pyspark()
    import numpy as np
    import pyarrow as pa

    _check_column(df, vector_col)
    keep = list(keep)
    for c in keep:
        if c not in df.columns:
            raise InvalidInputError(f"DataFrame has no column {c!r} to keep")
    cfg = codec.config
    dot = getattr(cfg, "metric", "cosine") == "dot"
    dim, cb = cfg.input_dim, cfg.code_bytes
    src = _with_partition(df, [vector_col] + [c for c in keep if c != vector_col])
    offsets, ends = partition_layout(df)
    make = codec_factory(codec)
    fields = [T.StructField(row_col, T.LongType(), False)]
    fields += [df.schema[c] for c in keep]
    fields.append(T.StructField(code_col, T.BinaryType(), True))
    if dot:
        fields.append(T.StructField(norm_col, T.IntegerType(), True))
    fields.append(T.StructField(error_col, T.StringType(), True))
    schema = T.StructType(fields)

    def encode_batches(batches):
        # Row numbers come from the partition column, never from TaskContext:
        # after coalesce or union the task id is not the input partition's.
        local_codec = make()
        next_row = {}
        for whole in batches:
            for _p, row, batch in _runs(whole, offsets, ends, next_row):
                yield encoded_batch(local_codec, batch, row)

    def encoded_batch(local_codec, batch, row):
        n = batch.num_rows
        rows, pre_bad = _batch_rows(batch, vector_col, dim)
        codes, ncodes, good, bad = encode_slice(local_codec, rows, row, pre_bad)
        cols = [pa.array(np.arange(row, row + n, dtype=np.int64))]
        cols += [batch.column(batch.schema.get_field_index(c)) for c in keep]
        cols.append(_codes_column(codes, good, n, cb))
        if dot:
            full = np.zeros(n, dtype=np.int32)
            full[good] = np.frombuffer(ncodes, dtype="<u2")
            valid = np.zeros(n, dtype=bool)
            valid[good] = True
            cols.append(pa.array(full, mask=~valid))
        errs = [None] * n
        for g, why in bad.items():
            errs[g - row] = why
        cols.append(pa.array(errs, type=pa.string()))
        return pa.RecordBatch.from_arrays(cols, names=schema.fieldNames())

    return src.mapInArrow(encode_batches, schema)


def check_errors(encoded_df, row_col: str = "row", error_col: str = "error", limit: int = 1000):
    """Raise InvalidVectorError listing (up to ``limit``) failed global rows."""
    F, _ = _pyspark()
    bad = (encoded_df.where(F.col(error_col).isNotNull()).select(row_col, error_col)
           .orderBy(row_col).limit(limit).collect())
    if bad:
        raise PartitionRowsError({r[0]: r[1] for r in bad})


def write_sketch_files(df, codec, path, vector_col: str = "embedding", id_col=None,
                       overwrite: bool = False) -> dict:
    """Encode ``df`` into a folder of sketch files, one per partition.

    Every task encodes its partition and writes ``part-PPPPP.chs`` into a
    temporary sibling folder (temp file, then rename; a retried task rewrites
    the same file). The driver renames the folder to ``path`` only when every
    partition succeeded and no row was bad; otherwise the temporary folder is
    removed and ``path`` is untouched. ``path`` must be on a file system that
    the driver and the executors share (always so in local mode).

    Parameters
    ----------
    df : pyspark.sql.DataFrame
    codec : ClarkHash (or a codec with the same verbs)
    path : str
    vector_col : str
    id_col : str, optional
        Integer (long/int) or string column used as the sketch ids; default:
        the global row numbers.
    overwrite : bool

    Returns
    -------
    dict
        The manifest (see :mod:`clark_hash_web.integrations._partition`).

    Raises
    ------
    PartitionRowsError
        Every bad row (NaN/inf, zero, null, wrong dimension) by global row
        number; nothing is written.
    PartitionError
        A task failed otherwise (its error message is included); every task
        is allowed to finish first, then the temporary folder is removed and
        nothing is written.
    """
    F, T = _pyspark()
    import pyarrow as pa

    _check_column(df, vector_col)
    if id_col is not None:
        if id_col not in df.columns:
            raise InvalidInputError(f"DataFrame has no id column {id_col!r}")
        if not isinstance(df.schema[id_col].dataType,
                          (T.LongType, T.IntegerType, T.ShortType, T.StringType)):
            raise InvalidInputError(f"id column {id_col!r} must hold integers or strings")
        dup = df.groupBy(id_col).count().where("count > 1").limit(5).collect()
        nulls = df.where(F.col(id_col).isNull()).limit(1).count()
        if dup or nulls:
            from ..errors import DuplicateIdError

            raise DuplicateIdError(
                f"id column {id_col!r} " + (f"repeats ids {[r[0] for r in dup]}" if dup else "holds nulls"))
    cfg = codec.config
    dim = cfg.input_dim
    cols = [vector_col] + ([id_col] if id_col and id_col != vector_col else [])
    src = _with_partition(df, cols)
    offsets, ends = partition_layout(df)
    make = codec_factory(codec)
    schema = T.StructType([T.StructField("result", T.StringType(), False)])

    with atomic_output_dir(path, overwrite=overwrite) as tmp:
        def write_partition(batches):
            # Errors are returned, not raised: the job then ends only when
            # every task has finished, so none writes after the cleanup.
            from pyspark import TaskContext

            seen = []  # input partitions met by this task, for the error message
            try:
                outs = write_parts(batches, seen)
            except Exception as exc:  # noqa: BLE001 - re-raised by the driver
                where = seen[-1] if seen else TaskContext.get().partitionId()
                outs = [{"error": f"{type(exc).__name__}: {exc}", "partition": where}]
            yield pa.RecordBatch.from_arrays([pa.array([json.dumps(o) for o in outs])],
                                             names=["result"])

        def write_parts(batches, seen):
            # One part file per INPUT partition (the partition column), so the
            # part number and first row never depend on the task id.
            local_codec = make()
            acc, next_row = {}, {}
            for whole in batches:
                for p, row, batch in _runs(whole, offsets, ends, next_row):
                    if p not in acc:
                        seen.append(p)
                        acc[p] = ([], [], [], {})
                    codes, ncodes, ids, bad = acc[p]
                    rows, pre_bad = _batch_rows(batch, vector_col, dim)
                    c, nc, good, b = encode_slice(local_codec, rows, row, pre_bad)
                    bad.update(b)
                    codes.append(c)
                    if nc is not None:
                        ncodes.append(nc)
                    if id_col is None:
                        ids.extend(row + g for g in good)
                    else:
                        col = batch.column(batch.schema.get_field_index(id_col)).to_pylist()
                        ids.extend(col[g] for g in good)
            outs = []
            for p, (codes, ncodes, ids, bad) in acc.items():
                if bad:
                    outs.append({"bad": {str(k): v for k, v in bad.items()}})
                else:
                    outs.append({"part": write_part(tmp, p, local_codec.config, b"".join(codes),
                                                    b"".join(ncodes) if ncodes else None, ids,
                                                    offsets[p])})
            return outs or [{"empty": True}]

        results = [json.loads(r[0]) for r in src.mapInArrow(write_partition, schema).collect()]
        failed = [r for r in results if "error" in r]
        if failed:
            raise PartitionError(
                f"{len(failed)} partition(s) failed, nothing was written; partition "
                f"{failed[0]['partition']}: {failed[0]['error']}")
        bad = {}
        for r in results:
            bad.update({int(k): v for k, v in r.get("bad", {}).items()})
        if bad:
            raise PartitionRowsError(bad)
        return write_manifest(tmp, cfg.fingerprint, [r["part"] for r in results if "part" in r])
