"""``/api/admin/rerender``: the re-render job (avenue/ops/rerender.py) from the ops dashboard.

``GET`` (ops, admins): the last run the API started and its progress; ``?stale=1`` also counts
the stale variants and renditions (a read of every files document, no bytes). ``POST``
(admins): start one bounded run in the background (202), resuming where the last one stopped;
409 while another run (the CLI's or the API's) holds the ops lock.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from avenue import audit
from avenue.auth import require_role
from avenue.db import get_db
from avenue.errors import BadRequest
from avenue.http import json_body
from avenue.ops import rerender

bp = Blueprint("ops_api", __name__, url_prefix="/api/admin")
MAX_LIMIT = 100_000_000


@bp.get("/rerender")
@require_role("ops")
def rerender_progress() -> Response:
    """The last run's progress (``run``: null before any); ``?stale=1`` adds ``stale``."""
    db = get_db()
    body: dict[str, Any] = {"run": rerender.progress_of(db)}
    if request.args.get("stale", "").lower() in {"1", "true", "yes"}:
        body["stale"] = rerender.stale_counts(db)
    return jsonify(body)


@bp.post("/rerender")
@require_role("admin")
def start_rerender() -> tuple[Response, int]:
    """Start a run: ``{"limit": N, "cpu_share": 0.5}`` (both optional: ``{}``)."""
    body = json_body()
    limit = body.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or
                              not 1 <= limit <= MAX_LIMIT):
        raise BadRequest(f"limit must be a whole number of images, 1 to {MAX_LIMIT}.", code="invalid_field")
    share = body.get("cpu_share", 0.5)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
        raise BadRequest("cpu_share must be a number above 0, at most 1.", code="invalid_field")
    run, _ = rerender.start(get_db(), limit=limit, cpu_share=float(share))
    audit.log("rerender_started", run=run["id"], limit=limit, cpu_share=share)
    return jsonify(run), 202
