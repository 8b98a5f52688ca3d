"""Lists at any depth: keyset cursors, bounded numbered pages, capped counts, by the plain lister
(avenue/paging.py) and the fenced one (avenue/embedded/listing.py)."""

from __future__ import annotations

import datetime as dt
import io
import sys

import pytest
from bson import ObjectId

from avenue import paging
from avenue.embedded import fences, listing
from avenue.embedded.listing import fetch
from avenue.errors import BadRequest
from avenue.paging import Listed, Window, decode_cursor, encode_cursor
from tests.helpers import image_bytes

NEWEST = [("at", -1), ("_id", -1)]


def seed_entries(db, count: int, *, same_time: bool = False) -> list[ObjectId]:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    docs = [{"_id": ObjectId(), "at": start if same_time else start + dt.timedelta(seconds=n), "n": n}
            for n in range(count)]
    db.entries.insert_many(docs)
    return [doc["_id"] for doc in sorted(docs, key=lambda d: (d["at"], d["_id"]), reverse=True)]


LISTERS = pytest.mark.parametrize("lister", [paging.fetch, listing.fetch], ids=["plain", "fenced"])


def walk(db, query: dict, per_page: int, lister=fetch) -> list[ObjectId]:
    """Every id, following ``next`` from the first page to the last."""
    seen: list[ObjectId] = []
    window = Window(per_page=per_page)
    while True:
        page = lister(db.entries, query, NEWEST, window)
        seen += [doc["_id"] for doc in page.docs]
        if page.next is None:
            return seen
        window = Window(per_page=per_page, after=page.next)


@LISTERS
@pytest.mark.parametrize("same_time", [False, True])
def test_following_next_visits_every_item_once_in_order(db, same_time, lister):
    expected = seed_entries(db, 23, same_time=same_time)
    assert walk(db, {}, per_page=5, lister=lister) == expected
    assert walk(db, {"n": {"$gte": 10}}, per_page=4, lister=lister) == [
        i for i in expected if db.entries.find_one(i)["n"] >= 10]


@LISTERS
def test_numbered_pages_and_their_next_follow_the_list(db, lister):
    expected = seed_entries(db, 30)
    for page in (1, 2, 5):
        got = lister(db.entries, {}, NEWEST, Window(page=page, per_page=6))
        assert [doc["_id"] for doc in got.docs] == expected[(page - 1) * 6: page * 6]
        assert (got.total, got.total_exact) == (30, True)
        following = lister(db.entries, {}, NEWEST, Window(per_page=6, after=got.next)) if got.next else None
        assert (following is None) == (page == 5)
        if following is not None:
            assert [doc["_id"] for doc in following.docs] == expected[page * 6: (page + 1) * 6]


@LISTERS
def test_items_added_or_removed_between_pages_are_never_repeated_or_skipped(db, lister):
    fetch = lister
    expected = seed_entries(db, 10)
    first = fetch(db.entries, {}, NEWEST, Window(per_page=4))
    # A newer entry arrives and an already-seen one goes before the client asks for more.
    db.entries.insert_one({"at": dt.datetime(2027, 1, 1, tzinfo=dt.UTC), "n": 99})
    db.entries.delete_one({"_id": expected[0]})
    rest = fetch(db.entries, {}, NEWEST, Window(per_page=100, after=first.next))
    assert [doc["_id"] for doc in first.docs] + [doc["_id"] for doc in rest.docs] == expected
    assert rest.next is None


@LISTERS
@pytest.mark.parametrize("fenced", [False, True])
def test_the_count_is_capped_and_says_so(db, monkeypatch, fenced, lister):
    fetch = lister
    seed_entries(db, 12)
    if fenced:
        build(db, every=3)
    monkeypatch.setattr(sys.modules[lister.__module__], "COUNT_LIMIT", 10)
    page = fetch(db.entries, {"n": {"$gte": 0}}, NEWEST, Window(per_page=3))
    assert (page.total, page.total_exact) == (10, False)
    assert (fetch(db.entries, {}, NEWEST, Window(per_page=3)).total_exact) is False
    exact = fetch(db.entries, {"n": {"$lt": 5}}, NEWEST, Window(per_page=3))
    assert (exact.total, exact.total_exact) == (5, True)
    # A list whose size the caller keeps (the counters) answers it, exact, without counting.
    kept = fetch(db.entries, {}, NEWEST, Window(per_page=3), total=12)
    assert (kept.total, kept.total_exact) == (12, True)


# --- windows between fences -----------------------------------------------------------------

ENTRIES = Listed("entries", {}, NEWEST, "newest")


def build(db, every: int, listed: Listed = ENTRIES) -> dict:
    db[listed.collection].create_index(list(listed.sort), name=listed.index)
    return fences.build_fences(db, listed, every=every)


class Recording:
    """A collection that keeps the filter of every find and count it is asked."""

    def __init__(self, collection):
        self._collection = collection
        self.filters: list[dict] = []

    def find(self, filter_, *args, **kwargs):
        self.filters.append(filter_)
        return self._collection.find(filter_, *args, **kwargs)

    def count_documents(self, filter_, **kwargs):
        self.filters.append(filter_)
        return self._collection.count_documents(filter_, **kwargs)

    def __getattr__(self, name):
        return getattr(self._collection, name)


def walk_recorded(db, query: dict, per_page: int, sort=NEWEST, name: str = "entries"
                  ) -> tuple[list, Recording]:
    spy = Recording(db[name])
    seen: list = []
    window = Window(per_page=per_page)
    while True:
        page = fetch(spy, query, sort, window, total=0)
        seen += [doc["_id"] for doc in page.docs]
        if page.next is None:
            return seen, spy
        window = Window(per_page=per_page, after=page.next)


def test_with_fences_every_query_is_bounded_and_every_item_comes_once_in_order(db):
    expected = seed_entries(db, 60)
    assert build(db, every=5) == {"fences": 12, "items": 60}
    stored = db[fences.FENCES].find_one({"_id": "entries|at"})
    assert len(stored["keys"]) == 12 and stored["every"] == 5
    seen, spy = walk_recorded(db, {}, per_page=4)
    assert seen == expected
    # Each query's range holds at most one window of entries (5), never the rest of the list
    # (a whole-list range is what costs seconds on the embedded database).
    assert spy.filters and max(db.entries.count_documents(f) for f in spy.filters) <= 5


def test_a_sparse_filter_joins_windows_and_still_misses_nothing(db):
    expected = seed_entries(db, 200)
    build(db, every=5)
    db.entries.update_many({"n": {"$in": list(range(0, 200, 10))}}, {"$set": {"tenth": True}})
    seen, spy = walk_recorded(db, {"tenth": True}, per_page=3)
    assert seen == [i for i in expected if db.entries.find_one(i)["n"] % 10 == 0]
    # 40 windows, one match in two: windows make far fewer queries than windows...
    assert len(spy.filters) < 40
    # ...and none spans more than MAX_JOINED windows.
    assert max(db.entries.count_documents(f) for f in spy.filters) <= 5 * fences.MAX_JOINED


def test_stale_fences_change_the_cost_never_the_items(db):
    seed_entries(db, 40)
    build(db, every=4)
    ids = [doc["_id"] for doc in db.entries.find()]
    db.entries.delete_many({"_id": {"$in": ids[10:25]}})  # whole windows emptied
    later = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    db.entries.insert_many([{"at": later + dt.timedelta(seconds=n), "n": 100 + n} for n in range(9)])
    db.entries.insert_many([{"at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC), "n": 200 + n} for n in range(3)])
    expected = [doc["_id"] for doc in db.entries.find().sort(NEWEST)]
    assert walk_recorded(db, {}, per_page=6)[0] == expected
    assert walk_recorded(db, {"n": {"$gte": 100}}, per_page=2)[0] == [
        i for i in expected if db.entries.find_one(i)["n"] >= 100]


def test_ties_on_the_date_are_walked_by_id_across_fences(db):
    expected = seed_entries(db, 30, same_time=True)
    build(db, every=4)  # every fence the same date: one fence
    assert fences.fences(db.entries, "at") == [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]
    assert walk_recorded(db, {}, per_page=7)[0] == expected


def test_an_ascending_string_list_walks_in_windows_too(db):
    skus = [f"SKU-{n:04d}" for n in range(0, 300, 7)]
    db.skus.insert_many([{"sku": sku} for sku in skus])
    listed = Listed("skus", {}, [("sku", 1)], "sku_1")
    assert build(db, every=4, listed=listed)["fences"] == len(skus) // 4
    db.skus.insert_many([{"sku": "A-first"}, {"sku": "SKU-0100x"}, {"sku": "ZZ-last"}])
    seen, spy = walk_recorded(db, {}, per_page=5, sort=[("sku", 1)], name="skus")
    assert [db.skus.find_one(i)["sku"] for i in seen] == sorted([*skus, "A-first", "SKU-0100x", "ZZ-last"])
    assert max(db.skus.count_documents(f) for f in spy.filters) <= 5


def test_numbered_pages_walk_windows_to_their_offset(db):
    expected = seed_entries(db, 50)
    build(db, every=6)
    for page in (1, 2, 5, 9):
        got = fetch(db.entries, {}, NEWEST, Window(page=page, per_page=6), total=50)
        assert [doc["_id"] for doc in got.docs] == expected[(page - 1) * 6: page * 6]
        assert set(got.docs[0]) == {"_id", "at", "n"}  # whole documents, not the walked keys
        if page < 9:  # a numbered page's next goes on where it ends
            following = fetch(db.entries, {}, NEWEST, Window(per_page=6, after=got.next), total=50)
            assert [doc["_id"] for doc in following.docs] == expected[page * 6: (page + 1) * 6]
    assert fetch(db.entries, {}, NEWEST, Window(page=9, per_page=6), total=50).next is None


def test_fences_of_more_than_one_type_are_not_used(db):
    expected = seed_entries(db, 12)
    db[fences.FENCES].insert_one({"_id": "entries|at", "keys": ["x", dt.datetime(2026, 1, 1, 0, 0, 5)]})
    assert fences.fences(db.entries, "at") == []
    assert walk_recorded(db, {}, per_page=5)[0] == expected


def test_a_field_of_mixed_types_gets_no_fences(db):
    db.skus.insert_many([{"sku": f"S{n}"} for n in range(6)] + [{"sku": n} for n in range(6)])
    assert build(db, every=2, listed=Listed("skus", {}, [("sku", 1)], "sku_1"))["fences"] == 0


@pytest.mark.parametrize("token", [
    "", "x" * 600, "!!!", "bnVsbA", encode_cursor(["a"]), encode_cursor([1, 2, 3]),
    "W3sibyI6Im5vdC1hbi1pZCJ9LDFd",  # [{"o": "not-an-id"}, 1]
    "W3siZCI6MWUzMDB9LDFd",  # [{"d": 1e300}, 1]
    "W3sieCI6MX0sMV0",  # [{"x": 1}, 1]
])
@LISTERS
def test_a_cursor_this_list_did_not_hand_out_is_a_400(db, token, lister):
    seed_entries(db, 3)
    with pytest.raises(BadRequest) as refused:
        lister(db.entries, {}, NEWEST, Window(after=token))
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


def test_numbered_pages_reach_the_first_thousand_items(client):
    assert client.get("/api/shop/products", query_string={"page": 11, "per_page": 100}).status_code == 200
    refused = client.get("/api/shop/products", query_string={"page": 12, "per_page": 100})
    assert refused.status_code == 400 and refused.get_json()["error"]["max_offset"] == 1_000


def test_an_in_of_a_few_values_is_walked_per_value_in_windows_and_merged(db):
    """The library's root folder is ``/`` or none: ``$in`` before a range is a scan on the
    embedded database, so each value is walked in its own windows and the pages merged."""
    expected = seed_entries(db, 90)
    for n, entry_id in enumerate(reversed(expected)):
        folder = ["/", None, "/shop"][n % 3]
        db.entries.update_one({"_id": entry_id}, {"$set": {"folder": folder}} if folder
                              else {"$unset": {"folder": ""}})
    build(db, every=5)
    root = {"folder": {"$in": ["/", None]}}
    wanted = [i for i in expected if db.entries.find_one(i).get("folder") in ("/", None)]
    seen, spy = walk_recorded(db, root, per_page=7)
    assert seen == wanted
    assert spy.filters and all("$in" not in str(f) for f in spy.filters)
    assert max(db.entries.count_documents(f) for f in spy.filters) <= 5 * fences.MAX_JOINED
    numbered = fetch(db.entries, root, NEWEST, Window(page=3, per_page=7))
    assert [doc["_id"] for doc in numbered.docs] == wanted[14:21]
    assert (numbered.total, numbered.total_exact) == (60, True)
    # Several values of an array field match one document once.
    db.entries.update_many({}, {"$set": {"tags": ["a", "b"]}})
    assert walk_recorded(db, {"tags": {"$in": ["a", "b"]}}, per_page=9)[0] == expected


def test_a_numbered_page_leaves_out_an_item_deleted_between_its_two_reads(db):
    """A numbered page walks the sort keys, then reads its own documents by _id: an item
    deleted in between is left out, and the page still says that more follow."""
    expected = seed_entries(db, 30)
    build(db, every=4)

    class DeletingFirst(Recording):
        def find(self, filter_, *args, **kwargs):
            ids = (filter_.get("_id") or {}).get("$in") if isinstance(filter_.get("_id"), dict) else None
            if ids:
                self._collection.delete_one({"_id": ids[0]})
            return super().find(filter_, *args, **kwargs)

    page = fetch(DeletingFirst(db.entries), {}, NEWEST, Window(page=2, per_page=5), total=30)
    assert [doc["_id"] for doc in page.docs] == expected[6:10]
    assert page.next is not None


# A kept size (counted nothing: pages only) that says a list is large enough for first windows.
LARGE = 10**6


def first_walk(db, sort, per_page: int, hints) -> tuple[list, Recording]:
    """Every id of the unfenced list, page after page, each page read with ``hints``."""
    spy = Recording(db.entries)
    seen: list = []
    window = Window(per_page=per_page)
    while True:
        page = fetch(spy, {}, sort, window, total=LARGE, hints=lambda: hints)
        seen += [doc["_id"] for doc in page.docs]
        if page.next is None:
            return seen, spy
        window = Window(per_page=per_page, after=page.next)


@pytest.mark.parametrize("sort", [NEWEST, [("at", 1), ("_id", 1)]], ids=["newest", "oldest"])
def test_a_list_without_fences_is_read_in_date_windows_and_misses_nothing(db, sort):
    """Before the first sweep samples a list's fences (a store loaded behind the app's back),
    its pages on the embedded database were one read of the whole list, sorted and limited,
    which it decodes whole under its one lock (a library's page 1 of 37,575 builder files:
    1.2-1.8 s a call): with the counters' hints, windows of dates sized as they go, each about
    a read's worth, and undated items where a sort puts them."""
    count = 3 * 4 * fences.FIRST_READ
    db.entries.create_index(list(NEWEST), name="newest")  # as a list's index is (no scans)
    expected = seed_entries(db, count)
    undated = db.entries.insert_many([{"n": -1}, {"at": None, "n": -2}]).inserted_ids
    everything = [doc["_id"] for doc in db.entries.find({}, {"_id": 1}).sort(sort)]
    assert set(everything) == set(expected) | set(undated)
    dates = [doc["at"] for doc in db.entries.find({"at": {"$ne": None}}, {"at": 1})]
    hints = paging.DateHints(min(dates), max(dates), count)
    assert not fences.fences(db.entries, "at")
    seen, spy = first_walk(db, sort, per_page=400, hints=hints)
    assert seen == everything  # every item once, in the list's order, the undated ones too
    reads = [db.entries.count_documents(f) for f in spy.filters]
    # Before: page 1 alone asked for the whole list (its range held all 3,074).
    assert max(reads) <= fences.FIRST_GROWTH * fences.FIRST_READ < count, reads
    # Page 1 reads a few windows from the list's edge, not the whole list.
    spy = Recording(db.entries)
    page = fetch(spy, {}, sort, Window(per_page=20), total=LARGE, hints=lambda: hints)
    assert [doc["_id"] for doc in page.docs] == everything[:20]
    assert len(spy.filters) <= 8 and sum(db.entries.count_documents(f) for f in spy.filters) < count // 4
    # A numbered page too.
    numbered = fetch(db.entries, {}, sort, Window(page=3, per_page=20), total=LARGE, hints=lambda: hints)
    assert [doc["_id"] for doc in numbered.docs] == everything[40:60]
    # An $in of a few values (the library's root folder: '/' or none) is walked per value.
    spy = Recording(db.entries)
    root = fetch(spy, {"folder": {"$in": ["/", None]}}, sort, Window(per_page=20), total=LARGE,
                 hints=lambda: hints)
    assert [doc["_id"] for doc in root.docs] == everything[:20]
    assert spy.filters and all("$in" not in str(f) for f in spy.filters)
    # A list the hints say is small is one read, as before (a swept small list has no fences).
    spy = Recording(db.entries)
    small = paging.DateHints(hints.oldest, hints.newest, listing.FIRST_WALK_FROM)
    fetch(spy, {}, sort, Window(per_page=20), total=LARGE, hints=lambda: small)
    assert len(spy.filters) == 1


def test_a_list_with_fences_asks_no_hints(db):
    seed_entries(db, 40)
    build(db, every=5)

    def hints():
        raise AssertionError("hints are for a list without fences")

    page = fetch(db.entries, {}, NEWEST, Window(per_page=10), total=40, hints=hints)
    assert len(page.docs) == 10
