"""GridFS files written and read by the GridFS spec, without the driver's per-upload probe.

pymongo's ``GridIn`` runs an unfiltered ``find_one`` on the files and chunks collections
before every upload to decide whether the bucket needs indexes. On servers where that is a
full scan (the embedded database) uploads slow down as the store grows. This module writes
the same documents (``<bucket>.chunks`` with ``files_id``/``n``/``data`` and a
``<bucket>.files`` document inserted *last*) and relies on :func:`avenue.media.store.indexes.ensure_indexes`,
run once per process, for the index guarantees. Any stock GridFS reader can read what it
writes.

Crash safety: chunks first, the files document last. A crash mid-upload leaves chunks with
no files document, which ``gc`` collects; readers never see a half-written file. Deletion
removes the files document first (readers see 404 at once), then the chunks.

An image's record (``<bucket>.images``, avenue/media/records.py) is no GridFS file: it is
inserted after its files (:func:`insert_record`) and deleted before them (:func:`delete_image`).

Effects: the GridFS steps here (``put_files``, ``remove_files``, ``copy_chunks_and_doc``)
touch nothing but the bucket and return what they changed as a
:class:`~avenue.media.effects.Changes` record. The public writers (``write_files``,
``delete_file``, ``delete_image``, ``delete_counted``, ``copy_file``, ``insert_record``) hand that record to
:func:`avenue.media.effects.apply` once the write succeeded, never before (a crash in between
is drift the status sweep's reconciliation corrects): counters, facets, every worker's cache.
A rendition's store sends its counters' update in the write's own command, after the files
document (``put_files``'s ``counted``), where the dialect allows.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from typing import Any

from bson import Binary, ObjectId
from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from avenue import writes
from avenue.clock import now
from avenue.db import DUPLICATE_KEY, duplicate_key_write
from avenue.dialect import dialect_of
from avenue.media import effects
from avenue.media.effects import Changes, FileSet, Tombstone, counters
from avenue.media.records import Document, images

log = logging.getLogger(__name__)
CHUNK_SIZE = 255 * 1024
# How long a deletion's tombstone keeps being re-read: longer than a delete takes, retries
# through a failover included (the client's server selection timeout is 15 s).
DELETE_WINDOW = dt.timedelta(seconds=30)
READ_BATCH = 4  # chunks per round trip when streaming: ~1 MB in memory, whatever the file
# Chunks per insert command: the dialect's (Dialect.write_batch, avenue/dialect.py, says why:
# 4 on the embedded database, about 1 MB); where it sets none, an upload's chunks go in one
# command (pymongo splits it under the 48 MB message limit), and a copy's COPY_BATCH at a time
# (16 chunks, about 4 MB a command) as it reads them.
COPY_BATCH = 16


def insert_chunk_docs(db: Database[Document], bucket: str, chunk_docs: list[dict[str, Any]]) -> list[Any]:
    """Insert ``chunk_docs`` in order, in batches of the dialect's ``write_batch`` where it sets
    one (the embedded database); their ids."""
    chunks = db[f"{bucket}.chunks"]
    if not chunk_docs:
        return []
    per_insert = dialect_of(db).write_batch
    if per_insert is None:
        return list(chunks.insert_many(chunk_docs, ordered=True).inserted_ids)
    ids: list[Any] = []
    for start in range(0, len(chunk_docs), per_insert):
        batch = chunk_docs[start:start + per_insert]
        ids.extend(chunks.insert_many(batch, ordered=True).inserted_ids)
    return ids


@dataclass
class NewFile:
    """One file for :func:`write_files`."""

    data: bytes
    filename: str
    metadata: dict[str, Any]
    file_id: ObjectId = field(default_factory=ObjectId)


def write_files(db: Database[Document], bucket: str, files: list[NewFile],
                upload_date: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Store several GridFS files (see :func:`put_files`), then apply what that changed."""
    docs, changes = put_files(db, bucket, files, upload_date)
    effects.apply(db, changes)
    return docs


def put_files(db: Database[Document], bucket: str, files: list[NewFile],
              upload_date: dt.datetime | None = None, *,
              counted: bool = False) -> tuple[list[dict[str, Any]], Changes]:
    """Store several GridFS files in two commands: every chunk, then every files document;
    return their files documents and what was written.

    The files documents go in the given order (put the one readers look for last). Few
    commands per upload matters: on the embedded server each write command costs more as
    the store grows, while the bytes written do not. On any failure (including a duplicate
    key on a files document) everything this call wrote is removed before the exception
    propagates.

    ``counted``: the bucket's counters are updated in the same command too, after the files
    documents (so only once they are written, as :func:`avenue.media.effects.apply` would
    after this returns), where the dialect takes several collections' writes in one
    (``Dialect.cross_collection_writes``): a cold rendition's store is one command instead
    of three. The chunks go in that command when they fit one of the dialect's write batches
    (a rendition: almost always one chunk), else before it as without ``counted``. The
    record returned says so (``FileSet.counted``); a counters' update that fails after the
    files were written is logged, the drift the reconciliation corrects (as ``record``'s).
    """
    upload_date = upload_date or now()
    ids = [f.file_id for f in files]
    docs = [files_doc(f, upload_date) for f in files]
    chunk_docs = [
        {"files_id": f.file_id, "n": n, "data": Binary(f.data[offset : offset + CHUNK_SIZE])}
        for f in files for n, offset in enumerate(range(0, len(f.data), CHUNK_SIZE))
    ]
    written = FileSet(bucket, docs, len(chunk_docs))
    together = counted and dialect_of(db).cross_collection_writes
    try:
        if together:
            _put_counted(db, written, chunk_docs)
        else:
            insert_chunk_docs(db, bucket, chunk_docs)
            db[f"{bucket}.files"].insert_many(docs, ordered=True)
    except BaseException:
        _remove_partial(db, bucket, ids)
        raise
    return docs, Changes(written=[replace(written, counted=together)])


def _put_counted(db: Database[Document], written: FileSet, chunk_docs: list[dict[str, Any]]) -> None:
    """:func:`put_files`'s writes with the counters' update last, in one command (the chunks
    too when they fit one write batch); raises as the files' insert would, not for the
    counters' update (logged)."""
    bucket = written.bucket
    batch = dialect_of(db).write_batch
    if batch is not None and len(chunk_docs) > batch:
        insert_chunk_docs(db, bucket, chunk_docs)
        chunk_docs = []
    update = counters.update_of(counters.figures(written.docs, chunks=written.chunks))
    together = [*(writes.insert(f"{bucket}.chunks", chunk) for chunk in chunk_docs),
                *(writes.insert(f"{bucket}.files", doc) for doc in written.docs)]
    if update is not None:
        together.append(writes.update_one(counters.COUNTERS, {"_id": bucket}, update, upsert=True))
    try:
        writes.write_together(db, together)
    except BulkWriteError as error:
        entries = (error.details or {}).get("writeErrors") or [{}]
        if update is None or int(entries[0].get("index", -1)) != len(together) - 1:
            raise
        log.warning("media counters of %s not updated (%s): the next reconciliation corrects them",
                    bucket, entries[0].get("errmsg"))


def files_doc(new: NewFile, upload_date: dt.datetime) -> dict[str, Any]:
    """The GridFS files document :func:`put_files` writes for ``new`` (known before it is
    written: a rendition is answered from it while its store completes)."""
    return {"_id": new.file_id, "length": len(new.data), "chunkSize": CHUNK_SIZE, "uploadDate": upload_date,
            "filename": new.filename, "metadata": new.metadata}


def _remove_partial(db: Database[Document], bucket: str, ids: list[Any]) -> None:
    """Take back what a failed write left (files documents first, so no reader sees a file
    without its chunks). Multi-document deletes are not retryable: if the database is gone
    too, the chunks stay as garbage ``gc`` collects, and the write's own error is what
    the caller sees."""
    try:
        db[f"{bucket}.files"].delete_many({"_id": {"$in": ids}})
        db[f"{bucket}.chunks"].delete_many({"files_id": {"$in": ids}})
    except PyMongoError as error:
        log.warning("could not remove a failed write's %d file(s) from %s: %s", len(ids), bucket, error)


def write_file(
    db: Database[Document],
    bucket: str,
    data: bytes,
    *,
    filename: str,
    metadata: dict[str, Any],
    file_id: ObjectId | None = None,
    upload_date: dt.datetime | None = None,
) -> dict[str, Any]:
    """Store ``data`` as one GridFS file and return its files document (see write_files)."""
    new = NewFile(data, filename, metadata, file_id or ObjectId())
    return write_files(db, bucket, [new], upload_date)[0]


def read_range(db: Database[Document], bucket: str, file_id: Any, length: int, chunk_size: int,
               start: int = 0, stop: int | None = None,
               batch: int = READ_BATCH) -> Generator[bytes, None, None]:
    """Yield the bytes ``[start, stop)`` of a file, fetching only the chunks that hold them,
    ``batch`` chunks per round trip."""
    stop = length if stop is None else min(stop, length)
    if start >= stop:
        return
    first, last = start // chunk_size, (stop - 1) // chunk_size
    cursor = (
        db[f"{bucket}.chunks"]
        .find({"files_id": file_id, "n": {"$gte": first, "$lte": last}}, {"_id": 0, "n": 1, "data": 1})
        .sort("n", 1)
        .batch_size(batch)
    )
    expected = first
    try:
        for chunk in cursor:
            if chunk["n"] != expected:
                raise OSError(f"GridFS file {file_id} is missing chunk {expected}")
            data = bytes(chunk["data"])
            lo = start - expected * chunk_size if expected == first else 0
            hi = stop - expected * chunk_size if expected == last else len(data)
            yield data[lo:hi]
            expected += 1
    finally:
        cursor.close()
    if expected != last + 1:
        raise OSError(f"GridFS file {file_id} is missing chunk {expected}")


#: The most chunks :func:`read_whole` asks for in one round trip (about 16 MB, a reply's limit).
WHOLE_BATCH = 64


def read_whole(db: Database[Document], bucket: str, file_id: Any, length: int, chunk_size: int) -> bytes:
    """A whole file read to be decoded (a rendition's original): its chunks in one round trip
    up to :data:`WHOLE_BATCH` of them (16 MB), not :data:`READ_BATCH` at a time as a stream
    reads them (a 5 MB photo's 20 chunks took five)."""
    chunks = max(1, -(-length // chunk_size)) if chunk_size else 1
    # One more than there are: the server sees the cursor end in that batch (no getMore to say so).
    return b"".join(read_range(db, bucket, file_id, length, chunk_size, batch=min(chunks + 1, WHOLE_BATCH)))


def read_all(db: Database[Document], bucket: str, doc: dict[str, Any]) -> bytes:
    """The whole file of the files document ``doc`` (:func:`read_whole`)."""
    return read_whole(db, bucket, doc["_id"], doc["length"], doc["chunkSize"])


def delete_file(db: Database[Document], bucket: str, file_id: Any, *,
                with_ids: list[Any] | None = None, holder: Any = None) -> bool:
    """Delete one file (and ``with_ids``, its variants): files documents first, then chunks;
    tell every worker's cache.

    One tombstone for all of them goes first, dated :data:`DELETE_WINDOW` ahead (see
    ``invalidate``): a delete cut off after it still reaches every worker's cache, a worker
    that reloads a document before the delete lands evicts it again on its next poll, and
    every step is idempotent, so a retried delete finishes the job. ``file_id`` goes before
    the others. (An image's record goes first by :func:`delete_image`.)
    """
    others = [other for other in dict.fromkeys(with_ids or []) if other != file_id]
    effects.apply(db, Changes(tombstones=[Tombstone(bucket, [file_id, *others], DELETE_WINDOW)]))
    deleted = delete_counted(db, bucket, [file_id], holder=holder)
    if others:
        delete_counted(db, bucket, others, holder=holder)
    effects.apply(db, Changes(evicted=[(bucket, [file_id, *others])]))
    return deleted == 1


def delete_image(db: Database[Document], bucket: str, image_id: Any, *, with_ids: list[Any]) -> bool:
    """Delete image ``image_id``'s record, then its files (``with_ids``: its bytes, its
    variants): as :func:`delete_file`, the record first so readers see 404 at once."""
    others = [other for other in dict.fromkeys([image_id, *with_ids])]
    effects.apply(db, Changes(tombstones=[Tombstone(bucket, others, DELETE_WINDOW)]))
    records = images(db, bucket)
    labels = {"metadata.role": 1, "metadata.folder": 1, "metadata.tags": 1, "uploadDate": 1}
    found = list(records.find({"_id": image_id}, labels))
    deleted = records.delete_one({"_id": image_id}).deleted_count
    effects.apply(db, Changes(removed=[FileSet(bucket, found, 0, deleted)]))
    delete_counted(db, bucket, others, holder=image_id)
    effects.apply(db, Changes(evicted=[(bucket, others)]))
    return deleted == 1


def write_image(db: Database[Document], bucket: str, files: list[NewFile], metadata: dict[str, Any], *,
                shared: dict[str, Any] | None = None) -> dict[str, Any]:
    """Store a new image: its files (:func:`put_files`; its bytes' file last), then its record
    (the last file's document with ``metadata``: the commit point), both counted in one
    update; the record. A duplicate key on the record (the same bytes stored a moment ago)
    takes the files back, never counted, and raises. ``shared``: the record's ``_id``,
    ``filename`` and ``content`` when its bytes are a file another image holds (held already:
    :func:`hold`): ``files`` are its variants alone, and a duplicate key lets go of that file."""
    docs, changes = put_files(db, bucket, files) if files else ([], Changes(written=[FileSet(bucket, [], 0)]))
    if shared is None:
        record = {**docs[-1], "metadata": metadata}
    else:
        content = shared["content"]
        record = {"_id": shared["_id"], "length": content["length"], "chunkSize": content["chunk_size"],
                  "uploadDate": docs[0]["uploadDate"] if docs else now(), "filename": shared["filename"],
                  "metadata": {**metadata, "content": content}}
    try:
        images(db, bucket).insert_one(record)
    except DuplicateKeyError:
        remove_files(db, bucket, [f.file_id for f in files])
        if shared is not None:
            delete_counted(db, bucket, [shared["content"]["id"]], holder=shared["_id"])
        raise
    written = changes.written[0]
    effects.apply(db, Changes(written=[replace(written, docs=[*written.docs, record])]))
    return record


def insert_record(db: Database[Document], bucket: str, record: dict[str, Any]) -> None:
    """Insert the image record ``record`` into ``bucket``'s records, then count it: the commit
    point of an upload, a copy or a restore (its files are written before it). A duplicate
    key (its id, or its dedupe key: the same bytes stored meanwhile) raises."""
    images(db, bucket).insert_one(record)
    effects.apply(db, Changes(written=[FileSet(bucket, [record], 0)]))


def delete_counted(db: Database[Document], bucket: str, ids: list[Any], *, holder: Any = None) -> int:
    """Delete the files ``ids`` (see :func:`remove_files`, ``holder`` too) and take what was
    removed off the bucket's counters; returns how many files documents this call removed."""
    removed, changes = remove_files(db, bucket, ids, holder=holder)
    effects.apply(db, changes)
    return removed


# --- bytes shared by reference -------------------------------------------------------------
# A file several image records point at (a version restored to bytes another image holds:
# store/replace.py) lists them in ``metadata.holders``, its ``original_id`` one of them; a file
# without the field is its ``original_id``'s alone (every file but those). Each record lets go
# by :func:`remove_files`'s ``holder``; the last one's removes the file. A list, not a count:
# letting go twice (a retried delete) or a hold never switched to (a crash) cannot free a file
# another record still points at; gc drops a holder that does not list the file.
HOLDERS = "metadata.holders"
HELD_AT = "metadata.held_at"  # a hold's time: gc leaves the file alone for its grace after it
_HOLDING = {"length": 1, "metadata.holders": 1, "metadata.original_id": 1}


def holders(doc: dict[str, Any]) -> list[Any]:
    """The image records that point at the file ``doc``: its ``metadata.holders``, else its original."""
    meta = doc.get("metadata") or {}
    listed = meta.get("holders")
    if listed is not None:
        return list(listed)
    return [] if meta.get("original_id") is None else [meta["original_id"]]


def _is_shared(doc: dict[str, Any]) -> bool:
    """Whether the file ``doc`` lists its holders (several records point at it)."""
    return (doc.get("metadata") or {}).get("holders") is not None


def hold(db: Database[Document], bucket: str, file_id: Any, holder: Any) -> bool:
    """Make the image record ``holder`` one more holder of the file ``file_id``, before that
    record points at it; False when the file is gone or its last holder is letting go of it
    (write a file of one's own then). Compare-and-set: never lost to a concurrent let-go."""
    files = db[f"{bucket}.files"]
    doc = files.find_one({"_id": file_id}, _HOLDING)
    if doc is None:
        return False
    meta = doc.get("metadata") or {}
    moment = now()
    if meta.get("holders") is None:
        owner = meta.get("original_id")
        if owner == holder:
            return True
        if files.update_one({"_id": file_id, HOLDERS: {"$exists": False}, "metadata.original_id": owner},
                            {"$set": {HOLDERS: [owner, holder], HELD_AT: moment}}).matched_count:
            return True
    return files.update_one({"_id": file_id, HOLDERS: {"$exists": True, "$ne": []}},
                            {"$addToSet": {HOLDERS: holder}, "$set": {HELD_AT: moment}}).matched_count == 1


def _let_go(files: Collection[Document], doc: dict[str, Any], holder: Any) -> bool:
    """``holder`` lets go of the shared file ``doc``: True when it was the last (the files
    document is then deleted here), else False, its ``original_id`` moved to a holder left
    (gc and fsck find a file's image by it) and the list dropped when one is left (its
    ``held_at`` kept: that one may be a hold whose record is not switched to it yet)."""
    file_id = doc["_id"]
    after: dict[str, Any] | None = doc
    if holder is not None:
        after = files.find_one_and_update({"_id": file_id, HOLDERS: holder}, {"$pull": {HOLDERS: holder}},
                                          _HOLDING, return_document=ReturnDocument.AFTER) \
            or files.find_one({"_id": file_id}, _HOLDING)
    if after is None:
        return False  # removed meanwhile by its last holder
    meta = after.get("metadata") or {}
    left = meta.get("holders")
    if left is None:
        return False  # one holder left, which another let-go made its original
    if not left:
        return files.delete_one({"_id": file_id, HOLDERS: {"$size": 0}}).deleted_count == 1
    if len(left) == 1:
        files.update_one({"_id": file_id, HOLDERS: left},
                         {"$set": {"metadata.original_id": left[0]}, "$unset": {HOLDERS: ""}})
    elif meta.get("original_id") not in left:
        files.update_one({"_id": file_id, "metadata.original_id": meta.get("original_id")},
                         {"$set": {"metadata.original_id": left[0]}})
    return False


def remove_files(db: Database[Document], bucket: str, ids: list[Any], *,
                 holder: Any = None) -> tuple[int, Changes]:
    """Delete the files ``ids`` (files documents, then chunks): how many files documents this
    call removed, and what it removed. A file other image records hold too (``HOLDERS``) is
    only let go of by ``holder`` (the image record whose files these are; None: by no one),
    and removed when no holder is left.

    The documents are read first (their length), so the effects can
    subtract exactly what went; when a concurrent delete removed some of them, the record
    says so (``FileSet.removed``) and the counts become drift the reconciliation corrects.
    The delete of a file no one shares is conditional on that (one command as before): a
    hold that came between is seen, and that file let go of instead.
    """
    files = db[f"{bucket}.files"]
    # Only GridFS files live here (an image's record is in <bucket>.images, removed by
    # delete_image): each counts as a file with its length.
    found = list(files.find({"_id": {"$in": ids}}, _HOLDING))
    shared = [doc for doc in found if _is_shared(doc)]
    plain = [doc["_id"] for doc in found if not _is_shared(doc)]
    alone = {HOLDERS: {"$exists": False}}
    gone: list[Any] = []
    removed = 0
    if plain:
        if len(plain) == 1:
            removed = files.delete_one({"_id": plain[0], **alone}).deleted_count
        else:
            removed = files.delete_many({"_id": {"$in": plain}, **alone}).deleted_count
        if removed == len(plain):
            gone = plain
        else:  # held meanwhile (or removed by another delete): what is left is let go of
            left = list(files.find({"_id": {"$in": plain}}, _HOLDING))
            stayed = {doc["_id"] for doc in left}
            gone = [file_id for file_id in plain if file_id not in stayed]
            shared += [doc for doc in left if _is_shared(doc)]
    freed = [doc["_id"] for doc in shared if _let_go(files, doc, holder)]
    gone += freed
    removed += len(freed)
    # The chunks of what went, and of any id with no files document (a delete cut off
    # between the two, retried), never of a file a holder kept.
    kept = {doc["_id"] for doc in found} - set(gone)
    doomed = [file_id for file_id in dict.fromkeys(ids) if file_id not in kept]
    chunks = 0
    if len(doomed) == 1:
        chunks = db[f"{bucket}.chunks"].delete_many({"files_id": doomed[0]}).deleted_count
    elif doomed:
        chunks = db[f"{bucket}.chunks"].delete_many({"files_id": {"$in": doomed}}).deleted_count
    went = set(gone)
    return removed, Changes(removed=[FileSet(bucket, [d for d in found if d["_id"] in went], chunks,
                                               removed)])


def copy_for(db: Database[Document], source: str, target: str, doc: dict[str, Any], holder: Any) -> None:
    """Copy the file ``doc`` of ``source`` into ``target`` for the image record ``holder`` (a
    move to the trash, back, or to another bucket), same id: as its alone there (a shared
    file's copy names ``holder`` its original, and no one else); when ``target`` has it already
    (a retried move, or the same bytes of another record there), ``holder`` holds that one."""
    files = db[f"{target}.files"]
    for _attempt in range(3):  # a copy beaten by another, then a hold beaten by its let-go: again
        there = files.find_one({"_id": doc["_id"]}, {"_id": 1}) is not None
        if there and hold(db, target, doc["_id"], holder):
            return
        if _is_shared(doc):
            alone = {k: v for k, v in doc["metadata"].items() if k not in ("holders", "held_at")}
            doc = {**doc, "metadata": {**alone, "original_id": holder}}
        try:
            copy_file(db, source, target, doc)
            return
        except DuplicateKeyError:
            if files.find_one({"_id": doc["_id"]}, {"_id": 1}) is None:
                raise  # another unique key (its key): not this file copied meanwhile
    raise OSError(f"{target}: {doc['_id']} could neither be copied nor held")


def copy_file(db: Database[Document], source: str, target: str, doc: dict[str, Any], *,
              source_id: Any = None) -> None:
    """Copy one file (see :func:`copy_chunks_and_doc`); the target's counters after."""
    effects.apply(db, copy_chunks_and_doc(db, source, target, doc, source_id=source_id))


def copy_chunks_and_doc(db: Database[Document], source: str, target: str, doc: dict[str, Any], *,
                        source_id: Any = None) -> Changes:
    """Copy one file from ``source`` into ``target``, same id: chunks, then the files document
    ``doc`` (as given: the caller may change its metadata); returns what was written.
    ``source_id``: copy the chunks of that file instead, as ``doc``'s (new chunk ids), e.g.
    an earlier version of an image into the trash under an id of its own.

    If it fails, only the chunks this call inserted are removed (by their ``_id``): chunks of
    the same file id that someone else is copying at the same moment are not touched, and a
    duplicate key (that copy got there first) is raised as ``DuplicateKeyError``.
    """
    chunks = db[f"{target}.chunks"]
    mine: list[Any] = []

    def insert(batch: list[dict[str, Any]]) -> None:
        try:
            mine.extend(chunks.insert_many(batch).inserted_ids)
        except BulkWriteError as error:
            mine.extend(chunk["_id"] for chunk in batch[:error.details.get("nInserted", 0)])
            if duplicate_key_write(error) is not None:
                raise DuplicateKeyError(f"{target} already holds chunks of {doc['_id']}",
                                        DUPLICATE_KEY) from error
            raise

    per_insert = dialect_of(db).write_batch or COPY_BATCH
    try:
        batch: list[dict[str, Any]] = []
        from_id = doc["_id"] if source_id is None else source_id
        for chunk in db[f"{source}.chunks"].find({"files_id": from_id}).sort("n", 1).batch_size(8):
            if source_id is not None:
                chunk = {**chunk, "_id": ObjectId(), "files_id": doc["_id"]}
            batch.append(chunk)
            if len(batch) == per_insert:
                insert(batch)
                batch = []
        if batch:
            insert(batch)
        db[f"{target}.files"].insert_one(doc)
    except BaseException:
        if mine:
            chunks.delete_many({"_id": {"$in": mine}})
        raise
    return Changes(written=[FileSet(target, [doc], len(mine))])


def is_duplicate_key(error: Exception) -> bool:
    """Whether a write failed on a unique index (a ``DuplicateKeyError``, or a bulk write with
    an 11000 among its errors): a racing writer stored the same thing first."""
    return duplicate_key_write(error) is not None
