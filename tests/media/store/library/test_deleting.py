"""A library's delete leases (avenue/media/store/library/deleting.py): given back when a delete
is refused, lapsed after ``DELETE_LEASE`` when its deleter never finished, and waited for by a
shop's add or claim of the same bytes (the file stored again if the delete went through).
A delete whose lease's compare-and-set misses reads again and answers 409."""

from __future__ import annotations

import datetime as dt
import io

from bson import ObjectId

from avenue.clock import now
from avenue.media import AppMedia, Buckets, Library
from avenue.media.core import NO_PURGES
from avenue.media.store.library import DELETE_LEASE
from avenue.media.store.library import deleting as library_deleting
from avenue.media.store.originals import delete_image, store
from avenue.shop import service
from tests.helpers import error_body, image_bytes, library_upload
from tests.support.builder import media_block, put_page
from tests.support.client import media_upload as upload
from tests.support.records import images, record
from tests.support.shop import settings


def test_a_refused_delete_releases_its_lease_and_a_stale_lease_expires(client, editor, db):
    media = upload(client, editor, "good/alpha.png").get_json()["id"]
    put_page(client, editor, "home", [media_block(media)])
    assert client.delete(f"/api/builder/media/{media}", headers=editor).status_code == 409
    assert "deleting_at" not in record(db, Buckets.BUILDER, ObjectId(media))["metadata"]
    assert put_page(client, editor, "about", [media_block(media)]).status_code == 200

    stale = dt.datetime.now(dt.UTC) - DELETE_LEASE - dt.timedelta(seconds=5)
    images(db, Buckets.BUILDER).update_one({"_id": ObjectId(media)},
                                           {"$set": {"metadata.deleting_at": stale}})
    assert put_page(client, editor, "other", [media_block(media)]).status_code == 200
    fresh = dt.datetime.now(dt.UTC)
    images(db, Buckets.BUILDER).update_one({"_id": ObjectId(media)},
                                           {"$set": {"metadata.deleting_at": fresh}})
    assert put_page(client, editor, "fourth", [media_block(media)]).status_code == 422


def test_a_file_deleted_by_another_product_meanwhile_is_stored_again(app, db, monkeypatch):
    """The add reuses a file whose delete already decided to go: it waits, then re-stores."""
    doc = store(db, Buckets.PRODUCTS, image_bytes("good/alpha.png"), filename="alpha.png", kind="product").doc
    db.shop_products.insert_one({"sku": "AV-2", "name": "x", "price": 1, "images": []})
    images(db, Buckets.PRODUCTS).update_one({"_id": doc["_id"]},
                                            {"$set": {"metadata.deleting_at": dt.datetime.now(dt.UTC)}})
    waits = []

    def deleter_finishes(seconds):
        waits.append(seconds)
        delete_image(db, Buckets.PRODUCTS, doc["_id"], purges=NO_PURGES)

    monkeypatch.setattr(library_deleting, "sleep", deleter_finishes)
    upload = Library.Upload("alpha.png", io.BytesIO(image_bytes("good/alpha.png")))
    done = service.add_images(AppMedia.of(app), "AV-2", [upload], owner="admin", settings=settings(app))
    product, added = done.product, done.refs
    assert waits and added[0]["id"] != doc["_id"]
    assert product["images"][0]["id"] == added[0]["id"]
    assert images(db, Buckets.PRODUCTS).count_documents({"_id": added[0]["id"]}) == 1


def test_a_claimed_temp_image_merged_into_a_file_being_deleted_is_stored_again(app, db, monkeypatch):
    doc = store(db, Buckets.PRODUCTS, image_bytes("good/alpha.png"), filename="alpha.png", kind="product").doc
    images(db, Buckets.PRODUCTS).update_one({"_id": doc["_id"]},
                                            {"$set": {"metadata.deleting_at": dt.datetime.now(dt.UTC)}})
    upload = Library.Upload("alpha.png", io.BytesIO(image_bytes("good/alpha.png")))
    temp = service.store_temp_images(AppMedia.of(app), [upload], owner="admin", settings=settings(app))[0]
    monkeypatch.setattr(library_deleting, "sleep",
                        lambda seconds: delete_image(db, Buckets.PRODUCTS, doc["_id"], purges=NO_PURGES))
    new = service.NewProduct.parse({"sku": "AV-3", "name": "x", "price": 1, "temp_image_ids": [str(temp.id)]})
    product = service.create_product(AppMedia.of(app), new, owner="admin", settings=settings(app))
    [image_id] = service.stored_ids(product)
    assert image_id not in (doc["_id"], temp.id)
    stored = record(db, Buckets.PRODUCTS, image_id)
    assert stored["metadata"]["sha256"] == doc["metadata"]["sha256"]
    assert db[f"{Buckets.TEMP}.files"].count_documents({}) == 0
    assert images(db, Buckets.TEMP).count_documents({}) == 0


def test_a_delete_that_sees_the_new_reference_keeps_the_file(app, db, monkeypatch):
    doc = store(db, Buckets.PRODUCTS, image_bytes("good/alpha.png"), filename="alpha.png", kind="product").doc
    db.shop_products.insert_one({"sku": "AV-2", "name": "x", "price": 1, "images": []})
    lease = dt.datetime.now(dt.UTC)
    images(db, Buckets.PRODUCTS).update_one({"_id": doc["_id"]}, {"$set": {"metadata.deleting_at": lease}})

    def deleter_backs_off(seconds):
        # The deleter counts references after its lease: it finds AV-2's and releases the file.
        assert db.shop_products.count_documents({"images.id": doc["_id"]}) == 1
        images(db, Buckets.PRODUCTS).update_one({"_id": doc["_id"]},
                                                {"$unset": {"metadata.deleting_at": ""}})

    monkeypatch.setattr(library_deleting, "sleep", deleter_backs_off)
    upload = Library.Upload("alpha.png", io.BytesIO(image_bytes("good/alpha.png")))
    added = service.add_images(AppMedia.of(app), "AV-2", [upload], owner="admin", settings=settings(app)).refs
    assert added[0]["id"] == doc["_id"]
    assert service.delete_unreferenced(AppMedia.of(app), doc["_id"]) is False
    assert images(db, Buckets.PRODUCTS).count_documents({"_id": doc["_id"]}) == 1


def test_a_replace_that_takes_its_lease_between_a_deletes_read_and_its_set_makes_the_delete_409(
        client, db, editor, monkeypatch):
    """The race the concurrent test below found on SecantusDB: the delete read the image with no
    lease, a replace leased it, the delete's compare-and-set missed, and the delete answered 404
    for an image that exists. It reads again and answers 409 ``image_busy``."""
    from avenue.media.store.library import deleting as library_deleting

    media = library_upload(client, editor)
    records = images(db, Buckets.BUILDER)
    real_stamp = library_deleting.stamp

    def replace_leases_first(collection, image_id, field, expected, moment):
        records.update_one({"_id": image_id}, {"$set": {"metadata.replacing_at": now()}})
        monkeypatch.setattr(library_deleting, "stamp", real_stamp)
        return real_stamp(collection, image_id, field, expected, moment)

    monkeypatch.setattr(library_deleting, "stamp", replace_leases_first)
    deleting = client.delete(f"/api/builder/media/{media['id']}", headers=editor)
    assert deleting.status_code == 409 and error_body(deleting)["code"] == "image_busy"
    assert records.find_one({"_id": ObjectId(media["id"])}) is not None


def test_a_delete_whose_lease_keeps_changing_under_it_is_409_not_404(client, db, editor, monkeypatch):
    from avenue.media.store.library import deleting as library_deleting

    media = library_upload(client, editor)
    monkeypatch.setattr(library_deleting, "stamp", lambda *args: False)  # every set misses
    deleting = client.delete(f"/api/builder/media/{media['id']}", headers=editor)
    assert deleting.status_code == 409 and error_body(deleting)["code"] == "image_busy"
    assert record(db, Buckets.BUILDER, ObjectId(media["id"])) is not None
