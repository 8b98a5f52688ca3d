"""HTTP views for /api/builder."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("builder", __name__, url_prefix="/api/builder")
