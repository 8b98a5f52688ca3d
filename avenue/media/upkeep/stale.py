"""The walk of the re-render job: what was made with other settings than today's, rendered again.

After a change of the variant table (avenue/media/ingest/variants.py), of a format's default
quality or encoder settings (avenue/media/formats.py), the variants already stored are stale:
each records the recipe that made it (avenue/media/store/rerender.py). This walk goes through
the buckets' image records (``<bucket>.images``) by ``_id`` through one cursor each and renders
every stale variant again from its original (never written), a new file switched in place of
the old one, so every URL answers throughout; then it walks the renditions on request and
removes the stale ones, which their next request renders again (a changed preset names other
renditions: the old ones are no longer asked for and leave with the byte budget's eviction,
``AVENUE_RENDITION_BUDGET_BYTES``; removing only frees bytes, so the walk never takes the
renditions past their budget).

Bounds: ``limit`` images re-rendered per run; ``cpu_share`` (0 < share <= 1): after each
image's render of ``t`` seconds the walk sleeps ``t * (1 - share) / share``, so it keeps about
that share of one core (the renders themselves use a thread per core, as uploads do). After
each image the position is saved (``ops_checkpoints``, ``_id`` ``rerender``); ``resume`` starts
after it (an interrupted run goes on where it stopped; without it, a run starts over, which only
reads what is no longer stale). A finished run clears the checkpoint. The command, the API's
background run and the one-at-a-time lock are avenue/ops/rerender.py's.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pymongo.database import Database

from avenue.db import Document
from avenue.media.buckets import BUCKETS, RENDITIONS
from avenue.media.core import Media
from avenue.media.records import IMAGE
from avenue.media.store.renditions import is_stale, remove_stale
from avenue.media.store.rerender import BeforeSwitch, rerender, stale_of
from avenue.media.store.scan import count_files, count_images, walk_files, walk_images
from avenue.media.upkeep.backfill import ProgressFn

NAME = "rerender"  # the checkpoint's _id (and the ops lock's name, avenue/ops/rerender.py)
CHECKPOINTS = "ops_checkpoints"
BATCH = 100  # records (or renditions' files) read per cursor fetch; renditions removed per removal
# The buckets a walk may name, in the order it walks them: the originals' and the renditions'.
RERENDER_BUCKETS = (*BUCKETS.values(), RENDITIONS)


@dataclass
class RerenderReport:
    """What one run found and did."""

    dry_run: bool
    cpu_share: float
    images_checked: int = 0
    images_rerendered: int = 0
    variants_rerendered: int = 0
    renditions_checked: int = 0
    renditions_removed: int = 0
    render_seconds: float = 0.0
    slept_seconds: float = 0.0
    seconds: float = 0.0
    stopped_at_limit: bool = False
    #: One entry per stale variant (a dry run: what would be done) or stale rendition.
    stale: list[dict[str, Any]] = field(default_factory=list)

    @property
    def variants_per_second(self) -> float:
        return self.variants_rerendered / self.seconds if self.seconds > 0 else 0.0

    @property
    def counts(self) -> dict[str, int]:
        return {"images_checked": self.images_checked, "images_rerendered": self.images_rerendered,
                "variants_rerendered": self.variants_rerendered,
                "renditions_checked": self.renditions_checked,
                "renditions_removed": self.renditions_removed, "stale": len(self.stale)}

    def summary(self) -> dict[str, Any]:
        return {**self.counts, "dry_run": self.dry_run, "cpu_share": self.cpu_share,
                "render_seconds": round(self.render_seconds, 3),
                "slept_seconds": round(self.slept_seconds, 3),
                "seconds": round(self.seconds, 3), "variants_per_second": round(self.variants_per_second, 2),
                "stopped_at_limit": self.stopped_at_limit, "stale_items": self.stale}

    def summary_line(self) -> str:
        if self.dry_run:
            variants = sum(1 for item in self.stale if item["kind"] == "variant")
            return (f"would re-render {variants} stale variants and remove "
                    f"{len(self.stale) - variants} stale renditions ({self.images_checked} images, "
                    f"{self.renditions_checked} renditions checked)")
        limit = "; stopped at the limit (run again with --resume)" if self.stopped_at_limit else ""
        return (f"re-rendered {self.variants_rerendered} variants of {self.images_rerendered} images "
                f"({self.images_checked} checked), removed {self.renditions_removed} stale renditions "
                f"in {self.seconds:.1f} s ({self.variants_per_second:.1f} variants/s, "
                f"{self.render_seconds:.1f} s rendering, {self.slept_seconds:.1f} s yielded){limit}")


def checkpoint(db: Database[Document]) -> dict[str, Any] | None:
    """Where the last run that did not finish stopped (None once a run finished)."""
    return db[CHECKPOINTS].find_one({"_id": NAME})


def rerender_stale(db: Database[Document], *, dry_run: bool = False, buckets: list[str] | None = None,
                   limit: int | None = None, cpu_share: float = 1.0, resume: bool = False,
                   progress: ProgressFn | None = None, clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep, before_switch: BeforeSwitch | None = None,
                   media: Media | None = None) -> RerenderReport:
    """One walk (the module doc): every stale variant of the originals of ``buckets`` (default:
    all) rendered again within the decode budget of ``media`` (the app's; none: the defaults),
    then the stale renditions removed (their bucket walked when named or by default). No lock:
    the caller holds the job's (avenue/ops/rerender.py). ``clock`` and ``sleep`` are the CPU
    share's (tests give their own)."""
    media = media or Media()
    progress = progress or (lambda phase, done, total: None)
    report = RerenderReport(dry_run=dry_run, cpu_share=cpu_share)
    started = clock()
    wanted = buckets or RERENDER_BUCKETS
    order = [bucket for bucket in RERENDER_BUCKETS if bucket in wanted]
    start = checkpoint(db) if resume else None
    if start is not None and start.get("bucket") in order:
        order = order[order.index(start["bucket"]):]
    total = sum(count_files(db, bucket, estimated=True) if bucket == RENDITIONS else
                count_images(db, bucket, estimated=True) for bucket in order)
    seen = 0

    def save(bucket: str, last_id: Any) -> None:
        if not dry_run:
            db[CHECKPOINTS].replace_one({"_id": NAME}, {"bucket": bucket, "last_id": last_id,
                                                        "at": dt.datetime.now(dt.UTC)}, upsert=True)

    for bucket in order:
        after = start["last_id"] if start is not None and bucket == start.get("bucket") else None
        # The renditions on request are files; the images, records.
        walk = walk_files(db, bucket, {"metadata.role": "rendition"}, after=after, batch=BATCH) \
            if bucket == RENDITIONS else walk_images(db, bucket, IMAGE, after=after, batch=BATCH)
        batch: list[Document] = []
        for doc in walk:
            seen += 1
            progress("Re-rendering", seen, max(total, seen))
            if bucket == RENDITIONS:
                report.renditions_checked += 1
                if is_stale(doc):
                    report.stale.append({"kind": "rendition", "bucket": RENDITIONS, "id": str(doc["_id"])})
                    batch.append(doc)
                if len(batch) >= BATCH and not dry_run:
                    report.renditions_removed += remove_stale(db, batch, purges=media.purges)
                    save(bucket, doc["_id"])
                    batch = []
                continue
            report.images_checked += 1
            stale = stale_of(doc)
            if not stale:
                continue
            if limit is not None and report.images_rerendered >= limit:
                report.stopped_at_limit = True
                break
            report.stale.extend({"kind": "variant", "bucket": bucket, "id": str(doc["_id"]),
                                 "variant": item.name, "format": item.format} for item in stale)
            report.images_rerendered += 1
            if dry_run:
                continue
            began = clock()
            done = rerender(db, bucket, doc, media, before_switch=before_switch)
            spent = max(0.0, clock() - began)
            report.variants_rerendered += len(done)
            report.render_seconds += spent
            save(bucket, doc["_id"])
            pause = spent * (1 - cpu_share) / cpu_share
            if pause > 0:
                sleep(pause)
                report.slept_seconds += pause
        if batch and not dry_run:
            report.renditions_removed += remove_stale(db, batch, purges=media.purges)
        if report.stopped_at_limit:
            break
    if not dry_run and not report.stopped_at_limit:
        db[CHECKPOINTS].delete_one({"_id": NAME})
    report.seconds = max(0.0, clock() - started)
    return report
