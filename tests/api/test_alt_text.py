"""Alt text without a model: the images of a product or a page that lack it, with suggestions,
and setting many at once (accepted suggestions or given text), image by image."""

from __future__ import annotations

import io

import pytest

from tests.helpers import image_bytes
from tests.support.client import media_upload

NOBODY = "0123456789abcdef01234567"


def temp_images(client, admin, *named: tuple[str, str]) -> list[str]:
    """Upload fixtures (fixture path, file name) as temp product photos; their ids."""
    form = {"images": [(io.BytesIO(image_bytes(path)), name) for path, name in named]}
    answer = client.post("/api/shop/temp-images", data=form, headers=admin,
                         content_type="multipart/form-data")
    assert answer.status_code == 201, answer.get_json()
    return [image["id"] for image in answer.get_json()["images"]]


def product(client, admin, sku, name, ids):
    answer = client.post("/api/shop/products", headers=admin,
                         json={"sku": sku, "name": name, "price": 100, "temp_image_ids": ids})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def boot(client, admin, sku="BOOT-1"):
    """A product with a named photo first and a camera-named one second; their ids."""
    ids = temp_images(client, admin, ("good/progressive.jpg", "red-leather-boot_side.jpg"),
                      ("good/alpha.png", "IMG_2043.png"))
    product(client, admin, sku, "Chelsea boot", ids)
    return ids


def missing(client, headers, url, **params):
    answer = client.get(url, headers=headers, query_string=params)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def stored_alts(client, sku):
    images = client.get(f"/api/shop/products/{sku}").get_json()["images"]
    return {image["id"]: image.get("alt") for image in images}


def set_alt(client, headers, url, image_id, alt):
    answer = client.post(url, headers=headers, json={"images": [{"id": image_id, "alt": alt}]})
    assert answer.status_code == 200, answer.get_json()


# --- products ----------------------------------------------------------------------------------------


def test_a_products_photos_without_alt_text_are_listed_in_order_with_suggestions(client, admin):
    first, second = boot(client, admin)
    listed = missing(client, admin, "/api/shop/products/BOOT-1/alt-text")
    assert listed["total"] == 2 and listed["next"] is None
    assert [(item["image"]["id"], item["position"]) for item in listed["items"]] == [(first, 1), (second, 2)]
    main, gallery = (item["suggestions"] for item in listed["items"])
    assert main[0].startswith("Chelsea boot: red leather boot side")
    assert "Chelsea boot, main photo" in main and "Chelsea boot (BOOT-1)" in main
    assert "Chelsea boot, gallery photo 2" in gallery
    assert not any("img" in text.lower() or "2043" in text for text in gallery)


def test_the_list_has_numbered_pages_only(client, admin):
    _, second = boot(client, admin)
    page = missing(client, admin, "/api/shop/products/BOOT-1/alt-text", per_page=1, page=2)
    assert [item["image"]["id"] for item in page["items"]] == [second] and page["total"] == 2
    cursor = client.get("/api/shop/products/BOOT-1/alt-text?after=abc", headers=admin)
    assert cursor.status_code == 400 and cursor.get_json()["error"]["code"] == "invalid_pagination"


def test_an_unknown_product_is_a_404(client, admin):
    for answer in (client.get("/api/shop/products/NOPE/alt-text", headers=admin),
                   client.post("/api/shop/products/NOPE/alt-text", headers=admin,
                               json={"images": [{"id": NOBODY, "alt": "x"}]})):
        assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "product_not_found"


def test_one_request_sets_many_alt_texts_and_answers_image_by_image(client, admin):
    first, second = boot(client, admin)
    suggested = missing(client, admin, "/api/shop/products/BOOT-1/alt-text")["items"][0]["suggestions"]
    answer = client.post("/api/shop/products/BOOT-1/alt-text", headers=admin, json={"images": [
        {"id": first, "suggestion": 0}, {"id": second, "alt": "  The boot's   sole "},
        {"id": NOBODY, "alt": "nothing"}, {"id": "not-an-id", "suggestion": 0}]})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["results"] == [
        {"id": first, "status": "set", "alt": suggested[0]},
        {"id": second, "status": "set", "alt": "The boot's sole"},
        {"id": NOBODY, "status": "not_found"},
        {"id": "not-an-id", "status": "not_found"}]
    assert stored_alts(client, "BOOT-1") == {first: suggested[0], second: "The boot's sole"}
    assert missing(client, admin, "/api/shop/products/BOOT-1/alt-text")["total"] == 0
    again = client.post("/api/shop/products/BOOT-1/alt-text", headers=admin,
                        json={"images": [{"id": second, "alt": "The boot's sole"}]})
    assert again.get_json()["results"] == [{"id": second, "status": "unchanged", "alt": "The boot's sole"}]


def test_an_empty_text_removes_the_alt_text_and_a_missing_suggestion_changes_nothing(client, admin):
    """A removed alt text is left out of its result, as an image object leaves out an alt text
    it has none of: an answer's ``alt`` is a string or absent, never null (it was null here)."""
    first, second = boot(client, admin)
    client.post("/api/shop/products/BOOT-1/alt-text", headers=admin,
                json={"images": [{"id": first, "alt": "A boot"}, {"id": second, "alt": "Its sole"}]})
    answer = client.post("/api/shop/products/BOOT-1/alt-text", headers=admin,
                         json={"images": [{"id": first, "alt": ""}, {"id": second, "suggestion": 4}]})
    assert answer.get_json()["results"] == [{"id": first, "status": "set"},
                                            {"id": second, "status": "no_suggestion"}]
    assert stored_alts(client, "BOOT-1") == {first: None, second: "Its sole"}
    photo = client.get("/api/shop/products/BOOT-1", headers=admin).get_json()["images"][0]
    assert "alt" not in photo


def test_a_shared_photo_reads_as_each_product_says(client, admin):
    first, _ = boot(client, admin)
    same = temp_images(client, admin, ("good/progressive.jpg", "x.jpg"))
    product(client, admin, "BOOT-2", "Ankle boot", same)
    assert stored_alts(client, "BOOT-2") == {first: None}  # the same bytes: the same photo
    set_alt(client, admin, "/api/shop/products/BOOT-1/alt-text", first, "A")
    assert stored_alts(client, "BOOT-1")[first] == "A" and stored_alts(client, "BOOT-2") == {first: None}
    listed = missing(client, admin, "/api/shop/products/BOOT-2/alt-text")["items"]
    assert listed[0]["suggestions"][0].startswith("Ankle boot")


def test_the_alt_text_survives_a_new_version_of_the_photo(client, admin):
    first, _ = boot(client, admin)
    set_alt(client, admin, "/api/shop/products/BOOT-1/alt-text", first, "A")
    moved = client.put(f"/api/shop/products/BOOT-1/images/{first}/focal-point", headers=admin,
                       json={"x": 0.2, "y": 0.3})
    assert moved.status_code == 200, moved.get_json()
    assert stored_alts(client, "BOOT-1")[first] == "A"


def test_an_editor_may_neither_list_nor_set_a_products_alt_text(client, admin, editor):
    first, _ = boot(client, admin)
    assert client.get("/api/shop/products/BOOT-1/alt-text", headers=editor).status_code == 403
    refused = client.post("/api/shop/products/BOOT-1/alt-text", headers=editor,
                          json={"images": [{"id": first, "alt": "mine"}]})
    assert refused.status_code == 403 and stored_alts(client, "BOOT-1")[first] is None


HOSTILE = [
    ({"images": [{"id": "x", "alt": "a" * 10_000}]}, "invalid_alt"),
    ({"images": [{"id": "x", "alt": "bell\x07"}]}, "invalid_alt"),
    ({"images": [{"id": "x", "alt": "\u202egnp.exe"}]}, "invalid_alt"),
    ({"images": [{"id": "x", "alt": ["a"]}]}, "invalid_alt"),
    ({"images": [{"id": "x" * 10_000, "alt": "a"}]}, "invalid_alt_changes"),
    ({"images": [{"id": {"$ne": None}, "alt": "a"}]}, "invalid_alt_changes"),
    ({"images": [{"id": "x", "suggestion": 1e9}]}, "invalid_alt_changes"),
    ({"images": [{"id": "x", "alt": "a", "suggestion": 0}]}, "invalid_alt_changes"),
    ({"images": {"id": "x"}}, "invalid_alt_changes"),
    ({"images": [{"id": "x", "alt": "a"}] * 2}, "invalid_alt_changes"),
    ({"alt": "a"}, "invalid_alt_changes"),
]


@pytest.mark.parametrize(("body", "code"), HOSTILE)
def test_a_bad_body_is_a_400_and_sets_nothing(client, admin, body, code):
    first, second = boot(client, admin)
    images = body.get("images")
    if isinstance(images, list):  # the good entry first: nothing of the request is set
        body = {"images": [{"id": first, "alt": "should not stay"}, *images]}
    answer = client.post("/api/shop/products/BOOT-1/alt-text", headers=admin, json=body)
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == code
    assert stored_alts(client, "BOOT-1") == {first: None, second: None}


def test_a_body_that_is_not_json_is_a_400(client, admin):
    boot(client, admin)
    answer = client.post("/api/shop/products/BOOT-1/alt-text", headers=admin, data="images=1",
                         content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid_json"


# --- pages -------------------------------------------------------------------------------------------


def library_image(client, editor, path, filename, **fields):
    answer = media_upload(client, editor, path, filename=filename, **fields)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def write_page(client, editor, slug, title, blocks, **extra):
    answer = client.put(f"/api/builder/pages/{slug}", headers=editor,
                        json={"title": title, "blocks": blocks, **extra})
    assert answer.status_code == 200, answer.get_json()


def test_a_pages_images_without_alt_text_are_listed_with_suggestions_from_where_they_are_used(client, editor):
    bare = library_image(client, editor, "good/progressive.jpg", "IMG_2043.jpg", folder="/campaigns/summer",
                         tags="beach,sun hat")
    labelled = library_image(client, editor, "good/alpha.png", "logo.png", alt="Avenue logo")
    covered = library_image(client, editor, "good/grayscale.jpg", "DSC0001.jpg")
    write_page(client, editor, "sale", "Summer sale", [
        {"type": "hero", "media_id": bare}, {"type": "image", "media_id": labelled},
        {"type": "image", "media_id": covered, "alt": "Said on the block"}])
    write_page(client, editor, "home", "Home", [{"type": "gallery", "media_id": bare}])
    listed = missing(client, editor, "/api/builder/pages/sale/alt-text")
    assert listed["total"] == 1 and [item["image"]["id"] for item in listed["items"]] == [bare]
    suggestions = listed["items"][0]["suggestions"]
    assert suggestions[0].startswith("Beach, sun hat")
    assert "Beach, sun hat on Summer sale" in suggestions and "Beach, sun hat on Home" in suggestions
    assert any(text.startswith("Campaigns summer") for text in suggestions)


def test_a_draft_pages_images_are_listed_and_an_unknown_page_is_a_404(client, editor):
    image = library_image(client, editor, "good/progressive.jpg", "shoe-rack.jpg")
    write_page(client, editor, "draft", "Soon", [{"type": "image", "media_id": image}], published=False)
    suggestions = missing(client, editor, "/api/builder/pages/draft/alt-text")["items"][0]["suggestions"]
    assert suggestions[0].startswith("Shoe rack") and "Shoe rack on Soon" in suggestions
    gone = client.get("/api/builder/pages/nothing/alt-text", headers=editor)
    assert gone.status_code == 404 and gone.get_json()["error"]["code"] == "page_not_found"


def test_setting_a_pages_alt_texts_sets_its_images_and_nothing_off_the_page(client, editor):
    on_page = library_image(client, editor, "good/progressive.jpg", "shoe-rack.jpg")
    other = library_image(client, editor, "good/alpha.png", "elsewhere.png")
    write_page(client, editor, "hall", "Hallway", [{"type": "image", "media_id": on_page}], published=True)
    answer = client.post("/api/builder/pages/hall/alt-text", headers=editor, json={"images": [
        {"id": on_page, "suggestion": 1}, {"id": other, "alt": "not this page's"}]})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["results"] == [{"id": on_page, "status": "set", "alt": "Shoe rack on Hallway"},
                                            {"id": other, "status": "not_found"}]
    media = client.get(f"/api/builder/media/{on_page}", headers=editor).get_json()
    assert media["alt"] == "Shoe rack on Hallway"
    assert "alt" not in client.get(f"/api/builder/media/{other}", headers=editor).get_json()
    assert missing(client, editor, "/api/builder/pages/hall/alt-text")["total"] == 0
    rendered = client.get("/api/builder/pages/hall").get_json()
    assert rendered["blocks"][0]["alt"] == "Shoe rack on Hallway"


@pytest.mark.parametrize(("body", "code"), HOSTILE)
def test_a_bad_page_body_is_a_400_and_sets_nothing(client, editor, body, code):
    image = library_image(client, editor, "good/progressive.jpg", "shoe-rack.jpg")
    write_page(client, editor, "hall", "Hallway", [{"type": "image", "media_id": image}])
    images = body.get("images")
    if isinstance(images, list):
        body = {"images": [{"id": image, "alt": "should not stay"}, *images]}
    answer = client.post("/api/builder/pages/hall/alt-text", headers=editor, json=body)
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == code
    assert "alt" not in client.get(f"/api/builder/media/{image}", headers=editor).get_json()


@pytest.mark.parametrize("slug", ["../etc", "a" * 10_000, "a%2Fb", "page\x00", "p\u0430ge"])
def test_a_hostile_slug_is_a_json_4xx(client, editor, slug):
    answer = client.get(f"/api/builder/pages/{slug}/alt-text", headers=editor)
    assert 400 <= answer.status_code < 500 and answer.is_json
