"""Writes to several collections, in order, in one command where the database's dialect allows.

A cold rendition's store writes its chunks, its files document and its bucket's counters:
three collections, three commands, each a round trip and the client's CPU (what one command
instead saves: bench/results/mechanisms-2026-11-28-writes.md). MongoDB 8.0's ``bulkWrite`` command (pymongo's
``MongoClient.bulk_write``) takes writes to several collections in one command, executed in
order and stopping at the first that fails, as an ordered bulk write of one collection does.
Where the dialect has it (``Dialect.cross_collection_writes``: mongod 8.0 and later,
the embedded database), :func:`write_together` sends them so; elsewhere (an older mongod, mongomock) it
sends one command per run of inserts into one collection and one per run of updates of
one, in the same order, stopping at the same failure. Either way a failed write raises one
:class:`~pymongo.errors.BulkWriteError` whose ``writeErrors`` entry has the ``index`` of the
write in the caller's list: the writes before it were made, it and those after it were not,
so the callers handle both paths with one piece of code (``avenue.db.duplicate_key_write``
reads it as it reads an ordered bulk write's). An error that is not a write's (the server gone,
a timeout) is raised as it is: as with any write, what was written is then unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import InsertOne, UpdateOne, WriteConcern
from pymongo.database import Database
from pymongo.errors import BulkWriteError, ClientBulkWriteException, WriteError

from avenue.dialect import dialect_of

Document = dict[str, Any]


@dataclass(frozen=True)
class Write:
    """One write of :func:`write_together`: ``document`` inserted into ``collection``, or, with
    ``update``, the one document ``filter`` matches updated (``upsert``: inserted if none)."""

    collection: str
    document: Document | None = None
    filter: Document | None = None
    update: Document | None = None
    upsert: bool = False

    def model(self, namespace: str) -> InsertOne[Document] | UpdateOne:
        if self.document is not None:
            return InsertOne(self.document, namespace=namespace)
        return UpdateOne(self.filter or {}, self.update or {}, upsert=self.upsert, namespace=namespace)


def insert(collection: str, document: Document) -> Write:
    """The insert of ``document`` into ``collection``."""
    return Write(collection, document=document)


def update_one(collection: str, filter: Document, update: Document, *, upsert: bool = False) -> Write:
    """The update of the one document of ``collection`` that ``filter`` matches."""
    return Write(collection, filter=filter, update=update, upsert=upsert)


def write_together(db: Database[Document], writes: Sequence[Write], *,
                   write_concern: WriteConcern | None = None) -> None:
    """Make ``writes`` in order, stopping at the first that fails (a :class:`BulkWriteError`
    naming its ``index`` in ``writes``): one command where the dialect takes several
    collections' writes in one, else one per run of inserts into one collection and one per
    run of updates of one. ``write_concern``: the writes' (default: ``db``'s); inserted documents get their
    ``_id`` set, as pymongo's inserts do."""
    if not writes:
        return
    if dialect_of(db).cross_collection_writes:
        _in_one_command(db, writes, write_concern or db.write_concern)
    else:
        _one_by_one(db, writes, write_concern)


def _in_one_command(db: Database[Document], writes: Sequence[Write], concern: WriteConcern) -> None:
    try:
        db.client.bulk_write([write.model(f"{db.name}.{write.collection}") for write in writes], ordered=True,
                             write_concern=concern)
    except ClientBulkWriteException as error:
        if error.error is not None and not error.write_errors:  # the command's, not a write's
            if isinstance(error.error, BaseException):
                raise error.error from error
            raise
        details: Document = dict(error.details or {})
        failed = [{**entry, "index": entry.get("idx", 0)} for entry in details.get("writeErrors") or []]
        raise BulkWriteError({"writeErrors": failed, "nInserted": details.get("nInserted", 0),
                              "writeConcernErrors": details.get("writeConcernErrors") or []}) from error


def _one_by_one(db: Database[Document], writes: Sequence[Write], concern: WriteConcern | None) -> None:
    """One command per run of inserts into one collection (``insert_many``) and per run of
    updates of one (one update alone, several as one ordered ``bulk_write``)."""
    start = 0
    while start < len(writes):
        write = writes[start]
        inserting = write.document is not None
        end = start + 1
        while (end < len(writes) and writes[end].collection == write.collection
               and (writes[end].document is not None) == inserting):
            end += 1
        collection = db[write.collection] if concern is None else \
            db.get_collection(write.collection, write_concern=concern)
        try:
            if inserting:
                collection.insert_many([w.document for w in writes[start:end] if w.document is not None],
                                       ordered=True)
            elif end - start == 1:
                collection.update_one(write.filter or {}, write.update or {}, upsert=write.upsert)
            else:
                collection.bulk_write([UpdateOne(w.filter or {}, w.update or {}, upsert=w.upsert)
                                       for w in writes[start:end]], ordered=True)
        except BulkWriteError as error:
            entries = (error.details or {}).get("writeErrors") or [{}]
            raise _at(start + int(entries[0].get("index", 0)), dict(entries[0])) from error
        except WriteError as error:
            raise _at(start, dict(error.details or {"code": error.code, "errmsg": str(error)})) from error
        start = end


def _at(index: int, entry: Document) -> BulkWriteError:
    """A failure of the write at ``index`` of the caller's list, as an ordered bulk write's."""
    return BulkWriteError({"writeErrors": [{**entry, "index": index}], "writeConcernErrors": [],
                           "nInserted": 0})
