"""The delivery numbers (avenue/media/store/deliveries.py) by their own collection: what every
serving path counts, one bulk_write per flush, their retention and their reads."""

from __future__ import annotations

import datetime as dt

import pytest
from bson import ObjectId
from werkzeug.test import Client

from avenue.clock import now
from avenue.media import Buckets, Image
from avenue.media.serve.frontdoor import FrontDoor
from avenue.media.store import deliveries as numbers
from tests.helpers import expires_after
from tests.support.deliveries import N, flush, library_image, put, url

#: What the console adds to the media URLs it loads itself (docs/operations.md).
CONSOLE_MARKER = "via=console"


def day_docs(db, image) -> dict[str, dict]:
    return {f"{doc['name']}.{doc['format']}": doc
            for doc in db[numbers.COLLECTION].find({"image": image, "day": {"$exists": True}})}


@pytest.fixture
def bulk_writes(db, monkeypatch):
    """Every bulk_write sent to the delivery numbers' collection, by its operation count."""
    sent: list[int] = []
    kind = type(db[numbers.COLLECTION])
    real = kind.bulk_write

    def counted(self, operations, *args, **kwargs):
        if self.name == numbers.COLLECTION:
            sent.append(len(operations))
        return real(self, operations, *args, **kwargs)

    monkeypatch.setattr(kind, "bulk_write", counted)
    return sent


def page_using(db, slug: str, image_id) -> None:
    db.page_content.insert_one({"slug": slug, "title": slug, "published": True, "updated_at": now(),
                                "blocks": [{"type": "image", "media_id": str(image_id)}],
                                "media_ids": [image_id]})


def test_an_original_a_variant_and_a_rendition_served_n_times_are_counted_n_times_in_one_write(
        app, client, db, bulk_writes):
    doc = put(app)
    for target in ("", "thumb", "w_320.webp"):
        for _ in range(N):
            assert client.get(url(doc, target), headers={"Accept": "image/webp"}).status_code == 200
    assert bulk_writes == []  # nothing written per request
    flush(app, db)
    assert len(bulk_writes) == 1
    found = day_docs(db, doc["_id"])
    assert {key: row["requests"] for key, row in found.items()} == {
        "original.jpeg": N, "thumb.webp": N, "w_320.webp": N}
    assert all(row["bytes"] > 0 and row["bytes"] % N == 0 for row in found.values())
    summary = numbers.served_totals(db, Buckets.PRODUCTS, doc["_id"])
    assert summary["requests"] == 3 * N and summary["last_served"] is not None


def test_the_front_door_counts_what_it_answers_from_the_cache(app, client, db, bulk_writes):
    doc = put(app)
    assert client.get(url(doc, "thumb"), headers={"Accept": "image/webp"}).data  # now in the cache
    flush(app, db)

    def flask_must_not_run(environ, start_response):
        pytest.fail("the front door passed the request on to Flask")

    front = Client(FrontDoor(app, flask_must_not_run))
    for _ in range(N):
        assert front.get(url(doc, "thumb"), headers={"Accept": "image/webp"}).status_code == 200
    flush(app, db)
    assert len(bulk_writes) == 2
    assert day_docs(db, doc["_id"])["thumb.webp"]["requests"] == N + 1


def test_two_workers_on_one_database_count_into_the_same_day_documents(app_factory, db, bulk_writes):
    first, second = app_factory(), app_factory()
    doc = put(first)
    for worker in (first, second):
        for _ in range(N):
            assert worker.test_client().get(url(doc)).status_code == 200
    flush(first, db)
    flush(second, db)
    assert len(bulk_writes) == 2
    (row,) = day_docs(db, doc["_id"]).values()
    assert row["requests"] == 2 * N


def test_heads_and_304s_are_not_deliveries_on_the_route_nor_the_front_door(app, client, db):
    """Only answers that send the bytes count: anyone's HEADs or revalidations (the front
    door answers thousands a second) would otherwise push any public image up ops' lists."""
    doc = put(app)
    sent = client.get(url(doc, "thumb"), headers={"Accept": "image/webp"})
    assert sent.status_code == 200 and sent.data  # counted, and now in this worker's cache
    etag = sent.headers["ETag"]

    def flask_must_not_run(environ, start_response):
        pytest.fail("the front door passed the request on to Flask")

    front = Client(FrontDoor(app, flask_must_not_run))
    for target in (client, front):
        for _ in range(N):
            assert target.head(url(doc, "thumb"), headers={"Accept": "image/webp"}).status_code == 200
            assert target.get(url(doc, "thumb"), headers={"Accept": "image/webp",
                                                           "If-None-Match": etag}).status_code == 304
    assert client.head(url(doc)).status_code == 200  # the original: a HEAD alone, never sent
    flush(app, db)
    found = day_docs(db, doc["_id"])
    assert {key: (row["requests"], row["bytes"]) for key, row in found.items()} == {
        "thumb.webp": (1, len(sent.data))}
    assert numbers.served_totals(db, Buckets.PRODUCTS, doc["_id"])["requests"] == 1


def test_a_private_image_s_id_and_renditions_reach_no_ops_list_but_its_recency_is_kept(
        app, client, db, auth):
    from urllib.parse import urlsplit

    from tests.support.client import uploaded

    owner = auth.token("ops")
    image = uploaded(client, owner)
    assert image["visibility"] == "private"
    rendition = image["renditions"]["srcset"]["webp"].split(", ")[0].split(" ")[0]
    for target in (image["url"], image["variants"]["thumb"], rendition):
        assert client.get(target).status_code == 200, target
    flush(app, db)
    assert db[numbers.COLLECTION].count_documents({}) == 0
    ops = auth.token("ops")
    assert client.get("/api/admin/deliveries/top", headers=ops).get_json()["items"] == []
    days = client.get(f"/api/admin/deliveries/images/uploads/{image['id']}", headers=ops).get_json()
    assert days["requests"] == 0 and not any(day["by_file"] for day in days["days"])
    # The rendition's recency (the byte budget's eviction order) still follows its deliveries.
    files = db["media_renditions.files"]
    (stored,) = files.find({"metadata.image_id": ObjectId(image["id"])})
    assert urlsplit(rendition).path.rsplit("/", 1)[1].startswith(stored["metadata"]["spec"])
    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    files.update_one({"_id": stored["_id"]}, {"$set": {"metadata.last_used": long_ago}})
    assert client.get(rendition).status_code == 200
    flush(app, db)
    assert files.find_one({"_id": stored["_id"]})["metadata"]["last_used"].year > 2020
    assert db[numbers.COLLECTION].count_documents({}) == 0


def test_a_flush_with_nothing_served_writes_nothing(app, db, bulk_writes):
    assert flush(app, db) == {}
    assert bulk_writes == []


def test_retention_is_a_ttl_index_on_the_day_with_the_configured_days(app_factory):
    from avenue.db import get_db, get_mongo

    app = app_factory(AVENUE_DELIVERY_RETENTION_DAYS=30)
    with app.app_context():
        get_mongo().ensure_indexes()
        indexes = get_db()[numbers.COLLECTION].index_information()
        expiry = expires_after(get_db()[numbers.COLLECTION], "retention_30d")
    assert expiry == 30 * 86400
    assert indexes["retention_30d"]["key"] == [("day", 1)]


def test_a_changed_retention_replaces_the_ttl_index(db):
    numbers.ensure_indexes(db, 7)
    indexes = db[numbers.COLLECTION].index_information()
    assert "retention_7d" in indexes and "retention_90d" not in indexes


def test_top_served_and_heaviest_over_a_range_and_each_images_series(app, client, db):
    small, large = put(app), put(app, "good/grayscale.jpg")
    for _ in range(3):
        client.get(url(small, "thumb"))
    client.get(url(large))
    flush(app, db)
    now = dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(days=1), now + dt.timedelta(days=1)
    most = numbers.top(db, start, end, by="requests")
    assert [row["requests"] for row in most][:1] == [3]
    heaviest = numbers.top(db, start, end, by="bytes")
    assert heaviest[0]["bytes"] >= heaviest[-1]["bytes"]
    assert numbers.top(db, end, end + dt.timedelta(days=1)) == []
    (day,) = numbers.series(db, Buckets.PRODUCTS, small["_id"], start, end)
    assert day["requests"] == 3 and day["name"] == "thumb"


def test_the_clean_up_list_is_unused_images_not_served_lately_and_its_trash_move_is_restorable(
        app, db, client, auth):
    on_page = library_image(db, "good/png16.png")
    served_lately = library_image(db, "good/alpha.png")
    never = library_image(db, "good/grayscale.jpg")
    served_long_ago = library_image(db, "good/tiny_1x1.png")
    in_product = Image.from_files_doc(Buckets.PRODUCTS, put(app, "good/progressive.jpg"))
    page_using(db, "home", on_page.id)
    assert client.get(f"/media/builder/{served_lately.id}").status_code == 200
    flush(app, db)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    db[numbers.COLLECTION].insert_one({"_id": numbers.summary_id(Buckets.BUILDER, served_long_ago.id),
                                       "bucket": Buckets.BUILDER, "image": served_long_ago.id,
                                       "last_served": old, "requests": 1, "bytes": 1})
    ops = auth.token("ops")
    listed = client.get("/api/admin/cleanup?days=30", headers=ops).get_json()
    ids = {item["id"] for item in listed["items"]}
    assert ids == {str(never.id), str(served_long_ago.id)}
    assert str(in_product.id) not in ids  # a product's images are never in the library
    assert client.get("/api/admin/cleanup?days=60", headers=ops).get_json()["items"][0]["id"] == str(never.id)
    editor = auth.token("admin")
    for image_id in ids:
        assert client.delete(f"/api/builder/media/{image_id}", headers=editor).status_code == 204
    assert client.get("/api/admin/cleanup?days=30", headers=ops).get_json()["items"] == []
    assert client.post(f"/api/trash/{never.id}/restore", headers=editor).status_code == 200
    again = client.get("/api/admin/cleanup?days=30", headers=ops).get_json()["items"]
    assert [item["id"] for item in again] == [str(never.id)]


@pytest.mark.parametrize("target", ["", "thumb", "w_320.webp"])
def test_the_consoles_own_loads_carry_the_marker_and_are_not_counted_on_the_route_nor_the_front_door(
        app, client, db, target):
    """The console adds ``via=console`` to every media URL it loads itself (avenue/console's
    api.js, ``consoleMedia``): those answers are served as any other and counted nowhere; the
    same URL without it is a visitor's, counted."""
    doc = put(app)
    marked = f"{url(doc, target)}?{CONSOLE_MARKER}"
    for _ in range(N):  # the route, which puts the file in this worker's cache once read whole
        answer = client.get(marked, headers={"Accept": "image/webp"})
        assert answer.status_code == 200 and answer.data

    def flask_must_not_run(environ, start_response):
        pytest.fail("the front door passed the request on to Flask")

    # A variant or a rendition is now in this worker's cache: the front door answers it (an
    # original is not kept there: the route answers it).
    front = Client(FrontDoor(app, flask_must_not_run)) if target else client
    for _ in range(N):
        assert front.get(f"{url(doc, target)}?sig=x&{CONSOLE_MARKER}",
                         headers={"Accept": "image/webp"}).status_code == 200
    flush(app, db)
    assert day_docs(db, doc["_id"]) == {}
    assert numbers.served_totals(db, Buckets.PRODUCTS, doc["_id"]) is None
    # The same URL without the marker (or with a look-alike) is a visitor's.
    for query in ("", "?via=consoles", "?xvia=console"):
        assert front.get(url(doc, target) + query, headers={"Accept": "image/webp"}).status_code == 200
    flush(app, db)
    (row,) = day_docs(db, doc["_id"]).values()
    assert row["requests"] == 3
