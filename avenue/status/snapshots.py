"""Status reports served from a snapshot shared by every worker, refreshed in the background.

An exact products-status or storage-status reads every product and every files document.
On mongod that is fast; on the embedded SecantusDB (which decodes each document in Python)
it grows with the store (the README's Performance section has the figures). Ops need an
answer at a glance, so the endpoints answer from the last snapshot in ``status_reports``
(one document per report, so all workers and instances share it) and say how old it is. A snapshot older than
``max_age`` (or ten times its compute time, when that is longer: :func:`stale_after`) is
still answered at once, flagged ``stale``, while one worker, holding a lease in the same
document, recomputes it in a background thread (stale-while-revalidate).
``refresh=True`` (``?refresh=1``) computes synchronously.

So that no request waits for a compute it can avoid:

- :func:`warm_up` computes the snapshots that do not exist yet; the app server runs it in a
  background thread when a worker starts (``gunicorn.conf.py``). A missing snapshot is
  leased like a stale one, so of many workers starting at once only one computes.
- A request that finds no snapshot while another worker holds the lease waits for that
  compute instead of starting a second one (which would double the database's load and
  finish no sooner).
- The operations commands that change a lot (import-legacy, gc, fsck --repair, restore) call
  :func:`refresh_now` at their end, so the next look shows what they did.

A snapshot is only replaced by one whose compute started later: a slow refresh that began
before a gc finished never overwrites the report the gc saved.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from avenue.clock import as_utc, isoformat, now

log = logging.getLogger(__name__)

Db = Database[dict[str, Any]]
Report = dict[str, Any]
Compute = Callable[[], Report]  # computes one report from scratch

COLLECTION = "status_reports"
LEASE = dt.timedelta(minutes=5)  # a refresher that died frees the lease after this
POLL_SECONDS = 0.25  # how often a request waiting for another worker's compute looks again
COST_FACTOR = 10  # a snapshot lives at least this many times as long as computing it took
_refreshers: list[threading.Thread] = []  # started refresh threads (tests join them)


def stale_after(max_age: float, compute_ms: float | None) -> float:
    """Seconds after which a snapshot is refreshed: ``max_age``, or ``COST_FACTOR`` times
    what computing it took when that is longer, so refreshes keep the database busy at most
    1/``COST_FACTOR`` of the time however big the store grows."""
    return max(max_age, COST_FACTOR * (compute_ms or 0) / 1000)


def _meta(doc: dict[str, Any], moment: dt.datetime, max_age: float, refreshing: bool) -> dict[str, Any]:
    generated = as_utc(doc["generated_at"])
    age = max(0.0, (moment - generated).total_seconds())
    refresh_after = stale_after(max_age, doc.get("compute_ms"))
    return {
        "generated_at": isoformat(generated),
        "age_seconds": round(age, 1),
        "compute_ms": doc.get("compute_ms"),
        "stale": age > refresh_after,
        "refreshing": refreshing,
        "max_age_seconds": max_age,
        "stale_after_seconds": round(refresh_after, 1),
    }


def _owner() -> str:
    return f"{os.getpid()}:{threading.get_ident()}"


def _release(db: Db, name: str, owner: str) -> None:
    try:
        db[COLLECTION].update_one({"_id": name, "lease_owner": owner},
                                  {"$unset": {"lease_until": "", "lease_owner": ""}})
    except PyMongoError:
        log.exception("releasing the %s report lease failed (it expires by itself)", name)


def _compute_and_save(db: Db, name: str, compute: Compute, owner: str) -> dict[str, Any]:
    """Compute the report and store it, unless a compute that started later stored one first."""
    started_at = now()
    started = time.perf_counter()
    try:
        report = compute()
    except BaseException:
        _release(db, name, owner)  # the next request or refresh may try again at once
        raise
    doc = {
        "report": report,
        "generated_at": now(),
        "started_at": started_at,
        "compute_ms": round((time.perf_counter() - started) * 1000),
    }
    older = {"_id": name, "$or": [{"started_at": {"$exists": False}}, {"started_at": {"$lt": started_at}}]}
    update = {"$set": doc, "$unset": {"lease_until": "", "lease_owner": ""}}
    if db[COLLECTION].update_one(older, update).matched_count == 0:
        try:
            db[COLLECTION].insert_one({"_id": name, **doc})
        except DuplicateKeyError:
            _release(db, name, owner)  # a newer snapshot is there; ours is the same or older
    return doc


def _take_lease(db: Db, name: str, seen: dt.datetime, owner: str, moment: dt.datetime) -> bool:
    """Lease the refresh, if the snapshot is still the one we saw and nobody else holds it."""
    try:
        taken = db[COLLECTION].find_one_and_update(
            {"_id": name, "generated_at": seen,
             "$or": [{"lease_until": {"$exists": False}}, {"lease_until": {"$lt": moment}}]},
            {"$set": {"lease_until": moment + LEASE, "lease_owner": owner}},
        )
    except (DuplicateKeyError, PyMongoError):
        return False
    return taken is not None


def _take_first_lease(db: Db, name: str, owner: str, moment: dt.datetime) -> bool:
    """Lease the first compute of a report that has no snapshot yet, unless someone holds it."""
    lease = {"lease_until": moment + LEASE, "lease_owner": owner}
    try:
        db[COLLECTION].insert_one({"_id": name, **lease})
        return True
    except DuplicateKeyError:
        pass
    try:
        taken = db[COLLECTION].find_one_and_update(
            {"_id": name, "report": {"$exists": False},
             "$or": [{"lease_until": {"$exists": False}}, {"lease_until": {"$lt": moment}}]},
            {"$set": lease},
        )
    except PyMongoError:
        return False
    return taken is not None


def _refresh_in_background(db: Db, name: str, compute: Compute, owner: str) -> None:
    def run() -> None:
        try:
            _compute_and_save(db, name, compute, owner)
        except Exception:  # a failed refresh leaves the old snapshot and frees the lease
            log.exception("refreshing the %s report failed", name)

    thread = threading.Thread(target=run, name=f"report-{name}", daemon=True)
    _refreshers.append(thread)
    del _refreshers[:-8]
    thread.start()


def _first_snapshot(db: Db, name: str, compute: Compute, owner: str,
                    wait: float) -> tuple[dict[str, Any], bool]:
    """The first snapshot of ``name``: computed here, or by the worker already computing it
    (waited for, at most ``wait`` seconds). Returns (snapshot, computed here)."""
    deadline = time.monotonic() + wait
    while True:
        if _take_first_lease(db, name, owner, now()):
            return _compute_and_save(db, name, compute, owner), True
        doc = db[COLLECTION].find_one({"_id": name})
        if doc is not None and "report" in doc:
            return doc, False
        if time.monotonic() >= deadline:  # the holder seems stuck: do not wait forever
            return _compute_and_save(db, name, compute, owner), True
        time.sleep(POLL_SECONDS)


def cached_report(db: Db, name: str, compute: Compute, *, max_age: float,
                  refresh: bool = False, wait: float | None = None) -> dict[str, Any]:
    """The report ``name``: a fresh enough snapshot, or a new one; with a ``report`` block.

    With no snapshot yet, the first caller computes it and concurrent callers wait for that
    compute (at most ``wait`` seconds, default the lease) rather than computing it again.
    """
    owner = _owner()
    moment = now()
    if refresh or max_age <= 0:
        doc = _compute_and_save(db, name, compute, owner)
        return {**doc["report"], "report": _meta(doc, now(), max_age, refreshing=False)}
    found = db[COLLECTION].find_one({"_id": name})
    if found is None or "report" not in found:
        wait = LEASE.total_seconds() if wait is None else wait
        doc, computed = _first_snapshot(db, name, compute, owner, wait)
        meta = _meta(doc, now(), max_age, refreshing=False)
        meta["waited_for_compute"] = not computed
        return {**doc["report"], "report": meta}
    meta = _meta(found, moment, max_age, refreshing=False)
    if meta["stale"] and _take_lease(db, name, found["generated_at"], owner, moment):
        _refresh_in_background(db, name, compute, owner)
        meta["refreshing"] = True
    return {**found["report"], "report": meta}


def warm_up(db: Db, computes: Mapping[str, Compute]) -> list[str]:
    """Compute the reports that have no snapshot yet and that nobody is computing; returns
    their names. A stale snapshot is left alone: requests answer it at once and refresh it.

    Every missing report is leased before the first compute starts, so one worker computes
    them one after the other (the first is ready sooner, and they can share a read) while
    the others leave them alone: on the embedded database (one process) two computes at
    once each take as long as both in a row.
    """
    owner = _owner()
    leased = []
    for name in computes:
        doc = db[COLLECTION].find_one({"_id": name})
        if (doc is None or "report" not in doc) and _take_first_lease(db, name, owner, now()):
            leased.append(name)
    for name in leased:
        _compute_and_save(db, name, computes[name], owner)
    return leased


def warm_up_in_background(db: Db, computes: Mapping[str, Compute]) -> threading.Thread:
    """:func:`warm_up` in a daemon thread (the app server calls this as a worker starts)."""
    def run() -> None:
        try:
            started = time.perf_counter()
            done = warm_up(db, computes)
            if done:
                log.info("computed the missing %s report(s) in %.1f s", ", ".join(done),
                         time.perf_counter() - started)
        except Exception:  # the snapshot stays missing; the first request computes it
            log.exception("warming the status reports failed")

    thread = threading.Thread(target=run, name="report-warm-up", daemon=True)
    _refreshers.append(thread)
    del _refreshers[:-8]
    thread.start()
    return thread


def refresh_now(db: Db, computes: Mapping[str, Compute]) -> dict[str, int]:
    """Recompute every report now (after an operation that changed a lot); returns the
    compute time of each in ms."""
    owner = _owner()
    return {name: _compute_and_save(db, name, compute, owner)["compute_ms"]
            for name, compute in computes.items()}


def wait_for_refreshes(timeout: float = 30.0) -> None:
    """Join the background refreshes started so far (for tests and CLI use)."""
    for thread in list(_refreshers):
        thread.join(timeout)
