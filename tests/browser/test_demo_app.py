"""The demo (demo/), driven like a person, then reloaded with the network cut off.

One browser context (one origin, one IndexedDB, one service worker) goes
through: first open (starter notes embedded) -> add notes -> search as you
type -> edit -> delete -> import a sketch file written by the desktop CLI ->
a note left unsketched (page closed mid-add) -> service worker active ->
server down + context offline -> reload -> the page starts from the cache,
embeds the unsketched note, search still answers, notes still there.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from demo_fixtures import demo_server, desktop_reference, search, wait_ready  # noqa: F401 (fixture)

HIKE = "Pack water, sunscreen and a map for Saturday's mountain hike"
VET = "Take the dog to the vet on Friday for his rabies shot"
DINNER = "Book a table for Friday dinner at the little Italian restaurant"
LIBRARY = "Renew the library card and return the overdue books"


def add_note(page, text):
    page.locator("#new-note").fill(text)
    page.locator("#add-note").click()
    page.wait_for_function("() => document.getElementById('message').textContent.startsWith('Added')",
                           timeout=60_000)
    page.wait_for_function("() => document.getElementById('new-note').value === ''")


def note_item(page, text):
    return page.locator("#notes > li", has_text=text)


@pytest.fixture
def demo_context(browser):
    ctx = browser.new_context(viewport={"width": 1000, "height": 1100})
    yield ctx
    ctx.close()


def desktop_sketch_file(tmp_path, site_dir):
    """A .chs written by the desktop CLI from desktop embeddings (reference sentences)."""
    ref = desktop_reference(site_dir / "model")
    vectors = np.asarray(ref["embeddings"][:11], dtype=np.float32)
    np.save(tmp_path / "vectors.npy", vectors)
    ids = [f"desk-{i}" for i in range(len(vectors))]
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    out = tmp_path / "desktop.chs"
    subprocess.run([sys.executable, "-m", "clark_hash_web.cli", "encode", str(tmp_path / "vectors.npy"),
                    str(out), "--ids", str(tmp_path / "ids.txt"), "--no-progress"], check=True)
    return out, ref["sentences"][:11], ids


def test_demo_like_a_person_then_offline(demo_context, demo_server, site_dir, tmp_path):
    page = demo_context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(demo_server.url)
    wait_ready(page)

    info = json.loads((site_dir / "build-info.json").read_text())
    # numpy (when shipped) loads after start-up; the label follows when it is there
    page.wait_for_function("(want) => document.getElementById('backend').textContent.includes(want)",
                           arg=f"on the {info['backend']} backend", timeout=60_000)
    backend = page.inner_text("#backend")
    print(f"\ndemo codec: {backend}\ndemo model: {page.inner_text('#model-status')}")
    assert "ready" in page.inner_text("#model-status")
    starter = page.locator("#notes > li").count()
    assert starter >= 24, "the starter notes should be listed on first open"
    assert "48 B sketch · 1,536 B as float32" in page.locator("#notes > li").first.inner_text()

    # a person adds notes and searches by meaning
    add_note(page, HIKE)
    add_note(page, VET)
    assert page.locator("#notes > li").count() == starter + 2
    results = search(page, "things to bring on a walk in the hills")
    assert results[0] == HIKE, results[:3]
    results = search(page, "how do I bake bread")
    assert results[0].startswith("Sourdough"), results[:3]

    # edit: the vet note becomes a dinner note; the search follows the new text
    search(page, "rabies shot for the dog")
    note_id = note_item(page, VET).get_attribute("data-id")
    item = page.locator(f"#notes > li[data-id='{note_id}']")
    item.locator("button.edit").click()
    page.locator("[data-testid=edit-text]").fill(DINNER)
    item.get_by_role("button", name="Save").click()
    page.wait_for_function("() => document.getElementById('message').textContent.startsWith('Saved')",
                           timeout=60_000)
    results = search(page, "restaurant reservation")
    assert results[0] == DINNER, results[:3]
    assert VET not in results

    # delete: the hike note is gone from search results and from the list
    search(page, "things to bring on a walk in the hills")
    note_item(page, HIKE).locator("button.delete").click()
    page.wait_for_function("() => document.getElementById('message').textContent === 'Deleted.'")
    results = search(page, "what to pack for a mountain walk")
    assert HIKE not in results

    # import a sketch file written by the desktop CLI (desktop embeddings)
    chs, sentences, ids = desktop_sketch_file(tmp_path, site_dir)
    page.locator("#import-file").set_input_files(str(chs))
    page.wait_for_function("() => document.getElementById('message').textContent.startsWith('Imported')",
                           timeout=60_000)
    assert f"Imported {len(ids)} sketches" in page.inner_text("#message")
    results = search(page, sentences[3])  # "How do I reset my password?" -> its desktop sketch
    assert f"imported id “{ids[3]}”" in results[0], results[:3]
    # importing the same file again is refused, and nothing is added
    page.locator("#import-file").set_input_files(str(chs))
    page.wait_for_function("() => document.getElementById('message').textContent.includes('failed')",
                           timeout=60_000)
    assert "nothing was added" in page.inner_text("#message")
    # a sketch-only entry can be deleted like a note
    search(page, sentences[3])
    page.locator("#notes > li", has_text=ids[3]).locator("button.delete").click()
    page.wait_for_function("() => document.getElementById('message').textContent === 'Deleted.'")
    count_online = page.evaluate("window.demo.state.sketchIds.size")
    assert count_online == starter + 1 + len(ids) - 1
    assert ids[3] not in page.evaluate("window.demo.state.store.ids()")

    # a page closed in the middle of adding a note left its text without a sketch:
    # the next start embeds it (here: the offline reload below)
    page.evaluate("""(text) => new Promise((resolve, reject) => {
        const r = indexedDB.open("clark-hash-demo-notes", 1);
        r.onsuccess = () => {
          const tx = r.result.transaction("notes", "readwrite");
          tx.objectStore("notes").put({id: "half-added", text, created: Date.now(), updated: Date.now(), sketched: false});
          tx.oncomplete = () => { r.result.close(); resolve(); };
          tx.onerror = () => reject(tx.error);
        };
        r.onerror = () => reject(r.error);
      })""", LIBRARY)

    # offline: the service worker has cached the site; cut the network and reload
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=120_000)
    assert page.evaluate("document.body.dataset.offlineReady") == "true"
    demo_server.down = True
    demo_context.set_offline(True)
    try:
        page.reload()
        wait_ready(page)
        assert page.evaluate("navigator.onLine") is False
        assert page.evaluate("window.demo.state.sketchIds.size") == count_online + 1
        assert page.locator("#notes > li", has_text=DINNER).count() == 1
        results = search(page, "overdue library books")
        assert results[0] == LIBRARY, results[:3]
        results = search(page, "how do I bake bread")
        assert results[0].startswith("Sourdough"), results[:3]
        results = search(page, "restaurant reservation")
        assert results[0] == DINNER, results[:3]
        assert "offline" in page.inner_text("#offline-status")
        page.screenshot(path=str(tmp_path / "demo-offline.png"))
    finally:
        demo_context.set_offline(False)
        demo_server.down = False
    # only the browser's own service-worker update check may knock on the (dead) server
    tried = demo_server.requests_while_down
    print(f"offline reload: requests dropped by the stopped server: {tried}")
    assert set(tried) <= {"/sw.js"}, tried
    assert not errors, errors
