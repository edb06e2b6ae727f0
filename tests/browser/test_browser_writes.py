"""Writes to a store after opening it: planned from the worker's rows, applied to them.

A store is filled, closed and reopened (the worker's rows come from
IndexedDB, packed with little spare room), then written without reopening:
single adds, a batch that crosses blocks and outgrows the packed columns,
deletes across blocks (one block emptied), an id deleted and added again
with a new vector (update by id), a duplicate id and an unknown id (both
refused, nothing written). After every step the top-k of several queries
(ids and float32 score bits) must equal a fresh native index that went
through the same steps, the ids and count must follow, Python must hold no
copy of the rows (large stores: no operation needs one) and a final reopen
must read back the same rows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from clark_hash_web.codecs import registry
from clark_hash_web.index import make_index

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_helpers import f32_rows, unb64  # noqa: E402

N = 3001
D = 64
K = 12
# E8: the JS table scan; Clark Hash dot: the JS prefilter + Python ranking of the candidates'
# codes (and norm codes), or, with a high prefilterMinRows, Python alone from its read cache
CASES = [("e8:64", "int", 100), ("e8:64", "str", 100), ("clark-hash:64:metric=dot", "int", 100),
         ("clark-hash:64:metric=dot", "str", 10**7), ("hyperplane-lsh:64:n_bits=100", "int", 100)]

WRITES_JS = """
async ({name, codec, minRows, rows, n, ids, steps, queries, nq, k, pyRowsCode, oldStoresCode}) => {
  await CH.ClarkHashStore.destroy(name, rt);
  await rt.call("runPython", {code: oldStoresCode});
  await rt.call("setPrefilterMinRows", {rows: minRows});
  let s = await CH.ClarkHashStore.open({name, codec, runtime: rt});
  const d = s.config.input_dim;
  const split = (b64, m) => {
    const f = new Float32Array(CH.b64dec(b64).buffer);
    return Array.from({length: m}, (_, i) => f.subarray(i * d, (i + 1) * d));
  };
  await s.addMany(split(rows, n), ids ? {ids} : {});
  await s.close();
  s = await CH.ClarkHashStore.open({name, runtime: rt});
  const qf = new Float32Array(CH.b64dec(queries).buffer);
  const pyRows = () => rt.call("runPython", {code: pyRowsCode});
  const state = async () => {
    const out = [];
    for (let j = 0; j < nq; j++) {
      const r = await rt.call("search", {handle: s.handle, query: qf.slice(j * d, (j + 1) * d).buffer, k});
      out.push({ids: r.ids, scores: CH.b64enc(new Uint8Array(r.scores)), by: r.scan.ids || r.scan.mode});
    }
    return {searches: out, count: await s.count(), ids: await s.ids(), pyRows: await pyRows()};
  };
  const results = [await state()];
  for (const st of steps) {
    let got = null, error = null;
    try {
      if (st.op === "add") got = await s.addMany(split(st.rows, st.n), st.ids ? {ids: st.ids} : {});
      else got = await s.delete(st.ids);
    } catch (e) {
      error = e.type || e.name;
    }
    results.push({got, error, ...(await state())});
  }
  const stats = await s.stats();
  await s.close();
  s = await CH.ClarkHashStore.open({name, runtime: rt});
  const reopened = await state();
  const statsReopened = await s.stats();
  await s.close();
  await CH.ClarkHashStore.destroy(name, rt);
  await rt.call("setPrefilterMinRows", {rows: 2000});
  return {results, reopened, stats, statsReopened};
}
"""

#: rows Python holds in the stores opened since OLD_STORES ran (stores closed by earlier
#: tests may still wait for the JS garbage collector to release their proxies)
OLD_STORES = """
import gc, weakref
from clark_hash_web.browser.bridge import BrowserStore
_old_stores = weakref.WeakSet(o for o in gc.get_objects() if isinstance(o, BrowserStore))
"""
PY_ROWS = """
sum(len(o.index) for o in gc.get_objects() if isinstance(o, BrowserStore) and o not in _old_stores)
"""


def vectors(n, seed, base):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, D)).astype(np.float32) + base).astype(np.float32)


def plan_steps(ids, id_kind, base):
    """The writes (JS steps) and what the native index does for each: (step, apply(index) -> result)."""
    steps = []
    one = vectors(1, 21, base)
    more = vectors(1500, 22, base)      # crosses the last block and outgrows the packed columns
    more[700:703] = more[5]             # exact ties among new rows
    again = vectors(1, 23, base)
    new_ids = (lambda m, tag: [f"{tag}{j}" for j in range(m)]) if id_kind == "str" else None
    add = lambda v, i: {"op": "add", "rows": f32_rows(v), "n": len(v), "ids": i}  # noqa: E731
    steps.append((add(one, new_ids(1, "a") if new_ids else None), ("add", one)))
    steps.append((add(more, new_ids(1500, "b") if new_ids else None), ("add", more)))
    drop = ids[1024:2048] + [ids[0], ids[1023], ids[2500], ids[-1]]   # empties block 1
    steps.append(({"op": "delete", "ids": drop}, ("delete", drop)))
    steps.append(({"op": "delete", "ids": [ids[7]]}, ("delete", [ids[7]])))   # update id 7: delete ...
    steps.append((add(again, [ids[7]]), ("add", again)))                      # ... and add it again
    steps.append((add(one, [ids[8]]), ("error", "DuplicateIdError")))         # stored id: refused
    steps.append(({"op": "delete", "ids": [ids[9], "nope" if id_kind == "int" else 10**9]},
                  ("error", "KeyError")))                                      # unknown id: refused
    return steps


@pytest.mark.parametrize("spec,id_kind,min_rows", CASES, ids=[f"{s}-{i}-{m}" for s, i, m in CASES])
def test_writes_after_opening_rank_like_a_fresh_native_index(runtime_page, spec, id_kind, min_rows):
    backend, page = runtime_page
    config = registry.config_from_spec(spec)
    base = np.random.default_rng(4).standard_normal(D).astype(np.float32)
    rows = vectors(N, 5, base)
    rows[2990:2995] = rows[3]                       # exact ties across blocks
    ids = list(range(N)) if id_kind == "int" else [f"note {i}" for i in range(N)]
    steps = plan_steps(ids, id_kind, base)
    queries = np.concatenate([rows[[3, 1500]], vectors(2, 6, base)])
    got = page.evaluate(WRITES_JS, {
        "name": f"writes-{spec}-{id_kind}", "codec": spec, "minRows": min_rows, "rows": f32_rows(rows), "n": N,
        "ids": None if id_kind == "int" else ids, "steps": [s for s, _ in steps],
        "queries": f32_rows(queries), "nq": len(queries), "k": K, "pyRowsCode": PY_ROWS,
        "oldStoresCode": OLD_STORES})

    index = make_index(config, backend="numpy")
    index.add(rows, ids)
    large = min_rows < N
    for j, (res, (step, (what, arg))) in enumerate(zip(got["results"], [(None, (None, None))] + steps)):
        where = f"{spec} {backend}, after step {j} ({step['op'] if step else 'open'})"
        if what == "add":
            want_ids = step["ids"] or list(range(max(i for i in index.ids if isinstance(i, int)) + 1,
                                                  max(i for i in index.ids if isinstance(i, int)) + 1 + len(arg)))
            assert res["error"] is None and res["got"] == want_ids, where
            index.add(arg, want_ids)
        elif what == "delete":
            assert res["error"] is None and res["got"] == len(set(arg)), where
            index.remove(arg)
        elif what == "error":
            assert res["error"] == arg, where
        assert res["count"] == len(index) and res["ids"] == list(index.ids), where
        for q, g in zip(queries, res["searches"]):
            want, scores = index.search(q, K)
            assert g["ids"] == list(want), where
            assert unb64(g["scores"]) == np.asarray(scores, "<f4").tobytes(), where
        if large:   # searched and written from the worker's rows only
            assert res["pyRows"] == 0 and {g["by"] for g in res["searches"]} == {"js"}, where
        else:
            assert {g["by"] for g in res["searches"]} == {"python"}, where
    final = got["results"][-1]
    assert got["reopened"]["ids"] == final["ids"] and got["reopened"]["searches"] == final["searches"]
    assert got["stats"] == got["statsReopened"] and got["stats"]["count"] == len(index)
