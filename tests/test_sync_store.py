"""SQLite sync store: gapless sequence numbers, idempotent pushes, tombstones, the convergence rule."""

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clark_hash_web.errors import ConfigMismatchError
from clark_hash_web.sync.store import SyncStore, UnknownCollectionError
from clark_hash_web.errors import SyncProtocolError
from clark_hash_web.formats.sync_wire import Delete, Put
from sync_fixtures import COSINE, DOT, puts_for


@pytest.fixture
def store(tmp_path):
    s = SyncStore(tmp_path / "sync.sqlite3")
    s.create_collection("notes", COSINE)
    yield s
    s.close()


def _dump(path):
    db = sqlite3.connect(path)
    try:
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in ("collections", "changes", "items", "pushes")}
    finally:
        db.close()


def test_wal_and_collection_config(store, tmp_path):
    assert store._conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.create_collection("notes", COSINE).config == COSINE  # same config: fine
    with pytest.raises(ConfigMismatchError, match=COSINE.fingerprint):
        store.create_collection("notes", DOT)
    with pytest.raises(UnknownCollectionError):
        store.info("nope")
    with pytest.raises(SyncProtocolError):
        store.create_collection("../x", COSINE)


def test_push_is_idempotent_and_sequences_are_gapless(store):
    puts = puts_for(COSINE, 10)
    r1 = store.apply("notes", "p1", puts, [])
    assert (r1["applied"], r1["first_seq"], r1["last_seq"], r1["duplicate"]) == (10, 1, 10, False)
    before = store.log("notes")
    r2 = store.apply("notes", "p1", puts, [])
    assert r2["duplicate"] and r2["applied"] == 10 and store.log("notes") == before
    # the same changes under a new push id are unchanged, not re-logged
    r3 = store.apply("notes", "p2", puts, [])
    assert (r3["applied"], r3["unchanged"]) == (0, 10) and store.log("notes") == before
    store.apply("notes", "p3", [], [Delete("v3", 5, "dev-a")])
    assert [r[0] for r in store.log("notes")] == list(range(1, 12))
    assert store.info("notes").count == 9 and store.info("notes").tombstones == 1


def test_last_writer_wins_and_tombstones_block_older_puts(store):
    a, b = puts_for(COSINE, 1, seed=1)[0], puts_for(COSINE, 1, seed=2)[0]
    store.apply("notes", "1", [Put("n", 5, a.code, None, "dev-a")], [])
    r = store.apply("notes", "2", [Put("n", 4, b.code, None, "dev-z")], [])
    assert r["superseded"] == 1 and store.state("notes")["n"][0] == a.code
    store.apply("notes", "3", [Put("n", 5, b.code, None, "dev-b")], [])  # same clock, larger device
    assert store.state("notes")["n"][0] == b.code
    store.apply("notes", "4", [], [Delete("n", 7, "dev-a")])
    store.apply("notes", "5", [Put("n", 6, a.code, None, "dev-z")], [])  # older than the delete
    assert "n" not in store.state("notes")
    store.apply("notes", "6", [Put("n", 8, a.code, None, "dev-a")], [])  # newer: resurrects
    assert store.state("notes")["n"][0] == a.code


def test_refused_push_leaves_the_database_untouched(store, tmp_path):
    store.apply("notes", "ok", puts_for(COSINE, 3), [])
    before = _dump(tmp_path / "sync.sqlite3")
    good = puts_for(COSINE, 5, seed=9, prefix="w")
    bad_len = good[:4] + [Put("w4", 1, good[4].code[:-1], None, "dev-a")]
    with pytest.raises(ConfigMismatchError, match="w4"):
        store.apply("notes", "bad1", bad_len, [])
    with pytest.raises(SyncProtocolError, match="more than once"):
        store.apply("notes", "bad2", good, [Delete("w0", 3, "dev-a")])
    with pytest.raises(ConfigMismatchError):  # a norm code in a cosine collection
        store.apply("notes", "bad3", [Put("w0", 1, good[0].code, 7, "dev-a")], [])
    assert _dump(tmp_path / "sync.sqlite3") == before


def test_changes_since_pages_by_sequence(store):
    store.apply("notes", "a", puts_for(COSINE, 25), [])
    store.apply("notes", "b", [], [Delete("v0", 9, "dev-a")])
    seen, cursor, pages = {}, 0, 0
    while True:
        puts, deletes, cursor, more, last = store.changes_since("notes", cursor, 7)
        pages += 1
        for ch in puts + deletes:
            assert ch.id not in seen
            seen[ch.id] = ch
        if not more:
            break
    assert pages == 4 and cursor == last == 26 and len(seen) == 25
    assert isinstance(seen["v0"], Delete) and seen["v0"].seq == 26
    assert store.changes_since("notes", 26, 7)[:4] == ([], [], 26, False)


def test_dot_collection_keeps_norm_codes(tmp_path):
    s = SyncStore(tmp_path / "d.sqlite3")
    s.create_collection("dots", DOT)
    puts = puts_for(DOT, 6)
    s.apply("dots", "p", puts, [])
    got, _, _, _, _ = s.changes_since("dots", 0, 100)
    assert [(p.code, p.norm_code) for p in got] == [(p.code, p.norm_code) for p in puts]


def test_multi_chunk_push_commits_only_when_complete(store):
    from clark_hash_web.formats.sync_wire import decode, encode_push

    puts = puts_for(COSINE, 9)
    bodies = [encode_push(COSINE, "big", "dev-a", puts[k * 3:(k + 1) * 3], [], k, 3) for k in range(3)]
    dec = lambda b: decode(b, expect_config=COSINE)  # noqa: E731
    assert store.stage_chunk("notes", "big", 2, 3, bodies[2], dec)["status"] == "staged"
    assert store.stage_chunk("notes", "big", 0, 3, bodies[0], dec)["received"] == 2
    assert store.info("notes").count == 0
    r = store.stage_chunk("notes", "big", 1, 3, bodies[1], dec)
    assert r["status"] == "committed" and r["applied"] == 9 and store.info("notes").count == 9
    assert store.stage_chunk("notes", "big", 1, 3, bodies[1], dec)["duplicate"]
    with pytest.raises(SyncProtocolError, match="chunks"):
        store.stage_chunk("notes", "other", 0, 2, bodies[0], dec)
        store.stage_chunk("notes", "other", 1, 3, bodies[1], dec)


# -- convergence: any delivery order of the same changes gives the same state ----------------

CHANGE = st.tuples(st.sampled_from("abcde"), st.integers(1, 6), st.sampled_from(["d1", "d2", "d3"]),
                   st.booleans(), st.integers(0, 3))


@settings(max_examples=25, deadline=None)
@given(st.lists(CHANGE, min_size=1, max_size=25), st.randoms(use_true_random=False))
def test_any_order_converges(tmp_path_factory, changes, rnd):
    codes = [c.code for c in puts_for(COSINE, 4)]
    uniq = {}
    for id_, clock, dev, is_del, v in changes:  # one change per (id, clock, device), as devices do
        uniq[(id_, clock, dev)] = (Delete(id_, clock, dev) if is_del else Put(id_, clock, codes[v], None, dev))
    changes = list(uniq.values())
    states = []
    for trial in range(3):
        order = changes[:]
        rnd.shuffle(order)
        s = SyncStore(tmp_path_factory.mktemp("conv") / "s.sqlite3")
        s.create_collection("c", COSINE)
        for k, ch in enumerate(order):
            if isinstance(ch, Put):
                s.apply("c", f"p{k}", [ch], [])
            else:
                s.apply("c", f"p{k}", [], [ch])
        states.append(s.state("c"))
        s.close()
    expect = {}
    for ch in changes:  # the documented rule, computed directly
        if ch.id not in expect or (ch.clock, ch.device) > (expect[ch.id].clock, expect[ch.id].device):
            expect[ch.id] = ch
    want = {i: (c.code, None) for i, c in expect.items() if isinstance(c, Put)}
    assert states[0] == states[1] == states[2] == want


def test_staging_space_is_bounded(tmp_path):
    from clark_hash_web.sync.store import StagingFullError
    from clark_hash_web.formats.sync_wire import decode, encode_push

    s = SyncStore(tmp_path / "s.sqlite3", max_staged_bytes=3000)
    s.create_collection("notes", COSINE)
    puts = puts_for(COSINE, 40)
    bodies = [encode_push(COSINE, "big", "dev-a", puts[k * 10:(k + 1) * 10], [], k, 4) for k in range(4)]
    dec = lambda b: decode(b, expect_config=COSINE)  # noqa: E731
    assert s.stage_chunk("notes", "big", 0, 4, bodies[0], dec)["status"] == "staged"
    with pytest.raises(StagingFullError, match="limit 3000"):
        for k in range(1, 4):
            s.stage_chunk("notes", "big", k, 4, bodies[k], dec)
    assert s.info("notes").count == 0 and s.info("notes").last_seq == 0
