"""Keyboard-only use of the console's flows that no other module drives without a mouse: log in
and out, a product's photos, an upload and its link, upload links, the trash, a page's alt text
(issue 45). Tab and Shift+Tab (tab_to), Enter, Space, arrows, Escape and typing only, a file
chooser opened with Space; the API seeds what a flow starts from and checks what it left. The
console's confirmation (a delete, a revoke: its own dialog, js/confirm.js) is answered by keys
too: the focus on its safe answer, Tab to yes, Enter.

The library's grid, panel and bulk actions, the phone's upload, the editor and the ops dashboard
have theirs in their own modules (test_library.py, test_images.py, test_products_and_ops.py)."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.helpers import Auth
from tests.support.browser import new_context, shot
from tests.support.console import (
    PASSWORD,
    chooser_by_key,
    confirm,
    focused_name,
    fresh_jpeg,
    seed_library,
    tab_to,
)

# One xdist worker runs the whole module (make test's --dist loadgroup): its Chromium and its
# served app (tests/system/console/conftest.py) start once; the other console modules run beside it.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console_keyboard")]


def csrf_of(page) -> str:
    return page.request.get("/api/auth/csrf").json()["csrf_token"]


def test_log_in_by_keyboard_skip_to_the_content_and_log_out(live, browser):
    email, _ = Auth(live).user("editor", password=PASSWORD)
    context = new_context(browser, live.url)
    try:
        page = context.new_page()
        page.goto("/console/login")
        page.keyboard.press("Tab")
        assert focused_name(page) == "Skip to content"
        page.keyboard.press("Enter")
        page.wait_for_function("document.activeElement.id === 'main'")
        page.keyboard.press("Tab")  # from the content on: the form's first box
        assert focused_name(page) == "Email"
        page.keyboard.type(email)
        page.keyboard.press("Tab")
        assert focused_name(page) == "Password"
        page.keyboard.type("not the password")
        page.keyboard.press("Enter")
        page.locator("#login-status.error").wait_for()
        # The password is selected again: typed over, Enter tries again.
        assert page.evaluate("document.activeElement.id") == "password"
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        page.locator("#logout").wait_for()  # the console's first screen, logged in
        assert page.request.get("/api/auth/me").json()["user"]["email"] == email
        # On a console page, the skip link passes the screens' links: the next Tab is in the content.
        page.keyboard.press("Tab")
        assert focused_name(page) == "Skip to content"
        page.keyboard.press("Enter")
        page.wait_for_function("document.activeElement.id === 'main'")
        tab_to(page, "Log out", back=True)
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/console/login"))
        assert page.request.get("/api/auth/me").status == 401
    finally:
        context.close()


def photo_ids(page, sku: str) -> list[str]:
    product = page.request.get(f"/api/shop/products/{sku}").json()
    return [image["id"] for image in product["images"]]


def test_a_product_is_made_given_photos_ordered_described_and_trimmed_by_keyboard(live, open_as, tmp_path):
    page = open_as("admin")
    page.goto("/console/products")
    sku = f"KEY-{uuid.uuid4().hex[:6]}"
    tab_to(page, "SKU")
    page.keyboard.type(sku)
    page.keyboard.press("Tab")
    page.keyboard.type("Keyboard lamp")
    page.keyboard.press("Tab")
    page.keyboard.type("19.90")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(f"/console/products/{sku}$"))
    page.get_by_text("No photos yet.").wait_for()

    names = [f"front-{uuid.uuid4().hex[:4]}.jpg", f"back-{uuid.uuid4().hex[:4]}.jpg"]
    for name in names:
        (tmp_path / name).write_bytes(fresh_jpeg(480, 360))
    tab_to(page, "Choose files")
    chooser_by_key(page).set_files([str(tmp_path / name) for name in names])
    page.locator("#photos li.photo").nth(1).wait_for()
    order = photo_ids(page, sku)
    assert len(order) == 2
    filename = {image["id"]: image["filename"] for image in
                page.request.get(f"/api/shop/products/{sku}").json()["images"]}
    first, second = order

    # Alt+Down on the first photo makes it the second; the focus stays on it.
    tab_to(page, f"Photo 1 of 2: {filename[first]}")
    page.keyboard.press("Alt+ArrowDown")
    page.get_by_text("Order saved: now photo 2 of 2.").wait_for()
    assert photo_ids(page, sku) == [second, first]
    assert focused_name(page) == f"Photo 2 of 2: {filename[first]}"
    # Its Earlier button (Tab from the photo into it) puts it back first.
    tab_to(page, f"Move {filename[first]} earlier")
    page.keyboard.press("Enter")
    page.get_by_text("Order saved: now photo 1 of 2.").wait_for()
    assert photo_ids(page, sku) == [first, second]
    assert focused_name(page) == f"Photo 1 of 2: {filename[first]}"
    shot(page, "keyboard-product-ordered")

    # The photos just uploaded have no alt text: their boxes, each with a suggestion, are listed.
    alt_form = page.locator("#alt-form")
    alt_form.wait_for()
    tab_to(page, "Alt text for photo 1")
    page.keyboard.press("Control+a")
    page.keyboard.type("The lamp from the front, lit")
    tab_to(page, "Save all alt text")
    page.keyboard.press("Enter")
    page.get_by_text("Saved the alt text of 2 photo(s); 0 still without.").wait_for()
    images = page.request.get(f"/api/shop/products/{sku}").json()["images"]
    alts = {image["id"]: image.get("alt") for image in images}
    assert alts[first] == "The lamp from the front, lit" and alts[second], alts
    # The form is gone with the last missing alt text: the focus on what says so, not lost.
    assert page.evaluate("document.activeElement.id") == "alt-none"
    page.locator("#alt-none").scroll_into_view_if_needed()
    shot(page, "keyboard-product-alt-saved", full_page=False)

    # Delete the second photo: the focus goes on to the photo left.
    tab_to(page, f"Delete {filename[second]}", back=True)
    page.keyboard.press("Enter")
    assert confirm(page, "Delete", by_keyboard=True) == f"Delete {filename[second]} from {sku}?"
    page.get_by_text(f"{filename[second]} deleted.").wait_for()
    assert photo_ids(page, sku) == [first]
    assert focused_name(page) == f"Photo 1 of 1: {filename[first]}"
    shot(page, "keyboard-product-deleted")


def test_an_upload_is_sent_opened_its_link_copied_and_deleted_by_keyboard(live, open_as, tmp_path):
    page = open_as("editor")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    csrf = csrf_of(page)
    kept = page.request.post("/api/uploads", headers={"X-CSRF-Token": csrf}, multipart={
        "file": {"name": "kept.jpg", "mimeType": "image/jpeg", "buffer": fresh_jpeg(320, 240)}})
    assert kept.ok, kept.text()
    page.goto("/console/uploads")
    name = f"upload-{uuid.uuid4().hex[:6]}.jpg"
    (tmp_path / name).write_bytes(fresh_jpeg(320, 240))
    tab_to(page, "Image")
    chooser_by_key(page).set_files(str(tmp_path / name))
    tab_to(page, "Upload")
    page.keyboard.press("Enter")
    tile = page.locator("#uploads li[role='option']", has_text=name)
    tile.wait_for()
    # The grid is one Tab stop: the newest upload first; Enter opens its details.
    tab_to(page, name)
    page.keyboard.press("Enter")
    panel = page.get_by_role("complementary", name=name)
    panel.wait_for()
    assert focused_name(page) == name
    tab_to(page, f"Copy link of {name}")
    page.keyboard.press("Enter")
    panel.get_by_text("Link copied.").wait_for()
    link = page.evaluate("navigator.clipboard.readText()")
    opened = page.request.get(link)
    assert opened.ok and opened.headers["content-type"] == "image/jpeg", link
    shot(page, "keyboard-upload-details")
    page.keyboard.press("Escape")  # closed, the focus back on its tile; Enter opens it again
    panel.wait_for(state="hidden")
    assert focused_name(page).startswith(name)
    page.keyboard.press("Enter")
    panel.wait_for()
    tab_to(page, f"Delete {name}")
    page.keyboard.press("Enter")
    # Escape answers no: nothing deleted, the focus back on the button that asked; then yes.
    asking = page.locator("#confirm-dialog[open]")
    asking.wait_for()
    page.keyboard.press("Escape")
    asking.wait_for(state="hidden")
    assert name in [item["filename"] for item in page.request.get("/api/uploads").json()["items"]]
    assert focused_name(page) == f"Delete {name}"
    page.keyboard.press("Enter")
    confirm(page, "Delete", by_keyboard=True)
    page.get_by_text(f"{name} deleted.").wait_for()
    assert [item["filename"] for item in page.request.get("/api/uploads").json()["items"]] == ["kept.jpg"]
    assert focused_name(page).startswith("kept.jpg")  # the next tile: the focus not lost
    assert panel.is_hidden()
    # The last one deleted: the focus on the line that says there is none left.
    page.keyboard.press("Enter")
    page.get_by_role("complementary", name="kept.jpg").wait_for()
    tab_to(page, "Delete kept.jpg")
    page.keyboard.press("Enter")
    confirm(page, "Delete", by_keyboard=True)
    page.get_by_text("kept.jpg deleted.").wait_for()
    assert page.request.get("/api/uploads").json()["items"] == []
    assert focused_name(page) == "No uploads yet."
    shot(page, "keyboard-uploads-none", full_page=False)


def test_an_upload_link_is_created_its_secret_shown_once_and_revoked_by_keyboard(live, open_as):
    page = open_as("editor")
    page.goto("/console/uploads")
    label = f"Supplier {uuid.uuid4().hex[:6]}"
    tab_to(page, "Label (optional)")
    page.keyboard.type(label)
    page.keyboard.press("Enter")
    secret = page.get_by_label("Secret")
    secret.wait_for()
    assert focused_name(page) == "Secret"  # focused and selected, to copy
    shown = secret.input_value()
    selected = page.evaluate("(e => [e.selectionStart, e.selectionEnd])(document.activeElement)")
    assert shown and selected == [0, len(shown)]
    links = page.request.get("/api/upload-links").json()["items"]
    assert [(link["label"], link["state"]) for link in links] == [(label, "live")]
    assert shown not in page.request.get("/api/upload-links").text()  # the API never shows it again
    shot(page, "keyboard-link-created")
    tab_to(page, f"Revoke link {label}")
    page.keyboard.press("Enter")
    confirm(page, "Revoke", by_keyboard=True)
    page.get_by_text(f'Link "{label}" revoked.').wait_for()
    assert [link["state"] for link in page.request.get("/api/upload-links").json()["items"]] == ["revoked"]
    # The button went with its row's state: the focus on the links' table, where it was.
    assert focused_name(page).startswith("Upload links")
    shot(page, "keyboard-link-revoked")


def test_a_deleted_image_is_restored_from_the_trash_by_keyboard(live, open_as):
    page = open_as("editor")
    folder = f"/trash-keys-{uuid.uuid4().hex[:6]}"
    ids = seed_library(page, folder, ["grayscale.jpg"])
    media_id = ids["grayscale.jpg"]
    gone = page.request.delete(f"/api/builder/media/{media_id}", headers={"X-CSRF-Token": csrf_of(page)})
    assert gone.ok, gone.text()
    page.goto("/console/library")
    tab_to(page, "Trash")
    page.keyboard.press("Enter")
    page.get_by_text("1 of 1 image(s) in the trash.").wait_for()
    tab_to(page, "grayscale.jpg")
    page.keyboard.press("Space")
    page.get_by_text("1 image(s) selected.").wait_for()
    tab_to(page, "Restore selected")
    shot(page, "keyboard-trash-selected")
    page.keyboard.press("Enter")
    page.get_by_text("The trash is empty.").wait_for()
    back = page.request.get(f"/api/builder/media?folder={folder}").json()["items"]
    assert [media["id"] for media in back] == [media_id]
    assert page.request.get("/api/trash").json()["items"] == []
    # The bar went with the selection: the focus on what the restore did, not lost; Tab goes on.
    assert page.evaluate("document.activeElement.id") == "bulk-summary"
    assert focused_name(page).startswith("Restored")
    shot(page, "keyboard-trash-restored", full_page=False)


def test_a_page_s_images_get_their_alt_text_by_keyboard(live, open_as):
    page = open_as("editor")
    folder = f"/page-alt-{uuid.uuid4().hex[:6]}"
    ids = seed_library(page, folder, ["alpha.png", "palette_transparent.png"])
    slug = f"keys-{uuid.uuid4().hex[:6]}"
    put = page.request.put(f"/api/builder/pages/{slug}", headers={"X-CSRF-Token": csrf_of(page)}, data={
        "title": "Keys", "published": True,
        "blocks": [{"type": "image", "media_id": media_id} for media_id in ids.values()]})
    assert put.ok, put.text()
    page.goto("/console/library")
    tab_to(page, "Page (its slug)")
    page.keyboard.type(slug)
    page.keyboard.press("Enter")
    page.get_by_text("2 image(s) of this page without alt text.").wait_for()
    tab_to(page, "Alt text for alpha.png")
    page.keyboard.press("Control+a")
    page.keyboard.type("A see-through square")
    tab_to(page, "Alt text for palette_transparent.png")
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")  # left empty: not saved
    tab_to(page, "Save all alt text")
    shot(page, "keyboard-page-alt", full_page=False)
    page.keyboard.press("Enter")
    page.get_by_text("Saved the alt text of 1 image(s); 1 still without.").wait_for()
    items = page.request.get(f"/api/builder/media?folder={folder}").json()["items"]
    alts = {media["id"]: media.get("alt") for media in items}
    assert alts[ids["alpha.png"]] == "A see-through square" and not alts[ids["palette_transparent.png"]], alts
    assert focused_name(page) == "Save all alt text"  # one left: the form stays, and the focus on it
