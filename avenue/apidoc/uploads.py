"""General uploads and the trash."""

from __future__ import annotations

from avenue.apidoc.common import (
    LOGGED_IN_READ,
    LOGGED_IN_WRITE,
    NO_CONTENT,
    ONE_FILE,
    Schema,
    _answer,
    _errors,
    _json,
    _list_of,
    _multipart,
    _op,
    _page_params,
    _path,
    _query,
    _ref,
)
from avenue.apidoc.images import (
    UPLOAD_EDITS,
    UPLOAD_FOCAL,
    UPLOAD_REPLACE,
    UPLOAD_WITH_NEAR,
    _edit_paths,
    _version_paths,
)
from avenue.shapes import OBJECT_ID
from avenue.trash.service import Restored

PATHS: dict[str, Schema] = {  # path items: operations by method, and shared parameters
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
            {"200": _answer(Restored, "Restored."), **_errors(404, 409, 422)},
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
