"""Codec speed and memory on this machine; prints one JSON object.

Usage: python benchmarks/throughput.py [--quick]

Measures (default config, 384-d input, 48-byte codes):
- numpy encode throughput on 100,000 random vectors (target >= 600,000/s);
- FlatIndex.search top-10 over 1,000,000 stored codes (target >= 10,000,000 codes/s);
- extra memory while encoding 1,000,000 vectors, as a multiple of the input
  size (tracemalloc peak; target <= 2x);
- the pure-Python backend: one vector encoded, and a 10,000-code scan.
Targets are reported, never asserted: this is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import tracemalloc

import numpy as np

from clark_hash_web import ClarkHash, ClarkHashConfig, EncodedBatch, FlatIndex


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    args = ap.parse_args(argv)
    n_encode = 20_000 if args.quick else 100_000
    n_index = 100_000 if args.quick else 1_000_000
    n_memory = 100_000 if args.quick else 1_000_000
    rng = np.random.default_rng(0)
    cfg = ClarkHashConfig(384)
    codec = ClarkHash(cfg, "numpy")
    out = {"machine": {"python": platform.python_version(), "numpy": np.__version__,
                       "processor": platform.processor() or platform.machine()},
           "config": cfg.to_dict() | {"fingerprint": cfg.fingerprint}}

    x = rng.standard_normal((n_encode, 384)).astype(np.float32)
    codec.encode(x[:2048])
    best, med = best_of(lambda: codec.encode(x), 3)
    out["encode_numpy"] = {"vectors": n_encode, "best_s": best, "median_s": med,
                           "vectors_per_s": n_encode / best, "target_vectors_per_s": 600_000,
                           "meets_target": n_encode / best >= 600_000}

    # search: 1M stored codes of real sketches (random vectors)
    base = np.asarray(codec.encode(rng.standard_normal((50_000, 384)).astype(np.float32)).codes)
    codes = np.concatenate([base] * (n_index // len(base) + 1))[:n_index]
    index = FlatIndex(codec)
    index.add_encoded(EncodedBatch(cfg, codes))
    queries = [codec.sketch_query(q) for q in rng.standard_normal((20, 384)).astype(np.float32)]
    index.search_prepared(queries[0], 10)
    times = []
    for q in queries:
        t = time.perf_counter()
        index.search_prepared(q, 10)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    out["search_numpy"] = {"stored_codes": n_index, "k": 10, "queries": len(queries),
                           "median_s": med, "codes_per_s": n_index / med,
                           "target_codes_per_s": 10_000_000,
                           "meets_target": n_index / med >= 10_000_000}
    del index, codes

    # memory while encoding
    big = np.empty((n_memory, 384), dtype=np.float32)
    for s in range(0, n_memory, 100_000):
        big[s:s + 100_000] = rng.standard_normal((min(100_000, n_memory - s), 384))
    tracemalloc.start()
    t = time.perf_counter()
    enc = codec.encode(big)
    dt = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out["encode_memory"] = {"vectors": n_memory, "input_bytes": big.nbytes,
                            "peak_extra_bytes": peak, "output_bytes": enc.codes.nbytes,
                            "peak_extra_over_input": peak / big.nbytes, "seconds": dt,
                            "target_max_over_input": 2.0, "meets_target": peak / big.nbytes <= 2.0}
    del big, enc

    # pure-Python backend
    pyc = ClarkHash(cfg, "python")
    v = rng.standard_normal(384).astype(np.float32).tolist()
    best, med = best_of(lambda: pyc.encode([v]), 20)
    py_index = FlatIndex(pyc)
    py_index.add_encoded(EncodedBatch(cfg, base[:10_000].tobytes()))
    q = pyc.sketch_query(v)
    scan_best, scan_med = best_of(lambda: py_index.search_prepared(q, 10), 3)
    out["python_backend"] = {"encode_one_vector_s": best, "encode_one_vector_median_s": med,
                             "scan_10k_codes_s": scan_best, "scan_codes_per_s": 10_000 / scan_best}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
