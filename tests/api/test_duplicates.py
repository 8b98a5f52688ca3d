"""Exact duplicates of the builder's library (same bytes, same pixels) listed apart from
near-duplicates, linked after the upload's answer (a worker that dies first leaves the link to
``flask near-duplicates``), and merged into one image with every page re-pointed; undone from the
trash (avenue/media/store/exact.py, avenue/builder/service.py ``merge_media``, ``unmerge``)."""

from __future__ import annotations

import functools
import io
import json

import pytest
from bson import ObjectId
from PIL import PngImagePlugin

from avenue.db import PAGES
from avenue.media import Buckets, Library, Media
from avenue.media.store.originals import Upload
from tests.support.client import MEDIA, upload, uploaded
from tests.support.fixtures import scene

DUPLICATES = f"{MEDIA}/duplicates"
MERGE = f"{MEDIA}/merge"
OWED = {"metadata.exact_pending": True}

pytestmark = pytest.mark.usefixtures("answers_wait_for_lookups")


@functools.cache  # the same bytes every call: the PNG encode was a tenth of this module's CPU
def png(seed: int, note: str = "") -> bytes:
    """A PNG of ``scene(seed)``; ``note``: a text chunk, so the bytes differ and the pixels do not."""
    info = PngImagePlugin.PngInfo()
    if note:
        info.add_text("Comment", note)
    out = io.BytesIO()
    scene((600, 400), seed).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def media(client, headers, data: bytes, name: str) -> dict:
    return uploaded(client, headers, data=data, filename=name, to=MEDIA)


def groups(client, headers, url: str = DUPLICATES) -> list[dict]:
    answer = client.get(url, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["items"]


def put_page(client, headers, slug: str, ids: list[str]) -> None:
    answer = client.put(f"/api/builder/pages/{slug}", headers=headers, json={
        "title": slug, "blocks": [{"type": "image", "media_id": i} for i in ids]})
    assert answer.status_code in (200, 201), answer.get_json()


def page_ids(db, slug: str) -> tuple[list[str], list[ObjectId]]:
    page = db[PAGES].find_one({"slug": slug})
    return [b["media_id"] for b in page["blocks"]], page["media_ids"]


def merge(client, headers, keep: str, others: list[str]):
    return client.post(MERGE, headers=headers, json={"keep": keep, "others": others})


def twins(client, editor) -> tuple[dict, dict]:
    first = media(client, editor, png(1), "first.png")
    second = media(client, editor, png(1, "saved again"), "second.png")
    assert first["id"] != second["id"]  # other bytes: two images
    return first, second


# --- listed -----------------------------------------------------------------------------------


def test_same_pixels_in_other_files_are_one_exact_group_and_not_a_near_group(client, editor):
    first, second = twins(client, editor)
    media(client, editor, png(2), "other.png")
    [group] = groups(client, editor)
    assert group["kind"] == "pixels"
    assert [image["id"] for image in group["images"]] == [first["id"], second["id"]]
    assert groups(client, editor, f"{MEDIA}/near-duplicates") == []  # not repeated there


def encoded(picture, note: str = "") -> bytes:
    info = PngImagePlugin.PngInfo()
    if note:
        info.add_text("Comment", note)
    out = io.BytesIO()
    picture.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def dotted_pair():
    """A 600 px picture and the same with one pixel one level lighter: one thumb pixel averages
    9 of the picture's, so their 200 px thumbs are the same; their full-size pixels are not."""
    base = scene((600, 400), 7)
    dotted = base.copy()
    dotted.putpixel((300, 200), tuple(min(255, v + 1) for v in base.getpixel((300, 200))))
    return base, dotted


def test_pictures_alike_at_thumb_size_but_not_at_full_size_are_not_exact_duplicates(client, editor, db):
    """The thumb's key makes them candidates; their full resolution's pixels keep them apart. A
    re-save of the same pixels still joins its twin."""
    base, dotted = dotted_pair()
    first = media(client, editor, encoded(base), "label.png")
    other = media(client, editor, encoded(dotted), "label-dotted.png")
    files = db[f"{Buckets.BUILDER}.files"]
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


def refuse_decodes(monkeypatch) -> None:
    """The library's decode budget refuses every full-resolution decode (full), until
    ``monkeypatch.undo()``."""
    from avenue.errors import ServerBusy
    from avenue.media.store.library import Grouping

    def refused(self, decoding, working):
        raise ServerBusy("the decode budget is full")

    monkeypatch.setattr(Grouping, "_hold", refused)


def test_a_candidate_the_decode_budget_refuses_is_stored_and_left_unlinked(client, editor, db, runner,
                                                                           monkeypatch):
    """The full-resolution key never fails the upload that asked for it: a budget that refuses
    the decode (too small, or full) leaves the twins unlinked, and the upload is a 201; the
    link stays owed, and ``flask near-duplicates`` makes it once the budget allows."""
    refuse_decodes(monkeypatch)
    first = media(client, editor, png(4), "first.png")
    second = media(client, editor, png(4, "saved again"), "second.png")  # uploaded() asserts the 201
    assert groups(client, editor) == []
    # Refused is not "no twin": it still owes its link, and the backfill makes it once it can.
    assert [str(d["_id"]) for d in db[f"{Buckets.BUILDER}.files"].find(OWED)] == [second["id"]]
    monkeypatch.undo()
    assert runner.invoke(args=["near-duplicates"]).exit_code == 0
    [group] = groups(client, editor)
    assert [image["id"] for image in group["images"]] == [first["id"], second["id"]]
    assert db[f"{Buckets.BUILDER}.files"].count_documents(OWED) == 0


# --- linked after the answer ------------------------------------------------------------------


@pytest.fixture
def after_answer(app, monkeypatch) -> list:
    """The app as deployed (the work after an answer runs after it), that work kept here
    instead of started: a test runs it when it chooses (never: the worker died first)."""
    from avenue.media.serve import route

    held: list = []
    monkeypatch.setattr(route, "start_after_answer", held.extend)
    monkeypatch.setitem(app.config, "AVENUE_VARIANTS_AFTER_ANSWER", True)
    return held


@pytest.fixture
def full_decodes(monkeypatch) -> list:
    """Every full-resolution decode for an exact-duplicate key."""
    from avenue.media.ingest import near_hash

    seen: list = []
    real = near_hash.full_pixels_sha256

    def counting(data, hold, disabled):
        seen.append(len(data))
        return real(data, hold, disabled)

    monkeypatch.setattr(near_hash, "full_pixels_sha256", counting)
    return seen


def answered(client, headers, data: bytes, name: str) -> dict:
    """An upload to the library, answered and closed (what the server does once it is sent:
    the work after the answer is handed over)."""
    answer = upload(client, headers, data=data, filename=name, to=MEDIA)
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    answer.close()
    return body


def run(held: list) -> None:
    jobs, held[:] = list(held), []
    for job in jobs:
        job()


def test_a_twin_s_answer_waits_for_no_full_decode_and_the_link_follows_it(
        client, editor, db, after_answer, full_decodes):
    first = answered(client, editor, png(5), "first.png")
    run(after_answer)
    second = answered(client, editor, png(5, "saved again"), "second.png")
    files = db[f"{Buckets.BUILDER}.files"]
    # Answered: a candidate found (one indexed query), the link owed, nothing decoded for it.
    assert full_decodes == []
    assert [str(d["_id"]) for d in files.find(OWED)] == [second["id"]]
    assert all(d["metadata"].get("exact_group") is None for d in files.find({"metadata.role": "original"}))
    assert groups(client, editor) == []
    run(after_answer)
    assert len(full_decodes) == 2  # itself and its candidate, each once, after the answer
    [group] = groups(client, editor)
    assert [image["id"] for image in group["images"]] == [first["id"], second["id"]]
    assert files.count_documents(OWED) == 0


def test_a_link_whose_worker_died_after_the_answer_is_made_by_the_backfill(
        client, editor, db, runner, after_answer):
    first = answered(client, editor, png(8), "first.png")
    run(after_answer)
    second = answered(client, editor, png(8, "saved again"), "second.png")
    after_answer.clear()  # the worker died: its work after the answer never runs
    files = db[f"{Buckets.BUILDER}.files"]
    assert [str(d["_id"]) for d in files.find(OWED)] == [second["id"]]
    result = runner.invoke(args=["near-duplicates", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["exact_owed"]["builder"] == 1 and report["exact"] == 1
    [group] = groups(client, editor)
    assert [image["id"] for image in group["images"]] == [first["id"], second["id"]]
    assert files.count_documents(OWED) == 0
    again = json.loads(runner.invoke(args=["near-duplicates", "--json"]).output)  # only what is left: nothing
    assert again["exact_owed"]["builder"] == 0 and again["exact"] == 0


def test_an_upload_without_candidates_owes_no_link_and_decodes_nothing(
        client, editor, db, after_answer, full_decodes):
    answered(client, editor, png(9), "one.png")
    answered(client, editor, png(10), "other.png")
    assert db[f"{Buckets.BUILDER}.files"].count_documents({"metadata.exact_pending": {"$exists": True}}) == 0
    run(after_answer)
    assert full_decodes == [] and groups(client, editor) == []


def test_a_replace_with_a_twin_s_pixels_is_linked_after_its_answer(
        client, editor, db, after_answer, full_decodes):
    """Linked by its new picture, read from its content file, not by the old one's key."""
    first = answered(client, editor, png(11), "first.png")
    other = answered(client, editor, png(12), "other.png")
    answered(client, editor, png(12, "saved again"), "other-again.png")  # the old picture's twin
    run(after_answer)
    assert len(groups(client, editor)) == 1
    full_decodes.clear()
    replaced = client.put(f"{MEDIA}/{other['id']}", headers=editor,
                          data={"file": (io.BytesIO(png(11, "saved again")), "r.png")})
    assert replaced.status_code == 200, replaced.get_json()
    replaced.close()
    files = db[f"{Buckets.BUILDER}.files"]
    assert full_decodes == [] and [str(d["_id"]) for d in files.find(OWED)] == [other["id"]]
    run(after_answer)
    [group] = groups(client, editor)
    assert [image["id"] for image in group["images"]] == [first["id"], other["id"]]
    assert files.count_documents(OWED) == 0


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
        one = library.store(Upload("a.png", data), scope="one")
        two = library.store(Upload("a.png", data), scope="two")
    assert one.created and two.created and one.image.id != two.image.id
    [group] = groups(client, editor)
    assert group["kind"] == "bytes"
    assert {image["id"] for image in group["images"]} == {str(one.image.id), str(two.image.id)}



def test_an_image_brought_from_another_bucket_joins_its_twins_there(app, db):
    """A temporary upload attached to a product is brought into the products' bucket (its exact
    group left behind): it is linked to the twins it has there, as an upload there would be."""
    from avenue.media import Buckets
    from avenue.media.store import exact

    with app.app_context():
        products = Library(db, Buckets.PRODUCTS, Media())
        there = products.store(Upload("a.png", png(12)), kind="product")
        temporary = Library(db, Buckets.TEMP, Media()).store(Upload("b.png", png(12, "saved again")),
                                                             kind="temp")
        brought = products.storing.bring(temporary.image, kind="product")
        assert brought.created
        [group] = exact.groups(db, Buckets.PRODUCTS, after=None, limit=10)[0]
    assert group.kind == "pixels"
    assert [doc["_id"] for doc in group.docs] == [there.image.id, brought.image.id]
    assert db[f"{Buckets.PRODUCTS}.files"].count_documents(OWED) == 0

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


def test_twins_linking_in_either_order_choose_the_same_label(client, editor, db):
    from avenue.media.store import exact

    first, second = twins(client, editor)
    files = db[f"{Buckets.BUILDER}.files"]
    labels = []
    for linking in (first, second):  # as two uploads that both found the other unlabelled
        files.update_many({}, {"$unset": {"metadata.exact_group": ""}})
        assert exact.link(db, Buckets.BUILDER, files.find_one({"_id": ObjectId(linking["id"])}),
                          Library(db, Buckets.BUILDER, Media()).grouping._hold,
                          disabled=frozenset()) is not None
        labels.append({d["metadata"]["exact_group"] for d in files.find({"metadata.role": "original"})})
    assert labels == [{ObjectId(first["id"])}, {ObjectId(first["id"])}]


def test_duplicates_paging_refuses_numbered_pages_and_foreign_cursors(client, editor):
    assert client.get(DUPLICATES, headers=editor, query_string={"page": 2}).status_code == 400
    answer = client.get(DUPLICATES, headers=editor, query_string={"after": "junk"})
    assert answer.status_code == 400 and answer.is_json


def test_the_backfill_groups_images_stored_before_the_pixel_hash(client, editor, db, runner):
    first, second = twins(client, editor)
    db[f"{Buckets.BUILDER}.files"].update_many({}, {"$unset": {"metadata.pixels_sha256": "",
                                                        "metadata.exact_group": ""}})
    assert groups(client, editor) == []
    result = runner.invoke(args=["near-duplicates"])
    assert result.exit_code == 0, result.output
    assert [sorted(i["id"] for i in g["images"]) for g in groups(client, editor)] == \
        [sorted([first["id"], second["id"]])]


def linked_on_the_thumb(client, editor, db) -> tuple[dict, dict, dict]:
    """A picture, one differing from it in a dot, and a re-save of the first: one group as
    linked before the full-resolution key (the thumb's alone)."""
    base, dotted = dotted_pair()
    first = media(client, editor, encoded(base), "label.png")
    other = media(client, editor, encoded(dotted), "label-dotted.png")
    again = media(client, editor, encoded(base, "saved again"), "label-again.png")
    ids = [ObjectId(i["id"]) for i in (first, other, again)]
    db[f"{Buckets.BUILDER}.files"].update_many({"_id": {"$in": ids}}, {
        "$set": {"metadata.exact_group": ids[0]}, "$unset": {"metadata.pixels_full_sha256": ""}})
    return first, other, again


def test_the_backfill_splits_a_group_linked_on_the_thumb_alone(client, editor, db, runner):
    """A group linked before the full-resolution key (the thumb's alone) is checked: the
    picture whose full-size pixels differ leaves it, the re-save stays; a rerun changes nothing."""
    first, other, again = linked_on_the_thumb(client, editor, db)
    files = db[f"{Buckets.BUILDER}.files"]
    ids = [ObjectId(i["id"]) for i in (first, other, again)]
    assert [sorted(i["id"] for i in g["images"]) for g in groups(client, editor)] == \
        [sorted(str(i) for i in ids)]
    result = runner.invoke(args=["near-duplicates", "--json"])
    assert result.exit_code == 0, result.output
    assert '"split": 1' in result.output
    assert [[i["id"] for i in g["images"]] for g in groups(client, editor)] == [[first["id"], again["id"]]]
    assert files.find_one({"_id": ids[1]})["metadata"]["exact_group"] is None
    assert '"split": 0' in runner.invoke(args=["near-duplicates", "--json"]).output


def test_the_backfill_leaves_a_group_as_it_is_while_the_decode_budget_refuses_a_member(
        client, editor, db, runner, monkeypatch):
    """A member the budget cannot decode now is not unreadable: its group is not split (nor its
    twins parted) until a run can decode every member, and that run splits it as above."""
    first, other, again = linked_on_the_thumb(client, editor, db)
    ids = [ObjectId(i["id"]) for i in (first, other, again)]
    refuse_decodes(monkeypatch)
    result = runner.invoke(args=["near-duplicates", "--json"])
    assert result.exit_code == 0, result.output
    assert '"split": 0' in result.output
    assert [sorted(i["id"] for i in g["images"]) for g in groups(client, editor)] == \
        [sorted(str(i) for i in ids)]
    monkeypatch.undo()
    assert '"split": 1' in runner.invoke(args=["near-duplicates", "--json"]).output
    assert [[i["id"] for i in g["images"]] for g in groups(client, editor)] == [[first["id"], again["id"]]]


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
