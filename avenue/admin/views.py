"""GET /api/admin/audit: the audit log, for admins; the storage history and its alerts, for ops."""

from __future__ import annotations

from bson import ObjectId
from flask import Blueprint, Response, current_app, jsonify, request

from avenue import audit, monitoring
from avenue.admin import deliveries, service
from avenue.auth import edits_images, require, require_role
from avenue.clock import now
from avenue.db import get_db
from avenue.errors import BadRequest, NotFound
from avenue.http import page_args
from avenue.media import BUCKETS, UrlSigner

bp = Blueprint("admin", __name__, url_prefix="/api/admin")
ALERT_ID = '<oid("alert_not_found", "No alert with this id."):alert_id>'


@bp.get("/audit")
@require_role("admin")
def audit_log() -> Response:
    """Newest first, paginated; ``?user=<email or id>`` and ``?action=`` filter."""
    window = page_args()
    items, page = service.list_entries(get_db(), window, user=request.args.get("user"),
                                       action=request.args.get("action"))
    return jsonify(page.shape(items, window))


@bp.get("/history")
@require_role("ops")
def history() -> Response:
    """The storage history's series over ``?range=24h|7d|30d`` (default 7d), for charts."""
    return jsonify(monitoring.history_series(get_db(), request.args.get("range")))


@bp.get("/alerts")
@require_role("ops")
def alerts() -> Response:
    """Recorded threshold crossings, newest first (``?open=1``: not acknowledged), and the
    quota thresholds in force, so a client colours usage by the same levels."""
    open_only = request.args.get("open", "").lower() in {"1", "true", "yes"}
    return jsonify(monitoring.alert_list(get_db(), current_app.config, open_only=open_only))


@bp.post(f"/alerts/{ALERT_ID}/ack")
@require_role("ops")
def acknowledge_alert(alert_id: ObjectId) -> Response:
    """Acknowledge an alert (the first acknowledgement is kept)."""
    user = require()
    alert = monitoring.acknowledge(get_db(), alert_id, user.email, now())
    audit.log("alert_acknowledged", alert_id=str(alert_id))
    return jsonify(alert)


# --- delivery numbers and the clean-up list (avenue/admin/deliveries.py) -----------------


def _signer() -> UrlSigner:
    from avenue.media import signer_from_config

    return signer_from_config(current_app.config, sources=edits_images())


@bp.get("/deliveries/top")
@require_role("ops")
def deliveries_top() -> Response:
    """The most served (``?by=requests``, default) or heaviest (``?by=bytes``) images over
    ``?from=&to=`` (UTC days, the last 30 by default), ``?limit=`` 1-100 (default 20)."""
    start, end = deliveries.parse_range(request.args.get("from"), request.args.get("to"), now())
    by = request.args.get("by", "requests")
    if by not in ("requests", "bytes"):
        raise BadRequest("by is requests or bytes.", code="invalid_by")
    try:
        limit = int(request.args.get("limit", 20))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise BadRequest("limit is a whole number from 1 to 100.", code="invalid_limit")
    return jsonify(deliveries.top(get_db(), start, end, by, limit, _signer()).answer())


@bp.get('/deliveries/images/<alias>/<oid("media_not_found", "No image with this id."):image_id>')
@require_role("ops")
def deliveries_series(alias: str, image_id: ObjectId) -> Response:
    """One image's requests and bytes per day over ``?from=&to=``, and when it was last served."""
    bucket = BUCKETS.get(alias)
    if bucket is None:
        raise NotFound("No such media bucket.", code="media_not_found")
    start, end = deliveries.parse_range(request.args.get("from"), request.args.get("to"), now())
    return jsonify(deliveries.series(get_db(), bucket, image_id, start, end))


@bp.get("/deliveries/never-served")
@require_role("ops")
def deliveries_never_served() -> Response:
    """The library's images never served, one library page at a time."""
    window = page_args()
    items, page = deliveries.never_served(get_db(), window, _signer())
    return jsonify(page.shape(items, window))


@bp.get("/cleanup")
@require_role("ops")
def cleanup() -> Response:
    """Library images no page or product uses and not served for ``?days=`` (default 90)."""
    window = page_args()
    try:
        days = int(request.args.get("days", 90))
    except ValueError:
        days = 0
    items, page = deliveries.unused(get_db(), window, days, now(), _signer())
    return jsonify({**page.shape(items, window), "days": days})
