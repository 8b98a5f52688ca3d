"""The library's folder and tag counts are kept with every write (avenue/media/effects/facets.py): the
lists read them, never a scan of the library, and the reconciliation corrects any drift."""

from __future__ import annotations

import io
import threading

import pytest
from bson import ObjectId

from avenue.media import Buckets, Media
from avenue.media.effects import facets as facets_module
from avenue.media.effects.counters import recount as recount_bucket
from avenue.media.effects.facets import recount as recount_facets
from tests.helpers import image_bytes
from tests.support.client import MEDIA, uploaded
from tests.support.records import IMAGE, images, record

PHOTOS = ["good/progressive.jpg", "good/grayscale.jpg", "good/alpha.png", "good/panorama.jpg"]


def folders(client, headers) -> dict[str, int]:
    return {row["folder"]: row["count"] for row in client.get("/api/builder/folders", headers=headers)
            .get_json()["folders"]}


def tags(client, headers) -> dict[str, int]:
    answer = client.get("/api/builder/tags", headers=headers)
    return {row["tag"]: row["count"] for row in answer.get_json()["tags"]}


def test_counts_follow_uploads_moves_deletes_restores_and_replaces(client, db, editor):
    a = uploaded(client, editor, PHOTOS[0], to=MEDIA, folder="/shop", tags="red, sale")
    b = uploaded(client, editor, PHOTOS[1], to=MEDIA, folder="/shop", tags="red")
    uploaded(client, editor, PHOTOS[2], to=MEDIA)
    assert folders(client, editor) == {"/": 1, "/shop": 2}
    assert tags(client, editor) == {"red": 2, "sale": 1}
    moved = client.patch(f"/api/builder/media/{a['id']}", headers=editor,
                         json={"folder": "/blog", "tags": ["blue"]})
    assert moved.status_code == 200
    assert folders(client, editor) == {"/": 1, "/blog": 1, "/shop": 1}
    assert tags(client, editor) == {"blue": 1, "red": 1}
    assert client.delete(f"/api/builder/media/{b['id']}", headers=editor).status_code == 204
    assert folders(client, editor) == {"/": 1, "/blog": 1}
    assert tags(client, editor) == {"blue": 1}
    assert client.post(f"/api/trash/{b['id']}/restore", headers=editor).status_code == 200
    assert folders(client, editor) == {"/": 1, "/blog": 1, "/shop": 1}
    assert tags(client, editor) == {"blue": 1, "red": 1}
    # A replace keeps the folder and tags: nothing moves.
    replaced = client.put(f"/api/builder/media/{a['id']}", headers=editor,
                          data={"file": (io.BytesIO(image_bytes(PHOTOS[3])), "new.jpg")})
    assert replaced.status_code == 200
    assert folders(client, editor) == {"/": 1, "/blog": 1, "/shop": 1}
    # The same bytes again with other labels: the labels move, the image is counted once.
    uploaded(client, editor, PHOTOS[2], to=MEDIA, folder="/blog", tags="blue")
    assert folders(client, editor) == {"/blog": 2, "/shop": 1}
    assert tags(client, editor) == {"blue": 2, "red": 1}
    assert recount_facets(db)["drift"] == {}


def test_the_lists_read_the_kept_counts_not_the_library(client, db, editor, monkeypatch):
    uploaded(client, editor, PHOTOS[0], to=MEDIA, folder="/shop", tags="red")
    assert folders(client, editor) == {"/shop": 1}  # the first call may count a new store once

    def no_scan(*args, **kwargs):
        raise AssertionError("the library was scanned")

    monkeypatch.setattr(facets_module, "count_on_server", no_scan)
    assert folders(client, editor) == {"/shop": 1} and tags(client, editor) == {"red": 1}


def test_the_reconciliation_corrects_drift_and_a_store_from_before_is_counted_once(client, db, editor):
    uploaded(client, editor, PHOTOS[0], to=MEDIA, folder="/shop", tags="red")
    uploaded(client, editor, PHOTOS[1], to=MEDIA, folder="/blog")
    assert folders(client, editor) == {"/blog": 1, "/shop": 1}  # the first list counted the store
    db[facets_module.FACETS].update_one({"_id": f"{Buckets.BUILDER}|folder|/shop"}, {"$inc": {"count": 5}})
    db[facets_module.FACETS].insert_one({"_id": f"{Buckets.BUILDER}|tag|ghost", "bucket": Buckets.BUILDER,
                                         "kind": "tag",
                                         "value": "ghost", "count": 3})
    assert folders(client, editor)["/shop"] == 6
    result = recount_facets(db)
    assert result["applied"] and result["drift"] == {"folder:/shop": -5, "tag:ghost": -3}
    assert folders(client, editor) == {"/blog": 1, "/shop": 1} and tags(client, editor) == {"red": 1}
    # A store whose facets were never kept (made before they existed): the first list counts them.
    db.drop_collection(facets_module.FACETS)
    assert folders(client, editor) == {"/blog": 1, "/shop": 1}
    assert tags(client, editor) == {"red": 1}
    # Made before they existed, then written to before anyone listed them: the writes alone
    # would show only the new image; the first list counts everything.
    db.drop_collection(facets_module.FACETS)
    uploaded(client, editor, PHOTOS[2], to=MEDIA, folder="/shop")
    assert folders(client, editor) == {"/blog": 1, "/shop": 2}


def test_a_recount_that_a_write_raced_is_not_applied(db, client, editor, monkeypatch):
    uploaded(client, editor, PHOTOS[0], to=MEDIA, folder="/shop")
    assert recount_facets(db)["applied"]  # the first count: the version writes bump from now on
    real = facets_module.count_on_server

    def count_then_write(db_, bucket):
        truth = real(db_, bucket)
        facets_module.apply(db_, bucket, {("folder", "/late"): 1})  # a write lands meanwhile
        return truth

    monkeypatch.setattr(facets_module, "count_on_server", count_then_write)
    db[facets_module.FACETS].update_one({"_id": f"{Buckets.BUILDER}|folder|/shop"}, {"$inc": {"count": 1}})
    assert recount_facets(db)["applied"] is False
    monkeypatch.undo()
    assert recount_facets(db)["applied"] is True


def test_two_editors_moving_one_image_at_once_count_it_once(app, db, editor):
    media = uploaded(app.test_client(), editor, PHOTOS[0], to=MEDIA, folder="/start")
    barrier = threading.Barrier(4)
    answers = []

    def move(target: str) -> None:
        barrier.wait()
        answers.append(app.test_client().patch(f"/api/builder/media/{media['id']}", headers=editor,
                                               json={"folder": target}).status_code)

    threads = [threading.Thread(target=move, args=(f"/f{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(answers) <= {200, 409} and 200 in answers
    held = folders(app.test_client(), editor)
    doc = record(db, Buckets.BUILDER, ObjectId(media["id"]))
    assert held == {doc["metadata"]["folder"]: 1}
    assert recount_facets(db)["drift"] == {}


def test_a_move_that_loses_every_compare_and_set_is_409_and_moves_no_count(client, db, editor):
    """Another editor changes the image between each read and write of a move: after a few
    attempts the move gives up with 409 (try again) and the counts are not touched by it."""
    from avenue.media import Library
    from avenue.media.store.replace import ImageBusy

    media = uploaded(client, editor, PHOTOS[0], to=MEDIA, folder="/start")
    assert folders(client, editor) == {"/start": 1}
    real = images(db, Buckets.BUILDER)

    class Racing:  # the image records, with another editor's write after every read
        def __init__(self):
            self.moves = 0

        def find_one(self, *args, **kwargs):
            doc = real.find_one(*args, **kwargs)
            self.moves += 1
            real.update_one({"_id": doc["_id"]}, {"$set": {"metadata.tags": [f"t{self.moves}"]}})
            return doc

        def __getattr__(self, name):
            return getattr(real, name)

    racing = Racing()

    class RacingDb:
        def __getitem__(self, name):
            return racing if name == real.name else db[name]

        def __getattr__(self, name):
            return getattr(db, name)

    with pytest.raises(ImageBusy):
        Library(RacingDb(), Buckets.BUILDER, Media()).set_metadata(ObjectId(media["id"]), folder="/elsewhere")
    assert racing.moves == 5
    head = record(db, Buckets.BUILDER, ObjectId(media["id"]))
    assert head["metadata"]["folder"] == "/start"
    assert folders(client, editor) == {"/start": 1}


def test_a_pages_total_is_the_kept_count_where_there_is_one_and_a_count_otherwise(client, db, editor):
    uploaded(client, editor, PHOTOS[0], to=MEDIA, folder="/shop", tags="red, sale")
    uploaded(client, editor, PHOTOS[1], to=MEDIA, folder="/shop", tags="red")
    uploaded(client, editor, PHOTOS[2], to=MEDIA)
    recount_bucket(db, Buckets.BUILDER)  # the bucket's counters count once a reconciliation did

    def total(**query) -> tuple[int, bool]:
        answer = client.get("/api/builder/media", headers=editor, query_string={"per_page": 1, **query})
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()["total"], answer.get_json()["total_exact"]

    assert [total(), total(folder="/shop"), total(folder="/"), total(tag="red"), total(tag="sale"),
            total(tag=["red", "sale"]), total(folder="/shop", tag="sale"), total(q="progressive")] == [
        (3, True), (2, True), (1, True), (2, True), (1, True), (1, True), (1, True), (1, True)]
    # The kept figures answer, not a count: drift (a document written behind the app's back)
    # shows in the kept totals until the reconciliation, and in the counted ones at once.
    doc = images(db, Buckets.BUILDER).find_one({**IMAGE, "metadata.folder": "/shop"})
    images(db, Buckets.BUILDER).insert_one({**doc, "_id": ObjectId(), "metadata": {
        **doc["metadata"], "key": "drift", "name_prefixes": ["drift"]}})
    assert [total(), total(folder="/shop"), total(folder="/shop", tag="red")] == [
        (3, True), (2, True), (3, True)]
    recount_facets(db)
    assert total(folder="/shop") == (3, True)
