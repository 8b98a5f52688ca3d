"""Editing an original in place and its versions: new bytes or a new focal point (replace),
non-destructive edits and named crops, each a new version (store/replace.py); the versions
listed, drawn small, compared and restored (store/versions.py). A new picture is grouped with
its look-alikes at once (:class:`Grouping`)."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from avenue.media.ingest.edits import (
    MAX_CROPS,
    Box,
    CropNotFound,
    Edits,
    TooManyCrops,
    check_crop_size,
    stored_crops,
)
from avenue.media.ingest.focal import FocalPoint
from avenue.media.ingest.images import Limits
from avenue.media.records import IMAGE, Changed
from avenue.media.store import near_duplicates, versions
from avenue.media.store import replace as replacing
from avenue.media.store.library.grouping import Grouping
from avenue.media.store.library.shelf import DELETE_LEASE, Shelf
from avenue.media.store.originals import Upload
from avenue.media.store.versions import Comparison, Version


class Editing:
    """Replace, edit, crop; list, preview, compare and restore versions (a new picture is
    grouped through ``grouping``)."""

    def __init__(self, shelf: Shelf, grouping: Grouping) -> None:
        self.shelf, self.grouping = shelf, grouping

    def replace(self, image_id: ObjectId, upload: Upload | None = None, *, focal: FocalPoint | None = None,
                limits: Limits | None = None,
                refs: dict[str, Any] | None = None) -> Changed | None:
        """New bytes (``upload``) or a new focal point for the original ``image_id``, keeping
        its id (avenue/media/store/replace.py): the image, whether it changed and its new
        picture's near-duplicates; None when it does not exist. ``ImageBusy`` (409) while a
        delete or another replace holds it."""
        if upload is None:
            return self._changed(replacing.refocus(self.shelf.db, self.shelf.bucket, image_id, focal,
                                                   limits=limits, refs=refs, delete_lease=DELETE_LEASE,
                                                   media=self.shelf.media))
        return self._changed(replacing.replace_bytes(self.shelf.db, self.shelf.bucket, image_id,
                                                     upload.stream, filename=upload.filename, focal=focal,
                                                     limits=limits, refs=refs, delete_lease=DELETE_LEASE,
                                                     media=self.shelf.media))

    def edit(self, image_id: ObjectId, edits: Edits | None, *, refs: dict[str, Any] | None = None
             ) -> Changed | None:
        """Apply ``edits`` to the original of ``image_id`` (None: back to the original), as a
        new version (avenue/media/store/replace.py): the image, whether it changed and the
        edited picture's near-duplicates; None when it does not exist."""
        return self._changed(replacing.edit(self.shelf.db, self.shelf.bucket, image_id, edits, refs=refs,
                                            delete_lease=DELETE_LEASE, media=self.shelf.media))

    def set_crop(self, image_id: ObjectId, name: str, box: Box | None, *, refs: dict[str, Any] | None = None
                 ) -> Changed | None:
        """Set the named crop ``name`` of ``image_id`` to ``box`` (None: delete it), as a new
        version (the same picture: its group stays); None when the image does not exist.
        ``TooManyCrops`` past the limit, ``CropNotFound`` to delete one it does not have."""
        doc = self.shelf.images.find_one({"_id": image_id, **IMAGE},
                                    {"metadata.crops": 1, "metadata.width": 1, "metadata.height": 1})
        if doc is None:
            return None
        meta = doc.get("metadata") or {}
        if box is not None:
            check_crop_size(box, meta.get("width"), meta.get("height"))
        crops = stored_crops(meta.get("crops"))
        if box is None:
            if name not in crops:
                raise CropNotFound(name)
            crops.pop(name)
        else:
            if name not in crops and len(crops) >= MAX_CROPS:
                raise TooManyCrops()
            crops[name] = box
        return self._changed(replacing.set_crops(self.shelf.db, self.shelf.bucket, image_id, crops, refs=refs,
                                                 delete_lease=DELETE_LEASE, media=self.shelf.media))

    def _changed(self, done: replacing.Replaced | None) -> Changed | None:
        """A replace's or an edit's outcome; a new picture (a new hash: it owes its grouping,
        ``metadata.near_pending``) is grouped with its new look-alikes at once, and those are
        handed on for the answer. A focal point or a crop keeps the picture and its group."""
        if done is None:
            return None
        owed = done.changed and bool((done.doc.get("metadata") or {}).get(near_duplicates.PENDING_FIELD))
        if owed:  # the answer names no exact group: linked after it, as an upload's
            self.grouping.link_exact_later([done.doc])
        near = self.grouping.link(done.doc) if owed else None
        return Changed(self.shelf.image(done.doc), done.changed, near)

    def _head(self, image_id: ObjectId) -> dict[str, Any] | None:
        return self.shelf.images.find_one({"_id": image_id, **IMAGE})

    def versions(self, image_id: ObjectId) -> list[Version] | None:
        """The current version of ``image_id`` and its earlier ones still kept, newest first;
        None when the image does not exist."""
        doc = self._head(image_id)
        return None if doc is None else versions.listing(self.shelf.db, self.shelf.bucket, doc)

    def restore_version(self, image_id: ObjectId, version_id: str, *, limits: Limits | None = None,
                        refs: dict[str, Any] | None = None) -> Changed | None:
        """Make an earlier version of ``image_id`` current again, as a new version under the
        replace lease (``ImageBusy`` while a delete or another change holds it); None when the
        image does not exist. ``VersionNotFound`` / ``VersionGone`` for a version it lacks."""
        doc = self._head(image_id)
        if doc is None:
            return None
        return self._changed(versions.restore(self.shelf.db, self.shelf.bucket, doc, version_id,
                                              limits=limits, refs=refs, delete_lease=DELETE_LEASE,
                                              media=self.shelf.media))

    def version_preview(self, image_id: ObjectId, version_id: str) -> bytes | None:
        """A small WebP of version ``version_id`` of ``image_id`` (made once); None when the
        image does not exist."""
        doc = self._head(image_id)
        if doc is None:
            return None
        shelf = self.shelf
        return versions.read(shelf.db, versions.preview(shelf.db, shelf.bucket, doc, version_id, shelf.media))

    def compare_versions(self, image_id: ObjectId, before: str, after: str
                         ) -> tuple[Comparison, bytes] | None:
        """How version ``after`` of ``image_id`` differs from ``before``: the share of pixels
        changed and the heat map's PNG (made once per pair); None when the image does not exist."""
        doc = self._head(image_id)
        if doc is None:
            return None
        compared = versions.compare(self.shelf.db, self.shelf.bucket, doc, before, after, self.shelf.media)
        return compared, versions.read(self.shelf.db, compared.file)
