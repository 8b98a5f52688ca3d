"""The fenced lister: a list's pages read window by window between its fences.

What the dialect selects where one operation may not read a whole collection (the embedded
database: ``Dialect.whole_collection_reads``), beside the plain ``avenue.paging.fetch``: the
same pages, cursors and counts (docs/api.md, "Lists at any depth"), each read a bounded range
on the leading sort key (avenue/embedded/fences.py says why), joined while a filter matches
few.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Generator
from typing import Any

from pymongo.collection import Collection
from pymongo.cursor import Cursor

from avenue.embedded.fences import (
    FIRST_GROWTH,
    FIRST_READ,
    MAX_JOINED,
    Windows,
    fences,
    first_date_windows,
    send,
)
from avenue.paging import (
    COUNT_LIMIT,
    DateHints,
    Hint,
    Page,
    SortSpec,
    Window,
    after_ranges,
    and_,
    comparable,
    decode_cursor,
    encode_cursor,
    value_at,
)

# An $in of at most this many values is walked as one query per value (see _branches).
MAX_BRANCHES = 4


def _windowable(query: dict[str, Any]) -> bool:
    """Whether windows keep ``query`` on its index everywhere: equalities only, so a window
    is the index's equality prefix plus a range on the sort key."""
    return all(not key.startswith("$") and not isinstance(value, dict) for key, value in query.items())


def _branches(query: dict[str, Any], sort: SortSpec) -> list[dict[str, Any]] | None:
    """``query`` as equality-only queries whose union it is, or None when it has another shape.

    The embedded database plans an ``$in`` followed by a range as a collection scan, so one ``$in`` of
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
                                                        for v in [comparable(value_at(doc, f))]),
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
    windows = Windows(field, direction, fence_values, start)
    joined = 1
    while windows:
        partial = windows.position == 0 and start is not None
        left = yield and_(query, windows.take(joined))
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
        filter_ = send(probes, wanted - len(docs))
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
    undated = and_(query, {field: None})
    docs: list[dict[str, Any]] = []

    def read(filter_: dict[str, Any]) -> list[dict[str, Any]]:
        return list(_find(collection, filter_, hint, projection).sort(list(sort)).limit(wanted - len(docs)))

    if not descending and start is None:
        docs += read(undated)
    probes = first_date_windows(descending=descending, start=start, oldest=first.oldest, newest=first.newest,
                                size=first.size)
    condition = next(probes, None)
    while condition is not None and len(docs) < wanted:
        held = read(and_(query, {field: condition}))
        docs += held
        condition = send(probes, len(held))
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
        filter_ = send(probes, COUNT_LIMIT + 1 - counted)
    return counted


def _find(collection: Collection[Any], filter_: dict[str, Any], hint: Hint,
          projection: dict[str, int] | None = None) -> Cursor[Any]:
    cursor = collection.find(filter_, projection)
    index = hint(filter_)
    return cursor.hint(index) if index else cursor


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
    at all, since a planner that only picks indexes by filter (the embedded database) would otherwise
    scan; with ``index_serves_filter`` (the index leads with the filter's own keys), with a
    filter too: the embedded database's planner scanned a colour list's ``$in`` on its multikey index
    beside a date range on some libraries (tests/api/test_index_usage.py). ``total`` is the
    list's exact size when the caller keeps it (counters); without it the matches are counted
    up to ``COUNT_LIMIT``. ``hints``: where a list on a date lies (its bucket's counters),
    asked only while the list has no fences and no kept ``total`` says it is small; its pages
    are then read in windows sized as they go (:func:`_first_walk`).
    """
    def hint(filter_: dict[str, Any]) -> str | None:
        return index if index_serves_filter or not filter_ else None

    field = sort[0][0]
    branches = _branches(query, sort)
    fence_values = fences(collection, field) if branches is not None else []
    # The hints cost a read: not asked for a list whose kept size says it is small.
    small = total is not None and total <= FIRST_WALK_FROM
    first = hints() if hints is not None and branches is not None and not fence_values and not small else None
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
                    found += _merged([list(_find(collection, and_(each, branch), hint).sort(list(sort))
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
    cursor = encode_cursor([value_at(docs[-1], field) for field, _ in sort]) if more and docs else None
    return Page(docs, total, exact, cursor)
