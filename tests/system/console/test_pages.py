"""The console's grid-and-panel screens in a real browser (headless Chromium through
Playwright; the app, Chromium and the logged-in pages are conftest.py's): the uploads as the
library's grid with a details panel, the panel on a phone (the focus kept inside it, Esc back
to its tile), and the panel's parts that cost a request loaded when opened.

Screenshots go to tests/artifacts/console/ (git-ignored).
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.browser import SETUP_MS, axe_violations, shot
from tests.support.console import confirm, unlike_jpeg

# One xdist worker runs the whole module (make test's --dist loadgroup): its Chromium and its
# served app start once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console_pages")]

def post_images(page, path: str, names: list[str], **fields: str) -> list[str]:
    """``names`` uploaded to ``path`` (/api/uploads, /api/builder/media) by the API: their ids.
    Pictures like no other (``unlike_jpeg``): a test that finds no look-alikes of one must not
    meet an earlier test's upload (fresh_jpeg's bands are alike one pair in twenty)."""
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    ids = []
    for name in names:
        answer = page.request.post(path, headers={"X-CSRF-Token": csrf}, multipart={
            "file": {"name": name, "mimeType": "image/jpeg", "buffer": unlike_jpeg(640, 480)}, **fields},
            timeout=SETUP_MS)
        assert answer.ok, answer.text()
        ids.append(answer.json()["id"])
    return ids


def focused(page) -> str:
    """The focused element's name (its aria-label, its label's text or its own text), or
    "(outside)" when nothing in the page has the focus (the browser's own toolbar has it)."""
    return page.evaluate("""() => { const e = document.activeElement;
        if (!e || e === document.body) return '(outside)';
        return e.getAttribute('aria-label') || e.labels?.[0]?.textContent.trim()
            || e.textContent.trim(); }""")


def in_panel(page) -> bool:
    return page.evaluate("() => !!document.activeElement.closest('#media-panel')")


def pictures_drawn(page, selector: str) -> None:
    page.wait_for_function(
        "s => [...document.querySelectorAll(s)].every(i => i.complete && i.naturalWidth > 0)",
        arg=selector, timeout=30_000)


def audited(page, width: int) -> None:
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (360, 740)])
def test_the_uploads_are_a_grid_of_tiles_with_a_details_panel_as_the_library(live, open_as, width, height):
    """Before: a column of cards, each with its four buttons. Now the library's pattern: tiles
    (picture, name, public or private, size) in a list box; a click opens the upload's details
    beside the grid (on a phone over the whole screen), with the larger picture, its link to open
    or copy, Edit, Delete and its versions (loaded when opened); Esc returns to its tile."""
    page = open_as("ops", width=width, height=height, audit=True)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    names = [f"up-{width}-{n}.jpg" for n in range(3)]
    ids = post_images(page, "/api/uploads", names)
    page.goto("/console/uploads")
    tiles = page.locator("#uploads li[role='option']")
    tiles.nth(2).wait_for()
    assert page.locator("#uploads .filename").all_inner_texts() == names[::-1]  # newest first
    pictures_drawn(page, "#uploads img")
    assert tiles.first.locator(".badge").inner_text() == "private"
    audited(page, width)
    shot(page, f"uploads-grid-{width}", full_page=False)
    add = page.get_by_role("button", name="Add images…")
    if width == 360:  # the upload form folded, as the library's: a whole tile on the first screen
        assert page.get_by_label("Image", exact=True).is_hidden()
        assert tiles.first.evaluate("(tile) => tile.getBoundingClientRect().bottom <= innerHeight")
        add.click()
        page.get_by_label("Image", exact=True).wait_for()
        assert add.get_attribute("aria-expanded") == "true"
        add.click()
    else:
        assert add.is_hidden() and page.get_by_label("Image", exact=True).is_visible()

    page.get_by_role("option", name=names[1]).click()
    panel = page.get_by_role("complementary", name=names[1])
    panel.wait_for()
    assert page.get_by_role("option", name=names[1]).get_attribute("aria-selected") == "true"
    box = panel.bounding_box()
    grid = page.locator("#uploads").bounding_box()
    if width == 1280:
        assert box["x"] >= grid["x"] + grid["width"]  # beside the grid
    else:
        assert (box["x"], box["width"]) == (0, width)  # the whole screen
    assert "640×480" in panel.locator(".size-line").inner_text()
    panel.get_by_role("button", name=f"Copy link of {names[1]}").click()
    panel.get_by_text("Link copied.").wait_for()
    link = page.evaluate("navigator.clipboard.readText()")
    assert page.request.get(link).status == 200
    versions = panel.get_by_role("button", name=f"Versions of {names[1]}")
    assert versions.get_attribute("aria-expanded") == "false"
    with page.expect_request(f"**/api/uploads/{ids[1]}/versions"):
        versions.click()
    panel.locator("li.version").first.wait_for()
    pictures_drawn(page, "#media-panel picture img")
    audited(page, width)
    shot(page, f"uploads-panel-{width}", full_page=False)
    page.keyboard.press("Escape")
    panel.wait_for(state="hidden")
    assert focused(page).startswith(names[1])  # back on its tile

    # By keyboard: the grid's one Tab stop, arrows, Enter opens with the focus on the title.
    page.keyboard.press("ArrowRight")
    assert focused(page).startswith(names[0])
    page.keyboard.press("Enter")
    page.get_by_role("complementary", name=names[0]).wait_for()
    assert focused(page) == names[0]
    page.get_by_role("button", name=f"Delete {names[0]}").click()
    confirm(page, "Delete")
    page.get_by_text(f"{names[0]} deleted.").wait_for()
    assert tiles.count() == 2 and page.request.get(f"/api/uploads/{ids[0]}").status == 404


@pytest.mark.parametrize("screen", ["library", "uploads"])
def test_on_a_phone_the_panel_keeps_the_focus_inside_and_esc_returns_to_its_tile(live, open_as, screen):
    """At 360 px the details cover the screen: Tab past its last control comes round to its
    first, Shift+Tab from its heading or first control to its last (before: the focus left
    the page for the browser's toolbar), and Esc closes it with the focus back on the tile."""
    page = open_as("editor", width=360, height=740, audit=True)
    folder = f"/trap-{uuid.uuid4().hex[:6]}"
    if screen == "library":
        names = [f"trap-{n}.jpg" for n in range(2)]
        post_images(page, "/api/builder/media", names, folder=folder)
        page.goto("/console/library")
        page.get_by_role("button", name="Filters…").click()
        page.get_by_label("Folder", exact=True).first.select_option(folder)
        page.get_by_text(f"2 of 2 image(s) in {folder}.").wait_for()
        grid = "#media-grid"
    else:
        names = [f"trap-{n}.jpg" for n in range(2)]
        post_images(page, "/api/uploads", names)
        page.goto("/console/uploads")
        grid = "#uploads"
    tile = page.locator(f"{grid} li[role='option']", has_text=names[0])
    tile.click()
    panel = page.get_by_role("complementary", name=names[0])
    panel.wait_for()
    assert focused(page) == names[0]  # its heading
    page.keyboard.press("Shift+Tab")  # from the heading: round to the last control
    last = focused(page)
    assert in_panel(page), last
    assert page.evaluate("""() => { const all = [...document.querySelectorAll('#media-panel *')]
        .filter((n) => n.tabIndex >= 0 && !n.disabled && n.getClientRects().length);
        return all[all.length - 1] === document.activeElement; }""")
    page.keyboard.press("Tab")  # past the last: the first, the Close button
    assert focused(page) == f"Close the details of {names[0]}"
    page.keyboard.press("Shift+Tab")
    assert focused(page) == last
    for _ in range(30):  # round and round, never out
        page.keyboard.press("Tab")
        assert in_panel(page), focused(page)
    audited(page, 360)
    shot(page, f"{screen}-phone-panel-focus", full_page=False)
    page.keyboard.press("Escape")
    panel.wait_for(state="hidden")
    assert focused(page).startswith(names[0])
    assert page.evaluate("([grid, name]) => document.activeElement === "
                         "document.querySelector(`${grid} li[data-filename='${name}']`)",
                         [grid, names[0]])
    assert not page.evaluate("() => !!document.querySelector('[inert]')")  # nothing left inert


def test_the_panel_s_parts_that_cost_a_request_load_when_opened_and_once(live, open_as):
    """Opening an image's details asks for none of its versions, pages, look-alikes or
    deliveries; each is asked when its part is opened, where used and look-alikes share one
    request for the image (before: one per click, each click asking again), and a part closed
    and opened again asks nothing more."""
    page = open_as("editor", audit=True)
    folder = f"/parts-{uuid.uuid4().hex[:6]}"
    [media_id] = post_images(page, "/api/builder/media", ["parts.jpg"], folder=folder)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url.split(live.url, 1)[-1])
            if request.resource_type == "fetch" else None)  # the script's asks, not its pictures
    page.goto("/console/library")
    page.get_by_label("Folder", exact=True).first.select_option(folder)
    page.get_by_text(f"1 of 1 image(s) in {folder}.").wait_for()
    asked.clear()
    page.get_by_role("option", name="parts.jpg").click()
    panel = page.get_by_role("complementary", name="parts.jpg")
    panel.wait_for()
    pictures_drawn(page, "#media-panel img")

    def of_image() -> list[str]:
        return [url for url in asked if f"/api/builder/media/{media_id}" in url]

    assert of_image() == []  # the panel opened: nothing of the image asked for yet
    for name in ("Where used: parts.jpg", "Look-alikes of parts.jpg", "Deliveries of parts.jpg",
                 "Versions of parts.jpg"):
        assert panel.get_by_role("button", name=name).get_attribute("aria-expanded") == "false"

    used = panel.get_by_role("button", name="Where used: parts.jpg")
    used.click()
    panel.get_by_text("Not used on any page.").wait_for()
    assert of_image() == [f"/api/builder/media/{media_id}"]
    panel.get_by_role("button", name="Look-alikes of parts.jpg").click()
    panel.get_by_text("No look-alikes in the library.").wait_for()
    assert len(of_image()) == 1  # the same answer read again
    used.click()  # closed
    assert used.get_attribute("aria-expanded") == "false"
    assert panel.get_by_text("Not used on any page.").is_hidden()
    used.click()  # opened again: what it loaded
    panel.get_by_text("Not used on any page.").wait_for()
    assert len(of_image()) == 1

    panel.get_by_role("button", name="Deliveries of parts.jpg").click()
    panel.locator("figure.delivery-spark").wait_for()
    panel.get_by_role("button", name="Versions of parts.jpg").click()
    panel.locator("li.version").first.wait_for()
    image = f"/api/builder/media/{media_id}"
    assert sorted(of_image()) == [image, f"{image}/deliveries", f"{image}/versions"]
    audited(page, 1280)
    used.scroll_into_view_if_needed()  # the four parts open under it
    shot(page, "library-panel-sections", full_page=False)
