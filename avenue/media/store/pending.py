"""Variants an original lists before they exist: rendered right after the upload's answer,
or by their first request, whichever comes first, once.

An upload answers once the original is validated, stripped, decoded and stored with what the
answer shows (avenue/media/store/originals.py): its focal point, its placeholder (from the
WebP thumb, the one variant rendered before the answer) and every other variant's id, size
and format, *pending*: ``metadata.variants.<name>.<format>`` is
``{"id", "pending": True, "content_type", "width", "height"}``. That ``id`` is a placeholder
no file is ever written under (what is listed and deleted by id stays one shape): the file
gets a fresh id, listed once it is written, so two renderers (a lapsed claim taken over)
never write chunks under one id, and the second one's write hits the unique
``metadata.key`` and takes back only its own files. The variant URLs name the image and the
variant, never a file id, so the answer's URLs stay right.
Then :func:`complete` renders them, from the stored original, around the stored focal point,
with the same code as at upload (``pipeline.render_stored`` with ``only``: byte for byte the
variants an upload used to render before answering):

- **after the answer**: the store hands :func:`complete_later` the images it wrote and the app's
  :class:`~avenue.media.core.Media`, whose Flask side (``serve/route.py``) runs it once the
  answer is sent, on a thread of ``avenue/background.py`` (outside a request, a CLI command,
  or with no app, ``Media()``, it runs at once);
- **on the first request**: a GET of a pending variant (the front door and the event loop
  never answer one: they fall through to the route) calls :func:`complete` and serves the
  bytes it stored: never a 404, never a stand-in;
- **after a crash** (a worker gone between storing and rendering): the first GET renders
  them, and ``fsck --repair`` does (fsck reports them as the state ``pending_variant``, not
  as a fault; gc counts them as listed, never as orphans).

The variants share their original's lifetime. An image deleted (gc, a delete, a move to the
trash) or replaced before its render lists them keeps no file of it: the render's listing
(step 3) matches nothing, and it removes what it wrote; a delete that read the original before
the listing looks for the files naming it again once the original is gone
(``originals.delete_image``). An image moved to the trash before its render keeps its pending
entries there, as they are: the trash is not served and nothing renders in it (fsck reports
them as a state); restored, the image is back with them pending, and its first GET or
``fsck --repair`` renders them.

One render per image across workers and instances: the claim is a :class:`avenue.leases.Lease`
in the renditions on request's claims (``media_rendition_claims``, key
``variants/<bucket>/<id>``), renewed while its render runs and lapsing
``renditions.CLAIM_SECONDS`` after its holder stopped renewing it (died). Whoever takes it
renders every pending variant of the image at once (one decode); the others (a GET) wait
until the variant they want is listed, bounded by ``wait`` (then 503, as a rendition on
request), as :mod:`avenue.media.store.claims` waits (an event in the claimant's process, a
poll with backoff from another); the background render does not wait: whoever holds the
claim finishes.

Write order (see also originals.py):

1. take the claim; read the original again (someone may have finished meanwhile);
2. a pending variant whose files document exists already (found by its unique
   ``metadata.key``: a renderer that died between 2 and 3) is listed as it is; the others are
   rendered and written under fresh ids, chunks first and files documents last
   (``storage.put_files``; a duplicate key: someone else wrote them, and lists them), and
   counted at once, as every other writer counts its files (so whoever removes them, a
   delete of the image meanwhile included, takes them off the counters: counted only once
   listed, a delete that met them first took off files that were never on);
3. one update of the original lists them all, conditional on each still being pending under
   the placeholder read (the image may have been deleted, moved to the trash or replaced
   meanwhile: then the files written in 2, and those found there under its keys, are removed
   again and taken off the counters, but for any the image lists now; never served: nothing
   listed them);
4. evict the original from this worker's cache (another worker's cached copy
   still says pending, so it sends that variant's GET to the route, which finds it listed
   here and reloads it), release the claim.

A crash after 2 leaves variant files the original does not list yet: the next
:func:`complete` (a GET, fsck --repair) lists them by their key, or gc, which removes a
variant its original does not list once it is old, collects them and the next
:func:`complete` renders them again.
"""

from __future__ import annotations

import logging
import uuid
from hashlib import sha256
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from avenue.leases import Lease
from avenue.media import effects
from avenue.media.core import Media, MediaSettings
from avenue.media.effects import Changes
from avenue.media.ingest import pipeline
from avenue.media.ingest.edits import og_box
from avenue.media.ingest.focal import CENTRE, FocalPoint
from avenue.media.ingest.variants import Planned, Rendition
from avenue.media.ingest.variants import recipe as variant_recipe
from avenue.media.records import Document, bytes_of, images, is_image, variant_ids, variant_key
from avenue.media.store import claims, storage, undrawable
from avenue.media.store.renditions import CLAIM_SECONDS, CLAIMS, WAIT_SECONDS

log = logging.getLogger(__name__)

def pending_entry(planned: Planned) -> dict[str, Any]:
    """What an original lists for a variant not rendered yet: a placeholder id (no file is
    written under it: see the module doc), its size and type (what the answer shows)."""
    return {"id": ObjectId(), "pending": True, "content_type": planned.content_type,
            "width": planned.width, "height": planned.height}


def is_pending(info: dict[str, Any]) -> bool:
    """Whether a listed variant has no file yet."""
    return bool(info.get("pending"))


def pending_of(doc: Document | None) -> list[tuple[str, str, dict[str, Any]]]:
    """The variants an image's record lists as pending: (name, format, entry)."""
    listed = ((doc or {}).get("metadata") or {}).get("variants") or {}
    return [(name, fmt, info) for name, formats in listed.items() for fmt, info in formats.items()
            if isinstance(info, dict) and is_pending(info)]


def variant_file(original_id: ObjectId, rendition: Rendition, file_id: ObjectId | None = None,
                 version: str = "") -> tuple[storage.NewFile, dict[str, Any]]:
    """A rendition as a variant file of ``original_id``, and the entry the original lists
    under ``metadata.variants.<name>.<format>``."""
    digest = sha256(rendition.data).hexdigest()
    new = storage.NewFile(
        rendition.data,
        f"{rendition.name}.{rendition.format}",
        {
            "role": "variant",
            "key": variant_key(original_id, rendition.name, rendition.format, version),
            "original_id": original_id,
            "variant": rendition.name,
            "format": rendition.format,
            "content_type": rendition.content_type,
            "sha256": digest,
            "width": rendition.width,
            "height": rendition.height,
            "recipe": variant_recipe(rendition.name, rendition.format),
        },
        file_id or ObjectId(),
    )
    return new, _entry(new.file_id, len(rendition.data), storage.CHUNK_SIZE, new.metadata)


def _entry(file_id: Any, length: int, chunk_size: int, meta: dict[str, Any]) -> dict[str, Any]:
    entry = {"id": file_id, "length": length, "chunk_size": chunk_size, "sha256": meta["sha256"],
             "content_type": meta["content_type"], "width": meta["width"], "height": meta["height"]}
    if meta.get("recipe"):  # what made it (variants.recipe): rerender finds the stale ones by it
        entry["recipe"] = meta["recipe"]
    return entry


def complete_later(db: Database[Document], bucket: str, ids: list[Any], media: Media) -> bool:
    """Have the pending variants of the originals ``ids`` rendered once the answer is out, as
    ``media`` runs what is left for then (:meth:`~avenue.media.core.Media.later`: the route's,
    after the answer with ``AVENUE_VARIANTS_AFTER_ANSWER`` on, right before it off, at once
    outside a request; see the module doc); True when that was at once (they are done)."""
    if not ids:
        return False

    def job() -> None:
        for image_id in ids:
            try:
                complete(db, bucket, image_id, media, wait=0)
            except Exception:  # noqa: BLE001 - logged; the first GET or fsck --repair renders it
                log.exception("rendering the pending variants of %s %s failed", bucket, image_id)

    return media.later(job)


def complete(db: Database[Document], bucket: str, image_id: Any, media: Media, *,
             want: tuple[str, str] | None = None, wait: float = WAIT_SECONDS,
             claim_seconds: float = CLAIM_SECONDS) -> Document | None:
    """The image's record once its pending variants (``want``: that one) are
    listed: rendered here under the claim, or by whoever holds it within ``wait`` seconds
    (:class:`~avenue.errors.ServerBusy` after that; ``wait=0``: return at once, the holder
    finishes). None when the image does not exist (any more). The render holds a render slot of
    ``media`` (:class:`~avenue.errors.ServerBusy` when none frees in time),
    taken under the claim, never while waiting for another's: no one waits for a claim while
    holding a slot. Decoded within the decode budget of ``media``'s settings. An
    SVG whose variants' draw ran past the deadline (:class:`~avenue.errors.SvgTooComplex`) is
    remembered and answered :class:`~avenue.errors.NotDrawable` from then on, without drawing
    (:mod:`avenue.media.store.undrawable`)."""
    records = images(db, bucket)
    doc = records.find_one({"_id": image_id})
    if not _waiting(doc, want):
        return doc
    assert doc is not None
    # An SVG whose variants' draw ran past the deadline before: answered at once, not drawn again.
    if undrawable.drawn(doc["metadata"].get("format") or ""):
        undrawable.check(db, _undrawable_key(bucket, doc))
    claim = Lease(db[CLAIMS], f"variants/{bucket}/{image_id}", uuid.uuid4().hex, claim_seconds)

    def look() -> tuple[bool, Document | None]:
        found = records.find_one({"_id": image_id})
        return not _waiting(found, want), found

    def work(found: Document | None) -> Document | None:
        with media.render_slot():
            return _render(db, bucket, found, media.settings)

    return claims.once(claim, look, work, wait=wait, thread_name="avenue-variants-claim",
                       busy="this image's variants are being rendered by another request: try again shortly")


def _undrawable_key(bucket: str, doc: Document) -> str:
    return undrawable.variants_key(bucket, doc["_id"], (doc.get("metadata") or {}).get("version") or "")


def _waiting(doc: Document | None, want: tuple[str, str] | None) -> bool:
    if not is_image(doc):
        return False
    return any(want is None or (name, fmt) == want for name, fmt, _ in pending_of(doc))


def _render(db: Database[Document], bucket: str, doc: Document | None,
            budget: MediaSettings) -> Document | None:
    """Steps 2-4 of the module doc, under the claim."""
    assert doc is not None
    files = db[f"{bucket}.files"]
    meta = doc["metadata"]
    version = meta.get("version") or ""
    todo = {variant_key(doc["_id"], name, fmt, version): (name, fmt) for name, fmt, _ in pending_of(doc)}
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    # Written by a renderer that died before listing them (the unique ``metadata.key``): as they are.
    for found in files.find({"metadata.key": {"$in": list(todo)}}):
        entries[todo[found["metadata"]["key"]]] = _entry(found["_id"], found["length"], found["chunkSize"],
                                                         found["metadata"])
    wanted = frozenset(pair for pair in todo.values() if pair not in entries)
    if wanted:
        focal = FocalPoint.from_metadata(meta.get("focal_point")) or CENTRE
        new_files = []
        try:
            drawn = pipeline.render_stored(_original_bytes(db, bucket, doc), focal, only=wanted,
                                           settings=budget, og_box=og_box(meta))
        except undrawable.FAILURES as error:
            raise undrawable.remember(db, _undrawable_key(bucket, doc), error) from error
        for rendition in drawn:
            new, entries[(rendition.name, rendition.format)] = variant_file(doc["_id"], rendition,
                                                                            version=version)
            new_files.append(new)
        try:
            _, written = storage.put_files(db, bucket, new_files)
        except (DuplicateKeyError, BulkWriteError) as error:
            if not storage.is_duplicate_key(error):
                raise
            # Another renderer (a lapsed claim taken over) stored them first; put_files took
            # back only this call's own files (fresh ids): the other one lists its own.
            return images(db, bucket).find_one({"_id": doc["_id"]})
        effects.apply(db, written)  # counted as written (step 2)
    # Each entry as it was read (its placeholder id): a replace meanwhile lists pending entries
    # of its own version under the same names, which this render's files are not.
    placeholders = {(name, fmt): info["id"] for name, fmt, info in pending_of(doc)}
    condition = {f"metadata.variants.{name}.{fmt}.id": placeholders[(name, fmt)] for name, fmt in entries}
    listed = images(db, bucket).find_one_and_update(
        {"_id": doc["_id"], **condition},
        {"$set": {f"metadata.variants.{name}.{fmt}": entry for (name, fmt), entry in entries.items()}},
        return_document=ReturnDocument.AFTER)
    if listed is None:
        return _disown(db, bucket, doc["_id"], [entry["id"] for entry in entries.values()])
    # This worker's cache reloads the original. No tombstone for the others: a worker whose
    # cached document still says pending sends that GET to the route, whose :func:`complete`
    # finds it listed at once and reloads it (a read, not a write per upload).
    effects.apply(db, Changes(evicted=[(bucket, [doc["_id"]])]))
    return listed


def _disown(db: Database[Document], bucket: str, image_id: Any, ids: list[Any]) -> Document | None:
    """Step 3 missed: the image was deleted, moved to the trash or replaced since it was read.
    The files this render wrote or found under its keys (``ids``) belong to no image: removed,
    never served (nothing listed them), and taken off the counters they were counted on when
    written (those a delete of the image removed first, it took off); except any the image
    lists now (a lapsed renderer listed what this one found)."""
    now = images(db, bucket).find_one({"_id": image_id})
    kept = set(variant_ids(now)) if now is not None else set()
    # One file a delete: a delete of the image may be removing the same files right now, and
    # only a delete of one file says exactly which of them this call took off the counters.
    for file_id in [file_id for file_id in ids if file_id not in kept]:
        storage.delete_counted(db, bucket, [file_id], holder=image_id)
    return now


def _original_bytes(db: Database[Document], bucket: str, doc: Document) -> bytes:
    """The image's bytes: the file ``metadata.content`` names, else the one under its id, read by
    what the record says of it (no look-up of the file: a cold render's commands are counted)."""
    held = bytes_of(doc)
    return storage.read_whole(db, bucket, held.id, held.length, held.chunk_size)
