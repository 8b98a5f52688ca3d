"""Request parsing shared by every API view: JSON bodies, pagination, uploaded files."""

from __future__ import annotations

from flask import request

from avenue.errors import BadRequest
from avenue.media import Upload

MAX_PER_PAGE = 100


def json_body() -> dict:
    """The request's JSON object, or a 400."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("Send a JSON object with Content-Type: application/json.", code="invalid_json")
    return body


def page_args(default_per_page: int = 20) -> tuple[int, int]:
    """``(page, per_page)`` from the query string, 1-based, per_page at most 100."""
    try:
        page = int(request.args.get("page", 1))
        per_page = int(request.args.get("per_page", default_per_page))
    except ValueError as exc:
        raise BadRequest("page and per_page must be whole numbers.", code="invalid_pagination") from exc
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise BadRequest(f"page starts at 1; per_page is 1 to {MAX_PER_PAGE}.", code="invalid_pagination")
    return page, per_page


def paginated(items: list, total: int, page: int, per_page: int) -> dict:
    """The contract's list shape."""
    return {"items": items, "total": total, "page": page, "per_page": per_page}


def uploaded_files(field: str, *, single: bool = False) -> list[Upload]:
    """The multipart files sent under ``field`` (400 when there are none)."""
    files = [f for f in request.files.getlist(field) if f and (f.filename or f.content_length)]
    if not files:
        raise BadRequest(f"Send the image as multipart/form-data field '{field}'.", code="missing_file")
    if single and len(files) > 1:
        raise BadRequest(f"Send one file in '{field}'.", code="too_many_files")
    return [Upload(f.filename, f.stream) for f in files]
