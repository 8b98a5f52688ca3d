"""``/api/admin/rerender``: the re-render job (avenue/ops/rerender.py) from the ops dashboard.

``GET`` (ops, admins): the last run the API started and its progress; ``?stale=1`` also counts
the stale variants and renditions (a read of every files document, no bytes). ``POST``
(admins): start one bounded run in the background (202), resuming where the last one stopped;
409 while another run (the CLI's or the API's) holds the ops lock.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from avenue import audit
from avenue.auth import require_role
from avenue.db import get_db
from avenue.http import app_media, takes, takes_query
from avenue.ops import rerender

bp = Blueprint("ops_api", __name__, url_prefix="/api/admin")


@bp.get("/rerender")
@require_role("ops")
@takes_query(rerender.StatusQuery)
def rerender_progress(query: rerender.StatusQuery) -> Response:
    """The last run's progress (``run``: null before any); ``?stale=1`` adds ``stale``."""
    db = get_db()
    return jsonify(rerender.RerenderStatus(run=rerender.progress_of(db),
                                           stale=rerender.stale_counts(db) if query.stale else None).answer())


@bp.post("/rerender")
@require_role("admin")
@takes(rerender.RerenderRun)
def start_rerender(asked: rerender.RerenderRun) -> tuple[Response, int]:
    """Start a run: ``{"limit": N, "cpu_share": 0.5}`` (both optional: ``{}``)."""
    run, _ = rerender.start(get_db(), app_media().core, limit=asked.limit, cpu_share=asked.cpu_share)
    audit.log("rerender_started", run=run.id, limit=asked.limit, cpu_share=asked.cpu_share)
    return jsonify(run.answer()), 202
