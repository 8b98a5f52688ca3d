"""GET /api/admin/audit: the audit log, for admins; the storage history and its alerts, for ops."""

from __future__ import annotations

from bson import ObjectId
from flask import Blueprint, Response, current_app, jsonify

from avenue import audit, monitoring
from avenue.admin import deliveries, service
from avenue.auth import edits_images, require, require_role
from avenue.clock import now
from avenue.db import get_db
from avenue.errors import NotFound
from avenue.http import app_media, page_args, takes_query
from avenue.media import Buckets, Deliveries, UrlSigner

bp = Blueprint("admin", __name__, url_prefix="/api/admin")
ALERT_ID = '<oid("alert_not_found", "No alert with this id."):alert_id>'


@bp.get("/audit")
@require_role("admin")
@takes_query(service.AuditQuery)
def audit_log(query: service.AuditQuery) -> Response:
    """Newest first, paginated; ``?user=<email or id>`` and ``?action=`` filter."""
    window = page_args()
    items, page = service.list_entries(get_db(), window, user=query.user, action=query.action)
    return jsonify(page.shape(items, window))


@bp.get("/history")
@require_role("ops")
@takes_query(monitoring.HistoryQuery)
def history(query: monitoring.HistoryQuery) -> Response:
    """The storage history's series over ``?range=24h|7d|30d`` (default 7d), for charts."""
    return jsonify(monitoring.history_series(get_db(), query.range))


@bp.get("/alerts")
@require_role("ops")
@takes_query(monitoring.AlertsQuery)
def alerts(query: monitoring.AlertsQuery) -> Response:
    """Recorded threshold crossings, newest first (``?open=1``: not acknowledged), and the
    quota thresholds in force, so a client colours usage by the same levels."""
    return jsonify(monitoring.alert_list(get_db(), current_app.config, open_only=query.open))


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
    from avenue.presentation.objects import signer_from_config

    return signer_from_config(current_app.config, sources=edits_images())


@bp.get("/deliveries/top")
@require_role("ops")
@takes_query(deliveries.TopQuery)
def deliveries_top(query: deliveries.TopQuery) -> Response:
    """The most served (``?by=requests``, default) or heaviest (``?by=bytes``) images over
    ``?from=&to=`` (UTC days, the last 30 by default), ``?limit=`` 1-100 (default 20)."""
    start, end = query.days(now())
    return jsonify(deliveries.top(app_media(), start, end, query.by, query.limit, _signer()).answer())


@bp.get('/deliveries/images/<alias>/<oid("media_not_found", "No image with this id."):image_id>')
@require_role("ops")
@takes_query(Deliveries.DayRange)
def deliveries_series(query: Deliveries.DayRange, alias: str, image_id: ObjectId) -> Response:
    """One image's requests and bytes per day over ``?from=&to=``, and when it was last served."""
    bucket = Buckets.BY_ALIAS.get(alias)
    if bucket is None:
        raise NotFound("No such media bucket.", code="media_not_found")
    start, end = query.days(now())
    return jsonify(deliveries.series(app_media(), bucket, image_id, start, end))


@bp.get("/deliveries/never-served")
@require_role("ops")
def deliveries_never_served() -> Response:
    """The library's images never served, one library page at a time."""
    window = page_args()
    items, page = deliveries.never_served(app_media(), window, _signer())
    return jsonify(page.shape(items, window))


@bp.get("/cleanup")
@require_role("ops")
@takes_query(deliveries.CleanupQuery)
def cleanup(query: deliveries.CleanupQuery) -> Response:
    """Library images no page or product uses and not served for ``?days=`` (default 90)."""
    window = page_args()
    items, page = deliveries.unused(app_media(), window, query.days, now(), _signer())
    return jsonify({**page.shape(items, window), "days": query.days})
