"""Encode and scan speed of every codec against faiss, sentence-transformers and a dense matvec.

Usage::

    python benchmarks/throughput_compare.py [--n 100000] [--queries 20] [--threads 1]
                                            [--out benchmarks/results/throughput_compare.json] [--no-plot]

Prints one JSON object and writes it to ``--out`` (plus a bar chart PNG next
to it through ``benchmarks/plots.py``). Speeds are reported, never asserted.

Input: the cached SOTU corpus embeddings when present (tiled up to ``--n``
rows), else seeded unit Gaussian vectors (the JSON says which). All
libraries run with ``--threads`` threads where that can be set (numpy BLAS
via the ``*_NUM_THREADS`` variables, set before numpy is imported; faiss with
``omp_set_num_threads``).

Per method:

``encode_vectors_per_s``
    Vectors turned into the stored form per second (codes, quantized
    vectors, or a faiss ``add``), best of 3.
``scan_codes_per_s``
    Stored rows scanned per second by one query returning its top 10
    (median over the queries): ``FlatIndex.search`` for Clark Hash, ``search``
    for faiss, and a numpy scan for the formats that come without a search
    (sentence-transformers' quantized arrays, the dense matvec).
``bytes_per_vector``
    What the stored form holds in memory.

Methods needing a missing library (faiss-cpu, sentence-transformers) are
listed under ``"skipped"`` with the import error.
"""

from __future__ import annotations

import argparse
import os
import sys

_threads = "1"
for _i, _a in enumerate(sys.argv):
    if _a == "--threads" and _i + 1 < len(sys.argv):
        _threads = sys.argv[_i + 1]
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, _threads)

import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "embeddings"
RESULTS = ROOT / "benchmarks" / "results"


def best_time(fn, repeats=3):
    best = float("inf")
    out = None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def scan_rate(search, queries, n):
    """Median rows/s of ``search(q)`` over the queries (after one warm-up)."""
    search(queries[0])
    ts = []
    for q in queries:
        t = time.perf_counter()
        search(q)
        ts.append(time.perf_counter() - t)
    return n / statistics.median(ts)


def top10(scores):
    idx = np.argpartition(-scores, 9)[:10]
    return idx[np.argsort(-scores[idx], kind="stable")]


def bench_clark_hash(x, queries, m, bits, hashes=4, clip=3.0):
    from clark_hash_web import ClarkHash, ClarkHashConfig, FlatIndex

    cfg = ClarkHashConfig(input_dim=x.shape[1], sketch_dim=m, bits=bits, hashes_per_input=hashes, clip=clip)
    codec = ClarkHash(cfg, backend="numpy")
    t, enc = best_time(lambda: codec.encode(x))
    index = FlatIndex(codec)
    index.add_encoded(enc)
    return {"method": f"clark_hash {m}x{bits} h{hashes}" + ("" if clip == 3.0 else f" c{clip:g}"),
            "family": "clark_hash", "bytes_per_vector": cfg.code_bytes,
            "encode_vectors_per_s": len(x) / t,
            "scan_codes_per_s": scan_rate(lambda q: index.search(q, 10), queries, len(x))}


def bench_faiss(x, queries, threads):
    import faiss

    faiss.omp_set_num_threads(threads)
    d = x.shape[1]
    out = []

    def run(name, make, train, bytes_per_vector):
        def build():
            idx = make()
            if train:
                idx.train(x)
            idx.add(x)
            return idx
        t, idx = best_time(build)
        out.append({"method": name, "family": "faiss", "bytes_per_vector": bytes_per_vector,
                    "encode_vectors_per_s": len(x) / t,
                    "scan_codes_per_s": scan_rate(lambda q: idx.search(q[None], 10), queries, len(x))})

    run(f"faiss IndexLSH {d} bits", lambda: faiss.IndexLSH(d, d, True, True), True, d // 8)
    run("faiss IndexScalarQuantizer 4-bit", lambda: faiss.IndexScalarQuantizer(
        d, faiss.ScalarQuantizer.QT_4bit, faiss.METRIC_INNER_PRODUCT), True, d // 2)
    run("faiss IndexScalarQuantizer 8-bit", lambda: faiss.IndexScalarQuantizer(
        d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT), True, d)

    def binary_build():
        idx = faiss.IndexBinaryFlat(d)
        idx.add(np.packbits(x > 0, axis=1))
        return idx
    t, bidx = best_time(binary_build)
    out.append({"method": f"faiss IndexBinaryFlat {d} sign bits", "family": "faiss",
                "bytes_per_vector": d // 8, "encode_vectors_per_s": len(x) / t,
                "scan_codes_per_s": scan_rate(
                    lambda q: bidx.search(np.packbits(q > 0)[None], 10), queries, len(x))})
    return out


def bench_sentence_transformers(x, queries):
    try:
        from sentence_transformers.util.quantization import quantize_embeddings
    except ImportError:
        from sentence_transformers.quantization import quantize_embeddings
    out = []
    calib = x[:10_000]
    for prec in ("binary", "ubinary", "int8"):
        kw = {"calibration_embeddings": calib} if prec == "int8" else {}
        t, codes = best_time(lambda: quantize_embeddings(x, precision=prec, **kw))
        if prec == "int8":
            db = codes.astype(np.float32)  # scanned as a float32 matvec of the int8 values

            def search(q, db=db):
                return top10(db @ q)
        else:
            db = codes.view(np.uint8)

            def search(q, db=db):
                qb = np.packbits(q > 0)
                return top10(-np.bitwise_count(db ^ qb).sum(axis=1, dtype=np.int32).astype(np.float32))
        out.append({"method": f"sentence-transformers quantize_embeddings {prec}",
                    "family": "sentence-transformers", "bytes_per_vector": int(codes.shape[1]),
                    "encode_vectors_per_s": len(x) / t,
                    "scan_codes_per_s": scan_rate(search, queries, len(x)),
                    "note": "scan is a numpy popcount / matvec over the quantized array"})
    return out


def bench_dense(x, queries):
    def store():  # what a dense store does: normalize (cosine) into a new float32 array
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    t, db = best_time(store)
    return [{"method": "dense float32 matvec", "family": "dense", "bytes_per_vector": 4 * x.shape[1],
             "encode_vectors_per_s": len(x) / t,
             "scan_codes_per_s": scan_rate(lambda q: top10(db @ q), queries, len(x))}]


def load_vectors(n, d=384):
    path = CACHE / "sotu_corpus.npy"
    if path.exists():
        base = np.load(path)
        reps = -(-n // len(base))
        x = np.tile(base, (reps, 1))[:n]
        q = np.load(CACHE / "sotu_queries.npy")
        return np.ascontiguousarray(x, np.float32), q, f"SOTU MiniLM corpus tiled to {n} rows"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = rng.standard_normal((100, d)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x, q, f"seeded unit Gaussian vectors ({n} x {d})"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(RESULTS / "throughput_compare.json"))
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    x, q, source = load_vectors(args.n)
    queries = q[:args.queries]
    rows, skipped = [], {}
    for m, b in ((96, 4), (192, 2), (384, 1), (48, 8)):
        rows.append(bench_clark_hash(x, queries, m, b))
    try:
        import bench_adapters

        rows += bench_adapters.throughput(x, queries, scan_rate, best_time)
    except ImportError as e:
        skipped["package binary codecs"] = str(e)
    for name, fn in (("faiss", lambda: bench_faiss(x, queries, args.threads)),
                     ("sentence-transformers", lambda: bench_sentence_transformers(x, queries))):
        try:
            rows += fn()
        except ImportError as e:
            skipped[name] = str(e)
    rows += bench_dense(x, queries)
    for r in rows:
        r["encode_vectors_per_s"] = round(r["encode_vectors_per_s"])
        r["scan_codes_per_s"] = round(r["scan_codes_per_s"])
    out = {"benchmark": "throughput (benchmarks/throughput_compare.py)",
           "command": "python benchmarks/throughput_compare.py " + " ".join(
               argv if argv is not None else sys.argv[1:]),
           "corpus": len(x), "dim": int(x.shape[1]), "vectors": source, "threads": args.threads,
           "machine": {"python": platform.python_version(), "numpy": np.__version__,
                       "processor": platform.processor() or platform.machine(),
                       "cpus": os.cpu_count()},
           "methods": rows, "skipped": skipped}
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    if not args.no_plot:
        import plots

        print(f"wrote {plots.throughput_bars(out, path.with_suffix('.png'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
