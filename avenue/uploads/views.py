"""HTTP views for /api/uploads."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("uploads", __name__, url_prefix="/api/uploads")
