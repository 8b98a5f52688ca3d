"""HTTP views for /api/shop."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("shop", __name__, url_prefix="/api/shop")
