"""The random-projection write-up's experiment on our data, inside ClickHouse (chdb).

Data: MiniLM (all-MiniLM-L6-v2) embeddings of SOTU sentences cached by
``benchmarks/embed_corpora.py`` in ``.cache/embeddings/`` (``sotu_corpus.npy``
rows, ``sotu_queries.npy`` queries). When they are absent the script uses
synthetic clustered data and says so in the output (``"data"`` field).

Methods (all SQL from ``clark_hash_web.integrations.clickhouse.SQL``):

* ``exact``: brute force ``ORDER BY cosineDistance`` over the stored floats;
* ``hamming``: ``ORDER BY bitHammingDistance`` only (write-up method 2);
* ``within<T>+cosine``: ``PREWHERE hamming <= T`` then cosine (methods 3/4);
* ``top<N>+cosine``: the N nearest codes in Hamming distance, then cosine;
* ``top<N>+clark``: the same prefilter, rescored from 48-byte Clark Hash codes
  (no floats needed);
* ``clark-scan``: asymmetric Clark Hash score of every row (no prefilter).

Recall@10 is against exact float64 cosine top-10 computed in numpy (the
brute-force SQL should reach 1.0). Times are wall-clock per query in chdb on
this machine (single query at a time), median over the queries.

Usage::

    .venv/bin/python benchmarks/clickhouse_lsh.py [--queries 100] [--bits 128]
        [--out benchmarks/results/clickhouse_lsh.json]

Prints JSON, then the markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clark_hash_web import ClarkHash, ClarkHashConfig  # noqa: E402
from clark_hash_web.integrations.clickhouse import ChdbClient, CodeTable  # noqa: E402

CACHE = ROOT / ".cache" / "embeddings"


def load_data(n_queries, seed=0):
    corpus, queries = CACHE / "sotu_corpus.npy", CACHE / "sotu_queries.npy"
    if corpus.exists() and queries.exists():
        X = np.load(corpus).astype(np.float32)
        Q = np.load(queries).astype(np.float32)[:n_queries]
        return X, Q, f"SOTU sentences, all-MiniLM-L6-v2 ({X.shape[0]} rows x {X.shape[1]}), cached"
    rng = np.random.default_rng(seed)
    n, d, c = 30000, 384, 300
    centers = rng.standard_normal((c, d))
    X = (centers[rng.integers(0, c, n)] + 0.8 * rng.standard_normal((n, d))).astype(np.float32)
    Q = (centers[rng.integers(0, c, n_queries)] + 0.8 * rng.standard_normal((n_queries, d))).astype(np.float32)
    return X, Q, f"SYNTHETIC clustered data ({n} x {d}, {c} clusters): cached embeddings absent"


def bit_codec(dim, n_bits):
    """The package's hyperplane LSH codec (helper D1's) when present."""
    from clark_hash_web.codecs.hyperplane_lsh import HyperplaneLSH, HyperplaneLSHConfig

    lsh = HyperplaneLSH(HyperplaneLSHConfig(input_dim=dim, n_bits=n_bits))
    return lsh, "HyperplaneLSH", lambda X: lsh.encode(X).codes_bytes(), \
        lambda q: lsh.sketch_query(q).code


def truth(X, Q, k=10):
    Xn = X.astype(np.float64) / np.linalg.norm(X.astype(np.float64), axis=1, keepdims=True)
    sims = Q.astype(np.float64) @ Xn.T
    return [set(np.argsort(-s, kind="stable")[:k].tolist()) for s in sims]


def run(args):
    X, Q, data = load_data(args.queries)
    n, d = X.shape
    _, codec_name, encode_bits, query_bits = bit_codec(d, args.bits)
    t0 = time.perf_counter()
    bits = encode_bits(X)
    t_bits = time.perf_counter() - t0
    clark = ClarkHash(ClarkHashConfig(input_dim=d))
    t0 = time.perf_counter()
    enc = clark.encode(X)
    t_clark = time.perf_counter() - t0

    client = ChdbClient()
    try:
        table = CodeTable(client, "docs", n_bits=args.bits, dim=d, clark_config=clark.config)
        table.create(replace=True)
        t0 = time.perf_counter()
        table.insert(np.arange(n), bits, vectors=X, clark=enc)
        t_insert = time.perf_counter() - t0
        gt = truth(X, Q)
        qbits = [query_bits(q) for q in Q]
        qsk = [clark.sketch_query(q) for q in Q]
        methods = {
            "exact": lambda i: table.exact(Q[i], 10),
            "hamming": lambda i: table.hamming_top(qbits[i], 10),
        }
        for T in args.thresholds:
            methods[f"within{T}+cosine"] = (lambda T: lambda i: table.prefilter_exact(
                qbits[i], Q[i], 10, max_distance=T))(T)
        for N in args.candidates:
            methods[f"top{N}+cosine"] = (lambda N: lambda i: table.prefilter_exact(
                qbits[i], Q[i], 10, candidates=N))(N)
        for N in args.candidates:
            methods[f"top{N}+clark"] = (lambda N: lambda i: table.prefilter_clark(
                qbits[i], qsk[i], 10, candidates=N))(N)
        methods["clark-scan"] = lambda i: table.all_clark(qsk[i], 10)
        passed = {}
        for T in args.thresholds:
            passed[T] = float(np.mean([len(table.hamming_within(qbits[i], T)) for i in range(len(Q))]))
        results = []
        for name, fn in methods.items():
            fn(0)  # warm-up
            times, recalls = [], []
            for i in range(len(Q)):
                t0 = time.perf_counter()
                got = fn(i)
                times.append(time.perf_counter() - t0)
                recalls.append(len({r[0] for r in got} & gt[i]) / 10)
            row = {"method": name, "recall_at_10": round(float(np.mean(recalls)), 4),
                   "median_ms": round(1000 * float(np.median(times)), 2),
                   "mean_ms": round(1000 * float(np.mean(times)), 2)}
            if name.startswith("within"):
                row["mean_rows_passing"] = passed[int(name[6:name.index("+")])]
            results.append(row)
        sizes = table.column_sizes()
    finally:
        client.close()
    return {
        "benchmark": "clickhouse_lsh", "data": data, "rows": n, "dim": d, "queries": len(Q),
        "bit_codec": f"{codec_name} {args.bits} bits ({table.bits_type})",
        "clark_codec": f"ClarkHash m=96 b=4 ({clark.config.code_bytes} bytes)",
        "engine": "chdb (in-process ClickHouse), single query at a time",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "encode_seconds": {"bits": round(t_bits, 2), "clark": round(t_clark, 2),
                           "insert": round(t_insert, 2)},
        "column_bytes_compressed": {k: v[0] for k, v in sizes.items()},
        "results": results,
    }


def markdown(doc):
    lines = [f"Data: {doc['data']}; {doc['queries']} queries; {doc['bit_codec']}; "
             f"{doc['engine']}.", "",
             "| method | recall@10 | median ms/query | note |", "|---|---:|---:|---|"]
    notes = {"exact": "brute-force cosineDistance on stored floats",
             "hamming": "ORDER BY bitHammingDistance only",
             "clark-scan": "asymmetric Clark Hash score of every row, no floats"}
    for r in doc["results"]:
        m = r["method"]
        note = notes.get(m, "")
        if m.startswith("within"):
            note = f"PREWHERE hamming <= {m[6:m.index('+')]} ({r['mean_rows_passing']:.0f} rows pass), then cosine"
        elif m.startswith("top") and m.endswith("cosine"):
            note = f"{m[3:m.index('+')]} nearest codes, then cosine"
        elif m.startswith("top"):
            note = f"{m[3:m.index('+')]} nearest codes, then Clark Hash codes (no floats)"
        lines.append(f"| {m} | {r['recall_at_10']:.3f} | {r['median_ms']:.1f} | {note} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--bits", type=int, default=128)
    ap.add_argument("--thresholds", type=int, nargs="*", default=[36, 42])
    ap.add_argument("--candidates", type=int, nargs="*", default=[200, 1000])
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    doc = run(args)
    text = json.dumps(doc, indent=1)
    print(text)
    print()
    print(markdown(doc))
    if args.out:
        pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
