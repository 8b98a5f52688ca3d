"""Exact duplicates of a bucket's originals: the same bytes, or the same pixels, found by index.

**The key.** Every upload's near-duplicate hash (``ingest/near_hash.py``) carries ``metadata.pixels_sha256``,
the SHA-256 of the size and RGBA pixels of its WebP thumb (the picture drawn at most 200 px,
the same way for the same pixels): two files that decode to the same pixels share it (a
re-save with other metadata, another container), whatever their bytes. Images stored before
it existed get it from ``flask near-duplicates`` (``avenue/media/upkeep/backfill_near_duplicates.py``).

**Same pixels at full resolution.** The thumb's key only finds the candidates: two pictures
that differ in a detail a 200 px thumb cannot show (a dot, a price on a label) share it. So a
candidate is linked only when its original's full-resolution pixels are the same too
(``metadata.pixels_full_sha256``, :func:`ingest.near_hash.full_pixels_sha256`: each original
decoded once, in the decode budget, and the key kept on its record; an SVG's key is
its bytes). Candidates are rare (re-saves), so an upload without one decodes nothing more.

**Linking** (:func:`link`): one query on the ``pixels_sha256`` index finds the others with
the original's key (at most :data:`GROUP_MEMBERS`); it takes the label (``metadata.exact_group``)
of the first twin that has one, or the oldest id among them and itself (two uploads of the
same pixels linking at once choose the same), and the label is written only where it is
missing or null (as ``near_duplicates.link`` does: a group, once labelled, is never relabelled; a
replace clears it).

**After the answer** (:data:`PENDING`): no answer names an image's exact group, and the full
decodes take far longer than the answer (a 12 MP JPEG's, hundreds of ms), so an upload (and
a replace's or an edit's new picture) only asks the index, once its original is written,
whether it has candidates (:func:`candidates`); with some, it marks the original
``metadata.exact_pending`` (one update) and the link runs after the answer
(``pending.later``, as the pending variants are rendered). The link, having run (twins or
none), clears the flag (:func:`settled`); one the decode budget refused (:class:`Refused`),
or that met an original of a format turned off (``AVENUE_DISABLED_FORMATS``: its decoder
never runs, so that key stays unwritten), or whose worker died first, keeps it, and ``flask
near-duplicates`` links it later, as near-duplicates owe their grouping
(``near_duplicates.PENDING``). No index on the flag, as none on theirs: the command walks
the originals by ``_id`` for each (``scan.originals_flagged``), a scan it makes anyway.

**Groups** (:func:`groups`): the ``exact_group`` index walked a label at a time, as near
groups are. A group is *bytes* when its members share ``source_sha256`` (the same file: the
library dedupes by content per scope, so it happens across scopes or buckets brought in),
*pixels* otherwise. The near-duplicate list leaves out a group whose members are all one
exact group (``near_duplicates.groups``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pymongo.database import Database

from avenue.errors import ImageTooLarge, ServerBusy, UnsupportedImage
from avenue.media.ingest import near_hash
from avenue.media.records import IMAGE, Document, images, is_image
from avenue.media.store.replace import read_original

GROUP_MEMBERS = 50  # the most images a group lists
PIXELS = "metadata.pixels_sha256"
FULL = "metadata.pixels_full_sha256"
# What a candidate twin is read with: its group, its role, its full key, and how to read its bytes
# (its own, or its content file's once replaced or edited).
CANDIDATE_FIELDS = {"metadata.exact_group": 1, "metadata.role": 1, FULL: 1, "metadata.source_sha256": 1,
                    "metadata.content": 1, "length": 1, "chunkSize": 1}
EXACT_GROUP = "metadata.exact_group"
PENDING_FIELD = "exact_pending"  # metadata field: True from a write with candidates until its link ran
PENDING = f"metadata.{PENDING_FIELD}"
_NO_ID = ObjectId(b"\x00" * 12)


class Refused(Exception):
    """The decode budget refused a full-resolution decode (too small for it, or full), or the
    original's format is turned off (``AVENUE_DISABLED_FORMATS``: its decoder must not run):
    the key is unknown for now, which is not "no twin" (the link is still owed)."""


def _pixels(doc: dict[str, Any]) -> str | None:
    value = (doc.get("metadata") or {}).get("pixels_sha256")
    return value if isinstance(value, str) and value else None


def full_key(db: Database[Document], bucket: str, doc: dict[str, Any],
             hold: Callable[[int, int], Any], *, disabled: frozenset[str]) -> str | None:
    """The original ``doc``'s full-resolution pixel key (module docstring), computed once and
    kept on its record; None when it cannot be read (then it is linked to nothing).
    :class:`Refused` when the decode budget refuses it now, or its format is in ``disabled``
    (the formats turned off: nothing is written, the key is computed once it is on again)."""
    meta = doc.get("metadata") or {}
    known = meta.get("pixels_full_sha256")
    if isinstance(known, str) and known:
        return known
    try:
        data = read_original(db, bucket, doc)
    except (KeyError, OSError):  # a record whose bytes' file lacks chunks (storage.read_range)
        return None
    try:
        key = near_hash.full_pixels_sha256(data, hold, disabled)
    except (ImageTooLarge, ServerBusy, UnsupportedImage) as error:  # the budget, or a format off: not now
        raise Refused(f"{bucket} {doc['_id']}: {error}") from error
    if key is None:
        source = meta.get("source_sha256")
        key = f"bytes:{source}" if isinstance(source, str) and source else None
    if key is not None:
        images(db, bucket).update_one({"_id": doc["_id"]}, {"$set": {FULL: key}})
    return key


def candidates(db: Database[Document], bucket: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The other originals of ``bucket`` with the thumb's pixel key of ``doc`` (one query on
    the ``pixels_sha256`` index, at most :data:`GROUP_MEMBERS`), oldest first: its possible twins."""
    key = _pixels(doc)
    if key is None:
        return []
    found = images(db, bucket).find({PIXELS: key}, CANDIDATE_FIELDS).sort("_id", 1).limit(GROUP_MEMBERS)
    return [d for d in found if d["_id"] != doc["_id"] and is_image(d)]


def owe(db: Database[Document], bucket: str, image_ids: list[Any]) -> None:
    """Mark ``image_ids`` as owing their link (:data:`PENDING`), before it is left for later."""
    if image_ids:
        images(db, bucket).update_many({"_id": {"$in": image_ids}}, {"$set": {PENDING: True}})


def settled(db: Database[Document], bucket: str, image_id: Any) -> None:
    """``image_id``'s link ran (twins or none): it owes none any more."""
    images(db, bucket).update_one({"_id": image_id, PENDING: True}, {"$unset": {PENDING: ""}})


def link(db: Database[Document], bucket: str, doc: dict[str, Any],
         hold: Callable[[int, int], Any], *, disabled: frozenset[str]) -> ObjectId | None:
    """Put the original ``doc`` in one exact group with the originals of ``bucket`` that have
    its pixels, at full resolution; the group's label, None when it has no twin. ``hold``
    reserves a full-resolution decode in the decode budget (:func:`full_key`; :class:`Refused`
    when it refuses one, or a format in ``disabled`` is met: nothing was linked)."""
    found = candidates(db, bucket, doc)
    if not found:
        return None
    records = images(db, bucket)
    mine = full_key(db, bucket, doc, hold, disabled=disabled)
    twins = [t for t in found
             if mine is not None and full_key(db, bucket, t, hold, disabled=disabled) == mine]
    if not twins:
        return None
    labelled = next((t["metadata"]["exact_group"] for t in twins
                     if t["metadata"].get("exact_group") is not None), None)
    # Unlabelled: the oldest id of them all, which two uploads linking at once both choose.
    label = labelled if labelled is not None else min(doc["_id"], twins[0]["_id"])
    for image_id in [doc["_id"], *(t["_id"] for t in twins)]:
        records.update_one({"_id": image_id, EXACT_GROUP: None}, {"$set": {EXACT_GROUP: label}})
    return label if isinstance(label, ObjectId) else None


def recheck(db: Database[Document], bucket: str, hold: Callable[[int, int], Any], *,
            disabled: frozenset[str]) -> int:
    """Check the groups linked before the full-resolution key (members without it): the
    members are split by their full-resolution pixels; the first member's part keeps the
    label, another part of two or more takes its oldest id (as :func:`link` labels), and a
    member alone (or unreadable) leaves, its label cleared. A group with a member the decode
    budget refuses now is left as it is (:class:`Refused` is not "unreadable"): that member
    still lacks its key, so the next run checks the group again. How many members changed group."""
    records = images(db, bucket)
    stale = {EXACT_GROUP: {"$ne": None}, FULL: {"$exists": False}, **IMAGE}
    changed = 0
    for label in records.distinct(EXACT_GROUP, stale):
        members = list(records.find({EXACT_GROUP: label, **IMAGE}, CANDIDATE_FIELDS)
                       .sort("_id", 1).limit(GROUP_MEMBERS))
        try:
            keys = [full_key(db, bucket, member, hold, disabled=disabled) for member in members]
        except Refused:
            continue
        parts: dict[Any, list[ObjectId]] = {}
        for member, key in zip(members, keys, strict=True):
            alone = ("unreadable", member["_id"])
            parts.setdefault(key if key is not None else alone, []).append(member["_id"])
        for ids in parts.values():
            new = None if len(ids) < 2 else label if ids[0] == members[0]["_id"] else ids[0]
            if new != label:
                changed += records.update_many({"_id": {"$in": ids}, EXACT_GROUP: label},
                                             {"$set": {EXACT_GROUP: new}}).modified_count
    return changed


@dataclass(frozen=True)
class Group:
    """Exact duplicates of one bucket: the label, ``bytes`` or ``pixels``, the originals (oldest first)."""

    label: ObjectId
    kind: str
    docs: list[dict[str, Any]]


def kind_of(docs: list[dict[str, Any]]) -> str:
    """``bytes`` when every member is the same file, ``pixels`` otherwise."""
    sources = {(d.get("metadata") or {}).get("source_sha256") for d in docs}
    return "bytes" if len(sources) == 1 and None not in sources else "pixels"


def groups(db: Database[Document], bucket: str, *, after: ObjectId | None,
           limit: int) -> tuple[list[Group], ObjectId | None]:
    """Up to ``limit`` groups of at least two originals, by label after ``after``; and the
    label to go on from (None: the last page). Members deleted since are gone from a group."""
    records = images(db, bucket)
    found: list[Group] = []
    cursor = after
    for _ in range(limit * 4):
        head = records.find_one({EXACT_GROUP: {"$gt": cursor if cursor is not None else _NO_ID}},
                              {EXACT_GROUP: 1}, sort=[(EXACT_GROUP, 1)])
        if head is None:
            return found, None
        cursor = head["metadata"]["exact_group"]
        members = [d for d in records.find({EXACT_GROUP: cursor}).sort("_id", 1).limit(GROUP_MEMBERS)
                   if is_image(d)]
        if len(members) >= 2:
            found.append(Group(cursor, kind_of(members), members))
            if len(found) == limit:
                return found, cursor
    return found, cursor
