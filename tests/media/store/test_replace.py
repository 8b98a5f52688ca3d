"""store/replace.py: a replace cut off after writing its new files, or losing at the switch,
leaves the image as it was (store.trash.keep_version patched to make each moment)."""

from __future__ import annotations

from hashlib import sha256

import pytest
from bson import ObjectId

from avenue.clock import now
from avenue.media import Buckets, Library, Media
from avenue.media.buckets import TRASH
from avenue.media.store import trash as trash_module
from avenue.media.upkeep.fsck import check
from tests.helpers import error_body, form, image_bytes, library_upload
from tests.support.records import images, record
from tests.support.replacing import OTHER, body_of, replace_media


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
