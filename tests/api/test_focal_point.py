"""Focal points: estimated at upload, kept in the image object, and every crop cut around it
(how they are estimated and cut around: tests/media/ingest/test_focal.py)."""

from __future__ import annotations

import io

from avenue.media import AppMedia, Buckets, Library
from tests.helpers import image_bytes
from tests.support.fixtures import product_shot
from tests.support.records import images, record


def test_a_stored_image_keeps_its_focal_point_and_the_api_shows_it(db, client, auth):
    stored = AppMedia.on(db).library(Buckets.PRODUCTS).store(Library.Upload("lamp.jpg", product_shot()))
    doc = record(db, Buckets.PRODUCTS, stored.image.id)
    point = doc["metadata"]["focal_point"]
    assert point["x"] > 0.7 and point["y"] > 0.7
    admin = auth.token("admin")
    assert client.post("/api/shop/products", headers=admin,
                       json={"sku": "FP-1", "name": "Lamp", "price": 10}).status_code == 201
    added = client.post("/api/shop/products/FP-1/images", headers=admin,
                        data={"images": (io.BytesIO(product_shot()), "lamp.jpg")})
    assert added.status_code == 201
    image = client.get("/api/shop/products/FP-1").get_json()["images"][0]
    assert image["focal_point"] == point


def test_an_image_stored_before_focal_points_is_centred(db, client, auth):
    editor = auth.token("editor")
    created = client.post("/api/builder/media", headers=editor,
                          data={"file": (io.BytesIO(image_bytes("good/grayscale.jpg")), "g.jpg")})
    media_id = created.get_json()["id"]
    images(db, Buckets.BUILDER).update_many({}, {"$unset": {"metadata.focal_point": ""}})
    assert client.get(f"/api/builder/media/{media_id}", headers=editor).get_json()["focal_point"] == {
        "x": 0.5, "y": 0.5}
