"""Effects: what follows a write to GridFS, in one place.

The store writes and deletes files and describes what it did as one :class:`Changes`
record; :func:`apply` is the only code that turns such a record into its effects, in this
order:

1. **cache tombstones** (``media_deletions``, :mod:`.invalidation`): this process's caches
   evicted at once, every other worker's soon. A delete applies its tombstones on their own
   *before* it deletes (dated ``lasting`` ahead), so a worker that reloads a document in
   between evicts it again once the delete has landed;
2. **counters** then **facets** of each file set written or removed, in the order the store
   listed them (:mod:`.counters`, :mod:`.facets`), always after the write succeeded, never
   before: a crash in between is drift the status sweep's reconciliation corrects. A write
   may carry its counters' update in its own command, after its files (``FileSet.counted``:
   a rendition's store, where the dialect takes several collections' writes in one); then
   the server makes it after the files or not at all, and it is not made again here;
3. **local evictions** of what was just removed (no database write);
4. **CDN purges** of deleted public originals and of removed renditions of public images
   (:mod:`.purge`, only with a hook configured).

Each step is idempotent or a counted delta, so a retried write applying its record again
leaves at most drift the reconciliation settles.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pymongo.database import Database

from avenue.media.core import NO_PURGES, Purges
from avenue.media.effects import counters, facets, invalidation, purge
from avenue.media.records import Document


@dataclass(frozen=True)
class FileSet:
    """Files or image records written to or removed from one bucket: their documents (at
    least length, role, folder and tags; a record counts as an original, a files document as a
    file: ``counters.figures``) and how many chunks went with them. ``removed``: for a delete,
    how many of them it removed itself (a concurrent delete may have taken the rest)."""

    bucket: str
    docs: list[dict[str, Any]]
    chunks: int
    removed: int | None = None
    # Written: its counters were updated by the write itself, in its own command after the
    # files (``storage.put_files``'s ``counted``), so :func:`apply` does not count it again.
    counted: bool = False


@dataclass(frozen=True)
class Tombstone:
    """Every worker's cache must forget these files of ``bucket``; ``lasting``: re-read for
    that long (a delete's tombstone, written before it deletes)."""

    bucket: str
    file_ids: list[Any]
    lasting: dt.timedelta = dt.timedelta(0)


@dataclass
class Changes:
    """What one write or delete changed, for :func:`apply`."""

    written: list[FileSet] = field(default_factory=list)
    removed: list[FileSet] = field(default_factory=list)
    # Counter deltas with no file set of their own (a replaced head's chunks): (bucket, change).
    uncounted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    tombstones: list[Tombstone] = field(default_factory=list)
    evicted: list[tuple[str, list[Any]]] = field(default_factory=list)
    purged: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (bucket, original's doc)
    # Renditions removed with their image (deleted or replaced): (bucket, image id, their files docs).
    purged_renditions: list[tuple[str, Any, list[dict[str, Any]]]] = field(default_factory=list)

    def __add__(self, other: Changes) -> Changes:
        return Changes(self.written + other.written, self.removed + other.removed,
                       self.uncounted + other.uncounted, self.tombstones + other.tombstones,
                       self.evicted + other.evicted, self.purged + other.purged,
                       self.purged_renditions + other.purged_renditions)


def apply(db: Database[Document], changes: Changes, purges: Purges = NO_PURGES) -> None:
    """Apply what a write changed: tombstones, counters and facets, local evictions, purges
    (in that order; see the module doc). ``purges``: what the app queues for its CDN (its
    Media's); the removals that purge pass it, the other writes need not."""
    for stone in changes.tombstones:
        invalidation.invalidate(db, stone.bucket, stone.file_ids, lasting=stone.lasting)
    for written in changes.written:
        if not written.counted:
            counters.record(db, written.bucket, counters.figures(written.docs, chunks=written.chunks))
        facets.record(db, written.bucket, written.docs)
    for bucket, change in changes.uncounted:
        counters.record(db, bucket, change, sign=-1)
    for gone in changes.removed:
        _record_removed(db, gone)
    for bucket, file_ids in changes.evicted:
        invalidation.evict_here(bucket, file_ids)
    for bucket, doc in changes.purged:
        purge.queue(db, bucket, doc, purges)
    for bucket, image_id, docs in changes.purged_renditions:
        purge.queue_renditions(db, bucket, image_id, docs, purges)


def _record_removed(db: Database[Document], gone: FileSet) -> None:
    """Take a delete off the counters: exactly when it removed every file it read (the usual
    case); when a concurrent delete removed some, the counts are exact and the bytes an even
    share, and the facets are left to the reconciliation."""
    removed = len(gone.docs) if gone.removed is None else gone.removed
    change = counters.figures(gone.docs, chunks=gone.chunks)
    if removed != len(gone.docs):
        share = removed / len(gone.docs) if gone.docs else 0.0
        change.update(files=round(change["files"] * share), originals=round(change["originals"] * share),
                      bytes=round(change["bytes"] * share))
    counters.record(db, gone.bucket, change, sign=-1)
    if removed == len(gone.docs):
        facets.record(db, gone.bucket, gone.docs, sign=-1)
