"""The storage history's samples as the monitoring tests take them: a moment, the alert
thresholds, and reports shaped like the real ones (avenue/monitoring/sampler.py reads them)."""

from __future__ import annotations

import datetime as dt

from avenue.monitoring import sampler

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
THRESHOLDS = (70.0, 85.0, 95.0)


def reports(percent: float | None = None, *, originals: int = 0, safe: bool = True, missing: int = 0):
    """A (storage-status, products-status) pair shaped like the real reports."""
    quota_bytes = 1000 if percent is not None else 0
    storage = {
        "gridfs_bytes": 10 * originals,
        "buckets": {"product_images_data": {"alias": "products", "files": 5 * originals,
                                            "originals": originals, "bytes": 10 * originals}},
        "database_size": {"data_bytes": 500, "storage_bytes": 600, "data_dir": None},
        "quota": {"bytes": quota_bytes, "used_bytes": int((percent or 0) * 10),
                  "percent": percent, "level": "ok"},
    }
    products = {"safe": safe, "missing_files": {"count": missing, "items": []},
                "orphans": {"count": 0 if safe else 2, "items": []}}
    return storage, products


def take(db, moment, percent=None, owner="a", **kwargs):
    return sampler.sample_once(db, lambda: reports(percent, **kwargs), interval=3600,
                               thresholds=THRESHOLDS, moment=moment, owner=owner)
