"""The demo's Sync panel (issue 5, browser part), against `clark-hash serve` code.

An in-process SyncServer (what `clark-hash serve` runs: Starlette on uvicorn) serves the built
site and the sync API from one origin, on its own pinned port (env
``CLARK_HASH_DEMO_SYNC_PORT``, default 8768). One browser context goes through:

first open (no token: edits stay local) -> token typed in the panel -> the
starter notes go up -> offline: two notes added, the status line says they are
queued, nothing reaches the server -> online: they go up by themselves -> the
server's codes equal a desktop encode of the browser's own embeddings of those
notes, and the server holds exactly the ids and codes of the browser store ->
another device pushes a sketch and deletes a note: the Sync button pulls both,
the pulled id is listed "sketch only" and the deleted note is gone.
"""

from __future__ import annotations

import base64
import os

import numpy as np
import pytest

from clark_hash_web.codecs import registry
from clark_hash_web.sync.server import make_server
from browser_helpers import bind_session_port
from demo_fixtures import wait_ready

SYNC_PORT = int(os.environ.get("CLARK_HASH_DEMO_SYNC_PORT", "8768"))
COLLECTION = "demo-notes-e8"  # the demo's default profile's store name (demo/app.js PROFILES.e8.store)
CFG = registry.config_from_spec("e8:384")  # the demo's default profile
NOTES = ["Water the tomatoes every morning while the heat wave lasts",
         "Call the plumber about the dripping kitchen tap"]


@pytest.fixture
def serve(site_dir, tmp_path):
    server, token, _ = bind_session_port(
        lambda port: make_server(tmp_path / "data", site_dir, "127.0.0.1", port), "demo-sync", SYNC_PORT)
    server.start()
    yield server, token
    server.shutdown()
    server.server_close()


@pytest.fixture
def demo_page(browser):
    ctx = browser.new_context(viewport={"width": 1000, "height": 1300})
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield ctx, page, errors
    ctx.close()


def status(page):
    return page.evaluate("(() => { const el = document.getElementById('sync-status'); "
                         "return {status: el.dataset.status, pending: Number(el.dataset.pending), "
                         "text: el.textContent}; })()")


def wait_in_sync(page, timeout=60_000):
    page.wait_for_function("(() => { const el = document.getElementById('sync-status'); "
                           "return el.dataset.status === 'idle' && el.dataset.pending === '0' "
                           "&& el.textContent.startsWith('Sync: In sync'); })()",
                           timeout=timeout)


def browser_codes(page):
    got = page.evaluate("async () => { const c = await window.demo.state.store.codes(); "
                        "let s = ''; for (const b of c.codes) s += String.fromCharCode(b); "
                        "return {ids: c.ids.map(String), codes: btoa(s)}; }")
    raw = base64.b64decode(got["codes"])
    n = CFG.code_bytes
    return {id_: raw[i * n:(i + 1) * n] for i, id_ in enumerate(got["ids"])}


def test_demo_sync_panel_offline_queue_and_pull(serve, demo_page, tmp_path):
    server, token = serve
    ctx, page, errors = demo_page
    page.goto(server.url + "/")
    wait_ready(page)
    starter = len(page.evaluate("[...window.demo.state.notes.keys()]"))

    # no token yet: nothing is sent, the panel says so
    s = status(page)
    assert "no server token" in s["text"], s
    assert COLLECTION not in server.store.collections()

    # the token, typed like a person (kept in localStorage), starts the first sync
    page.locator("#sync-token").fill(token)
    page.locator("#sync-token").press("Enter")
    wait_in_sync(page)  # the status line says "Sync: In sync (time)"
    assert page.evaluate("localStorage.getItem('clark-hash-demo:sync-token')") == token
    assert server.store.info(COLLECTION).count == starter

    # offline: notes are added, embedded and sketched locally, and queued
    ctx.set_offline(True)
    page.wait_for_function("navigator.onLine === false")
    for text in NOTES:
        page.locator("#new-note").fill(text)
        page.locator("#add-note").click()
        page.wait_for_function("() => document.getElementById('message').textContent.startsWith('Added')",
                               timeout=60_000)
        page.wait_for_function("() => document.getElementById('new-note').value === ''")
    page.wait_for_function("document.getElementById('sync-status').dataset.pending === '2'")
    s = status(page)
    assert s["status"] == "offline" and "2 changes queued" in s["text"], s
    page.screenshot(path=str(tmp_path / "demo-sync-offline.png"), full_page=True)
    assert server.store.info(COLLECTION).count == starter  # nothing reached the server

    # online again: the queue goes up by itself
    ctx.set_offline(False)
    wait_in_sync(page)
    assert server.store.info(COLLECTION).count == starter + 2

    # the server holds exactly the browser store's ids and codes...
    stored = server.store.state(COLLECTION)
    local = browser_codes(page)
    assert set(stored) == set(local)
    assert all(stored[i][0] == local[i] for i in local)
    # ...and the new notes' codes are a desktop encode of the browser's own embeddings
    ids = page.evaluate("(texts) => texts.map((t) => [...window.demo.state.notes.values()]"
                        ".find((n) => n.text === t).id)", NOTES)
    vecs = page.evaluate("async (texts) => (await window.demo.state.embedder.embed(texts)).map((v) => [...v])",
                         NOTES)
    want = registry.codec_from_config(CFG).encode(np.asarray(vecs, dtype=np.float32))
    for i, id_ in enumerate(ids):
        assert stored[id_][0] == want.code(i), id_

    # another device pushes a sketch and deletes a starter note; the Sync button pulls both
    from clark_hash_web.sync.client import Replica, SyncClient

    laptop = Replica(SyncClient(server.url, token, COLLECTION, "laptop"))
    laptop.sync()  # pulls everything first, so its delete of "groceries" is the newer version
    laptop.put("laptop-1", want.code(0))
    laptop.delete("groceries")
    laptop.sync()
    page.locator("#sync-now").click()
    page.wait_for_function("window.demo.state.sketchIds.has('laptop-1')", timeout=60_000)
    wait_in_sync(page)
    page.wait_for_function("!window.demo.state.notes.has('groceries')")
    item = page.locator("#notes > li[data-id='laptop-1']")
    assert "Sketch only" in item.inner_text()
    assert page.locator("#notes > li[data-id='groceries']").count() == 0
    assert set(browser_codes(page)) == set(server.store.state(COLLECTION))
    page.screenshot(path=str(tmp_path / "demo-sync.png"), full_page=True)
    print(f"\ndemo sync: {starter} starter notes + 2 offline notes synced; "
          f"status {status(page)['text']!r}; screenshot {tmp_path / 'demo-sync.png'}")
    assert not errors, errors



def _device(browser, server, token, passphrase):
    """A fresh browser context (its own IndexedDB) with the demo open, passphrase then token set."""
    ctx = browser.new_context(viewport={"width": 1000, "height": 1300})
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")
    wait_ready(page)
    page.locator("#sync-passphrase").fill(passphrase)
    page.locator("#sync-passphrase").press("Enter")
    page.locator("#sync-token").fill(token)
    page.locator("#sync-token").press("Enter")
    return ctx, page, errors


def test_demo_note_text_syncs_encrypted_and_a_wrong_passphrase_changes_nothing(serve, browser, tmp_path):
    server, token = serve
    text = "Pick up the dry cleaning on Friday before noon"
    a_ctx, a, a_err = _device(browser, server, token, "river stone 42")
    wait_in_sync(a)
    a.locator("#new-note").fill(text)
    a.locator("#add-note").click()
    a.wait_for_function("() => document.getElementById('message').textContent.startsWith('Added')",
                        timeout=60_000)
    note_id = a.evaluate("(t) => [...window.demo.state.notes.values()].find((n) => n.text === t).id", text)
    a.wait_for_function("(id) => document.getElementById('sync-status').dataset.pending === '0' && "
                        "document.getElementById('sync-status').dataset.status === 'idle'", arg=note_id,
                        timeout=60_000)
    assert note_id in server.store.state(COLLECTION)
    # the server holds ciphertext only
    payload = bytes(server.store._conn().one(
        "SELECT payload FROM items WHERE collection=? AND item_id=?", (COLLECTION, note_id))[0])
    assert payload[:4] == b"CHE1" and b"dry cleaning" not in payload

    # another device with the same passphrase: the note arrives with its text
    b_ctx, b, b_err = _device(browser, server, token, "river stone 42")
    wait_in_sync(b)
    b.wait_for_function("(id) => window.demo.state.notes.has(id)", arg=note_id, timeout=60_000)
    assert b.evaluate("(id) => window.demo.state.notes.get(id).text", note_id) == text
    item = b.locator(f"#notes > li[data-id='{note_id}']")
    item.wait_for()
    assert text in item.inner_text() and "Sketch only" not in item.inner_text()
    b.screenshot(path=str(tmp_path / "demo-note-text-synced.png"), full_page=True)

    # a third device with a wrong passphrase: a clear message, nothing sent, nothing changed
    before = (server.store.info(COLLECTION), server.store.state(COLLECTION))
    c_ctx, c, c_err = _device(browser, server, token, "river stone 24")
    c.wait_for_function("document.getElementById('sync-status').dataset.status === 'error'", timeout=60_000)
    msg = status(c)["text"]
    assert "Wrong passphrase" in msg and "Nothing was sent" in msg, msg
    assert not c.evaluate("(id) => window.demo.state.notes.has(id)", note_id)
    starters = c.evaluate("[...window.demo.state.notes.values()].map((n) => n.text)")
    assert starters and text not in starters
    assert (server.store.info(COLLECTION), server.store.state(COLLECTION)) == before
    c.screenshot(path=str(tmp_path / "demo-wrong-passphrase.png"), full_page=True)
    for ctx in (a_ctx, b_ctx, c_ctx):
        ctx.close()
    assert not (a_err or b_err or c_err), a_err + b_err + c_err
    print(f"\ndemo E2E note text: synced {note_id!r}; wrong passphrase message: {msg!r}")
