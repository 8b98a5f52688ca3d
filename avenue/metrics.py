"""The process's Prometheus metrics, shared by every layer (media counts its cache and renders here).

A foundation module: no Flask, no database of its own, so the media core can import it.
Under gunicorn the metrics are in ``prometheus_client``'s multiprocess mode: each worker writes
its values to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR`` (prepared by gunicorn.conf.py
before the master imports this module), and a scrape on any worker adds up every worker's
files, so ``/metrics`` answers for the whole server whichever worker it hits. A worker that
exits is marked dead (gunicorn.conf.py ``child_exit``) so its live gauges are dropped while
its counters still count. Without that variable (tests, the CLI) the values are this
process's only.

The media front door answers a cached image in ~20 µs of Python; updating four mmap-backed
values per answer (2-3 µs each in multiprocess mode) would add about half of that, and writing
its access-log line more. So it only appends a tuple to a deque (:class:`FrontDoorTally`) and
a daemon thread folds those into the metrics every second, one increment per histogram bucket,
and writes their access-log lines (a scrape, and a worker's exit, fold them at once).
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector
from pymongo import monitoring

from avenue import background

_log = logging.getLogger(__name__)
T = TypeVar("T")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: The request methods counted by name. A client may send any token as its method (gunicorn
#: takes 3-20 upper-case characters), and each new one was a new series in every worker's
#: files: 3,000 invented methods took /metrics from 14 KB to 5.2 MB. The rest count as OTHER.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})
OTHER_METHOD = "OTHER"
#: The route label of requests no URL rule matched (404s, 405s, probes): one value, however
#: many paths are invented.
UNMATCHED = "<unmatched>"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RENDER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter("avenue_http_requests", "HTTP requests answered, by route template, method and status.",
                   ["route", "method", "status"])
LATENCY = Histogram("avenue_http_request_duration_seconds",
                    "Time from a request's arrival to its response being handed to the server.",
                    ["route", "method"], buckets=LATENCY_BUCKETS)
BYTES_SERVED = Counter("avenue_http_response_bytes",
                       "Response body bytes served (Content-Length of each GET answer).", ["route"])
MEDIA_CACHE = Counter("avenue_media_cache_requests",
                      "Media bodies answered from the worker's cache (hit) or read from GridFS (miss).",
                      ["result"])
UPLOADS = Counter("avenue_uploads", "Uploaded files by outcome (accepted, duplicate or the refusal's "
                  "error code), image format and endpoint.", ["outcome", "format", "endpoint"])
NEAR_LOOKUPS = Counter("avenue_near_duplicate_lookups", "Near-duplicate lookups of an upload's files "
                       "(one per store), by outcome: answered, late (answered without them), failed, "
                       "stopped (the store failed).", ["outcome"])
RENDER_SECONDS = Histogram("avenue_variant_render_seconds", "Time to render one upload's variants.",
                           buckets=RENDER_BUCKETS)
RENDITION_SECONDS = Histogram("avenue_rendition_render_seconds",
                              "Time to render one rendition on request (in its render slot), by format.",
                              ["format"], buckets=RENDER_BUCKETS)
RENDITIONS_EVICTED = Counter("avenue_renditions_evicted",
                             "Renditions on request evicted by the byte budget "
                             "(AVENUE_RENDITION_BUDGET_BYTES).")
RENDITION_BYTES_EVICTED = Counter("avenue_rendition_evicted_bytes",
                                  "Bytes of renditions on request evicted by the byte budget.")
DB_FAILURES = Counter("avenue_db_command_failures", "Database commands that failed, by command and "
                      "error (the server's codeName, or the exception type of a network error).",
                      ["command", "error"])
DB_RETRIES = Counter("avenue_db_command_retries",
                     "Database commands the driver retried after a failure, by command.", ["command"])

# The endpoint of the request being served (set by avenue/requestlog.py), so the media core can
# label its upload counts without knowing about Flask.
current_endpoint: contextvars.ContextVar[str] = contextvars.ContextVar("avenue_endpoint", default="cli")


def count_upload(outcome: str, image_format: str | None) -> None:
    """Count one uploaded file: ``outcome`` is ``accepted``/``duplicate`` or an error code."""
    UPLOADS.labels(outcome, (image_format or "unknown").lower(), current_endpoint.get()).inc()


def count_near_lookup(outcome: str) -> None:
    """Count one near-duplicate lookup of a store's uploads: ``answered``, ``late``, ``after``
    (the embedded database's: the answer does not wait for it), ``failed`` or ``stopped``."""
    NEAR_LOOKUPS.labels(outcome).inc()


def count_evictions(files: int, size: int) -> None:
    """Renditions the byte budget evicted, and their bytes."""
    RENDITIONS_EVICTED.inc(files)
    RENDITION_BYTES_EVICTED.inc(size)


def count_cache(hit: bool) -> None:
    """Count one media body answered from the cache (``hit``) or read from GridFS."""
    MEDIA_CACHE.labels("hit" if hit else "miss").inc()


def request_labels(route: str | None, method: str, status: int) -> tuple[str, str, str]:
    """The ``route``, ``method`` and ``status`` labels of a request, each from a fixed set: the
    URL rule's template (None, no rule matched: :data:`UNMATCHED`), a method of
    :data:`METHODS` or :data:`OTHER_METHOD`, the status the app answered. Every request
    metric is labelled through this, so no client can add series."""
    return route or UNMATCHED, method if method in METHODS else OTHER_METHOD, str(status)


def observe_request(route: str | None, method: str, status: int, seconds: float, body_bytes: int) -> None:
    """Count one answered request, its latency and the bytes of its body (``route``: the URL
    rule's template, None when no rule matched)."""
    route, method, code = request_labels(route, method, status)
    REQUESTS.labels(route, method, code).inc()
    LATENCY.labels(route, method).observe(seconds)
    if body_bytes:
        BYTES_SERVED.labels(route).inc(body_bytes)


class FrontDoorAnswer(NamedTuple):
    """One answer of the media front door, as its access-log line tells it."""

    request_id: str
    method: str
    route: str
    path: str
    status: int
    seconds: float
    body_bytes: int
    at: float  # when it was answered, in seconds since the epoch


#: Writes front-door answers' access-log lines (avenue/requestlog.py; called by the folding thread).
AnswerLog = Callable[[list[FrontDoorAnswer]], None]
# What the hot path appends: route, method, status, seconds, body bytes, then the access log
# (None: not logged), request id, path and time.perf_counter() at the answer.
_Recorded = tuple[str, str, int, float, int, AnswerLog | None, str, str, float]


def drain(pending: collections.deque[T]) -> list[T]:
    """Take from the left of ``pending`` every item it held when called: the folding side of
    a lock-free tally. Request threads only ``append`` (atomic in CPython, no lock); one
    folder at a time ``popleft``s (atomic too), so every item appended is taken exactly once,
    and those appended while it drains are left for the next fold. Shared by the front door's
    metrics and the media deliveries (:mod:`avenue.media.effects.served`)."""
    take = pending.popleft
    return [take() for _ in range(len(pending))]


class FrontDoorTally:
    """The media front door's answers, recorded in a deque and folded into the metrics (and
    the access log) later.

    ``deque.append`` and ``popleft`` are atomic in CPython, so request threads and the folding
    thread need no lock to record; an answer is counted and logged exactly once. Folds take
    turns (a lock), so a fold returns only once every answer recorded before it is counted:
    a scrape sees them all, never a half-folded second.
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.pending: collections.deque[_Recorded] = collections.deque()
        self.interval = interval
        self._thread: background.PeriodicJob | None = None
        self._lock = threading.Lock()
        self._folding = threading.Lock()

    def record(self, route: str, method: str, status: int, seconds: float, body_bytes: int,
               log: AnswerLog | None = None, request_id: str = "", path: str = "",
               answered: float = 0.0) -> None:
        """Note one answer (cheap: the hot path calls this); with ``log``, its access-log line
        is written when it is folded (``answered``: ``time.perf_counter()`` at the answer)."""
        self.pending.append((route, method, status, seconds, body_bytes, log, request_id, path, answered))
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                # Started by the first answer, not with a worker's background work: every
                # process that serves the front door (tests too) needs it, and only those.
                self._thread = background.PeriodicJob(
                    "avenue-metrics-fold", self.fold, every=self.interval, first_delay=self.interval,
                    failure="folding the front door's answers failed")
                self._thread.start()

    def fold(self) -> int:
        """Move every recorded answer into the metrics and write the access-log lines of those
        to be logged; how many answers there were."""
        with self._folding:
            return self._fold()

    def _fold(self) -> int:
        counts: dict[tuple[str, str, str], int] = collections.Counter()
        sent: dict[str, int] = collections.Counter()
        latencies: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
        lines: dict[AnswerLog, list[FrontDoorAnswer]] = collections.defaultdict(list)
        epoch_offset = time.time() - time.perf_counter()  # perf_counter() values to wall-clock time
        folded = 0
        for recorded in drain(self.pending):
            route, method, status, seconds, body_bytes, log, request_id, path, answered = recorded
            folded += 1
            labels = request_labels(route, method, status)
            counts[labels] += 1
            sent[labels[0]] += body_bytes
            latencies[labels[:2]].append(seconds)
            if log is not None:
                lines[log].append(FrontDoorAnswer(request_id, method, route, path, status, seconds,
                                                  body_bytes, answered + epoch_offset))
        for labels, n in counts.items():
            REQUESTS.labels(*labels).inc(n)
        for route, n in sent.items():
            if n:
                BYTES_SERVED.labels(route).inc(n)
        for (route, method), values in latencies.items():
            _observe_many(LATENCY.labels(route, method), values)
        if folded:
            MEDIA_CACHE.labels("hit").inc(folded)  # the front door answers only from the cache
        for log, answers in lines.items():
            try:
                log(answers)
            except Exception:  # the folding thread must go on, and fold again
                _log.exception("writing the access-log lines of %d front-door answers failed", len(answers))
        return folded


def _observe_many(histogram: Histogram, values: list[float]) -> None:
    """``observe`` each of ``values``, but as one increment per bucket: in multiprocess mode
    each increment is a locked write to a memory-mapped file, and a second of a busy worker's
    front-door answers is thousands of values. (Falls back to ``observe`` should the client
    library's histogram layout ever change.)"""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for value in values:
            histogram.observe(value)
        return
    per_bucket = collections.Counter(bisect.bisect_left(bounds, value) for value in values)
    for index, n in per_bucket.items():
        buckets[index].inc(n)  # non-cumulative per bucket, as observe() stores them
    total.inc(sum(values))


FRONT_DOOR = FrontDoorTally()


class CommandMetrics(monitoring.CommandListener):
    """Counts failed database commands, and retries: a command started again under the
    operation id of one that failed on this thread (the driver's retryable reads/writes)."""

    def __init__(self) -> None:
        self._failed = threading.local()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if getattr(self._failed, "operation_id", None) == event.operation_id:
            DB_RETRIES.labels(event.command_name).inc()
            self._failed.operation_id = None

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        # By error, so the expected ones (NamespaceNotFound from listIndexes on a collection
        # not created yet) can be told from the ones that matter (AutoReconnect, NotWritablePrimary).
        failure = event.failure or {}
        error = failure.get("codeName") or failure.get("errtype") or "error"
        DB_FAILURES.labels(event.command_name, str(error)).inc()
        self._failed.operation_id = event.operation_id


@contextlib.contextmanager
def timed_render() -> Iterator[None]:
    """Observe how long the block (rendering one upload's variants) takes."""
    started = time.perf_counter()
    try:
        yield
    finally:
        RENDER_SECONDS.observe(time.perf_counter() - started)


@contextlib.contextmanager
def timed_rendition(fmt: str) -> Iterator[None]:
    """Observe how long the block (rendering one rendition on request as ``fmt``: webp, avif,
    jpeg or png) takes; its count is the renders performed, which one render per rendition
    across workers and instances is measured by (bench/renditions_load.py)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        RENDITION_SECONDS.labels(fmt).observe(time.perf_counter() - started)


def multiprocess_dir() -> str | None:
    """The shared metrics folder of this server's workers, if it runs in multiprocess mode."""
    return os.environ.get(MULTIPROC_ENV) or None


def exposition(extra: Collector | None = None) -> bytes:
    """The whole server's metrics in the Prometheus text format (plus ``extra``: values read
    at scrape time from the database, the same for every worker)."""
    FRONT_DOOR.fold()  # this worker's latest front-door answers
    registry = CollectorRegistry()
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    output = generate_latest(registry)
    if extra is not None:
        extra_registry = CollectorRegistry()
        extra_registry.register(extra)
        output += generate_latest(extra_registry)
    return output


__all__ = ["CONTENT_TYPE", "FRONT_DOOR", "METHODS", "OTHER_METHOD", "UNMATCHED", "AnswerLog",
           "CommandMetrics", "FrontDoorAnswer", "count_cache", "count_upload", "current_endpoint",
           "exposition", "observe_request", "request_labels", "timed_render",
           "timed_rendition"]
