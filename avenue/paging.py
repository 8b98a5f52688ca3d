"""Lists that cost the same at any depth: keyset cursors, bounded offsets, capped counts.

Every list the API serves is sorted on an index whose last key is unique (``sku``, or a date
with ``_id`` as the tie-break), so a page is one index walk of ``per_page + 1`` entries:

- ``?after=<cursor>`` (the ``next`` of the previous page) continues *after* the last item by
  its sort values: page 50,000 costs what page 1 costs, and inserts or deletes between two
  calls never repeat or skip an item;
- ``?page=N`` still works for the first ``MAX_OFFSET`` items (a ``skip`` walks every entry
  it skips, so deeper numbered pages would get slower without limit: they answer 400 with a
  pointer to ``after``);
- ``total`` counts at most ``COUNT_LIMIT`` matches (a count walks every match), with
  ``total_exact`` false once that many exist.

Pure: takes a collection and values, never the request.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo.collection import Collection

from avenue.errors import BadRequest

MAX_PER_PAGE = 100
MAX_OFFSET = 10_000
COUNT_LIMIT = 10_000
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
        """The API's list shape (``API.md``)."""
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


def _value(doc: dict[str, Any], field: str) -> Any:
    """A document's value at a dotted path (``metadata.trash.deleted_at``), None if absent."""
    value: Any = doc
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def fetch(collection: Collection[Any], query: dict[str, Any], sort: SortSpec, window: Window,
          *, index: str | None = None) -> Page:
    """One page of ``query`` in ``sort`` order, by cursor or by (bounded) offset.

    ``index`` names the index that holds ``sort`` for an unfiltered list: it is hinted, since
    a planner that only picks indexes by filter (SecantusDB) would otherwise scan. The total
    of an unfiltered list comes from the collection's metadata (O(1)).
    """
    order = list(sort)
    if window.after is None:
        offset = (window.page - 1) * window.per_page
        found = collection.find(query).sort(order).skip(offset).limit(window.per_page + 1)
        docs = list(found.hint(index) if index and not query else found)
    else:
        docs = []
        for branch in after_ranges(sort, decode_cursor(window.after, len(sort))):
            wanted = window.per_page + 1 - len(docs)
            if wanted <= 0:
                break
            docs += collection.find({**query, **branch} if not _overlaps(query, branch)
                                    else {"$and": [query, branch]}).sort(order).limit(wanted)
            # (A range is a filter on the sort's own keys: every planner finds their index.)
    more = len(docs) > window.per_page
    docs = docs[: window.per_page]
    if not query:
        total, exact = collection.estimated_document_count(), True
    else:
        total = collection.count_documents(query, limit=COUNT_LIMIT + 1)
        exact = total <= COUNT_LIMIT
        total = min(total, COUNT_LIMIT)
    cursor = encode_cursor([_value(docs[-1], field) for field, _ in sort]) if more and docs else None
    return Page(docs, total, exact, cursor)
