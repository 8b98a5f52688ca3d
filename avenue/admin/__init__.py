"""Administration: the audit log reader (GET /api/admin/audit)."""

from avenue.admin.views import bp

__all__ = ["bp"]
