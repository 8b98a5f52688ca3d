"""GET /metrics: the Prometheus scrape (avenue/metrics.py), for ops tokens or allowed networks.

Who may scrape: a client whose address is in ``AVENUE_METRICS_ALLOW`` (comma-separated
networks, e.g. ``10.0.0.0/8,127.0.0.1/32``: the Prometheus server on a private network, as
the address the app trusts, after ``AVENUE_PROXY_COUNT``), or anyone authenticated as ``ops``
or ``admin`` (``Authorization: Bearer <token>``, Prometheus' ``authorization`` setting).
Everyone else gets the API's 401/403 JSON.

Besides the per-request counters every worker writes, a scrape reads the shared state of the
deployment at that moment: the status reports through ``avenue.status.report`` (counts from
the counters every write keeps and the last background sweep's lists: a few small reads,
never a scan, so a scrape every 15 s costs nothing the store's size decides), and the last
gc/fsck runs (avenue/opsruns.py).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

import pymongo
from flask import Blueprint, Response, current_app, request
from prometheus_client.core import GaugeMetricFamily, Metric
from pymongo.database import Database
from pymongo.errors import PyMongoError

from avenue import metrics, opsruns, status
from avenue.auth import require
from avenue.clock import as_utc
from avenue.db import Document, get_db
from avenue.media import AppMedia, Media

bp = Blueprint("scrape", __name__)
QUOTA_LEVELS = ("ok", "warning", "critical", "emergency")
READ_TIMEOUT = 2.0  # seconds a scrape waits for the database before answering without its part


def _allowed_address(networks: list[str], address: str | None) -> bool:
    if not networks or not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in networks)


class DeploymentCollector:
    """Gauges read at scrape time from the database: status snapshots and the last ops runs."""

    def __init__(self, db: Database[Document], config: Mapping[str, Any], media: Media) -> None:
        self.db = db
        self.config = config
        self.media = media  # the app's: its owners of referring documents, for a sweep a report starts

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("avenue_deployment_read_ok",
                               "1 when this scrape read the status snapshots and ops runs.")
        try:
            with pymongo.timeout(READ_TIMEOUT):
                families = list(self._status()) + list(self._ops_runs())
        except PyMongoError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _status(self) -> Iterator[Metric]:
        age = GaugeMetricFamily("avenue_status_report_age_seconds",
                                "Age of the status report snapshot metrics are read from.", labels=["report"])
        refs = self.media.referrers(self.db)
        reports = {name: status.report(self.db, name, self.config, refs=refs) for name in status.REPORTS}
        for name, body in reports.items():
            age.add_metric([name], body["report"]["age_seconds"])
        yield age
        storage = reports["storage-status"]
        files = GaugeMetricFamily("avenue_bucket_files", "Files in each GridFS bucket (status snapshot).",
                                  labels=["bucket"])
        size = GaugeMetricFamily("avenue_bucket_bytes", "Bytes in each GridFS bucket (status snapshot).",
                                 labels=["bucket"])
        for bucket, row in storage["buckets"].items():
            files.add_metric([bucket], row["files"])
            size.add_metric([bucket], row["bytes"])
        yield files
        yield size
        quota = storage["quota"]
        level = GaugeMetricFamily("avenue_storage_quota_level",
                                  "1 for the storage quota's current level (ok/warning/critical/emergency).",
                                  labels=["level"])
        for name in QUOTA_LEVELS:
            level.add_metric([name], 1 if quota["level"] == name else 0)
        yield level
        used = GaugeMetricFamily("avenue_storage_used_bytes", "Storage in use (storage-status).")
        used.add_metric([], quota["used_bytes"] or 0)
        yield used
        if quota.get("bytes"):
            limit = GaugeMetricFamily("avenue_storage_quota_bytes", "The configured storage quota.")
            limit.add_metric([], quota["bytes"])
            yield limit
        renditions = storage["renditions"]
        held = GaugeMetricFamily("avenue_renditions_bytes",
                                 "Bytes of renditions on request stored (their running total).")
        held.add_metric([], renditions["bytes"])
        yield held
        if renditions["budget_bytes"]:
            budget = GaugeMetricFamily("avenue_rendition_budget_bytes",
                                       "The renditions' byte budget (AVENUE_RENDITION_BUDGET_BYTES).")
            budget.add_metric([], renditions["budget_bytes"])
            yield budget

    def _ops_runs(self) -> Iterator[Metric]:
        finished = GaugeMetricFamily("avenue_ops_last_run_timestamp_seconds",
                                     "When the last run of each maintenance command finished (Unix time).",
                                     labels=["command"])
        ok = GaugeMetricFamily("avenue_ops_last_run_ok", "1 when the last run succeeded.",
                               labels=["command"])
        took = GaugeMetricFamily("avenue_ops_last_run_duration_seconds", "How long the last run took.",
                                 labels=["command"])
        counts = GaugeMetricFamily("avenue_ops_last_run_items",
                                   "What the last run counted (gc: removed items and bytes; fsck: files "
                                   "checked, problems, repairs).", labels=["command", "kind"])
        for run in opsruns.last_runs(self.db):
            command = str(run["_id"])
            finished.add_metric([command], as_utc(run["finished_at"]).timestamp())
            ok.add_metric([command], 1 if run.get("ok") else 0)
            took.add_metric([command], run.get("seconds") or 0)
            for kind, value in sorted((run.get("counts") or {}).items()):
                counts.add_metric([command, kind], value)
        yield from (finished, ok, took, counts)


@bp.get("/metrics")
def scrape() -> Response:
    """The Prometheus text exposition of every worker's metrics and the deployment's state."""
    if not _allowed_address(current_app.config.get("AVENUE_METRICS_ALLOW") or [], request.remote_addr):
        require("ops")
    core = AppMedia.of(current_app).core
    body = metrics.exposition(DeploymentCollector(get_db(), current_app.config, core))
    return Response(body, content_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})
