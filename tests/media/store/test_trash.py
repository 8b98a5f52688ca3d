"""store/trash.py: a delete or a restore cut off between its copy and its removal finishes later;
a version kept while a delete races a restore."""

from __future__ import annotations

from bson import ObjectId
from pymongo.errors import AutoReconnect

from avenue.clock import now
from avenue.media import Buckets
from avenue.media.buckets import TRASH
from avenue.media.store import trash as trash_module
from avenue.media.upkeep.fsck import check
from tests.helpers import error_body, library_upload
from tests.support.records import IMAGE, images, record
from tests.support.versions import MEDIA, replace, restore, sha_of, versions


def files(db, bucket: str, image_id: str) -> int:
    """How many files documents of the image (original and variants) the bucket holds."""
    oid = ObjectId(image_id)
    return db[f"{bucket}.files"].count_documents({"$or": [{"_id": oid}, {"metadata.original_id": oid}]})


def test_a_delete_cut_off_after_the_copy_finishes_when_asked_again(app, client, db, editor, monkeypatch):
    media = library_upload(client, editor)
    from avenue.media.store import originals

    real = originals.delete_image

    def cut(*args, **kwargs):
        raise AutoReconnect("the database went away")

    monkeypatch.setattr(originals, "delete_image", cut)
    assert client.delete(f"/api/builder/media/{media['id']}", headers=editor).status_code == 503
    # Copied, not yet deleted: still served, and already in the trash; nothing lost.
    assert client.get(media["url"]).status_code == 200 and files(db, TRASH, media["id"]) == 9
    monkeypatch.setattr(originals, "delete_image", real)
    images(db, Buckets.BUILDER).update_one({"_id": ObjectId(media["id"])},
                                           {"$unset": {"metadata.deleting_at": ""}})  # the lease lapsed
    assert client.delete(f"/api/builder/media/{media['id']}", headers=editor).status_code == 204
    assert files(db, TRASH, media["id"]) == 9 and files(db, Buckets.BUILDER, media["id"]) == 0
    assert client.post(f"/api/trash/{media['id']}/restore", headers=editor).status_code == 200
    assert client.get(media["url"]).status_code == 200


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
    assert files(db, Buckets.BUILDER, media["id"]) == 9 and files(db, TRASH, media["id"]) == 0
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
