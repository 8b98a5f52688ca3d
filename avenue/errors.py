"""The domain error hierarchy and its one mapping to the contract's JSON error shape."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

from flask import Flask, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from pymongo.errors import ConnectionFailure, PyMongoError, ServerSelectionTimeoutError
from werkzeug.exceptions import HTTPException, ServiceUnavailable

from avenue import requestid
from avenue.ids import MalformedId


class AvenueError(Exception):
    """A refusal the client can act on; ``status`` and ``code`` go into the response."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return ErrorBody.of(self.code, self.message, self.details)


class BadRequest(AvenueError):
    status, code = 400, "bad_request"


class EmptyFile(BadRequest):
    code = "empty_file"


class Unauthorized(AvenueError):
    status, code = 401, "unauthorized"


class Forbidden(AvenueError):
    status, code = 403, "forbidden"


class RenditionNotAllowed(Forbidden):
    """A rendition off the allow-list without a valid signature (avenue/media/transform.py)."""

    code = "rendition_not_allowed"


class SourceNotAllowed(Forbidden):
    """An image's unedited original (``.../source``) without a valid short-lived signature:
    it is for the image's editors (avenue/presentation/objects.py hands them its URL)."""

    code = "source_not_allowed"


class NotFound(AvenueError):
    status, code = 404, "not_found"


class Conflict(AvenueError):
    status, code = 409, "conflict"


class ImageTooLarge(AvenueError):
    status, code = 413, "too_large"


class SvgTooComplex(ImageTooLarge):
    """An SVG whose raster draw ran past ``AVENUE_SVG_DRAW_SECONDS`` of its helper's CPU time, or
    past its memory allowance (avenue/media/ingest/svgdraw.py): an upload is refused with it."""

    code = "svg_too_complex"


class UnsupportedImage(AvenueError):
    status, code = 415, "unsupported_type"


class UnprocessableContent(AvenueError):
    status, code = 422, "unprocessable"


class CorruptImage(UnprocessableContent):
    code = "corrupt_image"


class NotDrawable(UnprocessableContent):
    """A rendition or variant of a stored SVG whose draw ran past ``AVENUE_SVG_DRAW_SECONDS``,
    remembered so that it is not drawn again (avenue/media/store/undrawable.py)."""

    code = "svg_too_complex"


class RateLimited(AvenueError):
    status, code = 429, "rate_limited"


class ServerBusy(AvenueError):
    """The server cannot take this work right now (e.g. its decode memory is in use)."""

    status, code = 503, "busy"


class DatabaseUnavailable(AvenueError):
    status, code = 503, "database_unavailable"


class StoreNotMigrated(AvenueError):
    """The database holds images in a layout older than this version's: the app does not start
    on it until ops runs the migration the message names (avenue/media/store/layout.py)."""

    status, code = 503, "store_not_migrated"


class ErrorDetail(BaseModel):
    """What went wrong: a code to act on and a message to show; some errors add details of
    their own (retry_after, index, field, minimum, maximum...)."""

    model_config = ConfigDict(extra="allow")

    code: Annotated[str, Field(pattern="^[a-z0-9_]+$")]
    message: str
    request_id: Annotated[str | SkipJsonSchema[None],
                          Field(description="The X-Request-ID of this request.")] = None
    file: Annotated[str | SkipJsonSchema[None], Field(description="The refused file of an upload.")] = None


class ErrorBody(BaseModel):
    """Every error's body: one object, ``error``."""

    # The document's Error. A plain model, not an avenue.shapes.Answer: the shapes raise these
    # errors, so this module cannot import them; the body is built by of(), beside its fields.
    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail

    @staticmethod
    def of(code: str, message: str, details: dict[str, Any]) -> dict[str, Any]:
        """The body of an error: its details answered as they are, beside code and message."""
        body = {"code": code, "message": message}
        body.update(details)
        return {"error": _with_request_id(body)}


def _with_request_id(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` plus the request's id (an extra field: the contract's fields are unchanged), so a
    client reporting an error hands us the id that finds its log lines."""
    rid = requestid.current()
    if rid is not None:
        body.setdefault("request_id", rid)
    return body


def error_response(status: int, code: str, message: str, **details: Any) -> Response:
    """The contract's JSON error body with ``status`` (and the request's ``request_id``)."""
    response = jsonify(ErrorBody.of(code, message, details))
    response.status_code = status
    return response


#: The addresses of files (the media route, the legacy ``/uploads/`` redirects, the app's and
#: the console's static files), fetched by browsers' <img>, <link> and <script>, CDNs and the
#: mobile app rather than by API clients: their own refusals are plain text (docs/media.md), and
#: so is an address under them that no route matches.
FILE_PREFIXES = ("/media/", "/uploads/", "/static/", "/console/static/")

#: An HTML page's answer to an HTTP error (the console's, for a browser on its pages).
ErrorPage = Callable[[HTTPException], Response]


def _is_file_address() -> bool:
    return request.path.startswith(FILE_PREFIXES) or request.path in {"/media", "/uploads"}


def _page_of(pages: Mapping[str, ErrorPage]) -> ErrorPage | None:
    """The error page of the pages ``request.path`` is one of (a prefix, or it without its slash)."""
    for prefix, page in pages.items():
        if request.path.startswith(prefix) or request.path == prefix.rstrip("/"):
            return page
    return None


def plain_error(error: HTTPException) -> Response:
    """``error`` as a file address answers it: its name in plain text, never cached (a CDN
    must not keep a 404 for an address an upload may fill), nosniff, its headers kept."""
    name = error.name or "Error"
    response = Response(name[:1] + name[1:].lower() + "\n", status=error.code or 500,
                        mimetype="text/plain",
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})
    return _with_headers_of(error, response)


def _with_headers_of(error: HTTPException, response: Response) -> Response:
    """``response`` with what ``error``'s answer must say whatever its body: Allow, Retry-After,
    and for a 413 ``Connection: close`` (the body was not read: the connection cannot carry
    another request)."""
    if error.code == 413:
        response.headers["Connection"] = "close"
    said = dict(error.get_headers())
    for header in ("Allow", "Retry-After"):
        if header in said:
            response.headers[header] = said[header]
    return response


#: MongoDB error codes of a server in trouble rather than a request at fault: an internal error
#: (the embedded database answers a full disk so: a 60-minute soak whose disk filled answered
#: uploads 500 until this), a full disk, a shutdown, an interrupted operation, a host or a
#: network unreachable, a lock not taken in time. Answered as the database unavailable (503,
#: Retry-After), as a timeout is. (Not-primary errors are pymongo's own NotPrimaryError, a
#: ConnectionFailure already.)
SERVER_TROUBLE = frozenset({
    1,  # InternalError
    6,  # HostUnreachable
    7,  # HostNotFound
    11600,  # InterruptedAtShutdown
    11602,  # InterruptedDueToReplStateChange
    14031,  # OutOfDiskSpace
    89,  # NetworkTimeout
    91,  # ShutdownInProgress
    189,  # PrimarySteppedDown
    24,  # LockTimeout
})


def register_errorhandlers(app: Flask, pages: Mapping[str, ErrorPage] | None = None) -> None:
    """Answer domain errors, HTTP errors and database outages as JSON: at every address but
    the files' (plain text) and ``pages``' (address prefix -> its own HTML error page: the
    console's, whose users are people in a browser). No answer is Werkzeug's HTML error page."""
    pages = dict(pages or {})

    @app.errorhandler(AvenueError)
    def handle_avenue_error(error: AvenueError) -> Response:
        response = jsonify(error.to_dict())
        response.status_code = error.status
        if error.status in (429, 503) and "retry_after" in error.details:
            response.headers["Retry-After"] = str(error.details["retry_after"])
        return response

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException) -> HTTPException | Response:
        if _is_file_address():
            return plain_error(error)
        page = _page_of(pages)
        if page is not None:
            return _with_headers_of(error, page(error))
        code = (error.name or "error").lower().replace(" ", "_").replace("'", "")
        messages = {
            404: "Nothing is at this address.",
            405: f"{request.method} is not allowed here.",
            413: "The request body is larger than this server accepts.",
        }
        message = messages.get(error.code or 500, error.description or error.name)
        if error.description and error.description != type(error).description:
            message = error.description  # raised with a message of ours
        if isinstance(error, MalformedId):  # the resource's own 404 (avenue/ids.py)
            code, message = error.error_code, error.description or message
        return _with_headers_of(error, error_response(error.code or 500, code, message))

    @app.errorhandler(ConnectionFailure)
    @app.errorhandler(ServerSelectionTimeoutError)
    def handle_database_down(error: Exception) -> Response:
        app.logger.warning("database unavailable: %s", error)
        message = "The database is not answering; try again shortly."
        page = _page_of(pages)  # a console page (its user, or the first request's preparation)
        response = page(ServiceUnavailable(message)) if page is not None else error_response(
            503, "database_unavailable", message)
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(PyMongoError)
    def handle_database_error(error: PyMongoError) -> Response:
        # A time limit hit on the server (maxTimeMS: ExecutionTimeout, e.g. past the deadline of
        # avenue/db.py's long_operations), a write concern's or a bulk write's timeout is the
        # database not answering in time, like a timed-out socket (a ConnectionFailure, above).
        # So is a server that says the fault is its own (SERVER_TROUBLE): nothing in the request
        # caused it, and it may pass.
        if error.timeout or getattr(error, "code", None) in SERVER_TROUBLE:
            return handle_database_down(error)
        return handle_unexpected(error)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response:
        app.logger.exception("unhandled error on %s %r", request.method, request.path)  # %r: no raw CR/LF
        if _is_file_address() or _page_of(pages) is not None:
            return Response("Internal server error\n", status=500, mimetype="text/plain")
        return error_response(500, "internal_error", "Something went wrong on our side.")
