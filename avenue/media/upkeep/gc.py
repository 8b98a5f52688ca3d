"""gc: remove what no one can use any more, never what an upload in flight is still writing.

Garbage, per bucket:
- expired temp images (``metadata.expires_at`` passed), and temp originals with no expiry;
- product originals no document refers to (the app's owners of the documents referring to
  the products bucket answer, asked of its Media: avenue/media/references.py), and no
  ``legacy_paths`` entry, whose redirect still points at them;
- variants (an image's bytes are a file like a variant, named ``original``) whose image has
  no record in ``<bucket>.images``, or whose image does not list them;
- files whose chunks are incomplete (an interrupted upload by another writer, or damage): an
  image's current bytes go with their image; and images whose bytes file does not exist;
- chunks whose files document does not exist (a killed upload: chunks are written first);
- renditions on request (``media_renditions``) whose image no longer exists in its bucket or
  is at another version now (a crash between a delete or replace and the removal of its
  renditions), and that bucket's incomplete files and orphan chunks as in every bucket;
- resumable (tus) uploads past their expiry (AVENUE_TUS_EXPIRY_SECONDS after creation) and
  the bytes they received, and any received bytes past their upload's expiry (no grace: an
  expired upload takes no more bytes, avenue/media/store/resumable.py).

Builder media and general uploads are records in themselves (their image record is what
their owner lists and deletes), so they are never garbage.

Safety while the app serves traffic: everything but expired temp images must be older than
the grace period (``uploadDate``, or the ``files_id`` ObjectId's time for chunks), because an
upload in flight has chunks before its files document, and variants and bytes before its
record. ``transfer`` copies files keeping their ids and upload dates (variants, then the
bytes, then the record, then deletes the source), so a variant whose image's record, or
chunks whose files document, still exists in another bucket, and a product image whose temp
source was deleted within the grace period, are kept too. Every deletion goes through the
media core, which writes the tombstones that evict every worker's cache.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from bson import ObjectId
from pymongo.database import Database

from avenue.clock import as_utc
from avenue.clock import now as clock_now
from avenue.db import Document
from avenue.media.buckets import PRODUCTS, RENDITIONS, STORED, TEMP, TRASH
from avenue.media.core import Media
from avenue.media.records import IMAGE, bytes_of, content_length, variant_ids
from avenue.media.references import IN_BATCH, Referrers
from avenue.media.store.originals import delete_image
from avenue.media.store.renditions import orphans as rendition_orphans
from avenue.media.store.resumable import collect_expired
from avenue.media.store.scan import (
    chunk_owners,
    chunk_stats,
    chunk_totals,
    delete_orphan_chunks,
    existing_ids,
    expired_originals,
    has_file,
    has_image,
    image,
    images_by_id,
    originals_without_expiry,
    walk_files,
    walk_images,
)
from avenue.media.store.storage import delete_file, holders
from avenue.media.store.trash import expired as trash_expired

DEFAULT_GRACE_SECONDS = 3600
BATCH = 500

Progress = Callable[[str, int, int], None]


@dataclass
class GcReport:
    """What gc removed (or, in a dry run, would remove)."""

    dry_run: bool
    grace_seconds: int
    removed: list[dict[str, Any]] = field(default_factory=list)
    kept_in_grace: int = 0  # garbage-looking items younger than the grace period

    @property
    def bytes_freed(self) -> int:
        return sum(entry["bytes"] for entry in self.removed)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in self.removed:
            counts[entry["kind"]] = counts.get(entry["kind"], 0) + 1
        return counts

    def summary(self) -> dict[str, Any]:
        """The whole report as JSON-ready data."""
        return {"dry_run": self.dry_run, "grace_seconds": self.grace_seconds, "counts": self.counts,
                "removed_items": len(self.removed), "bytes_freed": self.bytes_freed,
                "kept_in_grace": self.kept_in_grace, "removed": self.removed}

    def summary_line(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        kinds = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(self.counts.items()))
        return (f"gc: {verb} {len(self.removed)} items ({kinds or 'nothing to collect'}), "
                f"{self.bytes_freed} bytes freed; {self.kept_in_grace} kept within the "
                f"{self.grace_seconds} s grace period")


def _image_bytes(doc: dict[str, Any]) -> int:
    """An image's bytes (its record's length: its bytes file's) plus its variants'."""
    variants = (doc.get("metadata") or {}).get("variants") or {}
    total: int = content_length(doc) + sum(info.get("length", 0) for formats in variants.values()
                                           for info in formats.values())
    return total


_T = TypeVar("_T")


def _batches(cursor: Iterable[_T], size: int = BATCH) -> Iterator[list[_T]]:
    batch: list[_T] = []
    for doc in cursor:
        batch.append(doc)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Collector:
    def __init__(self, db: Database[Document], now: dt.datetime, grace_seconds: int, dry_run: bool,
                 progress: Progress | None, refs: Referrers, media: Media) -> None:
        self.db = db
        self.refs = refs
        self.media = media
        self.now = now
        self.cutoff = now - dt.timedelta(seconds=grace_seconds)
        self.dry_run = dry_run
        self.progress = progress or (lambda phase, done, total: None)
        self.report = GcReport(dry_run, grace_seconds)
        # (bucket, id) of files already counted, so a dry run counts each one once, as a real run does.
        self.gone: set[tuple[str, object]] = set()

    def run(self) -> GcReport:
        steps: list[Callable[[], None]] = [self._expired_temp_images, self._temp_images_without_expiry,
                                           self._unreferenced_product_images, self._trash_past_its_window]
        for bucket in STORED:
            steps += [partial(self._incomplete_files, bucket), partial(self._incomplete_images, bucket),
                      partial(self._orphan_variants, bucket), partial(self._orphan_chunks, bucket)]
        steps += [self._orphan_renditions, lambda: self._incomplete_files(RENDITIONS),
                  lambda: self._orphan_chunks(RENDITIONS), self._expired_resumable_uploads]
        for index, step in enumerate(steps, 1):
            step()
            self.progress("Collecting garbage", index, len(steps))
        return self.report

    def _old(self, doc: dict[str, Any]) -> bool:
        # A file held lately (storage.hold: a restore about to point at it) is as new as its hold.
        held = (doc.get("metadata") or {}).get("held_at")
        if as_utc(doc["uploadDate"]) < self.cutoff and (held is None or as_utc(held) < self.cutoff):
            return True
        self.report.kept_in_grace += 1
        return False

    def _remove_image(self, kind: str, bucket: str, doc: dict[str, Any], reason: str) -> None:
        if (bucket, doc["_id"]) in self.gone:
            return
        # Its files: the one holding its bytes and its variants (the record is none).
        files = set([bytes_of(doc).id, *variant_ids(doc)])
        self.gone.update((bucket, file_id) for file_id in [doc["_id"], *files])
        self.report.removed.append({"kind": kind, "bucket": bucket, "id": str(doc["_id"]),
                                    "filename": doc.get("filename"), "bytes": _image_bytes(doc),
                                    "files": len(files), "reason": reason})
        if not self.dry_run:
            delete_image(self.db, bucket, doc, purges=self.media.purges)

    def _remove_file(self, kind: str, bucket: str, doc: dict[str, Any], reason: str,
                     let_go: tuple[Any, ...] = ()) -> None:
        """Remove the file ``doc``; ``let_go``: the image records letting go of it (a file other
        records hold too stays theirs, storage.remove_files)."""
        if (bucket, doc["_id"]) in self.gone:
            return
        self.gone.add((bucket, doc["_id"]))
        self.report.removed.append({"kind": kind, "bucket": bucket, "id": str(doc["_id"]),
                                    "filename": doc.get("filename"), "bytes": int(doc.get("length") or 0),
                                    "files": 1, "reason": reason})
        if not self.dry_run:
            for holder in let_go or (None,):
                delete_file(self.db, bucket, doc["_id"], holder=holder)

    # --- temp images ----------------------------------------------------------------------

    def _expired_temp_images(self) -> None:
        for doc in expired_originals(self.db, TEMP, self.now):
            self._remove_image("expired_temp_image", TEMP, doc,
                               f"expired at {as_utc(doc['metadata']['expires_at']).isoformat()}")

    def _temp_images_without_expiry(self) -> None:
        for doc in originals_without_expiry(self.db, TEMP):
            if self._old(doc):
                self._remove_image("temp_image_without_expiry", TEMP, doc, "a temp image with no expiry")

    # --- product images -------------------------------------------------------------------

    def _referenced(self, ids: list[ObjectId]) -> set[ObjectId]:
        found = self.refs.referenced(PRODUCTS, ids)
        # A batch is 500: on the embedded database an $in costs the square of its length.
        for start in range(0, len(ids), IN_BATCH):
            mapped = self.db.legacy_paths.find(
                {"bucket": PRODUCTS, "file_id": {"$in": ids[start:start + IN_BATCH]}}, {"file_id": 1})
            found.update(record["file_id"] for record in mapped)
        return found

    def _recently_transferred(self, file_id: ObjectId) -> bool:
        """A temp image claimed by a product right now: still in temp, or just deleted from it."""
        if has_image(self.db, TEMP, file_id):
            return True
        # Tombstones name their files in ``file_ids`` (``file_id`` before they were batched).
        for named in ({"file_ids": file_id}, {"file_id": file_id}):
            tombstone = {**named, "bucket": TEMP, "at": {"$gte": self.cutoff}}
            if self.db.media_deletions.find_one(tombstone, {"_id": 1}) is not None:
                return True
        return False

    def _unreferenced_product_images(self) -> None:
        for batch in _batches(walk_images(self.db, PRODUCTS, IMAGE)):
            referenced = self._referenced([doc["_id"] for doc in batch])
            for doc in batch:
                if doc["_id"] in referenced or not self._old(doc):
                    continue
                # Checked again right before deleting: a product may have claimed it meanwhile.
                if self._recently_transferred(doc["_id"]) or self._referenced([doc["_id"]]):
                    self.report.kept_in_grace += 1
                    continue
                self._remove_image("unreferenced_product_image", PRODUCTS, doc,
                                   "no product references it")

    # --- the trash ------------------------------------------------------------------------

    def _trash_past_its_window(self) -> None:
        """Trashed images past ``purge_after`` (AVENUE_TRASH_DAYS after their delete), unless
        a restore holds them (avenue/media/store/trash.py)."""
        for doc in trash_expired(self.db, self.now):
            deleted = as_utc(doc["metadata"]["trash"]["deleted_at"]).isoformat()
            self._remove_image("trash_expired", TRASH, doc, f"in the trash since {deleted}")

    # --- structure ------------------------------------------------------------------------

    def _image_elsewhere(self, image_id: ObjectId, bucket: str) -> bool:
        """Whether another bucket holds image ``image_id``'s record (a transfer in flight)."""
        return any(has_image(self.db, other, image_id) for other in STORED if other != bucket)

    def _file_elsewhere(self, file_id: ObjectId, bucket: str) -> bool:
        """Whether another bucket holds the files document ``file_id`` (a transfer in flight)."""
        return any(has_file(self.db, other, file_id) for other in STORED if other != bucket)

    def _incomplete_files(self, bucket: str) -> None:
        cursor = walk_files(self.db, bucket, {"uploadDate": {"$lt": self.cutoff}},
                                 projection={"length": 1, "chunkSize": 1, "filename": 1, "uploadDate": 1,
                                             "metadata": 1})
        for batch in _batches(cursor, 200):
            # The batch is every old file between its first and last id: one range of chunks.
            stats = chunk_stats(self.db, bucket, [doc["_id"] for doc in batch], contiguous=True)
            for doc in batch:
                length = int(doc.get("length") or 0)
                expected = math.ceil(length / doc["chunkSize"]) if length else 0
                row = stats.get(doc["_id"], {"count": 0, "first": 0, "last": -1})
                if (row["count"], row["first"], row["last"]) == (expected, 0, expected - 1) or expected == 0:
                    continue
                reason = f"{row['count']} of {expected} chunks"
                record = self._held_by(bucket, doc)
                if record is not None:  # an image's current bytes: the image goes with them
                    self._remove_image("incomplete_file", bucket, record, reason)
                else:
                    self._remove_file("incomplete_file", bucket, doc, reason)

    def _held_by(self, bucket: str, doc: dict[str, Any]) -> dict[str, Any] | None:
        """The record of the image whose current bytes the file ``doc`` holds, if any."""
        meta = doc.get("metadata") or {}
        if meta.get("role") != "variant" or meta.get("variant") != "original":
            return None
        record = image(self.db, bucket, meta.get("original_id"))
        return record if record is not None and bytes_of(record).id == doc["_id"] else None

    def _incomplete_images(self, bucket: str) -> None:
        """Images whose bytes file does not exist (lost, or removed by hand): nothing can serve
        them. Their bytes are written before their record, so none is in flight."""
        cursor = walk_images(self.db, bucket, {"uploadDate": {"$lt": self.cutoff}})
        for batch in _batches(cursor, 200):
            present = existing_ids(self.db, bucket, [bytes_of(doc).id for doc in batch])
            for doc in batch:
                if bytes_of(doc).id not in present:
                    self._remove_image("incomplete_image", bucket, doc,
                                       f"the file holding its bytes ({bytes_of(doc).id}) does not exist")

    def _orphan_variants(self, bucket: str) -> None:
        cursor = walk_files(self.db, bucket, {"metadata.role": "variant"},
                                 projection={"length": 1, "filename": 1, "uploadDate": 1,
                                             "metadata.original_id": 1, "metadata.holders": 1,
                                             "metadata.held_at": 1})
        for batch in _batches(cursor):
            # Its image (``original_id``), or every record holding it (shared bytes: storage.hold).
            originals = {holder for doc in batch for holder in holders(doc)}
            # What each present image lists (its variants, its bytes): a file it does not list
            # (a replace or a re-render cut off before the record pointed at it) is garbage too,
            # once old.
            found = images_by_id(self.db, bucket, originals, {"metadata.variants": 1, "metadata.content": 1})
            listed = {file_id: {bytes_of(doc).id, *variant_ids(doc)} for file_id, doc in found.items()}
            for doc in batch:
                held_by = holders(doc)
                if any(doc["_id"] in listed.get(holder, ()) for holder in held_by) or not self._old(doc):
                    continue
                original = doc["metadata"].get("original_id")
                if len(held_by) > 1:  # shared, and listed by none of its holders: all let go of it
                    self._remove_file("orphan_variant", bucket, doc, "none of the images holding it "
                                      f"({', '.join(map(str, held_by))}) lists it", let_go=tuple(held_by))
                    continue
                if original in listed:
                    self._remove_file("orphan_variant", bucket, doc,
                                      f"its original {original} does not list it (an earlier version or "
                                      "an interrupted write)", let_go=(original,))
                    continue
                if self._image_elsewhere(original, bucket):
                    self.report.kept_in_grace += 1  # a transfer copying this image right now
                    continue
                self._remove_file("orphan_variant", bucket, doc, f"its original {original} does not exist",
                                  let_go=(original,))

    def _orphan_renditions(self) -> None:
        # No grace: a rendition is rendered only for the image's current version, so one of a
        # missing image or an earlier version is never served again, whatever is in flight.
        for doc in rendition_orphans(self.db):
            meta = doc.get("metadata") or {}
            self._remove_file("orphan_rendition", RENDITIONS, doc,
                              f"its image {meta.get('image_id')} in {meta.get('source')} does not exist "
                              f"at version {meta.get('version') or '(first)'!r}")

    def _expired_resumable_uploads(self) -> None:
        expired = collect_expired(self.db, self.now, dry_run=self.dry_run)
        for upload in expired.uploads:
            self.report.removed.append({"kind": "expired_resumable_upload", "bucket": None,
                                        "id": upload["id"], "filename": None, "bytes": 0, "files": 0,
                                        "reason": f"{upload['offset']} of {upload['length']} bytes received, "
                                                  f"expired at {upload['expires_at']}"})
        if expired.pieces:
            self.report.removed.append({"kind": "expired_resumable_bytes", "bucket": None, "id": None,
                                        "filename": None, "bytes": expired.bytes, "files": 0,
                                        "chunks": expired.pieces,
                                        "reason": "bytes of resumable uploads past their expiry"})

    def _orphan_chunks(self, bucket: str) -> None:
        for batch in _batches(chunk_owners(self.db, bucket)):
            present = existing_ids(self.db, bucket, batch)
            for file_id in batch:
                if file_id in present:
                    continue
                # The files document is written last: young chunks may be an upload in flight.
                if isinstance(file_id, ObjectId) and as_utc(file_id.generation_time) >= self.cutoff:
                    self.report.kept_in_grace += 1
                    continue
                if self._file_elsewhere(file_id, bucket):
                    self.report.kept_in_grace += 1
                    continue
                size, count = chunk_totals(self.db, bucket, file_id)
                self.report.removed.append({"kind": "orphan_chunks", "bucket": bucket, "id": str(file_id),
                                            "filename": None, "bytes": size, "files": 0, "chunks": count,
                                            "reason": "chunks with no files document (interrupted upload)"})
                if not self.dry_run:
                    # Re-checked there: never delete the chunks of a file that has just been completed.
                    delete_orphan_chunks(self.db, bucket, file_id)


def collect_garbage(db: Database[Document], *, media: Media, grace_seconds: int = DEFAULT_GRACE_SECONDS,
                    dry_run: bool = False, now: dt.datetime | None = None,
                    progress: Progress | None = None) -> GcReport:
    """Remove (or with ``dry_run`` only list) every kind of garbage described in the module doc;
    ``media``: the app's (``AppMedia.core``), whose owners of referring documents say what is
    referenced (required: a ``Media()`` without owners raises before anything is removed) and
    whose CDN a removed public image's purge is queued for. The command
    (avenue/ops/commands.py) audits what a real run removed."""
    return _Collector(db, now or clock_now(), grace_seconds, dry_run, progress, media.referrers(db),
                      media).run()
