"""General uploads and the trash."""

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
    in_path,
    list_of,
    multipart,
    op,
    page_params,
    ref,
)
from avenue.apidoc.images import (
    UPLOAD_EDITS,
    UPLOAD_FOCAL,
    UPLOAD_REPLACE,
    UPLOAD_WITH_NEAR,
    edit_paths,
    version_paths,
)
from avenue.shapes import OBJECT_ID, parameters_of
from avenue.trash.service import Restored, TrashQuery
from avenue.uploads.service import UploadsQuery

PATHS: dict[str, Schema] = {  # path items: operations by method, and shared parameters
    "/api/trash": {"get": op(
        "Deleted media, last deleted first (editors: the library's; admins: every bucket's).",
        {"200": answer(list_of("TrashItem"), "A page of the trash."), **errors(403)},
        security=LOGGED_IN_READ, tags=["trash"], roles="editor, admin",
        parameters=page_params(*parameters_of(TrashQuery)))},
    "/api/trash/{image_id}": {
        "parameters": [in_path("image_id", OBJECT_ID)],
        "get": op("One trashed image.",
                  {"200": answer(ref("TrashItem"), "The item."), **errors(403, 404)},
                  security=LOGGED_IN_READ, tags=["trash"], roles="editor (library), admin"),
        "delete": op("Purge it now, for good.", {"204": NO_CONTENT, **errors(404)},
                     security=LOGGED_IN_WRITE, tags=["trash"], roles="editor (library), admin"),
    },
    "/api/trash/{image_id}/restore": {
        "parameters": [in_path("image_id", OBJECT_ID)],
        "post": op(
            "Put it back with its id (its URLs work again): a product photo at the end of its product "
            "(409 product_gone if that product was deleted, 422 if it is full), library media in the "
            "library (pages are not rewritten, except those a merge moved: repointed), an upload to its "
            "owner.",
            {"200": answer_of(Restored, "Restored."), **errors(404, 409, 422)},
            security=LOGGED_IN_WRITE, tags=["trash"], roles="editor (library), admin"),
    },
    "/api/uploads": {
        "post": op("Upload an image (200 when this user already uploaded the same one).",
                   {"201": answer(ref("Image"), "Stored."), "200": answer(ref("Image"), "Already there."),
                    **errors(409)},
                   security=LOGGED_IN_WRITE, tags=["uploads"], roles="any logged-in user",
                   body=multipart({"file": ONE_FILE, "visibility": {"enum": ["public", "private"]}},
                                  ["file"])),
        "get": op("Own uploads (admin: all), newest first.",
                  {"200": answer(list_of("Image"), "A page of uploads.")},
                  security=LOGGED_IN_READ, tags=["uploads"], roles="any logged-in user",
                  parameters=page_params(*parameters_of(UploadsQuery))),
    },
    "/api/uploads/{upload_id}": {
        "parameters": [in_path("upload_id", OBJECT_ID)],
        "get": op("One upload (404 for anyone but its owner and admins).",
                  {"200": answer(ref("Image"), "The upload."), **errors(404)},
                  security=LOGGED_IN_READ, tags=["uploads"], roles="owner, admin"),
        "delete": op("Delete an upload.", {"204": NO_CONTENT, **errors(404, 409)},
                     security=LOGGED_IN_WRITE, tags=["uploads"], roles="owner, admin"),
        "put": UPLOAD_REPLACE,
    },
    "/api/uploads/{upload_id}/focal-point": {
        "parameters": [in_path("upload_id", OBJECT_ID)],
        "put": UPLOAD_FOCAL,
    },
    **edit_paths("/api/uploads/{upload_id}", [in_path("upload_id", OBJECT_ID)], UPLOAD_EDITS),
    **version_paths("/api/uploads/{upload_id}", [in_path("upload_id", OBJECT_ID)], UPLOAD_WITH_NEAR,
                    tag="uploads", roles="owner, admin"),
}
