"""Every state of the console's pages, audited in one place at 1280 and 360 px: axe-core finds
nothing serious or critical, nothing scrolls sideways, and each control Tab reaches in the
state shows that it has the focus: its outline drawn (on its label for a hidden file input),
3:1 against what is behind it (or two rings 9:1 apart over a picture), not cut off by the box
it scrolls in or the window, not under something else (a sticky bar). In a modal part (a
dialog, the details panel on a phone) Tab goes round inside it and never leaves it. The other
console modules audit the states they test on the way; this one walks them all, so a state
nobody tests the look of is still audited, and a new screen without a state here fails
``test_every_screen_and_template_has_a_state``.

The states (the keys of ``STATES``, in this order; ``test_the_list_of_states_is_the_docstring_s``
keeps this list and the table the same):

- login: the login form, nobody logged in
- login-refused: the login form saying the email or password is wrong
- forbidden: a screen the role may not open (an editor on the ops dashboard), answered 403
- not-found: a console address nothing is at (a mistyped link), answered 404 with the
  console's error page
- products: the products list and the new product form
- products-refused: the new product form saying why it did not create the product
- product: one product: its photo (on another product too), the upload box, the missing alt
  text form
- product-empty: a product without photos, saying so where the missing alt text would be listed
- product-refused: a file the product's upload refused, named in its list with the reason
- product-url-import: URLs imported onto a product: one added, one refused
- library: the library's grid (on a phone the upload form and the filters folded)
- library-forms-open: the upload form, the import from URLs and the filters opened (on a
  phone; wider they always are)
- library-url-import: URLs imported: one stored, one refused naming the setting to change
- library-messages: an upload refused in the uploads-in-progress list, and the page's message
- library-panel: an image's details, its four parts opened (where used, look-alikes,
  deliveries, versions); on a phone a page of its own, Tab going round inside it
- library-delete-refused: deleting an image pages use: the panel says where, the dialog asks
- library-selection: images selected, the bulk actions shown at the screen's bottom (on a
  phone folded to Delete and "Move or tag…", then opened)
- library-trash: the trash, a deleted image selected, "Restore selected" shown
- library-duplicates: the exact duplicates listed (and the near-duplicates' answer)
- library-look-alikes: an upload naming the images it looks like, and the near-duplicate groups
- library-page-alt: a page's images without alt text, with suggestions
- editor: the image editor's dialog open on a library image, a 4:5 crop box drawn, Tab going
  round inside it
- versions-compare: an image's versions, two of them compared (slider and heat map)
- uploads: the user's uploads as a grid (the form folded on a phone) and the upload links
- uploads-panel: an upload's details with its versions
- uploads-delete-confirm: an upload's Delete pressed: the console's confirmation asks, the
  focus on its safe answer, Tab going round inside it
- uploads-refused: a file the uploads screen refused (its form opened on a phone)
- links-created: an upload link just made: its secret shown once, the links table
- ops: the ops dashboard, its delivery numbers shown (a long file name, a replaced image's
  earlier version, the never served and clean-up lists)
- ops-rerender: a re-render of stale renditions started from it, its answer said

Screenshots (``shot``) of each state at each width go to tests/artifacts/console/state-*.png.
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.browser import SETUP_MS, axe_violations, new_context, shot
from tests.support.console import flush_deliveries, fresh_jpeg, open_panel, seed_exact_twins, unlike_jpeg
from tests.support.imageserver import ImageServer
from tests.support.stored import stored

# One xdist worker runs the whole module (make test's --dist loadgroup): its Chromium and its
# served app (tests/system/console/conftest.py) start once; the other console modules run beside it.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console_states")]

WIDTHS = {1280: 900, 360: 740}
TEMPLATES = Path(__file__).resolve().parents[3] / "avenue" / "console" / "templates" / "console"


SUPPLIER: list[ImageServer] = []  # the URL imports' supplier (the fixture below)
SERVED: list = []  # the served app (the fixture below), for the states that write beside the API


@pytest.fixture(scope="module", autouse=True)
def served_app(live):
    SERVED.append(live)
    yield live
    SERVED.remove(live)


@pytest.fixture(scope="module", autouse=True)
def supplier(live):
    """A supplier on loopback the app trusts (its network and its port only): the URL imports'
    states fetch from it, and a URL on another port is refused naming the setting."""
    server = ImageServer()
    names = ("AVENUE_URL_IMPORT_ALLOW_NETWORKS", "AVENUE_URL_IMPORT_PORTS")
    before = {name: live.config[name] for name in names}
    live.config.update(AVENUE_URL_IMPORT_ALLOW_NETWORKS=["127.0.0.1/32"],
                       AVENUE_URL_IMPORT_PORTS=f"80,443,{server.port}")
    SUPPLIER.append(server)
    yield server
    SUPPLIER.remove(server)
    live.config.update(before)
    server.close()


def import_urls(page, label: str) -> None:
    """Two URLs pasted into the form ``label`` names and imported: a picture of its own from the
    supplier, and one on a port the app does not fetch from; both rows drawn."""
    server = SUPPLIER[0]
    good = server.serve(f"/state-{uuid.uuid4().hex[:6]}.jpg", body=unlike_jpeg(320, 240),
                        headers={"Content-Type": "image/jpeg"})
    page.get_by_label(label).fill(f"{good}\nhttp://127.0.0.1:{server.port + 1}/state.jpg")
    page.get_by_role("button", name="Import", exact=True).click()
    page.locator("#url-status", has_text="Done:").wait_for()
    page.locator("#url-list li.refused", has_text="AVENUE_URL_IMPORT_PORTS").wait_for()
    page.locator("#url-list li.ok").wait_for()


def csrf_of(page) -> str:
    return page.request.get("/api/auth/csrf").json()["csrf_token"]


def post_library(page, folder: str, count: int, prefix: str) -> list[str]:
    """``count`` pictures of their own in the library's ``folder``: their ids, oldest first."""
    csrf = csrf_of(page)
    ids = []
    for n in range(count):
        photo = {"name": f"{prefix}-{n}.jpg", "mimeType": "image/jpeg", "buffer": unlike_jpeg(640, 480)}
        answer = page.request.post("/api/builder/media", headers={"X-CSRF-Token": csrf},
                                   multipart={"file": photo, "folder": folder}, timeout=SETUP_MS)
        assert answer.ok, answer.text()
        ids.append(answer.json()["id"])
    return ids


def library_folder(page, folder: str, count: int) -> None:
    """The library showing only ``folder``; on a phone the filters folded again after."""
    page.goto("/console/library")
    filters = page.get_by_role("button", name="Filters…")
    if filters.is_visible():
        filters.click()
        page.get_by_label("Folder", exact=True).first.wait_for()
    page.get_by_label("Folder", exact=True).first.select_option(folder)
    page.get_by_text(f"{count} of {count} image(s) in {folder}.").wait_for()
    if filters.is_visible():
        filters.click()
        page.get_by_label("Folder", exact=True).first.wait_for(state="hidden")
    pictures_drawn(page, "#media-grid img")


# Every picture the screen shows is drawn. A lazy one out of sight is not asked for until it
# comes near (the exact duplicates' thumbnails: at 360 px the groups run far below the fold).
DRAWN = """s => [...document.querySelectorAll(s)].every((i) => {
  const box = i.getBoundingClientRect();
  const unseen = box.width === 0 || box.bottom < 0 || box.top > window.innerHeight;
  return (i.loading === 'lazy' && unseen) || (i.complete && i.naturalWidth > 0);
})"""


def pictures_drawn(page, selector: str) -> None:
    page.wait_for_function(DRAWN, arg=selector, timeout=SETUP_MS)


# --- the states: each brings a logged-in page (of its role, at the test's width) to its state
# and says where the Tab walk starts: "top" (the page's start), "here" (the focus it left), or
# the selector of the modal part the focus is in and must stay in (a dialog, the details panel
# on a phone: a page of its own).

PHONE_PX = 760  # console.css and panel.js: at this width or less the panel is the whole screen


def panel_walk(page) -> str:
    return "#media-panel" if page.viewport_size["width"] <= PHONE_PX else "here"


def login(page) -> str:
    page.goto("/console/login")
    page.get_by_label("Email").wait_for()
    return "top"


def login_refused(page) -> str:
    page.goto("/console/login")
    page.get_by_label("Email").fill("nobody@example.com")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    page.locator("#login-status:not([hidden])").wait_for()
    return "top"


def forbidden(page) -> str:
    assert page.goto("/console/ops").status == 403
    page.get_by_text("cannot open Ops dashboard.").wait_for()
    return "top"


def not_found(page) -> str:
    assert page.goto("/console/produtcs").status == 404
    page.get_by_role("link", name="Open the console").wait_for()
    return "top"


def products(page) -> str:
    sku = f"ST-{uuid.uuid4().hex[:6]}"
    assert page.request.post("/api/shop/products", headers={"X-CSRF-Token": csrf_of(page)},
                             data={"sku": sku, "name": "State", "price": 12.5}).ok
    page.goto("/console/products")
    page.locator("#products-table tbody tr").first.wait_for()
    return "top"


def products_refused(page) -> str:
    products(page)
    page.get_by_label("SKU", exact=True).fill(f"NEW-{uuid.uuid4().hex[:6]}")
    page.get_by_label("Name", exact=True).fill("Made in the form")
    page.get_by_label("Price").fill("not a price")
    page.get_by_role("button", name="Create product").click()
    page.locator("#create-status:not([hidden])").wait_for()
    return "top"


def product_empty(page) -> str:
    sku = f"ST-{uuid.uuid4().hex[:6]}"
    assert page.request.post("/api/shop/products", headers={"X-CSRF-Token": csrf_of(page)},
                             data={"sku": sku, "name": "No photo yet", "price": 3}).ok
    page.goto(f"/console/products/{sku}")
    page.get_by_text("Add a photo first: this product has none.").wait_for()
    return "top"


def product_refused(page) -> str:
    product(page)
    page.locator("#files").set_input_files(
        files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not a picture at all"}])
    page.locator("#upload-list li.refused", has_text="notes.png").wait_for()
    return "top"


def product_url_import(page) -> str:
    product(page)
    import_urls(page, "Or import photos from URLs, one a line")
    page.locator("#photos .photo").nth(1).wait_for()
    pictures_drawn(page, "#photos img")
    return "top"


def product(page) -> str:
    sku = f"ST-{uuid.uuid4().hex[:6]}"
    csrf = csrf_of(page)
    assert page.request.post("/api/shop/products", headers={"X-CSRF-Token": csrf},
                             data={"sku": sku, "name": "State", "price": 3}).ok
    photo = {"name": "state.jpg", "mimeType": "image/jpeg", "buffer": unlike_jpeg(640, 480)}
    # The same photo on a second product too: one stored file, its "Also on" line shown.
    shared = f"ST-{uuid.uuid4().hex[:6]}"
    assert page.request.post("/api/shop/products", headers={"X-CSRF-Token": csrf},
                             data={"sku": shared, "name": "Shared", "price": 3}).ok
    for owner in (sku, shared):
        assert page.request.post(f"/api/shop/products/{owner}/images", headers={"X-CSRF-Token": csrf},
                                 multipart={"images": photo}, timeout=SETUP_MS).ok
    page.goto(f"/console/products/{sku}")
    page.locator("#photos .photo").first.wait_for()
    page.locator("#alt-list li").first.wait_for()
    also = page.locator("#photos .photo .also-on")
    also.wait_for()
    assert also.inner_text().startswith("Also on ") and shared in also.inner_text()
    pictures_drawn(page, "#photos img")
    return "top"


def library(page) -> str:
    folder = f"/state-{uuid.uuid4().hex[:6]}"
    post_library(page, folder, 3, "grid")
    library_folder(page, folder, 3)
    return "top"


def library_forms_open(page) -> str:
    library(page)
    for name in ("Add images…", "Import from URLs…", "Filters…"):
        button = page.get_by_role("button", name=name)
        if button.is_visible():
            button.click()
            page.locator(f"#{button.get_attribute('aria-controls')}").wait_for()
    return "top"


def library_url_import(page) -> str:
    library(page)
    add = page.get_by_role("button", name="Add images…")
    if add.is_visible():  # a phone: the import's button is in the folded form
        add.click()
    page.get_by_role("button", name="Import from URLs…").click()
    import_urls(page, "Or import from URLs, one a line")
    return "top"


def refused_upload(page, screen: str) -> None:
    """``screen`` (the library's or the uploads') with a file its upload form refused, named in
    its list (the form opened first where a phone folds it)."""
    page.goto(screen)
    add = page.get_by_role("button", name="Add images…")
    if add.is_visible():
        add.click()
    page.get_by_label("Image", exact=True).set_input_files(
        files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not a picture at all"}])
    page.get_by_role("button", name="Upload", exact=True).click()
    page.locator("#upload-list li.refused", has_text="notes.png").wait_for()


def library_messages(page) -> str:
    refused_upload(page, "/console/library")
    page.get_by_role("button", name="Upload", exact=True).click()  # nothing chosen now
    page.locator("#page-message", has_text="Choose images or a folder to upload.").wait_for()
    return "top"


def library_panel(page) -> str:
    folder = f"/state-{uuid.uuid4().hex[:6]}"
    [media_id] = post_library(page, folder, 1, "panel")
    library_folder(page, folder, 1)
    panel = open_panel(page, media_id)
    for part, loaded in (("Where used", panel.get_by_text("Not used on any page.")),
                         ("Look-alikes of", panel.get_by_text("No look-alikes in the library.")),
                         ("Deliveries of", panel.locator("figure.delivery-spark")),
                         ("Versions of", panel.locator("li.version").first)):
        panel.get_by_role("button", name=re.compile(f"^{part}")).click()
        loaded.wait_for()
    pictures_drawn(page, "#media-panel img")
    panel.locator(".panel-title").focus()
    return panel_walk(page)


def library_delete_refused(page) -> str:
    folder = f"/state-{uuid.uuid4().hex[:6]}"
    [media_id] = post_library(page, folder, 1, "used")
    assert page.request.put(f"/api/builder/pages/state-{uuid.uuid4().hex[:6]}",
                            headers={"X-CSRF-Token": csrf_of(page)},
                            data={"title": "Uses it", "blocks": [{"type": "image", "media_id": media_id}]}).ok
    library_folder(page, folder, 1)
    panel = open_panel(page, media_id)
    panel.get_by_role("button", name="Delete used-0.jpg").click()
    panel.get_by_text("Not deleted: it is used on 1 page(s)").wait_for()
    page.get_by_role("dialog", name="Delete an image that pages use?").wait_for()
    return "dialog[open]"


def library_selection(page) -> str:
    library(page)
    tiles = page.locator("#media-grid li[role='option']")
    tiles.nth(0).click(modifiers=["ControlOrMeta"])
    page.get_by_text("1 image(s) selected.").wait_for()
    tiles.nth(1).click(modifiers=["ControlOrMeta"])
    page.get_by_text("2 image(s) selected.").wait_for()
    bar = page.locator("#bulk-bar")
    bar.wait_for()
    if page.viewport_size["width"] <= 480:
        # On a phone the bar floats over the grid: folded to its toggle and Delete, a fifth of the
        # screen at most (the two forms open took 40 %), and "Move or tag…" opens them in place.
        height = bar.bounding_box()["height"]
        assert height <= page.viewport_size["height"] / 5, height
        assert page.get_by_label("Move to folder").is_hidden()
        shot(page, "state-library-selection-folded-360", full_page=False)
        page.get_by_role("button", name="Move or tag…").click()
        page.get_by_label("Move to folder").wait_for()  # opened: the audit walks the forms too
    return "top"


def library_trash(page) -> str:
    folder = f"/state-{uuid.uuid4().hex[:6]}"
    [media_id] = post_library(page, folder, 1, "trashed")
    assert page.request.delete(f"/api/builder/media/{media_id}", headers={"X-CSRF-Token": csrf_of(page)}).ok
    page.goto("/console/library")
    # The list drawn (its count said): the library may hold nothing else when this state runs alone.
    page.get_by_text(re.compile(r"image\(s\)\.$|^The library is empty\.$")).wait_for()
    page.get_by_role("button", name="Trash").click()
    page.get_by_text(re.compile(r"image\(s\) in the trash\.")).wait_for()
    tile = page.locator(f"#media-grid li[data-id='{media_id}']")
    tile.click(modifiers=["ControlOrMeta"])
    page.get_by_role("button", name="Restore selected").wait_for()
    # The selection's tick (the tile's ::after, absolutely placed) is not drawn over the name's
    # text: a trashed image's tile has no picture for it to sit on (it once hid the name's start).
    overlap = tile.evaluate('''(tile) => {
        const range = document.createRange();
        range.selectNodeContents(tile.querySelector('.filename'));
        const text = range.getBoundingClientRect(), box = tile.getBoundingClientRect();
        const tick = getComputedStyle(tile, '::after');
        const side = parseFloat(tick.width) + parseFloat(tick.borderLeftWidth)
            + parseFloat(tick.borderRightWidth);
        const left = tick.left !== 'auto' ? box.left + tile.clientLeft + parseFloat(tick.left)
            : box.right - tile.clientLeft - parseFloat(tick.right) - side;
        const top = box.top + tile.clientTop + parseFloat(tick.top);
        return Math.max(0, Math.min(text.right, left + side) - Math.max(text.left, left))
            * Math.max(0, Math.min(text.bottom, top + side) - Math.max(text.top, top));
    }''')
    assert overlap == 0, f"the tick covers {overlap:.0f} px² of the name"
    return "top"


def library_duplicates(page) -> str:
    _, ids = seed_exact_twins(page, (400, 300))
    page.goto("/console/library")
    page.get_by_role("button", name="Show near duplicates").click()
    page.locator("#near-status:not(:empty)").wait_for()
    page.get_by_role("button", name="Show exact duplicates").click()
    page.locator("#exact-groups .exact-group", has=page.locator(f"li[data-id='{ids[0]}']")).wait_for()
    pictures_drawn(page, "#exact-groups img")
    page.get_by_role("button", name="Show near duplicates").focus()
    return "here"


def library_look_alikes(page) -> str:
    from PIL import Image

    from tests.support.fixtures import scene

    seed = uuid.uuid4().int % 100_000
    picture = scene((900, 600), seed)
    copy = picture.crop((20, 0, 900, 590)).resize((600, 402), Image.Resampling.LANCZOS)
    files = []
    for name, image, quality in ((f"alike-{seed}.jpg", picture, 90), (f"alike-{seed}-again.jpg", copy, 65)):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        files.append({"name": name, "mimeType": "image/jpeg", "buffer": out.getvalue()})
    page.goto("/console/library")
    add = page.get_by_role("button", name="Add images…")
    if add.is_visible():
        add.click()
    for file in files:  # one after the other: the copy's answer names the first
        page.get_by_label("Image", exact=True).set_input_files(files=[file])
        page.get_by_role("button", name="Upload", exact=True).click()
        page.locator("#upload-list li", has_text=file["name"]).locator(
            ".upload-status", has_text="uploaded").wait_for()
    page.locator("#upload-list .near-upload", has_text=f"{files[1]['name']}:").wait_for()
    # The upload's answer names its look-alike at once; the group is labelled after the answer
    # (the near-duplicate work's later step), and the groups view reads the list once: wait for the
    # group before asking for it (a loaded full run once asked first and never saw it).
    def grouped() -> bool:
        groups = page.request.get("/api/builder/media/near-duplicates?per_page=50").json()["items"]
        return any(image["filename"] == files[0]["name"] for group in groups for image in group["images"])

    deadline = time.monotonic() + 30
    while not grouped():
        assert time.monotonic() < deadline, "the two uploads were never grouped"
        time.sleep(0.2)
    page.get_by_role("button", name="Show near duplicates").click()
    page.locator("#near-groups .near-group", has_text=files[0]["name"]).wait_for()
    pictures_drawn(page, "#near-groups img")
    return "top"


def library_page_alt(page) -> str:
    [image_id] = post_library(page, f"/state-{uuid.uuid4().hex[:6]}", 1, "hall")
    slug = f"state-{uuid.uuid4().hex[:6]}"
    assert page.request.put(f"/api/builder/pages/{slug}", headers={"X-CSRF-Token": csrf_of(page)},
                            data={"title": "Hall", "blocks": [{"type": "image", "media_id": image_id}]}).ok
    page.goto("/console/library")
    page.get_by_label("Page (its slug)").fill(slug)
    page.get_by_role("button", name="Show them").click()
    page.locator("#page-alt-list").get_by_label("Alt text for hall-0.jpg").wait_for()
    page.get_by_label("Page (its slug)").focus()
    return "here"


def editor(page) -> str:
    folder = f"/state-{uuid.uuid4().hex[:6]}"
    csrf = csrf_of(page)
    answer = page.request.post("/api/builder/media", headers={"X-CSRF-Token": csrf}, multipart={
        "file": {"name": "edit.jpg", "mimeType": "image/jpeg", "buffer": fresh_jpeg()}, "folder": folder},
        timeout=SETUP_MS)
    assert answer.ok, answer.text()
    library_folder(page, folder, 1)
    panel = open_panel(page, answer.json()["id"])
    panel.get_by_role("button", name="Edit edit.jpg").click()
    dialog = page.get_by_role("dialog", name="Edit edit.jpg")
    dialog.locator(".editor-stage[data-drawn]").wait_for()
    dialog.get_by_role("button", name="4:5").click()  # a crop box drawn on the picture
    return "dialog[open]"


def versions_compare(page) -> str:
    folder = f"/state-{uuid.uuid4().hex[:6]}"
    [media_id] = post_library(page, folder, 1, "versions")
    replaced = page.request.put(f"/api/builder/media/{media_id}", headers={"X-CSRF-Token": csrf_of(page)},
                                multipart={"file": {"name": "versions-0.jpg", "mimeType": "image/jpeg",
                                                    "buffer": unlike_jpeg(640, 480)}}, timeout=SETUP_MS)
    assert replaced.ok, replaced.text()
    library_folder(page, folder, 1)
    panel = open_panel(page, media_id)
    panel.get_by_role("button", name="Versions of versions-0.jpg").click()
    versions = panel.locator("li.version")
    versions.nth(1).wait_for()
    earlier = versions.nth(1).get_attribute("data-version")
    panel.get_by_role("button", name=f"Compare version {earlier} with the current one").click()
    panel.get_by_role("img", name=re.compile("Heat map of what changed")).wait_for()
    pictures_drawn(page, ".versions img")
    panel.locator(".panel-title").focus()
    return panel_walk(page)


def post_uploads(page, count: int) -> list[str]:
    csrf = csrf_of(page)
    ids = []
    for n in range(count):
        photo = {"name": f"mine-{n}.jpg", "mimeType": "image/jpeg", "buffer": unlike_jpeg(640, 480)}
        answer = page.request.post("/api/uploads", headers={"X-CSRF-Token": csrf},
                                   multipart={"file": photo}, timeout=SETUP_MS)
        assert answer.ok, answer.text()
        ids.append(answer.json()["id"])
    return ids


def uploads(page) -> str:
    post_uploads(page, 2)
    page.goto("/console/uploads")
    page.locator("#uploads li[role='option']").nth(1).wait_for()
    pictures_drawn(page, "#uploads img")
    return "top"


def uploads_panel(page) -> str:
    uploads(page)
    page.get_by_role("option", name="mine-1.jpg").click()
    panel = page.get_by_role("complementary", name="mine-1.jpg")
    panel.wait_for()
    panel.get_by_role("button", name="Versions of mine-1.jpg").click()
    panel.locator("li.version").first.wait_for()
    pictures_drawn(page, "#media-panel img")
    panel.locator(".panel-title").focus()
    return panel_walk(page)


def uploads_delete_confirm(page) -> str:
    uploads(page)
    page.get_by_role("option", name="mine-1.jpg").click()
    panel = page.get_by_role("complementary", name="mine-1.jpg")
    panel.get_by_role("button", name="Delete mine-1.jpg").click()
    page.get_by_role("dialog", name="Delete mine-1.jpg?").wait_for()
    return "dialog[open]"


def uploads_refused(page) -> str:
    refused_upload(page, "/console/uploads")
    return "top"


def links_created(page) -> str:
    page.goto("/console/uploads")
    page.get_by_label("Uploads go to").select_option("builder")
    page.get_by_label("Library folder").fill("/suppliers")
    page.get_by_label("Label (optional)").fill("For the state audit")
    page.get_by_role("button", name="Create link").click()
    page.locator("#link-created:not([hidden])").wait_for()
    page.locator("#links-table tbody tr", has_text="For the state audit").first.wait_for()
    page.get_by_label("Uploads go to").focus()
    return "here"


def deliveries(page) -> str:
    """Delivery numbers to show: a library image with a long file name served, replaced and
    served again (a row for each version, the earlier one without a thumbnail) and one never
    served (the never served and clean-up lists). The console's own loads are not counted."""
    from avenue.media import AppMedia, Buckets, Library

    live = SERVED[0]
    db = live.extensions["avenue.mongo"].db
    name = f"supplier-catalogue-autumn-front-view-{uuid.uuid4().hex}.jpg"
    served = stored(db, Buckets.BUILDER, unlike_jpeg(320, 240), filename=name)["_id"]
    stored(db, Buckets.BUILDER, unlike_jpeg(320, 240), filename=f"idle-{uuid.uuid4().hex[:6]}.jpg")
    for _ in range(2):
        assert page.request.get(f"/media/builder/{served}").ok
    flush_deliveries(live)
    new_bytes = Library.Upload(name, unlike_jpeg(320, 240))
    assert AppMedia.of(live).library(Buckets.BUILDER).replace(served, new_bytes)
    assert page.request.get(f"/media/builder/{served}").ok
    flush_deliveries(live)
    return str(served)


def ops(page) -> str:
    served = deliveries(page)
    page.goto("/console/ops")
    page.locator("#cards .card").first.wait_for()
    page.locator("#delivery-top tbody tr", has_text="(earlier version)").first.wait_for()
    page.locator("#delivery-top button[title$='" + served + "']").first.wait_for()
    page.locator("#cleanup-list li").first.wait_for()
    page.wait_for_load_state("networkidle")
    pictures_drawn(page, "#delivery img")
    return "top"


def ops_rerender(page) -> str:
    ops(page)
    page.get_by_role("button", name=re.compile("^Re-render")).click()
    page.locator("#rerender-status:not([hidden])").wait_for()
    return "top"


# name -> (the role it is seen as, None: nobody logged in; the templates it shows; its builder)
STATES: dict[str, tuple[str | None, tuple[str, ...], Callable[..., str]]] = {
    "login": (None, ("login.html",), login),
    "login-refused": (None, ("login.html",), login_refused),
    "forbidden": ("editor", ("forbidden.html",), forbidden),
    "not-found": (None, ("error.html",), not_found),
    "products": ("admin", ("products.html",), products),
    "products-refused": ("admin", ("products.html",), products_refused),
    "product": ("admin", ("product.html",), product),
    "product-empty": ("admin", ("product.html",), product_empty),
    "product-refused": ("admin", ("product.html",), product_refused),
    "product-url-import": ("admin", ("product.html",), product_url_import),
    "library": ("admin", ("library.html",), library),
    "library-forms-open": ("admin", ("library.html",), library_forms_open),
    "library-url-import": ("editor", ("library.html",), library_url_import),
    "library-messages": ("admin", ("library.html",), library_messages),
    "library-panel": ("admin", ("library.html",), library_panel),
    "library-delete-refused": ("admin", ("library.html",), library_delete_refused),
    "library-selection": ("admin", ("library.html",), library_selection),
    "library-trash": ("admin", ("library.html",), library_trash),
    "library-duplicates": ("admin", ("library.html",), library_duplicates),
    "library-look-alikes": ("editor", ("library.html",), library_look_alikes),
    "library-page-alt": ("admin", ("library.html",), library_page_alt),
    "editor": ("editor", ("library.html",), editor),
    "versions-compare": ("editor", ("library.html",), versions_compare),
    "uploads": ("editor", ("uploads.html", "links.html"), uploads),
    "uploads-panel": ("ops", ("uploads.html",), uploads_panel),
    "uploads-delete-confirm": ("editor", ("uploads.html",), uploads_delete_confirm),
    "uploads-refused": ("ops", ("uploads.html",), uploads_refused),
    "links-created": ("admin", ("uploads.html", "links.html"), links_created),
    "ops": ("ops", ("ops.html",), ops),
    "ops-rerender": ("admin", ("ops.html",), ops_rerender),
}


def test_the_list_of_states_is_the_docstring_s():
    listed = re.findall(r"^- ([a-z-]+):", __doc__ or "", flags=re.MULTILINE)
    assert listed == list(STATES)


def test_every_screen_and_template_has_a_state():
    """Each screen's template (and each template it includes) is shown by at least one state."""
    from avenue.console.views import SCREENS

    shown = {template for _, templates, _ in STATES.values() for template in templates}
    pages = {path.name for path in TEMPLATES.glob("*.html")} - {"base.html"}
    assert pages - shown == set()
    assert {f"{screen}.html" for screen in SCREENS} <= shown


# What the focused control looks like: the element drawn for it (itself, or its label when the
# control is hidden, as a file input under its "Choose files" label), whether that draws its
# outline (at least 2 px, not "none") and with what contrast against what is behind it (or as
# a ring of two colours), its size when too small to see, the box that cuts the ring off, and
# what is drawn at its middle when that is something else (a sticky bar over it); whether it is
# inside ``scope`` (a selector), when the state is modal.
FOCUS_DRAWN = """(scope) => { const e = document.activeElement;
    if (!e || e === document.body) return null;
    let shown = e;
    let box = e.getBoundingClientRect();
    if ((box.width < 4 || box.height < 4) && e.labels?.length) {
      shown = e.labels[0];
      box = shown.getBoundingClientRect();
    }
    const style = getComputedStyle(shown);
    const x = Math.min(Math.max(box.left + box.width / 2, 0), innerWidth - 1);
    const y = Math.min(Math.max(box.top + box.height / 2, 0), innerHeight - 1);
    const through = shown.style.pointerEvents;  // a marker the pointer passes through is drawn all the same
    shown.style.pointerEvents = 'auto';
    const hit = document.elementFromPoint(x, y);
    shown.style.pointerEvents = through;
    const inside = hit && (shown.contains(hit) || hit.contains(shown) || [...(e.labels || [])].includes(hit));
    const where = (node) => `${node.tagName.toLowerCase()}#${node.id}.${[...node.classList].join('.')}`;
    // The outline against what it is drawn on (outside the box: the nearest background behind
    // it), as WCAG measures a focus ring (1.4.11): at least 3:1.
    const rgb = (colour) => (colour.match(/[\\d.]+/g) || []).map(Number);
    const light = ([r, g, b]) => [r, g, b].map((c) => c / 255)
      .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4))
      .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
    let behind = parseFloat(style.outlineOffset) >= 0 ? shown.parentElement : shown;
    const seeThrough = (node) => (rgb(getComputedStyle(node).backgroundColor)[3] ?? 1) < 0.5;
    while (behind && seeThrough(behind)) behind = behind.parentElement;
    const ground = behind ? rgb(getComputedStyle(behind).backgroundColor) : [255, 255, 255];
    const ratio = (one, other) => { const [hi, lo] = [one, other].sort((a, b) => b - a);
      return Math.round(((hi + 0.05) / (lo + 0.05)) * 100) / 100; };
    const contrast = ratio(light(rgb(style.outlineColor)), light(ground));
    // Or a ring of two colours 9:1 apart, one of them 3:1 on anything (over a picture, WCAG's
    // technique C40): the outline inside a box-shadow ring wider than it.
    // (Outward from the border's edge the outline spans offset to offset + width; an outer ring
    // spans 0 to its spread, an inset one minus its spread to 0.)
    const [width, offset] = [parseFloat(style.outlineWidth), parseFloat(style.outlineOffset)];
    const shadow = style.boxShadow.match(/^(rgba?\\([^)]*\\)) 0px 0px 0px ([\\d.]+)px( inset)?/);
    const spread = shadow ? parseFloat(shadow[2]) : 0;
    const twoTone = !!shadow && (shadow[3] ? spread > -offset : spread > offset + width)
      && ratio(light(rgb(style.outlineColor)), light(rgb(shadow[1]))) >= 9;
    // Not cut off: the ring inside the window and every box around it that clips what overflows.
    const reach = Math.max(0, offset + width, shadow && !shadow[3] ? spread : 0);
    let clipped = null;
    for (let up = shown.parentElement; up; up = up.parentElement) {
      const around = getComputedStyle(up);
      const view = up === document.documentElement;  // the window
      if (!view && around.overflowX === 'visible' && around.overflowY === 'visible') continue;
      const frame = view ? {left: 0, top: 0, right: innerWidth, bottom: innerHeight}
        : up.getBoundingClientRect();
      const within = (grow) => box.left - grow >= frame.left - 0.5 && box.right + grow <= frame.right + 0.5
        && box.top - grow >= frame.top - 0.5 && box.bottom + grow <= frame.bottom + 0.5;
      const apart = box.right <= frame.left || box.left >= frame.right || box.bottom <= frame.top
        || box.top >= frame.bottom;
      // The control in view with its ring cut off, or out of view. (Partly in view is the
      // browser's choice for a text box: it scrolls to the caret.)
      if ((within(0) && !within(reach)) || apart) {
        clipped = view ? 'the window' : `${where(up)} (overflow ${around.overflow})`;
        break;
      }
    }
    const round = (n) => Math.round(n);
    return {key: e.outerHTML.slice(0, 200), inside: !scope || !!e.closest(scope),
            name: (e.getAttribute('aria-label') || e.labels?.[0]?.textContent.trim()
                   || e.textContent.trim().slice(0, 60) || e.id || e.tagName).replace(/\\s+/g, ' '),
            drawn: where(shown),
            outlined: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
            contrast, twoTone, ground: `rgb(${ground.slice(0, 3).join(', ')})`,
            small: box.width < 4 || box.height < 4 ? `${box.width}x${box.height}` : null, clipped,
            covered: hit && !inside ? `${where(hit)} at ${round(x)},${round(y)} (the control: `
              + `${round(box.left)},${round(box.top)} ${round(box.width)}x${round(box.height)})` : null}; }"""


def focus_walk(page, start: str, limit: int = 150) -> tuple[list[dict], str]:
    """Tab from the page's start (``start`` "top") or from the focus the state left ("here",
    or a modal part's selector: a dialog, the details on a phone): how each
    control reached shows its focus (``FOCUS_DRAWN``), and how the walk ended: "round" (a
    control came round again), "left" (the focus left the page for the browser's own
    toolbar) or "limit" (``limit`` stops)."""
    if start == "top":
        # Focus the body itself (a blur would leave Tab's starting point on the control blurred).
        page.evaluate("""() => { const body = document.body; body.tabIndex = -1; body.focus();
            body.removeAttribute('tabindex'); window.scrollTo(0, 0); }""")
    seen: list[dict] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        stop = page.evaluate(FOCUS_DRAWN, None if start in ("top", "here") else start)
        if stop is None:
            return seen, "left"
        if any(stop["key"] == earlier["key"] for earlier in seen):
            return seen, "round"
        seen.append(stop)
    return seen, "limit"


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("state", list(STATES))
def test_every_page_state_passes_the_audit_and_shows_the_focus(
        live, browser, open_as, answers_wait_for_lookups, state, width):
    """Uploads' answers wait for their look-alikes (``answers_wait_for_lookups``): an upload
    names them as it would on a machine less loaded than a test run's."""
    role, _, build = STATES[state]
    height = WIDTHS[width]
    if role is None:
        context = new_context(browser, live.url, width, height, audit=True)
        page = context.new_page()
        page.on("pageerror", lambda error: pytest.fail(f"script error: {error}"))
    else:
        context = None
        page = open_as(role, width=width, height=height, audit=True)
    try:
        start = build(page)
        violations = axe_violations(page)
        assert violations == [], json.dumps(violations, indent=1)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        shot(page, f"state-{state}-{width}", full_page=False)
        stops, ended = focus_walk(page, start)
        assert stops, "Tab reached no control"
        unseen = [stop for stop in stops
                  if not stop["outlined"] or (stop["contrast"] < 3 and not stop["twoTone"])
                  or stop["small"] or stop["clipped"] or stop["covered"]]
        assert unseen == [], json.dumps(unseen, indent=1)
        assert ended != "limit", [stop["name"] for stop in stops]
        if start not in ("top", "here"):  # modal: Tab goes round inside it, never out of it
            assert ended == "round" and all(stop["inside"] for stop in stops), (
                ended, [(stop["name"], stop["inside"]) for stop in stops])
    finally:
        if context is not None:
            context.close()
