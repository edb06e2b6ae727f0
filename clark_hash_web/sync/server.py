"""``clark-hash serve``: one process serving the built demo site and the sync API.

An ASGI application (Starlette) run by uvicorn with its h11 HTTP parser: HTTP
framing (Content-Length, chunked bodies, pipelining, keep-alive) is the job
of that maintained parser, not of this module. Storage is
:mod:`clark_hash_web.sync.store` (SQLite by default, PostgreSQL with
``--db postgresql://...``). Deployment: see ``clark_hash_web/sync/README.md``.

HTTP API (every ``/api/v1/`` request except ``/api/v1/health`` needs
``Authorization: Bearer <token>``; errors are JSON ``{"error": type, "message": text}``)::

    GET    /api/v1/health                            {"ok": true, "version": ...}
    GET    /api/v1/collections                       {"collections": [names the token may use]}
    PUT    /api/v1/collections/<name>[?owner=USER]   body: config bytes of any registered codec
                                                     -> collection info; 409 if it exists with
                                                     another config (owner=: admin only)
    GET    /api/v1/collections/<name>                -> collection info (kind, fingerprint, config
                                                     hex, last_seq, count, salt, key_check)
    PUT    /api/v1/collections/<name>/key-check      body: the clients' encrypted key check
                                                     (set once; another value -> 409)
    POST   /api/v1/collections/<name>/push           body: sync envelope, kind push (sync_wire)
                                                     -> {"status": "staged"|"committed", ...}
    GET    /api/v1/collections/<name>/changes?since=S&limit=L
                                                     -> sync envelope, kind pull (binary)
    admin token only:
    GET    /api/v1/users                             {"users": [{"name", "tokens": [{id, revoked}]}]}
    POST   /api/v1/users/<user>                      -> {"user", "token"} (token shown once)
    POST   /api/v1/users/<user>/tokens               -> {"user", "token"} another token
    DELETE /api/v1/tokens/<token id>                 revoke (id = first 16 hex of SHA-256(token))

Status codes: 400 malformed body, 401 token, 403 origin or another user's
collection, 404 unknown path or collection, 405 method, 409 config mismatch,
411 no Content-Length, 413 body too large, 503 staging full or too many
connections. A refused push changes nothing. Pushes larger than
``--max-body`` are sent as several chunks with one push id; the server
stages them and applies the whole push in one transaction when the last
chunk arrives.

Security:

- The admin token (32 random bytes, hex) is created at first start in
  ``<data>/token`` (mode 0600) and printed once. User tokens are made by the
  admin, stored only as SHA-256 digests, compared in constant time, and can
  be revoked. A user's token sees only that user's collections (403).
- Every error response carries ``Connection: close``: a body the server
  refused or never read can never be taken as the next request.
- Request bodies above the limit are refused before they are read; chunked
  request bodies are refused (411).
- CORS answers only the served origin (and ``--allow-origin`` extras); any
  request carrying another ``Origin`` is refused with 403.
- Static files come only from the site folder: paths are normalized, must
  resolve (symlinks included) inside it, and dot-files are never served. The
  data folder may not lie inside the site folder.
"""

from __future__ import annotations

import hmac
import json
import mimetypes
import os
import posixpath
import secrets
import socket
import sys
import threading
from urllib.parse import parse_qs

from ..errors import ConfigError, ConfigMismatchError, SyncProtocolError
from ..formats.sync_wire import KIND_PUSH, MEDIA_TYPE, decode, encode_pull
from .store import (AccessDeniedError, StagingFullError, UnknownCollectionError, UnknownUserError,
                    check_collection_name, config_from_bytes, open_store, token_digest)

DEFAULT_PORT = 8765
DEFAULT_MAX_BODY = 8 * 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 128
MAX_PULL_LIMIT = 20_000
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
          ".json": "application/json", ".whl": "application/octet-stream",
          ".onnx": "application/octet-stream", ".chs": "application/x-clark-hash-sketches",
          ".html": "text/html; charset=utf-8", ".css": "text/css", ".svg": "image/svg+xml",
          ".zip": "application/zip", ".tar": "application/x-tar", ".txt": "text/plain"}
ADMIN = None  # the principal of the admin token (a user's principal is its name)


#: store and envelope errors -> (HTTP status, error name); the first type that matches wins
STORE_ERRORS = (
    (AccessDeniedError, 403, "Forbidden"),
    (UnknownCollectionError, 404, "UnknownCollection"),
    (UnknownUserError, 404, "UnknownUser"),
    (StagingFullError, 503, "StagingFull"),
    (ConfigMismatchError, 409, "ConfigMismatch"),
    (SyncProtocolError, 400, "BadBody"),
)
_STORE_ERROR_TYPES = tuple(e for e, _, _ in STORE_ERRORS)


class HTTPError(Exception):
    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def load_or_create_token(data_dir) -> tuple:
    """Return ``(token, created)``; a new token is written to ``<data_dir>/token`` with mode 0600."""
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    path = os.path.join(data_dir, "token")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with open(path, encoding="ascii") as f:
            token = f.read().strip()
        if len(token) < 32:
            raise ConfigError(f"{path} holds no usable token; delete it to make a new one")
        return token, False
    token = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(token + "\n")
        f.flush()
        os.fsync(f.fileno())
    return token, True


class SyncAPI:
    """The request handlers (framework-free logic; :func:`build_app` wires them into Starlette).

    Parameters
    ----------
    store : SyncStore
    token : str
        The admin token.
    site_dir : str or None
        The built site to serve (None: API only).
    max_body : int
    origins : set of str
        Origins that may call the API from a browser.
    """

    def __init__(self, store, token: str, site_dir=None, max_body: int = DEFAULT_MAX_BODY,
                 origins=()):
        self.store = store
        self.token = token
        self._admin_digest = token_digest(token)
        self.site_dir = os.path.realpath(site_dir) if site_dir else None
        self.max_body = int(max_body)
        self.origins = set(origins)

    # -- plumbing ---------------------------------------------------------------
    def _cors(self, request, headers: dict):
        origin = request.headers.get("origin")
        if origin and origin in self.origins:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Vary"] = "Origin"

    def respond(self, request, status: int, body: bytes, ctype: str, extra=None):
        from starlette.responses import Response

        api = request.url.path.startswith("/api/")
        headers = {"Content-Type": ctype, "X-Content-Type-Options": "nosniff",
                   "Cache-Control": "no-store" if api else "no-cache"}
        if status >= 400:
            headers["Connection"] = "close"  # an unread or refused body is never parsed as a request
        headers.update(extra or {})
        self._cors(request, headers)
        return Response(body, status_code=status, headers=headers)  # Content-Type exactly as given

    def json(self, request, status: int, obj):
        return self.respond(request, status, json.dumps(obj).encode(), "application/json")

    async def read_body(self, request) -> bytes:
        if request.headers.get("transfer-encoding"):
            raise HTTPError(411, "LengthRequired", "chunked transfer encoding is not accepted; "
                            "send Content-Length (split big pushes into sync chunks)")
        length = request.headers.get("content-length")
        if length is None:
            raise HTTPError(411, "LengthRequired", "a Content-Length header is required")
        try:
            n = int(length)
        except ValueError:
            raise HTTPError(400, "BadRequest", f"Content-Length {length!r:.40} is not a number") from None
        if n > self.max_body:
            raise HTTPError(413, "PayloadTooLarge",
                            f"body of {n} bytes exceeds the limit of {self.max_body} bytes; "
                            f"split the push into chunks")
        pieces, got = [], 0
        async for piece in request.stream():
            got += len(piece)
            if got > n:  # the parser frames by Content-Length; this is belt and braces
                raise HTTPError(400, "BadRequest", "body longer than its Content-Length")
            pieces.append(piece)
        if got != n:
            raise HTTPError(400, "BadRequest", f"body ended after {got} of {n} bytes")
        return b"".join(pieces)

    async def principal(self, request):
        """ADMIN (None) for the admin token, a user's name for a live user token; else 401."""
        from starlette.concurrency import run_in_threadpool

        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token:
            if hmac.compare_digest(token_digest(token), self._admin_digest):
                return ADMIN
            user = await run_in_threadpool(self.store.user_of_token, token)
            if user is not None:
                return user
        raise HTTPError(401, "Unauthorized", "missing, wrong or revoked token (Authorization: "
                        "Bearer <token>; the admin token is in the server's data folder)")

    # -- entry point --------------------------------------------------------------
    async def __call__(self, request):
        try:
            origin = request.headers.get("origin")
            if origin is not None and origin not in self.origins:
                raise HTTPError(403, "Forbidden", f"origin {origin!r:.80} is not the served origin")
            method = request.method
            path = request.url.path
            if method == "OPTIONS":
                return self.respond(request, 204, b"", "text/plain", {
                    "Access-Control-Allow-Methods": "GET, PUT, POST, DELETE, OPTIONS",
                    "Access-Control-Allow-Headers": "Authorization, Content-Type",
                    "Access-Control-Max-Age": "600"})
            if path.startswith("/api/"):
                return await self.api(request, method, path)
            if method in ("GET", "HEAD"):
                return self.static(request, path)
            raise HTTPError(405, "MethodNotAllowed", f"{method} is only for /api/")
        except HTTPError as err:
            return self.json(request, err.status, {"error": err.kind, "message": err.message})
        except Exception as exc:  # a bug: answer 500, keep serving
            from starlette.requests import ClientDisconnect

            if isinstance(exc, ClientDisconnect):
                return self.respond(request, 400, b"", "text/plain")
            return self.json(request, 500, {"error": "InternalError",
                                            "message": f"{type(exc).__name__}: {exc}"})

    # -- API ----------------------------------------------------------------------
    async def api(self, request, method: str, path: str):
        from starlette.concurrency import run_in_threadpool as bg

        segs = path.split("/")[1:]
        if segs[:2] != ["api", "v1"]:
            raise HTTPError(404, "NotFound", f"unknown API path {path!r:.100}")
        rest = segs[2:]
        if rest == ["health"] and method == "GET":
            from .. import __version__

            return self.json(request, 200, {"ok": True, "version": __version__})
        who = await self.principal(request)
        store = self.store
        try:
            if rest and rest[0] in ("users", "tokens"):
                return await self.admin(request, method, rest, who)
            if rest == ["collections"] and method == "GET":
                names = await bg(store.collections, who, who is ADMIN)
                return self.json(request, 200, {"collections": names})
            if len(rest) < 2 or rest[0] != "collections":
                raise HTTPError(404, "NotFound", f"unknown API path {path!r:.100}")
            name = check_collection_name(rest[1])
            if len(rest) == 2 and method == "PUT":
                owner = who
                wanted = parse_qs(request.url.query).get("owner")
                if wanted:
                    if who is not ADMIN:
                        raise HTTPError(403, "Forbidden", "only the admin token may set owner=")
                    owner = check_collection_name(wanted[0])
                body = await self.read_body(request)
                try:
                    config = config_from_bytes(body)
                except ConfigError as exc:
                    raise HTTPError(400, "ConfigError", f"body is not a config: {exc}") from None
                info = await bg(store.create_collection, name, config, owner)
                return self.json(request, 200, info.to_json())
            await bg(store.authorize, name, who)
            if len(rest) == 2 and method == "GET":
                return self.json(request, 200, (await bg(store.info, name)).to_json())
            if rest[2:] == ["key-check"] and method == "PUT":
                body = await self.read_body(request)
                return self.json(request, 200, (await bg(store.set_key_check, name, body)).to_json())
            if rest[2:] == ["push"] and method == "POST":
                return await self.push(request, name)
            if rest[2:] == ["changes"] and method == "GET":
                return await self.pull(request, name, parse_qs(request.url.query))
            raise HTTPError(404, "NotFound", f"unknown API path {method} {path!r:.100}")
        except _STORE_ERROR_TYPES as exc:
            status, name = next((s, n) for e, s, n in STORE_ERRORS if isinstance(exc, e))
            raise HTTPError(status, name, str(exc)) from None

    async def admin(self, request, method: str, rest: list, who):
        from starlette.concurrency import run_in_threadpool as bg

        if who is not ADMIN:
            raise HTTPError(403, "Forbidden", "users and tokens are managed with the admin token")
        store = self.store
        if rest == ["users"] and method == "GET":
            return self.json(request, 200, {"users": await bg(store.users)})
        if len(rest) == 2 and rest[0] == "users" and method == "POST":
            name = check_collection_name(rest[1])
            return self.json(request, 200, {"user": name, "token": await bg(store.create_user, name)})
        if len(rest) == 3 and rest[0] == "users" and rest[2] == "tokens" and method == "POST":
            name = check_collection_name(rest[1])
            return self.json(request, 200, {"user": name, "token": await bg(store.new_token, name)})
        if len(rest) == 2 and rest[0] == "tokens" and method == "DELETE":
            await bg(store.revoke_token, rest[1])
            return self.json(request, 200, {"revoked": rest[1]})
        raise HTTPError(404, "NotFound", f"unknown admin path {method} /{'/'.join(rest)!r:.100}")

    async def push(self, request, name: str):
        from starlette.concurrency import run_in_threadpool as bg

        store = self.store
        config = await bg(store.config, name)
        body = await self.read_body(request)

        def decode_push(data):
            return decode(data, expect_kind=KIND_PUSH, expect_config=config)

        def run():
            msg = decode_push(body)
            m = msg.meta
            if m["chunks"] == 1:
                return store.apply(name, m["push_id"], msg.puts, msg.deletes)
            return store.stage_chunk(name, m["push_id"], m["chunk"], m["chunks"], body, decode_push)

        return self.json(request, 200, await bg(run))

    async def pull(self, request, name: str, query: dict):
        from starlette.concurrency import run_in_threadpool as bg

        def arg(key, default, lo, hi):
            vals = query.get(key)
            if not vals:
                return default
            try:
                v = int(vals[0])
            except ValueError:
                raise HTTPError(400, "BadRequest", f"{key}={vals[0]!r:.40} is not an integer") from None
            if not lo <= v <= hi:
                raise HTTPError(400, "BadRequest", f"{key} must be in {lo}..{hi}, got {v}")
            return v

        since = arg("since", 0, 0, 2 ** 53 - 1)
        limit = arg("limit", 5000, 1, MAX_PULL_LIMIT)
        store = self.store

        def run():
            config = store.config(name)
            puts, deletes, cursor, more, last_seq = store.changes_since(name, since, limit)
            return encode_pull(config, puts, deletes, cursor, more, last_seq)

        return self.respond(request, 200, await bg(run), MEDIA_TYPE)

    # -- static site ----------------------------------------------------------------
    def static(self, request, url_path: str):
        root = self.site_dir
        if root is None:
            raise HTTPError(404, "NotFound", "this server has no site folder")
        path = url_path  # already percent-decoded by the server
        if "\x00" in path or "\\" in path:
            raise HTTPError(404, "NotFound", "bad path")
        norm = posixpath.normpath("/" + path.lstrip("/"))
        parts = [p for p in norm.split("/") if p]
        if any(p.startswith(".") or p == ".." for p in parts) or ".." in path.split("/"):
            raise HTTPError(404, "NotFound", "not found")
        full = os.path.realpath(os.path.join(root, *parts))
        if full != root and not full.startswith(root + os.sep):
            raise HTTPError(404, "NotFound", "not found")
        if os.path.isdir(full):
            full = os.path.join(full, "index.html")
            if not url_path.endswith("/") and os.path.isfile(full):
                return self.respond(request, 301, b"", "text/plain", {"Location": url_path + "/"})
        if not os.path.isfile(full):
            raise HTTPError(404, "NotFound", "not found")
        ext = os.path.splitext(full)[1].lower()
        ctype = _TYPES.get(ext) or mimetypes.guess_type(full)[0] or "application/octet-stream"
        with open(full, "rb") as f:
            data = f.read()
        return self.respond(request, 200, data, ctype)


def build_app(api: SyncAPI):
    """The Starlette application: every path and method goes to ``api``."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    methods = ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"]
    return Starlette(routes=[Route("/{path:path}", api.__call__, methods=methods)])


class SyncServer:
    """uvicorn (h11 parser) serving :func:`build_app` on a socket bound at construction.

    Attributes
    ----------
    url : str
        The served origin, e.g. ``http://127.0.0.1:8765``.
    store, token, api : the store, the admin token, the :class:`SyncAPI`.
    """

    def __init__(self, address, api: SyncAPI, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 timeout: float = 30.0):
        import uvicorn

        host, port = address
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))  # listens from serve_forever on (after the token is printed)
        self.server_address = self.sock.getsockname()[:2]
        host, port = self.server_address
        self.api = api
        self.store, self.token = api.store, api.token
        api.origins |= {self.url} | ({f"http://localhost:{port}"} if host == "127.0.0.1" else set())
        config = uvicorn.Config(build_app(api), http="h11", lifespan="off", log_level="warning",
                                access_log=False, limit_concurrency=max_connections,
                                timeout_keep_alive=int(timeout), server_header=False,
                                h11_max_incomplete_event_size=64 * 1024)
        self.uvicorn = uvicorn.Server(config)
        self._thread = None

    @property
    def url(self) -> str:
        host, port = self.server_address
        return f"http://{host}:{port}"

    def serve_forever(self):
        """Serve until :meth:`shutdown` (or Ctrl-C when run in the main thread)."""
        self.sock.listen(256)
        self.uvicorn.run(sockets=[self.sock])

    def start(self) -> "SyncServer":
        """Serve in a background thread (for tests and embedding)."""
        import time

        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self.uvicorn.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.uvicorn.started:
            raise RuntimeError("the sync server did not start within 20 s")
        return self

    def shutdown(self):
        self.uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def server_close(self):
        try:
            self.sock.close()
        finally:
            self.store.close()


def make_server(data_dir, site_dir=None, host="127.0.0.1", port=DEFAULT_PORT,
                max_body=DEFAULT_MAX_BODY, allow_origins=(), db=None,
                max_connections=DEFAULT_MAX_CONNECTIONS):
    """Open the store and build (not start) the server.

    Parameters
    ----------
    data_dir : path
        Holds the admin token (and the SQLite store unless ``db`` says otherwise).
    db : str or None
        ``sqlite:///path`` or ``postgresql://...``; default ``<data_dir>/sync.sqlite3``.

    Returns
    -------
    server : SyncServer
        Call ``serve_forever()`` (or ``start()``); ``server.url`` is its origin.
    token : str
        The admin token.
    created : bool
        True when the token was created now (print it once).
    """
    data_dir = os.path.realpath(data_dir)
    if site_dir is not None:
        site = os.path.realpath(site_dir)
        if data_dir == site or data_dir.startswith(site + os.sep):
            raise ConfigError(f"the data folder {data_dir} must not lie inside the site folder {site}")
    token, created = load_or_create_token(data_dir)
    store = open_store(db or os.path.join(data_dir, "sync.sqlite3"))
    store.drop_stale_staging()
    api = SyncAPI(store, token, site_dir, max_body, set(allow_origins))
    return SyncServer((host, port), api, max_connections), token, created


# -- command line -----------------------------------------------------------------------

def add_serve_parser(subparsers):
    """Add the ``serve`` subcommand to an argparse ``subparsers`` object; returns the parser."""
    p = subparsers.add_parser("serve", help="serve the demo site and the sync API",
                              description="Serve the built demo site and the sketch sync API.")
    add_serve_arguments(p)
    p.set_defaults(func=run_serve, run=run_serve)
    return p


def add_serve_arguments(p):
    """Declare the ``serve`` options on parser ``p`` (for cli.COMMANDS-style wiring)."""
    p.add_argument("--data", default="clark-hash-data",
                   help="data folder (admin token; the SQLite store unless --db)")
    p.add_argument("--db", default=None,
                   help="store: sqlite:///path (default <data>/sync.sqlite3) or postgresql://...")
    p.add_argument("--site", default="site", help="built site folder to serve ('' for none)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY,
                   help="largest accepted request body in bytes")
    p.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                   help="concurrent connections before answering 503")
    p.add_argument("--allow-origin", action="append", default=[],
                   help="extra origin allowed by CORS (repeatable)")


def run_serve(args) -> int:
    """Run the server until interrupted (the ``serve`` subcommand)."""
    site = args.site or None
    if site is not None and not os.path.isdir(site):
        print(f"serve: site folder {site!r} not found (build it with build_scripts/build_site.py); "
              f"serving the API only", file=sys.stderr)
        site = None
    try:
        server, token, created = make_server(args.data, site, args.host, args.port, args.max_body,
                                             args.allow_origin, getattr(args, "db", None),
                                             getattr(args, "max_connections",
                                                     DEFAULT_MAX_CONNECTIONS))
    except (ConfigError, OSError) as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    if created:
        print(f"admin token (shown once; stored in {os.path.join(args.data, 'token')}): {token}",
              flush=True)
    else:
        print(f"admin token: stored in {os.path.join(args.data, 'token')}", flush=True)
    print(f"serving {site or '(no site)'} and the sync API on {server.url} "
          f"(store: {server.store.url.split('@')[-1]})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m clark_hash_web.sync.server")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_parser(sub)
    args = parser.parse_args(["serve"] + list(sys.argv[1:] if argv is None else argv))
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
