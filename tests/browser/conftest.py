"""Browser test harness: build the site once, serve it, drive Debian Chromium.

Fixtures
--------
site_dir      the site built once per session by build_scripts/build_site.py
base_url      "http://127.0.0.1:<port>/" serving site_dir; the port is fixed for the
              session (IndexedDB is per origin): env CLARK_HASH_TEST_PORT, default
              8765, or the next free one when another session holds it
playwright_   the Playwright (sync) instance
browser       one headless Chromium for the session (fresh, isolated contexts)
context/page  a new context and page per test
launch_persistent(user_data_dir) -> BrowserContext on a profile folder that
              survives closing the browser (persistence and crash tests)
harness(page, numpy) -> page on static/harness.html with window.rt, a booted
              ClarkHashRuntime (numpy loaded only when asked and supplied)
numpy_wheel   the CLARK_HASH_PYODIDE_NUMPY value, or None

The numpy backend runs only when CLARK_HASH_PYODIDE_NUMPY names a Pyodide
numpy wheel (or folder / base URL); otherwise those tests skip and the
terminal summary says so.
"""

from __future__ import annotations

import functools
import http.server
import os
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_helpers import SiteHandler, bind_session_port, boot_harness  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CLARK_HASH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PORT = int(os.environ.get("CLARK_HASH_TEST_PORT", "8765"))
NUMPY_ENV = "CLARK_HASH_PYODIDE_NUMPY"

_summary = {"numpy": None}


def numpy_spec():
    return os.environ.get(NUMPY_ENV, "").strip() or None


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _summary["numpy"] is None:
        return
    tr = terminalreporter
    if _summary["numpy"]:
        tr.write_line(f"BROWSER NUMPY BACKEND: TESTED ({NUMPY_ENV}={numpy_spec()})")
    else:
        tr.write_line(f"BROWSER NUMPY BACKEND: SKIPPED (set {NUMPY_ENV}=<Pyodide numpy wheel, "
                      f"distribution folder or base URL> to run it); numpy-free python backend tested")


# -- site and server ---------------------------------------------------------------
@pytest.fixture(scope="session")
def numpy_wheel():
    spec = numpy_spec()
    _summary["numpy"] = bool(spec)
    if not spec:
        print(f"\nBROWSER NUMPY BACKEND: SKIPPED (set {NUMPY_ENV}=...): numpy-free backend only",
              file=sys.stderr)
    return spec


@pytest.fixture(scope="session")
def site_dir(tmp_path_factory, numpy_wheel):
    sys.path.insert(0, str(REPO / "build_scripts"))
    try:
        import build_site
    finally:
        sys.path.pop(0)
    out = tmp_path_factory.mktemp("site")
    build_site.build(out)
    return out


@pytest.fixture(scope="session")
def base_url(site_dir):
    handler = functools.partial(SiteHandler, directory=str(site_dir))
    # The port stays fixed for the whole session (IndexedDB is per origin, and the
    # persistence tests reopen the same profile); when another test session holds
    # it, the next free one of 20 is used.
    server = bind_session_port(
        lambda port: http.server.ThreadingHTTPServer(("127.0.0.1", port), handler), "site", PORT)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


# -- browser ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def playwright_():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: run build_scripts/setup.sh (apt chromium)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_):
    b = playwright_.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context()
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def launch_persistent(playwright_):
    """Open a persistent context on a profile folder; closes whatever is left open at teardown."""
    opened = []

    def launch(user_data_dir):
        ctx = playwright_.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        opened.append(ctx)
        return ctx

    yield launch
    for ctx in opened:
        try:
            ctx.close()
        except Exception:
            pass


@pytest.fixture
def harness(base_url):
    return functools.partial(boot_harness, base_url=base_url)


@pytest.fixture(scope="module", params=["python", "numpy"])
def runtime_page(request, browser, base_url, numpy_wheel):
    """A page with a booted runtime: numpy-free for "python", numpy loaded for "numpy"."""
    backend = request.param
    if backend == "numpy" and not numpy_wheel:
        pytest.skip("BROWSER NUMPY BACKEND: SKIPPED (set CLARK_HASH_PYODIDE_NUMPY=<Pyodide numpy "
                    "wheel, distribution folder or base URL>)")
    ctx = browser.new_context()
    page = ctx.new_page()
    info = boot_harness(page, base_url, numpy=(backend == "numpy"))
    assert info["backend"] == backend, info
    print(f"\nbrowser runtime: backend={info['backend']} Pyodide {info['pyodideVersion']} "
          f"Python {info['pythonVersion']} boot {info['bootMs']:.0f} ms")
    yield backend, page
    ctx.close()
