"""Telling every worker's media cache that some files changed or went.

Media is immutable, so a cached document or file can only become wrong when it is deleted or
rewritten (fsck repairs, re-rendered variants). :func:`invalidate` evicts the ids from this
process's caches at once and writes tombstones to ``media_deletions`` that the caches of all
other workers poll (:meth:`avenue.media.cache.MediaCache.sync`).
"""

from __future__ import annotations

import datetime as dt
import weakref
from typing import Any

from pymongo.database import Database

from avenue.clock import now
from avenue.media.cache import MediaCache
from avenue.media.indexes import DELETIONS
from avenue.media.records import Document

# Media caches in this process (registered by the route's init_app).
LOCAL_CACHES: weakref.WeakSet[MediaCache] = weakref.WeakSet()


def evict_here(bucket: str, file_ids: list[Any]) -> None:
    """Evict ``file_ids`` from this process's caches (no database write)."""
    for cache in list(LOCAL_CACHES):
        cache.evict(bucket, file_ids)


def invalidate(db: Database[Document], bucket: str, file_ids: list[Any], *,
               lasting: dt.timedelta = dt.timedelta(0)) -> None:
    """Evict ``file_ids`` from this process's caches now and from every other worker's soon.

    ``lasting``: the tombstone is dated that far ahead, so every poll in that window reads
    it again and evicts again. A deletion that writes its tombstone *before* deleting uses
    it: a worker that reloads the document in between evicts it once more after the delete.
    """
    if file_ids:
        evict_here(bucket, file_ids)
        at = now() + lasting
        db[DELETIONS].insert_many([{"bucket": bucket, "file_id": fid, "at": at} for fid in file_ids])
