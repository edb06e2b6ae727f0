"""clark_hash_web.browser.bridge on the desktop (no browser): plans, commits, aborts, reloads.

The worker stores exactly the records a plan lists and applies them to its
rows (static/stored-rows.js), so replaying plans into a dict stands in for
both IndexedDB and the worker's rows here; the dict also answers the plans'
questions about the stored rows as the worker does (``last``, ``present``,
``holding``).
"""

from __future__ import annotations

import numpy as np
import pytest

from clark_hash_web import ClarkHash, ClarkHashConfig, DuplicateIdError, InvalidVectorError
from clark_hash_web.browser import bridge as bb

CFG = ClarkHashConfig(input_dim=16, sketch_dim=24, bits=3, metric="dot")


class FakeDB:
    """What idb-store.js keeps: block key -> record (block + ids); and the worker's stored
    view of those rows (StoredRows: last, present, holding)."""

    def __init__(self, cfg=CFG):
        self.records = {}
        self.next_auto = 0
        self.cfg = cfg

    def apply(self, plan):
        self.next_auto = plan["nextAuto"]
        for k in plan["deletes"]:
            del self.records[k]
        for p in plan["puts"]:
            self.records[p["key"]] = p

    def load(self, backend, vectors=None):
        store, _ = bb.open_store(self.cfg.to_bytes(), backend, list(self.records.values()),
                                 self.next_auto, vectors)
        return store

    # -- the stored view a plan asks (static/worker.js storedView) --------------------
    def last(self):
        return self.records[max(self.records)] if self.records else None

    def ids(self):
        return [i for k in sorted(self.records) for i in bb._ids_from_record(self.records[k]["ids"])]

    def present(self, ids):
        stored = set(self.ids())
        return [i for i in ids if i in stored]

    def holding(self, ids):
        want = set(ids)
        return [self.records[k] for k in sorted(self.records)
                if want.intersection(bb._ids_from_record(self.records[k]["ids"]))]


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
    assert write(store, db, store.plan_add(a.tobytes(), 1500, None, db)) == list(range(1500))
    assert write(store, db, store.plan_add(b.tobytes(), 700, None, db)) == list(range(1500, 2200))
    assert sorted(db.records) == [0, 1, 2]
    assert [db.records[k]["block"]["n"] for k in (0, 1, 2)] == [1024, 1024, 152]
    assert db.records[2]["ids"] == {"kind": "range", "start": 2048, "n": 152}
    assert not store.loaded and len(store.index) == 0   # writes keep no copy of the rows
    enc = ClarkHash(CFG, backend="numpy").encode(np.concatenate([a, b]))
    again = db.load(backend)
    got = again.codes()
    assert got["codes"] == enc.codes_bytes() and got["normCodes"] == enc.norm_codes_bytes()
    assert got["ids"] == list(range(2200))
    index = ClarkHash(CFG, backend="numpy")
    from clark_hash_web import FlatIndex

    ref = FlatIndex(index)
    ref.add(np.concatenate([a, b]))
    q = rows(1, 3)[0]
    want_ids, want_scores = ref.search(q, 20)
    assert again.search(q.tobytes(), 20)["ids"] == list(want_ids)
    assert again.search(q.tobytes(), 20)["scores"] == np.asarray(want_scores, "<f4").tobytes()


def test_abort_leaves_memory_unchanged_and_bad_input_plans_nothing():
    store, db = bb.BrowserStore(CFG.to_bytes(), "python"), FakeDB()
    write(store, db, store.plan_add(rows(10, 4).tobytes(), 10, [f"s{i}" for i in range(10)], db))
    before = dict(db.records)
    plan = store.plan_add(rows(5, 5).tobytes(), 5, [f"t{i}" for i in range(5)], db)
    store.abort(plan["token"])   # e.g. QuotaExceededError in the transaction
    assert store.next_auto == 0 and not store._pending
    bad = rows(3, 6)
    bad[1, 2] = np.nan
    with pytest.raises(InvalidVectorError, match="row 1"):
        store.plan_add(bad.tobytes(), 3, ["u0", "u1", "u2"], db)
    with pytest.raises(DuplicateIdError, match=r"'s3' \(batch position 1\) is already in the index"):
        store.plan_add(rows(2, 7).tobytes(), 2, ["new", "s3"], db)
    with pytest.raises(DuplicateIdError, match=r"'x' appears twice in the batch \(position 2\)"):
        store.plan_add(rows(3, 7).tobytes(), 3, ["x", "y", "x"], db)
    with pytest.raises(bb.InvalidInputError, match="all be int or all be str"):
        store.plan_add(rows(1, 7).tobytes(), 1, [5], db)
    with pytest.raises(KeyError, match=r"not in the store: \['nope'\]"):
        store.plan_delete(["s1", "nope"], db)
    assert db.records == before and not store._pending


def test_delete_compacts_blocks_and_keeps_order():
    store, db = bb.BrowserStore(CFG.to_bytes(), "numpy"), FakeDB()
    data = rows(2100, 8)
    ids = [3 * i + 1 for i in range(2100)]   # not consecutive: stored as f64
    write(store, db, store.plan_add(data.tobytes(), 2100, ids, db))
    assert db.records[0]["ids"]["kind"] == "int"
    drop = ids[:1024] + [ids[1500], ids[2099]]   # empties block 0
    assert write(store, db, store.plan_delete(drop + drop[:3], db)) == len(drop)
    assert sorted(db.records) == [1, 2]
    keep = [i for i in range(2100) if ids[i] not in set(drop)]
    enc = ClarkHash(CFG, backend="numpy").encode(data[keep])
    again = db.load("python")
    assert again.codes()["ids"] == [ids[i] for i in keep]
    assert again.codes()["codes"] == enc.codes_bytes()
    # new rows go after the last block, so reload order stays insertion order
    write(again, db, again.plan_add(rows(3, 9).tobytes(), 3, None, db))
    assert db.load("numpy").codes()["ids"][-3:] == [ids[-1] + 1, ids[-1] + 2, ids[-1] + 3]
    assert db.load("numpy").codes() == db.load("python").codes()


def test_config_from_js_accepts_what_config_info_gives():
    cfg = ClarkHashConfig(input_dim=8, seed=0x5EEDCAFE12345678)
    info = bb.config_info(cfg)
    assert info["seed"] == str(0x5EEDCAFE12345678)
    assert bb.config_from_js(info) == cfg
    assert bb.config_from_js({"input_dim": 8, "seed": "0x5EEDCAFE12345678"}) == cfg


def test_use_backend_moves_a_store_to_numpy_with_the_same_rows_and_results():
    """What the worker does when numpy finishes loading after an "auto" store opened
    on the pure-Python backend: same ids, codes, order and search results after (the
    read cache moves), and later writes and deletes behave as on a store that started on numpy."""
    store, db = bb.BrowserStore(CFG.to_bytes(), "python"), FakeDB()
    write(store, db, store.plan_add(rows(300, 4).tobytes(), 300, None, db))
    write(store, db, store.plan_delete(list(range(0, 300, 7)), db))
    q = rows(1, 5)[0].tobytes()

    def found(s):
        r = s.search(q, 25)
        return r["ids"], r["scores"]

    store = db.load("python")
    before = found(store), store.codes()
    plan = store.plan_add(rows(5, 6).tobytes(), 5, None, db)
    with pytest.raises(bb.InvalidInputError):   # never with a write in flight
        store.use_backend("numpy")
    store.abort(plan["token"])
    assert store.use_backend("numpy") == "numpy" and store.codec.backend == "numpy"
    assert store.index.backend == "numpy" and store.loaded
    assert (found(store), store.codes()) == before
    more = rows(40, 7)
    write(store, db, store.plan_add(more.tobytes(), 40, None, db))
    assert not store.loaded
    write(store, db, store.plan_delete([1, 2, 300], db))
    reference = db.load("numpy")
    store.load(list(db.records.values()), db.next_auto)   # the worker refills the cache (loadPython)
    assert store.codes() == reference.codes()
    assert found(store) == found(reference)
    assert store.use_backend("python") == "python"
    assert found(store) == found(reference)


# -- every codec kind, int8 rescoring rows -------------------------------------------------
@pytest.mark.parametrize("backend", ["python", "numpy"])
def test_e8_two_stage_store_replays_and_reloads(backend):
    """E8 + int8 rows: plans carry both in one record; a reload gives the same codes, rows and ids."""
    from clark_hash_web.codecs import registry

    cfg = registry.config_from_spec("e8:20")
    store = bb.BrowserStore(cfg.to_bytes(), backend, "int8")
    db = FakeDB(cfg)
    data = np.random.default_rng(3).standard_normal((1500, 20)).astype(np.float32)
    for lo, hi in ((0, 800), (800, 1500)):   # the second batch fills block 0, then blocks 1..
        plan = store.plan_add(data[lo:hi].tobytes(), hi - lo, None, db)
        for p in plan["puts"]:
            assert len(p["block"]["vectors"]) == p["block"]["n"] * 24
        write(store, db, plan)
    write(store, db, store.plan_delete(list(range(0, 1500, 3)), db))
    again = db.load(backend, "int8")
    keep = [i for i in range(1500) if i % 3]
    assert again.index.ids == keep == db.ids()
    want = bb.Int8Rows(20, "cosine", "python").prepare_rows(data[keep].tobytes())
    assert b"".join(db.records[k]["block"]["vectors"] for k in sorted(db.records)) == want
    enc = registry.codec_from_config(cfg, "numpy").encode(data[keep])
    assert again.codes()["codes"] == enc.codes_bytes()


def test_two_stage_records_without_rows_and_sketch_imports_are_refused():
    from clark_hash_web.codecs import registry
    from clark_hash_web.errors import ConfigMismatchError, InvalidInputError
    from clark_hash_web.formats import sketch_file

    cfg = registry.config_from_spec("e8:16")
    data = np.random.default_rng(4).standard_normal((10, 16)).astype(np.float32)
    plain, plain_db = bb.BrowserStore(cfg.to_bytes(), "python"), FakeDB(cfg)
    plan = plain.plan_add(data.tobytes(), 10, None, plain_db)
    write(plain, plain_db, plan)
    with pytest.raises(ConfigMismatchError, match="int8 rescoring rows"):
        bb.open_store(cfg.to_bytes(), "python", plan["puts"], 10, "int8")
    two, db = bb.BrowserStore(cfg.to_bytes(), "python", "int8"), FakeDB(cfg)
    write(two, db, two.plan_add(data[:3].tobytes(), 3, ["a", "b", "c"], db))
    plain_codes = plain_db.load("python").codes()["codes"]
    file = sketch_file.to_bytes(cfg, plain_codes, None, [f"s{i}" for i in range(10)])
    plan = two.plan_import(file, db)   # a sync pull: codes without vectors get their decoded codes' rows
    decoded = registry.codec_from_config(cfg, "numpy").decode_sketch(
        registry.codec_from_config(cfg, "numpy").encode(data))
    want = bb.Int8Rows(16, "cosine", "python").prepare_rows(decoded.astype("<f4").tobytes())
    assert plan["puts"][0]["block"]["vectors"][-10 * 20:] == want
    assert plan["puts"][0]["ids"] == {"kind": "str", "data": ["a", "b", "c"] + [f"s{i}" for i in range(10)]}
    write(two, db, plan)
    with pytest.raises(DuplicateIdError, match="'s4'"):   # the stored view names stored ids
        two.plan_import(sketch_file.to_bytes(cfg, plain_codes[:cfg.code_bytes], None, ["s4"]), db)
    # a codec that does not decode into the input space: zero rows
    lsh = registry.config_from_spec("hyperplane-lsh:16:n_bits=64")
    lsh_two = bb.BrowserStore(lsh.to_bytes(), "python", "int8")
    codes = registry.codec_from_config(lsh, "numpy").encode(data).codes_bytes()
    plan = lsh_two.plan_import(sketch_file.to_bytes(lsh, codes, None, list(range(10))))
    assert plan["puts"][0]["block"]["vectors"] == bytes(10 * 20)
    bad = bytearray(plain_codes)
    bad[3] = 250   # not an E8 root number
    with pytest.raises(ConfigMismatchError):
        plain.plan_import(sketch_file.to_bytes(cfg, bytes(bad), None, [f"x{i}" for i in range(10)]), plain_db)
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
    store, db = bb.BrowserStore(CFG.to_bytes(), "python"), FakeDB()
    enc = ClarkHash(CFG, backend="numpy").encode(data)
    plan = store.plan_import(sketch_file.to_bytes(CFG, enc.codes_bytes(), enc.norm_codes_bytes(),
                                                  [f"x{i}" for i in range(30)]), db)
    assert write(store, db, plan) == [f"x{i}" for i in range(30)]
    assert db.load("python").codes()["codes"] == enc.codes_bytes()


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
    write(store, db, store.plan_add(data.tobytes(), 300, None, db))
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


@pytest.mark.parametrize("normalize", [True, False])
def test_table_query_bias_and_score_scales_of_learned_e8(normalize):
    """What the JS table scan gets for a format-2 head (static/normalized-scores.js): the query's
    bias with its values, and once per store the config numbers of the row scales (None and a
    0.0 bias for plain heads and other codecs)."""
    from clark_hash_web.codecs.learned_e8_stages import StagedE8, train_staged_e8

    data = rows(400, 31) + np.float32(2.0)           # a shared direction: the bias is not 0
    cfg = train_staged_e8(data, seed=2, normalize=normalize)
    store = bb.BrowserStore(cfg.to_bytes(), "numpy")
    for q in data[:3]:
        t = store.table_query(q.tobytes())
        want = StagedE8(cfg, "numpy").sketch_query(q)
        assert t["values"] == np.asarray(want.values, "<f4").tobytes()
        assert t["bias"] == want.bias and (t["bias"] != 0.0) == normalize
    want = {"stages": cfg.stages, "scales": cfg.scales, "offset": cfg.offset} if normalize else None
    assert store.score_scales() == want
    e8 = bb.BrowserStore(bb.config_bytes_of("e8:16")["bytes"], "python")
    assert e8.score_scales() is None and e8.table_query(data[0].tobytes())["bias"] == 0.0
