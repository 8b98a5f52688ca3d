"""Grouping look-alikes: an original's near-duplicates (store/near_duplicates.py) and exact twins
(store/exact.py), looked up, linked (at once, or after the answer) and listed in groups."""

from __future__ import annotations

import logging
from typing import Any

from bson import ObjectId

from avenue.errors import BadRequest
from avenue.media.buckets import UPLOADS
from avenue.media.ingest.decode_budget import Reservation, decode_budget
from avenue.media.records import ExactGroup, Image, Near, NearGroup, is_image
from avenue.media.store import exact, near_duplicates
from avenue.media.store.library.shelf import Shelf
from avenue.paging import Window, decode_cursor, encode_cursor

log = logging.getLogger(__name__)


class Grouping:
    """Near-duplicates and exact duplicates of a bucket's originals."""

    def __init__(self, shelf: Shelf) -> None:
        self.shelf = shelf

    def near_owner(self, doc: dict[str, Any]) -> str | None:
        """Whose images may match ``doc``: in the uploads bucket each user's own only (one
        user never learns of another's images); everyone's elsewhere."""
        return (doc.get("metadata") or {}).get("owner") if self.shelf.bucket == UPLOADS else None

    def near_duplicates(self, image: Image) -> list[Near]:
        """The originals of this bucket that look like ``image`` (within
        ``near_hash.NEAR``), nearest first; never itself, never a trashed one."""
        doc = self.shelf.images.find_one({"_id": image.id})
        if doc is None or not is_image(doc):
            return []
        return [Near(self.shelf.image(m.doc), m.distance)
                for m in near_duplicates.near(self.shelf.db, self.shelf.bucket, doc,
                                              owner=self.near_owner(doc))]

    def link_near_duplicates(self, image_id: ObjectId) -> int:
        """Put the original ``image_id`` in a group with its near-duplicates (what an upload
        does; for images hashed later or whose upload's lookup failed, ``flask near-duplicates``):
        how many it has."""
        doc = self.shelf.images.find_one({"_id": image_id})
        return 0 if doc is None or not is_image(doc) else len(self.link(doc))

    def link(self, doc: dict[str, Any]) -> tuple[Near, ...]:
        """Look up the original ``doc``'s near-duplicates, group it with them and clear what it
        owed: the matches, nearest first (an answer names them as they are)."""
        matches = near_duplicates.near(self.shelf.db, self.shelf.bucket, doc, owner=self.near_owner(doc))
        near_duplicates.link(self.shelf.db, self.shelf.bucket, doc, matches)
        near_duplicates.settled(self.shelf.db, self.shelf.bucket, doc["_id"])
        return tuple(Near(self.shelf.image(m.doc), m.distance) for m in matches)

    def near_groups(self, window: Window, *, owner: str | None = None) -> tuple[list[NearGroup], str | None]:
        """Groups of near-duplicates, ``window.per_page`` of them after ``window.after`` (a
        previous answer's ``next``; numbered pages are not offered): the groups and the next
        cursor (None: the last page)."""
        if window.page != 1:
            raise BadRequest("Near-duplicate groups are listed with after=<next> only.",
                             code="invalid_pagination")
        after = decode_cursor(window.after, 1)[0] if window.after is not None else None
        if after is not None and not isinstance(after, ObjectId):
            raise BadRequest("This cursor was not handed out by this list.", code="invalid_cursor")
        found, last = near_duplicates.groups(self.shelf.db, self.shelf.bucket, after=after,
                                             limit=window.per_page, owner=owner)
        return ([NearGroup(g.label, [self.shelf.image(d) for d in g.docs]) for g in found],
                encode_cursor([last]) if last is not None else None)

    def exact_groups(self, window: Window) -> tuple[list[ExactGroup], str | None]:
        """Groups of exact duplicates (same bytes or same pixels, ``store/exact.py``), paged as
        :meth:`near_groups`."""
        after = self._group_cursor(window, "Duplicate")
        found, last = exact.groups(self.shelf.db, self.shelf.bucket, after=after, limit=window.per_page)
        return ([ExactGroup(g.label, g.kind, [self.shelf.image(d) for d in g.docs]) for g in found],
                encode_cursor([last]) if last is not None else None)

    def link_exact_duplicates(self, image_id: ObjectId) -> bool:
        """Put the original ``image_id`` in its exact group (after an upload's answer; ``flask
        near-duplicates`` for images hashed later or still owing it, ``metadata.exact_pending``):
        whether it has twins. Once the link ran (twins or none) the image owes it no more; a
        full-resolution decode the budget refuses leaves it owed (False: not linked now)."""
        doc = self.shelf.images.find_one({"_id": image_id})
        if doc is None or not is_image(doc):
            return False
        try:
            label = exact.link(self.shelf.db, self.shelf.bucket, doc, self._hold,
                               disabled=self.shelf.settings.disabled_formats)
        except exact.Refused:
            return False
        if doc["metadata"].get(exact.PENDING_FIELD):
            exact.settled(self.shelf.db, self.shelf.bucket, image_id)
        return label is not None

    def link_exact_later(self, docs: list[dict[str, Any]]) -> None:
        """Link the originals ``docs``, just written, to their exact twins after the answer (no
        answer names an exact group: store/exact.py, "After the answer"). Here only whether each
        has candidates (one indexed query); those that have are marked as owing the link (one
        update, so a worker that dies before the link leaves it to ``flask near-duplicates``), then
        linked by a job handed to the Media's ``later``: the full-resolution decodes, in this
        library's decode budget, happen there. Those without candidates owe and decode nothing."""
        owed = [doc["_id"] for doc in docs if exact.candidates(self.shelf.db, self.shelf.bucket, doc)]
        if not owed:
            return
        exact.owe(self.shelf.db, self.shelf.bucket, owed)

        def job() -> None:
            for image_id in owed:
                try:
                    self.link_exact_duplicates(image_id)
                except Exception:  # noqa: BLE001 - logged; it still owes the link: flask near-duplicates
                    log.exception("linking the exact twins of %s %s failed", self.shelf.bucket, image_id)

        self.shelf.media.later(job)

    def recheck_exact_groups(self) -> int:
        """Members of exact groups linked on the thumb's key alone whose full-resolution pixels
        differ leave their group (store/exact.py ``recheck``); how many."""
        return exact.recheck(self.shelf.db, self.shelf.bucket, self._hold,
                             disabled=self.shelf.settings.disabled_formats)

    def _hold(self, decoding: int, working: int) -> Reservation:
        """Bytes of the decode budget, as renders of stored originals take them."""
        settings = self.shelf.settings
        budget = decode_budget(settings.decode_budget_bytes)
        return budget.hold(decoding, working, settings.decode_wait_seconds)

    def _group_cursor(self, window: Window, what: str) -> ObjectId | None:
        if window.page != 1:
            raise BadRequest(f"{what} groups are listed with after=<next> only.", code="invalid_pagination")
        after = decode_cursor(window.after, 1)[0] if window.after is not None else None
        if after is not None and not isinstance(after, ObjectId):
            raise BadRequest("This cursor was not handed out by this list.", code="invalid_cursor")
        return after
