"""Shop: products and their images (GridFS buckets temp_images and product_images_data)."""

from __future__ import annotations

import threading

from flask import Flask

from avenue.db import get_mongo
from avenue.shop import reports, status
from avenue.shop.views import bp

__all__ = ["bp", "warm_up_status_reports"]


def warm_up_status_reports(app: Flask) -> threading.Thread | None:
    """Compute the status snapshots that do not exist yet, in a background thread (the app
    server calls this as each worker starts; the lease lets one worker of many compute)."""
    if not app.config.get("AVENUE_STATUS_WARM_UP", True):
        return None
    db = get_mongo(app).db
    return reports.warm_up_in_background(db, status.report_computes(db, app.config, share_scan=True))
