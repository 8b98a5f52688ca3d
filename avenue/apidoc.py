"""The OpenAPI 3.1 document of the whole ``/api/`` surface, served at ``/api/openapi.json``.

Built in Python next to the views (rather than a YAML file) so its limits are the code's own
constants and one helper states the error responses every operation shares. It cannot drift
unnoticed: ``tests/api/test_openapi.py`` checks that every URL rule under ``/api/`` and each of
its methods is in it, validates every response of a scenario that calls every endpoint
against it, and runs schemathesis against the app. ``docs/api.md`` is the contract in prose
(its endpoint tables generated from this document by ``docs/generate.py``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from avenue.auth.service import Credentials
from avenue.builder.service import (
    MAX_BULK_IDS,
    Bulk,
    BulkResult,
    Folders,
    LibraryQuery,
    MediaChange,
    Merge,
    Merged,
    PageWrite,
    Tags,
)
from avenue.bulk.service import ZipReport
from avenue.bulk.urls import URL_CODES, LibraryUrlImport, ProductUrlImport, UrlReport
from avenue.http import ComparisonAnswer, Versions
from avenue.links.service import LinkUploaded
from avenue.links.store import UploadLink
from avenue.media import CropBody, EditsBody, FocalBody

# The document states the formats' registry and the limits of alt text and image names as
# they are declared (the media-interface contract lets it read those three kernel modules).
from avenue.media.alttext import (
    MAX_ALT_LENGTH,
    MAX_ALT_SUGGESTION,
    MAX_SUGGESTIONS,
    AltChanges,
)
from avenue.media.formats import FALLBACKS, FORMATS, OFFERED
from avenue.media.names import MAX_NAME_LENGTH as MAX_IMAGE_NAME
from avenue.media.names import NameBody
from avenue.monitoring.history import History
from avenue.ops.rerender import RerenderRun, RerenderStatus, RunProgress
from avenue.paging import COUNT_LIMIT, MAX_CURSOR_LENGTH, MAX_OFFSET, MAX_PER_PAGE
from avenue.shapes import OBJECT_ID, Answer, Shape, parameters_of, schema_of
from avenue.shop.service import ImageOrder, NewProduct, Product, ProductChange
from avenue.status.storage import StorageStatus
from avenue.tus.service import TusUpload

bp = Blueprint("apidoc", __name__, url_prefix="/api")

Schema = dict[str, Any]
TIME = {"type": ["string", "null"], "format": "date-time"}
INT0 = {"type": "integer", "minimum": 0}
NAMED = {"type": ["string", "null"]}
#: A product's image reference in a status list: the product's name and what it names.
REFERENCE = {"sku": NAMED, "reference": {"type": "string"}}


def _status_list(item: dict[str, Any], description: str,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A list of a status report: its count, its first entries (``item``'s fields) and whether
    it was cut; ``extra``: totals kept beside the list."""
    return {"type": "object", "required": ["count", "items", "truncated", *(extra or {})],
            "properties": {"count": INT0, "truncated": {"type": "boolean"},
                           "items": {"type": "array", "items": {"type": "object", "properties": item}},
                           **(extra or {})},
            "description": description}
SKU = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}
SLUG = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$"}
VARIANTS = ("thumb", "card", "gallery", "og")
_EXTENSION = {fmt.name: fmt.extension for fmt in FORMATS}
_VECTOR = next(fmt for fmt in FORMATS if fmt.vector)
TAGS = ("auth", "shop", "status", "builder", "uploads", "tus", "links", "trash", "admin", "meta")


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR_MEANINGS = {
    400: "Malformed request (bad JSON, a missing or invalid field, bad pagination, malformed HTTP).",
    401: "Not logged in (or a bad token).",
    403: "Not allowed (role, or a missing/invalid CSRF token on a cookie request).",
    404: "Unknown (or not yours: no existence leak).",
    408: "The request's head or body did not arrive in time (the app server's own answer).",
    409: "Conflict (e.g. the sku exists, media still used by a page, the image busy being replaced "
         "or deleted, a concurrent change; a tus Upload-Offset that is not the upload's); reload and "
         "try again.",
    410: "Gone: a resumable upload that expired (AVENUE_TUS_EXPIRY_SECONDS), start a new one; an "
         "image's earlier version no longer kept (past AVENUE_TRASH_DAYS, or its bytes left the trash): "
         "version_gone.",
    412: "A tus request without Tus-Resumable: 1.0.0 (the answer names the version in Tus-Version).",
    413: "Too large (body, file, pixels).",
    414: "The request line (path and query string) is longer than the app server takes (4094 bytes).",
    415: "Unsupported type (not an accepted image format; an SVG anywhere but a new upload to the builder's "
         "library: svg_not_accepted; an SVG whose DOCTYPE declares entities: svg_doctype).",
    417: "An Expect header other than 100-continue (the app server's own answer).",
    422: "Valid request, unusable content (corrupt image, too many images, bad order).",
    429: "Rate limited; Retry-After says when to try again.",
    431: "Header fields larger or more than the app server takes.",
    460: "A tus PATCH whose bytes do not match its Upload-Checksum (nothing of it was kept).",
    501: "A Transfer-Encoding other than chunked (the app server's own answer).",
    502: "A URL import whose server could not be reached or answered an error, or redirected too often.",
    503: "Database down, not answering in time, or reporting trouble of its own (an internal error, a full "
         "disk, a shutdown: `database_unavailable`), or the server busy; Retry-After says when to try again.",
    504: "A URL import whose fetch did not end within AVENUE_URL_IMPORT_SECONDS.",
}

# What any request can get, whatever its operation, so every operation lists it: the app
# server's own refusals before the app sees the request (gunicorn's parser and limits, whose
# limit_request_line makes a long query string or path a 414; avenue/server.py's 408 for a
# slow client); a body over its route's limit, which every route has, even one that reads
# none (avenue/http.py, limit_request_body); and the database down, since every /api/ request
# first makes sure the indexes exist (avenue/readiness.py).
ANY_REQUEST = (400, 408, 413, 414, 417, 431, 501, 503)
MULTIPART = "multipart/form-data"



def _groups_page(**fields: Schema) -> Schema:
    """The 200 of a list of image groups paged by cursor (near and exact duplicates): each group
    an id, ``fields`` and at least two images."""
    group = {"type": "object", "required": ["id", *fields, "images"],
             "properties": {"id": OBJECT_ID, **fields,
                            "images": {"type": "array", "minItems": 2, "items": _ref("Image")}}}
    return _json({"type": "object", "required": ["items", "per_page", "next"], "properties": {
        "items": {"type": "array", "items": group},
        "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
        "next": {"type": ["string", "null"], "description": "Send as `after`; null at the end."}}},
        "A page of groups.")

def _errors(*statuses: int) -> dict[str, Schema]:
    """The error responses ``statuses``, each the contract's error shape."""
    return {str(status): {"$ref": f"#/components/responses/E{status}"} for status in sorted(set(statuses))}


def _common_errors(security: list[Schema], body: Schema | None) -> set[int]:
    """The errors an operation answers for what it is rather than what it does: any request's,
    401 when it needs a login, 403 when a session must send its CSRF token, and an upload's
    refusals (an unaccepted or unusable image; every upload view is rate limited per user)."""
    statuses = set(ANY_REQUEST)
    if {} not in security:
        statuses.add(401)
    if security == LOGGED_IN_WRITE:
        statuses.add(403)
    if body is not None and MULTIPART in body["content"]:
        statuses |= {415, 422, 429}
    return statuses


def _page_params(*extra: Schema) -> list[Schema]:
    return [{"$ref": "#/components/parameters/page"}, {"$ref": "#/components/parameters/per_page"},
            {"$ref": "#/components/parameters/after"}, *extra]


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name: str, schema: Schema) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _multipart(properties: Schema, required: list[str]) -> Schema:
    return {"required": True, "content": {MULTIPART: {"schema": {
        "type": "object", "properties": properties, "required": required}}}}


def _body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


#: The objects request shapes nest (``#/components/schemas/<Name>``), filled by :func:`_shaped`,
#: and the answers declared as models that operations name by reference (Product).
SHAPES: dict[str, Schema] = {}


def _answer(model: type[Answer], description: str) -> Schema:
    """An answer the code builds as ``model`` (avenue/shapes.py): its schema is the model's."""
    return _json(schema_of(model, SHAPES), description)


def _component(model: type[Answer]) -> None:
    """``model``'s schema as ``#/components/schemas/<its name>``, for ``_ref``."""
    SHAPES[model.__name__] = schema_of(model, SHAPES)


def _shaped(model: type[Shape]) -> Schema:
    """The JSON body a view declares with ``@takes(model)`` (avenue/shapes.py): its schema is
    the model's, so the document says what the check does."""
    return _body(schema_of(model, SHAPES))


MEDIA_WITH_VERSION: Schema = {"allOf": [_ref("Image"), {"required": ["used_in", "version"]}]}


def _replace_ops(what: str, keeps: str, answer: Schema, *, tag: str, roles: str) -> tuple[Schema, Schema]:
    """The two operations of replace in place: ``PUT`` a new file, and ``PUT …/focal-point``."""
    replace = _op(f"Replace its bytes in place: {keeps}, new versioned URLs (the old ones redirect for "
                  "a while); the old bytes go to the trash.",
                  {"200": _json(answer, what), **_errors(404, 409)},
                  security=LOGGED_IN_WRITE, tags=[tag], roles=roles,
                  body=_multipart({"file": ONE_FILE}, ["file"]))
    focal = _op("Set where the subject is: the crops are cut again around it and the URLs change.",
                {"200": _json(answer, what), **_errors(404, 409)},
                security=LOGGED_IN_WRITE, tags=[tag], roles=roles, body=_shaped(FocalBody))
    return replace, focal


# Who may call: a bearer token decides alone; a session cookie needs the CSRF header to change
# anything; {} = anonymous allowed.
ANYONE: list[Schema] = [{}, {"bearerToken": []}, {"sessionCookie": []}]
LOGGED_IN_READ: list[Schema] = [{"bearerToken": []}, {"sessionCookie": []}]
LOGGED_IN_WRITE: list[Schema] = [{"bearerToken": []}, {"sessionCookie": [], "csrfToken": []}]


def _op(summary: str, responses: dict[str, Schema], *, security: list[Schema], tags: list[str],
        parameters: list[Schema] | None = None, body: Schema | None = None, roles: str = "") -> Schema:
    """An operation; ``responses`` are its answers and its own errors, those it shares with
    every operation of its kind are added here (:func:`_common_errors`)."""
    errors = {int(status) for status in responses if int(status) >= 400} | _common_errors(security, body)
    answers = {status: answer for status, answer in responses.items() if int(status) < 400}
    operation: Schema = {"summary": summary, "tags": tags, "security": security,
                         "responses": {**answers, **_errors(*errors)}}
    if roles:
        operation["description"] = f"Who: {roles}."
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    return operation


RANGES_FROM = _query("from", {"type": "string", "format": "date"},
                     "First UTC day (default: 29 days before to).")
RANGES_TO = _query("to", {"type": "string", "format": "date"}, "Last UTC day, included (default today).")
#: One image's delivery numbers per day (the admins' series and the library details panel's chart).
DELIVERY_SERIES = {"type": "object",
                   "required": ["image", "bucket", "days", "requests", "bytes", "last_served"],
                   "properties": {"image": OBJECT_ID, "bucket": {"type": "string"},
                                  "days": {"type": "array", "items": {"type": "object"}},
                                  "requests": {"type": "integer"}, "bytes": {"type": "integer"},
                                  "last_served": {"type": ["string", "null"]}}}


def _list_of(item: str) -> Schema:
    return {"type": "object", "required": ["items", "total", "page", "per_page"],
            "properties": {"items": {"type": "array", "items": _ref(item)},
                           "total": {"type": ["integer", "null"], "minimum": 0,
                                     "description": "The list's size where the service keeps it with every "
                                                    "write (products, a bucket's originals, one library "
                                                    "folder or tag); otherwise the matches counted up to "
                                                    f"{COUNT_LIMIT:,}."},
                           "total_exact": {"type": "boolean",
                                           "description": f"false when more than {COUNT_LIMIT:,} matched "
                                                          "and counting stopped there."},
                           "page": {"type": "integer", "minimum": 1},
                           "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
                           "next": {"type": ["string", "null"],
                                    "description": "Send as `after` for the next page; null at the end."}}}


NO_CONTENT = {"description": "Done; no body."}

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
    "NearDuplicate": {
        "type": "object", "required": ["id", "url", "distance"],
        "properties": {"id": OBJECT_ID, "url": {"type": "string"}, "thumb": {"type": ["string", "null"]},
                       "filename": {"type": ["string", "null"]},
                       "distance": {"type": "integer", "minimum": 0, "maximum": 12,
                                    "description": "Bits in which the two 64-bit perceptual hashes differ."}},
    },
    "TrashItem": {
        "type": "object",
        "required": ["id", "from", "filename", "bytes", "deleted_at", "purge_after", "references"],
        "properties": {
            "id": OBJECT_ID, "from": {"enum": ["products", "builder", "uploads", "temp"]},
            "filename": {"type": ["string", "null"]}, "content_type": {"type": ["string", "null"]},
            "format": {"type": ["string", "null"]},
            "width": {"type": ["integer", "null"]}, "height": {"type": ["integer", "null"]},
            "bytes": {"type": ["integer", "null"]}, "owner": {"type": ["string", "null"]},
            "alt": {"type": ["string", "null"]}, "placeholder": {"type": ["object", "null"]},
            "deleted_at": TIME, "purge_after": TIME,
            "references": {"type": "object", "properties": {
                "sku": {"type": "string", "description": "The product it was taken off."},
                "pages": {"type": "array", "items": SLUG,
                          "description": "Pages a forced delete cleaned (not rewritten on restore)."},
                "replaced_in": {**OBJECT_ID, "description": "An earlier version of this image, replaced in "
                                "place; restored, it comes back as an image of its own (a product photo: "
                                "onto its product again, at the end)."},
                "merged_into": {**OBJECT_ID, "description": "The image it was merged into; restored, the "
                                "page blocks the merge moved show it again."}}},
        },
        "description": "Deleted media, restorable until purge_after (AVENUE_TRASH_DAYS); never served.",
    },
    "DeliveredImage": {
        "type": "object", "required": ["bucket", "image", "requests", "bytes", "filename", "thumbnail"],
        "properties": {"bucket": {"type": "string"}, "image": OBJECT_ID,
                       "requests": {"type": "integer", "minimum": 0},
                       "bytes": {"type": "integer", "minimum": 0},
                       "filename": {"type": ["string", "null"],
                                    "description": "The image's file name (null: deleted since)."},
                       "thumbnail": {"type": ["string", "null"],
                                     "description": "Its thumb variant's URL (null: deleted since)."}},
        "description": "An image's answers and bytes over a range, as this origin served them (a CDN's "
                       "own answers are not in them).",
    },
    "UnusedImage": {"allOf": [_ref("Image"), {"type": "object", "required": ["last_served"], "properties": {
        "last_served": {"type": ["string", "null"], "format": "date-time",
                        "description": "null: never served since delivery numbers were kept."}}}]},
    "Alert": {
        "type": "object", "required": ["id", "kind", "level", "message", "at", "acknowledged"],
        "properties": {"id": OBJECT_ID, "kind": {"type": "string"},
                       "level": {"enum": ["warning", "critical", "emergency"]},
                       "message": {"type": "string"}, "value": {"type": ["number", "null"]},
                       "threshold": {"type": ["number", "null"]}, "at": TIME,
                       "acknowledged": {"type": "boolean"}, "acknowledged_at": TIME,
                       "acknowledged_by": {"type": ["string", "null"]},
                       "notified": {"type": ["object", "null"]}},
    },
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
    "User": {
        "type": "object", "required": ["id", "email", "role"], "not": {"required": ["password_hash"]},
        "properties": {"id": OBJECT_ID, "email": {"type": "string"},
                       "role": {"enum": ["admin", "editor", "ops"]}, "active": {"type": "boolean"},
                       "created_at": TIME, "last_login_at": TIME},
    },
    "AuditEntry": {
        "type": "object", "required": ["id", "at", "action", "actor", "ip", "target"],
        "properties": {"id": OBJECT_ID, "at": TIME, "action": {"type": ["string", "null"]},
                       "actor": {"type": ["object", "null"]}, "ip": {"type": ["string", "null"]},
                       "target": {"type": "object"}},
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
    "ProductsStatus": {"allOf": [_ref("Report"), {
        "type": "object",
        "required": ["generated_at", "products", "references", "missing_files", "local_filesystem",
                     "external", "temp_images", "orphans", "missing_variants", "stored_images", "safe"],
        "properties": {
            "generated_at": TIME,
            "safe": {"type": ["boolean", "null"],
                     "description": "Every product photo's bytes and variants are in MongoDB (external "
                                    "URLs are reported, not ours to lose); null until the first sweep "
                                    "finished."},
            "products": {"type": "object", "required": ["total", "with_images", "without_images"],
                         "properties": {"total": INT0, "with_images": INT0, "without_images": INT0}},
            "references": {"type": "object", "required": ["total", "stored", "local_filesystem", "external"],
                           "properties": {"total": INT0, "stored": INT0, "local_filesystem": INT0,
                                          "external": INT0},
                           "description": "Products' image references by kind, from the counters kept "
                                          "with every write."},
            "missing_files": _status_list({**REFERENCE, "filename": NAMED},
                                          "References to stored images whose bytes are gone."),
            "local_filesystem": _status_list(REFERENCE,
                                             "References still naming the old local uploads/ folder."),
            "external": _status_list(REFERENCE, "References to images outside Avenue (URLs)."),
            "temp_images": {"type": "object", "required": ["total", "pending", "expired"],
                            "properties": {"total": INT0, "pending": INT0, "expired": INT0}},
            "orphans": _status_list({"id": {"type": "string"}, "filename": {"type": ["string", "null"]},
                                     "bytes": {"type": ["integer", "null"]}, "uploaded_at": TIME,
                                     "legacy_redirect": {"type": "boolean"}},
                                    "Stored product images no product names (gc's candidates), with their "
                                    "bytes and how many an old uploads/ path still redirects to.",
                                    extra={"bytes": INT0, "legacy_redirects": INT0}),
            "missing_variants": _status_list({"id": {"type": "string"},
                                              "missing": {"type": "array", "items": {"type": "string"}},
                                              "skus": {"type": "array", "items": NAMED}},
                                             "Originals one of whose listed variants is gone."),
            "stored_images": INT0,
        },
    }]},
    "StorageStatus": {"allOf": [_ref("Report"), schema_of(StorageStatus, SHAPES)]},
}

_component(Product)
_component(UploadLink)
IMAGE_FILES = {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1}
ONE_FILE = {"type": "string", "format": "binary"}
FOLDER = {"type": "string", "maxLength": 600, "description": "/name/name…, at most 8 names."}
TAG = {"type": "string", "minLength": 1, "maxLength": 40}
ALT_SUGGESTIONS: Schema = {"type": "array", "maxItems": MAX_SUGGESTIONS, "items": {
    "type": "string", "minLength": 1, "maxLength": MAX_ALT_SUGGESTION},
    "description": "Alt texts built without a model from what Avenue knows (docs/media.md, \"Alt text "
                   "suggestions\"), best first."}


def _missing_alt_list(item: Schema) -> Schema:
    """A numbered page of the images missing alt text (``after`` is refused: a product or page holds few)."""
    listed = _list_of("Image")
    return {**listed, "properties": {**listed["properties"], "items": {"type": "array", "items": item}}}


ALT_RESULTS: Schema = {
    "type": "object", "required": ["results"], "properties": {"results": {"type": "array", "items": {
        "type": "object", "required": ["id", "status"], "properties": {
            "id": {"type": "string"},
            "status": {"enum": ["set", "unchanged", "not_found", "no_suggestion"],
                       "description": "set; unchanged (it had this text); not_found (not this product's "
                                      "photo or this page's image: nothing changed); no_suggestion (the "
                                      "image has no suggestion at that index: nothing changed)."},
            "alt": {"type": ["string", "null"], "description": "set / unchanged: its alt text now."}}}}}}
FORCE = _query("force", {"enum": ["1", "true", "yes", "0", "false", "no"]},
               "Delete even while pages use it (their blocks are marked missing).")
REFRESH = _query("refresh", {"enum": ["1", "true", "yes", "0"]},
                 "Ask for a status sweep now: it runs in the background (the answer comes at once, "
                 "with sweep.requested); the counts are current anyway.")

def _zip_import(summary: str, tag: str, roles: str) -> Schema:
    """A zip import: the archive as the body, the report as the answer, the archive's refusals."""
    operation = _op(summary, {"200": _answer(ZipReport, "Every entry and what became of it."),
                              **_errors(403, 413, 415, 422, 429, 503)},
                    security=LOGGED_IN_WRITE, tags=[tag], roles=roles)
    operation["description"] += (" The naming rule, the limits and the refusals: docs/api.md, "
                                 "\"Zip imports\".")
    operation["requestBody"] = {"required": True, "content": {
        "application/zip": {"schema": {"type": "string", "format": "binary"}}}}
    return operation


# Imports from a URL (avenue/bulk/urls.py, the guard avenue/urlfetch.py; docs/api.md "Imports
# from a URL"): what a refused URL answers, besides the body's own 400s.
URL_REFUSALS = (400, 403, 413, 415, 422, 429, 502, 504)
CSV_BODY: Schema = {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}},
    MULTIPART: {"schema": {"type": "object", "properties": {"file": ONE_FILE}, "required": ["file"]}}}}
#: What adding images to a product answers: the product and the images added.
PRODUCT_ADDED: Schema = {"type": "object", "required": ["product", "added"], "properties": {
    "product": _ref("Product"), "added": {"type": "array", "items": {"allOf": [
        _ref("Image"), {"type": "object", "properties": {
            "near_duplicates": {"type": "array", "items": _ref("NearDuplicate"),
                                "description": "Product images that look like it, nearest first (left out "
                                               "when the lookup failed or was late: ask "
                                               "…/{image_id}/near-duplicates)."}}}]}}}}
PRODUCT_PHOTO_REPLACE, PRODUCT_PHOTO_FOCAL = _replace_ops(
    "The product.", "same id and place on the product", _ref("Product"), tag="shop", roles="admin")
MEDIA_REPLACE, MEDIA_FOCAL = _replace_ops(
    "The media.", "same id, so every page keeps it", MEDIA_WITH_VERSION, tag="builder",
    roles="editor, admin")
# A replaced upload's answer names its new picture's near-duplicates, as an upload's does.
UPLOAD_WITH_NEAR: Schema = {"allOf": [_ref("Image"), {"required": ["near_duplicates"]}]}
UPLOAD_REPLACE, UPLOAD_FOCAL = _replace_ops(
    "The upload, with the owner's uploads that look like it (`near_duplicates`).", "same id and visibility",
    UPLOAD_WITH_NEAR, tag="uploads", roles="owner, admin")

# Non-destructive edits and named crops (avenue/media/ingest/edits.py; docs/api.md "Editing").
CROP_NAME: Schema = {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,31}$"}


def _edit_ops(what: str, answer: Schema, *, tag: str, roles: str) -> dict[str, Schema]:
    """The four editing operations of one owner: put and delete the edits, put and delete a
    named crop (each a new version with new URLs; unchanged when nothing changes)."""
    ok = {"200": _json(answer, what)}
    return {
        "edits_put": _op("Rotate, flip and crop the original, non-destructively: a new version with new URLs "
                         "(the same edits again: unchanged). 400 invalid_edits names the field.",
                         {**ok, **_errors(404, 409)}, security=LOGGED_IN_WRITE, tags=[tag], roles=roles,
                         body=_shaped(EditsBody)),
        "edits_delete": _op("Back to the original: a new version without edits (none: unchanged).",
                            {**ok, **_errors(404, 409)}, security=LOGGED_IN_WRITE, tags=[tag], roles=roles),
        "crop_put": _op("Set a named crop (fractions of the edited picture), asked for by renditions as "
                        "c_<name>: a new version. 400 invalid_crop, 409 too_many_crops past 16.",
                        {**ok, **_errors(404, 409)}, security=LOGGED_IN_WRITE, tags=[tag], roles=roles,
                        body=_shaped(CropBody)),
        "crop_delete": _op("Delete a named crop: a new version (404 crop_not_found).",
                           {**ok, **_errors(404, 409)}, security=LOGGED_IN_WRITE, tags=[tag], roles=roles),
    }


PRODUCT_PHOTO_EDITS = _edit_ops("The photo.", _ref("Image"), tag="shop", roles="admin")
MEDIA_EDITS = _edit_ops("The media.", MEDIA_WITH_VERSION, tag="builder", roles="editor, admin")
UPLOAD_EDITS = _edit_ops("The upload.", _ref("Image"), tag="uploads", roles="owner, admin")


def _edit_paths(prefix: str, params: list[Schema], ops: dict[str, Schema]) -> dict[str, Schema]:
    return {
        f"{prefix}/edits": {"parameters": params, "put": ops["edits_put"], "delete": ops["edits_delete"]},
        f"{prefix}/crops/{{name}}": {"parameters": [*params, _path("name", CROP_NAME)],
                                     "put": ops["crop_put"], "delete": ops["crop_delete"]},
    }


# An image's versions (avenue/media/store/versions.py; docs/api.md "Versions").
VERSION_ID: Schema = {"type": "string", "description": "A version id: 8 hex digits (as in the image's URLs); "
                                                        "anything else is 404 version_not_found."}


def _picture(mimetype: str, description: str) -> Schema:
    return {"description": description,
            "content": {mimetype: {"schema": {"type": "string", "format": "binary"}}}}


def _version_paths(prefix: str, params: list[Schema], answer: Schema, *, tag: str, roles: str
                   ) -> dict[str, Schema]:
    """The five operations on an image's versions: list, restore, preview, compare, heat map."""
    version = [*params, _path("version_id", VERSION_ID)]
    pair = [*version, _path("after", VERSION_ID)]
    read: dict[str, Any] = {"security": LOGGED_IN_READ, "tags": [tag], "roles": roles}
    return {
        f"{prefix}/versions": {"parameters": params, "get": _op(
            "Its current version and the earlier ones still kept (AVENUE_TRASH_DAYS), newest first: what "
            "changed, when, its size, until when it is kept and a small preview.",
            {"200": _answer(Versions, "The versions."),
             **_errors(403, 404)}, **read)},
        f"{prefix}/versions/{{version_id}}/restore": {"parameters": version, "post": _op(
            "Make an earlier version current again, as a new version (the one it replaces is kept as an "
            "earlier one): same id, new URLs, the old ones redirect. 404 version_not_found, 410 "
            "version_gone, 409 image_busy while a delete or another change holds the image.",
            {"200": _json(answer, "The image at the restored version."), **_errors(404, 409, 410)},
            security=LOGGED_IN_WRITE, tags=[tag], roles=roles)},
        f"{prefix}/versions/{{version_id}}/preview": {"parameters": version, "get": _op(
            "A small WebP (at most 320 px) of one version.",
            {"200": _picture("image/webp", "The preview."), **_errors(403, 404, 410)}, **read)},
        f"{prefix}/versions/{{version_id}}/compare/{{after}}": {"parameters": pair, "get": _op(
            "How version `after` differs from `version_id`: the share of pixels changed and a heat map's URL "
            "(made once per pair). 400 same_version for a version with itself.",
            {"200": _answer(ComparisonAnswer, "The comparison."), **_errors(403, 404, 410)}, **read)},
        f"{prefix}/versions/{{version_id}}/compare/{{after}}/heat-map": {"parameters": pair, "get": _op(
            "The heat map (PNG, at most 512 px) of what differs between two versions.",
            {"200": _picture("image/png", "The heat map."), **_errors(403, 404, 410)}, **read)},
    }


# Resumable uploads, tus 1.0.0 (avenue/tus/; docs/api.md "Resumable uploads").
TUS_RESUMABLE = {"name": "Tus-Resumable", "in": "header", "required": True,
                 "schema": {"const": "1.0.0"}, "description": "The protocol version; anything else is 412."}
TUS_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{24}$"}
TUS_OFFSET_HEADERS = {
    "Upload-Offset": {"schema": {"type": "string"}, "description": "Bytes received so far."},
    "Upload-Expires": {"schema": {"type": "string"}, "description": "When an unfinished upload expires."},
    "Avenue-Image-Id": {"schema": {"type": "string"},
                        "description": "Once every byte arrived: the id of the image it became."},
}
TUS_TARGET = ("Upload-Metadata: comma-separated `key base64(value)` pairs: `filename`, `filetype`, `target` "
              "(`uploads` (default), `builder`, `temp`, `product`), and per target `visibility`; `alt`, "
              "`folder`, `tags`; `sku`.")
TUS_WHO = "any logged-in user; builder: editor; temp, product: admin; then the upload's creator"


def _tus_op(summary: str, responses: dict[str, Schema], *statuses: int, write: bool = True,
            headers: list[Schema] | None = None, body: Schema | None = None) -> Schema:
    operation = _op(summary, {**responses, **_errors(412, *statuses)},
                    security=LOGGED_IN_WRITE if write else LOGGED_IN_READ, tags=["tus"], roles=TUS_WHO,
                    parameters=[TUS_RESUMABLE, *(headers or [])], body=body)
    return operation


def _header(name: str, description: str, required: bool = False) -> Schema:
    return {"name": name, "in": "header", "required": required, "schema": {"type": "string"},
            "description": description}


TUS_PATCH = _tus_op(
    "Bytes at Upload-Offset (at most AVENUE_TUS_CHUNK_MAX_BYTES per request); the request that brings the "
    "last byte stores the image through its target's own upload path (validation, dedupe, variants): a "
    "refusal there (415, 413, 422) deletes the upload.",
    {"204": {"description": "Received (and, with the last byte, stored).", "headers": TUS_OFFSET_HEADERS}},
    400, 404, 409, 410, 413, 415, 422, 429, 460,
    headers=[_header("Upload-Offset", "Where these bytes start: the upload's offset, else 409.", True),
             _header("Upload-Checksum", "`sha1|sha256|md5 base64(digest)` of this request's bytes; 460 when "
                                        "it does not match.")],
    body={"required": True, "content": {"application/offset+octet-stream": {
        "schema": {"type": "string", "format": "binary"}}}})
TUS_DELETE = _tus_op("Terminate the upload: its bytes are deleted (an image it became stays).",
                     {"204": NO_CONTENT}, 404, 410)

# One-time upload links (avenue/links/; docs/api.md "Upload links").
LINK_HOLDER: list[Schema] = [{"uploadLink": []}]
LINK_WHO = "whoever holds the link's secret (no account)"
LINK_CREATE = _body({
    "type": "object", "required": ["target"], "additionalProperties": False,
    "properties": {
        "target": _ref("LinkTarget"), "label": {"type": "string", "maxLength": 200},
        "max_bytes": {"type": "integer", "minimum": 1,
                      "description": "Per file; at most (and by default) AVENUE_MAX_UPLOAD_BYTES."},
        "max_uses": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "Files it takes (1)."},
        "expires_in": {"type": "integer", "minimum": 60,
                       "description": "Seconds (AVENUE_UPLOAD_LINK_DEFAULT_SECONDS; at most "
                                      "AVENUE_UPLOAD_LINK_MAX_SECONDS)."}}})
def _link_tus_op(summary: str, responses: dict[str, Schema], *statuses: int,
                 headers: list[Schema] | None = None, body: Schema | None = None) -> Schema:
    return _op(summary, {**responses, **_errors(403, 410, 412, *statuses)}, security=LINK_HOLDER,
               tags=["links"], roles=LINK_WHO, parameters=[TUS_RESUMABLE, *(headers or [])], body=body)


PATHS: dict[str, Schema] = {  # path items: operations by method, and shared parameters
    "/api/tus": {
        "post": _tus_op(
            "Create a resumable upload of Upload-Length bytes (tus 1.0.0 creation); the upload's URL is in "
            "Location. " + TUS_TARGET,
            {"201": {"description": "Created.", "headers": {
                "Location": {"schema": {"type": "string"}, "description": "The upload's URL."},
                "Upload-Expires": TUS_OFFSET_HEADERS["Upload-Expires"]}}},
            400, 403, 404, 413, 422, 429,
            headers=[_header("Upload-Length", "The file's size in bytes (at most Tus-Max-Size).", True),
                     _header("Upload-Metadata", TUS_TARGET)]),
        "options": {"summary": "What this tus server supports: Tus-Version, Tus-Extension (creation, "
                               "termination, expiration, checksum), Tus-Max-Size, Tus-Checksum-Algorithm.",
                    "tags": ["tus"], "security": [{}], "responses": {"204": NO_CONTENT}},
    },
    "/api/tus/{upload_id}": {
        "parameters": [_path("upload_id", TUS_ID)],
        "head": _tus_op("How many bytes arrived: Upload-Offset and Upload-Length (tus 1.0.0 core).",
                        {"200": {"description": "The offset.", "headers": {
                            **TUS_OFFSET_HEADERS, "Upload-Length": {"schema": {"type": "string"}}}}},
                        404, 410, write=False),
        "get": _op("The upload as JSON: offset, length, state, expiry and, once done, its image.",
                   {"200": _answer(TusUpload, "The upload."), **_errors(404, 410)},
                   security=LOGGED_IN_READ, tags=["tus"], roles=TUS_WHO),
        "patch": TUS_PATCH,
        "delete": TUS_DELETE,
        "post": _tus_op("X-HTTP-Method-Override: PATCH, DELETE or HEAD, as a POST (for clients that cannot "
                        "send those methods); answers as that method does.",
                        {**TUS_PATCH["responses"], "200": {"description": "As HEAD.",
                                                           "headers": TUS_OFFSET_HEADERS}},
                        400, 404, 409, 410, 413, 415, 422, 429, 460,
                        headers=[_header("X-HTTP-Method-Override", "PATCH, DELETE or HEAD.", True)],
                        body={"required": False, "content": {"application/offset+octet-stream": {
                            "schema": {"type": "string", "format": "binary"}}}}),
    },
    "/api/upload-links": {
        "post": _op("Create a one-time upload link into one target; its secret is in this answer only.",
                    {"201": _json({"type": "object", "required": ["link", "secret", "upload_url", "tus_url"],
                                   "properties": {"link": _ref("UploadLink"), "secret": {"type": "string"},
                                                  "upload_url": {"type": "string"},
                                                  "tus_url": {"type": "string"}}}, "Created."),
                     **_errors(404, 422)},
                    security=LOGGED_IN_WRITE, tags=["links"],
                    roles="editor, admin; a product link: admin", body=LINK_CREATE),
        "get": _op("Upload links, newest first (editors: their own; admins: every link).",
                   {"200": _json(_list_of("UploadLink"), "A page of links."), **_errors(403)},
                   security=LOGGED_IN_READ, tags=["links"], roles="editor, admin", parameters=_page_params()),
    },
    "/api/upload-links/{link_id}": {
        "parameters": [_path("link_id", OBJECT_ID)],
        "delete": _op("Revoke the link: it takes no more uploads (an upload it started stops too).",
                      {"200": _json(_ref("UploadLink"), "Revoked."), **_errors(404)},
                      security=LOGGED_IN_WRITE, tags=["links"], roles="its creator, admin"),
    },
    "/api/upload-links/files": {
        "post": _op("A link holder's file (multipart `file`; the secret in `Authorization: UploadLink "
                    "<secret>` or the form field `link`) into the link's target: one use of the link, given "
                    "back if the file is refused.",
                    {"201": _answer(LinkUploaded, "Stored."), "200": _answer(LinkUploaded, "Already there."),
                     **_errors(403, 404, 410, 413)},
                    security=LINK_HOLDER, tags=["links"], roles=LINK_WHO,
                    body=_multipart({"file": ONE_FILE, "link": {"type": "string"}}, ["file"])),
    },
    "/api/upload-links/tus": {
        "post": _link_tus_op(
            "tus creation through a link (Upload-Length at most the link's max_bytes): one use of the link; "
            "continue at Location with the same Authorization header.",
            {"201": {"description": "Created.", "headers": {
                "Location": {"schema": {"type": "string"}, "description": "The upload's URL."},
                "Upload-Expires": TUS_OFFSET_HEADERS["Upload-Expires"]}}},
            400, 413, 429,
            headers=[_header("Upload-Length", "The file's size in bytes.", True),
                     _header("Upload-Metadata", "`filename`, `filetype` (the target is the link's).")]),
    },
    "/api/upload-links/tus/{upload_id}": {
        "parameters": [_path("upload_id", TUS_ID)],
        "head": _link_tus_op("How many bytes of the link's upload arrived (tus 1.0.0 core).",
                             {"200": {"description": "The offset.", "headers": {
                                 **TUS_OFFSET_HEADERS, "Upload-Length": {"schema": {"type": "string"}}}}},
                             404),
        "patch": _link_tus_op(
            "Bytes of the link's upload at Upload-Offset; the last one stores the file into the link's "
            "target (a refused file gives the link's use back).",
            TUS_PATCH["responses"], 400, 404, 409, 413, 415, 422, 429, 460,
            headers=[_header("Upload-Offset", "Where these bytes start.", True),
                     _header("Upload-Checksum", "`sha1|sha256|md5 base64(digest)` of this request's bytes.")],
            body=TUS_PATCH["requestBody"]),
    },
    "/api/openapi.json": {"get": _op(
        "This document.", {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {
            "schema": {"type": "object", "required": ["openapi", "paths"]}}}}},
        security=[{}], tags=["meta"])},
    "/api/auth/login": {"post": _op(
        "Log in: a session cookie and its CSRF token.",
        {"200": _json({"type": "object", "required": ["user", "csrf_token"],
                       "properties": {"user": _ref("User"), "csrf_token": {"type": "string"}}}, "Logged in."),
         **_errors(401, 429)},
        security=[{}], tags=["auth"], body=_shaped(Credentials))},
    "/api/auth/logout": {"post": _op("End this session (every session of the user ends on the server).",
                                     {"204": NO_CONTENT}, security=LOGGED_IN_WRITE, tags=["auth"],
                                     roles="any logged-in user")},
    "/api/auth/me": {"get": _op("Who is calling.", {"200": _json({
        "type": "object", "required": ["user"], "properties": {"user": _ref("User")}}, "The user.")},
        security=LOGGED_IN_READ, tags=["auth"], roles="any logged-in user")},
    "/api/auth/csrf": {"get": _op("This session's CSRF token (send it as X-CSRF-Token).", {"200": _json({
        "type": "object", "required": ["csrf_token"], "properties": {"csrf_token": {"type": "string"}}},
        "The token.")}, security=ANYONE, tags=["auth"])},
    "/api/admin/audit": {"get": _op(
        "The audit log, newest first.", {"200": _json(_list_of("AuditEntry"), "A page of entries."),
                                         **_errors(403)},
        security=LOGGED_IN_READ, tags=["admin"], roles="admin",
        parameters=_page_params(_query("user", {"type": "string"}, "An email or user id."),
                                _query("action", {"type": "string"}, "One action, e.g. upload_created.")))},
    "/api/admin/history": {"get": _op(
        "The storage history over a range: points for charts and uploads per bar.",
        {"200": _answer(History, "The series."),
         **_errors(403)},
        security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops",
        parameters=[_query("range", {"enum": ["24h", "7d", "30d"]}, "How far back (default 7d).")])},
    "/api/admin/deliveries/top": {"get": _op(
        "The most served or heaviest images over a range of days (at most 92). Counted: answers that "
        "sent the bytes (a GET's 200 or 206; never a HEAD or a 304), of public images only.",
        {"200": _json({"type": "object", "required": ["items", "by", "from", "to"], "properties": {
            "items": {"type": "array", "items": _ref("DeliveredImage")},
            "by": {"enum": ["requests", "bytes"]},
            "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"}}},
            "The images, most first."), **_errors(400, 403)},
        security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops",
        parameters=[RANGES_FROM, RANGES_TO,
                    _query("by", {"enum": ["requests", "bytes"]}, "Most served (default) or heaviest."),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100},
                           "How many (default 20).")])},
    "/api/admin/deliveries/images/{alias}/{image_id}": {
        "parameters": [_path("alias", {"type": "string"}), _path("image_id", OBJECT_ID)],
        "get": _op("One image's answers and bytes per day over a range, by file, and when it was last "
                   "served (answers that sent the bytes; a private image's are not kept: all zeros).",
                   {"200": _json(DELIVERY_SERIES, "The series."),
                    **_errors(400, 403, 404)},
                   security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops",
                   parameters=[RANGES_FROM, RANGES_TO])},
    "/api/admin/deliveries/never-served": {"get": _op(
        "The library's images never served, one library page at a time (a page may hold fewer).",
        {"200": _json(_list_of("Image"), "A page."), **_errors(400, 403)},
        security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops", parameters=_page_params())},
    "/api/admin/cleanup": {"get": _op(
        "The clean-up list: library images no page or product uses, not served for days days, one library "
        "page at a time (delete each to move it to the trash, restorable).",
        {"200": _json(_list_of("UnusedImage"), "A page."), **_errors(400, 403)},
        security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops",
        parameters=_page_params(_query("days", {"type": "integer", "minimum": 1, "maximum": 3650},
                                       "Not served for this many days (default 90).")))},
    "/api/admin/alerts": {"get": _op(
        "Recorded threshold crossings, newest first, and the thresholds in force.",
        {"200": _json({"type": "object", "required": ["items", "thresholds"], "properties": {
            "items": {"type": "array", "items": _ref("Alert")},
            "thresholds": {"type": "object", "additionalProperties": {"type": "number"}}}}, "The alerts."),
         **_errors(403)},
        security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops",
        parameters=[_query("open", {"enum": ["1", "true", "yes", "0", "false", "no"]},
                           "Only those not acknowledged.")])},
    "/api/admin/rerender": {
        "get": _op("The last re-render run started from the API and its progress; stale=1 also counts the "
                   "stale variants and renditions (a read of every files document).",
                   {"200": _answer(RerenderStatus, "The last run."),
                    **_errors(403)},
                   security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops",
                   parameters=[_query("stale", {"enum": ["1", "true", "yes", "0", "false", "no"]},
                                      "Also count what is stale.")]),
        "post": _op("Start one bounded re-render run in the background (resuming where the last one "
                    "stopped): stale variants rendered again from their originals, stale renditions removed "
                    "(docs/operations.md, rerender).",
                    {"202": _answer(RunProgress, "The run, started."), **_errors(400, 409)},
                    security=LOGGED_IN_WRITE, tags=["admin"], roles="admin",
                    body=_shaped(RerenderRun))},
    "/api/admin/alerts/{alert_id}/ack": {
        "parameters": [_path("alert_id", OBJECT_ID)],
        "post": _op("Acknowledge an alert (the first acknowledgement stays).",
                    {"200": _json(_ref("Alert"), "The alert."), **_errors(404)},
                    security=LOGGED_IN_WRITE, tags=["admin"], roles="admin, ops")},
    "/api/shop/products": {
        "get": _op("Products by sku.", {"200": _json(_list_of("Product"), "A page of products.")},
                   security=ANYONE, tags=["shop"], parameters=_page_params()),
        "post": _op("Create a product; temp images become its images, in order.",
                    {"201": _json(_ref("Product"), "Created."), **_errors(404, 409, 422)},
                    security=LOGGED_IN_WRITE, tags=["shop"], roles="admin",
                    body=_shaped(NewProduct)),
    },
    "/api/shop/products/{sku}": {
        "parameters": [_path("sku", {"type": "string"})],
        "get": _op("One product; each photo names the other products that use it (also_on).",
                   {"200": _json(_ref("Product"), "The product."), **_errors(404)},
                   security=ANYONE, tags=["shop"]),
        "patch": _op("Change its name and/or price.", {"200": _json(_ref("Product"), "Updated."),
                                                       **_errors(404)},
                     security=LOGGED_IN_WRITE, tags=["shop"], roles="admin",
                     body=_shaped(ProductChange)),
        "delete": _op("Delete it and its images.", {"204": NO_CONTENT, **_errors(404, 409)},
                      security=LOGGED_IN_WRITE, tags=["shop"], roles="admin"),
    },
    "/api/shop/import-zip": {"post": _zip_import(
        "Put every image of a zip onto the product its name names (SKU_N.jpg, SKU.jpg, SKU/any.jpg).",
        "shop", "admin")},
    "/api/builder/import-zip": {"post": _zip_import(
        "Import every image of a zip into the library, each in its folder from the archive.",
        "builder", "editor, admin")},
    "/api/shop/import-urls": {"post": {**_op(
        "Add images to products from a CSV of sku,url rows (the body as text/csv, or the multipart file "
        "`file`): each row's image fetched by the server and added to its product, row by row; the report "
        "says what became of every row.",
        {"200": _answer(UrlReport, "Every row and what became of it."), **_errors(403, 415, 429)},
        security=LOGGED_IN_WRITE, tags=["shop"], roles="admin"), "requestBody": CSV_BODY}},
    "/api/shop/temp-images": {"post": _op(
        "Upload photos before their product exists; unclaimed ones expire. Private to the uploader: "
        "their URLs are signed (unsigned: 404) and served Cache-Control: private.",
        {"201": _json({"type": "object", "required": ["images"], "properties": {"images": {
            "type": "array", "items": {"allOf": [_ref("Image"), {"required": ["expires_at"]}]}}}},
            "Stored; each image's URLs signed."),
         **_errors(409)},
        security=LOGGED_IN_WRITE, tags=["shop"], roles="admin",
        body=_multipart({"images": IMAGE_FILES}, ["images"]))},
    "/api/shop/products/{sku}/images": {
        "parameters": [_path("sku", {"type": "string"})],
        "post": _op("Add images to a product (all or nothing, within its limit).",
                    {"201": _json(PRODUCT_ADDED, "Added, each with its look-alikes."), **_errors(404, 409)},
                    security=LOGGED_IN_WRITE, tags=["shop"], roles="admin",
                    body=_multipart({"images": IMAGE_FILES}, ["images"])),
    },
    "/api/shop/products/{sku}/images/import-url": {
        "parameters": [_path("sku", {"type": "string"})],
        "post": _op("Add the image at a URL to a product: the server fetches it through the SSRF guard "
                    "and adds it as an upload would (200 with added empty when the product already has it). "
                    "Refusals: " + URL_CODES + ".",
                    {"201": _json(PRODUCT_ADDED, "Added."), "200": _json(PRODUCT_ADDED, "Already there."),
                     **_errors(404, 409, *URL_REFUSALS)},
                    security=LOGGED_IN_WRITE, tags=["shop"], roles="admin",
                    body=_shaped(ProductUrlImport)),
    },
    "/api/shop/products/{sku}/images/{image_id}": {
        "parameters": [_path("sku", {"type": "string"}), _path("image_id", OBJECT_ID)],
        "delete": _op("Take an image off the product; its file goes unless another product uses it.",
                      {"200": _json(_ref("Product"), "The product without it."), **_errors(404, 409)},
                      security=LOGGED_IN_WRITE, tags=["shop"], roles="admin"),
        "put": PRODUCT_PHOTO_REPLACE,
    },
    "/api/shop/products/{sku}/images/{image_id}/near-duplicates": {
        "parameters": [_path("sku", {"type": "string"}), _path("image_id", OBJECT_ID)],
        "get": _op("The product images (of any product) that look like this photo, nearest first: "
                   "what its upload's answer names, when that answer left them out.",
                   {"200": _json({"type": "object", "required": ["near_duplicates"], "properties": {
                       "near_duplicates": {"type": "array", "items": _ref("NearDuplicate")}}},
                       "Its look-alikes."), **_errors(403, 404)},
                   security=LOGGED_IN_READ, tags=["shop"], roles="admin"),
    },
    "/api/shop/products/{sku}/images/{image_id}/name": {
        "parameters": [_path("sku", {"type": "string"}), _path("image_id", OBJECT_ID)],
        "put": _op("Give the photo a readable name in its public URL (null: none): every product using it "
                   "shows its named_url; the URL of any other name 301s to it. 400 invalid_name for a name "
                   "that cannot be one.",
                   {"200": _json(_ref("Image"), "The photo."), **_errors(404, 409)},
                   security=LOGGED_IN_WRITE, tags=["shop"], roles="admin", body=_shaped(NameBody)),
    },
    "/api/shop/products/{sku}/images/{image_id}/focal-point": {
        "parameters": [_path("sku", {"type": "string"}), _path("image_id", OBJECT_ID)],
        "put": PRODUCT_PHOTO_FOCAL,
    },
    **_edit_paths("/api/shop/products/{sku}/images/{image_id}",
                  [_path("sku", {"type": "string"}), _path("image_id", OBJECT_ID)], PRODUCT_PHOTO_EDITS),
    **_version_paths("/api/shop/products/{sku}/images/{image_id}",
                     [_path("sku", {"type": "string"}), _path("image_id", OBJECT_ID)], _ref("Image"),
                     tag="shop", roles="admin"),
    "/api/shop/products/{sku}/images/order": {
        "parameters": [_path("sku", {"type": "string"})],
        "put": _op("Reorder the images (a permutation of their ids).",
                   {"200": _json(_ref("Product"), "Reordered."), **_errors(404, 409, 422)},
                   security=LOGGED_IN_WRITE, tags=["shop"], roles="admin",
                   body=_shaped(ImageOrder)),
    },
    "/api/shop/products/{sku}/alt-text": {
        "parameters": [_path("sku", {"type": "string"})],
        "get": _op("The product's photos without alt text, in order, each with alt texts suggested from its "
                   "name, SKU, the photo's place, file name and colour.",
                   {"200": _json(_missing_alt_list({
                       "type": "object", "required": ["image", "position", "suggestions"], "properties": {
                           "image": _ref("Image"),
                           "position": {"type": "integer", "minimum": 1, "description": "1: the main photo."},
                           "suggestions": ALT_SUGGESTIONS}}), "A page of photos."), **_errors(403, 404)},
                   security=LOGGED_IN_READ, tags=["shop"], roles="admin",
                   parameters=_page_params()),
        "post": _op("Set the alt text of many of its photos at once, each the text given or a suggestion "
                    "accepted: the product's own, on its photo (a photo shared with another product keeps "
                    "that product's). What happened to each.",
                    {"200": _json(ALT_RESULTS, "Image by image."), **_errors(404)},
                    security=LOGGED_IN_WRITE, tags=["shop"], roles="admin", body=_shaped(AltChanges)),
    },
    "/api/shop/debug/products-status": {"get": _op(
        "Is every product photo safe?",
        {"200": _json(_ref("ProductsStatus"), "The report."), **_errors(403)},
        security=LOGGED_IN_READ, tags=["status"], roles="admin, ops", parameters=[REFRESH])},
    "/api/shop/debug/storage-status": {"get": _op(
        "Where the bytes are and whether they survive a restart.",
        {"200": _json(_ref("StorageStatus"), "The report."), **_errors(403)},
        security=LOGGED_IN_READ, tags=["status"], roles="admin, ops", parameters=[REFRESH])},
    "/api/builder/media": {
        "post": _op("Add an image to the library (200 when the same image is already there). An SVG is "
                    "taken here only: sanitised (docs/media.md, \"SVG logos\"), served under its own CSP, "
                    "its variants and renditions drawn as rasters; 415 svg_doctype for one whose DOCTYPE "
                    "declares entities, "
                    "422 invalid_svg for one that is not well-formed, 413 svg_too_complex for a <use> bomb.",
                    {"201": _json(_ref("Image"), "Stored."), "200": _json(_ref("Image"), "Already there."),
                     **_errors(409)},
                    security=LOGGED_IN_WRITE, tags=["builder"], roles="editor, admin",
                    body=_multipart({"file": ONE_FILE,
                                     "alt": {"type": "string", "maxLength": MAX_ALT_LENGTH},
                                     "folder": FOLDER, "tags": {"type": "string", "description":
                                                                "Comma-separated (or repeat the field)."}},
                                    ["file"])),
        "get": _op("The library, newest first.", {"200": _json(_list_of("Image"), "A page of media."),
                                                  **_errors(403)},
                   security=LOGGED_IN_READ, tags=["builder"], roles="editor, admin",
                   parameters=_page_params(*parameters_of(LibraryQuery))),
    },
    "/api/builder/media/import-url": {"post": _op(
        "Add the image at a URL to the library: the server fetches it through the SSRF guard and stores it "
        "as an upload with the same alt, folder and tags would be (200 when the same image is already "
        "there). Refusals: " + URL_CODES + ".",
        {"201": _json(_ref("Image"), "Stored."), "200": _json(_ref("Image"), "Already there."),
         **_errors(409, *URL_REFUSALS)},
        security=LOGGED_IN_WRITE, tags=["builder"], roles="editor, admin",
        body=_shaped(LibraryUrlImport))},
    "/api/builder/media/bulk": {"post": _op(
        f"Move, tag, untag, delete or restore many library images in one call: up to {MAX_BULK_IDS} ids, "
        f"or every image a filter of the list selects, {MAX_BULK_IDS} a call (go on with after=next). "
        "Each image is done like the single operation (delete refuses one a page uses, unless force); "
        "a refusal of one is listed and the others go on.",
        {"200": _answer(BulkResult, "What was done and what was refused, image by image."), **_errors(403)},
        security=LOGGED_IN_WRITE, tags=["builder"], roles="editor, admin", body=_shaped(Bulk))},
    "/api/builder/media/near-duplicates": {"get": _op(
        "Groups of library images that look alike, by group; page on with after=<next>.",
        {"200": _groups_page(), **_errors(403)},
        security=LOGGED_IN_READ, tags=["builder"], roles="editor, admin",
        parameters=[{"$ref": "#/components/parameters/per_page"},
                    {"$ref": "#/components/parameters/after"}])},
    "/api/builder/media/duplicates": {"get": _op(
        "Groups of exact duplicates: the same file (kind bytes) or files that decode to the same pixels "
        "(kind pixels, e.g. re-saved with other metadata), by group; page on with after=<next>. "
        "Look-alikes are listed by near-duplicates, which leaves out a group that is exact.",
        {"200": _groups_page(kind={"enum": ["bytes", "pixels"]}), **_errors(403)},
        security=LOGGED_IN_READ, tags=["builder"], roles="editor, admin",
        parameters=[{"$ref": "#/components/parameters/per_page"},
                    {"$ref": "#/components/parameters/after"}])},
    "/api/builder/media/merge": {"post": _op(
        "Merge duplicates into one image: every page block showing one of `others` shows `keep` "
        "instead, then the others go to the trash, each naming `keep` (restoring one from the trash "
        "moves its blocks back). Every image is checked first (400 for a malformed body, the keeper "
        "among the others, an id twice or too many; 404 naming an id not in the library; 409 "
        "media_busy when one is being deleted, replaced or merged): a refusal changes nothing. A page that "
        "kept changing while re-pointed stops the merge at that image (409 page_busy, its pages put back; "
        "`merged` in the error names the images merged before it).",
        {"200": _answer(Merged, "Merged, image by image."), **_errors(403, 404, 409)},
        security=LOGGED_IN_WRITE, tags=["builder"], roles="editor, admin",
        body=_shaped(Merge))},
    "/api/builder/media/{media_id}": {
        "parameters": [_path("media_id", OBJECT_ID)],
        "get": _op("One library image, with the pages using it.",
                   {"200": _json({"allOf": [_ref("Image"), {"required": ["used_in"]}]}, "The media."),
                    **_errors(403, 404)},
                   security=LOGGED_IN_READ, tags=["builder"], roles="editor, admin"),
        "patch": _op("Change its alt text, folder and/or tags.",
                     {"200": _json({"allOf": [_ref("Image"), {"required": ["used_in", "folder", "tags"]}]},
                                   "The media."), **_errors(404, 409)},
                     security=LOGGED_IN_WRITE, tags=["builder"], roles="editor, admin",
                     body=_shaped(MediaChange)),
        "delete": _op("Delete it (409 while a page uses it, unless force).",
                      {"204": NO_CONTENT, **_errors(404, 409)},
                      security=LOGGED_IN_WRITE, tags=["builder"], roles="editor, admin", parameters=[FORCE]),
        "put": MEDIA_REPLACE,
    },
    "/api/builder/media/{media_id}/deliveries": {
        "parameters": [_path("media_id", OBJECT_ID)],
        "get": _op("One library image's answers and bytes per day over a range (the last 30 days by default, "
                   "at most 92), by file, and when it was last served: the library details panel's chart.",
                   {"200": _json(DELIVERY_SERIES, "The series."),
                    **_errors(400, 403, 404)},
                   security=LOGGED_IN_READ, tags=["builder"], roles="editor, admin",
                   parameters=[RANGES_FROM, RANGES_TO])},
    "/api/builder/media/{media_id}/name": {
        "parameters": [_path("media_id", OBJECT_ID)],
        "put": _op("Give it a readable name in its public URL (null: none); the URL of any other name 301s "
                   "to it. 400 invalid_name for a name that cannot be one.",
                   {"200": _json(MEDIA_WITH_VERSION, "The media."), **_errors(404, 409)},
                   security=LOGGED_IN_WRITE, tags=["builder"], roles="editor, admin", body=_shaped(NameBody)),
    },
    "/api/builder/media/{media_id}/focal-point": {
        "parameters": [_path("media_id", OBJECT_ID)],
        "put": MEDIA_FOCAL,
    },
    **_edit_paths("/api/builder/media/{media_id}", [_path("media_id", OBJECT_ID)], MEDIA_EDITS),
    **_version_paths("/api/builder/media/{media_id}", [_path("media_id", OBJECT_ID)], MEDIA_WITH_VERSION,
                     tag="builder", roles="editor, admin"),
    "/api/builder/folders": {"get": _op(
        "Every folder of the library with its media count.",
        {"200": _answer(Folders, "The folders."),
         **_errors(403)},
        security=LOGGED_IN_READ, tags=["builder"], roles="editor, admin")},
    "/api/builder/tags": {"get": _op(
        "Every tag of the library with its media count.",
        {"200": _answer(Tags, "The tags."),
         **_errors(403)},
        security=LOGGED_IN_READ, tags=["builder"], roles="editor, admin")},
    "/api/builder/pages/{slug}/alt-text": {
        "parameters": [_path("slug", {"type": "string"})],
        "get": _op("The library images a page (drafts too) shows without alt text (neither their own nor on "
                   "every block showing them), in block order, each with alt texts suggested from the pages "
                   "using it and their block types, its file name, folder, tags and colour.",
                   {"200": _json(_missing_alt_list({
                       "type": "object", "required": ["image", "suggestions"], "properties": {
                           "image": _ref("Image"), "suggestions": ALT_SUGGESTIONS}}), "A page of images."),
                    **_errors(403, 404)},
                   security=LOGGED_IN_READ, tags=["builder"], roles="editor, admin",
                   parameters=_page_params()),
        "post": _op("Set the alt text of many of the library images the page shows, each the text given or "
                    "a suggestion accepted: on the image, as PATCH /api/builder/media/{id} does (every page "
                    "showing it). What happened to each.",
                    {"200": _json(ALT_RESULTS, "Image by image."), **_errors(404)},
                    security=LOGGED_IN_WRITE, tags=["builder"], roles="editor, admin",
                    body=_shaped(AltChanges)),
    },
    "/api/builder/pages/{slug}": {
        "parameters": [_path("slug", {"type": "string"})],
        "get": _op("A page: anyone when published, editors also drafts.",
                   {"200": _json(_ref("Page"), "The page, media blocks resolved."), **_errors(404)},
                   security=ANYONE, tags=["builder"]),
        "put": _op("Write a page; 422 if a block names media that does not exist.",
                   {"200": _json(_ref("Page"), "Written."), **_errors(409, 422)},
                   security=LOGGED_IN_WRITE, tags=["builder"], roles="editor, admin",
                   body=_shaped(PageWrite)),
    },
    "/api/trash": {"get": _op(
        "Deleted media, last deleted first (editors: the library's; admins: every bucket's).",
        {"200": _json(_list_of("TrashItem"), "A page of the trash."), **_errors(403)},
        security=LOGGED_IN_READ, tags=["trash"], roles="editor, admin",
        parameters=_page_params(_query("from", {"enum": ["products", "builder", "uploads"]},
                                       "Admins: only what was deleted from this bucket.")))},
    "/api/trash/{image_id}": {
        "parameters": [_path("image_id", OBJECT_ID)],
        "get": _op("One trashed image.",
                   {"200": _json(_ref("TrashItem"), "The item."), **_errors(403, 404)},
                   security=LOGGED_IN_READ, tags=["trash"], roles="editor (library), admin"),
        "delete": _op("Purge it now, for good.", {"204": NO_CONTENT, **_errors(404)},
                      security=LOGGED_IN_WRITE, tags=["trash"], roles="editor (library), admin"),
    },
    "/api/trash/{image_id}/restore": {
        "parameters": [_path("image_id", OBJECT_ID)],
        "post": _op(
            "Put it back with its id (its URLs work again): a product photo at the end of its product "
            "(409 product_gone if that product was deleted, 422 if it is full), library media in the "
            "library (pages are not rewritten, except those a merge moved: repointed), an upload to its "
            "owner.",
            {"200": _json({"type": "object", "required": ["image", "from", "reused"], "properties": {
                "image": _ref("Image"), "from": {"enum": ["products", "builder", "uploads"]},
                "reused": {"type": "boolean",
                           "description": "The same bytes were stored again meanwhile: that image."},
                "product": {"type": "string", "description": "The product it went back onto."},
                "repointed": {"type": "array", "items": SLUG,
                              "description": "An image merged into another: the pages whose blocks show it "
                                             "again (those the merge moved and nobody changed since)."}}},
                "Restored."), **_errors(404, 409, 422)},
            security=LOGGED_IN_WRITE, tags=["trash"], roles="editor (library), admin"),
    },
    "/api/uploads": {
        "post": _op("Upload an image (200 when this user already uploaded the same one).",
                    {"201": _json(_ref("Image"), "Stored."), "200": _json(_ref("Image"), "Already there."),
                     **_errors(409)},
                    security=LOGGED_IN_WRITE, tags=["uploads"], roles="any logged-in user",
                    body=_multipart({"file": ONE_FILE, "visibility": {"enum": ["public", "private"]}},
                                    ["file"])),
        "get": _op("Own uploads (admin: all), newest first.",
                   {"200": _json(_list_of("Image"), "A page of uploads.")},
                   security=LOGGED_IN_READ, tags=["uploads"], roles="any logged-in user",
                   parameters=_page_params(_query("owner", {"type": "string"}, "Admins: one owner's."))),
    },
    "/api/uploads/{upload_id}": {
        "parameters": [_path("upload_id", OBJECT_ID)],
        "get": _op("One upload (404 for anyone but its owner and admins).",
                   {"200": _json(_ref("Image"), "The upload."), **_errors(404)},
                   security=LOGGED_IN_READ, tags=["uploads"], roles="owner, admin"),
        "delete": _op("Delete an upload.", {"204": NO_CONTENT, **_errors(404, 409)},
                      security=LOGGED_IN_WRITE, tags=["uploads"], roles="owner, admin"),
        "put": UPLOAD_REPLACE,
    },
    "/api/uploads/{upload_id}/focal-point": {
        "parameters": [_path("upload_id", OBJECT_ID)],
        "put": UPLOAD_FOCAL,
    },
    **_edit_paths("/api/uploads/{upload_id}", [_path("upload_id", OBJECT_ID)], UPLOAD_EDITS),
    **_version_paths("/api/uploads/{upload_id}", [_path("upload_id", OBJECT_ID)], UPLOAD_WITH_NEAR,
                     tag="uploads", roles="owner, admin"),
}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a new dict each call)."""
    responses = {f"E{status}": _json(_ref("Error"), meaning) for status, meaning in ERROR_MEANINGS.items()}
    for status in (429, 503):
        responses[f"E{status}"]["headers"] = {"Retry-After": {"schema": {"type": "string"},
                                                              "description": "Seconds to wait."}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Avenue media API", "version": "1.0.0",
                 "description": "Shop, website-builder and general-upload images kept in MongoDB GridFS. "
                                "The contract in prose: docs/api.md. Every error is "
                                '`{"error": {"code", "message", "request_id"}}`; every response carries '
                                "X-Request-ID. Each operation lists every status it can answer, those any "
                                "request can get included (the app server's limits, a body too large, the "
                                "database down); a 500 is a bug."},
        "servers": [{"url": "/"}],
        "tags": [{"name": name} for name in TAGS],
        "paths": PATHS,
        "components": {
            "schemas": {**SCHEMAS, **SHAPES},
            "responses": responses,
            "parameters": {
                "page": _query("page", {"type": "integer", "minimum": 1},
                               f"Page number (from 1); numbered pages reach the first {MAX_OFFSET:,} items "
                               "((page - 1) × per_page), deeper is 400 `invalid_pagination`: use `after`."),
                "per_page": _query("per_page", {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
                                   "Items per page."),
                "after": _query("after", {"type": "string", "maxLength": MAX_CURSOR_LENGTH},
                                "The `next` of the previous page (instead of page)."),
            },
            "securitySchemes": {
                "bearerToken": {"type": "http", "scheme": "bearer",
                                "description": "An API token (`flask --app avenue users token EMAIL`); "
                                               "decides alone, no CSRF."},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "session",
                                  "description": "The session cookie POST /api/auth/login sets."},
                "uploadLink": {"type": "apiKey", "in": "header", "name": "Authorization",
                               "description": "`UploadLink <secret>`: a one-time upload link's secret "
                                              "(POST /api/upload-links); opens its upload routes only."},
                "csrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                              "description": "Required with the session cookie on POST/PUT/PATCH/DELETE "
                                             "(from GET /api/auth/csrf or the login answer)."},
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3.1 document of /api/."""
    return jsonify(document())
