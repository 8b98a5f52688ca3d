"""Reads of a bucket for ops and status, each answered by an index, and the few writes they
make to files documents: the only way code outside the media package reaches ``*.files``
and the image records (``<bucket>.images``, avenue/media/records.py). Each read says which it
reads: the ``*_files`` ones GridFS files (variants, an image's bytes), the ``*_images`` ones
records.

Nothing here reads a whole bucket: the totals are counters kept with every write
(:mod:`avenue.media.effects.counters`), and the status sweep (``avenue/status/sweep.py``) reads in
batches by ``_id``. An ``$in`` of thousands of ids costs time quadratic in its length on the
the embedded database, so callers keep theirs short.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator, Iterable, Iterator, Mapping
from typing import Any

from bson import ObjectId
from pymongo.collection import Collection
from pymongo.database import Database

from avenue.dialect import dialect_of
from avenue.media.buckets import RENDITIONS, STORED, TEMP
from avenue.media.effects import counters
from avenue.media.formats import STORED_FORMATS, VARIANT_TYPES
from avenue.media.ingest.variants import VARIANT_NAMES
from avenue.media.records import IMAGE, SOURCE, Document, images
from avenue.media.references import IN_BATCH
from avenue.media.store import storage
from avenue.paging import after_ranges

CHUNK_INDEX = [("files_id", 1), ("n", 1)]
# Exact paths of every variant id an original can list (a projection cannot use wildcards).
VARIANT_PATHS = [*((name, fmt) for name in VARIANT_NAMES for fmt in VARIANT_TYPES),
                 *((SOURCE, fmt) for fmt in STORED_FORMATS)]


def temp_image_counts(db: Database[Document], moment: dt.datetime) -> dict[str, int]:
    """Temp images in all, still pending, and expired (not collected yet) at ``moment``: two
    counts on the ``metadata.expires_at`` index (only temp originals carry an expiry)."""
    records = images(db, TEMP)
    pending = records.count_documents({"metadata.expires_at": {"$gt": moment}}, hint="expires_at")
    expired = records.count_documents({"metadata.expires_at": {"$lte": moment}}, hint="expires_at")
    return {"total": pending + expired, "pending": pending, "expired": expired}


def has_chunk_index(db: Database[Document], bucket: str) -> bool:
    """Whether the bucket's chunks have the ``{files_id: 1, n: 1}`` index GridFS readers need."""
    for info in db[f"{bucket}.chunks"].index_information().values():
        if [(name, int(direction)) for name, direction in info["key"]] == CHUNK_INDEX:
            return True
    return False


# --- files documents, for the status sweep and ops ------------------------------------------

# The originals newest first: the ``role_newest`` index holds exactly this (role equality,
# then the sort), so a walk needs no sort of its own on mongod.
NEWEST_FIRST = [("uploadDate", -1), ("_id", -1)]


def file(db: Database[Document], bucket: str, file_id: Any,
         projection: Mapping[str, Any] | None = None) -> Document | None:
    """One files document by ``_id`` (a variant, an image's bytes), or None."""
    return db[f"{bucket}.files"].find_one({"_id": file_id}, projection)


def image(db: Database[Document], bucket: str, image_id: Any,
          projection: Mapping[str, Any] | None = None) -> Document | None:
    """One image's record by ``_id``, or None."""
    return images(db, bucket).find_one({"_id": image_id}, projection)


def existing_ids(db: Database[Document], bucket: str, ids: Iterable[Any]) -> set[Any]:
    """Which of ``ids`` name a files document of ``bucket``: ``$in`` lookups on ``_id`` of at
    most :data:`IN_BATCH` ids each."""
    return set(files_by_id(db, bucket, ids, {"_id": 1}))


def existing_images(db: Database[Document], bucket: str, ids: Iterable[Any]) -> set[Any]:
    """Which of ``ids`` name an image of ``bucket`` (its record), by the same lookups."""
    return set(images_by_id(db, bucket, ids, {"_id": 1}))


def originals_newest_first(db: Database[Document], bucket: str, after: list[Any] | None,
                           batch: int) -> Iterator[Document]:
    """The bucket's originals newest first, after ``[uploadDate, _id]`` ``after`` (None: from
    the newest), through one cursor per range read ``batch`` at a time, closed however the
    caller stops (a window of upload dates at a time where one operation may not read a whole
    collection: ``Dialect.whole_collection_reads``)."""
    if not dialect_of(db).whole_collection_reads:
        yield from _originals_in_windows(db, bucket, after)
        return
    ranges: list[dict[str, Any]] = [{}] if after is None else after_ranges(NEWEST_FIRST, after)
    records = images(db, bucket)
    for branch in ranges:
        cursor = records.find({**IMAGE, **branch}).sort(NEWEST_FIRST).batch_size(batch)
        try:
            yield from cursor
        finally:
            cursor.close()


def _originals_in_windows(db: Database[Document], bucket: str, after: list[Any] | None) -> Iterator[Document]:
    """:func:`originals_newest_first` on the embedded database: one read per window of upload
    dates between the fences the bucket's last count sampled (``counters.walk_role``). One
    cursor over every original read them all into its first batch there (3.3 s for the 25,000
    originals of a 300,000-file products bucket, every request of make run waiting behind it:
    bench/results/scale-2026-11-26-status-during-sweep-relay.md)."""
    start = None
    if after is not None:  # the rest of the checkpoint's own date first, by _id
        start = after[0]
        same_date = after_ranges(NEWEST_FIRST, after)[0]  # {uploadDate: d, _id: {$lt: id}}
        yield from images(db, bucket).find({**IMAGE, **same_date}).sort(NEWEST_FIRST)
    for docs in counters.walk_role(db, bucket, "original", None, descending=True, start=start):
        yield from docs


def originals_lacking(db: Database[Document], bucket: str, field: str, after: Any, limit: int,
                      projection: Mapping[str, Any]) -> list[Document]:
    """At most ``limit`` originals without ``metadata.<field>``, by ``_id`` after ``after`` (a
    keyset: a rerun starts over cheaply, done ones no longer match)."""
    return _originals_where(db, bucket, {f"metadata.{field}": {"$exists": False}}, after, limit, projection)


def originals_flagged(db: Database[Document], bucket: str, field: str, after: Any, limit: int,
                      projection: Mapping[str, Any]) -> list[Document]:
    """At most ``limit`` originals whose ``metadata.<field>`` is true, by the same keyset."""
    return _originals_where(db, bucket, {f"metadata.{field}": True}, after, limit, projection)


def _originals_where(db: Database[Document], bucket: str, condition: Mapping[str, Any], after: Any,
                     limit: int, projection: Mapping[str, Any]) -> list[Document]:
    query: dict[str, Any] = {**IMAGE, **condition}
    if after is not None:
        query["_id"] = {"$gt": after}
    return list(images(db, bucket).find(query, projection).sort("_id", 1).limit(limit))


def set_metadata(db: Database[Document], bucket: str, file_id: Any, fields: Mapping[str, Any]) -> None:
    """Set ``metadata.<name>`` of one image's record for each of ``fields`` (what describes
    the bytes and is computed later, like a placeholder; the API's fields go through
    ``Library.set_metadata``)."""
    images(db, bucket).update_one({"_id": file_id},
                                  {"$set": {f"metadata.{name}": value for name, value in fields.items()}})


def gridfs_collections(bucket: str) -> tuple[str, str]:
    """The names of a bucket's files and chunks collections (what a restore writes to)."""
    return f"{bucket}.files", f"{bucket}.chunks"


def has_file(db: Database[Document], bucket: str, file_id: Any) -> bool:
    """Whether ``file_id`` names a files document of ``bucket`` (a lookup on ``_id``)."""
    return db[f"{bucket}.files"].find_one({"_id": file_id}, {"_id": 1}) is not None


def has_image(db: Database[Document], bucket: str, image_id: Any) -> bool:
    """Whether ``image_id`` names an image of ``bucket`` (its record; a lookup on ``_id``)."""
    return images(db, bucket).find_one({"_id": image_id}, {"_id": 1}) is not None


def files_by_id(db: Database[Document], bucket: str, ids: Iterable[Any],
                projection: Mapping[str, Any] | None = None) -> dict[Any, Document]:
    """The files documents among ``ids`` that exist, by id (``$in`` lookups on ``_id`` of at
    most :data:`IN_BATCH` ids each: an fsck group's images list 800 variants)."""
    return _by_id(db[f"{bucket}.files"], ids, projection)


def images_by_id(db: Database[Document], bucket: str, ids: Iterable[Any],
                 projection: Mapping[str, Any] | None = None) -> dict[Any, Document]:
    """The image records among ``ids`` that exist, by id (the same lookups)."""
    return _by_id(images(db, bucket), ids, projection)


def _by_id(collection: Collection[Document], ids: Iterable[Any],
           projection: Mapping[str, Any] | None) -> dict[Any, Document]:
    wanted = list(dict.fromkeys(ids))
    found: dict[Any, Document] = {}
    for start in range(0, len(wanted), IN_BATCH):
        part = wanted[start:start + IN_BATCH]
        found.update((doc["_id"], doc) for doc in collection.find({"_id": {"$in": part}}, projection))
    return found


def count_files(db: Database[Document], bucket: str, *, estimated: bool = False) -> int:
    """How many files documents ``bucket`` holds (``estimated``: from the collection's
    metadata, no count at all)."""
    files = db[f"{bucket}.files"]
    return files.estimated_document_count() if estimated else files.count_documents({})


def count_images(db: Database[Document], bucket: str, *, estimated: bool = False) -> int:
    """How many image records ``bucket`` holds (``estimated``: as :func:`count_files`)."""
    records = images(db, bucket)
    return records.estimated_document_count() if estimated else records.count_documents({})


def walk_files(db: Database[Document], bucket: str, query: Mapping[str, Any] | None = None, *,
               after: Any = None, projection: Mapping[str, Any] | None = None,
               batch: int = 500) -> Generator[Document, None, None]:
    """Files documents matching ``query`` by ``_id`` (after ``after``, when given), through
    one cursor read ``batch`` at a time, closed however the caller stops."""
    yield from _walk(db[f"{bucket}.files"], query, after, projection, batch)


def walk_images(db: Database[Document], bucket: str, query: Mapping[str, Any] | None = None, *,
                after: Any = None, projection: Mapping[str, Any] | None = None,
                batch: int = 500) -> Generator[Document, None, None]:
    """Image records matching ``query`` by ``_id``, as :func:`walk_files` walks files."""
    yield from _walk(images(db, bucket), query, after, projection, batch)


def _walk(collection: Collection[Document], query: Mapping[str, Any] | None, after: Any,
          projection: Mapping[str, Any] | None, batch: int) -> Generator[Document, None, None]:
    selector = dict(query or {})
    if after is not None:
        selector["_id"] = {"$gt": after}
    cursor = collection.find(selector, projection).sort("_id", 1).batch_size(batch)
    try:
        yield from cursor
    finally:
        cursor.close()


def expired_originals(db: Database[Document], bucket: str, moment: dt.datetime) -> list[Document]:
    """The originals whose ``metadata.expires_at`` is before ``moment`` (the expiry index)."""
    return list(images(db, bucket).find({**IMAGE, "metadata.expires_at": {"$lt": moment}}))


def originals_without_expiry(db: Database[Document], bucket: str) -> list[Document]:
    """The originals with no ``metadata.expires_at`` (in a bucket whose originals all expire)."""
    return list(images(db, bucket).find({**IMAGE, "metadata.expires_at": None}))


def set_length(db: Database[Document], bucket: str, file_id: Any, length: int) -> None:
    """Correct a files document's ``length`` to what its intact chunks hold (``fsck --repair``)."""
    db[f"{bucket}.files"].update_one({"_id": file_id}, {"$set": {"length": length}})


def missing_indexes(db: Database[Document]) -> list[dict[str, str]]:
    """The unique indexes GridFS readers and the dedupe need that a bucket lacks, one entry
    per collection: ``{files_id: 1, n: 1}`` on the chunks, ``{metadata.key: 1}`` on the files
    and on the image records (the renditions bucket's: its own unique index instead)."""
    required = (("chunks", CHUNK_INDEX, "{files_id: 1, n: 1} unique"),
                ("files", [("metadata.key", 1)], "{metadata.key: 1} unique"),
                ("images", [("metadata.key", 1)], "{metadata.key: 1} unique"))
    unique_rendition = [("metadata.image_id", 1), ("metadata.version", 1), ("metadata.spec", 1),
                        ("metadata.format", 1), ("metadata.source", 1)]
    checks = [(bucket, part, keys, label) for bucket in STORED for part, keys, label in required]
    # Renditions on request: one file per rendition (store/renditions.py), no dedupe key.
    checks += [(RENDITIONS, "chunks", CHUNK_INDEX, "{files_id: 1, n: 1} unique"),
               (RENDITIONS, "files", unique_rendition, "rendition_unique")]
    problems = []
    for bucket, part, keys, label in checks:
        collection = images(db, bucket) if part == "images" else db[f"{bucket}.{part}"]
        present = any(
            [(name, int(direction)) for name, direction in info["key"]] == keys and info.get("unique")
            for info in collection.index_information().values())
        if not present:
            problems.append({"collection": collection.name, "index": label, "detail": "missing"})
    return problems


# --- chunks -------------------------------------------------------------------------------


def _owned_by(file_ids: list[Any], contiguous: bool) -> dict[str, Any]:
    """The chunks of ``file_ids`` as a condition on ``files_id``: for a ``contiguous`` batch
    of ObjectIds (every file of the bucket between its first and last id, as a walk by
    ``_id`` reads them) one range of the chunk index, else an ``$in``. The range also holds
    chunks of no file of the batch (orphans, files the walk's query left out): callers skip
    them. The embedded database's cost of an ``$in`` grows with the square of its length (200 ids, a gc
    batch: 0.3 s), a range's with the chunks it holds."""
    if contiguous and file_ids and all(isinstance(file_id, ObjectId) for file_id in file_ids):
        # Exclusive bounds a step outside the ids: the embedded database leaves out documents
        # equal to an inclusive bound at an end of a compound index's range (avenue/embedded/fences.py,
        # date_windows), and this index has ``n`` after ``files_id``.
        low, high = (int.from_bytes(file_id.binary, "big") for file_id in (min(file_ids), max(file_ids)))
        if low > 0 and high < 2 ** 96 - 1:
            return {"$gt": ObjectId((low - 1).to_bytes(12, "big")),
                    "$lt": ObjectId((high + 1).to_bytes(12, "big"))}
    return {"$in": file_ids}


def chunks_of(db: Database[Document], bucket: str, file_ids: list[Any], *, contiguous: bool = False,
              fetch: int = 4) -> Generator[Document, None, None]:
    """The chunks of ``file_ids`` (a batch in ``_id`` order) as ``files_id``, ``n``, ``data``,
    sorted like the batch on the ``{files_id, n}`` index, ``fetch`` a round trip (each
    file's chunks follow the previous file's, so a caller consumes them in step), the cursor
    closed however the caller stops. ``contiguous``: see :func:`_owned_by`."""
    wanted = set(file_ids)
    cursor = (db[f"{bucket}.chunks"].find({"files_id": _owned_by(file_ids, contiguous)},
                                          {"_id": 0, "files_id": 1, "n": 1, "data": 1})
              .sort([("files_id", 1), ("n", 1)]).batch_size(max(1, fetch)))
    try:
        for chunk in cursor:
            if chunk["files_id"] in wanted:
                yield chunk
    finally:
        cursor.close()


def chunk_stats(db: Database[Document], bucket: str, file_ids: list[Any], *,
                contiguous: bool = False) -> dict[Any, Document]:
    """Per file of ``file_ids`` (a batch) that has chunks: their ``count`` and the ``first``
    and ``last`` chunk numbers (one aggregation; ``contiguous``: see :func:`_owned_by`)."""
    wanted = set(file_ids)
    return {row["_id"]: row for row in db[f"{bucket}.chunks"].aggregate([
        {"$match": {"files_id": _owned_by(file_ids, contiguous)}},
        {"$group": {"_id": "$files_id", "count": {"$sum": 1}, "first": {"$min": "$n"},
                    "last": {"$max": "$n"}}},
    ]) if row["_id"] in wanted}


def chunk_owners(db: Database[Document], bucket: str) -> Iterator[Any]:
    """Every ``files_id`` the bucket's chunks name, once each, in order. Sorted on the
    ``{files_id, n}`` index and grouped by ``files_id`` alone: mongod answers this from the
    index (a DISTINCT_SCAN) without reading the chunks' data."""
    groups = db[f"{bucket}.chunks"].aggregate([{"$sort": {"files_id": 1}}, {"$group": {"_id": "$files_id"}}],
                                              allowDiskUse=True)
    for group in groups:
        yield group["_id"]


def chunk_totals(db: Database[Document], bucket: str, file_id: Any) -> tuple[int, int]:
    """The bytes and the number of the chunks named ``file_id`` (read a few at a time)."""
    size = count = 0
    for chunk in db[f"{bucket}.chunks"].find({"files_id": file_id}, {"_id": 0, "data": 1}).batch_size(4):
        size += len(chunk["data"])
        count += 1
    return size, count


def delete_orphan_chunks(db: Database[Document], bucket: str, file_id: Any) -> bool:
    """Delete the chunks named ``file_id`` if no files document has that id; checked right
    before the delete, so the chunks of a file completed meanwhile are never deleted."""
    if has_file(db, bucket, file_id):
        return False
    db[f"{bucket}.chunks"].delete_many({"files_id": file_id})
    return True


# --- a restore's writes (avenue/media/upkeep/backup.py), in the upload's order ------------


def insert_chunks(db: Database[Document], bucket: str, chunks: list[Document]) -> None:
    """Write one batch of chunks (in order; in small inserts on the embedded database:
    :func:`avenue.media.store.storage.insert_chunk_docs`)."""
    storage.insert_chunk_docs(db, bucket, chunks)


def delete_chunks(db: Database[Document], bucket: str, chunks_id: Any) -> None:
    """Delete every chunk named ``chunks_id`` (leftovers, or chunks that failed their check)."""
    db[f"{bucket}.chunks"].delete_many({"files_id": chunks_id})


def rename_chunks(db: Database[Document], bucket: str, chunks_id: Any, file_id: Any) -> None:
    """Give the chunks written under a temporary id their file's id."""
    db[f"{bucket}.chunks"].update_many({"files_id": chunks_id}, {"$set": {"files_id": file_id}})


def insert_file(db: Database[Document], bucket: str, doc: Document) -> None:
    """Write a files document (last, after its chunks: a reader never sees a half file);
    ``DuplicateKeyError`` when another file holds its id or unique key."""
    db[f"{bucket}.files"].insert_one(doc)
