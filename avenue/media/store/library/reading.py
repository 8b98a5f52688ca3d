"""Reading a bucket's originals: by id, by content, in pages (with the library's filters and
orders), the counts the writes keep, and an original's bytes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from avenue.clock import as_utc
from avenue.dialect import lister
from avenue.errors import BadRequest
from avenue.media.buckets import BUILDER, UPLOADS
from avenue.media.effects import counters, facets
from avenue.media.effects.facets import ROOT_FOLDER
from avenue.media.records import IMAGE, Document, Image, images_name, is_image
from avenue.media.store import near_duplicates, originals, trash
from avenue.media.store import replace as replacing
from avenue.media.store.indexes import COLOUR_INDEX
from avenue.media.store.library.shelf import Shelf
from avenue.paging import DateHints, Listed, Page, Window, decode_cursor, encode_cursor

# Lists of originals: the role (and owner) indexes end in these keys (avenue/media/store/indexes.py).
NEWEST_FIRST = [("uploadDate", DESCENDING), ("_id", DESCENDING)]


# The library's other orders (avenue/media/store/indexes.py: library_indexes, by role and by
# role with a folder or a tag, each ending in the order's keys; oldest first walks the newest
# index backwards). ``order`` → (sort, the index that holds it without a filter).
ORDERS: dict[str, tuple[list[tuple[str, int]], str]] = {
    "newest": (NEWEST_FIRST, "role_newest"),
    "oldest": ([("uploadDate", ASCENDING), ("_id", ASCENDING)], "role_newest"),
    "name": ([("filename", ASCENDING), ("_id", ASCENDING)], "role_name"),
    "size": ([("length", DESCENDING), ("_id", DESCENDING)], "role_size"),
}


class BadOrder(BadRequest):
    """An order the list does not offer, or not with that filter."""

    code = "invalid_sort"


def upload_dates(db: Database[Document], collection: str) -> DateHints:
    """Where a bucket's upload dates lie, and how many originals it holds (its counters): the
    hints a first build of its list of originals' fences reads in windows by (on the embedded
    database: avenue/embedded/fences.py)."""
    # ``collection`` is the bucket's records (records.images_name): the bucket is its name's head.
    figures = counters.of(db, collection.rpartition(".")[0])
    return DateHints(figures["oldest"], figures["newest"], figures["originals"])


def listed(bucket: str) -> Listed:
    """The list of a bucket's originals, newest first (what :meth:`Library.page` pages)."""
    return Listed(images_name(bucket), IMAGE, NEWEST_FIRST, "role_newest", hints=upload_dates)


#: The lists the API pages through, whose fences the status sweep builds on the embedded database.
LISTS = (listed(UPLOADS), listed(BUILDER), trash.LISTED)


class Reading:
    """Fetch by id, page through originals, find by content, the folder and tag counts."""

    def __init__(self, shelf: Shelf) -> None:
        self.shelf = shelf

    # Lookups ask by ``_id`` alone and check the rest here: a filter of ``_id`` plus other
    # fields is a collection scan on the embedded database's planner (tests/api/test_index_usage.py).

    def get(self, image_id: ObjectId, *, owner: str | None = None) -> Image | None:
        """The original ``image_id`` (only if ``owner`` uploaded it, when given), or None."""
        doc = self.shelf.images.find_one({"_id": image_id})
        if doc is None or not is_image(doc):
            return None
        if owner is not None and doc["metadata"].get("owner") != owner:
            return None
        return self.shelf.image(doc)

    def get_many(self, image_ids: Iterable[ObjectId]) -> dict[ObjectId, Image]:
        """The originals among ``image_ids`` that exist, by id (one query)."""
        ids = list(dict.fromkeys(image_ids))
        if not ids:
            return {}
        return {doc["_id"]: self.shelf.image(doc) for doc in self.shelf.images.find({"_id": {"$in": ids}})
                if is_image(doc)}

    def existing_ids(self, image_ids: Iterable[ObjectId]) -> set[ObjectId]:
        """Which of ``image_ids`` name an image of this bucket (a record, by its id alone)."""
        ids = list(dict.fromkeys(image_ids))
        if not ids:
            return set()
        return {doc["_id"] for doc in self.shelf.images.find({"_id": {"$in": ids}}, {"_id": 1})}

    def page(self, window: Window, *, owner: str | None = None, search: str = "",
             folder: str | None = None, tags: Sequence[str] = (),
             colour: str | None = None,
             older_than: dt.datetime | None = None, order: str = "newest") -> tuple[list[Image], Page]:
        """Originals newest first (optionally one owner's, or whose filename has a word starting
        with each word of ``search``, or in ``folder``, or carrying every one of ``tags``, or
        mostly close to ``colour``, ``#rrggbb``, or uploaded before ``older_than``), one page
        of them (avenue/paging.py); ``order`` (:data:`ORDERS`: newest, oldest, name, size) sorts
        the builder library's lists otherwise, alone or with a folder or a tag (their indexes);
        a filename search and a colour list newest first only."""
        if order not in ORDERS:
            raise BadOrder(f"sort is one of {', '.join(ORDERS)}.")
        if order != "newest" and (search.strip() or colour is not None or owner is not None
                                  or (order in ("name", "size") and self.shelf.bucket != BUILDER)):
            raise BadOrder("A search by file name or by colour lists newest first; sort by date, name or "
                           "size with the folder, tag and unused filters.")
        query: dict[str, Any] = dict(IMAGE)
        if colour is not None:
            # Only originals carry colour cells: the cells alone select, on their own index.
            query = near_duplicates.colour_query(colour)
        if owner is not None:
            query["metadata.owner"] = owner
        words = originals.name_words(search)
        if search.strip() and not words:
            return [], Page([], 0, True, None)  # punctuation only: no filename word matches it
        if words:
            # Only originals carry name_prefixes: the words alone select, on their own index.
            # One word is an index equality everywhere; several are an $all (mongod bounds
            # the index by one of them, the embedded database scans).
            first = sorted(words, key=len, reverse=True)
            # With a colour too: mongod bounds one of the two multikey indexes, the embedded database scans
            # (like several words).
            query = {**({} if colour is None else query),
                     "metadata.name_prefixes": first[0] if len(words) == 1 else {"$all": first}}
            if owner is not None:
                query["metadata.owner"] = owner
        if folder is not None:
            # Images stored before folders existed have none: they are in the root.
            query["metadata.folder"] = {"$in": [ROOT_FOLDER, None]} if folder == ROOT_FOLDER else folder
        if tags:
            query["metadata.tags"] = tags[0] if len(tags) == 1 else {"$all": list(tags)}
        if older_than is not None:
            window = self._older_than(window, older_than, order)
        total = None if colour is not None else self._known_total(
            owner=owner, words=bool(words), folder=folder, tags=tags)
        sort, index = ORDERS[order]
        if colour is not None and not words:  # the colour list walks its own index, hinted
            index = COLOUR_INDEX
        # A list by date: where its dates lie, for the fenced lister's first windows (asked only
        # there, and only while the list has no fences and its kept size says it is large).
        records = self.shelf.images
        hints = (lambda: upload_dates(self.shelf.db, records.name)) if sort[0][0] == "uploadDate" else None
        page = lister(self.shelf.db)(records, query, sort, window, index=index,
                                     index_serves_filter=index == COLOUR_INDEX, total=total, hints=hints)
        return [self.shelf.image(doc) for doc in page.docs], page

    @staticmethod
    def _older_than(window: Window, older_than: dt.datetime, order: str) -> Window:
        """``window`` started at ``older_than`` in the newest-first list: a cursor just past
        that date, so the age is the start of the same index walk (a range on the date beside
        a cursor's range is a collection scan on the embedded database's planner)."""
        if order != "newest":
            raise BadOrder("The unused filter lists newest first.")
        if window.page != 1:
            raise BadRequest("The unused filter goes on with after=<next> only.", code="invalid_pagination")
        bound = older_than - dt.timedelta(milliseconds=1)
        if window.after is not None:
            at = decode_cursor(window.after, 2)[0]
            if isinstance(at, dt.datetime) and as_utc(at) <= as_utc(bound):
                return window  # already past the age
        return Window(1, window.per_page, encode_cursor([bound, ObjectId("f" * 24)]))

    def _known_total(self, *, owner: str | None, words: bool, folder: str | None,
                     tags: Sequence[str]) -> int | None:
        """The list's size when a figure kept with every write gives it: the bucket's
        originals (no filter; once reconciled), one folder's or one tag's count (the facets);
        None otherwise (the list counts its matches)."""
        if owner is not None or words or (folder is not None and tags) or len(tags) > 1:
            return None
        if folder is not None:
            return facets.count(self.shelf.db, self.shelf.bucket, "folder", folder)
        if tags:
            return facets.count(self.shelf.db, self.shelf.bucket, "tag", tags[0])
        return counters.originals(self.shelf.db, self.shelf.bucket)

    def folder_counts(self, limit: int = 1000) -> list[tuple[str, int]]:
        """(folder, originals in it) for every folder in use, by folder, at most ``limit``: the
        counts kept with every write (avenue/media/effects/facets.py), not a scan of the library."""
        return facets.counts(self.shelf.db, self.shelf.bucket, "folder", limit)

    def tag_counts(self, limit: int = 1000) -> list[tuple[str, int]]:
        """(tag, originals carrying it) for every tag in use, by tag, at most ``limit`` (kept
        with every write, like the folders)."""
        return facets.counts(self.shelf.db, self.shelf.bucket, "tag", limit)

    def find_by_content(self, source_sha256: str, *, scope: str = "") -> Image | None:
        """The original stored from these bytes (their SHA-256) within ``scope``, if any."""
        doc = self.shelf.images.find_one({"metadata.key": originals.dedupe_key(source_sha256, scope)})
        return None if doc is None else self.shelf.image(doc)

    def read(self, image: Image) -> bytes:
        """The original's bytes (for repairs and re-rendering; requests stream instead)."""
        doc = self.shelf.images.find_one({"_id": image.id})
        if doc is None:
            raise OSError(f"{self.shelf.bucket} {image.id} does not exist")
        return replacing.read_original(self.shelf.db, self.shelf.bucket, doc)
