"""GET /api/admin/audit: the audit log, for admins."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from avenue.admin import service
from avenue.auth import require_role
from avenue.db import get_db
from avenue.http import page_args, paginated

bp = Blueprint("admin", __name__, url_prefix="/api/admin")


@bp.get("/audit")
@require_role("admin")
def audit_log():
    """Newest first, paginated; ``?user=<email or id>`` and ``?action=`` filter."""
    page, per_page = page_args()
    items, total = service.list_entries(get_db(), user=request.args.get("user"),
                                        action=request.args.get("action"), page=page, per_page=per_page)
    return jsonify(paginated(items, total, page, per_page))
