"""Monitoring: storage history sampled at a fixed interval, and the alerts it raises.

:mod:`avenue.monitoring.history` keeps the samples and builds the dashboard's series,
:mod:`avenue.monitoring.alerts` the threshold crossings and their acknowledgements,
:mod:`avenue.monitoring.sampler` the per-process thread of which one instance samples per
interval. Everything is read from the public status reports (:func:`avenue.status.report`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from pymongo.database import Database

from avenue import status
from avenue.clock import now
from avenue.db import get_mongo
from avenue.media import AppMedia
from avenue.media.maintenance import Referrers
from avenue.monitoring import alerts, history
from avenue.monitoring.alerts import AlertsQuery, acknowledge, list_alerts, parse_thresholds
from avenue.monitoring.history import HistoryQuery, parse_range, series
from avenue.monitoring.sampler import Reports, Sampler, sample_once

__all__ = ["AlertsQuery", "HistoryQuery", "Sampler", "acknowledge", "alert_list", "ensure_indexes",
           "history_series", "list_alerts", "parse_range", "parse_thresholds", "sample_once", "series",
           "start_sampler", "status_reports", "thresholds_object"]

Document = dict[str, Any]


def ensure_indexes(db: Database[Document], retention_days: int) -> None:
    """The samples' and alerts' indexes, retention included."""
    history.ensure_indexes(db, retention_days)
    alerts.ensure_indexes(db, retention_days)


def thresholds_object(config: Mapping[str, Any]) -> dict[str, float]:
    """The configured quota thresholds by level name, as the API shows them."""
    return dict(zip(alerts.LEVELS, parse_thresholds(config["AVENUE_ALERT_THRESHOLDS"]), strict=True))


def alert_list(db: Database[Document], config: Mapping[str, Any], *, open_only: bool = False) -> Document:
    """The alerts answer: the newest alerts (``open_only``: not acknowledged) and the
    thresholds in force, so a client colours usage by the same levels."""
    return alerts.AlertList(items=[alerts.Alert(**alert) for alert in list_alerts(db, open_only=open_only)],
                            thresholds=thresholds_object(config)).answer()


def status_reports(db: Database[Document], config: Mapping[str, Any], refs: Referrers) -> Reports:
    """A function giving (storage-status, products-status) as of now, for the sampler: the
    counts come from the counters (as fresh as the last write), the lists from the last
    sweep. It never asks for a sweep: on a large store a sweep per sample would keep one
    running all the time (the scheduler runs them at their own interval). ``refs``: the app's
    owners of referring documents, for the sweep a report starts when none ever finished
    (the sampler's thread has no app)."""
    def read() -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        return (status.report(db, "storage-status", config, refs=refs),
                status.report(db, "products-status", config, refs=refs))
    return read


def history_series(db: Database[Document], range_name: str | None) -> Document:
    """The dashboard's series for ``?range=`` (24h, 7d, 30d)."""
    return series(db, parse_range(range_name), now())


def start_sampler(app: Flask) -> Sampler | None:
    """Start this process's sampler thread (the app server calls this as a worker starts);
    None when ``AVENUE_HISTORY_INTERVAL_SECONDS`` is 0."""
    if not app.config.get("AVENUE_HISTORY_INTERVAL_SECONDS"):
        return None
    mongo = get_mongo(app)
    reports = status_reports(mongo.db, app.config, AppMedia.of(app).core.referrers(mongo.db))  # reads nothing
    # Indexes from the thread: a worker must start (and answer /readyz with 503) while the
    # database is down, so nothing here may touch it.
    return Sampler(mongo.db, reports, app.config, prepare=mongo.ensure_indexes).start()
