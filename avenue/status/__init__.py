"""Status: the two reports ops read, fast at any size and as fresh as the last write.

``products-status`` (:mod:`avenue.status.products`) answers "is every product photo safe?";
``storage-status`` (:mod:`avenue.status.storage`) "where are the bytes, and do they survive
a restart?". Their counts come from counters kept with every write
(:mod:`avenue.status.counters` for products, ``avenue.media`` for buckets): a request reads a
handful of small documents and runs a few index counts, never a scan. Their lists come from
the background sweep (:mod:`avenue.status.sweep`), which also reconciles the counters and
reports its own age; each app server worker runs a scheduler that starts it when it is due.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, wait
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Annotated, Any

from flask import Flask
from pydantic import Field
from pymongo.database import Database

from avenue import background
from avenue.clock import isoformat, now
from avenue.db import Document, get_mongo
from avenue.dialect import threads_safe
from avenue.media import AppMedia
from avenue.media.maintenance import Figures, Referrers
from avenue.shapes import QUERY, Flag, Shape
from avenue.status import sweep
from avenue.status.counters import product_counters, record_product_change, recount_products
from avenue.status.products import products_status
from avenue.status.storage import quota_level, storage_status

__all__ = ["REPORTS", "ReportQuery", "answer", "product_counters", "quota_level", "reconcile",
           "record_product_change", "refresh_all", "report", "sweep_now", "wait_for_sweeps",
           "warm_up_status_reports"]

REPORTS = ("products-status", "storage-status")
wait_for_sweeps = sweep.wait_for_sweeps


# A status call answers within AVENUE_STATUS_ANSWER_MS (:func:`answer`): when its reads take longer
# (the embedded database runs one operation at a time, and a sweep's recount holds it for
# seconds: bench/results/scale-2026-11-25-status-during-sweep.md), it answers the last report this
# worker computed, marked stale with its age, and the reads it began refresh that report
# when they end. On mongod reads do not wait for each other and the fresh report is in time.
HELD = "avenue.status.held"  # app.extensions key: this worker's last reports, and those under way


class _Run:
    """One computation of a report: whether its reads have begun, and the computation before
    it, which it waits for (one computation's reads at a time per worker and report)."""

    def __init__(self, after: Future[dict[str, Any]] | None) -> None:
        self.after = after
        self.begun = False


class _Held:
    """One app's last report of each kind (with when it was computed, ``time.monotonic``)
    and the newest computation of each, shared by the calls that come before its reads begin."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reports: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self.running: dict[tuple[str, str], tuple[_Run, Future[dict[str, Any]]]] = {}

    def keep(self, key: tuple[str, str], body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.reports[key] = (time.monotonic(), body)
        return body


class ReportQuery(Shape):
    """The query of a status call (``GET /api/debug/products-status``, ``.../storage-status``)."""

    model_config = QUERY

    refresh: Annotated[Flag, Field(description=(
        "Ask for a status sweep now: it runs in the background (the answer comes at once, with "
        "sweep.requested); the counts are current anyway."))] = False


def answer(app: Flask, db: Database[Document], name: str, *, refresh: bool = False) -> dict[str, Any]:
    """The report ``name`` for a status call: :func:`report`, or when the database does not
    answer within ``AVENUE_STATUS_ANSWER_MS``, the last one this worker computed with
    ``report.stale`` and its age (the first call of a worker, and ``refresh``, wait for
    fresh counts). Where threads cannot share the database (mongomock), always fresh."""
    held: _Held | None = app.extensions.get(HELD)
    if held is None:
        held = app.extensions.setdefault(HELD, _Held())  # setdefault: two first calls, one _Held
    key = (db.name, name)
    refs = AppMedia.of(app).core.referrers(db)  # what a sweep this report starts asks
    if refresh or not threads_safe(db):
        return held.keep(key, report(db, name, app.config, refs=refs, refresh=refresh))
    with held.lock:
        newest = held.running.get(key)
        if newest is None or newest[0].begun:
            # A call shares only a computation whose reads have not begun, so a fresh answer
            # counts every write made before the call (one whose reads began earlier could
            # miss a product created a moment before). One under way: this one begins when
            # it ends, and the calls that come meanwhile share this one.
            run = _Run(after=newest[1] if newest is not None else None)
            newest = held.running[key] = (run, background.beside(_compute_and_keep, held, key, run, db,
                                                                 name, app.config, refs))
        last = held.reports.get(key)
        running = newest[1]
    bound = app.config["AVENUE_STATUS_ANSWER_MS"] / 1000  # its default: avenue/config.py
    try:
        return running.result(timeout=bound if last is not None else None)
    except FutureTimeout:
        return _stale(last, bound) if last is not None else running.result()


def _compute_and_keep(held: _Held, key: tuple[str, str], run: _Run, db: Database[Document], name: str,
                      config: Mapping[str, Any], refs: Referrers) -> dict[str, Any]:
    if run.after is not None:
        wait([run.after])  # its outcome is its own callers'; this one reads afresh either way
    with held.lock:
        run.begun, run.after = True, None
    try:
        return held.keep(key, report(db, name, config, refs=refs))
    finally:
        with held.lock:
            newest = held.running.get(key)
            if newest is not None and newest[0] is run:
                del held.running[key]


def _stale(last: tuple[float, dict[str, Any]], bound: float) -> dict[str, Any]:
    """A report answered again: its counts as of when it was computed, said so."""
    computed, body = last
    block = dict(body["report"])
    block.update(stale=True, age_seconds=round(max(0.0, time.monotonic() - computed), 3),
                 counts=f"counters as of {block['generated_at']}: the database did not answer within "
                        f"{bound * 1000:.0f} ms, so this is the last report read here")
    return {**body, "report": block}


def report(db: Database[Document], name: str, config: Mapping[str, Any], *, refs: Referrers,
           refresh: bool = False) -> dict[str, Any]:
    """The report ``name``: counts read now, lists from the last sweep, with a ``report``
    block (the counts' time) and a ``sweep`` block (the lists' age). ``refresh`` asks for a
    sweep now and starts it in the background here when no other worker runs one; so does
    a request that finds no sweep ever finished (unless ``AVENUE_STATUS_WARM_UP`` is off:
    then sweeps run only when asked). The request itself never sweeps; a sweep it starts is
    handed ``refs``, the app's owners of referring documents (``AppMedia.of(app).core.referrers(db)``)."""
    settings = sweep.settings_from_config(config)
    started = time.perf_counter()
    doc = sweep.read(db)
    swept = (doc or {}).get("result")
    if refresh:
        sweep.request(db)
    automatic = config["AVENUE_STATUS_WARM_UP"]
    if refresh or (automatic and swept is None and sweep.due(doc, settings)):
        sweep.run_in_background(db, settings, refs)
    body = products_status(db, swept) if name == "products-status" else storage_status(db, config, swept)
    moment = now()
    meta = sweep.meta(sweep.read(db) if refresh else doc, settings, moment)
    if refresh:
        meta["requested"] = True
    return {**body, "report": {"generated_at": isoformat(moment), "age_seconds": 0.0, "stale": False,
                               "counts": "counters, as of the last write",
                               "compute_ms": round((time.perf_counter() - started) * 1000, 1)},
            "sweep": meta}


def reconcile(db: Database[Document], config: Mapping[str, Any], refs: Referrers) -> dict[str, Any]:
    """Recount every counter now (products in batches, as ``refs``' owner of products walks
    them; buckets on the server) and replace those no write moved meanwhile; what was
    corrected, per counter."""
    settings = sweep.settings_from_config(config)
    # The buckets' counters, the renditions' total (the byte budget evicts by it), the facets.
    products = recount_products(db, refs.of("products"), settings.batch)
    return {"products": products, **Figures(db).recount_media()}


def refresh_all(db: Database[Document], config: Mapping[str, Any], refs: Referrers) -> dict[str, Any]:
    """After an operation that changed a lot behind the counters (import-legacy, gc, fsck
    --repair, restore): reconcile the counters now and ask for a sweep (any worker's scheduler
    starts it). Returns what the reconciliation corrected."""
    corrected = reconcile(db, config, refs)
    sweep.request(db)
    return corrected


def sweep_now(db: Database[Document], config: Mapping[str, Any], refs: Referrers) -> dict[str, Any] | None:
    """Run (or resume) a sweep here and now, if no other worker holds its lease (CLI, tests),
    asking ``refs`` (the app's owners of referring documents) who refers to images."""
    return sweep.run(db, sweep.settings_from_config(config), refs=refs)


def warm_up_status_reports(app: Flask) -> threading.Thread | None:
    """Start this worker's sweep scheduler (the app server calls this as each worker starts;
    the lease lets one worker of many sweep at a time). Its thread ensures the indexes before
    it reads anything: nothing here may touch the database, which may be down at start."""
    if not app.config["AVENUE_STATUS_WARM_UP"]:
        return None
    mongo = get_mongo(app)
    # The app's owners of referring documents, handed to the scheduler's thread as it starts
    # (building them reads nothing).
    refs = AppMedia.of(app).core.referrers(mongo.db)
    settings = sweep.settings_from_config(app.config)
    return sweep.schedule(mongo.db, settings, refs, prepare=mongo.ensure_indexes)
