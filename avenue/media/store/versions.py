"""An image's versions: listed, drawn small, compared and restored.

The record lists its earlier versions (``metadata.history``, store/history.py); this module
reads that list and the bytes each version was made from: the image's own unedited original
when the version has the same bytes (an earlier focal point, edits or crops), else the copy a
replace kept in the trash (its ``source`` variant when it was edited, else its own bytes).

- *restore*: the version's recipe (bytes, edits, focal point, crops) goes through the same
  switch as any change in place (:func:`avenue.media.store.replace.restore`: the replace
  lease, the write order, the redirects), so it becomes a new current version and the one it
  replaces is kept as an earlier one; the image keeps its id and every reference.
- *compare*: both versions' pictures drawn at most 512 px (avenue/media/ingest/difference.py)
  and a heat map of what differs, stored once per pair in the renditions bucket (spec
  ``diff_<a>_<b>``, under the image's current version: removed by the next change of the
  image with its other renditions, by its delete, by ``gc`` as an orphan, and counted in and
  evicted by the renditions' byte budget like any rendition). Previews (``version_<v>``,
  320 px WebP) are stored the same way.

Refusals: an unknown or malformed version is :class:`VersionNotFound` (404), one past the
trash's days or whose trash copy was purged or restored as an image of its own is
:class:`VersionGone` (410), a comparison of a version with itself :class:`SameVersion` (400);
a restore that meets a delete or another change holding the image is ``ImageBusy`` (409).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from pymongo.database import Database

from avenue.clock import isoformat, maybe_utc, now
from avenue.errors import AvenueError, BadRequest, NotFound
from avenue.media.buckets import RENDITIONS, TRASH
from avenue.media.core import Media
from avenue.media.ingest import difference, pipeline
from avenue.media.ingest import edits as editing
from avenue.media.ingest.focal import FocalPoint
from avenue.media.ingest.images import Limits
from avenue.media.ingest.render import Rendered, render_spec
from avenue.media.records import Document, images
from avenue.media.store import history, renditions, replace, storage, trash
from avenue.media.transform import Spec

VERSION_ID = re.compile(r"[0-9a-f]{8}")
#: A preview's largest side, in pixels.
PREVIEW_SIDE = 320


class VersionNotFound(NotFound):
    """No such version of this image (or not a version id at all)."""

    code = "version_not_found"

    def __init__(self) -> None:
        super().__init__("This image has no version with this id.")


class VersionGone(AvenueError):
    """The version was kept, but no longer is: past the trash's days, or its bytes left the trash."""

    status, code = 410, "version_gone"

    def __init__(self) -> None:
        super().__init__("This version is no longer kept (past the trash's retention, or purged).")


class SameVersion(BadRequest):
    """A version compared with itself."""

    code = "same_version"

    def __init__(self) -> None:
        super().__init__("Compare two different versions.")


@dataclass(frozen=True)
class Version:
    """One version of an image, as the API lists it."""

    id: str
    current: bool
    since: dt.datetime | None
    replaced_at: dt.datetime | None
    keep_until: dt.datetime | None  # None: the current one
    changed: tuple[str, ...]
    restored_from: str | None
    size: int
    width: int | None
    height: int | None
    format: str | None

    def to_dict(self) -> dict[str, Any]:
        """The API's version object, without its preview URL (the caller's route gives it)."""
        return {"id": self.id, "current": self.current, "since": isoformat(self.since),
                "replaced_at": isoformat(self.replaced_at), "kept_until": isoformat(self.keep_until),
                "changed": list(self.changed), "restored_from": self.restored_from, "bytes": self.size,
                "width": self.width, "height": self.height, "format": self.format}


@dataclass(frozen=True)
class Comparison:
    """Two versions compared: the heat map's stored file, its size and the share changed."""

    before: str
    after: str
    file: dict[str, Any]
    width: int
    height: int
    share: float


def current_id(meta: dict[str, Any]) -> str:
    """The id of the version an image is at (never replaced: the one its bytes would have)."""
    return replace.current_version(meta)


def listing(db: Database[Document], bucket: str, doc: dict[str, Any]) -> list[Version]:
    """The record ``doc``'s current version, then its earlier ones still kept, newest first."""
    meta, moment = doc["metadata"], now()
    content = meta.get("content") or {}
    since = maybe_utc(meta.get("replaced_at")) or maybe_utc(doc.get("uploadDate"))
    found = [Version(current_id(meta), True, since, None, None, tuple(history.made_by(meta)),
                     meta.get("restored_from"), int(content.get("length") or doc.get("length") or 0),
                     meta.get("width"), meta.get("height"), meta.get("format"))]
    items = history.live(meta, moment)
    copies = {t["_id"]: t for t in images(db, TRASH).find(
        {"_id": {"$in": [i["trash_id"] for i in items if i.get("trash_id") is not None]}},
        {"metadata.trash.purge_after": 1, "metadata.role": 1})} if items else {}
    for item in items:
        keep_until = maybe_utc(item.get("keep_until"))
        if item.get("source_sha256") != meta.get("source_sha256"):
            copy = copies.get(item.get("trash_id"))
            if copy is None:
                continue  # its bytes left the trash: nothing to show or restore
            purge = maybe_utc(((copy.get("metadata") or {}).get("trash") or {}).get("purge_after"))
            keep_until = min(keep_until, purge) if keep_until and purge else keep_until or purge
        found.append(Version(str(item["v"]), False, maybe_utc(item.get("since")),
                             maybe_utc(item.get("replaced_at")), keep_until, tuple(item.get("changed") or ()),
                             item.get("restored_from"), int(item.get("length") or 0), item.get("width"),
                             item.get("height"), item.get("format")))
    return found


def find(meta: dict[str, Any], version_id: str) -> dict[str, Any] | None:
    """The history entry ``version_id`` of a record (None: the current one). ``VersionNotFound``
    when it has none such, ``VersionGone`` when it is past its days."""
    if not VERSION_ID.fullmatch(version_id or ""):
        raise VersionNotFound()
    if version_id == current_id(meta):
        return None
    for item in meta.get("history") or []:
        if item.get("v") == version_id:
            if (maybe_utc(item.get("keep_until")) or now()) <= now():
                raise VersionGone()
            return dict(item)
    raise VersionNotFound()


def original_of(db: Database[Document], doc: dict[str, Any], item: dict[str, Any]
                ) -> tuple[bytes, dict[str, Any]] | None:
    """The bytes and the document describing them (the trash copy's record, or its source
    file) of the unedited original ``item`` was made from, when they are not the image's own
    (None): its copy in the trash. ``VersionGone`` when that is gone."""
    if item.get("source_sha256") == doc["metadata"].get("source_sha256"):
        return None
    copy = trash.get(db, item.get("trash_id")) if item.get("trash_id") is not None else None
    if copy is None:
        raise VersionGone()
    found = replace.source_entry(copy["metadata"])
    if found is None:
        return replace.read_original(db, TRASH, copy), copy
    source = db[f"{TRASH}.files"].find_one({"_id": found[1]["id"]})
    if source is None:
        raise VersionGone()
    return storage.read_all(db, TRASH, source), source


def picture(db: Database[Document], bucket: str, doc: dict[str, Any], version_id: str,
            media: Media) -> bytes:
    """The picture of version ``version_id`` (its edits applied), at full size."""
    item = find(doc["metadata"], version_id)
    if item is None:
        return replace.read_original(db, bucket, doc)
    original = original_of(db, doc, item)
    data = original[0] if original is not None else \
        storage.read_all(db, bucket, replace.source_doc(db, bucket, doc))
    edits = editing.Edits.from_metadata(item.get("edits"))
    return data if edits is None else \
        editing.apply(data, edits, pipeline.stored_limits(len(data), media.settings))


def restore(db: Database[Document], bucket: str, doc: dict[str, Any], version_id: str, *,
            limits: Limits | None, refs: dict[str, Any] | None, delete_lease: dt.timedelta,
            media: Media) -> replace.Replaced | None:
    """Make version ``version_id`` of the record ``doc`` the current one again, as a new version
    (the current one then listed among the earlier ones); the current one itself: no change."""
    item = find(doc["metadata"], version_id)
    if item is None:
        return replace.Replaced(doc, False)
    return replace.restore(db, bucket, doc, item, original=original_of(db, doc, item), limits=limits,
                           refs=refs, delete_lease=delete_lease, media=media)


def _wanted(bucket: str, doc: dict[str, Any], key: str, fmt: str) -> renditions.Wanted:
    return renditions.Wanted(bucket, doc["_id"], doc["metadata"].get("version") or "", key, fmt)


def preview(db: Database[Document], bucket: str, doc: dict[str, Any], version_id: str,
            media: Media) -> dict[str, Any]:
    """The stored preview of version ``version_id`` (WebP, at most 320 px), made once."""
    find(doc["metadata"], version_id)  # refused before anything is read
    wanted = _wanted(bucket, doc, f"version_{version_id}", "webp")
    stored = renditions.find(db, wanted)
    if stored is not None:
        return stored
    data = picture(db, bucket, doc, version_id, media)
    rendered = render_spec(data, pipeline.stored_limits(len(data), media.settings),
                           Spec(PREVIEW_SIDE, PREVIEW_SIDE), "webp", FocalPoint())
    return renditions.keep(db, wanted, rendered, private=True)


def compare(db: Database[Document], bucket: str, doc: dict[str, Any], before: str, after: str,
            media: Media) -> Comparison:
    """The heat map of version ``after`` against ``before``, stored once per pair."""
    if before == after:
        find(doc["metadata"], before)  # an unknown id is still a 404
        raise SameVersion()
    find(doc["metadata"], before)
    find(doc["metadata"], after)
    wanted = _wanted(bucket, doc, f"diff_{before}_{after}", "png")
    stored = renditions.find(db, wanted)
    if stored is None:
        pictures = []
        for version_id in (before, after):
            data = picture(db, bucket, doc, version_id, media)
            pictures.append(difference.small(data, pipeline.stored_limits(len(data), media.settings)))
        made = difference.heat_map(pictures[0], pictures[1])
        stored = renditions.keep(db, wanted, Rendered(made.data, made.width, made.height, "png"),
                                 private=True, extra={"share": made.share})
    meta = stored.get("metadata") or {}
    return Comparison(before, after, stored, int(meta.get("width") or 0), int(meta.get("height") or 0),
                      float(meta.get("share") or 0.0))


def read(db: Database[Document], stored: dict[str, Any]) -> bytes:
    """A stored preview's or heat map's bytes."""
    return storage.read_all(db, RENDITIONS, stored)

