"""The operations every image owner has (a product photo, a library image, an upload): replace
in place and the focal point, non-destructive edits and named crops, versions; the alt-text
lists and a zip import's operation, which the shop and the library share."""

from __future__ import annotations

from typing import Any

from avenue.apidoc.common import (
    LOGGED_IN_READ,
    LOGGED_IN_WRITE,
    ONE_FILE,
    Schema,
    answer,
    answer_of,
    errors,
    in_path,
    list_of,
    multipart,
    op,
    picture,
    ref,
    shaped,
)
from avenue.bulk.service import ZipReport
from avenue.http import ComparisonAnswer, Versions
from avenue.media import Library

# The document states the declared limits and registries as they are (the media-interface
# contract lets it read the kernel modules named in pyproject.toml).
from avenue.paging import MAX_PER_PAGE
from avenue.shapes import OBJECT_ID


def groups_page(**fields: Schema) -> Schema:
    """The 200 of a list of image groups paged by cursor (near and exact duplicates): each group
    an id, ``fields`` and at least two images."""
    group = {"type": "object", "required": ["id", *fields, "images"],
             "properties": {"id": OBJECT_ID, **fields,
                            "images": {"type": "array", "minItems": 2, "items": ref("Image")}}}
    return answer({"type": "object", "required": ["items", "per_page", "next"], "properties": {
        "items": {"type": "array", "items": group},
        "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
        "next": {"type": ["string", "null"], "description": "Send as `after`; null at the end."}}},
        "A page of groups.")


MEDIA_WITH_VERSION: Schema = {"allOf": [ref("Image"), {"required": ["used_in", "version"]}]}


def _replace_ops(what: str, keeps: str, shown: Schema, *, tag: str, roles: str) -> tuple[Schema, Schema]:
    """The two operations of replace in place: ``PUT`` a new file, and ``PUT …/focal-point``."""
    replace = op(f"Replace its bytes in place: {keeps}, new versioned URLs (the old ones redirect for "
                 "a while); the old bytes go to the trash.",
                 {"200": answer(shown, what), **errors(404, 409)},
                 security=LOGGED_IN_WRITE, tags=[tag], roles=roles,
                 body=multipart({"file": ONE_FILE}, ["file"]))
    focal = op("Set where the subject is: the crops are cut again around it and the URLs change.",
               {"200": answer(shown, what), **errors(404, 409)},
               security=LOGGED_IN_WRITE, tags=[tag], roles=roles, body=shaped(Library.FocalBody))
    return replace, focal


def missing_alt_list(item: Schema) -> Schema:
    """A numbered page of the images missing alt text (``after`` is refused: a product or page holds few)."""
    listed = list_of("Image")
    return {**listed, "properties": {**listed["properties"], "items": {"type": "array", "items": item}}}


ALT_RESULTS: Schema = {"type": "object", "required": ["results"],
                       "properties": {"results": {"type": "array", "items": ref("AltResult")}}}


def zip_import(summary: str, tag: str, roles: str) -> Schema:
    """A zip import: the archive as the body, the report as the answer, the archive's refusals."""
    operation = op(summary, {"200": answer_of(ZipReport, "Every entry and what became of it."),
                             **errors(403, 413, 415, 422, 429, 503)},
                   security=LOGGED_IN_WRITE, tags=[tag], roles=roles)
    operation["description"] += (" The naming rule, the limits and the refusals: docs/api.md, "
                                 "\"Zip imports\".")
    operation["requestBody"] = {"required": True, "content": {
        "application/zip": {"schema": {"type": "string", "format": "binary"}}}}
    return operation


PRODUCT_PHOTO_REPLACE, PRODUCT_PHOTO_FOCAL = _replace_ops(
    "The product.", "same id and place on the product", ref("Product"), tag="shop", roles="admin")


MEDIA_REPLACE, MEDIA_FOCAL = _replace_ops(
    "The media.", "same id, so every page keeps it", MEDIA_WITH_VERSION, tag="builder",
    roles="editor, admin")


# A replaced upload's answer names its new picture's near-duplicates, as an upload's does.
UPLOAD_WITH_NEAR: Schema = {"allOf": [ref("Image"), {"required": ["near_duplicates"]}]}


UPLOAD_REPLACE, UPLOAD_FOCAL = _replace_ops(
    "The upload, with the owner's uploads that look like it (`near_duplicates`).", "same id and visibility",
    UPLOAD_WITH_NEAR, tag="uploads", roles="owner, admin")


# Non-destructive edits and named crops (avenue/media/ingest/edits.py; docs/api.md "Editing").
CROP_NAME: Schema = {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,31}$"}


def _edit_ops(what: str, shown: Schema, *, tag: str, roles: str) -> dict[str, Schema]:
    """The four editing operations of one owner: put and delete the edits, put and delete a
    named crop (each a new version with new URLs; unchanged when nothing changes)."""
    def write(summary: str, body: Schema | None = None) -> Schema:
        """A write of one image (a new version): the image, or 404 / 409."""
        return op(summary, {"200": answer(shown, what), **errors(404, 409)}, security=LOGGED_IN_WRITE,
                  tags=[tag], roles=roles, body=body)

    return {
        "edits_put": write("Rotate, flip and crop the original, non-destructively: a new version with new "
                           "URLs (the same edits again: unchanged). 400 invalid_edits names the field.",
                           shaped(Library.EditsBody)),
        "edits_delete": write("Back to the original: a new version without edits (none: unchanged)."),
        "crop_put": write("Set a named crop (fractions of the edited picture), asked for by renditions as "
                          "c_<name>: a new version. 400 invalid_crop, 409 too_many_crops past 16.",
                          shaped(Library.CropBody)),
        "crop_delete": write("Delete a named crop: a new version (404 crop_not_found)."),
    }


PRODUCT_PHOTO_EDITS = _edit_ops("The photo.", ref("Image"), tag="shop", roles="admin")
MEDIA_EDITS = _edit_ops("The media.", MEDIA_WITH_VERSION, tag="builder", roles="editor, admin")
UPLOAD_EDITS = _edit_ops("The upload.", ref("Image"), tag="uploads", roles="owner, admin")


def edit_paths(prefix: str, params: list[Schema], ops: dict[str, Schema]) -> dict[str, Schema]:
    return {
        f"{prefix}/edits": {"parameters": params, "put": ops["edits_put"], "delete": ops["edits_delete"]},
        f"{prefix}/crops/{{name}}": {"parameters": [*params, in_path("name", CROP_NAME)],
                                     "put": ops["crop_put"], "delete": ops["crop_delete"]},
    }


# An image's versions (avenue/media/store/versions.py; docs/api.md "Versions").
VERSION_ID: Schema = {"type": "string", "description": "A version id: 8 hex digits (as in the image's URLs); "
                                                        "anything else is 404 version_not_found."}


def version_paths(prefix: str, params: list[Schema], shown: Schema, *, tag: str, roles: str
                  ) -> dict[str, Schema]:
    """The five operations on an image's versions: list, restore, preview, compare, heat map."""
    version = [*params, in_path("version_id", VERSION_ID)]
    pair = [*version, in_path("after", VERSION_ID)]
    read: dict[str, Any] = {"security": LOGGED_IN_READ, "tags": [tag], "roles": roles}
    return {
        f"{prefix}/versions": {"parameters": params, "get": op(
            "Its current version and the earlier ones still kept (AVENUE_TRASH_DAYS), newest first: what "
            "changed, when, its size, until when it is kept and a small preview.",
            {"200": answer_of(Versions, "The versions."),
             **errors(403, 404)}, **read)},
        f"{prefix}/versions/{{version_id}}/restore": {"parameters": version, "post": op(
            "Make an earlier version current again, as a new version (the one it replaces is kept as an "
            "earlier one): same id, new URLs, the old ones redirect. 404 version_not_found, 410 "
            "version_gone, 409 image_busy while a delete or another change holds the image.",
            {"200": answer(shown, "The image at the restored version."), **errors(404, 409, 410)},
            security=LOGGED_IN_WRITE, tags=[tag], roles=roles)},
        f"{prefix}/versions/{{version_id}}/preview": {"parameters": version, "get": op(
            "A small WebP (at most 320 px) of one version.",
            {"200": picture("image/webp", "The preview."), **errors(403, 404, 410)}, **read)},
        f"{prefix}/versions/{{version_id}}/compare/{{after}}": {"parameters": pair, "get": op(
            "How version `after` differs from `version_id`: the share of pixels changed and a heat map's URL "
            "(made once per pair). 400 same_version for a version with itself.",
            {"200": answer_of(ComparisonAnswer, "The comparison."), **errors(403, 404, 410)}, **read)},
        f"{prefix}/versions/{{version_id}}/compare/{{after}}/heat-map": {"parameters": pair, "get": op(
            "The heat map (PNG, at most 512 px) of what differs between two versions.",
            {"200": picture("image/png", "The heat map."), **errors(403, 404, 410)}, **read)},
    }
