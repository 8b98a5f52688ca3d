"""Lists that cost the same at any depth: keyset cursors, bounded offsets, windows between fences.

Every list the API serves is sorted on an index whose last key is unique (``sku``, or a date
with ``_id`` as the tie-break):

- ``?after=<cursor>`` (the ``next`` of the previous page) continues *after* the last item by
  its sort values: inserts or deletes between two calls never repeat or skip an item;
- ``?page=N`` works for the first ``MAX_OFFSET`` items (deeper numbered pages answer 400 with
  a pointer to ``after``: an offset is a walk over every item before it);
- ``total`` is the caller's exact figure when it keeps one (the counters kept with every
  write), else a count of at most ``COUNT_LIMIT`` matches, with ``total_exact`` false once
  that many exist.

**Fences.** mongod stops an index walk after ``per_page + 1`` entries; the embedded database
(SecantusDB) reads every entry inside a query's bounds before it sorts and limits, so an
open-ended range (``sku > x``, ``uploadDate < d``) cost 0.12-0.3 ms per entry to the end of the
list: seconds at a million files. So a page is asked for in *windows*: bounded ranges on the
leading sort key between fences, values sampled every :data:`FENCE_EVERY` items of the whole
list by :func:`build_fences` (the status sweep rebuilds them, ``list_fences``), joined while
a filter matches few. A window costs at most what it holds on any server. Fences are only
hints: the windows partition the whole key space, so a missing, stale or wrong fence changes
the cost of a page, never its items (items added since the last build make a window fuller,
deleted ones make it emptier).

Pure: takes collections and values, never the request.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo.collection import Collection
from pymongo.cursor import Cursor
from pymongo.database import Database

from avenue.clock import as_utc, now
from avenue.errors import BadRequest

MAX_PER_PAGE = 100
# Numbered pages and capped counts walk every item they pass: 1,000 keeps both a few windows
# deep (GitHub's search API stops at the same 1,000). ``after`` reaches any depth.
MAX_OFFSET = 1_000
COUNT_LIMIT = 1_000
# A fence every 256 items: a window holds ~256 items when the fences are fresh, 30-75 ms on
# the embedded database (0.12-0.3 ms an item, bench/results/scale-2026-11-23.md).
FENCE_EVERY = 256
# An $in of at most this many values is walked as one query per value (see _branches).
MAX_BRANCHES = 4
# At most this many windows are joined into one query while a filter matches few items, so
# one query never spans more than ~4,096 items of the list however the filter falls.
MAX_JOINED = 16
FENCES = "list_fences"
# How long a worker reuses the fences it read (they change once a sweep).
FENCES_TTL_SECONDS = 60.0
# A cursor holds at most this many characters (a date and an id, or a sku, fit many times).
MAX_CURSOR_LENGTH = 512

SortSpec = Sequence[tuple[str, int]]


class BadCursor(BadRequest):
    """A cursor this list did not hand out (wrong shape, wrong types, tampered)."""

    code = "invalid_cursor"

    def __init__(self, why: str) -> None:
        super().__init__("after must be the next cursor of a previous page of this list.", reason=why[:100])


@dataclass(frozen=True)
class Window:
    """Which part of a list a client asks for."""

    page: int = 1
    per_page: int = 20
    after: str | None = None  # an opaque cursor (a previous page's ``next``)


@dataclass(frozen=True)
class Page:
    """One page of a list: its documents, the (capped) total and the cursor to go on."""

    docs: list[dict[str, Any]]
    total: int
    total_exact: bool
    next: str | None

    def shape(self, items: list[Any], window: Window) -> dict[str, Any]:
        """The API's list shape (docs/api.md, "Lists at any depth")."""
        return {"items": items, "total": self.total, "total_exact": self.total_exact,
                "page": window.page, "per_page": window.per_page, "next": self.next}


def _encode_value(value: Any) -> Any:
    if isinstance(value, ObjectId):
        return {"o": str(value)}
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return {"d": int(value.timestamp() * 1000)}
    if isinstance(value, str | int) and not isinstance(value, bool):
        return value
    raise TypeError(f"cannot put {type(value).__name__} in a cursor")


def _decode_value(raw: Any) -> Any:
    if isinstance(raw, str) or (isinstance(raw, int) and not isinstance(raw, bool)):
        return raw
    if isinstance(raw, dict) and len(raw) == 1:
        kind, value = next(iter(raw.items()))
        try:
            if kind == "o" and isinstance(value, str):
                return ObjectId(value)
            if kind == "d" and isinstance(value, int):
                return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
        except (InvalidId, OverflowError, OSError, ValueError) as exc:
            raise BadCursor(str(exc)) from None
    raise BadCursor("unexpected value")


def encode_cursor(values: Sequence[Any]) -> str:
    """An opaque, URL-safe cursor for these sort values."""
    raw = json.dumps([_encode_value(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, length: int) -> list[Any]:
    """The sort values of a cursor made by :func:`encode_cursor`; ``BadCursor`` otherwise."""
    if not token or len(token) > MAX_CURSOR_LENGTH:
        raise BadCursor("empty or too long")
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise BadCursor(str(exc)) from None
    if not isinstance(raw, list) or len(raw) != length:
        raise BadCursor("wrong shape")
    return [_decode_value(item) for item in raw]


def after_ranges(sort: SortSpec, values: Sequence[Any]) -> list[dict[str, Any]]:
    """The documents strictly after ``values`` in ``sort`` order, as disjoint ranges in that
    order: for (date, _id), first "same date, smaller id", then "older date".

    Asked one after another rather than as one ``$or``: each range is a plain index bound on
    any planner (SecantusDB scans the whole collection for an ``$or`` inside an ``$and``).
    """
    ranges = []
    for index in range(len(sort) - 1, -1, -1):
        branch: dict[str, Any] = {f: values[i] for i, (f, _) in enumerate(sort[:index])}
        field, direction = sort[index]
        branch[field] = {"$gt" if direction > 0 else "$lt": values[index]}
        ranges.append(branch)
    return ranges


def _overlaps(query: dict[str, Any], branch: dict[str, Any]) -> bool:
    return bool(set(query) & set(branch))


def _and(query: dict[str, Any], branch: dict[str, Any]) -> dict[str, Any]:
    return {**query, **branch} if not _overlaps(query, branch) else {"$and": [query, branch]}


def _value(doc: dict[str, Any], field: str) -> Any:
    """A document's value at a dotted path (``metadata.trash.deleted_at``), None if absent."""
    value: Any = doc
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _comparable(value: Any) -> Any:
    # Dates come back naive from the database and aware from a cursor: compare them as UTC.
    return as_utc(value) if isinstance(value, dt.datetime) else value


def fence_id(collection: Collection[Any], field: str, key: str = "") -> str:
    """The ``list_fences`` document of the lists of ``collection`` sorted on ``field`` (and
    ``key``: which of its walks, where several walk the same field)."""
    return f"{collection.name}|{field}" + (f"|{key}" if key else "")


_cache: dict[tuple[int, str, str], tuple[float, list[Any]]] = {}
_cache_lock = threading.Lock()


def forget_fences() -> None:
    """Drop the fences this process read (the next page reads them again)."""
    with _cache_lock:
        _cache.clear()


def fences(collection: Collection[Any], field: str, walk: str = "") -> list[Any]:
    """The fence values of ``collection``'s lists on ``field`` (``walk``: see :func:`fence_id`),
    ascending (empty: none built), as read at most :data:`FENCES_TTL_SECONDS` ago by this
    process."""
    key = (id(collection.database.client), collection.database.name, fence_id(collection, field, walk))
    moment = time.monotonic()
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None and cached[0] > moment:
        return cached[1]
    doc = collection.database[FENCES].find_one({"_id": key[2]}, {"keys": 1}) or {}
    keys = doc.get("keys")
    values = _of_one_type(keys) if isinstance(keys, list) else []
    with _cache_lock:
        _cache[key] = (moment + FENCES_TTL_SECONDS, values)
    return values


def _sort_key(value: Any) -> tuple[int, Any]:
    # Fences of one list share one type (dates, or strings); anything else sorts apart.
    if isinstance(value, dt.datetime):
        return (0, value)
    return (1, value) if isinstance(value, str) else (2, str(value))


def _of_one_type(values: list[Any]) -> list[Any]:
    """``values`` ascending, or none of them when they mix types: a range compares within one
    type only (dates, or strings), so mixed values cannot bound windows."""
    ordered = sorted((_comparable(value) for value in values), key=_sort_key)
    return ordered if len({_sort_key(value)[0] for value in ordered}) <= 1 else []


class _Windows:
    """The bounded ranges on the leading sort key, in list order, from ``start`` (exclusive;
    None: the list's first item) to the list's end: between consecutive fences, the first
    and last ones open on their outer side, so together they hold every item after
    ``start`` exactly once."""

    def __init__(self, field: str, direction: int, fence_values: list[Any], start: Any) -> None:
        self.field, self.direction = field, direction
        if start is not None:
            low = _comparable(start)
            kept = [v for v in fence_values if _sort_key(v)[0] == _sort_key(low)[0]
                    and (v > low if direction > 0 else v < low)]
        else:
            kept = list(fence_values)
        # The edges in walk order: [start, fences..., end]; window i spans edges i to i + 1.
        self.edges: list[Any] = [start, *(kept if direction > 0 else reversed(kept)), None]
        self.position = 0

    def __bool__(self) -> bool:
        return self.position < len(self.edges) - 1

    def take(self, joined: int) -> dict[str, Any]:
        """The next ``joined`` windows as one condition on the field ({} for everything)."""
        first, last = self.position, min(self.position + joined, len(self.edges) - 1)
        self.position = last
        near, far = self.edges[first], self.edges[last]
        # Walking up, the start is excluded and a fence belongs to the window above it;
        # walking down, a fence belongs to the window below it ($gte), the next one excludes it.
        if self.direction > 0:
            near_op, far_op = ("$gt" if first == 0 else "$gte"), "$lt"
        else:
            near_op, far_op = "$lt", "$gte"
        condition: dict[str, Any] = {}
        if near is not None:
            condition[near_op] = near
        if far is not None and last < len(self.edges) - 1:
            condition[far_op] = far
        return {self.field: condition} if condition else {}


def _to_millisecond(value: dt.datetime) -> dt.datetime:
    """``value`` to the millisecond below, as BSON stores dates."""
    return as_utc(value).replace(microsecond=value.microsecond // 1000 * 1000)


_MILLISECOND = dt.timedelta(milliseconds=1)


def date_windows(fence_values: Sequence[Any], *, descending: bool = False,
                 start: dt.datetime | None = None, joined: int = 1
                 ) -> Generator[dict[str, Any], int | None, None]:
    """The windows of a walk over a date field between its fences (``joined`` at a time, so
    about ``joined * every`` items a read), as conditions on the field: together they hold
    every date after ``start`` (exclusive; None: from the first) once, in walk order, whatever
    the fences are (stale or missing fences change a read's size, never what the walk covers;
    none at all: one read). For walks of a whole bucket on the embedded database, which reads
    every entry inside a query's bounds before it groups, sorts or limits.

    "At or after d" is asked as "after d less a millisecond" (BSON dates hold milliseconds, so
    it is the same set on every server): SecantusDB 0.7.0b3 skips the documents equal to an
    inclusive bound that falls at the top of a compound index's range (a descending date's
    ``$gte``) when the index has keys after the date, as ``role_newest`` has its ``_id``
    (measured: ``{role, uploadDate: {$gte: d, $lt: e}}`` left out the document at ``d``;
    mongod and mongomock returned it).
    """
    dates = sorted({_to_millisecond(value) for value in fence_values if isinstance(value, dt.datetime)})
    if start is not None:
        start = _to_millisecond(start)
        dates = [date for date in dates if (date < start if descending else date > start)]
    if descending:
        dates.reverse()
    edges: list[dt.datetime | None] = [start, *dates[joined - 1::max(1, joined)], None]
    for index, (near, far) in enumerate(itertools.pairwise(edges)):
        condition: dict[str, Any] = {}
        if descending:
            if near is not None:
                condition["$lt"] = near  # the start, or the fence the window above holds
            if far is not None:
                condition["$gt"] = far - _MILLISECOND
        else:
            if near is not None:
                condition["$gt"] = near if index == 0 else near - _MILLISECOND
            if far is not None:
                condition["$lt"] = far
        yield condition


#: What a read of a first walk (no fences yet: :func:`first_date_windows`) aims at holding.
FIRST_READ = FENCE_EVERY
#: How much a first walk's next window may grow over the last one (what a read that found
#: the density it expected can hold at most: ``FIRST_GROWTH * FIRST_READ``).
FIRST_GROWTH = 4
#: Across an empty stretch a first walk's window covers at most this part of what is left to
#: the far edge of the hints (the counters' oldest or newest date) while many documents are
#: left: files that begin right after a gap are read at most an eighth of their span at once
#: (an empty read costs 1.5-4 ms on SecantusDB; a year's gap before 33,000 dense files
#: about sixty of them).
FIRST_APPROACH = 8
#: A first walk's first window from each edge: a second (or less, when the hints say the
#: files are denser), widened by what each read holds.
FIRST_SPAN_MS = 1000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Before any date a BSON date can hold that Python's datetime can: a bound that any date passes (an
# empty condition would match none) and no null does.
_FIRST_DATE = dt.datetime(1, 1, 2, tzinfo=dt.UTC)


def _ms(value: dt.datetime) -> int:
    return (as_utc(value) - _EPOCH) // _MILLISECOND


def _half_open(low: int | None, high: int | None) -> dict[str, Any]:
    """The dates in ``[low, high)`` milliseconds (None: unbounded), without an inclusive bound
    (see :func:`date_windows`)."""
    condition: dict[str, Any] = {}
    if low is not None:
        condition["$gt"] = _EPOCH + (low - 1) * _MILLISECOND
    if high is not None:
        condition["$lt"] = _EPOCH + high * _MILLISECOND
    return condition


def _next_span(span: int, held: int | None, target: int, left: int | None, unread: int | None) -> int:
    """The next window's width: scaled to hold ``target`` at the density the last one showed,
    at most :data:`FIRST_GROWTH` times wider; after an empty one (or none said) that much
    wider, but inside the hints (``left``: the milliseconds to their far edge; None: outside
    them) at most a :data:`FIRST_APPROACH` th of ``left``, or the part of it that would hold
    ``FIRST_GROWTH * target`` were the documents the hints leave (``unread``: their size less
    what the walk has read; None: not known) spread evenly over it, if more: all of ``left``
    once they fit one read."""
    if held is not None and held > 0:
        return max(1, min(span * FIRST_GROWTH, span * target // held))
    grown = span * FIRST_GROWTH
    if left is None:
        return grown
    share = left // FIRST_APPROACH
    if unread is not None and unread >= 0:  # hints that counted fewer than were read say nothing
        share = max(share, left * FIRST_GROWTH * target // max(1, unread))
        if share >= left:
            return max(1, left)
    return max(1, min(grown, share))


def first_date_windows(*, descending: bool = False, start: dt.datetime | None = None,
                       oldest: dt.datetime | None = None, newest: dt.datetime | None = None,
                       size: int | None = None, target: int | None = None, moment: dt.datetime | None = None
                       ) -> Generator[dict[str, Any], int | None, None]:
    """The windows of a walk over a date field that has no fences yet (the first walk after a
    bulk load, or ever), as conditions on the field in walk order: send how many documents
    each held, and the next one is as wide as that density asks for ``target`` documents
    (:func:`_next_span`; ``target``: :data:`FIRST_READ`). Together they hold every date
    after ``start`` (exclusive) once, whatever the hints are.

    Why: SecantusDB reads every index entry inside a query's bounds, and decodes each
    document, under its one lock before it sorts, limits or returns anything, so a limit
    never bounds a read there, and a walk without fences was one read of the whole range (a
    products bucket's 67,200 variants: 11.2 s, every other connection waiting). A window of
    dates is a bounded range of the ``role_newest`` index on any server; on mongod one cursor
    walks the same index a batch at a time anyway (``Dialect.whole_collection_reads``), and
    these windows would be as cheap there: each an index-served range, no sort of its own.
    Not by ``_id``: SecantusDB's ``_id`` index is virtual (no entries: an ``_id`` range is a
    scan of the collection), so an ``_id`` range per read would need a new ``{role, _id}``
    index on every bucket and would lose the walk's date order, which its checkpoints and the
    fences it samples are in. Nor can a count size a window first, nor a sorted find with
    limit 1 find the date past an empty one cheaply: SecantusDB decodes every match of
    either (and of ``$sample``, ``distinct``) first; on mongod the find is one index seek.

    ``oldest``, ``newest`` and ``size`` hint where the dates lie and how many documents
    there are at most (a bucket's counters). Windows never cross the hints' edges; without
    hints, nor 1970 and a day from ``moment``. Each side of the hints is one window: nothing
    is expected there (windows grown towards them held nearly what one holds, in up to 16
    more reads; grown from past the far edge, 9 empty reads to a day from now and 16 to 1970,
    which made every walk of a small role 14-22 reads). Inside them the first window from
    each edge is :data:`FIRST_SPAN_MS` wide (less when denser).
    Empty windows widen :data:`FIRST_GROWTH` times a read, but inside the hints cover at
    most a :data:`FIRST_APPROACH` th of what is left to their far edge, so the files just
    past a gap are read an eighth at most; more when few documents are left unread (the
    part that would hold ``FIRST_GROWTH * target`` were they spread evenly), and all of it
    once they fit one read (a year's gap before the few newest files, or a role with no
    files, cost 130-220 empty reads a walk when only the eighth bounded them; doubling alone
    would be as few, but a window grown over a year's gap held every file after it). Hints
    that counted fewer documents than the walk has read no longer say what is left. Not
    bounded: a burst far denser than what was read just before it, away from any edge (a
    bulk load's dates all in one millisecond amid the others: one read for them all), and
    files the counters leave out just past a gap the walk meets before it has read more
    than they hold (one read for the rest), or outside their dates (one read each side).
    """
    moment, target = moment or now(), target or FIRST_READ
    marks, first, hinted = _first_marks(oldest, newest, size, target, moment)
    # Inside the hints a gap may end anywhere (approach the far edge); outside them nothing is
    # expected, and a window stops at the edge where the files begin anyway.
    entry, far = (None, None) if hinted is None else (hinted[::-1] if descending else hinted)
    read = 0
    if not descending and hinted is None:  # see _first_marks: one read up from 1970
        yield _half_open(_ms(_FIRST_DATE) if start is None else _ms(start) + 1, None)
        return
    if not descending:
        position = None if start is None else _ms(start) + 1
        for mark in sorted(marks):
            span = first
            while position is None or position < mark:
                high = mark if position is None or mark == entry else min(position + span, mark)
                held = yield _half_open(position, high)
                read += held or 0
                if position is not None:
                    span = _next_span(span, held, target, mark - high if mark == far else None,
                                      None if size is None else size - read)
                position = high
        yield _half_open(position, None)
        return
    position = None if start is None else _ms(start)
    for mark in sorted(marks, reverse=True):
        span = first
        while position is None or position > mark:
            low = mark if position is None or mark == entry else max(position - span, mark)
            held = yield _half_open(low, position)
            read += held or 0
            if position is not None:
                span = _next_span(span, held, target, low - mark if mark == far else None,
                                  None if size is None else size - read)
            position = low
    yield _half_open(None, position)


def _first_marks(oldest: dt.datetime | None, newest: dt.datetime | None, size: int | None, target: int,
                 moment: dt.datetime) -> tuple[set[int], int, tuple[int, int] | None]:
    """A first walk's marks (milliseconds no window crosses), its first window's width from an
    edge, and the hints' edges (None: no hints). Without hints: 1970, and a day from now, open
    windows beyond both; but up from 1970 windows grown from a second reach today's files
    decades wide, so they bound nothing (an empty bucket's role paid 17 empty reads a walk):
    that walk is one read. With hints, only their edges: nothing is expected outside them, so
    each side is one window (as the stretch up to the near edge always was), where windows
    growing from a second took 9 empty reads to a day from now and 16 down to 1970."""
    if oldest is None or newest is None or oldest > newest:
        return {0, _ms(moment) + 86_400_000}, FIRST_SPAN_MS, None
    hinted = (_ms(oldest), _ms(newest) + 1)
    first = FIRST_SPAN_MS
    if size:
        first = max(1, min(first, (hinted[1] - hinted[0]) * target // size))
    return set(hinted), first, hinted


class Sampler:
    """Every ``every``-th value of a walk in list order: the fences its next walk reads
    between (:func:`save_fences`)."""

    def __init__(self, every: int | None = None) -> None:
        self.every, self.items = every or FENCE_EVERY, 0
        self.values: list[Any] = []

    def add(self, value: Any) -> None:
        self.items += 1
        due = self.items % self.every == 0 and value is not None
        if due and (not self.values or self.values[-1] != value):  # a run of equal values: one fence
            self.values.append(value)


def save_fences(db: Database[Any], doc_id: str, sampler: Sampler) -> dict[str, Any]:
    """Replace the fences ``doc_id`` with what ``sampler`` saw (and forget this process's copy)."""
    values = _of_one_type(sampler.values)
    db[FENCES].replace_one({"_id": doc_id}, {"_id": doc_id, "keys": values, "every": sampler.every,
                                             "items": sampler.items, "built_at": now()}, upsert=True)
    with _cache_lock:
        _cache.pop((id(db.client), db.name, doc_id), None)
    return {"fences": len(values), "items": sampler.items}


def walk_fenced(collection: Collection[Any], field: str, projection: dict[str, int], after: Any = None, *,
                joined: int = 1, batch: int = 1000, listed: Listed | None = None) -> Iterator[dict[str, Any]]:
    """Every document with a value of ``field``, ascending, after ``after`` (exclusive), read
    ``joined`` windows between the field's fences at a time (about 256 items a read): for a
    walk of a whole list on the embedded database, where one cursor reads every item into
    its first batch. Without fences (none built yet, or a list grown far past them) a window
    is the whole list, so each is read through a cursor ``batch`` documents a fetch, never
    into one list: a first sweep of 15,000 products written behind the app's back held them
    all (28 KB each with five image references, 493 MB in a worker; issue 65).

    With no fences at all and ``listed`` given (the list sorted on ``field`` whose fences
    these are), they are built first (:func:`build_fences`: one read of the sort key alone),
    then the documents are read between them: a first sweep's product walk held SecantusDB's
    one lock 2.7 s for its first batch of 4,200 products, the fences' read 0.7 s (a string
    key has no span to size windows by, as :func:`first_date_windows` sizes dates)."""
    if listed is not None and not fences(collection, field):
        build_fences(collection.database, listed)
    windows = _Windows(field, 1, fences(collection, field), after)
    while windows:
        cursor = collection.find(windows.take(joined), projection).sort(field, 1).batch_size(batch)
        try:
            yield from cursor
        finally:
            cursor.close()


def _windowable(query: dict[str, Any]) -> bool:
    """Whether windows keep ``query`` on its index everywhere: equalities only, so a window
    is the index's equality prefix plus a range on the sort key."""
    return all(not key.startswith("$") and not isinstance(value, dict) for key, value in query.items())


def _branches(query: dict[str, Any], sort: SortSpec) -> list[dict[str, Any]] | None:
    """``query`` as equality-only queries whose union it is, or None when it has another shape.

    SecantusDB plans an ``$in`` followed by a range as a collection scan, so one ``$in`` of
    up to :data:`MAX_BRANCHES` plain values (the library's root folder: ``/`` or none) becomes
    one query per value, each walked in windows and merged in list order. Other operators
    (``$all`` of several tags or words) are asked for in one query, as before the fences."""
    if _windowable(query):
        return [query]
    operators = [key for key, value in query.items() if isinstance(value, dict)]
    if len(operators) != 1 or len({direction for _, direction in sort}) != 1:
        return None
    field = operators[0]
    values = query[field].get("$in") if set(query[field]) == {"$in"} else None
    rest = {key: value for key, value in query.items() if key != field}
    if (not isinstance(values, list) or not 1 <= len(values) <= MAX_BRANCHES or not _windowable(rest)
            or any(isinstance(value, dict | list) for value in values)):
        return None
    return [{**rest, field: value} for value in dict.fromkeys(values)]


#: Which index to hint for a filter (None: let the planner choose): :func:`fetch`'s ``index``.
Hint = Callable[[dict[str, Any]], str | None]


def _gather(collection: Collection[Any], queries: list[dict[str, Any]], sort: SortSpec, start: Any,
            wanted: int, fence_values: list[Any], hint: Hint,
            projection: dict[str, int] | None = None, first: DateHints | None = None) -> list[dict[str, Any]]:
    """:func:`_walk` over the union of ``queries``: each walked alone, merged in list order."""
    if len(queries) == 1:
        return _walk(collection, queries[0], sort, start, wanted, fence_values, hint, projection, first)
    return _merged([_walk(collection, query, sort, start, wanted, fence_values, hint, projection, first)
                    for query in queries], sort)[:wanted]


def _merged(parts: list[list[dict[str, Any]]], sort: SortSpec) -> list[dict[str, Any]]:
    """The documents of ``parts`` (each in ``sort`` order, one direction), once each, in order."""
    if len(parts) == 1:
        return parts[0]
    found: dict[Any, dict[str, Any]] = {}
    for part in parts:
        for doc in part:
            found.setdefault(doc["_id"], doc)
    # A missing value (null) sorts before every other, as the server sorts it.
    return sorted(found.values(), key=lambda doc: tuple((v is not None, v) for f, _ in sort
                                                        for v in [_comparable(_value(doc, f))]),
                  reverse=sort[0][1] < 0)


def _next_joined(joined: int, wanted: int, got: int) -> int:
    """How many windows to join next: more while a filter matches few, by the density seen."""
    if got <= 0:
        return min(joined * 4, MAX_JOINED)
    return max(1, min(MAX_JOINED, math.ceil(joined * wanted / got * 1.25)))


def _probes(query: dict[str, Any], sort: SortSpec, start: Any, fence_values: list[Any], wanted: int
            ) -> Generator[dict[str, Any], int, None]:
    """The filters of a window-by-window walk of ``query`` after ``start``: send how many items
    are still wanted after each, and the next joins as many windows as the density seen asks."""
    field, direction = sort[0]
    windows = _Windows(field, direction, fence_values, start)
    joined = 1
    while windows:
        partial = windows.position == 0 and start is not None
        left = yield _and(query, windows.take(joined))
        if left <= 0:
            return
        if not partial:  # the window the start falls in holds only part of a window: no density
            joined = _next_joined(joined, left, wanted - left)
        wanted = left


def _walk(collection: Collection[Any], query: dict[str, Any], sort: SortSpec, start: Any,
          wanted: int, fence_values: list[Any], hint: Hint,
          projection: dict[str, int] | None = None, first: DateHints | None = None) -> list[dict[str, Any]]:
    """Up to ``wanted`` documents of ``query`` after ``start`` on the leading sort key, in
    ``sort`` order, asked for window by window (between fences; with none and ``first``, a
    list on a date, in windows :func:`first_date_windows` sizes as it goes)."""
    if first is not None and not fence_values and (start is None or isinstance(start, dt.datetime)):
        return _first_walk(collection, query, sort, start, wanted, first, hint, projection)
    docs: list[dict[str, Any]] = []
    probes = _probes(query, sort, start, fence_values, wanted)
    filter_ = next(probes, None)
    while filter_ is not None:
        docs += _find(collection, filter_, hint, projection).sort(list(sort)).limit(wanted - len(docs))
        filter_ = _send(probes, wanted - len(docs))
    return docs


#: A list without fences is read in first windows (:func:`_first_walk`) only when its hints
#: say it holds more than this: a list under it has no fences at all once swept (fewer
#: items than a fence's worth get none) and is one read of at most a few thousand small
#: documents, where windows would cost it a dozen empty reads on the way to 1970.
FIRST_WALK_FROM = FIRST_GROWTH * FIRST_READ


def _first_walk(collection: Collection[Any], query: dict[str, Any], sort: SortSpec, start: dt.datetime | None,
                wanted: int, first: DateHints, hint: Hint,
                projection: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """:func:`_walk` of a list on a date that has no fences yet (a store loaded behind the
    app's back, before the sweep that samples them): windows of dates from the list's edge,
    sized by what the last held (:func:`first_date_windows`, the first sweep's walk), until
    ``wanted`` came. One read of the whole list sorted and limited is one index walk on
    mongod, but the embedded database decodes every document its bounds hold before the
    first comes back: a library's page 1 of 37,575 builder files held its one lock 1.2-1.8 s
    a call while a first sweep ran (bench/results/scale-2026-11-28-300k-relay.md). Items
    without the date, which no window holds, come where a sort puts them: before every date."""
    field, direction = sort[0]
    descending = direction < 0
    undated = _and(query, {field: None})
    docs: list[dict[str, Any]] = []

    def read(filter_: dict[str, Any]) -> list[dict[str, Any]]:
        return list(_find(collection, filter_, hint, projection).sort(list(sort)).limit(wanted - len(docs)))

    if not descending and start is None:
        docs += read(undated)
    probes = first_date_windows(descending=descending, start=start, oldest=first.oldest, newest=first.newest,
                                size=first.size)
    condition = next(probes, None)
    while condition is not None and len(docs) < wanted:
        held = read(_and(query, {field: condition}))
        docs += held
        condition = _send(probes, len(held))
    if descending and len(docs) < wanted:
        docs += read(undated)
    return docs


def _count(collection: Collection[Any], query: dict[str, Any], sort: SortSpec,
           fence_values: list[Any], hint: Hint) -> int:
    """How many documents match ``query``, counted window by window up to ``COUNT_LIMIT + 1``."""
    counted = 0
    probes = _probes(query, sort, None, fence_values, COUNT_LIMIT + 1)
    filter_ = next(probes, None)
    while filter_ is not None:
        options: dict[str, Any] = {"limit": COUNT_LIMIT + 1 - counted}
        if index := hint(filter_):
            options["hint"] = index
        counted += collection.count_documents(filter_, **options)
        filter_ = _send(probes, COUNT_LIMIT + 1 - counted)
    return counted


def _find(collection: Collection[Any], filter_: dict[str, Any], hint: Hint,
          projection: dict[str, int] | None = None) -> Cursor[Any]:
    cursor = collection.find(filter_, projection)
    index = hint(filter_)
    return cursor.hint(index) if index else cursor


def _send(probes: Generator[dict[str, Any], int, None], wanted: int) -> dict[str, Any] | None:
    try:
        return probes.send(wanted)
    except StopIteration:
        return None


def _numbered_page(collection: Collection[Any], queries: list[dict[str, Any]], sort: SortSpec, window: Window,
                   fence_values: list[Any], hint: Hint, first: DateHints | None = None
                   ) -> tuple[list[dict[str, Any]], bool]:
    """Page ``window.page`` (> 1) and whether more follow. The items before it only count:
    their sort keys are walked (no document comes over the wire), then the page's own
    documents are read by ``_id``; an item deleted between the two reads is left out."""
    offset = (window.page - 1) * window.per_page
    keys = _gather(collection, queries, sort, None, offset + window.per_page + 1, fence_values, hint,
                   projection={name: 1 for name, _ in sort}, first=first)[offset:]
    ids = [key["_id"] for key in keys[: window.per_page]]
    found = {doc["_id"]: doc for doc in collection.find({"_id": {"$in": ids}})} if ids else {}
    return [found[i] for i in ids if i in found], len(keys) > window.per_page


def fetch(collection: Collection[Any], query: dict[str, Any], sort: SortSpec, window: Window,
          *, index: str | None = None, index_serves_filter: bool = False, total: int | None = None,
          hints: Callable[[], DateHints] | None = None) -> Page:
    """One page of ``query`` in ``sort`` order, by cursor or by (bounded) offset, asked for in
    windows between the list's fences.

    ``index`` names the index that holds ``sort``: it is hinted when a window has no filter
    at all, since a planner that only picks indexes by filter (SecantusDB) would otherwise
    scan; with ``index_serves_filter`` (the index leads with the filter's own keys), with a
    filter too: SecantusDB's planner scanned a colour list's ``$in`` on its multikey index
    beside a date range on some libraries (tests/api/test_index_usage.py). ``total`` is the
    list's exact size when the caller keeps it (counters); without it the matches are counted
    up to ``COUNT_LIMIT``. ``hints``: where a list on a date lies (its bucket's counters),
    asked only while the list has no fences, whose pages are then read in windows sized as
    they go (:func:`_first_walk`); the caller passes it where one read of the whole list
    costs (``Dialect.whole_collection_reads`` false).
    """
    def hint(filter_: dict[str, Any]) -> str | None:
        return index if index_serves_filter or not filter_ else None

    field = sort[0][0]
    branches = _branches(query, sort)
    fence_values = fences(collection, field) if branches is not None else []
    first = hints() if hints is not None and branches is not None and not fence_values else None
    if first is not None and first.size <= FIRST_WALK_FROM:
        first = None  # small enough to read at once (and a small list has no fences ever)
    queries = branches if branches is not None and (fence_values or first is not None) else [query]
    if window.after is None and window.page > 1:
        docs, more = _numbered_page(collection, queries, sort, window, fence_values, hint, first)
    else:
        found: list[dict[str, Any]] = []
        start = None
        if window.after is not None:
            *ties, _open = after_ranges(sort, values := decode_cursor(window.after, len(sort)))
            start = values[0]
            for branch in ties:  # the same leading value, later by the tie-break: one index bound
                if len(found) <= window.per_page:
                    wanted = window.per_page + 1 - len(found)
                    found += _merged([list(_find(collection, _and(each, branch), hint).sort(list(sort))
                                           .limit(wanted)) for each in queries], sort)[:wanted]
        if len(found) <= window.per_page:
            found += _gather(collection, queries, sort, start, window.per_page + 1 - len(found),
                             fence_values, hint, first=first)
        docs, more = found[: window.per_page], len(found) > window.per_page
    if total is not None:
        exact = True
    else:
        total = sum(_count(collection, each, sort, fence_values, hint) for each in queries)
        exact = total <= COUNT_LIMIT
        total = min(total, COUNT_LIMIT)
    cursor = encode_cursor([_value(docs[-1], field) for field, _ in sort]) if more and docs else None
    return Page(docs, total, exact, cursor)


@dataclass(frozen=True)
class DateHints:
    """Where a list's dates lie and how many items it has at most (a bucket's counters): what
    a first walk of a list on a date sizes its windows by (:func:`first_date_windows`)."""

    oldest: dt.datetime | None
    newest: dt.datetime | None
    size: int


@dataclass(frozen=True)
class Listed:
    """A list the API pages through: which documents, in which order, on which index. The
    status sweep builds the fences of each (:func:`build_fences`). ``hints``: for a list on a
    date, where its dates lie (asked of the database and the collection's name), so that a
    first build reads it in windows."""

    collection: str
    query: dict[str, Any]
    sort: SortSpec
    index: str
    hints: Callable[[Database[Any], str], DateHints] | None = None




def build_fences(db: Database[Any], listed: Listed, every: int = FENCE_EVERY, *, joined: int = MAX_JOINED
                 ) -> dict[str, Any]:
    """Sample every ``every``-th leading sort value of the whole list into ``list_fences``.

    One pass in list order reading only the sort key; when fences exist it reads window by
    window (``joined`` at a time: the status sweep joins one on the embedded database, where a
    read holds make run's one connection), so the database never holds more than a few
    thousand entries of it at once. With none yet, a list on a date with ``hints`` is read in
    windows :func:`first_date_windows` sizes as it goes (a first sweep's one read of a
    library's 1,401 originals held SecantusDB's lock 0.4 s; undated items, which no window
    holds, are left out of the sample: fences are hints); any other list in one read. Returns
    what it saved (``fences``, ``items``)."""
    collection = db[listed.collection]
    field, direction = listed.sort[0]
    previous = fences(collection, field)
    order = list(listed.sort)
    sampler = Sampler(every)
    hints = listed.hints(db, listed.collection) if listed.hints is not None and not previous else None
    if hints is not None:
        probes = first_date_windows(descending=direction < 0, oldest=hints.oldest, newest=hints.newest,
                                    size=hints.size)
        condition = next(probes, None)
        while condition is not None:
            held = 0
            window = _and(listed.query, {field: condition})
            for doc in collection.find(window, {field: 1, "_id": 1}).sort(order):
                sampler.add(_value(doc, field))
                held += 1
            condition = _send(probes, held)
        return save_fences(db, fence_id(collection, field), sampler)
    windows = _Windows(field, direction, previous, None)
    while windows:
        # The whole list with no fences and no filter: asked as "the field exists", which no
        # index serves on SecantusDB, so it decodes and sorts the documents after it releases
        # its lock (an index walk decodes them under it): small reads beside the read of
        # 4,200 skus waited at most 93-168 ms instead of 553-653 ms, the read as long. On
        # mongod the sort's index serves it. Never hinted with a filter: a hint makes
        # SecantusDB walk the whole index, every role of a bucket (12,600 files documents for
        # a list of 1,401 originals: 1.3 s against 0.6 s without).
        filter_ = _and(listed.query, windows.take(joined)) or {field: {"$exists": True}}
        for doc in collection.find(filter_, {field: 1, "_id": 1}).sort(order).batch_size(1000):
            sampler.add(_value(doc, field))
    return save_fences(db, fence_id(collection, field), sampler)
