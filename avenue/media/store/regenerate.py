"""Render an original's variants again (fsck --repair: a variant whose bytes were lost or damaged,
or one still pending long after its upload).

The files it writes have the layout :mod:`avenue.media.store.originals` gives variants (same metadata,
same ``key``), keeping the variant's id when it had one so every URL handed out still works.

Write order, as a pending render's (pending.py): each file written (chunks, then its files
document), then listed by one update of the original conditional on it being the version read
(the entry still naming that id, ``metadata.version`` unchanged); an image deleted, moved to
the trash or replaced meanwhile matches nothing, and the file just written is removed again
(never listed, never served): a variant never outlives its original.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo.database import Database

from avenue.media import effects
from avenue.media.core import Media
from avenue.media.effects import Changes, Tombstone
from avenue.media.ingest import pipeline
from avenue.media.ingest.edits import og_box
from avenue.media.ingest.focal import CENTRE, FocalPoint
from avenue.media.ingest.variants import VARIANT_NAMES
from avenue.media.records import Document, images, variant_key
from avenue.media.store import pending, storage
from avenue.media.store.originals import write_variant
from avenue.media.store.replace import read_original


def regenerate_variants(db: Database[Document], bucket: str, original: Document,
                        replace: set[Any], media: Media) -> list[dict[str, Any]]:
    """Re-render ``original`` and rewrite every variant that is missing or whose id is in ``replace``,
    within the decode budget and render slots of ``media`` (the app's).

    The original must be intact. Returns one ``{"variant", "format", "id"}`` per file written.
    Pending variants are rendered first, under the claim a GET of one shares (one render).
    """
    files = db[f"{bucket}.files"]
    waiting = pending.pending_of(original)
    if waiting:
        original = pending.complete(db, bucket, original["_id"], media) or original
    completed = [{"variant": name, "format": fmt, "id": str(info["id"])} for name, fmt, info in waiting
                 if not any((n, f) == (name, fmt) for n, f, _ in pending.pending_of(original))]
    listed = (original.get("metadata") or {}).get("variants") or {}
    ids = [info["id"] for formats in listed.values() for info in formats.values()]
    if completed and not replace and set(listed) >= set(VARIANT_NAMES) and \
            len(list(files.find({"_id": {"$in": ids}}, {"_id": 1}))) == len(ids):
        return completed  # only pending ones were missing (complete told this worker's cache)
    data = read_original(db, bucket, original)
    # The crops around the stored focal point, as at upload (centred for images from before).
    focal = FocalPoint.from_metadata((original.get("metadata") or {}).get("focal_point")) or CENTRE
    version = (original.get("metadata") or {}).get("version") or ""
    written = []
    for rendition in pipeline.render_stored(data, focal, settings=media.settings,
                                            og_box=og_box(original.get("metadata") or {})):
        info = listed.get(rendition.name, {}).get(rendition.format)
        file_id = info["id"] if info else ObjectId()
        if info and file_id not in replace and files.find_one({"_id": file_id}, {"_id": 1}) is not None:
            continue
        storage.delete_file(db, bucket, file_id)
        # A stray file under the same key (an orphan copy) would block the unique index.
        key = variant_key(original["_id"], rendition.name, rendition.format, version)
        for stray in files.find({"metadata.key": key}, {"_id": 1}):
            storage.delete_file(db, bucket, stray["_id"])
        path = f"metadata.variants.{rendition.name}.{rendition.format}"
        # The version read: its own version and, for a listed variant, the entry still this id.
        same = {"_id": original["_id"], "metadata.version": (original.get("metadata") or {}).get("version"),
                **({f"{path}.id": file_id} if info else {})}
        _, info = write_variant(db, bucket, original["_id"], rendition, file_id=file_id, version=version)
        if images(db, bucket).update_one(same, {"$set": {path: info}}).matched_count == 0:
            storage.delete_file(db, bucket, file_id)  # its image is gone or another version now
            break
        written.append({"variant": rendition.name, "format": rendition.format, "id": str(file_id)})
    written = completed + written
    if written:
        # The original's cached document lists the old variants: have every worker reload it.
        effects.apply(db, Changes(tombstones=[Tombstone(bucket, [original["_id"]])]))
    return written
