"""What a shop and its ops meet first in the console (issue 64), in a real browser: images
imported from URLs into the library and onto a product (a row per URL in words, refusals
naming the setting an admin would change), a product without photos, and every console page
on a 360 px phone: long names wrap; the file inputs read whole there and at 1280 px."""

from __future__ import annotations

import uuid

import pytest

from tests.support.browser import axe_violations, shot
from tests.support.console import database, flush_deliveries, unlike_jpeg
from tests.support.imageserver import ImageServer
from tests.support.stored import stored

# One xdist worker runs the whole module (make test's --dist loadgroup): its Chromium and its
# served app (tests/system/console/conftest.py) start once; the other console modules run beside it.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console_first_screens")]

JPEG = {"Content-Type": "image/jpeg"}


@pytest.fixture
def supplier(live, monkeypatch):
    """A supplier on loopback the app trusts (its network and its port only, as an admin would
    set them up for a supplier on the shop's network); its images are served as the test says."""
    server = ImageServer()
    monkeypatch.setitem(live.config, "AVENUE_URL_IMPORT_ALLOW_NETWORKS", ["127.0.0.1/32"])
    monkeypatch.setitem(live.config, "AVENUE_URL_IMPORT_PORTS", f"80,443,{server.port}")
    yield server
    server.close()


def rows(page, list_id: str) -> list[tuple[str, str]]:
    return [(row.locator(".upload-name").inner_text(), row.locator(".upload-status").inner_text())
            for row in page.locator(f"#{list_id} li").all()]


def test_urls_pasted_into_the_library_each_say_what_became_of_them(live, open_as, supplier):
    page = open_as("editor", audit=True)
    good = supplier.serve(f"/lamp-{uuid.uuid4().hex[:6]}.jpg", body=unlike_jpeg(320, 240), headers=JPEG)
    other_port = f"http://127.0.0.1:{supplier.port + 1 if supplier.port < 65535 else 1}/lamp.jpg"
    folder = f"/imported-{uuid.uuid4().hex[:6]}"
    page.goto("/console/library")
    page.get_by_label("Folder (optional)").fill(folder)  # the upload form's labels go with the URLs
    page.get_by_role("button", name="Import from URLs…").click()
    page.get_by_label("Or import from URLs, one a line").fill(f"{good}\n\n{other_port}\n{good}\n")
    page.get_by_role("button", name="Import", exact=True).click()
    status = page.locator("#url-status", has_text="Done:")
    status.wait_for()
    assert status.inner_text() == "Done: 1 of 2 imported, 1 refused (each says why)."
    [(first, stored), (second, refused)] = rows(page, "url-list")  # the repeated line once
    assert first == good and stored.startswith("stored as lamp-")
    assert second == other_port and refused.startswith("Refused: Port ")
    assert "AVENUE_URL_IMPORT_PORTS" in refused  # the setting an admin would change
    assert page.locator("#url-list li.refused .upload-status").count() == 1
    listed = page.request.get(f"/api/builder/media?folder={folder}").json()
    assert [item["filename"] for item in listed["items"]] == [good.rsplit("/", 1)[1]]
    # The stored image leads the library's grid (newest first).
    page.locator("#media-grid li[role='option']").first.locator(".filename", has_text="lamp-").wait_for()
    assert axe_violations(page) == []
    shot(page, "url-import-library", full_page=False)

    # The same URL again: already there, nothing stored twice.
    page.get_by_label("Or import from URLs, one a line").fill(good)
    page.get_by_role("button", name="Import", exact=True).click()
    page.locator("#url-status", has_text="Done: 1 of 1 imported.").wait_for()
    [(_, again)] = rows(page, "url-list")
    assert again.startswith("already there as lamp-")


def test_a_private_address_is_refused_naming_the_setting_that_trusts_a_network(live, open_as, monkeypatch):
    monkeypatch.setitem(live.config, "AVENUE_URL_IMPORT_PORTS", "")  # any port: only the address refuses
    page = open_as("editor")
    page.goto("/console/library")
    page.get_by_role("button", name="Import from URLs…").click()
    page.get_by_label("Or import from URLs, one a line").fill("http://10.0.0.7:8080/lamp.jpg")
    page.get_by_role("button", name="Import", exact=True).click()
    page.locator("#url-status", has_text="Done: 0 of 1 imported, 1 refused").wait_for()
    [(_, refused)] = rows(page, "url-list")
    assert refused.startswith("Refused: 10.0.0.7 is 10.0.0.7: private")
    assert "AVENUE_URL_IMPORT_ALLOW_NETWORKS" in refused


def test_urls_pasted_on_a_product_add_its_photos(live, open_as, supplier):
    page = open_as("admin")
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    sku = f"URL-{uuid.uuid4().hex[:6]}"
    assert page.request.post("/api/shop/products", headers={"X-CSRF-Token": csrf},
                             data={"sku": sku, "name": "Imported", "price": 5}).ok
    photo = supplier.serve("/front.jpg", body=unlike_jpeg(400, 300), headers=JPEG)
    html = supplier.serve("/page.html", body=b"<html>not a photo</html>",
                          headers={"Content-Type": "text/html"})
    page.goto(f"/console/products/{sku}")
    page.get_by_label("Or import photos from URLs, one a line").fill(f"{photo}\n{html}")
    page.get_by_role("button", name="Import", exact=True).click()
    page.locator("#url-status", has_text="Done:").wait_for()
    [(_, added), (_, refused)] = rows(page, "url-list")
    assert added == "added to the product" and refused.startswith("Refused: ")
    page.locator("#photos .photo").first.wait_for()
    assert page.locator("#photos .photo").count() == 1
    page.locator("#alt-list li").first.wait_for()  # the new photo has no alt text yet
    page.get_by_label("Or import photos from URLs, one a line").fill(photo)
    page.get_by_role("button", name="Import", exact=True).click()
    page.locator("#url-status", has_text="Done: 1 of 1 imported.").wait_for()
    assert rows(page, "url-list") == [(photo, "already on this product")]


def test_a_product_without_photos_says_so_not_that_every_photo_has_alt_text(live, open_as):
    page = open_as("admin")
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    sku = f"BARE-{uuid.uuid4().hex[:6]}"
    assert page.request.post("/api/shop/products", headers={"X-CSRF-Token": csrf},
                             data={"sku": sku, "name": "No photo yet", "price": 5}).ok
    page.goto(f"/console/products/{sku}")
    none = page.locator("#alt-none")
    none.wait_for()
    assert none.inner_text() == "Add a photo first: this product has none."
    page.locator("#files").set_input_files(files=[{"name": "first.jpg", "mimeType": "image/jpeg",
                                                   "buffer": unlike_jpeg(320, 240)}])
    page.locator("#alt-list li").first.wait_for()  # the new photo has none: it is listed
    assert none.is_hidden()


def test_long_names_wrap_on_every_console_page_on_a_phone(live, open_as):
    """File names, a product's name and its SKU have no spaces to break at: on a 360 px phone
    each wraps, and no console page scrolls sideways (a served image's delivery row and the
    chart's caption, a never served one in the lists below them, a product's title and facts)."""
    from avenue.media import Buckets

    long = f"supplier-catalogue-2026-autumn-collection-front-view-{uuid.uuid4().hex}"
    served = stored(database(live), Buckets.BUILDER, unlike_jpeg(64, 48), filename=f"{long}.png")
    idle = stored(database(live), Buckets.BUILDER, unlike_jpeg(64, 48), filename=f"{long}-idle.png")
    page = open_as("admin", width=360, height=740)
    for _ in range(3):
        assert page.request.get(f"/media/builder/{served['_id']}").ok
    flush_deliveries(live)
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    sku = f"SKU-{uuid.uuid4().hex}"
    assert page.request.post("/api/shop/products", headers={"X-CSRF-Token": csrf},
                             data={"sku": sku, "name": long, "price": 5}).ok
    photo = {"name": f"{long}-photo.jpg", "mimeType": "image/jpeg", "buffer": unlike_jpeg(320, 240)}
    assert page.request.post(f"/api/shop/products/{sku}/images", headers={"X-CSRF-Token": csrf},
                             multipart={"images": photo}).ok
    assert page.request.post("/api/uploads", headers={"X-CSRF-Token": csrf}, multipart={"file": photo}).ok

    page.goto("/console/ops")
    row = page.locator("#delivery-top tbody tr", has=page.locator(f"button[title='builder/{served['_id']}']"))
    row.wait_for()
    assert row.bounding_box()["width"] <= 360 - 16, row.bounding_box()
    row.locator("button").click()
    page.locator("#delivery-image", has_text=long).wait_for()
    page.locator("#delivery-never li", has_text=f"{long}-idle.png").wait_for()
    page.locator("#cleanup-list li", has_text=f"{long}-idle.png").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shot(page, "first-screens-ops-360", full_page=True)
    for path, drawn in ((f"/console/products/{sku}", "#p-name"),
                        ("/console/products", "#products-table tbody tr"),
                        (f"/console/library?open={idle['_id']}", "#media-panel .panel-title"),
                        ("/console/uploads", "#uploads li[role='option']")):
        page.goto(path)
        page.locator(drawn, has_text=long).first.wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, path


def test_the_ops_dashboards_thumbnails_are_drawn_without_scrolling_on_a_phone(live, open_as):
    """Every thumbnail of the Delivery section (most served, heaviest, never served, clean-up)
    is drawn once the page is, on a phone where most of them are thousands of pixels below
    the screen: none is left blank until scrolled to."""
    from avenue.media import Buckets

    ids = [stored(database(live), Buckets.BUILDER, unlike_jpeg(64, 48), filename=f"shelf-{n}.jpg")["_id"]
           for n in range(30)]
    page = open_as("ops", width=360, height=740)
    for image in ids[:3]:
        assert page.request.get(f"/media/builder/{image}").ok
    flush_deliveries(live)
    page.goto("/console/ops")
    page.locator("#delivery-top tbody tr").first.wait_for()
    page.locator("#cleanup-list li").nth(len(ids) - 4).wait_for()
    thumbs = page.locator("#delivery img.delivery-thumb")
    furthest = thumbs.evaluate_all("imgs => Math.max(...imgs.map((i) => i.getBoundingClientRect().top))")
    # Beyond the distance at which Chromium fetches a lazy picture ahead (1,250 to 3,000 px by
    # the connection): a lazy thumbnail there would wait for a scroll.
    assert furthest > 740 + 3000, furthest
    page.wait_for_load_state("networkidle")  # every picture asked for has come
    blank = thumbs.evaluate_all("imgs => imgs.filter((i) => !(i.complete && i.naturalWidth > 0)).length")
    assert blank == 0, f"{blank} of {thumbs.count()} thumbnails not drawn"
    assert page.evaluate("scrollY") == 0


# Whether a file input shows its whole text: its width against what its text needs, its button
# (the ::file-selector-button's used width and its margin) and Chromium's "No file chosen" in
# the input's font. (Its intrinsic width is no measure: it keeps room for 34 characters; and
# Chromium elides the words in the middle, "No …sen", so nothing overflows to compare.)
CLIPPED = """(input) => { const button = getComputedStyle(input, '::file-selector-button');
    const text = document.createElement('canvas').getContext('2d');
    text.font = getComputedStyle(input).font;
    const needs = parseFloat(button.width) + parseFloat(button.marginInlineEnd)
      + text.measureText('No file chosen').width;
    return {needs, has: input.clientWidth}; }"""


@pytest.mark.parametrize(("path", "width"), [("/console/library", 1280), ("/console/library", 360),
                                           ("/console/uploads", 1280), ("/console/uploads", 360)])
def test_the_consoles_file_inputs_read_whole_on_a_desktop_and_a_phone(live, open_as, path, width):
    # At 1280 px the library's six fields shared one row and each file box read
    # "Choose Files No …sen"; on a phone the page's font size needed more than the screen.
    page = open_as("editor", width=width, height=740 if width < 480 else 800)
    page.goto(path)
    if width < 480:
        page.get_by_role("button", name="Add images…").click()
    boxes = page.locator("#upload-form input[type='file']")
    boxes.first.wait_for()
    assert boxes.count() == 2  # one for images, one for a whole folder
    for box in boxes.all():
        widths = box.evaluate(CLIPPED)
        assert widths["has"] + 0.5 >= widths["needs"], (box.get_attribute("id"), widths)
    if path == "/console/library":
        page.get_by_role("button", name="Import from URLs…").click()
        page.get_by_label("Or import from URLs, one a line").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    shot(page, f"first-screens-{path.rsplit('/', 1)[1]}-{width}", full_page=False)
