"""The operations commands: ``flask --app avenue <command>``: import-legacy, gc, fsck, backup,
restore, placeholders, near-duplicates (``likeness``, its deprecated old name), rerender,
migrate-media.

Thin: parse options, call one job with the app's database (the media package's, through its
maintenance door; backup and restore through avenue/ops/backup.py, which adds the accounts, and
rerender's run under its lock, avenue/ops/rerender.py), audit what it changed, print its report.
Progress goes to stderr (hidden with ``--quiet``; without a terminal, one line per phase),
the summary line last. Exit status: 0 done, 1 failed (or problems remain), 2 (import-legacy)
done but something needs a look (invalid images, references to missing files).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import click
from flask import current_app
from flask.cli import with_appcontext
from pymongo.database import Database
from pymongo.errors import PyMongoError

from avenue import audit, opsruns, status
from avenue.clock import now
from avenue.db import Document, get_db, get_mongo
from avenue.errors import AvenueError, StoreNotMigrated
from avenue.media import AppMedia, Limits, Media
from avenue.media.maintenance import Maintenance
from avenue.ops import backup as backup_module
from avenue.ops.lock import Held, exclusive
from avenue.ops.rerender import run as run_rerender
from avenue.terminal import fail

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar  # what click.progressbar returns

quiet_option = click.option("--quiet", "-q", is_flag=True,
                            help="No progress, no listing: the summary line only.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")


class Progress:
    """One click progress bar per phase on stderr, fed by the domain functions' callbacks."""

    def __init__(self, hidden: bool) -> None:
        self.hidden = hidden
        self.phase: str | None = None
        self.bar: ProgressBar[int] | None = None

    def __call__(self, phase: str, done: int, total: int) -> None:
        if self.hidden:
            return
        if phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = click.progressbar(length=max(total, 1), label=phase, show_pos=True,
                                         file=sys.stderr)
            self.bar.__enter__()
        bar = self.bar
        assert bar is not None  # made with the phase; only the end of the with-block closes it
        bar.length = max(total, 1)
        bar.update(done - bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Report(Protocol):
    def summary(self) -> dict[str, Any]: ...

    def summary_line(self) -> str: ...


class _BackfillReport(_Report, Protocol):
    unreadable: list[dict[str, str]]


ProgressFn = Callable[[str, int, int], None]  # progress(phase, done, total): what Progress is


class _Backfill(Protocol):
    def __call__(self, *, progress: ProgressFn | None = None) -> _BackfillReport: ...


def _emit(report: _Report, as_json: bool, quiet: bool, lines: list[str]) -> None:
    """The JSON report, or the listing (unless quiet) and the summary line."""
    if as_json:
        click.echo(json.dumps(report.summary(), indent=2, default=str))
        return
    if not quiet:
        for line in lines:
            click.echo(line)
    click.echo(report.summary_line())


def _prepare_database() -> Database[Document]:
    try:
        get_mongo().ensure_indexes()
    except StoreNotMigrated as error:  # the layout's check (avenue/media/store/layout.py)
        fail(error.message)
    return get_db()


def _media() -> AppMedia:
    """The app's media, whose jobs the commands run (the CLI side reads the app, nothing below)."""
    return AppMedia.of(current_app)


def _core() -> Media:
    """The app's media core, which ops' own backup, restore and re-render are handed."""
    return _media().core


def _record_run(command: str, started: dt.datetime, *, ok: bool, counts: dict[str, int]) -> None:
    """Keep this run's outcome for /metrics (avenue/opsruns.py); never fails the command."""
    try:
        opsruns.record(get_db(), command, started=started, ok=ok, counts=counts)
    except PyMongoError as error:
        click.echo(f"run not recorded for /metrics: {error}", err=True)


def _refresh_status_reports(hidden: bool) -> None:
    """Reconcile the status counters after a command changed the store behind them, and ask
    for a status sweep, so the next look at products-status / storage-status shows its effect
    (a progress phase like the others). Commands that changed nothing leave them alone: a
    cron gc that finds no garbage costs no recount."""
    db = get_db()
    phase = "Refreshing status reports"
    try:
        with Progress(hidden) as progress:
            progress(phase, 0, 1)
            status.refresh_all(db, current_app.config, AppMedia.of(current_app).referrers())
            progress(phase, 1, 1)
    except PyMongoError as error:  # the command itself succeeded; the next sweep reconciles
        click.echo(f"status reports not refreshed: {error}", err=True)


@click.command("import-legacy")
@click.argument("uploads_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Write nothing; print what a real run would do.")
@json_option
@quiet_option
@with_appcontext
def import_legacy(uploads_dir: Path | None, dry_run: bool, as_json: bool, quiet: bool) -> None:
    """Move the old local uploads folder into GridFS and rewrite every reference to it.

    UPLOADS_DIR defaults to AVENUE_LEGACY_UPLOADS_DIR. The folder is only read, never changed.
    """
    root = uploads_dir or (Path(current_app.config["AVENUE_LEGACY_UPLOADS_DIR"])
                           if current_app.config.get("AVENUE_LEGACY_UPLOADS_DIR") else None)
    if root is None:
        fail("give UPLOADS_DIR (or set AVENUE_LEGACY_UPLOADS_DIR)")
    if not root.is_dir():
        fail(f"{root} is not a folder")
    try:
        db = get_db() if dry_run else _prepare_database()
        with Progress(quiet or as_json) as progress:
            report = _media().maintenance.import_legacy(root, limits=Limits.from_config(current_app.config),
                                                        dry_run=dry_run, progress=progress)
        counts = report.counts
        if not dry_run and any(counts[key] for key in ("imported", "rewritten_documents",
                                                        "copied_between_buckets")):
            audit.record(db, "legacy_imported", actor={"via": "cli"}, source=str(root),
                         imported=counts["imported"], rewritten_documents=counts["rewritten_documents"])
    except (PyMongoError, OSError, RuntimeError) as error:
        fail(f"import-legacy stopped: {error}; run it again to resume")
    prefix = "would " if dry_run else ""
    lines = []
    for entry in report.files:
        if dry_run and entry["action"] in ("imported", "duplicate"):
            verb = "import" if entry["action"] == "imported" else "reuse the identical stored file for"
            lines.append(f"would {verb} {entry['path']} -> {entry['bucket']}")
        elif entry["action"] in ("skipped_non_image", "invalid"):
            lines.append(f"{prefix}skip {entry['path']}: {entry['reason']}")
    for entry in report.rewritten:
        name = entry.get("sku") or entry.get("slug")
        lines.append(f"{prefix}rewrite {entry['collection']} {name}: {entry['references']} references")
    for entry in report.missing_references + report.skipped_references:
        where = " ".join(filter(None, [entry["collection"], entry.get("sku") or entry.get("slug")]))
        lines.append(f"left untouched: {where} {entry['path']} ({entry['reason']})")
    _emit(report, as_json, quiet, lines)
    if not dry_run and any(counts[key] for key in ("imported", "duplicates", "rewritten_documents",
                                                    "copied_between_buckets")):
        _refresh_status_reports(quiet or as_json)
    if report.needs_attention:
        sys.exit(2)


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="Remove nothing; print what would be removed.")
@click.option("--grace-seconds", type=click.IntRange(min=0), default=Maintenance.DEFAULT_GRACE_SECONDS,
              show_default=True,
              help="Never collect anything younger than this (uploads in flight).")
@json_option
@quiet_option
@with_appcontext
def gc(dry_run: bool, grace_seconds: int, as_json: bool, quiet: bool) -> None:
    """Delete expired temp images, unreferenced files and chunks left by interrupted uploads."""
    started = now()
    try:
        with Progress(quiet or as_json) as progress:
            db = get_db() if dry_run else _prepare_database()
            with exclusive(db, "gc"):  # one gc at a time, on every instance (avenue/ops/lock.py)
                report = _media().maintenance.collect_garbage(grace_seconds=grace_seconds, dry_run=dry_run,
                                                              progress=progress)
                if not dry_run and report.removed:
                    audit.record(db, "garbage_collected", actor={"via": "cli"}, items=len(report.removed),
                                 bytes_freed=report.bytes_freed)
    except Held as held:
        fail(held.message)
    except PyMongoError as error:
        fail(f"gc stopped: {error}")
    verb = "would remove" if dry_run else "removed"
    lines = [f"{verb} {e['kind']} {e['bucket']} {e['id']} ({e['bytes']} bytes): {e['reason']}"
             for e in report.removed]
    _emit(report, as_json, quiet, lines)
    if not dry_run:
        _record_run("gc", started, ok=True,
                    counts={"removed": len(report.removed), "bytes_freed": report.bytes_freed,
                            "kept_in_grace": report.kept_in_grace})
    if not dry_run and report.removed:
        _refresh_status_reports(quiet or as_json)


def _backfill(name: str, run: _Backfill, as_json: bool, quiet: bool) -> None:
    """Run one backfill (``run(db, progress=...)``) alone on every instance, then list the
    images left without a readable thumb."""
    try:
        with Progress(quiet or as_json) as progress:
            db = _prepare_database()
            with exclusive(db, name):
                report = run(progress=progress)
    except Held as held:
        fail(held.message)
    except PyMongoError as error:
        fail(f"{name} stopped: {error}")
    lines = [f"no readable thumb: {entry['bucket']} {entry['id']}" for entry in report.unreadable]
    _emit(report, as_json, quiet, lines)


@click.command("placeholders")
@json_option
@quiet_option
@with_appcontext
def placeholders(as_json: bool, quiet: bool) -> None:
    """Give every image stored before placeholders existed its blurhash and dominant colour."""
    _backfill("placeholders", _media().maintenance.backfill_placeholders, as_json, quiet)


@click.command("near-duplicates")
@json_option
@quiet_option
@with_appcontext
def near_duplicates(as_json: bool, quiet: bool) -> None:
    """Give every image stored before near-duplicate detection its perceptual hash and palette."""
    _backfill("near-duplicates", _media().maintenance.backfill_near_duplicates, as_json, quiet)


# The command's name until issue 63 gave the feature one name: kept for the scripts and cron
# lines that call it, as the same run under the same lock, with a one-line notice on stderr.
@click.command("likeness", deprecated="Run `flask near-duplicates`: the same run, the same report.")
@json_option
@quiet_option
@with_appcontext
def near_duplicates_old_name(as_json: bool, quiet: bool) -> None:
    """The old name of ``near-duplicates``."""
    _backfill("near-duplicates", _media().maintenance.backfill_near_duplicates, as_json, quiet)


@click.command("fsck")
@click.option("--repair", is_flag=True, help="Fix or remove what is broken, then check again.")
@click.option("--since", type=click.DateTime(), help="Only files uploaded since then (UTC), e.g. 2026-11-01.")
@click.option("--resume", is_flag=True, help="Go on after the last position an unfinished run saved.")
@json_option
@quiet_option
@with_appcontext
def fsck(repair: bool, since: dt.datetime | None, resume: bool, as_json: bool, quiet: bool) -> None:
    """Check every stored file against its chunks, length and sha256; exit 1 while problems
    remain (states, such as variants still pending, are listed and exit 0)."""
    since = since.replace(tzinfo=dt.UTC) if since is not None else None
    started = now()
    try:
        with Progress(quiet or as_json) as progress, exclusive(get_db(), "fsck"):
            report = _media().maintenance.fsck(repair=repair, progress=progress, since=since, resume=resume)
            if report.remaining is not None:  # repaired, then checked again
                audit.record(get_db(), "storage_repaired", actor={"via": "cli"}, repairs=len(report.repairs),
                             remaining=report.remaining.problem_count)
    except Held as held:
        fail(held.message)
    except PyMongoError as error:
        fail(f"fsck stopped: {error}")
    lines = []
    for finding in report.findings:
        for problem in finding.problems:
            lines.append(f"{finding.bucket} {finding.doc['_id']} ({finding.doc.get('filename')}): "
                         f"{problem['code']}: {problem['detail']}")
    lines += [f"{p['collection']}: index {p['index']} {p['detail']}" for p in report.index_problems]
    lines += [f"{p['collection']} {p['bucket']}: {p['code']}: {p['detail']}" for p in report.total_problems]
    for action in report.repairs:
        target = f" {action['bucket']} {action['id']}" if "id" in action else ""
        details = {k: v for k, v in action.items() if k not in ("action", "bucket", "id")}
        lines.append(f"repaired: {action['action']}{target} {json.dumps(details, default=str)}")
    final = report.remaining if report.remaining is not None else report
    if final.states:  # not problems: listed under their own heading, the exit code untouched
        lines.append("states (not problems):")
        lines += [f"  {finding.bucket} {finding.doc['_id']} ({finding.doc.get('filename')}): "
                  f"{state['code']}: {state['detail']}"
                  for finding in final.states for state in finding.states]
    _emit(report, as_json, quiet, lines)
    remaining = report.remaining.problem_count if report.remaining is not None else report.problem_count
    _record_run("fsck", started, ok=report.ok,
                counts={"files_checked": report.files_checked, "images_checked": report.images_checked,
                        "bytes_checked": report.bytes_checked,
                        "problems": report.problem_count, "repairs": len(report.repairs),
                        "problems_remaining": remaining,
                        "pending_variants": final.state_counts.get("pending_variant", 0)})
    if report.repairs:
        _refresh_status_reports(quiet or as_json)
    if not report.ok:
        sys.exit(1)


def _private_file(path: str) -> io.BufferedWriter:
    """``path`` opened for writing, readable by its owner only (the archive holds every private
    image and the users): created 0600 rather than chmod-ed after, so its bytes are never
    readable by others, even while being written. A leftover of an earlier run is truncated
    and made 0600 too; a symbolic link planted at the name is refused, not written through."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        raise
    return os.fdopen(fd, "wb")


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--include-password-hashes", is_flag=True,
              help="Also save users' password hashes (API tokens are never saved).")
@json_option
@quiet_option
@with_appcontext
def backup(file: str, include_password_hashes: bool, as_json: bool, quiet: bool) -> None:
    """Write every bucket and the documents that use them to one tar archive (- for stdout)."""
    to_stdout = file == "-"
    partial = f"{file}.partial"
    try:
        with Progress(quiet or as_json) as progress:
            if to_stdout:
                report = backup_module.backup(get_db(), sys.stdout.buffer, media=_core(),
                                              progress=progress,
                                              include_password_hashes=include_password_hashes)
            else:
                with _private_file(partial) as out:
                    report = backup_module.backup(get_db(), out, media=_core(), progress=progress,
                                                  include_password_hashes=include_password_hashes)
                    out.flush()
                    os.fsync(out.fileno())
                # Only a finished archive gets the name: a failed run never looks like a backup.
                os.replace(partial, file)
    except (PyMongoError, OSError) as error:
        if not to_stdout and os.path.exists(partial):
            os.remove(partial)
        fail(f"backup failed: {error}")
    if to_stdout:
        click.echo(report.summary_line(), err=True)
    else:
        _emit(report, as_json, quiet, [f"{e['bucket']} {e['id']}: not saved: {e['error']}"
                                       for e in report.incomplete])
    if not report.ok:
        sys.exit(1)


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, allow_dash=True))
@click.option("--force", is_flag=True, help="Restore over a database that is not empty.")
@json_option
@quiet_option
@with_appcontext
def restore(file: str, force: bool, as_json: bool, quiet: bool) -> None:
    """Restore an archive written by backup into this database (empty unless --force)."""
    try:
        with Progress(quiet or as_json) as progress:
            if file == "-":
                report = backup_module.restore(get_db(), sys.stdin.buffer, media=_core(), force=force,
                                               progress=progress)
            else:
                with open(file, "rb") as source:
                    report = backup_module.restore(get_db(), source, media=_core(), force=force,
                                                   progress=progress)
            audit.record(get_db(), "backup_restored", actor={"via": "cli"}, files=sum(report.files.values()),
                         documents=sum(report.documents.values()), ok=report.ok)
    except AvenueError as error:
        fail(error.message)
    except (PyMongoError, OSError) as error:
        fail(f"restore failed: {error}")
    lines = [f"failed: {json.dumps(entry, default=str)}" for entry in report.failures]
    lines += [f"conflict: {json.dumps(entry, default=str)}" for entry in report.conflicts]
    _emit(report, as_json, quiet, lines)
    _refresh_status_reports(quiet or as_json)
    if not report.ok:
        sys.exit(1)


@click.command("migrate-media")
@click.option("--dry-run", is_flag=True, help="Change nothing; count what a real run would migrate.")
@json_option
@quiet_option
@with_appcontext
def migrate_media(dry_run: bool, as_json: bool, quiet: bool) -> None:
    """Convert a store written before media layout 2: move each image's record out of
    <bucket>.files into <bucket>.images, so every .files document is a whole GridFS file.

    Run it with the app stopped, before starting the new version (which refuses an unmigrated
    store). Resumable: run it again after any interruption; a run on a migrated store changes
    nothing."""
    started = now()
    db = get_db()  # not _prepare_database: the indexes' setup refuses an unmigrated store
    try:
        with Progress(quiet or as_json) as progress, exclusive(db, "migrate-media"):
            report = _media().maintenance.migrate_layout(dry_run=dry_run, progress=progress)
            if not dry_run and report.migrated:
                audit.record(db, "media_layout_migrated", actor={"via": "cli"}, records=report.migrated,
                             buckets={bucket: counts for bucket, counts in report.counts.items()
                                      if counts["records"]},
                             missing_content=len(report.missing_content))
        if not dry_run:
            get_mongo().ensure_indexes()  # the records' indexes, now that the layout is current
    except Held as held:
        fail(held.message)
    except PyMongoError as error:
        fail(f"migrate-media stopped: {error}; run it again to resume")
    verb = "would migrate" if dry_run else "migrated"
    lines = [f"{verb} {bucket}: {counts['records']} records ({counts['bytes_files']} heads became "
             f"their bytes' file, {counts['heads_removed']} chunkless heads removed, "
             f"{counts['lengths_set']} lengths set)"
             for bucket, counts in report.counts.items() if counts["records"]]
    lines += [f"{e['bucket']} {e['id']}: the file holding its bytes ({e['content_id']}) does not exist"
              for e in report.missing_content]
    _emit(report, as_json, quiet, lines)
    if not dry_run:
        _record_run("migrate-media", started, ok=True,
                    counts={"migrated": report.migrated, "missing_content": len(report.missing_content)})
        if report.migrated:
            _refresh_status_reports(quiet or as_json)


@click.command("rerender")
@click.option("--dry-run", is_flag=True, help="Change nothing; list what would be re-rendered or removed.")
@click.option("--bucket", "buckets", multiple=True, type=click.Choice(Maintenance.RERENDER_BUCKETS),
              help="Only this bucket (repeatable; default: every bucket and the renditions on request).")
@click.option("--limit", type=click.IntRange(min=1), help="Re-render at most this many images, then stop.")
@click.option("--cpu-share", type=click.FloatRange(min=0, max=1, min_open=True), default=1.0,
              show_default=True,
              help="Keep about this share of a core: sleep after each render in proportion to its time.")
@click.option("--resume", is_flag=True, help="Go on after the last image an unfinished run saved.")
@json_option
@quiet_option
@with_appcontext
def rerender(dry_run: bool, buckets: tuple[str, ...], limit: int | None, cpu_share: float, resume: bool,
             as_json: bool, quiet: bool) -> None:
    """Render again the variants made with other settings than today's; remove stale renditions."""
    started = now()
    try:
        with Progress(quiet or as_json) as progress:
            db = get_db() if dry_run else _prepare_database()
            report = run_rerender(db, dry_run=dry_run, buckets=list(buckets) or None, limit=limit,
                                  cpu_share=cpu_share, resume=resume, progress=progress, media=_core())
    except Held as held:
        fail(held.message)
    except (PyMongoError, OSError) as error:
        fail(f"rerender stopped: {error}; run it again with --resume")
    verb = "would re-render" if dry_run else "stale:"
    lines = []
    for item in report.stale:
        if item["kind"] == "variant":
            lines.append(f"{verb} {item['bucket']} {item['id']} {item['variant']}.{item['format']}")
        else:
            lines.append(f"{'would remove' if dry_run else 'removed'} rendition {item['id']}")
    _emit(report, as_json, quiet, lines)
    if not dry_run:
        _record_run("rerender", started, ok=True, counts=report.counts)


COMMANDS = (import_legacy, gc, fsck, backup, restore, placeholders, near_duplicates, near_duplicates_old_name,
            rerender, migrate_media)
