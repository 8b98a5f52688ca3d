"""An in-process cache of image records (as :class:`MediaDoc`) and small hot files.

Safe because media is immutable: a file id always names the same bytes. The one thing that
changes is deletion, which every worker must honour within 2 seconds. Deleting code writes a
tombstone to ``media_deletions`` (see :func:`avenue.media.effects.invalidation.invalidate`), which
reaches every worker one of two ways:

- **a change stream** (replica sets, Atlas): a thread per worker,
  started by the first request, watches the inserts into ``media_deletions`` and evicts as
  they arrive: no query per worker per second, so the load on the database does not grow
  with workers x instances. A tombstone written *before* its delete (``lasting_s``) is
  applied again on every request for that long, so a worker that reloaded the document in
  between drops it once the delete has landed.
- **polling**, where the server has no change streams (mongomock), where the dialect says
  not to hold one (``Dialect.deletions_stream``: the embedded database, whose change stream
  reads every oplog entry under the lock every other operation waits for) unless
  ``AVENUE_DELETIONS_STREAM`` is ``on``,
  with ``AVENUE_DELETIONS_STREAM=off``, or while the stream is down: before serving, at most
  once per ``poll_interval`` (``AVENUE_DELETIONS_POLL_MS``, 1 s), one indexed query for
  tombstones newer than the last poll (at most ``POLL_LIMIT`` a time); in an app server's
  worker also from a background job
  (``route.start_deletion_sync``), so the cache stays current while every thread is busy.
  A worker that has not polled for longer than the tombstones live (an idle worker) clears
  everything instead.
  When a stream opens, one poll covers what came before it.
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

from avenue import background
from avenue.clock import as_utc
from avenue.dialect import dialect_of
from avenue.media.effects.invalidation import DELETIONS
from avenue.media.records import Document, MediaDoc

log = logging.getLogger(__name__)

# Tombstones within this margin before the last poll are read again, covering clock skew
# between app instances (evicting an id twice is harmless).
SKEW = dt.timedelta(seconds=5)
HORIZON = dt.timedelta(hours=1)
POLL_LIMIT = 1000
# After a change stream fails, polling serves alone this long before the stream is retried.
STREAM_RETRY_SECONDS = 60.0
Key = tuple[str, Any]  # (bucket, file id)
# At most this many refused URLs are kept (MediaCache.refuse), the least recently refused
# dropped first: about 400 bytes each beside the document they name, 4 MB in all.
MAX_REFUSALS = 10_000


class _Flight:
    """One read of a document, numbered in the order reads begin."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.done = False
        self.failed = False
        self.result: Any = None


class SharedReads:
    """Reads of one document by concurrent requests, shared when that changes nothing they
    see: a request takes the answer of a read that *began after it asked* (so it sees every
    write acknowledged before it asked: read-your-writes across workers holds), and at most
    one read of a key is in flight in this process. A flood of URLs that only the database
    can judge (a version nobody can tell from one just written) costs this worker one read
    at a time per image, not one per request; each request waits for at most two reads.
    (Go's singleflight shares any read in flight; that would hand out answers older than
    the request, so here only a newer one is shared.) A key's last read is kept only while
    requests for it are waiting."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._flights: dict[Key, _Flight] = {}  # the last read of each key someone waits on
        self._asking: dict[Key, int] = {}  # requests inside read() per key
        self._begun = 0  # reads begun so far

    def read(self, key: Key, load: Callable[[], Any]) -> Any:
        """``load()``'s answer for ``key``, from a read begun after this call (this one's, or
        another request's that began after it; the others wait for it)."""
        with self._changed:
            asked = self._begun
            self._asking[key] = self._asking.get(key, 0) + 1
            try:
                while True:
                    flight = self._flights.get(key)
                    if flight is None or (flight.done and (flight.number <= asked or flight.failed)):
                        self._begun += 1  # none fresh enough: this request reads, the others share it
                        flight = self._flights[key] = _Flight(self._begun)
                        break
                    if flight.done:  # begun after this request asked
                        self._leave(key)
                        return flight.result
                    self._changed.wait()
            except BaseException:
                self._leave(key)
                raise
        try:
            flight.result = load()
        except BaseException:
            flight.failed = True
            raise
        finally:
            with self._changed:
                flight.done = True
                self._changed.notify_all()
                self._leave(key)
        return flight.result

    def _leave(self, key: Key) -> None:
        """A request for ``key`` is done with it (held: ``_changed``)."""
        self._asking[key] -= 1
        if not self._asking[key]:
            del self._asking[key]
            flight = self._flights.get(key)
            if flight is not None and flight.done:
                del self._flights[key]


def _ids(stone: dict[str, Any]) -> list[Any]:
    """A tombstone's file ids (``file_id`` in tombstones written before they were batched)."""
    return list(stone.get("file_ids") or ([stone["file_id"]] if "file_id" in stone else []))


class MediaCache:
    """LRU caches of documents (by original) and bytes (by file), bounded in bytes."""

    def __init__(self, max_bytes: int, max_object_bytes: int, poll_interval: float = 1.0,
                 max_docs: int = 50_000, stream: str = "auto", max_refusals: int = MAX_REFUSALS) -> None:
        """``stream``: ``auto`` (a change stream where the dialect's ``deletions_stream`` says so),
        ``on``, ``off``."""
        self.max_bytes = max_bytes
        self.max_object_bytes = min(max_object_bytes, max_bytes)
        self.poll_interval = poll_interval
        self.max_docs = max_docs
        self._docs: OrderedDict[Key, MediaDoc] = OrderedDict()
        self._blobs: OrderedDict[Key, bytes] = OrderedDict()
        # Response headers per representation, computed once (they never change either).
        self._headers: dict[Key, list[tuple[str, str]]] = {}
        # Renditions on request found stored, by (bucket, image id, version, options, format):
        # their representation (and by file id, so a deleted rendition's tombstone drops it).
        self._renditions: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._rendition_keys: dict[Any, tuple[Any, ...]] = {}
        # URLs of cached images that the database's document refused too (a version it does
        # not know, an extension or variant it lacks), by (bucket, image id, the URL's key):
        # (until when, the document that refused), so a flood of them reads nothing (refuse).
        self.max_refusals = max_refusals
        self._refusals: OrderedDict[tuple[str, Any, Any], tuple[float, MediaDoc]] = OrderedDict()
        self._blob_bytes = 0
        # Reads of a document past the cache (route.read_through), shared by concurrent requests.
        self.reads = SharedReads()
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._checked = float("-inf")  # monotonic time of the last poll
        self._since: dt.datetime | None = None  # wall time the last successful poll covers
        self._streaming = False  # a change stream is delivering tombstones
        self._stream_tried = float("-inf")  # monotonic time the stream was last started
        self.stream = stream
        self._polls_only = stream == "off"  # never (again) start a change stream
        # Tombstones written before their delete, by id: (until, bucket, ids) to evict again.
        self._repeat: dict[Any, tuple[float, str, list[Any]]] = {}
        self._repeated = float("-inf")  # monotonic time they were last evicted again

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

    # --- renditions on request ------------------------------------------------------------
    def get_rendition(self, key: tuple[Any, ...]) -> Any:
        """The representation of a stored rendition (None when not known here). Safe to
        answer from as long as the image's document is current: the key holds its version."""
        with self._lock:
            found = self._renditions.get(key)
            if found is not None:
                self._renditions.move_to_end(key)
            return found

    def put_rendition(self, key: tuple[Any, ...], file_id: Any, representation: Any) -> None:
        with self._lock:
            self._renditions[key] = representation
            self._rendition_keys[file_id] = key
            if len(self._renditions) > self.max_docs:
                self._renditions.popitem(last=False)

    # --- refused URLs (negative entries) ---------------------------------------------------
    def refuse(self, bucket: str, doc: MediaDoc, url: Any,
               clock: Callable[[], float] = time.monotonic) -> None:
        """Keep for one ``poll_interval`` that the database's ``doc`` (the one now cached)
        answers 404 for ``url``: until then the route answers it 404 from the cache, without a
        read, while ``doc`` stays the cached one. A write that makes ``url`` a file writes
        a tombstone, and this worker's next poll (at most ``poll_interval`` later) drops ``doc``
        and so the refusal with it; so a refusal hides only a URL asked here before the write
        that made it (a version guessed before it was made), and for one poll interval at
        most. The caller keeps out the versions the image had (http.refusable)."""
        with self._lock:
            self._refusals[(bucket, doc.file_id, url)] = (clock() + self.poll_interval, doc)
            self._refusals.move_to_end((bucket, doc.file_id, url))
            if len(self._refusals) > self.max_refusals:
                self._refusals.popitem(last=False)

    def refused(self, bucket: str, doc: MediaDoc, url: Any,
                clock: Callable[[], float] = time.monotonic) -> bool:
        """Whether ``url`` was refused less than a poll interval ago by a document equal to
        ``doc`` (the image's cached one: read again since and changed, it refuses nothing)."""
        key = (bucket, doc.file_id, url)
        with self._lock:
            entry = self._refusals.get(key)
            if entry is None:
                return False
            if entry[0] <= clock() or entry[1] != doc:
                del self._refusals[key]
                return False
            return True

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
                rendition = self._rendition_keys.pop(file_id, None)
                if rendition is not None:
                    self._renditions.pop(rendition, None)
                data = self._blobs.pop((bucket, file_id), None)
                if data is not None:
                    self._blob_bytes -= len(data)

    def clear(self) -> None:
        with self._lock:
            self._docs.clear()
            self._headers.clear()
            self._renditions.clear()
            self._rendition_keys.clear()
            self._refusals.clear()
            self._blobs.clear()
            self._blob_bytes = 0

    def sync(self, db: Database[Document], clock: Callable[[], float] = time.monotonic,
             margin: float = 0.0) -> None:
        """Apply deletions made by any worker: from the change stream when it is live (and the
        tombstones still within their ``lasting_s``), else by a poll (at most one a second).
        ``margin``: do now what falls due within that many seconds. The background sync passes
        its own period, so the cache it keeps is never past due between two of its ticks: with
        none, a tick just short of the interval did nothing and the cache lapsed until the next,
        half an interval in which the event loop handed cached media to busy threads."""
        again, stream, poll = self._due(clock() + margin)
        if again:
            self._repeated = clock()
            self._evict_again(time.monotonic())
        if stream:
            self._stream_tried = clock()
            # Started here, by the request that finds it due (and again after it failed), not
            # with a worker's background work: every process that serves media needs it.
            background.spawn("avenue-media-deletions", self._watch, db)
        if poll:
            self._poll(db, clock, margin=margin)

    def current(self, clock: Callable[[], float] = time.monotonic) -> bool:
        """Whether :meth:`sync` has nothing to do now. What answers without waiting on the
        database (the front door, from gunicorn's event loop) answers only then, and leaves
        the rest to a request that syncs: deletions reach it exactly as they reach the route."""
        return not any(self._due(clock()))

    def _due(self, now: float) -> tuple[bool, bool, bool]:
        """What :meth:`sync` has to do at ``now``: apply early tombstones again (each
        ``poll_interval`` while they last), (re)start the change stream, poll. With the stream
        live, only the first: the stream delivers the rest."""
        again = bool(self._repeat) and now - self._repeated >= self.poll_interval
        if self._streaming:
            return again, False, False
        return (again, not self._polls_only and now - self._stream_tried >= STREAM_RETRY_SECONDS,
                now - self._checked >= self.poll_interval)

    def _poll(self, db: Database[Document], clock: Callable[[], float] = time.monotonic,
              force: bool = False, margin: float = 0.0) -> None:
        if not force and clock() + margin - self._checked < self.poll_interval:
            return
        with self._sync_lock:
            if not force and clock() + margin - self._checked < self.poll_interval:
                return
            started = dt.datetime.now(dt.UTC)
            try:
                if self._since is None or started - self._since > HORIZON:
                    self.clear()
                else:
                    since = self._since - SKEW
                    while True:
                        with pymongo.timeout(1.0):
                            tombstones = list(db[DELETIONS].find(
                                {"at": {"$gte": since}}, {"bucket": 1, "file_id": 1, "file_ids": 1, "at": 1}
                            ).sort("at", 1).limit(POLL_LIMIT))
                        for stone in tombstones:
                            ids = _ids(stone)
                            self.evict(stone["bucket"], ids)
                            ahead = (as_utc(stone["at"]) - started).total_seconds()
                            if ahead > 0:  # written before its delete: evict again until then
                                until = time.monotonic() + ahead
                                with self._lock:
                                    self._repeat[stone["_id"]] = (until, stone["bucket"], ids)
                        if len(tombstones) < POLL_LIMIT:
                            break
                        since = tombstones[-1]["at"]  # a burst: read on from the last one
                self._since = started
            except PyMongoError as exc:
                # The database is unreachable, so nothing can be deleted either; keep serving
                # and read the missed tombstones on the next poll (``_since`` is unchanged).
                log.warning("media cache could not poll deletions: %s", exc)
            self._checked = clock()

    def _watch(self, db: Database[Document]) -> None:
        """Receive tombstones as they are written, until the stream fails (then polling)."""
        try:
            if self.stream == "auto" and not dialect_of(db).deletions_stream:
                self._polls_only = True
                log.info("media deletions are polled on %s (AVENUE_DELETIONS_STREAM)", dialect_of(db).name)
                return
            with db[DELETIONS].watch([{"$match": {"operationType": "insert"}}],
                                     max_await_time_ms=1000) as stream:
                self._poll(db, force=True)  # what was written before the stream opened
                self._streaming = True
                while stream.alive:
                    change = stream.try_next()
                    self._since = dt.datetime.now(dt.UTC)  # the stream is current up to now
                    if change is None:
                        continue
                    stone = change.get("fullDocument") or {}
                    ids = _ids(stone)
                    self.evict(stone.get("bucket", ""), ids)
                    if stone.get("lasting_s"):
                        with self._lock:
                            self._repeat[stone.get("_id")] = (time.monotonic() + float(stone["lasting_s"]),
                                                              stone.get("bucket", ""), ids)
        except Exception as exc:  # noqa: BLE001 - no change streams here, a cut, a closed client
            log.info("media deletions change stream ended (%s); polling instead", exc)
        finally:
            self._streaming = False

    def _evict_again(self, moment: float) -> None:
        with self._lock:
            self._repeat = {key: entry for key, entry in self._repeat.items() if entry[0] > moment}
            pending = list(self._repeat.values())
        for _, bucket, ids in pending:
            self.evict(bucket, ids)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"documents": len(self._docs), "objects": len(self._blobs), "bytes": self._blob_bytes}
