"""The sync server over loopback HTTP: security, refusals, chunked pushes, two-device convergence,
and the desktop half of "encode 10k, push, pull, search gives the same ids and score bits"."""

import http.client
import json
import os
import stat
import struct
import zlib

import numpy as np
import pytest

from clark_hash_web import ClarkHash, EncodedBatch, FlatIndex
from clark_hash_web.sync.client import Replica, SyncClient
from clark_hash_web.sync.server import load_or_create_token
from clark_hash_web.errors import SyncAuthError, SyncRefusedError
from clark_hash_web.formats.sync_wire import Delete, encode_push
from sync_fixtures import COSINE, DOT, client, db_url, puts_for, running_server, vectors  # noqa: F401


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<h1>demo</h1>")
    (root / "sub" / "app.js").write_text("export const x = 1;")
    (root / ".env").write_text("SECRET")
    (tmp_path / "outside.txt").write_text("OUTSIDE")
    os.symlink(tmp_path / "outside.txt", root / "link.txt")
    return root


@pytest.fixture
def srv(tmp_path, site, db_url):
    """A server on each store (SQLite, PostgreSQL)."""
    with running_server(tmp_path / "data", site, max_body=64 * 1024, db=db_url) as (server, token):
        yield server, token


def raw(server, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()  # headers: case-insensitive
    finally:
        conn.close()


def _state(c: SyncClient):
    puts, deletes, _ = c.pull_all(0)
    return {p.id: (p.code, p.norm_code) for p in puts}, sorted(d.id for d in deletes)


# -- token --------------------------------------------------------------------------------

def test_token_created_once_with_mode_0600(tmp_path):
    tok, created = load_or_create_token(tmp_path / "d")
    assert created and len(tok) == 64
    assert stat.S_IMODE(os.stat(tmp_path / "d" / "token").st_mode) == 0o600
    assert load_or_create_token(tmp_path / "d") == (tok, False)


def test_serve_prints_the_token_only_at_first_start(tmp_path):
    from sync_fixtures import free_port, server_process

    port = free_port()
    outs = []
    for _ in range(2):
        with server_process(tmp_path / "data", port) as proc:
            proc.kill()
            outs.append(proc.stdout.read())
    token = (tmp_path / "data" / "token").read_text().strip()
    assert token in outs[0] and token not in outs[1] and "stored in" in outs[1]


# -- auth, origin, limits ------------------------------------------------------------------

def test_every_sync_request_needs_the_token(srv):
    server, token = srv
    assert raw(server, "GET", "/api/v1/health")[0] == 200
    for method, path, body in [("GET", "/api/v1/collections", None),
                               ("PUT", "/api/v1/collections/notes", COSINE.to_bytes()),
                               ("GET", "/api/v1/collections/notes/changes?since=0", None),
                               ("POST", "/api/v1/collections/notes/push", b"x")]:
        for auth in (None, "Bearer wrong", f"Basic {token}", "Bearer " + token[:-1]):
            headers = {"Authorization": auth} if auth else {}
            status, _, data = raw(server, method, path, body, headers)
            assert status == 401, (method, path, auth)
            assert json.loads(data)["error"] == "Unauthorized"
    with pytest.raises(SyncAuthError):
        SyncClient(server.url, "nope", "notes", "d").ensure_collection(COSINE)
    assert server.store.collections() == []


def test_cors_only_for_the_served_origin(srv):
    server, token = srv
    auth = {"Authorization": f"Bearer {token}"}
    status, headers, _ = raw(server, "GET", "/api/v1/collections", None, dict(auth, Origin=server.url))
    assert status == 200 and headers["Access-Control-Allow-Origin"] == server.url
    status, headers, data = raw(server, "GET", "/api/v1/collections", None,
                                dict(auth, Origin="http://evil.example"))
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    status, headers, _ = raw(server, "OPTIONS", "/api/v1/collections", None,
                             {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    status, headers, _ = raw(server, "OPTIONS", "/api/v1/collections", None, {"Origin": server.url})
    assert status == 204 and headers["Access-Control-Allow-Origin"] == server.url


def test_oversized_and_unsized_bodies_are_refused(srv):
    server, token = srv
    c = client(server, token)
    auth = {"Authorization": f"Bearer {token}"}
    status, _, data = raw(server, "POST", "/api/v1/collections/notes/push", b"\0" * (64 * 1024 + 1), auth)
    assert status == 413 and "exceeds the limit" in json.loads(data)["message"]
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    conn.putrequest("POST", "/api/v1/collections/notes/push")
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    assert conn.getresponse().status == 411
    conn.close()
    assert c.info()["last_seq"] == 0


# -- refused pushes leave the store untouched ------------------------------------------------

def test_corrupt_foreign_and_wrong_length_pushes_are_refused_whole(srv):
    server, token = srv
    c = client(server, token)
    c.push(puts_for(COSINE, 5))
    before = _state(c), c.info()
    auth = {"Authorization": f"Bearer {token}"}
    path = "/api/v1/collections/notes/push"
    good = encode_push(COSINE, "p2", "dev-a", puts_for(COSINE, 5, seed=7, prefix="w"), [Delete("v0", 9)])
    corrupt = bytearray(good)
    corrupt[len(good) // 2] ^= 1
    foreign = encode_push(DOT, "p3", "dev-a", puts_for(DOT, 5, prefix="w"), [])
    cases = [(bytes(corrupt), 400, "CRC"), (good[:-9], 400, "truncated"), (foreign, 409, "config"),
             (b"CHSKETCH" + good[8:], 400, "magic")]
    for body, status, word in cases:
        got, _, data = raw(server, "POST", path, body, auth)
        assert got == status, data
        assert word.lower() in json.loads(data)["message"].lower()
    # codes of the wrong length: the embedded sketch file claims 47-byte codes (CRCs resealed)
    (mlen,) = struct.unpack_from("<I", good, 12)
    at = 24 + mlen
    sk = bytearray(good[at:-4])
    sk[32:36] = struct.pack("<I", COSINE.code_bytes - 1)
    sk[-4:] = struct.pack("<I", zlib.crc32(bytes(sk[:-4])))
    body = good[:at] + bytes(sk)
    body += struct.pack("<I", zlib.crc32(body))
    got, _, data = raw(server, "POST", path, body, auth)
    assert got == 400 and "sketch file" in json.loads(data)["message"]
    assert (_state(c), c.info()) == before


def test_collection_with_another_config_is_a_409(srv):
    server, token = srv
    client(server, token)
    with pytest.raises(SyncRefusedError) as err:
        client(server, token, config=DOT)
    assert err.value.status == 409 and COSINE.fingerprint in str(err.value)


# -- static files ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/../outside.txt", "/sub/../../outside.txt", "/%2e%2e/outside.txt",
                                  "/sub/%2e%2e/%2e%2e/outside.txt", "/link.txt", "/.env",
                                  "/..%2foutside.txt", "/sub%5c..%5c..%5coutside.txt",
                                  "/data/token", "/../data/token", "/%00index.html", "//etc/passwd"])
def test_nothing_outside_the_site_is_served(srv, path):
    server, _ = srv
    status, _, data = raw(server, "GET", path)
    assert status == 404 and b"OUTSIDE" not in data and b"SECRET" not in data
    assert server.token.encode() not in data


def test_site_files_are_served_with_types(srv):
    server, _ = srv
    status, headers, data = raw(server, "GET", "/")
    assert status == 200 and data == b"<h1>demo</h1>" and headers["Content-Type"].startswith("text/html")
    status, headers, _ = raw(server, "GET", "/sub/app.js")
    assert status == 200 and headers["Content-Type"] == "text/javascript"
    assert raw(server, "POST", "/index.html", b"")[0] == 405


def test_data_folder_inside_site_is_refused(tmp_path, site):
    from clark_hash_web.errors import ConfigError
    from clark_hash_web.sync.server import make_server

    with pytest.raises(ConfigError, match="must not lie inside"):
        make_server(site / "data", site, port=0)


# -- protocol -------------------------------------------------------------------------------

def test_chunked_push_and_retry_are_idempotent(srv):
    server, token = srv
    c = client(server, token, chunk_bytes=4096, config=DOT)
    puts = puts_for(DOT, 400)
    r = c.push(puts, push_id="big-1")
    assert r["status"] == "committed" and r["applied"] == 400 and not r["duplicate"]
    assert r["first_seq"] == 1 and r["last_seq"] == 400
    again = c.push(puts, push_id="big-1")
    assert again["duplicate"] and c.info()["last_seq"] == 400
    state, _ = _state(c)
    assert state == {p.id: (p.code, p.norm_code) for p in puts}


def test_two_devices_converge(srv):
    server, token = srv
    a = Replica(client(server, token, device="laptop"))
    b = Replica(client(server, token, device="phone"))
    codes = [p.code for p in puts_for(COSINE, 6)]
    for i in range(4):
        a.put(f"n{i}", codes[i])
    a.sync()
    b.sync()
    assert b.live() == a.live()
    # concurrent offline edits: both edit n0 (same clock: device name breaks the tie),
    # a deletes n1 while b edits it later (b's clock is higher), each adds its own note
    a.put("n0", codes[4])
    b.put("n0", codes[5])
    a.delete("n1")
    b.put("n1", codes[5])
    b.put("n1", codes[4])
    a.put("only-a", codes[0])
    b.delete("n2")
    b.put("only-b", codes[1])
    a.sync()
    b.sync()
    a.sync()
    assert a.live() == b.live() == {k: (v[0], None) for k, v in _state(a.client)[0].items()}
    live = a.live()
    assert live["n0"][0] == codes[5]  # same clock 5: "phone" > "laptop"
    assert live["n1"][0] == codes[4]  # b's later edit (clock 7) beats a's delete (clock 6)
    assert "n2" not in live and {"only-a", "only-b", "n3"} <= set(live)
    seqs = [r[0] for r in server.store.log("notes")]
    assert seqs == list(range(1, len(seqs) + 1))


def test_desktop_encode_push_pull_search_equal(tmp_path, srv):
    """Desktop half of issue 5 test 1: 10k vectors encoded to a sketch file, pushed, pulled back
    into another index: top-k ids and float32 score bits equal the original index's."""
    from clark_hash_web import ClarkHashConfig
    from clark_hash_web.formats import sketch_file

    server, token = srv
    cfg = ClarkHashConfig(input_dim=64)
    x = vectors(10_000, 64, seed=3)
    codec = ClarkHash(cfg)
    enc = codec.encode(x)
    ids = [f"doc-{i}" for i in range(len(x))]
    path = tmp_path / "desk.chs"
    path.write_bytes(sketch_file.to_bytes(cfg, enc.codes_bytes(), None, ids))
    sf = sketch_file.from_bytes(path.read_bytes())
    pusher = SyncClient(server.url, token, "desk", "desktop", chunk_bytes=60 * 1024)
    pusher.ensure_collection(sf.config)
    r = pusher.push_encoded(sf, sf.ids)
    assert r["applied"] == 10_000 and r["last_seq"] == 10_000
    puller = SyncClient(server.url, token, "desk", "other")
    puts, deletes, cursor = puller.pull_all(0, limit=3000)
    assert cursor == 10_000 and not deletes and [p.id for p in puts] == ids
    pulled = EncodedBatch.from_bytes(puller.config, b"".join(p.code for p in puts))
    assert pulled.codes_bytes() == enc.codes_bytes()
    a, b = FlatIndex(codec), FlatIndex(ClarkHash(puller.config))
    a.add_encoded(enc, ids)
    b.add_encoded(pulled, [p.id for p in puts])
    for q in vectors(5, 64, seed=99):
        ia, sa = a.search(q, 10)
        ib, sb = b.search(q, 10)
        assert list(ia) == list(ib)
        assert np.asarray(sa, np.float32).tobytes() == np.asarray(sb, np.float32).tobytes()


# -- fuzzing the HTTP decoders: random and mutated bodies never change the store ---------------

def test_fuzz_push_and_config_bodies_over_http(tmp_path):
    """Random and mutated push bodies: the server answers exactly like the local decoder
    (4xx JSON error when it refuses) and a refused body leaves the collection unchanged."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from clark_hash_web.formats.sync_wire import decode

    with running_server(tmp_path / "data", None, max_body=64 * 1024) as (server, token):
        c = client(server, token, collection="dots", config=DOT)
        c.push(puts_for(DOT, 3))
        valid = encode_push(DOT, "fz", "dev-a", puts_for(DOT, 3, seed=4, prefix="f"), [Delete("v1", 9)])
        auth = {"Authorization": f"Bearer {token}"}

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.one_of(st.binary(max_size=300),
                         st.lists(st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)),
                                  min_size=1, max_size=4).map(lambda edits: _mutate(valid, edits))))
        def run(body):
            try:
                decode(body, expect_config=DOT)
                ok = True
            except Exception:
                ok = False
            before = (_state(c), c.info())
            status, _, data = raw(server, "POST", "/api/v1/collections/dots/push", body, auth)
            if ok:
                assert status == 200, data
            else:
                assert status in (400, 409), (status, data)
                assert set(json.loads(data)) == {"error", "message"}
                assert (_state(c), c.info()) == before
            status, _, data = raw(server, "PUT", "/api/v1/collections/other", body[:32], auth)
            assert status in (200, 400), (status, data)

        run()


def _mutate(body, edits):
    b = bytearray(body)
    for pos, val in edits:
        b[pos] = val if b[pos] != val else val ^ 0xFF
    b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])))  # valid CRC: reach the inner decoders
    return bytes(b)


def test_push_and_pull_commands(srv, tmp_path, capsys):
    from clark_hash_web.formats import sketch_file
    from clark_hash_web.sync.client import main

    server, token = srv
    enc = ClarkHash(DOT).encode(vectors(50, 32, seed=12))
    src = tmp_path / "in.chs"
    sketch_file.save_encoded(src, enc, [f"k{i}" for i in range(50)])
    common = ["--url", server.url, "--token", token, "--collection", "cli"]
    assert main(["push", str(src), *common]) == 0
    assert '"applied": 50' in capsys.readouterr().out
    assert main(["pull", str(tmp_path / "out.chs"), *common]) == 0
    back = sketch_file.load(tmp_path / "out.chs")
    assert (back.codes, back.norm_codes, back.ids) == (enc.codes_bytes(), enc.norm_codes_bytes(),
                                                       [f"k{i}" for i in range(50)])
    assert main(["push", str(src), "--url", server.url, "--token", "wrong", "--collection", "cli"]) == 2
    assert "token" in capsys.readouterr().err


# -- collections of any codec kind; payloads -----------------------------------------------------

def test_e8_collection_syncs_and_foreign_kinds_are_refused_whole(srv):
    from clark_hash_web.codecs import registry

    server, token = srv
    e8 = registry.config_from_spec("e8:32")
    c = client(server, token, collection="e8", config=e8)
    puts = puts_for(e8, 30)
    c.push(puts)
    other = SyncClient(server.url, token, "e8", "phone")
    got, _, cursor = other.pull_all(0)
    assert type(other.config) is type(e8) and cursor == 30
    assert [(p.id, p.code) for p in got] == [(p.id, p.code) for p in puts]
    before = (_state(c), c.info())
    auth = {"Authorization": f"Bearer {token}"}
    path = "/api/v1/collections/e8/push"
    wrong_kind = encode_push(COSINE, "k1", "dev-a", puts_for(COSINE, 3, prefix="x"),
                             [Delete("v0", 9)])
    status, _, data = raw(server, "POST", path, wrong_kind, auth)
    assert status == 409 and "codec kind 1" in json.loads(data)["message"]
    e8_64 = registry.config_from_spec("e8:64")
    wrong_fp = encode_push(e8_64, "k2", "dev-a", puts_for(e8_64, 3, prefix="x"), [Delete("v0", 9)])
    status, _, data = raw(server, "POST", path, wrong_fp, auth)
    assert status == 409 and e8.fingerprint in json.loads(data)["message"]
    assert (_state(c), c.info()) == before  # nothing changed, not even the delete
    status, _, data = raw(server, "PUT", "/api/v1/collections/e8", COSINE.to_bytes(), auth)
    assert status == 409 and "uses e8 config" in json.loads(data)["message"]


def test_payloads_sync_byte_for_byte_and_stay_opaque(srv):
    from clark_hash_web.sync import crypto

    server, token = srv
    a = Replica(client(server, token, device="laptop"))
    b = Replica(client(server, token, device="phone"))
    salt = bytes.fromhex(a.client.info()["salt"])
    key = crypto.derive_key("correct horse", salt, iterations=1000)
    codes = [p.code for p in puts_for(COSINE, 2)]
    secret = "meet at the old mill, 6 pm ✓"
    a.put("n1", codes[0], payload=crypto.encrypt_note(key, "notes", "n1", secret))
    a.put("n2", codes[1])
    a.sync()
    b.sync()
    assert b.payloads() == a.payloads() and b.payloads()["n2"] is None
    assert crypto.decrypt_note(key, "notes", "n1", b.payloads()["n1"]) == secret
    stored = server.store._conn().all("SELECT payload FROM items WHERE item_id='n1'")[0][0]
    assert secret.encode() not in bytes(stored) and b"old mill" not in bytes(stored)
    with pytest.raises(crypto.WrongKeyError):
        crypto.decrypt_note(crypto.derive_key("wrong", salt, iterations=1000), "notes", "n1",
                            b.payloads()["n1"])
    with pytest.raises(crypto.WrongKeyError):  # moved to another id: refused by the AAD
        crypto.decrypt_note(key, "notes", "n2", b.payloads()["n1"])
    # a payload over 64 KiB is refused before it is sent
    from clark_hash_web.errors import SyncProtocolError

    a.put("n3", codes[0], payload=b"x" * (64 * 1024 + 1))
    with pytest.raises(SyncProtocolError, match="payload"):
        a.sync()
