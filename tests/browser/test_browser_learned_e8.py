"""Learned E8 head (kind 6) in the browser == desktop, byte for byte.

A config trained natively (numpy) travels to the page as its bytes; the
worker's Pyodide rebuilds it with ``config_from_bytes``, encodes the same
float32 rows with the codec of the page's backend ("python" always, "numpy"
when CLARK_HASH_PYODIDE_NUMPY supplies the wheel), writes a sketch file and
scores queries. Sketch-file bytes, query projections and score bits must
equal the native numpy ones.

A format-2 head stored in a browser store is searched by the exact JS table
scan (static/table-scan.js; normalized heads: the sums finished with the
query's bias and the row scales, static/normalized-scores.js, rows scaled at
open and at every write): ids and score bits equal native numpy and
pure-Python BinaryIndex / TwoStageIndex through adds, deletes and reopens.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from clark_hash_web.codecs.learned_e8 import LearnedE8, train_learned_e8
from clark_hash_web.codecs.learned_e8_stages import train_staged_e8
from clark_hash_web.formats import sketch_file
from clark_hash_web.index import make_index
from clark_hash_web.index.two_stage import VectorFile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from binary_helpers import clustered  # noqa: E402
from browser_helpers import b64, f32_rows  # noqa: E402

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


# -- a format-2 head in a browser store: the exact JS table scan --------------------------
STORE_JS = """
async ({name, configBytes, backend, d, steps, queries, nq, k, rescore}) => {
  await CH.ClarkHashStore.destroy(name, rt);
  const config = CH.b64dec(configBytes);
  let s = await CH.ClarkHashStore.open({name, config, backend, vectors: "int8", runtime: rt});
  const split = (b64, m) => {
    const f = new Float32Array(CH.b64dec(b64).buffer);
    return Array.from({length: m}, (_, i) => f.subarray(i * d, (i + 1) * d));
  };
  const qf = new Float32Array(CH.b64dec(queries).buffer);
  const state = async () => {
    const out = {one: [], two: [], modes: []};
    for (let j = 0; j < nq; j++) {
      const query = () => qf.slice(j * d, (j + 1) * d).buffer;
      const r = await rt.call("search", {handle: s.handle, query: query(), k});
      out.one.push({ids: r.ids, scores: CH.b64enc(new Uint8Array(r.scores))});
      out.modes.push(r.scan.mode);
      const t = await rt.call("search", {handle: s.handle, query: query(), k, rescore});
      out.two.push({ids: t.ids, scores: CH.b64enc(new Uint8Array(t.scores))});
    }
    return {...out, count: await s.count(), ids: await s.ids(), backend: s.backend};
  };
  const results = [];
  for (const st of steps) {
    if (st.op === "add") await s.addMany(split(st.rows, st.n), {ids: st.ids});
    else if (st.op === "delete") await s.delete(st.ids);
    else {   // reopen: the rows (and their scales) come back from IndexedDB
      await s.close();
      s = await CH.ClarkHashStore.open({name, backend, runtime: rt});
    }
    results.push(await state());
  }
  await s.close();
  await CH.ClarkHashStore.destroy(name, rt);
  return results;
}
"""


def store_steps(data, d):
    """Writes as (JS step, rows or ids): a fill crossing a block, reopen, adds (exact ties),
    deletes across blocks, reopen."""
    rows = np.ascontiguousarray(data[:1100])
    more = np.ascontiguousarray(data[1100:1130])
    more[10:13] = rows[3]                        # exact ties with a stored row
    again = np.ascontiguousarray(data[1130:1135])
    add = lambda r, start: ({"op": "add", "rows": f32_rows(r), "n": len(r),  # noqa: E731
                             "ids": list(range(start, start + len(r)))}, r)
    gone = list(range(0, 1100, 9)) + list(range(1020, 1040))
    return [add(rows, 0), ({"op": "reopen"}, None), add(more, 1100),
            ({"op": "delete", "ids": gone}, gone), add(again, 2000), ({"op": "reopen"}, None)]


def reference(index, queries, k, **kw):
    out = []
    for q in queries:
        ids, scores = index.search(q, k, **kw)
        out.append({"ids": [int(i) for i in ids], "scores": b64(np.asarray(scores, "<f4").tobytes())})
    return out


@pytest.mark.parametrize("normalize,code_bytes", [(True, None), (True, 7), (False, None)],
                         ids=["normalized-8B", "normalized-7B", "plain-8B"])
def test_format2_store_search_and_writes_match_native(runtime_page, tmp_path, normalize, code_bytes):
    """A format-2 head stored in the browser: search (exact JS table scan, then the same with
    two-stage rescoring), writes, reopens; ids and score bits == native numpy and pure-Python
    BinaryIndex (and TwoStageIndex) over the same rows. 8 code bytes: the 4-row word scan;
    7: the byte scan. Normalized heads must rank differently from their plain table sums
    on this data (else the test could not see ignored row scales)."""
    backend, page = runtime_page
    d, k, rescore = 64, 15, 40
    data = clustered(2100, d, clusters=25, spread=0.7, seed=11)
    data = (data + np.float32(0.4) * data[:1]).astype(np.float32)   # a shared direction: o matters
    cfg = train_staged_e8(data[1200:], seed=5, code_bytes=code_bytes, normalize=normalize)
    assert cfg.normalized is normalize and cfg.code_bytes == (code_bytes or 8)
    steps = store_steps(data, d)
    queries = np.concatenate([data[[3, 500]], data[1900:1904]])
    got = page.evaluate(STORE_JS, {
        "name": f"staged-{normalize}-{code_bytes}", "configBytes": b64(cfg.to_bytes()),
        "backend": backend, "d": d, "steps": [s for s, _ in steps], "queries": f32_rows(queries),
        "nq": len(queries), "k": k, "rescore": rescore})

    natives = [make_index(cfg, backend=b) for b in ("numpy", "python")]
    two = make_index(cfg, backend="numpy", vectors=VectorFile(tmp_path / "v.bin", d, "int8"))
    plain = make_index(dataclasses.replace(cfg, normalized=False), backend="numpy")
    differs = False
    for j, ((step, arg), res) in enumerate(zip(steps, got)):
        where = f"{backend} backend, normalize={normalize}, after step {j} ({step['op']})"
        for index in natives + [two, plain]:
            if step["op"] == "add":
                index.add(arg, step["ids"])
            elif step["op"] == "delete":
                index.remove(arg)
        assert res["backend"] == backend and res["count"] == len(two), where
        assert res["ids"] == [int(i) for i in two.ids], where
        assert set(res["modes"]) == {"js-table-scan"}, where
        one = reference(natives[0], queries, k)
        assert reference(natives[1], queries, k) == one, f"{where}: native numpy != pure Python"
        assert res["one"] == one, f"{where}: JS table scan != native BinaryIndex"
        assert res["two"] == reference(two, queries, k, rescore=rescore), \
            f"{where}: two-stage != native TwoStageIndex"
        sums = reference(plain, queries, k)
        differs |= any(a["ids"] != b["ids"] for a, b in zip(sums, one))
        if normalize:
            assert all(a["scores"] != b["scores"] for a, b in zip(sums, one)), where
        else:
            assert sums == one, where
    if normalize:
        assert differs, "the row scales never changed a ranking: this data cannot test them"
