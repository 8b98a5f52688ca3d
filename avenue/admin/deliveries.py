"""Delivery numbers for admins and ops: the most served and heaviest images over a range,
one image's daily series, the library images never served, and the clean-up list (library
images no page or product uses and not served for N days). Reads only: the numbers are
written by every worker's flush (:mod:`avenue.media.store.deliveries`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from bson import ObjectId
from pydantic import Field
from pymongo.database import Database

from avenue import media
from avenue.media import BUILDER, Document, Library, UnusedImage, UrlSigner, image_object, referrers
from avenue.paging import Page, Window
from avenue.shapes import QUERY, WHOLE, Answer, ObjectIdText, OneOf, Refuse, Shape

MAX_UNUSED_DAYS = 3650


parse_range = media.deliveries.parse_range
DayRange = media.deliveries.DayRange


def _bucket_alias(bucket: str) -> str:
    return next((alias for alias, name in media.BUCKETS.items() if name == bucket), bucket)


ORDERS = ("requests", "bytes")  # what the top list orders by


class DeliveredImage(Answer):
    """An image's answers and bytes over a range, as this origin served them (a CDN's own
    answers are not in them)."""

    bucket: str
    image: ObjectIdText
    requests: Annotated[int, Field(ge=0)]
    bytes: Annotated[int, Field(ge=0)]
    filename: Annotated[str | None, Field(description="The image's file name (null: deleted since).")]
    thumbnail: Annotated[str | None, Field(description="Its thumb variant's URL (null: deleted since).")]


class TopDelivered(Answer):
    """The most served or heaviest images over a range of days, most first."""

    items: list[DeliveredImage]
    by: Annotated[str, OneOf(ORDERS)]
    from_: Annotated[str, Field(serialization_alias="from", json_schema_extra={"format": "date"})]
    to: Annotated[str, Field(json_schema_extra={"format": "date"})]


class TopQuery(DayRange):
    """The query of ``GET /api/admin/deliveries/top`` (:func:`top`): the range, the order, how many."""

    by: Annotated[str, OneOf(ORDERS), Field(description="Most served (default) or heaviest."),
                  Refuse("invalid_by", "by is requests or bytes.")] = "requests"
    limit: Annotated[int, Field(ge=1, le=100, description="How many (default 20)."), WHOLE,
                     Refuse("invalid_limit", "limit is a whole number from 1 to 100.")] = 20


def top(db: Database[Document], start: dt.datetime, end: dt.datetime, by: str, limit: int,
        signer: UrlSigner) -> TopDelivered:
    """The most served (or heaviest) images over ``[start, end)``, each named as ops know it:
    its file name and its thumbnail's URL (one read per bucket of the list; both None for an
    image gone since)."""
    rows = media.deliveries.top(db, start, end, by=by, limit=limit)
    ids: dict[str, list[ObjectId]] = {}
    for row in rows:
        ids.setdefault(row["bucket"], []).append(row["image"])
    found = {(bucket, image_id): image for bucket, bucket_ids in ids.items()
             for image_id, image in Library(db, bucket).get_many(bucket_ids).items()}
    items = []
    for row in rows:
        image = found.get((row["bucket"], row["image"]))
        shown = image_object(image, signer) if image is not None else None
        items.append(DeliveredImage(bucket=_bucket_alias(row["bucket"]), image=str(row["image"]),
                                    requests=row["requests"], bytes=row["bytes"],
                                    filename=shown["filename"] if shown else None,
                                    thumbnail=shown["variants"].get("thumb") if shown else None))
    return TopDelivered(items=items, by=by, from_=start.date().isoformat(),
                        to=(end - dt.timedelta(days=1)).date().isoformat())


def series(db: Database[Document], bucket: str, image_id: ObjectId, start: dt.datetime,
           end: dt.datetime) -> dict[str, Any]:
    """One image's requests and bytes per day (every day of the range, zeros included), by
    file, and its totals and last served date."""
    return media.deliveries.daily(db, bucket, image_id, start, end)


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).isoformat()


def never_served(db: Database[Document], window: Window,
                 signer: UrlSigner) -> tuple[list[dict[str, Any]], Page]:
    """One library page (newest first, the library's own paging) less the images ever served:
    a page may hold fewer than ``per_page`` items; ``next`` goes on through the library."""
    images, page = Library(db, BUILDER).page(window)
    served = media.deliveries.last_served(db, [(BUILDER, image.id) for image in images])
    return [image_object(image, signer) for image in images if (BUILDER, image.id) not in served], page


class CleanupQuery(Shape):
    """The query of ``GET /api/admin/cleanup`` (:func:`unused`)."""

    model_config = QUERY

    days: Annotated[int, Field(ge=1, le=MAX_UNUSED_DAYS,
                               description="Not served for this many days (default 90)."),
                    WHOLE, Refuse("invalid_days", f"days is 1 to {MAX_UNUSED_DAYS}.")] = 90


def unused(db: Database[Document], window: Window, days: int, clock: dt.datetime,
           signer: UrlSigner) -> tuple[list[dict[str, Any]], Page]:
    """The clean-up list: of one library page, the images no page or product uses (the
    registered References, as where-used asks) and not served for ``days`` days (never
    served included; 1 to :data:`MAX_UNUSED_DAYS`, as :class:`CleanupQuery` checks), each
    with its last served date."""
    images, page = Library(db, BUILDER).page(window)
    ids = [image.id for image in images]
    used = referrers(db).referenced(BUILDER, ids)
    served = media.deliveries.last_served(db, [(BUILDER, image_id) for image_id in ids])
    since = clock - dt.timedelta(days=days)
    items = []
    for image in images:
        last = served.get((BUILDER, image.id))
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=dt.UTC)
        if image.id in used or (last is not None and last >= since):
            continue
        items.append(image_object(image, signer, shape=UnusedImage, last_served=_iso(last)))
    return items, page
