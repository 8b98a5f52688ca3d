"""What the delivery numbers' tests in tests/api and tests/media share: images stored through
the library door, their media URLs, and a worker's flush of what it served."""

from __future__ import annotations

from flask import Flask
from pymongo.database import Database

from avenue.media import AppMedia, Buckets, Image, Library
from avenue.media.wiring import Route
from tests.helpers import image_bytes
from tests.support.records import record

# How many times a test serves a file before it flushes.
N = 7


def put(app: Flask, name: str = "good/progressive.jpg", bucket: str = Buckets.PRODUCTS) -> dict:
    """The fixture ``name`` stored in ``bucket`` of ``app``'s database, as its record."""
    from avenue.db import get_db, get_mongo

    with app.app_context():
        get_mongo().ensure_indexes()
        db = get_db()
        upload = Library.Upload(name.split("/")[-1], image_bytes(name))
        image = AppMedia.on(db).library(bucket).store(upload).image
        return record(db, bucket, image.id)


def url(doc, tail: str = "") -> str:
    version = (doc.get("metadata") or {}).get("version") or ""
    token = f"{doc['_id']}~{version}" if version else str(doc["_id"])
    return f"/media/products/{token}" + (f"/{tail}" if tail else "")


def flush(app: Flask, db: Database) -> dict[str, int]:
    """Write what ``app``'s worker served to its database ``db``: what each sink wrote."""
    assert db.name == app.config["MONGO_DB"]
    with app.app_context():
        return Route.flush_deliveries(app, 60.0)


def library_image(db: Database, name: str) -> Image:
    """The fixture ``name`` stored in the builder's library."""
    upload = Library.Upload(name.split("/")[-1], image_bytes(name))
    return AppMedia.on(db).library(Buckets.BUILDER).store(upload).image
