"""The media core's second door: maintenance, what ops and status use beneath the library.

The library (``avenue.media``: a :class:`~avenue.media.Library` per bucket, answering in
:class:`~avenue.media.Image` records) is the door of the blueprints. This is the other one,
for the jobs that look at every file of a bucket rather than one image: ``flask gc``, ``fsck``
and ``backup`` (avenue/ops/), the re-render of stale renditions, the backfills
(placeholders, near-duplicates), the legacy import, the rendition budget, and the status sweep and
reports (avenue/status/, avenue/monitoring/). They read and write GridFS files and chunks
directly, so this door names the files documents' fields, the buckets' raw collections and
the counters' recounts; nothing else in the app does.

In the manner of Warehouse's ``IFileStorage`` (warehouse/packaging/interfaces.py), the door
is a list of names and nothing past it: ops and status import from here or from
``avenue.media`` only (the ``media-interface`` contract in pyproject.toml protects every
other module of the package). Each name keeps the name it has where it is defined, except
where that name only means something inside its module (``counters.of``, ``scan.file``,
``renditions.remove``, ``near_hash.compute``): there the door gives it its full name once, and
every caller uses that.

Grouped by the job, as ``__all__`` below lists them:

- **the bucket's files and chunks** (``store/scan.py``, ``store/storage.py``): the indexed reads
  and the few writes gc, fsck, backup and the sweep make;
- **what a file is** (``records.py``): its own length and hash, its variants' ids;
- **removing** (``store/originals.py``, ``store/renditions.py``, ``store/trash.py``,
  ``store/resumable.py``): an image with its variants, renditions, the trash's expired, resumable
  uploads' expired pieces;
- **repairing** (``store/regenerate.py``, ``store/rerender.py``, ``effects/invalidation.py``,
  ``store/indexes.py``): variants rendered again, stale renditions re-rendered, caches told;
- **counting** (``effects/counters.py``, ``effects/facets.py``, ``effects/uploads.py``):
  the figures every write keeps, recounted from the files;
- **backfills** (``ingest/``, ``store/exact.py``, ``store/near_duplicates.py``): what an image computed
  later owes and the fields that say so;
- **who refers to images** (``references.py``): the referrers' interface, which the sweep and
  gc ask.
"""

from __future__ import annotations

from avenue.media.buckets import RENDITIONS, STORED, TRASH
from avenue.media.effects.counters import count_bucket, counters
from avenue.media.effects.counters import of as bucket_counters
from avenue.media.effects.counters import recount as recount_bucket
from avenue.media.effects.facets import recount as recount_facets
from avenue.media.effects.invalidation import invalidate
from avenue.media.effects.uploads import per_hour as uploads_per_hour
from avenue.media.ingest.images import prepare, read_limited, sanitize_filename
from avenue.media.ingest.near_hash import compute as compute_near_hash
from avenue.media.ingest.placeholders import compute as compute_placeholder
from avenue.media.records import content_length, own_length, own_sha256, variant_ids
from avenue.media.references import References, Referrers
from avenue.media.store.exact import PENDING_FIELD as EXACT_PENDING
from avenue.media.store.indexes import ensure_indexes
from avenue.media.store.library import LISTS
from avenue.media.store.near_duplicates import NEAR_GROUP
from avenue.media.store.near_duplicates import PENDING_FIELD as NEAR_PENDING
from avenue.media.store.originals import dedupe_key, delete_image
from avenue.media.store.regenerate import regenerate_variants
from avenue.media.store.renditions import Evicted, is_stale, remove_stale
from avenue.media.store.renditions import evict as evict_renditions
from avenue.media.store.renditions import orphans as rendition_orphans
from avenue.media.store.renditions import remove as remove_renditions
from avenue.media.store.renditions import total as rendition_total
from avenue.media.store.rerender import BeforeSwitch, rerender, stale_of
from avenue.media.store.resumable import collect_expired
from avenue.media.store.resumable import parked as parked_uploads
from avenue.media.store.scan import (
    ORIGINALS,
    VARIANT_PATHS,
    chunk_owners,
    chunk_stats,
    chunk_totals,
    chunks_of,
    count_files,
    delete_chunks,
    delete_orphan_chunks,
    existing_ids,
    expired_originals,
    files_by_id,
    gridfs_collections,
    has_chunk_index,
    has_file,
    insert_chunks,
    insert_file,
    missing_indexes,
    originals_flagged,
    originals_lacking,
    originals_newest_first,
    originals_without_expiry,
    rename_chunks,
    set_length,
    set_metadata,
    temp_image_counts,
    walk_files,
)
from avenue.media.store.scan import file as file_doc
from avenue.media.store.storage import CHUNK_SIZE, delete_file, read_all, read_range
from avenue.media.store.trash import expired as trash_expired

__all__ = [
    # The stored buckets, the renditions' bucket and the trash (buckets.py; the library's
    # buckets are avenue.media's), and the lists whose fences the sweep builds.
    "LISTS", "RENDITIONS", "STORED", "TRASH",
    # A bucket's files and chunks, read and written beneath the library (store/scan.py,
    # store/storage.py): gc, fsck, backup and the sweep.
    "CHUNK_SIZE", "ORIGINALS", "VARIANT_PATHS", "chunk_owners", "chunk_stats", "chunk_totals",
    "chunks_of", "count_files", "delete_chunks", "delete_file", "delete_orphan_chunks",
    "existing_ids", "expired_originals", "file_doc", "files_by_id", "gridfs_collections",
    "has_chunk_index", "has_file", "insert_chunks", "insert_file", "missing_indexes",
    "originals_flagged", "originals_lacking", "originals_newest_first", "originals_without_expiry",
    "read_all", "read_range", "rename_chunks", "set_length", "set_metadata", "temp_image_counts",
    "walk_files",
    # What a files document says of itself (records.py).
    "content_length", "own_length", "own_sha256", "variant_ids",
    # Removing: an image and its variants, renditions, the trash's expired, resumable uploads'
    # expired pieces and what they park (store/originals.py, renditions.py, trash.py, resumable.py).
    "Evicted", "collect_expired", "delete_image", "evict_renditions", "parked_uploads", "remove_renditions",
    "rendition_orphans", "rendition_total", "trash_expired",
    # Repairing: variants rendered again, stale renditions re-rendered, every worker's cache
    # told, the indexes (store/regenerate.py, rerender.py, effects/invalidation.py, store/indexes.py).
    "BeforeSwitch", "ensure_indexes", "invalidate", "is_stale", "regenerate_variants",
    "remove_stale", "rerender", "stale_of",
    # Counting: the figures every write keeps, recounted from the files (effects/counters.py,
    # effects/facets.py), and uploads per hour (effects/uploads.py).
    "bucket_counters", "count_bucket", "counters", "recount_bucket", "recount_facets",
    "uploads_per_hour",
    # Backfills and the legacy import: what an image computed later owes, and the fields that
    # say so (ingest/, store/exact.py, store/near_duplicates.py, store/originals.py).
    "EXACT_PENDING", "NEAR_GROUP", "NEAR_PENDING", "compute_near_hash", "compute_placeholder",
    "dedupe_key", "prepare", "read_limited", "sanitize_filename",
    # Who refers to images (references.py): the interface the sweep and gc ask.
    "References", "Referrers",
]
