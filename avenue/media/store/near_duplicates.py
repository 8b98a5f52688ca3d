"""Near-duplicates and colours of a bucket's originals, found by index (never a scan).

**Lookup** (:func:`near`): the 52 band keys of an image's hash and its bits' order
(``near_hash.probes``; 68 for a hash stored without the order) are one ``$in`` on the multikey
``phash_bands`` index of the bucket's files; at most
:data:`CANDIDATES` candidates come back (their hash and owner only), and the exact Hamming
distance keeps those within ``near_hash.NEAR``. Those are read whole, nearest first, a page of
``limit`` at a time, and kept only when their colours agree too (``near_hash.same_colours`` on
``metadata.colour_shares``: the hash is grey, so a product shot in red, blue and green is one
hash; an image stored before the shares keeps the hash's word alone until ``flask near-duplicates``
gives it its shares). Only the bucket's own records are asked:
trashed images live in the trash bucket and are never matched; another bucket's never either.

**At upload** (:class:`Lookup`): an upload's lookup runs beside the write of its original
(``background.beside``), from the hash validation computed and the id the original is
written under, so an upload waits for the longer of the two rather than their sum; on the
the embedded database, which runs one operation at a time, it begins once the writes are done
(beside them it only queued them behind its query). The
answer waits for it past its writes at most a twentieth of the time the store took so far
(:func:`wait_past_writes`: the lookup may make an answer at most 10 % slower, hashing included;
on the embedded database not at all, :data:`EMBEDDED_WAIT_SECONDS`): a lookup that
raises, or has not answered by then, names no matches (the answer leaves ``near_duplicates`` out: it
says nothing rather than "none"); one that answers later still links its groups. A store that
fails stops its lookup between two uploads' lookups and links nothing. Each query carries a
``maxTimeMS`` (:data:`QUERY_MS`): the server gives up a runaway lookup on its own.

**Groups** (:func:`link`, :func:`groups`): when an upload finds near-duplicates it takes the
group label (``metadata.near_group``) of its nearest match that has one, or the id of its
nearest match, and gives that label to every match that has none. The label is written only
where it is missing or null (a replace clears it), so a group, once labelled, is never
relabelled by a concurrent upload: two uploads at once may start two groups where one would
do (their members are still each other's matches in every lookup); no interleaving loses an
image or a label. A list of groups walks the ``near_group`` index a group at a time: a page
costs two index seeks per group, whatever the bucket's size.

**Grouping owed** (:data:`PENDING`): every write of a new hash (an upload's original, a
replace's new picture) also sets ``metadata.near_pending``, and only a lookup that answered
and linked its groups unsets it (:func:`settled`). An image whose lookup failed, or whose
process died between its write and its lookup, keeps the flag, and ``flask near-duplicates`` links
it later: a hash alone does not mean the image was ever compared.

**Colour** (:func:`colour_query`): the filter for the library list, one ``$in`` on the
``colour_cells`` index (the target's CIELAB cell and its neighbours). It is no part of a
lookup: its cells hold only the palette's colours covering a quarter of the picture (a
product on a backdrop rarely does) at a step twice the colour shares'.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import PyMongoError

from avenue import background
from avenue.dialect import dialect_of, threads_safe
from avenue.media.ingest import near_hash
from avenue.media.records import Document, images, is_image
from avenue.metrics import count_near_lookup

log = logging.getLogger(__name__)

CANDIDATES = 1000  # the most band matches one lookup reads (their hash and owner only)
LISTED = 10  # the nearest ones an answer names
GROUP_MEMBERS = 50  # the most images a group lists
NEAR_GROUP = "metadata.near_group"
PENDING_FIELD = "near_pending"  # metadata field: True from a new hash's write until its groups are linked
PENDING = f"metadata.{PENDING_FIELD}"
# What an upload's answer waits, past its own writes, for its lookup: WAIT_SHARE of the time
# the store took so far, at least WAIT_FLOOR_SECONDS and at most WAIT_SECONDS. The lookup is
# optional work: it may make an answer at most 10 % slower (measured: docs/performance.md,
# "Measurements behind the code"; bench/results/near-duplicates-2026-11-25-after-writes.md).
WAIT_SHARE = 0.05
WAIT_FLOOR_SECONDS = 0.005
WAIT_SECONDS = 1.0
# On the embedded database the lookup cannot run beside the writes, so any wait is added
# whole to the answer: it does not wait (bench/results/near-duplicates-2026-11-26-embedded-after.md).
# The console asks the image's near-duplicates when an answer leaves them out (near.js).
EMBEDDED_WAIT_SECONDS = 0.0
QUERY_MS = 5000  # each lookup query's maxTimeMS: the server abandons a runaway one
_NO_ID = ObjectId(b"\x00" * 12)  # below every label: the first page's bound (null labels are not ObjectIds)


@dataclass(frozen=True)
class Match:
    """A near-duplicate: its record and its Hamming distance."""

    doc: dict[str, Any]
    distance: int


def _hash_of(doc: dict[str, Any]) -> int | None:
    text = (doc.get("metadata") or {}).get("phash")
    return near_hash.parse_hash(text) if isinstance(text, str) else None


def _shares_of(doc: dict[str, Any]) -> list[int] | None:
    shares = (doc.get("metadata") or {}).get("colour_shares")
    return shares if isinstance(shares, list) else None


def near(db: Database[Document], bucket: str, doc: dict[str, Any], *, owner: str | None = None,
         limit: int = LISTED) -> list[Match]:
    """The originals of ``bucket`` within ``near_hash.NEAR`` of ``doc``'s hash whose colours
    agree with its own, nearest first (only ``owner``'s when given; never ``doc`` itself); none
    when it has no hash."""
    value = _hash_of(doc)
    if value is None:
        return []
    records = images(db, bucket)
    order = (doc.get("metadata") or {}).get("phash_order")
    keys = near_hash.probes(value, order if isinstance(order, str) else "")
    found = records.find({"metadata.phash_bands": {"$in": keys}},
                       {"metadata.phash": 1, "metadata.owner": 1, "metadata.role": 1}
                       ).limit(CANDIDATES).max_time_ms(QUERY_MS)
    close: list[tuple[int, ObjectId]] = []
    for candidate in found:
        meta = candidate.get("metadata") or {}
        if candidate["_id"] == doc["_id"] or not is_image(candidate):
            continue
        if owner is not None and meta.get("owner") != owner:
            continue
        other = _hash_of(candidate)
        if other is not None and (gap := near_hash.distance(value, other)) <= near_hash.NEAR:
            close.append((gap, candidate["_id"]))
    close.sort(key=lambda pair: (pair[0], str(pair[1])))
    mine = _shares_of(doc)
    matches: list[Match] = []
    # A page of the nearest at a time: usually one query, as before; a few more only where
    # colour variants of one shot fill the first page.
    for start in range(0, len(close), limit):
        page = close[start:start + limit]
        read = records.find({"_id": {"$in": [i for _, i in page]}}).max_time_ms(QUERY_MS)
        docs = {d["_id"]: d for d in read}
        matches.extend(Match(docs[i], gap) for gap, i in page
                       if i in docs and near_hash.same_colours(mine, _shares_of(docs[i])))
        if len(matches) >= limit:
            break
    return matches[:limit]


def link(db: Database[Document], bucket: str, doc: dict[str, Any], matches: list[Match]) -> ObjectId | None:
    """Put ``doc`` and its ``matches`` in one near-duplicate group (see the module docstring);
    the group's label, None without matches."""
    if not matches:
        return None
    labelled = next((m.doc["metadata"]["near_group"] for m in matches
                     if (m.doc.get("metadata") or {}).get("near_group") is not None), None)
    label = labelled if labelled is not None else matches[0].doc["_id"]
    records = images(db, bucket)
    for image_id in [doc["_id"], *(m.doc["_id"] for m in matches)]:
        # Missing or null (a replace clears it): never relabel a group.
        records.update_one({"_id": image_id, NEAR_GROUP: None}, {"$set": {NEAR_GROUP: label}})
    return label if isinstance(label, ObjectId) else None


def settled(db: Database[Document], bucket: str, image_id: Any) -> None:
    """``image_id``'s near-duplicates were looked up and linked: it owes no grouping any more."""
    images(db, bucket).update_one({"_id": image_id, PENDING: True}, {"$unset": {PENDING: ""}})


def _threads_unsafe(db: Database[Document]) -> bool:
    """Whether ``db`` may not be used from two threads (``Dialect.threads_safe``: mongomock,
    the tests' in-memory database): there a :class:`Lookup` runs on the caller's thread,
    before the writes."""
    return not threads_safe(db)


def _one_operation_at_a_time(db: Database[Document]) -> bool:
    """Whether no two operations overlap on ``db``'s server (``Dialect.concurrent_operations``:
    the embedded database, one lock); not known (the server cannot be asked): no, as the
    write that follows will fail anyway."""
    try:
        return not dialect_of(db).concurrent_operations
    except PyMongoError:
        return False


def wait_past_writes(store_took: float) -> float:
    """How long an answer whose store took ``store_took`` seconds until its writes were done
    waits for its lookup."""
    return min(WAIT_SECONDS, max(WAIT_FLOOR_SECONDS, WAIT_SHARE * store_took))


class Lookup:
    """The near-duplicate lookups of one store's uploads, begun beside its writes (see the
    module docstring): one job for them all, one upload after the other, as the writes go."""

    def __init__(self, db: Database[Document], bucket: str,
                 probes: list[tuple[dict[str, Any], str | None]], began: float | None = None) -> None:
        """Begin looking up each ``(document, owner)`` of ``probes`` (what :func:`near` takes:
        the original as it is or will be stored, and whose images may match it); ``began``:
        when the store began (``time.monotonic``; now by default), of which the answer waits
        for the lookup a share past the writes."""
        self.db, self.bucket, self.probes = db, bucket, probes
        self._began = time.monotonic() if began is None else began
        self._stopped = threading.Event()
        self._future: Future[list[list[Match]]] | None = None
        self._found: list[list[Match]] | None = None
        self._asked = any(_hash_of(doc) is not None for doc, _ in probes)
        self._after_writes = False
        if not self._asked:
            self._found = [[] for _ in probes]  # nothing hashed: nothing to ask
        elif _threads_unsafe(db):
            try:
                self._found = self._run()
            except Exception:  # noqa: BLE001 - logged; the answer names no matches
                log.exception("the near-duplicate lookup of an upload to %s failed", bucket)
        elif _one_operation_at_a_time(db):
            # The embedded database runs one operation at a time: beside the writes the
            # lookup only made them queue behind it. It begins once they are done, after the
            # answer (EMBEDDED_WAIT_SECONDS), and links its group when it ends.
            self._after_writes = True
        else:
            self._future = background.beside(self._run)

    def _run(self) -> list[list[Match]]:
        found = []
        for doc, owner in self.probes:
            if self._stopped.is_set():
                break  # the store failed: its request has gone on without us
            found.append(near(self.db, self.bucket, doc, owner=owner))
        return found

    def stop(self) -> None:
        """The store failed: no lookup that has not begun runs (the one running finishes its
        query, bounded by :data:`QUERY_MS`), and nothing found is linked."""
        self._stopped.set()
        if self._future is not None:
            self._future.cancel()
        if self._asked:
            count_near_lookup("stopped")

    def finish(self, created: list[dict[str, Any] | None]) -> list[list[Match] | None]:
        """Each upload's matches once its writes are done (``created``: the record of
        each upload this store created, None for one found stored already), its groups linked;
        None for every upload when the lookup raised or did not answer within
        :func:`wait_past_writes` (an answer that comes later still links the groups)."""
        found = self._found
        store_took = time.monotonic() - self._began
        if self._after_writes:
            self._future = background.beside(self._run)
        if self._future is not None:
            wait = EMBEDDED_WAIT_SECONDS if self._after_writes else wait_past_writes(store_took)
            try:
                found = self._future.result(timeout=wait)
            except FutureTimeout:
                if self._after_writes:  # the embedded database's way: not news
                    count_near_lookup("after")
                else:
                    log.info("the near-duplicate lookup of an upload to %s was not over %.3f s past "
                             "its writes: answered without it, linked when it ends", self.bucket, wait)
                    count_near_lookup("late")
                self._future.add_done_callback(lambda done: self._link_late(done, created))
                return [None for _ in self.probes]
            except Exception:  # noqa: BLE001 - logged; the answer names no matches
                log.exception("the near-duplicate lookup of an upload to %s failed", self.bucket)
                found = None
        if found is None or len(found) != len(self.probes):
            if self._asked:
                count_near_lookup("failed")
            return [None for _ in self.probes]
        if self._asked:
            count_near_lookup("answered")
        self._link(created, found)
        return list(found)

    def _link(self, created: list[dict[str, Any] | None], found: list[list[Match]]) -> None:
        for doc, matches in zip(created, found, strict=True):
            if doc is None or _hash_of(doc) is None:
                continue
            try:
                link(self.db, self.bucket, doc, matches)
                settled(self.db, self.bucket, doc["_id"])
            except Exception:  # noqa: BLE001 - the upload stands; its group waits for `flask near-duplicates`
                log.exception("linking the near-duplicates of %s in %s failed", doc["_id"], self.bucket)

    def _link_late(self, done: Future[list[list[Match]]], created: list[dict[str, Any] | None]) -> None:
        if done.cancelled() or self._stopped.is_set():
            return
        failure = done.exception()
        if failure is not None:
            log.error("the near-duplicate lookup of an upload to %s failed", self.bucket, exc_info=failure)
            return
        found = done.result()
        if len(found) == len(created):
            self._link(created, found)


@dataclass(frozen=True)
class Group:
    """Near-duplicates of one bucket: the group's label and its originals, oldest first."""

    label: ObjectId
    docs: list[dict[str, Any]]


def groups(db: Database[Document], bucket: str, *, after: ObjectId | None, limit: int,
           owner: str | None = None) -> tuple[list[Group], ObjectId | None]:
    """Up to ``limit`` groups with at least two originals, by label after ``after``; and the
    label to go on from (None: the last page). A group's members that were deleted since are
    gone from it; one left alone is not a group and is skipped, and so is one whose members
    are all one exact group (``store/exact.py`` lists those)."""
    records = images(db, bucket)
    found: list[Group] = []
    cursor = after
    # Each step: the next label on the index, then its members (two index seeks). Bounded:
    # a page never looks at more than a few times ``limit`` labels.
    for _ in range(limit * 4):
        query: dict[str, Any] = {NEAR_GROUP: {"$gt": cursor if cursor is not None else _NO_ID}}
        head = records.find_one(query, {NEAR_GROUP: 1}, sort=[(NEAR_GROUP, 1)])
        if head is None:
            return found, None
        cursor = head["metadata"]["near_group"]
        members = [d for d in records.find({NEAR_GROUP: cursor}).sort("_id", 1).limit(GROUP_MEMBERS)
                   if is_image(d) and (owner is None or d["metadata"].get("owner") == owner)]
        exact = {(d.get("metadata") or {}).get("exact_group") for d in members}
        if len(members) >= 2 and (len(exact) != 1 or None in exact):  # an exact group is listed there
            found.append(Group(cursor, members))
            if len(found) == limit:
                return found, cursor
    return found, cursor


def colour_query(hex_colour: str) -> dict[str, Any]:
    """The filter "mostly close to ``hex_colour``" (a colour covering at least
    ``near_hash.MOSTLY`` of the picture in its CIELAB cell or a neighbouring one)."""
    return {"metadata.colour_cells": {"$in": near_hash.cells_near(hex_colour)}}
