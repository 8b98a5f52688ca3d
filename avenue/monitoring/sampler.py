"""The history sampler: every process runs one background thread, one instance samples per
interval.

Time is cut into slots of ``AVENUE_HISTORY_INTERVAL_SECONDS`` (from the Unix epoch, so every
instance agrees on them). Each thread (a :class:`avenue.background.PeriodicJob`) wakes now and
then and tries to take the slot's turn: one compare-and-set on the lease document
(``monitoring_leases``) that moves its ``slot`` forward only if it is still behind
(:func:`avenue.leases.take_turn`). Exactly one thread of all instances wins a slot; it reads
the status reports, records the sample and the alerts. A winner that dies mid-sample loses
that slot's sample (the next slot is taken as usual); the samples' unique slot index means a
slot can never have two samples, whatever the lease document went through.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from typing import Any

from pymongo.database import Database

from avenue import background, leases
from avenue.clock import now
from avenue.monitoring import alerts, history

Document = dict[str, Any]
LEASES = "monitoring_leases"
LEASE_ID = "history-sample"
FIRST_DELAY_SECONDS = 60.0  # a worker's start-up (and the status warm-up) goes first
MAX_POLL_SECONDS = 60.0
Reports = Callable[[], tuple[Mapping[str, Any], Mapping[str, Any]]]  # (storage, products)


def slot_start(moment: dt.datetime, interval: float) -> dt.datetime:
    """The start of the slot ``moment`` falls in."""
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    width = dt.timedelta(seconds=interval)
    return epoch + (moment - epoch) // width * width


def take_slot(db: Database[Document], slot: dt.datetime, owner: str, moment: dt.datetime) -> bool:
    """Lease ``slot`` for ``owner`` unless it (or a later one) was taken already."""
    return leases.take_turn(db[LEASES], LEASE_ID, slot, owner, moment)


def sample_once(db: Database[Document], reports: Reports, *, interval: float,
                thresholds: tuple[float, float, float], moment: dt.datetime, owner: str,
                notify: Callable[[Document], Document | None] | None = None) -> Document | None:
    """If this slot is ours, record its sample and the alerts it crosses; the sample, else None."""
    slot = slot_start(moment, interval)
    if not take_slot(db, slot, owner, moment):
        return None
    storage, products = reports()
    sample = history.build_sample(storage, products, moment, slot)
    if not history.record(db, sample):
        return None
    alerts.record_crossings(db, alerts.crossings(sample, thresholds), moment, notify)
    return sample


class Sampler:
    """The background thread of one process; :meth:`stop` ends it (tests, shutdown)."""

    def __init__(self, db: Database[Document], reports: Reports, config: Mapping[str, Any], *,
                 first_delay: float = FIRST_DELAY_SECONDS,
                 prepare: Callable[[], None] | None = None) -> None:
        self.db = db
        self.prepare = prepare  # e.g. ensuring indexes: done in the thread, never at worker start
        self.reports = reports
        self.interval = float(config["AVENUE_HISTORY_INTERVAL_SECONDS"])
        self.thresholds = alerts.parse_thresholds(config["AVENUE_ALERT_THRESHOLDS"])
        url = config.get("AVENUE_ALERT_WEBHOOK_URL") or ""
        key = config.get("AVENUE_ALERT_WEBHOOK_KEY") or ""
        self.notify = alerts.webhook_notifier(url, now, key=key) if url else None
        self.first_delay = first_delay
        self.owner = f"{os.uname().nodename}:{os.getpid()}"
        # Polling a few times per slot (at most a minute apart) rather than sleeping a whole
        # interval: an instance that starts mid-slot, or whose peer died, still samples on time.
        self.thread = background.PeriodicJob(
            "history-sampler", self._tick, every=min(MAX_POLL_SECONDS, self.interval / 4),
            first_delay=first_delay, failure="recording a storage history sample failed")

    def start(self) -> Sampler:
        """Start the thread; returns self."""
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to end and wait for it."""
        self.thread.stop(timeout)

    def _tick(self) -> None:
        # A failed sample is logged by the job; the next slot tries again.
        if self.prepare is not None:
            self.prepare()
        sample_once(self.db, self.reports, interval=self.interval, thresholds=self.thresholds,
                    moment=now(), owner=self.owner, notify=self.notify)
