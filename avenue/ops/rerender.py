"""Re-render what was made with other settings than today's (``flask --app avenue rerender``).

After a change of the variant table (avenue/media/ingest/variants.py), of a format's default
quality or encoder settings (avenue/media/formats.py), the variants already stored are stale:
each records the recipe that made it (avenue/media/store/rerender.py). This job walks the
buckets' originals by ``_id`` through one cursor each and renders every stale variant again
from its original (never written), a new file switched in place of the old one, so every URL
answers throughout; then it walks the renditions on request and removes the stale ones, which
their next request renders again (a changed preset names other renditions: the old ones are
no longer asked for and leave with the byte budget's eviction, ``AVENUE_RENDITION_BUDGET_BYTES``;
removing only frees bytes, so the job never takes the renditions past their budget).

Bounds: ``limit`` images re-rendered per run; ``cpu_share`` (0 < share <= 1): after each
image's render of ``t`` seconds the job sleeps ``t * (1 - share) / share``, so it keeps about
that share of one core (the renders themselves use a thread per core, as uploads do). One run
at a time on every instance (the ops lock ``rerender``, avenue/ops/lock.py). After each image
the position is saved (``ops_checkpoints``, ``_id`` ``rerender``); ``resume`` starts after it
(an interrupted run goes on where it stopped; without it, a run starts over, which only
reads what is no longer stale). A finished run clears the checkpoint.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field
from pymongo.database import Database

from avenue import background, opsruns
from avenue.clock import isoformat, now
from avenue.db import Document
from avenue.media import BUCKETS, Media
from avenue.media.maintenance import (
    RENDITIONS,
    BeforeSwitch,
    count_files,
    is_stale,
    remove_stale,
    rerender,
    stale_of,
    walk_files,
)
from avenue.ops.backfill import ProgressFn
from avenue.ops.lock import exclusive
from avenue.shapes import QUERY, Absent, Answer, Flag, Refuse, Shape

log = logging.getLogger(__name__)

NAME = "rerender"
#: The progress of the run the API started (one document, ``_id`` :data:`NAME`).
PROGRESS = "ops_progress"
PROGRESS_EVERY = 25  # files between two progress writes
_runs: list[threading.Thread] = []  # runs started in the background here (tests join them)
CHECKPOINTS = "ops_checkpoints"
BATCH = 100  # files documents read per cursor fetch; renditions removed per removal


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


def run(db: Database[Document], *, dry_run: bool = False, buckets: list[str] | None = None,
        limit: int | None = None, cpu_share: float = 1.0, resume: bool = False,
        progress: ProgressFn | None = None, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep, before_switch: BeforeSwitch | None = None,
        locked: bool = True, media: Media | None = None) -> RerenderReport:
    """One run (the module doc), under the ops lock unless ``locked`` is False (a caller that
    holds it), rendering within the decode budget of ``media`` (the app's; none: the
    defaults). ``buckets``: the originals' buckets to walk (default: all); the renditions'
    bucket is walked when it is named or by default. ``clock`` and ``sleep`` are the
    CPU share's (tests give their own)."""
    if not 0 < cpu_share <= 1:
        raise ValueError("cpu_share must be in (0, 1]")
    if not locked:
        return _run(db, dry_run, buckets, limit, cpu_share, resume, progress, clock, sleep, before_switch,
                    media or Media())
    with exclusive(db, NAME):
        return _run(db, dry_run, buckets, limit, cpu_share, resume, progress, clock, sleep, before_switch,
                    media or Media())


def _run(db: Database[Document], dry_run: bool, buckets: list[str] | None, limit: int | None,
         cpu_share: float, resume: bool, progress: ProgressFn | None, clock: Callable[[], float],
         sleep: Callable[[float], None], before_switch: BeforeSwitch | None, media: Media) -> RerenderReport:
    progress = progress or (lambda phase, done, total: None)
    report = RerenderReport(dry_run=dry_run, cpu_share=cpu_share)
    started = clock()
    wanted = buckets or [*BUCKETS.values(), RENDITIONS]
    order = [bucket for bucket in [*BUCKETS.values(), RENDITIONS] if bucket in wanted]
    start = checkpoint(db) if resume else None
    if start is not None and start.get("bucket") in order:
        order = order[order.index(start["bucket"]):]
    total = sum(count_files(db, bucket, estimated=True) for bucket in order)
    seen = 0

    def save(bucket: str, last_id: Any) -> None:
        if not dry_run:
            db[CHECKPOINTS].replace_one({"_id": NAME}, {"bucket": bucket, "last_id": last_id,
                                                        "at": dt.datetime.now(dt.UTC)}, upsert=True)

    for bucket in order:
        after = start["last_id"] if start is not None and bucket == start.get("bucket") else None
        if bucket == RENDITIONS:
            query: dict[str, Any] = {"metadata.role": "rendition"}
        else:
            query = {"metadata.role": "original"}
        batch: list[Document] = []
        for doc in walk_files(db, bucket, query, after=after, batch=BATCH):
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


class StaleCounts(Answer):
    """What is stale now: variants to render again, renditions to remove, the images holding them."""

    variants: int
    renditions: int
    images: int


def stale_counts(db: Database[Document]) -> StaleCounts:
    """How many stale variants and renditions the store holds now (a full read of the files
    documents, no bytes: for the dashboard's card and the dry run)."""
    report = _run(db, True, None, None, 1.0, False, None, time.monotonic, time.sleep, None, Media())
    variants = sum(1 for item in report.stale if item["kind"] == "variant")
    return StaleCounts(variants=variants, renditions=len(report.stale) - variants,
                       images=report.images_rerendered)


class RunProgress(Answer):
    """A re-render run started from the API: its state, files walked of the total, its bounds and,
    once over, its counts."""

    id: str
    state: Literal["running", "finished", "failed"]
    started_at: str
    finished_at: str | None
    done: int
    total: int
    limit: int | None
    cpu_share: float
    counts: dict[str, int]
    stopped_at_limit: bool
    error: str | None


class StatusQuery(Shape):
    """The query of ``GET /api/admin/rerender``."""

    model_config = QUERY

    stale: Annotated[Flag, Field(description="Also count what is stale.")] = False


class RerenderStatus(Answer):
    """The last run the API started (null before any) and, when asked, what is stale now."""

    run: RunProgress | None
    stale: Absent[StaleCounts] = None


def progress_of(db: Database[Document]) -> RunProgress | None:
    """The last run the API started, as it shows it: its state (running, finished, failed),
    files walked of the total, its bounds and, once over, its counts."""
    doc = db[PROGRESS].find_one({"_id": NAME})
    if doc is None:
        return None
    started = isoformat(doc["started_at"])
    assert started is not None  # written when the run starts
    return RunProgress(id=doc["run"], state=doc["state"], started_at=started,
                       finished_at=isoformat(doc.get("finished_at")), done=int(doc.get("done") or 0),
                       total=int(doc.get("total") or 0), limit=doc.get("limit"), cpu_share=doc["cpu_share"],
                       counts=doc.get("counts") or {}, stopped_at_limit=bool(doc.get("stopped_at_limit")),
                       error=doc.get("error"))



MAX_LIMIT = 100_000_000  # a run the API starts: at most this many images


class RerenderRun(Shape):
    """A run to start: at most ``limit`` images (none: every stale one), ``cpu_share`` of its
    time spent rendering. Fields it does not name are left aside."""

    model_config = ConfigDict(extra="ignore")

    limit: Annotated[Annotated[int, Field(ge=1, le=MAX_LIMIT)] | None,
                     Field(description="At most this many images."),
                     Refuse("invalid_field", f"limit must be a whole number of images, 1 to {MAX_LIMIT}.")
                     ] = None
    cpu_share: Annotated[float, Field(gt=0, le=1, description="Share of its time spent rendering."),
                         Refuse("invalid_field", "cpu_share must be a number above 0, at most 1.")] = 0.5


def start(db: Database[Document], media: Media, *, limit: int | None = None, cpu_share: float = 0.5,
          resume: bool = True) -> tuple[RunProgress, threading.Thread]:
    """Start one bounded run on a background thread (the API's, with the app's ``media``): the
    ops lock is taken here, before it starts (:class:`~avenue.ops.lock.Held` when another run
    has it), and given back when the run ends. Its progress is written to :data:`PROGRESS` every
    :data:`PROGRESS_EVERY` files and at its end; its outcome to ``ops_runs`` like the CLI's."""
    if not 0 < cpu_share <= 1:
        raise ValueError("cpu_share must be in (0, 1]")
    held = exclusive(db, NAME)
    holder = held.__enter__()
    started = now()
    db[PROGRESS].replace_one({"_id": NAME}, {
        "run": holder["run"], "state": "running", "started_at": started, "finished_at": None, "done": 0,
        "total": 0, "limit": limit, "cpu_share": cpu_share, "counts": {}, "error": None}, upsert=True)
    mine = {"_id": NAME, "run": holder["run"]}

    def progress(phase: str, done: int, total: int) -> None:
        if done % PROGRESS_EVERY == 0:
            db[PROGRESS].update_one(mine, {"$set": {"done": done, "total": total}})

    def work() -> None:
        outcome: dict[str, Any]
        ok = False
        try:
            report = _run(db, False, None, limit, cpu_share, resume, progress, time.monotonic, time.sleep,
                          None, media)
            outcome = {"state": "finished", "counts": report.counts,
                       "stopped_at_limit": report.stopped_at_limit,
                       "done": report.images_checked + report.renditions_checked}
            ok = True
        except Exception as error:  # noqa: BLE001 - recorded for the dashboard; a run with resume goes on
            log.exception("the rerender run failed")
            outcome = {"state": "failed", "error": str(error), "counts": {}}
        try:
            db[PROGRESS].update_one(mine, {"$set": {**outcome, "finished_at": now()}})
            opsruns.record(db, NAME, started=started, ok=ok, counts=outcome["counts"])
        finally:
            held.__exit__(None, None, None)

    thread = background.spawn("avenue-rerender", work)
    _runs.append(thread)
    del _runs[:-8]
    found = progress_of(db)
    assert found is not None  # written above
    return found, thread


def wait_for_runs(timeout: float = 60.0) -> None:
    """Wait for the runs :func:`start` began in this process to end (tests, before their
    database goes)."""
    for thread in list(_runs):
        thread.join(timeout)
