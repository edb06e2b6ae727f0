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

``--targets`` instead measures the scan and encode targets of issue 14 over
``--codes`` (default 1,000,000) stored codes of 48 bytes, one thread, and
writes ``throughput_targets.json``: every scan (top 10) is timed query by
query, interleaved with its peers measured in the same run (faiss
``IndexBinaryFlat`` over the same 384 sign bits, and a dense float32 matvec),
best of several rounds, with the ratios; every package ranking is checked
against a brute-force scan on the first queries (``"ranking_checked"``). The
E8 scan is also timed the previous way (every code scored with float32 pair
tables), and the Clark Hash scan with its previous float32 pair-table bound, in
the same run, for the ratios.
Encoders are timed interleaved too (best of 3), and memory is measured with
``tracemalloc`` (peak extra bytes while encoding, bytes per stored code and
per id).
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
sys.path.insert(0, str(ROOT))          # benchmark this checkout's package
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


TARGETS = {"hamming_codes_per_s": 100e6, "float_query_codes_per_s": 30e6,
           "e8_encode_vectors_per_s": 500e3, "sign_bits_encode_vectors_per_s": 1e6,
           "encode_peak_extra_over_input": 2.0, "id_bytes": 16}


# The clark-hash crate cannot be built here (no crate sources offline); its one-thread
# figures on this machine are the ones recorded in README.md (issue 2).
CRATE = {"encode_vectors_per_s": 197_000, "search_codes_per_s": 4_950_000,
         "source": "README.md (issue 2 measurements on this machine), not measured in this run",
         "targets": {"encode_ratio": 3.0, "search_ratio": 4.0}}


def _gaussian(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _brute_force_top(codec, enc, q, k, scoring):
    from clark_hash_web.index.binary import top_scores

    if scoring == "hamming":
        dist = np.asarray(codec.hamming(q, enc))
        return np.lexsort((np.arange(len(dist)), dist))[:k].tolist()
    kw = {} if scoring is None else {"scoring": scoring}       # Clark Hash: one scoring
    return top_scores(np.asarray(codec.score(q, enc, **kw), dtype=np.float32), k).tolist()


def _full_e8_scan(index, q, k):
    """Top ``k`` rows by scoring every E8 code with 65,536-entry float32 pair tables."""
    from clark_hash_web.codecs import bitpack
    from clark_hash_web.index.binary import top_scores

    tables = bitpack.pair_tables_numpy(index.codec._tables_numpy(q.values))
    scores = bitpack.asymmetric_scores_numpy(tables, index._store.pair_columns())
    return top_scores(scores, k), scores


def _float32_bound_clark_scan(index, q, k):
    """Clark Hash top ``k`` the previous way: float32 pair tables (256 KiB each) over
    every row, the float32 bound, exact scores for the candidates."""
    from clark_hash_web.index import fast_scan

    tables, const = fast_scan.pair_tables(q.values, index.config)
    approx = fast_scan.approximate_accumulators(index._store.columns(), len(index), tables, const)
    return index.rank_rows(q, fast_scan.candidate_rows(approx, q.values, q.norm, index.config, k), k)


def run_targets(args):
    """Issue 14 targets over ``args.codes`` codes of 48 bytes (see the module docstring)."""
    import tracemalloc

    from clark_hash_web import ClarkHash, ClarkHashConfig, FlatIndex
    from clark_hash_web.codecs.e8 import E8Codes, E8Config
    from clark_hash_web.codecs.hyperplane_lsh import HyperplaneLSH, HyperplaneLSHConfig
    from clark_hash_web.codecs.itq import ITQ, train_itq
    from clark_hash_web.codecs.sign_bits import SignBits, SignBitsConfig
    from clark_hash_web.index.binary import BinaryIndex

    d, n, k = 384, args.codes, 10
    rng = np.random.default_rng(0)
    codecs = {
        "sign_bits": SignBits(SignBitsConfig(d, d), "numpy"),
        "sign_bits hadamard": SignBits(SignBitsConfig(d, d, rotation="hadamard"), "numpy"),
        "hyperplane_lsh": HyperplaneLSH(HyperplaneLSHConfig(d, d), "numpy"),
        "itq": ITQ(train_itq(_gaussian(rng, 20_000, d), d, iterations=10), "numpy"),
        "e8": E8Codes(E8Config(d), "numpy"),
        "clark_hash 96x4 (crate profile)": ClarkHash(ClarkHashConfig(input_dim=d), "numpy"),
    }
    # -- encode speed (interleaved, best of 3) ------------------------------------------
    xe = _gaussian(rng, args.encode_n, d)
    enc_best = {name: float("inf") for name in codecs}
    for _ in range(3):
        for name, codec in codecs.items():
            t = time.perf_counter()
            codec.encode(xe)
            enc_best[name] = min(enc_best[name], time.perf_counter() - t)
    encode = [{"method": name, "vectors": len(xe), "vectors_per_s": round(len(xe) / t)}
              for name, t in enc_best.items()]
    # the E8 encoder before issue 14 (kept as _encode_numpy_reference), on a fifth of the rows
    sub = xe[:max(1, len(xe) // 5)]
    e8 = codecs["e8"]
    ref = min(_timed(lambda: e8._encode_numpy_reference(sub)) for _ in range(3))
    new = min(_timed(lambda: e8._encode_numpy(sub)) for _ in range(3))
    encode.append({"method": "e8 previous encoder (reference, same run)", "vectors": len(sub),
                   "vectors_per_s": round(len(sub) / ref),
                   "new_encoder_vectors_per_s": round(len(sub) / new),
                   "speedup": round(ref / new, 2)})
    for row in encode:
        if row["method"] == "e8":
            row["target"] = TARGETS["e8_encode_vectors_per_s"]
        elif row["method"].startswith("sign_bits"):
            row["target"] = TARGETS["sign_bits_encode_vectors_per_s"]
        elif row["method"].startswith("clark"):
            row["vs_crate_recorded"] = round(row["vectors_per_s"] / CRATE["encode_vectors_per_s"], 2)
            row["target_vs_crate"] = CRATE["targets"]["encode_ratio"]
        if "target" in row:
            row["meets_target"] = row["vectors_per_s"] >= row["target"]
    memory = {}
    for name in ("e8", "sign_bits", "sign_bits hadamard"):
        tracemalloc.start()
        codecs[name].encode(xe)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        memory[f"{name} encode peak extra / input"] = round(peak / xe.nbytes, 3)
    del xe
    # -- build the indexes: n codes each, from distinct vectors, added in chunks -------
    indexes, encs = {}, {name: [] for name in codecs}
    faiss_codes = []
    for s in range(0, n, 100_000):
        x = _gaussian(rng, min(100_000, n - s), d)
        for name, codec in codecs.items():
            encs[name].append(codec.encode(x))
        faiss_codes.append(np.packbits(x > 0, axis=1))
    queries = _gaussian(rng, args.queries, d)
    for name, codec in codecs.items():
        index = FlatIndex(codec) if name.startswith("clark") else BinaryIndex(codec)
        from clark_hash_web.codecs.base import EncodedBatch

        parts = encs.pop(name)
        codes = np.concatenate([np.asarray(e.codes) for e in parts])
        norms = None if parts[0].norm_codes is None else np.concatenate(
            [np.asarray(e.norm_codes) for e in parts])
        enc = EncodedBatch(codec.config, codes, norms)
        t = time.perf_counter()
        index.add_encoded(enc)
        dt = time.perf_counter() - t
        if isinstance(index, BinaryIndex):
            tracemalloc.start()                 # memory of a second add, untimed
            BinaryIndex(codec).add_encoded(enc)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            store = index._store.nbytes
            ids = index._ids._store.arr.nbytes
            memory[f"{name} index"] = {
                "add_seconds": round(dt, 3), "add_peak_extra_over_codes": round(peak / codes.nbytes, 3),
                "code_bytes_held_per_code": round(store / n, 2),
                "id_bytes_per_id": round(ids / n, 2)}
        indexes[name] = (index, enc)
    # -- scans ------------------------------------------------------------------------
    scans = {}
    for name, (index, enc) in indexes.items():
        codec = index.codec
        prepared = [codec.sketch_query(q) for q in queries]
        if name.startswith("clark"):
            scans[f"{name} float query (FlatIndex)"] = (
                lambda i, p=prepared, ix=index: ix.search_prepared(p[i], k),
                (codec, enc, prepared, None))
            scans[f"{name} float query, float32 pair-table bound (previous path)"] = (
                lambda i, p=prepared, ix=index: _float32_bound_clark_scan(ix, p[i], k),
                (codec, enc, prepared, None))
            continue
        scans[f"{name} float query"] = (
            lambda i, p=prepared, ix=index: ix.search(p[i], k),
            (codec, enc, prepared, "asymmetric"))
        if name == "e8":       # the scan before the integer pair-table bound, same run
            scans["e8 float query, full pair-table scan (previous path)"] = (
                lambda i, p=prepared, ix=index: _full_e8_scan(ix, p[i], k),
                (codec, enc, prepared, "asymmetric"))
        if codec.supports_hamming and name == "sign_bits":
            scans[f"{name} hamming (search_hamming)"] = (
                lambda i, p=prepared, ix=index: ix.search_hamming(p[i], k),
                (codec, enc, prepared, "hamming"))
    skipped = {}
    try:
        import faiss

        faiss.omp_set_num_threads(1)
        fidx = faiss.IndexBinaryFlat(d)
        fidx.add(np.concatenate(faiss_codes))
        fq = np.packbits(queries > 0, axis=1)
        scans["peer: faiss IndexBinaryFlat (hamming)"] = (
            lambda i: fidx.search(fq[i:i + 1], k), None)
    except ImportError as e:
        skipped["faiss"] = str(e)
    del faiss_codes
    dense = np.empty((args.dense_n, d), dtype=np.float32)
    for s in range(0, args.dense_n, 100_000):
        dense[s:s + 100_000] = _gaussian(rng, min(100_000, args.dense_n - s), d)

    def dense_scan(i):
        sc = dense @ queries[i]
        idx = np.argpartition(-sc, k - 1)[:k]
        return idx[np.argsort(-sc[idx], kind="stable")]
    scans["peer: dense float32 matvec"] = (dense_scan, None)
    best = {name: float("inf") for name in scans}
    for _ in range(args.rounds):
        for qi in range(len(queries)):
            for name, (fn, _) in scans.items():
                t = time.perf_counter()
                fn(qi)
                best[name] = min(best[name], time.perf_counter() - t)
    rate = {name: (args.dense_n if name == "peer: dense float32 matvec" else n) / t
            for name, t in best.items()}
    faiss_rate = rate.get("peer: faiss IndexBinaryFlat (hamming)")
    dense_rate = rate["peer: dense float32 matvec"]
    rows = []
    for name, (fn, check) in scans.items():
        row = {"method": name, "codes_per_s": round(rate[name]),
               "vs_dense_matvec": round(rate[name] / dense_rate, 2)}
        if faiss_rate:
            row["vs_faiss_binary_flat"] = round(rate[name] / faiss_rate, 3)
        if name.startswith("clark"):
            row["vs_crate_recorded"] = round(rate[name] / CRATE["search_codes_per_s"], 2)
            if "previous" not in name:
                row["target_vs_crate"] = CRATE["targets"]["search_ratio"]
        if not name.startswith(("peer", "clark")) and "previous" not in name:
            row["target"] = TARGETS["hamming_codes_per_s" if "hamming" in name
                                    else "float_query_codes_per_s"]
            row["meets_target"] = rate[name] >= row["target"]
        if check is not None:
            codec, enc, prepared, scoring = check
            ok = True
            for qi in range(min(2, len(prepared))):
                got = fn(qi)[0]
                want = _brute_force_top(codec, enc, prepared[qi], k, scoring)
                ok &= list(index_ids(got)) == want
            row["ranking_checked"] = bool(ok)
        rows.append(row)
    return {"benchmark": "issue 14 targets (benchmarks/throughput_compare.py --targets)",
            "command": "python benchmarks/throughput_compare.py " + " ".join(sys.argv[1:]),
            "codes": n, "code_bytes": 48, "dim": d, "k": k, "queries": len(queries),
            "rounds": args.rounds, "dense_rows": args.dense_n, "threads": 1,
            "vectors": "seeded unit Gaussian vectors (a hard case for pruning: no near neighbours)",
            "machine": {"python": platform.python_version(), "numpy": np.__version__,
                        "processor": platform.processor() or platform.machine(),
                        "cpus": os.cpu_count(), "load_average": list(os.getloadavg())},
            "targets": TARGETS, "scans": rows, "encode": encode, "memory": memory,
            "skipped": skipped,
            "clark_hash_crate": CRATE}


def index_ids(ids):
    return [int(i) for i in ids]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", action="store_true", help="issue 14 targets (see docstring)")
    ap.add_argument("--codes", type=int, default=1_000_000, help="--targets: stored codes")
    ap.add_argument("--encode-n", type=int, default=100_000, help="--targets: vectors encoded")
    ap.add_argument("--dense-n", type=int, default=1_000_000, help="--targets: dense rows")
    ap.add_argument("--rounds", type=int, default=3, help="--targets: interleaved rounds")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(RESULTS / "throughput_compare.json"))
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)
    if args.targets:
        out = run_targets(args)
        path = Path(args.out) if args.out != str(RESULTS / "throughput_compare.json") \
            else RESULTS / "throughput_targets.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1) + "\n")
        print(json.dumps(out, indent=1))
        return 0
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
