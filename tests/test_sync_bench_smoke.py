"""benchmarks/sync_load.py runs end to end on both stores (tiny sizes) and reports a clean check."""

import json
import os
import subprocess
import sys

import pytest

from sync_fixtures import REPO, local_postgres


@pytest.mark.slow
def test_sync_load_benchmark_smoke():
    local_postgres()  # fails in CI / skips locally with the reason when PostgreSQL is missing
    out = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "sync_load.py"),
                          "--devices", "4", "--changes", "2003", "--batch", "300", "--page", "400"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert set(result["stores"]) == {"sqlite", "postgresql"}
    for kind, r in result["stores"].items():
        assert r["push"]["sketches"] == r["pull"]["sketches"] == 2003, kind
        assert r["push"]["requests"] == 8  # 501, 501, 501, 500 rows: two 300-row pushes each
        assert r["check"] == {"last_seq": 2003, "live": 2003, "items": 2003, "pushes": 8,
                              "gapless": True, "lost": 0, "duplicated": 0}, kind
        assert r["push"]["p50_ms"] <= r["push"]["p99_ms"]
