"""The document's hand-written components: the objects many answers share (the image object,
a trashed item, a page, a user...) and the status reports' shapes. The answers the code builds
as models are the models' own (``SHAPES`` in ``avenue/apidoc/common.py``)."""

from __future__ import annotations

from avenue.admin.deliveries import DeliveredImage
from avenue.admin.service import AuditEntry
from avenue.apidoc.common import (
    SHAPES,
    SLUG,
    TIME,
    Schema,
    _component,
    _ref,
)
from avenue.auth.service import User
from avenue.links.store import UploadLink
from avenue.media import NearDuplicate

# The document states the declared limits and registries as they are (the media-interface
# contract lets it read the kernel modules named in pyproject.toml).
from avenue.media.formats import FALLBACKS, FORMATS, OFFERED
from avenue.media.names import MAX_NAME_LENGTH as MAX_IMAGE_NAME
from avenue.monitoring.alerts import Alert
from avenue.shapes import OBJECT_ID, schema_of
from avenue.shop.service import Product
from avenue.status.products import ProductsStatus
from avenue.status.storage import StorageStatus
from avenue.trash.service import TrashItem

VARIANTS = ("thumb", "card", "gallery", "og")
_EXTENSION = {fmt.name: fmt.extension for fmt in FORMATS}
_VECTOR = next(fmt for fmt in FORMATS if fmt.vector)


SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object", "required": ["error"], "additionalProperties": False,
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "pattern": "^[a-z0-9_]+$"},
                "message": {"type": "string"},
                "request_id": {"type": "string", "description": "The X-Request-ID of this request."},
                "file": {"type": "string", "description": "The refused file of an upload."},
            },
            "additionalProperties": True,  # details of some errors (retry_after, index, ...)
        }},
    },
    "Image": {
        "type": "object",
        "required": ["id", "url", "content_type", "width", "height", "bytes", "sha256", "filename",
                     "variants", "uploaded_at"],
        "properties": {
            "id": OBJECT_ID,
            "url": {"type": "string", "description": "Signed and expiring for private uploads."},
            "content_type": {"type": ["string", "null"], "description":
                             f"The original's: {', '.join(f.mime for f in FORMATS if f.stored)}. "
                             f"{_VECTOR.mime} only in the builder's library: the original is the "
                             "sanitised SVG, its variants and renditions are rasters drawn from it."},
            "width": {"type": ["integer", "null"], "description": "An SVG's: the size it declares, scaled "
                      "down to AVENUE_MAX_PIXELS when it declares more."},
            "height": {"type": ["integer", "null"]},
            "bytes": {"type": ["integer", "null"]}, "sha256": {"type": ["string", "null"]},
            "filename": {"type": ["string", "null"]},
            "variants": {"type": "object", "additionalProperties": {"type": "string"},
                         "properties": {name: {"type": "string"} for name in VARIANTS}},
            "variant_urls": {"type": "object",
                             "additionalProperties": {"type": "object",
                                                      "additionalProperties": {"type": "string"}}},
            "variant_sizes": {"type": "object", "additionalProperties": {
                "type": "object", "required": ["width", "height"],
                "properties": {"width": {"type": "integer"}, "height": {"type": "integer"}}}},
            "srcset": {"type": "object", "additionalProperties": {"type": "string"},
                       "description": f"Per format ({', '.join(f.extension for f in FORMATS if f.variant)}): "
                                      "the fitted variants and widths."},
            "renditions": {
                "type": ["object", "null"], "required": ["widths", "srcset", "fallback", "src"],
                "additionalProperties": False,
                "description": "Renditions on request over the width ladder, up to the image's own width "
                               "(never upscaled), for one <picture>: a srcset per format (avif, webp, and "
                               "the fallback: jpg, or png for an image with transparency), the widths they "
                               "list, and an <img src> (the fallback at 800 px, or narrower). Public URLs "
                               "are unsigned (on the allow-list); a private image's are signed and expire "
                               "like its other URLs. Null when the width is unknown.",
                "properties": {
                    "widths": {"type": "array", "items": {"type": "integer", "minimum": 1}},
                    "srcset": {"type": "object", "required": [_EXTENSION[name] for name in OFFERED],
                               "additionalProperties": {"type": "string"},
                               "properties": {_EXTENSION[name]: {"type": "string"}
                                              for name in (*OFFERED, *FALLBACKS)}},
                    "fallback": {"enum": [_EXTENSION[name] for name in FALLBACKS]},
                    "src": {"type": "string"},
                },
            },
            "frames": {"type": "integer", "minimum": 1},
            "visibility": {"enum": ["public", "private"]},
            "uploaded_at": TIME,
            "expires_at": {"type": "string", "format": "date-time"},
            "alt": {"type": ["string", "null"]},
            "name": {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$", "maxLength": MAX_IMAGE_NAME,
                     "description": "Its readable name (PUT …/name), when it has one; public images only."},
            "named_url": {"type": "string", "description": "The original under its readable name: "
                          "/media/<alias>/<id>[~<version>]/name/<name>.<ext>; other names of the id "
                          "answer 301 to it (docs/media.md, \"Readable names\")."},
            "owner": {"type": ["string", "null"]},
            "used_in": {"type": "array", "items": SLUG},
            "also_on": {"type": "array", "items": {"type": "string"},
                        "description": "One product's photo (GET /api/shop/products/{sku}): the other "
                                       "products that use the same stored photo (deduplicated)."},
            "blurhash": {"type": "string", "minLength": 6, "maxLength": 100,
                         "description": "A BlurHash (4x3 components) to draw while the image loads."},
            "color": {"type": ["string", "null"], "pattern": "^#[0-9a-f]{6}$",
                      "description": "The dominant colour of the visible pixels."},
            "focal_point": {"type": "object", "required": ["x", "y"], "additionalProperties": False,
                            "properties": {"x": {"type": "number", "minimum": 0, "maximum": 1},
                                           "y": {"type": "number", "minimum": 0, "maximum": 1}},
                            "description": "Where the subject is, 0..1 of width and height; crops keep it."},
            "version": {"type": "string", "pattern": "^([0-9a-f]{8})?$", "description":
                        "Which bytes the URLs name: empty until the image is replaced in place (PUT), then a "
                        "new value per replace or focal point change; the id stays, and the URLs of earlier "
                        "versions answer 308 to these for AVENUE_REPLACED_REDIRECT_DAYS, then 404 (a private "
                        "image's: 404 at once; its signed URLs sign the version)."},
            "edits": {"anyOf": [{"type": "null"}, {
                "type": "object", "required": ["rotate", "flip_horizontal", "flip_vertical", "crop"],
                "properties": {"rotate": {"enum": [0, 90, 180, 270]}, "flip_horizontal": {"type": "boolean"},
                               "flip_vertical": {"type": "boolean"},
                               "crop": {"type": ["object", "null"]}}}],
                      "description": "The non-destructive edits the picture was made with (null: none)."},
            "source": {"type": "object", "required": ["width", "height", "url"],
                       "properties": {"width": {"type": ["integer", "null"]},
                                      "height": {"type": ["integer", "null"]},
                                      "url": {"type": ["string", "null"]}},
                       "description": "The unedited original as oriented, and its URL: what an editor draws "
                                      "on. Edited: a URL signed for AVENUE_SOURCE_URL_TTL_SECONDS, served "
                                      "private, given only to callers who may edit the image (null for "
                                      "others). Not edited: the image's own URL."},
            "crops": {"type": "object", "additionalProperties": {
                "type": "object", "required": ["x", "y", "width", "height"],
                "properties": {k: {"type": "number"} for k in ("x", "y", "width", "height")}},
                      "description": "Named crops (fractions of the edited picture): renditions' c_<name>."},
            "folder": {"type": "string", "pattern": "^/", "description": "Library media: its folder."},
            "tags": {"type": "array", "items": {"type": "string"}, "description": "Library media: its tags."},
            "palette": {"type": "array", "maxItems": 5, "items": {
                "type": "object", "required": ["color", "share"],
                "properties": {"color": {"type": "string", "pattern": "^#[0-9a-f]{6}$"},
                               "share": {"type": "number", "minimum": 0, "maximum": 1}}},
                "description": "Its dominant colours, largest share first (images stored before "
                               "palettes: absent until `flask likeness` runs)."},
            "near_duplicates": {"type": "array", "items": _ref("NearDuplicate"), "description":
                                "An upload's answer and one library image: the images of the same bucket "
                                "that look like it (re-encoded, resized, slightly cropped), nearest first; "
                                "an upload's own only among uploads, never a trashed one. Left out of an "
                                "upload's answer when the lookup failed or was not over a twentieth of the "
                                "upload's time past its write, 5 ms to 1 s (the image is stored all the "
                                "same; the lookup links its group when it ends)."},
        },
    },
    "UnusedImage": {"allOf": [_ref("Image"), {"type": "object", "required": ["last_served"], "properties": {
        "last_served": {"type": ["string", "null"], "format": "date-time",
                        "description": "null: never served since delivery numbers were kept."}}}]},
    "LegacyImage": {
        "type": "object", "required": ["legacy", "url"],
        "properties": {"legacy": {"const": True}, "url": {"type": "string"},
                       "source": {"type": ["string", "null"]}},
        "description": "An old /uploads/... reference not imported yet (see import-legacy).",
    },
    "Page": {
        "type": "object", "required": ["slug", "title", "published", "blocks", "created_at", "updated_at"],
        "properties": {
            "slug": {"type": "string"}, "title": {"type": "string"}, "published": {"type": "boolean"},
            "blocks": {"type": "array", "items": {"type": "object", "required": ["type"], "properties": {
                "type": {"type": "string"}, "media_id": {"type": "string"},
                "url": {"type": "string"}, "variants": {"type": "object"}, "missing": {"const": True}}}},
            "media_ids": {"type": "array", "items": {"type": "string"}},
            "created_at": TIME, "updated_at": TIME, "legacy": {"const": True},
        },
    },
    "Report": {
        "type": "object", "required": ["report"],
        "properties": {"report": {
            "type": "object", "required": ["generated_at", "age_seconds", "stale", "counts", "compute_ms"],
            "properties": {"generated_at": TIME,
                           "age_seconds": {"type": "number", "minimum": 0,
                                           "description": "0: the counts were read for this answer; "
                                                          "else how old the held report is (stale)."},
                           "compute_ms": {"type": ["number", "null"]},
                           "stale": {"type": "boolean", "description":
                                     "True when the database did not answer within "
                                     "AVENUE_STATUS_ANSWER_MS: the worker's last report, answered "
                                     "again (counts says as of when)."},
                           "counts": {"type": "string"}},
        }, "sweep": {
            "type": "object",
            "required": ["generated_at", "age_seconds", "duration_seconds", "documents", "running",
                         "progress", "requested", "interval_seconds", "batch_size"],
            "properties": {"generated_at": TIME, "age_seconds": {"type": ["number", "null"]},
                           "running": {"type": "boolean"}, "requested": {"type": "boolean"},
                           "progress": {"type": ["object", "null"]},
                           "interval_seconds": {"type": ["number", "null"]},
                           "batch_size": {"type": ["integer", "null"]},
                           "documents": {"type": ["integer", "null"]},
                           "duration_seconds": {"type": ["number", "null"]}},
            "description": "The background sweep the lists come from: its age and progress.",
        }},
        "description": "A status report: counts from counters kept with every write (`report`), the "
                       "lists behind them from the last background sweep (`sweep`).",
    },
    "ProductsStatus": {"allOf": [_ref("Report"), schema_of(ProductsStatus, SHAPES)]},
    "StorageStatus": {"allOf": [_ref("Report"), schema_of(StorageStatus, SHAPES)]},
}


_component(Product)
_component(NearDuplicate)
_component(TrashItem)
_component(AuditEntry)
_component(DeliveredImage)
_component(User)
_component(Alert)


_component(UploadLink)
