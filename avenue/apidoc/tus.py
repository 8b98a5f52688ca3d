"""Resumable uploads (tus 1.0.0, ``avenue/tus/``) and one-time upload links (``avenue/links/``):
docs/api.md, "Resumable uploads" and "Upload links"."""

from __future__ import annotations

from avenue.apidoc.common import (
    LOGGED_IN_READ,
    LOGGED_IN_WRITE,
    NO_CONTENT,
    ONE_FILE,
    Schema,
    answer,
    answer_of,
    errors,
    in_header,
    in_path,
    list_of,
    multipart,
    op,
    page_params,
    ref,
    shaped,
)
from avenue.links.service import HolderTusUpload, LinkBody, LinkUploaded
from avenue.shapes import OBJECT_ID
from avenue.tus.service import TusUpload

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
    operation = op(summary, {**responses, **errors(412, *statuses)},
                   security=LOGGED_IN_WRITE if write else LOGGED_IN_READ, tags=["tus"], roles=TUS_WHO,
                   parameters=[TUS_RESUMABLE, *(headers or [])], body=body)
    return operation


TUS_PATCH = _tus_op(
    "Bytes at Upload-Offset (at most AVENUE_TUS_CHUNK_MAX_BYTES per request); the request that brings the "
    "last byte stores the image through its target's own upload path (validation, dedupe, variants): a "
    "refusal there (415, 413, 422) deletes the upload.",
    {"204": {"description": "Received (and, with the last byte, stored).", "headers": TUS_OFFSET_HEADERS}},
    400, 404, 409, 410, 413, 415, 422, 429, 460,
    headers=[in_header("Upload-Offset", "Where these bytes start: the upload's offset, else 409.", True),
             in_header("Upload-Checksum", "`sha1|sha256|md5 base64(digest)` of this request's bytes; "
                                          "460 when it does not match.")],
    body={"required": True, "content": {"application/offset+octet-stream": {
        "schema": {"type": "string", "format": "binary"}}}})


TUS_DELETE = _tus_op("Terminate the upload: its bytes are deleted (an image it became stays).",
                     {"204": NO_CONTENT}, 404, 410)


# One-time upload links (avenue/links/; docs/api.md "Upload links").
LINK_HOLDER: list[Schema] = [{"uploadLink": []}]


LINK_WHO = "whoever holds the link's secret (no account)"
LINK_CREATE = shaped(LinkBody)


def _link_tus_op(summary: str, responses: dict[str, Schema], *statuses: int,
                 headers: list[Schema] | None = None, body: Schema | None = None) -> Schema:
    return op(summary, {**responses, **errors(403, 410, 412, *statuses)}, security=LINK_HOLDER,
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
            headers=[in_header("Upload-Length", "The file's size in bytes (at most Tus-Max-Size).", True),
                     in_header("Upload-Metadata", TUS_TARGET)]),
        "options": {"summary": "What this tus server supports: Tus-Version, Tus-Extension (creation, "
                               "termination, expiration, checksum), Tus-Max-Size, Tus-Checksum-Algorithm.",
                    "tags": ["tus"], "security": [{}], "responses": {"204": NO_CONTENT}},
    },
    "/api/tus/{upload_id}": {
        "parameters": [in_path("upload_id", TUS_ID)],
        "head": _tus_op("How many bytes arrived: Upload-Offset and Upload-Length (tus 1.0.0 core).",
                        {"200": {"description": "The offset.", "headers": {
                            **TUS_OFFSET_HEADERS, "Upload-Length": {"schema": {"type": "string"}}}}},
                        404, 410, write=False),
        "get": op("The upload as JSON: offset, length, state, expiry and, once done, its image.",
                  {"200": answer_of(TusUpload, "The upload."), **errors(404, 410)},
                  security=LOGGED_IN_READ, tags=["tus"], roles=TUS_WHO),
        "patch": TUS_PATCH,
        "delete": TUS_DELETE,
        "post": _tus_op("X-HTTP-Method-Override: PATCH, DELETE or HEAD, as a POST (for clients that cannot "
                        "send those methods); answers as that method does.",
                        {**TUS_PATCH["responses"], "200": {"description": "As HEAD.",
                                                           "headers": TUS_OFFSET_HEADERS}},
                        400, 404, 409, 410, 413, 415, 422, 429, 460,
                        headers=[in_header("X-HTTP-Method-Override", "PATCH, DELETE or HEAD.", True)],
                        body={"required": False, "content": {"application/offset+octet-stream": {
                            "schema": {"type": "string", "format": "binary"}}}}),
    },
    "/api/upload-links": {
        "post": op("Create a one-time upload link into one target; its secret is in this answer only.",
                   {"201": answer({"type": "object", "required": ["link", "secret", "upload_url", "tus_url"],
                                   "properties": {"link": ref("UploadLink"), "secret": {"type": "string"},
                                                  "upload_url": {"type": "string"},
                                                  "tus_url": {"type": "string"}}}, "Created."),
                    **errors(404, 422)},
                   security=LOGGED_IN_WRITE, tags=["links"],
                   roles="editor, admin; a product link: admin", body=LINK_CREATE),
        "get": op("Upload links, newest first (editors: their own; admins: every link).",
                  {"200": answer(list_of("UploadLink"), "A page of links."), **errors(403)},
                  security=LOGGED_IN_READ, tags=["links"], roles="editor, admin", parameters=page_params()),
    },
    "/api/upload-links/{link_id}": {
        "parameters": [in_path("link_id", OBJECT_ID)],
        "delete": op("Revoke the link: it takes no more uploads (an upload it started stops too).",
                     {"200": answer(ref("UploadLink"), "Revoked."), **errors(404)},
                     security=LOGGED_IN_WRITE, tags=["links"], roles="its creator, admin"),
    },
    "/api/upload-links/files": {
        "post": op("A link holder's file (multipart `file`; the secret in `Authorization: UploadLink "
                   "<secret>` or the form field `link`) into the link's target: one use of the link, given "
                   "back if the file is refused.",
                   {"201": answer_of(LinkUploaded, "Stored."),
                    "200": answer_of(LinkUploaded, "Already there."),
                    **errors(403, 404, 410, 413)},
                   security=LINK_HOLDER, tags=["links"], roles=LINK_WHO,
                   body=multipart({"file": ONE_FILE, "link": {"type": "string"}}, ["file"])),
    },
    "/api/upload-links/tus": {
        "post": _link_tus_op(
            "tus creation through a link (Upload-Length at most the link's max_bytes): one use of the link; "
            "continue at Location with the same Authorization header.",
            {"201": {"description": "Created.", "headers": {
                "Location": {"schema": {"type": "string"}, "description": "The upload's URL."},
                "Upload-Expires": TUS_OFFSET_HEADERS["Upload-Expires"]}}},
            400, 413, 429,
            headers=[in_header("Upload-Length", "The file's size in bytes.", True),
                     in_header("Upload-Metadata", "`filename`, `filetype` (the target is the link's).")]),
    },
    "/api/upload-links/tus/{upload_id}": {
        "parameters": [in_path("upload_id", TUS_ID)],
        "head": _link_tus_op("How many bytes of the link's upload arrived (tus 1.0.0 core).",
                             {"200": {"description": "The offset.", "headers": {
                                 **TUS_OFFSET_HEADERS, "Upload-Length": {"schema": {"type": "string"}}}}},
                             404),
        "get": op("The link's upload as JSON, as GET /api/tus/{upload_id} shows it to its owner, with the "
                  "target's kind alone and the image as the link's multipart upload answers it.",
                  {"200": answer_of(HolderTusUpload, "The upload."), **errors(403, 404, 410, 429)},
                  security=LINK_HOLDER, tags=["links"], roles=LINK_WHO),
        "patch": _link_tus_op(
            "Bytes of the link's upload at Upload-Offset; the last one stores the file into the link's "
            "target (a refused file gives the link's use back).",
            TUS_PATCH["responses"], 400, 404, 409, 413, 415, 422, 429, 460,
            headers=[in_header("Upload-Offset", "Where these bytes start.", True),
                     in_header("Upload-Checksum",
                               "`sha1|sha256|md5 base64(digest)` of this request's bytes.")],
            body=TUS_PATCH["requestBody"]),
    },
}
