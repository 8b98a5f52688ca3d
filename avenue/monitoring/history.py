"""Storage history: one sample of the status numbers per interval, and the series the
dashboard draws from them.

A sample is built from the two public status reports (:func:`avenue.status.report`), never
from the storage layout, so it survives changes to how those reports are computed. Samples
live in ``monitoring_samples`` for ``AVENUE_HISTORY_RETENTION_DAYS`` (a TTL index on ``at``).
Each sample carries its interval slot under a unique index: two instances can never both
record the same slot, whatever happens to the lease (:mod:`avenue.monitoring.sampler`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field
from pymongo import ASCENDING, IndexModel
from pymongo.database import Database

from avenue.clock import as_utc, isoformat
from avenue.errors import BadRequest
from avenue.indexes import create_missing
from avenue.media.maintenance import Figures
from avenue.retention import ensure_retention
from avenue.shapes import QUERY, Answer, OneOf, Shape, cleaned

Document = dict[str, Any]
SAMPLES = "monitoring_samples"
# Range name -> (how far back, width of one "uploads" bar).
RANGES: dict[str, tuple[dt.timedelta, dt.timedelta]] = {
    "24h": (dt.timedelta(hours=24), dt.timedelta(hours=1)),
    "7d": (dt.timedelta(days=7), dt.timedelta(days=1)),
    "30d": (dt.timedelta(days=30), dt.timedelta(days=1)),
}


def ensure_indexes(db: Database[Document], retention_days: int) -> None:
    """The unique slot index and the TTL index on ``at`` (its name carries the period, so a
    changed retention replaces it at the next start, as the audit log does)."""
    samples = db[SAMPLES]
    create_missing(samples, [IndexModel([("slot", ASCENDING)], name="slot", unique=True)])
    ensure_retention(samples, "at", retention_days)


def _count(block: Any) -> int:
    return int(block.get("count") or 0) if isinstance(block, Mapping) else 0


def _database_bytes(storage: Mapping[str, Any]) -> int | None:
    size = storage.get("database_size") or {}
    folder = size.get("data_dir")
    # The embedded database's folder on disk is its real size (its dbStats storage equals data).
    if isinstance(folder, Mapping) and isinstance(folder.get("bytes_on_disk"), int):
        return int(folder["bytes_on_disk"])
    for key in ("storage_bytes", "data_bytes"):
        if isinstance(size.get(key), int):
            return int(size[key])
    return None


def build_sample(storage: Mapping[str, Any], products: Mapping[str, Any], moment: dt.datetime,
                 slot: dt.datetime) -> Document:
    """The sample document for one slot, from a storage-status and a products-status report."""
    quota = storage.get("quota") or {}
    buckets = {
        str(row.get("alias") or name): {"files": int(row.get("files") or 0),
                                        "originals": int(row.get("originals") or 0),
                                        "bytes": int(row.get("bytes") or 0)}
        for name, row in (storage.get("buckets") or {}).items()
    }
    return {
        "at": moment,
        "slot": slot,
        "gridfs_bytes": int(storage.get("gridfs_bytes") or 0),
        "database_bytes": _database_bytes(storage),
        "buckets": buckets,
        "quota": {"bytes": int(quota.get("bytes") or 0), "used_bytes": int(quota.get("used_bytes") or 0),
                  "percent": quota.get("percent"), "level": quota.get("level")},
        "safety": {
            "safe": bool(products.get("safe", True)),
            "missing_files": _count(products.get("missing_files")),
            "orphans": _count(products.get("orphans")),
            "local_filesystem": _count(products.get("local_filesystem")),
            "external": _count(products.get("external")),
            "missing_variants": _count(products.get("missing_variants")),
        },
    }


def record(db: Database[Document], sample: Document) -> bool:
    """Store ``sample``; False when its slot already has one (another instance was first)."""
    result = db[SAMPLES].update_one({"slot": sample["slot"]}, {"$setOnInsert": sample}, upsert=True)
    return result.upserted_id is not None


def parse_range(name: str | None) -> str:
    """A known range name (default ``7d``); 400 otherwise."""
    name = (name or "7d").strip()
    if name not in RANGES:
        raise BadRequest(f"range must be one of {', '.join(RANGES)}.", code="invalid_range")
    return name


class HistoryQuery(Shape):
    """The query of ``GET /api/admin/history``."""

    model_config = QUERY

    range: Annotated[str, cleaned(parse_range), Field(description="How far back (default 7d).",
                                                      json_schema_extra={"enum": list(RANGES)})] = "7d"


def _floor(moment: dt.datetime, width: dt.timedelta) -> dt.datetime:
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return epoch + (moment - epoch) // width * width


TIME = Field(json_schema_extra={"format": "date-time"})


class UploadBar(Answer):
    """One bar of the uploads chart."""

    start: Annotated[str | None, TIME]
    count: Annotated[int | None, Field(description="Images stored by uploads in this bar (the current hour "
                                                   "included); null before counting began.")]


class History(Answer):
    """The storage history over a range: points for charts and uploads per bar."""

    range: Annotated[str, OneOf(tuple(RANGES))]
    from_: Annotated[str | None, TIME, Field(serialization_alias="from")]
    to: Annotated[str | None, TIME]
    bar_seconds: int
    points: list[dict[str, Any]]
    uploads: list[UploadBar]
    uploads_counted_since: Annotated[str | None, TIME, Field(
        description="When uploads began to be counted (null: not yet).")]


def series(db: Database[Document], range_name: str, moment: dt.datetime) -> Document:
    """The samples of the last ``range_name`` as chart points, and uploads per bar.

    Uploads come from the counts kept as each upload is accepted
    (:func:`avenue.media.effects.uploads.per_hour`),
    the current hour included; a delete does not take one back. A bar that ended before
    counting began has ``count`` None (not counted, not zero); ``uploads_counted_since`` says
    when it began.
    """
    span, width = RANGES[range_name]
    start = moment - span
    docs = list(db[SAMPLES].find({"at": {"$gte": start, "$lte": moment}}).sort("at", ASCENDING))
    points = [{
        "at": isoformat(as_utc(doc["at"])),
        "gridfs_bytes": doc.get("gridfs_bytes", 0),
        "database_bytes": doc.get("database_bytes"),
        "used_bytes": (doc.get("quota") or {}).get("used_bytes", 0),
        "quota_bytes": (doc.get("quota") or {}).get("bytes", 0),
        "quota_percent": (doc.get("quota") or {}).get("percent"),
        "files": sum(row.get("files", 0) for row in (doc.get("buckets") or {}).values()),
    } for doc in docs]
    first = _floor(start, width)  # the first bar may be partly before ``start``
    hours, since = Figures(db).uploads_per_hour(first, moment)
    bars: dict[dt.datetime, int | None] = {}
    slot = first
    while slot <= moment:
        bars[slot] = 0 if since is not None and slot + width > since else None
        slot += width
    for hour, count in hours.items():
        bar = _floor(hour, width)
        bars[bar] = (bars.get(bar) or 0) + count
    uploads = [UploadBar(start=isoformat(key), count=count) for key, count in sorted(bars.items())]
    return History(range=range_name, from_=isoformat(start), to=isoformat(moment),
                   bar_seconds=int(width.total_seconds()), points=points, uploads=uploads,
                   uploads_counted_since=isoformat(since)).answer()
