"""Lists that cost the same at any depth: keyset cursors, bounded offsets, capped counts.

Every list the API serves is sorted on an index whose last key is unique (``sku``, or a date
with ``_id`` as the tie-break):

- ``?after=<cursor>`` (the ``next`` of the previous page) continues *after* the last item by
  its sort values: inserts or deletes between two calls never repeat or skip an item;
- ``?page=N`` works for the first ``MAX_OFFSET`` items (deeper numbered pages answer 400 with
  a pointer to ``after``: an offset is a walk over every item before it);
- ``total`` is the caller's exact figure when it keeps one (the counters kept with every
  write), else a count of at most ``COUNT_LIMIT`` matches, with ``total_exact`` false once
  that many exist.

:func:`fetch` is the plain lister: one ``find().sort().limit()`` a page, which mongod serves
by walking the sort's index and stopping at the limit. The dialect selects it, or, on a
server that reads every entry in a query's bounds before it limits, the fenced lister of the
same signature (avenue/embedded/listing.py): ``avenue.dialect.lister``.

Pure: takes collections and values, never the request.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bson import ObjectId
from bson.errors import InvalidId
from pymongo.collection import Collection
from pymongo.cursor import Cursor
from pymongo.database import Database

from avenue.clock import as_utc
from avenue.errors import BadRequest

MAX_PER_PAGE = 100
# Numbered pages and capped counts walk every item they pass: 1,000 keeps both shallow
# (GitHub's search API stops at the same 1,000). ``after`` reaches any depth.
MAX_OFFSET = 1_000
COUNT_LIMIT = 1_000
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
    any planner (the embedded database scans the whole collection for an ``$or`` inside an
    ``$and``).
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


def and_(query: dict[str, Any], branch: dict[str, Any]) -> dict[str, Any]:
    """Both conditions, as one filter."""
    return {**query, **branch} if not _overlaps(query, branch) else {"$and": [query, branch]}


def value_at(doc: dict[str, Any], field: str) -> Any:
    """A document's value at a dotted path (``metadata.trash.deleted_at``), None if absent."""
    value: Any = doc
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def comparable(value: Any) -> Any:
    """``value`` as it compares with others of the same list."""
    # Dates come back naive from the database and aware from a cursor: compare them as UTC.
    return as_utc(value) if isinstance(value, dt.datetime) else value


#: Which index to hint for a filter (None: let the planner choose): :func:`fetch`'s ``index``.
Hint = Callable[[dict[str, Any]], str | None]


class Lister(Protocol):
    """How a list's page is read: :func:`fetch`, or the fenced lister (avenue/embedded/listing.py)."""

    def __call__(self, collection: Collection[Any], query: dict[str, Any], sort: SortSpec, window: Window, *,
                 index: str | None = None, index_serves_filter: bool = False, total: int | None = None,
                 hints: Callable[[], DateHints] | None = None) -> Page: ...


def fetch(collection: Collection[Any], query: dict[str, Any], sort: SortSpec, window: Window,
          *, index: str | None = None, index_serves_filter: bool = False, total: int | None = None,
          hints: Callable[[], DateHints] | None = None) -> Page:
    """One page of ``query`` in ``sort`` order, by cursor or by (bounded) offset: each read one
    ``find().sort().limit()``, which the server stops after the page's items.

    ``index`` names the index that holds ``sort``: hinted when the filter is empty, or with
    ``index_serves_filter`` (the index leads with the filter's own keys) always, so that no
    planner picks another. ``total`` is the list's exact size when the caller keeps it
    (counters); without it the matches are counted up to ``COUNT_LIMIT``. ``hints`` is the
    fenced lister's (where a list's dates lie); one cursor needs none.
    """
    def hint(filter_: dict[str, Any]) -> str | None:
        return index if index_serves_filter or not filter_ else None

    wanted = window.per_page + 1
    if window.after is None:
        offset = (window.page - 1) * window.per_page
        docs = list(_find(collection, query, hint).sort(list(sort)).skip(offset).limit(wanted))
    else:
        docs = []
        for branch in after_ranges(sort, decode_cursor(window.after, len(sort))):
            if len(docs) < wanted:
                later = _find(collection, and_(query, branch), hint).sort(list(sort))
                docs += later.limit(wanted - len(docs))
    more, docs = len(docs) > window.per_page, docs[: window.per_page]
    if total is not None:
        exact = True
    else:
        options: dict[str, Any] = {"limit": COUNT_LIMIT + 1}
        if index_hint := hint(query):
            options["hint"] = index_hint
        total = collection.count_documents(query, **options)
        exact = total <= COUNT_LIMIT
        total = min(total, COUNT_LIMIT)
    token = encode_cursor([value_at(docs[-1], field) for field, _ in sort]) if more and docs else None
    return Page(docs, total, exact, token)


def _find(collection: Collection[Any], filter_: dict[str, Any], hint: Hint) -> Cursor[Any]:
    cursor = collection.find(filter_)
    index = hint(filter_)
    return cursor.hint(index) if index else cursor


@dataclass(frozen=True)
class DateHints:
    """Where a list's dates lie and how many items it has at most (a bucket's counters): what
    the fenced lister sizes its first windows by (avenue/embedded/fences.py)."""

    oldest: dt.datetime | None
    newest: dt.datetime | None
    size: int


@dataclass(frozen=True)
class Listed:
    """A list the API pages through: which documents, in which order, on which index. On the
    embedded database the status sweep builds the fences of each (avenue/embedded/fences.py);
    ``hints``: for a list on a date, where its dates lie (asked of the database and the
    collection's name), so that a first build reads it in windows."""

    collection: str
    query: dict[str, Any]
    sort: SortSpec
    index: str
    hints: Callable[[Database[Any], str], DateHints] | None = None
