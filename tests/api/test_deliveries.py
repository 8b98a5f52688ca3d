"""Delivery numbers per image, as the API reads them: the most served and heaviest images, one
image's days, the images never served and the clean-up list (what every serving path counts
and each flush writes: tests/media/store/test_deliveries.py)."""

from __future__ import annotations

import pytest

from avenue.media import AppMedia, Buckets, Library
from tests.helpers import image_bytes
from tests.support.deliveries import N, flush, library_image, put, url
from tests.support.records import record

# --- the API: top, series, never served, the clean-up list -------------------------------


def test_an_image_deleted_since_it_was_served_is_listed_without_a_name_or_thumbnail(app, client, db, auth):
    doc = put(app)
    for _ in range(3):
        client.get(url(doc))
    flush(app, db)
    with app.app_context():
        AppMedia.on(db).library(Buckets.PRODUCTS).delete(doc["_id"])
    [item] = client.get("/api/admin/deliveries/top", headers=auth.token("ops")).get_json()["items"]
    assert item["image"] == str(doc["_id"]) and item["requests"] == 3
    assert item["filename"] is None and item["thumbnail"] is None


def test_ops_read_the_most_served_and_heaviest_images_and_one_images_days(app, client, db, auth):
    doc = put(app)
    for _ in range(N):
        client.get(url(doc))
    flush(app, db)
    ops = auth.token("ops")
    top = client.get("/api/admin/deliveries/top", headers=ops).get_json()
    assert top["items"][0]["image"] == str(doc["_id"]) and top["items"][0]["requests"] == N
    # Named as ops know the image: its file name and thumbnail (the console's rows show both).
    assert top["items"][0]["filename"] == doc["filename"]
    assert f"/media/products/{doc['_id']}" in top["items"][0]["thumbnail"]
    assert client.get(top["items"][0]["thumbnail"]).status_code == 200
    heaviest = client.get("/api/admin/deliveries/top?by=bytes", headers=ops).get_json()
    assert heaviest["items"][0]["bytes"] == N * doc["length"]
    days = client.get(f"/api/admin/deliveries/images/products/{doc['_id']}", headers=ops).get_json()
    assert len(days["days"]) == 30 and days["days"][-1]["requests"] == N and days["requests"] == N
    assert days["last_served"] is not None


@pytest.mark.parametrize("query, code", [
    ("from=2026-13-01", "invalid_range"), ("to=194-05-25", "invalid_range"),
    ("to=0001-01-02", "invalid_range"), ("to=9999-12-31", "invalid_range"),
    ("from=2026-02-01&to=2026-01-01", "invalid_range"),
    ("from=2025-01-01&to=2026-01-01", "invalid_range"), ("by=weight", "invalid_by"),
    ("limit=0", "invalid_limit"),
    ("limit=x", "invalid_limit"), ("limit=5.0", "invalid_limit"), ("limit=101", "invalid_limit"),
    ("limit=", "invalid_limit"),
])
def test_a_bad_range_or_order_is_a_400_that_says_why(client, auth, query, code):
    answer = client.get(f"/api/admin/deliveries/top?{query}", headers=auth.token("ops"))
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == code
    said = {"invalid_by": "by is requests or bytes.",
            "invalid_limit": "limit is a whole number from 1 to 100."}
    if code in said:
        assert answer.get_json()["error"]["message"] == said[code]


def test_the_top_lists_limit_is_read_as_a_whole_number(client, auth):
    answer = client.get("/api/admin/deliveries/top?limit=+7&by=bytes", headers=auth.token("ops"))
    assert answer.status_code == 200 and answer.get_json()["by"] == "bytes"


def test_delivery_numbers_are_for_ops_and_admins_only(client, auth):
    assert client.get("/api/admin/deliveries/top", headers=auth.token("editor")).status_code == 403
    assert client.get("/api/admin/cleanup", headers=auth.token("editor")).status_code == 403


def test_never_served_lists_the_library_images_nobody_asked_for(app, db, client, auth):
    served, idle = library_image(db, "good/png16.png"), library_image(db, "good/alpha.png")
    assert client.get(f"/media/builder/{served.id}").status_code == 200
    flush(app, db)
    listed = client.get("/api/admin/deliveries/never-served", headers=auth.token("ops")).get_json()
    assert [item["id"] for item in listed["items"]] == [str(idle.id)]


@pytest.mark.parametrize("days", ["0", "x", "100000", "30.0", ""])
def test_a_bad_clean_up_age_is_a_400(client, auth, days):
    answer = client.get(f"/api/admin/cleanup?days={days}", headers=auth.token("ops"))
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid_days"
    assert answer.get_json()["error"]["message"] == "days is 1 to 3650."


def test_the_clean_up_age_defaults_to_90_days_and_is_read_as_a_whole_number(client, auth):
    assert client.get("/api/admin/cleanup", headers=auth.token("ops")).get_json()["days"] == 90
    assert client.get("/api/admin/cleanup?days=%2030%20", headers=auth.token("ops")).get_json()["days"] == 30


def test_an_editor_reads_a_library_images_days_for_its_card_as_ops_read_them(app, db, client, auth):
    image = library_image(db, "good/png16.png")
    for _ in range(N):
        assert client.get(f"/media/builder/{image.id}").status_code == 200
    flush(app, db)
    mine = client.get(f"/api/builder/media/{image.id}/deliveries", headers=auth.token("editor"))
    theirs = client.get(f"/api/admin/deliveries/images/builder/{image.id}", headers=auth.token("ops"))
    assert mine.status_code == 200 and mine.get_json() == theirs.get_json()
    days = mine.get_json()
    assert len(days["days"]) == 30 and days["days"][-1]["requests"] == N and days["requests"] == N
    assert days["bucket"] == "builder" and days["last_served"] is not None


def test_a_library_image_never_served_has_thirty_empty_days(db, client, auth):
    image = library_image(db, "good/png16.png")
    days = client.get(f"/api/builder/media/{image.id}/deliveries", headers=auth.token("editor")).get_json()
    assert [day["requests"] for day in days["days"]] == [0] * 30 and days["last_served"] is None


@pytest.mark.parametrize("query", ["from=2026-13-01", "from=2026-02-01&to=2026-01-01",
                                   "from=2025-01-01&to=2026-01-01"])
def test_a_library_cards_bad_range_is_a_400(db, client, auth, query):
    image = library_image(db, "good/png16.png")
    answer = client.get(f"/api/builder/media/{image.id}/deliveries?{query}", headers=auth.token("editor"))
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid_range"


def test_a_library_card_chart_of_no_such_image_is_a_404_and_of_a_product_image_too(app, client, auth):
    doc = put(app)  # a product image: not in the library
    editor = auth.token("editor")
    for image_id in ("65a000000000000000000000", str(doc["_id"])):
        answer = client.get(f"/api/builder/media/{image_id}/deliveries", headers=editor)
        assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "media_not_found"
    assert client.get(f"/api/builder/media/{doc['_id']}/deliveries").status_code == 401


# --- what a visitor fetched: each version counted apart -----------------------------------


def replace_with(app, db, doc, name: str) -> dict:
    with app.app_context():
        upload = Library.Upload(name.split("/")[-1], image_bytes(name))
        replaced = AppMedia.on(db).library(Buckets.PRODUCTS).replace(doc["_id"], upload)
    assert replaced is not None and replaced.changed
    return record(db, Buckets.PRODUCTS, doc["_id"])


def test_after_a_replace_each_version_is_counted_apart_under_the_name_it_was_served_by(
        app, client, db, auth):
    """A large photo served N times, then replaced by a small PNG served once: the PNG's row is
    its own bytes, not the photo's N answers' under the PNG's name (ops saw a 349 KB alpha.png
    as 39 MB over 20 answers)."""
    old = put(app)
    for _ in range(N):
        assert client.get(url(old)).status_code == 200
    flush(app, db)
    new = replace_with(app, db, old, "good/alpha.png")
    sent = client.get(url(new))
    assert sent.status_code == 200
    flush(app, db)
    ops = auth.token("ops")
    rows = client.get("/api/admin/deliveries/top?by=bytes", headers=ops).get_json()["items"]
    mine = {row["current"]: row for row in rows if row["image"] == str(old["_id"])}
    assert set(mine) == {True, False}
    assert (mine[True]["filename"], mine[True]["requests"], mine[True]["bytes"]) == (
        "alpha.png", 1, len(sent.data))
    assert mine[True]["version"] == new["metadata"]["version"] and mine[True]["thumbnail"]
    assert (mine[False]["filename"], mine[False]["requests"], mine[False]["bytes"]) == (
        "progressive.jpg", N, N * old["length"])
    assert mine[False]["version"] == "" and mine[False]["thumbnail"] is None
    # The image's days keep each version's files apart too; its totals are the image's.
    days = client.get(f"/api/admin/deliveries/images/products/{old['_id']}", headers=ops).get_json()
    assert days["days"][-1]["by_file"] == {
        "original.jpeg": {"requests": N, "bytes": N * old["length"]},
        f"~{new['metadata']['version']}/original.png": {"requests": 1, "bytes": len(sent.data)}}
    assert (days["requests"], days["bytes"]) == (N + 1, N * old["length"] + len(sent.data))


