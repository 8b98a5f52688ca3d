"""One library or product image in the console, in a real browser: the editor (crops, turns,
focal points, named crops), versions compared and restored, names and alt text, what it was
delivered, its variants rendered again, its focal point and its file replaced from the
library's panel, an SVG's thumbnail, the client hints recipe."""

from __future__ import annotations

import io
import json
import re
import time
import uuid

import pytest
from bson import ObjectId

from tests.helpers import IMAGES
from tests.support.browser import axe_violations, shot
from tests.support.console import (
    database,
    flush_deliveries,
    focused_name,
    fresh_jpeg,
    loaded_pictures,
    open_panel,
    percent,
    seed_library,
    tab_to,
)
from tests.support.records import images
from tests.support.stored import stored

# One xdist worker runs the whole module (make test's --dist loadgroup): its Chromium and its
# served app (tests/system/console/conftest.py) start once; the other console modules run beside it.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console_images")]


# --- the image editor (js/editor.js) over the editing API (docs/api.md, "Editing") -------------

def open_editor(page, card, filename: str):
    """Click the card's Edit button; the dialog once its picture is drawn."""
    card.get_by_role("button", name=f"Edit {filename}").click()
    return drawn_editor(page, filename)


def drawn_editor(page, filename: str):
    dialog = page.get_by_role("dialog", name=f"Edit {filename}")
    dialog.locator(".editor-stage[data-drawn]").wait_for()
    return dialog


def served_size(page, url: str) -> tuple[int, int]:
    """The pixel size of the picture ``url`` serves."""
    from PIL import Image

    answer = page.request.get(url)
    assert answer.ok, url
    with Image.open(io.BytesIO(answer.body())) as picture:
        return picture.size


def card_shows_version(page, media_id: str, version) -> str:
    """Wait until the card's picture is the rendition of ``version``; its URL."""
    page.wait_for_function(
        "([id, v]) => { const img = document.querySelector(`li[data-id='${id}'] img`);"
        " return img && img.complete && img.currentSrc.includes(`~${v}/`); }",
        arg=[media_id, version], timeout=30_000)
    return page.locator(f"li[data-id='{media_id}'] img").evaluate("img => img.currentSrc")


def pixel_ratio(box: dict, size: tuple[int, int]) -> float:
    return box["width"] * size[0] / (box["height"] * size[1])


def turned_corners(edits: dict) -> list[tuple[float, float]]:
    """Where the original's corners land after the edits' turn then flip (to compare edits that
    mean the same picture: a quarter turn and a flip can be written two ways)."""
    points = []
    for x, y in ((0, 0), (1, 0), (0, 1)):
        for _ in range(edits["rotate"] // 90):
            x, y = 1 - y, x
        if edits["flip_horizontal"]:
            x = 1 - x
        if edits["flip_vertical"]:
            y = 1 - y
        points.append((x, y))
    return points


# The page's reads of one path answer half a second late; `window.lateReads` counts those not
# yet answered. (A route handler would hold the test's own thread: Playwright's sync API runs
# it there.)
LATE_READS = """(path) => {
  const fetchNow = window.fetch;
  window.lateReads = 0;
  window.fetch = async (input, init = {}) => {
    const url = new URL(typeof input === 'string' ? input : input.url, location.href);
    if (url.pathname !== path || (init.method || 'GET') !== 'GET') return fetchNow(input, init);
    window.lateReads += 1;
    try {
      const answer = await fetchNow(input, init);
      await new Promise((done) => setTimeout(done, 500));
      return answer;
    } finally {
      window.lateReads -= 1;
    }
  };
}"""


def library_card(page, folder: str, name: str):
    """A fresh 1024×768 picture uploaded to the library as ``name``: its id and its details
    panel (opened by a click on its tile)."""
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    answer = page.request.post("/api/builder/media", headers={"X-CSRF-Token": csrf}, multipart={
        "file": {"name": name, "mimeType": "image/jpeg", "buffer": fresh_jpeg()}, "folder": folder})
    assert answer.ok, answer.text()
    media_id = answer.json()["id"]
    page.goto("/console/library")
    page.locator(f"li[data-id='{media_id}']").wait_for()
    return media_id, open_panel(page, media_id)


def test_an_editor_crops_to_a_fixed_ratio_and_saves_by_keyboard_only(live, open_as):
    page = open_as("editor")
    media_id, card = library_card(page, "/edit-keys", "keys.jpg")
    before = page.request.get(f"/api/builder/media/{media_id}").json()
    page.keyboard.press("Escape")  # the panel closed, the focus back on its tile
    page.locator("#media-panel").wait_for(state="hidden")
    assert focused_name(page).startswith("keys.jpg")
    page.keyboard.press("Enter")  # opened again by keyboard, its title focused
    page.locator("#media-panel .panel-title", has_text="keys.jpg").wait_for()
    tab_to(page, "Edit keys.jpg")
    page.keyboard.press("Enter")
    dialog = drawn_editor(page, "keys.jpg")
    # Esc closes it and changes nothing.
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    assert page.request.get(f"/api/builder/media/{media_id}").json()["version"] == before["version"]
    card.get_by_role("button", name="Edit keys.jpg").focus()
    page.keyboard.press("Enter")
    dialog = drawn_editor(page, "keys.jpg")
    assert focused_name(page).startswith("Crop:")  # the box has the focus first
    # Focus stays in the dialog however far one tabs.
    for _ in range(30):
        page.keyboard.press("Tab")
        assert page.evaluate("() => !!document.activeElement.closest('dialog')"), focused_name(page)
    tab_to(page, "1:1")
    page.keyboard.press("Space")
    tab_to(page, "Crop:", back=True)
    for _ in range(20):
        page.keyboard.press("Shift+ArrowLeft")  # narrower (the height follows: still square)
    for _ in range(5):
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowDown")
    tab_to(page, "Save")
    page.keyboard.press("Enter")
    dialog.wait_for(state="detached", timeout=30_000)
    edited = page.request.get(f"/api/builder/media/{media_id}").json()
    assert edited["version"] != before["version"] and edited["url"] != before["url"]
    crop = edited["edits"]["crop"]
    assert pixel_ratio(crop, (1024, 768)) == pytest.approx(1, abs=0.01)
    # 1:1 is 768 px of 1024 wide, centred (x 0.125), then five steps right and down.
    assert (crop["x"], crop["y"]) == (pytest.approx(0.175, abs=0.002), pytest.approx(0.05, abs=0.002))
    width, height = served_size(page, card_shows_version(page, media_id, edited["version"]))
    assert width / height == pytest.approx(1, abs=0.02)


def test_an_editor_crops_a_product_photo_to_16_9_and_turns_and_mirrors_another(live, open_as):
    page = open_as("admin")
    sku = f"EDIT-{uuid.uuid4().hex[:4]}"
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    assert page.request.post("/api/shop/products", headers={"X-CSRF-Token": csrf},
                             data={"sku": sku, "name": "Edited", "price": 1}).ok
    for name, size in (("front.jpg", (1024, 768)), ("side.jpg", (640, 480))):
        photo = {"name": name, "mimeType": "image/jpeg", "buffer": fresh_jpeg(*size)}
        assert page.request.post(f"/api/shop/products/{sku}/images", headers={"X-CSRF-Token": csrf},
                                 multipart={"images": photo}).ok
    page.goto(f"/console/products/{sku}")
    first, second = page.locator("#photos .photo").nth(0), page.locator("#photos .photo").nth(1)
    dialog = open_editor(page, first, "front.jpg")
    dialog.get_by_role("button", name="16:9").click()
    assert dialog.get_by_role("button", name="16:9").get_attribute("aria-pressed") == "true"
    # Dragged by its bottom right corner towards the middle: smaller, still 16:9.
    handle = dialog.locator(".crop-box .handle.se").bounding_box()
    page.mouse.move(handle["x"] + 5, handle["y"] + 5)
    page.mouse.down()
    page.mouse.move(handle["x"] - 150, handle["y"] - 40, steps=5)
    page.mouse.up()
    dialog.get_by_role("button", name="Save").click()
    dialog.wait_for(state="detached", timeout=30_000)
    image = next(i for i in page.request.get(f"/api/shop/products/{sku}").json()["images"]
                 if i["filename"] == "front.jpg")
    crop = image["edits"]["crop"]
    assert crop["width"] < 0.95 and pixel_ratio(crop, (1024, 768)) == pytest.approx(16 / 9, abs=0.02)
    src = card_shows_version(page, image["id"], image["version"])
    width, height = served_size(page, src)
    assert width / height == pytest.approx(16 / 9, abs=0.03)

    dialog = open_editor(page, second, "side.jpg")
    dialog.get_by_role("button", name="Rotate right").click()
    dialog.get_by_role("button", name="Flip horizontal").click()
    assert dialog.get_by_role("button", name="Flip horizontal").get_attribute("aria-pressed") == "true"
    shot(page, "editor-turned-1280", full_page=False)
    dialog.get_by_role("button", name="Save").click()
    dialog.wait_for(state="detached", timeout=30_000)
    image = next(i for i in page.request.get(f"/api/shop/products/{sku}").json()["images"]
                 if i["filename"] == "side.jpg")
    wanted = {"rotate": 90, "flip_horizontal": True, "flip_vertical": False, "crop": None}
    assert turned_corners(image["edits"]) == turned_corners(wanted) and image["edits"]["crop"] is None
    assert (image["width"], image["height"]) == (480, 640)
    assert image["source"]["width"] == 640  # the original, as it was


def test_an_editor_sets_the_focal_point_by_clicking_and_goes_back_to_the_original(live, open_as):
    page = open_as("editor")
    media_id, card = library_card(page, "/edit-focal", "focal.jpg")
    dialog = open_editor(page, card, "focal.jpg")
    dialog.get_by_role("button", name="Set focal point").click()
    box = dialog.locator("canvas").bounding_box()
    dialog.locator("canvas").click(position={"x": box["width"] * 0.25, "y": box["height"] * 0.75})
    dialog.get_by_role("button", name="Rotate left").click()  # the point turns with the picture
    dialog.get_by_role("button", name="Save").click()
    dialog.wait_for(state="detached", timeout=30_000)
    edited = page.request.get(f"/api/builder/media/{media_id}").json()
    assert edited["edits"]["rotate"] == 270
    # (0.25, 0.75) turned a quarter anticlockwise is (0.75, 0.75).
    assert edited["focal_point"]["x"] == pytest.approx(0.75, abs=0.03)
    assert edited["focal_point"]["y"] == pytest.approx(0.75, abs=0.03)
    card_shows_version(page, media_id, edited["version"])

    dialog = open_editor(page, card, "focal.jpg")
    dialog.get_by_role("button", name="Back to original").click()
    dialog.get_by_text("Back to the original picture").wait_for(timeout=30_000)
    original = page.request.get(f"/api/builder/media/{media_id}").json()
    assert original["edits"] is None and original["version"] != edited["version"]
    assert (original["width"], original["height"]) == (1024, 768)
    dialog.get_by_role("button", name="Cancel").click()
    card_shows_version(page, media_id, original["version"])


def test_a_named_hero_crop_is_served_by_name_and_a_refused_action_says_why(live, open_as):
    page = open_as("editor")
    media_id, card = library_card(page, "/edit-named", "named.jpg")
    assert page.request.get(f"/api/builder/media/{media_id}").json()["edits"] is None  # a new upload
    dialog = open_editor(page, card, "named.jpg")
    dialog.get_by_label("Crop name").fill("hero")
    dialog.get_by_role("button", name="Draw named crop", exact=True).click()
    dialog.get_by_role("button", name="3:2").click()
    dialog.get_by_role("group", name="Named crop “hero”").focus()
    page.keyboard.press("Shift+ArrowUp")  # a little smaller, still 3:2
    dialog.get_by_role("button", name="Save named crop").click()
    dialog.get_by_text("Named crop “hero” saved.").wait_for(timeout=30_000)
    edited = page.request.get(f"/api/builder/media/{media_id}").json()
    hero = edited["crops"]["hero"]
    assert pixel_ratio(hero, (edited["width"], edited["height"])) == pytest.approx(3 / 2, abs=0.01)
    spec = edited["renditions"]["src"].rsplit("/", 1)
    width, height = served_size(page, f"{spec[0]}/c_hero,w_800.webp")
    assert width == 800 and width / height == pytest.approx(3 / 2, abs=0.01)
    dialog.get_by_role("button", name="Draw named crop hero").wait_for()
    shot(page, "editor-named-crop-1280", full_page=False)

    # Deleted elsewhere meanwhile: the API's 404 is said in the dialog, nothing else changes.
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    assert page.request.delete(f"/api/builder/media/{media_id}/crops/hero",
                               headers={"X-CSRF-Token": csrf}).ok
    dialog.get_by_role("button", name="Draw named crop hero").click()
    dialog.get_by_role("button", name="Delete named crop").click()
    refusal = page.request.delete(f"/api/builder/media/{media_id}/crops/hero", headers={"X-CSRF-Token": csrf})
    assert refusal.status == 404
    dialog.get_by_role("alert").get_by_text(refusal.json()["error"]["message"]).wait_for()
    dialog.get_by_role("button", name="Draw named crop hero").wait_for(state="detached")  # listed afresh
    # A name the API would refuse is stopped before it is sent.
    dialog.get_by_role("button", name="Back to the picture").click()
    dialog.get_by_label("Crop name").fill("Hero!")
    dialog.get_by_role("button", name="Draw named crop", exact=True).click()
    dialog.get_by_role("alert").get_by_text("A crop name is a lowercase letter").wait_for()
    shot(page, "editor-error-1280", full_page=False)


def test_an_edit_the_api_refuses_is_said_in_the_dialog_and_changes_nothing(live, open_as):
    page = open_as("editor")
    media_id = seed_library(page, "/edit-refused", ["animated.gif"])["animated.gif"]
    before = page.request.get(f"/api/builder/media/{media_id}").json()
    page.goto("/console/library")
    page.locator(f"li[data-id='{media_id}']").wait_for()
    dialog = open_editor(page, open_panel(page, media_id), "animated.gif")
    dialog.get_by_role("button", name="Rotate right").click()
    dialog.get_by_role("button", name="Save").click()
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    refusal = page.request.put(f"/api/builder/media/{media_id}/edits", headers={"X-CSRF-Token": csrf},
                               data={"rotate": 90})
    assert refusal.status == 400 and refusal.json()["error"]["code"] == "invalid_edits"
    dialog.get_by_role("alert").get_by_text(refusal.json()["error"]["message"]).wait_for()
    assert dialog.is_visible()  # still open, the edits still there to change or cancel
    assert page.request.get(f"/api/builder/media/{media_id}").json()["version"] == before["version"]


def test_a_private_upload_is_turned_and_given_a_focal_point_by_keyboard(live, open_as):
    page = open_as("ops")
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    answer = page.request.post("/api/uploads", headers={"X-CSRF-Token": csrf}, multipart={
        "file": {"name": "mine.jpg", "mimeType": "image/jpeg", "buffer": fresh_jpeg(640, 480)},
        "visibility": "private"})
    assert answer.ok, answer.text()
    upload_id = answer.json()["id"]
    page.goto("/console/uploads")
    page.locator(f"#uploads li[data-id='{upload_id}']").click()
    card = page.locator("#media-panel")  # its details
    dialog = open_editor(page, card, "mine.jpg")  # drawn from its signed source URL
    dialog.get_by_role("button", name="Rotate left").click()
    # The focal point by keyboard: the button focuses its marker, arrows move it.
    dialog.get_by_role("button", name="Set focal point").press("Enter")
    assert focused_name(page).startswith("Focal point: 50 % across")
    for _ in range(20):
        page.keyboard.press("ArrowLeft")
    dialog.get_by_role("button", name="Save").click()
    dialog.wait_for(state="detached", timeout=30_000)
    edited = page.request.get(f"/api/uploads/{upload_id}").json()
    assert edited["edits"]["rotate"] == 270 and (edited["width"], edited["height"]) == (480, 640)
    assert edited["focal_point"]["x"] == pytest.approx(0.3, abs=0.01)
    card_shows_version(page, upload_id, edited["version"])
    opened = card.get_by_role("link", name="Open mine.jpg").get_attribute("href")
    assert opened.split("?")[0] == live.url + edited["url"].split("?")[0]  # the new version's link


@pytest.mark.parametrize("width", [1280, 360])
def test_an_editor_compares_two_versions_with_a_slider_and_a_heat_map_and_restores_one(live, open_as, width):
    page = open_as("editor", width=width, height=900, audit=True)
    media_id, card = library_card(page, f"/versions-{width}", "versions.jpg")
    first = page.request.get(f"/api/builder/media/{media_id}").json()
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    replaced = page.request.put(f"/api/builder/media/{media_id}", headers={"X-CSRF-Token": csrf}, multipart={
        "file": {"name": "versions.jpg", "mimeType": "image/jpeg", "buffer": fresh_jpeg()}})
    assert replaced.ok, replaced.text()
    second = replaced.json()
    page.reload()
    page.locator(f"li[data-id='{media_id}']").wait_for()
    card = open_panel(page, media_id)
    card.get_by_role("button", name="Versions of versions.jpg").click()
    panel = card.get_by_role("region", name="Versions of versions.jpg")
    versions = panel.locator("li.version")
    versions.nth(1).wait_for()
    assert versions.count() == 2
    assert "current" in versions.nth(0).inner_text() and second["version"] in versions.nth(0).inner_text()
    earlier = versions.nth(1).get_attribute("data-version")
    assert "new file" in versions.nth(0).inner_text() and "kept until" in versions.nth(1).inner_text()
    panel.get_by_role("button", name=f"Compare version {earlier} with the current one").click()
    heat = panel.get_by_role("img", name=re.compile("Heat map of what changed"))
    heat.wait_for()
    page.wait_for_function("() => [...document.querySelectorAll('.versions img')].every((i) => i.complete "
                           "&& i.naturalWidth > 0)")
    assert re.search(r"\d+\.\d% of the pixels changed", panel.inner_text())
    slider = panel.get_by_label(re.compile(r"Before \(.*\) / after"))
    slider.fill("20")
    assert "inset(0px 0px 0px 20%)" in panel.locator(".compare-after").evaluate("(img) => img.style.clipPath")
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    panel.scroll_into_view_if_needed()
    shot(page, f"versions-{width}", full_page=False)
    panel.get_by_role("button", name=f"Restore version {earlier}").click()
    panel.get_by_text(f"Version {earlier} restored as the current one").wait_for()
    now = page.request.get(f"/api/builder/media/{media_id}").json()
    assert now["sha256"] == first["sha256"] and now["url"] != second["url"]
    # Listed again: the restored version current (the same id it had), the one it replaced kept.
    panel.locator(f"li.version[data-version='{now['version']}']", has_text="current").wait_for()
    assert versions.count() == 2 and now["version"] == earlier
    assert versions.nth(1).get_attribute("data-version") == second["version"]


def test_an_admin_restores_an_earlier_version_of_a_product_photo(live, open_as):
    page = open_as("admin")
    sku = f"VERS-{uuid.uuid4().hex[:4]}"
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    headers = {"X-CSRF-Token": csrf}
    assert page.request.post("/api/shop/products", headers=headers,
                             data={"sku": sku, "name": "Versions", "price": 1}).ok
    added = page.request.post(f"/api/shop/products/{sku}/images", headers=headers, multipart={
        "images": {"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": fresh_jpeg()}})
    assert added.ok, added.text()
    photo = added.json()["product"]["images"][0]
    replaced = page.request.put(f"/api/shop/products/{sku}/images/{photo['id']}", headers=headers, multipart={
        "file": {"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": fresh_jpeg()}})
    assert replaced.ok, replaced.text()
    page.goto(f"/console/products/{sku}")
    item = page.locator(f"#photos li[data-id='{photo['id']}']")
    item.locator("summary", has_text="Versions").click()
    versions = item.locator("li.version")
    versions.nth(1).wait_for()
    earlier = versions.nth(1).get_attribute("data-version")
    item.get_by_role("button", name=f"Restore version {earlier}").click()
    # A restore draws the photos again: the photo's new version is on the page.
    restored = page.locator(f"#photos li[data-id='{photo['id']}'] img[src*='~{earlier}']")
    restored.first.wait_for()
    images = page.request.get(f"/api/shop/products/{sku}").json()["images"]
    assert images[0]["id"] == photo["id"] and images[0]["sha256"] == photo["sha256"]
    assert images[0]["version"] == earlier


def test_an_admin_accepts_suggested_alt_text_edits_one_and_names_a_photo(live, open_as):
    page = open_as("admin", audit=True)
    sku = f"BOOT-{uuid.uuid4().hex[:4]}"
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    assert page.request.post("/api/shop/products", headers={"X-CSRF-Token": csrf},
                             data={"sku": sku, "name": "Chelsea boot", "price": 1}).ok
    for name in ("red-leather-boot_side.jpg", "IMG_2043.jpg"):
        # Bytes no other test sent: a stored photo keeps the file name it was first uploaded as.
        photo = {"name": name, "mimeType": "image/jpeg", "buffer": fresh_jpeg(640, 480)}
        assert page.request.post(f"/api/shop/products/{sku}/images", headers={"X-CSRF-Token": csrf},
                                 multipart={"images": photo}).ok
    listed = page.request.get(f"/api/shop/products/{sku}/alt-text").json()["items"]
    suggested = [item["suggestions"] for item in listed]
    page.goto(f"/console/products/{sku}")
    first = page.get_by_label("Alt text for photo 1, red-leather-boot_side.jpg")
    second = page.get_by_label("Alt text for photo 2, IMG_2043.jpg")
    first.wait_for()
    assert first.input_value() == suggested[0][0]
    assert first.input_value().startswith("Chelsea boot: red leather")
    assert second.input_value() == suggested[1][0]
    page.get_by_label("Suggestions for IMG_2043.jpg").select_option(suggested[1][1])
    assert second.input_value() == suggested[1][1] == "Chelsea boot, gallery photo 2"
    first.fill("A red leather Chelsea boot, from the side")
    loaded_pictures(page, "#alt-list img")
    page.wait_for_load_state("networkidle")
    assert axe_violations(page) == []
    shot(page, "product-missing-alt")

    # The product read again after the save answers late: the page says "saved" only once it
    # has drawn the photos again, so a name typed next is not drawn over.
    page.evaluate(LATE_READS, f"/api/shop/products/{sku}")
    page.get_by_role("button", name="Save all alt text").click()
    page.get_by_text("Saved the alt text of 2 photo(s); 0 still without.").wait_for()
    page.get_by_text("Every photo has alt text.").wait_for()
    assert page.evaluate("window.lateReads") == 0
    stored = page.request.get(f"/api/shop/products/{sku}").json()["images"]
    assert [image.get("alt") for image in stored] == ["A red leather Chelsea boot, from the side",
                                                      "Chelsea boot, gallery photo 2"]

    page.get_by_label("Name in URL for red-leather-boot_side.jpg").fill("Chelsea Boot, side!")
    page.get_by_role("button", name="Save the name of red-leather-boot_side.jpg").click()
    page.get_by_text("red-leather-boot_side.jpg is now named chelsea-boot-side.").wait_for(state="attached")
    href = page.get_by_role("link", name="chelsea-boot-side.jpg").get_attribute("href")
    assert href.endswith("/name/chelsea-boot-side.jpg") and page.request.get(href).status == 200
    page.get_by_label("Name in URL for IMG_2043.jpg").fill("../etc/passwd")
    page.get_by_role("button", name="Save the name of IMG_2043.jpg").click()
    page.get_by_text("IMG_2043.jpg was not named: name holds a path character").wait_for()
    assert "name" not in page.request.get(f"/api/shop/products/{sku}").json()["images"][1]
    shot(page, "product-named-photo")


def test_an_editor_names_a_library_image_and_its_former_name_redirects(live, open_as):
    page = open_as("editor")
    media_id, card = library_card(page, "/named", "IMG_0001.jpg")
    card.get_by_label("Name in URL").fill("Summer Hero, 2026")
    card.get_by_role("button", name="Save name of IMG_0001.jpg").click()
    card.get_by_text("Named summer-hero-2026: its other names redirect here.").wait_for()
    first = card.get_by_role("link", name="summer-hero-2026.jpg").get_attribute("href")
    assert page.request.get(first).status == 200
    card.get_by_label("Name in URL").fill("Winter hero")
    card.get_by_role("button", name="Save name of IMG_0001.jpg").click()
    card.get_by_text("Named winter-hero: its other names redirect here.").wait_for()
    second = card.get_by_role("link", name="winter-hero.jpg").get_attribute("href")
    moved = page.request.get(first, max_redirects=0)
    assert moved.status == 301 and moved.headers["location"] == second
    card.get_by_label("Name in URL").fill("\u0440\u0430ge")  # Cyrillic look-alikes
    card.get_by_role("button", name="Save name of IMG_0001.jpg").click()
    card.get_by_text("a character with no ASCII spelling").wait_for()
    assert page.request.get(f"/api/builder/media/{media_id}").json()["name"] == "winter-hero"
    shot(page, "library-named-image")


def test_an_editor_gives_a_page_s_images_their_alt_text_from_the_library(live, open_as):
    page = open_as("editor", width=1280, audit=True)
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    stored = page.request.post("/api/builder/media", headers={"X-CSRF-Token": csrf}, multipart={
        "file": {"name": "shoe-rack.jpg", "mimeType": "image/jpeg", "buffer": fresh_jpeg()}})
    assert stored.ok, stored.text()
    image_id = stored.json()["id"]
    slug = f"hall-{uuid.uuid4().hex[:6]}"
    written = page.request.put(f"/api/builder/pages/{slug}", headers={"X-CSRF-Token": csrf},
                               data={"title": "Hallway", "blocks": [{"type": "image", "media_id": image_id}]})
    assert written.ok, written.text()
    page.goto("/console/library")
    page.get_by_label("Page (its slug)").fill("no-such-page")
    page.get_by_role("button", name="Show them").click()
    page.locator("#page-alt-status", has_text="No page").wait_for()  # the API's 404, said
    page.get_by_label("Page (its slug)").fill(slug)
    page.get_by_role("button", name="Show them").click()
    box = page.locator("#page-alt-list").get_by_label("Alt text for shoe-rack.jpg")  # not its card's
    box.wait_for()
    assert box.input_value().startswith("Shoe rack")  # the first suggestion, ready to accept
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)
    box.fill("A shoe rack in the hallway")
    page.get_by_role("button", name="Save all alt text").click()
    page.locator("#page-alt-status", has_text="Saved the alt text of 1 image(s); 0 still without.").wait_for()
    assert page.locator("#page-alt-none").is_visible()
    assert page.request.get(f"/api/builder/media/{image_id}").json()["alt"] == "A shoe rack in the hallway"
    shot(page, "library-page-alt")


def test_an_admin_re_renders_stale_variants_from_the_ops_dashboard(live, open_as):
    page = open_as("admin", width=1280, audit=True)
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    stored = page.request.post("/api/builder/media", headers={"X-CSRF-Token": csrf}, multipart={
        "file": {"name": "stale.jpg", "mimeType": "image/jpeg", "buffer": fresh_jpeg()}})
    assert stored.ok, stored.text()
    records = images(database(live), "builder_media")
    image_id = ObjectId(stored.json()["id"])
    deadline = time.monotonic() + 60  # its variants are rendered after the answer
    while not (records.find_one({"_id": image_id})["metadata"]["variants"]["thumb"]["webp"].get("recipe")):
        assert time.monotonic() < deadline, "the thumb was never rendered"
        time.sleep(0.2)
    old_thumb = records.find_one({"_id": image_id})["metadata"]["variants"]["thumb"]["webp"]["id"]
    # As if the thumb had been made with other settings: its recipe is not today's.
    records.update_one({"_id": image_id}, {"$set": {"metadata.variants.thumb.webp.recipe": "older"}})
    page.goto("/console/ops")
    stale = page.locator("#rerender-stale", has_text="stale variants")
    stale.wait_for()
    assert int(re.match(r"(\d+) stale variants", stale.inner_text()).group(1)) >= 1
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)
    page.get_by_role("button", name="Re-render, half a core, 500 images at most").click()
    done = page.locator("#rerender-run", has_text="Last run")
    done.wait_for(timeout=60_000)
    assert int(re.search(r"(\d+) variants of", done.inner_text()).group(1)) >= 1
    thumb = records.find_one({"_id": image_id})["metadata"]["variants"]["thumb"]["webp"]
    assert thumb["recipe"] != "older" and thumb["id"] != old_thumb  # a new file, switched in
    shot(page, "ops-rerender", full_page=False)
    ops = open_as("ops")
    ops.goto("/console/ops")
    ops.locator("#rerender-stale", has_text="stale").wait_for()
    assert ops.get_by_role("button", name=re.compile("Re-render")).count() == 0  # admins only


# --- what an image was delivered: the ops dashboard's rows, the library card's chart --------

def test_an_admin_goes_from_a_delivery_row_to_the_image_s_details_in_the_library(live, open_as):
    """The ops dashboard's rows and lists link each library image's details panel for those who
    may open the library (ops may not: no link), named for screen readers with the file name."""
    import io

    from PIL import Image as PILImage

    from avenue.media import Buckets

    def unique_png() -> bytes:
        out = io.BytesIO()
        PILImage.new("RGB", (64, 48), tuple(uuid.uuid4().bytes[:3])).save(out, "PNG")
        return out.getvalue()

    name = f"linked-{uuid.uuid4().hex[:6]}.png"
    served = stored(database(live), Buckets.BUILDER, unique_png(), filename=name)
    idle = f"idle-{uuid.uuid4().hex[:6]}.png"
    stored(database(live), Buckets.BUILDER, unique_png(), filename=idle)
    page = open_as("admin", audit=True)
    for _ in range(80):  # more than any other image of this module: on the most-served list
        assert page.request.get(f"/media/builder/{served['_id']}").ok
    flush_deliveries(live)
    page.goto("/console/ops")
    row = page.locator("#delivery-top tbody tr", has=page.locator(f"button[title='builder/{served['_id']}']"))
    link = row.get_by_role("link", name=f"Details of {name}", exact=True)
    link.wait_for()
    assert link.evaluate("(a) => a.firstChild.textContent") == "Details"  # the rest is for screen readers
    never = page.locator("#delivery-never li", has_text=idle)
    never.get_by_role("link", name=f"Details of {idle}", exact=True).wait_for()
    page.wait_for_load_state("networkidle")
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)
    link.click()
    page.wait_for_url(f"**/console/library?open={served['_id']}")
    panel = page.get_by_role("complementary", name=name)
    panel.wait_for()
    assert panel.get_by_role("button", name=f"Deliveries of {name}").is_visible()
    ops = open_as("ops")
    ops.goto("/console/ops")
    ops.locator("#delivery-top tbody tr").first.wait_for()
    assert ops.locator("#delivery-top a.details-link, #delivery-never a.details-link").count() == 0


def test_a_library_card_charts_its_images_answers_per_day_with_the_numbers_as_text(live, open_as):
    import io

    from PIL import Image as PILImage

    from avenue.media import Buckets

    out = io.BytesIO()  # bytes of its own: a fixture's would dedupe to an image other tests served
    PILImage.new("RGB", (64, 48), tuple(uuid.uuid4().bytes[:3])).save(out, "PNG")
    name = f"charted-{uuid.uuid4().hex[:6]}.png"
    doc = stored(database(live), Buckets.BUILDER, out.getvalue(), filename=name)
    page = open_as("editor")
    for _ in range(7):
        assert page.request.get(f"/media/builder/{doc['_id']}").ok
    flush_deliveries(live)
    page.goto("/console/library")  # newest first: this image leads the first page
    page.locator(".media-card", has_text=name).click()
    card = page.locator("#media-panel")  # its details
    card.get_by_role("button", name=f"Deliveries of {name}").click()
    chart = card.locator("figure.delivery-spark")
    chart.wait_for()
    assert chart.get_attribute("data-days") == "30"
    # Thirty bars, only today's drawn; hidden from screen readers, whose text is the caption.
    assert chart.locator("svg[aria-hidden='true'] rect").count() == 30
    assert chart.locator("rect[height='0.0']").count() == 29
    caption = chart.locator("figcaption").inner_text()
    assert caption.startswith("7 answers (") and "in the last 30 days" in caption and "last served" in caption
    chart.locator("summary", has_text="Answers per day").click()
    today = chart.locator("tbody tr").last
    assert today.locator("td").first.inner_text() == "7"
    assert chart.get_by_role("table", name=f"Answers per day for {name}").is_visible()
    shot(page, "library-card-deliveries")


# --- one library image: its focal point and its file replaced, an SVG's thumbnail, the client
# hints recipe -----------------------------------------------------------------------------

def focal_keys(start: dict, end: dict) -> list[str]:
    """The arrow keys that move a focal marker from ``start`` to ``end`` (a hundredth a press,
    a tenth with Shift)."""
    keys = []
    for axis, (less, more) in (("x", ("ArrowLeft", "ArrowRight")), ("y", ("ArrowUp", "ArrowDown"))):
        steps = round((end[axis] - start[axis]) * 100)
        key = more if steps > 0 else less
        keys += [f"Shift+{key}"] * (abs(steps) // 10) + [key] * (abs(steps) % 10)
    return keys


def test_an_editor_sets_the_focal_point_and_replaces_a_file_in_the_library(live, open_as):
    page = open_as("editor")
    page.goto("/console/library")
    page.get_by_label("Image", exact=True).set_input_files(str(IMAGES / "good" / "panorama.jpg"))
    page.get_by_role("button", name="Upload", exact=True).click()
    page.locator("#upload-list .upload-status", has_text="uploaded").wait_for()
    card = page.locator(".media-card").first
    # "uploaded" shows before the list is read again: until then the first tile is an older one
    # (a full run once opened that one's panel and waited for panorama.jpg's marker in vain).
    card.locator(".filename", has_text="panorama.jpg").wait_for()
    media_id = card.get_attribute("data-id")
    first = page.request.get(f"/api/builder/media/{media_id}").json()
    loaded_pictures(page, ".media-card img")  # its first render done: not racing the focal point's
    panel = open_panel(page, media_id)
    loaded_pictures(page, "#media-panel img")
    # By keyboard on the larger picture (the numbers are no longer typed): the marker starts at
    # the point found at upload; arrows move it a hundredth (Shift: a tenth), Enter sets it. The
    # crops are cut again around it and the picture's URLs change.
    start = first["focal_point"]
    marker = panel.get_by_role("group", name=re.compile(
        f"Focal point of panorama.jpg: {percent(start['x'])} % across, {percent(start['y'])} % down"))
    marker.focus()
    for key in focal_keys(start, {"x": 0.1, "y": 0.8}):
        page.keyboard.press(key)
    panel.get_by_role("group", name=re.compile("10 % across, 80 % down")).wait_for()
    page.keyboard.press("Enter")
    # Setting it renders the crops again and stores a new version: on the embedded database
    # under a loaded machine that once took longer than the default 10 s, so wait longer.
    panel.get_by_text("Focal point set").wait_for(timeout=30_000)
    typed = page.request.get(f"/api/builder/media/{media_id}").json()
    assert typed["focal_point"] == {"x": 0.1, "y": 0.8} and typed["version"] != first["version"]
    # The card shows the new version's rendition (its URLs name the version).
    page.wait_for_function(
        "([id, v]) => document.querySelector(`li[data-id='${id}'] img`).currentSrc.includes(`~${v}/w_`)",
        arg=[media_id, typed["version"]])
    # Clicked on the panel's picture, near its right edge, once its new version is drawn. The set
    # stores a version as the keyboard's did: it may take as long (a full run once waited 10 s in vain).
    loaded_pictures(page, "#media-panel img")
    box = panel.locator("img").bounding_box()
    panel.locator("img").click(position={"x": box["width"] * 0.9, "y": box["height"] / 2})
    panel.get_by_text(re.compile(r"Focal point set: the crops now keep \(0\.[789]")).wait_for(timeout=30_000)
    page.wait_for_function(
        "() => Number(document.querySelector('#media-panel .focal-marker').dataset.x) > 0.7")
    clicked = page.request.get(f"/api/builder/media/{media_id}").json()
    assert clicked["focal_point"]["x"] > 0.7 and clicked["version"] != typed["version"]
    # Replaced: same id, new bytes, the card shows them; the old URL redirects.
    panel.get_by_label("Replace file").set_input_files(str(IMAGES / "good" / "grayscale.jpg"))
    panel.get_by_role("button", name="Replace the file of panorama.jpg").click()
    panel.get_by_text("Replaced: pages using it show the new image").wait_for()
    replaced = page.request.get(f"/api/builder/media/{media_id}").json()
    assert replaced["id"] == media_id and replaced["filename"] == "grayscale.jpg"
    assert replaced["sha256"] != first["sha256"]
    card.locator(".filename", has_text="grayscale.jpg").wait_for()  # the tile too
    panel.locator(".panel-title", has_text="grayscale.jpg").wait_for()
    assert page.request.get(first["url"], max_redirects=0).status == 308
    shot(page, "library-focal-replace")


def test_an_editor_uploads_an_svg_logo_and_the_library_shows_its_thumbnail(live, open_as):
    page = open_as("editor")
    page.goto("/console/library")
    assert ".svg" in page.get_by_label("Image", exact=True).get_attribute("accept")
    colour = f"#{uuid.uuid4().hex[:6]}"  # bytes no other test stores
    logo = ('<svg xmlns="http://www.w3.org/2000/svg" width="240" height="120">'
            f'<rect width="240" height="120" fill="{colour}"/><script>alert(1)</script></svg>').encode()
    page.get_by_label("Image", exact=True).set_input_files(
        {"name": "logo.svg", "mimeType": "image/svg+xml", "buffer": logo})
    page.get_by_role("button", name="Upload", exact=True).click()
    page.locator("#upload-list .upload-status", has_text="uploaded").wait_for()
    card = page.locator(".media-card").first
    card.locator(".filename", has_text="logo.svg").wait_for()
    [shown] = loaded_pictures(page, f"li[data-id='{card.get_attribute('data-id')}'] img")
    assert "/w_" in shown["src"] and ".svg" not in shown["src"] and shown["drawn"] > 0  # a raster
    media = page.request.get(f"/api/builder/media/{card.get_attribute('data-id')}").json()
    original = page.request.get(media["url"])
    assert original.headers["content-type"] == "image/svg+xml"
    assert original.headers["content-security-policy"] == ("default-src 'none'; style-src 'unsafe-inline'; "
                                                           "sandbox")
    assert b"<script" not in original.body() and colour.encode() in original.body()


def test_the_library_gives_the_client_hints_recipe_and_chromium_follows_it(live, open_as):
    page = open_as("editor", width=1280)
    page.goto("/console/library")
    origin = page.evaluate("() => location.origin")
    recipe = page.get_by_label("In the storefront page's <head>, then an image").input_value()
    assert f"sec-ch-width {origin}; sec-ch-viewport-width {origin}; sec-ch-dpr {origin}" in recipe
    assert f'src="{origin}/media/builder/<image id>/w_auto"' in recipe
    # The recipe as a storefront would paste it, around a 4000 px photo: Chromium sends the
    # slot's width (33vw of 1280 px: 422 device pixels) and gets the ladder step that covers it,
    # not the 800 px default a browser without hints gets.
    photo = (IMAGES / "good" / "photo_12mp.jpg").read_bytes()
    token = page.request.get("/api/auth/csrf").json()["csrf_token"]  # as the console's fetches send it
    answer = page.request.post("/api/builder/media", headers={"X-CSRF-Token": token}, multipart={
        "file": {"name": "hints.jpg", "mimeType": "image/jpeg", "buffer": photo + uuid.uuid4().bytes}})
    assert answer.status == 201, answer.text()
    image = answer.json()
    html = (recipe.replace("<image id>", image["id"]).replace("<width>", str(image["width"]))
            .replace("<height>", str(image["height"])).replace("<alt text>", "A photo"))
    page.route(f"{origin}/storefront", lambda route: route.fulfill(
        status=200, content_type="text/html", body=f"<!doctype html><html><head>{html.splitlines()[0]}</head>"
                                                    f"<body>{html.splitlines()[1]}</body></html>"))
    page.goto(f"{origin}/storefront")
    page.wait_for_function("() => document.querySelector('img').complete "
                           "&& document.querySelector('img').naturalWidth > 0")
    drawn = page.evaluate("() => document.querySelector('img').naturalWidth")
    assert 422 <= drawn < 800, drawn
