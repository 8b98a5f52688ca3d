"""The renditions' byte budget kept: a background job on every worker, one of all instances
evicting at a time.

Renditions on request are a cache of derived files in the database
(:mod:`avenue.media.store.renditions`); ``AVENUE_RENDITION_BUDGET_BYTES`` bounds it. Every app
server worker runs :func:`start_budget`'s job every :data:`EVERY_SECONDS`; a tick runs only
where the lease ``evict-renditions`` (in ``ops_locks``, beside the ops commands' locks) is
taken, so one worker of all instances evicts at a time, and a worker that dies mid-eviction
frees it when it lapses. A tick reads the running total (one small read) and, when it is
over the budget, evicts the least recently used renditions down to the budget less the
margin (``avenue.media.store.renditions.evict``). An eviction that removed anything is counted in
the metrics (``avenue_renditions_evicted``, ``avenue_rendition_evicted_bytes``), written to
the audit log (``renditions_evicted``), logged, and kept as the last run of
``evict-renditions`` (``ops_runs``: storage-status shows it, ``/metrics`` exports it like gc's).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Mapping
from typing import Any

from flask import Flask
from pymongo.database import Database

from avenue import audit, background, metrics, opsruns
from avenue.clock import now
from avenue.db import Document
from avenue.leases import Lease
from avenue.media import AppMedia
from avenue.media.maintenance import Maintenance
from avenue.ops.lock import COLLECTION

log = logging.getLogger(__name__)

COMMAND = opsruns.RENDITION_EVICTIONS  # the lease's name, and its last run's in ops_runs
EVERY_SECONDS = 60.0
LEASE_SECONDS = 120.0


def budget_from_config(config: Mapping[str, Any]) -> int:
    """AVENUE_RENDITION_BUDGET_BYTES (0: unbounded); a negative one stops the start. Read from
    the app's configuration, whose one default (avenue/config.py) every reader shares: this
    one used to fall back to 0 (unbounded) where the configuration's is 10 GiB."""
    budget = int(config["AVENUE_RENDITION_BUDGET_BYTES"])
    if budget < 0:
        raise RuntimeError("AVENUE_RENDITION_BUDGET_BYTES must be 0 (unbounded) or a number of bytes")
    return budget


def enforce(db: Database[Document], budget: int) -> Maintenance.Evicted:
    """Evict down to the budget if the renditions are over it; count, audit, log and keep
    what an eviction did."""
    started = now()
    evicted = AppMedia.on(db).maintenance.evict_renditions(budget)
    if evicted.files:
        metrics.count_evictions(evicted.files, evicted.bytes)
        audit.record(db, "renditions_evicted", actor={"system": "rendition-budget"}, renditions=evicted.files,
                     bytes=evicted.bytes, before=evicted.before, after=evicted.after, budget=budget)
        opsruns.record(db, COMMAND, started=started, ok=True,
                       counts={"evicted": evicted.files, "bytes_freed": evicted.bytes,
                               "bytes_after": evicted.after})
        log.info("rendition budget: evicted %d renditions (%d bytes); %d of %d bytes used", evicted.files,
                 evicted.bytes, evicted.after, budget)
    return evicted


def lease(db: Database[Document]) -> Lease:
    """The lease one tick holds (one evictor of all instances)."""
    holder: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid(), "run": uuid.uuid4().hex,
                              "started": now()}
    return Lease(db[COLLECTION], COMMAND, holder["run"], LEASE_SECONDS, owner_field="holder.run",
                 record={"holder": holder})


def start_budget(app: Flask) -> background.PeriodicJob | None:
    """Start this worker's budget job; None when the budget is 0 (unbounded)."""
    from avenue.db import get_mongo

    budget = budget_from_config(app.config)
    if budget == 0:
        return None
    mongo = get_mongo(app)

    def tick() -> None:
        mongo.ensure_indexes()  # the recency index, before the first eviction (a no-op once done)
        enforce(mongo.db, budget)

    job = background.PeriodicJob("avenue-rendition-budget", tick, every=EVERY_SECONDS,
                                 first_delay=EVERY_SECONDS, failure="the rendition budget's eviction failed",
                                 lease=lambda: lease(mongo.db), lease_seconds=LEASE_SECONDS)
    job.start()
    return job
