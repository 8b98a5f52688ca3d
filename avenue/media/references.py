"""Who refers to an image: one owner per kind of document, asked through one small interface.

Images are stored here; the documents that use them are not. Products belong to the shop
(``avenue/shop/references.py``), pages to the builder (``avenue/builder/references.py``):
each owner implements :class:`References` for its documents, the app factory hands them (each
an :data:`Owner`, built on a database when asked) to the app's media core, and
:meth:`avenue.media.core.Media.referrers` gives them, on a database, as one :class:`Referrers`.
The status sweep and the ops jobs (gc, fsck, placeholders, backup, the legacy import) are
handed them; none of them reads another package's documents or spells its collection's name.

Every lookup by image id is one indexed query, and callers pass short lists (at most
:data:`IN_BATCH` ids): an ``$in`` of thousands costs time quadratic in its length on the
the embedded database. Walks over every document go by ``_id`` through one cursor, a batch at a
time, never holding a set of every id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from bson import ObjectId
from pymongo.collection import Collection
from pymongo.database import Database

from avenue.clock import now
from avenue.media.records import Document, Image

IN_BATCH = 50  # ids per lookup (the embedded database: 1,000 ids cost 4 s in one $in, 0.4 s in 50s)
REWRITE_ATTEMPTS = 5


class Rewrite(Protocol):
    """What a caller's plan makes of one document's list of references."""

    @property
    def value(self) -> list[Any]:
        """The list as it should be."""

    @property
    def rewritten(self) -> int:
        """How many entries the plan changed (0: nothing to write)."""


P = TypeVar("P", bound=Rewrite)
Progress = Callable[[int, int], None]


class References(Protocol):
    """The documents of one owner that refer to images of one bucket."""

    @property
    def kind(self) -> str:
        """What the documents are called in reports (``products``, ``pages``)."""

    @property
    def bucket(self) -> str:
        """The bucket whose images the documents refer to."""

    @property
    def collections(self) -> tuple[str, ...]:
        """The collections this owner keeps (a backup dumps and restores them whole)."""

    def users(self, image_ids: Sequence[ObjectId], *, text_ids: bool = False) -> dict[ObjectId, set[str]]:
        """The names (sku, slug) of the documents referring to each of ``image_ids`` that any
        document refers to, by one indexed query (``text_ids``: also references stored as the
        id's string, as old documents may hold them)."""

    def repoint(self, old: ObjectId, new: Image, *, within: str | None = None) -> int:
        """Point the references to ``old`` at ``new`` (only in the document named ``within``,
        when given); the number of documents changed."""

    def drop(self, image_id: ObjectId) -> list[str]:
        """Take every reference to ``image_id`` off the documents holding one; their names."""

    def refresh(self, images: Sequence[Image]) -> int:
        """Describe each of ``images`` (a batch) as it is now in the references that hold
        another version of it: a replace in place switches the image first and its referrers
        next, so a process that died in between left them on the earlier version. A
        compare-and-set on the version each holds (a newer writer's own update is never
        undone); the number of references changed."""

    def fill_placeholder(self, image_id: ObjectId, placeholder: Mapping[str, str]) -> int:
        """Give the references to ``image_id`` that have no placeholder this one; the number of
        documents changed (0 for documents that keep no copy of it)."""

    def lacking_placeholders(self, batch: int) -> Iterator[ObjectId]:
        """The image ids of references without a placeholder, a cursor of ``batch`` documents
        at a time (nothing for documents that keep no copy of it)."""

    def walk(self, after: Any, batch: int) -> Iterator[dict[str, Any]]:
        """Every document after the position ``after`` (None: from the first) in the owner's
        order (by ``_id`` through one cursor read ``batch`` documents at a time, or where
        that cursor is costly, as the products' on the embedded database, another unique
        order in bounded reads), as the owner's record of its references: ``_id``, ``name``,
        ``images`` (the entries as stored; a plain string is a legacy path) and
        ``position``, what ``after`` takes to go on after that document."""

    def rewrite(self, plan: Callable[[list[Any]], P], *, dry_run: bool,
                progress: Progress) -> Iterator[tuple[dict[str, Any], P]]:
        """Every document whose list of references is a list, by ``_id``: ``plan`` says what
        the list becomes, and when it changed any entry (and not ``dry_run``) the list, with
        whatever the owner keeps derived from it, is written by a compare-and-set on the list
        as read (a concurrent edit wins and the list is planned again). Yields each
        document's label (``{"sku": ...}``) and its last plan; ``progress(done, total)``."""


def rewrite_lists(collection: Collection[Document], array: str, name: str, plan: Callable[[list[Any]], P],
                  derive: Callable[[list[Any]], dict[str, Any]], *, dry_run: bool,
                  progress: Progress) -> Iterator[tuple[dict[str, Any], P]]:
    """:meth:`References.rewrite` over ``collection``, whose documents keep their references in
    ``array`` and are named by ``name``; ``derive`` gives the fields written with a new list.
    Not counted here: the command that rewrites references reconciles every counter after."""
    total = collection.count_documents({})
    cursor = collection.find({}, {name: 1, array: 1}).sort("_id", 1)
    for index, doc in enumerate(cursor, 1):
        if isinstance(doc.get(array), list):
            done = _rewrite_one(collection, doc, array, name, plan, derive, dry_run)
            if done is not None:
                yield done
        progress(index, total)


def _rewrite_one(collection: Collection[Document], doc: Document, array: str, name: str,
                 plan: Callable[[list[Any]], P], derive: Callable[[list[Any]], dict[str, Any]],
                 dry_run: bool) -> tuple[dict[str, Any], P] | None:
    seen: Document | None = doc
    for _ in range(REWRITE_ATTEMPTS):
        assert seen is not None
        result = plan(seen[array])
        if result.rewritten == 0 or dry_run:
            return {name: seen.get(name)}, result
        # Compare-and-swap on the list: a concurrent edit makes us read and plan again.
        update = {"$set": {array: result.value, **derive(result.value), "updated_at": now()}}
        if collection.update_one({"_id": seen["_id"], array: seen[array]}, update).matched_count:
            return {name: seen.get(name)}, result
        seen = collection.find_one({"_id": seen["_id"]}, {name: 1, array: 1})
        if seen is None or not isinstance(seen.get(array), list):
            return None
    raise RuntimeError(f"{collection.name} {doc.get(name)!r} kept changing during the import; "
                       "run import-legacy again")


class Referrers:
    """Every owner of documents that refer to images, on one database (the app's, from its
    :meth:`~avenue.media.core.Media.referrers`)."""

    def __init__(self, owners: Iterable[References] = ()) -> None:
        self._owners: dict[str, References] = {}
        for owner in owners:
            self.register(owner)

    def register(self, owner: References) -> None:
        if owner.kind in self._owners:
            raise ValueError(f"{owner.kind} already has an owner")
        self._owners[owner.kind] = owner

    def __iter__(self) -> Iterator[References]:
        return iter(self._owners.values())

    def of(self, kind: str) -> References:
        """The owner of ``kind`` documents (``products``, ``pages``)."""
        return self._owners[kind]

    def of_bucket(self, bucket: str) -> list[References]:
        """The owners whose documents refer to images of ``bucket``."""
        return [owner for owner in self if owner.bucket == bucket]

    def collections(self) -> tuple[str, ...]:
        """Every collection the owners keep, in registration order."""
        return tuple(name for owner in self for name in owner.collections)

    def referenced(self, bucket: str, image_ids: Sequence[ObjectId]) -> set[ObjectId]:
        """Which of ``image_ids`` (of ``bucket``) any owner's document refers to, asked
        :data:`IN_BATCH` ids at a time."""
        ids = list(dict.fromkeys(image_ids))
        found: set[ObjectId] = set()
        for owner in self.of_bucket(bucket):
            for start in range(0, len(ids), IN_BATCH):
                found.update(owner.users(ids[start:start + IN_BATCH]))
        return found


# An owner of referring documents as the app factory names it: built on a database when asked
# (ops and tests hand the app's other databases too: a restore's, a legacy import's).
Owner = Callable[[Database[Document]], References]
