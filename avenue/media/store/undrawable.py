"""Renditions and variants of stored SVGs that could not be drawn (past the deadline, past
the memory allowance, or refused by librsvg): remembered, so that their next request is
answered at once instead of drawn again.

A raster draw of an SVG is stopped after ``AVENUE_SVG_DRAW_SECONDS``
(:mod:`avenue.media.ingest.svgdraw`), which frees its render slot; but a draw that never
finishes is never stored, so without a memory the same URL would take a slot for that long
on every request, in every worker, after every restart. So the failure is written to the
database, one document per rendition (its claim id: bucket, image, version, spec and format)
or per image version's pending variants, and every worker answers the next request for it
422 ``svg_too_complex`` without drawing (:class:`~avenue.errors.NotDrawable`). A draw that
librsvg refused (or died under) is remembered the same way, answered 422 ``invalid_svg``: it
fails the same way every time, and each try took a helper and a render slot.

Only a verdict on the SVG itself is remembered: the deadline is the draw's own CPU time and
its memory allowance (svgdraw.py), which no load on the machine changes; a draw starved on
the wall clock is answered 503 and never written here. A document names the deadline it
failed under and lasts :data:`REMEMBERED_SECONDS` (a TTL index removes it; the read checks
``until`` too, for a database without TTL sweeps): a draw that failed under a deadline raised
since is tried again then (or at once, its documents deleted: docs/operations.md), and the
document of an image deleted meanwhile goes by itself. Coordination, not data: written as a rendition's
claim is (:data:`WRITES`), never backed up or counted; its loss costs one more draw of at
most the deadline.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ASCENDING, IndexModel, WriteConcern
from pymongo.database import Database

from avenue.clock import now
from avenue.errors import CorruptImage, NotDrawable, SvgTooComplex, UnprocessableContent
from avenue.media.formats import VECTOR
from avenue.media.records import Document

#: The remembered failures: ``_id`` a rendition's claim id or ``variants/<bucket>/<id>~<version>``.
COLLECTION = "media_undrawable"
#: How a failure is written: acknowledged by the primary, no journal wait, as a rendition's
#: claim (avenue/media/store/renditions.py's CLAIM_WRITES says why).
WRITES = WriteConcern(w=1, j=False)
#: How long a failure is remembered: a day, so a URL of a file too costly to draw takes a
#: render slot for one deadline a day at most.
REMEMBERED_SECONDS = 24 * 3600


def drawn(fmt: str) -> bool:
    """Whether an original of the format ``fmt`` (its metadata's) is drawn, and so may be
    remembered here: an SVG. The others' renders ask nothing of this collection."""
    return fmt == VECTOR.name


def variants_key(bucket: str, image_id: Any, version: str) -> str:
    """The key of an image version's pending variants (drawn together, at one size)."""
    return f"variants/{bucket}/{image_id}~{version}"


#: The failures of a draw that are the SVG's own, and so remembered: too costly (time or
#: memory), or refused by librsvg. Not :class:`~avenue.errors.ServerBusy` (the machine's).
FAILURES = (SvgTooComplex, CorruptImage)


def check(db: Database[Document], key: str) -> None:
    """Raise the remembered failure when ``key``'s draw is remembered to have failed
    (one read by ``_id``)."""
    found = db[COLLECTION].find_one({"_id": key, "until": {"$gt": now()}})
    if found is not None:
        raise _refusal(found)


def remember(db: Database[Document], key: str, error: SvgTooComplex | CorruptImage) -> UnprocessableContent:
    """Write down that ``key``'s draw failed as ``error`` says (one of :data:`FAILURES`); the
    error to answer with (raise it)."""
    at = now()
    failure: dict[str, Any] = {"seconds": float(error.details.get("seconds") or 0), "at": at,
                               "until": at + dt.timedelta(seconds=REMEMBERED_SECONDS)}
    if isinstance(error, CorruptImage):
        failure.update(code=error.code, message=error.message[:500])
    db.get_collection(COLLECTION, write_concern=WRITES).update_one({"_id": key}, {"$set": failure},
                                                                   upsert=True)
    return _refusal(failure)


def _refusal(failure: Document) -> UnprocessableContent:
    if failure.get("code"):  # refused by librsvg: the same answer as its first draw
        message = str(failure.get("message") or "This SVG cannot be read.")
        return CorruptImage(message, code=str(failure["code"]))
    seconds = float(failure.get("seconds") or 0)
    return NotDrawable(f"This SVG cannot be drawn at this size within {seconds:g} s of CPU time and the "
                       "memory a draw may take; it is not drawn again for a while. Ask for a smaller "
                       "rendition, or upload a simpler SVG.",
                       seconds=seconds)


def indexes() -> list[IndexModel]:
    """The TTL index: a remembered failure goes :data:`REMEMBERED_SECONDS` after it was written."""
    return [IndexModel([("until", ASCENDING)], expireAfterSeconds=0, name="ttl")]
