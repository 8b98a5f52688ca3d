"""An original's variants rendered again when what makes them changed (``flask rerender``).

Each variant file, and its entry on the original (``metadata.variants.<name>.<format>``),
records its *recipe*: a short fingerprint of its sizes, format, encoder and quality
(:func:`avenue.media.ingest.variants.recipe`). A listed variant whose recipe is not the one the
variant table and the formats give now, or that has none (made before recipes were recorded),
is stale (:func:`stale_of`); pending variants are not (they are rendered with today's settings),
nor is an edited image's unedited ``source`` (never rendered).

:func:`rerender` renders the stale variants of one image from its original, which it only
reads, and puts each new file in place of the old one without a moment when its URL does not
answer. Write order, per variant:

1. free the variant's unique ``metadata.key`` on the old file (renamed ``<key>~<old id>``):
   the old file is served by its id, which the original still lists, so nothing changes for a
   reader; a file under the key that the original does not list (left by a run that died
   between 2 and 3) is removed;
2. write the new file under a fresh id, chunks first, files document last (``put_files``);
3. switch the original's entry to it in one update conditional on the entry still naming the
   old file (the image replaced or deleted meanwhile: the new file is removed again, never
   listed, never served); every URL served the old bytes up to here;
4. tell every worker's cache that the original changed (a tombstone: it reloads the entry),
   queue a CDN purge of its URLs, then remove the old file (``storage.delete_file``: its own
   tombstone first). A request streaming the old file meanwhile finishes or is answered again
   from the reloaded entry.

A crash after 1 leaves the old file listed and served under a renamed key (the next run finds
the variant still stale and does it again); after 2, an unlisted file the next run (or gc)
removes; after 3, an unlisted old file gc collects. Runs under the ops lock of the job
(avenue/ops/rerender.py), one at a time; a concurrent upload's pending render or fsck repair
of the same image is closed by the conditional switch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database

from avenue.media import effects
from avenue.media.core import Media
from avenue.media.effects import Changes, Tombstone
from avenue.media.ingest import pipeline
from avenue.media.ingest.edits import og_box
from avenue.media.ingest.focal import CENTRE, FocalPoint
from avenue.media.ingest.variants import VARIANTS, recipe
from avenue.media.records import Document, images, is_image, variant_key
from avenue.media.store import pending, storage
from avenue.media.store.replace import read_original

#: Called after a new file is stored and before the original is switched to it (tests pause there).
BeforeSwitch = Callable[[str, str], None]


@dataclass(frozen=True)
class Stale:
    """One listed variant made with other settings than today's."""

    name: str
    format: str
    id: Any
    recipe: str | None  # what made it (None: made before recipes were recorded)
    wanted: str  # what would make it now


def stale_of(doc: Document) -> list[Stale]:
    """The stale variants an image's record lists (see the module doc)."""
    if not is_image(doc):
        return []
    meta = doc.get("metadata") or {}
    found = []
    for name, formats in (meta.get("variants") or {}).items():
        if name not in VARIANTS or not isinstance(formats, dict):
            continue
        for fmt, info in formats.items():
            if not isinstance(info, dict) or pending.is_pending(info):
                continue
            wanted = recipe(name, fmt)
            if info.get("recipe") != wanted:
                found.append(Stale(name, fmt, info["id"], info.get("recipe"), wanted))
    return found


def rerender(db: Database[Document], bucket: str, doc: Document, media: Media, *,
             before_switch: BeforeSwitch | None = None) -> list[dict[str, Any]]:
    """Render the stale variants of the original ``doc`` again (within the decode budget of
    ``media``, the app's) and switch to them (the module doc's steps); one
    ``{"variant", "format", "id", "old_id"}`` per variant switched."""
    stale = stale_of(doc)
    if not stale:
        return []
    files = db[f"{bucket}.files"]
    meta = doc.get("metadata") or {}
    version = meta.get("version") or ""
    focal = FocalPoint.from_metadata(meta.get("focal_point")) or CENTRE
    old = {(item.name, item.format): item for item in stale}
    rendered = pipeline.render_stored(read_original(db, bucket, doc), focal, only=frozenset(old),
                                      settings=media.settings, og_box=og_box(meta))
    done: list[dict[str, Any]] = []
    for rendition in rendered:
        item = old[(rendition.name, rendition.format)]
        key = variant_key(doc["_id"], rendition.name, rendition.format, version)
        # 1. The key freed; the old file stays listed and served by its id.
        files.update_one({"_id": item.id, "metadata.key": key},
                         {"$set": {"metadata.key": f"{key}~{item.id}"}})
        strays = [found["_id"] for found in files.find({"metadata.key": key}, {"_id": 1})
                  if found["_id"] != item.id]
        if strays:
            storage.delete_counted(db, bucket, strays)
        # 2. The new file, chunks first.
        new, entry = pending.variant_file(doc["_id"], rendition, version=version)
        _, changes = storage.put_files(db, bucket, [new])
        if before_switch is not None:
            before_switch(rendition.name, rendition.format)
        # 3. One conditional switch.
        field = f"metadata.variants.{rendition.name}.{rendition.format}"
        switched = images(db, bucket).find_one_and_update(
            {"_id": doc["_id"], f"{field}.id": item.id}, {"$set": {field: entry}},
            return_document=ReturnDocument.AFTER)
        if switched is None:
            storage.remove_files(db, bucket, [new.file_id])  # never listed, never counted
            continue
        # 4. Counted; every worker reloads the original; the old file goes.
        effects.apply(db, changes + Changes(tombstones=[Tombstone(bucket, [doc["_id"]])],
                                            purged=[(bucket, switched)]), media.purges)
        storage.delete_file(db, bucket, item.id)
        done.append({"variant": rendition.name, "format": rendition.format, "id": str(new.file_id),
                     "old_id": str(item.id)})
    return done
