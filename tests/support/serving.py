"""What the media route's tests in tests/api and tests/media share: an image stored through
the library door, with its image object and its bytes as stored."""

from __future__ import annotations

from flask import Flask

from avenue.media import Buckets, Image, Library, Media
from avenue.presentation.objects import image_object, signer_from_config
from tests.helpers import image_bytes
from tests.support.records import record


def put(app: Flask, name: str = "good/progressive.jpg", bucket: str = Buckets.PRODUCTS,
        readable: str | None = None, **options) -> dict:
    """Store a fixture through the library (``readable``: then give it that readable name;
    ``options``: ``Library.store``'s); return its record ("doc"), image object ("obj")
    and stored bytes ("bytes")."""
    from avenue.db import get_db, get_mongo

    with app.app_context():
        get_mongo().ensure_indexes()
        library = Library(get_db(), bucket, Media())
        stored = library.store(Library.Upload(name.split("/")[-1], image_bytes(name)), **options).image
        if readable is not None:
            library.rename(stored.id, readable)
        doc = record(get_db(), bucket, stored.id)
        image = Image.from_files_doc(bucket, doc)
        return {"doc": doc, "obj": image_object(image, signer_from_config(app.config)),
                "bytes": library.read(image)}
