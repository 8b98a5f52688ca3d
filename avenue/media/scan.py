"""Bulk reads of a bucket for ops and status: what they need without touching raw collections.

Each function reads in batches and returns plain numbers, sets or small dataclasses. The
shapes are chosen for the embedded SecantusDB as much as for mongod: one plain scan of a
bucket's files documents is cheaper there than an index-routed read of the originals plus
an existence check of every variant id (an ``$in`` of thousands of ids costs time quadratic
in its length on that server), and cheaper than the same scan with a nested projection,
which that server evaluates in Python. On mongod all of these are ordinary scans.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pymongo.database import Database

from avenue.media.buckets import TEMP
from avenue.media.records import Document
from avenue.media.variants import CONTENT_TYPES, VARIANT_NAMES

BATCH = 5000  # documents per cursor batch
CHUNK_INDEX = [("files_id", 1), ("n", 1)]
# Exact paths of every variant id an original can list (a projection cannot use wildcards).
VARIANT_PATHS = [(name, fmt) for name in VARIANT_NAMES for fmt in CONTENT_TYPES]


@dataclass
class FilesScan:
    """What one read of a bucket's files documents tells both reports."""

    ids: set[Any] = field(default_factory=set)  # every files document's _id
    originals: dict[str, Any] = field(default_factory=dict)  # original id -> {filename, length, uploadDate}
    variants: dict[str, Any] = field(default_factory=dict)  # original id -> [{name, id}] it lists
    files: int = 0
    bytes: int = 0
    oldest: dt.datetime | None = None
    newest: dt.datetime | None = None

    def stats(self) -> dict[str, Any]:
        return {"files": self.files, "bytes": self.bytes, "originals": len(self.originals),
                "oldest": self.oldest, "newest": self.newest}


def scan_files(db: Database[Document], bucket: str) -> FilesScan:
    """Read every files document of ``bucket`` once (no projection, no filter: see above)."""
    scan = FilesScan()
    for doc in db[f"{bucket}.files"].find({}).batch_size(BATCH):
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


def temp_image_counts(db: Database[Document], moment: dt.datetime) -> dict[str, int]:
    """Temp images in all, still pending, and expired (not collected yet) at ``moment``."""
    files = db[f"{TEMP}.files"]
    base = {"metadata.role": "original"}
    return {
        "total": files.count_documents(base),
        "pending": files.count_documents({**base, "metadata.expires_at": {"$gt": moment}}),
        "expired": files.count_documents({**base, "metadata.expires_at": {"$lte": moment}}),
    }


def has_chunk_index(db: Database[Document], bucket: str) -> bool:
    """Whether the bucket's chunks have the ``{files_id: 1, n: 1}`` index GridFS readers need."""
    for info in db[f"{bucket}.chunks"].index_information().values():
        if [(name, int(direction)) for name, direction in info["key"]] == CHUNK_INDEX:
            return True
    return False


def bucket_totals(db: Database[Document], bucket: str) -> dict[str, Any]:
    """Files, bytes, originals and the oldest/newest upload of a bucket (one aggregation)."""
    rows = list(db[f"{bucket}.files"].aggregate([{"$group": {
        "_id": None, "files": {"$sum": 1}, "bytes": {"$sum": "$length"},
        "originals": {"$sum": {"$cond": [{"$eq": ["$metadata.role", "original"]}, 1, 0]}},
        "oldest": {"$min": "$uploadDate"}, "newest": {"$max": "$uploadDate"},
    }}]))
    return rows[0] if rows else {"files": 0, "bytes": 0, "originals": 0, "oldest": None, "newest": None}


def chunk_count(db: Database[Document], bucket: str, *, indexed: bool) -> int:
    """How many chunks the bucket holds: exact when the chunk index exists (the count walks
    the index, never the chunk data); otherwise the collection's own metadata count."""
    chunks = db[f"{bucket}.chunks"]
    if indexed:
        return chunks.count_documents({}, hint=CHUNK_INDEX)
    return chunks.estimated_document_count()
