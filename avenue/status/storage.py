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
from typing import Any

from pymongo.database import Database
from pymongo.errors import PyMongoError

from avenue import opsruns
from avenue.clock import isoformat
from avenue.media import ALIASES, BUCKETS, Document, resumable
from avenue.media.buckets import TRASH
from avenue.media.effects.counters import counters as media_counters
from avenue.media.store.renditions import total as rendition_total
from avenue.media.store.scan import has_chunk_index
from avenue.servers import is_embedded, is_mongomock, remembered

LIST_LIMIT = 100
# How long a process trusts what the server said of itself (its build, whether its engine
# persists) and a chunk index it found: those change only with an upgrade, a restart or an
# operator's hand. Asked every call, they were six of storage-status's ten commands, and on
# the embedded database each command can wait behind one of the status sweep's reads (p99
# 318 ms during a 300,000-file reconciliation, bench/results/scale-2026-11-26-*.md). A
# missing index is asked again at every call, so one created shows at once; one dropped
# shows within this bound.
KNOWN_SECONDS = 60.0
LEVELS = ((95, "emergency"), (85, "critical"), (70, "warning"))


def _command(db: Database[Document], name: str, notes: list[str]) -> dict[str, Any] | None:
    try:
        return db.command(name)
    except (PyMongoError, NotImplementedError, TypeError) as error:
        # mongomock implements none of these, and a restricted user may not run them.
        notes.append(f"{name} is not available on this database ({type(error).__name__}).")
        return None


def _persistent(db: Database[Document], notes: list[str]) -> bool | None:
    if is_mongomock(db):
        notes.append("mongomock: an in-memory test database, nothing survives the process.")
        return False

    def ask() -> bool | None:
        engine = (_command(db, "serverStatus", notes) or {}).get("storageEngine") or {}
        return engine.get("persistent") if "persistent" in engine else None

    return remembered(db, "persistent", KNOWN_SECONDS, ask)


def _chunk_index(db: Database[Document], bucket: str) -> bool:
    """Whether ``bucket`` has its chunk index (one found is trusted :data:`KNOWN_SECONDS`)."""
    return bool(remembered(db, f"chunk_index {db.name}.{bucket}", KNOWN_SECONDS,
                           lambda: has_chunk_index(db, bucket) or None))


def _bucket(bucket: str, indexed: bool, held: dict[str, Any]) -> dict[str, Any]:
    oldest, newest = (held["oldest"], held["newest"]) if held["files"] else (None, None)
    return {"alias": ALIASES[bucket], "files": held["files"], "originals": held["originals"],
            "bytes": held["bytes"], "chunks": held["chunks"], "chunks_exact": indexed,
            "oldest_upload": isoformat(oldest), "newest_upload": isoformat(newest),
            "chunk_index": indexed}


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


def _legacy(folder: str, swept: dict[str, Any] | None) -> dict[str, Any] | None:
    """The old uploads/ folder: whether it is there now, and what of it the last sweep found
    imported and not (zeros until a sweep of this folder finished)."""
    if not folder:
        return None
    found = (swept or {}).get("legacy") or {}
    if found.get("path") != folder:
        found = {}
    return {"path": folder, "exists": Path(folder).is_dir(), "swept": bool(found),
            **{key: found.get(key, 0) for key in ("files", "bytes", "imported", "not_imported",
                                                   "not_imported_bytes")},
            "not_imported_items": (found.get("not_imported_items") or [])[:LIST_LIMIT]}


def _embedded_or_unknown(db: Database[Document], build: Mapping[str, Any] | None) -> bool:
    """Whether dbStats must not be sent: the server is the embedded SecantusDB (as this
    client knows it, asked once: not this call's buildInfo alone), or this call could not ask.
    A 60-minute soak through make run had its one restart when a storage-status call's
    buildInfo failed under load and its dbStats went out: SecantusDB held every request
    behind it for 15 s (bench/results/embedded-2026-11-26-soak-fences-60.md)."""
    if is_mongomock(db):
        return False  # it answers neither: the notes say so
    if build is None or "secantusVersion" in build:
        return True
    try:
        return is_embedded(db)
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
    if is_mongomock(db):
        return "mongomock keeps everything in this process's memory: there is no size on disk."
    if build is None:
        return ("The database did not answer buildInfo, so dbStats was not sent either (on the embedded "
                "SecantusDB it would stall every request): the next call asks again.")
    if _embedded_or_unknown(db, build):
        return ("This app did not start the embedded SecantusDB and AVENUE_EMBEDDED_DATA_PATH does not name "
                "its data folder (its dbStats is never run: it would stall every request).")
    return ("The database refused dbStats: the app's MongoDB user needs the dbStats action "
            "(e.g. the clusterMonitor role) for the size to be shown.")
def _renditions(db: Database[Document], config: Mapping[str, Any]) -> dict[str, Any]:
    """The renditions stored (their running total) against their budget, and the budget
    job's last eviction."""
    held = rendition_total(db)
    budget = int(config["AVENUE_RENDITION_BUDGET_BYTES"])  # avenue/config.py's default
    run = opsruns.last_run(db, opsruns.RENDITION_EVICTIONS)
    counts = (run or {}).get("counts") or {}
    last = None if run is None else {"at": isoformat(run.get("finished_at")),
                                     "renditions": int(counts.get("evicted") or 0),
                                     "bytes": int(counts.get("bytes_freed") or 0),
                                     "bytes_after": int(counts.get("bytes_after") or 0)}
    return {"files": held["files"], "bytes": held["bytes"], "budget_bytes": budget or None,
            "percent": round(100 * held["bytes"] / budget, 2) if budget > 0 else None, "last_eviction": last}


def quota_level(percent: float) -> str:
    """ok / warning (70 %) / critical (85 %) / emergency (95 %)."""
    for threshold, level in LEVELS:
        if percent >= threshold:
            return level
    return "ok"


def storage_status(db: Database[Document], config: Mapping[str, Any],
                   swept: dict[str, Any] | None = None) -> dict[str, Any]:
    """Where the bytes are and whether they survive a restart (``swept``: the last sweep's
    result, for the legacy folder)."""
    notes: list[str] = []
    build = remembered(db, "buildInfo", KNOWN_SECONDS, lambda: _command(db, "buildInfo", notes))
    persistent = _persistent(db, notes)
    buckets, missing_indexes = {}, []
    held = media_counters(db)
    for bucket in BUCKETS.values():
        indexed = _chunk_index(db, bucket)
        if not indexed:
            missing_indexes.append(bucket)
        buckets[bucket] = _bucket(bucket, indexed, held[bucket])
    data_dir = config.get("AVENUE_EMBEDDED_DATA_PATH") or ""
    if _embedded_or_unknown(db, build):
        # SecantusDB's dbStats reads every document of every collection while holding the
        # lock all other operations need, stalling every request (media included) on a big
        # store (3.4 s at 21,000 files documents, bench/scale.py). Its storageSize is dataSize
        # anyway; the data folder on disk, measured below when configured, is the real figure.
        stats = None
        notes.append("dbStats skipped on the embedded SecantusDB, or on a server whose buildInfo did not "
                     "answer (it scans everything under a lock that stalls every other request); "
                     + ("data_dir.bytes_on_disk is the disk use." if data_dir else
                        "set AVENUE_EMBEDDED_DATA_PATH to its data folder to measure the disk use."))
    else:
        stats = _command(db, "dbStats", notes)
    database = {
        "data_bytes": (stats or {}).get("dataSize"),
        "storage_bytes": (stats or {}).get("storageSize"),
        "index_bytes": (stats or {}).get("indexSize"),
        "data_dir": None,
    }
    if data_dir:
        files, used = _folder_usage(Path(data_dir)) if Path(data_dir).is_dir() else (0, 0)
        database["data_dir"] = {"path": data_dir, "exists": Path(data_dir).is_dir(), "files": files,
                                "bytes_on_disk": used}
        if stats:
            notes.append("Embedded database: storage_bytes from dbStats equals data_bytes there; "
                         "data_dir.bytes_on_disk is the real disk use.")
    database["unmeasured_because"] = _unmeasured_because(db, build, data_dir, stats)
    gridfs_bytes = sum(b["bytes"] for b in buckets.values())
    renditions = _renditions(db, config)
    parked = resumable.parked(db)
    in_trash = held[TRASH]
    trash = {"files": in_trash["files"], "originals": in_trash["originals"], "bytes": in_trash["bytes"],
             "chunks": in_trash["chunks"], "days": config.get("AVENUE_TRASH_DAYS", 30)}
    if database["data_dir"]:
        used, source = database["data_dir"]["bytes_on_disk"], "embedded data folder on disk"
    elif stats:
        used = (stats.get("storageSize") or 0) + (stats.get("indexSize") or 0)
        source = "dbStats storageSize + indexSize"
    else:
        used = gridfs_bytes + trash["bytes"] + renditions["bytes"] + parked["bytes"]
        source = "GridFS file lengths"  # with the unfinished uploads' bytes
    quota_bytes = config.get("AVENUE_STORAGE_QUOTA_BYTES") or 0
    percent = round(100 * used / quota_bytes, 2) if quota_bytes > 0 else None
    if percent is None:
        notes.append("No AVENUE_STORAGE_QUOTA_BYTES configured: usage has no level to reach.")
    return {
        "backend": "mongodb-gridfs",
        "database": db.name,
        "server_version": (build or {}).get("version"),
        "persistent": persistent,
        "buckets": buckets,
        "gridfs_bytes": gridfs_bytes,
        # Deleted media kept restorable (not in buckets or gridfs_bytes: nothing there is served).
        "trash": trash,
        # Renditions on request: derived, evicted past their budget (not in buckets or gridfs_bytes).
        "renditions": renditions,
        # Unfinished resumable (tus) uploads: the bytes they parked (not in buckets or gridfs_bytes).
        "resumable": parked,
        "database_size": database,
        "chunk_indexes": {"ok": not missing_indexes, "missing": missing_indexes,
                          "expected": {"files_id": 1, "n": 1}},
        "legacy_uploads": _legacy(config.get("AVENUE_LEGACY_UPLOADS_DIR") or "", swept),
        "quota": {"bytes": quota_bytes or None, "used_bytes": used, "used_source": source,
                  "percent": percent, "level": quota_level(percent) if percent is not None else "ok"},
        "notes": notes,
    }
