"""Photos and other saves of them as the near-duplicate tests upload them (to the builder's
library, or to a product), and the fields a store from before near-duplicates lacks."""

from __future__ import annotations

import functools
import io

from PIL import Image

from tests.support.client import MEDIA, uploaded
from tests.support.fixtures import scene
from tests.support.records import IMAGE, images

NEAR_HASH_FIELDS = ("phash", "phash_bands", "palette", "colour_cells", "near_group", "near_pending")
OWED = {"metadata.near_pending": True}


def jpeg(im: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    im.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def photo(seed: int) -> Image.Image:
    return _photo(seed).copy()  # each caller's own: a caller may draw on it


@functools.cache  # drawn once a process: tests and backends draw the same seeds again (about 4 %)
def _photo(seed: int) -> Image.Image:
    return scene((1000, 750), seed)


def near_copy(im: Image.Image) -> bytes:
    """Re-encoded at quality 60, resized to 70 % and cropped by 3 %: another save of the same shot."""
    width, height = im.size
    cropped = im.crop((int(width * .03), 0, width, int(height * .97)))
    smaller = cropped.resize((cropped.width * 7 // 10, cropped.height * 7 // 10), Image.Resampling.LANCZOS)
    return jpeg(smaller, 60)


def media(client, headers, data: bytes, name: str = "a.jpg") -> dict:
    return uploaded(client, headers, data=data, filename=name, to=MEDIA)


def product_with(client, admin, sku: str, files: list[tuple[bytes, str]]):
    assert client.post("/api/shop/products", headers=admin,
                       json={"sku": sku, "name": sku, "price": 10}).status_code == 201
    return client.post(f"/api/shop/products/{sku}/images", headers=admin,
                       data={"images": [(io.BytesIO(data), name) for data, name in files]})


def strip_near_hashes(db, bucket: str) -> None:
    images(db, bucket).update_many(IMAGE, {"$unset": {f"metadata.{name}": "" for name in NEAR_HASH_FIELDS}})
