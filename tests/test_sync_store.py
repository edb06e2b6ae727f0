"""The sync store, on SQLite and on PostgreSQL (every test runs on both): gapless sequence
numbers, idempotent pushes, tombstones, the convergence rule, payloads, users and tokens,
and concurrent writers."""

import itertools
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clark_hash_web.errors import ConfigMismatchError
from clark_hash_web.sync.store import UnknownCollectionError, open_store
from clark_hash_web.errors import SyncProtocolError
from clark_hash_web.formats.sync_wire import Delete, Put
from sync_fixtures import COSINE, DOT, db_url, puts_for  # noqa: F401  (db_url is a fixture)


@pytest.fixture
def store(db_url):
    s = open_store(db_url)
    s.create_collection("notes", COSINE)
    yield s
    s.close()


def _dump(store):
    db = store._conn()
    return {t: [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                for r in db.all(f"SELECT * FROM {t} ORDER BY 1, 2")]
            for t in ("collections", "changes", "items", "pushes", "users", "tokens")}


def test_journal_mode_and_collection_config(store):
    if store.url.startswith("sqlite"):
        assert store._conn().one("PRAGMA journal_mode")[0] == "wal"
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


def test_refused_push_leaves_the_database_untouched(store):
    store.apply("notes", "ok", puts_for(COSINE, 3), [])
    before = _dump(store)
    good = puts_for(COSINE, 5, seed=9, prefix="w")
    bad_len = good[:4] + [Put("w4", 1, good[4].code[:-1], None, "dev-a")]
    with pytest.raises(ConfigMismatchError, match="w4"):
        store.apply("notes", "bad1", bad_len, [])
    with pytest.raises(SyncProtocolError, match="more than once"):
        store.apply("notes", "bad2", good, [Delete("w0", 3, "dev-a")])
    with pytest.raises(ConfigMismatchError):  # a norm code in a cosine collection
        store.apply("notes", "bad3", [Put("w0", 1, good[0].code, 7, "dev-a")], [])
    with pytest.raises(SyncProtocolError, match="payload"):  # one payload over 64 KiB
        store.apply("notes", "bad4", [Put("w0", 1, good[0].code, None, "dev-a", 0, b"x" * 65537)], [])
    assert _dump(store) == before


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


def test_dot_collection_keeps_norm_codes(store):
    s = store
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

_NAMES = itertools.count()
CHANGE = st.tuples(st.sampled_from("abcde"), st.integers(1, 6), st.sampled_from(["d1", "d2", "d3"]),
                   st.booleans(), st.integers(0, 3))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(CHANGE, min_size=1, max_size=25), st.randoms(use_true_random=False))
def test_any_order_converges(store, changes, rnd):
    codes = [c.code for c in puts_for(COSINE, 4)]
    uniq = {}
    for id_, clock, dev, is_del, v in changes:  # one change per (id, clock, device), as devices do
        uniq[(id_, clock, dev)] = (Delete(id_, clock, dev) if is_del else Put(id_, clock, codes[v], None, dev))
    changes = list(uniq.values())
    states = []
    for trial in range(3):
        order = changes[:]
        rnd.shuffle(order)
        name = f"c{next(_NAMES)}"
        store.create_collection(name, COSINE)
        for k, ch in enumerate(order):
            if isinstance(ch, Put):
                store.apply(name, f"p{k}", [ch], [])
            else:
                store.apply(name, f"p{k}", [], [ch])
        states.append(store.state(name))
    expect = {}
    for ch in changes:  # the documented rule, computed directly
        if ch.id not in expect or (ch.clock, ch.device) > (expect[ch.id].clock, expect[ch.id].device):
            expect[ch.id] = ch
    want = {i: (c.code, None) for i, c in expect.items() if isinstance(c, Put)}
    assert states[0] == states[1] == states[2] == want


def test_staging_space_is_bounded(db_url):
    from clark_hash_web.sync.store import StagingFullError
    from clark_hash_web.formats.sync_wire import decode, encode_push

    s = open_store(db_url, max_staged_bytes=3000)
    s.create_collection("notes", COSINE)
    puts = puts_for(COSINE, 40)
    bodies = [encode_push(COSINE, "big", "dev-a", puts[k * 10:(k + 1) * 10], [], k, 4) for k in range(4)]
    dec = lambda b: decode(b, expect_config=COSINE)  # noqa: E731
    assert s.stage_chunk("notes", "big", 0, 4, bodies[0], dec)["status"] == "staged"
    with pytest.raises(StagingFullError, match="limit 3000"):
        for k in range(1, 4):
            s.stage_chunk("notes", "big", k, 4, bodies[k], dec)
    assert s.info("notes").count == 0 and s.info("notes").last_seq == 0


# -- payloads, codecs of every kind, users and tokens ------------------------------------------

def test_payloads_are_kept_byte_for_byte_and_replaced_by_newer_puts(store):
    a, b = puts_for(COSINE, 2)
    blob = bytes(range(256)) * 256  # 64 KiB exactly: the limit is inclusive
    store.apply("notes", "1", [Put("a", 1, a.code, None, "d", 0, blob), Put("b", 1, b.code, None, "d")], [])
    got = {p.id: p.payload for p in store.changes_since("notes", 0, 10)[0]}
    assert got == {"a": blob, "b": None}
    store.apply("notes", "2", [Put("a", 2, a.code, None, "d", 0, b"\x00new")], [])
    assert store.changes_since("notes", 2, 10)[0][0].payload == b"\x00new"
    store.apply("notes", "3", [], [Delete("a", 3, "d")])
    assert [d.id for d in store.changes_since("notes", 3, 10)[1]] == ["a"]


def test_collections_of_every_codec_kind(store):
    from clark_hash_web.codecs import registry

    for spec in ("e8:32", "sign-bits:32", "hyperplane-lsh:32:n_bits=64", "clark-hash:32"):
        config = registry.config_from_spec(spec)
        name = spec.split(":")[0]
        info = store.create_collection(name, config)
        assert info.to_json()["kind"] == bytes(config.to_bytes())[0]
        puts = puts_for(config, 5)
        store.apply(name, "p", puts, [])
        assert store.state(name) == {p.id: (p.code, p.norm_code) for p in puts}
        assert type(store.config(name)) is type(config) and store.config(name) == config
    with pytest.raises(ConfigMismatchError, match="uses e8 config"):
        store.create_collection("e8", COSINE)


def test_users_tokens_and_owners(store):
    from clark_hash_web.sync.store import AccessDeniedError, UnknownUserError

    ta = store.create_user("alice")
    tb = store.create_user("bob")
    assert ta != tb and store.user_of_token(ta) == "alice" and store.user_of_token(tb) == "bob"
    assert store.user_of_token(ta[:-1] + ("0" if ta[-1] != "0" else "1")) is None
    assert store.user_of_token("") is None
    dumped = repr(_dump(store))
    assert ta not in dumped and tb not in dumped  # only digests are stored
    store.create_collection("a-notes", COSINE, owner="alice")
    store.authorize("a-notes", "alice")
    store.authorize("a-notes", None)  # the admin sees everything
    with pytest.raises(AccessDeniedError):
        store.authorize("a-notes", "bob")
    with pytest.raises(AccessDeniedError):
        store.create_collection("a-notes", COSINE, owner="bob")
    assert store.collections("alice", everyone=False) == ["a-notes"]
    assert store.collections("bob", everyone=False) == []
    second = store.new_token("alice")
    tid = [t["id"] for u in store.users() if u["name"] == "alice" for t in u["tokens"]][0]
    store.revoke_token(tid)
    assert store.user_of_token(ta) is None and store.user_of_token(second) == "alice"
    with pytest.raises(UnknownUserError):
        store.create_collection("x", COSINE, owner="nobody")
    with pytest.raises(ConfigMismatchError):
        store.create_user("alice")


def test_key_check_is_set_once(store):
    assert store.info("notes").key_check is None and len(store.info("notes").salt) == 16
    store.set_key_check("notes", b"check-1")
    store.set_key_check("notes", b"check-1")
    with pytest.raises(ConfigMismatchError, match="another key check"):
        store.set_key_check("notes", b"check-2")
    assert store.info("notes").key_check == b"check-1"


# -- concurrent writers (threads with their own connections) -----------------------------------

def test_concurrent_writers_keep_sequences_gapless_and_one_winner(store):
    writers, pushes = 6, 40
    codes = [p.code for p in puts_for(COSINE, writers)]
    errors = []

    def write(w):
        try:
            for k in range(pushes):
                puts = [Put(f"w{w}-{k}", k + 1, codes[w], None, f"dev-{w}"),
                        Put("hot", k + 1, codes[w], None, f"dev-{w}")]
                dels = [Delete(f"w{w}-{k - 1}", k + 1, f"dev-{w}")] if k % 5 == 4 else []
                r = store.apply("notes", f"w{w}-{k}", puts, dels)
                assert store.apply("notes", f"w{w}-{k}", puts, dels) == dict(r, duplicate=True)
        except Exception as exc:  # surfaced below
            errors.append(repr(exc))
        finally:
            store.close() if store.url.startswith("sqlite") else None

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    items, seqs, n_pushes = store.counts("notes")
    assert seqs == list(range(1, len(seqs) + 1)) and n_pushes == writers * pushes
    info = store.info("notes")
    assert info.last_seq == len(seqs)
    assert info.tombstones == writers * (pushes // 5)
    assert info.count == writers * pushes - info.tombstones + 1
    log = store.log("notes")
    hot = [r for r in log if r[1] == "hot"][-1]
    assert (hot[3], hot[4]) == (pushes, f"dev-{writers - 1}")  # the largest (clock, device) wins
    assert store.state("notes")["hot"][0] == codes[writers - 1]


def test_a_database_of_the_first_release_opens_and_gains_the_new_columns(tmp_path):
    """A sync.sqlite3 written by clark-hash-web 0.1 (its schema, verbatim) keeps its data."""
    import sqlite3

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE collections(name TEXT PRIMARY KEY, config BLOB NOT NULL, fingerprint TEXT NOT NULL,
            code_bytes INTEGER NOT NULL, has_norm INTEGER NOT NULL, last_seq INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE changes(collection TEXT NOT NULL, seq INTEGER NOT NULL, item_id TEXT NOT NULL,
            op INTEGER NOT NULL, clock INTEGER NOT NULL, device TEXT NOT NULL, push_id TEXT NOT NULL,
            code BLOB, norm_code INTEGER, PRIMARY KEY(collection, seq)) WITHOUT ROWID;
        CREATE TABLE items(collection TEXT NOT NULL, item_id TEXT NOT NULL, seq INTEGER NOT NULL,
            clock INTEGER NOT NULL, device TEXT NOT NULL, deleted INTEGER NOT NULL, code BLOB,
            norm_code INTEGER, PRIMARY KEY(collection, item_id)) WITHOUT ROWID;
        CREATE TABLE pushes(collection TEXT NOT NULL, push_id TEXT NOT NULL, result TEXT NOT NULL,
            PRIMARY KEY(collection, push_id)) WITHOUT ROWID;""")
    code = puts_for(COSINE, 1)[0].code
    db.execute("INSERT INTO collections VALUES ('notes', ?, ?, ?, 0, 1)",
               (COSINE.to_bytes(), COSINE.fingerprint, COSINE.code_bytes))
    db.execute("INSERT INTO changes VALUES ('notes', 1, 'a', 1, 1, 'd', 'p', ?, NULL)", (code,))
    db.execute("INSERT INTO items VALUES ('notes', 'a', 1, 1, 'd', 0, ?, NULL)", (code,))
    db.commit()
    db.close()
    s = open_store(f"sqlite:///{path}")
    info = s.info("notes")
    assert (info.count, info.last_seq, len(info.salt)) == (1, 1, 16)
    assert s.state("notes") == {"a": (code, None)}
    r = s.apply("notes", "p2", [Put("b", 1, code, None, "d", 0, b"payload")], [])
    assert r["first_seq"] == 2 and s.changes_since("notes", 1, 10)[0][0].payload == b"payload"
    s.close()
