"""The SQLite sync store (stdlib ``sqlite3``, WAL journal): the embedded default.

Every thread gets its own connection. A write takes ``BEGIN IMMEDIATE``, the
database-wide write lock, so pushes to any collection are serialized and
sequence numbers stay gapless; readers never wait (WAL). ``synchronous=FULL``:
a committed push survives a power cut. All queries live in
:class:`clark_hash_web.sync.store.SyncStore`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager

from .store import MAX_STAGED_BYTES, SyncStore, _Db, _schema

# Columns added after the first release: (table, column, type); added on open when missing.
_LATER_COLUMNS = [("collections", "owner", "TEXT"), ("collections", "salt", "BLOB"),
                  ("collections", "key_check", "BLOB"), ("changes", "payload", "BLOB"),
                  ("items", "payload", "BLOB")]


class SQLiteStore(SyncStore):
    """Sync store in one SQLite file.

    Parameters
    ----------
    path : str or os.PathLike
        The SQLite file (created with its folder when missing).
    """

    def __init__(self, path, max_staged_bytes: int = MAX_STAGED_BYTES):
        self.path = os.fspath(path)
        self.url = "sqlite:///" + os.path.abspath(self.path).lstrip("/")
        self.max_staged_bytes = max_staged_bytes
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._local = threading.local()
        # Writers of this process queue here (woken in turn by the OS) instead of polling
        # SQLite's busy handler, which sleeps in steps and lets late arrivals overtake.
        self._write_lock = threading.Lock()
        with self._write(None) as db:
            for stmt in _schema("BLOB", "REAL", " WITHOUT ROWID"):
                db.q(stmt)
            for table, column, kind in _LATER_COLUMNS:
                have = {r[1] for r in db.all(f"PRAGMA table_info({table})")}
                if column not in have:
                    db.q(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            # collections made before salts existed get one (clients derive keys from it)
            db.q("UPDATE collections SET salt=randomblob(16) WHERE salt IS NULL")

    def _conn(self) -> _Db:
        db = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=60000")
            db = self._local.db = _Db(conn)
        return db

    def close(self):
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None

    @contextmanager
    def _write(self, name, staging: bool = False):
        db = self._conn()
        with self._write_lock:
            db.q("BEGIN IMMEDIATE")  # the database-wide write lock: covers every collection
            try:
                yield db
            except BaseException:
                db.q("ROLLBACK")
                raise
            db.q("COMMIT")

    @contextmanager
    def _read(self):
        db = self._conn()
        db.q("BEGIN")  # one snapshot for every statement inside
        try:
            yield db
        finally:
            db.q("COMMIT")
