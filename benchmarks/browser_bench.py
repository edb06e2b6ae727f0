"""Browser benchmark: the codec under Pyodide in headless Chromium vs native numpy.

Usage::

    python benchmarks/browser_bench.py [--n 100000] [--out FILE.json]

Prints one JSON object. Set CLARK_HASH_PYODIDE_NUMPY to also measure the
numpy backend in the browser (otherwise it says it was skipped).

Measured, for the default config (384 -> 96 x 4 bits, 48-byte sketches) on
the same N deterministic vectors (a counter hash both Python and JS compute):

- native numpy: encode rate; top-10 FlatIndex search over N stored codes;
- browser, per backend: encode rate (worker, Python); top-10 search over N
  stored sketches (time inside the worker and as seen by the page; above
  2,000 rows the worker's JS prefilter scan picks candidates and Python
  ranks them exactly: static/prefilter-scan.js, with a per-step breakdown);
- a plain-JS dense float32 cosine scan (top 10) over the same N vectors in
  the page, the way EntityDB / Orama scan: the anchor;
- page start to first search: cold (fresh profile: empty HTTP cache and
  IndexedDB, empty store) and warm (second visit, N sketches in IndexedDB).
  numpy loads after start-up, so the first search runs on the numpy-free
  backend (same bits; ``first_search_backend``) and ``*_numpy_ready_ms`` says
  when numpy took over; the opt-in interpreter snapshot (save visit, restore
  visit) is measured separately;
- IndexedDB bytes per sketch: navigator.storage.estimate() usage growth
  while importing N sketches, and the summed record payload;
- the demo page (``demo``): first visit (fresh profile: empty HTTP cache,
  service worker cache and IndexedDB) to a usable search box, then a reload
  of the same tab, then a visit after a browser restart (same profile). Each
  visit gives, in ms since navigation start: the search box usable (word
  matches over the note texts), results of a typed query on screen (and
  whether they were word matches or by meaning), the codec (Pyodide) ready,
  the model ready, search by meaning ready (model + every note sketched).

``--only demo`` measures the demo page alone (a minute instead of many).
``--only million`` fills a store with 1,000,000 sketches (``--million-n``)
and measures, in a fresh page on the numpy-free path, opening it, top-10
latency and the tab's extra memory (``browser_million.py``; ``--million-codec
learned-e8`` for a learned E8 head).
``--only profile`` measures the demo's default profile (E8 48 B + int8
rescoring): recall@10 on real MiniLM embeddings, top-10 with 100 rescored
over ``--n`` notes, IndexedDB bytes per note (``browser_profile.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "build_scripts"))
sys.path.insert(0, str(REPO / "tests" / "browser"))

from clark_hash_web import ClarkHash, ClarkHashConfig, FlatIndex  # noqa: E402
from clark_hash_web.formats import sketch_file

CFG = ClarkHashConfig(input_dim=384)
QUERIES = 15
#: searches before the timed ones (both the sketch search and the dense anchor):
#: the first ones run before V8 has optimized the scan loops (the JSON keeps
#: their times as search_warmup_ms; the page-start numbers include a cold search)
WARMUP = 10

# The same vectors on both sides: v[i] = murmur3-finalizer(i) mapped to [-0.5, 0.5).
HASH_JS = """
function hashVectors(start, n, d) {
  const out = new Float32Array(n * d);
  for (let k = 0; k < n * d; k++) {
    let x = Math.imul((start * d + k) >>> 0, 0x9E3779B1) >>> 0;
    x ^= x >>> 16; x = Math.imul(x, 0x85EBCA6B) >>> 0;
    x ^= x >>> 13; x = Math.imul(x, 0xC2B2AE35) >>> 0;
    x = (x ^ (x >>> 16)) >>> 0;
    out[k] = Math.fround(x / 4294967296 - 0.5);
  }
  return out;
}
"""


def hash_vectors(start, n, d):
    k = np.arange(start * d, (start + n) * d, dtype=np.uint64).astype(np.uint32)
    x = k * np.uint32(0x9E3779B1)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x85EBCA6B)
    x ^= x >> np.uint32(13)
    x *= np.uint32(0xC2B2AE35)
    x ^= x >> np.uint32(16)
    return (x.astype(np.float64) / 4294967296.0 - 0.5).astype(np.float32).reshape(n, d)


def native(rows, queries):
    codec = ClarkHash(CFG, backend="numpy")
    t = time.perf_counter()
    enc = codec.encode(rows)
    enc_s = time.perf_counter() - t
    index = FlatIndex(codec)
    index.add_encoded(enc)
    index.search(queries[0], 10)  # warm up
    times, results = [], []
    for q in queries:
        t = time.perf_counter()
        ids, scores = index.search(q, 10)
        times.append(time.perf_counter() - t)
        results.append(list(ids))
    return enc, {"encode_vectors_per_s": len(rows) / enc_s,
                 "search_top10_ms": 1000 * statistics.median(times),
                 "scan_codes_per_s": len(rows) / statistics.median(times)}, results


def serve(site):
    from browser_helpers import SiteHandler

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(SiteHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


IMPORT_JS = """async ({file}) => {
  const before = (await navigator.storage.estimate()).usage;
  window.store = await CH.ClarkHashStore.open({name: "bench", config: {inputDim: 384}, runtime: rt});
  const t = performance.now();
  await store.importSketchFile(CH.b64dec(file));
  const importMs = performance.now() - t;
  const after = (await navigator.storage.estimate()).usage;
  return {importMs, before, after, stats: await store.stats()};
}"""

SEARCH_JS = """async ({n, d, qstart, nq, warmup}) => {
  // the worker's search op directly (what store.search calls), to see its scan breakdown
  const out = [], warm = [];
  for (let j = -warmup; j < nq; j++) {
    const q = hashVectors(j < 0 ? qstart + nq - j : qstart + j, 1, d);   // warm-up queries: others
    const t = performance.now();
    const r = await rt.call("search", {handle: store.handle, query: q.buffer, k: 10}, [q.buffer]);
    if (j < 0) warm.push(performance.now() - t);
    else out.push({ids: r.ids, searchMs: r.searchMs + r.sketchMs, sketchMs: r.sketchMs, totalMs: performance.now() - t,
              scan: r.scan});
  }
  return {out, warm};
}"""

ENCODE_JS = """async ({n, d, backend}) => {
  const v = hashVectors(0, n, d);
  const cfg = {input_dim: d};
  await rt.call("encode", {config: cfg, backend, vectors: hashVectors(0, 8, d).buffer, n: 8});
  const t = performance.now();
  await rt.call("encode", {config: cfg, backend, vectors: v.buffer, n});
  return performance.now() - t;
}"""

DENSE_JS = """async ({n, d, qstart, nq, warmup}) => {
  // EntityDB / Orama style: cosine of the query against every stored Float32Array.
  const data = hashVectors(0, n, d);
  const norms = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0; for (let j = 0; j < d; j++) { const x = data[i * d + j]; s += x * x; }
    norms[i] = Math.sqrt(s);
  }
  const times = [], results = [];
  for (let r = -warmup; r < nq; r++) {
    const q = hashVectors(r < 0 ? qstart + nq - r : qstart + r, 1, d);
    let qn = 0; for (let j = 0; j < d; j++) qn += q[j] * q[j];
    qn = Math.sqrt(qn);
    const t = performance.now();
    const best = [];   // top 10 by a small sorted array
    for (let i = 0; i < n; i++) {
      let s = 0; const o = i * d;
      for (let j = 0; j < d; j++) s += q[j] * data[o + j];
      const c = s / (qn * norms[i]);
      if (best.length < 10 || c > best[best.length - 1][0]) {
        best.push([c, i]); best.sort((a, b) => b[0] - a[0]); if (best.length > 10) best.pop();
      }
    }
    if (r < 0) continue;
    times.push(performance.now() - t);
    results.push(best.map((b) => b[1]));
  }
  times.sort((a, b) => a - b);
  return {medianMs: times[times.length >> 1], results};
}"""

FIRST_SEARCH_JS = """async ({numpy, qstart, snapshot}) => {
  const startMs = performance.now();
  window.rt = new CH.ClarkHashRuntime({numpy, snapshot});
  // a page opens its store at once: the worker reads IndexedDB while Pyodide starts
  let readyMs = 0;
  const booted = rt.ready.then((b) => { readyMs = performance.now(); return b; });
  window.store = await CH.ClarkHashStore.open({name: "bench", config: {inputDim: 384}, runtime: rt});
  const boot = await booted;
  const openMs = performance.now();
  const r = await store.search(hashVectors(qstart, 1, 384), 10);
  const firstSearchMs = performance.now(), firstSearchBackend = store.backend;
  // numpy loads after start-up (when the worker is idle): when is it there?
  const numpyState = numpy ? await rt.loadNumpy() : "off";
  const snapshotState = await rt.snapshotStatus();
  return {firstSearchMs, firstSearchBackend, numpyState, numpyReadyMs: numpy ? performance.now() : null,
          bootMs: boot.bootMs, phasesMs: {page: startMs, worker: readyMs - startMs - boot.bootMs, ...boot.phasesMs,
                                           open: openMs - readyMs, search: firstSearchMs - openMs},
          snapshot: snapshotState,
          loadMs: store.loadMs, count: await store.count(), ids: r.ids, backendAfter: store.backend};
}"""


#: the typed query of a demo visit (its words are in a starter note: word matching finds it too)
DEMO_QUERY = "sourdough bread"


def demo_visit(page, url=None):
    """One visit of the demo page (goto ``url``, or reload when None); returns its timings.

    The clock is the page's: ms since navigation start (``performance.now()``).
    """
    if url is None:
        page.reload(wait_until="commit")
    else:
        page.goto(url, wait_until="commit")
    page.wait_for_function("window.demo?.state.timings.searchUsable !== undefined", timeout=120_000)
    box = page.locator("#search")
    assert box.is_enabled(), "the search box is not usable"
    mode_text = page.inner_text("#search-mode")
    typed = page.evaluate("performance.now()")
    box.fill(DEMO_QUERY)
    page.wait_for_function("q => document.getElementById('list-title').textContent.includes(q)",
                           arg=DEMO_QUERY, timeout=120_000)
    first = page.evaluate("""() => ({ms: performance.now(), mode: window.demo.state.lastResults.mode,
                                     top: document.querySelector('#notes > li .note-text').textContent})""")
    page.wait_for_function("document.body.dataset.ready !== undefined", timeout=240_000)
    assert page.evaluate("document.body.dataset.ready") == "true", page.inner_text("#message")
    t = page.evaluate("window.demo.state.timings")
    model = page.evaluate("window.demo.state.embedder.info")
    return {"search_usable_ms": t["searchUsable"], "search_mode_text_then": mode_text,
            "query_typed_ms": typed, "first_results_ms": first["ms"], "first_results_mode": first["mode"],
            "first_results_top": first["top"][:60],
            "store_ready_ms": t.get("storeReady"), "model_ready_ms": t.get("modelReady"),
            "meaning_ready_ms": t.get("meaningReady"),
            "model_load": {"bytes": model["modelBytes"], "tokenizer_ms": model["tokenizerMs"],
                           "model_fetch_and_session_ms": model["modelMs"]},
            "note": "ms since navigation start; the query is typed once the box is usable (query_typed_ms), "
                    "results include the 120 ms typing debounce"}


def demo_startup(pw, base, tmp):
    """First visit, reload and a visit after a browser restart of the demo page."""
    from conftest import CHROMIUM, CHROMIUM_ARGS

    profile = Path(tmp) / "profile-demo"

    def launch():
        return pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM,
                                                     args=CHROMIUM_ARGS, headless=True)

    res = {"query": DEMO_QUERY}
    ctx = launch()
    page = ctx.new_page()
    res["first_visit"] = demo_visit(page, base)
    # the service worker has cached the site (it does so during the first visit)
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=120_000)
    res["reload"] = demo_visit(page)
    ctx.close()
    ctx = launch()
    res["after_browser_restart"] = demo_visit(ctx.new_page(), base)
    ctx.close()
    return res


def _with_hash(js: str) -> str:
    """Put hashVectors inside an arrow function's body (Playwright evaluates one expression)."""
    return js.replace("=> {", "=> {" + HASH_JS, 1)


SEARCH_JS, ENCODE_JS, DENSE_JS, FIRST_SEARCH_JS = map(
    _with_hash, (SEARCH_JS, ENCODE_JS, DENSE_JS, FIRST_SEARCH_JS))


def b64(data):
    import base64

    return base64.b64encode(bytes(data)).decode()


def browser_backend(pw, base, backend, n, file_bytes, native_results, encode_n, tmp):
    from browser_helpers import BOOT_TIMEOUT_MS, boot_harness
    from conftest import CHROMIUM, CHROMIUM_ARGS

    numpy = backend == "numpy"
    res = {}
    profile = Path(tmp) / f"profile-{backend}"

    def launch():
        return pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM,
                                                     args=CHROMIUM_ARGS, headless=True)

    def first_search(ctx, snapshot):
        """A new page of the harness in ``ctx``: runtime start to first search."""
        page = ctx.new_page()
        page.set_default_timeout(BOOT_TIMEOUT_MS * 5)
        page.goto(base + "static/harness.html")
        page.wait_for_function("window.CH !== undefined")
        return page, page.evaluate(FIRST_SEARCH_JS, {"numpy": numpy, "qstart": n, "snapshot": snapshot})

    # cold: fresh profile, nothing cached, empty store
    ctx = launch()
    page, cold = first_search(ctx, False)
    res["cold_start_to_first_search_ms"] = cold["firstSearchMs"]
    res["cold_boot_phases_ms"] = cold["phasesMs"]
    res["first_search_backend"] = cold["firstSearchBackend"]
    if numpy:
        assert cold["numpyState"] == "ready" and cold["backendAfter"] == "numpy", cold
        res["cold_numpy_ready_ms"] = cold["numpyReadyMs"]
    page.evaluate("async () => { await store.close(); }")
    # fill the store with the desktop's sketch file
    imp = page.evaluate(IMPORT_JS, {"file": b64(file_bytes)})
    res["import_ms"] = imp["importMs"]
    res["idb_record_bytes_per_sketch"] = imp["stats"]["recordBytesPerSketch"]
    res["idb_estimate_bytes_per_sketch_after_import"] = (imp["after"] - imp["before"]) / n
    res["idb_estimate_usage_before"] = imp["before"]
    # encode speed
    ms = page.evaluate(ENCODE_JS, {"n": encode_n, "d": 384, "backend": backend})
    res["encode_vectors"] = encode_n
    res["encode_vectors_per_s"] = encode_n / (ms / 1000)
    # scan speed (the "auto" store runs on numpy once it has loaded)
    res["search_backend"] = page.evaluate("store.backend")
    assert res["search_backend"] == backend, res["search_backend"]
    timed = page.evaluate(SEARCH_JS, {"n": n, "d": 384, "qstart": n, "nq": QUERIES, "warmup": WARMUP})
    got = timed["out"]
    res["search_warmup_ms"] = timed["warm"]
    res["search_top10_ms_in_worker"] = statistics.median(g["searchMs"] for g in got)
    res["search_top10_ms_page"] = statistics.median(g["totalMs"] for g in got)
    res["scan_codes_per_s"] = n / (res["search_top10_ms_in_worker"] / 1000)
    res["same_top10_as_native"] = [g["ids"] for g in got] == native_results
    res["search_mode"] = got[0]["scan"]["mode"]
    if res["search_mode"] == "js-prefilter":
        res["search_breakdown_median_ms"] = {
            "sketch": statistics.median(g["sketchMs"] for g in got),
            **{part: statistics.median(g["scan"][f"{part}Ms"] for g in got)
               for part in ("plan", "fetch", "scan", "rank")}}
        res["search_candidates_median"] = statistics.median(g["scan"]["candidates"] for g in got)
    ctx.close()
    # warm: same profile, second visit, N sketches in IndexedDB
    ctx = launch()
    page, warm = first_search(ctx, False)
    res["warm_start_to_first_search_ms"] = warm["firstSearchMs"]
    res["warm_boot_phases_ms"] = warm["phasesMs"]
    if numpy:
        res["warm_numpy_ready_ms"] = warm["numpyReadyMs"]
    res["warm_idb_load_ms"] = warm["loadMs"]
    assert warm["count"] == n
    est = page.evaluate("async () => (await navigator.storage.estimate()).usage")
    res["idb_estimate_bytes_per_sketch_after_reopen"] = (est - imp["before"]) / n
    # opt-in interpreter snapshot: one visit saves it, the next restores it
    for visit in ("save", "restore"):
        page, snap = first_search(ctx, True)
        assert snap["ids"] == native_results[0], "search after a snapshot start differs"
        res[f"snapshot_{visit}_visit"] = {"snapshot": snap["snapshot"],
                                          "start_to_first_search_ms": snap["firstSearchMs"],
                                          "boot_phases_ms": snap["phasesMs"]}
        page.close()
        if visit == "save":   # (FIRST_SEARCH_JS waited for the background snapshot write)
            ctx.close()
            ctx = launch()
    ctx.close()
    return res


DEMO_TARGETS = {"demo_first_visit_search_usable_ms_max": 3000, "demo_reload_search_usable_ms_max": 1500}


def demo_main(args):
    """``--only demo``: the demo page's start-up alone."""
    from playwright.sync_api import sync_playwright

    import build_site

    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        with contextlib.redirect_stdout(sys.stderr):   # keep stdout pure JSON
            build_site.build(site)
        server, base = serve(site)
        try:
            with sync_playwright() as pw:
                out = {"demo": demo_startup(pw, base, tmp), "targets": DEMO_TARGETS}
        finally:
            server.shutdown()
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--python-encode-n", type=int, default=1000,
                    help="vectors encoded by the numpy-free backend (it is slow; a rate is reported)")
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--only", choices=["demo", "profile", "million"],
                    help="demo: only the demo page's start-up; profile: only the demo's default "
                         "profile (E8 48 B + int8 rescoring: recall, speed, bytes; browser_profile.py); "
                         "million: open, top-10 and tab memory with --million-n stored sketches "
                         "(browser_million.py)")
    ap.add_argument("--million-n", type=int, default=1_000_000,
                    help="--only million: sketches stored")
    ap.add_argument("--million-codec", default="e8:384",
                    help="--only million: the store's codec spec (e8:384, clark-hash:384, ...), or "
                         "learned-e8[:D] for a learned E8 head trained first (browser_million.py)")
    ap.add_argument("--model-dir", default=str(REPO / ".cache" / "model"),
                    help="--only profile: the MiniLM ONNX model folder (build_scripts/fetch_model.py)")
    ap.add_argument("--profile-corpus", type=int, default=10_000,
                    help="--only profile: SOTU sentences stored for the recall measurement")
    ap.add_argument("--profile-queries", type=int, default=300,
                    help="--only profile: SOTU query sentences (disjoint from the corpus)")
    args = ap.parse_args(argv)
    if args.only == "demo":
        return demo_main(args)
    if args.only == "million":
        import browser_million

        return browser_million.main_million(args, serve)
    if args.only == "profile":
        import browser_profile

        return browser_profile.main_profile(args, serve, _with_hash)
    from playwright.sync_api import sync_playwright

    import build_site

    n = args.n
    rows = hash_vectors(0, n, 384)
    queries = hash_vectors(n, QUERIES, 384)
    enc, nat, native_results = native(rows, queries)
    file_bytes = sketch_file.to_bytes(CFG, enc.codes_bytes(), None, None)
    out = {"n": n, "config": CFG.to_dict() | {"seed": hex(CFG.seed)}, "code_bytes": CFG.code_bytes,
           "native_numpy": nat}
    # dense float32 top-10 in numpy (no BLAS order concerns: only an anchor)
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    t = time.perf_counter()
    for q in queries:
        np.argpartition(-(unit @ (q / np.linalg.norm(q))), 10)[:10]
    out["native_dense_matvec_top10_ms"] = 1000 * (time.perf_counter() - t) / QUERIES
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        with contextlib.redirect_stdout(sys.stderr):   # keep stdout pure JSON
            build_site.build(site)
        backends = ["python"] + (["numpy"] if os.environ.get("CLARK_HASH_PYODIDE_NUMPY") else [])
        if len(backends) == 1:
            out["browser_numpy"] = "SKIPPED (set CLARK_HASH_PYODIDE_NUMPY=...)"
        server, base = serve(site)
        try:
            with sync_playwright() as pw:
                for be in backends:
                    enc_n = args.python_encode_n if be == "python" else min(n, 20_000)
                    out[f"browser_{be}"] = browser_backend(pw, base, be, n, file_bytes,
                                                           native_results, enc_n, tmp)
                from conftest import CHROMIUM, CHROMIUM_ARGS

                out["demo"] = demo_startup(pw, base, tmp)
                b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = b.new_page()
                page.set_default_timeout(600_000)
                page.goto(base + "static/harness.html")
                page.wait_for_function("window.CH !== undefined")
                dense = page.evaluate(DENSE_JS, {"n": n, "d": 384, "qstart": n, "nq": QUERIES, "warmup": WARMUP})
                b.close()
        finally:
            server.shutdown()
    out["js_dense_cosine_top10_ms"] = dense["medianMs"]
    out["js_dense_scan_vectors_per_s"] = n / (dense["medianMs"] / 1000)
    ratios = {}
    for be in backends:
        r = out[f"browser_{be}"]
        ratios[f"{be}_scan_vs_native"] = r["search_top10_ms_in_worker"] / nat["search_top10_ms"]
        ratios[f"{be}_speedup_vs_js_dense"] = dense["medianMs"] / r["search_top10_ms_in_worker"]
        ratios[f"{be}_encode_vs_native"] = nat["encode_vectors_per_s"] / r["encode_vectors_per_s"]
    out["ratios"] = ratios
    out["targets"] = {"browser_numpy_scan_vs_native_max": 3.0, "speedup_vs_js_dense_min": 5.0,
                      "cold_start_ms_max": 3000, "warm_start_ms_max": 1500,
                      "idb_bytes_per_sketch_max": 56, **DEMO_TARGETS}
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
