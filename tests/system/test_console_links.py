"""Upload links in the console, in headless Chromium: an editor creates a link on the uploads
screen, copies its secret (shown once), a plain HTTP client uploads through it, the list shows
the use counted, and the editor revokes it. Screenshots in tests/artifacts/console/.

The app is served as in tests/system/test_console_browser.py (its fixtures are that module's;
test modules never import each other, so the few lines that start the server are here too).
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.request
import uuid
from pathlib import Path

import pymongo
import pytest

from avenue.embedded import free_port
from tests.helpers import IMAGES, Auth, make_app
from tests.support.client import multipart

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
AXE = Path(__file__).resolve().parents[1] / "support" / "vendor"
AGENT = "avenue-console-tests"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def live(secantus):
    from werkzeug.serving import make_server

    db_name = f"avenue_test_{uuid.uuid4().hex[:12]}"
    app = make_app((pymongo.MongoClient, secantus.uri), db_name)
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.url = f"http://127.0.0.1:{server.server_port}"
    yield app
    server.shutdown()
    client = app.extensions["avenue.mongo"].client
    client.drop_database(db_name)
    client.close()


@pytest.fixture
def page_as(live):
    """``page_as(role, width)``: a page logged in as a new user with ``role``."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run `make chromium` (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)

        def page_as(role: str, width: int = 1280):
            email, _ = Auth(live).user(role, password=PASSWORD)
            context = browser.new_context(base_url=live.url, user_agent=AGENT, bypass_csp=True,
                                          viewport={"width": width, "height": 900})
            context.set_default_timeout(10_000)
            assert context.request.post("/api/auth/login", data={"email": email, "password": PASSWORD}).ok
            page = context.new_page()
            page.on("pageerror", lambda error: pytest.fail(f"script error: {error}"))
            return page

        yield page_as
        browser.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def axe_violations(page) -> list[dict]:
    """Serious and critical axe-core violations (the vendored copy, its digest checked first)."""
    manifest = json.loads((AXE / "VENDOR.json").read_text())
    package = next(p for p in manifest["packages"] if p["name"] == "axe-core")
    source = (AXE / package["folder"] / "axe.min.js").read_bytes()
    assert hashlib.sha256(source).hexdigest() == package["files"]["axe.min.js"]
    page.add_script_tag(content=source.decode())
    return page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']})).violations
        .filter((v) => ['serious', 'critical'].includes(v.impact))
        .map((v) => ({id: v.id, nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary}`)}))""")


def upload_through(url: str, secret: str, name: str) -> tuple[int, dict]:
    """A plain HTTP client (no browser, no cookie, no account) posting a file with the secret."""
    body, content_type = multipart({}, "file", name, (IMAGES / "good" / name).read_bytes())
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": content_type, "Authorization": f"UploadLink {secret}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_an_editor_creates_a_link_a_client_uploads_through_it_and_the_editor_revokes_it(live, page_as):
    page = page_as("editor")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    page.goto("/console/uploads")
    page.get_by_role("heading", name="Upload links").wait_for()
    page.get_by_label("Uploads go to").select_option("builder")
    page.get_by_label("Library folder").fill("/suppliers")
    page.get_by_label("Tags").fill("acme, spring")
    page.get_by_label("Files it takes").fill("2")
    page.get_by_label("Label (optional)").fill("Acme photos")
    page.get_by_role("button", name="Create link").click()
    secret_box = page.get_by_label("Secret", exact=True)
    secret_box.wait_for()
    page.get_by_role("button", name="Copy secret").click()
    page.get_by_text("Secret copied.").wait_for()
    secret = page.evaluate("navigator.clipboard.readText()")
    assert secret.startswith("avl_") and secret == secret_box.input_value()
    row = page.locator("#links-table tbody tr", has_text="Acme photos")
    assert row.locator(".uses").inner_text() == "0 of 2"
    shot(page, "upload-link-created")

    upload_url = page.locator("#link-upload-url").inner_text()
    status, answer = upload_through(upload_url, secret, "progressive.jpg")
    assert status == 201, answer
    assert answer["image"]["folder"] == "/suppliers"

    page.reload()  # the secret is not shown again; the list shows the use
    page.get_by_role("heading", name="Upload links").wait_for()
    assert page.locator("#link-created").is_hidden()
    row = page.locator("#links-table tbody tr", has_text="Acme photos")
    row.locator(".uses", has_text="1 of 2").wait_for()
    assert secret not in page.content()
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke link Acme photos").click()
    page.get_by_text('Link "Acme photos" revoked.').wait_for()
    revoked = page.locator("#links-table tbody tr", has_text="Acme photos")
    revoked.locator(".badge", has_text="revoked").wait_for()
    shot(page, "upload-link-revoked")
    status, answer = upload_through(upload_url, secret, "alpha.png")
    assert status == 410 and answer["error"]["code"] == "upload_link_revoked"


@pytest.mark.parametrize("width", [1280, 360])
def test_the_upload_links_section_passes_the_accessibility_audit(live, page_as, width):
    page = page_as("admin", width)
    page.goto("/console/uploads")
    page.get_by_label("Uploads go to").select_option("product")
    page.get_by_label("Product SKU").wait_for()
    page.get_by_label("Uploads go to").select_option("uploads")
    page.get_by_role("button", name="Create link").click()
    page.get_by_label("Secret", exact=True).wait_for()
    page.locator("#links-table tbody tr .badge").first.wait_for()
    assert axe_violations(page) == []
    wide = page.evaluate("""(width) => [...document.querySelectorAll('body *')]
        .filter((node) => node.getBoundingClientRect().right > width + 1)
        .map((node) => `${node.tagName} ${node.id} ${node.className}`).slice(0, 12)""", width)
    assert page.evaluate("document.documentElement.scrollWidth") <= width, wide
    shot(page, f"upload-links-{width}")


def test_an_ops_user_sees_no_upload_links_section(live, page_as):
    page = page_as("ops")
    page.goto("/console/uploads")
    page.get_by_role("heading", name="Your uploads").wait_for()
    assert page.get_by_role("heading", name="Upload links").count() == 0
