"""Server-side sync storage: one interface, two databases (SQLite and PostgreSQL).

:func:`open_store` picks the implementation from a URL::

    open_store("sqlite:///var/lib/clark-hash/sync.sqlite3")   # embedded default (WAL)
    open_store("postgresql://user@db-host/clark")              # several server machines

Both implementations share every SQL statement of this module (the
:class:`SyncStore` base); they differ only in connections, transactions and
locking (:mod:`.sqlite_store`, :mod:`.postgres_store`). The same test suite
runs against both.

One database holds any number of collections, users and tokens. Each
collection carries the canonical bytes and fingerprint of its codec config
(any registered codec: the first config byte is its kind, see
:mod:`clark_hash_web.codecs.registry`); codes of any other config are refused.

Schema::

    collections(name PK, config, fingerprint, code_bytes, has_norm, last_seq,
                owner, salt, key_check)
        owner NULL = the admin's; salt: 16 random bytes for the clients'
        passphrase key derivation; key_check: the clients' encrypted key check
    changes(collection, seq, item_id, op, clock, device, push_id, code, norm_code, payload)
        PK (collection, seq)      -- the append-only change log; op 1 = put, 2 = delete;
                                     code, norm_code, payload are NULL (the bytes live in
                                     items: written once per change, not twice)
    items(collection, item_id, seq, clock, device, deleted, code, norm_code, payload)
        PK (collection, item_id)  -- the current state; deleted rows are tombstones
    pushes(collection, push_id, result)      -- committed pushes (idempotent retries)
    staging(collection, push_id, chunk, chunks, body, created)  -- chunks of unfinished pushes
    users(name PK, created)
    tokens(token_id PK, token_hash, user_name, created, revoked)
        token_id = first 16 hex digits of SHA-256(token), token_hash = all 64;
        the token itself is never stored

Sequence numbers are per collection and gapless: every accepted change takes
``last_seq + 1`` inside one transaction that holds the collection's write
lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a per-collection advisory
lock), so a push is either fully in the log or not at all (a killed process
rolls back).

Convergence rule (last writer wins)
-----------------------------------
Every change carries ``(clock, device)``: a Lamport clock (the device's
largest seen clock + 1 at edit time) and the device name. A change to an
id replaces the stored state only when its ``(clock, device)`` is strictly
greater, comparing clocks as integers and then device names as strings
(code-point order). Deletes leave a tombstone with their clock, so an older
put cannot resurrect a deleted id. Losing changes are dropped (not logged);
re-applying an applied change is a no-op. Every replica that applies the
same rule to the same set of changes, in any order, ends in the same state.

Payloads
--------
A put may carry an opaque payload of at most ``MAX_PAYLOAD_BYTES`` (the
clients' encrypted note text, see :mod:`clark_hash_web.sync.crypto`). The
store keeps and returns it byte for byte with the code; it never looks inside.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Iterable, List, Optional

from ..codecs import registry
from ..errors import ConfigError, ConfigMismatchError, SyncProtocolError
from ..formats.sync_wire import MAX_PAYLOAD_BYTES, Delete, Put, check_id

OP_PUT = 1
OP_DELETE = 2
STAGING_TTL_SECONDS = 24 * 3600
MAX_STAGED_BYTES = 512 * 1024 * 1024  # chunks of unfinished pushes, all collections together
MAX_KEY_CHECK_BYTES = 256
_IN_BATCH = 500  # ids per "IN (...)" lookup
ITEMS_UPSERT = ("ON CONFLICT(collection, item_id) DO UPDATE SET seq=excluded.seq, clock=excluded.clock, "
                "device=excluded.device, deleted=excluded.deleted, code=excluded.code, "
                "norm_code=excluded.norm_code, payload=excluded.payload")
_NAME_RE = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,63}$")


class UnknownCollectionError(SyncProtocolError):
    """The named collection does not exist."""


class StagingFullError(SyncProtocolError):
    """Unfinished pushes already hold ``max_staged_bytes``: finish or abandon them first."""


class AccessDeniedError(SyncProtocolError):
    """The caller's token does not own this collection."""


class UnknownUserError(SyncProtocolError):
    """No such user (or token)."""


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    config: object
    last_seq: int
    count: int          # live (not deleted) items
    tombstones: int
    owner: Optional[str] = None
    salt: bytes = b""
    key_check: Optional[bytes] = None

    def to_json(self) -> dict:
        entry = registry.kind_of(self.config)
        return {"name": self.name, "fingerprint": self.config.fingerprint,
                "kind": entry.kind, "codec": entry.name,
                "config": self.config.to_bytes().hex(), "config_fields": _fields(self.config),
                "code_bytes": self.config.code_bytes, "last_seq": self.last_seq,
                "count": self.count, "tombstones": self.tombstones, "owner": self.owner,
                "salt": self.salt.hex(),
                "key_check": None if self.key_check is None else self.key_check.hex()}


def _fields(config) -> dict:
    to_dict = getattr(config, "to_dict", None)
    return to_dict() if to_dict is not None else {}


def check_collection_name(name) -> str:
    """Collection and user names: 1..64 of ``[A-Za-z0-9_.-]``, not starting with a dot."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SyncProtocolError(f"names are 1..64 of [A-Za-z0-9_.-] (no leading dot), "
                                f"got {name!r:.80}")
    return name


def config_from_bytes(data: bytes):
    """Any registered codec's config from its canonical bytes (ConfigError otherwise)."""
    return registry.config_from_bytes(bytes(data))


def token_digest(token: str) -> str:
    """SHA-256 hex of a token (what the store keeps instead of the token)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _schema(blob: str, real: str, table_suffix: str = "") -> List[str]:
    """CREATE statements; ``table_suffix`` e.g. " WITHOUT ROWID" (SQLite: one B-tree per table)."""
    t = table_suffix
    return [
        f"""CREATE TABLE IF NOT EXISTS collections(
            name TEXT PRIMARY KEY, config {blob} NOT NULL, fingerprint TEXT NOT NULL,
            code_bytes INTEGER NOT NULL, has_norm INTEGER NOT NULL, last_seq BIGINT NOT NULL DEFAULT 0,
            owner TEXT, salt {blob}, key_check {blob})""",
        f"""CREATE TABLE IF NOT EXISTS changes(
            collection TEXT NOT NULL, seq BIGINT NOT NULL, item_id TEXT NOT NULL, op INTEGER NOT NULL,
            clock BIGINT NOT NULL, device TEXT NOT NULL, push_id TEXT NOT NULL, code {blob},
            norm_code INTEGER, payload {blob}, PRIMARY KEY(collection, seq)){t}""",
        f"""CREATE TABLE IF NOT EXISTS items(
            collection TEXT NOT NULL, item_id TEXT NOT NULL, seq BIGINT NOT NULL, clock BIGINT NOT NULL,
            device TEXT NOT NULL, deleted INTEGER NOT NULL, code {blob}, norm_code INTEGER,
            payload {blob}, PRIMARY KEY(collection, item_id)){t}""",
        "CREATE INDEX IF NOT EXISTS items_by_seq ON items(collection, seq)",
        f"""CREATE TABLE IF NOT EXISTS pushes(
            collection TEXT NOT NULL, push_id TEXT NOT NULL, result TEXT NOT NULL,
            PRIMARY KEY(collection, push_id)){t}""",
        f"""CREATE TABLE IF NOT EXISTS staging(
            collection TEXT NOT NULL, push_id TEXT NOT NULL, chunk INTEGER NOT NULL,
            chunks INTEGER NOT NULL, body {blob} NOT NULL, created {real} NOT NULL,
            PRIMARY KEY(collection, push_id, chunk)){t}""",
        f"CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, created {real} NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS tokens(
            token_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL, user_name TEXT NOT NULL,
            created {real} NOT NULL, revoked INTEGER NOT NULL DEFAULT 0)""",
    ]


class SyncStore:
    """The sync database (base class: every query; subclasses own connections and locks).

    Subclasses implement ``_conn()`` (a per-thread :class:`_Db`), ``_write(name)``
    (a context manager: one write transaction holding the write lock of
    collection ``name``, or of the whole staging area when ``name`` is None),
    ``_read()`` (a consistent read transaction) and ``close()``.
    """

    max_staged_bytes: int = MAX_STAGED_BYTES
    url: str = ""

    # -- collections ------------------------------------------------------------
    def create_collection(self, name: str, config, owner: Optional[str] = None) -> CollectionInfo:
        """Create ``name`` with ``config`` (owned by ``owner``; None = admin), or confirm it.

        Raises ConfigMismatchError if it exists with another fingerprint and
        AccessDeniedError if it belongs to someone else.
        """
        check_collection_name(name)
        entry = registry.kind_of(config)
        with self._write(name) as db:
            row = db.one("SELECT fingerprint, owner, config FROM collections WHERE name=?", (name,))
            if row is None:
                if owner is not None and db.one("SELECT 1 FROM users WHERE name=?", (owner,)) is None:
                    raise UnknownUserError(f"no user named {owner!r}")
                db.q("INSERT INTO collections(name, config, fingerprint, code_bytes, has_norm, owner,"
                     " salt) VALUES (?,?,?,?,?,?,?)",
                     (name, bytes(config.to_bytes()), config.fingerprint, config.code_bytes,
                      int(config.metric == "dot"), owner, secrets.token_bytes(16)))
            else:
                self._check_owner(name, row[1], owner)
                if row[0] != config.fingerprint:
                    have = registry.codec_kind(bytes(row[2])[0]).name
                    raise ConfigMismatchError(
                        f"collection {name!r} uses {have} config {row[0]}, not {entry.name} "
                        f"config {config.fingerprint}")
        return self.info(name)

    @staticmethod
    def _check_owner(name, have, caller):
        # caller None = admin (sees everything); users see only their own collections
        if caller is not None and have != caller:
            raise AccessDeniedError(f"collection {name!r} belongs to another user")

    def authorize(self, name: str, caller: Optional[str]) -> None:
        """Raise UnknownCollectionError / AccessDeniedError unless ``caller`` may use ``name``."""
        row = self._conn().one("SELECT owner FROM collections WHERE name=?",
                               (check_collection_name(name),))
        if row is None:
            if caller is None:
                raise UnknownCollectionError(f"no collection named {name!r}")
            raise AccessDeniedError(f"no collection named {name!r} belongs to you")
        self._check_owner(name, row[0], caller)

    def config(self, name: str):
        row = self._conn().one("SELECT config FROM collections WHERE name=?",
                               (check_collection_name(name),))
        if row is None:
            raise UnknownCollectionError(f"no collection named {name!r}")
        try:
            return config_from_bytes(row[0])
        except ConfigError as exc:  # pragma: no cover - only a hand-edited database
            raise SyncProtocolError(f"collection {name!r} has a corrupt config: {exc}") from None

    def info(self, name: str) -> CollectionInfo:
        config = self.config(name)
        with self._read() as db:
            last_seq, owner, salt, key_check = db.one(
                "SELECT last_seq, owner, salt, key_check FROM collections WHERE name=?", (name,))
            live, dead = db.one(
                "SELECT COALESCE(SUM(CASE WHEN deleted=0 THEN 1 ELSE 0 END),0), "
                "COALESCE(SUM(CASE WHEN deleted=1 THEN 1 ELSE 0 END),0) FROM items "
                "WHERE collection=?", (name,))
        return CollectionInfo(name, config, int(last_seq), int(live), int(dead), owner,
                              bytes(salt or b""), None if key_check is None else bytes(key_check))

    def collections(self, owner: Optional[str] = None, everyone: bool = True) -> List[str]:
        """Collection names: all (``everyone``) or only those of ``owner``."""
        db = self._conn()
        if everyone:
            return [r[0] for r in db.all("SELECT name FROM collections ORDER BY name", ())]
        return [r[0] for r in db.all("SELECT name FROM collections WHERE owner=? ORDER BY name",
                                     (owner,))]

    def set_key_check(self, name: str, value: bytes) -> CollectionInfo:
        """Store the clients' encrypted key check once; the same value again is fine.

        Raises ConfigMismatchError when another value is already stored (the
        caller derived another key: a different passphrase).
        """
        value = bytes(value)
        if not 1 <= len(value) <= MAX_KEY_CHECK_BYTES:
            raise SyncProtocolError(f"a key check has 1..{MAX_KEY_CHECK_BYTES} bytes, got {len(value)}")
        with self._write(name) as db:
            row = db.one("SELECT key_check FROM collections WHERE name=?", (name,))
            if row is None:
                raise UnknownCollectionError(f"no collection named {name!r}")
            if row[0] is None:
                db.q("UPDATE collections SET key_check=? WHERE name=?", (value, name))
            elif bytes(row[0]) != value:
                raise ConfigMismatchError(f"collection {name!r} already has another key check "
                                          "(its key comes from another passphrase)")
        return self.info(name)

    # -- users and tokens ------------------------------------------------------------
    def create_user(self, name: str) -> str:
        """Create user ``name`` and return its first token (shown once, stored hashed)."""
        check_collection_name(name)
        with self._write(None) as db:
            if db.one("SELECT 1 FROM users WHERE name=?", (name,)) is not None:
                raise ConfigMismatchError(f"user {name!r} already exists")
            db.q("INSERT INTO users VALUES (?,?)", (name, time.time()))
            return self._new_token(db, name)

    def new_token(self, user: str) -> str:
        """Another token for ``user`` (e.g. one per device)."""
        with self._write(None) as db:
            if db.one("SELECT 1 FROM users WHERE name=?", (user,)) is None:
                raise UnknownUserError(f"no user named {user!r}")
            return self._new_token(db, user)

    @staticmethod
    def _new_token(db, user: str) -> str:
        token = "chs_" + secrets.token_hex(32)
        digest = token_digest(token)
        db.q("INSERT INTO tokens VALUES (?,?,?,?,0)", (digest[:16], digest, user, time.time()))
        return token

    def users(self) -> List[dict]:
        """Every user with its tokens' ids and revoked flags (never the tokens)."""
        db = self._conn()
        out = {r[0]: {"name": r[0], "tokens": []} for r in db.all("SELECT name FROM users ORDER BY name", ())}
        for tid, user, revoked in db.all("SELECT token_id, user_name, revoked FROM tokens "
                                         "ORDER BY created", ()):
            out[user]["tokens"].append({"id": tid, "revoked": bool(revoked)})
        return list(out.values())

    def revoke_token(self, token_id: str) -> None:
        """Revoke a token by its id (first 16 hex digits of its SHA-256); it stops working at once."""
        with self._write(None) as db:
            if db.one("SELECT 1 FROM tokens WHERE token_id=?", (str(token_id),)) is None:
                raise UnknownUserError(f"no token with id {str(token_id)!r:.40}")
            db.q("UPDATE tokens SET revoked=1 WHERE token_id=?", (str(token_id),))

    def user_of_token(self, token: str) -> Optional[str]:
        """The user owning ``token`` (a live one), else None. Compares hashes in constant time."""
        digest = token_digest(token)
        row = self._conn().one("SELECT token_hash, user_name, revoked FROM tokens WHERE token_id=?",
                               (digest[:16],))
        if row is None:
            hmac.compare_digest(digest, digest)  # same work whether or not the id exists
            return None
        ok = hmac.compare_digest(row[0], digest)
        return row[1] if ok and not row[2] else None

    # -- pushes -------------------------------------------------------------------
    def push_result(self, name: str, push_id: str) -> Optional[dict]:
        """The stored result of a committed push, or None."""
        row = self._conn().one("SELECT result FROM pushes WHERE collection=? AND push_id=?",
                               (name, push_id))
        return None if row is None else dict(json.loads(row[0]), duplicate=True)

    def stage_chunk(self, name: str, push_id: str, chunk: int, chunks: int, body: bytes, decode):
        """Keep one validated chunk; when the last one arrives, apply the whole push atomically.

        Parameters
        ----------
        decode : callable(bytes) -> sync_wire.Message
            Re-decodes staged bodies at commit time.

        Returns
        -------
        dict
            ``{"status": "staged", "received": k, "chunks": n}`` or the commit
            result (see :meth:`apply`).
        """
        with self._write(name, staging=True) as db:
            done = db.one("SELECT result FROM pushes WHERE collection=? AND push_id=?", (name, push_id))
            if done is not None:
                return dict(json.loads(done[0]), duplicate=True)
            other = db.all("SELECT DISTINCT chunks FROM staging WHERE collection=? AND push_id=?",
                           (name, push_id))
            if any(r[0] != chunks for r in other):
                raise SyncProtocolError(f"push {push_id}: chunk {chunk} says the push has {chunks} "
                                        f"chunks, earlier chunks said {other[0][0]}")
            staged = db.one("SELECT COALESCE(SUM(LENGTH(body)), 0) FROM staging", ())[0]
            if int(staged) + len(body) > self.max_staged_bytes:
                raise StagingFullError(
                    f"unfinished pushes already hold {staged} bytes (limit {self.max_staged_bytes}); "
                    f"chunk {chunk} of push {push_id} was not stored")
            db.q("INSERT INTO staging VALUES (?,?,?,?,?,?) ON CONFLICT(collection, push_id, chunk) "
                 "DO UPDATE SET body=excluded.body, created=excluded.created",
                 (name, push_id, chunk, chunks, bytes(body), time.time()))
            have = db.one("SELECT COUNT(*) FROM staging WHERE collection=? AND push_id=?",
                          (name, push_id))[0]
            if have < chunks:
                return {"status": "staged", "push_id": push_id, "received": int(have), "chunks": chunks}
            puts, deletes = [], []
            for (blob,) in db.all("SELECT body FROM staging WHERE collection=? AND push_id=? "
                                  "ORDER BY chunk", (name, push_id)):
                msg = decode(bytes(blob))
                puts += msg.puts
                deletes += msg.deletes
            db.q("DELETE FROM staging WHERE collection=? AND push_id=?", (name, push_id))
            return self._apply(db, name, push_id, puts, deletes)

    def apply(self, name: str, push_id: str, puts: Iterable[Put], deletes: Iterable[Delete]) -> dict:
        """Apply one push in one transaction (idempotent by ``push_id``).

        Returns
        -------
        dict
            ``{"status": "committed", "push_id", "applied", "superseded", "unchanged",
            "first_seq", "last_seq", "duplicate": False}``; a retried push returns
            the stored result with ``duplicate: True`` and changes nothing.
        """
        with self._write(name) as db:
            done = db.one("SELECT result FROM pushes WHERE collection=? AND push_id=?", (name, push_id))
            if done is not None:
                return dict(json.loads(done[0]), duplicate=True)
            return self._apply(db, name, push_id, list(puts), list(deletes))

    def _apply(self, db, name, push_id, puts, deletes) -> dict:
        row = db.one("SELECT code_bytes, has_norm, last_seq FROM collections WHERE name=?", (name,))
        if row is None:
            raise UnknownCollectionError(f"no collection named {name!r}")
        code_bytes, has_norm, seq = row[0], row[1], int(row[2])
        seen = set()
        for ch in list(puts) + list(deletes):
            check_id(ch.id, "push")
            if ch.id in seen:
                raise SyncProtocolError(f"push {push_id}: id {ch.id!r:.80} appears more than once")
            seen.add(ch.id)
        for p in puts:
            if len(p.code) != code_bytes or (p.norm_code is None) == bool(has_norm):
                raise ConfigMismatchError(
                    f"push {push_id}: code of id {p.id!r:.80} has {len(p.code)} bytes "
                    f"(collection needs {code_bytes}{' + a norm code' if has_norm else ''})")
            if p.payload is not None and len(p.payload) > MAX_PAYLOAD_BYTES:
                raise SyncProtocolError(f"push {push_id}: payload of id {p.id!r:.80} has "
                                        f"{len(p.payload)} bytes, at most {MAX_PAYLOAD_BYTES}")
        current = {item_id: (int(clock), device)
                   for item_id, clock, device in self._current(db, name, list(seen))}
        first = seq + 1
        applied = superseded = unchanged = 0
        log_rows, item_rows = [], []
        for op, ch in [(OP_PUT, p) for p in puts] + [(OP_DELETE, d) for d in deletes]:
            cur = current.get(ch.id)
            key = (ch.clock, ch.device)
            if cur is not None and key <= cur:
                if key == cur:
                    unchanged += 1
                else:
                    superseded += 1
                continue
            seq += 1
            put = op == OP_PUT
            code = bytes(ch.code) if put else None
            norm = ch.norm_code if put else None
            payload = (None if ch.payload is None else bytes(ch.payload)) if put else None
            log_rows.append((name, seq, ch.id, op, ch.clock, ch.device, push_id, None, None, None))
            item_rows.append((name, ch.id, seq, ch.clock, ch.device, int(not put), code, norm, payload))
            applied += 1
        if log_rows:
            self._write_rows(db, log_rows, item_rows)
        db.q("UPDATE collections SET last_seq=? WHERE name=?", (seq, name))
        result = {"status": "committed", "push_id": push_id, "applied": applied,
                  "superseded": superseded, "unchanged": unchanged,
                  "first_seq": first if applied else None, "last_seq": seq}
        db.q("INSERT INTO pushes VALUES (?,?,?)", (name, push_id, json.dumps(result)))
        return dict(result, duplicate=False)

    def _current(self, db, name: str, ids: list):
        """``(item_id, clock, device)`` of those of ``ids`` that exist (any order)."""
        out = []
        for k in range(0, len(ids), _IN_BATCH):
            part = ids[k:k + _IN_BATCH]
            marks = ",".join("?" * len(part))
            out += db.all(f"SELECT item_id, clock, device FROM items WHERE collection=? AND "
                          f"item_id IN ({marks})", [name, *part])
        return out

    def _write_rows(self, db, log_rows: list, item_rows: list) -> None:
        """Append ``log_rows`` to changes and upsert ``item_rows`` into items."""
        db.many("INSERT INTO changes VALUES (?,?,?,?,?,?,?,?,?,?)", log_rows)
        db.many("INSERT INTO items VALUES (?,?,?,?,?,?,?,?,?) " + ITEMS_UPSERT, item_rows)

    def drop_stale_staging(self, max_age: float = STAGING_TTL_SECONDS) -> int:
        """Forget chunks of pushes that never completed (older than ``max_age`` seconds)."""
        with self._write(None, staging=True) as db:
            return db.q("DELETE FROM staging WHERE created < ?", (time.time() - max_age,)).rowcount

    # -- pulls --------------------------------------------------------------------
    def changes_since(self, name: str, since: int, limit: int):
        """Current state of every id changed after sequence number ``since``.

        Returns
        -------
        puts : list[Put]
        deletes : list[Delete]
        cursor : int
            The sequence number to pass as ``since`` next time.
        more : bool
            True when ``limit`` cut the page short.
        last_seq : int
        """
        config = self.config(name)
        dot = config.metric == "dot"
        with self._read() as db:
            last_seq = int(db.one("SELECT last_seq FROM collections WHERE name=?", (name,))[0])
            rows = db.all(
                "SELECT item_id, seq, clock, device, deleted, code, norm_code, payload FROM items "
                "WHERE collection=? AND seq>? ORDER BY seq LIMIT ?", (name, since, limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        puts, deletes = [], []
        for item_id, seq, clock, device, deleted, code, norm, payload in rows:
            if deleted:
                deletes.append(Delete(item_id, int(clock), device, int(seq)))
            else:
                puts.append(Put(item_id, int(clock), bytes(code), norm if dot else None, device,
                                int(seq), None if payload is None else bytes(payload)))
        cursor = int(rows[-1][1]) if rows else max(since, 0) if since <= last_seq else last_seq
        return puts, deletes, cursor, more, last_seq

    def log(self, name: str) -> list:
        """The whole change log of a collection: (seq, item_id, op, clock, device, push_id)."""
        return [tuple(r) for r in self._conn().all(
            "SELECT seq, item_id, op, clock, device, push_id FROM changes WHERE collection=? "
            "ORDER BY seq", (name,))]

    def state(self, name: str) -> dict:
        """Live items: id -> (code bytes, norm code or None). For tests and tools."""
        return {r[0]: (bytes(r[1]), r[2]) for r in self._conn().all(
            "SELECT item_id, code, norm_code FROM items WHERE collection=? AND deleted=0", (name,))}

    def counts(self, name: str):
        """``(items, [seq...], pushes)``: for the crash and load tests."""
        db = self._conn()
        items = int(db.one("SELECT COUNT(*) FROM items WHERE collection=?", (name,))[0])
        seqs = [int(r[0]) for r in db.all("SELECT seq FROM changes WHERE collection=? ORDER BY seq",
                                          (name,))]
        pushes = int(db.one("SELECT COUNT(*) FROM pushes WHERE collection=?", (name,))[0])
        return items, seqs, pushes

    # -- implemented by subclasses ------------------------------------------------------
    def _conn(self) -> "_Db":  # pragma: no cover - abstract
        raise NotImplementedError

    def _write(self, name: Optional[str], staging: bool = False):  # pragma: no cover - abstract
        raise NotImplementedError

    def _read(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self):  # pragma: no cover - abstract
        raise NotImplementedError


class _Db:
    """A connection with three helpers; SQL is written with ``?`` placeholders."""

    def __init__(self, conn, paramstyle_format: bool = False):
        self.conn = conn
        self._fmt = paramstyle_format

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._fmt else sql

    def q(self, sql, params=()):
        return self.conn.execute(self._sql(sql), tuple(params))

    def one(self, sql, params=()):
        return self.q(sql, params).fetchone()

    def all(self, sql, params=()):
        return self.q(sql, params).fetchall()

    def many(self, sql, rows):
        if self._fmt:
            with self.conn.cursor() as cur:
                cur.executemany(self._sql(sql), rows)
        else:
            self.conn.executemany(sql, rows)


def open_store(url, max_staged_bytes: int = MAX_STAGED_BYTES) -> SyncStore:
    """Open the store named by ``url``: ``sqlite:///path`` (or a plain path) or ``postgresql://...``."""
    text = str(url)
    if text.startswith(("postgresql://", "postgres://")):
        from .postgres_store import PostgresStore

        return PostgresStore(text, max_staged_bytes=max_staged_bytes)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite://"):]
    elif "://" in text:
        raise ConfigError(f"--db must be sqlite:///path or postgresql://..., got {text!r:.100}")
    from .sqlite_store import SQLiteStore

    return SQLiteStore(text, max_staged_bytes=max_staged_bytes)
