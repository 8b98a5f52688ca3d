"""The trash: deleted media is kept restorable for AVENUE_TRASH_DAYS, never served meanwhile,
restored with its id and references, deduplicated against, purged by gc, checked by fsck."""

from __future__ import annotations

import datetime as dt

import pytest
from bson import ObjectId

from avenue.clock import now
from avenue.media import AppMedia, Buckets, Media
from avenue.media.maintenance import Figures
from tests.helpers import error_body, form, library_upload
from tests.support.records import images

PHOTO, OTHER = "good/progressive.jpg", "good/grayscale.jpg"
TRASH = Figures.TRASH


def product_with_photos(client, admin, sku="TR-1", names=(PHOTO, OTHER)) -> list[dict]:
    assert client.post("/api/shop/products", json={"sku": sku, "name": "x", "price": 1},
                       headers=admin).status_code == 201
    added = client.post(f"/api/shop/products/{sku}/images", headers=admin,
                        data={"images": [form(name)["file"] for name in names]})
    assert added.status_code == 201, added.get_json()
    return added.get_json()["product"]["images"]


def trash_ids(client, headers, **query) -> list[str]:
    answer = client.get("/api/trash", headers=headers, query_string=query)
    assert answer.status_code == 200, answer.get_json()
    return [item["id"] for item in answer.get_json()["items"]]


def files(db, bucket: str, image_id: str) -> int:
    """How many documents of the image the bucket holds: its record (in ``<bucket>.images``)
    and its files (its bytes' file, under its id, and its variants): 10 for a whole image."""
    oid = ObjectId(image_id)
    return images(db, bucket).count_documents({"_id": oid}) + db[f"{bucket}.files"].count_documents(
        {"$or": [{"_id": oid}, {"metadata.original_id": oid}]})


def test_deleted_library_media_is_not_served_and_waits_in_the_trash(client, db, editor):
    media = library_upload(client, editor)
    assert client.get(media["url"]).status_code == 200
    assert client.delete(f"/api/builder/media/{media['id']}", headers=editor).status_code == 204
    assert client.get(media["url"]).status_code == 404  # not served from the trash
    assert client.get(media["variants"]["thumb"]).status_code == 404
    listed = client.get("/api/builder/media", headers=editor).get_json()["items"]
    assert media["id"] not in [m["id"] for m in listed]
    assert files(db, Buckets.BUILDER, media["id"]) == 0 and files(db, TRASH, media["id"]) == 10
    item = client.get(f"/api/trash/{media['id']}", headers=editor).get_json()
    assert item["from"] == "builder" and item["filename"] == "progressive.jpg"
    assert item["references"] == {"pages": []}
    deleted, purge_after = (dt.datetime.fromisoformat(item[k]) for k in ("deleted_at", "purge_after"))
    assert purge_after - deleted == dt.timedelta(days=30)
    assert "url" not in item  # nothing in the trash has a URL
    assert trash_ids(client, editor) == [media["id"]]
    # Not live: the library's counters dropped it, the trash's hold it.
    held = Figures(db).counters()
    assert held[Buckets.BUILDER]["originals"] == 0
    assert held[TRASH]["originals"] == 1 and held[TRASH]["files"] == 9


def test_storage_status_shows_the_trash_apart_from_the_live_buckets(client, editor, auth):
    media = library_upload(client, editor)
    ops = auth.token("ops")
    before = client.get("/api/shop/debug/storage-status", headers=ops).get_json()
    assert client.delete(f"/api/builder/media/{media['id']}", headers=editor).status_code == 204
    report = client.get("/api/shop/debug/storage-status", headers=ops).get_json()
    library = report["buckets"][Buckets.BUILDER]
    assert library["originals"] == 0 and library["files"] == 0
    assert (report["trash"]["originals"], report["trash"]["files"], report["trash"]["days"]) == (1, 9, 30)
    assert report["trash"]["bytes"] == before["buckets"][Buckets.BUILDER]["bytes"]
    assert report["gridfs_bytes"] == before["gridfs_bytes"] - report["trash"]["bytes"]


def test_a_restored_library_image_keeps_its_id_and_urls_and_pages_stay_as_they_are(client, db, editor):
    media = library_upload(client, editor)
    page = {"title": "Home", "blocks": [{"type": "image", "media_id": media["id"]}, {"type": "text"}]}
    assert client.put("/api/builder/pages/home", json=page, headers=editor).status_code == 200
    assert client.delete(f"/api/builder/media/{media['id']}?force=1", headers=editor).status_code == 204
    item = client.get(f"/api/trash/{media['id']}", headers=editor).get_json()
    assert item["references"] == {"pages": ["home"]}
    restored = client.post(f"/api/trash/{media['id']}/restore", headers=editor)
    assert restored.status_code == 200, restored.get_json()
    body = restored.get_json()
    assert body["from"] == "builder" and body["reused"] is False and body["image"]["id"] == media["id"]
    assert client.get(media["url"]).status_code == 200
    assert client.get(media["variants"]["og"]).status_code == 200
    assert client.get(f"/api/builder/media/{media['id']}", headers=editor).status_code == 200
    assert files(db, Buckets.BUILDER, media["id"]) == 10 and files(db, TRASH, media["id"]) == 0
    assert trash_ids(client, editor) == []
    blocks = client.get("/api/builder/pages/home", headers=editor).get_json()["blocks"]
    assert [b["type"] for b in blocks] == ["text"]  # the forced delete's cleaning stands
    held = Figures(db).counters()
    assert held[Buckets.BUILDER]["originals"] == 1 and held[TRASH]["files"] == 0


def test_a_product_photo_goes_back_onto_its_product_at_the_end(client, db, admin, auth):
    first, second = product_with_photos(client, admin)
    assert client.delete(f"/api/shop/products/TR-1/images/{first['id']}", headers=admin).status_code == 200
    item = client.get(f"/api/trash/{first['id']}", headers=admin).get_json()
    assert item["from"] == "products" and item["references"] == {"sku": "TR-1"}
    # Editors see only their library's trash.
    assert client.get(f"/api/trash/{first['id']}", headers=auth.token("editor")).status_code == 404
    assert client.post(f"/api/trash/{first['id']}/restore", headers=auth.token("editor")).status_code == 404
    assert trash_ids(client, auth.token("editor")) == [] and trash_ids(client, admin) == [first["id"]]
    restored = client.post(f"/api/trash/{first['id']}/restore", headers=admin)
    assert restored.status_code == 200 and restored.get_json()["product"] == "TR-1"
    images = client.get("/api/shop/products/TR-1").get_json()["images"]
    assert [i["id"] for i in images] == [second["id"], first["id"]]
    assert client.get(images[1]["url"]).status_code == 200
    status = client.get("/api/shop/debug/products-status", headers=admin).get_json()
    assert status["products"]["with_images"] == 1


def test_a_photo_of_a_deleted_product_waits_until_the_product_exists_again(client, db, admin):
    photo, _ = product_with_photos(client, admin)
    assert client.delete("/api/shop/products/TR-1", headers=admin).status_code == 204
    assert set(trash_ids(client, admin, **{"from": "products"})) == {photo["id"], _["id"]}
    refused = client.post(f"/api/trash/{photo['id']}/restore", headers=admin)
    assert refused.status_code == 409 and error_body(refused)["code"] == "product_gone"
    # Nothing moved.
    assert files(db, TRASH, photo["id"]) == 10 and files(db, Buckets.PRODUCTS, photo["id"]) == 0
    assert client.post("/api/shop/products", json={"sku": "TR-1", "name": "again", "price": 1},
                       headers=admin).status_code == 201
    assert client.post(f"/api/trash/{photo['id']}/restore", headers=admin).status_code == 200
    assert [i["id"] for i in client.get("/api/shop/products/TR-1").get_json()["images"]] == [photo["id"]]


def test_a_full_product_refuses_the_restore_and_the_photo_stays_in_the_trash(app, client, db, admin):
    app.config["AVENUE_MAX_PRODUCT_IMAGES"] = 2
    first, _ = product_with_photos(client, admin)
    assert client.delete(f"/api/shop/products/TR-1/images/{first['id']}", headers=admin).status_code == 200
    assert client.post("/api/shop/products/TR-1/images", headers=admin,
                       data={"images": [form("good/cmyk.jpg")["file"]]}).status_code == 201
    refused = client.post(f"/api/trash/{first['id']}/restore", headers=admin)
    assert refused.status_code == 422, refused.get_json()
    assert trash_ids(client, admin) == [first["id"]] and files(db, Buckets.PRODUCTS, first["id"]) == 0


def test_an_upload_comes_back_to_its_owner(client, db, admin, auth):
    owner = auth.token("ops")
    upload = client.post("/api/uploads", data=form(PHOTO), headers=owner).get_json()
    assert client.delete(f"/api/uploads/{upload['id']}", headers=owner).status_code == 204
    assert client.get(f"/api/uploads/{upload['id']}", headers=owner).status_code == 404
    assert trash_ids(client, admin, **{"from": "uploads"}) == [upload["id"]]
    assert client.post(f"/api/trash/{upload['id']}/restore", headers=admin).status_code == 200
    assert client.get(f"/api/uploads/{upload['id']}", headers=owner).get_json()["owner"] == upload["owner"]


def test_uploading_bytes_that_sit_in_the_trash_brings_that_image_back(client, db, editor):
    media = client.post("/api/builder/media", data={**form(PHOTO), "alt": "a lamp", "tags": "red"},
                        headers=editor).get_json()
    assert client.delete(f"/api/builder/media/{media['id']}", headers=editor).status_code == 204
    again = client.post("/api/builder/media", data=form(PHOTO), headers=editor)
    assert again.status_code == 200  # not stored again: the trashed one is back
    body = again.get_json()
    assert body["id"] == media["id"] and body["alt"] == "a lamp" and body["tags"] == ["red"]
    assert trash_ids(client, editor) == [] and files(db, Buckets.BUILDER, media["id"]) == 10


def test_restoring_when_the_same_bytes_were_stored_again_reuses_that_image(app, client, db, editor):
    media = library_upload(client, editor)
    assert client.delete(f"/api/builder/media/{media['id']}", headers=editor).status_code == 204
    with app.app_context():
        trashed = images(db, TRASH).find_one({"_id": ObjectId(media["id"])})
        # Someone stored the same bytes again without going through the trash lookup.
        hidden = {"$set": {"metadata.trash.key": "elsewhere"}}
        images(db, TRASH).update_one({"_id": trashed["_id"]}, hidden)
        again = library_upload(client, editor)
        images(db, TRASH).update_one({"_id": trashed["_id"]},
                                     {"$set": {"metadata.trash.key": trashed["metadata"]["trash"]["key"]}})
    assert again["id"] != media["id"]
    body = client.post(f"/api/trash/{media['id']}/restore", headers=editor).get_json()
    assert body["reused"] is True and body["image"]["id"] == again["id"]
    # One copy kept.
    assert files(db, TRASH, media["id"]) == 0 and files(db, Buckets.BUILDER, media["id"]) == 0


def test_gc_purges_what_is_past_its_window_and_nothing_younger(app, db, client, editor, media_core):
    old, young = library_upload(client, editor, PHOTO), library_upload(client, editor, OTHER)
    for media in (old, young):
        assert client.delete(f"/api/builder/media/{media['id']}", headers=editor).status_code == 204
    images(db, TRASH).update_one({"_id": ObjectId(old["id"])},
                                 {"$set": {"metadata.trash.purge_after": now() - dt.timedelta(seconds=1)}})
    with app.app_context():
        listed = AppMedia.on(db, media_core).maintenance.collect_garbage(dry_run=True)
        assert [(r["kind"], r["id"]) for r in listed.removed] == [("trash_expired", old["id"])]
        assert files(db, TRASH, old["id"]) == 10  # a dry run removes nothing
        AppMedia.on(db, media_core).maintenance.collect_garbage()
    assert files(db, TRASH, old["id"]) == 0 and files(db, TRASH, young["id"]) == 10
    assert trash_ids(client, editor) == [young["id"]]
    assert Figures(db).counters()[TRASH]["originals"] == 1


def test_gc_leaves_an_item_that_is_being_restored(app, db, client, editor, media_core):
    media = library_upload(client, editor)
    client.delete(f"/api/builder/media/{media['id']}", headers=editor)
    images(db, TRASH).update_one({"_id": ObjectId(media["id"])}, {"$set": {
        "metadata.trash.purge_after": now() - dt.timedelta(days=1), "metadata.trash.restoring_at": now()}})
    with app.app_context():
        assert AppMedia.on(db, media_core).maintenance.collect_garbage().removed == []
    refused = client.post(f"/api/trash/{media['id']}/restore", headers=editor)
    assert refused.status_code == 409 and error_body(refused)["code"] == "restore_in_progress"


def test_purging_now_removes_it_for_good(client, db, editor):
    media = library_upload(client, editor)
    client.delete(f"/api/builder/media/{media['id']}", headers=editor)
    assert client.delete(f"/api/trash/{media['id']}", headers=editor).status_code == 204
    assert files(db, TRASH, media["id"]) == 0 and trash_ids(client, editor) == []
    gone = client.post(f"/api/trash/{media['id']}/restore", headers=editor)
    assert gone.status_code == 404 and error_body(gone)["code"] == "trash_item_not_found"


def test_with_the_trash_off_deletes_are_final(app_factory, auth):
    app = app_factory(AVENUE_TRASH_DAYS=0)
    from tests.helpers import Auth

    client, editor = app.test_client(), Auth(app).token("editor")
    media = library_upload(client, editor)
    assert client.delete(f"/api/builder/media/{media['id']}", headers=editor).status_code == 204
    assert trash_ids(client, editor) == []
    with app.app_context():
        from avenue.db import get_db

        assert files(get_db(), TRASH, media["id"]) == 0 and files(get_db(), Buckets.BUILDER, media["id"]) == 0


def test_bad_requests_get_clear_errors(client, admin):
    assert error_body(client.get("/api/trash?from=nowhere", headers=admin)) == {
        "code": "invalid_from", "message": "from must be one of builder, products, temp, uploads."}
    assert client.get("/api/trash?from=uploads", headers=admin).status_code == 200
    assert client.get("/api/trash/not-an-id", headers=admin).status_code == 404
    missing = client.post(f"/api/trash/{'0' * 24}/restore", headers=admin)
    assert missing.status_code == 404 and error_body(missing)["code"] == "trash_item_not_found"
    assert client.get("/api/trash?page=0", headers=admin).status_code == 400


def test_a_list_of_many_pages_goes_on_by_cursor(client, editor):
    made = [library_upload(client, editor, name)["id"] for name in (PHOTO, OTHER, "good/cmyk.jpg")]
    for media_id in made:
        client.delete(f"/api/builder/media/{media_id}", headers=editor)
    first = client.get("/api/trash?per_page=2", headers=editor).get_json()
    rest = client.get(f"/api/trash?per_page=2&after={first['next']}", headers=editor).get_json()
    assert [i["id"] for i in first["items"] + rest["items"]] == made[::-1] and rest["next"] is None


@pytest.mark.damages_files
def test_fsck_checks_the_trashed_files_too(app, client, db, editor):
    media = library_upload(client, editor)
    client.delete(f"/api/builder/media/{media['id']}", headers=editor)
    with app.app_context():
        assert AppMedia.on(db).maintenance.fsck().findings == []
        db[f"{TRASH}.chunks"].delete_many({"files_id": ObjectId(media["id"])})
        findings = AppMedia.on(db).maintenance.fsck().findings
    assert [(f.bucket, str(f.doc["_id"])) for f in findings] == [(TRASH, media["id"])]


def test_uploads_trash_is_in_a_backup_and_comes_back_with_a_restore(app, client, db, admin, tmp_path,
        media_core):
    upload = client.post("/api/uploads", data=form(PHOTO), headers=admin).get_json()
    client.delete(f"/api/uploads/{upload['id']}", headers=admin)
    from avenue.ops import backup as backup_module

    archive = tmp_path / "backup.tar"
    with archive.open("wb") as out:
        report = backup_module.backup(db, out, media=media_core)
    assert report.files[TRASH] == 9 and report.files[Buckets.UPLOADS] == 0
    other = db.client[f"{db.name}_restored"]
    try:
        with archive.open("rb") as source:
            assert backup_module.restore(other, source, media=media_core).ok
        assert files(other, TRASH, upload["id"]) == 10 and files(other, Buckets.UPLOADS, upload["id"]) == 0
    finally:
        db.client.drop_database(other.name)


def test_a_delete_racing_another_delete_of_the_same_upload_answers_404(client, db, admin):
    # bench/soak.py found it: two deletes of one upload both copied it into the trash and
    # collided (500). The delete lease lets one through; the other comes second.
    upload = client.post("/api/uploads", data=form(PHOTO), headers=admin).get_json()
    from avenue.media import Library

    taken = Library(db, Buckets.UPLOADS, Media()).take_delete_lease(ObjectId(upload["id"]))
    assert taken is not None  # by another delete
    raced = client.delete(f"/api/uploads/{upload['id']}", headers=admin)
    assert raced.status_code == 404 and error_body(raced)["code"] == "upload_not_found"
    assert files(db, TRASH, upload["id"]) == 0 and files(db, Buckets.UPLOADS, upload["id"]) == 10
