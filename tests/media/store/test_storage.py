"""GridFS chunks (avenue/media/store/storage.py): on the embedded SecantusDB they go in inserts
of a few (about 1 MB each), as whole-file inserts deadlocked it (docs/production.md "The
embedded database"), elsewhere an upload's chunks stay one insert command; the media route
reads none for a 304 or a hot small image, and streams a large file a batch at a time; and a
copy that collides with another's chunks removes only its own."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from avenue.db import get_db
from avenue.dialect import EMBEDDED, dialect_of
from avenue.media import Buckets
from avenue.media.buckets import TRASH
from avenue.media.store import storage
from avenue.media.store import storage as storage_module
from tests.helpers import library_upload, listening, make_app
from tests.support.commands import Matching
from tests.support.serving import put


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


@contextmanager
def app_seen_by(listener, uri: str, db_name: str) -> Iterator:
    """An app on ``uri`` whose commands ``listener`` sees, its database dropped after."""
    app = make_app((listening(listener), uri), db_name)
    try:
        yield app
    finally:
        client = app.extensions["avenue.mongo"].client
        client.drop_database(db_name)
        client.close()


def chunk_inserts(event) -> bool:
    return event.command_name == "insert" and str(event.command["insert"]).endswith(".chunks")


def test_a_file_s_chunks_go_a_few_at_a_time_on_the_embedded_database(secantus, db_name):
    inserts = Matching(chunk_inserts)
    with app_seen_by(inserts, secantus.uri, db_name) as app, app.app_context():
        data = os.urandom(10 * storage.CHUNK_SIZE + 123)  # eleven chunks
        db = get_db()
        assert dialect_of(db) is EMBEDDED
        docs, _ = storage.put_files(db, "uploads", [storage.NewFile(data, "big.bin", {})])
        sizes = [len(command["documents"]) for command in inserts.commands]
        assert sizes and max(sizes) <= 4  # the dialect's write_batch
        assert sum(sizes) == 11
        chunks = db["uploads.chunks"].find({"files_id": docs[0]["_id"]}).sort("n", 1)
        assert b"".join(bytes(chunk["data"]) for chunk in chunks) == data


def chunk_reads(event) -> bool:
    name = event.command_name
    return (name == "find" and str(event.command["find"]).endswith(".chunks")) or \
        (name == "getMore" and str(event.command["collection"]).endswith(".chunks"))


def test_a_whole_file_is_read_in_one_round_trip(secantus, db_name):
    """A rendition's original is read whole to be decoded: its 20 chunks (a 5 MB photo) come
    in one find, not four at a time as a stream reads them (a find and five getMores here: the
    last one learns the cursor is done)."""
    reads = Matching(chunk_reads)
    with app_seen_by(reads, secantus.uri, db_name) as app, app.app_context():
        data = os.urandom(19 * storage.CHUNK_SIZE + 77)  # twenty chunks
        db = get_db()
        docs, _ = storage.put_files(db, "uploads", [storage.NewFile(data, "photo.jpg", {})])
        assert storage.read_all(db, "uploads", docs[0]) == data
        assert [command.get("find", "getMore") for command in reads.commands] == ["uploads.chunks"]
        reads.commands.clear()
        streamed = storage.read_range(db, "uploads", docs[0]["_id"], len(data), storage.CHUNK_SIZE)
        assert b"".join(streamed) == data
        assert len(reads.commands) >= 5  # a stream: READ_BATCH chunks per round trip


@pytest.fixture
def image(app):
    return put(app)


def test_a_304_reads_no_chunk(app, app_factory, monkeypatch):
    stored = put(app)
    # A fresh worker: nothing cached, so the validators must come from the files document.
    fresh = app_factory()
    monkeypatch.setattr(storage_module, "read_range",
                        lambda *a, **k: pytest.fail("a 304 must not read chunks"))
    response = fresh.test_client().get(stored["obj"]["url"],
                                       headers={"If-None-Match": f'"{stored["obj"]["sha256"]}"'})
    assert response.status_code == 304


def test_hot_small_images_are_served_from_memory(app, client, image, monkeypatch):
    assert client.get(image["obj"]["url"]).data == image["bytes"]
    monkeypatch.setattr(storage_module, "read_range",
                        lambda *a, **k: pytest.fail("a cached image must not touch GridFS"))
    assert client.get(image["obj"]["url"]).data == image["bytes"]


def test_streaming_a_50_mb_file_holds_about_one_batch_of_chunks(app, client, backend):
    import pymongo

    from avenue.db import get_db

    if backend[0] is not pymongo.MongoClient:
        pytest.skip("mongomock copies every matching document up front; the bound is the server cursor's")

    data = bytes(range(256)) * (50 * 4096)  # 50 MiB
    image_id, digest = ObjectId(), hashlib.sha256(data).hexdigest()
    with app.app_context():
        # Its bytes' file, then its record (originals.py's order and shapes).
        doc = storage_module.write_file(
            get_db(), Buckets.PRODUCTS, data, filename="big.bin", file_id=image_id,
            metadata={"role": "variant", "variant": "original", "key": f"{image_id}/original",
                      "original_id": image_id, "sha256": digest, "content_type": "application/octet-stream"})
        storage_module.insert_record(get_db(), Buckets.PRODUCTS, {**doc, "metadata": {
            "role": "original", "key": "big", "sha256": digest,
            "content_type": "application/octet-stream", "visibility": "public"}})
    del data
    tracemalloc.start()
    try:
        response = client.get(f"/media/products/{doc['_id']}", buffered=False)
        total = 0
        for piece in response.response:
            total += len(piece)
        response.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == doc["length"]
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while streaming 50 MB"
