"""What every part of the OpenAPI document shares: the helpers that write an operation, its
error responses (one per status, the contract's error shape), its parameters and bodies, the
security requirements, and ``SHAPES``, the components the declared models add
(``avenue/shapes.py``: a body's or an answer's schema is its model's)."""

from __future__ import annotations

from typing import Any

from avenue.paging import COUNT_LIMIT, MAX_PER_PAGE
from avenue.shapes import Answer, Shape, schema_of

Schema = dict[str, Any]
TIME = {"type": ["string", "null"], "format": "date-time"}
INT0 = {"type": "integer", "minimum": 0}
NAMED = {"type": ["string", "null"]}
SKU = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}
SLUG = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$"}


def ref(name: str) -> Schema:
    """A reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def answer(schema: Schema, description: str) -> Schema:
    """A JSON response whose body is ``schema``."""
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
    415: "Unsupported type (not an accepted image format; a format turned off by AVENUE_DISABLED_FORMATS: "
         "format_disabled, naming the format and the setting; an SVG anywhere but a new upload to the "
         "builder's library: svg_not_accepted; an SVG whose DOCTYPE declares entities: svg_doctype).",
    417: "An Expect header other than 100-continue (the app server's own answer).",
    422: "Valid request, unusable content (corrupt image, too many images, bad order; a URL import whose "
         "supplier could not be looked up or reached, answered an error status, redirected too often or "
         "was too slow: fetch_failed, http_error, too_many_redirects, timeout).",
    429: "Rate limited; Retry-After says when to try again.",
    431: "Header fields larger or more than the app server takes.",
    460: "A tus PATCH whose bytes do not match its Upload-Checksum (nothing of it was kept).",
    501: "A Transfer-Encoding other than chunked (the app server's own answer).",
    503: "Database down, not answering in time, or reporting trouble of its own (an internal error, a full "
         "disk, a shutdown: `database_unavailable`), or the server busy; Retry-After says when to try again. "
         "`store_not_migrated`: the database holds images stored before this version's layout; ops runs "
         "the command the message names (production.md, \"Upgrade notes\").",
}


# What any request can get, whatever its operation, so every operation lists it: the app
# server's own refusals before the app sees the request (gunicorn's parser and limits, whose
# limit_request_line makes a long query string or path a 414; avenue/server.py's 408 for a
# slow client); a body over its route's limit, which every route has, even one that reads
# none (avenue/http.py, limit_request_body); and the database down, since every /api/ request
# first makes sure the indexes exist (avenue/readiness.py), but the document's own (``op``'s
# ``database=False``).
ANY_REQUEST = (400, 408, 413, 414, 417, 431, 501, 503)
MULTIPART = "multipart/form-data"


def errors(*statuses: int) -> dict[str, Schema]:
    """The error responses ``statuses``, each the contract's error shape."""
    return {str(status): {"$ref": f"#/components/responses/E{status}"} for status in sorted(set(statuses))}


def common_errors(security: list[Schema], body: Schema | None) -> set[int]:
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


def page_params(*extra: Schema) -> list[Schema]:
    """A list's parameters: the shared paging ones, then ``extra``."""
    return [{"$ref": "#/components/parameters/page"}, {"$ref": "#/components/parameters/per_page"},
            {"$ref": "#/components/parameters/after"}, *extra]


def in_query(name: str, schema: Schema, description: str) -> Schema:
    """An optional query parameter."""
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def in_path(name: str, schema: Schema) -> Schema:
    """A path parameter."""
    return {"name": name, "in": "path", "required": True, "schema": schema}


def multipart(properties: Schema, required: list[str]) -> Schema:
    """A required multipart/form-data request body (an upload's form)."""
    return {"required": True, "content": {MULTIPART: {"schema": {
        "type": "object", "properties": properties, "required": required}}}}


def _body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


#: The objects request shapes nest (``#/components/schemas/<Name>``), filled by :func:`_shaped`,
#: and the answers declared as models that operations name by reference (Product).
SHAPES: dict[str, Schema] = {}


def answer_of(model: type[Answer], description: str) -> Schema:
    """An answer the code builds as ``model`` (avenue/shapes.py): its schema is the model's."""
    return answer(schema_of(model, SHAPES), description)


def component(model: type[Answer], name: str = "") -> None:
    """``model``'s schema as ``#/components/schemas/<name>`` (its class's name by default), for ``ref``."""
    SHAPES[name or model.__name__] = schema_of(model, SHAPES)


def extension(model: type[Answer], base: type[Answer], name: str) -> Schema:
    """The schema of ``model``, a subclass of ``base`` (the component ``name``): ``base``'s
    reference and the fields ``model`` adds, so the document states the shared ones once."""
    schema = schema_of(model, SHAPES)
    own = [field for field in model.model_fields if field not in base.model_fields]
    added: Schema = {"type": "object", "properties": {field: schema["properties"][field] for field in own}}
    required = [field for field in schema.get("required", ()) if field in own]
    if required:
        added["required"] = required
    return {"allOf": [ref(name), added], **{key: schema[key] for key in ("description",) if key in schema}}


def shaped(model: type[Shape]) -> Schema:
    """The JSON body a view declares with ``@takes(model)`` (avenue/shapes.py): its schema is
    the model's, so the document says what the check does."""
    return _body(schema_of(model, SHAPES))


# Who may call: a bearer token decides alone; a session cookie needs the CSRF header to change
# anything; {} = anonymous allowed.
ANYONE: list[Schema] = [{}, {"bearerToken": []}, {"sessionCookie": []}]


LOGGED_IN_READ: list[Schema] = [{"bearerToken": []}, {"sessionCookie": []}]


LOGGED_IN_WRITE: list[Schema] = [{"bearerToken": []}, {"sessionCookie": [], "csrfToken": []}]


def op(summary: str, responses: dict[str, Schema], *, security: list[Schema], tags: list[str],
       parameters: list[Schema] | None = None, body: Schema | None = None, roles: str = "",
       database: bool = True) -> Schema:
    """An operation; ``responses`` are its answers and its own errors, those it shares with
    every operation of its kind are added here (:func:`common_errors`). ``database=False``: it
    never waits for the database (avenue/readiness.py skips it), so never answers its 503."""
    refused = {int(status) for status in responses if int(status) >= 400} | common_errors(security, body)
    if not database:
        refused.discard(503)
    answers = {status: given for status, given in responses.items() if int(status) < 400}
    operation: Schema = {"summary": summary, "tags": tags, "security": security,
                         "responses": {**answers, **errors(*refused)}}
    if roles:
        operation["description"] = f"Who: {roles}."
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    return operation


def list_of(item: str) -> Schema:
    """A page of a list of the component ``item``, as every paged list answers it."""
    return {"type": "object", "required": ["items", "total", "page", "per_page"],
            "properties": {"items": {"type": "array", "items": ref(item)},
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
IMAGE_FILES = {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1}
ONE_FILE = {"type": "string", "format": "binary"}
FOLDER = {"type": "string", "maxLength": 600, "description": "/name/name…, at most 8 names."}
TAG = {"type": "string", "minLength": 1, "maxLength": 40}


def picture(mimetype: str, description: str) -> Schema:
    """A response whose body is a picture of type ``mimetype``."""
    return {"description": description,
            "content": {mimetype: {"schema": {"type": "string", "format": "binary"}}}}


def in_header(name: str, description: str, required: bool = False) -> Schema:
    """A header parameter."""
    return {"name": name, "in": "header", "required": required, "schema": {"type": "string"},
            "description": description}


# Imports from a URL (avenue/bulk/urls.py, the guard avenue/urlfetch.py; docs/api.md "Imports
# from a URL"): what a refused URL answers, besides the body's own 400s. A supplier's failure is
# a 422, never a 5xx: those are this service's own faults (issue 62).
URL_REFUSALS = (400, 403, 413, 415, 422, 429)
