"""Placeholders: a blurhash and the dominant colour for every image, at upload and backfilled."""

from __future__ import annotations

import io
import json
import re

import pytest
from PIL import Image, ImageDraw

from avenue.media import Buckets
from avenue.media.ingest.placeholders import compute
from avenue.media.store.originals import store, variant_ids
from tests.helpers import GOOD_NAMES, image_bytes

BLURHASH = re.compile(r"^[0-9A-Za-z#$%*+,\-.:;=?@\[\]^_{|}~]{28}$")  # 4x3 components
COLOR = re.compile(r"^#[0-9a-f]{6}$")
NONE_OFF: frozenset[str] = frozenset()  # no format turned off (AVENUE_DISABLED_FORMATS)


def encoded(im: Image.Image, fmt: str = "WEBP") -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, lossless=True) if fmt == "WEBP" else im.save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_every_good_fixture_gets_a_blurhash_and_a_colour_and_the_same_ones_again(name):
    from avenue.media.ingest.images import Limits, prepare
    from avenue.media.ingest.variants import render

    prepared = prepare(image_bytes(f"good/{name}"), Limits())
    thumb = next(r for r in render(prepared) if r.name == "thumb" and r.format == "webp")
    first, again = compute(thumb.data, NONE_OFF), compute(thumb.data, NONE_OFF)
    assert first is not None and first == again
    assert BLURHASH.match(first.blurhash) and COLOR.match(first.color)


def test_the_colour_is_the_most_frequent_one_not_the_average():
    im = Image.new("RGB", (200, 200), (255, 255, 255))
    ImageDraw.Draw(im).rectangle((0, 0, 199, 139), fill=(200, 20, 30))  # 70 % red, 30 % white
    placeholder = compute(encoded(im), NONE_OFF)
    assert placeholder is not None
    red, green, blue = (int(placeholder.color[i:i + 2], 16) for i in (1, 3, 5))
    assert red > 180 and green < 50 and blue < 60  # the average would be pink (~217, 90, 97)


def test_transparent_pixels_do_not_count_for_the_colour():
    # A blue disc on transparency whose hidden pixels are black (what many encoders leave).
    im = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(im).ellipse((60, 60, 140, 140), fill=(20, 60, 220, 255))
    placeholder = compute(encoded(im), NONE_OFF)
    assert placeholder is not None and placeholder.color != "#000000"
    red, green, blue = (int(placeholder.color[i:i + 2], 16) for i in (1, 3, 5))
    assert blue > 180 and red < 60


def test_bytes_that_are_not_an_image_give_no_placeholder():
    assert compute(b"not an image", NONE_OFF) is None
    assert compute(b"", NONE_OFF) is None


def test_an_uploaded_image_object_carries_its_placeholder(client, auth):
    client_, csrf = auth.login("editor")
    created = client_.post("/api/builder/media", headers=csrf,
                           data={"file": (io.BytesIO(image_bytes("good/progressive.jpg")), "p.jpg")})
    assert created.status_code == 201
    body = created.get_json()
    assert BLURHASH.match(body["blurhash"]) and COLOR.match(body["color"])
    listed = client_.get("/api/builder/media", headers=csrf).get_json()["items"][0]
    assert (listed["blurhash"], listed["color"]) == (body["blurhash"], body["color"])


def test_a_product_photo_carries_its_placeholder_from_the_stored_reference(client, auth):
    admin = auth.token("admin")
    assert client.post("/api/shop/products", headers=admin,
                       json={"sku": "PH-1", "name": "Lamp", "price": 10}).status_code == 201
    added = client.post("/api/shop/products/PH-1/images", headers=admin,
                        data={"images": (io.BytesIO(image_bytes("good/alpha.png")), "a.png")})
    assert added.status_code == 201
    image = client.get("/api/shop/products/PH-1").get_json()["images"][0]
    assert BLURHASH.match(image["blurhash"]) and COLOR.match(image["color"])


def strip_placeholders(db) -> None:
    """Make the store look as it did before placeholders existed."""
    for bucket in (Buckets.PRODUCTS, Buckets.BUILDER):
        db[f"{bucket}.files"].update_many({}, {"$unset": {"metadata.placeholder": ""}})
    for product in db.shop_products.find({}, {"images": 1}):
        images = [{k: v for k, v in entry.items() if k != "placeholder"} for entry in product["images"]]
        db.shop_products.update_one({"_id": product["_id"]}, {"$set": {"images": images}})


def test_the_backfill_gives_old_images_and_their_product_references_a_placeholder(app, client, auth, db,
                                                                                  runner):
    admin = auth.token("admin")
    assert client.post("/api/shop/products", headers=admin,
                       json={"sku": "PH-2", "name": "Lamp", "price": 10}).status_code == 201
    assert client.post("/api/shop/products/PH-2/images", headers=admin, data={"images": [
        (io.BytesIO(image_bytes("good/grayscale.jpg")), "g.jpg"),
        (io.BytesIO(image_bytes("good/cmyk.jpg")), "c.jpg")]}).status_code == 201
    media = store(db, Buckets.BUILDER, image_bytes("good/progressive.jpg"), filename="p.jpg").doc
    before = {entry["id"]: entry["placeholder"]
              for entry in db.shop_products.find_one({"sku": "PH-2"})["images"]}
    strip_placeholders(db)
    assert "blurhash" not in client.get("/api/shop/products/PH-2").get_json()["images"][0]

    result = runner.invoke(args=["placeholders", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["computed"]["products"] == 2 and report["computed"]["builder"] == 1
    assert report["products_updated"] == 2 and report["unreadable"] == []
    after = {entry["id"]: entry["placeholder"]
             for entry in db.shop_products.find_one({"sku": "PH-2"})["images"]}
    assert after == before  # the same as at upload: computed from the same thumb
    assert db[f"{Buckets.BUILDER}.files"].find_one({"_id": media["_id"]})["metadata"]["placeholder"]
    images = client.get("/api/shop/products/PH-2").get_json()["images"]
    assert all(BLURHASH.match(image["blurhash"]) for image in images)

    again = json.loads(runner.invoke(args=["placeholders", "--json"]).output)
    assert sum(again["computed"].values()) == 0 and again["products_updated"] == 0


def test_a_backfill_cut_off_between_its_two_writes_is_finished_by_the_next_run(client, auth, db, runner):
    admin = auth.token("admin")
    assert client.post("/api/shop/products", headers=admin,
                       json={"sku": "PH-3", "name": "Lamp", "price": 10}).status_code == 201
    assert client.post("/api/shop/products/PH-3/images", headers=admin, data={
        "images": (io.BytesIO(image_bytes("good/grayscale.jpg")), "g.jpg")}).status_code == 201
    # The original got its placeholder; the process died before the product's reference did.
    db.shop_products.update_one({"sku": "PH-3"}, {"$unset": {"images.0.placeholder": ""}})
    report = json.loads(runner.invoke(args=["placeholders", "--json"]).output)
    assert sum(report["computed"].values()) == 0 and report["products_updated"] == 1
    assert "placeholder" in db.shop_products.find_one({"sku": "PH-3"})["images"][0]


def test_an_image_whose_thumb_is_lost_is_reported_and_left(db, runner):
    doc = store(db, Buckets.BUILDER, image_bytes("good/grayscale.jpg"), filename="g.jpg").doc
    db[f"{Buckets.BUILDER}.files"].update_one({"_id": doc["_id"]}, {"$unset": {"metadata.placeholder": ""}})
    thumb_id = doc["metadata"]["variants"]["thumb"]["webp"]["id"]
    assert thumb_id in variant_ids(doc)
    db[f"{Buckets.BUILDER}.files"].delete_one({"_id": thumb_id})
    result = runner.invoke(args=["placeholders", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["unreadable"] == [{"bucket": Buckets.BUILDER, "id": str(doc["_id"])}]
    assert "placeholder" not in db[f"{Buckets.BUILDER}.files"].find_one({"_id": doc["_id"]})["metadata"]


def test_a_second_backfill_while_one_runs_stops_at_once_and_changes_nothing(db, runner):
    from avenue.ops.lock import exclusive

    doc = store(db, Buckets.BUILDER, image_bytes("good/grayscale.jpg"), filename="g.jpg").doc
    db[f"{Buckets.BUILDER}.files"].update_one({"_id": doc["_id"]}, {"$unset": {"metadata.placeholder": ""}})
    with exclusive(db, "placeholders"):
        result = runner.invoke(args=["placeholders"])
    assert result.exit_code == 1 and "Another placeholders run holds the lock" in result.output
    assert "placeholder" not in db[f"{Buckets.BUILDER}.files"].find_one({"_id": doc["_id"]})["metadata"]
