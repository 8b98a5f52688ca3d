"""The near-duplicate lookup beside an upload's write (avenue/media/store/near_duplicates.py:
Lookup): when it runs, what the answer waits for, what a failed lookup or store leaves owed,
and that a replace, an edit or a new focal point looks up once."""

from __future__ import annotations

import io
import json
import threading
import time

import pymongo
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from pymongo.errors import ServerSelectionTimeoutError

from avenue.media import Buckets
from avenue.media.store import exact, near_duplicates, originals
from tests.support.client import MEDIA, uploaded
from tests.support.near import OWED, jpeg, media, near_copy, photo, product_with
from tests.support.records import images

# The answers these tests read name their near-duplicates whatever the machine's load: the
# lookup is waited for up to its second. What a production answer waits has its own tests below.
pytestmark = pytest.mark.usefixtures("answers_wait_for_lookups")
PRODUCTION_FLOOR = near_duplicates.WAIT_FLOOR_SECONDS
PRODUCTION_CAP = near_duplicates.WAIT_SECONDS


def lookups(client, auth) -> dict[str, float]:
    """``avenue_near_duplicate_lookups_total`` by outcome, as /metrics shows it."""
    text = client.get("/metrics", headers=auth.token("ops")).get_data(as_text=True)
    return {sample.labels["outcome"]: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == "avenue_near_duplicate_lookups_total"}


def threads_only(backend) -> None:
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("threads need a real server (mongomock is not thread-safe: its lookups run inline)")


def test_the_lookup_runs_while_the_original_is_written(client, editor, backend, monkeypatch):
    threads_only(backend)
    # As on mongod, which runs the two side by side (the embedded database does not: next test).
    monkeypatch.setattr(near_duplicates, "_one_operation_at_a_time", lambda db: False)
    first = media(client, editor, jpeg(photo(31)), "first.jpg")
    looking = threading.Event()
    real_near, real_write = near_duplicates.near, originals._write

    def near(*args, **kwargs):
        looking.set()
        return real_near(*args, **kwargs)

    def write(*args, **kwargs):
        # Run one after the other, the lookup would begin only after this returned.
        assert looking.wait(30), "the lookup had not begun while the original was being written"
        return real_write(*args, **kwargs)

    monkeypatch.setattr(near_duplicates, "near", near)
    monkeypatch.setattr(originals, "_write", write)
    copy = media(client, editor, near_copy(photo(31)), "copy.jpg")
    assert [match["id"] for match in copy["near_duplicates"]] == [first["id"]]


def test_on_the_embedded_database_the_lookup_begins_once_the_original_is_written(
        client, editor, backend, monkeypatch):
    threads_only(backend)  # the wire-protocol backend is the embedded SecantusDB
    first = media(client, editor, jpeg(photo(35)), "first.jpg")
    written = threading.Event()
    real_near, real_write = near_duplicates.near, originals._write

    def near(*args, **kwargs):
        assert written.is_set(), "the lookup began before the original was written"
        return real_near(*args, **kwargs)

    def write(*args, **kwargs):
        try:
            return real_write(*args, **kwargs)
        finally:
            written.set()

    monkeypatch.setattr(near_duplicates, "near", near)
    monkeypatch.setattr(originals, "_write", write)
    copy = media(client, editor, near_copy(photo(35)), "copy.jpg")
    assert [match["id"] for match in copy["near_duplicates"]] == [first["id"]]


def held_lookups(monkeypatch, hold: float) -> tuple[threading.Event, threading.Event]:
    """Every lookup held until the test sets the first event (at most ``hold`` s: an answer that
    waited for its lookup would hang there), and the second set once a late lookup linked its
    group."""
    answered, linked = threading.Event(), threading.Event()
    real_near, real_link_late = near_duplicates.near, near_duplicates.Lookup._link_late

    def held_up(*args, **kwargs):
        answered.wait(hold)
        return real_near(*args, **kwargs)

    def link_late(self, done, created):
        try:
            real_link_late(self, done, created)
        finally:
            linked.set()

    monkeypatch.setattr(near_duplicates, "near", held_up)
    monkeypatch.setattr(near_duplicates.Lookup, "_link_late", link_late)
    return answered, linked


def test_on_the_embedded_database_the_answer_does_not_wait_for_the_lookup_and_its_group_is_linked_after(
        client, editor, auth, backend, monkeypatch):
    threads_only(backend)
    monkeypatch.setattr(near_duplicates, "_one_operation_at_a_time", lambda db: True)  # as on SecantusDB
    first = media(client, editor, jpeg(photo(36)), "first.jpg")
    monkeypatch.setattr(near_duplicates, "EMBEDDED_WAIT_SECONDS", 0.0)  # production's (the fixture waits)
    before = lookups(client, auth)
    answered, linked = held_lookups(monkeypatch, 30)
    began = time.monotonic()
    copy = media(client, editor, near_copy(photo(36)), "copy.jpg")
    took = time.monotonic() - began
    answered.set()
    assert took < 30 and "near_duplicates" not in copy
    counted = lookups(client, auth)
    assert counted["after"] == before.get("after", 0) + 1
    assert counted.get("late", 0) == before.get("late", 0)  # by design here, not news
    assert linked.wait(60)
    [group] = client.get(f"{MEDIA}/near-duplicates", headers=editor).get_json()["items"]
    assert {image["id"] for image in group["images"]} == {first["id"], copy["id"]}
    # What the console asks next: the image's own page names the match.
    shown = client.get(f"{MEDIA}/{copy['id']}", headers=editor).get_json()
    assert [match["id"] for match in shown["near_duplicates"]] == [first["id"]]


def test_a_lookup_that_fails_leaves_the_upload_stored_and_names_nothing(client, editor, auth, monkeypatch):
    media(client, editor, jpeg(photo(32)), "first.jpg")
    before = lookups(client, auth)

    def broken(*args, **kwargs):
        raise ServerSelectionTimeoutError("the lookup's server went away")

    monkeypatch.setattr(near_duplicates, "near", broken)
    copy = media(client, editor, near_copy(photo(32)), "copy.jpg")
    # Stored and answered, without a list it could not make ("none" would be false).
    assert "near_duplicates" not in copy
    assert lookups(client, auth).get("failed", 0) == before.get("failed", 0) + 1
    monkeypatch.undo()  # the library's page of it looks its near-duplicates up too
    assert client.get(f"{MEDIA}/{copy['id']}", headers=editor).status_code == 200


def test_an_image_whose_lookup_failed_owes_its_grouping_and_the_backfill_links_it(
        client, editor, db, runner, monkeypatch):
    first = media(client, editor, jpeg(photo(35)), "first.jpg")
    assert images(db, Buckets.BUILDER).count_documents(OWED) == 0  # its lookup answered: nothing owed

    def broken(*args, **kwargs):
        raise ServerSelectionTimeoutError("the lookup's server went away")

    monkeypatch.setattr(near_duplicates, "near", broken)
    copy = media(client, editor, near_copy(photo(35)), "copy.jpg")
    monkeypatch.undo()
    # Hashed (so the hash walk passes it by) but never compared: it says so.
    [owed] = images(db, Buckets.BUILDER).find(OWED)
    assert str(owed["_id"]) == copy["id"] and owed["metadata"]["phash"]
    assert client.get(f"{MEDIA}/near-duplicates", headers=editor).get_json()["items"] == []

    result = runner.invoke(args=["near-duplicates", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["owed"]["builder"] == 1 and report["linked"] == 1 and sum(report["computed"].values()) == 0
    [group] = client.get(f"{MEDIA}/near-duplicates", headers=editor).get_json()["items"]
    assert {image["id"] for image in group["images"]} == {first["id"], copy["id"]}
    assert images(db, Buckets.BUILDER).count_documents(OWED) == 0
    again = json.loads(runner.invoke(args=["near-duplicates", "--json"]).output)
    assert again["owed"]["builder"] == 0 and again["linked"] == 0


def test_a_worker_that_died_before_its_lookup_leaves_the_grouping_owed(client, editor, db, monkeypatch):
    """The flag is written with the original, so an upload whose process stopped after its
    write (here: a lookup that never runs) is found by the backfill all the same."""
    monkeypatch.setattr(near_duplicates.Lookup, "finish", lambda self, created: [None for _ in created])
    image = media(client, editor, jpeg(photo(36)), "lost.jpg")
    assert [str(d["_id"]) for d in images(db, Buckets.BUILDER).find(OWED)] == [image["id"]]


@pytest.mark.parametrize(("bound", "patches", "hold"), [
    # The cap: a lookup past WAIT_SECONDS (shortened) is never waited for.
    ("cap", {"WAIT_SECONDS": 0.05}, 60.0),
    # The share: with the production floor and a minute's cap, a 5 s lookup is not waited for
    # either (an answer that waited would come after those 5 s and name the near copy).
    ("share", {"WAIT_FLOOR_SECONDS": PRODUCTION_FLOOR, "WAIT_SECONDS": 60.0}, 5.0),
])
def test_a_lookup_past_its_wait_does_not_hold_the_answer_and_links_its_group_later(
        client, editor, auth, backend, monkeypatch, bound, patches, hold):
    threads_only(backend)
    # The wait of a server that runs the lookup beside the writes, as mongod does (on the
    # embedded database the answer does not wait at all: the test before the next one).
    monkeypatch.setattr(near_duplicates, "_one_operation_at_a_time", lambda db: False)
    seed = 33 if bound == "cap" else 34
    first = media(client, editor, jpeg(photo(seed)), "first.jpg")
    before = lookups(client, auth)
    for name, value in patches.items():
        monkeypatch.setattr(near_duplicates, name, value)
    answered, linked = held_lookups(monkeypatch, hold)
    copy = media(client, editor, near_copy(photo(seed)), "copy.jpg")
    answered.set()
    assert "near_duplicates" not in copy
    assert lookups(client, auth)["late"] == before.get("late", 0) + 1
    assert linked.wait(60)
    [group] = client.get(f"{MEDIA}/near-duplicates", headers=editor).get_json()["items"]
    assert {image["id"] for image in group["images"]} == {first["id"], copy["id"]}


@pytest.mark.parametrize(("writes_took", "waited"), [
    (0.0, 0.005), (0.05, 0.005), (0.1, 0.005), (0.14, 0.007), (4.0, 0.2), (18.0, 0.9), (30.0, 1.0)])
def test_an_answer_waits_for_its_lookup_a_twentieth_of_its_store_between_the_floor_and_the_cap(
        writes_took, waited, monkeypatch):
    monkeypatch.setattr(near_duplicates, "WAIT_FLOOR_SECONDS", PRODUCTION_FLOOR)
    monkeypatch.setattr(near_duplicates, "WAIT_SECONDS", PRODUCTION_CAP)
    assert near_duplicates.wait_past_writes(writes_took) == pytest.approx(waited)


def test_a_store_that_fails_links_nothing_and_stores_nothing(client, auth, db, monkeypatch):
    admin = auth.token("admin")
    assert product_with(client, admin, "FAIL-1", [(jpeg(photo(34)), "a.jpg")]).status_code == 201
    before = db[f"{Buckets.PRODUCTS}.files"].count_documents({})

    def down(*args, **kwargs):
        raise ServerSelectionTimeoutError("the database went away mid-upload")

    monkeypatch.setattr(originals, "_write", down)
    failed = client.post("/api/shop/products/FAIL-1/images", headers=admin,
                         data={"images": [(io.BytesIO(near_copy(photo(34))), "b.jpg")]})
    assert failed.status_code == 503 and failed.get_json()["error"]["code"] == "database_unavailable"
    assert db[f"{Buckets.PRODUCTS}.files"].count_documents({}) == before
    assert images(db, Buckets.PRODUCTS).count_documents({"metadata.near_group": {"$ne": None}}) == 0


def stoppable_lookups(monkeypatch) -> tuple[list[object], threading.Event, threading.Event]:
    """Each lookup's image id noted (``looked``), ``looking`` set when the first begins, which
    then runs on only once its store stops it (``Lookup.stop``: at most 60 s); ``ran`` set when
    the lookup's job ends."""
    looking, stopped, ran = threading.Event(), threading.Event(), threading.Event()
    looked: list[object] = []
    real_near, real_stop = near_duplicates.near, near_duplicates.Lookup.stop
    real_run = near_duplicates.Lookup._run

    def near(*args, **kwargs):
        looked.append(args[2]["_id"])
        looking.set()
        stopped.wait(60)  # still looking when the store fails
        return real_near(*args, **kwargs)

    def stop(self):
        real_stop(self)
        stopped.set()

    def run(self):
        try:
            return real_run(self)
        finally:
            ran.set()

    monkeypatch.setattr(near_duplicates, "near", near)
    monkeypatch.setattr(near_duplicates.Lookup, "stop", stop)
    monkeypatch.setattr(near_duplicates.Lookup, "_run", run)
    return looked, looking, ran


def test_a_store_that_fails_stops_its_lookup_before_the_next_upload_s(client, auth, db, backend, monkeypatch):
    threads_only(backend)
    # The lookup beside the writes, as on mongod (on the embedded database it begins after them).
    monkeypatch.setattr(near_duplicates, "_one_operation_at_a_time", lambda db: False)
    admin = auth.token("admin")
    assert product_with(client, admin, "FAIL-2", [(jpeg(photo(35)), "a.jpg")]).status_code == 201
    looked, looking, ran = stoppable_lookups(monkeypatch)

    def down(*args, **kwargs):
        assert looking.wait(60)  # (a lookup not begun yet is cancelled outright)
        raise ServerSelectionTimeoutError("the database went away mid-upload")

    monkeypatch.setattr(originals, "_write", down)
    failed = client.post("/api/shop/products/FAIL-2/images", headers=admin, data={"images": [
        (io.BytesIO(near_copy(photo(35))), "b.jpg"), (io.BytesIO(jpeg(photo(36))), "c.jpg")]})
    assert failed.status_code == 503
    assert ran.wait(60)
    assert len(looked) == 1  # the second upload was never looked up
    assert images(db, Buckets.PRODUCTS).count_documents({"metadata.near_group": {"$ne": None}}) == 0


def test_a_store_whose_twins_query_fails_stops_its_lookup_and_links_nothing(client, auth, db, backend,
                                                                            monkeypatch):
    """The originals are written, then the exact twins' query fails (the database went away):
    the lookup begun beside the writes stops (Library.store_with), so the second upload is
    never looked up and no group is linked; the answer is 503 and the written originals owe
    their grouping (``near_pending``) to ``flask near-duplicates``."""
    threads_only(backend)
    monkeypatch.setattr(near_duplicates, "_one_operation_at_a_time", lambda db: False)  # beside, as on mongod
    admin = auth.token("admin")
    assert product_with(client, admin, "FAIL-4", [(jpeg(photo(38)), "a.jpg")]).status_code == 201
    looked, looking, ran = stoppable_lookups(monkeypatch)

    def twins_down(*args, **kwargs):
        assert looking.wait(60)
        raise ServerSelectionTimeoutError("the database went away after the writes")

    monkeypatch.setattr(exact, "candidates", twins_down)  # the query before the answer
    failed = client.post("/api/shop/products/FAIL-4/images", headers=admin, data={"images": [
        (io.BytesIO(near_copy(photo(38))), "b.jpg"), (io.BytesIO(jpeg(photo(39))), "c.jpg")]})
    assert failed.status_code == 503 and failed.get_json()["error"]["code"] == "database_unavailable"
    assert ran.wait(60)
    assert len(looked) == 1  # stopped: the second upload was never looked up
    assert images(db, Buckets.PRODUCTS).count_documents({"metadata.near_group": {"$ne": None}}) == 0
    owed = images(db, Buckets.PRODUCTS).count_documents({near_duplicates.PENDING: True})
    assert owed == 2  # owed, not lost


def test_on_the_embedded_database_a_store_that_fails_looks_nothing_up(client, auth, db, backend, monkeypatch):
    threads_only(backend)
    admin = auth.token("admin")
    assert product_with(client, admin, "FAIL-3", [(jpeg(photo(37)), "a.jpg")]).status_code == 201
    looked = counting_lookups(monkeypatch)

    def down(*args, **kwargs):
        # Give a lookup begun beside the write (as before, and on mongod) a second to show up
        # in ``looked``: on the embedded database none begins before the write is done.
        deadline = time.monotonic() + 1
        while not looked and time.monotonic() < deadline:
            time.sleep(0.01)
        raise ServerSelectionTimeoutError("the database went away mid-upload")

    monkeypatch.setattr(originals, "_write", down)
    failed = client.post("/api/shop/products/FAIL-3/images", headers=admin,
                         data={"images": [(io.BytesIO(near_copy(photo(37))), "b.jpg")]})
    assert failed.status_code == 503
    assert looked == []
    assert images(db, Buckets.PRODUCTS).count_documents({"metadata.near_group": {"$ne": None}}) == 0


def counting_lookups(monkeypatch) -> list[str]:
    """Each near-duplicate lookup from now on, by the id of the image looked up."""
    calls: list[str] = []
    real = near_duplicates.near

    def near(db, bucket, doc, **options):
        calls.append(str(doc["_id"]))
        return real(db, bucket, doc, **options)

    monkeypatch.setattr(near_duplicates, "near", near)
    return calls


@pytest.mark.parametrize("path", [MEDIA, "/api/uploads"])
def test_a_replace_looks_its_new_picture_s_near_duplicates_up_once_and_answers_them(
        client, editor, path, monkeypatch):
    """The lookup that groups the new picture is the one its answer names (before, the view
    looked them up again: twice the index reads per replace)."""
    first = uploaded(client, editor, data=jpeg(photo(61)), filename="first.jpg", to=path)
    other = uploaded(client, editor, data=jpeg(photo(62)), filename="other.jpg", to=path)
    calls = counting_lookups(monkeypatch)
    replaced = client.put(f"{path}/{other['id']}", headers=editor,
                          data={"file": (io.BytesIO(near_copy(photo(61))), "r.jpg")})
    assert replaced.status_code == 200, replaced.get_json()
    assert [m["id"] for m in replaced.get_json()["near_duplicates"]] == [first["id"]]
    assert calls == [other["id"]]


def test_an_edit_looks_the_edited_picture_s_near_duplicates_up_once(client, editor, db, monkeypatch):
    first = media(client, editor, jpeg(photo(63)))
    other = media(client, editor, jpeg(photo(63).transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    calls = counting_lookups(monkeypatch)
    edited = client.put(f"{MEDIA}/{other['id']}/edits", headers=editor, json={"flip_horizontal": True})
    assert edited.status_code == 200, edited.get_json()
    # Flipped back: the first image's picture, grouped with it, named once looked up once.
    assert [m["id"] for m in edited.get_json()["near_duplicates"]] == [first["id"]]
    assert calls == [other["id"]] and images(db, Buckets.BUILDER).count_documents(OWED) == 0


def test_a_new_focal_point_keeps_the_picture_s_group_and_names_its_near_duplicates(
        client, editor, monkeypatch):
    """The same picture: nothing to group again; the answer still names its look-alikes."""
    first = media(client, editor, jpeg(photo(64)))
    copy = media(client, editor, near_copy(photo(64)))
    calls = counting_lookups(monkeypatch)
    moved = client.put(f"{MEDIA}/{copy['id']}/focal-point", headers=editor, json={"x": 0.2, "y": 0.3})
    assert moved.status_code == 200, moved.get_json()
    assert [m["id"] for m in moved.get_json()["near_duplicates"]] == [first["id"]]
    assert calls == [copy["id"]]  # the answer's lookup only
