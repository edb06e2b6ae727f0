"""The PostgreSQL sync store (psycopg 3): for more than one server machine.

Every thread gets its own connection (autocommit off, READ COMMITTED). A
write transaction first takes ``pg_advisory_xact_lock`` on a 64-bit key
derived from the collection name, so pushes to one collection are serialized
(gapless sequence numbers, one winner per id) while pushes to other
collections run in parallel, on any number of server processes or machines
sharing the database. Staging (chunks of unfinished pushes) and the
user/token tables take one more shared key. The locks end with the
transaction, also when a server process is killed (the connection drops and
PostgreSQL rolls back). Pulls read in one REPEATABLE READ snapshot.
All queries live in :class:`clark_hash_web.sync.store.SyncStore`.
"""

from __future__ import annotations

import hashlib
import threading
from contextlib import contextmanager

from ..errors import ConfigError
from .store import ITEMS_UPSERT, MAX_STAGED_BYTES, SyncStore, _Db, _schema

_GLOBAL_KEY = "clark-hash-sync:global"


def lock_key(name: str) -> int:
    """The advisory lock key of a collection name (signed 64-bit, stable across processes)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)


class PostgresStore(SyncStore):
    """Sync store in a PostgreSQL database.

    Parameters
    ----------
    url : str
        A libpq URL, e.g. ``postgresql://clark@db.example/clark`` (password in
        the URL, ``PGPASSWORD`` or ``~/.pgpass``).
    """

    def __init__(self, url: str, max_staged_bytes: int = MAX_STAGED_BYTES):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigError("PostgreSQL needs psycopg 3: pip install 'clark-hash-web[server]'") \
                from None
        self.url = url
        self.max_staged_bytes = max_staged_bytes
        self._local = threading.local()
        self._all = []
        self._all_lock = threading.Lock()
        with self._write(_GLOBAL_KEY) as db:
            for stmt in _schema("BYTEA", "DOUBLE PRECISION"):
                db.q(stmt)

    def _conn(self) -> _Db:
        db = getattr(self._local, "db", None)
        if db is None or db.conn.closed:
            import psycopg

            try:
                conn = psycopg.connect(self.url, autocommit=True, connect_timeout=20)
            except psycopg.OperationalError as exc:
                raise ConfigError(f"cannot connect to PostgreSQL at {_safe(self.url)}: {exc}") from None
            db = self._local.db = _Db(conn, paramstyle_format=True)
            with self._all_lock:
                self._all.append(conn)
        return db

    def close(self):
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def _current(self, db, name: str, ids: list):
        return db.all("SELECT item_id, clock, device FROM items WHERE collection=? AND "
                      "item_id = ANY(?)", (name, ids))

    def _write_rows(self, db, log_rows: list, item_rows: list) -> None:
        """COPY instead of row-by-row INSERTs (the bulk of a push's time otherwise)."""
        with db.conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS items_in (LIKE items) ON COMMIT DELETE ROWS")
            with cur.copy("COPY changes (collection, seq, item_id, op, clock, device, push_id) "
                          "FROM STDIN") as cp:
                for r in log_rows:
                    cp.write_row(r[:7])
            with cur.copy("COPY items_in FROM STDIN") as cp:
                for r in item_rows:
                    cp.write_row(r)
            cur.execute("INSERT INTO items SELECT * FROM items_in " + ITEMS_UPSERT)

    @contextmanager
    def _write(self, name, staging: bool = False):
        db = self._conn()
        with db.conn.transaction():
            keys = [] if name is None else [lock_key(name)]
            if name is None or staging:
                keys.append(lock_key(_GLOBAL_KEY))
            for key in sorted(keys):  # one order everywhere: no deadlocks
                db.q("SELECT pg_advisory_xact_lock(?)", (key,))
            yield db

    @contextmanager
    def _read(self):
        db = self._conn()
        with db.conn.transaction():
            db.q("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield db


def _safe(url: str) -> str:
    """The URL without its password (for error messages)."""
    from urllib.parse import urlsplit, urlunsplit

    p = urlsplit(url)
    if p.password:
        p = p._replace(netloc=p.netloc.replace(":" + p.password + "@", ":***@"))
    return urlunsplit(p)
