"""One bucket's originals behind a small interface: the only door to GridFS the blueprints use.

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
import io
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from time import monotonic, sleep
from typing import Any, Protocol, TypeVar

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.database import Database

from avenue.clock import as_utc, maybe_utc, now
from avenue.errors import BadRequest
from avenue.leases import held, stamp, unstamp
from avenue.media.buckets import BUILDER, UPLOADS
from avenue.media.core import Media, MediaSettings
from avenue.media.effects import counters, facets, invalidation
from avenue.media.effects.facets import ROOT_FOLDER
from avenue.media.ingest.budget import Reservation, decode_budget
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
from avenue.media.records import Changed, Document, ExactGroup, Image, Near, NearGroup, Stored
from avenue.media.store import exact, nearby, originals, trash, versions
from avenue.media.store import replace as replacing
from avenue.media.store.indexes import COLOUR_INDEX
from avenue.media.store.options import UploadOptions
from avenue.media.store.originals import Upload
from avenue.media.store.versions import Comparison, Version
from avenue.paging import DateHints, Listed, Page, Window, decode_cursor, encode_cursor, fetch

log = logging.getLogger(__name__)

DELETE_LEASE = dt.timedelta(seconds=60)
SET_ATTEMPTS = 5
LEASE_WAIT_SECONDS = 5.0
ORIGINAL = {"metadata.role": "original"}
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
    """Where a bucket's upload dates lie, and how many files it holds (its counters): the
    hints a first build of its list's fences reads in windows by (paging.build_fences)."""
    figures = counters.of(db, collection.removesuffix(".files"))
    return DateHints(figures["oldest"], figures["newest"], figures["files"])


def listed(bucket: str) -> Listed:
    """The list of a bucket's originals, newest first (what :meth:`Library.page` pages)."""
    return Listed(f"{bucket}.files", ORIGINAL, NEWEST_FIRST, "role_newest", hints=upload_dates)


#: The lists the API pages through, whose fences the status sweep builds (avenue/paging.py).
LISTS = (listed(UPLOADS), listed(BUILDER), trash.LISTED)

# The metadata an API may change on a stored original (everything else describes the bytes).
SETTABLE = frozenset({"alt", "expires_at", "folder", "tags", "name"})
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class TooManyTags(BadRequest):
    """Tags added to an image would carry it past the most an image may have."""

    code = "too_many_tags"


class Claimant(Protocol[T_co]):
    """The referrer's side of :meth:`Library.claim`: its own reference write, and what to do
    with an image it claimed when that write fails or the image is deleted under it (the
    three steps of the claim's write order, see the module docstring)."""

    def attach(self, stored: list[Stored]) -> tuple[T_co, list[Image]]:
        """Write the references to ``stored``: the result, and the images attached."""

    def release(self, image: Image) -> object:
        """Delete ``image``, created by the claim, if nothing refers to it (the write failed)."""

    def repoint(self, old: Image, new: Image) -> None:
        """Point the references this claim wrote to ``old`` (deleted meanwhile) at ``new``."""


@dataclass(frozen=True)
class DeleteLease:
    """A delete lease held on an image (see the module docstring): its ``metadata.deleting_at``
    stamp and the time it holds (a stamp of avenue/leases.py, not a :class:`avenue.leases.Lease`
    document with an owner and a heartbeat)."""

    image: Image
    at: dt.datetime


def _is_original(doc: dict[str, Any] | None) -> bool:
    return doc is not None and (doc.get("metadata") or {}).get("role") == "original"


class Library:
    """The originals of one GridFS bucket."""

    def __init__(self, db: Database[Document], bucket: str, media: Media | None = None) -> None:
        """``media``: the app's (``avenue.media.app_media``), whose settings the trash, replace
        and renders of stored originals follow and which runs the work left for after the
        answer; none, no app: the defaults, that work done at once."""
        self.db = db
        self.bucket = bucket
        self.media = media or Media()
        self.settings: MediaSettings = self.media.settings

    @property
    def _files(self) -> Collection[Document]:
        return self.db[f"{self.bucket}.files"]

    def _image(self, doc: dict[str, Any]) -> Image:
        return Image.from_files_doc(self.bucket, doc)

    # --- reads ---------------------------------------------------------------------------

    # Lookups ask by ``_id`` alone and check the rest here: a filter of ``_id`` plus other
    # fields is a collection scan on SecantusDB's planner (tests/api/test_index_usage.py).

    def get(self, image_id: ObjectId, *, owner: str | None = None) -> Image | None:
        """The original ``image_id`` (only if ``owner`` uploaded it, when given), or None."""
        doc = self._files.find_one({"_id": image_id})
        if doc is None or not _is_original(doc):
            return None
        if owner is not None and doc["metadata"].get("owner") != owner:
            return None
        return self._image(doc)

    def get_many(self, image_ids: Iterable[ObjectId]) -> dict[ObjectId, Image]:
        """The originals among ``image_ids`` that exist, by id (one query)."""
        ids = list(dict.fromkeys(image_ids))
        if not ids:
            return {}
        return {doc["_id"]: self._image(doc) for doc in self._files.find({"_id": {"$in": ids}})
                if _is_original(doc)}

    def existing_ids(self, image_ids: Iterable[ObjectId]) -> set[ObjectId]:
        """Which of ``image_ids`` name a file of this bucket (original or not)."""
        ids = list(dict.fromkeys(image_ids))
        if not ids:
            return set()
        return {doc["_id"] for doc in self._files.find({"_id": {"$in": ids}}, {"_id": 1})}

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
                                  or (order in ("name", "size") and self.bucket != BUILDER)):
            raise BadOrder("A search by file name or by colour lists newest first; sort by date, name or "
                           "size with the folder, tag and unused filters.")
        query: dict[str, Any] = dict(ORIGINAL)
        if colour is not None:
            # Only originals carry colour cells: the cells alone select, on their own index.
            query = nearby.colour_query(colour)
        if owner is not None:
            query["metadata.owner"] = owner
        words = originals.name_words(search)
        if search.strip() and not words:
            return [], Page([], 0, True, None)  # punctuation only: no filename word matches it
        if words:
            # Only originals carry name_prefixes: the words alone select, on their own index.
            # One word is an index equality everywhere; several are an $all (mongod bounds
            # the index by one of them, SecantusDB scans).
            first = sorted(words, key=len, reverse=True)
            # With a colour too: mongod bounds one of the two multikey indexes, SecantusDB scans
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
        page = fetch(self._files, query, sort, window, index=index, index_serves_filter=index == COLOUR_INDEX,
                     total=total)
        return [self._image(doc) for doc in page.docs], page

    @staticmethod
    def _older_than(window: Window, older_than: dt.datetime, order: str) -> Window:
        """``window`` started at ``older_than`` in the newest-first list: a cursor just past
        that date, so the age is the start of the same index walk (a range on the date beside
        a cursor's range is a collection scan on SecantusDB's planner)."""
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
            return facets.count(self.db, self.bucket, "folder", folder)
        if tags:
            return facets.count(self.db, self.bucket, "tag", tags[0])
        return counters.originals(self.db, self.bucket)

    def folder_counts(self, limit: int = 1000) -> list[tuple[str, int]]:
        """(folder, originals in it) for every folder in use, by folder, at most ``limit``: the
        counts kept with every write (avenue/media/effects/facets.py), not a scan of the library."""
        return facets.counts(self.db, self.bucket, "folder", limit)

    def tag_counts(self, limit: int = 1000) -> list[tuple[str, int]]:
        """(tag, originals carrying it) for every tag in use, by tag, at most ``limit`` (kept
        with every write, like the folders)."""
        return facets.counts(self.db, self.bucket, "tag", limit)

    def find_by_content(self, source_sha256: str, *, scope: str = "") -> Image | None:
        """The original stored from these bytes (their SHA-256) within ``scope``, if any."""
        doc = self._files.find_one({"metadata.key": originals.dedupe_key(source_sha256, scope)})
        return None if doc is None else self._image(doc)

    def read(self, image: Image) -> bytes:
        """The original's bytes (for repairs and re-rendering; requests stream instead)."""
        doc = self._files.find_one({"_id": image.id})
        if doc is None:
            raise OSError(f"{self.bucket} {image.id} does not exist")
        return replacing.read_original(self.db, self.bucket, doc)

    # --- writes --------------------------------------------------------------------------

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
        readies = originals.validate_all(self.db, self.bucket, list(uploads), options, limits=limits)
        # The near-duplicates are looked up while the originals are written (nearby.Lookup):
        # the hash is known once validated, and the write is the slow part.
        probes = [ready.probe(options.owner) for ready in readies]
        lookup = nearby.Lookup(self.db, self.bucket, [(doc, self._near_owner(doc)) for doc in probes],
                               began=began)
        try:
            results = originals.write_all(self.db, self.bucket, readies, options, self.media)
        except BaseException:
            lookup.stop()
            raise
        try:
            # One indexed query each here; the full decodes and the link after the answer.
            self._link_exact_later([result.doc for result in results if result.created])
        except BaseException:
            lookup.stop()  # the request fails: its images owe their grouping (nearby.PENDING)
            raise
        # After the twins' query: on the embedded database the lookup begins here, and a query
        # sent after it waited for it whole (1.28x at a million images' density, where the
        # answer does not wait for the lookup itself: bench/results/near-duplicates-*.md).
        found = lookup.finish([result.doc if result.created else None for result in results])
        stored = []
        for result, matches in zip(results, found, strict=True):
            # Never the image itself (another upload of the same bytes may have won the write).
            near = None if matches is None else tuple(
                Near(self._image(m.doc), m.distance) for m in matches if m.doc["_id"] != result.doc["_id"])
            stored.append(Stored(self._image(result.doc), result.created, near))
        return stored

    # --- near-duplicates (avenue/media/store/nearby.py) ----------------------------------

    def _near_owner(self, doc: dict[str, Any]) -> str | None:
        """Whose images may match ``doc``: in the uploads bucket each user's own only (one
        user never learns of another's images); everyone's elsewhere."""
        return (doc.get("metadata") or {}).get("owner") if self.bucket == UPLOADS else None

    def near_duplicates(self, image: Image) -> list[Near]:
        """The originals of this bucket that look like ``image`` (within
        ``likeness.NEAR``), nearest first; never itself, never a trashed one."""
        doc = self._files.find_one({"_id": image.id})
        if doc is None or not _is_original(doc):
            return []
        return [Near(self._image(m.doc), m.distance)
                for m in nearby.near(self.db, self.bucket, doc, owner=self._near_owner(doc))]

    def link_near_duplicates(self, image_id: ObjectId) -> int:
        """Put the original ``image_id`` in a group with its near-duplicates (what an upload
        does; for images hashed later or whose upload's lookup failed, ``flask likeness``):
        how many it has."""
        doc = self._files.find_one({"_id": image_id})
        return 0 if doc is None or not _is_original(doc) else len(self._link(doc))

    def _link(self, doc: dict[str, Any]) -> tuple[Near, ...]:
        """Look up the original ``doc``'s near-duplicates, group it with them and clear what it
        owed: the matches, nearest first (an answer names them as they are)."""
        matches = nearby.near(self.db, self.bucket, doc, owner=self._near_owner(doc))
        nearby.link(self.db, self.bucket, doc, matches)
        nearby.settled(self.db, self.bucket, doc["_id"])
        return tuple(Near(self._image(m.doc), m.distance) for m in matches)

    def _changed(self, done: replacing.Replaced | None) -> Changed | None:
        """A replace's or an edit's outcome; a new picture (a new hash: it owes its grouping,
        ``metadata.near_pending``) is grouped with its new look-alikes at once, and those are
        handed on for the answer. A focal point or a crop keeps the picture and its group."""
        if done is None:
            return None
        owed = done.changed and bool((done.doc.get("metadata") or {}).get(nearby.PENDING_FIELD))
        if owed:  # the answer names no exact group: linked after it, as an upload's
            self._link_exact_later([done.doc])
        return Changed(self._image(done.doc), done.changed, self._link(done.doc) if owed else None)

    def near_groups(self, window: Window, *, owner: str | None = None) -> tuple[list[NearGroup], str | None]:
        """Groups of near-duplicates, ``window.per_page`` of them after ``window.after`` (a
        previous answer's ``next``; numbered pages are not offered): the groups and the next
        cursor (None: the last page)."""
        if window.page != 1:
            raise BadRequest("Near-duplicate groups are listed with after=<next> only.",
                             code="invalid_pagination")
        after = decode_cursor(window.after, 1)[0] if window.after is not None else None
        if after is not None and not isinstance(after, ObjectId):
            raise BadRequest("This cursor was not handed out by this list.", code="invalid_cursor")
        found, last = nearby.groups(self.db, self.bucket, after=after, limit=window.per_page, owner=owner)
        return ([NearGroup(g.label, [self._image(d) for d in g.docs]) for g in found],
                encode_cursor([last]) if last is not None else None)

    def exact_groups(self, window: Window) -> tuple[list[ExactGroup], str | None]:
        """Groups of exact duplicates (same bytes or same pixels, ``store/exact.py``), paged as
        :meth:`near_groups`."""
        after = self._group_cursor(window, "Duplicate")
        found, last = exact.groups(self.db, self.bucket, after=after, limit=window.per_page)
        return ([ExactGroup(g.label, g.kind, [self._image(d) for d in g.docs]) for g in found],
                encode_cursor([last]) if last is not None else None)

    def link_exact_duplicates(self, image_id: ObjectId) -> bool:
        """Put the original ``image_id`` in its exact group (after an upload's answer; ``flask
        likeness`` for images hashed later or still owing it, ``metadata.exact_pending``):
        whether it has twins. Once the link ran (twins or none) the image owes it no more; a
        full-resolution decode the budget refuses leaves it owed (False: not linked now)."""
        doc = self._files.find_one({"_id": image_id})
        if doc is None or not _is_original(doc):
            return False
        try:
            label = exact.link(self.db, self.bucket, doc, self._hold)
        except exact.Refused:
            return False
        if doc["metadata"].get(exact.PENDING_FIELD):
            exact.settled(self.db, self.bucket, image_id)
        return label is not None

    def _link_exact_later(self, docs: list[dict[str, Any]]) -> None:
        """Link the originals ``docs``, just written, to their exact twins after the answer (no
        answer names an exact group: store/exact.py, "After the answer"). Here only whether each
        has candidates (one indexed query); those that have are marked as owing the link (one
        update, so a worker that dies before the link leaves it to ``flask likeness``), then
        linked by a job handed to the Media's ``later``: the full-resolution decodes, in this
        library's decode budget, happen there. Those without candidates owe and decode nothing."""
        owed = [doc["_id"] for doc in docs if exact.candidates(self.db, self.bucket, doc)]
        if not owed:
            return
        exact.owe(self.db, self.bucket, owed)

        def job() -> None:
            for image_id in owed:
                try:
                    self.link_exact_duplicates(image_id)
                except Exception:  # noqa: BLE001 - logged; it still owes the link: flask likeness
                    log.exception("linking the exact twins of %s %s failed", self.bucket, image_id)

        self.media.later(job)

    def recheck_exact_groups(self) -> int:
        """Members of exact groups linked on the thumb's key alone whose full-resolution pixels
        differ leave their group (store/exact.py ``recheck``); how many."""
        return exact.recheck(self.db, self.bucket, self._hold)

    def _hold(self, decoding: int, working: int) -> Reservation:
        """Bytes of the decode budget, as renders of stored originals take them."""
        settings = self.settings
        budget = decode_budget(settings.decode_budget_bytes)
        return budget.hold(decoding, working, settings.decode_wait_seconds)

    def _group_cursor(self, window: Window, what: str) -> ObjectId | None:
        if window.page != 1:
            raise BadRequest(f"{what} groups are listed with after=<next> only.", code="invalid_pagination")
        after = decode_cursor(window.after, 1)[0] if window.after is not None else None
        if after is not None and not isinstance(after, ObjectId):
            raise BadRequest("This cursor was not handed out by this list.", code="invalid_cursor")
        return after

    def set_metadata(self, image_id: ObjectId, **fields: Any) -> Image | None:
        """Change what the API may change about an original (alt text, expiry); None if gone."""
        unknown = set(fields) - SETTABLE
        if unknown:
            raise ValueError(f"not settable: {sorted(unknown)}")
        return self._set_from(image_id, lambda _meta: fields)

    def rename(self, image_id: ObjectId, name: str | None) -> Changed | None:
        """Give the original ``image_id`` the readable name ``name`` (a slug of
        avenue/media/names.py; None: none) for its public named URL; None if gone. Every
        worker's cache forgets the image (the URL of the name it had answers 301 from now on,
        within a sync interval on other workers)."""
        before = self.get(image_id)
        if before is None:
            return None
        if before.name == name:
            return Changed(before, False)
        after = self.set_metadata(image_id, name=name)
        if after is None:
            return None
        invalidation.invalidate(self.db, self.bucket, [image_id])
        return Changed(after, True)

    def relabel(self, image_id: ObjectId, *, folder: str | None = None, add_tags: Sequence[str] = (),
                remove_tags: Sequence[str] = (), max_tags: int | None = None) -> Image | None:
        """Move an original to ``folder`` and/or add and remove tags, computed on the labels it
        has as the write finds them (a bulk change never undoes an edit made meanwhile); None
        if gone. ``TooManyTags`` when the added tags would carry it past ``max_tags``."""
        def plan(meta: dict[str, Any]) -> dict[str, Any]:
            change: dict[str, Any] = {}
            if folder is not None:
                change["folder"] = folder
            if add_tags or remove_tags:
                tags = [t for t in meta.get("tags") or [] if t not in set(remove_tags)]
                tags += [t for t in add_tags if t not in tags]
                if max_tags is not None and len(tags) > max_tags:
                    raise TooManyTags(f"It would carry {len(tags)} tags; at most {max_tags}.")
                change["tags"] = tags
            return change

        return self._set_from(image_id, plan)

    def _set_from(self, image_id: ObjectId,
                  plan: Callable[[dict[str, Any]], dict[str, Any]]) -> Image | None:
        """Set what ``plan(metadata as read)`` gives, by compare-and-set on the labels read."""
        for _ in range(SET_ATTEMPTS):
            doc = self._files.find_one({"_id": image_id})
            if doc is None or not _is_original(doc):
                return None
            meta = doc["metadata"]
            fields = plan(meta)
            change = {f"metadata.{k}": v for k, v in fields.items()}
            if not change:
                return self._image(doc)
            # Compare-and-set on the folder and tags read, so the facet counts move from
            # exactly the values replaced (two editors moving one image never count it twice).
            # update_one, then a read: findAndModify scans the collection on SecantusDB.
            done = self._files.update_one({"_id": image_id, "metadata.folder": meta.get("folder"),
                                           "metadata.tags": meta.get("tags")}, {"$set": change})
            if done.matched_count == 1:
                after = {**doc, "metadata": {**meta, **fields}}
                facets.moved(self.db, self.bucket, doc, after)
                return self.get(image_id)
        raise replacing.ImageBusy()  # changed under us every time: a 409, try again

    def bring(self, image: Image, *, kind: str, scope: str = "", keep_source: bool = False) -> Stored:
        """Move ``image`` (of another bucket) here with its variants, keeping its id; identical
        bytes already here are reused. The source goes last, unless ``keep_source``."""
        doc = self.db[f"{image.bucket}.files"].find_one({"_id": image.id})
        if doc is None:
            raise OSError(f"{image.bucket} {image.id} does not exist")
        result = originals.transfer(self.db, image.bucket, self.bucket, doc, kind=kind, scope=scope,
                                    delete_source=not keep_source, media=self.media)
        if result.created:  # its groups are this bucket's (the source's labels stayed behind)
            self.link_near_duplicates(result.doc["_id"])
            self._link_exact_later([result.doc])
        return Stored(self._image(result.doc), result.created)

    def replace(self, image_id: ObjectId, upload: Upload | None = None, *, focal: FocalPoint | None = None,
                limits: Limits | None = None,
                refs: dict[str, Any] | None = None) -> Changed | None:
        """New bytes (``upload``) or a new focal point for the original ``image_id``, keeping
        its id (avenue/media/store/replace.py): the image, whether it changed and its new
        picture's near-duplicates; None when it does not exist. ``ImageBusy`` (409) while a
        delete or another replace holds it."""
        if upload is None:
            return self._changed(replacing.refocus(self.db, self.bucket, image_id, focal, limits=limits,
                                                   refs=refs, delete_lease=DELETE_LEASE,
                                                   media=self.media))
        return self._changed(replacing.replace_bytes(self.db, self.bucket, image_id, upload.stream,
                                                     filename=upload.filename, focal=focal, limits=limits,
                                                     refs=refs, delete_lease=DELETE_LEASE,
                                                     media=self.media))

    def edit(self, image_id: ObjectId, edits: Edits | None, *, refs: dict[str, Any] | None = None
             ) -> Changed | None:
        """Apply ``edits`` to the original of ``image_id`` (None: back to the original), as a
        new version (avenue/media/store/replace.py): the image, whether it changed and the
        edited picture's near-duplicates; None when it does not exist."""
        return self._changed(replacing.edit(self.db, self.bucket, image_id, edits, refs=refs,
                                            delete_lease=DELETE_LEASE, media=self.media))

    def set_crop(self, image_id: ObjectId, name: str, box: Box | None, *, refs: dict[str, Any] | None = None
                 ) -> Changed | None:
        """Set the named crop ``name`` of ``image_id`` to ``box`` (None: delete it), as a new
        version (the same picture: its group stays); None when the image does not exist.
        ``TooManyCrops`` past the limit, ``CropNotFound`` to delete one it does not have."""
        doc = self._files.find_one({"_id": image_id, "metadata.role": "original"},
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
        return self._changed(replacing.set_crops(self.db, self.bucket, image_id, crops, refs=refs,
                                                 delete_lease=DELETE_LEASE, media=self.media))

    # --- versions (store/versions.py): listed, drawn small, compared, restored ---

    def _head(self, image_id: ObjectId) -> dict[str, Any] | None:
        return self._files.find_one({"_id": image_id, "metadata.role": "original"})

    def versions(self, image_id: ObjectId) -> list[Version] | None:
        """The current version of ``image_id`` and its earlier ones still kept, newest first;
        None when the image does not exist."""
        doc = self._head(image_id)
        return None if doc is None else versions.listing(self.db, self.bucket, doc)

    def restore_version(self, image_id: ObjectId, version_id: str, *, limits: Limits | None = None,
                        refs: dict[str, Any] | None = None) -> Changed | None:
        """Make an earlier version of ``image_id`` current again, as a new version under the
        replace lease (``ImageBusy`` while a delete or another change holds it); None when the
        image does not exist. ``VersionNotFound`` / ``VersionGone`` for a version it lacks."""
        doc = self._head(image_id)
        if doc is None:
            return None
        return self._changed(versions.restore(self.db, self.bucket, doc, version_id, limits=limits, refs=refs,
                                              delete_lease=DELETE_LEASE, media=self.media))

    def version_preview(self, image_id: ObjectId, version_id: str) -> bytes | None:
        """A small WebP of version ``version_id`` of ``image_id`` (made once); None when the
        image does not exist."""
        doc = self._head(image_id)
        if doc is None:
            return None
        return versions.read(self.db, versions.preview(self.db, self.bucket, doc, version_id, self.media))

    def compare_versions(self, image_id: ObjectId, before: str, after: str
                         ) -> tuple[Comparison, bytes] | None:
        """How version ``after`` of ``image_id`` differs from ``before``: the share of pixels
        changed and the heat map's PNG (made once per pair); None when the image does not exist."""
        doc = self._head(image_id)
        if doc is None:
            return None
        compared = versions.compare(self.db, self.bucket, doc, before, after, self.media)
        return compared, versions.read(self.db, compared.file)

    def delete(self, image: Image | ObjectId, *, to_trash: dict[str, Any] | None = None) -> bool:
        """Delete an original and all its variants (original first: readers see 404 at once).

        ``to_trash`` (what referenced it, e.g. ``{"sku": ...}``; may be empty) keeps it in the
        trash first, restorable for ``AVENUE_TRASH_DAYS`` (avenue/media/store/trash.py); without
        it, or with the trash off, the delete is final."""
        doc = self._files.find_one({"_id": image.id if isinstance(image, Image) else image})
        if doc is None:
            return False
        if to_trash is not None:
            trash.keep(self.db, self.bucket, doc, refs=to_trash, keep_days=self.settings.trash_days)
        return originals.delete_image(self.db, self.bucket, doc, purges=self.media.purges)

    # --- delete leases -------------------------------------------------------------------

    def take_delete_lease(self, image_id: ObjectId) -> DeleteLease | None:
        """Lease the original for deletion; None when it is gone or another delete holds it;
        :class:`ImageBusy` while a replace holds it (it exists: a 409, not a 404).

        Read, then a compare-and-set on the lease values read: of two deleters racing, one
        update matches and the other's finds the value changed. (Not one findAndModify: that
        scans the whole collection on SecantusDB.) A set that misses reads again, so a replace
        that took its lease between the read and the set is answered as busy, not as gone (and
        so is one whose leases changed under three reads in a row)."""
        for _ in range(3):
            doc = self._files.find_one({"_id": image_id})
            if doc is None or not _is_original(doc):
                return None
            seen = doc["metadata"].get("deleting_at")
            replacing_at = doc["metadata"].get("replacing_at")
            moment = now()
            if held(seen, DELETE_LEASE, moment):
                return None
            if held(replacing_at, replacing.REPLACE_LEASE, moment):
                raise replacing.ImageBusy()  # being replaced: it exists, so not a 404
            # Conditional on both leases as read: a replace taking its lease meanwhile wins.
            if stamp(self._files, image_id, "metadata.deleting_at",
                     {"metadata.deleting_at": seen, "metadata.replacing_at": replacing_at}, moment):
                doc["metadata"]["deleting_at"] = moment
                return DeleteLease(self._image(doc), moment)
        raise replacing.ImageBusy()  # the leases kept changing under it: it exists, others are at it

    def release_delete_lease(self, lease: DeleteLease) -> None:
        """Give the lease back (the image stays), unless it lapsed and someone else took it."""
        unstamp(self._files, lease.image.id, "metadata.deleting_at", lease.at)

    def usable(self, image_ids: Iterable[ObjectId]) -> dict[ObjectId, Image]:
        """The originals among ``image_ids`` that exist and are not being deleted."""
        ids = list(dict.fromkeys(image_ids))
        if not ids:
            return {}
        cutoff = now() - DELETE_LEASE
        docs = [doc for doc in self._files.find({"_id": {"$in": ids}}) if _is_original(doc)]
        return {doc["_id"]: self._image(doc) for doc in docs
                if (maybe_utc(doc["metadata"].get("deleting_at")) or cutoff) <= cutoff}

    def _present_after_leases(self, image_ids: list[ObjectId]) -> set[ObjectId]:
        """Which of ``image_ids`` still exist once the delete leases on them are resolved
        (waited for at most :data:`LEASE_WAIT_SECONDS`)."""
        deadline = monotonic() + LEASE_WAIT_SECONDS
        while True:
            live = now() - DELETE_LEASE
            found = self._files.find({"_id": {"$in": image_ids}}, {"metadata.deleting_at": 1})
            docs = {d["_id"]: d for d in found}
            leased = [d for d in docs.values()
                      if (maybe_utc((d.get("metadata") or {}).get("deleting_at")) or live) > live]
            if not leased or monotonic() > deadline:
                return set(docs)
            sleep(0.02)

    # --- claiming ------------------------------------------------------------------------

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
            present = self._present_after_leases([image.id for image in attached])
            for image in attached:
                if image.id in present:
                    continue
                fresh = self._again(source_of[image.id], kind=kind, owner=owner, limits=limits, revive=revive)
                claimant.repoint(image, fresh)
                replaced[image.id] = fresh
        for source in sources:
            if isinstance(source, Image):
                Library(self.db, source.bucket, self.media).delete(source)
        return result, replaced

    def _again(self, source: Upload | Image, *, kind: str, owner: str | None,
               limits: Limits | None, revive: bool = True) -> Image:
        """Store a source once more after its first copy here was deleted: rendered again
        from its bytes under a new id, so no URL of the deleted file ever names it."""
        if isinstance(source, Image):
            data = Library(self.db, source.bucket, self.media).read(source)
            source = Upload(source.filename, io.BytesIO(data))
        stream = source.stream
        if hasattr(stream, "seek"):
            stream.seek(0)
        return self.store(source, owner=owner, kind=kind, limits=limits, revive=revive).image


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
