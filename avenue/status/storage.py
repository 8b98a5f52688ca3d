"""storage-status: "where are the bytes, and do they survive a restart?".

Per bucket: files, originals, bytes, chunks and the oldest and newest upload from the
counters kept with every write (:mod:`avenue.media.effects.counters`, as fresh as the last write; the
oldest upload stays as it was after a delete until the sweep's reconciliation); the
database's size; the embedded database's data folder (a walk of its few files); the legacy
uploads folder as the last background sweep found it (:mod:`avenue.status.sweep`, with its
age); the renditions on request against their byte budget, with the budget job's last
eviction; the bytes unfinished resumable uploads hold; the quota level.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field
from pymongo.database import Database
from pymongo.errors import PyMongoError

from avenue import opsruns
from avenue.clock import isoformat
from avenue.db import Document
from avenue.dialect import below_minimum, dialect_of, is_embedded_build, remembered, server_commands
from avenue.media import Buckets
from avenue.media.maintenance import Figures
from avenue.shapes import Answer

LIST_LIMIT = 100
# How long a process trusts what the server said of itself (its build, whether its engine
# persists) and a chunk index it found: those change only with an upgrade, a restart or an
# operator's hand, and asked every call they were six of storage-status's ten commands
# (bench/results/scale-2026-11-26-storage-status-remembered.md). A missing index is asked
# again at every call, so one created shows at once; one dropped shows within this bound.
KNOWN_SECONDS = 60.0
Level = Literal["ok", "warning", "critical", "emergency"]
LEVELS: tuple[tuple[int, Level], ...] = ((95, "emergency"), (85, "critical"), (70, "warning"))


def _command(db: Database[Document], name: str, notes: list[str]) -> dict[str, Any] | None:
    try:
        return db.command(name)
    except (PyMongoError, NotImplementedError, TypeError) as error:
        # mongomock implements none of these, and a restricted user may not run them.
        notes.append(f"{name} is not available on this database ({type(error).__name__}).")
        return None


def _persistent(db: Database[Document], notes: list[str]) -> bool | None:
    if not server_commands(db):
        notes.append("mongomock: an in-memory test database, nothing survives the process.")
        return False

    def ask() -> bool | None:
        engine = (_command(db, "serverStatus", notes) or {}).get("storageEngine") or {}
        return engine.get("persistent") if "persistent" in engine else None

    return remembered(db, "persistent", KNOWN_SECONDS, ask)


def _chunk_index(db: Database[Document], bucket: str) -> bool:
    """Whether ``bucket`` has its chunk index (one found is trusted :data:`KNOWN_SECONDS`)."""
    return bool(remembered(db, f"chunk_index {db.name}.{bucket}", KNOWN_SECONDS,
                           lambda: Figures(db).has_chunk_index(bucket) or None))


def _bucket(bucket: str, indexed: bool, held: dict[str, Any]) -> BucketHeld:
    oldest, newest = (held["oldest"], held["newest"]) if held["files"] else (None, None)
    return BucketHeld(alias=Buckets.ALIASES[bucket], files=held["files"], originals=held["originals"],
                      bytes=held["bytes"], chunks=held["chunks"], chunks_exact=indexed,
                      oldest_upload=isoformat(oldest), newest_upload=isoformat(newest), chunk_index=indexed)


def _folder_usage(path: Path) -> tuple[int, int]:
    """(files, bytes on disk) under ``path``: allocated blocks, not apparent sizes."""
    files = used = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                info = os.stat(os.path.join(root, name))
            except OSError:
                continue  # removed while we walked
            files += 1
            used += getattr(info, "st_blocks", 0) * 512 or info.st_size
    return files, used


def _legacy(folder: str, swept: dict[str, Any] | None) -> LegacyUploads | None:
    """The old uploads/ folder: whether it is there now, and what of it the last sweep found
    imported and not (zeros until a sweep of this folder finished)."""
    if not folder:
        return None
    found = (swept or {}).get("legacy") or {}
    if found.get("path") != folder:
        found = {}
    return LegacyUploads(path=folder, exists=Path(folder).is_dir(), swept=bool(found),
                         **{key: found.get(key, 0) for key in ("files", "bytes", "imported", "not_imported",
                                                                "not_imported_bytes")},
                         not_imported_items=(found.get("not_imported_items") or [])[:LIST_LIMIT])


def _stats_withheld(db: Database[Document], build: Mapping[str, Any] | None) -> bool:
    """Whether dbStats must not be sent: the dialect's ``db_stats`` says not (the embedded
    SecantusDB, as this client knows it, asked once: not this call's buildInfo alone, though
    that one counts too), or this call could not ask: one dbStats sent so held every request
    15 s (bench/results/embedded-2026-11-26-soak-fences-60.md)."""
    if not server_commands(db):
        return False  # it answers neither: the notes say so
    if build is None or is_embedded_build(build):
        return True
    try:
        return not dialect_of(db).db_stats
    except PyMongoError:
        return True


def _unmeasured_because(db: Database[Document], build: Mapping[str, Any] | None, data_dir: str,
                        stats: Mapping[str, Any] | None) -> str | None:
    """Why the database's size is not known, as a sentence for the dashboard (None: it is)."""
    if data_dir:
        return None if Path(data_dir).is_dir() else (
            f"Its data folder {data_dir} (AVENUE_EMBEDDED_DATA_PATH) is not on this server, so its "
            "size on disk cannot be measured here.")
    if stats:
        return None
    if not server_commands(db):
        return "mongomock keeps everything in this process's memory: there is no size on disk."
    if build is None:
        return ("The database did not answer buildInfo, so dbStats was not sent either (on the embedded "
                "SecantusDB it would stall every request): the next call asks again.")
    if _stats_withheld(db, build):
        return ("This app did not start the embedded SecantusDB and AVENUE_EMBEDDED_DATA_PATH does not name "
                "its data folder (its dbStats is never run: it would stall every request).")
    return ("The database refused dbStats: the app's MongoDB user needs the dbStats action "
            "(e.g. the clusterMonitor role) for the size to be shown.")
def _renditions(db: Database[Document], config: Mapping[str, Any]) -> RenditionsHeld:
    """The renditions stored (their running total) against their budget, and the budget
    job's last eviction."""
    held = Figures(db).rendition_total()
    budget = int(config["AVENUE_RENDITION_BUDGET_BYTES"])  # avenue/config.py's default
    run = opsruns.last_run(db, opsruns.RENDITION_EVICTIONS)
    counts = (run or {}).get("counts") or {}
    last = None if run is None else Eviction(at=isoformat(run.get("finished_at")),
                                             renditions=int(counts.get("evicted") or 0),
                                             bytes=int(counts.get("bytes_freed") or 0),
                                             bytes_after=int(counts.get("bytes_after") or 0))
    return RenditionsHeld(files=held["files"], bytes=held["bytes"], budget_bytes=budget or None,
                          percent=round(100 * held["bytes"] / budget, 2) if budget > 0 else None,
                          last_eviction=last)


def quota_level(percent: float) -> Level:
    """ok / warning (70 %) / critical (85 %) / emergency (95 %)."""
    for threshold, level in LEVELS:
        if percent >= threshold:
            return level
    return "ok"


def storage_status(db: Database[Document], config: Mapping[str, Any],
                   swept: dict[str, Any] | None = None) -> dict[str, Any]:
    """Where the bytes are and whether they survive a restart (``swept``: the last sweep's
    result, for the legacy folder): :class:`StorageStatus`'s body."""
    notes: list[str] = []
    build = remembered(db, "buildInfo", KNOWN_SECONDS, lambda: _command(db, "buildInfo", notes))
    persistent = _persistent(db, notes)
    figures = Figures(db)
    held = figures.counters()
    buckets = {bucket: _bucket(bucket, _chunk_index(db, bucket), held[bucket])
               for bucket in Buckets.BY_ALIAS.values()}
    missing_indexes = [bucket for bucket, found in buckets.items() if not found.chunk_index]
    database, stats = _database_size(db, build, config.get("AVENUE_EMBEDDED_DATA_PATH") or "", notes)
    gridfs_bytes = sum(b.bytes for b in buckets.values())
    renditions = _renditions(db, config)
    parked = Parked(**figures.parked_uploads())
    in_trash = held[Figures.TRASH]
    trash = TrashHeld(files=in_trash["files"], originals=in_trash["originals"], bytes=in_trash["bytes"],
                      chunks=in_trash["chunks"], days=config["AVENUE_TRASH_DAYS"])
    if database.data_dir:
        used, source = database.data_dir.bytes_on_disk, "embedded data folder on disk"
    elif stats:
        used = (stats.get("storageSize") or 0) + (stats.get("indexSize") or 0)
        source = "dbStats storageSize + indexSize"
    else:  # with the unfinished uploads' bytes
        used, source = gridfs_bytes + trash.bytes + renditions.bytes + parked.bytes, "GridFS file lengths"
    return StorageStatus(
        backend="mongodb-gridfs", database=db.name, server_version=(build or {}).get("version"),
        server_warning=below.sentence() if (below := below_minimum(build)) else None,
        persistent=persistent, buckets=buckets, gridfs_bytes=gridfs_bytes,
        trash=trash, renditions=renditions, resumable=parked, database_size=database,
        chunk_indexes=ChunkIndexes(ok=not missing_indexes, missing=missing_indexes,
                                   expected={"files_id": 1, "n": 1}),
        legacy_uploads=_legacy(config.get("AVENUE_LEGACY_UPLOADS_DIR") or "", swept),
        quota=_quota(config.get("AVENUE_STORAGE_QUOTA_BYTES") or 0, used, source, notes),
        notes=notes).answer()


def _database_size(db: Database[Document], build: Mapping[str, Any] | None, data_dir: str,
                   notes: list[str]) -> tuple[DatabaseSize, dict[str, Any] | None]:
    """The database's size (dbStats where it may be sent, the data folder when configured),
    and dbStats' answer."""
    if _stats_withheld(db, build):
        # Dialect.db_stats says why (a scan of everything under the embedded database's one
        # lock); the data folder on disk, measured below when configured, is the real figure.
        stats = None
        notes.append("dbStats skipped on the embedded SecantusDB, or on a server whose buildInfo did not "
                     "answer (it scans everything under a lock that stalls every other request); "
                     + ("data_dir.bytes_on_disk is the disk use." if data_dir else
                        "set AVENUE_EMBEDDED_DATA_PATH to its data folder to measure the disk use."))
    else:
        stats = _command(db, "dbStats", notes)
    folder = None
    if data_dir:
        exists = Path(data_dir).is_dir()
        files, used = _folder_usage(Path(data_dir)) if exists else (0, 0)
        folder = DataDir(path=data_dir, exists=exists, files=files, bytes_on_disk=used)
        if stats:
            notes.append("Embedded database: storage_bytes from dbStats equals data_bytes there; "
                         "data_dir.bytes_on_disk is the real disk use.")
    said = stats or {}
    return DatabaseSize(data_bytes=said.get("dataSize"), storage_bytes=said.get("storageSize"),
                        index_bytes=said.get("indexSize"), data_dir=folder,
                        unmeasured_because=_unmeasured_because(db, build, data_dir, stats)), stats


def _quota(quota_bytes: int, used: int, source: str, notes: list[str]) -> Quota:
    """``used`` bytes (measured by ``source``) against the quota, and the level they reach."""
    percent = round(100 * used / quota_bytes, 2) if quota_bytes > 0 else None
    if percent is None:
        notes.append("No AVENUE_STORAGE_QUOTA_BYTES configured: usage has no level to reach.")
    return Quota(bytes=quota_bytes or None, used_bytes=used, used_source=source, percent=percent,
                 level=quota_level(percent) if percent is not None else "ok")


# --- the answer, declared once (avenue/shapes.py): the code fills it, the document shows it ---

Count = Annotated[int, Field(ge=0)]
Bytes = Annotated[int, Field(ge=0)]
When = Annotated[str | None, Field(json_schema_extra={"format": "date-time"})]


class BucketHeld(Answer):
    """A bucket's files, from the counters kept with every write."""

    alias: str
    files: int
    originals: Count
    bytes: int
    chunks: int
    chunks_exact: bool
    oldest_upload: When
    newest_upload: When
    chunk_index: bool


class TrashHeld(Answer):
    """Deleted media kept restorable (not in buckets or gridfs_bytes)."""

    files: int
    originals: int
    bytes: int
    chunks: int
    days: int


class Eviction(Answer):
    """The byte budget's last eviction."""

    at: When
    renditions: int
    bytes: int
    bytes_after: int


class RenditionsHeld(Answer):
    """Renditions on request stored (not in buckets or gridfs_bytes), against
    AVENUE_RENDITION_BUDGET_BYTES (null: unbounded), and the byte budget's last eviction
    (null: none yet)."""

    files: int
    bytes: int
    budget_bytes: int | None
    percent: float | None
    last_eviction: Eviction | None


class Parked(Answer):
    """Unfinished resumable (tus) uploads holding bytes, and those bytes (not in buckets or
    gridfs_bytes; in the quota's GridFS fallback)."""

    uploads: Count
    bytes: Bytes


class DataDir(Answer):
    """The embedded database's data folder, measured on disk (allocated blocks)."""

    path: str
    exists: bool
    files: Count
    bytes_on_disk: Bytes


class DatabaseSize(Answer):
    """The database's size: dbStats (never on the embedded SecantusDB) and the embedded
    database's data folder."""

    data_bytes: int | None
    storage_bytes: int | None
    index_bytes: int | None
    data_dir: DataDir | None
    unmeasured_because: Annotated[str | None, Field(
        description="Why neither the data folder nor dbStats gave a size (null: one did).")]


class ChunkIndexes(Answer):
    """Buckets whose chunks lack the {files_id: 1, n: 1} index GridFS reads need."""

    ok: bool
    missing: list[str]
    expected: dict[str, int]


class LegacyUploads(Answer):
    """The old uploads/ folder (AVENUE_LEGACY_UPLOADS_DIR): whether it is there and what of it
    the last sweep found imported."""

    path: str
    exists: bool
    swept: bool
    files: Count
    bytes: Bytes
    imported: Count
    not_imported: Count
    not_imported_bytes: Bytes
    not_imported_items: list[Any]


class Quota(Answer):
    """The bytes used against AVENUE_STORAGE_QUOTA_BYTES, and the level they reach."""

    bytes: int | None
    used_bytes: Bytes
    used_source: str
    percent: float | None
    level: Level


class StorageStatus(Answer):
    """Where the bytes are and whether they survive a restart."""

    # The answer adds the report's ``report`` and ``sweep`` blocks (avenue/status/__init__.py;
    # the document's allOf with Report): its schema leaves room for them.
    model_config = ConfigDict(extra="ignore")

    backend: Literal["mongodb-gridfs"]
    database: Annotated[str, Field(description="The database's name (MONGO_DB).")]
    server_version: Annotated[str | None, Field(
        description="The server's version from buildInfo (null: not available).")]
    server_warning: Annotated[str | None, Field(
        description="Why the server is below what production runs on (MongoDB 8.0.17 or later: "
                    "docs/production.md), as a sentence; null: it is not, or it is the embedded "
                    "SecantusDB or mongomock.")]
    persistent: bool | None
    buckets: dict[str, BucketHeld]
    gridfs_bytes: Annotated[Bytes, Field(
        description="The bytes of every bucket's files (not the trash's nor the renditions').")]
    trash: TrashHeld
    renditions: RenditionsHeld
    resumable: Parked
    database_size: DatabaseSize
    chunk_indexes: ChunkIndexes
    legacy_uploads: Annotated[LegacyUploads | None, Field(
        description="null when no AVENUE_LEGACY_UPLOADS_DIR is configured.")]
    quota: Quota
    notes: Annotated[list[str], Field(
        description="What the report could not measure here, and why, as sentences.")]
