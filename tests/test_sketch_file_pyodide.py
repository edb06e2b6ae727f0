"""Sketch files written inside Pyodide (numpy-free) are byte-identical to desktop ones.

Runs Pyodide 314 under Node (``node_modules/pyodide``, installed by
``build_scripts/setup.sh``); skipped when Node or the package is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYODIDE = ROOT / "node_modules" / "pyodide"
RUNNER = Path(__file__).resolve().parent / "test_sketch_pyodide.mjs"

# Shared by both sides: builds the files and returns {case: hex bytes}.
SCRIPT = r'''
import json
from clark_hash_web import ClarkHash, ClarkHashConfig
from clark_hash_web.formats import sketch_file as sf

def rows(n, d, seed):
    state, out = seed, []
    for _ in range(n):
        row = []
        for _ in range(d):
            state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
            row.append(((state >> 11) / 2**53 * 2 - 1) * (1 + (state & 7)))
        out.append(row)
    return out

def build(backend=None):
    files = {}
    cases = [
        ("default-cosine-int", ClarkHashConfig(384), 20, list(range(100, 120))),
        ("dot-str", ClarkHashConfig(48, sketch_dim=33, bits=5, metric="dot",
                                    norm_log2_min=-5, norm_log2_max=7),
         12, ["id-%d-\u00e9\u20ac\U0001F600" % i for i in range(12)]),
        ("bits3-none", ClarkHashConfig(24, sketch_dim=10, bits=3, seed=7), 9, None),
    ]
    for name, cfg, n, ids in cases:
        enc = ClarkHash(cfg, backend).encode(rows(n, cfg.input_dim, n))
        files[name] = sf.encoded_to_bytes(enc, ids).hex()
        path = "/tmp/sketch_%s.chs" % name
        half = n // 2
        first = ClarkHash(cfg, backend).encode(rows(n, cfg.input_dim, n)[:half])
        rest = ClarkHash(cfg, backend).encode(rows(n, cfg.input_dim, n)[half:])
        sf.save_encoded(path, first, ids[:half] if ids else None)
        sf.append_encoded(path, rest, ids[half:] if ids else None)
        with open(path, "rb") as f:
            files[name + "+append"] = f.read().hex()
    return files
'''


def desktop_files(backend):
    scope = {}
    exec(SCRIPT, scope)
    return scope["build"](backend)


@pytest.mark.slow
def test_pyodide_writes_identical_sketch_files(tmp_path):
    node = shutil.which("node")
    if node is None or not (PYODIDE / "pyodide.mjs").exists():
        pytest.skip("needs node and node_modules/pyodide (bash build_scripts/setup.sh)")
    script = tmp_path / "script.py"
    script.write_text(SCRIPT + "\nimport sys\njson.dumps({'numpy': 'numpy' in sys.modules, "
                      "'backend': ClarkHash(ClarkHashConfig(4)).backend, 'files': build()})\n")
    done = subprocess.run([node, str(RUNNER), str(PYODIDE), str(ROOT / "clark_hash_web"),
                           str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    browser = json.loads(done.stdout)
    assert browser["backend"] == "python" and not browser["numpy"]
    for backend in ("numpy", "python"):
        desktop = desktop_files(backend)
        assert desktop.keys() == browser["files"].keys()
        for name, data in desktop.items():
            assert browser["files"][name] == data, f"{name} differs ({backend} backend)"
    assert desktop["dot-str+append"] == desktop["dot-str"]
