"""One bucket's originals behind a small interface: the only door to GridFS the blueprints use.

:class:`Library` is the sum of six concerns, one class and module each, all standing on one
:class:`~avenue.media.store.library.shelf.Shelf` (the bucket's files, the app's Media):

- ``reading``: get, get_many, existing_ids, page, folder_counts, tag_counts, find_by_content, read;
- ``labels``: set_metadata, rename, relabel;
- ``storing``: store, store_many, store_with, bring, claim;
- ``editing``: replace, edit, set_crop, versions, restore_version, version_preview,
  compare_versions;
- ``grouping``: near_duplicates, link_near_duplicates, near_groups, exact_groups,
  link_exact_duplicates, recheck_exact_groups;
- ``deleting``: delete, take_delete_lease, release_delete_lease, usable (and the
  :class:`Trash` of deleted originals).

A concern that needs another's calls derives from it (labels from reading: a rename reads the
image first; editing from grouping: a new picture is grouped at once; storing from grouping,
reading and deleting: an upload is grouped, a claim reads and deletes its sources), so each
module imports only what it uses and no concern reaches for the whole.

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
from avenue.media.store.library.shelf import DELETE_LEASE, ORIGINAL, Shelf
from avenue.media.store.library.storing import Claimant, Storing

__all__ = [
    "DELETE_LEASE", "LEASE_WAIT_SECONDS", "LISTS", "NEWEST_FIRST", "ORDERS", "ORIGINAL", "SETTABLE",
    "SET_ATTEMPTS", "BadOrder", "Claimant", "DeleteLease", "Deleting", "Editing", "Grouping", "Labels",
    "Library", "Reading", "Restored", "Shelf", "Storing", "TooManyTags", "Trash", "Trashed", "listed",
]


class Library(Storing, Editing, Labels, Grouping, Reading, Deleting):
    """The originals of one GridFS bucket: every concern above, on one shelf."""
