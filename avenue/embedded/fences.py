"""Fences and windows: how the embedded database lists quickly, and what the status sweep samples.

mongod stops an index walk after ``per_page + 1`` entries; the embedded database reads every
entry inside a query's bounds before it sorts and limits, so an open-ended range (``sku > x``,
``uploadDate < d``) cost 0.12-0.3 ms per entry to the end of the list: seconds at a million
files (bench/results/scale-2026-11-23.md). So there a list is read in *windows*: bounded
ranges on the leading sort key between fences, values sampled every :data:`FENCE_EVERY` items
of the whole list by :func:`build_fences` (the status sweep rebuilds them, ``list_fences``).
A window costs at most what it holds on any server. Fences are only hints: the windows
partition the whole key space, so a missing, stale or wrong fence changes the cost of a
read, never its items. A walk of dates with no fences yet is read in windows sized as it goes
(:func:`first_date_windows`). The lists that use them: avenue/embedded/listing.py.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database

from avenue.clock import as_utc, now
from avenue.paging import DateHints, Listed, and_, comparable, value_at

# A fence every 256 items: a window holds ~256 items when the fences are fresh, 30-75 ms on
# the embedded database (0.12-0.3 ms an item, bench/results/scale-2026-11-23.md).
FENCE_EVERY = 256
# At most this many windows are joined into one query while a filter matches few items, so
# one query never spans more than ~4,096 items of the list however the filter falls.
MAX_JOINED = 16
FENCES = "list_fences"
# How long a worker reuses the fences it read (they change once a sweep).
FENCES_TTL_SECONDS = 60.0


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
    ordered = sorted((comparable(value) for value in values), key=_sort_key)
    return ordered if len({_sort_key(value)[0] for value in ordered}) <= 1 else []


class Windows:
    """The bounded ranges on the leading sort key, in list order, from ``start`` (exclusive;
    None: the list's first item) to the list's end: between consecutive fences, the first
    and last ones open on their outer side, so together they hold every item after
    ``start`` exactly once."""

    def __init__(self, field: str, direction: int, fence_values: list[Any], start: Any) -> None:
        self.field, self.direction = field, direction
        if start is not None:
            low = comparable(start)
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
    it is the same set on every server): the embedded database skips the documents equal to an
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
#: (an empty read costs 1.5-4 ms on the embedded database; a year's gap before 33,000 dense files
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

    Why: the embedded database reads every index entry inside a query's bounds, and decodes each
    document, under its one lock before it sorts, limits or returns anything, so a limit
    never bounds a read there, and a walk without fences was one read of the whole range (a
    products bucket's 67,200 variants: 11.2 s, every other connection waiting). A window of
    dates is a bounded range of the ``role_newest`` index on any server; on mongod one cursor
    walks the same index a batch at a time anyway (``Dialect.whole_collection_reads``), and
    these windows would be as cheap there: each an index-served range, no sort of its own.
    Not by ``_id``: the embedded database's ``_id`` index is virtual (no entries: an ``_id`` range is a
    scan of the collection), so an ``_id`` range per read would need a new ``{role, _id}``
    index on every bucket and would lose the walk's date order, which its checkpoints and the
    fences it samples are in. Nor can a count size a window first, nor a sorted find with
    limit 1 find the date past an empty one cheaply: the embedded database decodes every match of
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
    then the documents are read between them: a first sweep's product walk held the embedded database's
    one lock 2.7 s for its first batch of 4,200 products, the fences' read 0.7 s (a string
    key has no span to size windows by, as :func:`first_date_windows` sizes dates)."""
    if listed is not None and not fences(collection, field):
        build_fences(collection.database, listed)
    windows = Windows(field, 1, fences(collection, field), after)
    while windows:
        cursor = collection.find(windows.take(joined), projection).sort(field, 1).batch_size(batch)
        try:
            yield from cursor
        finally:
            cursor.close()


def build_fences(db: Database[Any], listed: Listed, every: int = FENCE_EVERY, *, joined: int = MAX_JOINED
                 ) -> dict[str, Any]:
    """Sample every ``every``-th leading sort value of the whole list into ``list_fences``.

    One pass in list order reading only the sort key; when fences exist it reads window by
    window (``joined`` at a time: the status sweep joins one on the embedded database, where a
    read holds make run's one connection), so the database never holds more than a few
    thousand entries of it at once. With none yet, a list on a date with ``hints`` is read in
    windows :func:`first_date_windows` sizes as it goes (a first sweep's one read of a
    library's 1,401 originals held the embedded database's lock 0.4 s; undated items, which no window
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
            window = and_(listed.query, {field: condition})
            for doc in collection.find(window, {field: 1, "_id": 1}).sort(order):
                sampler.add(value_at(doc, field))
                held += 1
            condition = send(probes, held)
        return save_fences(db, fence_id(collection, field), sampler)
    windows = Windows(field, direction, previous, None)
    while windows:
        # The whole list with no fences and no filter: asked as "the field exists", which no
        # index serves on the embedded database, so it decodes and sorts the documents after it releases
        # its lock (an index walk decodes them under it): small reads beside the read of
        # 4,200 skus waited at most 93-168 ms instead of 553-653 ms, the read as long. On
        # mongod the sort's index serves it. Never hinted with a filter: a hint makes
        # the embedded database walk the whole index, every role of a bucket (12,600 files documents for
        # a list of 1,401 originals: 1.3 s against 0.6 s without).
        filter_ = and_(listed.query, windows.take(joined)) or {field: {"$exists": True}}
        for doc in collection.find(filter_, {field: 1, "_id": 1}).sort(order).batch_size(1000):
            sampler.add(value_at(doc, field))
    return save_fences(db, fence_id(collection, field), sampler)


def send(probes: Generator[dict[str, Any], Any, None], value: Any) -> dict[str, Any] | None:
    """The next condition of a walk's windows after telling it ``value`` (None: no more)."""
    try:
        return probes.send(value)
    except StopIteration:
        return None


def walk_dates(collection: Collection[Any], query: dict[str, Any], field: str, walk: str,
               projection: dict[str, int] | None, hints: Callable[[], DateHints], *, descending: bool = False,
               start: dt.datetime | None = None, batch: int = 1000, sample: bool = False
               ) -> Iterator[list[dict[str, Any]]]:
    """The documents of ``query`` a window of dates of ``field`` at a time, sorted by it, then
    ``_id``, in walk order, each window a bounded index range: between the walk's fences
    (``walk``: :func:`fence_id`'s key; :func:`date_windows`, about 256 documents a read), or,
    with none yet, windows sized by what the last one held from ``hints()`` (asked then only:
    :func:`first_date_windows`). Documents without the date come where a sort puts them
    (before every date), in one read. Lists of at most ``batch`` documents; with ``sample``,
    the walk's fences are saved once it ends, for the next walk."""
    order = [(field, -1 if descending else 1), ("_id", -1 if descending else 1)]
    walked = [date for date in fences(collection, field, walk) if isinstance(date, dt.datetime)]
    if walked:
        windows = date_windows(walked, descending=descending, start=start)
    else:
        where = hints()
        windows = first_date_windows(descending=descending, start=start, oldest=where.oldest,
                                     newest=where.newest, size=where.size if where.size >= 0 else None)
    sampler = Sampler()

    def read(condition: Any) -> Iterator[list[dict[str, Any]]]:
        cursor = collection.find({**query, field: condition}, projection).sort(order).batch_size(batch)
        try:
            while docs := list(itertools.islice(cursor, batch)):
                for doc in docs:
                    sampler.add(value_at(doc, field))
                yield docs
        finally:
            cursor.close()

    if not descending and start is None:
        yield from read(None)
    condition = next(windows, None)
    while condition is not None:
        held = 0
        for docs in read(condition):
            held += len(docs)
            yield docs
        condition = send(windows, held)
    if descending:
        yield from read(None)
    if sample:
        save_fences(collection.database, fence_id(collection, field, walk), sampler)
