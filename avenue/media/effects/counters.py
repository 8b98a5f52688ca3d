"""Per-bucket totals kept with every write (``media_counters``): files, originals, bytes, chunks.

Files, bytes and chunks are the bucket's GridFS files (an image's bytes, its variants); the
originals its image records (``<bucket>.images``, :func:`figures`). storage-status answers from
one read of these four small documents instead of aggregating every files document, so it
costs the same at ten files as at ten million and shows the last write at once.

Write order, and why drift is bounded and corrected:

- A write's ``$inc`` goes *after* the write succeeded (:func:`record`), in the same code path:
  every GridFS write, copy and delete (:mod:`avenue.media.store.storage`) returns what it
  changed and hands it to :func:`avenue.media.effects.apply` before returning. A failed write
  changes nothing; a write whose process dies
  before its ``$inc`` (or whose ``$inc`` fails) leaves the counters short of the truth. That is
  drift, and only those two interleavings (plus documents written behind the app's back:
  restores, imports, a hand edit) cause it.
- Deletes count what they removed: the files documents read just before, and the chunks
  ``delete_many`` reports. Two deletes of the same files racing each other subtract only what
  each removed (an estimate of the bytes when they split a set of files between them).
- :func:`recount` is the reconciliation: it counts the bucket on the server (one ``$group``
  and one chunk count on the chunk index, no document coming to Python; on the embedded
  database a window of upload dates at a time, :func:`count_bucket` says why) and replaces the counters
  by compare-and-set on their ``version``, which every ``$inc`` bumps. A write that lands
  during the recount makes the set miss (the recount may or may not include it), so a
  recount is applied only when it is exact; the next one (the status sweep runs it every
  time) tries again.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterable, Iterator
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from avenue.clock import now
from avenue.db import long_operations
from avenue.dialect import dialect_of
from avenue.embedded.fences import walk_dates
from avenue.media.buckets import STORED
from avenue.media.records import IMAGE, Document, images, is_image
from avenue.paging import DateHints

log = logging.getLogger(__name__)
COUNTERS = "media_counters"
FIELDS = ("files", "originals", "bytes", "chunks")
CHUNK_INDEX = [("files_id", 1), ("n", 1)]


def figures(docs: Iterable[dict[str, Any]], chunks: int = 0) -> dict[str, Any]:
    """What a set of documents (and ``chunks`` chunks) adds to a bucket's counters, and the
    files' earliest and latest upload dates: an image record (``<bucket>.images``) counts as an
    original only, every files document as a file with its bytes (an image's bytes are a file
    of their own, counted as such)."""
    files = originals = size = 0
    dates = []
    for doc in docs:
        if is_image(doc):
            originals += 1
            continue
        files += 1
        size += int(doc.get("length") or 0)
        if isinstance(doc.get("uploadDate"), dt.datetime):
            dates.append(doc["uploadDate"])
    return {"files": files, "originals": originals, "bytes": size, "chunks": chunks,
            "oldest": min(dates, default=None), "newest": max(dates, default=None)}


def record(db: Database[Document], bucket: str, change: dict[str, Any], sign: int = 1) -> None:
    """Add ``change`` (times ``sign``) to the bucket's counters, after the write it describes
    succeeded; a write (``sign`` 1) also moves the oldest/newest upload dates (``$min``/
    ``$max``; a delete leaves them, and the reconciliation recomputes them). A failure here is
    logged, never raised: the write stands, and the difference is drift that :func:`recount`
    corrects."""
    update = update_of(change, sign)
    if update is None:
        return
    try:
        db[COUNTERS].update_one({"_id": bucket}, update, upsert=True)
    except PyMongoError as error:
        log.warning("media counters of %s not updated (%s): the next reconciliation corrects them",
                    bucket, error)


def update_of(change: dict[str, Any], sign: int = 1) -> dict[str, Any] | None:
    """The update of a bucket's counters document (``_id`` the bucket, upserted) that
    :func:`record` sends for ``change`` (None: nothing to add); a write that sends it in its
    own command, after the files it counts (``storage.put_files``'s ``counted``), sends this."""
    inc = {name: sign * change[name] for name in FIELDS if change.get(name)}
    if not inc:
        return None
    update: dict[str, Any] = {"$inc": {**inc, "version": 1}}
    if sign > 0 and change.get("oldest") is not None:
        update["$min"] = {"oldest": change["oldest"]}
        update["$max"] = {"newest": change["newest"]}
    return update


def counters(db: Database[Document]) -> dict[str, dict[str, Any]]:
    """Every bucket's counters, the trash's included (zeros for a bucket nothing was written
    to yet), one read."""
    found = {doc["_id"]: doc for doc in db[COUNTERS].find({"_id": {"$in": list(STORED)}})}
    result = {}
    for bucket in STORED:
        doc = found.get(bucket) or {}
        result[bucket] = {**{name: int(doc.get(name) or 0) for name in FIELDS},
                          "oldest": doc.get("oldest"), "newest": doc.get("newest"),
                          "version": int(doc.get("version") or 0),
                          "reconciled_at": doc.get("reconciled_at")}
    return result


def of(db: Database[Document], bucket: str) -> dict[str, Any]:
    """One bucket's counters (any bucket, the renditions' too; zeros before its first write),
    one read by ``_id``."""
    doc = db[COUNTERS].find_one({"_id": bucket}) or {}
    return {**{name: int(doc.get(name) or 0) for name in FIELDS}, "version": int(doc.get("version") or 0),
            "reconciled_at": doc.get("reconciled_at"), "oldest": doc.get("oldest"),
            "newest": doc.get("newest")}


def originals(db: Database[Document], bucket: str) -> int | None:
    """The bucket's originals, as kept with every write (one small read); None until a first
    reconciliation counted the bucket (files stored before the counters, or behind the app's
    back, are only in the counters from then on)."""
    doc = db[COUNTERS].find_one({"_id": bucket}, {"originals": 1, "reconciled_at": 1}) or {}
    if doc.get("reconciled_at") is None:
        return None
    return max(0, int(doc.get("originals") or 0))


#: The roles a document has (``metadata.role``; None: written before roles): the image records
#: (``<bucket>.images``) are the originals, the files the others. Every writer of the media
#: package gives one of these; the embedded database's count reads each.
ROLES = ("original", "variant", "rendition", None)
#: Files documents a walk holds at once (a window between fences holds about 256).
READ_BATCH = 1000
#: GridFS's default chunk size, for a files document that does not say its own.
CHUNK_SIZE = 255 * 1024
# Over a bucket's files (every one a whole GridFS file, an image's bytes included); the
# originals are its image records, counted apart (:func:`_group_whole`).
_GROUP = {"$group": {
    "_id": None, "files": {"$sum": 1}, "bytes": {"$sum": "$length"},
    "oldest": {"$min": "$uploadDate"}, "newest": {"$max": "$uploadDate"},
}}


def role_walk(role: str | None) -> str:
    """The name of the fences a bucket's files of ``role`` are walked between (avenue/embedded/fences.py)."""
    return f"role:{role}"


def _add(sums: dict[str, Any], files: int, size: int, originals: int, dates: list[Any]) -> None:
    sums["files"] += files
    sums["bytes"] += size
    sums["originals"] += originals
    for name, pick in (("oldest", min), ("newest", max)):
        found = [date for date in dates if isinstance(date, dt.datetime)]
        if found:
            value = pick(found)
            sums[name] = value if sums[name] is None else pick(sums[name], value)


def _group_whole(db: Database[Document], bucket: str) -> dict[str, Any]:
    sums = {"files": 0, "bytes": 0, "originals": 0, "oldest": None, "newest": None}
    for row in db[f"{bucket}.files"].aggregate([_GROUP]):
        _add(sums, int(row.get("files") or 0), int(row.get("bytes") or 0), 0,
             [row.get("oldest"), row.get("newest")])
    sums["originals"] = images(db, bucket).count_documents(IMAGE)
    return sums


def walk_role(db: Database[Document], bucket: str, role: str | None, projection: dict[str, int] | None, *,
              descending: bool = False, start: dt.datetime | None = None, at_most: int | None = None,
              sample: bool = False) -> Iterator[list[Document]]:
    """The bucket's files of ``role`` a window of upload dates at a time, sorted by date, then
    ``_id``, in walk order (``walk_dates`` in avenue/embedded/fences.py: between the fences the
    last count sampled, or with none yet sized from the bucket's counters' dates and how many
    files of the role there are at most, ``at_most``; None: the counters' originals, or the
    rest of their files for another role). ``sample``: save the fences the next walk reads
    between. Files without a date come where a sort puts them (before every date)."""
    def hints() -> DateHints:
        held = of(db, bucket)
        most = at_most
        if most is None:
            most = held["originals"] if role == "original" else held["files"]
        return DateHints(held["oldest"], held["newest"], most)

    # The originals are the image records (records.images); the other roles are files.
    if role == "original":
        walked, query = images(db, bucket), dict(IMAGE)
    else:
        walked, query = db[f"{bucket}.files"], {"metadata.role": role}
    return walk_dates(walked, query, "uploadDate", role_walk(role), projection, hints,
                      descending=descending, start=start, batch=READ_BATCH, sample=sample)


def _count_in_windows(db: Database[Document], bucket: str) -> dict[str, Any]:
    """The figures and chunks of a bucket on the embedded database, summed a window of one
    role's upload dates at a time (:func:`walk_role`: the originals are its image records, which
    count as originals only; the other roles its files); each walk samples the fences the next
    one reads between. The chunks are what the files documents say they hold
    (``ceil(length / chunkSize)``): a count of the chunks themselves is a walk of every chunk
    there (2.3-2.8 s for 225,459 chunks, measured through make run's one connection), so
    chunks gone behind the app's back are found by ``fsck``, which reads every file's chunks."""
    sums: dict[str, Any] = {"files": 0, "bytes": 0, "originals": 0, "chunks": 0, "oldest": None,
                            "newest": None}
    held = of(db, bucket)
    for role in ROLES:
        # The other roles' files at most: what the counters hold less what the walks before
        # counted (a role with none is then a few reads, not a crawl to the far edge:
        # ``first_date_windows``).
        most = held["originals"] if role == "original" else held["files"] - sums["files"]
        for docs in walk_role(db, bucket, role, {"uploadDate": 1, "length": 1, "chunkSize": 1},
                              at_most=most, sample=True):
            if role == "original":  # records: no bytes, no chunks, no file of their own
                _add(sums, 0, 0, len(docs), [])
                continue
            size = 0
            for doc in docs:
                length = int(doc.get("length") or 0)
                size += length
                sums["chunks"] += math.ceil(length / int(doc.get("chunkSize") or CHUNK_SIZE))
            _add(sums, len(docs), size, 0,
                 [docs[0].get("uploadDate"), docs[-1].get("uploadDate")] if docs else [])
    return sums


def count_bucket(db: Database[Document], bucket: str, *, chunk_index: bool) -> dict[str, Any]:
    """The bucket's true totals and oldest/newest upload, counted on the server (a ``$group``;
    the chunk count walks the chunk index when there is one, else counts the collection).
    Over every file: not bound by a request's operation timeout (``long_operations``).

    Where one operation may not read a whole collection (``Dialect.whole_collection_reads``:
    the embedded database, where make run reaches the server over one connection and every
    request waits behind the operation in flight), a bucket is read a window of dates at a time
    instead (:func:`_count_in_windows`): one ``$group`` over the 225,459 files documents of a
    products bucket held that connection 9.9 s (bench/results/
    scale-2026-11-26-status-during-sweep-relay.md), a count of its chunks 2.8 s."""
    chunks = db[f"{bucket}.chunks"]
    with long_operations():
        if not dialect_of(db).whole_collection_reads:
            counted = _count_in_windows(db, bucket)
        else:
            counted = {**_group_whole(db, bucket),
                       "chunks": chunks.count_documents({}, hint=CHUNK_INDEX if chunk_index else None)}
    return {"files": counted["files"], "originals": counted["originals"], "bytes": counted["bytes"],
            "chunks": int(counted["chunks"]), "oldest": counted["oldest"], "newest": counted["newest"]}


def recount(db: Database[Document], bucket: str, *, chunk_index: bool = True,
            moment: dt.datetime | None = None) -> dict[str, Any]:
    """Reconcile one bucket: count it on the server and replace its counters, unless a write
    moved them meanwhile (then nothing changes and ``applied`` is False). Returns ``applied``
    and ``drift`` (counted minus held, per figure)."""
    held = db[COUNTERS].find_one({"_id": bucket}) or {}
    version = held.get("version")
    counted = count_bucket(db, bucket, chunk_index=chunk_index)
    drift = {name: counted[name] - int(held.get(name) or 0) for name in FIELDS}
    # An empty bucket has no oldest/newest upload: those fields are removed, never stored as
    # null (a later write's $min/$max then sets them; mongomock cannot compare null to a date).
    dates = {name: counted.pop(name) for name in ("oldest", "newest")}
    present = {name: value for name, value in dates.items() if value is not None}
    update: dict[str, Any] = {"$set": {**counted, **present, "reconciled_at": moment or now()}}
    if len(present) < len(dates):
        update["$unset"] = {name: "" for name in dates if name not in present}
    try:
        if version is None:
            db[COUNTERS].insert_one({"_id": bucket, **counted, **present, "version": 0,
                                     "reconciled_at": moment or now()})
            applied = True
        else:
            applied = db[COUNTERS].update_one({"_id": bucket, "version": version}, update).matched_count == 1
    except DuplicateKeyError:
        applied = False  # a first write created the document while we counted
    return {"applied": applied, "drift": drift}
