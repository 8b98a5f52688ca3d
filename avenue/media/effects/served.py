"""Deliveries: what a worker served, noted in memory on every serving path, written in batches.

Every path that answers a media URL (the Flask route, the route's answer from the worker's
cache, the WSGI front door and gunicorn's event loop through it) calls
:meth:`Deliveries.served` with the file it answered from, the image it belongs to and the
bytes it sent, for each answer that sends the bytes (a GET's 200 or 206: a ``HEAD`` or a
304 costs a client nothing to repeat and would let anyone push an image up ops' lists,
thousands of times a second; a 304 also means the client kept bytes already counted).
That costs one tuple appended to a deque, no lock and never a database write: a media
answer from the cache takes ~12 µs and must stay that cheap (bench/results/deliveries-2026-11-24.md). It
is the front door metrics' mechanism (:func:`avenue.metrics.drain`): ``deque.append`` and
``popleft`` are atomic in CPython, so request threads never wait for each other or the flush.

The answers are folded into a tally per file (answers, bytes, last served) by the flush, and
on the answer that finds :data:`FOLD_AT` answers waiting (a worker nobody flushes, a CLI or a
test, stays bounded). :meth:`Deliveries.flush` folds, takes the tally (swapping it for an
empty one under the fold's lock) and hands it to the sinks the media package registered, each
writing its share in a few batched writes: the renditions' ``last_used`` (the recency the
byte budget evicts by, :mod:`avenue.media.store.renditions`) is one ``update_many`` with
``$max`` per minute served and 500 renditions. Each worker flushes every :data:`FLUSH_SECONDS` from a
background job (:func:`avenue.media.serve.route.start_delivery_flush`), so N requests for one rendition
cost at most one write per worker per interval.

Made to carry more than recency: a :class:`Delivered` record holds, per file served, when it
was last served, how many answers and how many bytes, and the image it belongs to; a sink for
per-image delivery counts adds up the same batch by image. An exiting worker flushes once
more (gunicorn.conf.py ``worker_exit``, within 2 s); one that is killed loses what it noted
since its last flush (at most one interval's recency: a rendition used only then may be
evicted a little early, and is rendered again on its next request).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pymongo.database import Database

from avenue.media.records import Document
from avenue.metrics import drain

log = logging.getLogger(__name__)

#: How often a worker writes what it served (seconds).
FLUSH_SECONDS = 30.0
#: Files noted at most between two flushes: past it, new files are dropped until the next
#: flush (a worker without its flush job, as in a CLI or a test, never grows without bound).
MAX_PENDING = 100_000
#: Answers waiting in the deque that make the next answer fold them into the tally itself.
#: Small on purpose: 10,000 waiting tuples survive into older garbage-collector generations
#: and cost more than the lock did (bench/results/deliveries-2026-11-24.md).
FOLD_AT = 256

Key = tuple[str, Any]  # (bucket, file id)

#: The query parameter the console adds to the media URLs it loads itself (thumbnails, grids,
#: the details panel): such an answer is served as any other and noted nowhere, so an editor
#: browsing the library neither counts as a visitor nor keeps an image off the clean-up list.
#: Public on purpose (an ``<img>`` sends no header of ours): anyone may add it to hide their
#: own fetches from the numbers, which hides counts and nothing else (docs/operations.md).
CONSOLE_MARKER = "via=console"


def from_console(query_string: str) -> bool:
    """Whether a media request's query string (as sent, undecoded) carries
    :data:`CONSOLE_MARKER` as one of its parameters: no parsing on the serving path."""
    return bool(query_string) and CONSOLE_MARKER in query_string.split("&")


@dataclass
class Delivered:
    """One file's deliveries since the last flush."""

    image: Key  # (bucket, image id) the file belongs to
    last: float  # when it was last served (Unix time)
    requests: int = 0
    bytes: int = 0
    name: str = ""  # "original", a variant's name or a rendition's key
    format: str = ""  # the served file's format ("jpeg", "webp", "avif", ...)
    # A private image's file (signed URLs only): its recency is kept, its numbers are not (the
    # per-image sink leaves it out, so its id and its renditions' names reach no ops list).
    private: bool = False
    # The image's version the file is of ("" before its first replace or edit) and the image's
    # file name then: the numbers count what was fetched, so a replace's new bytes are never
    # added to the old ones under the new name.
    version: str = ""
    filename: str = ""


Sink = Callable[[Database[Document], Mapping[Key, Delivered]], int]


# What an answer appends: bucket, file id, image, bytes sent, name, format, private, version,
# file name, when.
_Answer = tuple[str, Any, Key, int, str, str, bool, str, str, float]


class Deliveries:
    """One worker's tally of what it served, and the sinks a flush writes it to."""

    def __init__(self, sinks: Mapping[str, Sink] | None = None, *,
                 clock: Callable[[], float] = time.time, max_pending: int = MAX_PENDING,
                 fold_at: int = FOLD_AT) -> None:
        self.sinks: dict[str, Sink] = dict(sinks or {})
        self.clock = clock
        self.max_pending = max_pending
        self.fold_at = fold_at
        self.dropped = 0
        self._answers: collections.deque[_Answer] = collections.deque()
        self._tally: dict[Key, Delivered] = {}
        self._lock = threading.Lock()  # folds take turns; answers never take it

    def served(self, bucket: str, file_id: Any, image: Key, length: int = 0, *,
               name: str = "", format: str = "", private: bool = False, version: str = "",
               filename: str = "") -> None:
        """Note that ``file_id`` of ``bucket`` (a file of ``image``: its ``name``, in
        ``format``, or its content type: a fold takes what follows the ``/``; ``private``: of a
        private image; of its ``version``, the image then named ``filename``) was sent,
        ``length`` bytes. The serving paths call it for answers that carry the bytes only (a
        GET's 200 or 206), never for a HEAD or a 304, nor for the console's own loads
        (:func:`from_console`)."""
        answers = self._answers
        answers.append((bucket, file_id, image, length, name, format, private, version, filename,
                        self.clock()))
        if len(answers) >= self.fold_at and self._lock.acquire(blocking=False):
            try:  # a thread already folding takes these too: nobody waits for it
                self._fold()
            finally:
                self._lock.release()

    def fold(self) -> int:
        """Add the answers noted so far to the tally; how many there were. A file first seen
        when the tally already holds ``max_pending`` files is dropped (counted in ``dropped``)."""
        with self._lock:
            return self._fold()

    def _fold(self) -> int:
        tally = self._tally
        answers = drain(self._answers)
        for bucket, file_id, image, length, name, format, private, version, filename, moment in answers:
            found = tally.get((bucket, file_id))
            if found is None:
                if len(tally) >= self.max_pending:
                    self.dropped += 1
                    continue
                found = tally[(bucket, file_id)] = Delivered(
                    image, moment, name=name, format=format.rpartition("/")[2], private=private,
                    version=version, filename=filename)
            elif moment > found.last:
                found.last = moment
            found.requests += 1
            found.bytes += length
        return len(answers)

    def pending(self) -> int:
        """Files noted since the last flush."""
        self.fold()
        return len(self._tally)

    def take(self) -> dict[Key, Delivered]:
        """Everything noted since the last take, and an empty tally from now on."""
        with self._lock:
            self._fold()
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
