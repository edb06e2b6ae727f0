"""The demo's search box before the model is ready: word matches, and the page says so.

The model's file (model/model.onnx) is held back by the test (the request gets
no answer until the test lets it through), so the page shows what a first
visit shows while the 23 MB model downloads. Then:

- held: the search box works at once on the starter notes' text, results are
  word matches, the page says "Model loading: showing word matches";
- let through: the page switches to search by meaning, and a query that
  shares no word with any note finds its note;
- refused (HTTP 503 for the model): word matching stays, and the page says
  the model is unavailable.

Service workers are blocked in these contexts, so that every request of the
page reaches the test's route (not a service worker's cache).
"""

from __future__ import annotations

import pytest

from demo_fixtures import READY_TIMEOUT_MS, search

MODEL_URL = "**/model/model.onnx"
#: shares no word with any starter note; by meaning it is the cat's vaccination note
MEANING_ONLY_QUERY = "kitty immunization"
CAT_NOTE = "Luna the cat needs her yearly vaccination and a flea treatment."


@pytest.fixture
def demo_page(browser):
    ctx = browser.new_context(service_workers="block")
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page, ctx, errors
    ctx.close()


def wait_search_mode(page, mode, timeout=60_000):
    page.wait_for_function("(m) => document.body.dataset.searchMode === m && !document.getElementById('search').disabled",
                           arg=mode, timeout=timeout)


def test_word_search_while_the_model_loads_then_search_by_meaning(demo_page, base_url):
    page, ctx, errors = demo_page
    held = []
    ctx.route(MODEL_URL, lambda route: held.append(route))
    page.goto(base_url)
    wait_search_mode(page, "words")
    for _ in range(600):                       # the page asks for the model (and gets no answer)
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the page never asked for the model"
    assert page.inner_text("#search-mode") == "Model loading: showing word matches."
    assert page.evaluate("window.demo.state.embedder") is None      # really not there yet
    assert page.evaluate("document.body.dataset.ready") is None
    assert page.locator("#notes > li").count() >= 24                 # the starter notes' text is listed

    results = search(page, "sourdough")
    assert results[0].startswith("Sourdough:"), results[:3]
    assert page.inner_text("#list-title") == "Word matches for “sourdough”"
    assert page.locator("#notes > li .score").first.inner_text() == "1 of 1 word"
    # a half-typed word matches the words it begins; more matched words rank higher
    results = search(page, "night trai")
    assert results[0].startswith("The night train to Vienna"), results[:3]
    assert search(page, MEANING_ONLY_QUERY) == []
    assert page.locator("#notes > li").all_inner_texts() == ["No note contains these words."]

    # the model arrives: search by meaning takes over, and reruns the query in the box
    for route in held:
        route.continue_()
    ctx.unroute(MODEL_URL)
    wait_search_mode(page, "meaning", timeout=READY_TIMEOUT_MS)
    assert page.inner_text("#search-mode").startswith("Searching by meaning")
    page.wait_for_function("q => document.getElementById('list-title').textContent === `Best matches for “${q}”`",
                           arg=MEANING_ONLY_QUERY, timeout=60_000)
    results = page.locator("#notes > li .note-text").all_inner_texts()
    assert results[0] == CAT_NOTE, results[:3]
    assert page.locator("#notes > li .score").first.inner_text().startswith("score ")
    page.wait_for_function("document.body.dataset.ready !== undefined", timeout=READY_TIMEOUT_MS)
    assert page.evaluate("document.body.dataset.ready") == "true"
    assert not errors, errors


def test_word_search_stays_when_the_model_cannot_load(demo_page, base_url):
    page, ctx, errors = demo_page
    ctx.route(MODEL_URL, lambda route: route.fulfill(status=503, body="unavailable"))
    page.goto(base_url)
    page.wait_for_function("document.body.dataset.ready !== undefined", timeout=READY_TIMEOUT_MS)
    assert page.evaluate("document.body.dataset.ready") == "error"
    wait_search_mode(page, "words")
    assert page.inner_text("#search-mode") == "Model unavailable: showing word matches only."
    assert "503" in page.inner_text("#model-status")
    results = search(page, "passport renew")
    assert results[0].startswith("Passport expires in March"), results[:3]
    assert page.locator("#notes > li .score").first.inner_text() == "2 of 2 words"
