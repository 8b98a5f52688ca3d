"""Lists at any depth: keyset cursors, bounded numbered pages, capped counts (avenue/paging.py)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from bson import ObjectId

from avenue import paging
from avenue.errors import BadRequest
from avenue.paging import Window, decode_cursor, encode_cursor, fetch
from tests.helpers import image_bytes

NEWEST = [("at", -1), ("_id", -1)]


def seed_entries(db, count: int, *, same_time: bool = False) -> list[ObjectId]:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    docs = [{"_id": ObjectId(), "at": start if same_time else start + dt.timedelta(seconds=n), "n": n}
            for n in range(count)]
    db.entries.insert_many(docs)
    return [doc["_id"] for doc in sorted(docs, key=lambda d: (d["at"], d["_id"]), reverse=True)]


def walk(db, query: dict, per_page: int) -> list[ObjectId]:
    """Every id, following ``next`` from the first page to the last."""
    seen: list[ObjectId] = []
    window = Window(per_page=per_page)
    while True:
        page = fetch(db.entries, query, NEWEST, window)
        seen += [doc["_id"] for doc in page.docs]
        if page.next is None:
            return seen
        window = Window(per_page=per_page, after=page.next)


@pytest.mark.parametrize("same_time", [False, True])
def test_following_next_visits_every_item_once_in_order(db, same_time):
    expected = seed_entries(db, 23, same_time=same_time)
    assert walk(db, {}, per_page=5) == expected
    assert walk(db, {"n": {"$gte": 10}}, per_page=4) == [i for i in expected
                                                         if db.entries.find_one(i)["n"] >= 10]


def test_items_added_or_removed_between_pages_are_never_repeated_or_skipped(db):
    expected = seed_entries(db, 10)
    first = fetch(db.entries, {}, NEWEST, Window(per_page=4))
    # A newer entry arrives and an already-seen one goes before the client asks for more.
    db.entries.insert_one({"at": dt.datetime(2027, 1, 1, tzinfo=dt.UTC), "n": 99})
    db.entries.delete_one({"_id": expected[0]})
    rest = fetch(db.entries, {}, NEWEST, Window(per_page=100, after=first.next))
    assert [doc["_id"] for doc in first.docs] + [doc["_id"] for doc in rest.docs] == expected
    assert rest.next is None


def test_the_count_is_capped_and_says_so(db, monkeypatch):
    seed_entries(db, 12)
    monkeypatch.setattr(paging, "COUNT_LIMIT", 10)
    page = fetch(db.entries, {"n": {"$gte": 0}}, NEWEST, Window(per_page=3))
    assert (page.total, page.total_exact) == (10, False)
    # An unfiltered list counts from the collection's metadata: exact and O(1).
    whole = fetch(db.entries, {}, NEWEST, Window(per_page=3))
    assert (whole.total, whole.total_exact) == (12, True)
    exact = fetch(db.entries, {"n": {"$lt": 5}}, NEWEST, Window(per_page=3))
    assert (exact.total, exact.total_exact) == (5, True)


@pytest.mark.parametrize("token", [
    "", "x" * 600, "!!!", "bnVsbA", encode_cursor(["a"]), encode_cursor([1, 2, 3]),
    "W3sibyI6Im5vdC1hbi1pZCJ9LDFd",  # [{"o": "not-an-id"}, 1]
    "W3siZCI6MWUzMDB9LDFd",  # [{"d": 1e300}, 1]
    "W3sieCI6MX0sMV0",  # [{"x": 1}, 1]
])
def test_a_cursor_this_list_did_not_hand_out_is_a_400(db, token):
    seed_entries(db, 3)
    with pytest.raises(BadRequest) as refused:
        fetch(db.entries, {}, NEWEST, Window(after=token))
    assert refused.value.code == "invalid_cursor"


def test_cursors_round_trip_dates_ids_and_strings():
    when = dt.datetime(2026, 5, 1, 12, 30, 15, 123000, tzinfo=dt.UTC)
    oid = ObjectId()
    assert decode_cursor(encode_cursor([when, oid, "SKU-1"]), 3) == [when, oid, "SKU-1"]


# --- every list endpoint --------------------------------------------------------------------


def follow(client, path: str, headers: dict, per_page: int = 2, **query) -> list[dict]:
    items: list[dict] = []
    params = {"per_page": per_page, **query}
    while True:
        response = client.get(path, query_string=params, headers=headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert {"items", "total", "total_exact", "page", "per_page", "next"} <= set(body)
        items += body["items"]
        if body["next"] is None:
            return items
        params = {"per_page": per_page, "after": body["next"], **query}


def test_every_list_endpoint_pages_by_cursor(app, client, auth):
    admin = auth.token("admin")
    for n in range(5):
        assert client.post("/api/shop/products", headers=admin,
                           json={"sku": f"P-{n}", "name": "x", "price": 1}).status_code == 201
    names = ["alpha.png", "grayscale.jpg", "tiny_1x1.png", "cmyk.jpg", "png16.png"]
    for name in names:
        for path, field in (("/api/builder/media", "file"), ("/api/uploads", "file")):
            response = client.post(path, headers=admin,
                                   data={field: (io.BytesIO(image_bytes(f"good/{name}")), f"shot {name}")})
            assert response.status_code == 201, response.get_json()
    products = follow(client, "/api/shop/products", {})
    assert [p["sku"] for p in products] == [f"P-{n}" for n in range(5)]
    media = follow(client, "/api/builder/media", admin)
    assert len(media) == 5 and len({m["id"] for m in media}) == 5
    assert len(follow(client, "/api/builder/media", admin, q="shot")) == 5
    uploads = follow(client, "/api/uploads", admin)
    assert len(uploads) == 5 and len({u["id"] for u in uploads}) == 5
    audit = follow(client, "/api/admin/audit", admin, per_page=3)
    assert len(audit) >= 15 and len({e["id"] for e in audit}) == len(audit)
    # Newest first, whatever the page boundaries.
    assert [e["at"] for e in audit] == sorted((e["at"] for e in audit), reverse=True)


@pytest.mark.parametrize("query, code", [
    ({"page": 2, "after": "x"}, "invalid_pagination"),
    ({"page": 102, "per_page": 100}, "invalid_pagination"),
    ({"page": 10**6}, "invalid_pagination"),
    ({"after": "not-a-cursor"}, "invalid_cursor"),
    ({"after": encode_cursor([ObjectId(), 1])}, "invalid_cursor"),
])
def test_deep_numbered_pages_and_foreign_cursors_are_refused_with_a_pointer(client, query, code):
    response = client.get("/api/shop/products", query_string=query)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code


def test_numbered_pages_still_reach_the_first_ten_thousand_items(client):
    assert client.get("/api/shop/products", query_string={"page": 101, "per_page": 100}).status_code == 200
