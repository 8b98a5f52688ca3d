"""One bucket's originals behind a small interface: the only door to GridFS the blueprints use.

:class:`Library` composes six collaborators, one class and module each, all on one
:class:`~avenue.media.store.library.shelf.Shelf` (the bucket's image records and files, the
app's Media), and publishes the methods callers use as the :class:`Originals` protocol:

- ``reading``: get, get_many, existing_ids, page, folder_counts, tag_counts, find_by_content, read;
- ``labels``: set_metadata, rename, relabel;
- ``storing``: store, store_many, claim (and store_with, bring);
- ``editing``: replace, edit, set_crop, versions, restore_version, version_preview,
  compare_versions;
- ``grouping``: near_duplicates, near_groups, exact_groups (and the links the backfill runs:
  link_near_duplicates, link_exact_duplicates, recheck_exact_groups);
- ``deleting``: delete, take_delete_lease, release_delete_lease, usable (and the
  :class:`Trash` of deleted originals).

A collaborator that needs another's calls is handed it (labels reading: a rename reads the
image first; editing grouping: a new picture is grouped at once; storing grouping and
deleting: an upload is grouped, a claim waits on delete leases), so each module imports only
what it uses and none reaches for the whole.

A :class:`Library` answers in :class:`~avenue.media.records.Image` records, never files
documents: fetch by id (optionally scoped to an owner), page through originals, find by
content, set[Any] metadata, store / store many / bring from another bucket / delete, and the
delete leases that let a blueprint delete an image only when nothing refers to it.

Delete leases (``metadata.deleting_at``). Whoever deletes an image that documents elsewhere
may refer to (products, pages) takes the lease *before* looking for references; whoever
adds a reference writes it *before* checking the image (:meth:`Library.usable`, or
:meth:`Library.claim`, which waits for leases to resolve). Whatever the interleaving, either
the deleter sees the new reference (and keeps the image) or the adder sees the lease. A
deleter that crashed leaves a lease that lapses after :data:`DELETE_LEASE`.

Claiming (:meth:`Library.claim`): uploads, or images of another bucket (temp images), are
stored or copied into this bucket, the caller (a :class:`Claimant`) attaches them (its own
reference write), and every attached image is then checked: one that a concurrent delete
removed in between is brought in again from its source, which is still there because
sources in another bucket are deleted only after that check, and the claimant repoints its
reference at the new copy; if the reference write fails, the claimant releases what the
claim created. A crash at any point leaves either unreferenced files
(``gc`` collects them) or temp images that expire; never a reference to nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypeAlias, TypeVar

from bson import ObjectId
from pymongo.database import Database

from avenue.media.core import Media
from avenue.media.effects.facets import ROOT_FOLDER
from avenue.media.ingest.edits import Box, CropBody, Edits, EditsBody
from avenue.media.ingest.focal import FocalBody, FocalPoint
from avenue.media.ingest.images import Limits
from avenue.media.ingest.near_hash import parse_colour
from avenue.media.names import NameBody
from avenue.media.records import Changed, Document, ExactGroup, Image, Near, NearGroup, Stored
from avenue.media.store.library.deleting import (
    LEASE_WAIT_SECONDS,
    DeleteLease,
    Deleting,
    Restored,
    Trash,
    Trashed,
)
from avenue.media.store.library.editing import Editing
from avenue.media.store.library.grouping import Grouping
from avenue.media.store.library.labels import SET_ATTEMPTS, SETTABLE, Labels, TooManyTags
from avenue.media.store.library.reading import LISTS, NEWEST_FIRST, ORDERS, BadOrder, Reading, listed
from avenue.media.store.library.shelf import DELETE_LEASE, Shelf
from avenue.media.store.library.storing import Claimant, Storing
from avenue.media.store.originals import Upload
from avenue.media.store.versions import Comparison, Version
from avenue.paging import Page, Window

__all__ = [
    "DELETE_LEASE", "LEASE_WAIT_SECONDS", "LISTS", "NEWEST_FIRST", "ORDERS", "SETTABLE",
    "SET_ATTEMPTS", "BadOrder", "Claimant", "DeleteLease", "Deleting", "Editing", "Grouping", "Labels",
    "Library", "Originals", "Reading", "Restored", "Shelf", "Storing", "TooManyTags", "Trash", "Trashed",
    "listed",
]


T = TypeVar("T")


class Originals(Protocol):
    """What callers outside the store use of a bucket's originals: each method is its
    collaborator's (the docstrings are there)."""

    # reading
    def get(self, image_id: ObjectId, *, owner: str | None = None) -> Image | None: ...
    def get_many(self, image_ids: Iterable[ObjectId]) -> dict[ObjectId, Image]: ...
    def existing_ids(self, image_ids: Iterable[ObjectId]) -> set[ObjectId]: ...
    def page(self, window: Window, *, owner: str | None = None, search: str = "",
             folder: str | None = None, tags: Sequence[str] = (),
             colour: str | None = None,
             older_than: dt.datetime | None = None, order: str = "newest") -> tuple[list[Image], Page]: ...
    def folder_counts(self, limit: int = 1000) -> list[tuple[str, int]]: ...
    def tag_counts(self, limit: int = 1000) -> list[tuple[str, int]]: ...
    def find_by_content(self, source_sha256: str, *, scope: str = "") -> Image | None: ...
    def read(self, image: Image) -> bytes: ...
    # labels
    def set_metadata(self, image_id: ObjectId, **fields: Any) -> Image | None: ...
    def rename(self, image_id: ObjectId, name: str | None) -> Changed | None: ...
    def relabel(self, image_id: ObjectId, *, folder: str | None = None, add_tags: Sequence[str] = (),
                remove_tags: Sequence[str] = (), max_tags: int | None = None) -> Image | None: ...
    # storing
    def store(self, upload: Upload, *, owner: str | None = None, limits: Limits | None = None,
              kind: str = "upload", scope: str = "", visibility: str = "public",
              alt: str | None = None, expires_at: dt.datetime | None = None,
              folder: str | None = None, tags: list[str] | None = None, revive: bool = True) -> Stored: ...
    def store_many(self, uploads: Sequence[Upload], *, owner: str | None = None,
                   limits: Limits | None = None, kind: str = "upload", scope: str = "",
                   visibility: str = "public", alt: str | None = None,
                   expires_at: dt.datetime | None = None, folder: str | None = None,
                   tags: list[str] | None = None, revive: bool = True) -> list[Stored]: ...
    def claim(self, sources: Sequence[Upload | Image], claimant: Claimant[T], *, kind: str,
              owner: str | None = None, limits: Limits | None = None,
              revive: bool = True) -> tuple[T, dict[ObjectId, Image]]: ...
    # editing
    def replace(self, image_id: ObjectId, upload: Upload | None = None, *, focal: FocalPoint | None = None,
                limits: Limits | None = None,
                refs: dict[str, Any] | None = None) -> Changed | None: ...
    def edit(self, image_id: ObjectId, edits: Edits | None, *, refs: dict[str, Any] | None = None
             ) -> Changed | None: ...
    def set_crop(self, image_id: ObjectId, name: str, box: Box | None, *, refs: dict[str, Any] | None = None
                 ) -> Changed | None: ...
    def versions(self, image_id: ObjectId) -> list[Version] | None: ...
    def restore_version(self, image_id: ObjectId, version_id: str, *, limits: Limits | None = None,
                        refs: dict[str, Any] | None = None) -> Changed | None: ...
    def version_preview(self, image_id: ObjectId, version_id: str) -> bytes | None: ...
    def compare_versions(self, image_id: ObjectId, before: str, after: str
                         ) -> tuple[Comparison, bytes] | None: ...
    # grouping
    def near_duplicates(self, image: Image) -> list[Near]: ...
    def near_groups(self, window: Window, *, owner: str | None = None
                    ) -> tuple[list[NearGroup], str | None]: ...
    def exact_groups(self, window: Window) -> tuple[list[ExactGroup], str | None]: ...
    # deleting
    def delete(self, image: Image | ObjectId, *, to_trash: dict[str, Any] | None = None) -> bool: ...
    def take_delete_lease(self, image_id: ObjectId) -> DeleteLease | None: ...
    def release_delete_lease(self, lease: DeleteLease) -> None: ...
    def usable(self, image_ids: Iterable[ObjectId]) -> dict[ObjectId, Image]: ...


class Library:
    """The originals of one GridFS bucket: six collaborators on one shelf, publishing
    :class:`Originals` (each method bound to the collaborator that implements it)."""

    # What its methods take and answer in, reached through the class so that the library door
    # (avenue/media/__init__.py) lists one name for them: records.py's, an upload, a delete
    # lease, a trashed image (AppMedia.trash), a version and a comparison of two, the root
    # folder, and a colour filter's parse (page's ``colour``).
    Stored: TypeAlias = Stored
    Changed: TypeAlias = Changed
    Near: TypeAlias = Near
    Upload: TypeAlias = Upload
    DeleteLease: TypeAlias = DeleteLease
    Trashed: TypeAlias = Trashed
    Version: TypeAlias = Version
    Comparison: TypeAlias = Comparison
    ROOT_FOLDER = ROOT_FOLDER
    parse_colour = staticmethod(parse_colour)
    # What an image's changes are (replace's focal point, edit's edits, set_crop's box) and the
    # request bodies they and rename's name are read from.
    FocalPoint: TypeAlias = FocalPoint
    Edits: TypeAlias = Edits
    Box: TypeAlias = Box
    FocalBody: TypeAlias = FocalBody
    EditsBody: TypeAlias = EditsBody
    CropBody: TypeAlias = CropBody
    NameBody: TypeAlias = NameBody

    def __init__(self, db: Database[Document], bucket: str, media: Media) -> None:
        self.shelf = shelf = Shelf(db, bucket, media)
        self.reading = reading = Reading(shelf)
        self.grouping = grouping = Grouping(shelf)
        self.deleting = deleting = Deleting(shelf)
        self.labels = labels = Labels(shelf, reading)
        self.editing = editing = Editing(shelf, grouping)
        self.storing = storing = Storing(shelf, grouping, deleting)
        self.get, self.get_many, self.existing_ids = reading.get, reading.get_many, reading.existing_ids
        self.page, self.folder_counts, self.tag_counts = (reading.page, reading.folder_counts,
                                                          reading.tag_counts)
        self.find_by_content, self.read = reading.find_by_content, reading.read
        self.set_metadata, self.rename, self.relabel = labels.set_metadata, labels.rename, labels.relabel
        self.store, self.store_many, self.claim = storing.store, storing.store_many, storing.claim
        self.replace, self.edit, self.set_crop = editing.replace, editing.edit, editing.set_crop
        self.versions, self.restore_version = editing.versions, editing.restore_version
        self.version_preview, self.compare_versions = editing.version_preview, editing.compare_versions
        self.near_duplicates = grouping.near_duplicates
        self.near_groups, self.exact_groups = grouping.near_groups, grouping.exact_groups
        self.delete, self.usable = deleting.delete, deleting.usable
        self.take_delete_lease = deleting.take_delete_lease
        self.release_delete_lease = deleting.release_delete_lease
