"""What follows a write, in one place (avenue/media/effects/): the store's GridFS steps return
what they changed, and ``effects.apply`` turns that record into counters, facets, cache
tombstones and evictions, and CDN purges."""

from __future__ import annotations

import datetime as dt

import pytest
from bson import ObjectId

from avenue.media import Buckets
from avenue.media.core import Purges
from avenue.media.effects import Changes, FileSet, Tombstone, apply, facets
from avenue.media.effects.counters import counters as media_counters
from avenue.media.effects.invalidation import DELETIONS, LOCAL_CACHES
from avenue.media.effects.purge import OUTBOX as PURGE_OUTBOX
from avenue.media.store import storage
from avenue.media.store.storage import NewFile
from tests.support import records


def counted(db, bucket: str) -> dict:
    mine = media_counters(db).get(bucket, {})
    return {k: mine.get(k, 0) for k in ("files", "originals", "bytes", "chunks")}


def variant() -> NewFile:
    return NewFile(b"v" * 10, "thumb.webp", {"role": "variant", "key": str(ObjectId())})


def original(folder: str = "/shoes", tags: tuple[str, ...] = ("red",)) -> NewFile:
    return NewFile(b"o" * 300, "a.jpg", {"role": "original", "key": str(ObjectId()), "folder": folder,
                                         "tags": list(tags), "visibility": "public", "format": "jpeg",
                                         "variants": {}})


def bytes_of(new: NewFile) -> NewFile:
    """The file holding image ``new``'s bytes (under its id): a variant named ``original``."""
    return NewFile(new.data, new.filename, {"role": "variant", "variant": "original",
                                            "key": f"{new.file_id}/original", "original_id": new.file_id},
                   new.file_id)


def put_image(db, bucket: str, *news: NewFile) -> tuple[list[dict], Changes]:
    """Store each of ``news`` as an upload does: its bytes, a file of their own (a variant
    named ``original``), then its record in ``<bucket>.images``; what was written."""
    docs, changes = storage.put_files(db, bucket, [bytes_of(new) for new in news])
    found = [{**doc, "metadata": new.metadata} for doc, new in zip(docs, news, strict=True)]
    records.images(db, bucket).insert_many(found)
    return docs + found, changes + Changes(written=[FileSet(bucket, found, 0)])


def test_storage_puts_files_and_returns_what_it_wrote_without_counting_it(db):
    docs, changes = storage.put_files(db, Buckets.BUILDER, [variant(),
                                                     bytes_of(original())])
    assert [d["filename"] for d in docs] == ["thumb.webp", "a.jpg"]
    assert db[f"{Buckets.BUILDER}.files"].count_documents({}) == 2
    assert changes.written == [FileSet(Buckets.BUILDER, docs, 2)]
    assert not (changes.removed or changes.tombstones or changes.purged)
    assert counted(db, Buckets.BUILDER) == {"files": 0, "originals": 0, "bytes": 0,
                                            "chunks": 0}  # not applied yet


def test_storage_removes_files_and_returns_what_it_removed(db):
    docs, _ = storage.put_files(db, Buckets.UPLOADS, [bytes_of(original())])
    removed, changes = storage.remove_files(db, Buckets.UPLOADS, [docs[0]["_id"], ObjectId()])
    assert removed == 1
    assert db[f"{Buckets.UPLOADS}.files"].count_documents({}) == 0
    assert db[f"{Buckets.UPLOADS}.chunks"].count_documents({}) == 0
    [gone] = changes.removed
    assert (gone.bucket, [d["_id"] for d in gone.docs], gone.chunks, gone.removed) == \
        (Buckets.UPLOADS, [docs[0]["_id"]], 1, 1)


def test_applying_a_write_adds_to_the_counters_and_the_facets(db):
    _, changes = storage.put_files(db, Buckets.BUILDER, [variant()])
    apply(db, changes + put_image(db, Buckets.BUILDER, original())[1])
    assert counted(db, Buckets.BUILDER) == {"files": 2, "originals": 1, "bytes": 310, "chunks": 2}
    assert facets.count(db, Buckets.BUILDER, "folder", "/shoes") == 1
    assert facets.count(db, Buckets.BUILDER, "tag", "red") == 1


def test_applying_a_delete_takes_it_off_again(db):
    docs, changes = put_image(db, Buckets.BUILDER, original())
    apply(db, changes)
    records.images(db, Buckets.BUILDER).delete_one({"_id": docs[1]["_id"]})  # the record, then its bytes
    apply(db, Changes(removed=[FileSet(Buckets.BUILDER, docs[1:], 0, 1)]))
    apply(db, storage.remove_files(db, Buckets.BUILDER, [docs[0]["_id"]])[1])
    assert counted(db, Buckets.BUILDER) == {"files": 0, "originals": 0, "bytes": 0, "chunks": 0}
    assert facets.count(db, Buckets.BUILDER, "folder", "/shoes") in (0, None)


def test_a_delete_that_raced_another_leaves_the_facets_to_the_reconciliation(db):
    docs, changes = put_image(db, Buckets.BUILDER, original(), original(folder="/hats"))
    apply(db, changes)
    # Read two, removed one (the other went in a concurrent delete): counts exact, bytes a share.
    files, found = docs[:2], docs[2:]
    apply(db, Changes(removed=[FileSet(Buckets.BUILDER, found, chunks=0, removed=1),
                               FileSet(Buckets.BUILDER, files, chunks=1, removed=1)]))
    assert counted(db, Buckets.BUILDER) == {"files": 1, "originals": 1, "bytes": 300, "chunks": 1}
    assert facets.count(db, Buckets.BUILDER, "folder", "/shoes") == 1  # untouched


def test_applying_tombstones_writes_them_and_evicts_this_process_caches_first(db):
    class Cache:
        def __init__(self) -> None:
            self.evicted: list[tuple[str, list]] = []

        def evict(self, bucket, file_ids):
            self.evicted.append((bucket, list(file_ids)))

    cache = Cache()
    LOCAL_CACHES.add(cache)
    try:
        ids = [ObjectId(), ObjectId()]
        apply(db, Changes(tombstones=[Tombstone(Buckets.UPLOADS, ids, dt.timedelta(seconds=30))],
                          evicted=[(Buckets.UPLOADS, ids[:1])]))
    finally:
        LOCAL_CACHES.discard(cache)
    [stone] = db[DELETIONS].find()
    assert stone["file_ids"] == ids and stone["lasting_s"] == 30
    assert cache.evicted == [(Buckets.UPLOADS, ids),
                             (Buckets.UPLOADS, ids[:1])]  # the tombstone's, then the removal's


@pytest.mark.parametrize("visibility, queued", [("public", 1), ("private", 0)])
def test_applying_a_purge_queues_a_deleted_public_originals_paths(db, visibility, queued):
    doc = {"_id": ObjectId(), "metadata": {"role": "original", "visibility": visibility, "format": "jpeg",
                                           "variants": {"thumb": ["webp"]}}}
    apply(db, Changes(purged=[(Buckets.UPLOADS, doc)]), Purges(enabled=True))
    outbox = list(db[PURGE_OUTBOX].find())
    assert len(outbox) == queued
    if queued:
        base = f"/media/uploads/{doc['_id']}"
        assert outbox[0]["paths"] == [base, f"{base}.jpg", f"{base}/thumb", f"{base}/thumb.webp"]


def test_changes_add_up_in_order():
    a = Changes(written=[FileSet(Buckets.UPLOADS, [], 0)], purged=[(Buckets.UPLOADS, {"_id": 1})])
    b = Changes(written=[FileSet(Buckets.BUILDER, [], 0)], uncounted=[(Buckets.UPLOADS, {"bytes": 1})])
    both = a + b
    assert [w.bucket for w in both.written] == [Buckets.UPLOADS, Buckets.BUILDER]
    assert both.purged == a.purged and both.uncounted == b.uncounted


@pytest.mark.parametrize("chunks", [1, 6])
def test_a_counted_put_counts_once_whether_its_chunks_fit_its_command_or_not(db, chunks):
    """``put_files(counted=True)`` (a rendition's store): its counters go with its files in
    one command where the dialect allows; a file of more chunks than one write batch holds
    (6 against SecantusDB's 4) has its chunks sent first, its files and counters after. Either
    way every chunk is stored and the counters count it once, after ``apply`` too."""
    from avenue.dialect import dialect_of
    from avenue.media.buckets import RENDITIONS

    data = bytes(range(256)) * (storage.CHUNK_SIZE * chunks // 256)
    new = NewFile(data, "r.jpg", {"role": "rendition", "key": str(ObjectId())})
    docs, changes = storage.put_files(db, RENDITIONS, [new], counted=True)
    carried = dialect_of(db).cross_collection_writes
    assert [written.counted for written in changes.written] == [carried]
    assert db[f"{RENDITIONS}.chunks"].count_documents({"files_id": new.file_id}) == chunks
    assert storage.read_all(db, RENDITIONS, docs[0]) == data
    apply(db, changes)
    from avenue.media.effects.counters import COUNTERS

    held = db[COUNTERS].find_one({"_id": RENDITIONS}) or {}
    assert {name: held.get(name, 0) for name in ("files", "bytes", "chunks")} == \
        {"files": 1, "bytes": len(data), "chunks": chunks}
