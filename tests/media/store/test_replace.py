"""store/replace.py: a replace cut off after writing its new files, or losing at the switch,
leaves the image as it was (store.trash.keep_version patched to make each moment)."""

from __future__ import annotations

from hashlib import sha256

import pytest
from bson import ObjectId

from avenue.clock import now
from avenue.media import AppMedia, Buckets, Library, Media
from avenue.media.buckets import TRASH
from avenue.media.store import trash as trash_module
from avenue.media.upkeep.fsck import check
from tests.helpers import error_body, form, image_bytes, library_upload
from tests.support.records import images, record
from tests.support.replacing import OTHER, body_of, replace_media
from tests.support.versions import MEDIA, PHOTO, replace, restore, sha_of, versions


def test_a_crash_after_writing_the_new_files_changes_nothing_and_a_retry_finishes(client, db, editor,
                                                                                 monkeypatch):
    media = library_upload(client, editor)

    def crash(*args, **kwargs):
        raise RuntimeError("the worker died here")

    monkeypatch.setattr(trash_module, "keep_version", crash)
    with pytest.raises(RuntimeError):
        Library(db, Buckets.BUILDER, Media()).replace(ObjectId(media["id"]),
                                                      Library.Upload("other.jpg", image_bytes(OTHER)))
    monkeypatch.undo()
    head = record(db, Buckets.BUILDER, ObjectId(media["id"]))
    assert "replacing_at" not in head["metadata"] and "version" not in head["metadata"]
    # Its 8 variants and its bytes' file (under its id): the new version's files went.
    assert db[f"{Buckets.BUILDER}.files"].count_documents(
        {"metadata.original_id": ObjectId(media["id"])}) == 9
    assert client.get(media["url"]).status_code == 200
    assert replace_media(client, editor, media["id"]).status_code == 200
    assert check(db).findings == []


@pytest.mark.parametrize("race", ["same_bytes_stored_elsewhere", "lease_taken_over"])
def test_a_replace_that_loses_at_the_switch_answers_409_and_leaves_everything_as_it_was(
        client, db, editor, monkeypatch, race):
    """Between writing the new version and switching to it, either another upload stores the
    same bytes (the unique dedupe key refuses the switch) or the lease lapses and another
    replace takes it: the replace answers 409, its new files and its copy in the trash go."""
    media = library_upload(client, editor)
    real = trash_module.keep_version

    def then_lose(db_, bucket, doc, bytes_doc, *, refs, keep_days):
        trashed = real(db_, bucket, doc, bytes_doc, refs=refs, keep_days=keep_days)
        if race == "same_bytes_stored_elsewhere":
            assert client.post("/api/builder/media", data=form(OTHER), headers=editor).status_code == 201
        else:
            images(db_, bucket).update_one({"_id": doc["_id"]}, {"$set": {"metadata.replacing_at": now()}})
        return trashed

    monkeypatch.setattr(trash_module, "keep_version", then_lose)
    answer = replace_media(client, editor, media["id"])
    assert answer.status_code == 409
    assert error_body(answer)["code"] == ("duplicate_image" if race == "same_bytes_stored_elsewhere"
                                          else "image_busy")
    head = record(db, Buckets.BUILDER, ObjectId(media["id"]))
    assert "version" not in head["metadata"] and head["length"] == media["bytes"]
    # Its 8 variants and its bytes' file (under its id): the new version's files went.
    assert db[f"{Buckets.BUILDER}.files"].count_documents(
        {"metadata.original_id": ObjectId(media["id"])}) == 9
    assert db[f"{TRASH}.files"].count_documents({}) == 0 and images(db, TRASH).count_documents({}) == 0
    assert sha256(body_of(client, media["url"])).hexdigest() == media["sha256"]
    if race == "same_bytes_stored_elsewhere":
        assert "replacing_at" not in head["metadata"]  # released
        assert check(db).findings == []


# --- a restore of bytes another image holds, when the other side moves in between (issue 75) ---


def _bytes_files(db, sha256_hex: str) -> list[dict]:
    """The library bucket's files holding the bytes ``sha256_hex`` (an image's, shared or not)."""
    files = db[f"{Buckets.BUILDER}.files"]
    return list(files.find({"metadata.variant": "original", "metadata.sha256": sha256_hex}))


def _whole(db) -> None:
    """The library bucket after a restore: fsck clean, every file whole, counters a recount."""
    from avenue.media.maintenance import Figures
    from tests.support.gridfs_spec import invalid_files

    still = {"files": 0, "originals": 0, "bytes": 0, "chunks": 0}
    assert AppMedia.on(db).maintenance.fsck().findings == [] and invalid_files(db) == []
    recounted = Figures(db).recount_media()
    assert recounted[Buckets.BUILDER]["drift"] == still and recounted[TRASH]["drift"] == still


def test_a_restore_whose_shared_file_goes_before_its_hold_writes_the_bytes_itself(client, db, editor,
                                                                                monkeypatch):
    """Y deleted for good between the restore's look-up of Y and its hold of Y's file: the hold
    fails (the file is gone) and the restore writes X's first bytes as a file of X's own."""
    from avenue.media.core import NO_PURGES
    from avenue.media.store import originals, storage

    x = library_upload(client, editor)
    original = versions(client, editor, x["id"])[0]["id"]
    replace(client, editor, x["id"])
    y = client.post(MEDIA, data=form(PHOTO), headers=editor).get_json()
    real_hold, holds = storage.hold, []

    def y_gone_first(db_, bucket, file_id, holder):
        if not holds:
            originals.delete_image(db_, bucket, ObjectId(y["id"]), purges=NO_PURGES)
        holds.append(real_hold(db_, bucket, file_id, holder))
        return holds[-1]

    monkeypatch.setattr(storage, "hold", y_gone_first)
    done = restore(client, editor, x["id"], original)
    assert done.status_code == 200, done.get_json()
    assert holds == [False]
    assert sha_of(client, done.get_json()["url"]) == x["sha256"]
    assert client.get(f"{MEDIA}/{y['id']}", headers=editor).status_code == 404
    (own,) = _bytes_files(db, x["sha256"])
    assert own["metadata"]["original_id"] == ObjectId(x["id"]) and "holders" not in own["metadata"]
    assert record(db, Buckets.BUILDER, ObjectId(x["id"]))["metadata"]["content"]["id"] == own["_id"]
    _whole(db)


def test_a_restore_that_meets_an_upload_of_its_bytes_at_the_switch_shares_them(client, db, editor,
                                                                             monkeypatch):
    """Y uploaded with X's first bytes while the restore writes them (after its look-up found no
    one holding them): the switch meets Y's dedupe key, the restore's files go, and it is tried
    once more, sharing Y's file."""
    from avenue.media.store import replace as replacing

    x = library_upload(client, editor)
    original = versions(client, editor, x["id"])[0]["id"]
    replace(client, editor, x["id"])
    real_switch, switches, uploaded = replacing._switch, [], {}

    def upload_first(*args, **kwargs):
        if not switches:
            uploaded.update(client.post(MEDIA, data=form(PHOTO), headers=editor).get_json())
        switches.append(1)
        return real_switch(*args, **kwargs)

    monkeypatch.setattr(replacing, "_switch", upload_first)
    done = restore(client, editor, x["id"], original)
    assert done.status_code == 200, done.get_json()
    assert len(switches) == 2 and uploaded["id"] != x["id"] and uploaded["sha256"] == x["sha256"]
    assert done.get_json()["version"] == original and sha_of(client, done.get_json()["url"]) == x["sha256"]
    (shared,) = _bytes_files(db, x["sha256"])
    assert shared["_id"] == ObjectId(uploaded["id"])
    assert sorted(map(str, shared["metadata"]["holders"])) == sorted([x["id"], uploaded["id"]])
    _whole(db)
