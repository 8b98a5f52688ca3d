"""The walk shared by the backfills (``backfill_placeholders.py``, ``backfill_near_duplicates.py``;
the commands ``placeholders`` and ``near-duplicates``): every original of a bucket lacking a
metadata field, with the bytes of its WebP thumb.

Originals are read in batches in ``_id`` order (a keyset: memory is one batch whatever the
store's size, and a rerun, or a run after one cut off, starts over cheaply: done images no
longer match, and the ones left unreadable are passed by the keyset, not read again).
With WebP turned off (``AVENUE_DISABLED_FORMATS``) no thumb is read: its decoder must not run
(docs/security.md, "Turning a format off"), so the walk yields nothing until it is on again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pymongo.database import Database

from avenue.db import Document
from avenue.media.store.scan import file as file_doc
from avenue.media.store.scan import originals_flagged, originals_lacking
from avenue.media.store.storage import read_all

BATCH = 200
#: The format of the thumb the backfills read (every original has one: variants.py).
THUMB_FORMAT = "webp"
ProgressFn = Callable[[str, int, int], None]
Computed = TypeVar("Computed")


def _thumb(db: Database[Document], bucket: str, original: dict[str, Any]) -> bytes | None:
    info = (((original.get("metadata") or {}).get("variants") or {}).get("thumb") or {}).get(THUMB_FORMAT)
    if not info:
        return None
    variant = file_doc(db, bucket, info["id"])
    return read_all(db, bucket, variant) if variant is not None else None


def thumbs_lacking(db: Database[Document], bucket: str, field: str, *, phase: str, disabled: frozenset[str],
                   progress: ProgressFn | None = None,
                   reading: tuple[str, ...] = ()) -> Iterator[tuple[dict[str, Any], bytes | None]]:
    """Each original of ``bucket`` without ``metadata.<field>`` and its thumb's bytes (None when
    the thumb is missing or unreadable), reporting ``progress`` after each batch; the
    original's ``metadata.<name>`` of each of ``reading`` comes with it. None at all while the
    thumbs' format is in ``disabled`` (the formats turned off)."""
    if THUMB_FORMAT in disabled:
        return
    after: Any = None
    done = 0
    projection = {"metadata.variants.thumb": 1, **{f"metadata.{name}": 1 for name in reading}}
    while batch := originals_lacking(db, bucket, field, after, BATCH, projection):
        after = batch[-1]["_id"]
        for original in batch:
            yield original, _thumb(db, bucket, original)
        done += len(batch)
        if progress:
            progress(phase, done, done + (BATCH if len(batch) == BATCH else 0))


def computed_for_lacking(db: Database[Document], bucket: str, field: str,
                         compute: Callable[[bytes, frozenset[str]], Computed | None],
                         unreadable: list[dict[str, str]], *, phase: str, disabled: frozenset[str],
                         progress: ProgressFn | None = None) -> Iterator[tuple[dict[str, Any], Computed]]:
    """Each original of ``bucket`` without ``metadata.<field>`` with what ``compute`` made of
    its thumb (handed ``disabled``, the formats turned off); the ones whose thumb is missing or
    unreadable (``compute`` gave None) are listed in ``unreadable`` instead, for the command's
    report (the one loop of the placeholder and near-duplicate backfills, which differ only in
    what they compute and write)."""
    for original, thumb in thumbs_lacking(db, bucket, field, phase=phase, disabled=disabled,
                                          progress=progress):
        value = compute(thumb, disabled) if thumb is not None else None
        if value is None:
            unreadable.append({"bucket": bucket, "id": str(original["_id"])})
            continue
        yield original, value


def originals_flagged_ids(db: Database[Document], bucket: str, field: str) -> Iterator[Any]:
    """The id of each original of ``bucket`` whose ``metadata.<field>`` is true, by the same
    keyset (one batch of ids in memory)."""
    after: Any = None
    while batch := originals_flagged(db, bucket, field, after, BATCH, {"_id": 1}):
        after = batch[-1]["_id"]
        yield from (original["_id"] for original in batch)
