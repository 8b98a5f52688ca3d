"""An image's earlier versions, as its record lists them (``metadata.history``): what each was,
what changed to make it, and where its bytes are, so that any of them can be listed, compared
and restored for ``AVENUE_TRASH_DAYS`` after it stopped being current.

Every change in place (new bytes, edits, a focal point, named crops, a restore) switches the
record in one update (avenue/media/store/replace.py); that same update adds the version it
switches away from to this list. An entry is the version's recipe, not its files:

- ``v``: its version (8 hex digits, as in its URLs); ``since`` / ``replaced_at``: when it
  became current and when it stopped; ``keep_until``: ``replaced_at`` plus the trash's days;
- ``changed``: what changed from the version before it (``bytes``, ``edits``,
  ``focal_point``, ``crops``; ``upload`` for the first; none for a version made before
  versions were kept), ``restored_from`` for a restore;
- its ``source_sha256`` (the unedited original it was made from), ``edits``,
  ``focal_point``, ``crops``, and what described its picture (size, format, length);
- ``trash_id``: the trash copy that holds its unedited original once the image got other
  bytes (a replace's step 4 copies the old version there; every entry made from those bytes
  points at it). Without one, the image's own unedited original (its bytes, or its
  ``source`` while it is edited) is the version's.

A version is restorable while ``keep_until`` is ahead and its bytes are there (the image's,
or its trash copy, which ``gc`` purges after the same days). Entries past ``keep_until`` are
dropped by the next switch; at most :data:`MAX_HISTORY` are kept (the oldest go first). The
current version is never listed (a restore of it changes nothing).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from avenue.clock import maybe_utc
from avenue.media.ingest.edits import Edits, to_original
from avenue.media.ingest.focal import FocalPoint

#: Earlier versions an image lists at most (the oldest are dropped first).
MAX_HISTORY = 50
#: What can change from one version to the next, in the order the API lists them.
CHANGES = ("bytes", "edits", "focal_point", "crops")


def changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs between two versions' metadata (``source_sha256``, ``edits``,
    ``focal_point``, ``crops``)."""
    fields = {"bytes": "source_sha256", "edits": "edits", "crops": "crops"}
    found = {name for name, key in fields.items() if (before.get(key) or None) != (after.get(key) or None)}
    if not _same_point(_spot(before), _spot(after)):
        found.add("focal_point")
    return [name for name in CHANGES if name in found]


def _spot(meta: dict[str, Any]) -> FocalPoint | None:
    """A version's focal point as a point of its unedited original. Its stored coordinates are
    the edited picture's, so an edit or its undo moves them while the point stays on the same
    spot of the picture (the switch carries it through): compared as stored, every edit and
    every "back to the original" was listed as a new focal point too."""
    point = FocalPoint.from_metadata(meta.get("focal_point"))
    return None if point is None else to_original(point, Edits.from_metadata(meta.get("edits")))


def _same_point(one: FocalPoint | None, other: FocalPoint | None) -> bool:
    if one is None or other is None:
        return one is other
    # Each carry rounds to 4 decimals: a turn there and back is not a move.
    return abs(one.x - other.x) <= 0.002 and abs(one.y - other.y) <= 0.002


def made_by(meta: dict[str, Any]) -> list[str]:
    """What changed to make the version ``meta`` describes: as its switch wrote it; ``upload``
    for one never changed; none known for one changed before versions were kept."""
    found = meta.get("changed")
    if found:
        return list(found)
    return [] if meta.get("version") else ["upload"]


def entry(meta: dict[str, Any], version: str, *, since: dt.datetime, moment: dt.datetime, keep_days: float,
          length: int) -> dict[str, Any]:
    """The history entry of the version ``meta`` describes (``version``), replaced at ``moment``."""
    found = {
        "v": version, "since": since, "replaced_at": moment,
        "keep_until": moment + dt.timedelta(days=keep_days),
        "changed": made_by(meta),
        "source_sha256": meta.get("source_sha256", ""),
        "length": length,
    }
    for name in ("restored_from", "edits", "focal_point", "crops", "width", "height", "format",
                 "content_type", "filename"):
        if meta.get(name) is not None:
            found[name] = meta[name]
    return found


def after_switch(meta: dict[str, Any], old: dict[str, Any] | None, new_version: str, moment: dt.datetime, *,
                 trash_id: Any = None) -> list[dict[str, Any]]:
    """The history once ``new_version`` is current: ``old`` (the entry of the version it
    replaces; None when the trash is off) added, expired ones and the new one dropped; with
    ``trash_id`` (new bytes: the old version's copy in the trash) every entry made from the
    old bytes points at that copy."""
    old_source = meta.get("source_sha256", "")
    kept = []
    for item in meta.get("history") or []:
        if item.get("v") == new_version or (old is not None and item.get("v") == old["v"]):
            continue
        if (maybe_utc(item.get("keep_until")) or moment) <= moment:
            continue
        if trash_id is not None and item.get("trash_id") is None and item.get("source_sha256") == old_source:
            item = {**item, "trash_id": trash_id}
        kept.append(item)
    if old is not None:
        kept.append({**old, "trash_id": trash_id} if trash_id is not None else old)
    return kept[-MAX_HISTORY:]


def live(meta: dict[str, Any], moment: dt.datetime) -> list[dict[str, Any]]:
    """The earlier versions still kept at ``moment``, newest first."""
    return [item for item in reversed(meta.get("history") or [])
            if (maybe_utc(item.get("keep_until")) or moment) > moment]
