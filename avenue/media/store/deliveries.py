"""Delivery numbers per image: requests and bytes per image per day, by file served, kept in
``media_deliveries`` (this module is its one owner).

Every serving path notes what it sent in memory (:mod:`avenue.media.effects.served`:
answers with a body only, never a HEAD or a 304); private images (signed URLs only: private
uploads, temp images) are left out, so no list names their ids or their renditions;
each worker's flush hands the batch to :func:`record`, which writes it with **one unordered
``bulk_write``** of upserts:

- a *day document* per (bucket, image, version, UTC day, file name, format): ``$inc`` of
  ``requests`` and ``bytes``, and the image's file name when it was served. ``_id`` is
  ``bucket/image[~version]/YYYY-MM-DD/name/format`` (:func:`day_id`; no version before the
  image's first replace), so the upsert finds it by ``_id`` and two workers flushing the same
  day add into the same document, and a replaced image's new files never add into its old
  ones: the numbers count the file a visitor fetched;
- a *summary document* per image (``_id`` ``bucket/image``, no ``day``): ``$max`` of
  ``last_served`` and ``$inc`` of the totals. At 10 M images that is at most 10 M small
  documents (~150 bytes each, ~1.5 GB with the ``_id`` index), written only for images that
  are served; it keeps the originals' files documents (owned by the store) out of the flush.

Retention: ``AVENUE_DELIVERY_RETENTION_DAYS`` is a TTL index on ``day`` (its name carries the
period, so a changed retention replaces it at the next start, as the storage history does);
the summary documents carry no ``day`` and are never expired. Not a time-series collection:
its documents take no upsert with ``$inc`` (MongoDB 5-7 update time-series measurements only
by their metaField), and a per-day pre-aggregated document is already the compact form a
time-series bucket would store; a plain collection with a TTL index works the same on
mongod, mongomock and the embedded database.

Reads: :func:`top` (most served or heaviest over a range) groups the day documents of the
range, found by the ``day`` index; a range is at most :data:`MAX_RANGE_DAYS`. Its cost is the
day documents in the range: (images served per day) x (files per image served) x days; at
10 M images of which 1 M are served a day with ~3 files each, 90 days is ~270 M documents,
too many to group per request, so ranges longer than a week should be read from a replica
(``secondaryPreferred``) or pre-grouped by a nightly job; that job is not built yet.
:func:`series` reads one image's day documents by the ``(bucket, image, day)`` index.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, TypeAlias

from pydantic import Field
from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.database import Database

from avenue.errors import BadRequest
from avenue.indexes import create_missing
from avenue.media.buckets import ALIASES
from avenue.media.effects.served import Delivered
from avenue.media.records import Document
from avenue.retention import ensure_retention
from avenue.shapes import QUERY, Answer, ObjectIdText, Shape

COLLECTION = "media_deliveries"
#: The longest range :func:`top` groups over (days).
MAX_RANGE_DAYS = 92
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _day(moment: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(moment - moment % 86400, dt.UTC)


def summary_id(bucket: str, image: Any) -> str:
    """The ``_id`` of an image's summary document."""
    return f"{bucket}/{image}"


def day_id(bucket: str, image: Any, version: str, day: dt.datetime, name: str, fmt: str) -> str:
    """The ``_id`` of a day document: the image as its URLs name it (``<id>~<version>`` once
    replaced), the day, the file."""
    token = f"{image}~{version}" if version else str(image)
    return f"{bucket}/{token}/{day:%Y-%m-%d}/{name}/{fmt}"


def record(db: Database[Document], delivered: Mapping[tuple[str, Any], Delivered]) -> int:
    """The deliveries' sink for per-image numbers: one unordered ``bulk_write`` of upserts
    (module doc); how many writes were sent (1, or 0 for nothing to write)."""
    days: dict[tuple[str, Any, str, dt.datetime, str, str], list[Any]] = {}
    images: dict[tuple[str, Any], list[Any]] = {}
    for seen in delivered.values():
        if seen.private:
            continue  # a private image's id and renditions' names stay out of ops' lists
        bucket, image = seen.image
        day = _day(seen.last)
        counts = days.setdefault((bucket, image, seen.version, day, seen.name, seen.format),
                                 [0, 0, seen.filename])
        counts[0] += seen.requests
        counts[1] += seen.bytes
        total = images.setdefault((bucket, image), [0, 0, seen.last])
        total[0] += seen.requests
        total[1] += seen.bytes
        total[2] = max(total[2], seen.last)
    operations: list[UpdateOne] = []
    for (bucket, image, version, day, name, fmt), (requests, sent, filename) in days.items():
        fields = {"bucket": bucket, "image": image, "day": day, "name": name, "format": fmt,
                  "filename": filename}
        if version:  # none before the image's first replace (and in the documents from before versions)
            fields["version"] = version
        operations.append(UpdateOne(
            {"_id": day_id(bucket, image, version, day, name, fmt)},
            {"$inc": {"requests": requests, "bytes": sent}, "$setOnInsert": fields},
            upsert=True))
    for (bucket, image), (requests, sent, last) in images.items():
        operations.append(UpdateOne(
            {"_id": summary_id(bucket, image)},
            {"$inc": {"requests": requests, "bytes": sent},
             "$max": {"last_served": dt.datetime.fromtimestamp(last, dt.UTC)},
             "$setOnInsert": {"bucket": bucket, "image": image}},
            upsert=True))
    if not operations:
        return 0
    db[COLLECTION].bulk_write(operations, ordered=False)
    return 1


def ensure_indexes(db: Database[Document], retention_days: int) -> None:
    """The per-image series index and the TTL index on ``day`` (``retention_<n>d``; none for
    ``retention_days`` 0: kept for ever)."""
    collection = db[COLLECTION]
    create_missing(collection, [
        IndexModel([("bucket", ASCENDING), ("image", ASCENDING), ("day", ASCENDING)], name="image_day"),
    ])
    ensure_retention(collection, "day", retention_days, otherwise="day")


def _range(start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    return {"$gte": _day(start.timestamp()), "$lt": end}


def top(db: Database[Document], start: dt.datetime, end: dt.datetime, *, by: str = "requests",
        limit: int = 20) -> list[dict[str, Any]]:
    """The ``limit`` image versions most served (``by`` "requests") or heaviest (``by``
    "bytes") in ``[start, end)``: bucket, image, version ("" before its first replace),
    filename (the image's name when it was served; "" in documents from before it was kept),
    requests, bytes. Each version of an image is its own row: what a visitor fetched is
    counted by the file sent, never added to another version's under today's name."""
    pipeline: list[dict[str, Any]] = [
        {"$match": {"day": _range(start, end)}},
        {"$group": {"_id": {"bucket": "$bucket", "image": "$image", "version": "$version"},
                    "requests": {"$sum": "$requests"}, "bytes": {"$sum": "$bytes"},
                    "filename": {"$max": "$filename"}}},
        {"$sort": {by: DESCENDING, "_id.image": ASCENDING, "_id.version": ASCENDING}},
        {"$limit": limit},
    ]
    return [{"bucket": row["_id"]["bucket"], "image": row["_id"]["image"],
             "version": row["_id"].get("version") or "", "filename": row.get("filename") or "",
             "requests": row["requests"], "bytes": row["bytes"]}
            for row in db[COLLECTION].aggregate(pipeline)]


def series(db: Database[Document], bucket: str, image: Any, start: dt.datetime,
           end: dt.datetime) -> list[dict[str, Any]]:
    """One image's day documents in ``[start, end)``, by day: day, name, format, version (absent
    before its first replace), requests, bytes."""
    found = db[COLLECTION].find({"bucket": bucket, "image": image, "day": _range(start, end)},
                                {"_id": 0, "day": 1, "name": 1, "format": 1, "version": 1, "requests": 1,
                                 "bytes": 1}
                                ).sort([("bucket", ASCENDING), ("image", ASCENDING), ("day", ASCENDING)])
    return list(found)


def last_served(db: Database[Document],
                keys: Iterable[tuple[str, Any]]) -> dict[tuple[str, Any], dt.datetime]:
    """When each of ``keys`` (bucket, image) was last served; images never served are absent."""
    ids = [summary_id(bucket, image) for bucket, image in keys]
    if not ids:
        return {}
    found = db[COLLECTION].find({"_id": {"$in": ids}}, {"bucket": 1, "image": 1, "last_served": 1})
    return {(doc["bucket"], doc["image"]): doc["last_served"] for doc in found}


def served_totals(db: Database[Document], bucket: str, image: Any) -> dict[str, Any] | None:
    """An image's summary: requests, bytes, last_served (None: never served)."""
    return db[COLLECTION].find_one({"_id": summary_id(bucket, image)}, {"_id": 0})


def parse_range(start: str | None, end: str | None,
                clock: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``from``/``to`` as UTC days (``YYYY-MM-DD``, ``to`` included); the last 30 days by
    default; 400 for a bad date, a reversed range or one over the longest range."""
    def day(raw: str, name: str) -> dt.datetime:
        try:
            if not DAY.fullmatch(raw):  # strptime takes "194-5-25" too
                raise ValueError(raw)
            return dt.datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=dt.UTC)
        except ValueError:
            raise BadRequest(f"{name} must be a date, YYYY-MM-DD.", code="invalid_range") from None

    today = clock.replace(hour=0, minute=0, second=0, microsecond=0)
    last = day(end, "to") if end else today
    try:
        first = day(start, "from") if start else last - dt.timedelta(days=29)
        after = last + dt.timedelta(days=1)
    except OverflowError:
        raise BadRequest("from and to are days from 0001-01-30 to 9999-12-30.",
                         code="invalid_range") from None
    if first > last:
        raise BadRequest("from must not be after to.", code="invalid_range")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise BadRequest(f"A range is at most {MAX_RANGE_DAYS} days.", code="invalid_range",
                         max_days=MAX_RANGE_DAYS)
    return first, after


class DayRange(Shape):
    """A query's range of UTC days, ``?from=&to=``: the text as sent, read as days by
    :meth:`days` (:func:`parse_range`, its refusals) once the route has found what it asks
    about, so an unknown image is a 404 before its range is a 400."""

    model_config = QUERY

    from_: Annotated[str | None, Field(alias="from",
                                       description="First UTC day (default: 29 days before to).",
                                       json_schema_extra={"format": "date"})] = None
    to: Annotated[str | None, Field(description="Last UTC day, included (default today).",
                                    json_schema_extra={"format": "date"})] = None

    def days(self, clock: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """The range's first day and the day after its last (:func:`parse_range`)."""
        return parse_range(self.from_, self.to, clock)


class Served(Answer):
    """Answers that sent the bytes, and the bytes sent."""

    requests: Annotated[int, Field(ge=0)]
    bytes: Annotated[int, Field(ge=0)]


class ServedDay(Served):
    """One day of an image's delivery numbers, and each file's."""

    day: Annotated[str, Field(json_schema_extra={"format": "date"})]
    by_file: Annotated[dict[str, Served], Field(
        description="By file: <variant or rendition>.<format>, after ~<version>/ for a file of a "
                    "version the image was replaced with or edited into (as its URLs name it).")]


class DeliverySeries(Served):
    """One image's delivery numbers per day over a range, its totals and when it was last served."""

    image: ObjectIdText
    bucket: str
    days: list[ServedDay]
    last_served: Annotated[str | None, Field(json_schema_extra={"format": "date-time"})]


def file_key(name: str, fmt: str, version: str) -> str:
    """A file's key in a day's ``by_file``: ``<name>.<format>``, after ``~<version>/`` once the
    image was replaced (as its URLs name it), so two versions' files are never one entry."""
    return f"~{version}/{name}.{fmt}" if version else f"{name}.{fmt}"


def daily(db: Database[Document], bucket: str, image: Any, start: dt.datetime,
          end: dt.datetime) -> dict[str, Any]:
    """One image's requests and bytes per day (every day of ``[start, end)``, zeros included),
    by file, and its totals and last served date: the per-image chart's data."""
    days: dict[str, dict[str, Any]] = {}
    cursor = start
    while cursor < end:
        name = cursor.date().isoformat()
        days[name] = {"day": name, "requests": 0, "bytes": 0, "by_file": {}}
        cursor += dt.timedelta(days=1)
    for row in series(db, bucket, image, start, end):
        slot = days.get(row["day"].date().isoformat())
        if slot is None:
            continue
        slot["requests"] += row["requests"]
        slot["bytes"] += row["bytes"]
        file = file_key(row["name"], row["format"], row.get("version") or "")
        slot["by_file"][file] = {"requests": row["requests"], "bytes": row["bytes"]}
    totals = served_totals(db, bucket, image) or {}
    last = totals.get("last_served")
    served = None if last is None else (last if last.tzinfo else last.replace(tzinfo=dt.UTC)).isoformat()
    return DeliverySeries(image=str(image), bucket=ALIASES.get(bucket, bucket),
                          days=[ServedDay(**day) for day in days.values()],
                          requests=int(totals.get("requests") or 0), bytes=int(totals.get("bytes") or 0),
                          last_served=served).answer()


class Deliveries:
    """The delivery numbers as the admin's and the builder's reports read them: the library
    door's (``avenue.media``) interface to this module, bound to a database (the route records
    them, :func:`record`; the factory ensures their indexes, ``avenue.media.wiring``)."""

    # A report's query of days and one image's series, reached through the class (one name
    # through the door; AppMedia.deliveries is one).
    DayRange: TypeAlias = DayRange
    Series: TypeAlias = DeliverySeries

    def __init__(self, db: Database[Document]) -> None:
        self.db = db

    def top(self, start: dt.datetime, end: dt.datetime, *, by: str = "requests",
            limit: int = 20) -> list[dict[str, Any]]:
        """The image versions most served or heaviest in ``[start, end)`` (:func:`top`)."""
        return top(self.db, start, end, by=by, limit=limit)

    def daily(self, bucket: str, image: Any, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        """One image's requests and bytes per day, by file, and its totals (:func:`daily`)."""
        return daily(self.db, bucket, image, start, end)

    def last_served(self, keys: Iterable[tuple[str, Any]]) -> dict[tuple[str, Any], dt.datetime]:
        """When each of ``keys`` (bucket, image) was last served (:func:`last_served`)."""
        return last_served(self.db, keys)
