"""Fixtures of the demo tests: a server for the built site that can be switched off.

Playwright's ``context.set_offline(True)`` cuts the page off the network, but
to be sure that an offline reload is really served by the service worker's
cache (and not by a request that slipped through), the demo tests also stop
the server from answering: while ``down`` is set, every request is dropped
without a response and its path recorded in ``requests_while_down``.

The server listens on a pinned port of its own (IndexedDB and service workers
are per origin): env ``CLARK_HASH_DEMO_PORT``, default 8766. It serves the
site that tests/browser/conftest.py builds (fixture ``site_dir``).

``desktop_reference(model_dir)`` embeds the reference sentences on the desktop
with onnxruntime from the site's own model files (build_scripts/minilm_onnx.py).
"""

from __future__ import annotations

import functools
import http.server
import os
import sys
import threading
from pathlib import Path

import pytest

from browser_helpers import SiteHandler, bind_session_port

DEMO_PORT = int(os.environ.get("CLARK_HASH_DEMO_PORT", "8766"))
#: The demo boots Pyodide, loads the 23 MB int8 model and embeds the starter notes.
READY_TIMEOUT_MS = 240_000


@functools.lru_cache(maxsize=None)
def desktop_reference(model_dir) -> dict:
    """Desktop embeddings of ``minilm_onnx.REFERENCE_SENTENCES`` (onnxruntime, same files).

    Parameters
    ----------
    model_dir : Path
        A model folder, e.g. ``site_dir / "model"``.

    Returns
    -------
    dict
        ``{"sentences": [...], "token_ids": [[int]], "embeddings": (N, 384) float32 array}``
    """
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "build_scripts"))
    try:
        from minilm_onnx import REFERENCE_SENTENCES, MiniLMOnnx
    finally:
        sys.path.pop(0)
    model = MiniLMOnnx(model_dir)
    return {"sentences": list(REFERENCE_SENTENCES),
            "token_ids": model.tokenize(REFERENCE_SENTENCES),
            "embeddings": model.embed(REFERENCE_SENTENCES, batch_size=4)}


class _SwitchableHandler(SiteHandler):
    def do_GET(self):  # noqa: N802 (http.server naming)
        if self.server.down:
            self.server.requests_while_down.append(self.path)
            self.close_connection = True  # no response at all: the browser sees a network error
            return
        super().do_GET()

    do_HEAD = do_GET


class DemoServer:
    """The site on 127.0.0.1:DEMO_PORT (or the session's next free port); ``down = True`` drops every request."""

    def __init__(self, site_dir):
        handler = functools.partial(_SwitchableHandler, directory=str(site_dir))
        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = bind_session_port(
            lambda port: http.server.ThreadingHTTPServer(("127.0.0.1", port), handler), "demo", DEMO_PORT)
        self.httpd.daemon_threads = True
        self.httpd.down = False
        self.httpd.requests_while_down = []
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def down(self) -> bool:
        return self.httpd.down

    @down.setter
    def down(self, value: bool) -> None:
        self.httpd.down = bool(value)

    @property
    def requests_while_down(self) -> list:
        """Paths the browser asked for while the server was down (dropped unanswered)."""
        return self.httpd.requests_while_down

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def demo_server(site_dir):
    server = DemoServer(site_dir)
    yield server
    server.close()


def wait_ready(page):
    """Wait until the demo finished starting; fail with the page's own message if it did not."""
    page.wait_for_function("document.body.dataset.ready !== undefined", timeout=READY_TIMEOUT_MS)
    state = page.evaluate("document.body.dataset.ready")
    if state != "true":
        raise AssertionError(f"demo start-up failed: {page.inner_text('#message')!r}; "
                             f"model: {page.inner_text('#model-status')!r}; codec: {page.inner_text('#backend')!r}")


def search(page, query):
    """Type a query like a person (key by key) and wait for its results; return the result texts."""
    box = page.locator("#search")
    box.fill("")
    box.press_sequentially(query, delay=15)
    page.wait_for_function(
        "q => document.getElementById('list-title').textContent.includes(q)", arg=query, timeout=60_000)
    return page.locator("#notes > li .note-text").all_inner_texts()
