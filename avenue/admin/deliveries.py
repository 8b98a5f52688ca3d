"""Delivery numbers for admins and ops: the most served and heaviest images over a range,
one image's daily series, the library images never served, and the clean-up list (library
images no page or product uses and not served for N days). Reads only: the numbers are
written by every worker's flush (:mod:`avenue.media.store.deliveries`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from bson import ObjectId
from pydantic import Field

from avenue.media import AppMedia, Buckets, Deliveries, UrlSigner
from avenue.paging import Page, Window
from avenue.presentation.objects import UnusedImage, image_object
from avenue.shapes import QUERY, WHOLE, Answer, ObjectIdText, OneOf, Refuse, Shape

MAX_UNUSED_DAYS = 3650


def _bucket_alias(bucket: str) -> str:
    return Buckets.ALIASES.get(bucket, bucket)


ORDERS = ("requests", "bytes")  # what the top list orders by


class DeliveredImage(Answer):
    """One version of an image: its answers and bytes over a range, as this origin served them
    (a CDN's own answers are not in them). A replaced or edited image has a row per version
    served in the range: each counts the files of its own version."""

    bucket: str
    image: ObjectIdText
    version: Annotated[str, Field(description="The version served (as in its URLs, <id>~<version>); "
                                              "empty: the image as uploaded, before any replace or edit.")]
    current: Annotated[bool, Field(description="Whether it is the image's version now (false: an "
                                               "earlier one, or the image is deleted).")]
    requests: Annotated[int, Field(ge=0)]
    bytes: Annotated[int, Field(ge=0)]
    filename: Annotated[str | None, Field(description="The image's file name when this version was "
                                                      "served (null: not known, the image deleted since).")]
    thumbnail: Annotated[str | None, Field(description="Its thumb variant's URL, for the current version "
                                                       "only (null: an earlier version, or deleted since).")]


class TopDelivered(Answer):
    """The most served or heaviest images over a range of days, most first."""

    items: list[DeliveredImage]
    by: Annotated[str, OneOf(ORDERS)]
    from_: Annotated[str, Field(serialization_alias="from", json_schema_extra={"format": "date"})]
    to: Annotated[str, Field(json_schema_extra={"format": "date"})]


class TopQuery(Deliveries.DayRange):
    """The query of ``GET /api/admin/deliveries/top`` (:func:`top`): the range, the order, how many."""

    by: Annotated[str, OneOf(ORDERS), Field(description="Most served (default) or heaviest."),
                  Refuse("invalid_by", "by is requests or bytes.")] = "requests"
    limit: Annotated[int, Field(ge=1, le=100, description="How many (default 20)."), WHOLE,
                     Refuse("invalid_limit", "limit is a whole number from 1 to 100.")] = 20


def top(media: AppMedia, start: dt.datetime, end: dt.datetime, by: str, limit: int,
        signer: UrlSigner) -> TopDelivered:
    """The most served (or heaviest) image versions over ``[start, end)``, each named as ops
    know it: the current version by the image's file name and thumbnail's URL, an earlier one
    by the name it was served under, without a thumbnail (its files are gone); one read per
    bucket of the list."""
    rows = media.deliveries.top(start, end, by=by, limit=limit)
    ids: dict[str, list[ObjectId]] = {}
    for row in rows:
        ids.setdefault(row["bucket"], []).append(row["image"])
    found = {(bucket, image_id): image for bucket, bucket_ids in ids.items()
             for image_id, image in media.library(bucket).get_many(bucket_ids).items()}
    items = []
    for row in rows:
        image = found.get((row["bucket"], row["image"]))
        current = image is not None and image.version == row["version"]
        shown = image_object(image, signer) if current and image is not None else None
        filename = shown["filename"] if shown else (row["filename"] or None) if image is not None else None
        items.append(DeliveredImage(bucket=_bucket_alias(row["bucket"]), image=str(row["image"]),
                                    version=row["version"], current=current,
                                    requests=row["requests"], bytes=row["bytes"], filename=filename,
                                    thumbnail=shown["variants"].get("thumb") if shown else None))
    return TopDelivered(items=items, by=by, from_=start.date().isoformat(),
                        to=(end - dt.timedelta(days=1)).date().isoformat())


def series(media: AppMedia, bucket: str, image_id: ObjectId, start: dt.datetime,
           end: dt.datetime) -> dict[str, Any]:
    """One image's requests and bytes per day (every day of the range, zeros included), by
    file, and its totals and last served date."""
    return media.deliveries.daily(bucket, image_id, start, end)


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).isoformat()


def never_served(media: AppMedia, window: Window,
                 signer: UrlSigner) -> tuple[list[dict[str, Any]], Page]:
    """One library page (newest first, the library's own paging) less the images ever served:
    a page may hold fewer than ``per_page`` items; ``next`` goes on through the library."""
    images, page = media.library(Buckets.BUILDER).page(window)
    served = media.deliveries.last_served([(Buckets.BUILDER, image.id) for image in images])
    return [image_object(image, signer) for image in images
            if (Buckets.BUILDER, image.id) not in served], page


class CleanupQuery(Shape):
    """The query of ``GET /api/admin/cleanup`` (:func:`unused`)."""

    model_config = QUERY

    days: Annotated[int, Field(ge=1, le=MAX_UNUSED_DAYS,
                               description="Not served for this many days (default 90)."),
                    WHOLE, Refuse("invalid_days", f"days is 1 to {MAX_UNUSED_DAYS}.")] = 90


def unused(media: AppMedia, window: Window, days: int, clock: dt.datetime,
           signer: UrlSigner) -> tuple[list[dict[str, Any]], Page]:
    """The clean-up list: of one library page, the images no page or product uses (the
    app's owners of referring documents, as where-used asks) and not served for ``days`` days (never
    served included; 1 to :data:`MAX_UNUSED_DAYS`, as :class:`CleanupQuery` checks), each
    with its last served date."""
    images, page = media.library(Buckets.BUILDER).page(window)
    ids = [image.id for image in images]
    used = media.referrers().referenced(Buckets.BUILDER, ids)
    served = media.deliveries.last_served([(Buckets.BUILDER, image_id) for image_id in ids])
    since = clock - dt.timedelta(days=days)
    items = []
    for image in images:
        last = served.get((Buckets.BUILDER, image.id))
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=dt.UTC)
        if image.id in used or (last is not None and last >= since):
            continue
        items.append(image_object(image, signer, shape=UnusedImage, last_served=_iso(last)))
    return items, page
