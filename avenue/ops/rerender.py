"""Re-render what was made with other settings than today's (``flask --app avenue rerender``),
and the API's run of it (``/api/admin/rerender``).

The walk itself, what is stale and how it is rendered again within a share of the CPU, with its
checkpoint, is the media package's (``rerender_stale``, avenue/media/upkeep/stale.py, through
the maintenance door). Here: one run at a time on every instance (the ops lock ``rerender``,
avenue/ops/lock.py), the count of what is stale for the dashboard, and a bounded run started
from the API on a background thread, its progress kept in ``ops_progress`` and its outcome in
``ops_runs`` like the CLI's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field
from pymongo.database import Database

from avenue import background, opsruns
from avenue.clock import isoformat, now
from avenue.db import Document
from avenue.media import AppMedia, Media
from avenue.media.maintenance import Maintenance
from avenue.ops.lock import exclusive
from avenue.shapes import QUERY, Absent, Answer, Flag, Refuse, Shape

ProgressFn = Callable[[str, int, int], None]  # progress(phase, done, total)

log = logging.getLogger(__name__)

NAME = "rerender"  # the ops lock's (and the walk's checkpoint's, upkeep/stale.py)
#: The progress of the run the API started (one document, ``_id`` :data:`NAME`).
PROGRESS = "ops_progress"
PROGRESS_EVERY = 25  # files between two progress writes
_runs: list[threading.Thread] = []  # runs started in the background here (tests join them)


def run(db: Database[Document], *, dry_run: bool = False, buckets: list[str] | None = None,
        limit: int | None = None, cpu_share: float = 1.0, resume: bool = False,
        progress: ProgressFn | None = None, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep, before_switch: Callable[[str, str], None] | None = None,
        locked: bool = True, media: Media | None = None) -> Maintenance.RerenderReport:
    """One run (the module doc), under the ops lock unless ``locked`` is False (a caller that
    holds it), rendering within the decode budget of ``media`` (the app's; none: the
    defaults). ``buckets``: the originals' buckets to walk (default: all); the renditions'
    bucket is walked when it is named or by default. ``clock`` and ``sleep`` are the
    CPU share's (tests give their own)."""
    if not 0 < cpu_share <= 1:
        raise ValueError("cpu_share must be in (0, 1]")
    walk = partial(AppMedia.on(db, media).maintenance.rerender_stale, dry_run=dry_run, buckets=buckets,
                   limit=limit, cpu_share=cpu_share, resume=resume, progress=progress, clock=clock,
                   sleep=sleep, before_switch=before_switch)
    if not locked:
        return walk()
    with exclusive(db, NAME):
        return walk()


class StaleCounts(Answer):
    """What is stale now: variants to render again, renditions to remove, the images holding them."""

    variants: int
    renditions: int
    images: int


def stale_counts(db: Database[Document]) -> StaleCounts:
    """How many stale variants and renditions the store holds now (a full read of the files
    documents, no bytes: for the dashboard's card and the dry run)."""
    report = AppMedia.on(db).maintenance.rerender_stale(dry_run=True)
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
            report = AppMedia.on(db, media).maintenance.rerender_stale(limit=limit, cpu_share=cpu_share,
                                                                       resume=resume, progress=progress)
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
