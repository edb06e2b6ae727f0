"""clark_hash_web.browser.bridge on the desktop (no browser): plans, commits, aborts, reloads.

The worker stores exactly the records a plan lists, so replaying plans into
a dict stands in for IndexedDB here.
"""

from __future__ import annotations

import numpy as np
import pytest

from clark_hash_web import ClarkHash, ClarkHashConfig, DuplicateIdError, InvalidVectorError
from clark_hash_web.browser import bridge as bb

CFG = ClarkHashConfig(input_dim=16, sketch_dim=24, bits=3, metric="dot")


class FakeDB:
    """What idb-store.js keeps: block key -> record (block + ids)."""

    def __init__(self):
        self.records = {}
        self.next_auto = 0

    def apply(self, plan):
        self.next_auto = plan["nextAuto"]
        for k in plan["deletes"]:
            del self.records[k]
        for p in plan["puts"]:
            self.records[p["key"]] = p

    def load(self, backend):
        store, _ = bb.open_store(CFG.to_bytes(), backend, list(self.records.values()),
                                 self.next_auto)
        return store


def rows(n, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, CFG.input_dim)) * np.exp2(rng.uniform(-3, 3, (n, 1)))).astype(np.float32)


def write(store, db, plan):
    db.apply(plan)
    return store.commit(plan["token"])


@pytest.mark.parametrize("backend", ["python", "numpy"])
def test_blocks_round_trip_through_records(backend):
    store, db = bb.BrowserStore(CFG.to_bytes(), backend), FakeDB()
    a, b = rows(1500, 1), rows(700, 2)
    assert write(store, db, store.plan_add(a.tobytes(), 1500)) == list(range(1500))
    assert write(store, db, store.plan_add(b.tobytes(), 700)) == list(range(1500, 2200))
    assert sorted(db.records) == [0, 1, 2]
    assert [db.records[k]["block"]["n"] for k in (0, 1, 2)] == [1024, 1024, 152]
    assert db.records[2]["ids"] == {"kind": "range", "start": 2048, "n": 152}
    enc = ClarkHash(CFG, backend="numpy").encode(np.concatenate([a, b]))
    again = db.load(backend)
    for s in (store, again):
        got = s.codes()
        assert got["codes"] == enc.codes_bytes() and got["normCodes"] == enc.norm_codes_bytes()
        assert got["ids"] == list(range(2200))
    q = rows(1, 3)[0].tobytes()
    assert store.search(q, 20)["ids"] == again.search(q, 20)["ids"]
    assert store.search(q, 20)["scores"] == again.search(q, 20)["scores"]
    assert store.export() == again.export()


def test_abort_leaves_memory_unchanged_and_bad_input_plans_nothing():
    store, db = bb.BrowserStore(CFG.to_bytes(), "python"), FakeDB()
    write(store, db, store.plan_add(rows(10, 4).tobytes(), 10, [f"s{i}" for i in range(10)]))
    before = store.codes()
    plan = store.plan_add(rows(5, 5).tobytes(), 5, [f"t{i}" for i in range(5)])
    store.abort(plan["token"])   # e.g. QuotaExceededError in the transaction
    assert store.codes() == before
    bad = rows(3, 6)
    bad[1, 2] = np.nan
    with pytest.raises(InvalidVectorError, match="row 1"):
        store.plan_add(bad.tobytes(), 3, ["u0", "u1", "u2"])
    with pytest.raises(DuplicateIdError, match="s3"):
        store.plan_add(rows(1, 7).tobytes(), 1, ["s3"])
    with pytest.raises(bb.InvalidInputError, match="all be int or all be str"):
        store.plan_add(rows(1, 7).tobytes(), 1, [5])
    with pytest.raises(KeyError):
        store.plan_delete(["s1", "nope"])
    assert store.codes() == before and not store._pending


def test_delete_compacts_blocks_and_keeps_order():
    store, db = bb.BrowserStore(CFG.to_bytes(), "numpy"), FakeDB()
    data = rows(2100, 8)
    ids = [3 * i + 1 for i in range(2100)]   # not consecutive: stored as f64
    write(store, db, store.plan_add(data.tobytes(), 2100, ids))
    assert db.records[0]["ids"]["kind"] == "int"
    drop = ids[:1024] + [ids[1500], ids[2099]]   # empties block 0
    assert write(store, db, store.plan_delete(drop)) == len(drop)
    assert sorted(db.records) == [1, 2]
    keep = [i for i in range(2100) if ids[i] not in set(drop)]
    enc = ClarkHash(CFG, backend="numpy").encode(data[keep])
    again = db.load("python")
    assert again.codes()["ids"] == [ids[i] for i in keep]
    assert again.codes()["codes"] == enc.codes_bytes()
    # new rows go after the last block, so reload order stays insertion order
    write(again, db, again.plan_add(rows(3, 9).tobytes(), 3))
    assert again.codes()["ids"][-3:] == [ids[-1] + 1, ids[-1] + 2, ids[-1] + 3]
    assert db.load("numpy").codes() == again.codes()


def test_config_from_js_accepts_what_config_info_gives():
    cfg = ClarkHashConfig(input_dim=8, seed=0x5EEDCAFE12345678)
    info = bb.config_info(cfg)
    assert info["seed"] == str(0x5EEDCAFE12345678)
    assert bb.config_from_js(info) == cfg
    assert bb.config_from_js({"input_dim": 8, "seed": "0x5EEDCAFE12345678"}) == cfg


def test_use_backend_moves_a_store_to_numpy_with_the_same_rows_and_results():
    """What the worker does when numpy finishes loading after an "auto" store opened
    on the pure-Python backend: same ids, codes, order and search results after,
    and later writes and deletes behave as on a store that started on numpy."""
    store, db = bb.BrowserStore(CFG.to_bytes(), "python"), FakeDB()
    write(store, db, store.plan_add(rows(300, 4).tobytes(), 300))
    write(store, db, store.plan_delete(list(range(0, 300, 7))))
    q = rows(1, 5)[0].tobytes()

    def found(s):
        r = s.search(q, 25)
        return r["ids"], r["scores"]

    before = found(store), store.codes()
    plan = store.plan_add(rows(5, 6).tobytes(), 5)
    with pytest.raises(bb.InvalidInputError):   # never with a write in flight
        store.use_backend("numpy")
    store.abort(plan["token"])
    assert store.use_backend("numpy") == "numpy" and store.codec.backend == "numpy"
    assert store.index.backend == "numpy"
    assert (found(store), store.codes()) == before
    more = rows(40, 7)
    write(store, db, store.plan_add(more.tobytes(), 40))
    write(store, db, store.plan_delete([1, 2, 300]))
    reference = db.load("numpy")
    assert store.codes() == reference.codes()
    assert found(store) == found(reference)
    assert store.use_backend("python") == "python"
    assert found(store) == found(reference)


# -- every codec kind, int8 rescoring rows -------------------------------------------------
@pytest.mark.parametrize("backend", ["python", "numpy"])
def test_e8_two_stage_store_replays_and_reloads(backend):
    """E8 + int8 rows: plans carry both in one record; a reload gives the same codes, rows and ids."""
    from clark_hash_web.codecs import registry
    from clark_hash_web.index.two_stage import VectorFile  # noqa: F401  (the rows' twin)

    cfg = registry.config_from_spec("e8:20")
    store = bb.BrowserStore(cfg.to_bytes(), backend, "int8")
    db = {}
    data = np.random.default_rng(3).standard_normal((1500, 20)).astype(np.float32)
    for lo, hi in ((0, 800), (800, 1500)):   # the second batch fills block 0, then blocks 1..
        plan = store.plan_add(data[lo:hi].tobytes(), hi - lo)
        for p in plan["puts"]:
            assert len(p["block"]["vectors"]) == p["block"]["n"] * 24
            db[p["key"]] = p
        store.commit(plan["token"])
    plan = store.plan_delete(list(range(0, 1500, 3)))
    for k in plan["deletes"]:
        del db[k]
    for p in plan["puts"]:
        db[p["key"]] = p
    store.commit(plan["token"])
    again, _ = bb.open_store(cfg.to_bytes(), backend, list(db.values()), plan["nextAuto"], "int8")
    assert again.index.ids == store.index.ids
    assert again.scan_data() == store.scan_data()
    keep = [i for i in range(1500) if i % 3]
    want = bb.Int8Rows(20, "cosine", "python").prepare_rows(data[keep].tobytes())
    assert again.scan_data()["vectors"] == want
    assert again.ids_of_rows(bb.array("I", [0, 5]).tobytes()) == [keep[0], keep[5]]
    assert again.rows_of_ids([keep[5], keep[0]]) == bb.array("I", [5, 0]).tobytes()
    stats = again.stats()
    assert stats["bytesPerNote"] == 3 + 24 and stats["vectorRecordBytes"] == len(keep) * 24


def test_two_stage_records_without_rows_and_sketch_imports_are_refused():
    from clark_hash_web.codecs import registry
    from clark_hash_web.errors import ConfigMismatchError, InvalidInputError
    from clark_hash_web.formats import sketch_file

    cfg = registry.config_from_spec("e8:16")
    data = np.random.default_rng(4).standard_normal((10, 16)).astype(np.float32)
    plain = bb.BrowserStore(cfg.to_bytes(), "python")
    plan = plain.plan_add(data.tobytes(), 10)
    plain.commit(plan["token"])
    with pytest.raises(ConfigMismatchError, match="int8 rescoring rows"):
        bb.open_store(cfg.to_bytes(), "python", plan["puts"], 10, "int8")
    two = bb.BrowserStore(cfg.to_bytes(), "python", "int8")
    plan = two.plan_add(data[:3].tobytes(), 3, ["a", "b", "c"])
    two.commit(plan["token"])
    file = sketch_file.to_bytes(cfg, plain.codes()["codes"], None, [f"s{i}" for i in range(10)])
    plan = two.plan_import(file)   # a sync pull: codes without vectors get their decoded codes' rows
    decoded = registry.codec_from_config(cfg, "numpy").decode_sketch(
        registry.codec_from_config(cfg, "numpy").encode(data))
    want = bb.Int8Rows(16, "cosine", "python").prepare_rows(decoded.astype("<f4").tobytes())
    assert plan["puts"][0]["block"]["vectors"][-10 * 20:] == want
    two.commit(plan["token"])
    assert two.stats()["notesWithoutVectors"] == 0 and two.stats()["count"] == 13
    # a codec that does not decode into the input space: zero rows, counted
    lsh = registry.config_from_spec("hyperplane-lsh:16:n_bits=64")
    lsh_two = bb.BrowserStore(lsh.to_bytes(), "python", "int8")
    codes = registry.codec_from_config(lsh, "numpy").encode(data).codes_bytes()
    plan = lsh_two.plan_import(sketch_file.to_bytes(lsh, codes, None, list(range(10))))
    assert plan["puts"][0]["block"]["vectors"] == bytes(10 * 20)
    lsh_two.commit(plan["token"])
    assert lsh_two.stats()["notesWithoutVectors"] == 10
    bad = bytearray(plain.codes()["codes"])
    bad[3] = 250   # not an E8 root number
    with pytest.raises(ConfigMismatchError):
        plain.plan_import(sketch_file.to_bytes(cfg, bytes(bad), None, [f"x{i}" for i in range(10)]))
    with pytest.raises(InvalidInputError, match="rescoring"):
        plain.rescore_query(data[0].tobytes())


def test_config_of_takes_one_of_spec_fields_bytes():
    from clark_hash_web.codecs import registry
    from clark_hash_web.errors import ConfigError

    assert bb.config_of(spec="e8:384") == registry.config_from_spec("e8:384")
    assert bb.config_of(config_bytes=CFG.to_bytes()) == CFG
    assert bb.config_of(fields=bb.config_info(CFG)) == CFG
    with pytest.raises(ConfigError, match="exactly one"):
        bb.config_of(spec="e8:384", config_bytes=CFG.to_bytes())
    with pytest.raises(ConfigError, match="unknown codec"):
        bb.config_of(spec="nope:384")
    info = bb.config_info(registry.config_from_spec("e8:384"))
    assert info["codec"]["name"] == "e8" and info["code_bytes"] == 48


def test_clark_hash_sketch_file_import_plans():
    """Clark Hash imports go through the same plan (no codec-specific code checks needed)."""
    from clark_hash_web.formats import sketch_file

    data = rows(30, 9)
    store = bb.BrowserStore(CFG.to_bytes(), "python")
    enc = ClarkHash(CFG, backend="numpy").encode(data)
    plan = store.plan_import(sketch_file.to_bytes(CFG, enc.codes_bytes(), enc.norm_codes_bytes(),
                                                  [f"x{i}" for i in range(30)]))
    assert store.commit(plan["token"]) == [f"x{i}" for i in range(30)]
    assert store.codes()["codes"] == enc.codes_bytes()


@pytest.mark.parametrize("backend", ["python", "numpy"])
def test_rank_codes_of_candidates_equals_rank_of_their_rows(backend):
    """rank_codes (the worker holds the rows, Python does not) == rank of the same rows: the
    same ranking (positions -> rows), score bits and tie order; a store that never loaded its
    rows plans with the worker's count; bad calls fail clearly."""
    from clark_hash_web.errors import InvalidInputError

    db = FakeDB()
    store = db.load(backend)
    data = rows(300, 21)
    data[200:205] = data[9]                          # exact ties
    db.apply(store.plan_add(data.tobytes(), 300))
    store.commit(store._token)
    full = db.load(backend)
    empty, _ = bb.open_store(CFG.to_bytes(), backend, [], 300)   # holds no rows
    enc = full.index.encoded()
    codes, norms = enc.codes_bytes(), enc.norm_codes_bytes()
    cand = [3, 9, 50, 200, 201, 204, 250, 299]
    q = data[9].tobytes()
    for k in (1, 4, 8):
        full.prefilter(q, k, 0)
        want = full.rank(np.asarray(cand, "<u4").tobytes(), k)
        plan = empty.prefilter(q, k, 0, count=300)
        assert plan["count"] == 300 and not plan["direct"]
        got = empty.rank_codes(b"".join(codes[r * CFG.code_bytes:(r + 1) * CFG.code_bytes] for r in cand),
                               b"".join(norms[2 * r:2 * r + 2] for r in cand), k)
        assert [cand[p] for p in got["positions"]] == want["ids"]
        assert got["scores"] == want["scores"]
    with pytest.raises(InvalidInputError, match="prefilter"):
        empty.rank_codes(codes[:CFG.code_bytes], norms[:2], 1)
    empty.prefilter(q, 1, 0, count=300)
    with pytest.raises(InvalidInputError, match="norm codes"):
        empty.rank_codes(codes[:CFG.code_bytes], None, 1)
    with pytest.raises(InvalidInputError, match="min_rows"):
        empty.prefilter(q, 300, 0, count=300)
