"""The console's browser, for tests and benchmarks: Debian's headless Chromium (`make chromium`;
Playwright's own download is not reachable here) driven by Playwright with the flags that keep it
quiet on a test machine (no sandbox in a container, no GPU, no calls home), screenshots under
tests/artifacts/console/, and the axe-core audit (tests/support/vendor)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# Debian's old headless shell (chromium-headless-shell), the build Playwright itself runs for
# headless Chromium: the full browser's headless mode took a quarter more CPU for the same 82
# browser tests (147 against 118 CPU-s, 177 against 153 s on 3 processes); the same Blink
# renders and audits the pages, and every browser test passes on both. The full browser serves
# where the shell could not be installed (apt-get, in make chromium, says why).
CHROMIUM = next((path for path in (Path("/usr/bin/chromium-headless-shell"), Path("/usr/bin/chromium"))
                 if path.exists()), Path("/usr/bin/chromium-headless-shell"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
AXE = Path(__file__).resolve().parent / "vendor"
AGENT = "avenue-console-tests"  # sessions are bound to the browser: one agent for page and API calls

#: The wait of what sets a test up (a navigation, a login, an upload of its images): 30 s.
SETUP_MS = 30_000


def launch(playwright):
    """Chromium, headless, from Debian's package."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched Chromium (a Playwright ``Browser``), closed after; the test fails, with how
    to install it, when Chromium is missing."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run `make chromium` (apt-get install -y chromium-headless-shell)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def served(app) -> Iterator[Any]:
    """``app`` on a free loopback port (werkzeug's threaded server) while in the ``with``, its
    address as ``app.url``; then the server stopped, the app's database dropped, its client closed.

    While it serves, AVIF is encoded at the encoder's speed 10 instead of the house's 6
    (``formats.AVIF_SPEED``): the pages' pictures are AVIF renditions made on their first
    request, and at speed 6 those encodes were a tenth of a browser module's CPU (test_library:
    5.5 of 55 CPU-seconds) for pixels no browser test looks at (a 320 px picture: 37 against
    2 ms). The pages still get AVIF renditions of the same sizes; bench/avif.py measures the
    house's settings."""
    from unittest import mock

    from werkzeug.serving import make_server

    from avenue.embedded import free_port
    from avenue.media import formats

    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    app.url = f"http://127.0.0.1:{server.server_port}"
    try:
        with mock.patch.object(formats, "AVIF_SPEED", 10):
            yield app
    finally:
        server.shutdown()
        client = app.extensions["avenue.mongo"].client
        client.drop_database(app.extensions["avenue.mongo"].db.name)
        client.close()


def new_context(browser, base_url: str, width: int = 1280, height: int = 900, *, audit: bool = False):
    """A fresh browser profile on ``base_url`` (no cookies), failing fast on a missing element;
    ``audit``: the page's CSP lets axe-core in (it changes nothing axe looks at)."""
    context = browser.new_context(base_url=base_url, user_agent=AGENT, bypass_csp=audit,
                                  viewport={"width": width, "height": height})
    context.set_default_timeout(10_000)
    # A navigation waits for its "load", and so for the pictures in view: renditions rendered on
    # their first request, which took over 10 s on a loaded machine once (the bulk upload test's
    # goto of the uploads screen, its other tests' images cold). Elements still fail at 10 s.
    context.set_default_navigation_timeout(SETUP_MS)
    return context


def logged_in(browser, base_url: str, email: str, password: str, width: int = 1280, height: int = 900,
              *, audit: bool = False):
    """``new_context`` logged in as ``email`` (by the API, like the login form)."""
    context = new_context(browser, base_url, width, height, audit=audit)
    # Setup, not what a test checks: 30 s, as navigations (a login answered after 10 s on a
    # machine loaded by a coverage run, twice in one run).
    answer = context.request.post("/api/auth/login", data={"email": email, "password": password},
                                  timeout=SETUP_MS)
    assert answer.ok, answer.text()
    return context


@contextmanager
def user_pages(browser, app, password: str) -> Iterator[Callable[..., Any]]:
    """``page_as(role, width=1280, height=900, *, audit=False)`` while in the ``with``: a page of
    its own profile, logged in as a new user with ``role`` on the served ``app`` (the user's
    address as ``page.email``), a script error on it failing the test; every profile closed after."""
    from tests.helpers import Auth

    contexts = []

    def page_as(role: str, width: int = 1280, height: int = 900, *, audit: bool = False):
        email, _ = Auth(app).user(role, password=password)
        context = logged_in(browser, app.url, email, password, width, height, audit=audit)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: pytest.fail(f"script error: {error}"))
        page.email = email
        return page

    try:
        yield page_as
    finally:
        for context in contexts:
            context.close()


def shot(page, name: str, *, full_page: bool = True) -> Path:
    """A screenshot (the whole page unless ``full_page`` is false), tests/artifacts/console/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def axe_violations(page) -> list[dict]:
    """The serious and critical violations axe-core (checked against its recorded digest first)
    finds on the page as it is now: rule, impact, help and the elements."""
    manifest = json.loads((AXE / "VENDOR.json").read_text())
    package = next(p for p in manifest["packages"] if p["name"] == "axe-core")
    source = (AXE / package["folder"] / "axe.min.js").read_bytes()
    assert hashlib.sha256(source).hexdigest() == package["files"]["axe.min.js"]
    page.add_script_tag(content=source.decode())
    return page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']})).violations
        .filter((v) => ['serious', 'critical'].includes(v.impact))
        .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                      nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary}`)}))""")


def hold_first(page, pattern: str) -> list:
    """Hold the first request matching ``pattern`` (a glob) until the test lets it go
    (``route.continue_()`` or ``route.fulfill``); later ones pass. Its answer then comes back
    after theirs: what a slow network or a slow query does to a screen."""
    routes: list = []

    def handle(route) -> None:
        if routes:
            route.continue_()
        else:
            routes.append(route)

    page.route(pattern, handle)
    return routes


def wait_until_asked(page, routes: list) -> None:
    """Wait until the request :func:`hold_first` holds was sent."""
    while not routes:
        page.wait_for_timeout(20)


def let_go(page, route, **answer: Any) -> None:
    """Let a request :func:`hold_first` holds go on (or answer it: ``answer`` is
    ``route.fulfill``'s arguments), and wait until the page has its whole answer and has drawn
    twice since: a late answer has been handled, drawn or dropped. (Not networkidle: pictures
    rendered on their first request can keep the network busy for seconds on a loaded machine.)"""
    with page.expect_event("requestfinished", lambda request: request == route.request):
        if answer:
            route.fulfill(**answer)
        else:
            route.continue_()
    drawn(page)


def drawn(page) -> None:
    """Wait for two animation frames: what the page's scripts do with an answer is on screen."""
    page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
