"""Exact duplicates of the builder's library (same bytes, same pixels) listed apart from
near-duplicates, and merged into one image with every page re-pointed; undone from the trash
(avenue/builder/service.py ``merge_media``, ``unmerge``). How twins are linked, after the
upload's answer, is tested beside avenue/media/store/exact.py (tests/media/store/test_exact.py)."""

from __future__ import annotations

import io

import pytest
from bson import ObjectId

from avenue.db import PAGES
from avenue.media import Buckets, Library, Media
from tests.support.client import MEDIA, uploaded
from tests.support.duplicates import (
    DUPLICATES,
    dotted_pair,
    encoded,
    groups,
    linked_on_the_thumb,
    media,
    png,
    twins,
)
from tests.support.fixtures import scene
from tests.support.records import images

MERGE = f"{MEDIA}/merge"

pytestmark = pytest.mark.usefixtures("answers_wait_for_lookups")


def put_page(client, headers, slug: str, ids: list[str]) -> None:
    answer = client.put(f"/api/builder/pages/{slug}", headers=headers, json={
        "title": slug, "blocks": [{"type": "image", "media_id": i} for i in ids]})
    assert answer.status_code in (200, 201), answer.get_json()


def page_ids(db, slug: str) -> tuple[list[str], list[ObjectId]]:
    page = db[PAGES].find_one({"slug": slug})
    return [b["media_id"] for b in page["blocks"]], page["media_ids"]


def merge(client, headers, keep: str, others: list[str]):
    return client.post(MERGE, headers=headers, json={"keep": keep, "others": others})


# --- listed -----------------------------------------------------------------------------------


def test_same_pixels_in_other_files_are_one_exact_group_and_not_a_near_group(client, editor):
    first, second = twins(client, editor)
    media(client, editor, png(2), "other.png")
    [group] = groups(client, editor)
    assert group["kind"] == "pixels"
    assert [image["id"] for image in group["images"]] == [first["id"], second["id"]]
    assert groups(client, editor, f"{MEDIA}/near-duplicates") == []  # not repeated there


def test_pictures_alike_at_thumb_size_but_not_at_full_size_are_not_exact_duplicates(client, editor, db):
    """The thumb's key makes them candidates; their full resolution's pixels keep them apart. A
    re-save of the same pixels still joins its twin."""
    base, dotted = dotted_pair()
    first = media(client, editor, encoded(base), "label.png")
    other = media(client, editor, encoded(dotted), "label-dotted.png")
    files = images(db, Buckets.BUILDER)
    thumb_key = [files.find_one({"_id": ObjectId(i)})["metadata"]["pixels_sha256"]
                 for i in (first["id"], other["id"])]
    assert thumb_key[0] == thumb_key[1]  # the candidates the thumb finds
    assert groups(client, editor) == []
    again = media(client, editor, encoded(base, "saved again"), "label-again.png")
    [group] = groups(client, editor)
    assert [image["id"] for image in group["images"]] == [first["id"], again["id"]]
    keys = {i: files.find_one({"_id": ObjectId(i)})["metadata"]["pixels_full_sha256"]
            for i in (first["id"], other["id"], again["id"])}
    assert keys[first["id"]] == keys[again["id"]] != keys[other["id"]]


# --- linked and grouped -----------------------------------------------------------------------


def test_a_replaced_image_is_linked_by_its_new_picture_read_from_its_content_file(client, editor, db):
    """Not by the old picture's full-resolution key, nor by the head's own (empty) bytes."""
    first = media(client, editor, png(11), "first.png")
    other = media(client, editor, png(12), "other.png")
    media(client, editor, png(12, "saved again"), "other-again.png")  # the old picture's twin
    assert len(groups(client, editor)) == 1  # other keeps its old picture's full key
    replaced = client.put(f"{MEDIA}/{other['id']}", headers=editor,
                          data={"file": (io.BytesIO(png(11, "saved again")), "r.png")})
    assert replaced.status_code == 200, replaced.get_json()
    [group] = groups(client, editor)
    assert [image["id"] for image in group["images"]] == [first["id"], other["id"]]


def test_the_same_bytes_stored_twice_are_a_bytes_group(app, client, editor, db):
    data = png(3)
    with app.app_context():
        library = Library(db, Buckets.BUILDER, Media())
        one = library.store(Library.Upload("a.png", data), scope="one")
        two = library.store(Library.Upload("a.png", data), scope="two")
    assert one.created and two.created and one.image.id != two.image.id
    [group] = groups(client, editor)
    assert group["kind"] == "bytes"
    assert {image["id"] for image in group["images"]} == {str(one.image.id), str(two.image.id)}


def test_an_exact_group_with_a_near_copy_still_lists_as_a_near_group(client, editor):
    first, second = twins(client, editor)
    smaller = io.BytesIO()
    scene((600, 400), 1).resize((420, 280)).save(smaller, "PNG")
    near = media(client, editor, smaller.getvalue(), "smaller.png")
    near_groups = groups(client, editor, f"{MEDIA}/near-duplicates")
    assert [sorted(i["id"] for i in g["images"]) for g in near_groups] == \
        [sorted([first["id"], second["id"], near["id"]])]
    assert [sorted(i["id"] for i in g["images"]) for g in groups(client, editor)] == \
        [sorted([first["id"], second["id"]])]


def test_duplicates_paging_refuses_numbered_pages_and_foreign_cursors(client, editor):
    assert client.get(DUPLICATES, headers=editor, query_string={"page": 2}).status_code == 400
    answer = client.get(DUPLICATES, headers=editor, query_string={"after": "junk"})
    assert answer.status_code == 400 and answer.is_json


def test_the_backfill_groups_images_stored_before_the_pixel_hash(client, editor, db, runner):
    first, second = twins(client, editor)
    images(db, Buckets.BUILDER).update_many({}, {"$unset": {"metadata.pixels_sha256": "",
                                                         "metadata.exact_group": ""}})
    assert groups(client, editor) == []
    result = runner.invoke(args=["near-duplicates"])
    assert result.exit_code == 0, result.output
    assert [sorted(i["id"] for i in g["images"]) for g in groups(client, editor)] == \
        [sorted([first["id"], second["id"]])]


def test_the_backfill_splits_a_group_linked_on_the_thumb_alone(client, editor, db, runner):
    """A group linked before the full-resolution key (the thumb's alone) is checked: the
    picture whose full-size pixels differ leaves it, the re-save stays; a rerun changes nothing."""
    first, other, again = linked_on_the_thumb(client, editor, db)
    files = images(db, Buckets.BUILDER)
    ids = [ObjectId(i["id"]) for i in (first, other, again)]
    assert [sorted(i["id"] for i in g["images"]) for g in groups(client, editor)] == \
        [sorted(str(i) for i in ids)]
    result = runner.invoke(args=["near-duplicates", "--json"])
    assert result.exit_code == 0, result.output
    assert '"split": 1' in result.output
    assert [[i["id"] for i in g["images"]] for g in groups(client, editor)] == [[first["id"], again["id"]]]
    assert files.find_one({"_id": ids[1]})["metadata"]["exact_group"] is None
    assert '"split": 0' in runner.invoke(args=["near-duplicates", "--json"]).output


# --- merged and undone -----------------------------------------------------------------------


def test_a_merge_repoints_every_page_trashes_the_others_and_a_restore_undoes_it(client, editor, db):
    keep, other = twins(client, editor)
    third = media(client, editor, png(1, "third save"), "third.png")
    put_page(client, editor, "home", [other["id"], keep["id"], other["id"]])
    put_page(client, editor, "about", [third["id"]])
    put_page(client, editor, "shop", [keep["id"]])

    answer = merge(client, editor, keep["id"], [other["id"], third["id"]])
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {"keep": keep["id"], "merged": [
        {"id": other["id"], "merged": True, "pages": ["home"]},
        {"id": third["id"], "merged": True, "pages": ["about"]}]}
    assert page_ids(db, "home") == ([keep["id"]] * 3, [ObjectId(keep["id"])])
    assert page_ids(db, "about") == ([keep["id"]], [ObjectId(keep["id"])])
    assert client.get(f"{MEDIA}/{other['id']}", headers=editor).status_code == 404
    item = client.get(f"/api/trash/{other['id']}", headers=editor).get_json()
    assert item["references"]["merged_into"] == keep["id"]

    restored = client.post(f"/api/trash/{other['id']}/restore", headers=editor)
    assert restored.status_code == 200, restored.get_json()
    assert restored.get_json()["repointed"] == ["home"]
    # Only the blocks the merge moved: the one that showed the keeper still does.
    assert page_ids(db, "home") == ([other["id"], keep["id"], other["id"]],
                                    [ObjectId(other["id"]), ObjectId(keep["id"])])
    assert page_ids(db, "about") == ([keep["id"]], [ObjectId(keep["id"])])  # third: still merged
    assert page_ids(db, "shop") == ([keep["id"]], [ObjectId(keep["id"])])

    # The library's own restore (bulk) undoes a merge too.
    bulk = client.post(f"{MEDIA}/bulk", headers=editor, json={"action": "restore", "ids": [third["id"]]})
    assert bulk.status_code == 200, bulk.get_json()
    assert page_ids(db, "about") == ([third["id"]], [ObjectId(third["id"])])


def test_an_undo_leaves_a_block_edited_since_as_it_is(client, editor, db):
    keep, other = twins(client, editor)
    spare = media(client, editor, png(4), "spare.png")
    put_page(client, editor, "home", [other["id"]])
    assert merge(client, editor, keep["id"], [other["id"]]).status_code == 200
    put_page(client, editor, "home", [spare["id"]])  # the editor moved on
    restored = client.post(f"/api/trash/{other['id']}/restore", headers=editor)
    assert restored.status_code == 200 and restored.get_json()["repointed"] == []
    assert page_ids(db, "home") == ([spare["id"]], [ObjectId(spare["id"])])


# --- refused: a clear 4xx, nothing changed ---------------------------------------------------


def unchanged(client, editor, db, ids: list[str], page: tuple) -> None:
    for media_id in ids:
        assert client.get(f"{MEDIA}/{media_id}", headers=editor).status_code == 200, media_id
    assert page_ids(db, "home") == page


@pytest.mark.parametrize(("body", "code"), [
    ({"keep": "nope", "others": ["x"]}, "invalid_id"),
    ({"others": []}, "invalid_id"),
    ({"keep": "KEEP", "others": []}, "invalid_ids"),
    ({"keep": "KEEP", "others": "OTHER"}, "invalid_ids"),
    ({"keep": "KEEP", "others": ["OTHER", "zz"]}, "invalid_ids"),
    ({"keep": "KEEP", "others": ["OTHER", 7]}, "invalid_ids"),
    ({"keep": "KEEP", "others": ["OTHER", "OTHER"]}, "duplicate_ids"),
    ({"keep": "KEEP", "others": ["OTHER", "KEEP"]}, "keep_in_others"),
    ({"keep": "KEEP", "others": ["OTHER"], "force": True}, "unknown_fields"),
    ({"keep": "KEEP", "others": [str(ObjectId()) for _ in range(51)]}, "too_many_ids"),
    ({"keep": ["KEEP"], "others": ["OTHER"]}, "invalid_id"),
    ({"keep": "KEEP", "others": ["OTHER", None]}, "invalid_ids"),
    ({"keep": "KEEP", "others": ["OTHER", "OTHER_UPPER"]}, "duplicate_ids"),  # the same id twice
])
def test_a_malformed_merge_is_a_400_and_changes_nothing(client, editor, db, body, code):
    keep, other = twins(client, editor)
    put_page(client, editor, "home", [other["id"]])
    before = page_ids(db, "home")
    swap = {"KEEP": keep["id"], "OTHER": other["id"], "OTHER_UPPER": other["id"].upper()}
    sent = {k: swap.get(v, v) if isinstance(v, str) else [swap.get(i, i) for i in v] if isinstance(v, list)
            else v for k, v in body.items()}
    answer = client.post(MERGE, headers=editor, json=sent)
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == code, answer.get_json()
    unchanged(client, editor, db, [keep["id"], other["id"]], before)


def test_a_body_that_is_not_an_object_is_a_400(client, editor):
    for body in ([], "x", None):
        answer = client.post(MERGE, headers=editor, json=body)
        assert 400 <= answer.status_code < 500 and answer.is_json, answer.data


def test_an_unknown_id_or_another_buckets_image_is_a_404_and_nothing_is_merged(client, editor, admin, db):
    keep, other = twins(client, editor)
    put_page(client, editor, "home", [other["id"]])
    before = page_ids(db, "home")
    photo = uploaded(client, admin, data=png(5), filename="mine.png")  # the uploads bucket
    for stranger in (str(ObjectId()), photo["id"]):
        answer = merge(client, editor, keep["id"], [other["id"], stranger])
        assert answer.status_code == 404, answer.get_json()
        assert answer.get_json()["error"]["id"] == stranger
        unchanged(client, editor, db, [keep["id"], other["id"]], before)
        answer = merge(client, editor, stranger, [other["id"]])
        assert answer.status_code == 404
        unchanged(client, editor, db, [keep["id"], other["id"]], before)


@pytest.mark.parametrize("held", ["keep", "other"])
def test_a_merge_racing_a_delete_is_a_409_and_nothing_is_merged(app, client, editor, db, held):
    keep, other = twins(client, editor)
    put_page(client, editor, "home", [other["id"]])
    before = page_ids(db, "home")
    with app.app_context():
        library = Library(db, Buckets.BUILDER, Media())
        lease = library.take_delete_lease(ObjectId(keep["id"] if held == "keep" else other["id"]))
        assert lease is not None  # a delete of it is under way
        answer = merge(client, editor, keep["id"], [other["id"]])
        assert answer.status_code == 409, answer.get_json()
        assert answer.get_json()["error"]["code"] == "media_busy"
        unchanged(client, editor, db, [keep["id"], other["id"]], before)
        library.release_delete_lease(lease)
    # The leases the refused merge took were given back: the same merge now goes through.
    assert merge(client, editor, keep["id"], [other["id"]]).status_code == 200


def test_a_delete_after_a_refused_merge_is_not_blocked(client, editor):
    keep, other = twins(client, editor)
    answer = merge(client, editor, keep["id"], [other["id"], str(ObjectId())])
    assert answer.status_code == 404
    assert client.delete(f"{MEDIA}/{keep['id']}", headers=editor).status_code in (200, 204)
    assert client.delete(f"{MEDIA}/{other['id']}", headers=editor).status_code in (200, 204)


def test_only_editors_and_admins_may_merge(client, auth, editor):
    keep, other = twins(client, editor)
    ops = auth.token("ops")
    for headers in ({}, ops):
        answer = client.post(MERGE, headers=headers, json={"keep": keep["id"], "others": [other["id"]]})
        assert answer.status_code in (401, 403) and answer.is_json
        assert client.get(DUPLICATES, headers=headers).status_code in (401, 403)
    assert client.get(f"{MEDIA}/{other['id']}", headers=editor).status_code == 200


def test_a_page_that_keeps_changing_stops_the_merge_at_that_image_with_its_pages_put_back(
        client, editor, db, monkeypatch):
    from avenue.builder import service

    keep, other = twins(client, editor)
    third = media(client, editor, png(1, "third save"), "third.png")
    put_page(client, editor, "a", [other["id"]])
    put_page(client, editor, "b", [third["id"]])
    put_page(client, editor, "c", [third["id"]])
    real = service._set_blocks

    def busy_on_c(db_, slug, change):
        if slug == "c" and change([{"media_id": third["id"]}])[1]:  # the merge's move, not its undo
            raise service.Conflict("Page c kept changing.", code="page_busy", page="c")
        return real(db_, slug, change)

    monkeypatch.setattr(service, "_set_blocks", busy_on_c)
    answer = merge(client, editor, keep["id"], [other["id"], third["id"]])
    assert answer.status_code == 409, answer.get_json()
    error = answer.get_json()["error"]
    assert error["code"] == "page_busy" and error["merged"] == [other["id"]]
    assert page_ids(db, "a") == ([keep["id"]], [ObjectId(keep["id"])])  # merged before it
    assert page_ids(db, "b") == ([third["id"]], [ObjectId(third["id"])])  # put back
    assert page_ids(db, "c") == ([third["id"]], [ObjectId(third["id"])])
    assert client.get(f"{MEDIA}/{third['id']}", headers=editor).status_code == 200
    monkeypatch.setattr(service, "_set_blocks", real)  # its lease was given back: it merges now
    assert merge(client, editor, keep["id"], [third["id"]]).status_code == 200
