"""GET /api/admin/audit: the audit log, for admins; the storage history and its alerts, for ops."""

from __future__ import annotations

from bson import ObjectId
from flask import Blueprint, current_app, jsonify, request

from avenue import audit, monitoring
from avenue.admin import service
from avenue.auth import require, require_role
from avenue.clock import now
from avenue.db import get_db
from avenue.http import page_args

bp = Blueprint("admin", __name__, url_prefix="/api/admin")
ALERT_ID = '<oid("alert_not_found", "No alert with this id."):alert_id>'


@bp.get("/audit")
@require_role("admin")
def audit_log():
    """Newest first, paginated; ``?user=<email or id>`` and ``?action=`` filter."""
    window = page_args()
    items, page = service.list_entries(get_db(), window, user=request.args.get("user"),
                                       action=request.args.get("action"))
    return jsonify(page.shape(items, window))


@bp.get("/history")
@require_role("ops")
def history():
    """The storage history's series over ``?range=24h|7d|30d`` (default 7d), for charts."""
    return jsonify(monitoring.history_series(get_db(), request.args.get("range")))


@bp.get("/alerts")
@require_role("ops")
def alerts():
    """Recorded threshold crossings, newest first (``?open=1``: not acknowledged), and the
    quota thresholds in force, so a client colours usage by the same levels."""
    open_only = request.args.get("open", "").lower() in {"1", "true", "yes"}
    return jsonify(items=monitoring.list_alerts(get_db(), open_only=open_only),
                   thresholds=monitoring.thresholds_object(current_app.config))


@bp.post(f"/alerts/{ALERT_ID}/ack")
@require_role("ops")
def acknowledge_alert(alert_id: ObjectId):
    """Acknowledge an alert (the first acknowledgement is kept)."""
    user = require()
    alert = monitoring.acknowledge(get_db(), alert_id, user.email, now())
    audit.log("alert_acknowledged", alert_id=str(alert_id))
    return jsonify(alert)
