"""Telling every worker's media cache that some files changed or went.

Media is immutable, so a cached document or file can only become wrong when it is deleted or
rewritten (fsck repairs, re-rendered variants). :func:`invalidate` evicts the ids from this
process's caches at once and writes a tombstone to ``media_deletions`` that the caches of all
other workers receive through a change stream, or poll where the server has none
(:meth:`avenue.media.serve.cache.MediaCache.sync`).

The caches live in the serving wing, above this one: they register here (:data:`LOCAL_CACHES`,
by the route's ``init_app``) as anything with ``evict``, so writing code evicts them without
importing serve.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Iterable
from typing import Any, Protocol

from pymongo.database import Database

from avenue.clock import now
from avenue.media.records import Document

# Every deletion's tombstone, read by every worker to evict its in-process cache
# (avenue/media/serve/cache.py); its TTL index is ensured with the buckets' (store/indexes.py).
DELETIONS = "media_deletions"
DELETIONS_TTL_SECONDS = 24 * 3600
TOMBSTONE_IDS = 1000


class Evicting(Protocol):
    """What a cache of media files offers writers: forget these ids of this bucket."""

    def evict(self, bucket: str, file_ids: Iterable[Any]) -> None: ...


# Media caches in this process (registered by the route's init_app).
LOCAL_CACHES: weakref.WeakSet[Evicting] = weakref.WeakSet()


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
        # One tombstone per call (an original and its variants together), at most
        # TOMBSTONE_IDS ids each: a big gc writes one per image, not one per file.
        db[DELETIONS].insert_many([
            {"bucket": bucket, "file_ids": file_ids[start:start + TOMBSTONE_IDS], "at": at,
             "lasting_s": lasting.total_seconds()}
            for start in range(0, len(file_ids), TOMBSTONE_IDS)])
