"""BrowserStore write plans against a plain model of the store, on the desktop (no browser).

Random adds (automatic, int and str ids), deletes of ids in any block and
sketch-file imports are planned from the stored view (the records, as the
worker's StoredRows answers), replayed into a dict standing in for IndexedDB
and committed; after every step the records and a reload (codes, export,
search) must agree with the model (a list of (id, code, norm code) rows in
insertion order), the store must keep no copy of the rows, and bad ids must
fail as before.
"""

from __future__ import annotations

import numpy as np
import pytest

from clark_hash_web import ClarkHash, ClarkHashConfig, DuplicateIdError
from clark_hash_web.browser import bridge as bb
from clark_hash_web.codecs import registry
from clark_hash_web.formats import sketch_file
from test_bridge_unit import FakeDB as UnitFakeDB

CH = ClarkHashConfig(input_dim=16, sketch_dim=24, bits=3, metric="dot")
E8 = registry.config_from_spec("e8:16")


class FakeDB(UnitFakeDB):
    """Block key -> record, as idb-store.js applies a plan; with the rows it holds."""

    def rows(self):
        """(ids, codes, norms) of every record in key order, ids decoded from their records."""
        ids, codes, norms = [], b"", b""
        for k in sorted(self.records):
            r = self.records[k]
            ids += bb._ids_from_record(r["ids"])
            codes += r["block"]["codes"]
            norms += r["block"]["norms"] or b""
        return ids, codes, norms

    def record_bytes(self, cfg):
        """What stats() counts, from the records themselves."""
        total = len(cfg.to_bytes()) + 64
        for r in self.records.values():
            rec = r["ids"]
            idb = 16 if rec["kind"] == "range" else len(rec["data"]) if rec["kind"] == "int" \
                else sum(len(s.encode()) + 2 for s in rec["data"])
            total += len(r["block"]["codes"]) + len(r["block"]["norms"] or b"") + 8 + idb
        return total


def vecs(n, rng, d):
    return (rng.standard_normal((n, d)) * np.exp2(rng.uniform(-2, 2, (n, 1)))).astype(np.float32)


def check(store, db, model, cfg, backend):
    ids, codes, norms = db.rows()
    assert ids == [m[0] for m in model]
    assert codes == b"".join(m[1] for m in model)
    assert norms == b"".join(m[2] for m in model)
    assert all(0 < r["block"]["n"] <= bb.BLOCK_ROWS for r in db.records.values())
    for r in db.records.values():   # each record in its compact form
        assert r["ids"] == bb._ids_record(bb._ids_from_record(r["ids"]))
    assert not store.loaded and len(store.index) == 0   # plans never load the rows
    sizes = [(r["block"]["n"], len(r["block"]["norms"] or b""), bb._ids_record_bytes(r["ids"]))
             for r in db.records.values()]
    st = store.stats_of_blocks(sizes, 0, 0)
    assert st["count"] == len(model) and st["blocks"] == len(db.records)
    assert st["sketchRecordBytes"] == db.record_bytes(cfg)
    again, _ = bb.open_store(cfg.to_bytes(), backend, list(db.records.values()), db.next_auto)
    got = again.codes()
    assert got["ids"] == ids and got["codes"] == codes and (got["normCodes"] or b"") == norms
    assert again.export() == sketch_file.to_bytes(cfg, codes, got["normCodes"], ids or None)
    assert again.next_auto == store.next_auto
    return again


@pytest.mark.parametrize("backend", ["python", "numpy"])
@pytest.mark.parametrize("cfg", [CH, E8], ids=["clark-hash-dot", "e8"])
@pytest.mark.parametrize("id_kind", ["auto", "int", "str"])
def test_random_writes_agree_with_a_model(backend, cfg, id_kind):
    rng = np.random.default_rng(hash((backend, id_kind, cfg.code_bytes)) % 2**32)
    ref = registry.codec_from_config(cfg, "numpy")
    store, db, model = bb.BrowserStore(cfg.to_bytes(), backend), FakeDB(), []
    used = set()
    for step in range(14):
        op = rng.integers(0, 4) if model else 0
        if op <= 1:                                   # add
            n = int(rng.integers(1, 900))
            v = vecs(n, rng, cfg.input_dim)
            if id_kind == "auto":
                ids = None
            elif id_kind == "int":
                pool = rng.choice(10**6, size=n + 50, replace=False).tolist()
                ids = [i for i in pool if i not in used][:n]
            else:
                ids = [f"n{step}-{j}" for j in range(n)]
            plan = store.plan_add(v.tobytes(), n, ids, db)
            db.apply(plan)
            got = store.commit(plan["token"])
            enc = ref.encode(v)
            nb = enc.norm_codes_bytes() or b""
            cb = cfg.code_bytes
            model += [(i, enc.codes_bytes()[r * cb:(r + 1) * cb], nb[2 * r:2 * r + 2])
                      for r, i in enumerate(got)]
            used.update(got)
        elif op == 2:                                 # delete ids of any blocks
            pick = rng.choice(len(model), size=min(len(model), int(rng.integers(1, 1200))), replace=False)
            drop = [model[p][0] for p in pick]
            plan = store.plan_delete(drop, db)
            db.apply(plan)
            assert store.commit(plan["token"]) == len(drop)
            gone = set(drop)
            model = [m for m in model if m[0] not in gone]
        else:                                         # import a sketch file
            n = int(rng.integers(1, 300))
            enc = ref.encode(vecs(n, rng, cfg.input_dim))
            ids = [f"i{step}-{j}" for j in range(n)] if id_kind == "str" else \
                [max(used) + 7 + 3 * j for j in range(n)]
            data = sketch_file.to_bytes(cfg, enc.codes_bytes(), enc.norm_codes_bytes(), ids)
            plan = store.plan_import(data, db)
            db.apply(plan)
            got = store.commit(plan["token"])
            nb = enc.norm_codes_bytes() or b""
            cb = cfg.code_bytes
            model += [(i, enc.codes_bytes()[r * cb:(r + 1) * cb], nb[2 * r:2 * r + 2])
                      for r, i in enumerate(got)]
            used.update(got)
        store = check(store, db, model, cfg, backend) if step % 5 == 4 else store
        check_errors(store, db, model, cfg)
    check(store, db, model, cfg, backend)


def check_errors(store, db, model, cfg):
    """Duplicate and unknown ids fail before anything is planned."""
    one = vecs(1, np.random.default_rng(0), cfg.input_dim).tobytes()
    if model:
        with pytest.raises(DuplicateIdError):
            store.plan_add(one, 1, [model[len(model) // 2][0]], db)
        bad = "nope" if isinstance(model[0][0], int) else 10**9 + 5
        with pytest.raises(KeyError, match="not in the store"):
            store.plan_delete([model[0][0], bad], db)
    assert not store._pending


@pytest.mark.parametrize("backend", ["python", "numpy"])
def test_automatic_ids_continue_after_deletes_and_reloads(backend):
    store, db = bb.BrowserStore(CH.to_bytes(), backend), FakeDB()
    rng = np.random.default_rng(5)
    for n in (1500, 10):
        plan = store.plan_add(vecs(n, rng, 16).tobytes(), n, None, db)
        db.apply(plan)
        store.commit(plan["token"])
    plan = store.plan_delete(list(range(1500, 1510)) + [3, 1100], db)   # the largest ids, and two more
    db.apply(plan)
    store.commit(plan["token"])
    again, _ = bb.open_store(CH.to_bytes(), backend, list(db.records.values()), db.next_auto)
    for s in (store, again):
        plan = s.plan_add(vecs(2, rng, 16).tobytes(), 2, None, db)
        assert s.commit(plan["token"]) == [1510, 1511]


def test_load_keeps_no_copy_of_codes_or_ids_per_block():
    """The read cache keeps range ids as one int64 array; a bad record leaves it empty."""
    from array import array

    store, db = bb.BrowserStore(E8.to_bytes(), "python"), FakeDB()
    plan = store.plan_add(vecs(3000, np.random.default_rng(1), 16).tobytes(), 3000, None, db)
    db.apply(plan)
    store.commit(plan["token"])
    again, _ = bb.open_store(E8.to_bytes(), "python", list(db.records.values()), db.next_auto)
    assert isinstance(again.index._ids._store.arr, array) and len(again.index._ids._store.arr) == 3000
    bad = [dict(r) for r in db.records.values()]
    bad[2] = dict(bad[2], ids={"kind": "range", "start": 5, "n": bad[2]["block"]["n"]})  # repeats ids of block 0
    fresh = bb.BrowserStore(E8.to_bytes(), "python")
    with pytest.raises(DuplicateIdError):
        fresh.load(bad)
    assert len(fresh.index) == 0 and not fresh.loaded
