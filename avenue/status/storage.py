"""storage-status: "where are the bytes, and do they survive a restart?".

Per bucket: files, originals, bytes and chunks (:mod:`avenue.media.scan`); the database's
size; the embedded database's data folder; the legacy uploads folder; the quota level.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pymongo.database import Database
from pymongo.errors import PyMongoError

from avenue.clock import isoformat
from avenue.db import LEGACY_PATHS
from avenue.media import (
    ALIASES,
    BUCKETS,
    LEGACY_PREFIX,
    PRODUCTS,
    Document,
    FilesScan,
    bucket_totals,
    chunk_count,
    has_chunk_index,
)

READ_BATCH = 5000  # documents per cursor batch
LIST_LIMIT = 100
LEVELS = ((95, "emergency"), (85, "critical"), (70, "warning"))


def _command(db: Database[Document], name: str, notes: list[str]) -> dict[str, Any] | None:
    try:
        return db.command(name)
    except (PyMongoError, NotImplementedError, TypeError) as error:
        # mongomock implements none of these, and a restricted user may not run them.
        notes.append(f"{name} is not available on this database ({type(error).__name__}).")
        return None


def _is_mongomock(db: Database[Document]) -> bool:
    return type(db.client).__module__.split(".")[0] == "mongomock"


def _persistent(db: Database[Document], notes: list[str]) -> bool | None:
    if _is_mongomock(db):
        notes.append("mongomock: an in-memory test database, nothing survives the process.")
        return False
    status = _command(db, "serverStatus", notes)
    engine = (status or {}).get("storageEngine") or {}
    return engine.get("persistent") if "persistent" in engine else None


def _bucket(db: Database[Document], bucket: str, indexed: bool,
            scan: FilesScan | None = None) -> dict[str, Any]:
    row = scan.stats() if scan is not None else bucket_totals(db, bucket)
    return {"alias": ALIASES[bucket], "files": row["files"], "originals": row["originals"],
            "bytes": row["bytes"], "chunks": chunk_count(db, bucket, indexed=indexed),
            "chunks_exact": indexed,
            "oldest_upload": isoformat(row["oldest"]), "newest_upload": isoformat(row["newest"]),
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


def _legacy(db: Database[Document], folder: str) -> dict[str, Any] | None:
    """The old uploads/ folder: what is on it and how much of that is not imported yet."""
    if not folder:
        return None
    root = Path(folder)
    report = {"path": str(root), "exists": root.is_dir(), "files": 0, "bytes": 0,
              "imported": 0, "not_imported": 0, "not_imported_bytes": 0, "not_imported_items": []}
    if not root.is_dir():
        return report
    sizes: dict[str, int] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        sizes[LEGACY_PREFIX + path.relative_to(root).as_posix()] = path.stat().st_size
    paths = list(sizes)
    # One read of legacy_paths rather than $in batches (quadratic on SecantusDB).
    recorded = {doc.get("path") for doc in
                db[LEGACY_PATHS].find({}, {"_id": 0, "path": 1}).batch_size(READ_BATCH)}
    imported = recorded & set(paths)
    pending = [p for p in paths if p not in imported]
    report.update(files=len(paths), bytes=sum(sizes.values()), imported=len(imported),
                  not_imported=len(pending), not_imported_bytes=sum(sizes[p] for p in pending),
                  not_imported_items=pending[:LIST_LIMIT])
    return report


def quota_level(percent: float) -> str:
    """ok / warning (70 %) / critical (85 %) / emergency (95 %)."""
    for threshold, level in LEVELS:
        if percent >= threshold:
            return level
    return "ok"


def storage_status(db: Database[Document], config: Mapping[str, Any],
                   scan: FilesScan | None = None) -> dict[str, Any]:
    """Where the bytes are and whether they survive a restart (``scan``: a fresh
    :func:`scan_files` of the products bucket, shared with products-status)."""
    notes: list[str] = []
    build = _command(db, "buildInfo", notes)
    persistent = _persistent(db, notes)
    buckets, missing_indexes = {}, []
    for bucket in BUCKETS.values():
        indexed = has_chunk_index(db, bucket)
        if not indexed:
            missing_indexes.append(bucket)
        buckets[bucket] = _bucket(db, bucket, indexed, scan if bucket == PRODUCTS else None)
    data_dir = config.get("AVENUE_EMBEDDED_DATA_PATH") or ""
    if data_dir and "secantusVersion" in (build or {}):
        # SecantusDB's dbStats reads every document of every collection while holding the
        # lock all other operations need, stalling every request (media included) on a big
        # store. Its storageSize is dataSize anyway; the data folder on disk, measured below,
        # is the real figure.
        stats = None
        notes.append("dbStats skipped on the embedded SecantusDB (it scans everything under a lock "
                      "that stalls every other request); data_dir.bytes_on_disk is the disk use.")
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
    gridfs_bytes = sum(b["bytes"] for b in buckets.values())
    if database["data_dir"]:
        used, source = database["data_dir"]["bytes_on_disk"], "embedded data folder on disk"
    elif stats:
        used = (stats.get("storageSize") or 0) + (stats.get("indexSize") or 0)
        source = "dbStats storageSize + indexSize"
    else:
        used, source = gridfs_bytes, "GridFS file lengths"
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
        "database_size": database,
        "chunk_indexes": {"ok": not missing_indexes, "missing": missing_indexes,
                          "expected": {"files_id": 1, "n": 1}},
        "legacy_uploads": _legacy(db, config.get("AVENUE_LEGACY_UPLOADS_DIR") or ""),
        "quota": {"bytes": quota_bytes or None, "used_bytes": used, "used_source": source,
                  "percent": percent, "level": quota_level(percent) if percent is not None else "ok"},
        "notes": notes,
    }
