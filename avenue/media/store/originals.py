"""Store, transfer and delete images: the one upload path every blueprint uses.

Write order makes every crash point safe without transactions (GridFS cannot run in one):
the variants rendered before the answer (the WebP thumb) first, then the file holding the
image's bytes (a GridFS file of its own under the image's id, :func:`bytes_metadata`), the
image's record (``<bucket>.images``) last, listing every variant: the rendered ones and the
*pending* ones (an id, a size, a format, no file yet: avenue/media/store/pending.py renders
them right after the answer, or on their first request, under one claim). A reader that
finds the record finds each variant it lists, or finds it pending and has it rendered (a GET
of a pending variant renders it and serves its bytes, never a 404); a crash before the
record leaves only files whose image does not exist, or chunks with no files document, both
of which ``gc`` collects; a crash after it leaves pending variants, which the first GET or
``fsck --repair`` renders.
The pending variants are handed to :func:`~avenue.media.store.pending.complete_later` only
once ``store_all`` has stored every upload (all or nothing as before: a failed call removes
what it created, and the pending render of a removed image finds nothing to do).

``store_all`` is two steps a caller may also take apart (:func:`validate_all`, then
:func:`write_all`): the library looks an upload's near-duplicates up between them, beside
the writes (avenue/media/store/near_duplicates.py), with the id the original will be written under
(:attr:`Ready.original_id`, drawn at validation) and the hash validation computed.

A delete removes the record first (readers see 404 at once), then its files, then its
renditions on request (:mod:`avenue.media.store.renditions`: never served once the original
is gone, since every rendition URL resolves the original first); a crash before the last
step leaves renditions of a missing image, which ``gc`` collects too. The variants are those
the original lists as read (one command) and those naming it (``metadata.original_id``),
looked up after the original is gone (one command each): a pending render (pending.py) lists
its files by one update conditional on the original, so one that listed them after the
caller read the original wrote them before the original went, and is found then; one that
lists later finds no original and removes its own, one at a time too, so a file both remove
is counted off once. Either way an image's variants leave with it (gc, a delete, a move to
the trash alike).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any, BinaryIO

from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from avenue.errors import AvenueError, Conflict
from avenue.media import effects
from avenue.media.core import Media, Purges
from avenue.media.effects import Changes
from avenue.media.effects import uploads as upload_counts
from avenue.media.ingest import pipeline
from avenue.media.ingest.focal import FocalPoint
from avenue.media.ingest.images import Limits, PreparedImage, sanitize_filename
from avenue.media.ingest.near_hash import NearHash
from avenue.media.ingest.placeholders import Placeholder
from avenue.media.ingest.variants import VARIANT_NAMES, Planned, Rendition
from avenue.media.records import Document, bytes_of, images, variant_ids
from avenue.media.store import near_duplicates, pending, renditions, storage, trash
from avenue.media.store.options import UploadOptions
from avenue.media.store.pending import variant_file
from avenue.metrics import count_upload


@dataclass
class Upload:
    """One file of a request: its client-given name and a stream or bytes."""

    filename: str | None
    stream: BinaryIO | bytes


@dataclass
class StoreResult:
    doc: dict[str, Any]
    created: bool


@dataclass
class Ready:
    """A validated upload waiting to be written (or found stored already)."""

    filename: str
    key: str
    prepared: PreparedImage | None = None
    renditions: list[Rendition] = field(default_factory=list)
    pending: list[Planned] = field(default_factory=list)  # listed, rendered after the answer
    existing: dict[str, Any] | None = None
    trashed: dict[str, Any] | None = None  # the same bytes sit in the trash: restored, not stored
    placeholder: Placeholder | None = None
    focal: FocalPoint | None = None
    near_hash: NearHash | None = None
    original_id: ObjectId = field(default_factory=ObjectId)  # the id a new original is written under

    def probe(self, owner: str | None) -> dict[str, Any]:
        """What a near-duplicate lookup needs of the original this upload is or will be (its
        record when stored already; otherwise its id, role, ``owner`` and hash)."""
        stored = self.existing if self.existing is not None else self.trashed
        if stored is not None:
            return stored
        return {"_id": self.original_id, "metadata": {
            "role": "original", "owner": owner, **(self.near_hash.as_metadata() if self.near_hash else {})}}


MAX_NAME_WORDS = 16
MAX_PREFIX_LENGTH = 20


def name_words(text: str) -> list[str]:
    """The words of a filename or a search: case- and accent-folded runs of letters and digits
    (``Red_Lamp-2.JPG`` → ``red``, ``lamp``, ``2``, ``jpg``), each cut to 20 characters."""
    folded = unicodedata.normalize("NFKD", text or "").casefold()
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch))
    words = [word[:MAX_PREFIX_LENGTH] for word in re.split(r"[\W_]+", plain) if word]
    return list(dict.fromkeys(words))[:MAX_NAME_WORDS]


def name_prefixes(filename: str) -> list[str]:
    """Every start of every word of a filename (``lamp`` → ``l``, ``la``, ``lam``, ``lamp``),
    stored in ``metadata.name_prefixes`` under a multikey index: a search for a word start is
    one index equality on every server. (A regex or range on the words is a collection scan
    on the embedded database's planner, and a range on an array needs ``$elemMatch`` to be exact.)"""
    return list(dict.fromkeys(word[:n] for word in name_words(filename) for n in range(1, len(word) + 1)))


def dedupe_key(source_sha256: str, scope: str = "") -> str:
    """Originals are content-addressed per bucket; ``scope`` narrows that (e.g. per owner)."""
    return f"{scope}:{source_sha256}" if scope else source_sha256


def _validate(db: Database[Document], bucket: str, upload: Upload, limits: Limits, scope: str,
              revive: bool = True) -> Ready:
    filename = sanitize_filename(upload.filename)
    try:
        data = pipeline.read(upload.stream, limits)
        key = dedupe_key(sha256(data).hexdigest(), scope)
        existing = images(db, bucket).find_one({"metadata.key": key})
        if existing is not None:
            count_upload("duplicate", (existing.get("metadata") or {}).get("format"))
            return Ready(filename, key, existing=existing)
        trashed = trash.find(db, bucket, key) if revive else None
        if trashed is not None:
            count_upload("duplicate", (trashed.get("metadata") or {}).get("format"))
            return Ready(filename, key, trashed=trashed)
        ingested = pipeline.ingest_for_answer(data, limits)
    except AvenueError as error:
        count_upload(error.code, None)
        error.message = f"{filename}: {error.message}"
        error.details["file"] = filename
        raise
    count_upload("accepted", ingested.prepared.format)  # validated; stored all-or-nothing
    return Ready(filename, key, ingested.prepared, ingested.renditions, ingested.pending,
                  placeholder=ingested.placeholder, focal=ingested.focal, near_hash=ingested.near_hash)


def _write(db: Database[Document], bucket: str, ready: Ready, options: UploadOptions) -> StoreResult:
    prepared = ready.prepared
    if prepared is None:
        raise ValueError("only a validated, not yet stored upload is written")
    original_id = ready.original_id
    new_files: list[storage.NewFile] = []
    variants: dict[str, dict[str, Any]] = {}
    for rendition in ready.renditions:
        new, info = variant_file(original_id, rendition)
        new_files.append(new)
        variants.setdefault(rendition.name, {})[rendition.format] = info
    for planned in ready.pending:
        variants.setdefault(planned.name, {})[planned.format] = pending.pending_entry(planned)
    variants = {name: variants[name] for name in VARIANT_NAMES if name in variants}
    metadata = {
        "role": "original",
        "key": ready.key,
        "source_sha256": prepared.source_sha256,
        "sha256": prepared.sha256,
        "content_type": prepared.content_type,
        "format": prepared.format.lower(),
        "width": prepared.width,
        "height": prepared.height,
        "frames": prepared.frames,
        "filename": ready.filename,
        "name_prefixes": name_prefixes(ready.filename),
        "owner": options.owner,
        "kind": options.kind,
        "visibility": options.visibility,
        "variants": variants,
        **({"placeholder": ready.placeholder.as_metadata()} if ready.placeholder else {}),
        **({"focal_point": ready.focal.as_metadata()} if ready.focal else {}),
        **(ready.near_hash.as_metadata() if ready.near_hash else {}),  # phash, bands, palette
        # Compared with no other image yet: the lookup's link unsets it (store/near_duplicates.py).
        **({near_duplicates.PENDING_FIELD: True} if ready.near_hash else {}),
        **options.labels(),
    }
    # The record goes last: readers never see it without its rendered variants, and its
    # pending ones are rendered by whoever asks first (pending.py). The bytes: a GridFS file
    # of their own under the image's id, named by it as its "original" (store/replace.py's
    # content files are the same kind).
    shared = _twin_bytes(db, bucket, prepared, original_id)
    if shared is None:
        new_files.append(storage.NewFile(prepared.data, ready.filename, bytes_metadata(original_id, prepared),
                                         original_id))
    try:
        record = storage.write_image(db, bucket, new_files, metadata, shared=None if shared is None else {
            "_id": original_id, "filename": ready.filename, "content": shared})
    except DuplicateKeyError:
        # Someone stored the same bytes a moment ago: keep theirs (write_image took ours back).
        existing = images(db, bucket).find_one({"metadata.key": ready.key})
        if existing is None:
            raise
        return StoreResult(existing, False)
    return StoreResult(record, True)


# What an image of the bucket holding the same bytes is read with: where they are.
_TWIN = {"_id": 1, "length": 1, "chunkSize": 1, "metadata.content": 1}


def _twin_bytes(db: Database[Document], bucket: str, prepared: PreparedImage, image_id: ObjectId
                ) -> dict[str, Any] | None:
    """The file of another image of ``bucket`` holding these very bytes (another scope's upload
    of them: dedupe is per scope, the bytes are the bucket's), held for ``image_id`` and shaped
    as its record's ``metadata.content`` will name it; None: none, or it went meanwhile (the
    upload writes them). One query on the records' ``bytes_sha256`` index."""
    twin = images(db, bucket).find_one({"metadata.sha256": prepared.sha256}, _TWIN)
    if twin is None:
        return None
    held = bytes_of(twin)
    if not storage.hold(db, bucket, held.id, image_id):
        return None
    return held.content(prepared.sha256)


def bytes_metadata(image_id: ObjectId, prepared: PreparedImage, version: str = "") -> dict[str, Any]:
    """The metadata of the file holding image ``image_id``'s bytes (of ``version``, when a
    change in place wrote them): a file like a variant, named ``original``."""
    owner = f"{image_id}~{version}" if version else str(image_id)
    return {"role": "variant", "variant": "original", "key": f"{owner}/original", "original_id": image_id,
            "format": prepared.format.lower(), "content_type": prepared.content_type,
            "sha256": prepared.sha256, "width": prepared.width, "height": prepared.height}


def write_variant(db: Database[Document], bucket: str, original_id: ObjectId, rendition: Rendition,
                  file_id: ObjectId | None = None,
                  version: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """Store one rendition as a variant file of ``original_id``; return its files document
    and the entry the original lists for it."""
    new, info = variant_file(original_id, rendition, file_id, version)
    return storage.write_file(db, bucket, new.data, filename=new.filename, metadata=new.metadata,
                              file_id=new.file_id), info


def _delete_ids(db: Database[Document], bucket: str, ids: list[Any], holder: Any = None) -> None:
    if ids:
        storage.delete_counted(db, bucket, ids, holder=holder)


def _from_trash(db: Database[Document], bucket: str, ready: Ready) -> dict[str, Any]:
    """Bring back the trashed image holding an upload's bytes (dedupe reaches into the trash:
    one copy, and its id, alt, folder and tags come back with it)."""
    assert ready.trashed is not None
    restored = trash.restore(db, ready.trashed["_id"])
    if restored is not None:
        return restored.doc
    # Another restore (or this upload twice at once) is bringing it back right now.
    live = images(db, bucket).find_one({"metadata.key": ready.key})
    if live is None:
        raise Conflict(f"{ready.filename}: this image is being restored from the trash right now; "
                       "try again in a moment.", code="restore_in_progress")
    return live


def store(db: Database[Document], bucket: str, stream: BinaryIO | bytes, *, filename: str | None,
          owner: str | None = None,
          limits: Limits | None = None, kind: str = "upload", scope: str = "",
          visibility: str = "public", extra: dict[str, Any] | None = None,
          media: Media | None = None) -> StoreResult:
    """Validate one image by content and store it (deduplicated) with its variants; ``extra``:
    its labels (:class:`UploadOptions`'s ``alt``, ``expires_at``, ``folder``, ``tags``);
    ``media``: the app's, which renders its pending variants (:func:`write_all`)."""
    options = UploadOptions(owner=owner, kind=kind, scope=scope, visibility=visibility, **(extra or {}))
    return store_all(db, bucket, [Upload(filename, stream)], options, limits=limits, media=media)[0]


def store_all(db: Database[Document], bucket: str, uploads: list[Upload],
              options: UploadOptions | None = None, *, limits: Limits | None = None,
              media: Media | None = None) -> list[StoreResult]:
    """Store every upload or none: all are validated before the first byte is written.

    If a write fails half way, the files this call created are removed again; files that
    already existed (deduplicated) are never touched.
    """
    options = options or UploadOptions()
    return write_all(db, bucket, validate_all(db, bucket, uploads, options, limits=limits), options, media)


def validate_all(db: Database[Document], bucket: str, uploads: list[Upload], options: UploadOptions, *,
                 limits: Limits | None = None) -> list[Ready]:
    """:func:`store_all`'s first step: every upload read and validated (or found stored
    already), nothing written; the first refusal raises."""
    limits = limits or Limits()
    return [_validate(db, bucket, upload, limits, options.scope, options.revive) for upload in uploads]


def write_all(db: Database[Document], bucket: str, readies: list[Ready],
              options: UploadOptions, media: Media | None = None) -> list[StoreResult]:
    """:func:`store_all`'s second step: write what :func:`validate_all` gave, all or none; the
    pending variants are rendered as ``media`` runs work left for after the answer (no app,
    ``None``: at once)."""
    results: list[StoreResult] = []
    try:
        for ready in readies:
            if ready.existing is not None:
                results.append(StoreResult(ready.existing, False))
            elif ready.trashed is not None:
                results.append(StoreResult(_from_trash(db, bucket, ready), False))
            else:
                results.append(_write(db, bucket, ready, options))
    except BaseException:
        for result in results:
            if result.created:
                delete_image(db, bucket, result.doc, purges=(media or Media()).purges)
        raise
    created = [result.doc for result in results if result.created]
    if created:  # uploads per hour (the ops dashboard), once every write stood
        upload_counts.record(db, bucket, len(created), created[-1]["uploadDate"])
    # Rendered after the answer (or by their first request): a duplicate or a restored image
    # still pending (its first upload's render not done yet) is handed on too; one claim each.
    waiting = [result.doc["_id"] for result in results if pending.pending_of(result.doc)]
    if pending.complete_later(db, bucket, waiting, media or Media()):  # rendered at once (outside a request)
        records = images(db, bucket)
        results = [StoreResult(records.find_one({"_id": r.doc["_id"]}) or r.doc, r.created)
                   if r.doc["_id"] in waiting else r for r in results]
    return results


def delete_image(db: Database[Document], bucket: str, doc_or_id: Document | ObjectId, *,
                 purges: Purges) -> bool:
    """Delete an image: its record first (readers see 404 at once), then its bytes' file and
    variants; ``purges``: what the app queues for its CDN (its Media's: ``media.purges``)."""
    files = db[f"{bucket}.files"]
    doc = doc_or_id if isinstance(doc_or_id, dict) else images(db, bucket).find_one({"_id": doc_or_id})
    if doc is None:
        return False
    # The files the record lists (its variants, source and bytes; the file under its own id)
    # go in one command: a render takes back only files no record lists (but for one that took
    # over a dead renderer's listed files, whose bytes the reconciliation would then correct).
    deleted = storage.delete_image(db, bucket, doc["_id"], with_ids=variant_ids(doc))
    # Then any other file naming it (the module doc): a pending render's, written but not
    # listed, or a crashed change's strays. One file a delete: a render that finds the image
    # gone takes its own back at the same moment, one at a time too, and only a delete of
    # one file says exactly which of them each took off the counters.
    for file_id in [v["_id"] for v in files.find({"metadata.original_id": doc["_id"]}, {"_id": 1})]:
        storage.delete_file(db, bucket, file_id, holder=doc["_id"])
    renditions.remove_for(db, bucket, doc["_id"], purges=purges)  # whoever deleted it, a retry finishes it
    if deleted:  # the CDN's copies (queued only with a hook configured)
        effects.apply(db, Changes(purged=[(bucket, doc)]), purges)
    return deleted


def transfer(db: Database[Document], source: str, target: str, doc: dict[str, Any], *, kind: str,
             scope: str = "", unset: tuple[str, ...] = ("expires_at", "near_group", "exact_group"),
             delete_source: bool = True, media: Media | None = None) -> StoreResult:
    """Move an image (its record ``doc``, its bytes' file and its variants) to another bucket,
    keeping their ids (its pending variants rendered there as ``media`` runs work left for
    after the answer).

    If the target already holds the same image it is reused. Copies the files first, then
    the record, deletes the source last (unless ``delete_source`` is False: the caller
    deletes it once the copy is in use): a crash leaves a duplicate ``gc`` can collect, never a lost image.
    """
    key = dedupe_key(doc["metadata"]["source_sha256"], scope)
    existing = images(db, target).find_one({"metadata.key": key})
    trashed = trash.find(db, target, key) if existing is None else None
    if trashed is not None:  # the target held these bytes until lately: that image comes back
        restored = trash.restore(db, trashed["_id"])
        existing = restored.doc if restored is not None else \
            images(db, target).find_one({"metadata.key": key})
    if existing is None:
        copied: list[Any] = []
        try:
            # Its files (its variants, its bytes' file: its own id's until replaced in place),
            # then its record, the copy's commit point.
            for vid in dict.fromkeys([*variant_ids(doc), bytes_of(doc).id]):
                variant = db[f"{source}.files"].find_one({"_id": vid})
                if variant is not None:
                    storage.copy_for(db, source, target, variant, doc["_id"])
                    copied.append(vid)
            metadata = {k: v for k, v in doc["metadata"].items() if k not in unset}
            metadata.update(key=key, kind=kind)
            storage.insert_record(db, target, {**doc, "metadata": metadata})
            existing = images(db, target).find_one({"_id": doc["_id"]})
            created = True
            if pending.pending_of(existing):  # copied before its variants were: rendered there
                pending.complete_later(db, target, [doc["_id"]], media or Media())
        except DuplicateKeyError:
            _delete_ids(db, target, copied, holder=doc["_id"])
            existing = images(db, target).find_one({"metadata.key": key})
            if existing is None:
                raise
            created = False
    else:
        created = False
    if existing is None:
        raise OSError(f"{target} lost {doc['_id']} while it was being copied there")
    if delete_source:
        delete_image(db, source, doc, purges=(media or Media()).purges)
    return StoreResult(existing, created)


