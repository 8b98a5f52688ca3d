"""The media core: every image the app keeps, in GridFS, behind one small interface.

Blueprints use only what this package exports: a :class:`Library` per bucket (fetch, page,
store, bring from another bucket, delete, delete leases, claim) answering in :class:`Image`
records, the API's image object, and the limits and URL signer an app is configured with.

Inside, the code is in wings, each importing only the ones below it (the ``media-wings``
import-linter contract):

- ``serve``: what a media URL names and the one HTTP decision (``http``), the Flask
  ``route``, the WSGI ``frontdoor``, every worker's ``cache``, the image ``objects``;
- ``store``: GridFS files (``storage``), an upload's original and variants in a crash-safe
  order (``originals``), the ``library``, the ``trash``, ``replace`` in place, ``scan``
  (indexed reads and the few writes ops and status make to a bucket);
- ``ingest`` (bytes in, what to write out: validation, stripping, decoding, variants) and
  ``effects`` (what follows a write: counters, facets, cache invalidation, CDN purges);
- the kernel here: ``buckets``, ``records``, ``alttext`` (alt text suggested without a
  model), ``names`` (readable names in public URLs), ``options`` (what an upload is stored as),
  ``paths``, ``settings`` (the app's, handed in by ``init_app``: only ``serve.route``, the
  Flask side, reads ``current_app``), ``references`` (the interface the owners of documents
  that use images implement, and the registry the app factory fills).

Nothing outside the package imports a wing's modules (the ``media-interface`` contract):
ops get what they need beneath the library from here too, ``scan`` as a namespace of indexed
reads and writes; nothing else reads ``*.files`` or ``*.chunks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from avenue.media.alttext import (
    MAX_ALT_BATCH,
    MAX_ALT_LENGTH,
    MAX_ALT_SUGGESTION,
    MAX_SUGGESTIONS,
    AltChange,
    AltContext,
    chosen_alt,
    clean_alt,
    colour_name,
    parse_alt_changes,
    suggest_alt,
)
from avenue.media.buckets import (
    ALIASES,
    BUCKETS,
    BUILDER,
    LEGACY_PREFIX,
    PRODUCTS,
    RENDITIONS,
    STORED,
    TEMP,
    TRASH,
    UPLOADS,
)
from avenue.media.effects.counters import count_bucket
from avenue.media.effects.counters import counters as media_counters
from avenue.media.effects.counters import of as bucket_counters
from avenue.media.effects.counters import recount as recount_bucket
from avenue.media.effects.facets import ROOT_FOLDER
from avenue.media.effects.facets import recount as recount_facets

# What the ops commands (gc, fsck, backup, placeholders, import-legacy) do beneath the
# library: single GridFS files read and deleted, the trash's expired entries, a lost variant
# rendered again, a worker-cache tombstone, and the ingest steps import-legacy runs on old
# files. Named here so that nothing outside the package imports a wing's internals.
from avenue.media.effects.invalidation import invalidate
from avenue.media.effects.purge import OUTBOX as PURGE_OUTBOX
from avenue.media.effects.purge import enable as enable_purges
from avenue.media.effects.uploads import per_hour as uploads_per_hour

# The image formats' registry (formats.py): what the OpenAPI document says of formats.
from avenue.media.formats import FALLBACKS, FORMATS, OFFERED
from avenue.media.ingest.edits import Box, Edits, check_crop_name, parse_crop, parse_edits
from avenue.media.ingest.focal import FocalPoint, parse_focal_point
from avenue.media.ingest.images import Limits, prepare, read_limited, sanitize_filename
from avenue.media.ingest.likeness import compute as compute_likeness
from avenue.media.ingest.likeness import parse_colour
from avenue.media.ingest.placeholders import compute as compute_placeholder
from avenue.media.names import MAX_NAME_LENGTH as MAX_IMAGE_NAME
from avenue.media.names import InvalidName, parse_name_body, slug_name
from avenue.media.options import UploadOptions
from avenue.media.records import Changed, Document, Image, Near, NearGroup, Stored, own_sha256, variant_ids
from avenue.media.references import IN_BATCH, References, Referrers, referrers, rewrite_lists
from avenue.media.references import init_app as register_referrers
from avenue.media.serve.frontdoor import FrontDoor, front_door_of, install_front_door
from avenue.media.serve.objects import UrlSigner, image_object, near_objects, ref_object
from avenue.media.serve.route import (
    bp,
    finish_after_answer,
    flush_deliveries,
    get_cache,
    init_app,
    start_deletion_sync,
    start_delivery_flush,
)

# ``scan``: ops' reads and writes of a bucket's files and chunks, by name (scan.walk_files, ...).
from avenue.media.store import deliveries, resumable, scan
from avenue.media.store.indexes import ensure_indexes
from avenue.media.store.library import (
    DELETE_LEASE,
    Claimant,
    DeleteLease,
    Library,
    Restored,
    TooManyTags,
    Trash,
    Trashed,
    listed,
)
from avenue.media.store.nearby import PENDING_FIELD as NEAR_PENDING
from avenue.media.store.originals import Upload, dedupe_key, delete_image
from avenue.media.store.regenerate import regenerate_variants
from avenue.media.store.renditions import Evicted
from avenue.media.store.renditions import evict as evict_renditions
from avenue.media.store.renditions import orphans as rendition_orphans
from avenue.media.store.renditions import total as rendition_total
from avenue.media.store.scan import (
    VARIANT_PATHS,
    has_chunk_index,
    originals_flagged,
    originals_lacking,
    originals_newest_first,
    temp_image_counts,
)
from avenue.media.store.scan import existing_ids as existing_files
from avenue.media.store.scan import file as file_doc
from avenue.media.store.scan import set_metadata as set_file_metadata
from avenue.media.store.storage import CHUNK_SIZE, delete_file, read_all, read_range
from avenue.media.store.trash import LISTED as TRASH_LIST
from avenue.media.store.trash import expired as trash_expired

__all__ = [
    "PURGE_OUTBOX", "enable_purges",
    "ALIASES", "BUCKETS", "BUILDER", "DELETE_LEASE", "LEGACY_PREFIX", "PRODUCTS", "ROOT_FOLDER", "TEMP",
    "UPLOADS",
    "Changed", "Claimant", "Document", "Image", "DeleteLease", "Library", "Limits", "Stored", "TooManyTags",
    "Upload", "UploadOptions",
    "UrlSigner",
    "FALLBACKS", "FORMATS", "OFFERED",
    # Near-duplicates and colours (ingest/likeness.py, store/nearby.py).
    "NEAR_PENDING", "Near", "NearGroup", "near_objects", "compute_likeness", "parse_colour",
    # Alt text suggested without a model (alttext.py): the shop and the builder give the context.
    "AltChange", "AltContext", "MAX_ALT_BATCH", "MAX_ALT_LENGTH", "MAX_ALT_SUGGESTION", "MAX_SUGGESTIONS",
    "chosen_alt",
    "clean_alt", "colour_name", "parse_alt_changes", "suggest_alt",
    # Readable names in public URLs (names.py): the rule, and Library.rename sets one.
    "InvalidName", "MAX_IMAGE_NAME", "parse_name_body", "slug_name",
    # Replace in place (replace.py): new bytes or a new focal point, same id, new URLs.
    "FocalPoint", "parse_focal_point",
    # Non-destructive edits and named crops (ingest/edits.py): validated in one place.
    "Box", "Edits", "check_crop_name", "parse_crop", "parse_edits",
    # Deleted media, restorable for AVENUE_TRASH_DAYS (trash.py).
    "Restored", "STORED", "TRASH", "Trash", "Trashed",
    # The media route, its WSGI front door and what they are given at start (route.py).
    "FrontDoor", "front_door_of", "install_front_door", "bp", "get_cache", "init_app",
    "ensure_indexes", "image_object", "limits_from_config", "ref_object", "signer_from_config",
    # Who refers to an image: each document owner's References, registered by the app
    # factory and asked through one Referrers (references.py).
    "IN_BATCH", "References", "Referrers", "referrers", "register_referrers", "rewrite_lists",
    # The scanning API ops and status read a bucket with (avenue/media/store/scan.py).
    "VARIANT_PATHS", "existing_files", "file_doc", "has_chunk_index", "originals_flagged",
    "originals_lacking",
    "originals_newest_first", "scan", "set_file_metadata", "temp_image_counts",
    # Per-bucket counters kept with every write, and their reconciliation (counters.py).
    "bucket_counters", "count_bucket", "media_counters", "recount_bucket",
    # Uploads per hour, counted as they are accepted (uploads.py): the dashboard's bars.
    "uploads_per_hour",
    # The library's per-folder and per-tag counts, kept with every write (facets.py).
    "recount_facets",
    # Beneath the library, for the ops commands.
    "CHUNK_SIZE", "compute_placeholder", "dedupe_key", "delete_file", "delete_image", "invalidate",
    "own_sha256", "prepare", "read_all", "read_limited", "read_range", "regenerate_variants",
    "sanitize_filename", "trash_expired", "variant_ids",
    # Renditions on request (store/renditions.py): their bucket, gc's orphans in it, their
    # running total and the byte budget's eviction; every worker's flush of what it served.
    "Evicted", "RENDITIONS", "evict_renditions", "rendition_orphans", "rendition_total",
    "flush_deliveries", "start_delivery_flush", "start_deletion_sync",
    # Uploads' variants rendered after their answer (store/pending.py): a stopping worker finishes them.
    "finish_after_answer",
    # Resumable uploads (store/resumable.py): state and bytes as they arrive, for avenue/tus/ and gc.
    "resumable",
    # Delivery numbers per image (store/deliveries.py): top, series, last served, retention.
    "deliveries",
    # The lists the API pages through, whose fences the status sweep builds (avenue/paging.py).
    "LISTS",
]

LISTS = (listed(UPLOADS), listed(BUILDER), TRASH_LIST)


def limits_from_config(config: Mapping[str, Any]) -> Limits:
    """The upload limits an app is configured with."""
    return Limits(
        max_bytes=config["AVENUE_MAX_UPLOAD_BYTES"],
        max_pixels=config["AVENUE_MAX_PIXELS"],
        max_frames=config["AVENUE_MAX_FRAMES"],
        max_total_pixels=config["AVENUE_MAX_TOTAL_PIXELS"],
        decode_budget_bytes=config.get("AVENUE_DECODE_BUDGET_BYTES", Limits.decode_budget_bytes),
        decode_wait_seconds=config.get("AVENUE_DECODE_WAIT_SECONDS", Limits.decode_wait_seconds),
    )


def signer_from_config(config: Mapping[str, Any], *, sources: bool = False) -> UrlSigner:
    """How an app builds media URLs (CDN base URL, signing key and lifetime); ``sources``:
    the caller may edit the images, and gets their unedited originals' signed URLs."""
    return UrlSigner(
        base_url=config["AVENUE_MEDIA_BASE_URL"],
        key=config["SECRET_KEY"],
        ttl_seconds=config["AVENUE_SIGNED_URL_TTL_SECONDS"],
        sources=sources,
        source_ttl_seconds=config.get("AVENUE_SOURCE_URL_TTL_SECONDS", 600),
    )
