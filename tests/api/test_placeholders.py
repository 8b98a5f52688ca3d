"""Placeholders: a blurhash and the dominant colour for every image, at upload and backfilled
(what they are computed from: tests/media/ingest/test_placeholders.py)."""

from __future__ import annotations

import io
import json

from avenue.media import AppMedia, Buckets, Image, Library
from tests.helpers import BLURHASH, COLOR, image_bytes
from tests.support.records import images, record


def stored(db, name: str, filename: str) -> dict:
    """``name`` stored in the builder's library, as its record (what the backfill reads)."""
    image = AppMedia.on(db).library(Buckets.BUILDER).store(Library.Upload(filename, image_bytes(name))).image
    return record(db, Buckets.BUILDER, image.id)


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
        images(db, bucket).update_many({}, {"$unset": {"metadata.placeholder": ""}})
    for product in db.shop_products.find({}, {"images": 1}):
        refs = [{k: v for k, v in entry.items() if k != "placeholder"} for entry in product["images"]]
        db.shop_products.update_one({"_id": product["_id"]}, {"$set": {"images": refs}})


def test_the_backfill_gives_old_images_and_their_product_references_a_placeholder(app, client, auth, db,
                                                                                  runner):
    admin = auth.token("admin")
    assert client.post("/api/shop/products", headers=admin,
                       json={"sku": "PH-2", "name": "Lamp", "price": 10}).status_code == 201
    assert client.post("/api/shop/products/PH-2/images", headers=admin, data={"images": [
        (io.BytesIO(image_bytes("good/grayscale.jpg")), "g.jpg"),
        (io.BytesIO(image_bytes("good/cmyk.jpg")), "c.jpg")]}).status_code == 201
    media = stored(db, "good/progressive.jpg", "p.jpg")
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
    assert record(db, Buckets.BUILDER, media["_id"])["metadata"]["placeholder"]
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
    doc = stored(db, "good/grayscale.jpg", "g.jpg")
    images(db, Buckets.BUILDER).update_one({"_id": doc["_id"]}, {"$unset": {"metadata.placeholder": ""}})
    thumb_id = doc["metadata"]["variants"]["thumb"]["webp"]["id"]
    assert thumb_id in Image.from_files_doc(Buckets.BUILDER, doc).variant_ids
    db[f"{Buckets.BUILDER}.files"].delete_one({"_id": thumb_id})
    result = runner.invoke(args=["placeholders", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["unreadable"] == [{"bucket": Buckets.BUILDER, "id": str(doc["_id"])}]
    assert "placeholder" not in record(db, Buckets.BUILDER, doc["_id"])["metadata"]


def test_a_second_backfill_while_one_runs_stops_at_once_and_changes_nothing(db, runner):
    from avenue.ops.lock import exclusive

    doc = stored(db, "good/grayscale.jpg", "g.jpg")
    images(db, Buckets.BUILDER).update_one({"_id": doc["_id"]}, {"$unset": {"metadata.placeholder": ""}})
    with exclusive(db, "placeholders"):
        result = runner.invoke(args=["placeholders"])
    assert result.exit_code == 1 and "Another placeholders run holds the lock" in result.output
    assert "placeholder" not in record(db, Buckets.BUILDER, doc["_id"])["metadata"]
