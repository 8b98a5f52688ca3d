"""Non-destructive edits (avenue/media/ingest/edits.py, avenue/media/store/replace.py): rotate, flip
and crop the original as a new version with new URLs, the original's bytes kept and served as
``source.url``; undo back to the original; the same routes for the library, product photos and
uploads; every bad body a 400 ``invalid_edits`` that changes nothing."""

from __future__ import annotations

import io
import threading
import time
from hashlib import sha256

import pymongo
import pytest
from PIL import Image as PILImage

from avenue.media import AppMedia, Buckets, UrlSigner
from avenue.media.maintenance import Figures
from tests.helpers import Auth, error_body, passed_to_route
from tests.support.client import uploaded
from tests.support.cornered import HEIGHT, KEY, WIDTH, cornered, is_red, media, picture, red_corner

TRASH = Figures.TRASH

def edit(client, headers, media_id: str, body, **kwargs):
    return client.put(f"/api/builder/media/{media_id}/edits", json=body, headers=headers, **kwargs)


def test_an_edit_is_a_new_version_whose_variants_show_the_rotated_picture(client, editor):
    item = media(client, editor)
    answer = edit(client, editor, item["id"], {"rotate": 90})
    assert answer.status_code == 200, answer.get_json()
    edited = answer.get_json()
    assert edited["id"] == item["id"] and edited["version"] not in ("", item["version"])
    assert edited["edits"] == {"rotate": 90, "flip_horizontal": False, "flip_vertical": False, "crop": None}
    assert (edited["width"], edited["height"]) == (HEIGHT, WIDTH)
    assert edited["url"] != item["url"] and edited["variants"]["card"] != item["variants"]["card"]
    # Turned clockwise: the top-left corner is now the top-right one, in every variant.
    for name in ("thumb", "card", "gallery"):
        shown = picture(client, edited["variants"][name])
        assert shown.width < shown.height and red_corner(shown) == "tr", name
    assert red_corner(picture(client, edited["url"])) == "tr"
    # The original is kept, as uploaded, and served for an editor to draw on.
    assert edited["source"]["width"] == WIDTH and edited["source"]["height"] == HEIGHT
    source = client.get(edited["source"]["url"])
    assert source.status_code == 200
    assert sha256(source.data).hexdigest() == item["sha256"]
    assert red_corner(PILImage.open(io.BytesIO(source.data)).convert("RGB")) == "tl"


def test_an_edited_image_s_source_is_served_only_by_its_short_lived_signed_url(app, client, editor):
    item = media(client, editor)
    edited = edit(client, editor, item["id"], {"rotate": 90}).get_json()
    url = edited["source"]["url"]
    assert "sig=" in url and "expires=" in url
    served = client.get(url)
    assert served.status_code == 200 and sha256(served.data).hexdigest() == item["sha256"]
    assert served.headers["Cache-Control"].startswith("private")
    bare, query = url.split("?")
    for wrong in (bare, url.replace("sig=", "sig=x"), f"{bare}?expires=1&{query.split('&')[1]}"):
        refused = client.get(wrong)
        assert refused.status_code == 403, wrong
        assert refused.get_json()["error"]["code"] == "source_not_allowed"
    expired = UrlSigner(key=KEY, source_ttl_seconds=60).source_url(Buckets.BUILDER, item["id"],
                                                                   edited["version"],
                                                                  now=time.time() - 3600)
    assert client.get(expired).status_code == 403
    # Neither the front door nor the event loop answer it from the worker's cache.
    assert passed_to_route(app, bare) == [bare.split("http://localhost")[-1]]


def test_the_source_url_is_given_only_to_callers_who_may_edit_the_image(client, auth):
    admin = auth.token("admin")
    client.post("/api/shop/products", headers=admin, json={"sku": "SRC-1", "name": "Lamp", "price": 10})
    client.post("/api/shop/products/SRC-1/images", headers=admin,
                data={"images": (io.BytesIO(cornered()), "c.png")})
    photo = client.get("/api/shop/products/SRC-1", headers=admin).get_json()["images"][0]
    edited = client.put(f"/api/shop/products/SRC-1/images/{photo['id']}/edits", json={"rotate": 90},
                        headers=admin)
    assert edited.status_code == 200 and "sig=" in edited.get_json()["source"]["url"]
    for headers in ({}, auth.token("ops")):
        shown = client.get("/api/shop/products/SRC-1", headers=headers).get_json()["images"][0]
        assert shown["source"]["url"] is None and shown["source"]["width"] == WIDTH
        assert shown["url"]  # everything else as before
    as_admin = client.get("/api/shop/products/SRC-1", headers=admin).get_json()["images"][0]
    assert "sig=" in as_admin["source"]["url"]


@pytest.mark.parametrize("body, corner", [
    ({"flip_horizontal": True}, "tr"),
    ({"flip_vertical": True}, "bl"),
    ({"rotate": 180}, "br"),
    ({"rotate": 270}, "bl"),
    ({"rotate": 90, "flip_horizontal": True}, "tl"),  # rotate first, then flip
])
def test_rotations_and_flips_move_the_corner_where_they_should(client, editor, body, corner):
    item = media(client, editor)
    edited = edit(client, editor, item["id"], body).get_json()
    assert red_corner(picture(client, edited["variants"]["card"])) == corner


def test_a_crop_is_fractions_of_the_turned_picture_and_sets_the_size(client, editor):
    item = media(client, editor)
    # The left half of the picture, whose top-left quarter is the red corner.
    left_half = {"crop": {"x": 0, "y": 0, "width": 0.5, "height": 1}}
    edited = edit(client, editor, item["id"], left_half).get_json()
    assert (edited["width"], edited["height"]) == (WIDTH // 2, HEIGHT)
    card = picture(client, edited["variants"]["gallery"])
    assert card.size == (WIDTH // 2, HEIGHT)
    # The red quarter of the width is half of the crop's now; its height is as it was.
    assert red_corner(card) == "tl" and is_red(card.getpixel((90, 10))) and is_red(card.getpixel((10, 45)))
    assert not is_red(card.getpixel((110, 10))) and not is_red(card.getpixel((10, 55)))


def test_undo_brings_back_the_original_size_and_pixels(client, editor, db):
    item = media(client, editor)
    corner = {"x": 0.1, "y": 0.1, "width": 0.5, "height": 0.4}
    edit(client, editor, item["id"], {"rotate": 90, "crop": corner})
    undone = client.delete(f"/api/builder/media/{item['id']}/edits", headers=editor)
    assert undone.status_code == 200, undone.get_json()
    back = undone.get_json()
    assert back["edits"] is None and (back["width"], back["height"]) == (WIDTH, HEIGHT)
    assert back["sha256"] == item["sha256"]
    assert sha256(client.get(back["url"]).data).hexdigest() == item["sha256"]
    assert back["source"]["url"] == back["url"]
    assert red_corner(picture(client, back["variants"]["card"])) == "tl"
    # Undone twice: nothing to do, the same version.
    again = client.delete(f"/api/builder/media/{item['id']}/edits", headers=editor).get_json()
    assert again["version"] == back["version"]


def test_edits_start_from_the_original_and_identical_edits_change_nothing(client, editor):
    item = media(client, editor)
    first = edit(client, editor, item["id"], {"rotate": 90}).get_json()
    same = edit(client, editor, item["id"], {"rotate": 90, "flip_vertical": False}).get_json()
    assert same["version"] == first["version"] and same["url"] == first["url"]
    # A second edit is applied to the original, not to the first edit's picture.
    second = edit(client, editor, item["id"], {"rotate": 180}).get_json()
    assert (second["width"], second["height"]) == (WIDTH, HEIGHT)
    assert red_corner(picture(client, second["variants"]["card"])) == "br"
    assert sha256(client.get(second["source"]["url"]).data).hexdigest() == item["sha256"]


def test_the_focal_point_moves_with_the_edits(client, editor):
    item = media(client, editor)
    client.put(f"/api/builder/media/{item['id']}/focal-point", json={"x": 0.1, "y": 0.2}, headers=editor)
    turned = edit(client, editor, item["id"], {"rotate": 90}).get_json()
    assert turned["focal_point"] == {"x": 0.8, "y": 0.1}
    cropped = edit(client, editor, item["id"], {"crop": {"x": 0.5, "y": 0.5, "width": 0.5, "height": 0.5}})
    assert cropped.get_json()["focal_point"] == {"x": 0.0, "y": 0.0}  # clamped into the crop


BAD_BODIES = [
    ("rotate", {"rotate": 45}),
    ("rotate", {"rotate": "90"}),
    ("rotate", {"rotate": True}),
    ("rotate", {"rotate": 90.0}),
    ("flip_horizontal", {"flip_horizontal": 1}),
    ("flip_vertical", {"flip_vertical": "yes"}),
    ("crop", {"crop": [0, 0, 1, 1]}),
    ("crop.x", {"crop": {"x": -0.1, "y": 0, "width": 0.5, "height": 0.5}}),
    ("crop.width", {"crop": {"x": 0, "y": 0, "width": 1.5, "height": 0.5}}),
    ("crop", {"crop": {"x": 0.6, "y": 0, "width": 0.5, "height": 0.5}}),  # outside the picture
    ("crop", {"crop": {"x": 0, "y": 0, "width": 0, "height": 0.5}}),
    ("crop", {"crop": {"x": 0, "y": 0, "width": 0.01, "height": 0.5}}),  # 4 px: under 16
    ("crop.height", {"crop": {"x": 0, "y": 0, "width": 0.5}}),
    ("crop.z", {"crop": {"x": 0, "y": 0, "width": 0.5, "height": 0.5, "z": 1}}),
    ("crop.x", {"crop": {"x": "0", "y": 0, "width": 0.5, "height": 0.5}}),
    ("crop.y", {"crop": {"x": 0, "y": 1e300, "width": 0.5, "height": 0.5}}),
    ("scale", {"scale": 2}),
]


@pytest.mark.parametrize("field, body", BAD_BODIES)
def test_every_bad_body_is_a_400_naming_its_field_and_changes_nothing(client, editor, db, field, body):
    item = media(client, editor)
    before = client.get(f"/api/builder/media/{item['id']}", headers=editor).get_json()
    answer = edit(client, editor, item["id"], body)
    assert answer.status_code == 400, answer.get_json()
    error = answer.get_json()["error"]
    assert error["code"] == "invalid_edits" and error["field"] == field
    assert field.split(".")[0] in error["message"]
    assert client.get(f"/api/builder/media/{item['id']}", headers=editor).get_json() == before
    assert db[f"{Buckets.BUILDER}.files"].count_documents({"metadata.variant": "source"}) == 0


@pytest.mark.parametrize("data, content_type", [
    (b'{"rotate": NaN}', "application/json"),
    (b'{"crop": {"x": 0, "y": 1e999, "width": 0.5, "height": 0.5}}', "application/json"),
    (b'{"rotate": 90}', "text/plain"),
    (b"[90]", "application/json"),
    (b"not json", "application/json"),
])
def test_a_body_that_is_not_a_json_object_is_a_400(client, editor, data, content_type):
    item = media(client, editor)
    answer = client.put(f"/api/builder/media/{item['id']}/edits", data=data, content_type=content_type,
                        headers=editor)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] in ("invalid_json", "invalid_edits")


def test_unknown_media_and_roles(client, editor, auth):
    missing = edit(client, editor, "0" * 24, {"rotate": 90})
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "media_not_found"
    assert edit(client, editor, "nope", {"rotate": 90}).status_code == 404
    item = media(client, editor)
    assert edit(client, auth.token("ops"), item["id"], {"rotate": 90}).status_code == 403
    assert edit(client, {}, item["id"], {"rotate": 90}).status_code == 401
    undo = client.delete(f"/api/builder/media/{item['id']}/edits", headers=auth.token("ops"))
    assert undo.status_code == 403


def test_uploads_can_be_edited_by_their_owner_only(client, auth):
    owner, other = auth.token("ops"), auth.token("editor")
    upload = uploaded(client, owner, data=cornered(), filename="c.png")
    theirs = client.put(f"/api/uploads/{upload['id']}/edits", json={"rotate": 90}, headers=other)
    assert theirs.status_code == 404
    assert error_body(theirs) == error_body(client.put(f"/api/uploads/{'0' * 24}/edits", json={"rotate": 90},
                                                       headers=other))
    mine = client.put(f"/api/uploads/{upload['id']}/edits", json={"rotate": 90}, headers=owner)
    assert mine.status_code == 200 and mine.get_json()["edits"]["rotate"] == 90
    assert mine.get_json()["owner"] == upload["owner"]


def test_a_private_upload_s_source_url_is_signed(client, auth):
    owner = auth.token("ops")
    upload = uploaded(client, owner, data=cornered(), filename="c.png", visibility="private")
    edited = client.put(f"/api/uploads/{upload['id']}/edits", json={"flip_vertical": True}, headers=owner)
    source = edited.get_json()["source"]["url"]
    assert "sig=" in source and client.get(source).status_code == 200
    assert client.get(source.split("?")[0]).status_code == 404  # as any private URL without its signature
    assert client.get(source.replace("sig=", "sig=x")).status_code == 403


def test_product_photos_are_edited_for_every_product_using_them(client, auth, db):
    admin = auth.token("admin")
    for sku in ("ED-1", "ED-2"):
        assert client.post("/api/shop/products", headers=admin,
                           json={"sku": sku, "name": "Lamp", "price": 10}).status_code == 201
        client.post(f"/api/shop/products/{sku}/images", headers=admin,
                    data={"images": (io.BytesIO(cornered()), "c.png")})
    photo = client.get("/api/shop/products/ED-1").get_json()["images"][0]
    answer = client.put(f"/api/shop/products/ED-1/images/{photo['id']}/edits", json={"rotate": 270},
                        headers=admin)
    assert answer.status_code == 200, answer.get_json()
    edited = answer.get_json()
    assert edited["id"] == photo["id"] and edited["edits"]["rotate"] == 270
    assert client.get("/api/shop/products/ED-2").get_json()["images"][0]["version"] == edited["version"]
    assert red_corner(picture(client, edited["variants"]["card"])) == "bl"
    assert client.put(f"/api/shop/products/ED-1/images/{photo['id']}/edits", json={"rotate": 90},
                      headers=auth.token("editor")).status_code == 403
    assert client.put(f"/api/shop/products/NOPE/images/{photo['id']}/edits", json={"rotate": 90},
                      headers=admin).status_code == 404
    undone = client.delete(f"/api/shop/products/ED-1/images/{photo['id']}/edits", headers=admin)
    assert undone.status_code == 200 and undone.get_json()["edits"] is None
    actions = [entry["action"] for entry in db.audit_logs.find({"target.image_id": photo["id"]})
               if entry["action"].startswith("product_image_edit")]
    assert actions == ["product_image_edited", "product_image_edits_undone"]


def test_gc_and_fsck_are_clean_after_edit_undo_and_delete(client, editor, db, media_core):
    item = media(client, editor)
    other = media(client, editor, cornered(320, 240))
    edit(client, editor, item["id"], {"rotate": 90})
    edit(client, editor, item["id"], {"crop": {"x": 0, "y": 0, "width": 0.5, "height": 0.5}})
    edit(client, editor, other["id"], {"flip_horizontal": True})
    assert AppMedia.on(db, media_core).maintenance.collect_garbage(dry_run=True).removed == []
    assert AppMedia.on(db).maintenance.fsck().findings == []
    client.delete(f"/api/builder/media/{item['id']}/edits", headers=editor)
    assert client.delete(f"/api/builder/media/{other['id']}", headers=editor).status_code == 204
    assert AppMedia.on(db, media_core).maintenance.collect_garbage(dry_run=True).removed == []
    assert AppMedia.on(db).maintenance.fsck().findings == []
    # The deleted one went to the trash whole: its original with it.
    assert db[f"{TRASH}.files"].count_documents({"metadata.variant": "source"}) == 1
    assert db[f"{Buckets.BUILDER}.files"].count_documents({"metadata.original_id": other["id"]}) == 0


def test_a_restore_from_the_trash_keeps_the_edits(client, editor):
    item = media(client, editor)
    edited = edit(client, editor, item["id"], {"rotate": 90}).get_json()
    assert client.delete(f"/api/builder/media/{item['id']}", headers=editor).status_code == 204
    trashed = client.get("/api/trash", headers=editor).get_json()["items"]
    restored = client.post(f"/api/trash/{trashed[0]['id']}/restore", headers=editor)
    assert restored.status_code == 200, restored.get_json()
    back = client.get(f"/api/builder/media/{item['id']}", headers=editor).get_json()
    assert back["edits"] == edited["edits"] and back["version"] == edited["version"]
    assert red_corner(picture(client, back["variants"]["card"])) == "tr"
    assert sha256(client.get(back["source"]["url"]).data).hexdigest() == item["sha256"]


@pytest.mark.database
def test_concurrent_edits_from_two_apps_leave_one_consistent_version(app_factory, backend):
    if backend[0] is not pymongo.MongoClient:
        # A full run's mongomock answered 500 ("dictionary changed size during iteration").
        pytest.skip("threads need a real server (mongomock is not thread-safe)")
    first, second = app_factory(), app_factory()
    editor = Auth(first).token("editor")
    item = media(first.test_client(), editor)
    answers = []

    def run(app, body):
        answers.append(edit(app.test_client(), editor, item["id"], body))

    threads = [threading.Thread(target=run, args=(app, body))
               for app, body in ((first, {"rotate": 90}), (second, {"flip_vertical": True}))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) in ([200, 200], [200, 409])
    client = first.test_client()
    now = client.get(f"/api/builder/media/{item['id']}", headers=editor).get_json()
    assert now["edits"] in ({"rotate": 90, "flip_horizontal": False, "flip_vertical": False, "crop": None},
                            {"rotate": 0, "flip_horizontal": False, "flip_vertical": True, "crop": None})
    card = picture(client, now["variants"]["card"])
    assert red_corner(card) == ("tr" if now["edits"]["rotate"] == 90 else "bl")
    with first.app_context():
        from avenue.db import get_db

        assert AppMedia.on(get_db()).maintenance.fsck().findings == []


# --- named crops ---------------------------------------------------------------------------


def crop(client, headers, media_id: str, name: str, box):
    return client.put(f"/api/builder/media/{media_id}/crops/{name}", json=box, headers=headers)


HERO = {"x": 0, "y": 0, "width": 0.5, "height": 0.5}


def test_named_crops_are_set_listed_and_deleted_each_as_a_new_version(client, editor):
    item = media(client, editor)
    answer = crop(client, editor, item["id"], "hero", HERO)
    assert answer.status_code == 200, answer.get_json()
    with_hero = answer.get_json()
    assert with_hero["crops"] == {"hero": HERO} and with_hero["version"] != item["version"]
    assert with_hero["url"] != item["url"]
    again = crop(client, editor, item["id"], "hero", HERO).get_json()
    assert again["version"] == with_hero["version"]  # the same box: unchanged
    wide = {"x": 0.25, "y": 0, "width": 0.75, "height": 1}
    both = crop(client, editor, item["id"], "card-2", wide).get_json()
    assert set(both["crops"]) == {"hero", "card-2"}
    listed = client.get(f"/api/builder/media/{item['id']}", headers=editor).get_json()
    assert listed["crops"] == both["crops"]
    deleted = client.delete(f"/api/builder/media/{item['id']}/crops/hero", headers=editor)
    assert deleted.status_code == 200 and set(deleted.get_json()["crops"]) == {"card-2"}
    assert deleted.get_json()["version"] != both["version"]
    gone = client.delete(f"/api/builder/media/{item['id']}/crops/hero", headers=editor)
    assert gone.status_code == 404 and gone.get_json()["error"]["code"] == "crop_not_found"
    # Edits keep the named crops.
    assert edit(client, editor, item["id"], {"rotate": 90}).get_json()["crops"] == deleted.get_json()["crops"]


@pytest.mark.parametrize("name, box", [
    ("Hero", HERO), ("1hero", HERO), ("a" * 33, HERO), ("he.ro", HERO),
    ("hero", {"x": 0, "y": 0, "width": 0.5}), ("hero", {"x": 0.8, "y": 0, "width": 0.5, "height": 0.5}),
    ("hero", {"x": 0, "y": 0, "width": 0, "height": 0.5}), ("hero", {**HERO, "name": "x"}),
    ("hero", [0, 0, 1, 1]), ("hero", {**HERO, "x": "0"}), ("hero", {**HERO, "y": 1e300}),
])
def test_a_bad_crop_name_or_box_is_a_400_that_changes_nothing(client, editor, name, box):
    item = media(client, editor)
    answer = crop(client, editor, item["id"], name, box)
    expected = "invalid_json" if isinstance(box, list) else "invalid_crop"  # not an object: as every route
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == expected
    now = client.get(f"/api/builder/media/{item['id']}", headers=editor).get_json()
    assert now["version"] == item["version"] and now["crops"] == {}


def test_a_named_crop_under_16_pixels_on_a_side_is_a_400_that_changes_nothing(client, editor):
    item = media(client, editor)  # 400 x 200
    narrow = {"x": 0, "y": 0, "width": 15 / WIDTH, "height": 0.5}
    short = {"x": 0, "y": 0, "width": 0.5, "height": 0.07}
    for box in (narrow, short):
        error = crop(client, editor, item["id"], "tiny", box).get_json()["error"]
        assert (error["code"], error["min_px"]) == ("invalid_crop", 16), box
    now = client.get(f"/api/builder/media/{item['id']}", headers=editor).get_json()
    assert now["version"] == item["version"] and now["crops"] == {}
    smallest = {"x": 0, "y": 0, "width": 0.04, "height": 0.08}  # 16 x 16
    assert crop(client, editor, item["id"], "small", smallest).status_code == 200


def test_the_seventeenth_crop_is_refused(client, editor):
    item = media(client, editor)
    for index in range(16):
        assert crop(client, editor, item["id"], f"c{index}", HERO).status_code == 200
    refused = crop(client, editor, item["id"], "c16", HERO)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "too_many_crops"
    assert crop(client, editor, item["id"], "c3", {**HERO, "x": 0.5}).status_code == 200  # an existing one


def test_crops_of_uploads_and_product_photos_follow_their_owners_rules(client, auth):
    owner, other, admin = auth.token("ops"), auth.token("editor"), auth.token("admin")
    upload = uploaded(client, owner, data=cornered(), filename="c.png")
    assert client.put(f"/api/uploads/{upload['id']}/crops/hero", json=HERO, headers=other).status_code == 404
    assert client.put(f"/api/uploads/{upload['id']}/crops/hero", json=HERO, headers=owner).status_code == 200
    assert client.delete(f"/api/uploads/{upload['id']}/crops/hero", headers=owner).status_code == 200
    client.post("/api/shop/products", headers=admin, json={"sku": "CR-1", "name": "Lamp", "price": 10})
    client.post("/api/shop/products/CR-1/images", headers=admin,
                data={"images": (io.BytesIO(cornered()), "c.png")})
    photo = client.get("/api/shop/products/CR-1").get_json()["images"][0]
    path = f"/api/shop/products/CR-1/images/{photo['id']}/crops/og"
    assert client.put(path, json=HERO, headers=other).status_code == 403
    answer = client.put(path, json=HERO, headers=admin)
    assert answer.status_code == 200 and answer.get_json()["crops"] == {"og": HERO}
    assert client.get("/api/shop/products/CR-1").get_json()["images"][0]["crops"] == {"og": HERO}


# --- renditions by crop name ---------------------------------------------------------------

RED_QUARTER = {"x": 0, "y": 0, "width": 0.25, "height": 0.25}  # exactly the red corner


def rendition(item: dict, segment: str) -> str:
    return item["variants"]["card"].rsplit("/", 1)[0] + "/" + segment


def test_a_rendition_by_crop_name_renders_the_crop_s_box(client, editor):
    item = media(client, editor)
    with_hero = crop(client, editor, item["id"], "hero", RED_QUARTER).get_json()
    shown = picture(client, rendition(with_hero, "c_hero,w_160.webp"))
    # The 100x50 red corner, never upscaled to 160: all of it red.
    assert shown.size == (WIDTH // 4, HEIGHT // 4)
    assert all(is_red(shown.getpixel(xy)) for xy in ((0, 0), (99, 0), (0, 49), (99, 49), (50, 25)))
    whole = picture(client, rendition(with_hero, "w_160.webp"))
    assert whole.size == (160, 80) and not is_red(whole.getpixel((159, 79)))


def test_crop_renditions_stay_on_the_allow_list_unless_signed(client, editor):
    item = crop(client, editor, media(client, editor)["id"], "hero", RED_QUARTER).get_json()
    assert client.get(rendition(item, "c_hero,w_160.webp")).status_code == 200
    for segment in ("c_hero,w_170.webp", "c_hero,w_160,h_160.webp", "c_hero.webp", "c_hero,w_160,q_50.webp"):
        refused = client.get(rendition(item, segment))
        assert refused.status_code == 403, segment
        assert refused.get_json()["error"]["code"] == "rendition_not_allowed"
    for segment in ("c_Hero,w_160.webp", "c_,w_160.webp", "c_hero,c_card,w_160.webp"):
        assert client.get(rendition(item, segment)).status_code == 400, segment


def test_an_unsigned_rendition_of_a_crop_the_image_lacks_is_403_and_stores_nothing(client, editor, db):
    item = crop(client, editor, media(client, editor)["id"], "hero", RED_QUARTER).get_json()
    for segment in ("c_nope,w_160.webp", "c_card,w_320.jpg", "c_zz1,w_160"):
        refused = client.get(rendition(item, segment))
        assert refused.status_code == 403, segment
        assert refused.get_json()["error"]["code"] == "rendition_not_allowed"
    figures = Figures(db)
    figures.recount_media()  # the running total set from the files themselves, not trusted
    assert figures.rendition_total()["files"] == 0
    assert client.get(rendition(item, "c_hero,w_160.webp")).status_code == 200  # the crop it has


def test_a_preset_s_name_is_a_crop_name_every_image_may_be_asked_for_unsigned(app_factory):
    app = app_factory(AVENUE_RENDITION_PRESETS="banner=w_200,h_100,fit_cover")
    client, editor = app.test_client(), Auth(app).token("editor")
    item = media(client, editor)  # no crop named banner: the focal point decides
    assert picture(client, rendition(item, "c_banner,w_160.webp")).size == (160, 80)


def test_a_named_preset_uses_the_image_s_crop_of_its_name(app_factory):
    app = app_factory(AVENUE_RENDITION_PRESETS="banner=w_200,h_100,fit_cover")
    client, editor = app.test_client(), Auth(app).token("editor")
    item = media(client, editor)
    plain = picture(client, rendition(item, "banner.png"))
    assert plain.size == (200, 100) and not is_red(plain.getpixel((150, 75)))
    framed = crop(client, editor, item["id"], "banner", RED_QUARTER).get_json()
    shown = picture(client, rendition(framed, "banner.png"))
    assert all(is_red(shown.getpixel(xy)) for xy in ((0, 0), (shown.width - 1, shown.height - 1)))


def test_the_og_variant_is_cut_inside_the_image_s_og_crop(client, editor):
    item = media(client, editor)
    assert not is_red(picture(client, item["variants"]["og"]).getpixel((150, 100)))
    framed = crop(client, editor, item["id"], "og", RED_QUARTER).get_json()
    for fmt, url in framed["variant_urls"]["og"].items():
        shown = picture(client, url)
        assert all(is_red(shown.getpixel(xy)) for xy in ((0, 0), (shown.width - 1, shown.height - 1))), fmt
    # Its preset-like URL too: the fixed og is what /og names.
    assert all(is_red(picture(client, framed["variants"]["og"]).getpixel(xy)) for xy in ((0, 0), (5, 5)))


def test_a_new_file_drops_the_edits_and_the_edited_version_goes_to_the_trash_whole(client, editor, db,
        media_core):
    item = media(client, editor)
    edit(client, editor, item["id"], {"rotate": 90})
    replaced = client.put(f"/api/builder/media/{item['id']}", headers=editor,
                          data={"file": (io.BytesIO(cornered(300, 300)), "square.png")})
    assert replaced.status_code == 200, replaced.get_json()
    new = replaced.get_json()
    assert new["edits"] is None and (new["width"], new["height"]) == (300, 300)
    assert new["source"] == {"width": 300, "height": 300, "url": new["url"]}
    assert db[f"{Buckets.BUILDER}.files"].count_documents({"metadata.variant": "source"}) == 0
    assert db[f"{TRASH}.files"].count_documents({"metadata.variant": "source"}) == 1
    assert AppMedia.on(db, media_core).maintenance.collect_garbage(dry_run=True).removed == []
    assert AppMedia.on(db).maintenance.fsck().findings == []


def test_no_rendition_preset_may_take_the_source_s_name(app_factory):
    with pytest.raises(RuntimeError, match="AVENUE_RENDITION_PRESETS"):
        app_factory(AVENUE_RENDITION_PRESETS="source=w_100")


def test_the_original_file_sent_again_undoes_the_edits_with_nothing_left_behind(client, editor, db,
        media_core):
    item = media(client, editor)
    edit(client, editor, item["id"], {"rotate": 90})
    replaced = client.put(f"/api/builder/media/{item['id']}", headers=editor,
                          data={"file": (io.BytesIO(cornered()), "corner.png")})
    assert replaced.status_code == 200, replaced.get_json()
    new = replaced.get_json()
    assert new["edits"] is None and (new["width"], new["height"]) == (WIDTH, HEIGHT)
    assert red_corner(picture(client, new["url"])) == "tl"
    assert red_corner(picture(client, new["variants"]["card"])) == "tl"
    assert AppMedia.on(db, media_core).maintenance.collect_garbage(dry_run=True).removed == []
    assert AppMedia.on(db).maintenance.fsck().findings == []


@pytest.mark.parametrize("ttl", [60, 3600])
def test_the_source_url_expires_after_avenue_source_url_ttl_seconds(app_factory, ttl):
    from urllib.parse import parse_qs, urlsplit

    app = app_factory(AVENUE_SOURCE_URL_TTL_SECONDS=ttl)
    client, editor = app.test_client(), Auth(app).token("editor")
    item = media(client, editor)
    url = edit(client, editor, item["id"], {"rotate": 90}).get_json()["source"]["url"]
    left = int(parse_qs(urlsplit(url).query)["expires"][0]) - time.time()
    assert ttl - 5 <= left <= ttl + max(60, ttl // 4), left  # the lifetime, at most a window more
