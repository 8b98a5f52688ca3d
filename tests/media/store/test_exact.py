"""Exact twins (avenue/media/store/exact.py): linked after the upload's answer (a worker that
dies first leaves the link to ``flask near-duplicates``), by their full-resolution pixels only
where there are candidates, across a bring from another bucket, to the same label in either
order."""

from __future__ import annotations

import io
import json

import pytest
from bson import ObjectId

from avenue.media import Buckets, Library, Media
from avenue.media.store.originals import Upload
from tests.support.client import MEDIA, upload
from tests.support.duplicates import OWED, groups, png, twins
from tests.support.records import IMAGE, images, record

pytestmark = pytest.mark.usefixtures("answers_wait_for_lookups")


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
    records = images(db, Buckets.BUILDER)
    # Answered: a candidate found (one indexed query), the link owed, nothing decoded for it.
    assert full_decodes == []
    assert [str(d["_id"]) for d in records.find(OWED)] == [second["id"]]
    assert all(d["metadata"].get("exact_group") is None for d in records.find(IMAGE))
    assert groups(client, editor) == []
    run(after_answer)
    assert len(full_decodes) == 2  # itself and its candidate, each once, after the answer
    [group] = groups(client, editor)
    assert [image["id"] for image in group["images"]] == [first["id"], second["id"]]
    assert records.count_documents(OWED) == 0


def test_a_link_whose_worker_died_after_the_answer_is_made_by_the_backfill(
        client, editor, db, runner, after_answer):
    first = answered(client, editor, png(8), "first.png")
    run(after_answer)
    second = answered(client, editor, png(8, "saved again"), "second.png")
    after_answer.clear()  # the worker died: its work after the answer never runs
    records = images(db, Buckets.BUILDER)
    assert [str(d["_id"]) for d in records.find(OWED)] == [second["id"]]
    result = runner.invoke(args=["near-duplicates", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["exact_owed"]["builder"] == 1 and report["exact"] == 1
    [group] = groups(client, editor)
    assert [image["id"] for image in group["images"]] == [first["id"], second["id"]]
    assert records.count_documents(OWED) == 0
    again = json.loads(runner.invoke(args=["near-duplicates", "--json"]).output)  # only what is left: nothing
    assert again["exact_owed"]["builder"] == 0 and again["exact"] == 0


def test_an_upload_without_candidates_owes_no_link_and_decodes_nothing(
        client, editor, db, after_answer, full_decodes):
    answered(client, editor, png(9), "one.png")
    answered(client, editor, png(10), "other.png")
    assert images(db, Buckets.BUILDER).count_documents({"metadata.exact_pending": {"$exists": True}}) == 0
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
    records = images(db, Buckets.BUILDER)
    assert full_decodes == [] and [str(d["_id"]) for d in records.find(OWED)] == [other["id"]]
    run(after_answer)
    [group] = groups(client, editor)
    assert [image["id"] for image in group["images"]] == [first["id"], other["id"]]
    assert records.count_documents(OWED) == 0


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
    assert images(db, Buckets.PRODUCTS).count_documents(OWED) == 0


def test_twins_linking_in_either_order_choose_the_same_label(client, editor, db):
    from avenue.media.store import exact

    first, second = twins(client, editor)
    records = images(db, Buckets.BUILDER)
    labels = []
    for linking in (first, second):  # as two uploads that both found the other unlabelled
        records.update_many({}, {"$unset": {"metadata.exact_group": ""}})
        assert exact.link(db, Buckets.BUILDER, record(db, Buckets.BUILDER, ObjectId(linking["id"])),
                          Library(db, Buckets.BUILDER, Media()).grouping._hold,
                          disabled=frozenset()) is not None
        labels.append({d["metadata"]["exact_group"] for d in records.find(IMAGE)})
    assert labels == [{ObjectId(first["id"])}, {ObjectId(first["id"])}]
