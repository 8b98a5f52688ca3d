"""The console's library in a real browser: uploads, where an image is used, look-alikes and
exact duplicates, the grid with its details panel and its selection, bulk actions, filters."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

import pytest
from bson import ObjectId

from tests.helpers import IMAGES
from tests.support.browser import (
    SETUP_MS,
    axe_violations,
    drawn,
    hold_first,
    let_go,
    shot,
    wait_until_asked,
)
from tests.support.console import (
    chooser_by_key,
    confirm,
    database,
    focused_name,
    fresh_jpeg,
    loaded_pictures,
    look_alikes_asked,
    open_panel,
    percent,
    seed_exact_twins,
    seed_library,
    tab_to,
    unlike_jpeg,
)
from tests.support.records import images

# One xdist worker runs the whole module (make test's --dist loadgroup): its Chromium and its
# served app (tests/system/console/conftest.py) start once; the other console modules run beside it.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console_library")]


def test_the_library_shows_where_media_is_used_and_protects_it(live, open_as):
    page = open_as("editor")
    page.goto("/console/library")
    page.get_by_label("Image", exact=True).set_input_files(str(IMAGES / "good" / "panorama.jpg"))
    page.get_by_label("Alt text (optional)").fill("The shop at dusk")
    page.get_by_label("Folder (optional)").fill("shop/front")
    page.get_by_label("Tags (optional, comma-separated)").fill("Night, Street")
    page.get_by_role("button", name="Upload", exact=True).click()
    page.locator("#upload-list .upload-status", has_text="uploaded").wait_for()
    card = page.locator(".media-card").first
    # "uploaded" shows before the list is read again: until then the first tile is an older one.
    card.locator(".filename", has_text="panorama.jpg").wait_for()
    assert card.locator("img").get_attribute("loading") == "lazy"
    media_id = card.get_attribute("data-id")
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    for slug in ("home", "about"):
        put = page.request.put(f"/api/builder/pages/{slug}", headers={"X-CSRF-Token": csrf}, data={
            "title": slug.title(), "blocks": [{"type": "image", "media_id": media_id}], "published": True})
        assert put.ok, put.text()

    panel = open_panel(page, media_id)  # the tile's details: a click on it
    assert panel.get_by_label("Folder", exact=True).input_value() == "/shop/front"
    assert panel.get_by_label("Tags", exact=True).input_value() == "night, street"
    panel.get_by_label("Alt text", exact=True).fill("The shop at night")
    panel.get_by_label("Tags", exact=True).fill("night, street, winter")
    panel.get_by_role("button", name="Save alt text, folder and tags of panorama.jpg").click()
    panel.get_by_text("Saved.").wait_for()
    # The filters: by folder (the list of folders in use) and by tag.
    page.get_by_label("Folder", exact=True).first.select_option("/shop/front")
    page.get_by_text("1 of 1 image(s) in /shop/front.").wait_for()
    page.get_by_label("Tag", exact=True).fill("winter")
    page.get_by_role("button", name="Search").click()
    page.get_by_text("1 of 1 image(s) in /shop/front, tagged “winter”.").wait_for()
    page.get_by_label("Tag", exact=True).fill("summer")
    page.get_by_role("button", name="Search").click()
    page.get_by_text("No image in /shop/front, tagged “summer”.").wait_for()
    page.get_by_label("Tag", exact=True).fill("")
    page.get_by_label("Folder", exact=True).first.select_option("")
    page.get_by_text("1 of 1 image(s).").wait_for()
    panel = open_panel(page, media_id)
    panel.get_by_role("button", name="Where used: panorama.jpg").click()
    panel.get_by_text("Used on 2 page(s): about, home").wait_for()

    panel.get_by_role("button", name="Delete panorama.jpg").click()
    panel.get_by_text("Not deleted: it is used on 2 page(s): about, home.").wait_for()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("panorama.jpg is used on 2 page(s): about, home.").wait_for()
    dialog.get_by_role("button", name="Keep it").click()
    page.get_by_text("1 of 1 image(s).").wait_for()
    shot(page, "library")
    saved = page.request.get(f"/api/builder/media/{media_id}").json()
    assert (saved["alt"], saved["folder"], saved["tags"]) == ("The shop at night", "/shop/front",
                                                               ["night", "street", "winter"])

    panel.get_by_role("button", name="Delete panorama.jpg").click()
    dialog.get_by_role("button", name="Delete and remove it from those pages").click()
    page.get_by_text("panorama.jpg deleted and removed from about, home.").wait_for()
    assert page.request.get(f"/api/builder/media/{media_id}").status == 404
    assert page.request.get("/api/builder/pages/home").json()["blocks"] == []

    page.get_by_label("Search by file name").fill("nothing-like-this")
    page.get_by_role("button", name="Search").click()
    page.get_by_text("No image matching “nothing-like-this”.").wait_for()


def test_a_slow_search_answer_is_not_added_to_the_search_made_after_it(live, open_as):
    """Two searches in a row, the first answered last: the grid lists the second's images only
    (before, the first's were appended to them)."""
    page = open_as("editor")
    folder = f"/race-{uuid.uuid4().hex[:6]}"
    seed_library(page, folder, ["alpha.png", "grayscale.jpg"])
    page.goto("/console/library")
    page.get_by_text("image(s)").first.wait_for()
    first = hold_first(page, "**/api/builder/media?*q=alpha*")
    page.get_by_label("Search by file name").fill("alpha")
    page.get_by_role("button", name="Search").click()
    wait_until_asked(page, first)
    page.get_by_label("Search by file name").fill("grayscale")
    page.get_by_role("button", name="Search").click()
    page.locator("#media-grid .media-card", has_text="grayscale.jpg").first.wait_for()
    let_go(page, first[0])
    names = page.locator("#media-grid .media-card .filename").all_inner_texts()
    assert names and all("grayscale" in name for name in names), names


@pytest.mark.parametrize("lookup", ["in the answer", "late"])
def test_the_library_names_an_upload_s_look_alikes_and_lists_the_groups(live, open_as, tmp_path, lookup,
                                                                        request):
    # The answer names its look-alikes when the lookup is over in time (up to a twentieth of
    # the upload on the embedded database: waited for here, as the API tests do); when it is
    # late the answer leaves them out and the console asks for the image (made so here).
    from PIL import Image

    from tests.support.fixtures import scene

    # A picture of each case's own (the two cases shared one and a late ask named both uploads).
    picture = scene((1200, 900), 77 if lookup == "in the answer" else 177)
    first, copy = tmp_path / "shoe.jpg", tmp_path / "shoe-again.jpg"
    picture.save(first, "JPEG", quality=90)
    smaller = picture.crop((30, 0, 1200, 880)).resize((800, 587), Image.Resampling.LANCZOS)
    smaller.save(copy, "JPEG", quality=65)
    page = open_as("editor")
    asked = look_alikes_asked(page, request)
    # Not until "load": that waits for every picture of the module's grown library, each a
    # rendition made on request (a run with two busy loops on the cores waited 30 s in vain).
    page.goto("/console/library", wait_until="domcontentloaded")
    for path in (first, copy):
        page.get_by_label("Image", exact=True).set_input_files(str(path))
        page.get_by_role("button", name="Upload", exact=True).click()
        page.locator("#upload-list .upload-status", has_text="uploaded").last.wait_for()
    # The copy's upload names the first image, with how far apart their hashes are. (When the
    # first upload's own ask is answered late, after the copy is stored, it names the copy too:
    # two warnings, each right; this one is the copy's.)
    warning = page.locator("#upload-list .near-upload", has_text="shoe-again.jpg:")
    warning.wait_for()
    assert "shoe-again.jpg" in warning.inner_text() and "shoe.jpg" in warning.inner_text()
    assert "bits apart" in warning.inner_text() or "bit apart" in warning.inner_text()
    assert len(asked) == (2 if lookup == "late" else 0)  # each upload's image, asked once
    if lookup == "late":
        return  # the rest is the same screen
    # On the first image's card: its look-alike.
    page.locator(".media-card", has_text="shoe.jpg").last.click()
    card = page.locator("#media-panel")  # its details
    card.get_by_role("button", name="Look-alikes of shoe.jpg").click()
    card.locator(".near-matches li", has_text="shoe-again.jpg").wait_for()
    shot(page, "library-near-duplicates-card")
    # The groups view: one group of the two.
    page.get_by_role("button", name="Show near duplicates").click()
    group = page.locator("#near-groups .near-group").first
    group.wait_for()
    assert group.locator("li[data-id]").count() == 2
    assert "1 group(s)" in page.locator("#near-status").inner_text()
    shot(page, "library-near-duplicates-groups")


def test_the_library_lists_exact_duplicates_apart_and_merges_them_into_one(live, open_as):
    page = open_as("editor", audit=True)
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    seed, ids = seed_exact_twins(page, (500, 400))
    assert page.request.put(f"/api/builder/pages/twins-{seed}", headers={"X-CSRF-Token": csrf},
                            data={"title": "Twins", "blocks": [{"type": "image", "media_id": ids[1]}]}).ok
    page.goto("/console/library")
    page.get_by_role("button", name="Show exact duplicates").click()
    group = page.locator("#exact-groups .exact-group", has=page.locator(f"li[data-id='{ids[0]}']"))
    group.wait_for()
    assert group.get_attribute("data-kind") == "pixels" and "The same pixels: 2 images" in group.inner_text()
    assert page.locator(f"#near-groups li[data-id='{ids[0]}']").count() == 0
    page.wait_for_load_state("networkidle")
    assert axe_violations(page) == []
    shot(page, "library-exact-duplicates")
    group.get_by_role("button", name=f"Merge into this one: twin-{seed}-0.png").click()
    status = page.locator("#exact-status")
    status.get_by_text("Merged 1 image(s) into").wait_for()
    assert f"twins-{seed}" in status.inner_text()
    assert page.locator(f"#exact-groups li[data-id='{ids[0]}']").count() == 0  # no group any more
    blocks = page.request.get(f"/api/builder/pages/twins-{seed}").json()["blocks"]
    assert [block["media_id"] for block in blocks] == [ids[0]]
    assert page.request.get(f"/api/trash/{ids[1]}").json()["references"]["merged_into"] == ids[0]


def test_an_editor_selects_many_images_and_moves_tags_deletes_and_restores_them(live, open_as):
    page = open_as("editor")
    folder = f"/bulk-{uuid.uuid4().hex[:6]}"
    names = ["cmyk.jpg", "photo_exif_rotated.jpg", "png16.png", "palette_transparent.png"]
    ids = seed_library(page, folder, names)
    page.goto("/console/library")
    page.get_by_label("Folder", exact=True).first.select_option(folder)
    page.get_by_text(f"{len(names)} of {len(names)} image(s) in {folder}.").wait_for()
    shown = page.locator("#media-grid .media-card .filename").all_inner_texts()
    # Click the first, shift-click the third: the three between are selected.
    page.get_by_role("option", name=shown[0]).click()
    page.get_by_role("option", name=shown[2]).click(modifiers=["Shift"])
    page.get_by_text("3 image(s) selected.").wait_for()
    assert page.get_by_role("option", name=shown[1]).get_attribute("aria-selected") == "true"
    shot(page, "library-bulk-selected")
    page.get_by_label("Move to folder").fill(f"{folder}/done")
    page.get_by_role("button", name="Move selected").click()
    page.get_by_text(f"Moved to {folder}/done: 3 image(s).").wait_for()
    page.get_by_text(f"1 of 1 image(s) in {folder}.").wait_for()

    # Every image a filter matches: the three moved, tagged at once.
    page.get_by_label("Folder", exact=True).first.select_option(f"{folder}/done")
    page.get_by_text(f"3 of 3 image(s) in {folder}/done.").wait_for()
    page.get_by_role("button", name="Select all 3 matching").click()
    page.get_by_text("All 3 matching image(s) selected.").wait_for()
    page.get_by_label("Tags to add or remove").fill("Season 2026")
    page.get_by_role("button", name="Add tag to selected").click()
    page.get_by_text("Tagged “Season 2026”: 3 image(s).").wait_for()
    assert all("season 2026" in page.request.get(f"/api/builder/media/{ids[name]}").json()["tags"]
               for name in shown[:3])

    # Deleting all three: the one a page uses is refused, with the reason.
    used = ids[shown[0]]
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    slug = f"bulk-{uuid.uuid4().hex[:6]}"
    put = page.request.put(f"/api/builder/pages/{slug}", headers={"X-CSRF-Token": csrf}, data={
        "title": "Bulk", "blocks": [{"type": "image", "media_id": used}]})
    assert put.ok, put.text()
    page.get_by_role("button", name="Select all 3 matching").click()
    page.get_by_role("button", name="Delete selected").click()
    assert confirm(page, "Delete") == "Delete 3 image(s)?"
    summary = page.locator("#bulk-summary")
    # Three deletes, each moving an image and its variants to the trash: 36 s for the whole
    # test in CI under four test processes on two cores, against 8 s alone (10 s timed out).
    summary.get_by_text("Deleted 2 image(s). 1 refused:").wait_for(timeout=30_000)
    assert f"{shown[0]}: used on 1 page(s): {slug}; kept" in summary.inner_text()
    page.get_by_text(f"1 of 1 image(s) in {folder}/done.").wait_for()
    shot(page, "library-bulk-delete-summary")

    # The trash: both back at once, by keyboard.
    page.get_by_role("button", name="Trash", exact=True).click()
    page.get_by_role("option", name=shown[1]).first.wait_for()
    for name in shown[1:3]:
        page.get_by_role("option", name=name).first.focus()
        page.keyboard.press("Space")
    page.get_by_text("2 image(s) selected.").wait_for()
    page.get_by_role("button", name="Restore selected").focus()
    page.keyboard.press("Enter")
    page.get_by_text("Restored 2 image(s).").wait_for(timeout=30_000)
    shot(page, "library-bulk-restored")
    page.get_by_role("button", name="Back to the library").click()
    page.get_by_text(f"3 of 3 image(s) in {folder}/done.").wait_for()

    # Sorted by name and by size, in the folder.
    sizes = {name: page.request.get(f"/api/builder/media/{ids[name]}").json()["bytes"] for name in shown[:3]}
    page.get_by_label("Sort").select_option(label="Name")
    page.locator("#media-grid .media-card .filename").nth(2).wait_for()
    expect_order = sorted(shown[:3])
    page.wait_for_function("(names) => [...document.querySelectorAll('#media-grid .filename')]"
                           ".map((n) => n.textContent).join() === names.join()", arg=expect_order)
    page.get_by_label("Sort").select_option(label="Largest first")
    page.wait_for_function("(names) => [...document.querySelectorAll('#media-grid .filename')]"
                           ".map((n) => n.textContent).join() === names.join()",
                           arg=sorted(shown[:3], key=lambda name: -sizes[name]))
    shot(page, "library-sorted-by-size")


def test_the_unused_filter_shows_only_old_images_nothing_uses(live, open_as):
    page = open_as("editor")
    folder = f"/unused-{uuid.uuid4().hex[:6]}"
    ids = seed_library(page, folder, ["alpha.png", "grayscale.jpg", "progressive.jpg"])
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=90)
    images(database(live), "builder_media").update_many(
        {"_id": {"$in": [ObjectId(ids["alpha.png"]), ObjectId(ids["grayscale.jpg"])]}},
        {"$set": {"uploadDate": old}})
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    slug = f"unused-{uuid.uuid4().hex[:6]}"
    put = page.request.put(f"/api/builder/pages/{slug}", headers={"X-CSRF-Token": csrf},
                           data={"title": "U", "blocks": [{"type": "image", "media_id": ids["alpha.png"]}]})
    assert put.ok, put.text()
    page.goto("/console/library")
    page.get_by_label("Folder", exact=True).first.select_option(folder)
    page.get_by_text(f"3 of 3 image(s) in {folder}.").wait_for()
    page.get_by_label("Unused for (days)").fill("30")
    page.get_by_role("button", name="Search").click()
    page.get_by_text(f"in {folder}, unused for 30 day(s) or more.").wait_for()
    assert page.locator("#media-grid .media-card .filename").all_inner_texts() == ["grayscale.jpg"]
    shot(page, "library-unused")


# --- the library's grid, its details panel and its selection (issue 45) ---------------------

def seed_grid(page, folder: str, count: int, *, prefix: str = "grid",
              size: tuple[int, int] = (320, 240)) -> list[str]:
    """``count`` pictures of their own (``prefix``-00.jpg, ...) uploaded into the library's
    ``folder`` by the API: their file names, newest first (the grid's order)."""
    csrf = page.request.get("/api/auth/csrf", timeout=SETUP_MS).json()["csrf_token"]
    names = []
    for n in range(count):
        name = f"{prefix}-{n:02d}.jpg"
        photo = {"name": name, "mimeType": "image/jpeg", "buffer": unlike_jpeg(*size)}
        answer = page.request.post("/api/builder/media", headers={"X-CSRF-Token": csrf},
                                   multipart={"file": photo, "folder": folder}, timeout=SETUP_MS)
        assert answer.ok, answer.text()
        names.append(name)
    return names[::-1]


def library_folder(page, folder: str, count: int) -> None:
    """The library screen showing only ``folder`` (its ``count`` images); on a phone, its
    filters opened first (folded behind "Filters…")."""
    page.goto("/console/library")
    filters = page.get_by_role("button", name="Filters…")
    if filters.is_visible():
        filters.click()
    page.get_by_label("Folder", exact=True).first.select_option(folder)
    page.get_by_text(f"{count} of {count} image(s) in {folder}.").wait_for()
    page.locator("#media-grid li[role='option']").nth(count - 1).wait_for()


def pictures_in_view(page) -> None:
    """Wait until every grid picture in the viewport is drawn (those below load when scrolled to)."""
    page.wait_for_function("""() => [...document.querySelectorAll('#media-grid img')]
        .filter((img) => img.getBoundingClientRect().top < innerHeight)
        .every((img) => img.complete && img.naturalWidth > 0)""", timeout=30_000)


def tiles_per_row(page) -> int:
    return page.evaluate("""() => { const tops = [...document.querySelectorAll('#media-grid li[role=option]')]
        .map((tile) => Math.round(tile.getBoundingClientRect().top));
        return tops.filter((top) => top === tops[0]).length; }""")


def whole_pictures_in_view(page) -> int:
    return page.evaluate("""() => [...document.querySelectorAll('#media-grid img')]
        .map((img) => img.getBoundingClientRect())
        .filter((r) => r.top >= 0 && r.bottom <= innerHeight && r.right <= innerWidth).length""")


def selected_names(page) -> list[str]:
    return page.locator("#media-grid li[aria-selected='true'] .filename").all_inner_texts()


@pytest.mark.parametrize(("width", "height", "per_row"), [(1280, 900, 5), (360, 740, 2)])
def test_the_library_is_a_dense_grid_of_named_and_sized_thumbnails_with_a_details_panel(
        live, open_as, width, height, per_row):
    """At least five thumbnails a row at 1280 px (with the details panel open too) and two at
    360 px, each with its name and size under it; two rows in view at 1280 px without
    scrolling (before: the first row's pictures were cut off at the screen's bottom); a click
    opens the panel beside the grid, or over the whole screen on a phone; axe-core finds nothing
    serious in either state and nothing scrolls sideways."""
    page = open_as("editor", width=width, height=height, audit=True)
    folder = f"/grid-{width}-{uuid.uuid4().hex[:6]}"
    names = seed_grid(page, folder, 12)
    library_folder(page, folder, 12)
    pictures_in_view(page)
    assert page.locator("#media-grid .filename").all_inner_texts() == names
    sizes = page.locator("#media-grid .size").all_inner_texts()
    assert all(re.fullmatch(r"\d+(\.\d)? (bytes|KB) · 320×240", size) for size in sizes), sizes
    assert tiles_per_row(page) >= per_row
    if width == 1280:
        assert whole_pictures_in_view(page) >= 2 * per_row
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)
    shot(page, f"library-grid-{width}", full_page=False)

    page.get_by_role("option", name=names[1]).click()
    panel = page.get_by_role("complementary", name=names[1])
    panel.wait_for()
    grid = page.locator("#media-grid").bounding_box()
    box = panel.bounding_box()
    if width == 1280:  # beside the grid, which keeps its five a row
        assert box["x"] >= grid["x"] + grid["width"] and tiles_per_row(page) >= per_row
    else:  # the whole screen, like a page of its own: the focus in it, what it covers inert
        assert (box["x"], box["width"]) == (0, width) and box["height"] >= height - 1
        assert focused_name(page) == names[1]
        assert page.evaluate("() => !!document.getElementById('media-grid').closest('[inert]')")
        for _ in range(12):
            page.keyboard.press("Tab")
            assert page.evaluate("() => !!document.activeElement.closest('#media-panel')"), focused_name(page)
    loaded_pictures(page, "#media-panel img")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)
    shot(page, f"library-panel-{width}", full_page=False)
    panel.get_by_role("button", name=f"Close the details of {names[1]}").click()
    panel.wait_for(state="hidden")
    assert focused_name(page).startswith(names[1])  # back on its tile


def whole_tiles_in_view(page) -> int:
    """How many grid tiles are wholly inside the viewport (picture, name and size)."""
    return page.evaluate("""() => [...document.querySelectorAll('#media-grid li[role=option]')]
        .map((tile) => tile.getBoundingClientRect())
        .filter((r) => r.top >= 0 && r.bottom <= innerHeight && r.left >= 0 && r.right <= innerWidth)
        .length""")


def outlined(page) -> bool:
    """Whether the focused element draws its focus outline."""
    return page.evaluate("""() => { const style = getComputedStyle(document.activeElement);
        return style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2; }""")


@pytest.mark.parametrize("width", [1280, 360])
def test_a_phone_sees_images_first_and_opens_the_upload_form_behind_add_images(
        live, open_as, tmp_path, width):
    """At 360 px the upload form is folded behind "Add images…" and the search's filters
    behind "Filters…" (buttons with aria-expanded), so at least one whole tile is on the first
    screen (before: none, the form filled it); the button opens the form in place by keyboard
    and by click, its focus drawn, and an upload made by keyboard alone lands in the grid;
    "Filters…" opens the folder filter, which finds it. At 1280 px the form and the filters are
    shown as before, with no button; folded, the box still takes dropped files. axe-core finds
    nothing serious folded or open, and nothing scrolls sideways."""
    page = open_as("editor", width=width, height=740 if width == 360 else 900, audit=True)
    seed_grid(page, f"/phone-{width}-{uuid.uuid4().hex[:6]}", 4)
    page.goto("/console/library")
    page.locator("#media-grid li[role='option']").nth(3).wait_for()
    pictures_in_view(page)
    toggle = page.locator("#upload-toggle")
    form = page.locator("#upload-form")
    assert whole_tiles_in_view(page) >= 1
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)
    if width == 1280:  # the form and the filters as they were, and no button
        assert toggle.is_hidden() and form.is_visible() and page.locator("#filters-toggle").is_hidden()
        assert page.get_by_label("Image", exact=True).is_visible()
        assert page.get_by_label("Folder", exact=True).first.is_visible()
        return
    shot(page, "library-phone-folded", full_page=False)
    add = page.get_by_role("button", name="Add images…")
    assert add.get_attribute("aria-expanded") == "false"
    assert add.get_attribute("aria-controls") == "upload-form"
    assert form.is_hidden()

    # By keyboard: Tab to the button (its focus drawn), Enter opens the form, Tab goes into it.
    page.locator("body").focus()
    tab_to(page, "Add images…")
    assert outlined(page)
    page.keyboard.press("Enter")
    form.wait_for()
    assert add.get_attribute("aria-expanded") == "true"
    assert focused_name(page) == "Add images…"  # the focus stays on the button
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)
    shot(page, "library-phone-open", full_page=False)
    page.keyboard.press("Space")  # and closes it
    form.wait_for(state="hidden")
    assert add.get_attribute("aria-expanded") == "false"

    # By click, then an upload by keyboard alone: the file chooser opened with Space.
    add.click()
    form.wait_for()
    page.keyboard.press("Tab")
    assert focused_name(page) == "Image" and outlined(page)
    chooser = chooser_by_key(page, "Space")
    name = f"phone-{uuid.uuid4().hex[:6]}.jpg"
    (tmp_path / name).write_bytes(fresh_jpeg(320, 240))
    chooser.set_files(str(tmp_path / name))
    tab_to(page, "Folder (optional)")
    folder = f"/phone-upload-{uuid.uuid4().hex[:6]}"
    page.keyboard.type(folder)
    tab_to(page, "Upload")
    page.keyboard.press("Enter")
    page.locator("#upload-list .upload-status", has_text="uploaded").wait_for()
    page.locator("#media-grid .filename", has_text=name).wait_for()
    assert page.locator("#media-grid li[role='option']").first.get_attribute("data-filename") == name
    stored = page.request.get(f"/api/builder/media?folder={folder}").json()
    assert [m["filename"] for m in stored["items"]] == [name], stored
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    filters = page.get_by_role("button", name="Filters…")
    assert filters.get_attribute("aria-controls") == "search-filters"
    assert page.get_by_label("Folder", exact=True).first.is_hidden()
    filters.click()
    assert filters.get_attribute("aria-expanded") == "true"
    page.get_by_label("Folder", exact=True).first.select_option(folder)
    page.get_by_text(f"1 of 1 image(s) in {folder}.").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)
    shot(page, "library-phone-filters", full_page=False)

    # Folded again, the box still takes a drop (a synthetic one, on what is drawn at its middle),
    # with the folder typed in the form.
    page.get_by_label("Folder (optional)").fill(folder)
    add.click()
    form.wait_for(state="hidden")
    add.scroll_into_view_if_needed()
    dropped = f"dropped-{uuid.uuid4().hex[:6]}.png"
    assert page.evaluate("""async (name) => {
        const canvas = document.createElement('canvas');
        canvas.width = canvas.height = 64;
        const draw = canvas.getContext('2d');
        draw.fillStyle = '#3c6';
        draw.fillRect(4, 12, 50, 30);
        const png = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
        const files = new DataTransfer();
        files.items.add(new File([png], name, {type: 'image/png'}));
        const box = document.getElementById('dropzone').getBoundingClientRect();
        const target = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
        for (const type of ['dragenter', 'dragover', 'drop']) {
          target.dispatchEvent(new DragEvent(type, {dataTransfer: files, bubbles: true, cancelable: true}));
        }
        return target.id || target.tagName;
    }""", dropped) in ("dropzone", "upload-toggle")
    page.locator("#media-grid .filename", has_text=dropped).wait_for()
    folder_of = page.request.get(f"/api/builder/media?folder={folder}").json()["items"]
    assert sorted(m["filename"] for m in folder_of) == sorted([name, dropped])


def test_the_details_panel_shows_the_larger_picture_and_everything_a_tile_used_to_carry(live, open_as):
    page = open_as("editor")
    folder = f"/details-{uuid.uuid4().hex[:6]}"
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    answer = page.request.post("/api/builder/media", headers={"X-CSRF-Token": csrf}, multipart={
        "file": {"name": "details.jpg", "mimeType": "image/jpeg", "buffer": fresh_jpeg()},
        "folder": folder, "alt": "Bands of colour", "tags": "test, bands"})
    assert answer.ok, answer.text()
    media_id = answer.json()["id"]
    hero = page.request.put(f"/api/builder/media/{media_id}/crops/hero", headers={"X-CSRF-Token": csrf},
                            data={"x": 0, "y": 0, "width": 1, "height": 0.5})
    assert hero.ok, hero.text()
    library_folder(page, folder, 1)
    tile = page.locator(f"#media-grid li[data-id='{media_id}']")
    panel = open_panel(page, media_id)
    assert tile.get_attribute("aria-selected") == "true"
    [large] = loaded_pictures(page, "#media-panel img")
    [small] = loaded_pictures(page, f"#media-grid li[data-id='{media_id}'] img")
    assert large["drawn"] >= 2 * small["drawn"]  # the larger picture
    assert panel.get_by_role("img", name="Bands of colour").is_visible()  # its alt text on it
    assert panel.get_by_label("Alt text", exact=True).input_value() == "Bands of colour"
    assert panel.get_by_label("Folder", exact=True).input_value() == folder
    assert sorted(panel.get_by_label("Tags", exact=True).input_value().split(", ")) == ["bands", "test"]
    assert "1024×768" in panel.locator(".size-line").inner_text()
    assert panel.locator(".crops-line").inner_text().startswith("Named crops: hero")
    focal = page.request.get(f"/api/builder/media/{media_id}").json()["focal_point"]
    assert panel.get_by_role("group", name=f"Focal point of details.jpg: {percent(focal['x'])} % across, "
                                            f"{percent(focal['y'])} % down").is_visible()
    for action in ("Edit details.jpg", "Versions of details.jpg", "Where used: details.jpg",
                   "Look-alikes of details.jpg", "Deliveries of details.jpg", "Delete details.jpg",
                   "Replace the file of details.jpg", "Save name of details.jpg",
                   "Save alt text, folder and tags of details.jpg"):
        assert panel.get_by_role("button", name=action, exact=True).is_visible(), action
    panel.get_by_label("Name in URL").wait_for()
    shot(page, "library-panel-details", full_page=False)


def test_click_shift_click_and_ctrl_click_choose_what_the_bulk_move_moves(live, open_as):
    page = open_as("editor")
    folder = f"/pick-{uuid.uuid4().hex[:6]}"
    names = seed_grid(page, folder, 6)
    library_folder(page, folder, 6)
    assert page.locator("#bulk-move").is_hidden()  # nothing selected: no bulk actions shown
    page.get_by_role("option", name=names[0]).click()  # selects it alone (and shows its details)
    page.get_by_text("1 image(s) selected.").wait_for()
    assert page.locator("#bulk-move").is_hidden()  # its details act on it; no bar over the grid
    page.get_by_role("option", name=names[3]).click(modifiers=["Shift"])  # the range to it
    page.get_by_text("4 image(s) selected.").wait_for()
    page.locator("#bulk-move").wait_for()
    page.get_by_role("option", name=names[1]).click(modifiers=["Control"])  # out of it
    page.get_by_text("3 image(s) selected.").wait_for()
    page.get_by_role("option", name=names[5]).click(modifiers=["Control"])  # added
    page.get_by_text("4 image(s) selected.").wait_for()
    picked = [names[0], names[2], names[3], names[5]]
    assert selected_names(page) == picked
    # The bulk actions float under the grid's column, never over the details beside it.
    bar = page.get_by_role("region", name="Bulk actions").bounding_box()
    assert bar["x"] + bar["width"] <= page.locator("#media-panel").bounding_box()["x"]
    shot(page, "library-grid-selected", full_page=False)
    page.get_by_label("Move to folder").fill(f"{folder}/picked")
    page.get_by_role("button", name="Move selected").click()
    page.get_by_text(f"Moved to {folder}/picked: 4 image(s).").wait_for()
    moved = page.request.get(f"/api/builder/media?folder={folder}/picked").json()["items"]
    assert sorted(item["filename"] for item in moved) == sorted(picked)
    # A plain click after a selection starts again from that one image.
    page.get_by_text(f"2 of 2 image(s) in {folder}.").wait_for()
    page.get_by_role("option", name=names[1]).click()
    page.get_by_text("1 image(s) selected.").wait_for()
    assert selected_names(page) == [names[1]]
    page.get_by_role("button", name="Clear selection").click()
    page.get_by_text("No image selected.").wait_for()
    assert selected_names(page) == [] and page.locator("#bulk-move").is_hidden()


def test_the_grid_its_panel_and_the_bulk_actions_work_by_keyboard_alone(live, open_as):
    page = open_as("editor", audit=True)
    folder = f"/keys-{uuid.uuid4().hex[:6]}"
    names = seed_grid(page, folder, 6)
    library_folder(page, folder, 6)
    tab_to(page, names[0])  # one Tab stop for the whole grid: its first tile
    page.keyboard.press("ArrowRight")
    assert focused_name(page).startswith(names[1])
    page.keyboard.press("Space")
    page.get_by_text("1 image(s) selected.").wait_for()
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Shift+ArrowRight")
    page.get_by_text("3 image(s) selected.").wait_for()
    assert selected_names(page) == names[1:4] and focused_name(page).startswith(names[3])
    page.keyboard.press("Home")
    page.keyboard.press("Space")  # one more, out of the range
    page.get_by_text("4 image(s) selected.").wait_for()
    page.keyboard.press("Space")
    page.get_by_text("3 image(s) selected.").wait_for()
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)
    # The bulk actions (after the grid): Tab on to the tag box, Enter adds the tag to the three.
    tab_to(page, "Tags to add or remove")
    page.keyboard.type("by keys")
    page.keyboard.press("Enter")
    page.get_by_text("Tagged “by keys”: 3 image(s).").wait_for()
    tagged = page.request.get(f"/api/builder/media?folder={folder}&tag=by%20keys").json()["items"]
    assert sorted(item["filename"] for item in tagged) == sorted(names[1:4])
    # Enter opens a tile's details with the focus on its title; its alt text saved with Enter.
    tab_to(page, names[0], back=True)  # the grid again (before the bar)
    page.keyboard.press("End")
    assert focused_name(page).startswith(names[5])
    page.keyboard.press("Enter")
    panel = page.get_by_role("complementary", name=names[5])
    panel.wait_for()
    assert focused_name(page) == names[5]
    tab_to(page, "Alt text")
    page.keyboard.type("Typed without a mouse")
    page.keyboard.press("Enter")
    panel.get_by_text("Saved.").wait_for()
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)
    page.keyboard.press("Escape")  # closed; the focus back on its tile
    panel.wait_for(state="hidden")
    assert focused_name(page).startswith(names[5])
    saved = {item["filename"]: item.get("alt") for item in
             page.request.get(f"/api/builder/media?folder={folder}").json()["items"]}
    assert saved[names[5]] == "Typed without a mouse"
    page.keyboard.press("Control+a")
    page.get_by_text("6 image(s) selected.").wait_for()


def test_show_more_adds_the_next_page_under_the_tiles_and_keeps_the_place(live, open_as):
    page = open_as("editor", width=1280, height=800)
    folder = f"/more-{uuid.uuid4().hex[:6]}"
    seed_grid(page, folder, 50, prefix="more", size=(64, 48))  # the grid asks for 48 at a time
    page.goto("/console/library")
    page.get_by_label("Folder", exact=True).first.select_option(folder)
    page.get_by_text(f"48 of 50 image(s) in {folder}.").wait_for()
    tiles = page.locator("#media-grid li[role='option']")
    page.get_by_role("button", name="Show more").focus()
    page.keyboard.press("Enter")
    page.get_by_text(f"50 of 50 image(s) in {folder}.").wait_for()
    assert tiles.count() == 50 and page.get_by_role("button", name="Show more").is_hidden()
    # The focus on the first new tile, the last of the first page still in view above it.
    assert focused_name(page).startswith("more-01.jpg")
    last = tiles.nth(47).bounding_box()
    assert 0 <= last["y"] and last["y"] + last["height"] <= 800, last
    names = page.locator("#media-grid .filename").all_inner_texts()
    assert names == [f"more-{n:02d}.jpg" for n in range(49, -1, -1)]


def test_a_bulk_action_leaves_the_grid_where_it_was_on_the_screen(live, open_as):
    """After a bulk action the list is loaded again: its tiles are replaced in one step, so the
    page stays on them (emptied first, the page collapsed and ended at its bottom)."""
    page = open_as("editor", width=1280, height=800)
    folder = f"/stay-{uuid.uuid4().hex[:6]}"
    names = seed_grid(page, folder, 24)
    library_folder(page, folder, 24)
    tile = page.get_by_role("option", name=names[12])
    tile.scroll_into_view_if_needed()
    tile.click()
    page.get_by_role("option", name=names[14]).click(modifiers=["Shift"])
    page.get_by_text("3 image(s) selected.").wait_for()
    before = tile.bounding_box()["y"]
    page.get_by_label("Tags to add or remove").fill("stays")
    page.get_by_role("button", name="Add tag to selected").click()
    page.get_by_text("Tagged “stays”: 3 image(s).").wait_for()
    page.get_by_text(f"24 of 24 image(s) in {folder}.").wait_for()
    drawn(page)
    after = page.get_by_role("option", name=names[12]).bounding_box()["y"]
    assert abs(after - before) < 80, (before, after)  # the summary line above it, at most


def test_save_and_next_gives_one_image_after_another_its_alt_text(live, open_as):
    page = open_as("editor")
    folder = f"/alts-{uuid.uuid4().hex[:6]}"
    names = seed_grid(page, folder, 4)
    library_folder(page, folder, 4)
    page.get_by_role("option", name=names[0]).click()
    panel = page.locator("#media-panel")
    panel.get_by_label("Alt text", exact=True).click()
    for name in names[:3]:
        panel.locator(".panel-title", has_text=name).wait_for()
        assert focused_name(page) == "Alt text"  # ready to type
        page.keyboard.type(f"Alt text of {name}")
        panel.get_by_role("button", name="Save and next").click()
    panel.locator(".panel-title", has_text=names[3]).wait_for()
    assert selected_names(page) == [names[3]]  # the grid follows
    saved = {item["filename"]: item.get("alt") or "" for item in
             page.request.get(f"/api/builder/media?folder={folder}").json()["items"]}
    assert saved == {**{name: f"Alt text of {name}" for name in names[:3]}, names[3]: ""}


def test_a_late_folder_list_does_not_replace_the_counts_an_upload_brought(live, open_as):
    page = open_as("editor")
    first = hold_first(page, "**/api/builder/folders")
    page.goto("/console/library")
    wait_until_asked(page, first)
    folder = f"/late-{uuid.uuid4().hex[:6]}"
    page.get_by_label("Image", exact=True).set_input_files(str(IMAGES / "good" / "lossless_alpha.webp"))
    page.get_by_label("Folder (optional)").fill(folder)
    page.get_by_role("button", name="Upload", exact=True).click()
    page.locator("#upload-list .upload-status", has_text="uploaded").wait_for()
    options = page.get_by_label("Folder", exact=True).first.locator("option")
    options.filter(has_text=folder).wait_for(state="attached")
    # The list asked on load, told apart by a folder only it names, comes back last.
    let_go(page, first[0], json={"folders": [{"folder": "/stale-answer", "count": 99}]})
    texts = options.all_inner_texts()
    assert any(text.startswith(folder) for text in texts), texts
    assert not any("/stale-answer" in text for text in texts), texts
