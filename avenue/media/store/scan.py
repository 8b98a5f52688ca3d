"""Small reads of a bucket for ops and status, each answered by an index.

Nothing here reads a whole bucket: the totals are counters kept with every write
(:mod:`avenue.media.effects.counters`), and the status sweep (``avenue/status/sweep.py``) reads in
batches by ``_id``. An ``$in`` of thousands of ids costs time quadratic in its length on the
embedded SecantusDB, so callers keep theirs short.
"""

from __future__ import annotations

import datetime as dt

from pymongo.database import Database

from avenue.media.buckets import TEMP
from avenue.media.ingest.variants import CONTENT_TYPES, VARIANT_NAMES
from avenue.media.records import Document

CHUNK_INDEX = [("files_id", 1), ("n", 1)]
# Exact paths of every variant id an original can list (a projection cannot use wildcards).
VARIANT_PATHS = [(name, fmt) for name in VARIANT_NAMES for fmt in CONTENT_TYPES]


def temp_image_counts(db: Database[Document], moment: dt.datetime) -> dict[str, int]:
    """Temp images in all, still pending, and expired (not collected yet) at ``moment``: two
    counts on the ``metadata.expires_at`` index (only temp originals carry an expiry)."""
    files = db[f"{TEMP}.files"]
    pending = files.count_documents({"metadata.expires_at": {"$gt": moment}}, hint="expires_at")
    expired = files.count_documents({"metadata.expires_at": {"$lte": moment}}, hint="expires_at")
    return {"total": pending + expired, "pending": pending, "expired": expired}


def has_chunk_index(db: Database[Document], bucket: str) -> bool:
    """Whether the bucket's chunks have the ``{files_id: 1, n: 1}`` index GridFS readers need."""
    for info in db[f"{bucket}.chunks"].index_information().values():
        if [(name, int(direction)) for name, direction in info["key"]] == CHUNK_INDEX:
            return True
    return False
