"""The two debug reports ops read: products-status ("is every product photo safe?") and
storage-status ("where are the bytes, and do they survive a restart?").

Cost: nothing runs a query per product or per image. products-status reads the products once
(``{sku, images}``: totals, legacy string references and stored references from one pass)
and every files document of the products bucket once (:func:`scan_files`, no filter, no
projection); the cross checks (references to missing files, orphans, listed variants whose
file is gone) are set lookups in Python. storage-status aggregates each bucket's files and
counts its chunks. Computed together (warm-up, after an operation) they share the one read
of the products bucket.

Why this shape, measured on SecantusDB (which decodes every document it touches in Python;
there are no covered queries) with 2,000 products / 10,000 images = 90,000 files documents:
an existence check of the 80,000 listed variant ids by ``$in`` batches of 5,000 took 395 s
(an ``$in`` costs time quadratic in its length there: 200 ids 0.04 s, 2,000 ids 3 s); one
plain read of all 90,000 files documents takes ~4 s, the same read with a nested projection
~7 s (the server projects in Python), the index-routed read of the 10,000 originals alone
~2-3 s. On mongod all of these are ordinary scans of a few MB.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bson import ObjectId
from bson.errors import InvalidId
from pymongo.database import Database
from pymongo.errors import PyMongoError

from avenue.clock import isoformat, now
from avenue.media.buckets import ALIASES, BUCKETS, PRODUCTS, TEMP
from avenue.media.variants import CONTENT_TYPES, VARIANT_NAMES
from avenue.shop.service import LOCAL_PREFIX, PRODUCTS_COLLECTION

LIST_LIMIT = 100  # entries per list in a report; counts are always complete
ID_BATCH = 5000  # documents per cursor batch
CHUNK_INDEX = [("files_id", 1), ("n", 1)]
LEVELS = ((95, "emergency"), (85, "critical"), (70, "warning"))
# Exact paths of every variant id an original can list (a projection cannot use wildcards).
VARIANT_PATHS = [(name, fmt) for name in VARIANT_NAMES for fmt in CONTENT_TYPES]


# --- products-status -------------------------------------------------------------------


def _products(db: Database) -> dict:
    """Totals, legacy (string) references and stored references, from one read of the products.

    One pass instead of an aggregation per figure: on SecantusDB each read decodes every
    product again.
    """
    totals = {"products": 0, "with_images": 0, "references": 0}
    legacy = {"local": 0, "local_items": [], "external": 0, "external_items": []}
    refs: dict = {}  # stored file id -> [(sku, filename)]
    for product in db[PRODUCTS_COLLECTION].find({}, {"_id": 0, "sku": 1, "images": 1}).batch_size(ID_BATCH):
        images = product.get("images")
        images = images if isinstance(images, list) else []
        totals["products"] += 1
        totals["with_images"] += bool(images)
        totals["references"] += len(images)
        for entry in images:
            if isinstance(entry, str):
                kind = "local" if entry.startswith(LOCAL_PREFIX) else "external"
                legacy[kind] += 1
                if len(legacy[f"{kind}_items"]) < LIST_LIMIT:
                    legacy[f"{kind}_items"].append({"sku": product.get("sku"), "reference": entry})
            elif isinstance(entry, dict) and "id" in entry:
                refs.setdefault(_as_oid(entry["id"]), []).append((product.get("sku"), entry.get("filename")))
    return {"totals": totals, "legacy": legacy, "refs": refs}


def _as_oid(value):
    if isinstance(value, ObjectId):
        return value
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return value


@dataclass
class FilesScan:
    """What one read of a bucket's files documents tells both reports."""

    ids: set = field(default_factory=set)  # every files document's _id
    originals: dict = field(default_factory=dict)  # original id -> {filename, length, uploadDate}
    variants: dict = field(default_factory=dict)  # original id -> [{name, id}] it lists
    files: int = 0
    bytes: int = 0
    oldest: dt.datetime | None = None
    newest: dt.datetime | None = None

    def stats(self) -> dict:
        return {"files": self.files, "bytes": self.bytes, "originals": len(self.originals),
                "oldest": self.oldest, "newest": self.newest}


def scan_files(db: Database, bucket: str) -> FilesScan:
    """Read every files document of ``bucket`` once (no projection, no filter).

    Measured on SecantusDB at 450,000 files documents: one plain scan is cheaper than the
    index-routed read of the originals plus an existence check of every variant id (an
    ``$in`` of thousands of ids costs quadratic time there), and cheaper than the same scan
    with a nested projection, which the server evaluates in Python.
    """
    scan = FilesScan()
    for doc in db[f"{bucket}.files"].find({}).batch_size(ID_BATCH):
        file_id = doc["_id"]
        scan.ids.add(file_id)
        scan.files += 1
        scan.bytes += doc.get("length") or 0
        uploaded = doc.get("uploadDate")
        if isinstance(uploaded, dt.datetime):
            scan.oldest = uploaded if scan.oldest is None or uploaded < scan.oldest else scan.oldest
            scan.newest = uploaded if scan.newest is None or uploaded > scan.newest else scan.newest
        metadata = doc.get("metadata")
        if not isinstance(metadata, dict) or metadata.get("role") != "original":
            continue
        listed = metadata.get("variants") or {}
        scan.variants[file_id] = [
            {"name": f"{name}.{fmt}", "id": listed[name][fmt]["id"]} for name, fmt in VARIANT_PATHS
            if isinstance(listed.get(name), dict) and isinstance(listed[name].get(fmt), dict)
            and "id" in listed[name][fmt]]
        scan.originals[file_id] = {"filename": doc.get("filename"), "length": doc.get("length"),
                                   "uploadDate": uploaded}
    return scan


def _temp_counts(db: Database, moment: dt.datetime) -> dict:
    files = db[f"{TEMP}.files"]
    base = {"metadata.role": "original"}
    return {
        "total": files.count_documents(base),
        "pending": files.count_documents({**base, "metadata.expires_at": {"$gt": moment}}),
        "expired": files.count_documents({**base, "metadata.expires_at": {"$lte": moment}}),
    }


def _listing(count: int, items: list) -> dict:
    return {"count": count, "items": items[:LIST_LIMIT], "truncated": count > LIST_LIMIT}


def products_status(db: Database, moment: dt.datetime | None = None, scan: FilesScan | None = None) -> dict:
    """Counts and lists that answer "is every product photo safe?" (``scan``: a fresh
    :func:`scan_files` of the products bucket, to share one read with storage-status)."""
    moment = moment or now()
    products = _products(db)
    totals, legacy, refs = products["totals"], products["legacy"], products["refs"]
    scan = scan or scan_files(db, PRODUCTS)
    originals, variants = scan.originals, scan.variants

    missing = [{"sku": sku, "reference": str(file_id), "filename": filename}
               for file_id, users in refs.items() if file_id not in originals for sku, filename in users]
    orphan_ids = [file_id for file_id in originals if file_id not in refs]
    # An old /uploads/ path imported to this file still redirects to it: gc keeps those.
    # One read of legacy_paths (file_id has no index; an $in is quadratic on SecantusDB).
    redirected = set()
    if orphan_ids:
        redirected = {doc.get("file_id") for doc in db.legacy_paths.find({}, {"_id": 0, "file_id": 1})
                      .batch_size(ID_BATCH)} & set(orphan_ids)
    orphans = [{"id": str(i), "filename": originals[i].get("filename"), "bytes": originals[i].get("length"),
                "uploaded_at": isoformat(originals[i].get("uploadDate")), "legacy_redirect": i in redirected}
               for i in orphan_ids]

    # A listed variant is present when its files document is (the scan read every one).
    missing_variants = []
    for original_id, entries in variants.items():
        gone = [entry["name"] for entry in entries if _as_oid(entry["id"]) not in scan.ids]
        if gone:
            missing_variants.append({"id": str(original_id), "missing": sorted(gone),
                                     "skus": sorted({sku for sku, _ in refs.get(original_id, [])})})

    stored = sum(len(users) for users in refs.values())
    report = {
        "generated_at": isoformat(moment),
        "products": {"total": totals["products"], "with_images": totals["with_images"],
                     "without_images": totals["products"] - totals["with_images"]},
        "references": {"total": totals["references"], "stored": stored,
                       "local_filesystem": legacy["local"], "external": legacy["external"]},
        "missing_files": _listing(len(missing), missing),
        "local_filesystem": _listing(legacy["local"], legacy["local_items"]),
        "external": _listing(legacy["external"], legacy["external_items"]),
        "temp_images": _temp_counts(db, moment),
        "orphans": {**_listing(len(orphans), orphans), "legacy_redirects": len(redirected),
                    "bytes": sum(originals[i].get("length") or 0 for i in orphan_ids)},
        "missing_variants": _listing(len(missing_variants), missing_variants),
        "stored_images": len(originals),
    }
    # Safe: every reference has its bytes (and variants) in MongoDB. External URLs are not
    # ours to lose, so they are reported but do not make the report unsafe.
    report["safe"] = not (missing or legacy["local"] or missing_variants)
    return report


# --- storage-status --------------------------------------------------------------------


def _command(db: Database, name: str, notes: list[str]) -> dict | None:
    try:
        return db.command(name)
    except (PyMongoError, NotImplementedError, TypeError) as error:
        # mongomock implements none of these, and a restricted user may not run them.
        notes.append(f"{name} is not available on this database ({type(error).__name__}).")
        return None


def _is_mongomock(db: Database) -> bool:
    return type(db.client).__module__.split(".")[0] == "mongomock"


def _persistent(db: Database, notes: list[str]) -> bool | None:
    if _is_mongomock(db):
        notes.append("mongomock: an in-memory test database, nothing survives the process.")
        return False
    status = _command(db, "serverStatus", notes)
    engine = (status or {}).get("storageEngine") or {}
    return engine.get("persistent") if "persistent" in engine else None


def _has_chunk_index(db: Database, bucket: str) -> bool:
    for info in db[f"{bucket}.chunks"].index_information().values():
        if [(field, int(direction)) for field, direction in info["key"]] == CHUNK_INDEX:
            return True
    return False


def _bucket(db: Database, bucket: str, indexed: bool, scan: FilesScan | None = None) -> dict:
    if scan is not None:
        row = scan.stats()
    else:
        rows = list(db[f"{bucket}.files"].aggregate([{"$group": {
            "_id": None, "files": {"$sum": 1}, "bytes": {"$sum": "$length"},
            "originals": {"$sum": {"$cond": [{"$eq": ["$metadata.role", "original"]}, 1, 0]}},
            "oldest": {"$min": "$uploadDate"}, "newest": {"$max": "$uploadDate"},
        }}]))
        row = rows[0] if rows else {"files": 0, "bytes": 0, "originals": 0, "oldest": None, "newest": None}
    chunks = db[f"{bucket}.chunks"]
    # With the chunk index the count walks the index, never the chunk data; without it only
    # the collection's own metadata count is affordable.
    if indexed:
        chunk_count = chunks.count_documents({}, hint=CHUNK_INDEX)
    else:
        chunk_count = chunks.estimated_document_count()
    return {"alias": ALIASES[bucket], "files": row["files"], "originals": row["originals"],
            "bytes": row["bytes"], "chunks": chunk_count, "chunks_exact": indexed,
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


def _legacy(db: Database, folder: str) -> dict | None:
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
        sizes[LOCAL_PREFIX + path.relative_to(root).as_posix()] = path.stat().st_size
    paths = list(sizes)
    # One read of legacy_paths rather than $in batches (quadratic on SecantusDB).
    recorded = {doc.get("path") for doc in
                db.legacy_paths.find({}, {"_id": 0, "path": 1}).batch_size(ID_BATCH)}
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


def storage_status(db: Database, config, scan: FilesScan | None = None) -> dict:
    """Where the bytes are and whether they survive a restart (``scan``: a fresh
    :func:`scan_files` of the products bucket, shared with products-status)."""
    notes: list[str] = []
    build = _command(db, "buildInfo", notes)
    persistent = _persistent(db, notes)
    buckets, missing_indexes = {}, []
    for bucket in BUCKETS.values():
        indexed = _has_chunk_index(db, bucket)
        if not indexed:
            missing_indexes.append(bucket)
        buckets[bucket] = _bucket(db, bucket, indexed, scan if bucket == PRODUCTS else None)
    data_dir = config.get("AVENUE_EMBEDDED_DATA_PATH") or ""
    if data_dir and "secantusVersion" in (build or {}):
        # SecantusDB's dbStats reads every document of every collection while holding the
        # lock all other operations need: at 450,000 files documents that stalled every
        # request (media included) for tens of seconds. Its storageSize is dataSize anyway;
        # the data folder on disk, measured below, is the real figure.
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


# --- both reports ----------------------------------------------------------------------

REPORTS = ("products-status", "storage-status")


def report_computes(db: Database, config, *, share_scan: bool = False) -> dict[str, Callable[[], dict]]:
    """Each report as a function of no arguments, for ``avenue/shop/reports.py``.

    With ``share_scan`` (computing both in a row: warm-up, after an operation) products-status
    reads the products bucket's files once and storage-status takes its totals from that
    read instead of aggregating the bucket again; the read is dropped once both have run.
    """
    if not share_scan:
        return {"products-status": lambda: products_status(db),
                "storage-status": lambda: storage_status(db, config)}
    shared: dict = {}

    def products() -> dict:
        shared["scan"] = scan_files(db, PRODUCTS)
        return products_status(db, scan=shared["scan"])

    def storage() -> dict:
        return storage_status(db, config, scan=shared.pop("scan", None))

    return {"products-status": products, "storage-status": storage}
