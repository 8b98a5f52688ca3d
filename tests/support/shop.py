"""The shop as the tests drive it: small photos, a multipart form of them, a product made with
its images, a product's image ids, the service's settings from an app's configuration."""

from __future__ import annotations

import io

from avenue.media import Limits
from avenue.shop import service
from tests.helpers import image_bytes

SMALL = ("good/alpha.png", "good/grayscale.jpg", "good/progressive.jpg", "good/tiny_1x1.png",
         "good/palette_transparent.png")


def form(*names: str) -> dict:
    return {"images": [(io.BytesIO(image_bytes(name)), name.split("/")[-1]) for name in names]}


def send(client, url: str, headers: dict, *names: str):
    return client.post(url, data=form(*names), headers=headers, content_type="multipart/form-data")


def make_product(client, admin, sku="AV-5000", *names, temp_ids=None):
    """Create a product; ``names`` are uploaded as temp images first and claimed."""
    ids = list(temp_ids or [])
    if names:
        response = send(client, "/api/shop/temp-images", admin, *names)
        assert response.status_code == 201, response.get_json()
        ids += [image["id"] for image in response.get_json()["images"]]
    response = client.post("/api/shop/products", headers=admin,
                           json={"sku": sku, "name": f"Product {sku}", "price": 1200, "temp_image_ids": ids})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def ids_of(product: dict) -> list[str]:
    return [image["id"] for image in product["images"]]


def settings(app) -> service.Settings:
    return service.Settings(max_images=app.config["AVENUE_MAX_PRODUCT_IMAGES"],
                            temp_ttl_seconds=app.config["AVENUE_TEMP_IMAGE_TTL_SECONDS"],
                            limits=Limits.from_config(app.config))
