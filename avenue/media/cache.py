"""An in-process cache of media files documents and small hot files.

Safe because media is immutable: a file id always names the same bytes. The one thing that
changes is deletion, which every worker must honour within 2 seconds. Deleting code writes a
tombstone to ``media_deletions`` (see :func:`avenue.media.invalidation.invalidate`); before
serving, each worker polls that collection at most once per ``poll_interval`` (1 s) for
tombstones newer than its last poll and evicts them. A worker that has not polled for longer
than the tombstones live (an idle worker) clears everything instead. A poll is one indexed
query per worker per second under traffic, never one per request.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import pymongo
from pymongo.database import Database
from pymongo.errors import PyMongoError

from avenue.media.indexes import DELETIONS
from avenue.media.records import Document, MediaDoc

log = logging.getLogger(__name__)

# Tombstones within this margin before the last poll are read again, covering clock skew
# between app instances (evicting an id twice is harmless).
SKEW = dt.timedelta(seconds=5)
HORIZON = dt.timedelta(hours=1)
Key = tuple[str, Any]  # (bucket, file id)


class MediaCache:
    """LRU caches of documents (by original) and bytes (by file), bounded in bytes."""

    def __init__(self, max_bytes: int, max_object_bytes: int, poll_interval: float = 1.0,
                 max_docs: int = 50_000) -> None:
        self.max_bytes = max_bytes
        self.max_object_bytes = min(max_object_bytes, max_bytes)
        self.poll_interval = poll_interval
        self.max_docs = max_docs
        self._docs: OrderedDict[Key, MediaDoc] = OrderedDict()
        self._blobs: OrderedDict[Key, bytes] = OrderedDict()
        # Response headers per representation, computed once (they never change either).
        self._headers: dict[Key, list[tuple[str, str]]] = {}
        self._blob_bytes = 0
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._checked = float("-inf")  # monotonic time of the last poll
        self._since: dt.datetime | None = None  # wall time the last successful poll covers

    # --- documents -----------------------------------------------------------------------
    def get_doc(self, bucket: str, file_id: Any) -> MediaDoc | None:
        with self._lock:
            doc = self._docs.get((bucket, file_id))
            if doc is not None:
                self._docs.move_to_end((bucket, file_id))
            return doc

    def put_doc(self, bucket: str, doc: MediaDoc) -> None:
        with self._lock:
            self._docs[(bucket, doc.file_id)] = doc
            if len(self._docs) > self.max_docs:
                self._docs.popitem(last=False)

    def get_headers(self, bucket: str, file_id: Any) -> list[tuple[str, str]] | None:
        return self._headers.get((bucket, file_id))

    def put_headers(self, bucket: str, file_id: Any, headers: list[tuple[str, str]]) -> None:
        with self._lock:
            if len(self._headers) >= self.max_docs:
                self._headers.clear()
            self._headers[(bucket, file_id)] = headers

    # --- bytes ---------------------------------------------------------------------------
    def get_blob(self, bucket: str, file_id: Any) -> bytes | None:
        with self._lock:
            data = self._blobs.get((bucket, file_id))
            if data is not None:
                self._blobs.move_to_end((bucket, file_id))
            return data

    def cacheable(self, length: int) -> bool:
        return 0 < length <= self.max_object_bytes

    def put_blob(self, bucket: str, file_id: Any, data: bytes) -> None:
        if not self.cacheable(len(data)):
            return
        with self._lock:
            old = self._blobs.pop((bucket, file_id), None)
            if old is not None:
                self._blob_bytes -= len(old)
            self._blobs[(bucket, file_id)] = data
            self._blob_bytes += len(data)
            while self._blob_bytes > self.max_bytes:
                _, evicted = self._blobs.popitem(last=False)
                self._blob_bytes -= len(evicted)

    # --- invalidation --------------------------------------------------------------------
    def evict(self, bucket: str, file_ids: Iterable[Any]) -> None:
        with self._lock:
            for file_id in file_ids:
                self._docs.pop((bucket, file_id), None)
                self._headers.pop((bucket, file_id), None)
                data = self._blobs.pop((bucket, file_id), None)
                if data is not None:
                    self._blob_bytes -= len(data)

    def clear(self) -> None:
        with self._lock:
            self._docs.clear()
            self._headers.clear()
            self._blobs.clear()
            self._blob_bytes = 0

    def sync(self, db: Database[Document], clock: Callable[[], float] = time.monotonic) -> None:
        """Apply deletions made by any worker since the last poll (at most one poll a second)."""
        if clock() - self._checked < self.poll_interval:
            return
        with self._sync_lock:
            if clock() - self._checked < self.poll_interval:
                return
            started = dt.datetime.now(dt.UTC)
            try:
                if self._since is None or started - self._since > HORIZON:
                    self.clear()
                else:
                    with pymongo.timeout(1.0):
                        tombstones = list(db[DELETIONS].find(
                            {"at": {"$gte": self._since - SKEW}}, {"_id": 0, "bucket": 1, "file_id": 1}
                        ))
                    by_bucket: dict[str, list[Any]] = {}
                    for stone in tombstones:
                        by_bucket.setdefault(stone["bucket"], []).append(stone["file_id"])
                    for bucket, ids in by_bucket.items():
                        self.evict(bucket, ids)
                self._since = started
            except PyMongoError as exc:
                # The database is unreachable, so nothing can be deleted either; keep serving
                # and read the missed tombstones on the next poll (``_since`` is unchanged).
                log.warning("media cache could not poll deletions: %s", exc)
            self._checked = clock()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"documents": len(self._docs), "objects": len(self._blobs), "bytes": self._blob_bytes}
