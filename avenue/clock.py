"""Time as the app stores and shows it: UTC, at BSON (millisecond) precision.

The bottom of the stack: everything that stamps, compares or prints a time uses these three
functions, so a stored time and a compared time always agree and a naive datetime (as some
servers and old documents hand back) is read as the UTC it was written as.
"""

from __future__ import annotations

import datetime as dt


def now() -> dt.datetime:
    """UTC now, truncated to milliseconds (what BSON stores), so stored and compared times agree."""
    value = dt.datetime.now(dt.UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def as_utc(value: dt.datetime) -> dt.datetime:
    """``value`` as an aware UTC datetime; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def maybe_utc(value: dt.datetime | None) -> dt.datetime | None:
    """:func:`as_utc` for an optional value."""
    return None if value is None else as_utc(value)


def isoformat(value: dt.datetime | None) -> str | None:
    """``2026-01-31T12:00:00Z`` (the API's time format), or None."""
    if value is None:
        return None
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
