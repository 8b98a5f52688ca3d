"""What the tests of renditions on request share (tests/api/test_renditions.py,
tests/media/store/test_renditions.py): a rendition's path, an app whose unsigned cold renders
are limited, and (for tests/api) a fixture stored through the library door."""

from __future__ import annotations

import time
import types

from flask import Flask

from avenue.media import Buckets
from tests.helpers import image_bytes
from tests.support.stored import stored


def put(app: Flask, name: str = "good/progressive.jpg", bucket: str = Buckets.PRODUCTS, **options) -> dict:
    """Store a fixture through the library (``options``: ``Library.store``'s); its files document."""
    from avenue.db import get_db, get_mongo

    with app.app_context():
        get_mongo().ensure_indexes()
        return stored(get_db(), bucket, image_bytes(name), filename=name.split("/")[-1], **options)


def path(doc, options: str, alias: str = "products") -> str:
    version = (doc.get("metadata") or {}).get("version") or ""
    token = f"{doc['_id']}~{version}" if version else str(doc["_id"])
    return f"/media/{alias}/{token}/{options}"


def limited(app_factory, monkeypatch, address="2/minute", instance="100/minute"):
    """An app with these limits of unsigned cold renders, their clock held still at the middle of
    this minute or the next (not behind the real one: the windows' documents expire by it). The
    windows are aligned to the clock, and a loaded run's requests once straddled the turn of a
    minute (the third of "2/minute" was admitted into the next window)."""
    from avenue import ratelimit

    now = time.time()
    held = (now // 60) * 60 + 30.0 + (60.0 if now % 60 >= 30 else 0.0)
    monkeypatch.setattr(ratelimit, "time", types.SimpleNamespace(time=lambda: held))
    return app_factory(RATELIMIT_ENABLED=True, AVENUE_RENDER_ADDRESS_LIMIT=address,
                       AVENUE_RENDER_INSTANCE_LIMIT=instance)

