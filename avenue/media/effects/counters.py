"""Per-bucket totals kept with every write (``media_counters``): files, originals, bytes, chunks.

storage-status answers from one read of these four small documents instead of aggregating
every files document, so it costs the same at ten files as at ten million and shows the last
write at once.

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
- :func:`recount` is the reconciliation: it counts the bucket on the server (one ``$group``,
  one chunk count on the chunk index, or on the embedded database a count of the collection,
  :func:`count_bucket` says why; no document comes to Python) and replaces the counters
  by compare-and-set on their ``version``, which every ``$inc`` bumps. A write that lands
  during the recount makes the set miss (the recount may or may not include it), so a
  recount is applied only when it is exact; the next one (the status sweep runs it every
  time) tries again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from avenue.clock import now
from avenue.db import long_operations
from avenue.media.buckets import STORED
from avenue.media.records import Document
from avenue.paging import DateWindows
from avenue.servers import is_embedded

log = logging.getLogger(__name__)
COUNTERS = "media_counters"
FIELDS = ("files", "originals", "bytes", "chunks")
CHUNK_INDEX = [("files_id", 1), ("n", 1)]


def _is_original(doc: dict[str, Any]) -> bool:
    return ((doc.get("metadata") or {}).get("role")) == "original"


def figures(docs: Iterable[dict[str, Any]], chunks: int = 0) -> dict[str, Any]:
    """What a set of files documents (and ``chunks`` chunks) adds to a bucket's counters, and
    their earliest and latest upload dates."""
    files = originals = size = 0
    dates = []
    for doc in docs:
        files += 1
        originals += _is_original(doc)
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
    inc = {name: sign * change[name] for name in FIELDS if change.get(name)}
    if not inc:
        return
    update: dict[str, Any] = {"$inc": {**inc, "version": 1}}
    if sign > 0 and change.get("oldest") is not None:
        update["$min"] = {"oldest": change["oldest"]}
        update["$max"] = {"newest": change["newest"]}
    try:
        db[COUNTERS].update_one({"_id": bucket}, update, upsert=True)
    except PyMongoError as error:
        log.warning("media counters of %s not updated (%s): the next reconciliation corrects them",
                    bucket, error)


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


#: The roles a files document has (``metadata.role``; None: written before roles, or behind
#: the app's back). The embedded database's windowed count reads each on the ``role_newest``
#: index; a document of any other role makes its total disagree, and the bucket is then
#: counted in one ``$group`` (:func:`count_bucket`).
ROLES = ("original", "variant", "rendition", None)
_GROUP = {"$group": {
    "_id": None, "files": {"$sum": 1}, "bytes": {"$sum": "$length"},
    "originals": {"$sum": {"$cond": [{"$eq": ["$metadata.role", "original"]}, 1, 0]}},
    "oldest": {"$min": "$uploadDate"}, "newest": {"$max": "$uploadDate"},
}}


def _add_row(sums: dict[str, Any], row: dict[str, Any]) -> None:
    for name in ("files", "bytes", "originals"):
        sums[name] += int(row.get(name) or 0)
    for name, pick in (("oldest", min), ("newest", max)):
        value = row.get(name)
        if isinstance(value, dt.datetime):
            sums[name] = value if sums[name] is None else pick(sums[name], value)


def _sums() -> dict[str, Any]:
    return {"files": 0, "bytes": 0, "originals": 0, "oldest": None, "newest": None}


def _group_whole(db: Database[Document], bucket: str) -> dict[str, Any]:
    sums = _sums()
    for row in db[f"{bucket}.files"].aggregate([_GROUP]):
        _add_row(sums, row)
    return sums


def _moved(db: Database[Document], bucket: str, held: dict[str, Any]) -> bool:
    """Whether a write moved the bucket's counters since ``held`` was read."""
    now_held = db[COUNTERS].find_one({"_id": bucket}, {"version": 1}) or {}
    return now_held.get("version") != held.get("version")


def _group_in_windows(db: Database[Document], bucket: str, held: dict[str, Any], *,
                      exact: bool = True) -> dict[str, Any] | None:
    """The files figures summed window by window: per role, over windows of upload dates on
    the ``role_newest`` index (:class:`avenue.paging.DateWindows`, hinted by the held
    counters' dates and files), so no read holds make run's one connection for more than a
    few hundred documents. None when the windows miss files (a role outside :data:`ROLES`, a
    document without a date): their total then disagrees with the collection's; but a write
    that lands meanwhile disagrees too, and then (``exact`` False, the counters' version
    moved) the sums are returned as they are: the compare-and-set refuses them, and the next
    reconciliation counts again, where one ``$group`` would hold every request behind it
    exactly when the shop is busy."""
    files = db[f"{bucket}.files"]
    sums = _sums()
    for role in ROLES:
        windows = DateWindows(held.get("oldest"), held.get("newest"), int(held.get("files") or 0))
        while windows:
            condition = windows.take()
            match: dict[str, Any] = {"metadata.role": role}
            if condition:
                match["uploadDate"] = condition
            seen = 0
            for row in files.aggregate([{"$match": match}, _GROUP]):
                seen += int(row.get("files") or 0)
                _add_row(sums, row)
            windows.saw(seen)
    # The collection's own count walks its rows without decoding them there (as the chunks').
    return sums if not exact or sums["files"] == files.estimated_document_count() else None


def count_bucket(db: Database[Document], bucket: str, *, chunk_index: bool,
                 held: dict[str, Any] | None = None) -> dict[str, Any]:
    """The bucket's true totals and oldest/newest upload, counted on the server (a ``$group``;
    the chunk count walks the chunk index when there is one, else counts the collection).
    Over every file: not bound by a request's operation timeout (``long_operations``).

    On the embedded database the files are summed in windows of upload dates
    (:func:`_group_in_windows`; ``held``, the counters as they are, hints the windows), and
    only when those miss files in one ``$group``; and the chunks are counted by the ``count``
    command with no filter: SecantusDB answers a count hinted on the chunk index by decoding
    every chunk, all the stored bytes in one operation (2.9 s for 600 MB, measured; about 15 s
    for the 3.5 GB the 60-minute soak had stored when its one restart came, every other
    request waiting behind it through make run's one connection), while a count of the whole
    collection walks its rows without decoding them (0.24 s for the same 600 MB), and is as
    exact there."""
    chunks = db[f"{bucket}.chunks"]
    with long_operations():
        if is_embedded(db):
            row = _group_in_windows(db, bucket, held or {})
            if row is None and held is not None and _moved(db, bucket, held):
                row = _group_in_windows(db, bucket, held, exact=False)  # a write raced: not applied anyway
            if row is None:
                log.info("the files of %s are not all in the windows of their roles and dates: "
                         "counted in one $group", bucket)
                row = _group_whole(db, bucket)
            count = chunks.estimated_document_count()  # a walk of its rows there, not metadata
        else:
            row = _group_whole(db, bucket)
            count = chunks.count_documents({}, hint=CHUNK_INDEX if chunk_index else None)
    return {"files": row["files"], "originals": row["originals"], "bytes": row["bytes"], "chunks": int(count),
            "oldest": row["oldest"], "newest": row["newest"]}


def recount(db: Database[Document], bucket: str, *, chunk_index: bool = True,
            moment: dt.datetime | None = None) -> dict[str, Any]:
    """Reconcile one bucket: count it on the server and replace its counters, unless a write
    moved them meanwhile (then nothing changes and ``applied`` is False). Returns ``applied``
    and ``drift`` (counted minus held, per figure)."""
    held = db[COUNTERS].find_one({"_id": bucket}) or {}
    version = held.get("version")
    counted = count_bucket(db, bucket, chunk_index=chunk_index, held=held)
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
