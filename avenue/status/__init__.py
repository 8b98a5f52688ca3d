"""Status: the two reports ops read, served from snapshots every worker shares.

``products-status`` (:mod:`avenue.status.products`) answers "is every product photo safe?";
``storage-status`` (:mod:`avenue.status.storage`) "where are the bytes, and do they survive
a restart?". :mod:`avenue.status.snapshots` keeps the last answer of each in the database
and refreshes it in the background (stale-while-revalidate, one worker at a time).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask
from pymongo.database import Database

from avenue.db import get_mongo
from avenue.media import PRODUCTS, Document, scan_files
from avenue.status import snapshots
from avenue.status.products import products_status
from avenue.status.storage import quota_level, storage_status

__all__ = ["REPORTS", "quota_level", "refresh_all", "report", "report_computes",
           "wait_for_refreshes", "warm_up_status_reports"]

REPORTS = ("products-status", "storage-status")
wait_for_refreshes = snapshots.wait_for_refreshes


def report_computes(db: Database[Document], config: Mapping[str, Any], *,
                    share_scan: bool = False) -> dict[str, Callable[[], dict[str, Any]]]:
    """Each report as a function of no arguments, for :mod:`avenue.status.snapshots`.

    With ``share_scan`` (computing both in a row: warm-up, after an operation) products-status
    reads the products bucket's files once and storage-status takes its totals from that
    read instead of aggregating the bucket again; the read is dropped once both have run.
    """
    if not share_scan:
        return {"products-status": lambda: products_status(db),
                "storage-status": lambda: storage_status(db, config)}
    shared: dict[str, Any] = {}

    def products() -> dict[str, Any]:
        shared["scan"] = scan_files(db, PRODUCTS)
        return products_status(db, scan=shared["scan"])

    def storage() -> dict[str, Any]:
        return storage_status(db, config, scan=shared.pop("scan", None))

    return {"products-status": products, "storage-status": storage}


def report(db: Database[Document], name: str, config: Mapping[str, Any], *,
           refresh: bool = False) -> dict[str, Any]:
    """The report ``name`` from the shared snapshot (``refresh``: computed now), with a
    ``report`` block saying how old it is."""
    return snapshots.cached_report(db, name, report_computes(db, config)[name],
                                   max_age=config["AVENUE_STATUS_MAX_AGE_SECONDS"], refresh=refresh)


def refresh_all(db: Database[Document], config: Mapping[str, Any]) -> dict[str, int]:
    """Recompute both snapshots now (after an operation that changed a lot); their compute ms."""
    return snapshots.refresh_now(db, report_computes(db, config, share_scan=True))


def warm_up_status_reports(app: Flask) -> threading.Thread | None:
    """Compute the snapshots that do not exist yet, in a background thread (the app server
    calls this as each worker starts; the lease lets one worker of many compute)."""
    if not app.config.get("AVENUE_STATUS_WARM_UP", True):
        return None
    db = get_mongo(app).db
    return snapshots.warm_up_in_background(db, report_computes(db, app.config, share_scan=True))
