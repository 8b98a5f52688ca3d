"""The OpenAPI document itself: every wing's paths and the shared components, put together.

Imported on the first request for the document (``avenue/apidoc/__init__.py``), not when the
app starts: building it (each declared model's JSON schema) was 120 of a worker's 500 ms start.
"""

from __future__ import annotations

from typing import Any

from avenue.apidoc import admin, builder, shop, tus, uploads
from avenue.apidoc.common import ERROR_MEANINGS, SHAPES, answer, in_query, ref
from avenue.apidoc.components import SCHEMAS
from avenue.paging import MAX_CURSOR_LENGTH, MAX_OFFSET, MAX_PER_PAGE

TAGS = ("auth", "shop", "status", "builder", "uploads", "tus", "links", "trash", "admin", "meta")

#: Every path of /api/, by wing (a tag's operations keep their order within it).
PATHS: dict[str, Any] = {**tus.PATHS, **admin.PATHS, **shop.PATHS, **builder.PATHS, **uploads.PATHS}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a new dict each call)."""
    responses = {f"E{status}": answer(ref("Error"), meaning) for status, meaning in ERROR_MEANINGS.items()}
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
                "page": in_query("page", {"type": "integer", "minimum": 1},
                                 f"Page number (from 1); numbered pages reach the first {MAX_OFFSET:,} items "
                                 "((page - 1) × per_page), deeper is 400 `invalid_pagination`: use `after`."),
                "per_page": in_query("per_page", {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
                                     "Items per page."),
                "after": in_query("after", {"type": "string", "maxLength": MAX_CURSOR_LENGTH},
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
