"""Uploads per hour, counted as they are accepted (``media_uploads``): the ops dashboard's
"Uploads per hour / day" bars.

One small document per UTC hour, ``_id`` the hour as ``2026-11-24T06`` (ISO order is time
order, so a range of hours is one walk of the ``_id`` index), holding ``total`` and one figure
per bucket alias. :func:`record` is one ``$inc`` (upsert) per upload call that stored new
images, dated by the original's ``uploadDate``, after the write succeeded; a failed ``$inc``
is logged, never raised (the upload stands and goes uncounted). A delete never touches these
figures, so it cannot hide an upload, and the current hour is counted as it happens (unlike
the growth between two storage samples this replaced).

The collection grows by at most 24 documents a day, about 100 bytes each (under 1 MB a year
at any upload rate), so it is kept without expiry: years of history cost nothing and need no
index beyond ``_id``.

Counting began when an app that counts first started (:func:`start_counting`, run with the
media indexes; its ``since`` document sorts after every hour key, so a range of hours never
returns it). Hours before then have no count at all: the series shows them as not counted,
never as zero.
"""

from __future__ import annotations

import datetime as dt
import logging

from pymongo.database import Database
from pymongo.errors import PyMongoError

from avenue.clock import as_utc, now
from avenue.media.buckets import ALIASES
from avenue.media.records import Document

log = logging.getLogger(__name__)
UPLOADS = "media_uploads"
SINCE_ID = "since"
HOUR_FORMAT = "%Y-%m-%dT%H"


def hour_key(moment: dt.datetime) -> str:
    """The ``_id`` of the hour ``moment`` falls in (UTC)."""
    return as_utc(moment).strftime(HOUR_FORMAT)


def record(db: Database[Document], bucket: str, count: int, moment: dt.datetime) -> None:
    """Count ``count`` new images stored in ``bucket`` at ``moment`` (after they were written)."""
    if count <= 0:
        return
    inc = {"total": count, f"buckets.{ALIASES.get(bucket, bucket)}": count}
    try:
        db[UPLOADS].update_one({"_id": hour_key(moment)}, {"$inc": inc}, upsert=True)
    except PyMongoError as error:
        log.warning("upload of %d image(s) to %s not counted per hour (%s)", count, bucket, error)


def start_counting(db: Database[Document], moment: dt.datetime | None = None) -> None:
    """Record when counting began, the first time an app that counts starts (idempotent)."""
    db[UPLOADS].update_one({"_id": SINCE_ID}, {"$setOnInsert": {"at": moment or now()}}, upsert=True)


def per_hour(db: Database[Document], start: dt.datetime,
             end: dt.datetime) -> tuple[dict[dt.datetime, int], dt.datetime | None]:
    """Uploads counted in each hour from ``start``'s hour to ``end``'s (hours without a document
    are left out), and since when counting runs (None: not yet)."""
    # The _id index named: the embedded database's planner would otherwise scan for a range on _id.
    found = db[UPLOADS].find({"_id": {"$gte": hour_key(start), "$lte": hour_key(end)}},
                             {"total": 1}).hint([("_id", 1)])
    counts = {dt.datetime.strptime(doc["_id"], HOUR_FORMAT).replace(tzinfo=dt.UTC): int(doc.get("total") or 0)
              for doc in found}
    since = db[UPLOADS].find_one({"_id": SINCE_ID})
    return counts, as_utc(since["at"]) if since and isinstance(since.get("at"), dt.datetime) else None
