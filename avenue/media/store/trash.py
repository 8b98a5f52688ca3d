"""The trash: deleted media kept restorable for ``AVENUE_TRASH_DAYS`` (default 30), then purged.

Deleting an original (library media, an upload, a product photo no product uses any more)
moves it into one bucket of its own, ``media_trash``, keeping every id: its record into
``media_trash.images``, its files (its bytes' file and its variants) into ``media_trash.files``.
That bucket is not one of the served buckets (``buckets.BUCKETS``), so the media route
answers 404 for anything in it, and the status counters of the served buckets no longer
count it (the trash has counters of its own). The trashed image's record carries where it
came from and what referenced it::

    metadata.trash = {from, key, deleted_at, purge_after, refs, restoring_at}

Order, so that a crash never loses an image and never serves a half-copied one:

- *move*: copy every file (its bytes, its variants), then the record (its dedupe key
  replaced by ``trash:<id>``, unique whatever bucket it came from), then delete from the
  served bucket (tombstone first,
  caches told, the CDN purge queued). A crash before the delete leaves the image served *and*
  in the trash; deleting it again finds the copies already there (same ids) and finishes.
  Variants its upload left pending (store/pending.py) stay pending in the copy: nothing
  renders in the trash (fsck lists them as a state, not a fault), a render that lands during
  the move leaves no file in the served bucket (originals.delete_image), and a restore brings
  them back pending for the first GET to render.
- *restore*: a compare-and-set lease on ``restoring_at`` (gc does not purge a leased item),
  copy the files back, then the record with its own key, then delete from the trash (the
  record first, then the files).
  When the same bytes were stored again in that bucket meanwhile (same dedupe key), that
  image is the restored one and the trashed copy is dropped: dedupe keeps one copy (unless
  it is a version's copy, below: then it stays).
- *dedupe*: uploading bytes that sit in the trash (same bucket, same key) restores the
  trashed image (its id, alt, folder and tags come back) instead of storing a second copy;
  except an upload link's file (``UploadOptions.revive`` False), stored as a new image while
  the trashed one stays (a later restore of it finds that image and keeps it: dedupe above).
- *versions*: the copy a replace keeps of the version it switches away from
  (:func:`keep_version`) is its image's while the image's history lists it
  (:func:`listed_as_version`; the image served, or in the trash itself, history and all).
  Such a copy is never what dedupe brings back (the upload is stored as a new image), and a
  restore that finds its bytes stored again answers that image and leaves the copy where it
  is: only its days, a purge, or a restore of it as an image of its own take it from the
  history. A copy the history no longer lists (past its days, dropped from a full list:
  store/history.py, or its image purged) is an ordinary trashed image.
- *purge*: ``gc`` removes what is past ``purge_after`` and not being restored: the record,
  then its files.

``AVENUE_TRASH_DAYS=0`` turns the trash off: deletes are final at once, as before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from avenue.clock import as_utc, maybe_utc, now
from avenue.dialect import lister
from avenue.leases import held, stamp
from avenue.media.buckets import TRASH
from avenue.media.effects import counters
from avenue.media.records import (
    IMAGE,
    Document,
    bytes_of,
    images,
    images_name,
    is_image,
    variant_ids,
    variant_key,
)
from avenue.media.store import storage
from avenue.paging import Listed, Page, Window

# A restore holds the item this long at most (a crashed restore frees it after this).
RESTORE_LEASE = dt.timedelta(minutes=10)
# Newest deletion first; its indexes (avenue/media/store/indexes.py) end in exactly this order.
NEWEST_FIRST = [("metadata.trash.deleted_at", DESCENDING), ("_id", DESCENDING)]
LISTED = Listed(images_name(TRASH), IMAGE, NEWEST_FIRST, "trash_newest")


@dataclass(frozen=True)
class Restored:
    """What a restore brought back: the live original, the bucket and what referenced it."""

    bucket: str
    doc: dict[str, Any]
    refs: dict[str, Any]
    reused: bool  # the same bytes were stored again meanwhile: that image is the one returned


def _variants_of(db: Database[Document], bucket: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The files of image ``doc`` (a record): its bytes' file, the variants it lists and any
    pointing back at it (``metadata.original_id``, as its bytes' file does too)."""
    files = db[f"{bucket}.files"]
    ids = list(dict.fromkeys(variant_ids(doc) + [bytes_of(doc).id] + [
        v["_id"] for v in files.find({"metadata.original_id": doc["_id"]}, {"_id": 1})]))
    return list(files.find({"_id": {"$in": ids}})) if ids else []


def _copy_once(db: Database[Document], source: str, target: str, doc: dict[str, Any], holder: Any) -> None:
    """Copy one file of the image record ``holder``, unless a file with its id is already there
    (a move or restore retried after a crash: the copies it made stay, the rest are made; or
    bytes another record there shares: ``holder`` holds them too, storage.copy_for). Moves and
    restores of one image never run at once (delete lease, restore lease)."""
    storage.copy_for(db, source, target, doc, holder)


def _record_once(db: Database[Document], target: str, record: dict[str, Any]) -> None:
    """Insert an image's record into ``target``'s records, unless one with its id is there
    already (as :func:`_copy_once`, for a move or restore retried). A duplicate dedupe key
    (the same bytes stored there meanwhile) raises ``DuplicateKeyError``."""
    records = images(db, target)
    if records.find_one({"_id": record["_id"]}, {"_id": 1}) is None:
        try:
            storage.insert_record(db, target, record)
        except DuplicateKeyError:
            if records.find_one({"_id": record["_id"]}, {"_id": 1}) is None:
                raise


def keep(db: Database[Document], bucket: str, doc: dict[str, Any], *, refs: dict[str, Any] | None = None,
         keep_days: float) -> bool:
    """Copy an image of ``bucket`` (its record ``doc``) into the trash for ``keep_days`` (the
    app's ``AVENUE_TRASH_DAYS``; the caller deletes it from ``bucket`` next): its files, then
    its record. False when the trash is off (``keep_days`` 0)."""
    if keep_days <= 0:
        return False
    for file in _variants_of(db, bucket, doc):
        _copy_once(db, bucket, TRASH, file, doc["_id"])
    metadata = _trashed(doc["metadata"], doc["_id"], bucket, refs or {}, keep_days, drop=("deleting_at",))
    _record_once(db, TRASH, {**doc, "metadata": metadata})
    return True


def _trashed(meta: dict[str, Any], trashed_id: Any, bucket: str, refs: dict[str, Any], keep_days: float,
             drop: tuple[str, ...]) -> dict[str, Any]:
    """An original's metadata as the trash keeps it: its dedupe key set aside as
    ``trash:<id>`` (unique whatever bucket it came from), ``metadata.trash`` added, ``drop``
    left out."""
    moment = now()
    kept = {k: v for k, v in meta.items() if k not in drop}
    kept.update(key=f"trash:{trashed_id}",
                trash={"from": bucket, "key": meta.get("key"), "deleted_at": moment,
                       "purge_after": moment + dt.timedelta(days=keep_days), "refs": refs})
    return kept


def keep_version(db: Database[Document], bucket: str, doc: dict[str, Any], bytes_doc: dict[str, Any], *,
                 refs: dict[str, Any], keep_days: float) -> ObjectId | None:
    """Copy the version of ``doc`` that a replace in place is about to switch away from into
    the trash, under a new id (the image keeps its own): the variants it lists (their ids
    kept, their keys and ``original_id`` moved to the new id), the bytes of ``bytes_doc``
    copied as a file of the new id's own (its bytes' file, under that id), then a record of
    the new id. Restored, it is an image of its own, purged after ``keep_days`` (the app's
    ``AVENUE_TRASH_DAYS``). None when the trash is off (``keep_days`` 0)."""
    if keep_days <= 0:
        return None
    trashed_id = ObjectId()
    files = db[f"{bucket}.files"]
    listed = [info["id"] for formats in (doc["metadata"].get("variants") or {}).values()
              for info in formats.values()]
    for variant in files.find({"_id": {"$in": listed}}) if listed else []:
        old = variant["metadata"]
        key = variant_key(trashed_id, str(old.get("variant")), str(old.get("format")))
        moved = {**old, "original_id": trashed_id, "key": key}
        storage.copy_file(db, bucket, TRASH, {**variant, "metadata": moved})
    metadata = _trashed(doc["metadata"], trashed_id, bucket, refs, keep_days,
                        drop=("content", "version", "versions", "replaced_at", "replacing_at", "deleting_at",
                              "history", "changed", "restored_from"))
    shape = {"length": bytes_doc["length"], "chunkSize": bytes_doc["chunkSize"],
             "uploadDate": doc["uploadDate"], "filename": doc.get("filename")}
    old = bytes_doc.get("metadata") or {}
    # Its bytes' file, shaped as an upload's (originals.bytes_metadata), then its record.
    bytes_meta = {"role": "variant", "variant": "original", "key": f"{trashed_id}/original",
                  "original_id": trashed_id,
                  **{name: old[name] for name in ("format", "content_type", "sha256", "width", "height")
                     if name in old}}
    storage.copy_file(db, bucket, TRASH, {"_id": trashed_id, **shape, "metadata": bytes_meta},
                      source_id=bytes_doc["_id"])
    storage.insert_record(db, TRASH, {"_id": trashed_id, **shape, "metadata": metadata})
    return trashed_id


def get(db: Database[Document], trashed_id: Any) -> dict[str, Any] | None:
    """The trashed original ``trashed_id``, or None."""
    doc = images(db, TRASH).find_one({"_id": trashed_id})
    return doc if is_image(doc) else None


def page(db: Database[Document], window: Window, *, source: str | None = None) -> Page:
    """Trashed originals, last deleted first (only those from ``source``, when given)."""
    query: dict[str, Any] = dict(IMAGE)
    total = None
    if source is not None:
        query = {"metadata.trash.from": source, **query}
    else:
        total = counters.originals(db, TRASH)  # kept with every write, as for every bucket
    return lister(db)(images(db, TRASH), query, NEWEST_FIRST, window, index=LISTED.index, total=total)


def listed_as_version(db: Database[Document], doc: dict[str, Any]) -> bool:
    """Whether the trashed original ``doc`` is a version's copy that its image's history still
    lists, unexpired: that history owns it (module docstring). The image (``refs.replaced_in``)
    is looked for where it is served and in the trash, whose copy keeps its history for a
    restore; two lookups by id."""
    info = (doc.get("metadata") or {}).get("trash") or {}
    image_id = (info.get("refs") or {}).get("replaced_in")
    if not isinstance(image_id, str) or not ObjectId.is_valid(image_id):
        return False
    moment = now()
    for bucket in (info.get("from"), TRASH):
        if not bucket:
            continue
        # By _id alone, the history read here: _id with another condition is a collection scan
        # on the embedded database's planner (serve/route.py's _read says the same).
        image = images(db, bucket).find_one({"_id": ObjectId(image_id)}, {"metadata.history": 1})
        history = ((image or {}).get("metadata") or {}).get("history") or []
        if any(entry.get("trash_id") == doc["_id"] and _later(entry.get("keep_until"), moment)
               for entry in history if isinstance(entry, dict)):
            return True
    return False


def _later(moment: dt.datetime | None, than: dt.datetime) -> bool:
    return moment is not None and as_utc(moment) > as_utc(than)


def find(db: Database[Document], bucket: str, key: str) -> dict[str, Any] | None:
    """The trashed original that was stored in ``bucket`` under dedupe ``key`` and that dedupe
    may bring back, if any: a version's copy its image still lists is not (:func:`listed_as_version`)."""
    for doc in images(db, TRASH).find({"metadata.trash.from": bucket, "metadata.trash.key": key}):
        if not listed_as_version(db, doc):
            return doc
    return None


def _lease(db: Database[Document], doc: dict[str, Any]) -> bool:
    """Take the restore lease (compare-and-set on the value read); False if someone holds it."""
    seen = doc["metadata"]["trash"].get("restoring_at")
    moment = now()
    if held(seen, RESTORE_LEASE, moment):
        return False
    return stamp(images(db, TRASH), doc["_id"], "metadata.trash.restoring_at",
                 {"metadata.trash.restoring_at": seen}, moment)


def restore(db: Database[Document], trashed_id: Any) -> Restored | None:
    """Bring a trashed original and its variants back to their bucket, same ids; None when
    it is not in the trash (any more) or another restore of it is under way. When its bytes
    are stored there again, that image is answered (``reused``) and the copy dropped, unless
    a history lists it as a version (:func:`listed_as_version`: it stays)."""
    doc = get(db, trashed_id)
    if doc is None or not _lease(db, doc):
        return None
    trash = doc["metadata"]["trash"]
    bucket, key = trash["from"], trash.get("key")
    records = images(db, bucket)
    variants = _variants_of(db, TRASH, doc)  # read once: copied back, then deleted from the trash
    try:
        existing = records.find_one({"metadata.key": key}) if key else None
        if existing is None:
            for variant in variants:  # its files first, its record last
                _copy_once(db, TRASH, bucket, variant, doc["_id"])
            metadata = {k: v for k, v in doc["metadata"].items() if k != "trash"}
            metadata["key"] = key
            try:
                _record_once(db, bucket, {**doc, "metadata": metadata})
            except DuplicateKeyError:  # the same bytes stored again this very moment
                existing = records.find_one({"metadata.key": key})
                if existing is None:
                    raise
                # That image is the one answered: the files copied back for this one go again.
                storage.delete_counted(db, bucket, [v["_id"] for v in variants], holder=doc["_id"])
        live = existing if existing is not None else records.find_one({"_id": doc["_id"]})
        if live is None:
            raise OSError(f"{bucket} lost {doc['_id']} while it was being restored")
    except BaseException:
        _unlease(db, doc)
        raise
    if existing is not None and listed_as_version(db, doc):
        _unlease(db, doc)  # its bytes are served as that image; the copy stays its history's
    else:
        storage.delete_image(db, TRASH, doc["_id"], with_ids=[v["_id"] for v in variants])
    return Restored(bucket, live, trash.get("refs") or {}, reused=existing is not None)


def _unlease(db: Database[Document], doc: dict[str, Any]) -> None:
    """Give the restore lease back: the item stays in the trash."""
    images(db, TRASH).update_one({"_id": doc["_id"]}, {"$unset": {"metadata.trash.restoring_at": ""}})


def purge(db: Database[Document], trashed: dict[str, Any]) -> bool:
    """Remove a trashed image for good: its record, then its files."""
    return storage.delete_image(db, TRASH, trashed["_id"],
                                with_ids=[v["_id"] for v in _variants_of(db, TRASH, trashed)])


def expired(db: Database[Document], moment: dt.datetime) -> Iterator[dict[str, Any]]:
    """Every trashed original past its ``purge_after`` and not being restored, streamed (on
    the ``trash_purge`` index)."""
    leased_since = moment - RESTORE_LEASE
    cursor = (images(db, TRASH).find({"metadata.trash.purge_after": {"$lt": moment}})
              .sort("metadata.trash.purge_after", ASCENDING).batch_size(100))
    for doc in cursor:
        meta = doc.get("metadata") or {}
        if is_image(doc) and \
                (maybe_utc(meta["trash"].get("restoring_at")) or leased_since) <= leased_since:
            yield doc
