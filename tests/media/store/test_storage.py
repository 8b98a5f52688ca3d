"""store/storage.py: a copy that collides with another's chunks removes only its own."""

from __future__ import annotations

import pytest
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from avenue.media import Buckets
from avenue.media.buckets import TRASH
from tests.helpers import library_upload


def test_a_copy_that_collides_removes_only_its_own_chunks(app, client, db, editor):
    from avenue.media.store import storage

    media = library_upload(client, editor)
    doc = db[f"{Buckets.BUILDER}.files"].find_one({"_id": ObjectId(media["id"])})
    theirs = {"_id": ObjectId(), "files_id": doc["_id"], "n": 0, "data": b"someone else's copy"}
    db[f"{TRASH}.chunks"].insert_one(theirs)
    with pytest.raises(DuplicateKeyError):
        storage.copy_file(db, Buckets.BUILDER, TRASH, doc)
    assert db[f"{TRASH}.chunks"].find_one({"_id": theirs["_id"]}) is not None
    assert db[f"{TRASH}.files"].find_one({"_id": doc["_id"]}) is None
