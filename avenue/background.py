"""Background work, one way: every thread of the app is made here.

Three things, from small to large:

- :func:`spawn`: one piece of work on a daemon thread of its own (the start-up work, a sweep
  a request asked for, the media cache's change stream, a lease's heartbeat). Daemon, so a
  worker that exits never waits on one.
- :class:`PeriodicJob`: a function run every ``every`` seconds on a daemon thread until
  :meth:`~PeriodicJob.stop`, after ``first_delay``. A tick that raises is logged and the
  next tick runs as usual: a database outage must not end a worker's background work for
  good. With ``lease``, a tick runs only where its lease is taken, kept by a heartbeat while
  it runs and given back after (one of all instances runs it; :mod:`avenue.leases`).
- :class:`Lane`: work handed over one piece at a time (the renders an upload leaves for
  after its answer), run in order on one daemon thread of lower scheduling priority, with
  :meth:`~Lane.drain` to wait for what is queued (a stopping worker finishes it); with
  ``most``, a job handed over while that many wait runs on the caller's thread instead.
- :func:`beside`: a short piece of a request's own work run beside the rest of it (an
  upload's near-duplicate lookup while its original is written), on one small pool per
  process, so the request waits for whichever of the two takes longer, not for their sum.
- :func:`in_parallel`: a request's own CPU work split into pieces that release the GIL (an
  upload's variants: Pillow releases it while it resamples and encodes), on one pool per
  process of a thread per core, so the request takes about as long as its longest piece.
- :func:`register` and :func:`start_all`: the app factory registers the long-running work
  of an app server worker (in the order it starts), and gunicorn.conf.py's
  ``post_worker_init`` starts it all, once per worker. Tests start one job directly through
  its own start function. Other processes (``flask`` commands, tests) start none of it: the
  work is shared through the database, and the workers do it.

Threads that a process starts on first use rather than at start-up (the media cache's change
stream, the metrics' fold) are started through these too, from where they are first needed.

A foundation module: no Flask import, no database of its own.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)

EXTENSION = "avenue.background"
T = TypeVar("T")


def spawn(name: str, target: Callable[..., Any], *args: Any) -> threading.Thread:
    """Run ``target(*args)`` on a new daemon thread called ``name``; the thread, started."""
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    thread.start()
    return thread


class TickLease(Protocol):
    """What a :class:`PeriodicJob` needs of a lease (:class:`avenue.leases.Lease` is one)."""

    def take(self) -> bool: ...

    def kept(self, every: float, thread_name: str) -> contextlib.AbstractContextManager[None]: ...

    def release(self) -> None: ...


class PeriodicJob(threading.Thread):
    """``tick()`` every ``every`` seconds (after ``first_delay``) on a daemon thread.

    ``every`` is the wait between the end of one tick and the start of the next, so a slow
    tick never overlaps itself. ``lease``: a function giving the lease a tick must hold (one
    of all instances runs it); it is renewed every third of ``lease_seconds`` meanwhile.
    """

    def __init__(self, name: str, tick: Callable[[], Any], *, every: float, first_delay: float = 0.0,
                 failure: str = "", lease: Callable[[], TickLease] | None = None,
                 lease_seconds: float = 60.0) -> None:
        super().__init__(name=name, daemon=True)
        self.tick, self.every, self.first_delay = tick, every, first_delay
        self.failure = failure or f"the background job {name} failed"
        self.lease, self.lease_seconds = lease, lease_seconds
        self.stopping = threading.Event()

    def run(self) -> None:
        wait = self.first_delay
        while not self.stopping.wait(wait):
            self.run_once()
            wait = self.every

    def run_once(self) -> None:
        """One tick, under the lease when there is one; an exception is logged, never raised."""
        try:
            if self.lease is None:
                self.tick()
                return
            lease = self.lease()
            if not lease.take():
                return  # another instance runs it
            try:
                with lease.kept(self.lease_seconds / 3, f"{self.name}-lease"):
                    self.tick()
            finally:
                lease.release()
        except Exception:  # noqa: BLE001 - logged; the next tick tries again
            log.exception(self.failure)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current tick (which finishes what it is doing) and wait for it."""
        self.stopping.set()
        if self.ident is not None:
            self.join(timeout)


class Lane:
    """Jobs run one after the other, in the order given, on one daemon thread (started with
    the first job) at ``nice`` below the process's scheduling priority.

    One thread, not one per job: a burst of uploads handed over a burst of renders, each on a
    thread of its own, and every one of them took its turns at the GIL from the event loop
    reading the next uploads' bodies and the threads answering them. Lower priority (Linux
    applies ``setpriority`` to the one thread it names; elsewhere it is skipped) so that, on a
    busy machine, the kernel runs the threads that answer first (the encoders' own pool
    threads, shared with uploads, keep their priority). A job that raises is logged and the
    next one runs; the thread ends after ``idle_seconds`` without a job.

    ``most``: at most that many jobs pending (queued or running); one submitted past it runs
    on the submitting thread, which waits for it, so a producer faster than the lane slows to
    its pace instead of growing the queue, and what its jobs hold, without end.
    """

    def __init__(self, name: str, *, nice: int = 10, idle_seconds: float = 60.0,
                 most: int | None = None) -> None:
        self.name, self.nice, self.idle_seconds, self.most = name, nice, idle_seconds, most
        self._jobs: collections.deque[Callable[[], Any]] = collections.deque()
        self._lock = threading.Condition()
        self._running = False  # a job is being run (taken off the queue, not finished)
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], Any]) -> bool:
        """Queue ``job``: it runs after every job queued before it (True). With ``most``
        pending already, run it here instead, a failure logged as the lane logs one (False)."""
        with self._lock:
            if self.most is None or len(self._jobs) + self._running < self.most:
                self._jobs.append(job)
                if self._thread is None:
                    self._thread = spawn(self.name, self._run)
                self._lock.notify_all()
                return True
        self._call(job)
        return False

    def pending(self) -> int:
        """Jobs queued or running."""
        with self._lock:
            return len(self._jobs) + self._running

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until every job queued so far has run; True if so."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._jobs and not self._running, max(0.0, timeout))

    def _run(self) -> None:
        if self.nice and hasattr(os, "setpriority"):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        while True:
            with self._lock:
                if not self._lock.wait_for(lambda: bool(self._jobs), self.idle_seconds):
                    self._thread = None  # idle: the next job starts a thread again
                    return
                job = self._jobs.popleft()
                self._running = True
            try:
                self._call(job)
            finally:
                with self._lock:
                    self._running = False
                    self._lock.notify_all()

    def _call(self, job: Callable[[], Any]) -> None:
        try:
            job()
        except Exception:  # noqa: BLE001 - logged; the next job runs
            log.exception("a job of %s failed", self.name)


# A request's work beside its own: at most this many at once per process (more wait their
# turn). Its own pool, not the renders' (avenue/media/ingest/variants.py): that one is CPU
# work queued in bursts (every upload's pending renders after its answer go through it), and
# a lookup queued behind a burst would miss what its request waits for; this one only runs
# short database reads, mostly waiting on the server with the GIL released.
BESIDE_THREADS = 8
_beside: ThreadPoolExecutor | None = None
_beside_lock = threading.Lock()


def beside(target: Callable[..., T], *args: Any) -> Future[T]:
    """Run ``target(*args)`` on this process's pool of work beside a request's own (made on
    first use, :data:`BESIDE_THREADS` threads); its future. The caller bounds its wait on it
    and cancels it when the request fails (a job not started yet then never runs)."""
    global _beside
    with _beside_lock:
        if _beside is None:
            _beside = ThreadPoolExecutor(max_workers=BESIDE_THREADS, thread_name_prefix="avenue-beside")
        return _beside.submit(target, *args)


#: The pool :func:`in_parallel` spreads a request's CPU work over: a thread per core (at least 2).
PARALLEL_THREADS = max(2, os.cpu_count() or 2)
_parallel: ThreadPoolExecutor | None = None
_parallel_lock = threading.Lock()


def in_parallel(target: Callable[..., T], *args: Any) -> Future[T]:
    """Run ``target(*args)`` on this process's pool for CPU work that releases the GIL (made
    on first use, :data:`PARALLEL_THREADS` threads); its future, which the caller waits for."""
    global _parallel
    with _parallel_lock:
        if _parallel is None:
            _parallel = ThreadPoolExecutor(max_workers=PARALLEL_THREADS, thread_name_prefix="avenue-parallel")
        return _parallel.submit(target, *args)


# A start function: starts its work and returns it (a job, a thread), or None when switched off.
Start = Callable[[], Any]


class App(Protocol):
    """An app to register work on (a Flask app: this module does not import Flask)."""

    extensions: dict[str, Any]


def register(app: App, name: str, start: Start) -> None:
    """Add ``start`` (called with nothing; returns what it started, or None when switched
    off) to the work :func:`start_all` starts, after what was registered before it."""
    app.extensions.setdefault(EXTENSION, {})[name] = start


def start_all(app: App) -> dict[str, Any]:
    """Start every piece of background work registered on ``app``, in order; once per
    process (gunicorn.conf.py's ``post_worker_init``). What each one started, by name (None:
    switched off by configuration)."""
    return {name: start() for name, start in app.extensions.get(EXTENSION, {}).items()}
