"""Replace in place (avenue/media/store/replace.py): new bytes or a new focal point for an image that
keeps its id and every reference, under new versioned URLs; the old URLs redirect for
AVENUE_REPLACED_REDIRECT_DAYS, then 404; the old bytes wait in the trash."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from hashlib import sha256
from urllib.parse import parse_qsl

import pymongo
import pytest
from bson import ObjectId
from PIL import Image as PILImage

from avenue.clock import now
from avenue.media import AppMedia, Buckets, Library, Media, UrlSigner
from avenue.media.maintenance import Figures
from avenue.media.wiring import PURGE_OUTBOX
from tests.helpers import error_body, form, image_bytes, library_upload
from tests.support.client import uploaded
from tests.support.gridfs_read import current_bytes
from tests.support.records import IMAGE, images, record
from tests.support.replacing import OTHER, body_of, replace_media

PHOTO, PNG = "good/progressive.jpg", "good/alpha.png"
TRASH = Figures.TRASH
KEY = "test-secret-key-for-avenue"  # the key conftest's apps sign with
NEW_KEY = "a-brand-new-secret-key-for-avenue"


def test_replacing_library_media_keeps_its_id_and_pages_and_changes_every_url(client, db, editor):
    media = library_upload(client, editor)
    page = client.put("/api/builder/pages/home", headers=editor, json={
        "title": "Home", "blocks": [{"type": "image", "media_id": media["id"]}], "published": True})
    assert page.status_code == 200, page.get_json()
    answer = replace_media(client, editor, media["id"])
    assert answer.status_code == 200, answer.get_json()
    new = answer.get_json()
    assert new["id"] == media["id"] and new["used_in"] == ["home"]
    assert media["version"] == "" and len(new["version"]) == 8
    assert new["sha256"] == sha256(image_bytes(OTHER)).hexdigest() != media["sha256"]
    assert new["url"] != media["url"] and f"{media['id']}~{new['version']}" in new["url"]
    for name, url in new["variants"].items():
        assert url != media["variants"][name] and f"~{new['version']}/" in url
    # The new URLs serve the new bytes; the page renders them.
    assert sha256(body_of(client, new["url"])).hexdigest() == new["sha256"]
    assert PILImage.open(io.BytesIO(body_of(client, new["variants"]["thumb"]))).mode == "L"  # greyscale now
    rendered = client.get("/api/builder/pages/home").get_json()
    assert rendered["blocks"][0]["url"] == new["url"]
    # The old URLs answer 308 to the same thing in the new version.
    for old, current in [(media["url"], new["url"]), (media["variants"]["card"], new["variants"]["card"]),
                         (media["variant_urls"]["og"]["webp"], new["variant_urls"]["og"]["webp"])]:
        moved = client.get(old)
        assert moved.status_code == 308, old
        assert moved.headers["Location"].endswith(current.split("/media/", 1)[1])
        assert "max-age" in moved.headers["Cache-Control"]
    listed = client.get("/api/builder/media", headers=editor).get_json()["items"]
    assert [m["id"] for m in listed].count(media["id"]) == 1
    assert listed[0]["version"] == new["version"]


def test_the_old_version_waits_in_the_trash_under_its_own_id_and_comes_back_alone(client, db, editor):
    media = library_upload(client, editor)
    new = replace_media(client, editor, media["id"]).get_json()
    items = client.get("/api/trash", headers=editor).get_json()["items"]
    assert len(items) == 1 and items[0]["id"] != media["id"]
    assert items[0]["references"] == {"replaced_in": media["id"]}
    assert items[0]["filename"] == "progressive.jpg"
    # In the trash, a record and its files: its bytes and 8 variants. The library keeps the
    # image's record, its new bytes' file and 8 variants; the upload's bytes' file (under the
    # image's id) went.
    trashed = ObjectId(items[0]["id"])
    of_trashed = {"$or": [{"_id": trashed}, {"metadata.original_id": trashed}]}
    assert record(db, TRASH, trashed) is not None
    assert db[f"{TRASH}.files"].count_documents(of_trashed) == 9
    assert db[f"{Buckets.BUILDER}.files"].count_documents(
        {"metadata.original_id": ObjectId(media["id"])}) == 9
    assert db[f"{Buckets.BUILDER}.files"].count_documents({"_id": ObjectId(media["id"])}) == 0
    restored = client.post(f"/api/trash/{items[0]['id']}/restore", headers=editor)
    assert restored.status_code == 200, restored.get_json()
    back = restored.get_json()["image"]
    assert back["id"] == items[0]["id"] and back["sha256"] == media["sha256"]
    assert sha256(body_of(client, back["url"])).hexdigest() == media["sha256"]
    current = client.get(f"/api/builder/media/{media['id']}", headers=editor).get_json()
    assert current["version"] == new["version"]
    assert AppMedia.on(db).maintenance.fsck().findings == []


def test_replace_with_redirects_off_answers_404_for_old_urls_at_once(client, app, editor):
    app.config["AVENUE_REPLACED_REDIRECT_DAYS"] = 0
    media = library_upload(client, editor)
    replace_media(client, editor, media["id"])
    assert client.get(media["url"]).status_code == 404


def test_replacing_with_the_same_bytes_changes_nothing(client, db, editor):
    media = library_upload(client, editor)
    again = replace_media(client, editor, media["id"], name=PHOTO)
    assert again.status_code == 200
    assert again.get_json()["url"] == media["url"] and again.get_json()["version"] == ""
    assert client.get("/api/trash", headers=editor).get_json()["items"] == []


def test_replacing_twice_redirects_both_earlier_versions_to_the_latest(client, db, editor):
    media = library_upload(client, editor)
    second = replace_media(client, editor, media["id"], name=OTHER).get_json()
    third = replace_media(client, editor, media["id"], name=PNG).get_json()
    assert third["content_type"] == "image/png" and third["url"].endswith(".png")
    for old in (media["url"], second["url"]):
        moved = client.get(old)
        assert moved.status_code == 308
        assert moved.headers["Location"].endswith(third["url"].split("/media/", 1)[1])
    # The card asked for as JPEG: the PNG (with transparency) has no JPEG card; negotiated instead.
    moved = client.get(second["variant_urls"]["card"]["jpg"])
    assert moved.status_code == 308 and moved.headers["Location"].endswith(f"~{third['version']}/card")
    assert len(client.get("/api/trash", headers=editor).get_json()["items"]) == 2
    # Back to the first bytes: a new version (not the unversioned URL), whole again.
    fourth = replace_media(client, editor, media["id"], name=PHOTO).get_json()
    assert fourth["sha256"] == media["sha256"] and fourth["version"] not in ("", second["version"])
    assert sha256(body_of(client, fourth["url"])).hexdigest() == media["sha256"]
    # A new focal point on a replaced image: its content file stays, the crops are new.
    content = record(db, Buckets.BUILDER, ObjectId(media["id"]))["metadata"]["content"]
    fifth = client.put(f"/api/builder/media/{media['id']}/focal-point", json={"x": 0.9, "y": 0.1},
                       headers=editor).get_json()
    assert fifth["version"] != fourth["version"] and client.get(fourth["url"]).status_code == 308
    head = record(db, Buckets.BUILDER, ObjectId(media["id"]))
    assert head["metadata"]["content"] == content
    assert sha256(body_of(client, fifth["url"])).hexdigest() == media["sha256"]
    assert AppMedia.on(db).maintenance.fsck().findings == []
    # Counters match a recount: nothing counted twice or lost by the moves.
    recounted = Figures(db).recount_media()
    assert recounted[Buckets.BUILDER]["drift"] == {"files": 0, "originals": 0, "bytes": 0, "chunks": 0}
    assert recounted[TRASH]["drift"] == {"files": 0, "originals": 0, "bytes": 0, "chunks": 0}


def test_a_focal_point_set_recuts_the_crops_and_changes_the_urls(client, db, editor):
    media = library_upload(client, editor)
    old_og = body_of(client, media["variant_urls"]["og"]["webp"])
    answer = client.put(f"/api/builder/media/{media['id']}/focal-point", json={"x": 0.1, "y": 0.9},
                        headers=editor)
    assert answer.status_code == 200, answer.get_json()
    new = answer.get_json()
    assert new["focal_point"] == {"x": 0.1, "y": 0.9}
    assert new["sha256"] == media["sha256"] and new["version"] and new["url"] != media["url"]
    # The og crop is cut again around the new point; the old crop's URL redirects to it.
    assert body_of(client, new["variant_urls"]["og"]["webp"]) != old_og
    assert client.get(media["variant_urls"]["og"]["webp"]).status_code == 308
    # The bytes did not change: they stay where they were (the upload's file, under the image's
    # id), and nothing went to the trash.
    head = record(db, Buckets.BUILDER, ObjectId(media["id"]))
    assert "content" not in head["metadata"] and head["length"] == media["bytes"]
    assert db[f"{Buckets.BUILDER}.files"].find_one({"_id": ObjectId(media["id"])})["length"] == media["bytes"]
    assert sha256(body_of(client, new["url"])).hexdigest() == media["sha256"]
    assert client.get("/api/trash", headers=editor).get_json()["items"] == []
    assert db[f"{Buckets.BUILDER}.files"].count_documents(
        {"metadata.original_id": ObjectId(media["id"])}) == 9  # its bytes' file and 8 variants
    assert Figures(db).recount_media()[Buckets.BUILDER]["drift"] == {"files": 0, "originals": 0, "bytes": 0,
                                                                     "chunks": 0}
    assert AppMedia.on(db).maintenance.fsck().findings == []
    # The same point again: nothing to do.
    again = client.put(f"/api/builder/media/{media['id']}/focal-point", json={"x": 0.1, "y": 0.9},
                       headers=editor).get_json()
    assert again["version"] == new["version"]


@pytest.mark.parametrize("body", [None, [], {"x": 0.5}, {"x": 2, "y": 0.5}, {"x": "0.5", "y": 0.5},
                                  {"x": True, "y": 0.5}, {"x": 0.5, "y": 0.5, "z": 1}])
def test_a_bad_focal_point_is_400_and_changes_nothing(client, editor, body):
    media = library_upload(client, editor)
    answer = client.put(f"/api/builder/media/{media['id']}/focal-point", json=body, headers=editor)
    assert answer.status_code == 400
    assert error_body(answer)["code"] in ("invalid_focal_point", "invalid_json")
    assert client.get(f"/api/builder/media/{media['id']}", headers=editor).get_json()["version"] == ""


def test_replacing_with_a_file_that_is_not_an_image_is_refused_and_changes_nothing(client, db, editor):
    media = library_upload(client, editor)
    before = db[f"{Buckets.BUILDER}.files"].count_documents({})
    bad = client.put(f"/api/builder/media/{media['id']}", headers=editor,
                     data={"file": (io.BytesIO(b"not an image at all"), "x.jpg")})
    assert bad.status_code in (415, 422), bad.get_json()
    assert error_body(bad)["code"]
    missing = client.put(f"/api/builder/media/{media['id']}", headers=editor, data={})
    assert missing.status_code == 400
    assert db[f"{Buckets.BUILDER}.files"].count_documents({}) == before
    assert sha256(body_of(client, media["url"])).hexdigest() == media["sha256"]
    assert client.get("/api/trash", headers=editor).get_json()["items"] == []


def test_replacing_with_bytes_another_image_holds_is_409(client, editor):
    media = library_upload(client, editor)
    other = library_upload(client, editor, name=OTHER)
    answer = replace_media(client, editor, media["id"], name=OTHER)
    assert answer.status_code == 409
    assert error_body(answer)["code"] == "duplicate_image"
    assert error_body(answer)["image_id"] == other["id"]


def test_replacing_unknown_or_foreign_images_is_404(client, auth, editor):
    assert replace_media(client, editor, str(ObjectId())).status_code == 404
    assert replace_media(client, editor, "not-an-id").status_code == 404
    owner = auth.token("ops")
    upload = client.post("/api/uploads", data=form(PHOTO), headers=owner).get_json()
    stranger = auth.token("ops")
    answer = client.put(f"/api/uploads/{upload['id']}", data=form(OTHER), headers=stranger)
    assert answer.status_code == 404 and error_body(answer)["code"] == "upload_not_found"


def test_only_editors_replace_library_media(client, auth):
    editor = auth.token("editor")
    media = library_upload(client, editor)
    assert client.put(f"/api/builder/media/{media['id']}", data=form(OTHER)).status_code == 401
    assert client.put(f"/api/builder/media/{media['id']}", data=form(OTHER),
                      headers=auth.token("ops")).status_code == 403


def replace_upload(client, owner, upload_id: str, name=OTHER) -> dict:
    answer = client.put(f"/api/uploads/{upload_id}", data=form(name), headers=owner)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def error_headers(answer) -> list:
    """An answer's headers but its ``X-Request-ID`` (each request's own)."""
    return sorted((name, value) for name, value in answer.headers.items() if name != "X-Request-ID")


def path_and_query(url: str) -> tuple[str, dict]:
    path, _, query = url.partition("?")
    return path, dict(parse_qsl(query))


def test_replacing_a_private_upload_keeps_it_private_and_signed(client, auth):
    owner = auth.token("ops")
    upload = uploaded(client, owner, PHOTO, visibility="private", expect=(201,))
    new = replace_upload(client, owner, upload["id"])
    assert new["visibility"] == "private" and "sig=" in new["url"] and new["version"]
    # The links handed out after the replace open the new version.
    assert sha256(body_of(client, new["url"])).hexdigest() == new["sha256"]
    for url in [*new["variants"].values(), new["variant_urls"]["og"]["webp"]]:
        assert client.get(url).headers["Cache-Control"].startswith("private")
    unsigned = new["url"].split("?")[0]
    assert client.get(unsigned).status_code == 404


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_an_uploads_old_urls_redirect_when_public_and_are_404_when_private(client, auth, visibility):
    """A private file is often replaced because the old one was wrong to share: its old signed
    links must not lead to the new picture, by redirect or otherwise."""
    owner = auth.token("ops")
    upload = uploaded(client, owner, PHOTO, visibility=visibility, expect=(201,))
    new = replace_upload(client, owner, upload["id"])
    unknown = client.get(f"/media/uploads/{ObjectId()}")
    pairs = [(upload["url"], new["url"]), (upload["variants"]["thumb"], new["variants"]["thumb"]),
             (upload["variant_urls"]["og"]["webp"], new["variant_urls"]["og"]["webp"])]
    for old, current in pairs:
        answer = client.get(old)
        if visibility == "public":
            assert answer.status_code == 308, old
            assert answer.headers["Location"].endswith(current.split("/media/", 1)[1])
        else:
            # The route's plain 404, headers and all, as for an image that does not exist.
            assert answer.status_code == 404, old
            assert answer.data == unknown.data == b"Not found\n"
            assert error_headers(answer) == error_headers(unknown)
            assert "Location" not in answer.headers and answer.headers["Cache-Control"] == "no-store"
            assert client.head(old).status_code == 404
        assert body_of(client, current)
    if visibility == "private":
        # Replaced again: the links of the version in between stop working as well.
        third = replace_upload(client, owner, upload["id"], name=PNG)
        assert client.get(new["url"]).status_code == client.get(new["variants"]["card"]).status_code == 404
        assert sha256(body_of(client, third["url"])).hexdigest() == third["sha256"]


def test_a_signature_opens_only_the_version_it_was_signed_for(client, auth):
    owner = auth.token("ops")
    upload = uploaded(client, owner, PHOTO, visibility="private", expect=(201,))
    new = replace_upload(client, owner, upload["id"])
    for old, current in [(upload["url"], new["url"]), (upload["variants"]["card"], new["variants"]["card"])]:
        # The old link with the new version written into its path: its signature does not cover it.
        _, old_query = path_and_query(old)
        current_path, current_query = path_and_query(current)
        assert client.get(current_path, query_string=old_query).status_code == 403
        # Nor does the new signature open a version it was not made for (made up, or the old one).
        made_up = current_path.replace(new["version"], "0123abcd")
        assert client.get(made_up, query_string=current_query).status_code == 404
        assert client.get(current_path.replace(f"~{new['version']}", ""),
                          query_string=current_query).status_code == 404
    # A signature over no version at all (how URLs were signed before they named one).
    unversioned = UrlSigner(key=KEY).media_url(Buckets.UPLOADS, upload["id"], ext="jpg", private=True)
    assert client.get(path_and_query(new["url"])[0],
                      query_string=path_and_query(unversioned)[1]).status_code == 403
    assert body_of(client, new["url"])


def test_a_current_versions_signed_url_works_until_it_expires_with_every_key(client, app_factory, auth):
    owner = auth.token("ops")
    upload = uploaded(client, owner, PHOTO, visibility="private", expect=(201,))
    new = replace_upload(client, owner, upload["id"])
    signer = UrlSigner(key=KEY, ttl_seconds=3600)
    ext = new["url"].split("?")[0].rsplit(".", 1)[1]

    def signed(issued_at: float, variant: str = "") -> str:
        return signer.media_url(Buckets.UPLOADS, upload["id"], variant, "" if variant else ext, private=True,
                                now=issued_at, version=new["version"])

    # Handed out half an hour ago: still good; two hours ago: expired.
    assert sha256(body_of(client, signed(time.time() - 1800))).hexdigest() == new["sha256"]
    assert body_of(client, signed(time.time() - 1800, "thumb"))
    assert client.get(signed(time.time() - 7200)).status_code == 403
    # Replacing with the same bytes changes nothing: the links already out keep working.
    assert replace_upload(client, owner, upload["id"])["version"] == new["version"]
    assert body_of(client, new["url"]) and body_of(client, new["variants"]["gallery"])
    # Keys rotate as before: the first signs, every key verifies, for the current version only.
    rotated = app_factory(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[KEY]).test_client()
    assert rotated.get(new["url"]).status_code == rotated.get(new["variants"]["thumb"]).status_code == 200
    assert [rotated.get(old).status_code for old in (upload["url"], upload["variants"]["thumb"])] == [404] * 2
    fresh = rotated.get(f"/api/uploads/{upload['id']}", headers=owner).get_json()
    assert fresh["url"] != new["url"]
    assert body_of(rotated, fresh["url"]) and body_of(rotated, fresh["variants"]["og"])
    assert client.get(fresh["url"]).status_code == 403  # signed with the new key, which this app lacks


def test_replacing_a_product_photo_keeps_its_place_and_updates_the_product(client, db, admin):
    assert client.post("/api/shop/products", json={"sku": "RP-1", "name": "x", "price": 1},
                       headers=admin).status_code == 201
    added = client.post("/api/shop/products/RP-1/images", headers=admin,
                        data={"images": [form(PHOTO)["file"], form(PNG)["file"]]})
    first, second = added.get_json()["product"]["images"]
    answer = client.put(f"/api/shop/products/RP-1/images/{first['id']}", data=form(OTHER), headers=admin)
    assert answer.status_code == 200, answer.get_json()
    images = answer.get_json()["images"]
    assert [i["id"] for i in images] == [first["id"], second["id"]]
    assert images[0]["version"] and images[0]["url"] != first["url"]
    assert images[0]["sha256"] == sha256(image_bytes(OTHER)).hexdigest()
    public = client.get("/api/shop/products/RP-1").get_json()["images"][0]
    assert public["url"] == images[0]["url"]
    assert sha256(body_of(client, public["url"])).hexdigest() == public["sha256"]
    assert client.get(first["url"]).status_code == 308
    # The old photo is in the trash for this product: restoring it adds it back at the end.
    item = client.get("/api/trash", headers=admin).get_json()["items"][0]
    assert item["references"]["sku"] == "RP-1"
    restored = client.post(f"/api/trash/{item['id']}/restore", headers=admin).get_json()
    assert restored["product"] == "RP-1"
    ids = [i["id"] for i in client.get("/api/shop/products/RP-1").get_json()["images"]]
    assert ids == [first["id"], second["id"], item["id"]]
    # A photo of another product is not this product's to replace.
    assert client.post("/api/shop/products", json={"sku": "RP-2", "name": "y", "price": 1},
                       headers=admin).status_code == 201
    other = client.put(f"/api/shop/products/RP-2/images/{first['id']}", data=form(PNG), headers=admin)
    assert other.status_code == 404 and error_body(other)["code"] == "image_not_found"
    focal = client.put(f"/api/shop/products/RP-1/images/{second['id']}/focal-point", json={"x": 0, "y": 0},
                       headers=admin)
    assert focal.status_code == 200 and focal.get_json()["images"][1]["focal_point"] == {"x": 0, "y": 0}
    assert AppMedia.on(db).maintenance.fsck().findings == []


def test_a_delete_while_a_replace_holds_the_image_is_409_and_the_other_way_round(client, db, editor):
    media = library_upload(client, editor)
    files = images(db, Buckets.BUILDER)
    files.update_one({"_id": ObjectId(media["id"])}, {"$set": {"metadata.replacing_at": now()}})
    deleting = client.delete(f"/api/builder/media/{media['id']}", headers=editor)
    assert deleting.status_code == 409 and error_body(deleting)["code"] == "image_busy"
    assert replace_media(client, editor, media["id"]).status_code == 409
    files.update_one({"_id": ObjectId(media["id"])},
                     {"$set": {"metadata.replacing_at": now() - dt.timedelta(minutes=5)}})  # lapsed
    files.update_one({"_id": ObjectId(media["id"])}, {"$set": {"metadata.deleting_at": now()}})
    answer = replace_media(client, editor, media["id"])
    assert answer.status_code == 409 and error_body(answer)["code"] == "image_busy"
    assert client.get(media["url"]).status_code == 200  # untouched


def test_concurrent_replace_and_delete_one_wins_and_nothing_is_half_done(app, db, editor, backend):
    """Many rounds of a replace racing a delete of the same image: each round ends with the
    image either deleted (in the trash, whole) or replaced (whole, served), never both or a mix."""
    if backend[0] is not pymongo.MongoClient:
        # A full run's mongomock answered 500 ("dictionary changed size during iteration": a
        # find copying a document another thread was changing).
        pytest.skip("threads need a real server (mongomock is not thread-safe)")
    for _ in range(3):
        media = library_upload(app.test_client(), editor)
        results: dict[str, int] = {}

        def do(kind: str, media_id: str = media["id"], results: dict[str, int] = results) -> None:
            c = app.test_client()
            if kind == "replace":
                results[kind] = replace_media(c, editor, media_id).status_code
            else:
                results[kind] = c.delete(f"/api/builder/media/{media_id}", headers=editor).status_code

        threads = [threading.Thread(target=do, args=(kind,)) for kind in ("replace", "delete")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        head = record(db, Buckets.BUILDER, ObjectId(media["id"]))
        trashed = images(db, TRASH).count_documents(IMAGE)
        if results["delete"] == 204:
            # The delete won, or came after the replace finished: gone, every version in the trash.
            assert head is None and results["replace"] in (200, 404, 409)
            assert trashed == (2 if results["replace"] == 200 else 1)
        else:
            # The replace won and the delete was told so: served whole, the old version trashed.
            assert results["delete"] == 409 and results["replace"] == 200
            assert head is not None and head["metadata"]["version"] and trashed == 1
        assert AppMedia.on(db).maintenance.fsck().findings == []
        for bucket in (Buckets.BUILDER, TRASH):
            images(db, bucket).delete_many({})
            db[f"{bucket}.files"].delete_many({})
            db[f"{bucket}.chunks"].delete_many({})


def test_replacing_public_media_queues_a_cdn_purge_of_the_old_urls(app, client, db, editor, monkeypatch):
    monkeypatch.setitem(app.config, "AVENUE_CDN_PURGE_URL", "http://cdn.invalid/purge")
    media = library_upload(client, editor)
    replace_media(client, editor, media["id"])
    queued = list(db[PURGE_OUTBOX].find())
    assert len(queued) == 1
    paths = queued[0]["paths"]
    assert media["url"].split("http://localhost")[-1] in paths
    assert any(path.endswith("/thumb") and "~" not in path for path in paths)


def test_gc_and_fsck_know_a_replaced_image(client, db, editor, media_core):
    media = library_upload(client, editor)
    replace_media(client, editor, media["id"])
    AppMedia.on(db, media_core).maintenance.collect_garbage()
    assert client.get(client.get(f"/api/builder/media/{media['id']}", headers=editor).get_json()["url"]
                      ).status_code == 200
    assert AppMedia.on(db).maintenance.fsck().findings == []
    # Losing the file that holds its bytes is reported.
    head = record(db, Buckets.BUILDER, ObjectId(media["id"]))
    db[f"{Buckets.BUILDER}.files"].delete_one({"_id": head["metadata"]["content"]["id"]})
    codes = {code for finding in AppMedia.on(db).maintenance.fsck().findings for code in finding.codes}
    assert "missing_content" in codes


def test_replacing_an_upload_deletes_none_of_the_other_buckets(client, db, auth):
    owner = auth.token("ops")
    upload = client.post("/api/uploads", data=form(PHOTO), headers=owner).get_json()
    answer = client.put(f"/api/uploads/{upload['id']}", data=form(OTHER), headers=owner)
    assert answer.status_code == 200
    assert images(db, Buckets.UPLOADS).count_documents(IMAGE) == 1
    assert db[f"{Buckets.UPLOADS}.files"].count_documents({"metadata.role": "original"}) == 0
    assert images(db, Buckets.PRODUCTS).count_documents({}) == 0
    assert db[f"{Buckets.PRODUCTS}.files"].count_documents({}) == 0


def test_a_replaced_image_is_backed_up_without_a_checksum_complaint_and_restored_whole(client, db, editor,
                                                                                      tmp_path, media_core):
    media = library_upload(client, editor)
    new = replace_media(client, editor, media["id"]).get_json()
    from avenue.ops import backup as backup_module

    archive = tmp_path / "backup.tar"
    with archive.open("wb") as out:
        report = backup_module.backup(db, out, media=media_core)
    assert report.checksum_mismatches == [] and report.incomplete == []
    other = db.client[f"{db.name}_restored"]
    try:
        with archive.open("rb") as source:
            assert backup_module.restore(other, source, media=media_core).ok
        head = record(other, Buckets.BUILDER, ObjectId(media["id"]))
        assert head["metadata"]["version"] == new["version"] and head["length"] == new["bytes"]
        content = other[f"{Buckets.BUILDER}.files"].find_one({"_id": head["metadata"]["content"]["id"]})
        assert content["metadata"]["sha256"] == new["sha256"]
        # Read without the app, by docs/operations.md's rule.
        assert sha256(current_bytes(other, Buckets.BUILDER, head["_id"])).hexdigest() == new["sha256"]
        assert AppMedia.on(other).maintenance.fsck().findings == []
    finally:
        db.client.drop_database(other.name)


def test_the_sweep_repairs_a_product_left_on_an_earlier_version_by_a_replace_cut_off(app, client, db, admin):
    """A replace switches the image, then updates the products that use it: a worker that died
    in between leaves them on the earlier version (whose URLs only redirect for a while). The
    status sweep finds and repairs such references, and never undoes a newer one."""
    from tests.helpers import swept

    assert client.post("/api/shop/products", json={"sku": "RP-9", "name": "x", "price": 1},
                       headers=admin).status_code == 201
    added = client.post("/api/shop/products/RP-9/images", headers=admin,
                        data={"images": [form(PHOTO)["file"]]})
    photo = added.get_json()["product"]["images"][0]
    # The switch happened, the product update did not (the worker died in between).
    Library(db, Buckets.PRODUCTS, Media()).replace(ObjectId(photo["id"]),
                                                   Library.Upload("new.jpg", image_bytes(OTHER)))
    stale = client.get("/api/shop/products/RP-9").get_json()["images"][0]
    assert stale["version"] == "" and client.get(stale["url"]).status_code == 308
    result = swept(app)
    assert result["references_repaired"] == 1
    fresh = client.get("/api/shop/products/RP-9").get_json()["images"][0]
    head = Library(db, Buckets.PRODUCTS, Media()).get(ObjectId(photo["id"]))
    assert fresh["version"] == head.version and fresh["sha256"] == sha256(image_bytes(OTHER)).hexdigest()
    assert sha256(body_of(client, fresh["url"])).hexdigest() == fresh["sha256"]
    assert swept(app)["references_repaired"] == 0  # nothing left to repair


def test_a_focal_point_on_an_upload_whose_metadata_was_stripped_keeps_its_identity(client, db, editor):
    """The stored bytes of an upload with EXIF are not the upload's: a new focal point renders
    them again but keeps the image's dedupe identity (the same file uploaded again is still
    this image), and two images whose stripped bytes match are not confused."""
    rotated = "good/photo_exif_rotated.jpg"
    media = library_upload(client, editor, name=rotated)
    head = record(db, Buckets.BUILDER, ObjectId(media["id"]))
    assert head["metadata"]["source_sha256"] != head["metadata"]["sha256"]  # the EXIF was stripped
    answer = client.put(f"/api/builder/media/{media['id']}/focal-point", json={"x": 0.2, "y": 0.2},
                        headers=editor)
    assert answer.status_code == 200, answer.get_json()
    after = record(db, Buckets.BUILDER, ObjectId(media["id"]))
    for field in ("key", "source_sha256", "sha256", "width", "height"):
        assert after["metadata"][field] == head["metadata"][field], field
    again = client.post("/api/builder/media", data=form(rotated), headers=editor)
    assert again.status_code == 200 and again.get_json()["id"] == media["id"]
    assert again.get_json()["version"] == answer.get_json()["version"]
    assert client.get("/api/trash", headers=editor).get_json()["items"] == []


@pytest.mark.parametrize("name", ["bad/empty.jpg", "bad/truncated.jpg", "bad/bomb_50000x50000.png",
                                  "bad/script.svg", "bad/html_polyglot.gif", "bad/document.pdf"])
def test_a_hostile_file_put_in_place_is_refused_and_changes_nothing(client, db, editor, name):
    media = library_upload(client, editor)
    before = db[f"{Buckets.BUILDER}.files"].count_documents({})
    answer = client.put(f"/api/builder/media/{media['id']}", headers=editor, data=form(name))
    assert 400 <= answer.status_code < 500 and answer.status_code != 404, answer.status_code
    assert error_body(answer)["code"]
    assert db[f"{Buckets.BUILDER}.files"].count_documents({}) == before
    head = record(db, Buckets.BUILDER, ObjectId(media["id"]))
    assert "replacing_at" not in head["metadata"] and "version" not in head["metadata"]
    assert sha256(body_of(client, media["url"])).hexdigest() == media["sha256"]
    assert client.get("/api/trash", headers=editor).get_json()["items"] == []


def test_a_file_over_the_upload_limit_is_413_before_anything_is_read(client, app, editor):
    media = library_upload(client, editor)
    app.config["AVENUE_MAX_UPLOAD_BYTES"] = 20_000
    answer = client.put(f"/api/builder/media/{media['id']}", headers=editor, data=form(OTHER))
    assert answer.status_code == 413 and error_body(answer)["code"]
    assert client.get(f"/api/builder/media/{media['id']}", headers=editor).get_json()["version"] == ""


@pytest.mark.parametrize("suffix", ["~", "~zz", "~0123abcd~x", "~%2e%2e", "~" + "f" * 300, "~.jpg"])
def test_a_malformed_version_in_a_media_url_is_404(client, editor, suffix):
    media = library_upload(client, editor)
    new = replace_media(client, editor, media["id"]).get_json()
    for base in (media["url"].rsplit(".", 1)[0], new["url"].rsplit(".", 1)[0].split("~")[0]):
        assert client.get(f"{base}{suffix}").status_code == 404
        assert client.get(f"{base}{suffix}/thumb").status_code == 404
