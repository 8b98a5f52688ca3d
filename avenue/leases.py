"""Leases in MongoDB: who alone may do a piece of work now, across workers and machines.

Three shapes, each a compare-and-set (an ``update_one`` whose filter holds what was read or
expected), never a read-then-write and never a findAndModify (that scans the whole
collection on the embedded database):

- :class:`Lease`: a lease document (or the lease fields of one) with an owner and an expiry.
  :meth:`~Lease.take` matches only a free, lapsed or already-ours lease (else inserts the
  document; of two inserts the unique ``_id`` lets one win), :meth:`~Lease.kept` renews it
  from a heartbeat thread while the work runs, :meth:`~Lease.release` gives it back, and one
  that is never renewed lapses and can be taken over. The holder's own writes filter on
  :meth:`~Lease.mine` (fencing): once another owner took the lease over, they match nothing.
  The status sweep (fields ``lease_owner``/``lease_until`` on its document) and the ops
  locks (``holder.run``/``until``, one document a command) keep their stored names.
- stamps (:func:`held`, :func:`stamp`, :func:`unstamp`): a lease that is one time field on a
  record others write too, e.g. ``metadata.deleting_at`` on a GridFS files document. Smaller
  than :class:`Lease` on purpose: the time it was taken is the owner's token (it releases and
  fences on that value), each reader decides itself how long it holds (the delete and
  replace leases check each other's with their own durations, and lists skip leased
  records), and a stamp is taken together with other fields' values read (a delete and a
  replace of one image exclude each other in one update). Its work is short: no heartbeat.
- :func:`take_turn`: one claim per period (the history sampler's slot), moved forward only
  if still behind, so exactly one of all instances gets each period; nothing to renew or
  give back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError

from avenue import background
from avenue.clock import maybe_utc, now

log = logging.getLogger(__name__)

Document = dict[str, Any]


def _nested(fields: Mapping[str, Any]) -> Document:
    """``{"a.b": 1}`` as the document ``{"a": {"b": 1}}`` (an insert takes no dotted paths)."""
    doc: Document = {}
    for path, value in fields.items():
        *parents, last = path.split(".")
        target = doc
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return doc


class Lease:
    """The lease ``key`` (a document ``_id`` of ``collection``) for ``owner``, ``seconds`` long.

    ``owner_field``/``until_field``: where the owner and the expiry are stored. ``record``:
    fields written with the owner when it is taken (who holds it, for the message of one who
    cannot); when it holds the owner field's parent (``holder`` for ``holder.run``), the owner
    is written through it. ``keep_document``: release unsets the lease's fields (the document
    holds more: the sweep's result) rather than deleting the document. ``insert``: how
    :meth:`take` inserts the lease document (an ``insert_one`` by default), raising
    ``DuplicateKeyError`` when it exists: a caller may send it in one command with writes of
    its own (a rendition's claim with the limits of cold renders, ``avenue.media.store.renditions``).
    """

    def __init__(self, collection: Collection[Document], key: Any, owner: str, seconds: float, *,
                 owner_field: str = "owner", until_field: str = "until",
                 record: Mapping[str, Any] | None = None, keep_document: bool = False,
                 insert: Callable[[Document], None] | None = None) -> None:
        self.collection, self.key, self.owner, self.seconds = collection, key, owner, seconds
        self.insert = insert
        self.owner_field, self.until_field = owner_field, until_field
        self.record = dict(record or {})
        self.keep_document = keep_document
        self.renewals = 0
        # Whether the last take inserted the document (there was none): see :meth:`take`.
        self.inserted = False
        # Set by :meth:`leave`: release leaves the document to lapse.
        self.left = False
        # The heartbeat's renewals and the holder's own writes to the document take turns.
        self.writing = threading.Lock()

    def mine(self) -> Document:
        """The filter of the lease document while it is ours (the holder's fenced writes)."""
        return {"_id": self.key, self.owner_field: self.owner}

    def _claim(self, moment: dt.datetime) -> Document:
        fields = {**self.record, self.until_field: moment + dt.timedelta(seconds=self.seconds)}
        if self.owner_field.split(".")[0] not in self.record:
            fields[self.owner_field] = self.owner
        return fields

    def take(self) -> bool:
        """Take the lease unless someone else holds a live one (then False).

        A lease whose document is deleted on release (not ``keep_document``) is usually
        taken on no document at all: the insert goes first, one command (a rendition's cold
        request paid two, an update that matched nothing and then the insert); only when the
        document exists is it taken over if free, lapsed or ours. A kept document is updated
        first, as it is usually there. Afterwards :attr:`inserted` says whether this take
        found no document at all (a holder whose finished work's lease is left to lapse,
        :meth:`leave`, relies on that: ``avenue.media.store.renditions``)."""
        self.inserted = False
        moment = now()
        claim = self._claim(moment)
        free = [{self.until_field: {"$exists": False}}, {self.until_field: None},
                {self.until_field: {"$lt": moment}}, {self.owner_field: self.owner}]

        def taken_over() -> bool:
            taken = self.collection.update_one({"_id": self.key, "$or": free}, {"$set": claim})
            return taken.matched_count == 1

        try:
            if self.keep_document and taken_over():
                return True
            (self.insert or self.collection.insert_one)({"_id": self.key, **_nested(claim)})
            self.inserted = True
            return True
        except DuplicateKeyError:
            pass  # the document exists: its lease may be free, lapsed or ours
        return not self.keep_document and taken_over()

    def renew(self) -> bool:
        """Push the expiry ``seconds`` from now; False when the lease is not ours any more."""
        with self.writing:
            until = now() + dt.timedelta(seconds=self.seconds)
            renewed = self.collection.update_one(self.mine(), {"$set": {self.until_field: until}})
        if renewed.matched_count == 1:
            self.renewals += 1
            return True
        return False

    def leave(self) -> None:
        """Make :meth:`release` a no-op: the work is done and the lease document is left to
        lapse (and to a TTL index) instead of being deleted, one write fewer; until it lapses
        nobody takes it, and whoever fails to take it looks for the work's result. For work
        whose result others look for before taking the lease (a stored rendition)."""
        self.left = True

    def release(self) -> None:
        """Give the lease back, if it is still ours (unless :meth:`leave` was called); a
        database error is logged (it lapses)."""
        if self.left:
            return
        try:
            if self.keep_document:
                fields = [self.owner_field, self.until_field, *self.record]
                self.collection.update_one(self.mine(), {"$unset": dict.fromkeys(fields, "")})
            else:
                self.collection.delete_one(self.mine())
        except PyMongoError:
            log.exception("releasing the lease %s failed (it lapses by itself)", self.key)

    @contextlib.contextmanager
    def kept(self, every: float, thread_name: str) -> Iterator[None]:
        """Renew the lease every ``every`` seconds from a thread while the body runs, whatever
        it is doing (a step with no write of its own must not let the lease lapse). A renewal
        that finds the lease taken over stops the heartbeat (the holder's next fenced write
        finds out too); one the database refuses is tried again at the next beat."""
        stopped = threading.Event()

        def beat() -> None:
            while not stopped.wait(every):
                try:
                    if not self.renew():
                        return
                except PyMongoError as error:
                    log.warning("lease %s not renewed (%s): tried again in %.0f s", self.key, error, every)

        thread = background.spawn(thread_name, beat)
        try:
            yield
        finally:
            stopped.set()
            thread.join(timeout=5)


# --- stamps: a lease that is a time field on a record ------------------------------------


def held(value: Any, lease: dt.timedelta, moment: dt.datetime) -> bool:
    """Whether a stamp taken at ``value`` (None: never taken) is still held at ``moment``."""
    return value is not None and (maybe_utc(value) or moment) >= moment - lease


def stamp(collection: Collection[Document], key: Any, field: str, seen: Mapping[str, Any],
          moment: dt.datetime) -> bool:
    """Set ``field`` of record ``key`` to ``moment`` if every field of ``seen`` still has the
    value read (the stamp itself among them): of two takers, one update matches and the
    other's finds the value changed."""
    taken = collection.update_one({"_id": key, **seen}, {"$set": {field: moment}})
    return taken.modified_count == 1


def unstamp(collection: Collection[Document], key: Any, field: str, at: dt.datetime) -> None:
    """Remove the stamp taken ``at``, unless it lapsed and someone else stamped it since."""
    collection.update_one({"_id": key, field: at}, {"$unset": {field: ""}})


# --- turns: one claim per period -----------------------------------------------------------


def take_turn(collection: Collection[Document], key: Any, slot: dt.datetime, owner: str,
              moment: dt.datetime) -> bool:
    """Claim the period starting at ``slot`` for ``owner`` unless it (or a later one) was
    claimed already; the document ``key`` holds ``slot``, ``owner`` and ``taken_at``."""
    fields = {"slot": slot, "owner": owner, "taken_at": moment}
    try:
        moved = collection.update_one({"_id": key, "slot": {"$lt": slot}}, {"$set": fields})
    except PyMongoError:
        return False
    if moved.matched_count == 1:
        return True
    try:
        collection.insert_one({"_id": key, **fields})  # the very first period
        return True
    except DuplicateKeyError:
        return False  # the document exists with this slot or a later one
