"""Alerts: quota and safety thresholds recorded when a sample crosses them.

A crossing is recorded once, then not again at the same level for a cooldown (warning 7
days, critical 48 hours, emergency 24 hours): an operator who saw "85 % used" does not need
the same line every hour, but a worse level is recorded at once (its own cooldown). Alerts
stay until acknowledged, and are kept as long as the history (a TTL index on ``at``).
Only the sampler (one instance per interval, :mod:`avenue.monitoring.sampler`) records, so
two instances never record the same crossing twice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from bson import ObjectId
from pydantic import Field
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.database import Database

from avenue.clock import as_utc, isoformat, maybe_utc
from avenue.errors import NotFound
from avenue.indexes import create_missing
from avenue.outbound import send, signed_headers
from avenue.retention import ensure_retention
from avenue.shapes import QUERY, Answer, Flag, ObjectIdText, OneOf, Shape

log = logging.getLogger(__name__)

Document = dict[str, Any]
ALERTS = "monitoring_alerts"
LEVELS = ("warning", "critical", "emergency")
COOLDOWNS = {"warning": dt.timedelta(days=7), "critical": dt.timedelta(hours=48),
             "emergency": dt.timedelta(hours=24)}
WEBHOOK_TIMEOUT_SECONDS = 5.0  # the whole call, its answer included (avenue/outbound.py)
LIST_LIMIT = 200


@dataclass(frozen=True)
class Crossing:
    """A threshold a sample is past: what, how bad, and the sentence an operator reads."""

    kind: str  # "quota" or "safety"
    level: str  # one of LEVELS
    message: str
    value: float | int | None = None
    threshold: float | int | None = None


def parse_thresholds(raw: str | Sequence[float]) -> tuple[float, float, float]:
    """Warning, critical and emergency percentages from ``"70,85,95"``; increasing, in (0, 100]."""
    parts = [p for p in raw.split(",") if p.strip()] if isinstance(raw, str) else list(raw)
    try:
        values = tuple(float(p) for p in parts)
    except ValueError as exc:
        raise RuntimeError(f"AVENUE_ALERT_THRESHOLDS must be three numbers, got {raw!r}") from exc
    if len(values) != 3 or not 0 < values[0] < values[1] < values[2] <= 100:
        raise RuntimeError(f"AVENUE_ALERT_THRESHOLDS must be three increasing percentages, got {raw!r}")
    return values[0], values[1], values[2]


def quota_level(percent: float | None, thresholds: tuple[float, float, float]) -> str:
    """``ok`` or the highest level whose threshold ``percent`` has reached."""
    level = "ok"
    if percent is None:
        return level
    for name, threshold in zip(LEVELS, thresholds, strict=True):
        if percent >= threshold:
            level = name
    return level


def crossings(sample: Mapping[str, Any], thresholds: tuple[float, float, float]) -> list[Crossing]:
    """The thresholds ``sample`` is past: the quota's level, and an unsafe verdict (missing
    files are critical: a product shows a broken photo; the rest is a warning)."""
    found = []
    quota = sample.get("quota") or {}
    percent = quota.get("percent")
    if quota.get("bytes") and percent is not None:
        level = quota_level(float(percent), thresholds)
        if level != "ok":
            threshold = thresholds[LEVELS.index(level)]
            found.append(Crossing("quota", level, f"Storage is at {percent:.1f} % of its quota "
                                  f"({quota.get('used_bytes', 0):,} of {quota['bytes']:,} bytes); "
                                  f"the {level} threshold is {threshold:g} %.", float(percent), threshold))
    safety = sample.get("safety") or {}
    if not safety.get("safe", True):
        problems = [f"{safety.get(key, 0)} {label}" for key, label in (
            ("missing_files", "missing file(s)"), ("local_filesystem", "local path(s)"),
            ("external", "external reference(s)"), ("orphans", "orphan(s)"),
            ("missing_variants", "image(s) missing variants")) if safety.get(key)]
        level = "critical" if safety.get("missing_files") else "warning"
        found.append(Crossing("safety", level, "Product photos are not all safe: "
                              + (", ".join(problems) or "see products-status") + ".",
                              safety.get("missing_files", 0)))
    return found


def ensure_indexes(db: Database[Document], retention_days: int) -> None:
    """The cooldown lookup's index and the retention TTL on ``at`` (0 days: kept forever)."""
    alerts = db[ALERTS]
    create_missing(alerts, [
        IndexModel([("kind", ASCENDING), ("level", ASCENDING), ("at", DESCENDING)], name="cooldown"),
        IndexModel([("at", DESCENDING)], name="newest")])
    ensure_retention(alerts, "at", retention_days)


def record_crossings(db: Database[Document], found: Sequence[Crossing], moment: dt.datetime,
                     notify: Callable[[Document], Document | None] | None = None) -> list[Document]:
    """Record each crossing not already recorded at its level within its cooldown; ``notify``
    (the webhook) is called with each new alert and its outcome stored. Returns the new ones."""
    recorded = []
    for crossing in found:
        since = moment - COOLDOWNS[crossing.level]
        if db[ALERTS].find_one({"kind": crossing.kind, "level": crossing.level, "at": {"$gt": since}},
                               {"_id": 1}) is not None:
            continue  # in cooldown
        doc: Document = {"kind": crossing.kind, "level": crossing.level, "message": crossing.message,
                         "value": crossing.value, "threshold": crossing.threshold, "at": moment,
                         "acknowledged_at": None, "acknowledged_by": None}
        doc["_id"] = db[ALERTS].insert_one(doc).inserted_id
        if notify is not None:
            outcome = notify(public_alert(doc))
            if outcome is not None:
                db[ALERTS].update_one({"_id": doc["_id"]}, {"$set": {"notified": outcome}})
                doc["notified"] = outcome
        recorded.append(doc)
    return recorded


def webhook_notifier(url: str, moment: Callable[[], dt.datetime], *,
                     key: str) -> Callable[[Document], Document]:
    """A ``notify`` that POSTs the alert as JSON to ``url``, signed with ``key`` as the CDN
    purge hook is (:mod:`avenue.outbound`), and says how that went."""

    def notify(alert: Document) -> Document:
        body = json.dumps({"alert": alert}).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "avenue-media-alerts",
                   **signed_headers(key, body)}
        try:
            status = send(url, seconds=WEBHOOK_TIMEOUT_SECONDS, data=body, headers=headers,
                          method="POST").status
            return {"at": moment(), "ok": 200 <= status < 300, "status": status}
        except OSError as error:  # URLError, the deadline, a refused connection: recorded, never raised
            log.warning("alert webhook failed: %s", error)
            return {"at": moment(), "ok": False, "error": str(error)[:200]}

    return notify


TIME = Field(json_schema_extra={"format": "date-time"})


class Notified(Answer):
    """Whether the alert's webhook took it, and when it was sent."""

    ok: bool | None
    at: Annotated[str | None, TIME]


class Alert(Answer):
    """A recorded threshold crossing as the API shows it."""

    id: ObjectIdText
    kind: str
    level: Annotated[str, OneOf(LEVELS)]
    message: str
    value: int | float | None
    threshold: int | float | None
    at: Annotated[str | None, TIME]
    acknowledged: bool
    acknowledged_at: Annotated[str | None, TIME]
    acknowledged_by: str | None
    notified: Notified | None


class AlertsQuery(Shape):
    """The query of ``GET /api/admin/alerts``."""

    model_config = QUERY

    open: Annotated[Flag, Field(description="Only those not acknowledged.")] = False


class AlertList(Answer):
    """Recorded threshold crossings, newest first, and the thresholds in force by level."""

    items: list[Alert]
    thresholds: dict[str, int | float]


def public_alert(doc: Mapping[str, Any]) -> Document:
    """An alert as the API shows it."""
    notified = doc.get("notified")
    return Alert(
        id=str(doc["_id"]), kind=doc["kind"], level=doc["level"], message=doc["message"],
        value=doc.get("value"), threshold=doc.get("threshold"), at=isoformat(as_utc(doc["at"])),
        acknowledged=doc.get("acknowledged_at") is not None,
        acknowledged_at=isoformat(maybe_utc(doc.get("acknowledged_at"))),
        acknowledged_by=doc.get("acknowledged_by"),
        notified=None if not notified else Notified(ok=notified.get("ok"),
                                                    at=isoformat(maybe_utc(notified.get("at")))),
    ).answer()


def list_alerts(db: Database[Document], *, open_only: bool = False) -> list[Document]:
    """The newest alerts first (at most ``LIST_LIMIT``); ``open_only``: not acknowledged."""
    query: Document = {"acknowledged_at": None} if open_only else {}
    return [public_alert(doc) for doc in db[ALERTS].find(query).sort("at", DESCENDING).limit(LIST_LIMIT)]


def acknowledge(db: Database[Document], alert_id: ObjectId, who: str, moment: dt.datetime) -> Document:
    """Mark an alert acknowledged by ``who`` (the first acknowledgement stays); 404 if unknown."""
    db[ALERTS].update_one({"_id": alert_id, "acknowledged_at": None},
                          {"$set": {"acknowledged_at": moment, "acknowledged_by": who}})
    doc = db[ALERTS].find_one({"_id": alert_id})
    if doc is None:
        raise NotFound("No alert with this id.", code="alert_not_found")
    return public_alert(doc)
