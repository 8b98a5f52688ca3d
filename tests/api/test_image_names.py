"""Readable names in public media URLs: setting one (library media, product photos), serving
the original under it, 301 from every other name, and the refusals."""

from __future__ import annotations

import io

import pytest
from bson import ObjectId

from avenue.media import Buckets, Library, Media
from tests.helpers import bucket_snapshot, image_bytes
from tests.support.client import media_upload, uploaded


def library_image(client, editor, path="good/progressive.jpg", filename="IMG_2043.jpg"):
    answer = media_upload(client, editor, path, filename=filename)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def rename(client, headers, media_id, name):
    return client.put(f"/api/builder/media/{media_id}/name", headers=headers, json={"name": name})


def test_a_library_image_gets_a_readable_name_in_its_public_url(client, editor):
    media = library_image(client, editor)
    answer = rename(client, editor, media["id"], "Red Leather Boot!")
    assert answer.status_code == 200, answer.get_json()
    named = answer.get_json()
    assert named["name"] == "red-leather-boot"
    assert named["named_url"] == media["url"].removesuffix(".jpg") + "/name/red-leather-boot.jpg"
    served, plain = client.get(named["named_url"]), client.get(media["url"])
    assert served.status_code == 200 and served.data == plain.data
    assert served.headers["ETag"] == plain.headers["ETag"]
    assert served.headers["Cache-Control"] == plain.headers["Cache-Control"]
    shown = client.get(f"/api/builder/media/{media['id']}", headers=editor).get_json()
    assert shown["name"] == "red-leather-boot"


def test_renaming_keeps_every_old_url_working_by_301(client, editor):
    media = library_image(client, editor)
    first = rename(client, editor, media["id"], "red boot").get_json()["named_url"]
    second = rename(client, editor, media["id"], "blue boot").get_json()["named_url"]
    old = client.get(first)
    assert old.status_code == 301 and old.headers["Location"] == second
    typo = client.get(second.replace("blue-boot", "anything-at-all"))
    assert typo.status_code == 301 and typo.headers["Location"] == second
    assert client.get(second).status_code == 200
    cleared = rename(client, editor, media["id"], None)
    assert cleared.status_code == 200 and "name" not in cleared.get_json()
    assert "named_url" not in cleared.get_json()
    gone = client.get(second)
    assert gone.status_code == 301 and gone.headers["Location"] == media["url"]


def test_the_same_name_again_changes_nothing(client, editor):
    media = library_image(client, editor)
    rename(client, editor, media["id"], "red boot")
    again = rename(client, editor, media["id"], "Red  Boot")
    assert again.status_code == 200 and again.get_json()["name"] == "red-boot"


@pytest.mark.parametrize("name", ["thumb", "card", "og", "w_320", "w_320,h_200"])
def test_a_name_that_looks_like_a_variant_or_a_rendition_names_the_original(client, editor, name):
    media = library_image(client, editor)
    named = rename(client, editor, media["id"], name).get_json()["named_url"]
    served = client.get(named)
    assert served.status_code == 200 and served.data == client.get(media["url"]).data
    assert len(served.data) == media["bytes"]


def test_a_wrong_extension_an_unknown_id_or_a_malformed_url_is_a_404(client, editor):
    media = library_image(client, editor)
    named = rename(client, editor, media["id"], "red boot").get_json()["named_url"]
    for url in (named.replace(".jpg", ".png"), named.removesuffix(".jpg"),
                named.replace(media["id"], "0123456789abcdef01234567"),
                named.replace("red-boot", "Red-Boot"), named.replace("red-boot", "red_boot"),
                named.replace("/name/", "/nom/"), named.replace(media["id"], media["id"] + ".jpg"),
                named.replace("/media/builder/", "/media/nowhere/")):
        answer = client.get(url)
        assert answer.status_code == 404, url


def test_a_private_image_has_no_named_url_and_keeps_its_signed_ones(app, client, editor, db):
    stored = uploaded(client, editor, visibility="private")
    with app.app_context():
        Library(db, Buckets.UPLOADS, Media()).rename(ObjectId(stored["id"]), "secret-plan")
    shown = client.get(f"/api/uploads/{stored['id']}", headers=editor).get_json()
    assert "named_url" not in shown and "sig=" in shown["url"]
    token = shown["url"].split("?")[0].rsplit("/", 1)[1].split(".")[0]
    assert client.get(f"/media/uploads/{token}/name/secret-plan.jpg").status_code == 404
    assert client.get(shown["url"]).status_code == 200


HOSTILE = ["a" * 10_000, "../etc/passwd", "a/b", "a%2Fb", "..\\win", "", "   ", "---",
           "p\u0430ge", "\u0440\u0430\u0443", "bell\x07", "nul\x00", "\u202egnp.exe", "zero\u200bwidth", 12,
           ["a"], {"a": 1}, True]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_is_a_json_400_and_nothing_changes(client, editor, db, name):
    media = library_image(client, editor)
    rename(client, editor, media["id"], "kept")
    before = bucket_snapshot(db)
    answer = rename(client, editor, media["id"], name)
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid_name"
    assert client.get(f"/api/builder/media/{media['id']}", headers=editor).get_json()["name"] == "kept"
    assert bucket_snapshot(db) == before


@pytest.mark.parametrize("body", [{}, {"name": "a", "alt": "b"}, {"names": "a"}])
def test_a_rename_body_with_anything_else_is_a_400(client, editor, body):
    media = library_image(client, editor)
    answer = client.put(f"/api/builder/media/{media['id']}/name", headers=editor, json=body)
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid_name"


def test_fullwidth_and_accented_letters_fold_to_ascii(client, editor):
    media = library_image(client, editor)
    assert rename(client, editor, media["id"], "ｂｏｏｔ Café").get_json()["name"] == "boot-cafe"


def test_renaming_unknown_media_is_a_404(client, editor):
    answer = rename(client, editor, "0123456789abcdef01234567", "x")
    assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "media_not_found"


def test_a_media_url_with_hostile_segments_never_reaches_a_500(client, editor):
    media = library_image(client, editor)
    base = media["url"].removesuffix(".jpg")
    for tail in ("/name/" + "a" * 10_000 + ".jpg", "/name/..%2F..%2Fetc.jpg", "/name/%00.jpg",
                 "/name/p%D0%B0ge.jpg", "/name/.jpg", "/name/a.b.jpg", "/name/thumb", "/name/w_320.jpg"):
        answer = client.get(base + tail)
        assert answer.status_code in (301, 404), tail


# --- product photos ---------------------------------------------------------------------------


def product_with_photo(client, admin, sku):
    form = {"images": [(io.BytesIO(image_bytes("good/progressive.jpg")), "IMG_1.jpg")]}
    temp = client.post("/api/shop/temp-images", data=form, headers=admin, content_type="multipart/form-data")
    ids = [image["id"] for image in temp.get_json()["images"]]
    made = client.post("/api/shop/products", headers=admin,
                       json={"sku": sku, "name": "Boot", "price": 100, "temp_image_ids": ids})
    assert made.status_code == 201, made.get_json()
    return made.get_json()["images"][0]


def test_a_product_photo_is_named_on_every_product_using_it(client, admin, editor):
    photo = product_with_photo(client, admin, "BOOT-1")
    assert product_with_photo(client, admin, "BOOT-2")["id"] == photo["id"]  # the same bytes: one file
    url = f"/api/shop/products/BOOT-1/images/{photo['id']}/name"
    assert client.put(url, headers=editor, json={"name": "x"}).status_code == 403
    answer = client.put(url, headers=admin, json={"name": "Chelsea Boot"})
    assert answer.status_code == 200, answer.get_json()
    named_url = answer.get_json()["named_url"]
    assert named_url.endswith(f"/media/products/{photo['id']}/name/chelsea-boot.jpg")
    for sku in ("BOOT-1", "BOOT-2"):
        shown = client.get(f"/api/shop/products/{sku}").get_json()["images"][0]
        assert shown["name"] == "chelsea-boot" and shown["named_url"] == named_url
    assert client.get(named_url).status_code == 200
    client.put(url, headers=admin, json={"name": None})
    assert "name" not in client.get("/api/shop/products/BOOT-2").get_json()["images"][0]
    assert client.get(named_url).status_code == 301


def test_a_new_version_moves_the_named_url_with_a_308(client, admin):
    photo = product_with_photo(client, admin, "BOOT-1")
    url = f"/api/shop/products/BOOT-1/images/{photo['id']}/name"
    first = client.put(url, headers=admin, json={"name": "boot"}).get_json()["named_url"]
    moved = client.put(f"/api/shop/products/BOOT-1/images/{photo['id']}/focal-point", headers=admin,
                       json={"x": 0.2, "y": 0.3})
    assert moved.status_code == 200, moved.get_json()
    now = moved.get_json()["images"][0]
    assert now["name"] == "boot" and now["named_url"] != first and now["version"]
    old = client.get(first)
    assert old.status_code == 308 and old.headers["Location"] == now["named_url"]
    assert client.get(now["named_url"]).status_code == 200


def test_renaming_a_photo_the_product_does_not_have_is_a_404(client, admin):
    product_with_photo(client, admin, "BOOT-1")
    answer = client.put("/api/shop/products/BOOT-1/images/0123456789abcdef01234567/name", headers=admin,
                        json={"name": "x"})
    assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "image_not_found"
