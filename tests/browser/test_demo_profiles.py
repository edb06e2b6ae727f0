"""The demo's codec profiles, used like a person would.

- A fresh visit runs the recommended profile (E8 codes, 48 B, with int8
  rescoring of the top 100) and says so on the page.
- Switching to Clark Hash (and back) with the profile menu re-encodes every
  note from its text, shows progress, keeps every note, and the choice
  survives a reload.
- A store made before E8 became the default (a Clark Hash store named
  "demo-notes", no profile choice saved) keeps working as it is, and can
  then be switched.
"""

from __future__ import annotations

import pytest

from demo_fixtures import demo_server, search, wait_ready  # noqa: F401 (fixture)

PROFILE_KEY = "clark-hash-demo:profile"
HIKE = "Pack water, sunscreen and a map for Saturday's mountain hike"
VET = "Take the dog to the vet on Friday for his rabies shot"


def add_note(page, text):
    page.locator("#new-note").fill(text)
    page.locator("#add-note").click()
    page.wait_for_function("() => document.getElementById('message').textContent.startsWith('Added')",
                           timeout=60_000)


@pytest.fixture
def demo_context(browser):
    ctx = browser.new_context(viewport={"width": 1000, "height": 1100})
    yield ctx
    ctx.close()


def watch_messages(page):
    """Record every text the message line and the progress bar show from now on."""
    page.evaluate("""() => {
      window.seenMessages = [];
      window.seenProgress = [];
      const m = document.getElementById("message");
      new MutationObserver(() => window.seenMessages.push(m.textContent))
        .observe(m, {childList: true, characterData: true, subtree: true});
      const p = document.getElementById("profile-progress");
      new MutationObserver(() => window.seenProgress.push([p.value, p.max, p.hidden]))
        .observe(p, {attributes: true});
    }""")


def switch_profile(page, name):
    watch_messages(page)
    page.select_option("#profile", name)
    page.wait_for_function(
        "() => /^(Switched|Could not switch)/.test(document.getElementById('message').textContent)",
        timeout=240_000)
    msg = page.inner_text("#message")
    assert msg.startswith("Switched"), msg
    return msg


def store_state(page):
    return page.evaluate("""async () => {
      const s = window.demo.state;
      return {codec: s.store.config.codec.name, vectors: s.store.vectors, notes: s.notes.size,
              sketches: (await s.store.ids()).length, profile: localStorage.getItem("%s"),
              shown: document.getElementById("profile-info").textContent,
              selected: document.getElementById("profile").value};
    }""" % PROFILE_KEY)


def test_default_profile_is_e8_and_switching_loses_nothing(demo_context, demo_server):
    page = demo_context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(demo_server.url)
    wait_ready(page)
    st = store_state(page)
    assert st["codec"] == "e8" and st["vectors"] == "int8" and st["selected"] == "e8"
    assert "E8" in st["shown"] and "rescor" in st["shown"], st["shown"]
    assert st["sketches"] == st["notes"] >= 24
    add_note(page, HIKE)
    add_note(page, VET)
    notes = st["notes"] + 2
    results = search(page, "things to bring on a walk in the hills")
    assert results[0] == HIKE, results[:3]
    assert "re-ranked" in page.inner_text("#search-info")

    msg = switch_profile(page, "clark-hash")
    print(f"\nswitch to Clark Hash: {msg}; progress seen: {page.evaluate('window.seenProgress')[:6]}")
    progress = page.evaluate("window.seenProgress")
    assert any(not hidden and 0 < v < mx for v, mx, hidden in progress), progress   # shown mid-way
    assert any(v == mx == notes for v, mx, _ in progress), progress
    st = store_state(page)
    assert st == {**st, "codec": "clark-hash", "vectors": None, "notes": notes, "sketches": notes,
                  "profile": "clark-hash", "selected": "clark-hash"}
    assert "Clark Hash" in st["shown"]
    results = search(page, "what to pack for a mountain walk")
    assert results[0] == HIKE, results[:3]

    page.reload()
    wait_ready(page)
    st = store_state(page)
    assert st["codec"] == "clark-hash" and st["notes"] == notes and st["sketches"] == notes
    results = search(page, "rabies shot for the dog")
    assert results[0] == VET, results[:3]

    switch_profile(page, "e8")
    st = store_state(page)
    assert st["codec"] == "e8" and st["vectors"] == "int8" and st["notes"] == notes
    assert st["sketches"] == notes
    results = search(page, "rabies shot for the dog")
    assert results[0] == VET, results[:3]
    assert not errors, errors


def test_store_made_before_the_switch_keeps_working(demo_context, demo_server):
    page = demo_context.new_page()
    # the demo as it was before E8: a Clark Hash store "demo-notes" and no saved profile
    page.add_init_script("""(() => {
      if (!sessionStorage.getItem("legacy-made")) {
        localStorage.setItem("%s", "clark-hash");
        sessionStorage.setItem("legacy-made", "1");
      }
    })()""" % PROFILE_KEY)
    page.goto(demo_server.url)
    wait_ready(page)
    add_note(page, HIKE)
    assert store_state(page)["codec"] == "clark-hash"
    page.evaluate("(key) => localStorage.removeItem(key)", PROFILE_KEY)
    dbs = page.evaluate("async () => (await indexedDB.databases()).map((d) => d.name).sort()")
    assert "clark-hash:demo-notes" in dbs and "clark-hash:demo-notes-e8" not in dbs, dbs

    page.reload()
    wait_ready(page)
    st = store_state(page)
    assert st["codec"] == "clark-hash" and st["profile"] in (None, "clark-hash"), st
    assert "Clark Hash" in st["shown"]
    assert st["sketches"] == st["notes"]
    results = search(page, "things to bring on a walk in the hills")
    assert results[0] == HIKE, results[:3]

    switch_profile(page, "e8")
    st2 = store_state(page)
    assert st2["codec"] == "e8" and st2["notes"] == st["notes"] and st2["sketches"] == st["notes"]
    results = search(page, "things to bring on a walk in the hills")
    assert results[0] == HIKE, results[:3]
