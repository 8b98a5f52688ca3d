"""Request parsing shared by every API view: JSON bodies (a view's declared model: ``takes``),
pagination, uploaded files."""

from __future__ import annotations

import functools
import io
import json
import math
from collections.abc import Callable, Mapping
from typing import IO, Annotated, Any, BinaryIO, Concatenate, Literal, ParamSpec, TypeVar, cast

import flask
from flask import current_app, request
from flask.json.provider import DefaultJSONProvider
from pydantic import Field
from werkzeug.exceptions import RequestEntityTooLarge

from avenue.errors import BadRequest
from avenue.media import AppMedia, Library
from avenue.paging import MAX_OFFSET, MAX_PER_PAGE, Window
from avenue.shapes import Answer, Shape, query_names, repeated

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound=Shape)

MAX_JSON_DEPTH = 64


class _Refused(ValueError):
    """A JSON value the API does not take (non-finite, out of range, too deep)."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to infinity
        raise _Refused(f"the number {text[:40]} is out of range")
    return value


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON")


def _depth(value: Any) -> int:
    """How deeply ``value`` nests (iteratively: a hostile body cannot exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            return depth
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest


def parse_json(data: bytes) -> Any:
    """Strict JSON: finite numbers, no NaN/Infinity, at most 64 levels deep. (Integers too big
    for MongoDB are refused where they are used: a price's bounds, a page block's BSON check.)"""
    try:
        value = json.loads(data, parse_float=_finite, parse_constant=_constant)
    except _Refused as exc:
        raise BadRequest(f"The JSON body is refused: {exc}.", code="invalid_json") from None
    except RecursionError:
        too_deep = f"The JSON body nests more than {MAX_JSON_DEPTH} levels."
        raise BadRequest(too_deep, code="invalid_json") from None
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The body is not valid JSON.", code="invalid_json") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise BadRequest(f"The JSON body nests more than {MAX_JSON_DEPTH} levels.", code="invalid_json")
    return value


# Request bodies, per route (checked before the view runs, from Content-Length; Werkzeug holds
# a chunked body to the same limit while reading it). A route that takes one file allows one
# file's limit; routes taking a product's images allow its worth of files (AVENUE_MAX_UPLOAD_BYTES
# times AVENUE_MAX_PRODUCT_IMAGES, plus a megabyte of form); every other route
# (JSON) allows the largest JSON it accepts: a builder page (2 MB) and its envelope; a zip
# import, AVENUE_ZIP_MAX_BYTES.
JSON_BODY_LIMIT = 2 * 1024 * 1024 + 64 * 1024
FORM_OVERHEAD = 64 * 1024
PRODUCT_FORM_OVERHEAD = 1024 * 1024


# Each marked route's body limit, from the app's config.
BODY_LIMITS: dict[str, Callable[[Mapping[str, Any]], int]] = {
    "one_file": lambda config: config["AVENUE_MAX_UPLOAD_BYTES"] + FORM_OVERHEAD,
    # Its own worth, not MAX_CONTENT_LENGTH: that ceiling is the largest route's (a zip import).
    "product_files": lambda config: (config["AVENUE_MAX_UPLOAD_BYTES"] * config["AVENUE_MAX_PRODUCT_IMAGES"]
                                     + PRODUCT_FORM_OVERHEAD),
    "zip_archive": lambda config: config["AVENUE_ZIP_MAX_BYTES"],
    "tus_chunk": lambda config: config["AVENUE_TUS_CHUNK_MAX_BYTES"],
}


def _marker(kind: str) -> Callable[[Any], Any]:
    """A decorator marking a view whose body may be ``BODY_LIMITS[kind]``."""
    def mark(view: Any) -> Any:
        view.body_limit = kind
        return view
    return mark


one_file = _marker("one_file")  # a view that takes one uploaded file
product_files = _marker("product_files")  # a product's worth of files (AVENUE_MAX_PRODUCT_IMAGES)
zip_archive = _marker("zip_archive")  # a zip archive as its body (AVENUE_ZIP_MAX_BYTES)
tus_chunk = _marker("tus_chunk")  # one tus PATCH's bytes (AVENUE_TUS_CHUNK_MAX_BYTES)


def limit_request_body() -> None:
    """Set this request's body limit from its route and refuse a larger one at once (413)."""
    view = current_app.view_functions.get(request.endpoint or "")
    limit_of = BODY_LIMITS.get(getattr(view, "body_limit", None) or "")
    limit = limit_of(current_app.config) if limit_of else JSON_BODY_LIMIT
    # A smaller MAX_CONTENT_LENGTH (the whole app's ceiling) caps every route.
    limit = min(limit, current_app.config.get("MAX_CONTENT_LENGTH") or limit)
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"This request's body is {request.content_length:,} bytes; this endpoint "
                                    f"takes at most {limit:,}.")


class Request(flask.Request):
    """The app's request (``app.request_class``): multipart file parts stay in memory.

    Werkzeug spools a file part over 500 KB to a temporary file on the local disk; the app writes
    nothing to local disk (docs/production.md: its workers are stateless, any may be replaced). Its
    hook for the stream a file part is parsed into, ``_get_file_stream``, gives memory instead.
    Safe because every route that parses a form is capped before it is read:
    ``limit_request_body`` sets ``max_content_length`` from the route (one file's limit, or a
    product's worth of files) before the view runs, and Werkzeug refuses a chunked body past it
    while parsing; the ingest reads each file into memory whole anyway (``pipeline.read``)."""

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None, content_length: int | None = None) -> IO[bytes]:
        return io.BytesIO()


def json_body() -> dict[str, Any]:
    """The request's JSON object (strict: see :func:`parse_json`), or a 400."""
    if not request.is_json:
        raise BadRequest("Send a JSON object with Content-Type: application/json.", code="invalid_json")
    body = parse_json(request.get_data(cache=True))
    if not isinstance(body, dict):
        raise BadRequest("Send a JSON object with Content-Type: application/json.", code="invalid_json")
    return body


def app_media() -> AppMedia:
    """The app's media (avenue/media/app.py), which a view or a command hands to its service:
    the Flask side reads the app, nothing below it does."""
    return AppMedia.of(current_app)


def takes(model: type[S], context: Callable[[], Any] | None = None,
          ) -> Callable[[Callable[Concatenate[S, P], R]], Callable[P, R]]:
    """A view whose JSON body is ``model``: it receives the parsed body as its first argument
    (before the URL's); the model is kept on the view (``body_shape``) for the document.
    ``context``: makes what the model's validators read beyond the body, per request (bounds
    the configuration sets)."""
    def decorate(view: Callable[Concatenate[S, P], R]) -> Callable[P, R]:
        @functools.wraps(view)
        def parsed(*args: P.args, **kwargs: P.kwargs) -> R:
            return view(model.parse(json_body(), context() if context else None), *args, **kwargs)

        parsed.body_shape = model  # type: ignore[attr-defined]
        return parsed
    return decorate


def takes_query(model: type[S]) -> Callable[[Callable[Concatenate[S, P], R]], Callable[P, R]]:
    """A view whose query string is ``model`` (configured with ``shapes.QUERY``): it receives
    the parsed query as its first argument; the model is kept on the view (``query_shape``)
    for the document. Paging stays :func:`page_args`'s."""
    def decorate(view: Callable[Concatenate[S, P], R]) -> Callable[P, R]:
        many, names = repeated(model), query_names(model)

        @functools.wraps(view)
        def parsed(*args: P.args, **kwargs: P.kwargs) -> R:
            values = {name: request.args.getlist(name) if name in many else request.args[name]
                      for name in request.args if name in names}
            return view(model.parse(values), *args, **kwargs)

        parsed.query_shape = model  # type: ignore[attr-defined]
        return parsed
    return decorate


class StrictJSONProvider(DefaultJSONProvider):
    """Responses are strict JSON: a non-finite number is an error here, never ``Infinity`` in
    a body that browsers' ``JSON.parse`` would reject."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)


def page_args(default_per_page: int = 20) -> Window:
    """Which part of a list to answer: ``page``/``per_page`` or ``after`` (avenue/paging.py)."""
    # Read here rather than by a query model: one window every list shares, documented once
    # (the components' page, per_page and after), with the one refusal invalid_pagination.
    try:
        page = int(request.args.get("page", 1))
        per_page = int(request.args.get("per_page", default_per_page))
    except ValueError as exc:
        raise BadRequest("page and per_page must be whole numbers.", code="invalid_pagination") from exc
    if not 1 <= per_page <= MAX_PER_PAGE or page < 1:
        raise BadRequest(f"page is 1 or more; per_page is 1 to {MAX_PER_PAGE}.", code="invalid_pagination")
    after = request.args.get("after")
    if after is not None and page != 1:
        raise BadRequest("Send page or after, not both.", code="invalid_pagination")
    if (page - 1) * per_page > MAX_OFFSET:
        raise BadRequest(f"Numbered pages reach the first {MAX_OFFSET:,} items; go further with "
                         "after=<next> from the previous page.", code="invalid_pagination",
                         max_offset=MAX_OFFSET)
    return Window(page=page, per_page=per_page, after=after)


def uploaded_files(field: str, *, single: bool = False) -> list[Library.Upload]:
    """The multipart files sent under ``field`` (400 when there are none)."""
    files = [f for f in request.files.getlist(field) if f and (f.filename or f.content_length)]
    if not files:
        raise BadRequest(f"Send the image as multipart/form-data field '{field}'.", code="missing_file")
    if single and len(files) > 1:
        raise BadRequest(f"Send one file in '{field}'.", code="too_many_files")
    # Werkzeug types a file's stream as IO[bytes]; it is a binary file (BytesIO or a temporary file).
    return [Library.Upload(f.filename, cast(BinaryIO, f.stream)) for f in files]


def private_picture(data: bytes, mimetype: str) -> flask.Response:
    """A small picture made for one caller with rights (a version's preview, a heat map): kept
    by the browser a while, never by a shared cache."""
    response = flask.Response(data, mimetype=mimetype)
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


TIME = Field(json_schema_extra={"format": "date-time"})


class VersionItem(Answer):
    """One version of an image as the API lists it (media's ``Version.to_dict`` and its preview)."""

    id: Annotated[str, Field(pattern="^[0-9a-f]{8}$")]
    current: bool
    since: Annotated[str | None, TIME, Field(description="When it became current.")]
    replaced_at: Annotated[str | None, TIME, Field(
        description="When it stopped being current (null: the current one).")]
    kept_until: Annotated[str | None, TIME, Field(description="Restorable until (null: the current one).")]
    changed: Annotated[list[Literal["upload", "bytes", "edits", "focal_point", "crops"]], Field(
        description="What changed from the version before it (empty: a change made before versions "
                    "were kept).")]
    restored_from: Annotated[str | None, Field(description="The version a restore brought back.")]
    bytes: Annotated[int, Field(ge=0)]
    width: int | None
    height: int | None
    format: str | None
    preview_url: Annotated[str, Field(description="A small WebP of it (the same rights as this list).")]


class Versions(Answer):
    """An image's versions, the current one first."""

    items: list[VersionItem]


class ComparisonAnswer(Answer):
    """Two versions of an image compared."""

    before: str
    after: str
    changed_share: Annotated[float, Field(ge=0, le=1, description=(
        "The share of pixels that differ (over 16 of 255 in a channel), both drawn at most 512 px."))]
    width: int
    height: int
    heat_map_url: Annotated[str, Field(description="The heat map (PNG) of what differs.")]


def versions_answer(listed: list[Any], preview: Callable[[str], str]) -> dict[str, Any]:
    """An image's versions as the API lists them: each version's object with its preview URL."""
    return Versions(items=[VersionItem(**version.to_dict(), preview_url=preview(version.id))
                           for version in listed]).answer()


def comparison_answer(compared: Any, heat_map_url: str) -> dict[str, Any]:
    """Two versions compared, as the API answers it."""
    return ComparisonAnswer(before=compared.before, after=compared.after, changed_share=compared.share,
                            width=compared.width, height=compared.height, heat_map_url=heat_map_url).answer()
