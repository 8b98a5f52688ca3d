"""Deliveries: what a worker served, noted in memory on every serving path, written in batches.

Every path that answers a media URL (the Flask route, the route's answer from the worker's
cache, the WSGI front door and gunicorn's event loop through it) calls
:meth:`Deliveries.served` with the file it answered from, the image it belongs to and the
bytes it sent. That costs one short lock and a dict update, never a database write: a media
answer from the cache takes ~20 µs and must stay that cheap.

:meth:`Deliveries.flush` takes everything noted since the last flush (swapping the tally for
an empty one under the lock) and hands it to the sinks the media package registered, each
writing its share in a few batched writes: the renditions' ``last_used`` (the recency the
byte budget evicts by, :mod:`avenue.media.store.renditions`) is one ``update_many`` with
``$max`` per minute served and 500 renditions. Each worker flushes every :data:`FLUSH_SECONDS` from a
background job (:func:`avenue.media.start_delivery_flush`), so N requests for one rendition
cost at most one write per worker per interval.

Made to carry more than recency: a :class:`Delivered` record holds, per file served, when it
was last served, how many answers and how many bytes, and the image it belongs to; a sink for
per-image delivery counts adds up the same batch by image. An exiting worker flushes once
more (gunicorn.conf.py ``worker_exit``, within 2 s); one that is killed loses what it noted
since its last flush (at most one interval's recency: a rendition used only then may be
evicted a little early, and is rendered again on its next request).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pymongo.database import Database

from avenue.media.records import Document

log = logging.getLogger(__name__)

#: How often a worker writes what it served (seconds).
FLUSH_SECONDS = 30.0
#: Files noted at most between two flushes: past it, new files are dropped until the next
#: flush (a worker without its flush job, as in a CLI or a test, never grows without bound).
MAX_PENDING = 100_000

Key = tuple[str, Any]  # (bucket, file id)


@dataclass
class Delivered:
    """One file's deliveries since the last flush."""

    image: Key  # (bucket, image id) the file belongs to
    last: float  # when it was last served (Unix time)
    requests: int = 0
    bytes: int = 0
    name: str = ""  # "original", a variant's name or a rendition's key
    format: str = ""  # the served file's format ("jpeg", "webp", "avif", ...)


Sink = Callable[[Database[Document], Mapping[Key, Delivered]], int]


class Deliveries:
    """One worker's tally of what it served, and the sinks a flush writes it to."""

    def __init__(self, sinks: Mapping[str, Sink] | None = None, *,
                 clock: Callable[[], float] = time.time, max_pending: int = MAX_PENDING) -> None:
        self.sinks: dict[str, Sink] = dict(sinks or {})
        self.clock = clock
        self.max_pending = max_pending
        self.dropped = 0
        self._tally: dict[Key, Delivered] = {}
        self._lock = threading.Lock()

    def served(self, bucket: str, file_id: Any, image: Key, length: int = 0, *,
               name: str = "", format: str = "") -> None:
        """Note that ``file_id`` of ``bucket`` (a file of ``image``: its ``name``, in
        ``format``) was answered, ``length`` bytes sent (0 for a 304 or a HEAD)."""
        moment = self.clock()
        with self._lock:
            found = self._tally.get((bucket, file_id))
            if found is None:
                if len(self._tally) >= self.max_pending:
                    self.dropped += 1
                    return
                found = self._tally[(bucket, file_id)] = Delivered(image, moment, name=name, format=format)
            if moment > found.last:
                found.last = moment
            found.requests += 1
            found.bytes += length

    def pending(self) -> int:
        """Files noted since the last flush."""
        return len(self._tally)

    def take(self) -> dict[Key, Delivered]:
        """Everything noted since the last take, and an empty tally from now on."""
        with self._lock:
            taken, self._tally = self._tally, {}
        return taken

    def flush(self, db: Database[Document]) -> dict[str, int]:
        """Write what was noted since the last flush to every sink; what each sink wrote (its
        count of writes sent). A sink that fails loses its share of this batch (logged): the
        others still get theirs."""
        taken = self.take()
        written: dict[str, int] = {}
        if not taken:
            return written
        for name, sink in self.sinks.items():
            try:
                written[name] = sink(db, taken)
            except Exception:  # noqa: BLE001 - logged; a database outage must not stop serving
                log.exception("delivery sink %s failed: %d files' deliveries not written", name, len(taken))
                written[name] = 0
        return written
