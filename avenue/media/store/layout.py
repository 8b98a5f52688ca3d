"""Which layout of the buckets a store is written in, and the refusal to run on an older one.

Layout 2 (issue 75): an image's record lives in ``<bucket>.images`` and every document of
``<bucket>.files`` is a whole GridFS file. A store written before keeps its records as the
``role: "original"`` documents of ``<bucket>.files`` (some of them chunkless heads), which
this code would neither list nor serve: ``flask --app avenue migrate-media`` converts it
(avenue/media/upkeep/migrate.py).

Chosen: a marker, one document ``{_id: "media_layout", version: 2}`` in ``media_layout``,
written by the first start of a store with no old record and by the migration's end; a start
(the indexes' setup, avenue/readiness.py) on a store without it whose buckets hold an old
record refuses, naming the command. Rather than a lazy migration on read: every read path
(lists, search, serving, the jobs) would need both layouts for as long as one old record may
be left, and a reader of the buckets with stock tools would see two rules. Rather than a probe
of the buckets at each start: with the marker, a start costs one read by ``_id``, whatever the
store's size; without it (an upgrade's first start) one ``find_one`` per bucket.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo.database import Database

from avenue.errors import StoreNotMigrated
from avenue.media.buckets import STORED
from avenue.media.records import IMAGE, Document

COLLECTION = "media_layout"
MARKER_ID = "media_layout"
VERSION = 2
COMMAND = "flask --app avenue migrate-media"


def marker(db: Database[Document]) -> dict[str, Any] | None:
    """The layout marker, if the store has one."""
    return db[COLLECTION].find_one({"_id": MARKER_ID})


def old_records(db: Database[Document]) -> list[str]:
    """The buckets whose ``.files`` still hold an image record of the old layout."""
    return [bucket for bucket in STORED if db[f"{bucket}.files"].find_one(IMAGE, {"_id": 1}) is not None]


def mark(db: Database[Document]) -> None:
    """Record that the store is in the current layout (idempotent)."""
    db[COLLECTION].update_one({"_id": MARKER_ID},
                              {"$set": {"version": VERSION},
                               "$setOnInsert": {"since": dt.datetime.now(dt.UTC)}}, upsert=True)


def ensure_current(db: Database[Document]) -> None:
    """Pass on a store in the current layout (marking an unmarked one that has no old record:
    a new store's first start); raise :class:`StoreNotMigrated` naming the command otherwise."""
    found = marker(db)
    if found is not None and found.get("version", 0) >= VERSION:
        return
    buckets = old_records(db)
    if not buckets:
        mark(db)
        return
    raise StoreNotMigrated(
        f"This database holds images stored before media layout {VERSION} (in "
        f"{', '.join(buckets)}): stop the app, run `{COMMAND}`, then start this version.",
        command=COMMAND, buckets=buckets)
