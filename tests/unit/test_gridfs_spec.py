"""The GridFS specification's check (tests/support/gridfs_spec.py) finds each kind of damage
a stock driver refuses, and nothing in a well-formed file."""

from __future__ import annotations

import gridfs
import mongomock
import pytest

from tests.support.gridfs_files import CHUNK_SIZE, put_file
from tests.support.gridfs_read import stock_gridfs
from tests.support.gridfs_spec import Invalid, invalid_files

DATA = bytes(range(256)) * (CHUNK_SIZE // 256 * 2 + 3)  # two full chunks and 768 bytes


@pytest.fixture
def store():
    return mongomock.MongoClient()["spec"]


def stock_read(db, bucket, file_id) -> bytes:
    with stock_gridfs(db):
        data: bytes = gridfs.GridFSBucket(db, bucket_name=bucket).open_download_stream(file_id).read()
    return data


def test_well_formed_files_of_any_length_pass(store):
    for size in (0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, len(DATA)):
        doc = put_file(store, "media", DATA[:size], filename=f"{size}.bin", metadata={})
        assert stock_read(store, "media", doc["_id"]) == DATA[:size]
    assert invalid_files(store) == []


def chunk(doc, n):
    return {"files_id": doc["_id"], "n": n}


def set_file(db, doc, **fields):
    db["media.files"].update_one({"_id": doc["_id"]}, {"$set": fields})


DAMAGE = {
    "a chunk lost": (lambda db, doc: db["media.chunks"].delete_one(chunk(doc, 1)),
                     "missing chunks n=[1] of 3"),
    "every chunk lost": (lambda db, doc: db["media.chunks"].delete_many({"files_id": doc["_id"]}),
                         "missing chunks n=[0, 1, 2] of 3"),
    "a short chunk": (lambda db, doc: db["media.chunks"].update_one(chunk(doc, 0),
                                                                    {"$set": {"data": b"short"}}),
                      f"chunk n=0 holds 5 bytes, {CHUNK_SIZE} expected"),
    "an extra chunk": (lambda db, doc: db["media.chunks"].insert_one({**chunk(doc, 3), "data": b"x"}),
                       "extra or repeated chunk n=3 (expected 3)"),
    "a wrong length": (lambda db, doc: set_file(db, doc, length=len(DATA) - 1),
                       "chunk n=2 holds 768 bytes, 767 expected"),
    "no chunk size": (lambda db, doc: set_file(db, doc, chunkSize=0), "chunkSize is 0"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_each_damage_a_stock_driver_refuses_is_found(store, damage):
    harm, problem = DAMAGE[damage]
    put_file(store, "media", DATA[:10], filename="other.bin", metadata={})
    doc = put_file(store, "media", DATA, filename="damaged.bin", metadata={})
    harm(store, doc)
    assert invalid_files(store) == [Invalid("media", doc["_id"], problem)]
    # pymongo's reader refuses each (a chunk size of 0 it divides by).
    with pytest.raises((gridfs.errors.CorruptGridFile, ZeroDivisionError)):
        stock_read(store, "media", doc["_id"])


def test_a_record_with_a_length_and_no_chunks_is_not_a_file(store):
    """What an image changed in place leaves today: its own document keeps its bytes' length."""
    doc = put_file(store, "builder_media", b"", filename="head.jpg", metadata={"role": "original"})
    store["builder_media.files"].update_one({"_id": doc["_id"]}, {"$set": {"length": 349_941}})
    assert invalid_files(store) == [Invalid("builder_media", doc["_id"], "missing chunks n=[0, 1] of 2")]
    with pytest.raises(gridfs.errors.CorruptGridFile):
        stock_read(store, "builder_media", doc["_id"])
