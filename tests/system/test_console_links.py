"""Upload links in the console, in headless Chromium: an editor creates a link on the uploads
screen, copies its secret (shown once), a plain HTTP client uploads through it, the list shows
the use counted, and the editor revokes it. Screenshots in tests/artifacts/console/.

The app is served as in tests/system/console/conftest.py (the browser, log-in, screenshot
and axe helpers are tests/support/browser.py's).
"""

from __future__ import annotations

import functools
import json
import urllib.request
import uuid

import pymongo
import pytest

from tests.helpers import IMAGES, make_app
from tests.support.browser import (
    axe_violations,
    hold_first,
    let_go,
    served,
    shot,
    user_pages,
    wait_until_asked,
)
from tests.support.client import multipart
from tests.support.console import confirm

# One xdist worker runs the whole module (make test's --dist loadgroup): its Chromium and its
# served app are module fixtures, started once rather than on every worker its tests reach.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console_links")]

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def live(secantus):
    db_name = f"avenue_test_{uuid.uuid4().hex[:12]}"
    with served(make_app((pymongo.MongoClient, secantus.uri), db_name)) as app:
        yield app


@pytest.fixture
def page_as(live, browser):
    """``page_as(role, width)``: a page logged in as a new user with ``role``."""
    with user_pages(browser, live, PASSWORD) as opened:
        yield functools.partial(opened, audit=True)


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
    # A link's answer shows the image's URLs, size and hash, never its folder or tags (the
    # editor's): that the link's folder is applied is tests/api/test_upload_links.py's.
    assert answer["image"]["id"] and "folder" not in answer["image"] and "tags" not in answer["image"]

    page.reload()  # the secret is not shown again; the list shows the use
    page.get_by_role("heading", name="Upload links").wait_for()
    assert page.locator("#link-created").is_hidden()
    row = page.locator("#links-table tbody tr", has_text="Acme photos")
    row.locator(".uses", has_text="1 of 2").wait_for()
    assert secret not in page.content()
    row.get_by_role("button", name="Revoke link Acme photos").click()
    assert confirm(page, "Revoke") == 'Revoke the link "Acme photos"?'
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


def test_a_late_answer_for_the_links_list_is_not_added_to_the_reload_after_a_new_link(live, page_as):
    """The list asked on load answers after the reload creating a link makes: each link shows once."""
    page = page_as("editor")
    first = hold_first(page, "**/api/upload-links?per_page=20")
    page.goto("/console/uploads")
    wait_until_asked(page, first)
    label = f"Late {uuid.uuid4().hex[:6]}"
    page.get_by_label("Uploads go to").select_option("uploads")
    page.get_by_label("Label (optional)").fill(label)
    page.get_by_role("button", name="Create link").click()
    rows = page.locator("#links-table tbody tr", has_text=label)
    rows.first.wait_for()
    let_go(page, first[0])  # sent now: its answer names the new link too
    assert rows.count() == 1
