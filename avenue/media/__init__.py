"""The media core every blueprint uses: validation, variants, GridFS storage, serving."""

from __future__ import annotations

from avenue.media.buckets import ALIASES, BUCKETS, BUILDER, PRODUCTS, TEMP, UPLOADS
from avenue.media.images import Limits, PreparedImage, prepare, sanitize_filename
from avenue.media.indexes import ensure_indexes
from avenue.media.objects import UrlSigner, image_object, image_ref, ref_object
from avenue.media.originals import StoreResult, Upload, delete_image, store, store_all, transfer

__all__ = [
    "ALIASES", "BUCKETS", "BUILDER", "PRODUCTS", "TEMP", "UPLOADS",
    "Limits", "PreparedImage", "StoreResult", "Upload", "UrlSigner",
    "delete_image", "ensure_indexes", "image_object", "image_ref", "ref_object", "prepare",
    "sanitize_filename",
    "store", "store_all",
    "transfer", "limits_from_config", "signer_from_config",
]


def limits_from_config(config) -> Limits:
    """The upload limits an app is configured with."""
    return Limits(
        max_bytes=config["AVENUE_MAX_UPLOAD_BYTES"],
        max_pixels=config["AVENUE_MAX_PIXELS"],
        max_frames=config["AVENUE_MAX_FRAMES"],
        max_total_pixels=config["AVENUE_MAX_TOTAL_PIXELS"],
    )


def signer_from_config(config) -> UrlSigner:
    """How an app builds media URLs (CDN base URL, signing key and lifetime)."""
    return UrlSigner(
        base_url=config["AVENUE_MEDIA_BASE_URL"],
        key=config["SECRET_KEY"],
        ttl_seconds=config["AVENUE_SIGNED_URL_TTL_SECONDS"],
    )

