"""Work done once under a claim, and how the others wait for it: renditions on request and
an upload's pending variants (:mod:`avenue.media.store.renditions`, :mod:`~avenue.media.store.pending`).

A claim (:class:`avenue.leases.Lease` in ``media_rendition_claims``) makes one renderer of
a key across workers and instances. The others wait for it without asking the database
every few milliseconds:

- **in one process**, one thread per key (the first to come, :func:`once`) deals with the
  claim; the others wait on its :class:`threading.Event`, set when it returns or raises, and
  then look once (the common case: many requests for one cold URL on one worker ask the
  database nothing while it renders);
- **across processes**, that one thread polls the claim and the stored result with an
  exponential backoff, :data:`FIRST_POLL_SECONDS` doubling up to :data:`MAX_POLL_SECONDS`,
  never past its deadline: a render in another worker costs each waiting worker about 20
  rounds (a claim attempt and a look) in 15 s, not 300
  (``tests/media/store/test_renditions.py`` counts 13 commands in 1.5 s).

Whoever gets no result by its own deadline answers :class:`~avenue.errors.ServerBusy` (503
``busy``); a waiter woken by a leader that gave up or failed looks once and, with time left,
deals with the claim itself (a failed render is tried again, as before).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from avenue.errors import ServerBusy
from avenue.leases import Lease

T = TypeVar("T")

#: The first pause of a thread waiting for another process's claim; each next one is twice as
#: long, up to :data:`MAX_POLL_SECONDS`.
FIRST_POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 1.0


_lock = threading.Lock()
# Per (claims collection, key): set once the thread dealing with the claim is done.
_leaders: dict[tuple[str, str], threading.Event] = {}


def once(claim: Lease, look: Callable[[], tuple[bool, T]], work: Callable[[T], T], *, wait: float,
         busy: str, thread_name: str, waiting: Callable[[], None] | None = None) -> T:
    """``work``'s result under ``claim``, or what ``look`` finds done meanwhile (it answers
    ``(done, value)``; ``work`` gets the value ``look`` found just after the claim was taken).
    Waits at most ``wait`` seconds for another's work (then :class:`ServerBusy` with ``busy``);
    ``wait <= 0``: one attempt, then the value ``look`` finds (whoever holds the claim finishes).
    ``waiting``: called before this thread first waits on another thread of this process (it
    may raise: then nothing is waited for); the one that leads takes the claim instead."""
    deadline = time.monotonic() + wait
    key = (claim.collection.full_name, str(claim.key))
    while True:
        with _lock:
            leader = _leaders.get(key)
            if leader is None:
                mine = _leaders[key] = threading.Event()
        if leader is None:
            try:
                return _lead(claim, look, work, deadline, wait, busy, thread_name)
            finally:
                with _lock:
                    del _leaders[key]
                mine.set()
        if waiting is not None:
            waiting()
            waiting = None
        leader.wait(max(0.0, deadline - time.monotonic()))
        done, value = look()
        if done or wait <= 0:
            return value
        if time.monotonic() >= deadline:
            raise ServerBusy(busy, retry_after=2)


def _lead(claim: Lease, look: Callable[[], tuple[bool, T]], work: Callable[[T], T],
          deadline: float, wait: float, busy: str, thread_name: str) -> T:
    """This process's one thread for the claim: take it and work, or poll it with backoff."""
    pause = FIRST_POLL_SECONDS
    while True:
        if claim.take():
            with contextlib.ExitStack() as held:
                held.callback(claim.release)  # after the heartbeat stops (exits run last first)
                held.enter_context(claim.kept(claim.seconds / 3, thread_name))
                done, value = look()
                if done:
                    return value
                return work(value)
        done, value = look()
        if done or wait <= 0:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise ServerBusy(busy, retry_after=2)
        time.sleep(min(pause, left))
        pause = min(pause * 2, MAX_POLL_SECONDS)
