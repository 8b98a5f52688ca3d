"""GET /api/admin/audit: the audit log, for admins."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from avenue.admin import service
from avenue.auth import require_role
from avenue.db import get_db
from avenue.http import page_args

bp = Blueprint("admin", __name__, url_prefix="/api/admin")


@bp.get("/audit")
@require_role("admin")
def audit_log():
    """Newest first, paginated; ``?user=<email or id>`` and ``?action=`` filter."""
    window = page_args()
    items, page = service.list_entries(get_db(), window, user=request.args.get("user"),
                                       action=request.args.get("action"))
    return jsonify(page.shape(items, window))
