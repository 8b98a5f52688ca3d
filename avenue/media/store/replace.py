"""Replace in place: new bytes, a new focal point, new edits or named crops for an image that
keeps its id.

Products, pages and ``used_in`` refer to images by id, so a replace keeps the id and every
reference; but every media URL is served as ``immutable``, so the URLs must change with the
bytes. The image gets a *version* (8 hex digits of the new bytes' SHA-256 and focal point),
and its URLs carry it: ``/media/<alias>/<id>~<version>[.<ext>|/<variant>]``. The URLs of the
versions before it answer ``308`` to the same thing in the current version until
``AVENUE_REPLACED_REDIRECT_DAYS`` have passed (then ``404``), and the CDN purge hook is told
about them at once (media/effects/purge.py).

Layout. The image's record (``<bucket>.images``, ``_id`` = the image id: records.py) is not a
GridFS file; its bytes are one, in ``<bucket>.files``, shaped like a variant (``role: variant``,
``variant: original``, ``original_id``): at upload the file under the image's own id, and once
changed the file ``metadata.content`` names. No file's chunks are ever rewritten (a reader
streaming one must never see a mix of two versions): a change writes its bytes as a new file
and switches the record to it; the variants are new files too. ``metadata.versions`` lists the
earlier versions whose URLs redirect, with until when.

Read without the app (docs/operations.md, "Reading an image's bytes without the app"): the
current bytes of image ``<id>`` are the file ``metadata.content.id`` names when its record has
it, else the file ``<id>``; every one of them a whole GridFS file that stock tools read. The
record's ``length`` and ``chunkSize`` stay those of its bytes, so a listing shows its size and a
read goes by the record alone (:func:`read_original`). Why a new file for each version, rather
than the bytes always under the image's id: (1) rewriting that file's chunks in place is the
very mix of two versions this layout exists to prevent; (2) writing each version's bytes twice
(a new file, then over the old one) costs about half again a replace's time on the embedded
database (docs/performance.md, "Measurements behind the code"), and an undo of edits writes no
bytes at all.

Order, so that a crash never leaves a half-replaced image (readers see the old version or the
new one, whole):

1. outside any lease: validate, decode and render the new bytes' WebP thumb, the others
   planned (a bad file changes nothing);
2. take the replace lease (``metadata.replacing_at``, compare-and-set together with the delete
   lease: a delete and a replace of one image never run at once; one of them is told 409);
3. write the new bytes' file and the new variants (a crash: files no record lists, that
   point at an existing original: ``gc`` removes them, as does the next delete of the image);
4. copy the old version into the trash under an id of its own (restorable as a separate image,
   or onto its product again; purged by ``gc`` after ``AVENUE_TRASH_DAYS``);
5. switch the record to the new version (one update, conditional on still holding the lease:
   this is the moment the image changes), which also releases the lease; the same update
   lists the version it replaces in ``metadata.history`` (store/history.py: its recipe and,
   for new bytes, the trash copy of step 4), so an earlier version is listed exactly when the
   switch happened;
6. delete the old version's files, tell every worker's cache, queue the CDN purge;
7. delete the renditions on request of every other version (never served since 5: a
   rendition URL must name the current version; a crash before this step leaves them to
   ``gc``);
8. the new version's other variants, listed as pending at 5, are rendered after the answer
   or by their first GET (store/pending.py), as an upload's are: a render of an earlier
   version cut across by this replace lists nothing (its update names the pending entries
   it found) and takes its files back.

Edits (avenue/media/ingest/edits.py) are a change of the same kind, without new bytes: the
edited picture is rendered in step 1 from the *source*, the unedited original's bytes, and
written in step 3 as the record's content file; the source is listed among the record's
variants (``metadata.variants.source``: found, moved to the trash, restored, deleted and checked
by gc and fsck like any variant) and never removed while the image is edited. The first edit of
an image whose bytes are still the upload's file (under the image's id) copies them into a
source file in step 3 and removes that file in step 6, as a first replace does (a file
``variant: source`` then, not one more ``original``); a changed image's content file becomes the
source as it is. Undoing the edits makes the source the content file again (nothing written but
the variants). Nothing goes to the trash for an edit: the original
stays. A replace with new bytes drops the edits and the source (the version it replaces, edits
and source included, goes to the trash whole). Named crops (``metadata.crops``) and the edits
are part of the version, so every URL changes with them.

A restore (:func:`restore`, store/versions.py) is a change of the same kind: an earlier
version's recipe (its bytes, from the image or its trash copy, its edits, focal point and
crops) rendered in step 1 and switched to by steps 2 to 8 like any other, so it is a new
current version under the same lease, and the version it replaces is listed in turn.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace
from hashlib import sha256
from typing import Any, BinaryIO

from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from avenue.clock import maybe_utc, now
from avenue.errors import Conflict
from avenue.leases import held, stamp, unstamp
from avenue.media import effects
from avenue.media.core import Media, MediaSettings
from avenue.media.effects import Changes, Tombstone
from avenue.media.ingest import edits as editing
from avenue.media.ingest import pipeline
from avenue.media.ingest.edits import Box, Edits
from avenue.media.ingest.focal import FocalPoint
from avenue.media.ingest.images import Limits, sanitize_filename
from avenue.media.ingest.pipeline import Ingested
from avenue.media.ingest.variants import VARIANT_NAMES
from avenue.media.records import SOURCE, Document, bytes_of, images, is_image, variant_ids, variant_key
from avenue.media.store import history, near_duplicates, pending, renditions, storage, trash
from avenue.media.store.originals import bytes_metadata, dedupe_key, name_prefixes
from avenue.media.store.pending import variant_file

# A replace holds the image this long at most (a crashed replace frees it after this).
REPLACE_LEASE = dt.timedelta(seconds=120)
# Earlier versions whose URLs redirect, at most (the oldest are dropped first).
MAX_VERSIONS = 20


class ImageBusy(Conflict):
    """Another replace or a delete of this image is under way."""

    code = "image_busy"

    def __init__(self) -> None:
        super().__init__("This image is being replaced or deleted right now; try again in a moment.")


class DuplicateImage(Conflict):
    """The new bytes are already another image of this bucket (dedupe keeps one copy)."""

    code = "duplicate_image"

    def __init__(self, other: Any) -> None:
        super().__init__("These bytes are already stored as another image; use that one, or delete it "
                         "first.", image_id=str(other))


@dataclass(frozen=True)
class Replaced:
    """A replace's outcome: the record as it is now, and whether anything changed."""

    doc: dict[str, Any]
    changed: bool


def bytes_doc(db: Database[Document], bucket: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The files document holding an image's bytes: the file its record's ``metadata.content``
    names, else the file under the image's own id (``records.bytes_of``)."""
    file_id = bytes_of(doc).id
    found = db[f"{bucket}.files"].find_one({"_id": file_id})
    if found is None:
        raise OSError(f"{bucket} {doc['_id']}: the file holding its bytes ({file_id}) is missing")
    return found


def read_original(db: Database[Document], bucket: str, doc: dict[str, Any]) -> bytes:
    """An image's bytes, read by what its record says of them (the file, its length and chunk
    size): no look-up of the file first, so a cold render stays within its database commands."""
    held = bytes_of(doc)
    return storage.read_whole(db, bucket, held.id, held.length, held.chunk_size)


def version_of(source_sha256: str, focal: FocalPoint | None, edits: Edits | None = None,
               crops: dict[str, Box] | None = None) -> str:
    """The version a replace gives: the same bytes cut around the same point, with the same
    edits and named crops, are the same version (replacing an image with itself changes
    nothing)."""
    point = focal or FocalPoint()
    extra = "" if edits is None else f":{edits.signature()}"
    if crops:
        extra += ":" + ";".join(f"{name}={box.x:.6f},{box.y:.6f},{box.width:.6f},{box.height:.6f}"
                                for name, box in sorted(crops.items()))
    return sha256(f"{source_sha256}:{point.x:.4f}:{point.y:.4f}{extra}".encode()).hexdigest()[:8]


def _current_version(meta: dict[str, Any]) -> str:
    """The version an original is at: the one it was given, or for one never replaced the
    version its own bytes and focal point would have (replacing it with itself is no change)."""
    return meta.get("version") or version_of(meta.get("source_sha256", ""),
                                             FocalPoint.from_metadata(meta.get("focal_point")),
                                             Edits.from_metadata(meta.get("edits")),
                                             editing.stored_crops(meta.get("crops")))


def current_version(meta: dict[str, Any]) -> str:
    """The version an original is at (never replaced: the one its own bytes would have)."""
    return _current_version(meta)


def source_entry(meta: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(format, entry) of the unedited original an edited image lists, or None."""
    formats = (meta.get("variants") or {}).get(SOURCE) or {}
    return next(iter(formats.items()), None)


def source_doc(db: Database[Document], bucket: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The files document holding the unedited original's bytes: the source an edited image
    lists, else the bytes it serves."""
    found = source_entry(doc.get("metadata") or {})
    if found is None:
        return bytes_doc(db, bucket, doc)
    source = db[f"{bucket}.files"].find_one({"_id": found[1]["id"]})
    if source is None:
        raise OSError(f"{bucket} {doc['_id']}: the file holding its original ({found[1]['id']}) is missing")
    return source


def _take_lease(db: Database[Document], bucket: str, doc: dict[str, Any], lease_for_deletes: dt.timedelta
                ) -> dt.datetime:
    meta = doc["metadata"]
    moment = now()
    seen_delete, seen_replace = meta.get("deleting_at"), meta.get("replacing_at")
    if held(seen_delete, lease_for_deletes, moment) or held(seen_replace, REPLACE_LEASE, moment):
        raise ImageBusy()
    if not stamp(images(db, bucket), doc["_id"], "metadata.replacing_at",
                 {"metadata.deleting_at": seen_delete, "metadata.replacing_at": seen_replace}, moment):
        raise ImageBusy()
    return moment


def _release(db: Database[Document], bucket: str, image_id: Any, at: dt.datetime) -> None:
    unstamp(images(db, bucket), image_id, "metadata.replacing_at", at)


def _versions_after(meta: dict[str, Any], new_version: str, until: dt.datetime,
                    moment: dt.datetime) -> list[dict[str, Any]]:
    """The redirecting versions once ``new_version`` is current: the one it replaces added,
    expired ones and the new one itself (replaced back) dropped."""
    kept = [entry for entry in meta.get("versions") or []
            if entry.get("v") not in (new_version, meta.get("version") or "")
            and (maybe_utc(entry.get("until")) or moment) > moment]
    if until > moment:
        kept.append({"v": meta.get("version") or "", "until": until})
    return kept[-MAX_VERSIONS:]


# --- the four changes: each reads the image, prepares its new version and hands it to _apply ---


def replace_bytes(db: Database[Document], bucket: str, image_id: ObjectId, data: bytes | BinaryIO, *,
                  filename: str | None = None, focal: FocalPoint | None = None, limits: Limits | None = None,
                  refs: dict[str, Any] | None = None, delete_lease: dt.timedelta,
                  media: Media) -> Replaced | None:
    """Give the original ``image_id`` new bytes (``data``, validated as an upload), cut around
    ``focal`` (else found again); its edits are dropped, its named crops kept. None when it does
    not exist; ``ImageBusy`` while a delete or another replace holds it; ``DuplicateImage``
    when the bytes are another image of the bucket; the upload's own error when they are not an
    image this app takes. ``refs``: what the old version keeps in the trash (e.g. the sku);
    ``media``: the app's (how long its URLs redirect; it renders the new pending variants)."""
    doc = _head(db, bucket, image_id)
    if doc is None:
        return None
    meta = doc["metadata"]
    crops = editing.stored_crops(meta.get("crops"))
    ingested = _ingest(pipeline.read(data, limits or Limits()), limits or Limits(), focal, crops)
    source_sha256 = ingested.prepared.source_sha256
    scope = (meta.get("key") or "").rpartition(":")[0]
    return _apply(db, bucket, doc, _Plan(
        ingested, version_of(source_sha256, ingested.focal, None, crops), dedupe_key(source_sha256, scope),
        source_sha256, edits=None, crops=crops, new_bytes=True, filename=filename),
        refs=refs, delete_lease=delete_lease, media=media)


def refocus(db: Database[Document], bucket: str, image_id: ObjectId, focal: FocalPoint | None, *,
            limits: Limits | None = None, refs: dict[str, Any] | None = None, delete_lease: dt.timedelta,
            media: Media) -> Replaced | None:
    """Cut the image's variants around a new ``focal`` point (None: the one it has), its bytes,
    edits and crops as they are. None when it does not exist; ``ImageBusy`` as above."""
    doc = _head(db, bucket, image_id)
    if doc is None:
        return None
    meta = doc["metadata"]
    return _rerender(db, bucket, doc, focal=focal, edits=Edits.from_metadata(meta.get("edits")),
                     crops=editing.stored_crops(meta.get("crops")), limits=limits, checked=False,
                     refs=refs, delete_lease=delete_lease, media=media)


def edit(db: Database[Document], bucket: str, image_id: ObjectId, edits: Edits | None, *,
         refs: dict[str, Any] | None = None, delete_lease: dt.timedelta,
         media: Media) -> Replaced | None:
    """Apply ``edits`` to the image's unedited original (None, or no edit: back to it); its focal
    point follows the picture, its crops stay. ``InvalidEdits`` when they do not fit it."""
    doc = _head(db, bucket, image_id)
    if doc is None:
        return None
    return _rerender(db, bucket, doc, focal=None, edits=None if edits is None or edits.none else edits,
                     crops=editing.stored_crops(doc["metadata"].get("crops")), limits=None, checked=True,
                     refs=refs, delete_lease=delete_lease, media=media)


def set_crops(db: Database[Document], bucket: str, image_id: ObjectId, crops: dict[str, Box], *,
              refs: dict[str, Any] | None = None, delete_lease: dt.timedelta,
              media: Media) -> Replaced | None:
    """Give the image these named ``crops`` (all of them: the og variant is cut inside ``og``)."""
    doc = _head(db, bucket, image_id)
    if doc is None:
        return None
    return _rerender(db, bucket, doc, focal=None, edits=Edits.from_metadata(doc["metadata"].get("edits")),
                     crops=crops, limits=None, checked=True, refs=refs, delete_lease=delete_lease,
                     media=media)


@dataclass(frozen=True)
class _Plan:
    """A new version, rendered (step 1) and not yet written: what the switch needs."""

    ingested: Ingested
    version: str
    key: Any  # the dedupe key the record will have
    source_sha256: str
    edits: Edits | None
    crops: dict[str, Box]
    new_bytes: bool  # new bytes, or the stored ones rendered again (focal, edits, crops)
    filename: str | None = None
    source: dict[str, Any] | None = None  # the unedited original's file, when the edits change
    original: bytes | None = None  # its bytes
    checked: bool = False  # the version it was rendered from is checked again under the lease
    restored_from: str | None = None  # a restore: the earlier version it brings back
    # A restore whose bytes another image of the bucket holds: that image's bytes file, as the
    # record's ``metadata.content`` will name it (shared by reference: storage.hold).
    shared: dict[str, Any] | None = None


def _head(db: Database[Document], bucket: str, image_id: ObjectId) -> dict[str, Any] | None:
    doc = images(db, bucket).find_one({"_id": image_id})
    return doc if is_image(doc) else None


def _ingest(raw: bytes, limits: Limits, focal: FocalPoint | None, crops: dict[str, Box]) -> Ingested:
    """As an upload: the WebP thumb (the placeholder's source) now, the other variants listed as
    pending and rendered once the answer is out (store/pending.py), after the switch; the og
    variant is cut inside the image's crop named og."""
    og = crops.get("og")
    box = None if og is None else (og.x, og.y, og.width, og.height)
    return pipeline.ingest_for_answer(raw, limits, focal, box)


def _stored_limits(size: int, limits: Limits | None, media: Media) -> Limits:
    """What a new version made of stored bytes (``size`` of them) is decoded with before the
    answer: as stored, within the decode budget of ``limits`` when given, else the app's
    (``media.settings``), the one its edit and its variants after the answer reserve in. A
    budget of another size is another ledger: with ``Limits()``'s default there, an edit's
    answer decoded its 40 MP picture beside another worker's edit holding the app's budget."""
    if limits is None:
        return pipeline.stored_limits(size, media.settings)
    return Limits.for_stored(size, limits.decode_budget_bytes, limits.decode_wait_seconds,
                             media.settings.disabled_formats, svg_draw_seconds=limits.svg_draw_seconds)


def _rerender(db: Database[Document], bucket: str, doc: dict[str, Any], *, focal: FocalPoint | None,
              edits: Edits | None, crops: dict[str, Box], limits: Limits | None, checked: bool,
              refs: dict[str, Any] | None, delete_lease: dt.timedelta, media: Media,
              restored_from: str | None = None) -> Replaced | None:
    """The stored bytes rendered again: around ``focal`` (None: the current point, carried
    through a change of edits), with ``edits`` applied to the unedited original, and ``crops``.
    They are the upload *after* stripping, so the image keeps the identity (``source_sha256``,
    dedupe key) of the upload it came from, not a hash of what is stored."""
    meta = doc["metadata"]
    old_edits = Edits.from_metadata(meta.get("edits"))
    if focal is None:  # kept: as a point of the picture the new edits make
        current = FocalPoint.from_metadata(meta.get("focal_point"))
        focal = current if current is None or edits == old_edits else \
            editing.to_edited(editing.to_original(current, old_edits), edits)
    source: dict[str, Any] | None = None
    original: bytes | None = None
    if edits != old_edits:
        source = source_doc(db, bucket, doc)
        original = storage.read_all(db, bucket, source)
        raw = original if edits is None else \
            editing.apply(original, edits, pipeline.stored_limits(len(original), media.settings))
    else:
        raw = read_original(db, bucket, doc)
    ingested = _ingest(raw, _stored_limits(len(raw), limits, media), focal, crops)
    source_sha256 = meta.get("source_sha256", "")
    return _apply(db, bucket, doc, _Plan(
        ingested, version_of(source_sha256, ingested.focal, edits, crops), meta.get("key"), source_sha256,
        edits=edits, crops=crops, new_bytes=False, source=source, original=original, checked=checked,
        restored_from=restored_from), refs=refs, delete_lease=delete_lease, media=media)


def restore(db: Database[Document], bucket: str, doc: dict[str, Any], item: dict[str, Any], *,
            original: tuple[bytes, dict[str, Any]] | None, limits: Limits | None = None,
            refs: dict[str, Any] | None = None, delete_lease: dt.timedelta, media: Media
            ) -> Replaced | None:
    """Make the earlier version ``item`` (an entry of ``metadata.history``, store/history.py)
    of the record ``doc`` current again, as a new switch like any change: its focal point, edits
    and crops, and its bytes. ``original``: the bytes and files document of its unedited
    original when they are not the image's own (other bytes, kept in the trash), None when they
    are (rendered again as an edit would). The version it replaces is kept as an earlier one."""
    edits = Edits.from_metadata(item.get("edits"))
    crops = editing.stored_crops(item.get("crops"))
    focal = FocalPoint.from_metadata(item.get("focal_point"))
    if original is None:
        return _rerender(db, bucket, doc, focal=focal, edits=edits, crops=crops, limits=limits, checked=True,
                         refs=refs, delete_lease=delete_lease, media=media, restored_from=item["v"])
    data, source = original
    raw = data if edits is None else \
        editing.apply(data, edits, pipeline.stored_limits(len(data), media.settings))
    ingested = _ingest(raw, _stored_limits(len(raw), limits, media), focal, crops)
    source_sha256 = str(item.get("source_sha256") or "")
    scope = (doc["metadata"].get("key") or "").rpartition(":")[0]
    plan = _Plan(
        ingested, version_of(source_sha256, ingested.focal, edits, crops), dedupe_key(source_sha256, scope),
        source_sha256, edits=edits, crops=crops, new_bytes=True, filename=item.get("filename"),
        source=None if edits is None else source, original=None if edits is None else data, checked=True,
        restored_from=item["v"])
    try:
        return _apply(db, bucket, doc, plan, refs=refs, delete_lease=delete_lease, media=media)
    except DuplicateImage:  # those bytes uploaded as another image this very moment: shared then
        again = _head(db, bucket, doc["_id"])
        if again is None:
            return None
        return _apply(db, bucket, again, plan, refs=refs, delete_lease=delete_lease, media=media)


# --- the version switch every change shares: steps 2 to 8 of the module's order ---


@dataclass(frozen=True)
class _Staged:
    """What a plan writes, decided under the lease from the record as it is then."""

    files: list[storage.NewFile]
    variants: dict[str, dict[str, Any]]
    name: str
    same_bytes: bool  # the bytes stay where they are (a new focal point or crops)
    edit_change: bool  # the edits change: the original stays, as the source
    content_id: Any
    content: dict[str, Any] | None  # the content file when it is one already stored (edits undone)
    keep_source: dict[str, Any] | None  # the source entry the new version lists


def _apply(db: Database[Document], bucket: str, doc: dict[str, Any], plan: _Plan, *,
           refs: dict[str, Any] | None, delete_lease: dt.timedelta, media: Media) -> Replaced:
    """Switch the image to ``plan``'s version: nothing when it is the current one; else under
    the replace lease write its files, keep the old version in the trash, switch the record,
    and after the switch remove the old version's files."""
    records, image_id = images(db, bucket), doc["_id"]
    if plan.version == _current_version(doc["metadata"]):
        return Replaced(doc, False)  # the same bytes, cut the same way: nothing to do
    other = records.find_one({"metadata.key": plan.key}, _OTHER)
    if other is not None and other["_id"] != image_id:
        if plan.restored_from is None:
            raise DuplicateImage(other["_id"])
        plan = _sharing(plan, image_id, other)
    lease = _take_lease(db, bucket, doc, delete_lease)
    new_ids: list[Any] = []
    trashed_id: ObjectId | None = None
    held: Any = None
    try:
        seen_version = _current_version(doc["metadata"])
        doc = records.find_one({"_id": image_id}) or doc  # as it is under the lease
        if plan.checked and _current_version(doc["metadata"]) != seen_version:
            raise ImageBusy()  # edited since this call read it: what it rendered is out of date
        if plan.shared is not None:
            if storage.hold(db, bucket, plan.shared["id"], image_id):
                held = plan.shared["id"]
            else:  # its holder let go of it meanwhile: the restore writes the bytes itself
                plan = dataclass_replace(plan, shared=None)
        old_bytes = bytes_doc(db, bucket, doc)
        _remove_strays(db, bucket, doc, plan.version)
        staged = _stage(doc, plan)
        new_ids = [f.file_id for f in staged.files]
        storage.write_files(db, bucket, staged.files)
        trashed_id = None if staged.same_bytes or staged.edit_change else trash.keep_version(
            db, bucket, doc, old_bytes, refs={**(refs or {}), "replaced_in": str(image_id)},
            keep_days=media.settings.trash_days)
        _switch(db, bucket, doc, plan, staged, lease, media.settings, old_length=old_bytes["length"],
                trashed_id=trashed_id)
    except BaseException:
        # Nothing switched: what this call wrote goes (new files, the copy in the trash).
        if new_ids:
            storage.delete_counted(db, bucket, new_ids)
        if trashed_id is not None:
            trash.purge(db, {"_id": trashed_id, "metadata": {}})
        if held is not None:
            storage.delete_counted(db, bucket, [held], holder=image_id)
        _release(db, bucket, image_id, lease)
        raise
    _after_switch(db, bucket, doc, old_bytes, plan, staged, media)
    return Replaced(records.find_one({"_id": image_id}) or doc, True)


# What a record holding a plan's dedupe key is read with: its bytes, to share them.
_OTHER = {"_id": 1, "length": 1, "chunkSize": 1, "metadata.content": 1, "metadata.sha256": 1}


def _sharing(plan: _Plan, image_id: Any, other: dict[str, Any]) -> _Plan:
    """A restore of bytes the image ``other`` holds (the same upload): it restores all the
    same. The record takes a dedupe key of its own (``<key>~<id>``: uploads of those bytes
    still find ``other``), and when the version is those very bytes, unedited, it points at
    ``other``'s bytes file rather than writing them again (one file for one picture)."""
    plan = dataclass_replace(plan, key=f"{plan.key}~{image_id}")
    prepared = plan.ingested.prepared
    if plan.edits is not None or (other.get("metadata") or {}).get("sha256") != prepared.sha256:
        return plan  # another picture from the same upload (edited): bytes of its own
    return dataclass_replace(plan, shared=bytes_of(other).content(prepared.sha256))


def _remove_strays(db: Database[Document], bucket: str, doc: dict[str, Any], version: str) -> None:
    """Files of this version left by a replace that crashed half way (same keys)."""
    listed = set(variant_ids(doc))
    for stray in db[f"{bucket}.files"].find({"metadata.original_id": doc["_id"]}, {"metadata.key": 1}):
        if str((stray.get("metadata") or {}).get("key", "")).startswith(f"{doc['_id']}~{version}/") \
                and stray["_id"] not in listed:
            storage.delete_counted(db, bucket, [stray["_id"]], holder=doc["_id"])


def _stage(doc: dict[str, Any], plan: _Plan) -> _Staged:
    """The files ``plan`` writes and the variants the record will list. The same bytes (a new
    focal point or crops) stay where they are and nothing goes to the trash (it would be a copy
    of what stays); edits keep the original too, as the source. New bytes equal to an edited
    image's original are new bytes all the same: the edited picture and its source give way."""
    meta, image_id, prepared = doc["metadata"], doc["_id"], plan.ingested.prepared
    edit_change = not plan.new_bytes and plan.source is not None
    was_edited = Edits.from_metadata(meta.get("edits")) is not None or source_entry(meta) is not None
    same_bytes = not edit_change and (not plan.new_bytes or (plan.source_sha256 == meta.get("source_sha256")
                                                             and not was_edited))
    name = prepared_name(plan.filename, meta, prepared.format)
    content_id: Any = ObjectId()
    content: dict[str, Any] | None = None
    keep_source: dict[str, Any] | None = None
    new_source: storage.NewFile | None = None
    source = plan.source
    if plan.shared is not None:  # a restore of bytes another image holds: its file
        content = dict(plan.shared)
    elif edit_change and source is not None:
        if plan.edits is None:  # undone: the original's file holds the bytes again
            content_id = source["_id"]
            content = {"id": source["_id"], "length": source["length"], "chunk_size": source["chunkSize"],
                       "sha256": (source.get("metadata") or {}).get("sha256", prepared.sha256)}
        elif source["_id"] == image_id:  # the upload's bytes' file: copied into a source file
            new_source = _source_file(image_id, plan.version, plan.original or b"", source)
            keep_source = _entry(new_source.file_id, len(plan.original or b""), new_source.metadata)
        else:
            keep_source = _entry(source["_id"], source["length"], source.get("metadata") or {},
                                 source["chunkSize"])
    elif not plan.new_bytes:
        found = source_entry(meta)
        keep_source = None if found is None else found[1]
    elif plan.edits is not None and plan.original is not None and source is not None:
        # A restore of an edited version of other bytes: its unedited original as the source.
        new_source = _source_file(image_id, plan.version, plan.original, source)
        keep_source = _entry(new_source.file_id, len(plan.original), new_source.metadata)
    new_files, variants = _version_files(image_id, plan.ingested, plan.version,
                                         None if same_bytes or content is not None else content_id, name)
    if new_source is not None:
        new_files.insert(0, new_source)
    if keep_source is not None:
        variants[SOURCE] = {str(keep_source.get("format") or prepared.format.lower()):
                            {k: v for k, v in keep_source.items() if k != "format"}}
    return _Staged(new_files, variants, name, same_bytes, edit_change, content_id, content, keep_source)


def _switch(db: Database[Document], bucket: str, doc: dict[str, Any], plan: _Plan, staged: _Staged,
            lease: dt.datetime, settings: MediaSettings, *, old_length: int, trashed_id: ObjectId | None
            ) -> None:
    """Step 5: the record switched to the new version in one update, conditional on still holding
    the lease (this is the moment the image changes), which also releases the lease. The same
    update lists the version it replaces among the earlier ones (store/history.py)."""
    meta = doc["metadata"]
    moment = now()
    old = None if settings.trash_days <= 0 else history.entry(
        meta, _current_version(meta), since=maybe_utc(meta.get("replaced_at")) or maybe_utc(doc["uploadDate"])
        or moment, moment=moment, keep_days=settings.trash_days, length=old_length)
    until = moment + dt.timedelta(days=settings.redirect_days)
    changes = _head_update(meta, plan.ingested, version=plan.version, key=plan.key,
                           source_sha256=plan.source_sha256,
                           content_id=None if staged.same_bytes else staged.content_id,
                           variants=staged.variants,
                           versions=_versions_after(meta, plan.version, until, moment), moment=moment,
                           name=staged.name if plan.filename else None, content=staged.content)
    unset: dict[str, str] = {"metadata.replacing_at": ""}
    crops_kept = {n: b.as_metadata() for n, b in sorted(plan.crops.items())} or None
    for field_name, value in (("edits", None if plan.edits is None else plan.edits.as_metadata()),
                              ("crops", crops_kept)):
        if value is None:
            unset[f"metadata.{field_name}"] = ""
        else:
            changes[f"metadata.{field_name}"] = value
    focal = plan.ingested.focal
    changes["metadata.changed"] = history.changed(meta, {
        "source_sha256": plan.source_sha256, "crops": crops_kept,
        "edits": None if plan.edits is None else plan.edits.as_metadata(),
        "focal_point": focal.as_metadata() if focal is not None else meta.get("focal_point")}) or ["bytes"]
    changes["metadata.history"] = history.after_switch(meta, old, plan.version, moment, trash_id=trashed_id)
    if plan.restored_from is None:
        unset["metadata.restored_from"] = ""
    else:
        changes["metadata.restored_from"] = plan.restored_from
    records = images(db, bucket)
    try:
        switched = records.update_one({"_id": doc["_id"], "metadata.replacing_at": lease},
                                    {"$set": changes, "$unset": unset})
    except DuplicateKeyError:  # the same bytes were stored as another image a moment ago
        other = records.find_one({"metadata.key": plan.key}, {"_id": 1})
        raise DuplicateImage(other["_id"] if other else "") from None
    if switched.modified_count != 1:  # the lease lapsed and another replace or delete took it
        raise ImageBusy()


def _after_switch(db: Database[Document], bucket: str, doc: dict[str, Any], old_bytes: dict[str, Any],
                  plan: _Plan, staged: _Staged, media: Media) -> None:
    """Steps 6-8: the old version's files go (they are in the trash, unless only the crops
    changed, and the original of an edited image stays), caches and the CDN are told, the
    other versions' renditions go, and the new version's pending variants are queued."""
    image_id = doc["_id"]
    kept = {old_bytes["_id"]} if staged.same_bytes else set()
    if staged.keep_source is not None:
        kept.add(staged.keep_source["id"])
    if staged.content is not None:
        kept.add(staged.content["id"])
    # The old bytes' file is one of them (the upload's, under the image's id, which the record
    # does not list among its variants), unless it stays (the same bytes, or as the source).
    old_ids = [file_id for file_id in dict.fromkeys([*variant_ids(doc), old_bytes["_id"]])
               if file_id not in kept]
    evicted = list(dict.fromkeys([image_id, *old_ids]))
    effects.apply(db, Changes(tombstones=[Tombstone(bucket, evicted, storage.DELETE_WINDOW)]))
    after = Changes()
    if old_ids:
        after += storage.remove_files(db, bucket, old_ids, holder=image_id)[1]
    after.purged.append((bucket, doc))
    effects.apply(db, after, media.purges)
    renditions.remove_for(db, bucket, image_id, keep_version=plan.version, purges=media.purges)
    # The new version's pending variants: rendered after the answer, or at once outside a request.
    pending.complete_later(db, bucket, [image_id], media)


def _source_file(image_id: ObjectId, version: str, data: bytes, source: dict[str, Any]) -> storage.NewFile:
    """The unedited original's bytes (the upload's file's, or a restored edited version's from the
    trash) as a source file of the image's own."""
    meta = source.get("metadata") or {}
    fmt = str(meta.get("format") or "jpeg")
    return storage.NewFile(data, source.get("filename") or meta.get("filename") or "image", {
        "role": "variant", "variant": SOURCE, "key": variant_key(image_id, SOURCE, fmt, version),
        "original_id": image_id, "format": fmt, "content_type": meta.get("content_type"),
        "sha256": meta.get("sha256") or sha256(data).hexdigest(),
        "width": meta.get("width"), "height": meta.get("height"),
    }, ObjectId())


def _entry(file_id: Any, length: int, meta: dict[str, Any], chunk_size: int = storage.CHUNK_SIZE
           ) -> dict[str, Any]:
    """What the record lists of its source file under ``metadata.variants.source.<format>``."""
    return {"id": file_id, "length": length, "chunk_size": chunk_size, "sha256": meta.get("sha256"),
            "content_type": meta.get("content_type"), "width": meta.get("width"),
            "height": meta.get("height"), "format": meta.get("format")}


def _version_files(image_id: ObjectId, ingested: Ingested, version: str, content_id: ObjectId | None,
                   name: str) -> tuple[list[storage.NewFile], dict[str, dict[str, Any]]]:
    """The files of a new version: its renditions, then (``content_id``: new bytes) the bytes
    themselves as a content file of the record; and the variants the record will list (those not
    rendered yet as pending)."""
    new_files: list[storage.NewFile] = []
    variants: dict[str, dict[str, Any]] = {}
    for rendition in ingested.renditions:
        new, info = variant_file(image_id, rendition, version=version)
        new_files.append(new)
        variants.setdefault(rendition.name, {})[rendition.format] = info
    for planned in ingested.pending:
        variants.setdefault(planned.name, {})[planned.format] = pending.pending_entry(planned)
    variants = {name: variants[name] for name in VARIANT_NAMES if name in variants}
    prepared = ingested.prepared
    if content_id is not None:
        new_files.append(storage.NewFile(prepared.data, name, bytes_metadata(image_id, prepared, version),
                                         content_id))
    return new_files, variants


def _head_update(meta: dict[str, Any], ingested: Ingested, *, version: str, key: Any, source_sha256: str,
                 content_id: ObjectId | None, variants: dict[str, dict[str, Any]],
                 versions: list[dict[str, Any]], moment: dt.datetime, name: str | None,
                 content: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``$set`` that switches the record to the new version in one update: its version and
    redirects, its variants, and (``content_id``: new bytes) what describes the bytes; ``name``:
    the new upload's name, if it had one; ``content``: the content file when it is one already
    stored (edits undone: the original's)."""
    prepared = ingested.prepared
    content = content or {"id": content_id, "length": len(prepared.data), "chunk_size": storage.CHUNK_SIZE,
                          "sha256": prepared.sha256}
    # The record's length and chunk size stay those of its bytes, as an upload's record has them
    # (what lists show, and what reads the bytes by the record alone goes by: read_original).
    update: dict[str, Any] = {} if content_id is None else {
        "length": content["length"], "chunkSize": content.get("chunk_size", storage.CHUNK_SIZE),
        "metadata.content": content}
    update.update({
        "metadata.version": version,
        "metadata.versions": versions,
        "metadata.replaced_at": moment,
        "metadata.key": key,
        "metadata.variants": variants,
    })
    if content_id is not None:  # what describes the bytes (a new focal point keeps all of it)
        update.update({
            "metadata.source_sha256": source_sha256,
            "metadata.sha256": content["sha256"],
            "metadata.content_type": prepared.content_type,
            "metadata.format": prepared.format.lower(),
            "metadata.width": prepared.width,
            "metadata.height": prepared.height,
            "metadata.frames": prepared.frames,
        })
    if ingested.focal is not None:
        update["metadata.focal_point"] = ingested.focal.as_metadata()
    if ingested.placeholder is not None:
        update["metadata.placeholder"] = ingested.placeholder.as_metadata()
    if content_id is not None and ingested.near_hash is not None:  # new pixels: a new hash and palette
        update.update({f"metadata.{k}": v for k, v in ingested.near_hash.as_metadata().items()})
        update["metadata.near_group"] = None  # the old picture's group; the next lookup links it again
        update["metadata.exact_group"] = None  # the old pixels' group (store/exact.py)
        update["metadata.pixels_full_sha256"] = None  # the old pixels' key: computed again when asked
        update[near_duplicates.PENDING] = True  # until that lookup has linked it (store/near_duplicates.py)
    if name is not None:
        update["metadata.filename"] = name
        update["metadata.name_prefixes"] = name_prefixes(name)
    return update


def prepared_name(filename: str | None, meta: dict[str, Any], fmt: str) -> str:
    """The name the image goes by: the new upload's (sanitised), else the one it had."""
    return sanitize_filename(filename) if filename else meta.get("filename") or f"image.{fmt.lower()}"
