"""The builder library in bulk: many images moved, tagged, untagged, deleted (each protected
like a single delete) and restored in one call, by ids or by a filter; the unused filter, the
sort orders, and a product photo naming the other products that use it."""

from __future__ import annotations

import datetime as dt

from bson import ObjectId

from avenue.builder.service import MAX_BULK_IDS
from avenue.media import Buckets
from tests.helpers import error_body, form
from tests.support.client import media_upload as upload
from tests.support.records import images

PHOTOS = ("good/progressive.jpg", "good/grayscale.jpg", "good/cmyk.jpg", "good/photo_exif_rotated.jpg")
BULK = "/api/builder/media/bulk"


def uploaded(client, editor, *names: str, **labels) -> list[str]:
    ids = []
    for name in names:
        answer = upload(client, editor, name, **labels)
        assert answer.status_code == 201, answer.get_json()
        ids.append(answer.get_json()["id"])
    return ids


def listed(client, editor, **query) -> list[str]:
    answer = client.get("/api/builder/media", headers=editor, query_string=query)
    assert answer.status_code == 200, answer.get_json()
    return [item["id"] for item in answer.get_json()["items"]]


def counts(client, editor, facet: str) -> dict[str, int]:
    key = "folder" if facet == "folders" else "tag"
    rows = client.get(f"/api/builder/{facet}", headers=editor).get_json()[facet]
    return {row[key]: row["count"] for row in rows}


def bulk(client, editor, **body):
    answer = client.post(BULK, headers=editor, json=body)
    return answer


def use_on_page(client, editor, slug: str, media_id: str) -> None:
    answer = client.put(f"/api/builder/pages/{slug}", headers=editor,
                        json={"title": slug, "blocks": [{"type": "image", "media_id": media_id}]})
    assert answer.status_code == 200, answer.get_json()


def test_a_bulk_move_puts_every_image_in_the_folder_and_the_counts_follow(client, editor, db):
    a, b, c = uploaded(client, editor, *PHOTOS[:3], folder="/inbox")
    answer = bulk(client, editor, action="move", ids=[a, b], folder="/products/summer")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {"action": "move", "done": 2, "refused": [], "next": None}
    assert sorted(listed(client, editor, folder="/products/summer")) == sorted([a, b])
    assert listed(client, editor, folder="/inbox") == [c]
    assert counts(client, editor, "folders") == {"/inbox": 1, "/products/summer": 2}
    entry = db.audit_logs.find_one({"action": "builder_media_bulk"})
    assert entry["target"]["done"] == 2 and entry["target"]["refused"] == 0
    assert entry["target"]["operation"] == "move" and entry["target"]["folder"] == "/products/summer"


def test_bulk_tags_are_added_and_removed_keeping_each_image_s_other_tags(client, editor):
    a, b = uploaded(client, editor, *PHOTOS[:2], tags="red")
    tagged = bulk(client, editor, action="tag", ids=[a, b], tags=["Winter 2026", "sale"])
    assert tagged.get_json()["done"] == 2
    assert client.get(f"/api/builder/media/{a}", headers=editor).get_json()["tags"] == [
        "red", "winter 2026", "sale"]
    assert counts(client, editor, "tags") == {"red": 2, "sale": 2, "winter 2026": 2}
    assert bulk(client, editor, action="untag", ids=[a], tags=["red", "sale"]).get_json()["done"] == 1
    assert client.get(f"/api/builder/media/{a}", headers=editor).get_json()["tags"] == ["winter 2026"]
    assert counts(client, editor, "tags") == {"red": 1, "sale": 1, "winter 2026": 2}


def test_a_tag_that_would_pass_the_limit_is_refused_for_that_image_alone(client, editor):
    full, light = uploaded(client, editor, *PHOTOS[:2])
    client.patch(f"/api/builder/media/{full}", headers=editor, json={"tags": [f"t{n}" for n in range(20)]})
    answer = bulk(client, editor, action="tag", ids=[full, light], tags=["extra"]).get_json()
    assert answer["done"] == 1
    assert [(r["id"], r["code"]) for r in answer["refused"]] == [(full, "too_many_tags")]
    assert "extra" not in client.get(f"/api/builder/media/{full}", headers=editor).get_json()["tags"]


def test_a_bulk_delete_refuses_the_images_in_use_and_deletes_the_others(client, editor):
    used, free, other = uploaded(client, editor, *PHOTOS[:3])
    use_on_page(client, editor, "home", used)
    gone = str(ObjectId())
    answer = bulk(client, editor, action="delete", ids=[used, free, other, gone])
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["done"] == 2
    assert body["refused"] == [
        {"id": used, "code": "media_in_use", "message": body["refused"][0]["message"], "pages": ["home"]},
        {"id": gone, "code": "media_not_found", "message": "No builder media with this id."}]
    assert listed(client, editor) == [used]
    assert counts(client, editor, "folders") == {"/": 1}
    # Forced, like a single delete: the page loses its block.
    assert bulk(client, editor, action="delete", ids=[used], force=True).get_json()["done"] == 1
    assert client.get("/api/builder/pages/home", headers=editor).get_json()["blocks"] == []


def test_bulk_restore_brings_library_media_back_from_the_trash(client, editor, admin):
    a, b = uploaded(client, editor, *PHOTOS[:2], folder="/blog")
    assert bulk(client, editor, action="delete", ids=[a, b]).get_json()["done"] == 2
    assert listed(client, editor) == []
    answer = bulk(client, editor, action="restore", ids=[a, b, a]).get_json()
    assert answer["done"] == 2 and answer["refused"] == []
    assert sorted(listed(client, editor, folder="/blog")) == sorted([a, b])
    assert counts(client, editor, "folders") == {"/blog": 2}
    again = bulk(client, editor, action="restore", ids=[a]).get_json()
    assert again["refused"][0]["code"] == "trash_item_not_found"


def test_a_product_photo_in_the_trash_is_not_restored_by_the_library(client, editor, admin):
    assert client.post("/api/shop/products", json={"sku": "BULK-1", "name": "x", "price": 1},
                       headers=admin).status_code == 201
    added = client.post("/api/shop/products/BULK-1/images", headers=admin,
                        data={"images": [form(PHOTOS[0])["file"]]})
    photo = added.get_json()["product"]["images"][0]["id"]
    assert client.delete(f"/api/shop/products/BULK-1/images/{photo}", headers=admin).status_code == 200
    answer = bulk(client, editor, action="restore", ids=[photo]).get_json()
    assert answer["done"] == 0 and answer["refused"][0]["code"] == "trash_item_not_found"


def test_too_many_ids_are_refused_whole_and_nothing_is_done(client, editor, db):
    (a,) = uploaded(client, editor, PHOTOS[0], folder="/keep")
    answer = bulk(client, editor, action="move", ids=[a] + [str(ObjectId()) for _ in range(MAX_BULK_IDS)],
                  folder="/moved")
    assert answer.status_code == 400
    assert error_body(answer)["code"] == "too_many_ids" and error_body(answer)["max_ids"] == MAX_BULK_IDS
    assert listed(client, editor, folder="/keep") == [a]
    assert db.audit_logs.find_one({"action": "builder_media_bulk"}) is None


def test_malformed_bulk_calls_are_refused_in_words(client, editor):
    (a,) = uploaded(client, editor, PHOTOS[0])
    cases = [
        ({"action": "burn", "ids": [a]}, "invalid_bulk_action"),
        ({"action": "move", "ids": [a]}, "invalid_folder"),
        ({"action": "move", "ids": [a], "folder": "/../x"}, "invalid_folder"),
        ({"action": "tag", "ids": [a]}, "invalid_tags"),
        ({"action": "tag", "ids": [a], "tags": "red"}, "invalid_tags"),
        ({"action": "delete"}, "invalid_bulk"),
        ({"action": "delete", "ids": [a], "filter": {}}, "invalid_bulk"),
        ({"action": "delete", "ids": []}, "invalid_bulk"),
        ({"action": "delete", "ids": ["nope"]}, "invalid_bulk"),
        ({"action": "delete", "ids": [a], "force": "yes"}, "invalid_bulk"),
        ({"action": "delete", "ids": [a], "colour": "red"}, "invalid_bulk"),
        ({"action": "restore", "filter": {}}, "invalid_bulk"),
        ({"action": "delete", "filter": {"owner": "x"}}, "invalid_bulk"),
        ({"action": "delete", "filter": {"unused": "soon"}}, "invalid_unused"),
        ({"action": "delete", "filter": {"color": "red"}}, "invalid_color"),
        # Issue 42: a filter value of the wrong JSON type reached the colour parser (a 500).
        ({"action": "tag", "tags": ["x"], "filter": {"color": [None, None]}}, "invalid_color"),
        ({"action": "delete", "filter": {"folder": 7}}, "invalid_folder"),
        ({"action": "delete", "filter": {"tag": {"a": 1}}}, "invalid_tags"),
        ({"action": "delete", "filter": {"unused": True}}, "invalid_unused"),
        ({"action": "delete", "filter": None}, "invalid_bulk"),
        ({"action": "delete", "ids": [a], "after": 5}, "invalid_bulk"),
    ]
    for body, code in cases:
        answer = bulk(client, editor, **body)
        assert answer.status_code == 400, body
        assert error_body(answer)["code"] == code, body
    assert listed(client, editor) == [a]
    assert client.post(BULK, headers=editor, data="x").status_code == 400


def test_bulk_is_for_editors(client, auth):
    (a,) = uploaded(client, auth.token("editor"), PHOTOS[0])
    assert client.post(BULK, json={"action": "delete", "ids": [a]}).status_code == 401
    refused = client.post(BULK, headers=auth.token("ops"), json={"action": "delete", "ids": [a]})
    assert refused.status_code == 403


def test_a_filter_selects_every_matching_image_and_goes_on_past_a_call(client, editor, monkeypatch):
    from avenue.builder import service

    a, b, c = uploaded(client, editor, *PHOTOS[:3], tags="season")
    (d,) = uploaded(client, editor, PHOTOS[3])
    monkeypatch.setattr(service, "MAX_BULK_IDS", 2)
    monkeypatch.setattr(service, "BULK_PAGE", 1)
    first = bulk(client, editor, action="move", filter={"tag": "season"}, folder="/season").get_json()
    assert first["done"] == 2 and first["next"] is not None
    rest = bulk(client, editor, action="move", filter={"tag": "season"}, folder="/season",
                after=first["next"]).get_json()
    assert rest["done"] == 1 and rest["next"] is None
    assert sorted(listed(client, editor, folder="/season")) == sorted([a, b, c])
    assert listed(client, editor, folder="/") == [d]


def test_the_unused_filter_lists_images_no_page_uses_older_than_the_days_given(client, editor, db):
    used, free, fresh = uploaded(client, editor, *PHOTOS[:3])
    use_on_page(client, editor, "about", used)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    images(db, Buckets.BUILDER).update_many({"_id": {"$in": [ObjectId(used), ObjectId(free)]}},
                                            {"$set": {"uploadDate": old}})
    assert listed(client, editor, unused=30) == [free]
    assert sorted(listed(client, editor, unused=0)) == sorted([free, fresh])
    assert listed(client, editor, unused=60) == []
    body = client.get("/api/builder/media", headers=editor, query_string={"unused": 30}).get_json()
    assert body["total_exact"] is False
    for bad in ("-1", "x", "4000", "1.5", " ", "true", "\u0663", "\u00b2"):  # Arabic-Indic 3, superscript 2
        answer = client.get("/api/builder/media", headers=editor, query_string={"unused": bad})
        assert answer.status_code == 400 and error_body(answer)["code"] == "invalid_unused"
    # And deleted in bulk by that filter: the used one is never in it.
    answer = bulk(client, editor, action="delete", filter={"unused": 30}).get_json()
    assert answer["done"] == 1 and answer["refused"] == []
    assert sorted(listed(client, editor)) == sorted([used, fresh])


def test_the_library_sorts_by_date_name_and_size_and_pages_on_in_that_order(client, editor, db):
    ids = dict(zip(("b-progressive.jpg", "c-grayscale.jpg", "a-cmyk.jpg"), uploaded(
        client, editor, *PHOTOS[:3], folder="/sorted", tags="sorted"), strict=True))
    for name, media_id in ids.items():
        images(db, Buckets.BUILDER).update_one({"_id": ObjectId(media_id)}, {"$set": {"filename": name}})
    sizes = {media_id: client.get(f"/api/builder/media/{media_id}", headers=editor).get_json()["bytes"]
             for media_id in ids.values()}
    newest = listed(client, editor)
    assert listed(client, editor, sort="oldest") == newest[::-1]
    by_name = [ids["a-cmyk.jpg"], ids["b-progressive.jpg"], ids["c-grayscale.jpg"]]
    by_size = sorted(sizes, key=lambda media_id: sizes[media_id], reverse=True)
    for filters in ({}, {"folder": "/sorted"}, {"tag": "sorted"}):
        assert listed(client, editor, sort="name", **filters) == by_name
        assert listed(client, editor, sort="size", **filters) == by_size
        # A cursor goes on in the same order.
        first = client.get("/api/builder/media", headers=editor,
                           query_string={"sort": "name", "per_page": 2, **filters}).get_json()
        assert [item["id"] for item in first["items"]] == by_name[:2]
        assert listed(client, editor, sort="name", per_page=2, after=first["next"], **filters) == by_name[2:]
    for query in ({"sort": "largest"}, {"sort": "name", "q": "grayscale"},
                  {"sort": "size", "color": "#808080"}, {"sort": "oldest", "unused": "1"}):
        answer = client.get("/api/builder/media", headers=editor, query_string=query)
        assert answer.status_code == 400 and error_body(answer)["code"] == "invalid_sort", query


def test_a_product_photo_names_the_other_products_that_use_it(client, admin):
    for sku in ("SHARE-1", "SHARE-2", "SHARE-3"):
        assert client.post("/api/shop/products", json={"sku": sku, "name": sku, "price": 1},
                           headers=admin).status_code == 201
    for sku in ("SHARE-1", "SHARE-2"):
        added = client.post(f"/api/shop/products/{sku}/images", headers=admin,
                            data={"images": [form(PHOTOS[0])["file"]]})
        assert added.status_code == 201, added.get_json()
    assert client.post("/api/shop/products/SHARE-3/images", headers=admin,
                       data={"images": [form(PHOTOS[1])["file"]]}).status_code == 201
    first = client.get("/api/shop/products/SHARE-1").get_json()["images"]
    second = client.get("/api/shop/products/SHARE-2").get_json()["images"]
    assert first[0]["id"] == second[0]["id"]  # one stored photo, deduplicated
    assert first[0]["also_on"] == ["SHARE-2"] and second[0]["also_on"] == ["SHARE-1"]
    assert client.get("/api/shop/products/SHARE-3").get_json()["images"][0]["also_on"] == []


def test_a_session_s_bulk_call_needs_the_csrf_token(auth, client):
    (a,) = uploaded(client, auth.token("editor"), PHOTOS[0])
    session, csrf = auth.login("editor")
    refused = session.post(BULK, json={"action": "delete", "ids": [a]})
    assert refused.status_code == 403 and error_body(refused)["code"] == "csrf_failed"
    assert listed(client, auth.token("editor")) == [a]
    assert session.post(BULK, json={"action": "delete", "ids": [a]}, headers=csrf).get_json()["done"] == 1


def test_the_unused_list_pages_on_by_its_cursor(client, editor, db):
    used, *free = uploaded(client, editor, *PHOTOS)
    use_on_page(client, editor, "news", used)
    nine_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=9)
    images(db, Buckets.BUILDER).update_many({}, {"$set": {"uploadDate": nine_days_ago}})
    seen, after = [], None
    for _ in range(6):
        query = {"unused": 7, "per_page": 1, **({"after": after} if after else {})}
        body = client.get("/api/builder/media", headers=editor, query_string=query).get_json()
        seen += [item["id"] for item in body["items"]]
        after = body["next"]
        if after is None:
            break
    assert sorted(seen) == sorted(free) and after is None
    numbered = client.get("/api/builder/media", headers=editor, query_string={"unused": 7, "page": 2})
    assert numbered.status_code == 400 and error_body(numbered)["code"] == "invalid_pagination"
