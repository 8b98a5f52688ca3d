"""The console's products, uploads and ops screens in a real browser, each role's screens,
and the accessibility audit and the phone's width on every screen."""

from __future__ import annotations

import datetime as dt
import io
import json
import mimetypes
import re
import threading
import uuid

import pytest

from tests.helpers import IMAGES, Auth, bucket_snapshot
from tests.support.browser import (
    axe_violations,
    drawn,
    hold_first,
    let_go,
    new_context,
    shot,
    wait_until_asked,
)
from tests.support.console import (
    PASSWORD,
    confirm,
    database,
    flush_deliveries,
    fresh_jpeg,
    loaded_pictures,
    look_alikes_asked,
    seed_library,
)
from tests.support.stored import stored

# One xdist worker runs the whole module (make test's --dist loadgroup): its Chromium and its
# served app (tests/system/console/conftest.py) start once; the other console modules run beside it.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console_products_and_ops")]

PHOTOS = ["progressive.jpg", "alpha.png", "grayscale.jpg"]


def overflowing(page, selector: str) -> list[str]:
    """The elements under ``selector`` whose content runs out of their box (wider than it)."""
    return page.evaluate("""(selector) => [...document.querySelectorAll(selector)]
        .filter((node) => node.scrollWidth > node.clientWidth + 1)
        .map((node) => `${node.tagName.toLowerCase()}: ${node.textContent.slice(0, 60)}`)""", selector)


def tab_stops(page, limit: int = 80) -> list[str]:
    """The accessible names (or ids) of what Tab reaches from the top of the page, in order."""
    page.locator("body").focus()
    names: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        name = page.evaluate("""() => { const el = document.activeElement;
            if (!el || el === document.body) return null;
            return el.getAttribute('aria-label') || el.labels?.[0]?.textContent.trim()
                || el.textContent.trim().slice(0, 80) || el.id; }""")
        if name is None or (names and name == names[0]):
            break
        names.append(name)
    return names


def order_on_page(page) -> list[str]:
    return page.locator("#photos .photo .filename").all_inner_texts()


def test_an_admin_logs_in_and_manages_a_products_photos(live, browser):
    email, _ = Auth(live).user("admin", password=PASSWORD)
    context = new_context(browser, live.url)
    page = context.new_page()
    try:
        page.goto("/console/products")  # not logged in: the login form, then back here
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Log in").click()
        page.get_by_text("The email or password is not right.").wait_for()
        shot(page, "login")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/console/products")
        sku = f"CHAIR-{uuid.uuid4().hex[:4]}"
        page.get_by_label("SKU", exact=True).fill(sku)
        page.get_by_label("Name", exact=True).fill("Red chair")
        page.get_by_label("Price").fill("49.90")
        page.get_by_role("button", name="Create product").click()
        page.wait_for_url(f"**/console/products/{sku}")

        page.locator("#files").set_input_files([str(IMAGES / "good" / name) for name in PHOTOS])
        rows = page.locator("#upload-list li")
        for index in range(3):
            rows.nth(index).locator(".upload-status", has_text="uploaded").wait_for()
            assert rows.nth(index).locator("progress").get_attribute("value") == "100"  # the bar it showed
        assert order_on_page(page) == PHOTOS

        before = bucket_snapshot(database(live))
        page.locator("#files").set_input_files(str(IMAGES / "bad" / "document.pdf"))
        refused = page.locator("#upload-list li.refused")
        refused.wait_for()
        api_reason = context.request.post(f"/api/shop/products/{sku}/images", multipart={
            "images": {"name": "document.pdf", "mimeType": "application/pdf",
                       "buffer": (IMAGES / "bad" / "document.pdf").read_bytes()}},
            headers={"X-CSRF-Token": context.request.get("/api/auth/csrf").json()["csrf_token"]})
        assert api_reason.status == 415
        assert refused.inner_text().endswith(f"Refused: {api_reason.json()['error']['message']}")
        assert bucket_snapshot(database(live)) == before
        assert len(order_on_page(page)) == 3
        loaded_pictures(page, "#photos img")  # rendered on their first request: the shot shows them
        shot(page, "product")

        # Drag the third photo onto the first: it becomes the primary one.
        page.locator("#photos .photo").nth(2).drag_to(page.locator("#photos .photo").nth(0))
        page.get_by_text("Order saved: now photo 1 of 3.").wait_for(state="attached")
        assert order_on_page(page) == [PHOTOS[2], PHOTOS[0], PHOTOS[1]]
        # Keyboard: focus the (new) first photo, Alt+Down twice moves it last.
        first = page.locator("#photos .photo").nth(0)
        first.focus()
        page.keyboard.press("Alt+ArrowDown")
        page.get_by_text("Order saved: now photo 2 of 3.").wait_for(state="attached")
        page.keyboard.press("Alt+ArrowDown")  # focus stayed on the moved photo
        page.get_by_text("Order saved: now photo 3 of 3.").wait_for(state="attached")
        page.reload()
        page.locator("#photos .photo").nth(2).wait_for()
        assert order_on_page(page) == [PHOTOS[0], PHOTOS[1], PHOTOS[2]]
        # The same order through the buttons (Tab + Enter reach them like any button).
        page.get_by_role("button", name=f"Move {PHOTOS[1]} earlier").press("Enter")
        page.get_by_text("Order saved: now photo 1 of 3.").wait_for(state="attached")
        page.reload()
        page.locator("#photos .photo").nth(2).wait_for()
        assert order_on_page(page) == [PHOTOS[1], PHOTOS[0], PHOTOS[2]]
        stored = context.request.get(f"/api/shop/products/{sku}").json()
        assert [image["filename"] for image in stored["images"]] == order_on_page(page)

        page.get_by_text("Variants").first.click()
        assert page.locator("#photos .photo").first.get_by_role("link", name="thumb").is_visible()
        page.get_by_role("button", name=f"Delete {PHOTOS[2]}").click()
        confirm(page, "Delete")
        page.get_by_text(f"{PHOTOS[2]} deleted.").wait_for(state="attached")
        assert order_on_page(page) == [PHOTOS[1], PHOTOS[0]]
        # Dropping a file on the drop zone uploads it like the picker does.
        data = (IMAGES / "good" / "png16.png").read_bytes()
        page.evaluate("""([bytes, name]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], name, {type: 'image/png'}));
            document.getElementById('dropzone').dispatchEvent(
                new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
        }""", [list(data), "png16.png"])
        page.locator("#upload-list li", has_text="png16.png").get_by_text("uploaded").wait_for()
        assert order_on_page(page) == [PHOTOS[1], PHOTOS[0], "png16.png"]
        # A product from before the move to GridFS: its legacy references are shown as such.
        legacy = f"LAMP-{uuid.uuid4().hex[:4]}"
        database(live).shop_products.insert_one({"sku": legacy, "name": "Old lamp", "price": 12,
                                                 "images": ["/uploads/lamp.jpg", "https://old.example/lamp2.jpg"]})
        page.goto(f"/console/products/{legacy}")
        page.get_by_text("/uploads/lamp.jpg (local disk)").wait_for()
        page.get_by_text("https://old.example/lamp2.jpg (elsewhere)").wait_for()
        page.goto("/console/products")
        page.get_by_role("row", name=f"{legacy}").get_by_text("2 legacy").wait_for()
        shot(page, "products")
        page.get_by_label("Search by SKU or name").fill(sku)
        page.get_by_role("button", name="Search").click()
        page.get_by_role("link", name=sku).wait_for()
        assert page.locator("#products-table tbody tr").count() == 1
    finally:
        context.close()


def own_copy(name: str) -> bytes:
    """The fixture ``name`` (a JPEG) with one pixel of its own: bytes no other test stores. The
    products bucket dedupes by content across products, so the fixture's own bytes under
    another file name made later tests' photos (product_with_photos) that image, named so."""
    from PIL import Image as PILImage

    picture = PILImage.open(IMAGES / "good" / name)
    picture.load()
    picture.putpixel((0, 0), tuple(uuid.uuid4().bytes[:3]))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=90, progressive=True)
    return out.getvalue()


def test_product_prices_show_in_the_shop_s_currency(live, open_as):
    page = open_as("admin")
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    sku = f"PRICE-{uuid.uuid4().hex[:6]}"
    made = page.request.post("/api/shop/products", headers={"X-CSRF-Token": csrf},
                             data={"sku": sku, "name": "Priced lamp", "price": 1999.5})
    assert made.ok, made.text()
    page.goto(f"/console/products/{sku}")
    assert page.evaluate("() => document.documentElement.dataset.currency") == "EUR"  # the default
    page.locator("#p-price", has_text="€").wait_for()
    assert page.locator("#p-price").inner_text() == "€1,999.50"
    page.goto(f"/console/products?q={sku}")
    page.get_by_role("row", name=re.compile(sku)).get_by_text("€1,999.50").wait_for()


def after_content(locator) -> str:
    """What CSS draws after ``locator``'s element (its ``::after`` content), or "none"."""
    return locator.evaluate("(node) => getComputedStyle(node, '::after').content")


def test_a_product_photo_says_it_is_being_prepared_until_its_picture_arrives(live, open_as):
    """A rendition made on its first request can take seconds: the photo says so over its
    dominant colour instead of showing a flat colour only, and not once it is drawn."""
    page = open_as("admin", audit=True)
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    sku = f"PREP-{uuid.uuid4().hex[:6]}"
    assert page.request.post("/api/shop/products", headers={"X-CSRF-Token": csrf},
                             data={"sku": sku, "name": "Slow lamp", "price": 25}).ok
    added = page.request.post(f"/api/shop/products/{sku}/images", headers={"X-CSRF-Token": csrf},
                              multipart={"images": {"name": "slow.jpg", "mimeType": "image/jpeg",
                                                    "buffer": fresh_jpeg(640, 480)}})
    assert added.ok, added.text()
    held = hold_first(page, "**/media/**/w_*")  # the photo's rendition, as if still being made
    page.goto(f"/console/products/{sku}", wait_until="domcontentloaded")
    wait_until_asked(page, held)
    photo = page.locator("#photos .photo picture")
    photo.and_(page.locator("[data-state='preparing']")).wait_for()
    assert after_content(photo) == '"Being prepared…"'
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)
    shot(page, "product-photo-preparing", full_page=False)
    let_go(page, held[0])
    photo.and_(page.locator("[data-state='ready']")).wait_for()
    assert after_content(photo) == "none"
    loaded_pictures(page, "#photos img")


def test_the_grids_load_renditions_that_fit_their_cells_as_avif(live, open_as):
    """The library, a product's photos and the uploads draw each photo from the rendition on
    the width ladder that fits its cell (sizes="auto": the cell's own width), in AVIF (this
    Chromium takes it), never the 600 or 1600 px variants."""
    page = open_as("admin")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if "/media/" in request.url else None)
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    photo = {"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": own_copy("progressive.jpg")}
    for path, field in (("/api/builder/media", "file"), ("/api/uploads", "file")):
        answer = page.request.post(path, headers={"X-CSRF-Token": csrf}, multipart={field: photo})
        assert answer.ok, answer.text()
    sku = f"LAMP-{uuid.uuid4().hex[:4]}"
    made = page.request.post("/api/shop/products", headers={"X-CSRF-Token": csrf},
                             data={"sku": sku, "name": "Lamp", "price": 1900})
    assert made.ok, made.text()
    added = page.request.post(f"/api/shop/products/{sku}/images", headers={"X-CSRF-Token": csrf},
                              multipart={"images": photo})
    assert added.ok, added.text()

    screens = (("/console/library", "#media-grid img"), (f"/console/products/{sku}", "#photos img"),
               ("/console/uploads", "#uploads img"))
    for screen, selector in screens:
        asked.clear()
        page.goto(screen)
        page.locator(selector).first.wait_for()
        pictures = loaded_pictures(page, selector)
        for picture in pictures:
            # The smallest ladder step at least as wide as the cell (1x here): never the whole ladder's top.
            width = int(picture["src"].split("/w_", 1)[1].split(".", 1)[0])
            assert picture["src"].split("?")[0].endswith(".avif"), picture
            assert picture["drawn"] <= width <= 2 * max(picture["drawn"], 160), (screen, picture)
        assert any("/w_" in url and ".avif" in url for url in asked), (screen, asked)
        assert not [url for url in asked if "/card" in url or "/gallery" in url], (screen, asked)
        shot(page, f"renditions-{screen.split('/')[2]}")


def test_anyone_logged_in_uploads_and_copies_a_signed_link(live, open_as):
    page = open_as("ops")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    page.goto("/console/uploads")
    page.get_by_label("Image", exact=True).set_input_files(str(IMAGES / "good" / "alpha.png"))
    page.get_by_role("button", name="Upload", exact=True).click()
    item = page.locator("#uploads .media-card").first
    item.wait_for()
    assert item.locator(".badge").inner_text() == "private"
    item.click()  # its details, in the panel beside the grid
    panel = page.locator("#media-panel")
    panel.get_by_role("button", name="Copy link of alpha.png").click()
    panel.get_by_text("Link copied.").wait_for()
    link = page.evaluate("navigator.clipboard.readText()")
    assert page.request.get(link).status == 200  # the signed link opens the file
    assert page.request.get(link.split("?")[0]).status in (403, 404)  # not without its signature

    page.get_by_label("Image", exact=True).set_input_files(str(IMAGES / "good" / "grayscale.jpg"))
    page.get_by_label("Public").check()
    page.get_by_role("button", name="Upload", exact=True).click()
    public = page.locator("#uploads .media-card", has_text="grayscale.jpg")
    public.locator(".badge", has_text="public").wait_for()
    loaded_pictures(page, "#uploads img")  # rendered on their first request: the shot shows them
    shot(page, "uploads")
    page.get_by_role("button", name="Delete alpha.png").click()
    confirm(page, "Delete")
    page.get_by_text("alpha.png deleted.").wait_for()
    assert page.request.get(link).status == 404


def seed_history(live) -> None:
    """Thirty days of 6-hourly samples (two more images each) and two alerts, as the sampler
    records them."""
    from avenue import monitoring
    from avenue.media import Buckets
    from avenue.media.effects import uploads as upload_counts
    from avenue.monitoring import alerts, history

    db = database(live)
    monitoring.ensure_indexes(db, 90)
    # Half an hour back, so no sample sits on the edge of a range however long the test takes.
    moment = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
    quota = 40 * 1024 * 1024
    for step in range(0, 30 * 24, 6):
        at = moment - dt.timedelta(hours=30 * 24 - step)
        originals = 10 + step // 3
        used = 2_000_000 + step * 40_000
        storage = {"gridfs_bytes": used - 300_000, "database_size": {"storage_bytes": used},
                   "buckets": {"p": {"alias": "products", "files": originals * 5, "originals": originals,
                                     "bytes": used - 300_000}},
                   "quota": {"bytes": quota, "used_bytes": used, "percent": round(100 * used / quota, 2)}}
        history.record(db, history.build_sample(storage, {"safe": True}, at, at))
        upload_counts.record(db, Buckets.PRODUCTS, 2, at)  # as the uploads that grew the store were counted
    db[upload_counts.UPLOADS].delete_many({"_id": upload_counts.SINCE_ID})
    upload_counts.start_counting(db, moment - dt.timedelta(days=31))
    crossings = [alerts.Crossing("quota", "warning", "Storage is at 72.0 % of its quota.", 72.0, 70.0),
                 alerts.Crossing("safety", "critical", "Product photos are not all safe: 1 missing file(s).",
                                 1)]
    alerts.record_crossings(db, crossings, moment - dt.timedelta(hours=3))


def test_the_ops_dashboard_shows_storage_safety_history_and_alerts(live, open_as):
    seed_history(live)
    # Something stored whatever ran before (alone, the store is empty and no quota is 90 % used).
    seed_library(open_as("admin"), "/ops-quota", ["grayscale.jpg"])
    page = open_as("ops")
    used = page.request.get("/api/shop/debug/storage-status").json()["quota"]["used_bytes"]
    assert used > 0
    live.config["AVENUE_STORAGE_QUOTA_BYTES"] = int(used / 0.9)  # ~90 %: critical
    try:
        page.goto("/console/ops")
        page.locator("#cards .card").nth(5).wait_for()  # quota, database, four buckets
        quota = page.locator("#cards .quota")
        assert quota.locator(".badge").inner_text() == "Critical"
        assert "level-critical" in quota.get_attribute("class")
        assert "Levels at 70 / 85 / 95 %" in quota.inner_text()
    finally:
        live.config["AVENUE_STORAGE_QUOTA_BYTES"] = 40 * 1024 * 1024
    page.get_by_role("heading", name="Bucket “products”").wait_for()
    page.locator("#verdict .badge").wait_for()
    # A clean store is never shown as unsafe: "Yes", or "Not checked yet" before the first sweep.
    assert page.locator("#verdict .badge").inner_text().startswith(("Yes:", "Not checked yet:"))
    assert page.get_by_text("Missing files (a product shows a broken photo):").count() == 1
    page.get_by_text("sample(s); storage went from").wait_for()
    assert page.locator("#growth-chart canvas").count() == 1
    assert page.locator("#uploads-chart canvas").count() == 1
    assert "27 sample(s)" in page.locator("#growth-summary").inner_text()  # 7 days of 6-hourly samples
    page.get_by_label("30 days").check()
    page.get_by_text("119 sample(s)").wait_for()
    bars = page.request.get("/api/admin/history?range=30d").json()["uploads"]
    counted = sum(bar["count"] or 0 for bar in bars)
    assert counted >= 238  # the seeded counts, and the images the other tests uploaded
    assert page.locator("#uploads-summary").inner_text() == f"{counted} upload(s) in this range."
    page.get_by_label("7 days").check()
    page.get_by_text("27 sample(s)").wait_for()
    page.locator(".alert").nth(1).wait_for()
    page.get_by_text("2 open, 2 recorded.").wait_for()
    shot(page, "ops")
    button = page.get_by_role("button", name="Acknowledge the critical safety alert", exact=False)
    button.click()
    page.get_by_text(f"Acknowledged by {page.email}").wait_for()
    page.get_by_text("1 open, 2 recorded.").wait_for()
    alerts = page.request.get("/api/admin/alerts?open=1").json()["items"]
    assert [a["kind"] for a in alerts] == ["quota"]


def test_a_one_sample_range_a_one_byte_quota_and_an_unmeasured_database_read_right(live, open_as):
    """Issue 30's dashboard: the time axis is the chosen range, 35611370000 % reads "over 999 %",
    long texts stay in their cards, the database card says what is known, once."""
    from avenue.monitoring import history

    db = database(live)
    db[history.SAMPLES].delete_many({})  # the history tests seeded thirty days: one sample now
    moment = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    storage = {"gridfs_bytes": 3_000_000, "database_size": {"storage_bytes": 3_000_000},
               "buckets": {}, "quota": {"bytes": 1, "used_bytes": 3_000_000, "percent": 300_000_000.0}}
    history.record(db, history.build_sample(storage, {"safe": True}, moment, moment))
    from avenue.media import Buckets

    # Something stored whatever the earlier tests left: a used byte count over 9 is over 999 %.
    stored(db, Buckets.BUILDER, (IMAGES / "good" / "png16.png").read_bytes(), filename="quota.png")
    live.config["AVENUE_STORAGE_QUOTA_BYTES"] = 1
    try:
        for width, name in ((1280, "ops-one-sample"), (360, "ops-one-sample-360")):
            page = open_as("ops", width=width, height=900)
            page.goto("/console/ops")
            quota = page.locator("#cards .quota")
            try:
                quota.get_by_text("over 999 %").wait_for()
            except Exception:  # what the card and the report said (it failed so once in a full run)
                answer = page.request.get("/api/shop/debug/storage-status").json()
                pytest.fail(f"quota card: {quota.inner_text()!r}; report's quota: {answer.get('quota')}")
            assert "Quota used: over 999 %" in quota.get_by_role("meter").get_attribute("aria-label")
            page.get_by_text("1 sample(s); storage went from").wait_for()
            series = page.request.get("/api/admin/history?range=7d").json()
            chart = page.locator("#growth-chart")
            drawn = [dt.datetime.fromisoformat(chart.get_attribute(f"data-time-{end}"))
                     for end in ("from", "to")]
            chosen = [dt.datetime.fromisoformat(series[end]) for end in ("from", "to")]
            assert all(abs(a - b) < dt.timedelta(minutes=2) for a, b in zip(drawn, chosen, strict=True)), \
                (drawn, chosen)
            database_card = page.locator("#cards .card", has=page.get_by_role("heading", name="Database"))
            database_card.get_by_text("Size not measured").wait_for()
            database_card.get_by_text("AVENUE_EMBEDDED_DATA_PATH does not name its data folder").wait_for()
            database_card.get_by_text("Chunk indexes: present in every bucket").wait_for()
            assert "unknown" not in database_card.inner_text().lower()
            assert overflowing(page, "#cards .card, #cards .card p, #cards .card h3") == []
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            shot(page, name)
        live.config["AVENUE_STORAGE_QUOTA_BYTES"] = 0  # no quota: the longest sentence of the card
        page.reload()
        page.get_by_text("No quota configured (AVENUE_STORAGE_QUOTA_BYTES).").wait_for()
        assert overflowing(page, "#cards .card, #cards .card p") == []
        shot(page, "ops-no-quota-360")
    finally:
        live.config["AVENUE_STORAGE_QUOTA_BYTES"] = 40 * 1024 * 1024


def test_an_upload_made_a_moment_ago_is_on_the_uploads_chart(live, open_as):
    page = open_as("ops")
    bars = page.request.get("/api/admin/history?range=24h").json()["uploads"]
    before = sum(bar["count"] or 0 for bar in bars)
    page.goto("/console/uploads")
    page.get_by_label("Image", exact=True).set_input_files(str(IMAGES / "good" / "progressive.jpg"))
    page.get_by_role("button", name="Upload", exact=True).click()
    tile = page.locator("#uploads .media-card", has_text="progressive.jpg")
    tile.wait_for()
    tile.click()  # its details, in the panel beside the grid
    page.locator("#media-panel").get_by_role("button", name="Delete progressive.jpg").click()
    confirm(page, "Delete")
    page.get_by_text("progressive.jpg deleted.").wait_for()  # a delete does not take it back
    page.goto("/console/ops")
    page.get_by_label("24 hours").check()
    # The 7-day view drawn first can read the same count: wait for the 24-hour one (hourly bars).
    # A locator, not wait_for_function("expression"): an expression polls by eval, which the
    # console's CSP refuses, so the test failed whenever the 24-hour answer was not drawn yet.
    page.locator("#bar-unit:text-is('hour')").wait_for()
    # Anchored: "15 upload(s)" must not pass for 5.
    counted = re.compile(rf"^{before + 1} upload\(s\) in this range\.")
    page.locator("#uploads-summary").get_by_text(counted).wait_for()
    shot(page, "ops-upload-counted")


def test_a_slow_answer_for_the_range_chosen_first_does_not_replace_the_one_chosen_after(live, open_as):
    """The 7-day history asked on load comes back after the 24-hour one chosen since: the
    24-hour view stays (before, the late answer was drawn over it, bars and summary)."""
    page = open_as("ops")
    week = hold_first(page, "**/api/admin/history?range=7d*")
    page.goto("/console/ops")
    wait_until_asked(page, week)
    page.get_by_label("24 hours").check()
    page.locator("#bar-unit:text-is('hour')").wait_for()
    day = page.request.get("/api/admin/history?range=24h").json()
    summary = page.locator("#uploads-summary").inner_text()
    assert summary.startswith(f"{sum(bar['count'] or 0 for bar in day['uploads'])} upload(s)")
    let_go(page, week[0])
    assert page.locator("#bar-unit").inner_text() == "hour"
    assert page.locator("#uploads-summary").inner_text() == summary
    assert page.locator("#history-status").inner_text().startswith("From ")


@pytest.mark.parametrize("width", [1280, 360])
def test_the_ops_dashboard_passes_the_accessibility_audit_and_works_by_keyboard(live, open_as, width):
    page = open_as("ops", width=width, height=900, audit=True)
    page.goto("/console/ops")
    page.locator("#cards .card").nth(1).wait_for()
    page.get_by_text("sample(s)", exact=False).or_(page.get_by_text("No samples recorded")).first.wait_for()
    page.wait_for_load_state("networkidle")
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)
    stops = tab_stops(page)
    assert stops[0] == "Skip to content" and "Refresh now" in stops and "Log out" in stops
    assert "7 days" in stops  # the checked radio; the arrow keys move within the group
    page.get_by_role("button", name="Refresh now").focus()
    page.keyboard.press("Enter")
    page.get_by_text("Reports from").wait_for()
    page.get_by_label("7 days").focus()
    page.keyboard.press("ArrowRight")
    assert page.get_by_label("30 days").is_checked()
    page.locator("#history-status").get_by_text("From ").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    shot(page, f"ops-audit-{width}")


def test_the_ops_dashboard_says_when_mongodb_is_below_what_production_runs_on(live, open_as, monkeypatch):
    import pymongo

    from avenue.status import storage

    page = open_as("ops")
    page.goto("/console/ops")
    page.locator("#cards .card").nth(1).wait_for()
    assert page.locator("#cards .server-warning").count() == 0  # SecantusDB: never warned of
    # The server answers buildInfo as a mongod 7.0.14 would (storage-status asks it again at once).
    command = pymongo.database.Database.command

    def answered(self, spec, *args, **kwargs):
        answer = command(self, spec, *args, **kwargs)
        if spec == "buildInfo":
            answer.pop("secantusVersion", None)
            answer.update(version="7.0.14", versionArray=[7, 0, 14, 0])
        return answer

    monkeypatch.setattr(pymongo.database.Database, "command", answered)
    monkeypatch.setattr(storage, "KNOWN_SECONDS", 0.0)
    try:
        page.reload()
        warning = page.locator("#cards .server-warning")
        warning.wait_for()
        assert warning.locator(".badge").inner_text() == "Upgrade MongoDB"
        assert "MongoDB 7.0.14 is below what production runs on" in warning.inner_text()
        assert "CVE-2025-14847" in warning.inner_text()
        shot(page, "ops-server-warning", full_page=False)
    finally:
        # The app remembers the last buildInfo a minute: the real one again, for the next tests.
        monkeypatch.setattr(pymongo.database.Database, "command", command)
        assert page.request.get("/api/shop/debug/storage-status").json()["server_warning"] is None


def test_the_ops_dashboard_shows_the_renditions_against_their_budget(live, open_as):
    page = open_as("ops")
    status = "/api/shop/debug/storage-status"
    fewest = page.request.get(status).json()["renditions"]["files"]
    page.goto("/console/ops")
    card = page.locator("#cards .renditions")  # under their own budget, never a quota level
    card.wait_for()
    text = card.inner_text()
    shown = page.request.get(status).json()["renditions"]
    # (An earlier test's renders may still be landing: the card counts between the two reads.)
    assert "Renditions on request" in text
    assert any(f"{n} rendition(s)" in text for n in range(fewest, shown["files"] + 1)), text
    assert ("of the" in text and "budget" in text) if shown["budget_bytes"] else "No budget" in text
    assert ("No eviction yet" in text) if shown["last_eviction"] is None else "Last eviction" in text


def test_the_ops_dashboard_says_when_a_report_is_the_last_one_the_busy_database_left(
        live, open_as, monkeypatch):
    """A status call the database holds up past AVENUE_STATUS_ANSWER_MS answers the worker's
    last report, marked stale (docs/operations.md): the dashboard says so and how old it is."""
    import avenue.status as status

    page = open_as("ops")
    page.goto("/console/ops")
    page.get_by_text("Reports from").wait_for()  # fresh: this worker keeps them
    assert page.locator(".stale-report").count() == 0
    monkeypatch.setitem(live.config, "AVENUE_STATUS_ANSWER_MS", 250)
    busy = threading.Event()
    real = status.products_status

    def held_up(*args, **kwargs):
        busy.wait(20)  # the database is busy until the page has drawn its answer
        return real(*args, **kwargs)

    monkeypatch.setattr(status, "products_status", held_up)
    try:
        page.goto("/console/ops")
        held = page.locator("#report-age .stale-report")
        held.wait_for()
        # The storage report may be held too: its reads can take 250 ms on a loaded machine.
        parts = held.inner_text().split(" · ")
        assert "Products" in [part.split(":")[0] for part in parts], parts
        assert all(re.fullmatch(r"(Products|Storage): last counts, \d+ s old", part) for part in parts), parts
        assert "Refresh in a moment" in page.locator("#report-age").inner_text()
    finally:
        busy.set()
    shot(page, "ops-stale-report")


def test_show_more_follows_the_cursor_past_the_first_page(live, open_as):
    """The products screen asks for 50 at a time and goes on with the API's ``next``: every
    product shows once, in sku order, however many pages it takes."""
    db = database(live)
    prefix = f"MORE-{uuid.uuid4().hex[:4]}"
    db.shop_products.insert_many([{"sku": f"{prefix}-{n:03d}", "name": "More", "price": 1, "images": []}
                                  for n in range(120)])
    expected = [doc["sku"] for doc in db.shop_products.find({}, {"sku": 1}).sort("sku", 1)]
    try:
        page = open_as("admin")
        page.goto("/console/products")
        rows = page.locator("#products-table tbody tr th")
        rows.nth(49).wait_for()
        while page.locator("#more").is_visible():
            shown = rows.count()
            page.locator("#more").click()
            rows.nth(shown).wait_for()  # the next page's first row
        assert rows.all_inner_texts() == expected
        assert page.locator("#more").is_hidden()
        shot(page, "products-all-shown")
    finally:
        db.shop_products.delete_many({"sku": {"$regex": f"^{prefix}-"}})


def test_each_role_sees_only_its_screens(live, open_as):
    """A screen a role may not open answers 403 with a page that says so, audited by axe-core
    as every other screen is (at a desktop and a phone width), nothing scrolling sideways."""
    editor = open_as("editor", audit=True)
    answer = editor.goto("/console/ops")
    assert answer.status == 403
    editor.get_by_text("Your role (editor) cannot open Ops dashboard.").wait_for()
    assert editor.get_by_role("link", name="Ops dashboard").count() == 0
    assert axe_violations(editor) == []
    ops = open_as("ops", width=360, height=740, audit=True)
    assert ops.goto("/console/products/ANY").status == 403
    ops.get_by_text("Your role (ops) cannot open Products.").wait_for()
    assert axe_violations(ops) == []
    assert ops.evaluate("document.documentElement.scrollWidth") <= 360
    shot(ops, "forbidden-360")
    csrf = ops.request.get("/api/auth/csrf").json()["csrf_token"]
    photo = {"name": "a.png", "mimeType": "image/png", "buffer": (IMAGES / "good" / "alpha.png").read_bytes()}
    refused = ops.request.post("/api/shop/products/ANY/images", headers={"X-CSRF-Token": csrf},
                               multipart={"images": photo})
    assert refused.status == 403


def test_every_screen_fits_a_360_pixel_wide_phone(live, open_as):
    page = open_as("admin", width=360, height=740)
    for path, name in (("/console/products", "products"), ("/console/library", "library"),
                       ("/console/uploads", "uploads"), ("/console/ops", "ops")):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 360, f"{name} is {overflow} px wide"
        if name == "ops":
            shot(page, "ops-360")


@pytest.mark.slow
def test_the_ops_dashboard_shows_delivery_numbers_a_chart_and_the_clean_up_list(live, open_as):
    import io

    from PIL import Image as PILImage

    from avenue.media import Buckets

    def unique_png() -> bytes:  # a fixture's bytes would dedupe to an image earlier tests served
        out = io.BytesIO()
        PILImage.new("RGB", (64, 48), tuple(uuid.uuid4().bytes[:3])).save(out, "PNG")
        return out.getvalue()

    served = stored(database(live), Buckets.BUILDER, unique_png(), filename="served.png")
    stored(database(live), Buckets.BUILDER, unique_png(), filename="idle.png")
    page = open_as("ops")
    # More answers than any other image of this module gets (the grids load many, a few times
    # each), so it is on the most-served list whichever tests ran before.
    for _ in range(60):
        assert page.request.get(f"/media/builder/{served['_id']}").ok
    flush_deliveries(live)
    page.goto("/console/ops")
    row = page.locator("#delivery-top tbody tr", has=page.locator(f"button[title='builder/{served['_id']}']"))
    row.wait_for()
    assert row.locator("td").nth(1).inner_text() == "60"
    # Named by its file name beside its thumbnail; the button's name holds what it shows.
    assert row.get_by_role("button", name="Chart served.png", exact=True).inner_text().strip() == "served.png"
    assert "/media/builder/" in row.locator("img.delivery-thumb").get_attribute("src")
    # The console's own loads carry the marker and are not deliveries: the thumbnails it just
    # drew add nothing (they made it 61 when they counted).
    assert row.locator("img.delivery-thumb").get_attribute("src").endswith("?via=console")
    loaded_pictures(page, "#delivery-top img.delivery-thumb")
    flush_deliveries(live)
    page.reload()
    row.wait_for()
    assert row.locator("td").nth(1).inner_text() == "60"
    assert "served.png" not in page.locator("#delivery-never").inner_text()
    assert page.locator("#delivery-never li", has_text="idle.png").locator("img.delivery-thumb").count() == 1
    page.locator("#delivery-chart canvas").wait_for()
    assert page.locator("#delivery-chart").get_attribute("data-days") == "30"
    assert "idle.png" in page.locator("#delivery-never").inner_text()
    page.locator("#cleanup-list li").first.wait_for()
    assert "idle.png" in page.locator("#cleanup-list").inner_text()
    assert "served.png" not in page.locator("#cleanup-list").inner_text()
    shot(page, "ops-delivery")


def test_a_late_clean_up_answer_for_the_days_shown_first_does_not_replace_the_days_typed_after(live, open_as):
    page = open_as("ops")
    first = hold_first(page, "**/api/admin/cleanup?days=90*")
    page.goto("/console/ops")
    wait_until_asked(page, first)
    page.locator("#cleanup-days").fill("7")
    page.locator("#cleanup-days").dispatch_event("change")
    page.locator("#cleanup-list li").first.wait_for()
    listed = page.locator("#cleanup-list").inner_text()
    # The 90-day answer, told apart by an image only it names, comes back last.
    late = {"bucket": "builder", "id": "0" * 24, "url": "/late", "filename": "late-answer.png",
            "last_served": None}
    let_go(page, first[0], json={"items": [late], "next": None})
    assert page.locator("#cleanup-list").inner_text() == listed
    assert "late-answer.png" not in listed


def test_a_late_answer_for_the_uploads_list_is_not_added_to_the_reload_after_an_upload(live, open_as):
    """The list asked on load answers after the reload an upload makes: each upload shows once."""
    page = open_as("ops")
    first = hold_first(page, "**/api/uploads?per_page=48")
    page.goto("/console/uploads")
    wait_until_asked(page, first)
    page.get_by_label("Image", exact=True).set_input_files(str(IMAGES / "good" / "png16.png"))
    page.get_by_role("button", name="Upload", exact=True).click()
    cards = page.locator("#uploads .media-card", has_text="png16.png")
    cards.first.wait_for()
    let_go(page, first[0])  # sent now: its answer names the upload too
    assert cards.count() == 1


def test_show_more_clicked_twice_adds_the_next_page_once(live, open_as):
    db = database(live)
    prefix = f"TWICE-{uuid.uuid4().hex[:4]}"
    db.shop_products.insert_many([{"sku": f"{prefix}-{n:03d}", "name": "Twice", "price": 1, "images": []}
                                  for n in range(60)])
    page = open_as("admin")
    page.goto("/console/products")
    more = page.get_by_role("button", name="Show more")
    more.wait_for()
    first = hold_first(page, "**/api/shop/products?*after=*")
    more.click()
    wait_until_asked(page, first)
    more.click()  # the first click's page is still on its way
    rows = page.locator("#products-table tbody tr")
    rows.nth(50).wait_for()  # the second click's page
    shown = rows.count()
    let_go(page, first[0])
    skus = rows.all_inner_texts()  # each row names its sku
    assert rows.count() == shown and len(skus) == len(set(skus)), skus


def product_with_photos(page, names: list[str]) -> str:
    """A new product with the fixtures ``names`` as its photos, in that order (by the API); its sku."""
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    sku = f"TURN-{uuid.uuid4().hex[:6]}"
    assert page.request.post("/api/shop/products", headers={"X-CSRF-Token": csrf},
                             data={"sku": sku, "name": "Turns", "price": 1}).ok
    for name in names:
        photo = {"name": name, "mimeType": mimetypes.guess_type(name)[0] or "image/png",
                 "buffer": (IMAGES / "good" / name).read_bytes()}
        answer = page.request.post(f"/api/shop/products/{sku}/images", headers={"X-CSRF-Token": csrf},
                                   multipart={"images": photo})
        assert answer.ok, answer.text()
        # Not an earlier test's photo of the same bytes (stored once, under its first name).
        assert [added["filename"] for added in answer.json()["added"]] == [name], answer.text()
    return sku


def test_earlier_pressed_twice_before_the_first_answer_moves_the_photo_two_places(live, open_as):
    page = open_as("admin")
    sku = product_with_photos(page, PHOTOS)
    page.goto(f"/console/products/{sku}")
    page.locator("#photos .photo").nth(2).wait_for()
    first = hold_first(page, "**/images/order")
    earlier = page.get_by_role("button", name=f"Move {PHOTOS[2]} earlier")
    earlier.click()
    wait_until_asked(page, first)
    earlier.click()  # the first move's answer is still on its way
    let_go(page, first[0])
    page.get_by_text("Order saved: now photo 1 of 3.").wait_for(state="attached")
    drawn(page)
    assert order_on_page(page) == [PHOTOS[2], PHOTOS[0], PHOTOS[1]]
    page.reload()
    page.locator("#photos .photo").nth(2).wait_for()
    assert order_on_page(page) == [PHOTOS[2], PHOTOS[0], PHOTOS[1]]


def test_a_late_answer_of_one_delete_does_not_bring_back_the_photo_deleted_after_it(live, open_as):
    """The first delete's answer (the product without the first photo) comes back after the
    second was asked: the screen shows neither photo (before, the second one reappeared)."""
    page = open_as("admin")
    sku = product_with_photos(page, PHOTOS)
    page.goto(f"/console/products/{sku}")
    page.locator("#photos .photo").nth(2).wait_for()
    answers: list = []

    def hold_the_first_answer(route) -> None:
        if route.request.method != "DELETE" or answers:
            route.continue_()
        else:
            answers.append((route, route.fetch()))  # done on the server; its answer held back

    page.route("**/images/*", hold_the_first_answer)
    page.get_by_role("button", name=f"Delete {PHOTOS[0]}").click()
    confirm(page, "Delete")
    wait_until_asked(page, answers)
    page.get_by_role("button", name=f"Delete {PHOTOS[1]}").click()
    confirm(page, "Delete")
    # Time for a second delete sent at once to be answered and drawn (what the screen did before);
    # not networkidle: the first answer is still held.
    page.wait_for_timeout(700)
    route, response = answers[0]
    let_go(page, route, response=response)
    page.get_by_text(f"{PHOTOS[1]} deleted.").wait_for(state="attached")
    drawn(page)
    assert order_on_page(page) == [PHOTOS[2]]
    stored = page.request.get(f"/api/shop/products/{sku}").json()["images"]
    assert [image["filename"] for image in stored] == [PHOTOS[2]]


@pytest.mark.parametrize("lookup", ["in the answer", "late"])
def test_a_product_photo_upload_names_the_product_photos_it_looks_like(live, open_as, tmp_path, lookup,
                                                                        request):
    # As the library's test: named by the answer, or asked for when the answer left them out.
    # Without the follow-up the late case showed no warning (CI failed on it once).
    from PIL import Image

    from tests.support.fixtures import scene

    # A picture of each case's own: the products bucket dedupes by content across products, so
    # the same boot in both cases made the second case's first upload the first case's image,
    # whose look-alike a late ask could name before the check below (a full run failed so).
    picture = scene((1200, 900), 91 if lookup == "in the answer" else 191)
    first, copy = tmp_path / "boot.jpg", tmp_path / "boot-again.jpg"
    picture.save(first, "JPEG", quality=90)
    smaller = picture.crop((30, 0, 1200, 880)).resize((800, 587), Image.Resampling.LANCZOS)
    smaller.save(copy, "JPEG", quality=65)
    page = open_as("admin")
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    sku = f"BOOT-{uuid.uuid4().hex[:6]}"
    assert page.request.post("/api/shop/products", headers={"X-CSRF-Token": csrf},
                             data={"sku": sku, "name": "Boot", "price": 10}).ok
    asked = look_alikes_asked(page, request)
    page.goto(f"/console/products/{sku}")
    for path in (first, copy):  # one after the other: each answered before the next is sent
        page.locator("#files").set_input_files(str(path))
        page.locator("#upload-list .upload-status", has_text="uploaded").nth(
            0 if path == first else 1).wait_for()
        if path == first:
            assert page.locator("#upload-list .near-upload").count() == 0
    # The copy's warning (the first upload's late ask, answered after the copy was stored, may
    # name the copy too: a second warning, also right).
    warning = page.locator("#upload-list .near-upload", has_text="boot-again.jpg:")
    warning.wait_for()
    assert "boot-again.jpg" in warning.inner_text() and "boot.jpg" in warning.inner_text()
    assert "bits apart" in warning.inner_text() or "bit apart" in warning.inner_text()
    assert page.locator("#photos > li").count() == 2  # stored all the same
    assert len(asked) == (2 if lookup == "late" else 0)
    if lookup == "in the answer":
        shot(page, "product-near-duplicate-upload")
