"""How many library images each folder and each tag holds, kept with every write (``media_facets``).

``GET /api/builder/folders`` and ``/tags`` read one small document per folder or tag, in
order, on the ``facets`` index: a cost that depends on how many folders and tags there are,
never on how many images (grouping every original on each call does).

Kept like the bucket counters (:mod:`avenue.media.effects.counters`), in the same code paths:

- every write, copy and delete of an image record of a faceted bucket (``<bucket>.images``)
  (:mod:`avenue.media.store.storage`, through :func:`avenue.media.effects.apply`) adds or takes
  off one per folder and per tag it carries
  (an image with no folder is in the root, ``/``);
- a change of folder or tags (:meth:`avenue.media.store.library.Library.set_metadata`) is a
  compare-and-set on the values read, then moves the counts from the old to the new values,
  so two editors moving the same image at once never count it twice;
- drift (a process killed between a write and its ``$inc``, documents restored or edited
  behind the app's back) is corrected by :func:`recount`, which the status reconciliation
  (the sweep) runs: one ``$group`` on the server, applied by compare-and-set on a version
  every ``$inc`` bumps, so a write racing the recount makes it wait for the next run.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from avenue.clock import now
from avenue.db import long_operations
from avenue.dialect import dialect_of
from avenue.media.buckets import BUILDER
from avenue.media.effects.counters import walk_role
from avenue.media.records import IMAGE, Document, images, is_image

log = logging.getLogger(__name__)
FACETS = "media_facets"
# Buckets whose originals carry folders and tags (the builder library).
FACETED = frozenset({BUILDER})
ROOT_FOLDER = "/"  # where an image with no folder is (the library's root)
KINDS = ("folder", "tag")
# The one document holding the version every $inc bumps (what a recount compares against).
VERSION_ID = "version"


def indexes() -> list[IndexModel]:
    """A folder or tag list is one walk of this index (bucket, kind, then the value's order)."""
    return [IndexModel([("bucket", ASCENDING), ("kind", ASCENDING), ("value", ASCENDING)], name="facets")]


def of(doc: dict[str, Any]) -> Counter[tuple[str, str]]:
    """The (kind, value) pairs an original counts for: its folder (the root when it has none)
    and each of its tags once; nothing for a variant."""
    if not is_image(doc):
        return Counter()
    meta = doc.get("metadata") or {}
    pairs: Counter[tuple[str, str]] = Counter({("folder", meta.get("folder") or ROOT_FOLDER): 1})
    pairs.update(("tag", tag) for tag in dict.fromkeys(meta.get("tags") or []) if isinstance(tag, str))
    return pairs


def _key(bucket: str, kind: str, value: str) -> str:
    return f"{bucket}|{kind}|{value}"


def apply(db: Database[Document], bucket: str, change: Counter[tuple[str, str]] | dict[tuple[str, str], int]
          ) -> None:
    """Add ``change`` ((kind, value) → count) to the bucket's facets, after the write it
    describes succeeded. Failures are logged, never raised: the write stands, and the
    difference is drift that :func:`recount` corrects."""
    if bucket not in FACETED:
        return
    moves = {pair: n for pair, n in change.items() if n}
    if not moves:
        return
    # One update per value (a handful: a folder and a few tags), not a bulk write: mongomock's
    # bulk_write does not take what pymongo 4.x sends for an UpdateOne.
    try:
        for (kind, value), n in sorted(moves.items()):
            db[FACETS].update_one({"_id": _key(bucket, kind, value)}, {
                "$inc": {"count": n}, "$setOnInsert": {"bucket": bucket, "kind": kind, "value": value}},
                upsert=True)
        # Bumped, never created here: until a first recount creates it, the facets may miss
        # what was stored before they existed, and the first list counts them (see counts).
        db[FACETS].update_one({"_id": _key(bucket, "", VERSION_ID)}, {"$inc": {"version": 1}})
    except PyMongoError as error:
        log.warning("library facets of %s not updated (%s): the next reconciliation corrects them",
                    bucket, error)


def record(db: Database[Document], bucket: str, docs: Iterable[dict[str, Any]], sign: int = 1) -> None:
    """Count ``docs`` (image records written, or ``sign`` -1: deleted; files count for nothing)
    in the facets."""
    if bucket not in FACETED:
        return
    total: Counter[tuple[str, str]] = Counter()
    for doc in docs:
        total.update(of(doc))
    apply(db, bucket, {pair: sign * n for pair, n in total.items()})


def moved(db: Database[Document], bucket: str, before: dict[str, Any], after: dict[str, Any]) -> None:
    """An original's folder or tags changed from ``before``'s to ``after``'s (its records)."""
    change = of(after)
    change.subtract(of(before))
    apply(db, bucket, change)


def counts(db: Database[Document], bucket: str, kind: str, limit: int = 1000) -> list[tuple[str, int]]:
    """(value, images) for every folder or tag of the bucket in use, in order, at most ``limit``.
    A store from before the facets existed has none yet: counted once, on the server, first."""
    _counted(db, bucket)
    found = db[FACETS].find({"bucket": bucket, "kind": kind}, {"value": 1, "count": 1}).sort(
        [("bucket", ASCENDING), ("kind", ASCENDING), ("value", ASCENDING)])
    rows = []
    for doc in found:
        if doc.get("count", 0) > 0:
            rows.append((doc["value"], int(doc["count"])))
            if len(rows) >= limit:
                break
    return rows


def count(db: Database[Document], bucket: str, kind: str, value: str) -> int | None:
    """How many originals of the bucket are in this folder or carry this tag, kept with every
    write (a store from before the facets is counted once, on the server, first); None for a
    bucket without folders and tags."""
    if bucket not in FACETED:
        return None
    _counted(db, bucket)
    doc = db[FACETS].find_one({"_id": _key(bucket, kind, value)}, {"count": 1}) or {}
    return max(0, int(doc.get("count") or 0))


def _counted(db: Database[Document], bucket: str) -> None:
    """Count a store from before the facets once, on the server, before they are read."""
    if db[FACETS].find_one({"_id": _key(bucket, "", VERSION_ID)}, {"_id": 1}) is None:
        recount(db, bucket)


def count_on_server(db: Database[Document], bucket: str) -> Counter[tuple[str, str]]:
    """The true facets, counted on the server (two ``$group``s over the originals; over every
    file, so not bound by a request's operation timeout: ``long_operations``).

    Where one operation may not read a whole collection (``Dialect.whole_collection_reads``:
    the embedded database) the originals are read a window of upload dates at a time
    instead (``counters.walk_role``, between the fences the bucket's count sampled just
    before), their folders and tags counted here: the two ``$group``s over a builder library
    of 37,575 files took 1.3 s each there, every request of make run waiting behind them
    (bench/results/scale-2026-11-26-status-during-sweep-relay.md). The same sums: a folder
    missing or null is the root, tags are counted as ``$unwind`` counts them."""
    records = images(db, bucket)
    truth: Counter[tuple[str, str]] = Counter()
    with long_operations():
        if not dialect_of(db).whole_collection_reads:
            for docs in walk_role(db, bucket, "original", {"uploadDate": 1, "metadata.folder": 1,
                                                           "metadata.tags": 1}):
                for doc in docs:
                    metadata = doc.get("metadata") or {}
                    folder = metadata.get("folder")
                    truth[("folder", ROOT_FOLDER if folder is None else folder)] += 1
                    tags = metadata.get("tags")
                    for tag in tags if isinstance(tags, list) else [tags]:
                        if isinstance(tag, str):
                            truth[("tag", tag)] += 1
            return truth
        original = {"$match": IMAGE}
        for row in records.aggregate([original, {"$group": {
                "_id": {"$ifNull": ["$metadata.folder", ROOT_FOLDER]}, "n": {"$sum": 1}}}]):
            truth[("folder", row["_id"])] += int(row["n"])
        for row in records.aggregate([original, {"$unwind": "$metadata.tags"},
                                      {"$group": {"_id": "$metadata.tags", "n": {"$sum": 1}}}]):
            if isinstance(row["_id"], str):
                truth[("tag", row["_id"])] += int(row["n"])
    return truth


def recount(db: Database[Document], bucket: str = BUILDER) -> dict[str, Any]:
    """Reconcile the bucket's facets with a count on the server, unless a write moved them
    meanwhile (then nothing changes and ``applied`` is False; the next run tries again).
    Returns ``applied`` and ``drift`` (counted minus held, for the values that differ)."""
    facets = db[FACETS]
    version_doc = facets.find_one({"_id": _key(bucket, "", VERSION_ID)}) or {}
    version = version_doc.get("version")
    truth = count_on_server(db, bucket)
    held = {(doc["kind"], doc["value"]): int(doc.get("count", 0))
            for doc in facets.find({"bucket": bucket, "kind": {"$in": list(KINDS)}})}
    differ = sorted(pair for pair in set(truth) | set(held) if truth.get(pair, 0) != held.get(pair, 0))
    drift = {f"{kind}:{value}": truth.get((kind, value), 0) - held.get((kind, value), 0)
             for kind, value in differ}
    # Claim the version first: a write landing during the recount bumped it, and then the
    # recount may or may not include that write; so apply only if it is still the one read.
    # The first count of a bucket creates the version; later calls read the facets alone.
    if version is None:
        claimed = _first_version(db, bucket) or not differ
    elif differ:
        taken = facets.update_one({"_id": _key(bucket, "", VERSION_ID), "version": version},
                                  {"$inc": {"version": 1}, "$set": {"reconciled_at": now()}})
        claimed = taken.matched_count == 1
    else:
        claimed = True  # nothing to correct
    if claimed:
        for kind, value in differ:
            facets.update_one({"_id": _key(bucket, kind, value)},
                              {"$set": {"count": truth.get((kind, value), 0)},
                               "$setOnInsert": {"bucket": bucket, "kind": kind, "value": value}}, upsert=True)
    return {"applied": claimed, "drift": drift}


def _first_version(db: Database[Document], bucket: str) -> bool:
    try:
        db[FACETS].insert_one({"_id": _key(bucket, "", VERSION_ID), "bucket": bucket, "kind": "", "value": "",
                               "version": 1, "reconciled_at": now()})
        return True
    except DuplicateKeyError:
        return False
