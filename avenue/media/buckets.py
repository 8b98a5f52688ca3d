"""The GridFS buckets and the short names media URLs use for them."""

from __future__ import annotations

# URL alias -> bucket name.
BUCKETS: dict[str, str] = {
    "products": "product_images_data",
    "temp": "temp_images",
    "builder": "builder_media",
    "uploads": "uploads",
}
ALIASES: dict[str, str] = {bucket: alias for alias, bucket in BUCKETS.items()}

PRODUCTS = BUCKETS["products"]
TEMP = BUCKETS["temp"]
BUILDER = BUCKETS["builder"]
UPLOADS = BUCKETS["uploads"]

# Buckets whose every image is private whatever its metadata says: served only by a signed URL
# (no signature 404, ``Cache-Control: private``, never by the front door, the event loop or a
# CDN). Temp images are a product's photos before the product is saved: they are the uploading
# admin's until then (avenue/shop/service.py); once claimed, the product's copy is public.
SIGNED_ONLY = frozenset({TEMP})

# Where the old app kept uploads on local disk: image references starting with this are
# legacy paths that ``import-legacy`` moves into GridFS.
LEGACY_PREFIX = "/uploads/"

# Deleted media, restorable until purged (avenue/media/store/trash.py): not served, so not in
# BUCKETS; every scan of every stored file (gc, fsck, backup, indexes) includes it.
TRASH = "media_trash"
STORED = (*BUCKETS.values(), TRASH)

# Renditions on request (avenue/media/store/renditions.py): rendered on a URL's first request,
# served through their image's URLs, never by an alias of their own; not in STORED (they
# are derived, never backed up or listed), so gc, fsck and the indexes name it themselves.
RENDITIONS = "media_renditions"


class Buckets:
    """What the library door (``avenue.media``) lends of this module, under one name: the
    buckets by their names in the code (``Buckets.PRODUCTS``), alias to bucket (``BY_ALIAS``)
    and back (``ALIASES``), and where the old app kept uploads (``LEGACY_PREFIX``)."""

    PRODUCTS = PRODUCTS
    TEMP = TEMP
    BUILDER = BUILDER
    UPLOADS = UPLOADS
    BY_ALIAS = BUCKETS
    ALIASES = ALIASES
    LEGACY_PREFIX = LEGACY_PREFIX
