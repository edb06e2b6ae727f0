"""Scale-out integrations: Spark, Dask and ClickHouse.

Each module imports its engine lazily, so ``import clark_hash_web`` never
needs pyspark, dask or chdb. Install them with the ``scale-out`` extra::

    pip install 'clark-hash-web[scale-out]'

Modules
-------
spark
    :func:`~clark_hash_web.integrations.spark.encode_dataframe` (a DataFrame
    with a binary code column, via ``mapInArrow``) and
    :func:`~clark_hash_web.integrations.spark.write_sketch_files` (one sketch
    file per partition, committed atomically).
dask_arrays
    :func:`~clark_hash_web.integrations.dask_arrays.encode_array` (``map_blocks``)
    and :func:`~clark_hash_web.integrations.dask_arrays.write_sketch_files`.
clickhouse
    Tables of compact codes ordered so that granules group similar codes,
    Hamming prefilter, exact and asymmetric rescoring, with every SQL
    statement in one parameterized place (runs in ``chdb`` or on a server).

All of them encode with the ordinary codec (``ClarkHash`` or any codec with
the same verbs), so the bytes are exactly those of a single-process
``codec.encode`` of the same rows, whatever the partitioning.

``README.md`` in this folder tabulates what the Spark and Dask modules
guarantee (bytes, row numbers, atomic writes), under which plans, and what
they refuse.
"""

from ._partition import PartitionRowsError, load_parts, read_manifest

__all__ = ["PartitionRowsError", "load_parts", "read_manifest"]
