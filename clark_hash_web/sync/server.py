"""``clark-hash serve``: one process serving the built demo site and the sync API.

Stdlib only (``http.server.ThreadingHTTPServer`` + :mod:`clark_hash_web.sync.store`).

HTTP API (every ``/api/v1/`` request except ``/api/v1/health`` needs
``Authorization: Bearer <token>``; errors are JSON ``{"error": type, "message": text}``)::

    GET  /api/v1/health                              {"ok": true, "version": ...}
    GET  /api/v1/collections                         {"collections": [names]}
    PUT  /api/v1/collections/<name>                  body: 32 config bytes (ClarkHashConfig.to_bytes())
                                                     -> collection info; 409 if it exists with another config
    GET  /api/v1/collections/<name>                  -> collection info (fingerprint, config hex, last_seq, count)
    POST /api/v1/collections/<name>/push             body: sync envelope, kind push (sync_wire)
                                                     -> {"status": "staged"|"committed", ...}
    GET  /api/v1/collections/<name>/changes?since=S&limit=L
                                                     -> sync envelope, kind pull (binary)

Status codes: 400 malformed body, 401 token, 403 origin, 404 unknown path or
collection, 409 config mismatch, 411 no Content-Length, 413 body too large.
A refused push changes nothing. Pushes larger than ``--max-body`` are sent as
several chunks with one push id; the server stages them and applies the whole
push in one transaction when the last chunk arrives.

Security:

- The token (32 random bytes, hex) is created at first start in
  ``<data>/token`` (mode 0600), printed once, and compared in constant time.
- Request bodies above the limit are refused before they are read; bodies are
  read in bounded 64 KiB pieces with a socket timeout.
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
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from ..codecs.clark_hash_config import ClarkHashConfig
from ..errors import ConfigError, ConfigMismatchError, SyncProtocolError
from .store import StagingFullError, SyncStore, UnknownCollectionError, check_collection_name
from ..formats.sync_wire import KIND_PUSH, MEDIA_TYPE, decode, encode_pull

DEFAULT_PORT = 8765
DEFAULT_MAX_BODY = 8 * 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 64
MAX_PULL_LIMIT = 20_000
READ_PIECE = 64 * 1024
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
          ".json": "application/json", ".whl": "application/octet-stream",
          ".onnx": "application/octet-stream", ".chs": "application/x-clark-hash-sketches",
          ".html": "text/html; charset=utf-8", ".css": "text/css", ".svg": "image/svg+xml",
          ".zip": "application/zip", ".tar": "application/x-tar", ".txt": "text/plain"}


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


class SyncHTTPServer(ThreadingHTTPServer):
    """The server object; attributes configure the handler."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address, store: SyncStore, token: str, site_dir=None,
                 max_body: int = DEFAULT_MAX_BODY, allow_origins=(), timeout: float = 30.0,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS):
        super().__init__(address, SyncHandler)
        self._slots = threading.BoundedSemaphore(max_connections)
        host, port = self.server_address[:2]
        self.store = store
        self.token = token
        self.site_dir = os.path.realpath(site_dir) if site_dir else None
        self.max_body = int(max_body)
        self.request_timeout = timeout
        self.origins = {f"http://{host}:{port}"} | set(allow_origins)
        if host == "127.0.0.1":
            self.origins.add(f"http://localhost:{port}")

    def process_request(self, request, client_address):
        """One thread per connection, at most ``max_connections`` at once (others get a 503)."""
        if not self._slots.acquire(timeout=5):
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\nRetry-After: 1\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def make_server(data_dir, site_dir=None, host="127.0.0.1", port=DEFAULT_PORT,
                max_body=DEFAULT_MAX_BODY, allow_origins=()):
    """Open the store in ``data_dir`` and build (not start) the server.

    Returns
    -------
    server : SyncHTTPServer
        Call ``serve_forever()``; ``server.url`` is its origin.
    token : str
    created : bool
        True when the token was created now (print it once).
    """
    data_dir = os.path.realpath(data_dir)
    if site_dir is not None:
        site = os.path.realpath(site_dir)
        if data_dir == site or data_dir.startswith(site + os.sep):
            raise ConfigError(f"the data folder {data_dir} must not lie inside the site folder {site}")
    token, created = load_or_create_token(data_dir)
    store = SyncStore(os.path.join(data_dir, "sync.sqlite3"))
    store.drop_stale_staging()
    server = SyncHTTPServer((host, port), store, token, site_dir, max_body, allow_origins)
    return server, token, created


class SyncHandler(BaseHTTPRequestHandler):
    server: SyncHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "clark-hash-serve/1"

    def setup(self):
        super().setup()
        self.connection.settimeout(self.server.request_timeout)

    def log_message(self, fmt, *args):  # quiet: one line per error only
        if getattr(self, "_log_errors", False):
            sys.stderr.write("serve: %s\n" % (fmt % args))

    # -- plumbing ---------------------------------------------------------------
    def _origin_ok(self) -> bool:
        origin = self.headers.get("Origin")
        return origin is None or origin in self.server.origins

    def _cors(self):
        origin = self.headers.get("Origin")
        if origin and origin in self.server.origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")

    def _send(self, status: int, body: bytes, ctype: str, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store" if self.path.startswith("/api/") else "no-cache")
        for k, v in extra:
            self.send_header(k, v)
        self._cors()
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj):
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _error(self, err: HTTPError):
        self._json(err.status, {"error": err.kind, "message": err.message})

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding"):
            raise HTTPError(411, "LengthRequired", "chunked transfer encoding is not accepted; "
                            "send Content-Length (split big pushes into sync chunks)")
        if length is None:
            raise HTTPError(411, "LengthRequired", "a Content-Length header is required")
        try:
            n = int(length)
        except ValueError:
            raise HTTPError(400, "BadRequest", f"Content-Length {length!r:.40} is not a number") from None
        if n < 0:
            raise HTTPError(400, "BadRequest", "negative Content-Length")
        if n > self.server.max_body:
            self.close_connection = True
            raise HTTPError(413, "PayloadTooLarge",
                            f"body of {n} bytes exceeds the limit of {self.server.max_body} bytes; "
                            f"split the push into chunks")
        pieces, left = [], n
        while left:
            piece = self.rfile.read(min(READ_PIECE, left))
            if not piece:
                self.close_connection = True
                raise HTTPError(400, "BadRequest", f"body ended after {n - left} of {n} bytes")
            pieces.append(piece)
            left -= len(piece)
        return b"".join(pieces)

    def _auth(self):
        got = self.headers.get("Authorization", "")
        scheme, _, token = got.partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode("utf-8", "replace"), self.server.token.encode())
        if not ok:
            raise HTTPError(401, "Unauthorized", "missing or wrong token (Authorization: Bearer <token>; "
                            "the token is in the server's data folder)")

    # -- verbs --------------------------------------------------------------------
    def do_OPTIONS(self):
        if not self._origin_ok():
            return self._error(HTTPError(403, "Forbidden", "origin not allowed"))
        self.send_response(204)
        self._cors()
        self.send_header("Access-Control-Allow-Methods", "GET, PUT, POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
        self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method: str):
        try:
            if not self._origin_ok():
                raise HTTPError(403, "Forbidden", f"origin {self.headers.get('Origin')!r:.80} "
                                "is not the served origin")
            parts = urlsplit(self.path)
            if parts.path.startswith("/api/"):
                self._api(method, parts)
            elif method in ("GET", "HEAD"):
                self._static(parts.path)
            else:
                raise HTTPError(405, "MethodNotAllowed", f"{method} is only for /api/")
        except HTTPError as err:
            if err.status >= 400 and self.headers.get("Content-Length") and err.status != 413:
                self.close_connection = True  # the unread body must not be taken as a request
            self._error(err)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a bug: answer 500, keep serving
            self.close_connection = True
            try:
                self._error(HTTPError(500, "InternalError", f"{type(exc).__name__}: {exc}"))
            except OSError:
                pass

    # -- API ----------------------------------------------------------------------
    def _api(self, method: str, parts):
        segs = [unquote(s) for s in parts.path.split("/")[1:]]
        if segs[:2] != ["api", "v1"]:
            raise HTTPError(404, "NotFound", f"unknown API path {parts.path!r:.100}")
        rest = segs[2:]
        if rest == ["health"] and method == "GET":
            from .. import __version__

            return self._json(200, {"ok": True, "version": __version__})
        self._auth()
        store = self.server.store
        try:
            if rest == ["collections"] and method == "GET":
                return self._json(200, {"collections": store.collections()})
            if len(rest) < 2 or rest[0] != "collections":
                raise HTTPError(404, "NotFound", f"unknown API path {parts.path!r:.100}")
            name = check_collection_name(rest[1])
            if len(rest) == 2 and method == "PUT":
                body = self._read_body()
                try:
                    config = ClarkHashConfig.from_bytes(body)
                except ConfigError as exc:
                    raise HTTPError(400, "ConfigError", f"body is not a config: {exc}") from None
                return self._json(200, store.create_collection(name, config).to_json())
            if len(rest) == 2 and method == "GET":
                return self._json(200, store.info(name).to_json())
            if rest[2:] == ["push"] and method == "POST":
                return self._push(name)
            if rest[2:] == ["changes"] and method == "GET":
                return self._pull(name, parse_qs(parts.query))
            raise HTTPError(404, "NotFound", f"unknown API path {method} {parts.path!r:.100}")
        except UnknownCollectionError as exc:
            raise HTTPError(404, "UnknownCollection", str(exc)) from None
        except StagingFullError as exc:
            raise HTTPError(503, "StagingFull", str(exc)) from None
        except ConfigMismatchError as exc:
            raise HTTPError(409, "ConfigMismatch", str(exc)) from None
        except SyncProtocolError as exc:
            raise HTTPError(400, "BadBody", str(exc)) from None

    def _push(self, name: str):
        store = self.server.store
        config = store.config(name)
        body = self._read_body()

        def decode_push(data):
            return decode(data, expect_kind=KIND_PUSH, expect_config=config)

        msg = decode_push(body)
        m = msg.meta
        if m["chunks"] == 1:
            result = store.apply(name, m["push_id"], msg.puts, msg.deletes)
        else:
            result = store.stage_chunk(name, m["push_id"], m["chunk"], m["chunks"], body, decode_push)
        return self._json(200, result)

    def _pull(self, name: str, query: dict):
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
        store = self.server.store
        config = store.config(name)
        puts, deletes, cursor, more, last_seq = store.changes_since(name, since, limit)
        self._send(200, encode_pull(config, puts, deletes, cursor, more, last_seq), MEDIA_TYPE)

    # -- static site ----------------------------------------------------------------
    def _static(self, url_path: str):
        root = self.server.site_dir
        if root is None:
            raise HTTPError(404, "NotFound", "this server has no site folder")
        path = unquote(url_path)
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
                self.send_response(301)
                self.send_header("Location", url_path + "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        if not os.path.isfile(full):
            raise HTTPError(404, "NotFound", "not found")
        ext = os.path.splitext(full)[1].lower()
        ctype = _TYPES.get(ext) or mimetypes.guess_type(full)[0] or "application/octet-stream"
        with open(full, "rb") as f:
            data = f.read()
        self._send(200, data, ctype)


# -- command line -----------------------------------------------------------------------

def add_serve_parser(subparsers):
    """Add the ``serve`` subcommand to an argparse ``subparsers`` object; returns the parser."""
    p = subparsers.add_parser("serve", help="serve the demo site and the sync API",
                              description="Serve the built demo site and the sketch sync API "
                                          "(SQLite store in --data).")
    add_serve_arguments(p)
    p.set_defaults(func=run_serve, run=run_serve)
    return p


def add_serve_arguments(p):
    """Declare the ``serve`` options on parser ``p`` (for cli.COMMANDS-style wiring)."""
    p.add_argument("--data", default="clark-hash-data", help="data folder (token + SQLite store)")
    p.add_argument("--site", default="site", help="built site folder to serve ('' for none)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY,
                   help="largest accepted request body in bytes")
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
        server, token, created = make_server(args.data, site, args.host, args.port,
                                             args.max_body, args.allow_origin)
    except (ConfigError, OSError) as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    if created:
        print(f"sync token (shown once; stored in {os.path.join(args.data, 'token')}): {token}",
              flush=True)
    else:
        print(f"sync token: stored in {os.path.join(args.data, 'token')}", flush=True)
    print(f"serving {site or '(no site)'} and the sync API on {server.url}", flush=True)
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
