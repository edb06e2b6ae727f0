"""Learned E8 head (kind 6) in the browser == desktop, byte for byte.

A config trained natively (numpy) travels to the page as its bytes; the
worker's Pyodide rebuilds it with ``config_from_bytes``, encodes the same
float32 rows with the codec of the page's backend ("python" always, "numpy"
when CLARK_HASH_PYODIDE_NUMPY supplies the wheel), writes a sketch file and
scores queries. Sketch-file bytes, query projections and score bits must
equal the native numpy ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from clark_hash_web.codecs.learned_e8 import LearnedE8, train_learned_e8
from clark_hash_web.codecs.learned_e8_stages import train_staged_e8
from clark_hash_web.formats import sketch_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from binary_helpers import clustered  # noqa: E402

PAGE_CODE = """
import json
from clark_hash_web.codecs.registry import config_from_bytes, codec_from_config
from clark_hash_web.formats import sketch_file
from array import array

cfg = config_from_bytes(bytes.fromhex(CFG))
codec = codec_from_config(cfg, BACKEND)
flat = array("f", bytes.fromhex(ROWS))
rows = [flat[i * D:(i + 1) * D] for i in range(len(flat) // D)]
enc = codec.encode(rows)
out = {"backend": codec.backend, "kind": type(codec).__name__,
       "file": sketch_file.encoded_to_bytes(enc, IDS).hex(), "values": [], "scores": []}
for qi in QUERIES:
    q = codec.sketch_query(rows[qi])
    out["values"].append(array("f", list(q.values)).tobytes().hex())
    out["scores"].append(array("f", list(codec.score(q, enc))).tobytes().hex())
json.dumps(out)
"""


def native(cfg, rows, ids, queries):
    codec = LearnedE8(cfg, "numpy")
    enc = codec.encode(rows)
    values, scores = [], []
    for qi in queries:
        q = codec.sketch_query(rows[qi])
        values.append(np.asarray(q.values, np.float32).tobytes().hex())
        scores.append(np.asarray(codec.score(q, enc), np.float32).tobytes().hex())
    return sketch_file.encoded_to_bytes(enc, ids).hex(), values, scores


@pytest.mark.parametrize("d,group,n", [(384, 16, 150), (37, 40, 60), (384, "stages", 80),
                                       (37, "stages", 40)])
def test_learned_e8_sketch_file_and_scores_match_native(runtime_page, d, group, n):
    """Format 1 (block rotation, ``group``) and format 2 (``"stages"``: principal axes,
    exact integer rotation, E8 stages)."""
    backend, page = runtime_page
    data = clustered(900 + n, d, clusters=30, spread=0.6, seed=d)
    data = data + np.float32(0.3) * data[:1]  # a shared direction, as in real embeddings
    if group == "stages":
        cfg = train_staged_e8(data[:900], seed=3)
        assert cfg.format == 2
    else:
        cfg = train_learned_e8(data[:900], seed=3, group=group, iterations=3, queries=100)
    rows = np.ascontiguousarray(data[900:], dtype=np.float32)
    rows[1] *= np.float32(3e-4)
    rows[2] = np.round(rows[2] * 8) / 8  # exact ties
    ids = [f"doc-{i}" for i in range(n)]
    queries = [0, 1, n - 1]
    want_file, want_values, want_scores = native(cfg, rows, ids, queries)
    code = (f"CFG = {cfg.to_bytes().hex()!r}\nBACKEND = {backend!r}\nROWS = {rows.tobytes().hex()!r}\n"
            f"D = {d}\nIDS = {ids!r}\nQUERIES = {queries!r}\n") + PAGE_CODE
    import json

    got = json.loads(page.evaluate("async (code) => await rt.call('runPython', {code})", code))
    assert got["backend"] == backend
    assert got["kind"] == ("StagedE8" if group == "stages" else "LearnedE8")
    assert got["file"] == want_file, "sketch file (config + codes + ids) differs from native"
    for j in range(len(queries)):
        assert got["values"][j] == want_values[j], f"query {j}: rotated query values differ"
        assert got["scores"][j] == want_scores[j], f"query {j}: score bits differ"
