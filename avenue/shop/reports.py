"""Status reports served from a snapshot shared by every worker, refreshed in the background.

An exact products-status or storage-status reads every product and every files document.
On mongod that is fast; on the embedded SecantusDB (which decodes each document in Python)
it takes seconds at 10,000 products / 50,000 images. Ops need an answer at a glance, so the
endpoints answer from the last snapshot in ``status_reports`` (one document per report, so
all workers and instances share it) and say how old it is. A snapshot older than
``max_age`` is still answered at once, flagged ``stale``, while one worker, holding a lease
in the same document, recomputes it in a background thread (stale-while-revalidate).
``refresh=True`` (``?refresh=1``) computes synchronously.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from avenue.media.objects import isoformat
from avenue.media.storage import now

log = logging.getLogger(__name__)

COLLECTION = "status_reports"
LEASE = dt.timedelta(minutes=5)  # a refresher that died frees the lease after this
_refreshers: list[threading.Thread] = []  # started refresh threads (tests join them)


def _meta(doc: dict, moment: dt.datetime, max_age: float, refreshing: bool) -> dict:
    generated = doc["generated_at"]
    if generated.tzinfo is None:
        generated = generated.replace(tzinfo=dt.UTC)
    age = max(0.0, (moment - generated).total_seconds())
    return {
        "generated_at": isoformat(generated),
        "age_seconds": round(age, 1),
        "compute_ms": doc.get("compute_ms"),
        "stale": age > max_age,
        "refreshing": refreshing,
        "max_age_seconds": max_age,
    }


def _compute_and_save(db: Database, name: str, compute: Callable[[], dict], owner: str) -> dict:
    started = time.perf_counter()
    report = compute()
    doc = {
        "report": report,
        "generated_at": now(),
        "compute_ms": round((time.perf_counter() - started) * 1000),
    }
    db[COLLECTION].update_one({"_id": name}, {"$set": doc, "$unset": {"lease_until": "", "lease_owner": ""}},
                              upsert=True)
    return doc


def _take_lease(db: Database, name: str, seen: dt.datetime, owner: str, moment: dt.datetime) -> bool:
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


def _refresh_in_background(db: Database, name: str, compute: Callable[[], dict], owner: str) -> None:
    def run() -> None:
        try:
            _compute_and_save(db, name, compute, owner)
        except Exception:  # a failed refresh leaves the old snapshot; the lease expires
            log.exception("refreshing the %s report failed", name)

    thread = threading.Thread(target=run, name=f"report-{name}", daemon=True)
    _refreshers.append(thread)
    del _refreshers[:-8]
    thread.start()


def cached_report(db: Database, name: str, compute: Callable[[], dict], *, max_age: float,
                  refresh: bool = False) -> dict:
    """The report ``name``: a fresh enough snapshot, or a new one; with a ``report`` block."""
    owner = f"{os.getpid()}:{threading.get_ident()}"
    moment = now()
    doc = None if refresh or max_age <= 0 else db[COLLECTION].find_one({"_id": name})
    if doc is None or "report" not in doc:
        doc = _compute_and_save(db, name, compute, owner)
        return {**doc["report"], "report": _meta(doc, now(), max_age, refreshing=False)}
    meta = _meta(doc, moment, max_age, refreshing=False)
    if meta["stale"] and _take_lease(db, name, doc["generated_at"], owner, moment):
        _refresh_in_background(db, name, compute, owner)
        meta["refreshing"] = True
    return {**doc["report"], "report": meta}


def wait_for_refreshes(timeout: float = 30.0) -> None:
    """Join the background refreshes started so far (for tests and CLI use)."""
    for thread in list(_refreshers):
        thread.join(timeout)
