"""``flask --app avenue likeness``: give every image stored before near-duplicate detection its
perceptual hash and palette, and link it to its near-duplicates.

Originals without ``metadata.phash`` are read in batches in ``_id`` order (a keyset, like
``placeholders``: memory is one batch whatever the store's size, and a rerun, or a run after
one cut off, starts over cheaply: done images no longer match). Each gets its hash and
palette from its WebP thumb (read from GridFS; a few KB) in one single-document ``$set``, then
is linked to the near-duplicates already hashed (``Library.link_near_duplicates``: the
group labels only ever fill in what is missing, so running it twice changes nothing).

Originals whose thumb is missing or unreadable are counted and left (``fsck --repair``
renders lost variants again; run this afterwards).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pymongo.database import Database

from avenue.media import (
    BUCKETS,
    Library,
    compute_likeness,
    file_doc,
    originals_lacking,
    read_all,
    set_file_metadata,
)

BATCH = 200
ProgressFn = Callable[[str, int, int], None]


@dataclass
class LikenessReport:
    """What a run did, per bucket."""

    computed: dict[str, int] = field(default_factory=dict)
    linked: int = 0
    unreadable: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"computed": self.computed, "linked": self.linked, "unreadable": self.unreadable}

    def summary_line(self) -> str:
        total = sum(self.computed.values())
        return (f"likeness: {total} images given a hash and palette, {self.linked} with near-duplicates, "
                f"{len(self.unreadable)} without a readable thumb")


def _thumb(db: Database, bucket: str, original: dict[str, Any]) -> bytes | None:
    info = (((original.get("metadata") or {}).get("variants") or {}).get("thumb") or {}).get("webp")
    if not info:
        return None
    variant = file_doc(db, bucket, info["id"])
    return read_all(db, bucket, variant) if variant is not None else None


def backfill_likeness(db: Database, *, progress: ProgressFn | None = None) -> LikenessReport:
    """Compute the hash and palette of every original that has none, in every bucket, and link
    each to its near-duplicates."""
    report = LikenessReport()
    for name, bucket in BUCKETS.items():
        phase = f"Likeness ({name})"
        report.computed[name] = 0
        library = Library(db, bucket)
        after: Any = None
        done = 0
        while batch := originals_lacking(db, bucket, "phash", after, BATCH, {"metadata.variants.thumb": 1}):
            after = batch[-1]["_id"]
            for original in batch:
                thumb = _thumb(db, bucket, original)
                likeness = compute_likeness(thumb) if thumb is not None else None
                if likeness is None:
                    report.unreadable.append({"bucket": bucket, "id": str(original["_id"])})
                    continue
                set_file_metadata(db, bucket, original["_id"], likeness.as_metadata())
                report.computed[name] += 1
                report.linked += library.link_near_duplicates(original["_id"]) > 0
            done += len(batch)
            if progress:
                progress(phase, done, done + (BATCH if len(batch) == BATCH else 0))
    return report
