"""Python sync client: push and pull sketch deltas against ``clark-hash serve``.

:class:`SyncClient` speaks the HTTP API (see :mod:`clark_hash_web.sync.server`)
with the binary envelopes of :mod:`clark_hash_web.formats.sync_wire`:

- ``push`` splits big pushes into chunks under the server's body limit, all
  sharing one client-generated push id, and retries on connection failures
  and 5xx answers with the same bytes: a retried push changes nothing.
- ``pull`` returns the current state of every id changed after a cursor.

:class:`Replica` is a device's local copy (in memory): it assigns Lamport
clocks to local edits, queues them while offline, and applies pulled changes
with the same last-writer-wins rule as the server (see
:mod:`clark_hash_web.sync.store`), so every replica converges.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from typing import Iterable, Optional
from urllib.parse import quote, urlsplit

from ..codecs import registry
from ..errors import SyncAuthError, SyncError, SyncRefusedError
from ..formats.sync_wire import (KIND_PULL, Delete, Put, check_token, decode, encode_push,
                                 split_for_push)

DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024
RETRYABLE = (ConnectionError, TimeoutError, http.client.HTTPException, OSError)


def new_push_id() -> str:
    """A fresh random push id (32 hex characters)."""
    return uuid.uuid4().hex


class SyncClient:
    """Talks to one collection of a sync server.

    Parameters
    ----------
    url : str
        Server origin, e.g. ``"http://127.0.0.1:8765"``.
    token : str
        The server's token.
    collection : str
    device : str
        This device's name (1..64 of ``[A-Za-z0-9_.-]``); the tie-breaker of the
        convergence rule, so each device needs its own.
    retries : int
        Extra attempts after a connection failure or a 5xx answer.
    chunk_bytes : int
        Largest push body; keep it at or under the server's ``--max-body``.
    """

    def __init__(self, url: str, token: str, collection: str, device: str, timeout: float = 60.0,
                 retries: int = 8, backoff: float = 0.1, chunk_bytes: int = DEFAULT_CHUNK_BYTES):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SyncError(f"server url must be http(s)://host:port, got {url!r}")
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self.token, self.collection = token, collection
        self.device = check_token(device, "device")
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.chunk_bytes = chunk_bytes
        self._config = None

    # -- HTTP -------------------------------------------------------------------
    def _once(self, method, path, body=None, ctype="application/octet-stream"):
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout)
        try:
            headers = {"Authorization": f"Bearer {self.token}"}
            if body is not None:
                headers["Content-Type"] = ctype
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type", ""), resp.read()
        finally:
            conn.close()

    def request(self, method: str, path: str, body: Optional[bytes] = None):
        """One API call with retries; returns the body (bytes) of a 2xx answer.

        Raises SyncAuthError (401), SyncRefusedError (other 4xx, or 5xx after
        the retries), or the last connection error.
        """
        attempt = 0
        while True:
            try:
                status, ctype, data = self._once(method, path, body)
            except RETRYABLE:
                if attempt >= self.retries:
                    raise
            else:
                if status < 400:
                    return data
                try:
                    err = json.loads(data)
                    kind, message = err["error"], err["message"]
                except (ValueError, KeyError, TypeError):
                    kind, message = "HTTPError", data[:200].decode("utf-8", "replace")
                if status == 401:
                    raise SyncAuthError(status, kind, message)
                if status < 500 or attempt >= self.retries:
                    raise SyncRefusedError(status, kind, message)
            attempt += 1
            time.sleep(min(2.0, self.backoff * 2 ** (attempt - 1)))

    def _path(self, suffix: str = "") -> str:
        return f"/api/v1/collections/{quote(self.collection, safe='')}{suffix}"

    # -- collection -------------------------------------------------------------------
    def ensure_collection(self, config, owner: Optional[str] = None) -> dict:
        """Create the collection with ``config`` (any registered codec), or check that it has it.

        ``owner`` (admin token only) creates it for that user.
        """
        query = f"?owner={quote(owner, safe='')}" if owner else ""
        info = json.loads(self.request("PUT", self._path(query), bytes(config.to_bytes())))
        self._config = config
        return info

    def info(self) -> dict:
        return json.loads(self.request("GET", self._path()))

    def set_key_check(self, value: bytes) -> dict:
        """Store the collection's encrypted key check (once; another value is a 409)."""
        return json.loads(self.request("PUT", self._path("/key-check"), bytes(value)))

    @property
    def config(self):
        """The collection's codec config (fetched once)."""
        if self._config is None:
            self._config = registry.config_from_bytes(bytes.fromhex(self.info()["config"]))
        return self._config

    # -- push / pull ------------------------------------------------------------------
    def push(self, puts: Iterable[Put] = (), deletes: Iterable[Delete] = (),
             push_id: Optional[str] = None) -> dict:
        """Push changes; big pushes go as several chunks under one push id.

        The server applies the whole push in one transaction when its last
        chunk arrives. Returns the server's commit result (``applied``,
        ``superseded``, ``unchanged``, ``first_seq``, ``last_seq``, ``duplicate``).
        """
        push_id = check_token(push_id or new_push_id(), "push_id")
        puts, deletes = list(puts), list(deletes)
        config = self.config
        chunks = split_for_push(puts, deletes, config.code_bytes, self.chunk_bytes)
        result = None
        for i, (cp, cd) in enumerate(chunks):
            body = encode_push(config, push_id, self.device, cp, cd, chunk=i, chunks=len(chunks))
            result = json.loads(self.request("POST", self._path("/push"), body))
            if result.get("status") == "committed":
                break  # an earlier attempt of this push already committed it
        return result

    def push_encoded(self, encoded, ids, clock: int = 1, push_id: Optional[str] = None,
                     payloads=None) -> dict:
        """Push an ``EncodedBatch`` (or sketch-file data) under string ids, all at ``clock``.

        ``payloads``: optional list (one bytes or None per id), e.g. from
        :func:`clark_hash_web.sync.crypto.encrypt_note`.
        """
        codes = encoded.codes_bytes() if hasattr(encoded, "codes_bytes") else bytes(encoded.codes)
        norms = encoded.norm_codes_bytes() if hasattr(encoded, "norm_codes_bytes") else (
            None if encoded.norm_codes is None else bytes(encoded.norm_codes))
        cb = self.config.code_bytes
        ids = [str(i) for i in ids]
        if len(codes) != cb * len(ids):
            raise SyncError(f"{len(ids)} ids for {len(codes) // cb} codes")
        import struct

        nv = struct.unpack(f"<{len(ids)}H", norms) if norms else [None] * len(ids)
        pl = list(payloads) if payloads is not None else [None] * len(ids)
        if len(pl) != len(ids):
            raise SyncError(f"{len(pl)} payloads for {len(ids)} ids")
        puts = [Put(i, clock, codes[k * cb:(k + 1) * cb], nv[k], self.device, 0, pl[k])
                for k, i in enumerate(ids)]
        return self.push(puts, (), push_id)

    def pull(self, since: int = 0, limit: int = 5000):
        """One page of changes after ``since``: a ``sync_wire.Message`` (meta has cursor, more)."""
        data = self.request("GET", self._path(f"/changes?since={int(since)}&limit={int(limit)}"))
        return decode(data, expect_kind=KIND_PULL, expect_config=self.config)

    def pull_all(self, since: int = 0, limit: int = 5000):
        """Every change after ``since``: ``(puts, deletes, cursor)``."""
        puts, deletes = [], []
        while True:
            msg = self.pull(since, limit)
            puts += msg.puts
            deletes += msg.deletes
            since = msg.meta["cursor"]
            if not msg.meta["more"]:
                return puts, deletes, since


class Replica:
    """A device's in-memory copy of one collection, with an offline queue.

    Attributes
    ----------
    items : dict[str, tuple]
        id -> (clock, device, deleted, code, norm_code, payload).
    pending : dict[str, Put | Delete]
        Local edits not yet pushed (the newest per id).
    cursor : int
        Server sequence number seen so far.
    """

    def __init__(self, client: SyncClient):
        self.client = client
        self.device = client.device
        self.items: dict = {}
        self.pending: dict = {}
        self.cursor = 0
        self.clock = 0

    def _tick(self) -> int:
        self.clock += 1
        return self.clock

    def put(self, id_: str, code: bytes, norm_code: Optional[int] = None,
            payload: Optional[bytes] = None):
        """Local upsert (queued until :meth:`sync`); ``payload`` is opaque (e.g. encrypted text)."""
        p = Put(id_, self._tick(), bytes(code), norm_code, self.device, 0, payload)
        self._apply(p)
        self.pending[id_] = p

    def delete(self, id_: str):
        """Local delete (queued until :meth:`sync`)."""
        d = Delete(id_, self._tick(), self.device)
        self._apply(d)
        self.pending[id_] = d

    def _apply(self, ch) -> bool:
        self.clock = max(self.clock, ch.clock)
        cur = self.items.get(ch.id)
        if cur is not None and (ch.clock, ch.device) <= (cur[0], cur[1]):
            return False
        if isinstance(ch, Put):
            self.items[ch.id] = (ch.clock, ch.device, False, ch.code, ch.norm_code, ch.payload)
        else:
            self.items[ch.id] = (ch.clock, ch.device, True, None, None, None)
        return True

    def sync(self, push_id: Optional[str] = None) -> dict:
        """Push the queue (one push), then pull everything after the cursor."""
        result = None
        if self.pending:
            queued = list(self.pending.values())
            result = self.client.push([c for c in queued if isinstance(c, Put)],
                                      [c for c in queued if isinstance(c, Delete)], push_id)
            for c in queued:
                if self.pending.get(c.id) is c:
                    del self.pending[c.id]
        puts, deletes, self.cursor = self.client.pull_all(self.cursor)
        for ch in puts + deletes:
            self._apply(ch)
        return {"push": result, "pulled": len(puts) + len(deletes), "cursor": self.cursor}

    def live(self) -> dict:
        """id -> (code, norm_code) of the items that exist."""
        return {k: (v[3], v[4]) for k, v in self.items.items() if not v[2]}

    def payloads(self) -> dict:
        """id -> payload (bytes or None) of the items that exist."""
        return {k: v[5] for k, v in self.items.items() if not v[2]}


class AdminClient:
    """The admin token's calls: users and their tokens.

    Parameters
    ----------
    url, token : str
        Server origin and the admin token (``<data>/token``).
    """

    def __init__(self, url: str, token: str, **kw):
        self._c = SyncClient(url, token, "admin", "admin", **kw)

    def create_user(self, name: str) -> str:
        """Create a user; returns its first token (shown once)."""
        return json.loads(self._c.request("POST", f"/api/v1/users/{quote(name, safe='')}"))["token"]

    def new_token(self, name: str) -> str:
        """Another token for user ``name``."""
        return json.loads(self._c.request("POST", f"/api/v1/users/{quote(name, safe='')}/tokens"))["token"]

    def users(self) -> list:
        """Users with their tokens' ids and revoked flags."""
        return json.loads(self._c.request("GET", "/api/v1/users"))["users"]

    def revoke(self, token_or_id: str) -> None:
        """Revoke a token, given the token itself or its id."""
        from .store import token_digest

        tid = token_or_id if len(token_or_id) == 16 else token_digest(token_or_id)[:16]
        self._c.request("DELETE", f"/api/v1/tokens/{quote(tid, safe='')}")


# -- command line: push a sketch file, pull into one -----------------------------------
# ``add_push_arguments``/``run_push`` and ``add_pull_arguments``/``run_pull`` fit cli.COMMANDS
# (``clark-hash push`` / ``clark-hash pull``); ``main`` runs them standalone.

def _add_common(p):
    p.add_argument("--url", default="http://127.0.0.1:8765", help="server origin")
    p.add_argument("--token", help="server token (default: read --token-file)")
    p.add_argument("--token-file", default="clark-hash-data/token")
    p.add_argument("--collection", default="notes")
    p.add_argument("--device", default="desktop", help="this device's name (tie-breaker)")


def add_push_arguments(p):
    """Options of ``push FILE``: push every row of a sketch file (ids become strings)."""
    _add_common(p)
    p.add_argument("file", help="sketch file (.chs)")
    p.add_argument("--clock", type=int, default=1, help="Lamport clock of these puts")


def add_pull_arguments(p):
    """Options of ``pull FILE``: write the collection's live items to a sketch file."""
    _add_common(p)
    p.add_argument("file", help="sketch file to write (.chs)")


def _client_from(args) -> SyncClient:
    token = args.token
    if token is None:
        with open(args.token_file, encoding="ascii") as f:
            token = f.read().strip()
    return SyncClient(args.url, token, args.collection, args.device)


def _report(fn):
    import sys

    def run(args) -> int:
        try:
            print(json.dumps(fn(args)))
        except (SyncError, ValueError, OSError) as exc:
            print(f"clark-hash: error: {exc}", file=sys.stderr)
            return 2
        return 0
    run.__doc__ = fn.__doc__
    return run


@_report
def run_push(args):
    """Push a sketch file; prints the server's commit result as JSON."""
    from ..formats import sketch_file

    with open(args.file, "rb") as f:
        sf = sketch_file.from_bytes(f.read())
    client = _client_from(args)
    client.ensure_collection(sf.config)
    ids = sf.ids if sf.ids is not None else list(range(sf.count))
    return client.push_encoded(sf, ids, clock=args.clock)


@_report
def run_pull(args):
    """Pull the live items into a sketch file (string ids); prints count and cursor."""
    import struct

    from ..formats import sketch_file

    client = _client_from(args)
    puts, _, cursor = client.pull_all(0)
    config = client.config
    norms = struct.pack(f"<{len(puts)}H", *(p.norm_code for p in puts)) \
        if config.metric == "dot" else None
    sketch_file.save(args.file, config, b"".join(p.code for p in puts), norms, [p.id for p in puts])
    return {"count": len(puts), "cursor": cursor}


def add_user_arguments(p):
    """Options of ``user ACTION [NAME]`` (admin token): add, token, revoke, list."""
    _add_common(p)
    p.add_argument("action", choices=["add", "token", "revoke", "list"],
                   help="add NAME: new user (prints its token once); token NAME: another token; "
                        "revoke TOKEN_OR_ID; list")
    p.add_argument("name", nargs="?", default=None, help="user name, or the token (id) to revoke")


@_report
def run_user(args):
    """Manage users and tokens with the admin token; prints JSON."""
    token = args.token
    if token is None:
        with open(args.token_file, encoding="ascii") as f:
            token = f.read().strip()
    admin = AdminClient(args.url, token)
    if args.action == "list":
        return {"users": admin.users()}
    if not args.name:
        raise SyncError(f"user {args.action} needs a NAME")
    if args.action == "add":
        return {"user": args.name, "token": admin.create_user(args.name)}
    if args.action == "token":
        return {"user": args.name, "token": admin.new_token(args.name)}
    admin.revoke(args.name)
    return {"revoked": args.name if len(args.name) == 16 else "token"}


def main(argv=None) -> int:
    """``python -m clark_hash_web.sync.client push|pull|user ...`` (see ``--help``)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m clark_hash_web.sync.client")
    sub = parser.add_subparsers(dest="command", required=True)
    add_push_arguments(sub.add_parser("push", help="push every row of a sketch file"))
    add_pull_arguments(sub.add_parser("pull", help="pull the collection into a sketch file"))
    add_user_arguments(sub.add_parser("user", help="users and tokens (admin token)"))
    args = parser.parse_args(argv)
    return {"push": run_push, "pull": run_pull, "user": run_user}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
