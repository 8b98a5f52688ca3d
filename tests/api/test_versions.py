"""Versions with restore (avenue/media/store/versions.py, store/history.py): every change in place
keeps the version it replaces for AVENUE_TRASH_DAYS; the versions are listed with what changed,
drawn small, compared with a heat map, and any of them restored as a new current version through
the replace's lease and write order; every refusal a JSON 4xx. (The heat map's store and a
restore racing a delete inside it: tests/media/store/test_versions.py, test_trash.py.)"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from bson import ObjectId
from PIL import Image as PILImage

from avenue.clock import now
from avenue.media import AppMedia, Buckets
from avenue.media.maintenance import Figures
from tests.helpers import error_body, form, library_upload
from tests.support.gridfs_spec import invalid_files
from tests.support.records import IMAGE, images, record
from tests.support.versions import MEDIA, OTHER, PHOTO, changed, replace, restore, sha_of, versions

TRASH = Figures.TRASH


def test_every_kind_of_change_keeps_the_version_it_replaces_with_what_changed(client, editor):
    media = library_upload(client, editor)
    base = f"{MEDIA}/{media['id']}"
    first = versions(client, editor, media["id"])
    assert [(v["current"], v["changed"]) for v in first] == [(True, ["upload"])]
    changed(client, editor, "PUT", f"{base}/focal-point", {"x": 0.1, "y": 0.2})
    changed(client, editor, "PUT", f"{base}/edits", {"rotate": 90})
    changed(client, editor, "PUT", f"{base}/crops/square", {"x": 0, "y": 0, "width": 0.5, "height": 0.5})
    last = replace(client, editor, media["id"])
    listed = versions(client, editor, media["id"])
    # New bytes drop the edits and find the subject again; crops are kept (replace.py). The
    # edit carried the focal point (the same spot of the turned picture): not a new one.
    assert [v["changed"] for v in listed] == [["bytes", "edits", "focal_point"], ["crops"],
                                             ["edits"], ["focal_point"], ["upload"]]
    assert listed[0]["id"] == last["version"] and listed[0]["current"] and listed[0]["kept_until"] is None
    assert [v["current"] for v in listed[1:]] == [False] * 4
    assert listed[-1]["id"] == first[0]["id"] and listed[-1]["bytes"] == media["bytes"]
    assert len({v["id"] for v in listed}) == 5
    for version in listed[1:]:
        kept = dt.datetime.fromisoformat(version["kept_until"].replace("Z", "+00:00"))
        assert dt.timedelta(days=29) < kept - now() <= dt.timedelta(days=30)
        assert version["preview_url"].endswith(f"/versions/{version['id']}/preview")
        preview = client.get(version["preview_url"], headers=editor)
        assert preview.status_code == 200 and preview.mimetype == "image/webp"
        assert max(PILImage.open(io.BytesIO(preview.data)).size) <= 320
        assert "private" in preview.headers["Cache-Control"]


def test_edits_and_their_undo_list_the_edits_alone_not_the_focal_point_they_carried(client, editor):
    """The focal point's coordinates are the edited picture's: a turn moves them, the point stays
    on the same spot. Compared as stored, the undo ("Back to original") was listed as edits and a
    new focal point, which the console showed as "edits, focal point"."""
    media = library_upload(client, editor)
    base = f"{MEDIA}/{media['id']}"
    changed(client, editor, "PUT", f"{base}/focal-point", {"x": 0.1, "y": 0.2})
    changed(client, editor, "PUT", f"{base}/edits", {"rotate": 90, "flip_horizontal": True})
    changed(client, editor, "DELETE", f"{base}/edits")
    listed = versions(client, editor, media["id"])
    # (The undone version is the focal point's again, so that one is current, not listed twice.)
    assert [v["changed"] for v in listed] == [["edits"], ["edits"], ["upload"]]
    # A point the crop cut off is clamped into it: that one did move, and says so.
    corner = {"x": 0.5, "y": 0.5, "width": 0.5, "height": 0.5}
    changed(client, editor, "PUT", f"{base}/edits", {"crop": corner})
    assert versions(client, editor, media["id"])[0]["changed"] == ["edits", "focal_point"]


def test_restoring_earlier_bytes_makes_them_a_new_current_version_and_keeps_the_replaced_one(client, db,
                                                                                             editor):
    media = library_upload(client, editor)
    page = client.put("/api/builder/pages/home", headers=editor, json={
        "title": "Home", "blocks": [{"type": "image", "media_id": media["id"]}], "published": True})
    assert page.status_code == 200
    original = versions(client, editor, media["id"])[0]["id"]
    second = replace(client, editor, media["id"])
    answer = restore(client, editor, media["id"], original)
    assert answer.status_code == 200, answer.get_json()
    restored = answer.get_json()
    assert restored["id"] == media["id"] and restored["used_in"] == ["home"]
    assert restored["sha256"] == media["sha256"] and restored["version"] == original
    assert sha_of(client, restored["url"]) == media["sha256"]
    # The version it replaced is an earlier one now, and its URLs redirect to the restored one.
    listed = versions(client, editor, media["id"])
    assert [(v["id"], v["current"]) for v in listed[:2]] == [(original, True), (second["version"], False)]
    assert listed[0]["restored_from"] == original and listed[0]["changed"][0] == "bytes"
    moved = client.get(second["url"])
    assert moved.status_code == 308 and restored["version"] in moved.headers["Location"]
    assert client.get("/api/builder/pages/home").get_json()["blocks"][0]["url"] == restored["url"]
    # And it can be restored in turn: the grey picture comes back.
    again = restore(client, editor, media["id"], second["version"]).get_json()
    assert again["sha256"] == second["sha256"] and sha_of(client, again["url"]) == second["sha256"]
    assert AppMedia.on(db).maintenance.fsck().findings == []


def test_restoring_an_edited_version_of_other_bytes_brings_back_the_picture_and_its_original(client, db,
                                                                                           editor):
    media = library_upload(client, editor)
    base = f"{MEDIA}/{media['id']}"
    edited = changed(client, editor, "PUT", f"{base}/edits", {"rotate": 90})
    assert (edited["width"], edited["height"]) == (media["height"], media["width"])
    replace(client, editor, media["id"])
    done = restore(client, editor, media["id"], edited["version"])
    assert done.status_code == 200, done.get_json()
    back = done.get_json()
    assert back["version"] == edited["version"] and back["edits"] == edited["edits"]
    assert (back["width"], back["height"]) == (edited["width"], edited["height"])
    assert sha_of(client, back["url"]) == back["sha256"]
    # Its unedited original is its source again: undoing the edits gives the upload's picture.
    undone = changed(client, editor, "DELETE", f"{base}/edits")
    assert undone["sha256"] == media["sha256"] and (undone["width"], undone["height"]) == (media["width"],
                                                                                          media["height"])
    assert AppMedia.on(db).maintenance.fsck().findings == []


def test_restoring_an_earlier_focal_point_or_crop_rerenders_the_same_bytes(client, db, editor):
    media = library_upload(client, editor)
    base = f"{MEDIA}/{media['id']}"
    focal = changed(client, editor, "PUT", f"{base}/focal-point", {"x": 0.1, "y": 0.9})
    changed(client, editor, "PUT", f"{base}/focal-point", {"x": 0.8, "y": 0.2})
    back = restore(client, editor, media["id"], focal["version"]).get_json()
    assert back["focal_point"] == {"x": 0.1, "y": 0.9} and back["version"] == focal["version"]
    assert back["sha256"] == media["sha256"]
    # The same bytes: nothing copied.
    assert db[f"{TRASH}.files"].count_documents({}) == 0 and images(db, TRASH).count_documents({}) == 0
    assert versions(client, editor, media["id"])[0]["changed"] == ["focal_point"]


def test_restoring_the_current_version_changes_nothing(client, editor):
    media = library_upload(client, editor)
    current = versions(client, editor, media["id"])[0]["id"]
    answer = restore(client, editor, media["id"], current)
    assert answer.status_code == 200 and answer.get_json()["url"] == media["url"]
    assert len(versions(client, editor, media["id"])) == 1


@pytest.mark.parametrize("version_id", ["0123abcd", "not-a-version", "ABCDEF12", "1234567", "%00"])
def test_unknown_or_malformed_versions_are_404(client, editor, version_id):
    media = library_upload(client, editor)
    replace(client, editor, media["id"])
    for answer in (restore(client, editor, media["id"], version_id),
                   client.get(f"{MEDIA}/{media['id']}/versions/{version_id}/preview", headers=editor)):
        assert answer.status_code == 404, answer.data
        assert error_body(answer)["code"] == "version_not_found"
    current = versions(client, editor, media["id"])[0]["id"]
    answer = client.get(f"{MEDIA}/{media['id']}/versions/{current}/compare/{version_id}", headers=editor)
    assert answer.status_code == 404 and error_body(answer)["code"] == "version_not_found"


def test_a_version_of_another_image_is_404_and_unknown_media_too(client, editor):
    one, other = library_upload(client, editor), library_upload(client, editor, OTHER)
    replace(client, editor, other["id"], name="good/alpha.png")
    foreign = versions(client, editor, other["id"])[1]["id"]
    answer = restore(client, editor, one["id"], foreign)
    assert answer.status_code == 404 and error_body(answer)["code"] == "version_not_found"
    missing = client.get(f"{MEDIA}/{ObjectId()}/versions", headers=editor)
    assert missing.status_code == 404 and error_body(missing)["code"] == "media_not_found"
    assert client.get(f"{MEDIA}/not-an-id/versions", headers=editor).status_code == 404


def test_comparing_a_version_with_itself_is_400(client, editor):
    media = library_upload(client, editor)
    current = versions(client, editor, media["id"])[0]["id"]
    answer = client.get(f"{MEDIA}/{media['id']}/versions/{current}/compare/{current}", headers=editor)
    assert answer.status_code == 400 and error_body(answer)["code"] == "same_version"


def test_a_version_past_the_trash_days_is_410_and_no_longer_listed(client, db, editor):
    media = library_upload(client, editor)
    original = versions(client, editor, media["id"])[0]["id"]
    second = replace(client, editor, media["id"])
    lapsed = now() - dt.timedelta(seconds=1)
    images(db, Buckets.BUILDER).update_one({"_id": ObjectId(media["id"])},
                                           {"$set": {"metadata.history.0.keep_until": lapsed}})
    assert [v["id"] for v in versions(client, editor, media["id"])] == [second["version"]]
    answer = restore(client, editor, media["id"], original)
    assert answer.status_code == 410 and error_body(answer)["code"] == "version_gone"
    assert client.get(f"{MEDIA}/{media['id']}", headers=editor).get_json()["version"] == second["version"]


def test_a_version_whose_trash_copy_was_purged_is_410(client, db, editor):
    media = library_upload(client, editor)
    original = versions(client, editor, media["id"])[0]["id"]
    second = replace(client, editor, media["id"])
    for trashed in images(db, TRASH).find(IMAGE):
        AppMedia.on(db).trash.purge(trashed["_id"])
    assert [v["id"] for v in versions(client, editor, media["id"])] == [second["version"]]
    answer = restore(client, editor, media["id"], original)
    assert answer.status_code == 410 and error_body(answer)["code"] == "version_gone"
    preview = client.get(f"{MEDIA}/{media['id']}/versions/{original}/preview", headers=editor)
    assert preview.status_code == 410


def test_with_the_trash_off_no_version_is_kept(client, app, editor):
    app.config["AVENUE_TRASH_DAYS"] = 0
    media = library_upload(client, editor)
    replace(client, editor, media["id"])
    assert len(versions(client, editor, media["id"])) == 1


def test_a_restore_while_a_delete_holds_the_image_is_409_and_changes_nothing(client, db, editor):
    media = library_upload(client, editor)
    original = versions(client, editor, media["id"])[0]["id"]
    second = replace(client, editor, media["id"])
    images(db, Buckets.BUILDER).update_one({"_id": ObjectId(media["id"])},
                                           {"$set": {"metadata.deleting_at": now()}})
    answer = restore(client, editor, media["id"], original)
    assert answer.status_code == 409 and error_body(answer)["code"] == "image_busy"
    head = record(db, Buckets.BUILDER, ObjectId(media["id"]))
    assert head["metadata"]["version"] == second["version"] and "replacing_at" not in head["metadata"]
    assert images(db, TRASH).count_documents(IMAGE) == 1


def test_only_editors_see_compare_and_restore_library_versions(client, auth):
    editor = auth.token("editor")
    media = library_upload(client, editor)
    replace(client, editor, media["id"])
    listed = versions(client, editor, media["id"])
    paths = [("GET", f"{MEDIA}/{media['id']}/versions"),
             ("GET", listed[1]["preview_url"]),
             ("GET", f"{MEDIA}/{media['id']}/versions/{listed[1]['id']}/compare/{listed[0]['id']}"),
             ("GET", f"{MEDIA}/{media['id']}/versions/{listed[1]['id']}/compare/{listed[0]['id']}/heat-map"),
             ("POST", f"{MEDIA}/{media['id']}/versions/{listed[1]['id']}/restore")]
    for method, path in paths:
        anonymous = client.open(path, method=method)
        assert anonymous.status_code == 401 and anonymous.is_json, path
        ops = client.open(path, method=method, headers=auth.token("ops"))
        assert ops.status_code == 403 and ops.is_json, path
    assert versions(client, editor, media["id"])[0]["id"] == listed[0]["id"]  # nothing restored


def test_uploading_a_versions_bytes_again_stores_a_new_image_and_the_version_stays(client, db, editor):
    """The trash copy a replace kept belongs to the image's history: an upload of the same bytes
    is an image of its own, never that copy brought back (trash.py's dedupe skips it)."""
    media = library_upload(client, editor)
    original = versions(client, editor, media["id"])[0]["id"]
    second = replace(client, editor, media["id"])
    again = client.post(MEDIA, data=form(PHOTO), headers=editor)
    assert again.status_code == 201, again.get_json()
    upload = again.get_json()
    trashed = [str(d["_id"]) for d in images(db, TRASH).find(IMAGE)]
    assert upload["id"] != media["id"] and upload["id"] not in trashed and len(trashed) == 1
    assert upload["sha256"] == media["sha256"] and sha_of(client, upload["url"]) == media["sha256"]
    assert [v["id"] for v in versions(client, editor, media["id"])] == [second["version"], original]


def _bytes_files(db, sha256: str) -> list[dict]:
    """The files of the library bucket holding the bytes ``sha256`` (an image's, shared or not)."""
    files = db[f"{Buckets.BUILDER}.files"]
    return list(files.find({"metadata.variant": "original", "metadata.sha256": sha256}))


def test_a_version_whose_bytes_another_image_holds_restores_and_shares_that_file(client, db, editor):
    """Upload X, replace it, upload X's first bytes as Y, restore X's first version: X shows its
    first picture under its own id, Y is unchanged, and one file holds those bytes for both
    (storage.hold). The file stays while either points at it, and goes with the last."""
    x = library_upload(client, editor)
    original = versions(client, editor, x["id"])[0]["id"]
    replace(client, editor, x["id"])
    y = client.post(MEDIA, data=form(PHOTO), headers=editor).get_json()
    assert y["id"] != x["id"] and y["sha256"] == x["sha256"]
    done = restore(client, editor, x["id"], original)
    assert done.status_code == 200, done.get_json()
    back = done.get_json()
    assert back["id"] == x["id"] and back["version"] == original and back["sha256"] == x["sha256"]
    assert sha_of(client, back["url"]) == x["sha256"]
    assert client.get(f"{MEDIA}/{y['id']}", headers=editor).get_json()["url"] == y["url"]
    assert sha_of(client, y["url"]) == x["sha256"]
    (shared,) = _bytes_files(db, x["sha256"])
    assert shared["_id"] == ObjectId(y["id"]) and sorted(map(str, shared["metadata"]["holders"])) == \
        sorted([x["id"], y["id"]])
    assert record(db, Buckets.BUILDER, ObjectId(x["id"]))["metadata"]["content"]["id"] == shared["_id"]
    counted = AppMedia.on(db).maintenance.fsck()
    assert counted.findings == [] and invalid_files(db) == []
    # Uploads of those bytes still find Y (dedupe as documented), not X.
    assert client.post(MEDIA, data=form(PHOTO), headers=editor).get_json()["id"] == y["id"]
    # Y deleted (to the trash): the file stays for X, X's alone now.
    assert client.delete(f"{MEDIA}/{y['id']}", headers=editor).status_code == 204
    (kept,) = _bytes_files(db, x["sha256"])
    assert kept["metadata"]["original_id"] == ObjectId(x["id"]) and "holders" not in kept["metadata"]
    assert sha_of(client, back["url"]) == x["sha256"]
    # Y back from the trash: it holds the file again beside X, no second copy.
    assert client.post(f"/api/trash/{y['id']}/restore", headers=editor).status_code == 200
    assert len(_bytes_files(db, x["sha256"])) == 1 and sha_of(client, y["url"]) == x["sha256"]
    # X replaced: it lets go, Y keeps it.
    replace(client, editor, x["id"])
    (left,) = _bytes_files(db, x["sha256"])
    assert left["metadata"]["original_id"] == ObjectId(y["id"]) and sha_of(client, y["url"]) == x["sha256"]
    assert AppMedia.on(db).maintenance.fsck().findings == [] and invalid_files(db) == []
    assert client.delete(f"{MEDIA}/{y['id']}", headers=editor).status_code == 204
    assert _bytes_files(db, x["sha256"]) == []  # the last holder gone: the file went (to the trash)


def test_a_restore_of_bytes_another_image_holds_counts_the_shared_file_once(client, db, editor):
    """Counters, status and fsck count a shared file once: the bucket's files and bytes are what
    a recount finds (the reconciliation corrects nothing)."""
    x = library_upload(client, editor)
    original = versions(client, editor, x["id"])[0]["id"]
    replace(client, editor, x["id"])
    client.post(MEDIA, data=form(PHOTO), headers=editor)
    assert restore(client, editor, x["id"], original).status_code == 200
    still = {"files": 0, "originals": 0, "bytes": 0, "chunks": 0}
    recounted = Figures(db).recount_media()
    assert recounted[Buckets.BUILDER]["drift"] == still and recounted[TRASH]["drift"] == still
    assert client.delete(f"{MEDIA}/{x['id']}", headers=editor).status_code == 204
    recounted = Figures(db).recount_media()
    assert recounted[Buckets.BUILDER]["drift"] == still and recounted[TRASH]["drift"] == still


def test_a_trash_restore_that_reuses_an_image_leaves_a_versions_copy_to_its_image(client, db, editor):
    """Restoring a version's copy from the trash while its bytes are an image again answers
    that image (``reused``) and, the copy being the history's, leaves it in the trash."""
    media = library_upload(client, editor)
    original = versions(client, editor, media["id"])[0]["id"]
    replace(client, editor, media["id"])
    upload = client.post(MEDIA, data=form(PHOTO), headers=editor).get_json()
    copy = images(db, TRASH).find_one(IMAGE)
    answer = client.post(f"/api/trash/{copy['_id']}/restore", headers=editor)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["reused"] is True and answer.get_json()["image"]["id"] == upload["id"]
    assert AppMedia.on(db).trash.get(copy["_id"]) is not None
    assert [v["id"] for v in versions(client, editor, media["id"])][1:] == [original]


def test_bytes_of_a_copy_no_history_lists_any_more_bring_it_back_as_before(client, db, editor):
    """A copy whose version was dropped from the image's list is nobody's: dedupe revives it."""
    media = library_upload(client, editor)
    replace(client, editor, media["id"])
    images(db, Buckets.BUILDER).update_one({"_id": ObjectId(media["id"])},
                                           {"$set": {"metadata.history": []}})
    copy = images(db, TRASH).find_one(IMAGE)
    again = client.post(MEDIA, data=form(PHOTO), headers=editor)
    assert again.status_code == 200 and again.get_json()["id"] == str(copy["_id"])
    assert AppMedia.on(db).trash.get(copy["_id"]) is None


def test_a_product_photo_added_again_with_a_versions_bytes_is_a_new_photo(client, db, admin):
    """Product photos dedupe across products, through the same trash lookup: a version's copy
    stays the replaced photo's."""
    assert client.post("/api/shop/products", json={"sku": "VR-3", "name": "x", "price": 1},
                       headers=admin).status_code == 201
    first = client.post("/api/shop/products/VR-3/images", headers=admin,
                        data={"images": [form(PHOTO)["file"]]}).get_json()["product"]["images"][0]
    base = f"/api/shop/products/VR-3/images/{first['id']}"
    assert client.put(base, data=form(OTHER), headers=admin).status_code == 200
    added = client.post("/api/shop/products/VR-3/images", headers=admin,
                        data={"images": [form(PHOTO)["file"]]})
    assert added.status_code == 201, added.get_json()
    photos = added.get_json()["product"]["images"]
    assert len(photos) == 2 and photos[1]["id"] != first["id"] and photos[1]["sha256"] == first["sha256"]
    assert record(db, TRASH, ObjectId(photos[1]["id"])) is None
    assert len(client.get(f"{base}/versions", headers=admin).get_json()["items"]) == 2


def test_a_product_photo_is_restored_in_its_place_and_the_product_follows(client, db, admin, editor):
    assert client.post("/api/shop/products", json={"sku": "VR-1", "name": "x", "price": 1},
                       headers=admin).status_code == 201
    added = client.post("/api/shop/products/VR-1/images", headers=admin,
                        data={"images": [form(PHOTO)["file"], form("good/alpha.png")["file"]]})
    first, second = added.get_json()["product"]["images"]
    base = f"/api/shop/products/VR-1/images/{first['id']}"
    listed = client.get(f"{base}/versions", headers=admin).get_json()["items"]
    assert [v["current"] for v in listed] == [True]
    assert client.put(base, data=form(OTHER), headers=admin).status_code == 200
    listed = client.get(f"{base}/versions", headers=admin).get_json()["items"]
    assert len(listed) == 2 and listed[1]["preview_url"].startswith(base)
    assert client.get(listed[1]["preview_url"], headers=admin).mimetype == "image/webp"
    compared = client.get(f"{base}/versions/{listed[1]['id']}/compare/{listed[0]['id']}", headers=admin)
    assert compared.status_code == 200 and compared.get_json()["changed_share"] > 0.05
    done = client.post(f"{base}/versions/{listed[1]['id']}/restore", headers=admin)
    assert done.status_code == 200, done.get_json()
    photo = done.get_json()
    assert photo["id"] == first["id"] and photo["sha256"] == first["sha256"]
    product = client.get("/api/shop/products/VR-1").get_json()["images"]
    assert [i["id"] for i in product] == [first["id"], second["id"]]
    assert product[0]["url"] == photo["url"] and sha_of(client, product[0]["url"]) == first["sha256"]
    # Another product's photo, and a caller without the role, are refused.
    assert client.post("/api/shop/products", json={"sku": "VR-2", "name": "y", "price": 1},
                       headers=admin).status_code == 201
    foreign = client.get(f"/api/shop/products/VR-2/images/{first['id']}/versions", headers=admin)
    assert foreign.status_code == 404 and error_body(foreign)["code"] == "image_not_found"
    assert client.get(f"{base}/versions", headers=editor).status_code == 403
    assert AppMedia.on(db).maintenance.fsck().findings == []


def test_an_uploads_versions_are_its_owners_and_an_admins_only(client, auth):
    owner, stranger, admin = auth.token("ops"), auth.token("ops"), auth.token("admin")
    upload = client.post("/api/uploads", data=form(PHOTO), headers=owner).get_json()
    assert client.put(f"/api/uploads/{upload['id']}", data=form(OTHER), headers=owner).status_code == 200
    base = f"/api/uploads/{upload['id']}"
    listed = client.get(f"{base}/versions", headers=owner).get_json()["items"]
    assert len(listed) == 2
    for path in (f"{base}/versions", listed[1]["preview_url"],
                 f"{base}/versions/{listed[1]['id']}/compare/{listed[0]['id']}/heat-map"):
        answer = client.get(path, headers=stranger)
        assert answer.status_code == 404 and error_body(answer)["code"] == "upload_not_found", path
    refused = client.post(f"{base}/versions/{listed[1]['id']}/restore", headers=stranger)
    assert refused.status_code == 404
    done = client.post(f"{base}/versions/{listed[1]['id']}/restore", headers=admin)
    assert done.status_code == 200 and done.get_json()["sha256"] == upload["sha256"]
    assert "near_duplicates" in done.get_json()


def test_the_status_sweep_and_gc_leave_a_shared_file_and_find_nothing_wrong(app, client, db, editor,
                                                                            media_core):
    """The status sweep's lists (orphans, missing variants, missing files) and gc know a file
    two images share, and the one a deleted image left to the other."""
    from tests.helpers import swept

    x = library_upload(client, editor)
    original = versions(client, editor, x["id"])[0]["id"]
    replace(client, editor, x["id"])
    y = client.post(MEDIA, data=form(PHOTO), headers=editor).get_json()
    assert restore(client, editor, x["id"], original).status_code == 200
    for step in ("shared", "left to x"):
        result = swept(app)
        lists = ("orphans", "missing_variants", "missing_files")
        assert [result[name]["count"] for name in lists] == [0, 0, 0], step
        assert AppMedia.on(db, media_core).maintenance.collect_garbage(grace_seconds=0).removed == [], step
        assert len(_bytes_files(db, x["sha256"])) == 1, step
        if step == "shared":
            assert client.delete(f"{MEDIA}/{y['id']}", headers=editor).status_code == 204
    assert sha_of(client, client.get(f"{MEDIA}/{x['id']}", headers=editor).get_json()["url"]) == x["sha256"]
