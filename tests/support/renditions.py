"""What the rendition tests in tests/api and tests/media share: an image stored through the
library door on an app's database, its media URLs, and the served bytes' width or pixels."""

from __future__ import annotations

import io

import imagecodecs
import numpy as np
from flask import Flask
from PIL import Image

from avenue.db import get_db, get_mongo
from avenue.media import Buckets
from tests.helpers import image_bytes
from tests.support.stored import stored

# What an answer whose width the client hints chose varies on (``w_auto``).
HINTS_VARY = "Sec-CH-Width, Sec-CH-Viewport-Width, Sec-CH-DPR"


def put(app: Flask, data: bytes | None = None, name: str = "p.jpg", *, bucket: str = Buckets.PRODUCTS,
        **options) -> dict:
    """``data`` (a 4000 px wide photo unless given) stored in ``bucket`` through the library
    (``options``: ``Library.store``'s), as its files document."""
    with app.app_context():
        get_mongo().ensure_indexes()
        return stored(get_db(), bucket, image_bytes("good/photo_12mp.jpg") if data is None else data,
                      filename=name, **options)


def url(doc: dict, options: str) -> str:
    """The URL of a products' image's rendition ``options`` (``w_320.jxl``)."""
    return f"/media/products/{doc['_id']}/{options}"


def width_of(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as im:
        return im.width


def jxl_pixels(data: bytes) -> np.ndarray:
    """A JPEG XL's pixels (height, width, channels), checked to be one."""
    assert imagecodecs.jpegxl_check(data), data[:16]
    return imagecodecs.jpegxl_decode(data)
