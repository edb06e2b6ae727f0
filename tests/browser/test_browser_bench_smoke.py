"""benchmarks/browser_bench.py still runs end to end (small N), and what it measures is right.

Not a speed test: it checks that the benchmark's browser searches return the
native top 10, that the start-up visits happened as described (numpy after
start-up, snapshot saved then restored), that the demo page's visits found
the typed query's note, and that the JSON has its fields.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _load(name):
    """A benchmark script as a module (for its constants)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_bench(args, out, timeout):
    """Run benchmarks/browser_bench.py with ``args`` and ``--out out``; its JSON.

    In its own process: Playwright's sync API cannot start inside the session's browser fixture loop.
    """
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "browser_bench.py"), *args,
                           "--out", str(out)],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def test_browser_bench_runs_and_finds_the_native_top10(tmp_path):
    bench = _load("browser_bench")
    res = _run_bench(["--n", "2500", "--python-encode-n", "40"], tmp_path / "bench.json", 900)
    backends = ["python"] + (["numpy"] if os.environ.get("CLARK_HASH_PYODIDE_NUMPY") else [])
    for be in backends:
        r = res[f"browser_{be}"]
        assert r["same_top10_as_native"] is True and r["search_mode"] == "js-prefilter"
        assert r["first_search_backend"] == "python" and r["search_backend"] == be
        assert r["snapshot_save_visit"]["snapshot"] == "saved"
        assert r["snapshot_restore_visit"]["snapshot"] == "restored"
        assert len(r["search_warmup_ms"]) == bench.WARMUP
        assert r["cold_start_to_first_search_ms"] > 0 and r["warm_start_to_first_search_ms"] > 0
    assert res["ratios"] and res["js_dense_cosine_top10_ms"] > 0
    # the demo page: first visit, reload, visit after a browser restart, each searched
    for visit in ("first_visit", "reload", "after_browser_restart"):
        d = res["demo"][visit]
        assert 0 < d["search_usable_ms"] <= d["first_results_ms"], d
        assert d["first_results_mode"] in ("words", "meaning")
        assert d["first_results_top"].startswith("Sourdough"), d
        assert d["search_usable_ms"] <= d["meaning_ready_ms"], d
    assert res["demo"]["first_visit"]["search_mode_text_then"] == "Model loading: showing word matches."
    if len(backends) == 1:
        assert res["browser_numpy"].startswith("SKIPPED")


def test_browser_bench_million_mode_runs_small_and_is_exact(tmp_path):
    """``--only million`` end to end at 3,000 sketches: the reopened store's top 10 equal the
    native exact ranking (ids and score bits), and the JSON has the targets and verdicts."""
    res = _run_bench(["--only", "million", "--million-n", "3000"], tmp_path / "million.json", 600)
    assert res["codec"] == "e8:384" and "learned_config" not in res
    _check_million(res, 3000)


def test_browser_bench_million_mode_runs_small_with_a_learned_e8_head(tmp_path):
    """``--million-codec learned-e8``: a normalized format-2 head trained natively (SOTU rows
    when cached, else synthetic), its config bytes given to the store; the reopened store's
    searches (row scales computed at open and on the writes) equal native numpy, score bits too."""
    res = _run_bench(["--only", "million", "--million-n", "3000", "--million-codec", "learned-e8"],
                     tmp_path / "million_learned.json", 600)
    learned = res["learned_config"]
    assert res["codec"] == "learned-e8" and res["code_bytes"] == 48
    assert learned["normalized"] is True and learned["config_bytes"] > 1000
    assert learned["trained_on"].startswith(("sotu_corpus.npy", "synthetic"))
    _check_million(res, 3000)


def _check_million(res, n):
    """What every ``--only million`` run at ``n`` sketches must show."""
    bench_million = _load("browser_million")
    assert res["n"] == n and res["search_backend"] == "python"
    assert res["same_ids_and_score_bits_as_native"] is True and res["queries_checked"] == 40
    assert res["searches_checked"] == 40 * bench_million.ROUNDS
    assert res["scan_breakdown_one_query"]["mode"] == "js-table-scan"
    assert res["scan_breakdown_one_query"]["ids"] == "js"      # searched without Python's copy
    assert res["open_ms"] > 0 and res["top10_all"]["p90_ms"] >= res["top10_all"]["median_ms"] > 0
    assert set(res["meets"]) == {"top10_ms", "open_ms", "extra_tab_memory", "extra_tab_memory_after_write_and_search",
                                 "exact"}
    assert res["meets"]["exact"] is True   # also the search after the write
    assert res["after_first_write"]["search_after_write_same_ids_and_score_bits_as_native"] is True
    assert res["after_growing_write"]["count"] == n + 1 + bench_million.GROW_ROWS
    assert res["memory"]["per_process_after"], "no renderer process measured"
    assert res["after_first_write"]["first_write_ms"] > 0
