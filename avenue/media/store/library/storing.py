"""Storing into a bucket: uploads validated and written with their variants (deduplicated),
images brought from another bucket, and the claim (see :mod:`avenue.media.store.library`)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from time import monotonic
from typing import Protocol, TypeVar

from bson import ObjectId

from avenue.media.ingest.images import Limits
from avenue.media.records import Image, Near, Stored, images
from avenue.media.store import near_duplicates, originals
from avenue.media.store.library.deleting import Deleting
from avenue.media.store.library.grouping import Grouping
from avenue.media.store.library.reading import Reading
from avenue.media.store.library.shelf import Shelf
from avenue.media.store.options import UploadOptions
from avenue.media.store.originals import Upload

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Claimant(Protocol[T_co]):
    """The referrer's side of :meth:`Library.claim`: its own reference write, and what to do
    with an image it claimed when that write fails or the image is deleted under it (the
    three steps of the claim's write order: avenue/media/store/library/__init__.py)."""

    def attach(self, stored: list[Stored]) -> tuple[T_co, list[Image]]:
        """Write the references to ``stored``: the result, and the images attached."""

    def release(self, image: Image) -> object:
        """Delete ``image``, created by the claim, if nothing refers to it (the write failed)."""

    def repoint(self, old: Image, new: Image) -> None:
        """Point the references this claim wrote to ``old`` (deleted meanwhile) at ``new``."""


class Storing:
    """Store one, many or all-or-none; bring from another bucket; claim for a referrer (an
    upload is grouped through ``grouping``; a claim waits on ``deleting``'s leases)."""

    def __init__(self, shelf: Shelf, grouping: Grouping, deleting: Deleting) -> None:
        self.shelf, self.grouping, self.deleting = shelf, grouping, deleting

    def store(self, upload: Upload, *, owner: str | None = None, limits: Limits | None = None,
              kind: str = "upload", scope: str = "", visibility: str = "public",
              alt: str | None = None, expires_at: dt.datetime | None = None,
              folder: str | None = None, tags: list[str] | None = None, revive: bool = True) -> Stored:
        """Validate one image by content and store it (deduplicated) with its variants
        (``revive``: :class:`UploadOptions`'s)."""
        options = UploadOptions(owner, kind, scope, visibility, alt, expires_at, folder,
                                None if tags is None else tuple(tags), revive)
        return self.store_with([upload], options, limits=limits)[0]

    def store_many(self, uploads: Sequence[Upload], *, owner: str | None = None,
                   limits: Limits | None = None, kind: str = "upload", scope: str = "",
                   visibility: str = "public", alt: str | None = None,
                   expires_at: dt.datetime | None = None, folder: str | None = None,
                   tags: list[str] | None = None, revive: bool = True) -> list[Stored]:
        """Store every upload or none (all are validated before the first byte is written);
        ``folder`` and ``tags`` label builder library media."""
        options = UploadOptions(owner, kind, scope, visibility, alt, expires_at, folder,
                                None if tags is None else tuple(tags), revive)
        return self.store_with(uploads, options, limits=limits)

    def store_with(self, uploads: Sequence[Upload], options: UploadOptions, *,
                   limits: Limits | None = None) -> list[Stored]:
        """Store every upload or none, as ``options`` says (the keywords of ``store`` as one
        record)."""
        began = monotonic()  # the lookup may add a tenth of the whole store to its answer
        db, bucket = self.shelf.db, self.shelf.bucket
        readies = originals.validate_all(db, bucket, list(uploads), options, limits=limits)
        # The near-duplicates are looked up while the originals are written (near_duplicates.Lookup):
        # the hash is known once validated, and the write is the slow part.
        probes = [ready.probe(options.owner) for ready in readies]
        lookup = near_duplicates.Lookup(db, bucket, [(doc, self.grouping.near_owner(doc)) for doc in probes],
                                        began=began)
        try:
            results = originals.write_all(db, bucket, readies, options, self.shelf.media)
        except BaseException:
            lookup.stop()
            raise
        try:
            # One indexed query each here; the full decodes and the link after the answer.
            self.grouping.link_exact_later([result.doc for result in results if result.created])
        except BaseException:
            lookup.stop()  # the request fails: its images owe their grouping (near_duplicates.PENDING)
            raise
        # After the twins' query: on the embedded database the lookup begins here, and a query
        # sent after it waited for it whole (1.28x at a million images' density, where the
        # answer does not wait for the lookup itself: bench/results/near-duplicates-*.md).
        found = lookup.finish([result.doc if result.created else None for result in results])
        stored, image = [], self.shelf.image
        for result, matches in zip(results, found, strict=True):
            # Never the image itself (another upload of the same bytes may have won the write).
            near = None if matches is None else tuple(
                Near(image(m.doc), m.distance) for m in matches if m.doc["_id"] != result.doc["_id"])
            stored.append(Stored(image(result.doc), result.created, near))
        return stored

    def bring(self, image: Image, *, kind: str, scope: str = "", keep_source: bool = False) -> Stored:
        """Move ``image`` (of another bucket) here with its variants, keeping its id; identical
        bytes already here are reused. The source goes last, unless ``keep_source``."""
        doc = images(self.shelf.db, image.bucket).find_one({"_id": image.id})
        if doc is None:
            raise OSError(f"{image.bucket} {image.id} does not exist")
        result = originals.transfer(self.shelf.db, image.bucket, self.shelf.bucket, doc, kind=kind,
                                    scope=scope, delete_source=not keep_source, media=self.shelf.media)
        if result.created:  # its groups are this bucket's (the source's labels stayed behind)
            self.grouping.link_near_duplicates(result.doc["_id"])
            self.grouping.link_exact_later([result.doc])
        return Stored(self.shelf.image(result.doc), result.created)

    def claim(self, sources: Sequence[Upload | Image], claimant: Claimant[T], *, kind: str,
              owner: str | None = None, limits: Limits | None = None,
              revive: bool = True) -> tuple[T, dict[ObjectId, Image]]:
        """Bring ``sources`` into this bucket and let ``claimant`` attach them, safely.

        ``sources`` are all uploads (stored here, all or nothing) or all images of another
        bucket (copied here; deleted from there once attached). ``claimant.attach`` writes the
        caller's references and returns its result and the images it attached; if it
        raises, every image this call created is handed to ``claimant.release`` (the caller's
        "delete if nothing refers to it") and the sources stay. Then each attached image that
        a concurrent delete removed meanwhile is brought in again from its source and handed
        to ``claimant.repoint(old, new)``. Returns ``attach``'s result and the replacements by
        old id. ``revive``: :class:`UploadOptions`'s, for uploads.
        """
        if all(isinstance(s, Upload) for s in sources):
            stored = self.store_many([s for s in sources if isinstance(s, Upload)], owner=owner,
                                     limits=limits, kind=kind, revive=revive)
        else:
            stored = [self.bring(s, kind=kind, keep_source=True) for s in sources if isinstance(s, Image)]
        try:
            result, attached = claimant.attach(stored)
        except BaseException:
            for item in stored:
                if item.created:
                    claimant.release(item.image)
            raise
        source_of = {item.image.id: source for item, source in zip(stored, sources, strict=True)}
        replaced: dict[ObjectId, Image] = {}
        if attached:
            present = self.deleting.present_after_leases([image.id for image in attached])
            for image in attached:
                if image.id in present:
                    continue
                fresh = self._again(source_of[image.id], kind=kind, owner=owner, limits=limits, revive=revive)
                claimant.repoint(image, fresh)
                replaced[image.id] = fresh
        for source in sources:
            if isinstance(source, Image):
                Deleting(Shelf(self.shelf.db, source.bucket, self.shelf.media)).delete(source)
        return result, replaced

    def _again(self, source: Upload | Image, *, kind: str, owner: str | None,
               limits: Limits | None, revive: bool = True) -> Image:
        """Store a source once more after its first copy here was deleted: rendered again
        from its bytes under a new id, so no URL of the deleted file ever names it."""
        if isinstance(source, Image):
            data = Reading(Shelf(self.shelf.db, source.bucket, self.shelf.media)).read(source)
            source = Upload(source.filename, io.BytesIO(data))
        stream = source.stream
        if hasattr(stream, "seek"):
            stream.seek(0)
        return self.store(source, owner=owner, kind=kind, limits=limits, revive=revive).image
