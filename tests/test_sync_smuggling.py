"""HTTP request smuggling (issue 12): a body the server refuses or never reads must never be
parsed as a second request. Raw sockets, so nothing in between normalizes the bytes. Each case
gets exactly one response, and the smuggled PUT (which would create a collection) never runs."""

import socket

import pytest

from sync_fixtures import COSINE, db_url, running_server  # noqa: F401  (db_url is a fixture)


@pytest.fixture
def srv(tmp_path, db_url):
    with running_server(tmp_path / "data", None, max_body=64 * 1024, db=db_url) as (server, token):
        yield server, token


def smuggled(token: str) -> bytes:
    body = COSINE.to_bytes()
    return (b"PUT /api/v1/collections/smuggled HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def exchange(server, data: bytes, quiet: float = 1.5) -> bytes:
    """Send ``data`` on one connection; read until the server closes or stays quiet."""
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=quiet) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                piece = s.recv(65536)
                if not piece:
                    break
                out += piece
        except (socket.timeout, ConnectionResetError):
            pass
    return out


def responses(raw: bytes) -> list:
    """Status lines of every response in ``raw`` (parsed by Content-Length; nothing may be left)."""
    out = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, f"incomplete response: {raw[:200]!r}"
        lines = head.split(b"\r\n")
        assert lines[0].startswith(b"HTTP/1.1 "), f"not a response: {raw[:200]!r}"
        out.append(lines[0])
        length = [int(v) for k, _, v in (h.partition(b":") for h in lines[1:])
                  if k.strip().lower() == b"content-length"]
        raw = rest[length[0] if length else 0:]
    return out


def chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n0\r\n\r\n"


def cases(token: str):
    auth = b"Authorization: Bearer " + token.encode() + b"\r\n"
    s = smuggled(token)
    push = b"POST /api/v1/collections/notes/push HTTP/1.1\r\nHost: x\r\n"
    return {
        # chunked bodies after an error (411: chunked pushes are refused; 401: no token)
        "chunked push, framed": push + auth + b"Transfer-Encoding: chunked\r\n\r\n" + chunk(s),
        "chunked push, raw": push + auth + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + s[:0] + s,
        "chunked, no token": push + b"Transfer-Encoding: chunked\r\n\r\n" + chunk(s),
        "chunked and length": push + auth + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
                              + chunk(s),
        "too large, then request": push + auth + b"Content-Length: 70000\r\n\r\n" + s,
        # bodies the server never reads
        "GET with a body": b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                           % len(s) + s,
        "GET 404 with a body": b"GET /nothing HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                               % len(s) + s,
        "OPTIONS with a body": b"OPTIONS /api/v1/collections HTTP/1.1\r\nHost: x\r\nContent-Length: %d"
                               b"\r\n\r\n" % len(s) + s,
        "OPTIONS chunked": b"OPTIONS /api/v1/collections HTTP/1.1\r\nHost: x\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n" + chunk(s),
    }


@pytest.mark.parametrize("case", list(cases("t" * 64)))
def test_each_request_gets_one_response_and_smuggled_requests_never_run(srv, case):
    server, token = srv
    raw = exchange(server, cases(token)[case])
    assert len(responses(raw)) == 1, (case, raw[:600])
    assert "smuggled" not in server.store.collections()


def test_the_smuggled_request_itself_would_have_run(srv):
    """The probe is live: sent on its own, the same bytes create the collection."""
    server, token = srv
    raw = exchange(server, smuggled(token))
    assert responses(raw) == [b"HTTP/1.1 200 OK"]
    assert "smuggled" in server.store.collections()


def test_pipelined_good_requests_still_work(srv):
    server, _ = srv
    one = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
    assert responses(exchange(server, one * 3)) == [b"HTTP/1.1 200 OK"] * 3
