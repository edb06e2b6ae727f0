"""Server-side sync storage on SQLite (stdlib ``sqlite3``, WAL journal).

One database file holds any number of collections. Each collection carries
the canonical bytes and fingerprint of its codec config; codes of any other
config are refused.

Schema::

    collections(name PK, config BLOB, fingerprint, code_bytes, has_norm, last_seq)
    changes(collection, seq, item_id, op, clock, device, push_id, code, norm_code)
        PK (collection, seq)      -- the append-only change log; op 1 = put, 2 = delete
    items(collection, item_id, seq, clock, device, deleted, code, norm_code)
        PK (collection, item_id)  -- the current state; deleted rows are tombstones
    pushes(collection, push_id, result)      -- committed pushes (idempotent retries)
    staging(collection, push_id, chunk, chunks, body, created)  -- chunks of unfinished pushes

Sequence numbers are per collection and gapless: every accepted change takes
``last_seq + 1`` inside one ``BEGIN IMMEDIATE`` transaction, so a push is
either fully in the log or not at all (a killed process rolls back).

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
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Iterable, List, Optional

from ..codecs.clark_hash_config import ClarkHashConfig
from ..errors import ConfigError, ConfigMismatchError, SyncProtocolError
from ..formats.sync_wire import Delete, Put, check_id

OP_PUT = 1
OP_DELETE = 2
STAGING_TTL_SECONDS = 24 * 3600
MAX_STAGED_BYTES = 512 * 1024 * 1024  # chunks of unfinished pushes, all collections together

_SCHEMA = """
CREATE TABLE IF NOT EXISTS collections(
    name TEXT PRIMARY KEY, config BLOB NOT NULL, fingerprint TEXT NOT NULL,
    code_bytes INTEGER NOT NULL, has_norm INTEGER NOT NULL, last_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS changes(
    collection TEXT NOT NULL, seq INTEGER NOT NULL, item_id TEXT NOT NULL, op INTEGER NOT NULL,
    clock INTEGER NOT NULL, device TEXT NOT NULL, push_id TEXT NOT NULL, code BLOB,
    norm_code INTEGER, PRIMARY KEY(collection, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS items(
    collection TEXT NOT NULL, item_id TEXT NOT NULL, seq INTEGER NOT NULL, clock INTEGER NOT NULL,
    device TEXT NOT NULL, deleted INTEGER NOT NULL, code BLOB, norm_code INTEGER,
    PRIMARY KEY(collection, item_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_by_seq ON items(collection, seq);
CREATE TABLE IF NOT EXISTS pushes(
    collection TEXT NOT NULL, push_id TEXT NOT NULL, result TEXT NOT NULL,
    PRIMARY KEY(collection, push_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS staging(
    collection TEXT NOT NULL, push_id TEXT NOT NULL, chunk INTEGER NOT NULL, chunks INTEGER NOT NULL,
    body BLOB NOT NULL, created REAL NOT NULL, PRIMARY KEY(collection, push_id, chunk)) WITHOUT ROWID;
"""


class UnknownCollectionError(SyncProtocolError):
    """The named collection does not exist."""


class StagingFullError(SyncProtocolError):
    """Unfinished pushes already hold ``max_staged_bytes``: finish or abandon them first."""


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    config: ClarkHashConfig
    last_seq: int
    count: int          # live (not deleted) items
    tombstones: int

    def to_json(self) -> dict:
        return {"name": self.name, "fingerprint": self.config.fingerprint,
                "config": self.config.to_bytes().hex(), "config_fields": self.config.to_dict(),
                "code_bytes": self.config.code_bytes, "last_seq": self.last_seq,
                "count": self.count, "tombstones": self.tombstones}


def check_collection_name(name) -> str:
    """Collection names: 1..64 of ``[A-Za-z0-9_.-]``, not starting with a dot."""
    import re

    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,63}$", name):
        raise SyncProtocolError(f"collection names are 1..64 of [A-Za-z0-9_.-] (no leading dot), "
                                f"got {name!r:.80}")
    return name


class SyncStore:
    """The sync database. Thread-safe: each thread gets its own connection.

    Parameters
    ----------
    path : str or os.PathLike
        The SQLite file (created with its folder when missing).
    """

    def __init__(self, path, max_staged_bytes: int = MAX_STAGED_BYTES):
        self.path = os.fspath(path)
        self.max_staged_bytes = max_staged_bytes
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._local = threading.local()
        with self._conn() as db:
            db.executescript(_SCHEMA)

    # -- connections ------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=60000")
            self._local.db = db
        return db

    def close(self):
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    class _Tx:
        def __init__(self, db):
            self.db = db

        def __enter__(self):
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, et, ev, tb):
            self.db.execute("COMMIT" if et is None else "ROLLBACK")
            return False

    def _write(self):
        return self._Tx(self._conn())

    # -- collections ------------------------------------------------------------
    def create_collection(self, name: str, config: ClarkHashConfig) -> CollectionInfo:
        """Create ``name`` with ``config``, or confirm it exists with the same config.

        Raises ConfigMismatchError if it exists with another fingerprint.
        """
        check_collection_name(name)
        with self._write() as db:
            row = db.execute("SELECT fingerprint FROM collections WHERE name=?", (name,)).fetchone()
            if row is None:
                db.execute("INSERT INTO collections(name, config, fingerprint, code_bytes, has_norm)"
                           " VALUES (?,?,?,?,?)", (name, config.to_bytes(), config.fingerprint,
                                                   config.code_bytes, int(config.metric == "dot")))
            elif row[0] != config.fingerprint:
                raise ConfigMismatchError(f"collection {name!r} uses config {row[0]}, "
                                          f"not {config.fingerprint}")
        return self.info(name)

    def config(self, name: str) -> ClarkHashConfig:
        row = self._conn().execute("SELECT config FROM collections WHERE name=?",
                                   (check_collection_name(name),)).fetchone()
        if row is None:
            raise UnknownCollectionError(f"no collection named {name!r}")
        try:
            return ClarkHashConfig.from_bytes(row[0])
        except ConfigError as exc:  # pragma: no cover - only a hand-edited database
            raise SyncProtocolError(f"collection {name!r} has a corrupt config: {exc}") from None

    def info(self, name: str) -> CollectionInfo:
        config = self.config(name)
        db = self._conn()
        last_seq = db.execute("SELECT last_seq FROM collections WHERE name=?", (name,)).fetchone()[0]
        live, dead = db.execute(
            "SELECT COALESCE(SUM(deleted=0),0), COALESCE(SUM(deleted=1),0) FROM items "
            "WHERE collection=?", (name,)).fetchone()
        return CollectionInfo(name, config, last_seq, live, dead)

    def collections(self) -> List[str]:
        return [r[0] for r in self._conn().execute("SELECT name FROM collections ORDER BY name")]

    # -- pushes -------------------------------------------------------------------
    def push_result(self, name: str, push_id: str) -> Optional[dict]:
        """The stored result of a committed push, or None."""
        row = self._conn().execute("SELECT result FROM pushes WHERE collection=? AND push_id=?",
                                   (name, push_id)).fetchone()
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
        with self._write() as db:
            done = db.execute("SELECT result FROM pushes WHERE collection=? AND push_id=?",
                              (name, push_id)).fetchone()
            if done is not None:
                return dict(json.loads(done[0]), duplicate=True)
            other = db.execute("SELECT DISTINCT chunks FROM staging WHERE collection=? AND push_id=?",
                               (name, push_id)).fetchall()
            if any(r[0] != chunks for r in other):
                raise SyncProtocolError(f"push {push_id}: chunk {chunk} says the push has {chunks} "
                                        f"chunks, earlier chunks said {other[0][0]}")
            staged = db.execute("SELECT COALESCE(SUM(LENGTH(body)), 0) FROM staging").fetchone()[0]
            if staged + len(body) > self.max_staged_bytes:
                raise StagingFullError(
                    f"unfinished pushes already hold {staged} bytes (limit {self.max_staged_bytes}); "
                    f"chunk {chunk} of push {push_id} was not stored")
            db.execute("INSERT OR REPLACE INTO staging VALUES (?,?,?,?,?,?)",
                       (name, push_id, chunk, chunks, body, time.time()))
            have = db.execute("SELECT COUNT(*) FROM staging WHERE collection=? AND push_id=?",
                              (name, push_id)).fetchone()[0]
            if have < chunks:
                return {"status": "staged", "push_id": push_id, "received": have, "chunks": chunks}
            puts, deletes, device = [], [], None
            for (blob,) in db.execute("SELECT body FROM staging WHERE collection=? AND push_id=? "
                                      "ORDER BY chunk", (name, push_id)).fetchall():
                msg = decode(blob)
                puts += msg.puts
                deletes += msg.deletes
            db.execute("DELETE FROM staging WHERE collection=? AND push_id=?", (name, push_id))
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
        with self._write() as db:
            done = db.execute("SELECT result FROM pushes WHERE collection=? AND push_id=?",
                              (name, push_id)).fetchone()
            if done is not None:
                return dict(json.loads(done[0]), duplicate=True)
            return self._apply(db, name, push_id, list(puts), list(deletes))

    def _apply(self, db, name, push_id, puts, deletes) -> dict:
        row = db.execute("SELECT config, code_bytes, has_norm, last_seq FROM collections WHERE name=?",
                         (name,)).fetchone()
        if row is None:
            raise UnknownCollectionError(f"no collection named {name!r}")
        _, code_bytes, has_norm, seq = row
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
        first = seq + 1
        applied = superseded = unchanged = 0
        changes = [(OP_PUT, p) for p in puts] + [(OP_DELETE, d) for d in deletes]
        for op, ch in changes:
            cur = db.execute("SELECT clock, device FROM items WHERE collection=? AND item_id=?",
                             (name, ch.id)).fetchone()
            key = (ch.clock, ch.device)
            if cur is not None and key <= tuple(cur):
                if key == tuple(cur):
                    unchanged += 1
                else:
                    superseded += 1
                continue
            seq += 1
            code = ch.code if op == OP_PUT else None
            norm = ch.norm_code if op == OP_PUT else None
            db.execute("INSERT INTO changes VALUES (?,?,?,?,?,?,?,?,?)",
                       (name, seq, ch.id, op, ch.clock, ch.device, push_id, code, norm))
            db.execute("INSERT OR REPLACE INTO items VALUES (?,?,?,?,?,?,?,?)",
                       (name, ch.id, seq, ch.clock, ch.device, int(op == OP_DELETE), code, norm))
            applied += 1
        db.execute("UPDATE collections SET last_seq=? WHERE name=?", (seq, name))
        result = {"status": "committed", "push_id": push_id, "applied": applied,
                  "superseded": superseded, "unchanged": unchanged,
                  "first_seq": first if applied else None, "last_seq": seq}
        db.execute("INSERT INTO pushes VALUES (?,?,?)", (name, push_id, json.dumps(result)))
        return dict(result, duplicate=False)

    def drop_stale_staging(self, max_age: float = STAGING_TTL_SECONDS) -> int:
        """Forget chunks of pushes that never completed (older than ``max_age`` seconds)."""
        with self._write() as db:
            return db.execute("DELETE FROM staging WHERE created < ?",
                              (time.time() - max_age,)).rowcount

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
        db = self._conn()
        db.execute("BEGIN")
        try:
            last_seq = db.execute("SELECT last_seq FROM collections WHERE name=?", (name,)).fetchone()[0]
            rows = db.execute(
                "SELECT item_id, seq, clock, device, deleted, code, norm_code FROM items "
                "WHERE collection=? AND seq>? ORDER BY seq LIMIT ?", (name, since, limit + 1)).fetchall()
        finally:
            db.execute("COMMIT")
        more = len(rows) > limit
        rows = rows[:limit]
        puts, deletes = [], []
        for item_id, seq, clock, device, deleted, code, norm in rows:
            if deleted:
                deletes.append(Delete(item_id, clock, device, seq))
            else:
                puts.append(Put(item_id, clock, bytes(code), norm if config.metric == "dot" else None,
                                device, seq))
        cursor = rows[-1][1] if rows else max(since, 0) if since <= last_seq else last_seq
        return puts, deletes, cursor, more, last_seq

    def log(self, name: str) -> list:
        """The whole change log of a collection: (seq, item_id, op, clock, device, push_id)."""
        return self._conn().execute(
            "SELECT seq, item_id, op, clock, device, push_id FROM changes WHERE collection=? "
            "ORDER BY seq", (name,)).fetchall()

    def state(self, name: str) -> dict:
        """Live items: id -> (code bytes, norm code or None). For tests and tools."""
        return {r[0]: (bytes(r[1]), r[2]) for r in self._conn().execute(
            "SELECT item_id, code, norm_code FROM items WHERE collection=? AND deleted=0",
            (name,))}
