"""A library's stores (avenue/media/store/library/storing.py) under a shop's adds: what a refused
add stored is removed again, and two adds that store at once lose nothing and pass no limit."""

from __future__ import annotations

import io
import threading

import pymongo
import pytest

from avenue.errors import UnprocessableContent
from avenue.media import AppMedia, Buckets, Library
from avenue.media.store.library import Storing
from avenue.media.store.originals import store
from avenue.presentation.objects import image_ref
from avenue.shop import service
from tests.helpers import image_bytes
from tests.support.records import IMAGE, images
from tests.support.shop import SMALL, ids_of, make_product, send, settings


def test_a_refused_add_removes_the_files_it_stored_when_the_limit_filled_meanwhile(app, db, monkeypatch):
    app.config["AVENUE_MAX_PRODUCT_IMAGES"] = 2
    first = store(db, Buckets.PRODUCTS, image_bytes(SMALL[0]), filename="a.png", kind="product").doc
    db.shop_products.insert_one({"sku": "AV-1", "name": "x", "price": 1, "images": [image_ref(first)]})
    real_store_all = Storing.store_many

    def store_then_someone_fills_the_product(*args, **kwargs):
        results = real_store_all(*args, **kwargs)
        other = store(db, Buckets.PRODUCTS, image_bytes(SMALL[1]), filename="b.jpg", kind="product").doc
        db.shop_products.update_one({"sku": "AV-1"}, {"$push": {"images": image_ref(other)}})
        return results

    monkeypatch.setattr(Storing, "store_many", store_then_someone_fills_the_product)
    with pytest.raises(UnprocessableContent) as refused:
        service.add_images(AppMedia.of(app), "AV-1",
                           [Library.Upload("c.jpg", io.BytesIO(image_bytes(SMALL[2])))],
                           owner="admin", settings=settings(app))
    assert refused.value.code == "too_many_images"
    product = db.shop_products.find_one({"sku": "AV-1"})
    originals = {d["_id"] for d in images(db, Buckets.PRODUCTS).find(IMAGE)}
    assert originals == set(service.stored_ids(product)) and len(originals) == 2


def _add_at_once(app, client_headers: list[dict], names: list[tuple[str, ...]], monkeypatch):
    """Both requests store their files, meet at a barrier, then update the product together."""
    barrier = threading.Barrier(len(client_headers), timeout=30)
    real_store_all = Storing.store_many

    def store_then_wait(*args, **kwargs):
        results = real_store_all(*args, **kwargs)
        barrier.wait()
        return results

    monkeypatch.setattr(Storing, "store_many", store_then_wait)
    responses: list = [None] * len(client_headers)

    def run(index):
        client = app.test_client()
        response = send(client, "/api/shop/products/AV-1/images", client_headers[index], *names[index])
        responses[index] = (response.status_code, response.get_json())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(client_headers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return responses


@pytest.mark.database
def test_two_admins_adding_at_the_same_moment_lose_nothing(app, client, db, auth, backend, monkeypatch):
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("threads need a real server (mongomock is not thread-safe)")
    admins = [auth.token("admin"), auth.token("admin")]
    make_product(client, admins[0], "AV-1", SMALL[0])
    responses = _add_at_once(app, admins, [(SMALL[1],), (SMALL[2], SMALL[3])], monkeypatch)
    assert [status for status, _ in responses] == [201, 201]
    added = {image["id"] for _, body in responses for image in body["added"]}
    product = client.get("/api/shop/products/AV-1").get_json()
    assert len(product["images"]) == 4 and added <= set(ids_of(product))


@pytest.mark.database
def test_two_admins_adding_at_the_same_moment_never_pass_the_limit(app, client, db, auth, backend,
                                                                   monkeypatch):
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("threads need a real server (mongomock is not thread-safe)")
    app.config["AVENUE_MAX_PRODUCT_IMAGES"] = 3
    admins = [auth.token("admin"), auth.token("admin")]
    make_product(client, admins[0], "AV-1", SMALL[0])
    responses = _add_at_once(app, admins, [(SMALL[1], SMALL[2]), (SMALL[3], SMALL[4])], monkeypatch)
    assert sorted(status for status, _ in responses) == [201, 422]
    winner = next(body for status, body in responses if status == 201)
    product = client.get("/api/shop/products/AV-1").get_json()
    assert len(product["images"]) == 3 and ids_of(product) == ids_of(winner["product"])
    # The loser's files are gone again: nothing unreferenced is left behind.
    originals = {str(d["_id"]) for d in images(db, Buckets.PRODUCTS).find(IMAGE)}
    assert originals == set(ids_of(product))
