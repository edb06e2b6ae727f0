"""Bulk encoding throughput: single process vs Dask and Spark with 1 and 2 local workers.

Encodes the same float32 rows (synthetic Gaussian, d=384, default Clark Hash
config) with

* ``single``: one ``codec.encode`` call per 65,536-row batch in this process;
* ``dask-N``: ``encode_array`` on a ``distributed.LocalCluster`` of N worker
  processes (1 thread each); the workers read their blocks from a ``.npy``
  file (memory-mapped) themselves;
* ``spark-N``: ``encode_dataframe`` in ``local[N]`` mode, input a Parquet file
  (``array<float>`` column), output discarded with the ``noop`` writer;
* ``spark-N-files``: ``write_sketch_files`` (sketch files per partition).

and reports vectors/s and the overhead against ``single`` (time ratio). The
engines' start-up (JVM, cluster) is measured separately and excluded; every
engine run is preceded by one warm-up run on the same data.

Usage::

    .venv/bin/python benchmarks/scale_out.py [--rows 200000] [--workers 1 2]
        [--engines single dask spark] [--out benchmarks/results/scale_out.json]

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import shutil
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clark_hash_web import ClarkHash, ClarkHashConfig  # noqa: E402


def timed(fn, repeat=1):
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return best


def bench_single(X, codec):
    def go():
        for i in range(0, len(X), 65536):
            codec.encode(X[i:i + 65536])
    go()
    return {"engine": "single", "workers": 1, "seconds": timed(go, 2)}


def _read_rows(path, start, stop):
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def npy_blocks(path, n, chunk):
    """A dask array whose blocks the workers read from the .npy file themselves."""
    import dask
    import dask.array as da

    blocks = [da.from_delayed(dask.delayed(_read_rows)(path, i, min(i + chunk, n)),
                              shape=(min(i + chunk, n) - i, 384), dtype=np.float32)
              for i in range(0, n, chunk)]
    return da.concatenate(blocks, axis=0)


def bench_dask(npy, n, codec, workers, chunk):
    import dask.array as da
    import distributed

    from clark_hash_web.integrations.dask_arrays import encode_array

    out = []
    for w in workers:
        t0 = time.perf_counter()
        with distributed.LocalCluster(n_workers=w, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address=None) as cluster, distributed.Client(cluster):
            startup = time.perf_counter() - t0
            x = npy_blocks(npy, n, chunk)

            def go():
                encode_array(x, codec).codes.compute()
            go()
            out.append({"engine": f"dask-{w}", "workers": w, "seconds": timed(go),
                        "startup_seconds": round(startup, 2)})
    return out


def bench_spark(parquet, codec, workers, tmp):
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"  # stay on loopback
    from pyspark.sql import SparkSession

    from clark_hash_web.integrations import spark as chs

    out = []
    for w in workers:
        t0 = time.perf_counter()
        spark = (SparkSession.builder.master(f"local[{w}]").appName("clark-hash-bench")
                 .config("spark.ui.enabled", "false")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1")
                 .config("spark.sql.files.maxPartitionBytes", str(32 << 20))
                 .getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        startup = time.perf_counter() - t0
        try:
            df = spark.read.parquet(parquet)
            parts = df.rdd.getNumPartitions()

            def go():
                chs.encode_dataframe(df, codec, "embedding").write.format("noop").mode("overwrite").save()

            def files():
                target = os.path.join(tmp, f"spark{w}")
                chs.write_sketch_files(df, codec, target, "embedding", overwrite=True)
            go()
            out.append({"engine": f"spark-{w}", "workers": w, "seconds": timed(go),
                        "partitions": parts, "startup_seconds": round(startup, 2)})
            out.append({"engine": f"spark-{w}-files", "workers": w, "seconds": timed(files),
                        "partitions": parts})
        finally:
            spark.stop()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--engines", nargs="*", default=["single", "dask", "spark"])
    ap.add_argument("--chunk", type=int, default=25_000, help="dask rows per block")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    cfg = ClarkHashConfig(input_dim=384)
    codec = ClarkHash(cfg)
    X = np.random.default_rng(0).standard_normal((args.rows, 384)).astype(np.float32)
    tmp = tempfile.mkdtemp(prefix="clark-hash-scale-")
    results = []
    try:
        npy = os.path.join(tmp, "x.npy")
        np.save(npy, X)
        if "single" in args.engines:
            results.append(bench_single(X, codec))
        if "dask" in args.engines:
            results += bench_dask(npy, args.rows, codec, args.workers, args.chunk)
        if "spark" in args.engines:
            import pyarrow as pa
            import pyarrow.parquet as pq

            parquet = os.path.join(tmp, "x.parquet")
            col = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), 384).cast(pa.list_(pa.float32()))
            pq.write_table(pa.table({"embedding": col}), parquet, row_group_size=20_000)
            results += bench_spark(parquet, codec, args.workers, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = next((r["seconds"] for r in results if r["engine"] == "single"), None)
    for r in results:
        r["vectors_per_second"] = round(args.rows / r["seconds"])
        r["seconds"] = round(r["seconds"], 3)
        if base:
            r["time_vs_single"] = round(r["seconds"] / base, 2)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    doc = {"benchmark": "scale_out", "rows": args.rows, "dim": 384,
           "config": cfg.fingerprint, "backend": codec.backend,
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {load}",
           "results": results}
    text = json.dumps(doc, indent=1)
    print(text)
    if args.out:
        pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
