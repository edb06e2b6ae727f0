"""Browser sync (issue 5 tests 1 and 2) in headless Chromium, against `clark-hash serve`
code (an in-process SyncServer, Starlette on uvicorn, serving the built site and the API from one origin).

1. The desktop CLI encodes 10k vectors and pushes them; the browser pulls; its
   search returns the desktop's ids and float32 score bits.
2. Notes added in the browser while offline are queued in IndexedDB and go up
   when the browser is back online; the server's bytes equal a desktop encode.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import numpy as np
import pytest

from clark_hash_web import ClarkHash, ClarkHashConfig, FlatIndex
from clark_hash_web.formats import sketch_file
from clark_hash_web.sync.server import make_server
from browser_helpers import bind_session_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOOT_TIMEOUT_MS = 120_000
SYNC_PORT = int(os.environ.get("CLARK_HASH_SYNC_TEST_PORT", "8767"))
CFG = ClarkHashConfig(input_dim=384)


@pytest.fixture
def sync_server(site_dir, tmp_path):
    server, token, _ = bind_session_port(
        lambda port: make_server(tmp_path / "data", site_dir, "127.0.0.1", port), "sync", SYNC_PORT)
    server.start()
    yield server, token
    server.shutdown()
    server.server_close()


def _open(page, server, store_name, token, collection, auto=False, backend="python"):
    page.set_default_timeout(BOOT_TIMEOUT_MS)
    page.goto(server.url + "/static/harness.html")
    page.wait_for_function("window.CH !== undefined")
    return page.evaluate(
        """async ([name, token, collection, auto, backend]) => {
             const { ClarkHashSync } = await import("/static/sync.js");
             window.store = await CH.ClarkHashStore.open({name, config: {inputDim: 384}, backend});
             window.sync = await ClarkHashSync.open({store: window.store, token, collection,
                                                     autoSync: auto, device: "browser-1"});
             window.states = [];
             window.sync.addEventListener("state", (e) => window.states.push(e.detail.status));
             return {backend: window.store.backend, fingerprint: window.store.config.fingerprint};
           }""", [store_name, token, collection, auto, backend])


@pytest.mark.parametrize("backend", ["python", "numpy"])
def test_desktop_push_browser_pull_search_equal(sync_server, page, tmp_path, backend, numpy_wheel):
    if backend == "numpy" and not numpy_wheel:
        pytest.skip("BROWSER NUMPY BACKEND: SKIPPED (set CLARK_HASH_PYODIDE_NUMPY to a Pyodide numpy wheel)")
    server, token = sync_server
    x = np.random.default_rng(5).standard_normal((10_000, 384)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    ids = [f"doc-{i}" for i in range(len(x))]
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = lambda *a: subprocess.run([sys.executable, "-m", *a], cwd=tmp_path, env=env,  # noqa: E731
                                    check=True, capture_output=True, text=True)
    run("clark_hash_web.cli", "encode", "x.npy", "desk.chs", "--ids", "ids.txt", "--no-progress")
    out = run("clark_hash_web.sync.client", "push", "desk.chs", "--url", server.url, "--token", token,
              "--collection", "desk", "--device", "desktop")
    assert '"applied": 10000' in out.stdout

    info = _open(page, server, "desk", token, "desk", backend=backend)
    print(f"\nbrowser sync test on the {info['backend']} backend")
    assert info["backend"] == backend
    assert info["fingerprint"] == CFG.fingerprint
    r = page.evaluate("window.sync.syncNow()")
    assert r["pulled"] == 10_000 and r["cursor"] == 10_000

    sf = sketch_file.from_bytes((tmp_path / "desk.chs").read_bytes())
    index = FlatIndex(ClarkHash(CFG))
    index.add_encoded(sf.to_encoded(), sf.ids)
    got = page.evaluate("async () => { const c = await window.store.codes(); "
                        "return {ids: c.ids, codes: CH.b64enc(c.codes)}; }")
    assert got["ids"] == ids and base64.b64decode(got["codes"]) == sf.codes
    queries = np.random.default_rng(6).standard_normal((3, 384)).astype(np.float32)
    for q in queries:
        res = page.evaluate("async (q) => { const r = await window.store.search(q, 10); "
                            "return {ids: r.ids, scores: CH.b64enc(new Uint8Array(r.scores.buffer))}; }",
                            q.tolist())
        want_ids, want_scores = index.search(q, 10)
        assert res["ids"] == list(want_ids)
        assert base64.b64decode(res["scores"]) == np.asarray(want_scores, np.float32).tobytes()


def test_offline_notes_sync_up_when_online(sync_server, page, context):
    server, token = sync_server
    _open(page, server, "notes", token, "notes", auto=True)
    page.evaluate("window.sync.syncNow()")  # creates the collection while online
    x = np.random.default_rng(8).standard_normal((12, 384)).astype(np.float32)
    ids = [f"note-{i}" for i in range(12)]
    context.set_offline(True)
    page.wait_for_function("navigator.onLine === false")
    page.evaluate("async ([v, ids]) => window.sync.addMany(v, {ids})", [x.tolist(), ids])
    page.evaluate("async () => window.sync.delete(['note-3'])")
    err = page.evaluate("async () => { try { await window.sync.syncNow(); return null; } "
                        "catch (e) { return e.type; } }")
    assert err == "Offline"
    state = page.evaluate("window.sync.state")
    assert state["status"] == "offline" and state["pending"] == 12
    assert server.store.info("notes").count == 0  # nothing reached the server

    # the queue survives a reload (IndexedDB; the page itself needs the network to reload)...
    page.evaluate("window.sync.close()")  # so the old page does not sync when the network returns
    context.set_offline(False)
    _open(page, server, "notes", token, "notes", auto=True)
    assert page.evaluate("window.sync.state.pending") == 12
    assert server.store.info("notes").count == 0
    # ...and goes up by itself when the browser comes back online
    context.set_offline(True)
    page.wait_for_function("navigator.onLine === false")
    context.set_offline(False)
    page.wait_for_function("window.sync.state.pending === 0 && window.sync.state.status === 'idle'",
                           timeout=60_000)
    want = ClarkHash(CFG).encode(x)
    stored = server.store.state("notes")
    assert set(stored) == set(ids) - {"note-3"}
    for i, id_ in enumerate(ids):
        if id_ != "note-3":
            assert stored[id_][0] == want.code(i), id_
    info = server.store.info("notes")
    assert info.tombstones == 1 and info.last_seq == 12  # 11 puts + 1 delete, nothing twice


def test_browser_and_desktop_edit_concurrently_and_converge(sync_server, page):
    """Issue 5 test 3 with the browser as one of the devices."""
    from clark_hash_web.sync.client import Replica, SyncClient

    server, token = sync_server
    x = np.random.default_rng(9).standard_normal((8, 384)).astype(np.float32)
    enc = ClarkHash(CFG).encode(x)
    desk = SyncClient(server.url, token, "shared", "desktop")
    desk.ensure_collection(CFG)
    rep = Replica(desk)
    for i in range(4):
        rep.put(f"n{i}", enc.code(i))
    rep.sync()
    _open(page, server, "shared", token, "shared")
    assert page.evaluate("window.sync.syncNow()")["pulled"] == 4
    # concurrent edits, no sync in between
    rep.put("n0", enc.code(4))   # clock 5
    rep.delete("n1")             # clock 6
    rep.put("n2", enc.code(6))   # clock 7
    page.evaluate("""async ([v5, v7]) => {
        await window.sync.delete(['n0']);                      // clock 5
        await window.sync.addMany([v5], {ids: ['n0']});        // clock 6: beats the desktop's 5
        await window.sync.addMany([v7], {ids: ['b-only']});    // clock 7
    }""", [x[5].tolist(), x[7].tolist()])
    rep.sync()
    page.evaluate("window.sync.syncNow()")
    rep.sync()
    got = page.evaluate("async () => { const c = await window.store.codes(); "
                        "return {ids: c.ids, codes: CH.b64enc(c.codes)}; }")
    raw = base64.b64decode(got["codes"])
    cb = CFG.code_bytes
    browser = {i: raw[k * cb:(k + 1) * cb] for k, i in enumerate(got["ids"])}
    desktop = {i: code for i, (code, _) in rep.live().items()}
    serverside = {i: code for i, (code, _) in server.store.state("shared").items()}
    assert browser == desktop == serverside
    assert browser == {"n0": enc.code(5), "n2": enc.code(6), "n3": enc.code(3), "b-only": enc.code(7)}


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_js_writers_match_python_bytes(sync_server, page, metric):
    """static/sync.js writes sketch files and push envelopes byte-identical to Python's."""
    from clark_hash_web.formats.sync_wire import Delete, Put, encode_push

    server, _ = sync_server
    cfg = ClarkHashConfig(input_dim=24, sketch_dim=20, bits=3, metric=metric)
    x = np.random.default_rng(11).standard_normal((5, 24)).astype(np.float32)
    enc = ClarkHash(cfg).encode(x)
    ids = ["a", "é-ü", "日本", "x" * 40, "q\"uote"]
    norms = None if enc.norm_codes is None else [int(v) for v in enc.norm_codes]
    want_file = sketch_file.to_bytes(cfg, enc.codes_bytes(), enc.norm_codes_bytes(), ids)
    puts = [Put(i, 10 + k, enc.code(k), None if norms is None else norms[k]) for k, i in enumerate(ids)]
    want_push = encode_push(cfg, "push-9", "web-1", puts, [Delete("gone", 3)], 1, 2)
    page.goto(server.url + "/static/harness.html")
    got = page.evaluate("""async ([cfgHex, fp, cb, dot, codesB64, norms, ids]) => {
        const S = await import("/static/sync.js");
        const hex = (h) => Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16));
        const cfg = {configBytes: hex(cfgHex), fingerprint: fp, codeBytes: cb, dot};
        const codes = CH.b64dec(codesB64);
        const file = S.sketchFileBytes(cfg, codes, norms && Uint16Array.from(norms), ids);
        const meta = {push_id: "push-9", chunk: 1, chunks: 2, device: "web-1",
                      put_clocks: ids.map((_, k) => 10 + k), deletes: [["gone", 3]]};
        const env = S.envelopeBytes(1, meta, file);
        const back = S.parseSketchFile(S.parseEnvelope(env).sketch, {...cfg, padBits: 8 * cb - 20 * 3});
        return {file: CH.b64enc(file), env: CH.b64enc(env), ids: back.ids,
                codes: CH.b64enc(back.codes), norms: back.norms && Array.from(back.norms)};
    }""", [cfg.to_bytes().hex(), cfg.fingerprint, cfg.code_bytes, metric == "dot",
           base64.b64encode(enc.codes_bytes()).decode(), norms, ids])
    assert base64.b64decode(got["file"]) == want_file
    assert base64.b64decode(got["env"]) == want_push
    assert got["ids"] == ids and base64.b64decode(got["codes"]) == enc.codes_bytes()
    assert got["norms"] == norms


def test_fuzz_js_pull_decoder(sync_server, page):
    """static/sync.js's decoders of server bytes throw only SyncError (never TypeError etc.) on
    random and mutated pull pages, and accept exactly what Python's decoder accepts."""
    import struct
    import zlib

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from clark_hash_web.formats.sync_wire import KIND_PULL, Delete, Put, decode, encode_pull

    server, _ = sync_server
    cfg = ClarkHashConfig(input_dim=24, sketch_dim=20, bits=3, metric="dot")
    enc = ClarkHash(cfg).encode(np.random.default_rng(2).standard_normal((3, 24)).astype(np.float32))
    puts = [Put(f"i{k}", 5 + k, enc.code(k), int(enc.norm_codes[k]), "dev-b", 1 + k) for k in range(3)]
    valid = encode_pull(cfg, puts, [Delete("gone", 4, "dev-c", 4)], 4, False, 4)
    page.goto(server.url + "/static/harness.html")
    page.wait_for_function("window.CH !== undefined")
    page.evaluate("async () => { window.S = await import('/static/sync.js'); }")

    def mutate(edits, reseal):
        b = bytearray(valid)
        for pos, val in edits:
            b[pos % len(b)] = val
        if reseal:
            b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])))
            (mlen,) = struct.unpack_from("<I", b, 12)
            sk0 = 24 + mlen
            if 0 <= sk0 < len(b) - 8:  # reseal the inner sketch file too, when it still has a place
                b[-8:-4] = struct.pack("<I", zlib.crc32(bytes(b[sk0:-8])))
                b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])))
        return bytes(b)

    expect = (f"{{configBytes: Uint8Array.from({list(cfg.to_bytes())}), fingerprint: '{cfg.fingerprint}', "
              f"codeBytes: {cfg.code_bytes}, dot: true, padBits: {cfg.code_bytes * 8 - 60}}}")
    assert page.evaluate(f"S.parsePullPage(CH.b64dec('{base64.b64encode(valid).decode()}'), {expect}).puts.length") == 3
    bodies = st.one_of(st.binary(max_size=200),
                       st.builds(mutate, st.lists(st.tuples(st.integers(0, 10 ** 5), st.integers(0, 255)),
                                                  min_size=1, max_size=3), st.booleans()))

    @settings(max_examples=int(os.environ.get("SYNC_FUZZ_EXAMPLES", "25")), deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(bodies, min_size=10, max_size=10))
    def run(batch):
        got = page.evaluate("""(list) => list.map((b64) => {
            try { S.parsePullPage(CH.b64dec(b64), EXPECT); return "ok"; }
            catch (e) { return e instanceof S.SyncError ? "SyncError" : `${e.name}: ${e.message}`; }
        })""".replace("EXPECT", expect),
                            [base64.b64encode(b).decode() for b in batch])
        for body, verdict in zip(batch, got):
            assert verdict in ("ok", "SyncError"), verdict
            try:
                decode(body, expect_kind=KIND_PULL, expect_config=cfg)
                py_ok = True
            except Exception:
                py_ok = False
            if verdict == "ok":
                assert py_ok, "sync.js accepted a pull page that Python refuses"

    run()


# -- sketch files v1/v2, payload sections, encrypted notes: JS bytes == Python bytes ------------

def _as_v1(v2: bytes) -> bytes:
    """The same sketch file in format v1 (u16 config length at 14; bytes 36..39 reserved)."""
    import struct
    import zlib

    b = bytearray(v2[:-4])
    (clen,) = struct.unpack_from("<I", b, 36)
    struct.pack_into("<H", b, 8, 1)
    struct.pack_into("<H", b, 14, clen)
    struct.pack_into("<I", b, 36, 0)
    return bytes(b) + struct.pack("<I", zlib.crc32(bytes(b)))


def test_js_reads_sketch_files_v1_and_v2_and_writes_payload_sections_like_python(sync_server, page):
    from clark_hash_web.formats.sync_wire import Put, encode_push

    server, _ = sync_server
    cfg = ClarkHashConfig(input_dim=24, sketch_dim=20, bits=3)
    enc = ClarkHash(cfg).encode(np.random.default_rng(12).standard_normal((4, 24)).astype(np.float32))
    ids = ["a", "b", "c", "d"]
    v2 = sketch_file.to_bytes(cfg, enc.codes_bytes(), None, ids)
    v1 = _as_v1(v2)
    assert v2[8] == 2 and v1[8] == 1 and sketch_file.from_bytes(v1).codes == enc.codes_bytes()
    payloads = [b"\x00\x01secret", None, b"", bytes(range(256)) * 3]
    puts = [Put(i, 3, enc.code(k), None, "", 0, payloads[k]) for k, i in enumerate(ids)]
    want = encode_push(cfg, "p-1", "web-1", puts, [], 0, 1)
    page.goto(server.url + "/static/harness.html")
    page.wait_for_function("window.CH !== undefined")
    got = page.evaluate("""async ([cfgHex, fp, cb, v1, v2, pls, ids]) => {
        const S = await import("/static/sync.js");
        const hex = (h) => Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16));
        const cfg = {configBytes: hex(cfgHex), fingerprint: fp, codeBytes: cb, dot: false, padBits: 8 * cb - 60};
        const a = S.parseSketchFile(CH.b64dec(v1), cfg), b = S.parseSketchFile(CH.b64dec(v2), cfg);
        const file = S.sketchFileBytes(cfg, b.codes, null, b.ids);
        const payloads = pls.map((p) => p === null ? null : CH.b64dec(p));
        const meta = {push_id: "p-1", chunk: 0, chunks: 1, device: "web-1", put_clocks: [3, 3, 3, 3], deletes: []};
        const env = S.envelopeBytes(1, meta, file, S.payloadSection(payloads));
        const back = S.parseEnvelope(env);
        return {v1codes: CH.b64enc(a.codes), v2codes: CH.b64enc(b.codes), v1ids: a.ids, v2ids: b.ids,
                file: CH.b64enc(file), env: CH.b64enc(env), section: back.payloads.length};
    }""", [cfg.to_bytes().hex(), cfg.fingerprint, cfg.code_bytes, base64.b64encode(v1).decode(),
           base64.b64encode(v2).decode(),
           [None if p is None else base64.b64encode(p).decode() for p in payloads], ids])
    assert base64.b64decode(got["v1codes"]) == base64.b64decode(got["v2codes"]) == enc.codes_bytes()
    assert got["v1ids"] == got["v2ids"] == ids
    assert base64.b64decode(got["file"]) == v2  # JS writes exactly Python's v2 file
    assert base64.b64decode(got["env"]) == want  # ...and Python's v2 envelope with payloads
    assert got["section"] > 0


def test_js_and_python_encrypt_notes_identically(sync_server, page):
    """Same passphrase, salt and nonce: WebCrypto and `cryptography` give the same bytes; each
    side decrypts the other's; a wrong passphrase fails in JS with WrongKeyError."""
    from clark_hash_web.sync import crypto

    server, _ = sync_server
    salt, nonce = bytes(range(16)), bytes(range(100, 112))
    key = crypto.derive_key("correct horse ✓", salt)  # the real 600,000 iterations
    text = "Buy oat milk — and the blue notebook"
    py_payload = crypto.encrypt_note(key, "demo-notes", "note-1", text, nonce=nonce)
    raw_key, raw_text = crypto.new_random_key()
    page.goto(server.url + "/static/harness.html")
    page.wait_for_function("window.CH !== undefined")
    got = page.evaluate("""async ([salt, nonce, text, pyPayload, rawText]) => {
        const C = await import("/static/sync-crypto.js");
        const key = await C.keyFromText("correct horse ✓", CH.b64dec(salt));
        const js = await C.encryptNote(key, "demo-notes", "note-1", text, CH.b64dec(nonce));
        const fromPy = await C.decryptNote(key, "demo-notes", "note-1", CH.b64dec(pyPayload));
        const wrong = await C.keyFromText("correct horse", CH.b64dec(salt));
        let wrongErr = null;
        try { await C.decryptNote(wrong, "demo-notes", "note-1", js); } catch (e) { wrongErr = e.name; }
        let movedErr = null;
        try { await C.decryptNote(key, "demo-notes", "note-2", js); } catch (e) { movedErr = e.name; }
        const rk = await C.keyFromText(rawText, CH.b64dec(salt));
        const byRaw = await C.encryptNote(rk, "c", "i", "raw key text");
        const check = await C.makeKeyCheck(key, "demo-notes");
        return {js: CH.b64enc(js), fromPy, wrongErr, movedErr, byRaw: CH.b64enc(byRaw),
                check: CH.b64enc(check), fresh: C.newRandomKeyText()};
    }""", [base64.b64encode(salt).decode(), base64.b64encode(nonce).decode(), text,
           base64.b64encode(py_payload).decode(), raw_text])
    assert base64.b64decode(got["js"]) == py_payload
    assert got["fromPy"] == text
    assert got["wrongErr"] == got["movedErr"] == "WrongKeyError"
    assert crypto.decrypt_note(raw_key, "c", "i", base64.b64decode(got["byRaw"])) == "raw key text"
    crypto.verify_key_check(key, "demo-notes", base64.b64decode(got["check"]))
    assert crypto.key_from_text(got["fresh"], salt) != raw_key and got["fresh"].startswith("chk1_")


# -- an E8 collection: desktop and two browser contexts, byte for byte ------------------------

_E8_JS = """async ([url, token, coll, cfgHex, fp, cb, pushB64, pushIds, device]) => {
    const S = await import("/static/sync.js");
    const hex = (h) => Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16));
    const cfg = {configBytes: hex(cfgHex), fingerprint: fp, codeBytes: cb, dot: false, padBits: 0};
    const call = async (method, path, body) => {
        const r = await fetch(url + "/api/v1/collections/" + coll + path, {method, body,
            headers: {Authorization: "Bearer " + token}});
        if (!r.ok) throw new Error(`${r.status} ${await r.text()}`);
        return r;
    };
    if (pushIds.length) {
        const file = S.sketchFileBytes(cfg, CH.b64dec(pushB64), null, pushIds);
        const meta = {push_id: "push-" + device, chunk: 0, chunks: 1, device,
                      put_clocks: pushIds.map(() => 7), deletes: []};
        await call("POST", "/push", S.envelopeBytes(1, meta, file));
    }
    const page = S.parsePullPage(new Uint8Array(await (await call("GET", "/changes?since=0")).arrayBuffer()), cfg);
    const rows = page.puts.map((p) => p.row);
    const codes = new Uint8Array(rows.length * cb);
    rows.forEach((r, i) => codes.set(page.sketch.codes.subarray(r * cb, (r + 1) * cb), i * cb));
    const ids = page.puts.map((p) => p.id);
    return {ids, codes: CH.b64enc(codes), file: CH.b64enc(S.sketchFileBytes(cfg, codes, null, ids))};
}"""


def test_e8_collection_syncs_byte_for_byte_between_browsers_and_desktop(sync_server, browser):
    """The sync layer of static/sync.js is codec-agnostic: an E8 collection (kind 5) goes
    desktop -> browser A -> browser B -> desktop with identical code bytes and sketch files.
    (The browser's ClarkHashStore holds Clark Hash stores only, so the browsers drive
    sync.js's wire functions directly here.)"""
    from clark_hash_web.codecs import registry
    from clark_hash_web.sync.client import SyncClient

    server, token = sync_server
    e8 = registry.config_from_spec("e8:32")
    codec = registry.codec_from_config(e8)
    x = np.random.default_rng(21).standard_normal((30, 32)).astype(np.float32)
    enc = codec.encode(x)
    codes = enc.codes_bytes()
    cb = e8.code_bytes
    desk = SyncClient(server.url, token, "e8-notes", "desktop")
    from clark_hash_web.formats.sync_wire import Put

    desk.ensure_collection(e8)
    desk.push([Put(f"d{i}", 1, codes[i * cb:(i + 1) * cb], None, "desktop") for i in range(20)])
    args = [server.url, token, "e8-notes", e8.to_bytes().hex(), e8.fingerprint, cb]
    results = []
    for name, rows in (("web-a", range(20, 25)), ("web-b", range(25, 30))):
        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(server.url + "/static/harness.html")
        page.wait_for_function("window.CH !== undefined")
        push = b"".join(codes[i * cb:(i + 1) * cb] for i in rows)
        results.append(page.evaluate(_E8_JS, args + [base64.b64encode(push).decode(),
                                                     [f"{name}-{i}" for i in rows], name]))
        ctx.close()
    puts, _, _ = desk.pull_all(0)
    final = results[-1]
    assert final["ids"] == [p.id for p in puts] and len(puts) == 30
    assert base64.b64decode(final["codes"]) == b"".join(p.code for p in puts)
    want_ids = [f"d{i}" for i in range(20)] + [f"web-a-{i}" for i in range(20, 25)] + \
        [f"web-b-{i}" for i in range(25, 30)]
    assert [p.id for p in puts] == want_ids and b"".join(p.code for p in puts) == codes
    assert base64.b64decode(final["file"]) == sketch_file.to_bytes(e8, codes, None, want_ids)
    assert results[0]["ids"] == want_ids[:25]  # browser A saw the desktop's rows and its own


# -- honest status: "In sync" only after a round trip; a dead server is named as such ------------

def test_status_with_the_server_down(sync_server, page):
    from clark_hash_web.sync.client import SyncClient

    server, token = sync_server
    SyncClient(server.url, token, "st", "desktop").ensure_collection(CFG)
    _open(page, server, "st", token, "st")
    page.evaluate("async () => { const S = await import('/static/sync.js'); window.statusText = S.syncStatusText; }")
    first = page.evaluate("window.statusText(window.sync.state)")
    assert page.evaluate("window.sync.state.status") == "unsynced"
    assert "In sync" not in first and "never synced" in first
    page.evaluate("window.sync.syncNow()")
    ok = page.evaluate("window.statusText(window.sync.state)")
    assert ok.startswith("In sync (") and page.evaluate("window.sync.state.status") == "idle"
    last_sync = page.evaluate("window.sync.state.lastSync")

    server.shutdown()  # the server goes away; the browser itself stays online
    x = np.random.default_rng(5).standard_normal((1, 384)).astype(np.float32)
    page.evaluate("async (v) => window.sync.addMany(v, {ids: ['late-1']})", x.tolist())
    err = page.evaluate("async () => { try { await window.sync.syncNow(); return null; } "
                        "catch (e) { return e.type; } }")
    assert err == "Offline"
    st = page.evaluate("window.sync.state")
    text = page.evaluate("window.statusText(window.sync.state)")
    assert st["status"] == "offline" and st["online"] is True and st["lastSync"] == last_sync
    assert text.startswith("Server unreachable, 1 change queued (last sync "), text
    assert "In sync" not in text
    states = page.evaluate("window.states")
    assert states[-1] == "offline" and "idle" not in states[states.index("syncing", len(states) - 4):]
