"""Browser == desktop, byte for byte: codes, norm codes, search ids and score bits, sketch files.

Runs once per backend: "python" (the numpy-free runtime: numpy is not even
loaded in the worker) always; "numpy" only when CLARK_HASH_PYODIDE_NUMPY
supplies a Pyodide numpy wheel. The desktop reference is native numpy.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from clark_hash_web import ClarkHash, ClarkHashConfig, InvalidVectorError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from shared_cases import config_of, conformance_files, f32_hex_rows, load_case  # noqa: E402

from browser_helpers import FILL_AND_READ_JS, config_js, desktop, f32_rows, unb64  # noqa: E402

CASES = conformance_files()
# (bits, sketch_dim, hashes_per_input, metric): every bit width, both metrics.
RANDOM_CONFIGS = [(1, 128, 4, "cosine"), (2, 96, 4, "cosine"), (3, 64, 2, "cosine"),
                  (4, 96, 4, "cosine"), (5, 48, 4, "cosine"), (6, 64, 3, "cosine"),
                  (7, 40, 4, "cosine"), (8, 48, 1, "cosine"),
                  (1, 64, 4, "dot"), (4, 96, 4, "dot"), (6, 50, 7, "dot"), (8, 32, 4, "dot")]
RANDOM_ROWS = 1000


def run_parity(runtime_page, name, cfg, rows, ids, queries, k, batch=400):
    backend, page = runtime_page
    enc, searches, file = desktop(cfg, rows, ids, queries, k)
    got = page.evaluate(FILL_AND_READ_JS, {
        "name": name, "config": config_js(cfg), "backend": backend,
        "rows": f32_rows(rows), "n": len(rows), "ids": ids,
        "queries": f32_rows(queries) if len(queries) else "", "nq": len(queries), "k": k,
        "batch": batch})
    assert got["backend"] == backend and got["encodeBackend"] == backend
    assert got["count"] == len(rows)
    assert got["ids"] == list(ids)
    assert unb64(got["rawCodes"]) == enc.codes_bytes(), "stateless encode: codes differ"
    assert unb64(got["codes"]) == enc.codes_bytes(), "stored codes differ"
    assert unb64(got["norms"]) == enc.norm_codes_bytes()
    assert unb64(got["rawNorms"]) == enc.norm_codes_bytes()
    for j, ((want_ids, want_scores), s) in enumerate(zip(searches, got["searches"])):
        assert s["ids"] == want_ids, f"query {j}: ranking differs"
        assert unb64(s["scores"]) == want_scores, f"query {j}: score bits differ"
    assert unb64(got["file"]) == file, "exported sketch file differs from the desktop one"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_conformance_case(runtime_page, path):
    case = load_case(path)
    cfg = config_of(case)
    db = np.asarray(f32_hex_rows(case["db_hex"]), dtype=np.float32)
    strict = ClarkHash(cfg, backend="numpy").encode(db, errors="skip")
    good = strict.rows
    codec = ClarkHash(cfg, backend="numpy")
    queries = []
    for q in f32_hex_rows(case["queries_hex"]):
        try:
            codec.sketch_query(np.asarray(q, dtype=np.float32))
        except InvalidVectorError:
            continue
        queries.append(q)
    queries = np.asarray(queries, dtype=np.float32).reshape(-1, cfg.input_dim)
    run_parity(runtime_page, f"conf-{path.stem}", cfg, db[good], list(good), queries, len(good) + 3)


@pytest.mark.parametrize("bits,m,s,metric", RANDOM_CONFIGS,
                         ids=[f"b{b}_m{m}_s{s}_{mt}" for b, m, s, mt in RANDOM_CONFIGS])
def test_random_vectors(runtime_page, bits, m, s, metric):
    d = 384 if (bits, m) == (4, 96) else 96   # the default config at full size
    cfg = ClarkHashConfig(input_dim=d, sketch_dim=m, bits=bits, hashes_per_input=s, metric=metric,
                          seed=0x5EEDCAFE12345678 ^ (bits * 7919 + m))
    rng = np.random.default_rng(bits * 1000 + m)
    rows = rng.standard_normal((RANDOM_ROWS, d)).astype(np.float32)
    if metric == "dot":   # norms spread over many octaves
        rows *= np.exp2(rng.uniform(-6, 6, (RANDOM_ROWS, 1))).astype(np.float32)
    # near-duplicates make exact score ties, which must rank by insertion order
    rows[500:510] = rows[0]
    queries = np.concatenate([rows[:2], rng.standard_normal((2, d)).astype(np.float32)])
    ids = [f"v{i}" for i in range(RANDOM_ROWS)] if bits % 2 else list(range(RANDOM_ROWS))
    run_parity(runtime_page, f"rand-{bits}-{m}-{metric}", cfg, rows, ids, queries, RANDOM_ROWS)
