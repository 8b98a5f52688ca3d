"""Deleting an original, its delete leases, and the trash it may go to first.

Delete leases (``metadata.deleting_at``): see :mod:`avenue.media.store.library` (whoever deletes
takes the lease before looking for references; whoever adds one writes it before checking)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from time import monotonic, sleep
from typing import Any

from bson import ObjectId
from pymongo.database import Database

from avenue.clock import maybe_utc, now
from avenue.leases import held, stamp, unstamp
from avenue.media.records import Document, Image, is_image
from avenue.media.store import originals, trash
from avenue.media.store import replace as replacing
from avenue.media.store.library.shelf import DELETE_LEASE, Shelf
from avenue.paging import Page, Window

LEASE_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class DeleteLease:
    """A delete lease held on an image (see the module docstring): its ``metadata.deleting_at``
    stamp and the time it holds (a stamp of avenue/leases.py, not a :class:`avenue.leases.Lease`
    document with an owner and a heartbeat)."""

    image: Image
    at: dt.datetime


class Deleting:
    """Delete (to the trash or for good), take and give back delete leases, and which images
    are usable (exist and are not being deleted)."""

    def __init__(self, shelf: Shelf) -> None:
        self.shelf = shelf

    def delete(self, image: Image | ObjectId, *, to_trash: dict[str, Any] | None = None) -> bool:
        """Delete an original and all its variants (original first: readers see 404 at once).

        ``to_trash`` (what referenced it, e.g. ``{"sku": ...}``; may be empty) keeps it in the
        trash first, restorable for ``AVENUE_TRASH_DAYS`` (avenue/media/store/trash.py); without
        it, or with the trash off, the delete is final."""
        doc = self.shelf.images.find_one({"_id": image.id if isinstance(image, Image) else image})
        if doc is None:
            return False
        if to_trash is not None:
            trash.keep(self.shelf.db, self.shelf.bucket, doc, refs=to_trash,
                       keep_days=self.shelf.settings.trash_days)
        return originals.delete_image(self.shelf.db, self.shelf.bucket, doc, purges=self.shelf.media.purges)

    def take_delete_lease(self, image_id: ObjectId) -> DeleteLease | None:
        """Lease the original for deletion; None when it is gone or another delete holds it;
        :class:`ImageBusy` while a replace holds it (it exists: a 409, not a 404).

        Read, then a compare-and-set on the lease values read: of two deleters racing, one
        update matches and the other's finds the value changed. (Not one findAndModify: that
        scans the whole collection on the embedded database.) A set that misses reads again, so a replace
        that took its lease between the read and the set is answered as busy, not as gone (and
        so is one whose leases changed under three reads in a row)."""
        for _ in range(3):
            doc = self.shelf.images.find_one({"_id": image_id})
            if doc is None or not is_image(doc):
                return None
            seen = doc["metadata"].get("deleting_at")
            replacing_at = doc["metadata"].get("replacing_at")
            moment = now()
            if held(seen, DELETE_LEASE, moment):
                return None
            if held(replacing_at, replacing.REPLACE_LEASE, moment):
                raise replacing.ImageBusy()  # being replaced: it exists, so not a 404
            # Conditional on both leases as read: a replace taking its lease meanwhile wins.
            if stamp(self.shelf.images, image_id, "metadata.deleting_at",
                     {"metadata.deleting_at": seen, "metadata.replacing_at": replacing_at}, moment):
                doc["metadata"]["deleting_at"] = moment
                return DeleteLease(self.shelf.image(doc), moment)
        raise replacing.ImageBusy()  # the leases kept changing under it: it exists, others are at it

    def release_delete_lease(self, lease: DeleteLease) -> None:
        """Give the lease back (the image stays), unless it lapsed and someone else took it."""
        unstamp(self.shelf.images, lease.image.id, "metadata.deleting_at", lease.at)

    def usable(self, image_ids: Iterable[ObjectId]) -> dict[ObjectId, Image]:
        """The originals among ``image_ids`` that exist and are not being deleted."""
        ids = list(dict.fromkeys(image_ids))
        if not ids:
            return {}
        cutoff = now() - DELETE_LEASE
        docs = [doc for doc in self.shelf.images.find({"_id": {"$in": ids}}) if is_image(doc)]
        return {doc["_id"]: self.shelf.image(doc) for doc in docs
                if (maybe_utc(doc["metadata"].get("deleting_at")) or cutoff) <= cutoff}

    def present_after_leases(self, image_ids: list[ObjectId]) -> set[ObjectId]:
        """Which of ``image_ids`` still exist once the delete leases on them are resolved
        (waited for at most :data:`LEASE_WAIT_SECONDS`)."""
        deadline = monotonic() + LEASE_WAIT_SECONDS
        while True:
            live = now() - DELETE_LEASE
            found = self.shelf.images.find({"_id": {"$in": image_ids}}, {"metadata.deleting_at": 1})
            docs = {d["_id"]: d for d in found}
            leased = [d for d in docs.values()
                      if (maybe_utc((d.get("metadata") or {}).get("deleting_at")) or live) > live]
            if not leased or monotonic() > deadline:
                return set(docs)
            sleep(0.02)


@dataclass(frozen=True)
class Trashed:
    """An original in the trash, as the rest of the app sees it."""

    image: Image  # as it was (its bucket: where it came from and goes back to)
    deleted_at: dt.datetime
    purge_after: dt.datetime
    refs: dict[str, Any]

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Trashed:
        info = doc["metadata"]["trash"]
        return cls(Image.from_files_doc(info["from"], doc), maybe_utc(info["deleted_at"]) or now(),
                   maybe_utc(info["purge_after"]) or now(), dict(info.get("refs") or {}))


@dataclass(frozen=True)
class Restored:
    """A restore's outcome: the image back in its bucket, and what referenced it when deleted."""

    image: Image
    refs: dict[str, Any]
    reused: bool  # the same bytes had been stored again meanwhile: that image is this one


class Trash:
    """Deleted originals, restorable until ``gc`` purges them (avenue/media/store/trash.py)."""

    def __init__(self, db: Database[Document]) -> None:
        self.db = db

    def page(self, window: Window, *, source: str | None = None) -> tuple[list[Trashed], Page]:
        """Last deleted first; only those deleted from bucket ``source``, when given."""
        page = trash.page(self.db, window, source=source)
        return [Trashed.from_doc(doc) for doc in page.docs], page

    def get(self, image_id: ObjectId) -> Trashed | None:
        doc = trash.get(self.db, image_id)
        return None if doc is None else Trashed.from_doc(doc)

    def restore(self, image_id: ObjectId) -> Restored | None:
        """Back to its bucket with its id (None: not in the trash, or being restored now)."""
        done = trash.restore(self.db, image_id)
        if done is None:
            return None
        return Restored(Image.from_files_doc(done.bucket, done.doc), done.refs, done.reused)

    def purge(self, image_id: ObjectId) -> bool:
        """Remove it for good now."""
        doc = trash.get(self.db, image_id)
        return doc is not None and trash.purge(self.db, doc)
