"""The last run of each maintenance command (gc, fsck): when, how long, and what it found.

The commands run in their own process (cron, an operator's shell), often on another machine
than the app servers, so their outcome is kept in the database (``ops_runs``, one document per
command, replaced by each run) where ``/metrics`` reads it on any worker (avenue/scrape.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo.database import Database

from avenue.clock import now

COLLECTION = "ops_runs"
# The renditions' byte budget job (avenue/ops/rendition_budget.py) keeps its last eviction here too:
# storage-status reads it by this name.
RENDITION_EVICTIONS = "evict-renditions"


def record(db: Database[dict[str, Any]], command: str, *, started: dt.datetime, ok: bool,
           counts: dict[str, int]) -> None:
    """Keep the outcome of one ``command`` run: its start, duration, success and counts."""
    finished = now()
    db[COLLECTION].replace_one(
        {"_id": command},
        {"_id": command, "started_at": started, "finished_at": finished,
         "seconds": round((finished - started).total_seconds(), 3), "ok": ok,
         "counts": {key: int(value) for key, value in counts.items()}},
        upsert=True,
    )


def last_runs(db: Database[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last recorded run of every command (a handful of small documents)."""
    return list(db[COLLECTION].find({}))


def last_run(db: Database[dict[str, Any]], command: str) -> dict[str, Any] | None:
    """The last recorded run of ``command`` (one read by ``_id``), if any."""
    return db[COLLECTION].find_one({"_id": command})
