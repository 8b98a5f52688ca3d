"""store/trash.py: a delete or a restore cut off between its copy and its removal finishes later;
a version kept while a delete races a restore."""

from __future__ import annotations

import hashlib

from bson import ObjectId
from pymongo.errors import AutoReconnect

from avenue.clock import now
from avenue.media import Buckets
from avenue.media.buckets import TRASH
from avenue.media.store import trash as trash_module
from avenue.media.upkeep.fsck import check
from tests.helpers import error_body, library_upload
from tests.support.gridfs_spec import invalid_files
from tests.support.records import IMAGE, images, record
from tests.support.versions import MEDIA, replace, restore, sha_of, versions


def files(db, bucket: str, image_id: str) -> int:
    """How many documents of the image the bucket holds: its record (in ``<bucket>.images``)
    and its files (its bytes' file, under its id, and its variants): 10 for a whole image."""
    oid = ObjectId(image_id)
    return images(db, bucket).count_documents({"_id": oid}) + db[f"{bucket}.files"].count_documents(
        {"$or": [{"_id": oid}, {"metadata.original_id": oid}]})


def test_a_delete_cut_off_after_the_copy_finishes_when_asked_again(app, client, db, editor, monkeypatch):
    media = library_upload(client, editor)
    from avenue.media.store import originals

    real = originals.delete_image

    def cut(*args, **kwargs):
        raise AutoReconnect("the database went away")

    monkeypatch.setattr(originals, "delete_image", cut)
    assert client.delete(f"/api/builder/media/{media['id']}", headers=editor).status_code == 503
    # Copied, not yet deleted: still served, and already in the trash; nothing lost.
    assert client.get(media["url"]).status_code == 200 and files(db, TRASH, media["id"]) == 10
    monkeypatch.setattr(originals, "delete_image", real)
    images(db, Buckets.BUILDER).update_one({"_id": ObjectId(media["id"])},
                                           {"$unset": {"metadata.deleting_at": ""}})  # the lease lapsed
    assert client.delete(f"/api/builder/media/{media['id']}", headers=editor).status_code == 204
    assert files(db, TRASH, media["id"]) == 10 and files(db, Buckets.BUILDER, media["id"]) == 0
    assert client.post(f"/api/trash/{media['id']}/restore", headers=editor).status_code == 200
    assert client.get(media["url"]).status_code == 200
    assert invalid_files(db) == []  # every file in both buckets whole by the GridFS spec


def test_a_restore_cut_off_half_way_frees_its_lease_and_a_retry_completes(app, client, db, editor,
                                                                          monkeypatch):
    media = library_upload(client, editor)
    client.delete(f"/api/builder/media/{media['id']}", headers=editor)
    from avenue.media.store import storage

    real, calls = storage.copy_file, []

    def failing(db_, source, target, doc):
        calls.append(doc["_id"])
        if len(calls) == 4:
            raise AutoReconnect("the database went away")
        return real(db_, source, target, doc)

    monkeypatch.setattr(storage, "copy_file", failing)
    assert client.post(f"/api/trash/{media['id']}/restore", headers=editor).status_code == 503
    assert client.get(media["url"]).status_code == 404  # the original was not back: nothing served half
    monkeypatch.setattr(storage, "copy_file", real)
    assert client.post(f"/api/trash/{media['id']}/restore", headers=editor).status_code == 200
    assert files(db, Buckets.BUILDER, media["id"]) == 10 and files(db, TRASH, media["id"]) == 0
    assert invalid_files(db) == []
    with app.app_context():
        assert check(db).findings == []


def test_a_delete_racing_a_restore_meets_its_lease_and_is_409(client, db, editor, monkeypatch):
    """The race made deterministic: the delete runs while the restore holds the replace lease
    (between writing the new files and the switch); it is told 409, the restore finishes whole."""
    media = library_upload(client, editor)
    original = versions(client, editor, media["id"])[0]["id"]
    replace(client, editor, media["id"])
    real = trash_module.keep_version
    deletes: list[int] = []

    def delete_meanwhile(db_, bucket, doc, bytes_doc, *, refs, keep_days):
        deletes.append(client.delete(f"{MEDIA}/{media['id']}", headers=editor).status_code)
        return real(db_, bucket, doc, bytes_doc, refs=refs, keep_days=keep_days)

    monkeypatch.setattr(trash_module, "keep_version", delete_meanwhile)
    answer = restore(client, editor, media["id"], original)
    assert deletes == [409]
    assert answer.status_code == 200 and answer.get_json()["sha256"] == media["sha256"]
    assert check(db).findings == []


def test_a_restore_that_loses_its_lease_before_the_switch_is_409_and_leaves_no_half_state(client, db, editor,
                                                                                          monkeypatch):
    media = library_upload(client, editor)
    original = versions(client, editor, media["id"])[0]["id"]
    second = replace(client, editor, media["id"])
    real = trash_module.keep_version

    def then_delete_leases(db_, bucket, doc, bytes_doc, *, refs, keep_days):
        trashed = real(db_, bucket, doc, bytes_doc, refs=refs, keep_days=keep_days)
        images(db_, bucket).update_one({"_id": doc["_id"]}, {"$set": {"metadata.replacing_at": now()}})
        return trashed

    monkeypatch.setattr(trash_module, "keep_version", then_delete_leases)
    answer = restore(client, editor, media["id"], original)
    assert answer.status_code == 409 and error_body(answer)["code"] == "image_busy"
    head = record(db, Buckets.BUILDER, ObjectId(media["id"]))
    assert head["metadata"]["version"] == second["version"]
    assert len(head["metadata"]["history"]) == 1
    assert images(db, TRASH).count_documents(IMAGE) == 1  # its copy went
    assert sha_of(client, second["url"]) == second["sha256"]


def test_a_replaced_version_is_kept_as_a_record_pointing_at_a_whole_file(client, db, editor):
    """keep_version: the trash copy of the version a replace switches away from is a record in
    media_trash.images, its bytes a GridFS file of its own in media_trash.files (its id's)."""
    media = library_upload(client, editor)
    replace(client, editor, media["id"])
    [copy] = images(db, TRASH).find(IMAGE)
    assert copy["metadata"]["trash"]["refs"]["replaced_in"] == media["id"]
    assert "content" not in copy["metadata"] and copy["metadata"]["sha256"] == media["sha256"]
    assert db[f"{TRASH}.files"].count_documents(IMAGE) == 0  # no record among the files
    bytes_file = db[f"{TRASH}.files"].find_one({"_id": copy["_id"]})
    assert bytes_file["metadata"]["variant"] == "original"
    assert bytes_file["metadata"]["original_id"] == copy["_id"]
    chunks = list(db[f"{TRASH}.chunks"].find({"files_id": copy["_id"]}).sort("n", 1))
    assert [c["n"] for c in chunks] == list(range(len(chunks)))
    data = b"".join(bytes(c["data"]) for c in chunks)
    assert len(data) == bytes_file["length"] == copy["length"]
    assert hashlib.sha256(data).hexdigest() == media["sha256"]
    assert [bad for bad in invalid_files(db) if bad.bucket == TRASH] == []
