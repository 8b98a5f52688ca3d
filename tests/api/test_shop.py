"""Shop products and their images: temp uploads, claiming, adding, ordering, deleting, limits,
dedupe across products and the concurrent cases."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from bson import ObjectId

from avenue.errors import Conflict
from avenue.media import AppMedia, Buckets, Library
from avenue.presentation.objects import image_ref
from avenue.shop import service
from tests.helpers import FIXTURES, REFUSED, bucket_snapshot, image_bytes
from tests.support.records import images
from tests.support.shop import SMALL, ids_of, make_product, send


def stored(db, bucket: str, name: str, filename: str, **labels) -> dict:
    """``name`` stored in ``bucket`` through its library, as its record."""
    image = AppMedia.on(db).library(bucket).store(Library.Upload(filename, image_bytes(name)), **labels).image
    return images(db, bucket).find_one({"_id": image.id})


def load_legacy(db) -> list[dict]:
    docs = json.loads((FIXTURES / "legacy_db.json").read_text())["shop_products"]
    db.shop_products.insert_many([dict(doc) for doc in docs])
    return docs


# --- the admin flow ----------------------------------------------------------------------


def test_the_full_admin_flow_from_temp_upload_to_deleting_the_product(client, db, admin):
    response = send(client, "/api/shop/temp-images", admin, "good/alpha.png", "good/grayscale.jpg")
    assert response.status_code == 201
    temps = response.get_json()["images"]
    assert [t["filename"] for t in temps] == ["alpha.png", "grayscale.jpg"]
    assert all(t["expires_at"] and t["url"].startswith("/media/temp/") for t in temps)
    first, second = (t["id"] for t in temps)

    # Claimed in the given order: the second upload becomes the primary image.
    product = make_product(client, admin, "AV-5000", temp_ids=[second, first])
    assert ids_of(product) == [second, first]
    assert db[f"{Buckets.TEMP}.files"].count_documents({}) == 0
    assert images(db, Buckets.TEMP).count_documents({}) == 0
    primary = product["images"][0]
    assert primary["url"].startswith("/media/products/") and "expires_at" not in primary
    assert set(primary["variants"]) == {"thumb", "card", "gallery", "og"}
    served = client.get(primary["url"])
    assert served.status_code == 200 and len(served.data) == primary["bytes"]
    assert client.get(primary["variants"]["card"]).status_code == 200

    response = send(client, "/api/shop/products/AV-5000/images", admin, "good/progressive.jpg")
    assert response.status_code == 201
    body = response.get_json()
    third = body["added"][0]["id"]
    assert ids_of(body["product"]) == [second, first, third]

    response = client.put("/api/shop/products/AV-5000/images/order", headers=admin,
                          json={"image_ids": [third, first, second]})
    assert response.status_code == 200 and ids_of(response.get_json()) == [third, first, second]
    assert ids_of(client.get("/api/shop/products/AV-5000").get_json()) == [third, first, second]

    response = client.delete(f"/api/shop/products/AV-5000/images/{first}", headers=admin)
    assert response.status_code == 200 and ids_of(response.get_json()) == [third, second]
    assert client.get(product["images"][1]["url"]).status_code == 404
    assert db[f"{Buckets.PRODUCTS}.files"].count_documents({"metadata.original_id": ObjectId(first)}) == 0

    assert client.delete("/api/shop/products/AV-5000", headers=admin).status_code == 204
    assert client.get("/api/shop/products/AV-5000").status_code == 404
    assert db[f"{Buckets.PRODUCTS}.files"].count_documents({}) == 0
    assert images(db, Buckets.PRODUCTS).count_documents({}) == 0
    assert db[f"{Buckets.PRODUCTS}.chunks"].count_documents({}) == 0
    actions = [entry["action"] for entry in db.audit_logs.find({}).sort("at", 1)]
    for action in ("temp_images_uploaded", "product_created", "product_images_added",
                   "product_images_reordered", "product_image_deleted", "product_deleted"):
        assert action in actions


def test_anyone_lists_products_page_by_page(client, db, admin):
    for sku in ("B-2", "A-1", "C-3"):
        make_product(client, admin, sku)
    response = client.get("/api/shop/products?per_page=2&page=2")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["total"], body["page"], body["per_page"]) == (3, 2, 2)
    assert [item["sku"] for item in body["items"]] == ["C-3"]


def test_it_changes_name_and_price_and_nothing_else(client, db, admin):
    make_product(client, admin, "AV-1")
    response = client.patch("/api/shop/products/AV-1", headers=admin, json={"name": "New", "price": 9.5})
    assert response.status_code == 200
    assert (response.get_json()["name"], response.get_json()["price"]) == ("New", 9.5)
    refused = client.patch("/api/shop/products/AV-1", headers=admin, json={"sku": "AV-2"})
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_fields"
    assert client.patch("/api/shop/products/AV-1", headers=admin, json={"price": -1}).status_code == 400
    assert client.patch("/api/shop/products/AV-1", headers=admin, json={}).status_code == 400
    assert client.patch("/api/shop/products/NOPE", headers=admin, json={"name": "x"}).status_code == 404


@pytest.mark.parametrize(("body", "code"), [
    ({"sku": "AV-2", "name": "x"}, "invalid_fields"), ({}, "nothing_to_change"),
    ({"name": None}, "invalid_name"), ({"name": " "}, "invalid_name"),
    ({"price": None}, "invalid_price"), ({"price": "9"}, "invalid_price"),
    ({"price": False}, "invalid_price"), ({"price": 10**12 + 1}, "invalid_price"),
])
def test_a_malformed_change_is_refused_and_changes_nothing(client, admin, body, code):
    make_product(client, admin, "AV-1")
    refused = client.patch("/api/shop/products/AV-1", headers=admin, json=body)
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == code
    if code == "invalid_fields":
        error = refused.get_json()["error"]
        assert error["fields"] == ["sku"] and "sku" in error["message"]
    assert client.get("/api/shop/products/AV-1").get_json()["name"] == "Product AV-1"


def test_a_name_is_trimmed_a_whole_price_stays_whole_and_other_fields_are_left_aside(client, admin):
    created = client.post("/api/shop/products", headers=admin,
                          json={"sku": "AV-9", "name": "  Lamp ", "price": 12, "colour": "red"})
    assert created.status_code == 201
    assert created.get_json()["name"] == "Lamp" and created.data.count(b'"price":12,') == 1
    changed = client.patch("/api/shop/products/AV-9", headers=admin, json={"price": 7})
    assert changed.data.count(b'"price":7,') == 1


@pytest.mark.parametrize(("body", "code"), [
    ({"name": "x", "price": 1}, "invalid_sku"),
    ({"sku": "../etc", "name": "x", "price": 1}, "invalid_sku"),
    ({"sku": "A-1", "name": "  ", "price": 1}, "invalid_name"),
    ({"sku": "A-1", "name": "x", "price": "12"}, "invalid_price"),
    ({"sku": "A-1", "name": "x", "price": True}, "invalid_price"),
    ({"sku": "A-1", "name": "x", "price": 1, "temp_image_ids": "abc"}, "invalid_temp_image_ids"),
    ({"sku": "A-1", "name": "x", "price": 1, "temp_image_ids": [7]}, "invalid_temp_image_ids"),
    ({"sku": "A-1\n", "name": "x", "price": 1}, "invalid_sku"),
    ({"sku": "A-1", "name": ["x"], "price": 1}, "invalid_name"),
    ({"sku": "A-1", "name": "x" * 201, "price": 1}, "invalid_name"),
    ({"sku": "A-1", "name": "x", "price": 2**64}, "invalid_price"),
    ({"sku": "A-1", "name": "x"}, "invalid_price"),
])
def test_it_refuses_a_malformed_product(client, db, admin, body, code):
    response = client.post("/api/shop/products", headers=admin, json=body)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == code
    assert db.shop_products.count_documents({}) == 0


def test_a_duplicate_sku_is_a_conflict_and_keeps_the_temp_images(client, db, admin):
    make_product(client, admin, "AV-1")
    temp = send(client, "/api/shop/temp-images", admin, "good/alpha.png").get_json()["images"][0]
    response = client.post("/api/shop/products", headers=admin,
                           json={"sku": "AV-1", "name": "Again", "price": 1, "temp_image_ids": [temp["id"]]})
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "sku_taken"
    assert images(db, Buckets.TEMP).count_documents({"_id": ObjectId(temp["id"])}) == 1
    assert db[f"{Buckets.PRODUCTS}.files"].count_documents({}) == 0
    assert images(db, Buckets.PRODUCTS).count_documents({}) == 0


# --- temp images -------------------------------------------------------------------------


def test_a_temp_image_is_served_to_its_uploader_by_signed_url_only_and_privately(app, client, admin):
    temp = send(client, "/api/shop/temp-images", admin, "good/progressive.jpg").get_json()["images"][0]
    signed = [temp["url"], temp["variants"]["thumb"], *temp["variant_urls"]["card"].values()]
    assert all("sig=" in url for url in signed)
    for url in signed:
        answer = client.get(url)
        assert answer.status_code == 200 and answer.headers["Cache-Control"].startswith("private"), url
    anonymous = app.test_client()
    ladder = f"/media/temp/{temp['id']}/w_320.webp"
    for url in (*(u.split("?")[0] for u in signed), ladder):
        for method in ("GET", "HEAD"):
            # Warm in this worker's cache after the signed GETs: still never served unsigned.
            assert anonymous.open(url, method=method).status_code == 404, (method, url)
    assert anonymous.get(temp["url"].replace("sig=", "sig=0")).status_code == 403


def test_a_temp_image_stored_public_before_is_private_all_the_same(app, client, db):
    with app.app_context():
        doc = stored(db, Buckets.TEMP, "good/alpha.png", "alpha.png", kind="temp",
                     expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    assert doc["metadata"]["visibility"] == "public"
    assert client.get(f"/media/temp/{doc['_id']}").status_code == 404
    assert client.get(f"/media/temp/{doc['_id']}/thumb").status_code == 404


def test_a_claimed_temp_image_is_a_public_product_photo(client, admin):
    product = make_product(client, admin, "AV-7", "good/alpha.png")
    photo = product["images"][0]
    assert photo["visibility"] == "public" and "sig=" not in photo["url"]
    answer = client.get(photo["url"])
    assert answer.status_code == 200 and "immutable" in answer.headers["Cache-Control"]


def test_claiming_unknown_expired_or_claimed_temp_images_is_refused_naming_them(client, db, admin):
    temps = send(client, "/api/shop/temp-images", admin, "good/alpha.png", "good/grayscale.jpg",
                 "good/progressive.jpg").get_json()["images"]
    fresh, old, taken = (t["id"] for t in temps)
    images(db, Buckets.TEMP).update_one({"_id": ObjectId(old)}, {"$set": {
        "metadata.expires_at": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)}})
    make_product(client, admin, "AV-1", temp_ids=[taken])
    unknown = str(ObjectId())
    before = bucket_snapshot(db)

    response = client.post("/api/shop/products", headers=admin, json={
        "sku": "AV-2", "name": "x", "price": 1, "temp_image_ids": [fresh, old, taken, unknown, "nope"]})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid_temp_images"
    assert error["expired"] == [old] and error["already_claimed"] == [taken]
    assert error["unknown"] == [unknown, "nope"]
    for named in (old, taken, unknown):
        assert named in error["message"]
    assert db.shop_products.count_documents({"sku": "AV-2"}) == 0
    assert bucket_snapshot(db) == before


def test_the_same_temp_id_twice_is_refused(client, db, admin):
    temp = send(client, "/api/shop/temp-images", admin, "good/alpha.png").get_json()["images"][0]
    response = client.post("/api/shop/products", headers=admin, json={
        "sku": "AV-2", "name": "x", "price": 1, "temp_image_ids": [temp["id"], temp["id"]]})
    assert response.status_code == 422 and response.get_json()["error"]["duplicated"] == [temp["id"]]


def test_another_admins_temp_image_cannot_be_claimed(client, db, auth, admin):
    other = auth.token("admin")
    temp = send(client, "/api/shop/temp-images", other, "good/alpha.png").get_json()["images"][0]
    response = client.post("/api/shop/products", headers=admin, json={
        "sku": "AV-2", "name": "x", "price": 1, "temp_image_ids": [temp["id"]]})
    assert response.status_code == 422 and response.get_json()["error"]["unknown"] == [temp["id"]]


def test_uploading_the_same_temp_image_again_refreshes_its_expiry(client, db, admin):
    first = send(client, "/api/shop/temp-images", admin, "good/alpha.png").get_json()["images"][0]
    # Still live when the second upload comes, however slow the machine (5 s ahead was not).
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    images(db, Buckets.TEMP).update_one({"_id": ObjectId(first["id"])},
                                        {"$set": {"metadata.expires_at": soon}})
    again = send(client, "/api/shop/temp-images", admin, "good/alpha.png").get_json()["images"][0]
    assert again["id"] == first["id"]
    assert again["expires_at"] == first["expires_at"] or again["expires_at"] > first["expires_at"]
    stored = images(db, Buckets.TEMP).find_one({"_id": ObjectId(first["id"])})["metadata"]["expires_at"]
    assert stored.replace(tzinfo=dt.UTC) > soon + dt.timedelta(hours=23)


def test_two_admins_identical_temp_uploads_are_independent(client, db, auth, admin):
    other = auth.token("admin")
    mine = send(client, "/api/shop/temp-images", admin, "good/alpha.png").get_json()["images"][0]
    theirs = send(client, "/api/shop/temp-images", other, "good/alpha.png").get_json()["images"][0]
    assert mine["id"] != theirs["id"]
    make_product(client, admin, "AV-1", temp_ids=[mine["id"]])
    assert images(db, Buckets.TEMP).count_documents({"_id": ObjectId(theirs["id"])}) == 1


def test_the_temp_expiry_follows_the_configured_ttl(app, client, db, admin):
    app.config["AVENUE_TEMP_IMAGE_TTL_SECONDS"] = 600
    temp = send(client, "/api/shop/temp-images", admin, "good/alpha.png").get_json()["images"][0]
    expires = dt.datetime.strptime(temp["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert abs((expires - dt.datetime.now(dt.UTC)).total_seconds() - 600) < 30


# --- limits and refusals -----------------------------------------------------------------

BAD = [(name, REFUSED[name]) for name in (
    "bad/truncated.jpg", "bad/text_named.jpg", "bad/script.svg", "bad/bomb_50000x50000.png",
    "unsupported/bitmap.bmp", "bad/empty.jpg", "bad/corrupt_chunk.png")]


@pytest.mark.parametrize(("bad", "statuses"), BAD, ids=[b for b, _ in BAD])
def test_one_bad_file_refuses_the_whole_add_and_stores_nothing(client, db, admin, bad, statuses):
    make_product(client, admin, "AV-1", "good/alpha.png")
    before = bucket_snapshot(db)
    response = send(client, "/api/shop/products/AV-1/images", admin, "good/grayscale.jpg", bad)
    assert response.status_code in statuses
    assert response.get_json()["error"]["file"] == bad.split("/")[-1]
    assert bucket_snapshot(db) == before
    assert len(client.get("/api/shop/products/AV-1").get_json()["images"]) == 1


@pytest.mark.parametrize(("bad", "statuses"), BAD[:3], ids=[b for b, _ in BAD[:3]])
def test_one_bad_temp_image_refuses_the_whole_upload(client, db, admin, bad, statuses):
    before = bucket_snapshot(db)
    response = send(client, "/api/shop/temp-images", admin, "good/alpha.png", bad)
    assert response.status_code in statuses and response.get_json()["error"]["file"] == bad.split("/")[-1]
    assert bucket_snapshot(db) == before


def test_the_image_limit_counts_what_the_product_already_has(app, client, db, admin):
    app.config["AVENUE_MAX_PRODUCT_IMAGES"] = 3
    make_product(client, admin, "AV-1", *SMALL[:2])
    before = bucket_snapshot(db)
    response = send(client, "/api/shop/products/AV-1/images", admin, *SMALL[2:4])
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert (error["code"], error["limit"], error["current"], error["sent"]) == ("too_many_images", 3, 2, 2)
    assert bucket_snapshot(db) == before
    assert send(client, "/api/shop/products/AV-1/images", admin, SMALL[2]).status_code == 201


def test_more_temp_images_than_a_product_can_hold_are_refused(app, client, db, admin):
    app.config["AVENUE_MAX_PRODUCT_IMAGES"] = 2
    before = bucket_snapshot(db)
    response = send(client, "/api/shop/temp-images", admin, *SMALL[:3])
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "too_many_images"
    assert bucket_snapshot(db) == before


def test_adding_to_an_unknown_product_is_a_404_and_stores_nothing(client, db, admin):
    before = bucket_snapshot(db)
    assert send(client, "/api/shop/products/NOPE/images", admin, "good/alpha.png").status_code == 404
    assert bucket_snapshot(db) == before


def test_adding_without_files_is_a_400(client, db, admin):
    make_product(client, admin, "AV-1")
    response = client.post("/api/shop/products/AV-1/images", headers=admin, data={},
                           content_type="multipart/form-data")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "missing_file"


def test_an_image_the_product_already_has_is_not_added_twice(client, db, admin):
    make_product(client, admin, "AV-1", "good/alpha.png")
    response = send(client, "/api/shop/products/AV-1/images", admin, "good/alpha.png")
    assert response.status_code == 201
    assert response.get_json()["added"] == [] and len(response.get_json()["product"]["images"]) == 1


# --- dedupe across products --------------------------------------------------------------


def test_the_same_photo_on_two_products_is_stored_once_and_outlives_one_of_them(client, db, admin):
    one = make_product(client, admin, "AV-1", "good/alpha.png")
    added = send(client, "/api/shop/products/AV-2/images", admin, "good/alpha.png")
    assert added.status_code == 404  # no such product yet
    make_product(client, admin, "AV-2")
    two = send(client, "/api/shop/products/AV-2/images", admin, "good/alpha.png").get_json()["product"]
    assert ids_of(one) == ids_of(two)
    assert images(db, Buckets.PRODUCTS).count_documents({}) == 1

    shared = ids_of(one)[0]
    client.delete(f"/api/shop/products/AV-1/images/{shared}", headers=admin)
    assert client.get(two["images"][0]["url"]).status_code == 200
    assert client.delete("/api/shop/products/AV-2", headers=admin).status_code == 204
    assert client.get(two["images"][0]["url"]).status_code == 404
    assert db[f"{Buckets.PRODUCTS}.files"].count_documents({}) == 0
    assert images(db, Buckets.PRODUCTS).count_documents({}) == 0


def test_deleting_a_product_keeps_the_images_another_product_uses(client, db, admin):
    make_product(client, admin, "AV-1", "good/alpha.png", "good/grayscale.jpg")
    make_product(client, admin, "AV-2")
    two = send(client, "/api/shop/products/AV-2/images", admin, "good/grayscale.jpg").get_json()["product"]
    assert client.delete("/api/shop/products/AV-1", headers=admin).status_code == 204
    originals = [str(d["_id"]) for d in images(db, Buckets.PRODUCTS).find({})]
    assert originals == ids_of(two)


# --- ordering and deleting ---------------------------------------------------------------


@pytest.mark.parametrize("change", ["drop", "unknown", "duplicate"])
def test_reorder_accepts_only_a_permutation(client, db, admin, change):
    product = make_product(client, admin, "AV-1", *SMALL[:3])
    ids = ids_of(product)
    wrong = {"drop": ids[:2], "unknown": [*ids[:2], str(ObjectId())], "duplicate": [ids[0], ids[0], ids[1]]}
    response = client.put("/api/shop/products/AV-1/images/order", headers=admin,
                          json={"image_ids": wrong[change]})
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "invalid_order"
    assert ids_of(client.get("/api/shop/products/AV-1").get_json()) == ids


def test_reorder_needs_a_list_of_ids(client, db, admin):
    make_product(client, admin, "AV-1", "good/alpha.png")
    for body in ({"image_ids": "x"}, {"image_ids": [1]}, {"image_ids": None}, {"order": []}):
        response = client.put("/api/shop/products/AV-1/images/order", headers=admin, json=body)
        assert response.status_code == 400, body
        assert response.get_json()["error"]["code"] == "invalid_image_ids", body
    assert client.put("/api/shop/products/NOPE/images/order", headers=admin,
                      json={"image_ids": []}).status_code == 404


def test_reorder_never_undoes_a_concurrent_change(app, client, db, admin):
    product = make_product(client, admin, "AV-1", *SMALL[:2])
    ids = ids_of(product)

    def stale_read(database, sku):
        doc = service.get_product(database, sku)
        # Another admin adds an image between this read and the write.
        extra = stored(database, Buckets.PRODUCTS, SMALL[2], "x.jpg", kind="product")
        database.shop_products.update_one({"sku": sku}, {"$push": {"images": image_ref(extra)}})
        return doc

    with pytest.raises(Conflict) as refused:
        service.reorder_images(db, "AV-1", service.ImageOrder(image_ids=ids[::-1]), load=stale_read)
    assert refused.value.code == "concurrent_change"
    assert ids_of(client.get("/api/shop/products/AV-1").get_json())[:2] == ids


def test_deleting_an_image_the_product_does_not_have_is_a_404(client, db, admin):
    make_product(client, admin, "AV-1", "good/alpha.png")
    for image_id in (str(ObjectId()), "not-an-id"):
        response = client.delete(f"/api/shop/products/AV-1/images/{image_id}", headers=admin)
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "image_not_found"
    assert client.delete(f"/api/shop/products/NOPE/images/{ObjectId()}", headers=admin).status_code == 404
    assert client.delete("/api/shop/products/NOPE", headers=admin).status_code == 404


# --- legacy products ---------------------------------------------------------------------


def test_legacy_products_are_listed_and_read_with_their_images_flagged(client, db):
    load_legacy(db)
    body = client.get("/api/shop/products?per_page=100").get_json()
    assert body["total"] == 8
    by_sku = {item["sku"]: item for item in body["items"]}
    assert by_sku["AV-1001"]["images"][0] == {
        "legacy": True, "url": "/uploads/products/AV-1001/1d3d5fbdfe261bd3.jpg", "source": "local_filesystem"}
    assert by_sku["AV-1001"]["legacy_images"] == 2
    assert by_sku["AV-3000"]["images"] == [
        {"legacy": True, "url": "https://images.example.com/ext/AV-3000.jpg", "source": "external"}]
    assert by_sku["AV-2000"]["images"] == []
    one = client.get("/api/shop/products/AV-1002").get_json()
    assert one["price"] == 152000 and len(one["images"]) == 4 and one["created_at"] is None


def test_the_products_total_is_counted_until_the_counters_are_reconciled_then_kept(client, db):
    """Products loaded behind the app's back (a shop's old collection) are not in the
    counters kept with every write: the list counts them until a reconciliation has, then
    answers the kept figure."""
    from avenue.shop.references import ProductReferences
    from avenue.status.counters import recount_products

    load_legacy(db)

    def total() -> tuple[int, bool]:
        body = client.get("/api/shop/products?per_page=3").get_json()
        return body["total"], body["total_exact"]

    assert total() == (8, True)  # counted
    recount_products(db, ProductReferences(db), batch=5)
    assert total() == (8, True)  # kept
    db.shop_products.insert_one({"sku": "ZZ-BEHIND", "name": "x", "images": []})
    assert total() == (8, True)  # the kept figure, until the next reconciliation
    recount_products(db, ProductReferences(db), batch=5)
    assert total() == (9, True)


def test_legacy_images_cannot_be_reordered_until_imported(client, db, admin):
    load_legacy(db)
    response = client.put("/api/shop/products/AV-1001/images/order", headers=admin, json={"image_ids": []})
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "legacy_images" and "import-legacy" in error["message"]


def test_a_legacy_image_has_no_id_to_delete_and_the_answer_says_why(client, db, admin):
    load_legacy(db)
    response = client.delete(f"/api/shop/products/AV-1001/images/{ObjectId()}", headers=admin)
    assert response.status_code == 404 and "import-legacy" in response.get_json()["error"]["message"]


def test_a_legacy_product_takes_new_images_within_its_limit(app, client, db, admin):
    load_legacy(db)
    app.config["AVENUE_MAX_PRODUCT_IMAGES"] = 5
    assert send(client, "/api/shop/products/AV-1002/images", admin, *SMALL[:2]).status_code == 422
    response = send(client, "/api/shop/products/AV-1002/images", admin, SMALL[0])
    assert response.status_code == 201
    images = response.get_json()["product"]["images"]
    assert [image.get("legacy", False) for image in images] == [True, True, True, True, False]


# --- roles -------------------------------------------------------------------------------


def test_editors_cannot_touch_products_and_anonymous_users_only_read(client, db, auth, admin):
    make_product(client, admin, "AV-1")
    editor = auth.token("editor")
    assert client.post("/api/shop/products", headers=editor,
                       json={"sku": "AV-2", "name": "x", "price": 1}).status_code == 403
    assert send(client, "/api/shop/temp-images", editor, "good/alpha.png").status_code == 403
    assert client.delete("/api/shop/products/AV-1").status_code == 401
    assert client.get("/api/shop/products/AV-1").status_code == 200


def test_a_logged_in_admin_needs_the_csrf_token(app, db, auth):
    session, csrf = auth.login("admin")
    body = {"sku": "AV-1", "name": "x", "price": 1}
    assert session.post("/api/shop/products", json=body).status_code == 403
    assert session.post("/api/shop/products", json=body, headers=csrf).status_code == 201


# --- consistency under concurrency -------------------------------------------------------


@pytest.mark.parametrize("target", ["image", "product"])
def test_a_delete_refused_because_an_image_is_being_replaced_changes_nothing(client, db, admin, target):
    """409 before anything is taken off: the product keeps its images, its files stay where
    they were, and nothing goes to the trash (the reference was once taken off first, leaving
    the file unreferenced and out of the trash)."""
    from avenue.clock import now

    product = make_product(client, admin, "AV-BUSY", *SMALL[:2])
    busy, other = ids_of(product)
    images(db, Buckets.PRODUCTS).update_one({"_id": ObjectId(busy)},
                                            {"$set": {"metadata.replacing_at": now()}})
    files = bucket_snapshot(db)
    url = f"/api/shop/products/AV-BUSY/images/{busy}" if target == "image" else "/api/shop/products/AV-BUSY"
    response = client.delete(url, headers=admin)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "image_busy"
    assert ids_of(client.get("/api/shop/products/AV-BUSY").get_json()) == [busy, other]
    assert bucket_snapshot(db) == files
    assert images(db, Buckets.PRODUCTS).count_documents({"metadata.deleting_at": {"$ne": None}}) == 0
    assert client.get("/api/trash", headers=admin).get_json()["total"] == 0
