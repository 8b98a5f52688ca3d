"""The CDN purge outbox: deleting a public image queues the paths a CDN may have cached.

A public image is served with a year-long ``Cache-Control``; once deleted, a CDN keeps serving
its copy until told otherwise. When the app has a purge hook
(``AVENUE_CDN_PURGE_URL``, see :mod:`avenue.cdn`; what its :class:`~avenue.media.core.Media`'s
``purges`` say, handed to every removal), deleting a public original writes one
document to ``cdn_purges`` naming every path of it (the original and each variant, with and
without an explicit format). Removing an image's renditions on request (with the image, or
an earlier version's when it is replaced) writes one more naming each removed rendition's
paths, derived from its files document (:func:`rendition_paths`), and the paths of the named
presets that render it (``AVENUE_RENDITION_PRESETS``: ``<image path>/<preset>[.<ext>]`` serves
the same stored file as its options' URL). Not the budget's
evictions: an evicted rendition's URL stays valid and is rendered again with the same bytes.
The outbox is durable: a worker that dies after the delete leaves the document for another
worker's delivery loop. Without a hook nothing is written.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.database import Database

from avenue.clock import now
from avenue.media.buckets import ALIASES
from avenue.media.core import Purges
from avenue.media.formats import EXTENSION_OF, EXTENSIONS
from avenue.media.paths import media_path
from avenue.media.records import Document, is_image
from avenue.media.transform import clamped_by

OUTBOX = "cdn_purges"
# Undelivered purges are dropped after this long (the CDN's copies expire on their own).
OUTBOX_TTL = dt.timedelta(days=7)

def outbox_indexes() -> list[IndexModel]:
    return [IndexModel([("next_at", ASCENDING)], name="due"),
            IndexModel([("queued_at", ASCENDING)], expireAfterSeconds=int(OUTBOX_TTL.total_seconds()),
                       name="ttl")]


def paths_of(bucket: str, doc: dict[str, Any]) -> list[str]:
    """Every path under which a CDN may hold this original or one of its variants."""
    meta = doc.get("metadata") or {}
    base = media_path(bucket, doc["_id"], meta.get("version") or "")
    paths = [base]
    if meta.get("format") in EXTENSIONS:
        paths.append(f"{base}.{EXTENSIONS[meta['format']]}")
    for name, formats in (meta.get("variants") or {}).items():
        paths.append(f"{base}/{name}")
        paths += [f"{base}/{name}.{EXTENSIONS[fmt]}" for fmt in formats if fmt in EXTENSIONS]
    return paths


def rendition_paths(bucket: str, image_id: Any, docs: list[dict[str, Any]],
                    preset_names: Mapping[str, frozenset[str]] | None = None) -> list[str]:
    """Every path under which a CDN may hold one of these renditions of image ``image_id``:
    ``<image path>/<spec>.<ext>`` and, once per spec, ``<image path>/<spec>`` (the format
    negotiated by ``Accept``: one URL, whatever format a CDN cached under it); the same with
    the name of each preset that renders that spec instead of the spec. The files documents'
    metadata name the version, the spec and the format. Signed URLs carry their signature as a
    query; a CDN purging by path, or keying without the query, drops those too."""
    paths: list[str] = []
    for doc in docs:
        meta = doc.get("metadata") or {}
        if meta.get("visibility", "public") != "public" or not meta.get("spec"):
            continue
        image = media_path(bucket, image_id, meta.get("version") or "")
        # Its own key, the presets that render it, and the ladder widths clamped into it
        # (transform.clamp: w_1280 .. w_2560 of a 1000 px image are stored as w_1000).
        names = (meta["spec"], *sorted((preset_names or {}).get(meta["spec"], ())),
                 *(clamped_by(meta["spec"]) if meta.get("own_width") else ()))
        # And w_auto, which answers a width alone with this file for some client hints
        # (serve/http.py resolve_rendition): the CDN keys those copies on the hints, one path.
        auto = _AUTO.sub("w_auto", meta["spec"]) if _WIDTH_ALONE.fullmatch(meta["spec"]) else None
        ext = EXTENSION_OF.get(meta.get("format") or "")
        for name in (*names, *([auto] if auto else [])):
            base = f"{image}/{name}"
            if base not in paths:
                paths.append(base)
            if ext and f"{base}.{ext}" not in paths:
                paths.append(f"{base}.{ext}")
    return paths


# A spec w_auto may resolve to: a width, with a crop's name and a quality at most.
_WIDTH_ALONE = re.compile(r"(?:c_[a-z][a-z0-9_-]*,)?w_[0-9]+(?:,q_[0-9]+)?")
_AUTO = re.compile(r"w_[0-9]+")


def queue_renditions(db: Database[Document], bucket: str, image_id: Any, docs: list[dict[str, Any]],
                     purges: Purges) -> None:
    """Queue a purge of removed renditions' paths (nothing without a hook, for the trash, or
    when none is of a public image)."""
    if not purges.enabled or bucket not in ALIASES:
        return
    paths = rendition_paths(bucket, image_id, docs, purges.preset_names)
    if paths:
        moment = now()
        db[OUTBOX].insert_one({"bucket": bucket, "file_id": image_id, "paths": paths,
                               "queued_at": moment, "next_at": moment, "attempts": 0})


def queue(db: Database[Document], bucket: str, doc: dict[str, Any], purges: Purges) -> None:
    """Queue a purge of a deleted public original's paths (nothing without a hook)."""
    meta = doc.get("metadata") or {}
    if not purges.enabled or not is_image(doc) or meta.get("visibility", "public") != "public":
        return
    if bucket not in ALIASES:
        return  # the trash: never served, so never at a CDN (its purge went out when it was deleted)
    moment = now()
    db[OUTBOX].insert_one({"bucket": bucket, "file_id": doc["_id"], "paths": paths_of(bucket, doc),
                           "queued_at": moment, "next_at": moment, "attempts": 0})
