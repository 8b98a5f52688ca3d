"""GridFS chunks (avenue/media/store/storage.py): on the embedded SecantusDB they go in inserts
of a few (about 1 MB each), as whole-file inserts deadlocked it (docs/production.md "The
embedded database"), elsewhere an upload's chunks stay one insert command; the media route
reads none for a 304 or a hot small image, and streams a large file a batch at a time; a
copy that collides with another's chunks removes only its own; and a file several records
share goes with the last of them, never before (issue 75)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from avenue.clock import now
from avenue.db import get_db
from avenue.dialect import EMBEDDED, dialect_of
from avenue.media import AppMedia, Buckets
from avenue.media.buckets import TRASH
from avenue.media.maintenance import Figures
from avenue.media.store import storage
from avenue.media.store import storage as storage_module
from tests.helpers import library_upload, listening, make_app
from tests.support.commands import Matching
from tests.support.gridfs_spec import invalid_files
from tests.support.records import images, record
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


# --- bytes shared by reference (storage.hold, remove_files's holder) ------------------------
# A file several image records point at goes with the last of them, never before; letting go
# twice or a hold racing a delete cannot free a file another still points at; gc drops a holder
# that never pointed at the file, once its hold is past the grace.
BUCKET = Buckets.BUILDER
STILL = {"files": 0, "originals": 0, "bytes": 0, "chunks": 0}


def _file(db, owner: ObjectId, data: bytes = b"x" * 300_000) -> ObjectId:
    """A bytes file of ``owner``'s (two chunks), as an upload writes it."""
    file_id = ObjectId()
    storage.write_file(db, BUCKET, data, filename="a.jpg", file_id=file_id,
                       metadata={"role": "variant", "variant": "original", "original_id": owner,
                                 "key": f"{owner}/{file_id}"})
    return file_id


def _meta(db, file_id) -> dict | None:
    doc = db[f"{BUCKET}.files"].find_one({"_id": file_id})
    return None if doc is None else doc["metadata"]


def _chunks(db, file_id) -> int:
    return db[f"{BUCKET}.chunks"].count_documents({"files_id": file_id})


def test_a_shared_file_goes_with_its_last_holder_and_not_before(db):
    a, b, c = ObjectId(), ObjectId(), ObjectId()
    file_id = _file(db, a)
    assert storage.hold(db, BUCKET, file_id, b) and storage.hold(db, BUCKET, file_id, c)
    assert _meta(db, file_id)["holders"] == [a, b, c]
    assert storage.remove_files(db, BUCKET, [file_id], holder=a)[0] == 0
    # Its original is a holder still there: gc and fsck find the file's image by it.
    assert _meta(db, file_id)["original_id"] == b and _meta(db, file_id)["holders"] == [b, c]
    assert storage.remove_files(db, BUCKET, [file_id], holder=c)[0] == 0
    alone = _meta(db, file_id)
    assert alone["original_id"] == b and "holders" not in alone
    assert _chunks(db, file_id) == 2
    assert storage.remove_files(db, BUCKET, [file_id], holder=b)[0] == 1
    assert _meta(db, file_id) is None and _chunks(db, file_id) == 0


def test_letting_go_twice_or_by_no_one_frees_nothing_another_holds(db):
    a, b, c = ObjectId(), ObjectId(), ObjectId()
    file_id = _file(db, a)
    storage.hold(db, BUCKET, file_id, b)
    storage.hold(db, BUCKET, file_id, c)
    for _ in range(2):  # a retried delete of ``a``
        assert storage.remove_files(db, BUCKET, [file_id], holder=a)[0] == 0
    assert storage.remove_files(db, BUCKET, [file_id])[0] == 0  # gc's incomplete file: no holder
    assert _meta(db, file_id)["holders"] == [b, c] and _chunks(db, file_id) == 2


def test_a_hold_by_the_file_s_own_image_or_twice_changes_nothing(db):
    a, b = ObjectId(), ObjectId()
    file_id = _file(db, a)
    assert storage.hold(db, BUCKET, file_id, a) and "holders" not in _meta(db, file_id)
    assert storage.hold(db, BUCKET, file_id, b) and storage.hold(db, BUCKET, file_id, b)
    assert _meta(db, file_id)["holders"] == [a, b]


def test_a_hold_of_a_file_gone_or_being_freed_fails(db):
    a, b = ObjectId(), ObjectId()
    assert not storage.hold(db, BUCKET, ObjectId(), b)
    file_id = _file(db, a)
    # Its last holder let go a moment ago and is deleting it (holders emptied, not yet removed).
    db[f"{BUCKET}.files"].update_one({"_id": file_id}, {"$set": {"metadata.holders": []}})
    assert not storage.hold(db, BUCKET, file_id, b)


class _HoldFirst:
    """A database whose files collection lets ``holder`` hold ``file_id`` right before the first
    delete of a files document: a restore's hold landing between a delete's read and its write."""

    def __init__(self, db, file_id, holder) -> None:
        self.db, self.file_id, self.holder, self.done = db, file_id, holder, False

    def __getitem__(self, name):
        collection = self.db[name]
        if not name.endswith(".files"):
            return collection
        outer = self

        class Files:
            def __getattr__(self, attr):
                found = getattr(collection, attr)
                if attr not in ("delete_one", "delete_many") or outer.done:
                    return found

                def deleting(*args, **kwargs):
                    outer.done = True
                    assert storage.hold(outer.db, BUCKET, outer.file_id, outer.holder)
                    return found(*args, **kwargs)
                return deleting

        return Files()


def test_a_hold_between_a_delete_s_read_and_its_write_keeps_the_file(db):
    a, b = ObjectId(), ObjectId()
    file_id = _file(db, a)
    other = _file(db, a, b"y" * 10)  # deleted with it, shared by no one
    removed, changes = storage.remove_files(_HoldFirst(db, file_id, b), BUCKET, [file_id, other], holder=a)
    assert removed == 1 and [d["_id"] for d in changes.removed[0].docs] == [other]  # counted: that one
    # The delete saw the hold: ``a`` let go of the file, ``b`` has it, chunks and all.
    assert _meta(db, file_id)["original_id"] == b and "holders" not in _meta(db, file_id)
    assert _chunks(db, file_id) == 2 and _meta(db, other) is None and _chunks(db, other) == 0


def test_a_shared_file_copied_to_the_trash_is_its_record_s_alone_there(db):
    a, b = ObjectId(), ObjectId()
    file_id = _file(db, a)
    storage.hold(db, BUCKET, file_id, b)
    doc = db[f"{BUCKET}.files"].find_one({"_id": file_id})
    storage.copy_for(db, BUCKET, TRASH, doc, b)
    copy = db[f"{TRASH}.files"].find_one({"_id": file_id})
    assert copy["metadata"]["original_id"] == b and "holders" not in copy["metadata"]
    # The same file copied for ``a`` too (both images trashed): ``a`` holds the copy there.
    storage.copy_for(db, BUCKET, TRASH, doc, a)
    assert db[f"{TRASH}.files"].find_one({"_id": file_id})["metadata"]["holders"] == [b, a]
    assert db[f"{TRASH}.chunks"].count_documents({"files_id": file_id}) == 2


def test_gc_drops_a_holder_that_never_pointed_at_the_file_once_past_the_grace(client, db, editor,
                                                                            media_core):
    """A restore cut off between its hold and its switch: the image it was for never points at
    the file. While the hold is fresh gc leaves it (the switch may be a moment away); past the
    grace gc lets go for it, and the file goes once no one else holds it."""
    y = library_upload(client, editor)
    z = library_upload(client, editor, "good/alpha.png")
    file_id, z_id = ObjectId(y["id"]), ObjectId(z["id"])
    assert storage.hold(db, BUCKET, file_id, z_id)  # then the worker died
    assert client.delete(f"/api/builder/media/{y['id']}", headers=editor).status_code == 204
    assert _meta(db, file_id)["original_id"] == z_id  # kept: z holds it
    maintenance = AppMedia.on(db, media_core).maintenance
    files, long_ago = db[f"{BUCKET}.files"], now() - dt.timedelta(hours=2)
    files.update_one({"_id": file_id}, {"$set": {"uploadDate": long_ago}})  # an old upload's bytes
    first = maintenance.collect_garbage(grace_seconds=3600).removed
    assert file_id not in {ObjectId(r["id"]) for r in first}, first
    assert _meta(db, file_id) is not None  # held a moment ago: in grace
    files.update_one({"_id": file_id}, {"$set": {"metadata.held_at": long_ago}})
    report = maintenance.collect_garbage(grace_seconds=3600)
    assert [(r["kind"], r["id"]) for r in report.removed] == [("orphan_variant", str(file_id))]
    assert _meta(db, file_id) is None and _chunks(db, file_id) == 0
    assert record(db, BUCKET, z_id) is not None and maintenance.fsck().findings == []
    assert invalid_files(db) == []
    assert Figures(db).recount_media()[BUCKET]["drift"] == STILL


def test_a_new_image_whose_record_meets_a_duplicate_key_takes_its_files_back_uncounted(db):
    """storage.write_image: the same bytes stored as another image between validation and the
    record's insert (the unique dedupe key): its files go again and nothing is counted."""
    image_id = ObjectId()
    images(db, BUCKET).insert_one({"_id": ObjectId(), "length": 1, "chunkSize": 1, "uploadDate": now(),
                                   "metadata": {"role": "original", "key": "k"}})
    counted = Figures(db).counters().get(BUCKET, {})
    variant = {"role": "variant", "original_id": image_id}
    files = [storage.NewFile(b"v" * 10, "thumb.webp",
                             {**variant, "variant": "thumb", "key": f"{image_id}/thumb.webp"}),
             storage.NewFile(b"o" * 300_000, "a.jpg",
                             {**variant, "variant": "original", "key": f"{image_id}/original"}, image_id)]
    try:
        storage.write_image(db, BUCKET, files, {"role": "original", "key": "k"})
    except DuplicateKeyError:
        pass
    else:
        raise AssertionError("the duplicate dedupe key was not refused")
    assert db[f"{BUCKET}.files"].count_documents({"metadata.original_id": image_id}) == 0
    assert db[f"{BUCKET}.chunks"].count_documents({"files_id": {"$in": [f.file_id for f in files]}}) == 0
    assert images(db, BUCKET).find_one({"_id": image_id}) is None
    assert Figures(db).counters().get(BUCKET, {}) == counted


def test_a_new_image_sharing_a_file_whose_record_meets_a_duplicate_key_lets_go_of_it(db):
    """storage.write_image with ``shared`` (an upload holding another scope's file of those
    bytes): a duplicate dedupe key takes its variants back and lets go of the file it held, which
    stays its first image's alone, counted once."""
    a, image_id = ObjectId(), ObjectId()
    file_id = _file(db, a)
    images(db, BUCKET).insert_one({"_id": ObjectId(), "length": 1, "chunkSize": 1, "uploadDate": now(),
                                   "metadata": {"role": "original", "key": "k"}})
    assert storage.hold(db, BUCKET, file_id, image_id)
    counted = Figures(db).counters().get(BUCKET, {})
    variant = {"role": "variant", "variant": "thumb", "original_id": image_id, "key": f"{image_id}/thumb"}
    thumb = storage.NewFile(b"v" * 10, "thumb.webp", variant)
    content = {"id": file_id, "length": 300_000, "chunk_size": storage.CHUNK_SIZE}
    with pytest.raises(DuplicateKeyError):
        storage.write_image(db, BUCKET, [thumb], {"role": "original", "key": "k"},
                            shared={"_id": image_id, "filename": "a.jpg", "content": content})
    alone = _meta(db, file_id)
    assert alone["original_id"] == a and "holders" not in alone and _chunks(db, file_id) == 2
    assert db[f"{BUCKET}.files"].count_documents({"metadata.original_id": image_id}) == 0
    assert images(db, BUCKET).find_one({"_id": image_id}) is None
    assert Figures(db).counters().get(BUCKET, {}) == counted


def test_a_copy_that_can_neither_be_made_nor_held_is_an_error_and_writes_nothing(db):
    """storage.copy_for: the target has the file already but its last holder is freeing it (a
    hold fails), and every copy meets that same file (duplicate id), three times running: an
    OSError naming it, the caller's to answer, not a file with a holder missing."""
    a, b = ObjectId(), ObjectId()
    file_id = _file(db, a)
    doc = db[f"{BUCKET}.files"].find_one({"_id": file_id})
    storage.copy_for(db, BUCKET, TRASH, doc, a)
    trash_files = db[f"{TRASH}.files"]
    trash_files.update_one({"_id": file_id}, {"$set": {"metadata.holders": []}})  # being freed, stuck
    before = db[f"{TRASH}.chunks"].count_documents({})
    with pytest.raises(OSError, match=str(file_id)):
        storage.copy_for(db, BUCKET, TRASH, doc, b)
    assert trash_files.count_documents({"_id": file_id}) == 1
    assert db[f"{TRASH}.chunks"].count_documents({}) == before  # each colliding copy took its chunks back
    assert b not in trash_files.find_one({"_id": file_id})["metadata"]["holders"]


def test_a_copy_whose_key_another_file_holds_there_raises_and_leaves_that_file_alone(db):
    """storage.copy_for: a duplicate key that is not this file's id (another file of the target
    under the same ``metadata.key``) is no copy made meanwhile: it is raised, not retried, and
    the other file keeps its chunks."""
    a = ObjectId()
    file_id = _file(db, a)
    doc = db[f"{BUCKET}.files"].find_one({"_id": file_id})
    squatter = ObjectId()
    storage.write_file(db, TRASH, b"z" * 10, filename="z.jpg", file_id=squatter,
                       metadata={"role": "variant", "variant": "original", "original_id": ObjectId(),
                                 "key": doc["metadata"]["key"]})
    with pytest.raises(DuplicateKeyError):
        storage.copy_for(db, BUCKET, TRASH, doc, a)
    assert db[f"{TRASH}.files"].count_documents({"_id": file_id}) == 0
    assert db[f"{TRASH}.chunks"].count_documents({"files_id": file_id}) == 0
    assert db[f"{TRASH}.chunks"].count_documents({"files_id": squatter}) == 1
