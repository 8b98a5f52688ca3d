"""Stored renditions (avenue/media/store/renditions.py): asked for by URL (signed where they
must be), rendered once under a claim across workers and stored, removed with their image; and
under a byte budget: recency noted on every serving path and written in batches, the least
recently used evicted, the running total, storage-status, CDN purges of rendition URLs, and
backups that leave renditions out."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import runpy
import threading
import time
import types
from pathlib import Path

import pymongo
import pytest
from flask import current_app
from PIL import Image
from werkzeug.test import Client

from avenue import opsruns
from avenue.clock import as_utc
from avenue.media import AppMedia, Buckets, Media, UrlSigner
from avenue.media.buckets import RENDITIONS
from avenue.media.core import NO_PURGES
from avenue.media.effects import counters, purge
from avenue.media.effects.counters import of as counters_of
from avenue.media.effects.served import Deliveries
from avenue.media.serve import route
from avenue.media.serve.frontdoor import FrontDoor
from avenue.media.serve.signing import sign_rendition
from avenue.media.store import renditions
from avenue.media.store.originals import delete_image, store
from avenue.media.store.replace import replace_bytes
from avenue.media.transform import parse
from avenue.ops import backup as backup_module
from avenue.ops import rendition_budget
from avenue.presentation.objects import signer_from_config
from tests.helpers import Auth, expires_after, image_bytes, listening, make_app, passed_to_route
from tests.support.commands import Matching, Recorder, namespaces, on_database
from tests.support.on_request import limited, path
from tests.support.records import images

HOOK = {"AVENUE_CDN_PURGE_URL": "https://purge.example/hook", "AVENUE_CDN_PURGE_KEY": "k" * 32,
        "AVENUE_MEDIA_BASE_URL": "https://cdn.example"}


def put(app, name="good/progressive.jpg", bucket=Buckets.PRODUCTS, **kwargs) -> dict:
    """Store a fixture through store.originals (no look-alike lookup runs beside it, whose
    commands the tests counting a render's would see); its files document."""
    from avenue.db import get_db, get_mongo

    with app.app_context():
        get_mongo().ensure_indexes()
        return store(get_db(), bucket, image_bytes(name), filename=name.split("/")[-1], **kwargs).doc


def stored(db) -> list[dict]:
    return list(db[f"{RENDITIONS}.files"].find())


def by_spec(db) -> dict[str, dict]:
    return {doc["metadata"]["spec"]: doc for doc in stored(db)}


def used_at(db, spec: str, moment: dt.datetime) -> None:
    db[f"{RENDITIONS}.files"].update_one({"metadata.spec": spec}, {"$set": {"metadata.last_used": moment}})


def deliveries(app) -> Deliveries:
    return route.get_state(app).deliveries


def held_bytes(db) -> int:
    return counters.of(db, RENDITIONS)["bytes"]


def true_bytes(db) -> int:
    return sum(doc["length"] for doc in stored(db))


def _lease():
    from avenue.media.store.library import DELETE_LEASE

    return DELETE_LEASE


T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def room_for(size: int) -> int:
    """A budget that still holds ``size`` bytes once an eviction went under it by its margin."""
    return int(size / (1 - renditions.MARGIN)) + 10


# --- eviction ----------------------------------------------------------------------------


def test_eviction_keeps_the_most_recently_used_and_removes_the_least_down_to_the_budget(app, client, db):
    doc = put(app)
    for width in (160, 320, 480, 640):
        assert client.get(path(doc, f"w_{width}.webp")).status_code == 200
    # Used in this order, w_480 most recently of all.
    for hours, spec in enumerate(["w_640", "w_160", "w_320", "w_480"]):
        used_at(db, spec, T0 + dt.timedelta(hours=hours))
    sizes = {spec: found["length"] for spec, found in by_spec(db).items()}
    budget = sizes["w_320"] + sizes["w_480"] + 1  # room for the two most recent only
    with app.app_context():
        evicted = renditions.evict(db, budget, margin=0.0)
    assert set(by_spec(db)) == {"w_320", "w_480"}
    assert (evicted.files, evicted.bytes) == (2, sizes["w_640"] + sizes["w_160"])
    assert evicted.after == held_bytes(db) == true_bytes(db) <= budget
    assert db[f"{RENDITIONS}.chunks"].count_documents({}) == len(stored(db))


def test_eviction_stops_under_the_budget_less_its_margin(app, client, db):
    doc = put(app)
    for width in (160, 320, 480):
        client.get(path(doc, f"w_{width}.webp"))
    for hours, spec in enumerate(["w_160", "w_320", "w_480"]):
        used_at(db, spec, T0 + dt.timedelta(hours=hours))
    total = true_bytes(db)
    with app.app_context():
        evicted = renditions.evict(db, total - 1, margin=0.5)
    assert evicted.after <= (total - 1) * 0.5
    assert "w_480" in by_spec(db) or evicted.after == 0


def test_a_rendition_never_noted_as_used_goes_first_by_its_upload_date(app, client, db):
    doc = put(app)
    client.get(path(doc, "w_160.webp"))
    client.get(path(doc, "w_320.webp"))
    db[f"{RENDITIONS}.files"].update_one({"metadata.spec": "w_320"}, {"$unset": {"metadata.last_used": ""}})
    with app.app_context():
        renditions.evict(db, true_bytes(db) - 1, margin=0.0)
    assert set(by_spec(db)) == {"w_160"}


def test_under_the_budget_or_without_one_nothing_is_evicted(app, client, db):
    doc = put(app)
    client.get(path(doc, "w_160.webp"))
    with app.app_context():
        assert renditions.evict(db, true_bytes(db)).files == 0
        assert renditions.evict(db, 0).files == 0  # 0: unbounded
    assert len(stored(db)) == 1


def test_a_running_total_ahead_of_the_bucket_ends_the_eviction_instead_of_looping(app, client, db):
    doc = put(app)
    client.get(path(doc, "w_160.webp"))
    counters.record(db, RENDITIONS, {"bytes": 10_000_000})  # drift: more than is stored
    with app.app_context():
        evicted = renditions.evict(db, 1000, margin=0.0)
    assert stored(db) == [] and evicted.files == 1


def test_an_evicted_rendition_is_rendered_again_on_its_next_request_with_the_same_bytes(app, client, db):
    doc = put(app)
    first = client.get(path(doc, "w_320.webp"))
    assert first.status_code == 200
    with app.app_context():
        assert renditions.evict(db, 1, margin=0.0).files == 1
    assert stored(db) == []
    again = client.get(path(doc, "w_320.webp"))
    assert again.status_code == 200 and again.data == first.data
    assert again.headers["ETag"] == first.headers["ETag"]
    assert len(stored(db)) == 1


def test_a_worker_that_still_knows_an_evicted_rendition_renders_it_again_instead_of_404(app, client, db):
    doc = put(app)
    first = client.get(path(doc, "w_320.webp"))
    cache = route.get_state(app).cache
    # This worker keeps the rendition's representation but not its bytes (a larger one, or
    # pushed out of the byte cache), and has not yet read the eviction's tombstone.
    cache._blobs.clear()
    cache._blob_bytes = 0
    evicted = stored(db)[0]
    gone = evicted["_id"]
    db[f"{RENDITIONS}.files"].delete_one({"_id": gone})  # as another worker's evict() does
    db[f"{RENDITIONS}.chunks"].delete_many({"files_id": gone})
    renditions.forget_claims(db, [evicted])
    counters.record(db, RENDITIONS, {"files": 1, "bytes": first.content_length}, sign=-1)
    deliveries(app).take()
    again = client.get(path(doc, "w_320.webp"))
    assert again.status_code == 200 and again.data == first.data
    assert len(stored(db)) == 1 and stored(db)[0]["_id"] != gone
    noted = deliveries(app).take()  # the rendition served, once; not the evicted one
    served = (RENDITIONS, stored(db)[0]["_id"])
    assert list(noted) == [served] and noted[served].requests == 1


def test_a_rendition_whose_bytes_keep_going_is_found_twice_more_then_404(app, client, db, monkeypatch):
    doc = put(app)
    assert client.get(path(doc, "w_320.webp")).status_code == 200
    cache = route.get_state(app).cache
    cache._blobs.clear()  # the bytes are read from GridFS, where they are gone each time
    cache._blob_bytes = 0
    deliveries(app).take()
    primed = []
    monkeypatch.setattr(route.ChunkStream, "prime", lambda stream: primed.append(stream._args[2]) or False)
    assert client.get(path(doc, "w_320.webp")).status_code == 404
    # The representation this worker knew, then the stored rendition found again twice.
    assert len(primed) == 3 and len(set(primed)) == 1
    assert not deliveries(app).take()  # nothing was sent


# --- recency: noted in memory, written in batches -----------------------------------------


def test_hits_are_noted_in_memory_and_reach_the_database_in_one_batch(app, client, db, monkeypatch):
    doc = put(app)
    urls = [path(doc, f"w_{width}.webp") for width in (160, 320, 480)]
    for url in urls:
        client.get(url)
    deliveries(app).take()  # the renders' own notes
    before = {spec: found["metadata"]["last_used"] for spec, found in by_spec(db).items()}
    writes = []
    real = type(db[f"{RENDITIONS}.files"]).update_many

    def counted(self, query, *args, **kwargs):
        if self.name == f"{RENDITIONS}.files":
            writes.append(len(query["_id"]["$in"]))
        return real(self, query, *args, **kwargs)

    monkeypatch.setattr(type(db[f"{RENDITIONS}.files"]), "update_many", counted)
    for _ in range(10):
        for url in urls:
            assert client.get(url).status_code == 200
    assert by_spec(db)["w_160"]["metadata"]["last_used"] == before["w_160"]  # nothing written yet
    assert deliveries(app).pending() == 3
    with app.app_context():
        assert deliveries(app).flush(db)["renditions"] in (1, 2)  # a minute may turn
    assert sum(writes) == 3 and len(writes) <= 2  # 30 requests, one write (two across a minute)
    after = by_spec(db)
    assert all(after[spec]["metadata"]["last_used"].replace(tzinfo=None) >=
               before[spec].replace(tzinfo=None) for spec in after)
    with app.app_context():
        assert deliveries(app).flush(db) == {}  # nothing new: no write at all
    assert sum(writes) == 3


def test_the_front_door_notes_the_renditions_it_answers_too(app, client, db):
    doc = put(app)
    url = path(doc, "w_320.webp")
    assert client.get(url).data  # rendered, and read whole: now in this worker's cache
    deliveries(app).take()
    used_at(db, "w_320", T0)

    def flask_must_not_run(environ, start_response):
        pytest.fail("the front door passed the rendition on to Flask")

    front = Client(FrontDoor(app, flask_must_not_run))
    for _ in range(5):
        assert front.get(url).status_code == 200
    etag = client.get(url).headers["ETag"]
    assert front.get(url, headers={"If-None-Match": etag}).status_code == 304
    noted = deliveries(app).take()
    (key, seen), = noted.items()
    assert key == (RENDITIONS, stored(db)[0]["_id"]) and seen.image == (Buckets.PRODUCTS, doc["_id"])
    assert seen.requests == 6  # five from the front door, one from the route (a 304 is none)
    deliveries(app).served(*key, seen.image)  # put back, then written
    with app.app_context():
        deliveries(app).flush(db)
    assert stored(db)[0]["metadata"]["last_used"].replace(tzinfo=None) > T0.replace(tzinfo=None)


def test_a_flush_never_moves_last_used_back(app, client, db):
    doc = put(app)
    client.get(path(doc, "w_320.webp"))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    used_at(db, "w_320", later)
    client.get(path(doc, "w_320.webp"))
    with app.app_context():
        deliveries(app).flush(db)
    kept = stored(db)[0]["metadata"]["last_used"].replace(tzinfo=None)
    assert abs(kept - later.replace(tzinfo=None)) < dt.timedelta(milliseconds=1)


def test_a_flush_for_a_rendition_removed_meanwhile_writes_nothing_and_fails_nothing(app, client, db):
    doc = put(app)
    client.get(path(doc, "w_320.webp"))
    with app.app_context():
        delete_image(db, Buckets.PRODUCTS, doc["_id"], purges=AppMedia.of(current_app).core.purges)
        assert deliveries(app).flush(db)["renditions"] == 1
    assert stored(db) == []


def test_a_failing_sink_loses_its_batch_alone_and_says_so(db, caplog):
    written = []

    def broken(db, taken):
        raise RuntimeError("database away")

    def kept(db, taken):
        written.append(dict(taken))
        return 1

    tally = Deliveries({"broken": broken, "kept": kept})
    tally.served(RENDITIONS, "a", (Buckets.PRODUCTS, "img"), 10)
    with caplog.at_level(logging.ERROR):
        assert tally.flush(db) == {"broken": 0, "kept": 1}
    assert "delivery sink broken failed" in caplog.text
    assert list(written[0]) == [(RENDITIONS, "a")] and tally.pending() == 0


def test_a_tally_nobody_flushes_stops_growing_at_its_bound():
    tally = Deliveries(max_pending=2)
    for name in ("a", "b", "c"):
        tally.served(RENDITIONS, name, (Buckets.PRODUCTS, "img"))
    tally.served(RENDITIONS, "a", (Buckets.PRODUCTS, "img"), 5)  # a file already noted is still counted
    assert tally.pending() == 2 and tally.dropped == 1
    assert tally.take()[(RENDITIONS, "a")].requests == 2


def test_answers_wait_in_a_deque_until_a_fold_and_a_long_wait_folds_itself():
    tally = Deliveries(fold_at=3)
    tally.served(RENDITIONS, "a", (Buckets.PRODUCTS, "img"), 5)
    tally.served(RENDITIONS, "a", (Buckets.PRODUCTS, "img"), 5)
    assert len(tally._answers) == 2 and tally._tally == {}  # no lock, no dict update per answer
    tally.served(RENDITIONS, "b", (Buckets.PRODUCTS, "img"), 1)  # the third answer folds all three
    assert len(tally._answers) == 0
    taken = tally.take()
    assert (taken[(RENDITIONS, "a")].requests, taken[(RENDITIONS, "a")].bytes) == (2, 10)
    assert taken[(RENDITIONS, "b")].requests == 1


def test_threads_answering_while_flushes_run_are_each_counted_exactly_once():
    tally = Deliveries(fold_at=50)
    threads, per_thread = 8, 5_000
    taken: list[dict] = []
    stop = threading.Event()

    def flusher():
        while not stop.is_set():
            taken.append(tally.take())
        taken.append(tally.take())

    def answer(n):
        for _ in range(per_thread):
            tally.served(RENDITIONS, n % 2, (Buckets.PRODUCTS, "img"), 3)

    folding = threading.Thread(target=flusher)
    folding.start()
    workers = [threading.Thread(target=answer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    folding.join()
    requests = sum(found.requests for batch in taken for found in batch.values())
    sent = sum(found.bytes for batch in taken for found in batch.values())
    assert (requests, sent) == (threads * per_thread, threads * per_thread * 3)


def test_each_worker_flushes_from_a_background_job(app):
    job = route.start_delivery_flush(app)
    try:
        assert job.is_alive() and job.every == route.FLUSH_SECONDS
    finally:
        job.stop()


def worker_exit(monkeypatch, tmp_path):
    """gunicorn.conf.py's ``worker_exit`` (reading the file prepares Prometheus' folder: one
    marked as prepared already, undone after the test)."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("AVENUE_METRICS_PREPARED_BY", str(os.getpid()))
    hook = runpy.run_path(str(Path(__file__).resolve().parents[3] / "gunicorn.conf.py"))["worker_exit"]
    return lambda app: hook(None, types.SimpleNamespace(wsgi=app))


def test_an_exiting_worker_writes_what_it_noted(app, client, db, monkeypatch, tmp_path):
    doc = put(app)
    client.get(path(doc, "w_320.webp"))
    used_at(db, "w_320", T0)
    client.get(path(doc, "w_320.webp"))
    worker_exit(monkeypatch, tmp_path)(app)
    assert deliveries(app).pending() == 0
    assert stored(db)[0]["metadata"]["last_used"].replace(tzinfo=None) > T0.replace(tzinfo=None)


def test_an_exiting_worker_whose_flush_fails_still_exits(app, client, monkeypatch, tmp_path):
    from avenue.media.serve import route

    def away(app):
        raise RuntimeError("no database")

    monkeypatch.setattr(route, "flush_deliveries", away)
    worker_exit(monkeypatch, tmp_path)(app)  # no exception


# --- the running total and fsck ----------------------------------------------------------


def test_the_running_total_stays_right_across_store_remove_and_evict(app, client, db):
    doc = put(app)
    other = put(app, "good/grayscale.jpg")
    for width in (160, 320, 480):
        client.get(path(doc, f"w_{width}.webp"))
    client.get(path(other, "w_320.webp"))
    assert held_bytes(db) == true_bytes(db) and counters.of(db, RENDITIONS)["files"] == 4
    with app.app_context():
        delete_image(db, Buckets.PRODUCTS, other["_id"], purges=AppMedia.of(current_app).core.purges)
    assert held_bytes(db) == true_bytes(db) and counters.of(db, RENDITIONS)["files"] == 3
    with app.app_context():
        renditions.evict(db, true_bytes(db) - 1, margin=0.0)
    assert held_bytes(db) == true_bytes(db) and counters.of(db, RENDITIONS)["files"] == len(stored(db))
    assert counters.of(db, RENDITIONS)["chunks"] == db[f"{RENDITIONS}.chunks"].count_documents({})
    with app.app_context():
        assert renditions.total(db) == {"files": len(stored(db)), "bytes": true_bytes(db)}


def test_fsck_finds_a_wrong_total_and_repair_counts_it_again(app, client, db, media_core):
    doc = put(app)
    client.get(path(doc, "w_320.webp"))
    counters.record(db, RENDITIONS, {"bytes": 5000, "files": 2})
    with app.app_context():
        report = AppMedia.on(db).maintenance.fsck()
    (problem,) = report.total_problems
    assert problem["code"] == "rendition_total" and problem["figures"]["files"] == {"held": 3, "counted": 1}
    assert not report.ok
    with app.app_context():
        repaired = AppMedia.on(db, media_core).maintenance.fsck(repair=True)
    assert [a["action"] for a in repaired.repairs] == ["total_recounted"]
    assert repaired.ok and held_bytes(db) == true_bytes(db)


def test_fsck_does_not_call_a_total_wrong_that_a_store_moved_while_it_counted(app, client, db, monkeypatch):
    from avenue.media.upkeep import fsck as fsck_module

    doc = put(app)
    client.get(path(doc, "w_320.webp"))
    real = fsck_module.count_bucket

    def counted_while_a_rendition_is_stored(db, bucket, **kwargs):
        found = real(db, bucket, **kwargs)
        counters.record(db, RENDITIONS, {"files": 1, "bytes": 100})  # a store lands meanwhile
        return found

    monkeypatch.setattr(fsck_module, "count_bucket", counted_while_a_rendition_is_stored)
    with app.app_context():
        assert fsck_module.check(db).total_problems == []


def test_a_right_total_is_no_fsck_problem(app, client, db, runner):
    doc = put(app)
    client.get(path(doc, "w_320.webp"))
    result = runner.invoke(args=["fsck", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total_problems"] == []


def test_the_status_reconciliation_recounts_the_renditions_total(app, client, db, referrers):
    from avenue.status import reconcile

    doc = put(app)
    client.get(path(doc, "w_320.webp"))
    counters.record(db, RENDITIONS, {"bytes": 77})
    with app.app_context():
        result = reconcile(db, app.config, referrers)
    assert result[RENDITIONS]["drift"]["bytes"] == -77 and held_bytes(db) == true_bytes(db)


# --- the budget job -----------------------------------------------------------------------


def test_the_budget_job_evicts_counts_audits_and_keeps_its_last_eviction(app, client, db):
    from avenue.metrics import RENDITION_BYTES_EVICTED, RENDITIONS_EVICTED

    doc = put(app)
    client.get(path(doc, "w_160.webp"))
    client.get(path(doc, "w_320.webp"))
    used_at(db, "w_160", T0)
    keep = by_spec(db)["w_320"]["length"]
    before = (RENDITIONS_EVICTED._value.get(), RENDITION_BYTES_EVICTED._value.get())
    with app.app_context():
        evicted = rendition_budget.enforce(db, room_for(keep))
    assert set(by_spec(db)) == {"w_320"} and evicted.files == 1
    assert RENDITIONS_EVICTED._value.get() - before[0] == 1
    assert RENDITION_BYTES_EVICTED._value.get() - before[1] == evicted.bytes
    entry = db.audit_logs.find_one({"action": "renditions_evicted"})
    assert entry["target"]["renditions"] == 1 and entry["target"]["bytes"] == evicted.bytes
    run = opsruns.last_run(db, opsruns.RENDITION_EVICTIONS)
    assert run["counts"] == {"evicted": 1, "bytes_freed": evicted.bytes, "bytes_after": keep}


def test_a_budget_tick_that_evicts_nothing_leaves_no_trace(app, client, db):
    doc = put(app)
    client.get(path(doc, "w_160.webp"))
    with app.app_context():
        assert rendition_budget.enforce(db, 10**9).files == 0
    assert db.audit_logs.count_documents({"action": "renditions_evicted"}) == 0
    assert opsruns.last_run(db, opsruns.RENDITION_EVICTIONS) is None


def test_one_instance_evicts_at_a_time(app, client, db):
    doc = put(app)
    client.get(path(doc, "w_160.webp"))
    app.config["AVENUE_RENDITION_BUDGET_BYTES"] = 1
    holder = rendition_budget.lease(db)
    assert holder.take()  # another instance's tick
    job = rendition_budget.start_budget(app)
    try:
        job.stop()
        job.run_once()
        assert len(stored(db)) == 1  # not ours to run
        holder.release()
        job.run_once()
        assert stored(db) == []
    finally:
        job.stop()


@pytest.mark.parametrize("value", [-1])
def test_a_negative_budget_stops_the_start(app_factory, value):
    with pytest.raises(RuntimeError, match="AVENUE_RENDITION_BUDGET_BYTES"):
        app_factory(AVENUE_RENDITION_BUDGET_BYTES=value)


def test_the_job_and_storage_status_use_the_configurations_one_default(monkeypatch):
    """The budget job fell back to 0 (unbounded) where the configuration's default is 10 GiB:
    both now read the app's configuration, which always holds it."""
    from avenue.config import from_environment

    monkeypatch.delenv("AVENUE_RENDITION_BUDGET_BYTES", raising=False)
    config = from_environment()
    assert (rendition_budget.budget_from_config(config) == config["AVENUE_RENDITION_BUDGET_BYTES"]
            == 10 * 1024**3)
    with pytest.raises(KeyError):
        rendition_budget.budget_from_config({})  # no silent default of its own


def test_without_a_budget_no_job_starts(app_factory):
    assert rendition_budget.start_budget(app_factory(AVENUE_RENDITION_BUDGET_BYTES=0)) is None


# --- storage-status ------------------------------------------------------------------------


def test_storage_status_shows_the_renditions_against_their_budget(app_factory):
    from avenue.db import get_mongo

    app = app_factory(AVENUE_RENDITION_BUDGET_BYTES=1_000_000)
    client = app.test_client()
    ops = Auth(app).token("admin")
    doc = put(app)
    client.get(path(doc, "w_160.webp"))
    client.get(path(doc, "w_320.webp"))
    used_at(get_mongo(app).db, "w_160", T0)

    db = get_mongo(app).db
    report = client.get("/api/shop/debug/storage-status", headers=ops).get_json()
    shown = report["renditions"]
    assert (shown["files"], shown["bytes"], shown["budget_bytes"]) == (2, true_bytes(db), 1_000_000)
    assert shown["percent"] == round(100 * true_bytes(db) / 1_000_000, 2)
    assert shown["last_eviction"] is None
    with app.app_context():
        evicted = rendition_budget.enforce(db, room_for(by_spec(db)["w_320"]["length"]))
    shown = client.get("/api/shop/debug/storage-status", headers=ops).get_json()["renditions"]
    assert shown["files"] == 1 and shown["last_eviction"]["renditions"] == 1
    assert shown["last_eviction"]["bytes"] == evicted.bytes and shown["last_eviction"]["at"]


def test_storage_status_without_a_budget_shows_no_percent(app_factory):
    app = app_factory(AVENUE_RENDITION_BUDGET_BYTES=0)
    shown = app.test_client().get("/api/shop/debug/storage-status",
                                  headers=Auth(app).token("admin")).get_json()["renditions"]
    assert shown == {"files": 0, "bytes": 0, "budget_bytes": None, "percent": None, "last_eviction": None}


def test_metrics_export_the_renditions_bytes_budget_and_last_eviction(app_factory):
    from prometheus_client.parser import text_string_to_metric_families

    from avenue.db import get_mongo

    app = app_factory(AVENUE_RENDITION_BUDGET_BYTES=1_000_000)
    client = app.test_client()
    doc = put(app)
    client.get(path(doc, "w_160.webp"))
    client.get(path(doc, "w_320.webp"))
    db = get_mongo(app).db
    used_at(db, "w_160", T0)
    with app.app_context():
        rendition_budget.enforce(db, room_for(by_spec(db)["w_320"]["length"]))
    answer = client.get("/metrics", headers=Auth(app).token("ops"))
    samples = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
               for family in text_string_to_metric_families(answer.get_data(as_text=True))
               for sample in family.samples}
    assert samples[("avenue_renditions_bytes", ())] == true_bytes(db)
    assert samples[("avenue_rendition_budget_bytes", ())] == 1_000_000
    assert samples[("avenue_ops_last_run_items", (("command", "evict-renditions"), ("kind", "evicted")))] == 1


# --- CDN purges ----------------------------------------------------------------------------


@pytest.fixture
def hooked(app_factory):
    return app_factory(**HOOK)


def outbox(db) -> list[str]:
    return [p for entry in db[purge.OUTBOX].find() for p in entry["paths"]]


def test_deleting_an_image_purges_its_renditions_urls_with_and_without_extension(hooked):
    from avenue.db import get_mongo

    doc = put(hooked)
    client = hooked.test_client()
    client.get(path(doc, "w_320.webp"))
    client.get(path(doc, "w_320.avif"))
    client.get(path(doc, "w_160"), headers={"Accept": "image/webp"})
    db = get_mongo(hooked).db
    with hooked.app_context():
        delete_image(db, Buckets.PRODUCTS, doc["_id"], purges=AppMedia.of(current_app).core.purges)
    paths = outbox(db)
    base = f"/media/products/{doc['_id']}"
    assert {f"{base}/w_320", f"{base}/w_320.webp", f"{base}/w_320.avif", f"{base}/w_160",
            f"{base}/w_160.webp", base} <= set(paths)
    assert len(paths) == len(set(paths))


def test_trashing_an_image_purges_its_renditions_urls(hooked):
    from avenue.db import get_mongo

    client = hooked.test_client()
    headers = Auth(hooked).token("admin")
    from tests.support.client import uploaded

    image = uploaded(client, headers, "good/progressive.jpg", filename="p.jpg", visibility="public",
                     expect=(201,))
    url = image["url"].rsplit(".", 1)[0] + "/w_320.webp"
    assert client.get(url).status_code == 200
    assert client.delete(f"/api/uploads/{image['id']}", headers=headers).status_code == 204
    assert url.split("cdn.example", 1)[-1] in outbox(get_mongo(hooked).db)


def test_replacing_an_image_purges_its_earlier_versions_renditions(hooked):
    from avenue.db import get_mongo

    doc = put(hooked)
    client = hooked.test_client()
    client.get(path(doc, "w_320.webp"))
    db = get_mongo(hooked).db
    with hooked.app_context():
        replaced = replace_bytes(db, Buckets.PRODUCTS, doc["_id"], image_bytes("good/grayscale.jpg"),
                           delete_lease=_lease(), media=AppMedia.of(current_app).core)
    assert replaced is not None and replaced.changed
    assert {path(doc, "w_320.webp"), path(doc, "w_320")} <= set(outbox(db))
    assert path(replaced.doc, "w_320.webp") not in outbox(db)


def test_a_named_presets_own_urls_are_purged_with_its_image_on_delete_and_replace(app_factory):
    from avenue.db import get_mongo

    app = app_factory(**HOOK, AVENUE_RENDITION_PRESETS="banner=w_480,h_240,fit_cover")
    doc = put(app)
    client = app.test_client()
    assert client.get(path(doc, "banner.webp")).status_code == 200
    assert client.get(path(doc, "banner"), headers={"Accept": "image/webp"}).status_code == 200
    db = get_mongo(app).db
    with app.app_context():
        replaced = replace_bytes(db, Buckets.PRODUCTS, doc["_id"], image_bytes("good/grayscale.jpg"),
                           delete_lease=_lease(), media=AppMedia.of(current_app).core)
    assert replaced is not None and replaced.changed
    assert {path(doc, "banner"), path(doc, "banner.webp")} <= set(outbox(db))  # the earlier version's
    db[purge.OUTBOX].delete_many({})
    assert client.get(path(replaced.doc, "banner.jpg")).status_code == 200
    with app.app_context():
        delete_image(db, Buckets.PRODUCTS, doc["_id"], purges=AppMedia.of(current_app).core.purges)
    assert {path(replaced.doc, "banner"), path(replaced.doc, "banner.jpg")} <= set(outbox(db))
    assert len(outbox(db)) == len(set(outbox(db)))


def test_a_private_images_renditions_and_evictions_are_never_purged(hooked):
    from avenue.db import get_mongo
    from avenue.media.transform import parse
    from avenue.presentation.objects import signer_from_config

    doc = put(hooked, bucket=Buckets.UPLOADS, visibility="private", scope="owner")
    signer = signer_from_config(hooked.config)
    client = hooked.test_client()
    assert client.get(signer.rendition_url(Buckets.UPLOADS, doc["_id"], parse("w_320").spec, "webp",
                                           private=True)).status_code == 200
    db = get_mongo(hooked).db
    assert stored(db)[0]["metadata"]["visibility"] == "private"
    public = put(hooked, "good/grayscale.jpg")
    client.get(path(public, "w_320.webp"))
    with hooked.app_context():
        renditions.evict(db, 1, margin=0.0)  # an eviction: the URL stays valid, nothing to purge
        assert outbox(db) == []
        delete_image(db, Buckets.UPLOADS, doc["_id"], purges=AppMedia.of(current_app).core.purges)
    assert outbox(db) == []


def test_without_a_hook_removing_renditions_queues_nothing(app, client, db):
    doc = put(app)
    client.get(path(doc, "w_320.webp"))
    with app.app_context():
        delete_image(db, Buckets.PRODUCTS, doc["_id"], purges=AppMedia.of(current_app).core.purges)
    assert db[purge.OUTBOX].count_documents({}) == 0


def test_rendition_paths_skip_documents_that_name_no_spec():
    docs = [{"metadata": {}}, {"metadata": {"spec": "w_1", "format": "x"}}]
    assert purge.rendition_paths(Buckets.PRODUCTS, "abc", docs) == ["/media/products/abc/w_1",
                                                             "/media/products/abc/w_auto"]


def test_a_width_alone_is_purged_under_w_auto_too_and_other_specs_are_not():
    # w_auto answers with a ladder step's own file, which a CDN keys under the w_auto path.
    docs = [{"metadata": {"spec": "c_hero,w_640,q_70", "format": "avif"}},
            {"metadata": {"spec": "w_320,h_320", "format": "webp"}}]
    paths = purge.rendition_paths(Buckets.PRODUCTS, "abc", docs)
    assert "/media/products/abc/c_hero,w_auto,q_70" in paths
    assert "/media/products/abc/c_hero,w_auto,q_70.avif" in paths
    assert not any("w_auto" in p and "h_320" in p for p in paths)


def test_a_rendition_at_its_image_s_own_width_is_purged_under_the_wider_ladder_widths_too():
    docs = [{"metadata": {"spec": "c_hero,w_1000", "format": "webp", "own_width": True}}]
    paths = purge.rendition_paths(Buckets.PRODUCTS, "abc", docs)
    for key in ("c_hero,w_1000", "c_hero,w_1280", "c_hero,w_2560"):
        assert f"/media/products/abc/{key}" in paths and f"/media/products/abc/{key}.webp" in paths
    assert "/media/products/abc/c_hero,w_960" not in paths


# --- backups -------------------------------------------------------------------------------


@pytest.fixture
def target(app_factory, db_name):
    other = app_factory(MONGO_DB=f"{db_name}_restore")
    yield other
    other.extensions["avenue.mongo"].client.drop_database(f"{db_name}_restore")


def test_a_backup_leaves_renditions_out_and_a_restore_renders_them_again(app, client, db, target, tmp_path,
        media_core):
    from avenue.db import get_mongo

    doc = put(app)
    first = client.get(path(doc, "w_320.webp"))
    assert first.status_code == 200 and len(stored(db)) == 1
    archive = tmp_path / "a.tar"
    with app.app_context(), open(archive, "wb") as out:
        report = backup_module.backup(db, out, media=media_core)
    assert sum(report.files.values()) >= 1
    import tarfile

    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert not any(RENDITIONS in name for name in names)
    assert manifest["renditions"].startswith("not included")
    other = get_mongo(target).db
    with target.app_context(), open(archive, "rb") as source:
        assert backup_module.restore(other, source, media=media_core).ok
    assert list(other[f"{RENDITIONS}.files"].find()) == []
    again = target.test_client().get(path(doc, "w_320.webp"))
    assert again.status_code == 200 and again.data == first.data
    assert other[f"{RENDITIONS}.files"].count_documents({}) == 1


def test_two_apps_of_one_process_each_purge_by_their_own_hook_and_presets(app_factory):
    """Which app has a CDN hook and which presets it renders are its Media's, not the
    process's: an app without a hook queues nothing after an app with one started, and a
    preset's name is purged only for the app that has it (both were process-wide sets)."""
    from avenue.db import get_mongo

    hooked = app_factory(**HOOK, AVENUE_RENDITION_PRESETS="banner=w_480,h_240,fit_cover")
    plain = app_factory(AVENUE_RENDITION_PRESETS="")
    with plain.app_context():
        assert not AppMedia.of(current_app).core.purges.enabled
    doc = put(plain)
    assert plain.test_client().get(path(doc, "w_320.webp")).status_code == 200
    db = get_mongo(plain).db
    with plain.app_context():
        delete_image(db, Buckets.PRODUCTS, doc["_id"], purges=AppMedia.of(current_app).core.purges)
    assert outbox(db) == []
    with hooked.app_context():
        purges = AppMedia.of(current_app).core.purges
        assert purges.preset_names == {"w_480,h_240,fit_cover": frozenset({"banner"})}


# --- renditions on request: signed, rendered once under a claim, stored, removed ------------


KEY = "test-secret-key-for-avenue"


@pytest.fixture
def renders(monkeypatch):
    """Counts the renders the route runs (each one the real renderer)."""
    calls = []
    real = route.render_spec

    def counted(*args, **kwargs):
        calls.append(args[2].key())
        return real(*args, **kwargs)

    monkeypatch.setattr(route, "render_spec", counted)
    return calls


def test_the_first_get_renders_and_stores_and_the_second_is_served_from_storage(app, client, db, renders):
    doc = put(app)
    first = client.get(path(doc, "w_320.webp"))
    assert first.status_code == 200, first.get_data()
    assert first.headers["Content-Type"] == "image/webp"
    assert first.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert first.headers["ETag"] and first.headers.get("X-Request-ID")
    assert "Vary" not in first.headers
    second = client.get(path(doc, "w_320.webp"))
    assert second.status_code == 200 and second.get_data() == first.get_data()
    assert second.headers["ETag"] == first.headers["ETag"]
    assert renders == ["w_320"]
    files = stored(db)
    assert len(files) == 1
    meta = files[0]["metadata"]
    assert (meta["source"], meta["image_id"], meta["version"], meta["spec"], meta["format"]) == \
        (Buckets.PRODUCTS, doc["_id"], "", "w_320", "webp")
    with Image.open(io.BytesIO(first.get_data())) as im:
        assert (im.format, im.size) == ("WEBP", (320, 240))


def test_a_jpeg_rendition_records_the_baseline_recipe_it_was_made_with(app, client, db):
    from avenue.media import formats

    doc = put(app)
    sig = sign_rendition(KEY, Buckets.PRODUCTS, str(doc["_id"]), "", "w_320,q_80")
    made = client.get(path(doc, "w_320,q_80.jpg") + f"?sig={sig}")
    assert made.status_code == 200, made.get_data()
    assert "progressive" not in Image.open(io.BytesIO(made.get_data())).info
    files = stored(db)
    assert files[0]["metadata"]["recipe"] == formats.recipe("jpeg", 80, progressive=False)
    assert files[0]["metadata"]["recipe"] != formats.recipe("jpeg", 80)  # the fixed variants' (progressive)
    assert not renditions.is_stale(files[0])


def test_ladder_widths_above_the_image_s_own_are_one_stored_file_at_its_width(app, client, db, renders):
    doc = put(app)  # 1024 x 768
    answers = [client.get(path(doc, f"w_{width}.webp")) for width in (1280, 1600, 1920, 2560)]
    assert [answer.status_code for answer in answers] == [200] * 4
    assert len({answer.headers["ETag"] for answer in answers}) == 1
    assert renders == ["w_1024"]
    assert [(f["metadata"]["spec"], f["metadata"]["own_width"]) for f in stored(db)] == [("w_1024", True)]
    with Image.open(io.BytesIO(answers[0].get_data())) as im:
        assert im.size == (1024, 768)
    # Below its width nothing changes; w_1024 itself is not on the ladder: signed only.
    assert client.get(path(doc, "w_960.webp")).status_code == 200
    assert client.get(path(doc, "w_1024.webp")).status_code == 403
    assert sorted(f["metadata"]["spec"] for f in stored(db)) == ["w_1024", "w_960"]


def test_cover_crops_to_the_box(app, client):
    doc = put(app)
    response = client.get(path(doc, "w_400,h_400,fit_cover.jpg") + "?sig="
                          + sign_rendition(KEY, Buckets.PRODUCTS, str(doc["_id"]), "",
                                           "w_400,h_400,fit_cover"))
    assert response.status_code == 200, response.get_data()
    with Image.open(io.BytesIO(response.get_data())) as im:
        assert (im.format, im.size) == ("JPEG", (400, 400))


def test_an_unsigned_rendition_off_the_ladder_is_403_saying_what_to_do(app, client, db):
    doc = put(app)
    response = client.get(path(doc, "w_333.webp"))
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert error["code"] == "rendition_not_allowed" and "signed" in error["message"]
    for bad in ("nonsense",
                sign_rendition("another-key-entirely-0123456789", Buckets.PRODUCTS, str(doc["_id"]), "",
                                           "w_333")):
        assert client.get(path(doc, "w_333.webp") + f"?sig={bad}").status_code == 403
    assert stored(db) == []


def test_a_signed_rendition_renders_and_its_signature_covers_every_spelling(app, client):
    doc = put(app)
    signer = signer_from_config(app.config)
    url = signer.rendition_url(Buckets.PRODUCTS, doc["_id"], parse("w_333").spec, "webp")
    assert client.get(url).status_code == 200
    sig = url.split("sig=")[1]
    # dpr_1 is the same spec: the same canonical key, the same signature.
    assert client.get(path(doc, "w_333,dpr_1.webp") + f"?sig={sig}").status_code == 200
    # Another spec with this signature is refused.
    assert client.get(path(doc, "w_334.webp") + f"?sig={sig}").status_code == 403


def test_a_rotated_key_still_verifies_and_a_retired_one_does_not(app_factory):
    old = "the-old-secret-key-of-avenue-0001"
    app = app_factory(SECRET_KEY="the-new-secret-key-of-avenue-002", SECRET_KEY_FALLBACKS=[old])
    doc = put(app)
    url = UrlSigner(key=old).rendition_url(Buckets.PRODUCTS, doc["_id"], parse("w_333").spec, "webp")
    assert app.test_client().get(url).status_code == 200
    retired = UrlSigner(key="a-key-nobody-holds-any-more-0003").rendition_url(
        Buckets.PRODUCTS, doc["_id"], parse("w_334").spec, "webp")
    assert app.test_client().get(retired).status_code == 403


def test_a_private_image_needs_its_signed_url(app, client):
    doc = put(app, bucket=Buckets.UPLOADS, visibility="private", scope="owner")
    signer = signer_from_config(app.config)
    url = signer.rendition_url(Buckets.UPLOADS, doc["_id"], parse("w_320").spec, "webp", private=True)
    ok = client.get(url)
    assert ok.status_code == 200 and ok.headers["Cache-Control"].startswith("private")
    bare = url.split("?")[0]
    assert client.get(bare).status_code == 404  # as every private URL without its signature
    assert client.get(url.replace("sig=", "sig=x")).status_code == 403
    # A signature for another spec does not open this one.
    other = signer.rendition_url(Buckets.UPLOADS, doc["_id"], parse("w_480").spec, "webp", private=True)
    assert client.get(bare + "?" + other.split("?")[1]).status_code == 403


def test_a_private_rendition_s_signature_covers_its_format(app, client):
    doc = put(app, bucket=Buckets.UPLOADS, visibility="private", scope="owner")
    signer = signer_from_config(app.config)
    urls = signer.rendition_urls(Buckets.UPLOADS, doc["_id"], parse("w_320").spec, ("webp", "jpeg", ""),
                                 private=True)
    assert [client.get(url).status_code for url in urls.values()] == [200, 200, 200]
    webp_path, webp_query = urls["webp"].split("?")
    for other in (webp_path.replace(".webp", ".avif"), webp_path.replace(".webp", ".jpg"),
                  webp_path.removesuffix(".webp")):
        refused = client.get(f"{other}?{webp_query}")
        assert refused.status_code == 403, other


def test_an_earlier_version_redirects_then_replace_removes_its_renditions(app, client, db):
    doc = put(app)
    assert client.get(path(doc, "w_320.webp")).status_code == 200
    with app.app_context():
        replaced = replace_bytes(db, Buckets.PRODUCTS, doc["_id"], image_bytes("good/grayscale.jpg"),
                           delete_lease=_lease(),
                           media=Media())
    assert replaced is not None and replaced.changed
    assert stored(db) == []
    moved = client.get(path(doc, "w_320.webp"))
    new_path = path(replaced.doc, "w_320.webp")
    assert moved.status_code == 308 and moved.headers["Location"] == new_path
    fresh = client.get(new_path)
    with Image.open(io.BytesIO(fresh.get_data())) as im:
        assert im.size == (320, 240)
    assert [f["metadata"]["version"] for f in stored(db)] == [replaced.doc["metadata"]["version"]]


def test_an_earlier_version_of_a_private_image_is_404(app, client, db):
    doc = put(app, bucket=Buckets.UPLOADS, visibility="private", scope="owner")
    with app.app_context():
        replaced = replace_bytes(db, Buckets.UPLOADS, doc["_id"], image_bytes("good/grayscale.jpg"),
                           delete_lease=_lease(), media=Media())
    assert replaced is not None
    signer = signer_from_config(app.config)
    url = signer.rendition_url(Buckets.UPLOADS, doc["_id"], parse("w_320").spec, "webp", private=True)
    assert client.get(url).status_code == 404


def test_delete_removes_the_renditions(app, client, db):
    doc = put(app)
    client.get(path(doc, "w_320.webp"))
    client.get(path(doc, "w_160.jpg"))
    assert len(stored(db)) == 2
    with app.app_context():
        assert delete_image(db, Buckets.PRODUCTS, doc["_id"], purges=NO_PURGES)
    assert stored(db) == [] and db[f"{RENDITIONS}.chunks"].count_documents({}) == 0
    assert client.get(path(doc, "w_320.webp")).status_code == 404


def test_deleting_to_the_trash_removes_the_renditions(app, client, db, auth):
    headers = auth.token("admin")
    sent = client.post("/api/uploads", headers=headers,
                       data={"file": (io.BytesIO(image_bytes("good/progressive.jpg")), "p.jpg"),
                             "visibility": "public"})
    assert sent.status_code == 201, sent.get_json()
    url = sent.get_json()["url"].rsplit(".", 1)[0] + "/w_320.webp"
    assert client.get(url).status_code == 200
    assert client.delete(f"/api/uploads/{sent.get_json()['id']}", headers=headers).status_code in (200, 204)
    assert stored(db) == []


def test_gc_removes_an_orphan(app, client, db, runner):
    doc = put(app)
    client.get(path(doc, "w_320.webp"))
    # A crash between the original's delete and its renditions': the original goes alone.
    images(db, Buckets.PRODUCTS).delete_one({"_id": doc["_id"]})
    with app.app_context():
        assert [o["_id"] for o in renditions.orphans(db)] == [stored(db)[0]["_id"]]
    result = runner.invoke(args=["gc"])
    assert result.exit_code == 0, result.output
    assert stored(db) == []


def test_one_render_across_many_requests_at_once(app_factory, backend, renders):
    if backend[0].__name__ == "<lambda>":
        pytest.skip("threads against one database: the wire-protocol server's test")
    apps = [app_factory(), app_factory()]  # two workers on one database
    doc = put(apps[0])
    answers: list[int] = []
    start = threading.Barrier(8)

    def fetch(app):
        client = app.test_client()
        start.wait()
        answers.append(client.get(path(doc, "w_640.webp")).status_code)

    threads = [threading.Thread(target=fetch, args=(apps[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 8
    assert renders == ["w_640"]
    with apps[0].app_context():
        from avenue.db import get_db

        assert len(stored(get_db())) == 1


def rendition_chunk_reads(event) -> bool:
    command = event.command
    name = command.get("find") if event.command_name == "find" else command.get("collection")
    return event.command_name in {"find", "getMore"} and name == f"{RENDITIONS}.chunks"


def _listened(backend, db_name, listener):
    """An app whose database commands ``listener`` sees (the wire-protocol server only), and
    the listener; its database dropped after the test."""
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("command monitoring needs the wire protocol")
    app = make_app((listening(listener), backend[1]), db_name)
    yield app, listener
    client = app.extensions["avenue.mongo"].client
    client.drop_database(db_name)
    client.close()


@pytest.fixture
def watched(backend, db_name):
    """An app whose reads of the renditions' chunks are counted, and the counter."""
    yield from _listened(backend, db_name, Matching(rendition_chunk_reads))


def test_the_request_that_rendered_is_answered_from_its_bytes_not_read_back(watched):
    """The rendered bytes are the answer: the stored file is not read back from GridFS for it
    (it was: a find of its chunks on every cold render); its ETag and length are the stored
    file's."""
    app, reads = watched
    doc = put(app)
    first = app.test_client().get(path(doc, "w_320.webp"))
    assert first.status_code == 200
    assert reads.count == 0
    from avenue.db import get_db

    with app.app_context():
        files = stored(get_db())
    assert len(files) == 1 and files[0]["length"] == len(first.get_data())
    assert first.headers["ETag"] == f'"{files[0]["metadata"]["sha256"]}"'


def assert_left_to_lapse(db) -> None:
    """The one claim, of a stored rendition: left to lapse within a claim's length (not
    deleted: one command fewer), and a TTL index removes it after."""
    import datetime as dt

    (claim,) = db[renditions.CLAIMS].find()
    assert as_utc(claim["until"]) <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=renditions.CLAIM_SECONDS)
    assert list(db[renditions.CLAIMS].index_information()["ttl"]["key"]) == [("until", 1)]
    assert expires_after(db[renditions.CLAIMS], "ttl") == 0


def test_as_deployed_a_rendition_is_stored_before_its_answer(app_factory, renders):
    """With the work after uploads' answers on (as deployed), a rendition on request is still
    stored before its answer: the answer's ETag is the stored file's, and its claim is left to
    lapse (bench/results/mechanisms-2026-11-28-lane-latency.md: storing it after the answer
    did not pay)."""
    from avenue.db import get_db

    app = app_factory(AVENUE_VARIANTS_AFTER_ANSWER=True)
    doc = put(app)
    with app.app_context():
        db = get_db()
    answer = app.test_client().get(path(doc, "w_320.webp"))
    assert answer.status_code == 200
    (file,) = stored(db)  # written before the answer came back, not after its close
    assert f'"{file["metadata"]["sha256"]}"' == answer.headers["ETag"]
    assert file["length"] == len(answer.get_data())
    answer.close()
    assert_left_to_lapse(db)
    assert renders == ["w_320"]


def test_a_render_whose_store_loses_to_another_s_answers_with_the_stored_one(app, db, renders, monkeypatch):
    """A render whose store finds the rendition stored by another (a lapsed claim taken over)
    keeps that one and answers with it, not with its own bytes."""
    real = renditions._put

    def another_first(db_, wanted, new):
        real(db_, wanted, renditions._new_file(wanted, Fake(b"stored-by-another"), private=False))
        return real(db_, wanted, new)

    monkeypatch.setattr(renditions, "_put", another_first)
    doc = put(app)
    answer = app.test_client().get(path(doc, "w_320.webp"))
    assert answer.status_code == 200 and answer.get_data() == b"stored-by-another"
    (file,) = stored(db)
    assert answer.headers["ETag"] == f'"{file["metadata"]["sha256"]}"'
    assert_left_to_lapse(db)  # stored, if by another
    assert renders == ["w_320"]


def test_a_request_that_cannot_get_a_render_slot_is_503_busy(app, client, monkeypatch):
    doc = put(app)
    monkeypatch.setattr(route, "RENDER_SLOT_WAIT_SECONDS", 0.01)
    state = route.get_state(app)
    while state.renders.acquire(blocking=False):
        pass
    try:
        response = client.get(path(doc, "w_320.webp"))
    finally:
        state.renders.release()
        state.renders.release()
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "busy" and response.headers["Retry-After"]


def _call(wsgi_app, url: str, headers: dict):
    response = Client(wsgi_app).get(url, headers=headers)
    return response.status, sorted(response.headers.items()), response.get_data()


@pytest.mark.parametrize("headers", [{"Accept": "image/webp"}, {"Accept": "*/*"},
                                     {"If-None-Match": "{etag}"}])
@pytest.mark.parametrize("options", ["w_320", "w_320.avif"])
def test_the_front_door_answers_a_warm_rendition_exactly_as_the_route_does(app, client, options, headers):
    doc = put(app)
    url = path(doc, options)
    warm = client.get(url, headers={"Accept": headers.get("Accept", "")})
    assert warm.status_code == 200 and warm.data  # read whole: the bytes are cached
    headers = {name: value.format(etag=warm.headers["ETag"]) for name, value in headers.items()}
    headers["X-Request-ID"] = "cmp-1"

    def flask_must_not_run(environ, start_response):
        pytest.fail(f"the front door passed {url} on to Flask")

    by_front = _call(FrontDoor(app, flask_must_not_run), url, headers)
    by_route = _call(app.wsgi_app.wsgi_app, url, headers)
    assert by_front == by_route
    assert by_front[0] in ("200 OK", "304 NOT MODIFIED")


def test_the_front_door_never_answers_a_format_the_accept_refuses(app, client):
    """The AVIF rendition cached by a browser's request is not what the front door answers to
    "image/avif;q=0": the format is chosen before the cache is asked (its key holds it)."""
    doc = put(app)
    url = path(doc, "w_320")
    assert client.get(url, headers={"Accept": "image/avif,image/webp,*/*"}).data  # AVIF, now cached
    refusing = {"Accept": "image/avif;q=0,image/webp,*/*"}
    assert passed_to_route(app, url, refusing) == [url]  # no WebP cached yet: the route renders it
    answer = client.get(url, headers=refusing)
    assert answer.headers["Content-Type"] == "image/webp" and answer.headers["Vary"] == "Accept"
    assert passed_to_route(app, url, refusing) == []  # now the front door answers it, as WebP
    by_front = Client(FrontDoor(app, lambda environ, start_response: pytest.fail("passed on"))).get(
        url, headers=refusing)
    assert by_front.headers["Content-Type"] == "image/webp"


@pytest.mark.parametrize("case", ["not rendered yet", "signed", "malformed", "private", "deleted"])
def test_the_front_door_leaves_other_renditions_to_the_route(app, client, db, case):
    doc = (put(app, bucket=Buckets.UPLOADS, visibility="private", scope="owner") if case == "private"
           else put(app))
    alias = "uploads" if case == "private" else "products"
    url = path(doc, {"signed": "w_333.webp", "malformed": "w_08"}.get(case, "w_320.webp"), alias)
    if case == "signed":
        url += "?sig=" + sign_rendition(KEY, Buckets.PRODUCTS, str(doc["_id"]), "", "w_333")
    if case == "private":
        url = signer_from_config(app.config).rendition_url(Buckets.UPLOADS, doc["_id"], parse("w_320").spec,
                                                           "webp",
                                                           private=True)
    if case != "not rendered yet" and case != "malformed":
        assert client.get(url).status_code == 200
    if case == "deleted":
        with app.app_context():
            delete_image(db, Buckets.PRODUCTS, doc["_id"], purges=NO_PURGES)
    assert passed_to_route(app, url) == [url.split("?")[0]]


def test_fsck_checks_the_renditions_and_repair_removes_a_damaged_one(app, client, db, media_core):

    doc = put(app)
    assert client.get(path(doc, "w_320.webp")).status_code == 200
    with app.app_context():
        assert AppMedia.on(db).maintenance.fsck().ok
        rendition = stored(db)[0]
        db[f"{RENDITIONS}.chunks"].delete_many({"files_id": rendition["_id"]})
        report = AppMedia.on(db).maintenance.fsck()
        assert [f.doc["_id"] for f in report.findings] == [rendition["_id"]]
        assert AppMedia.on(db, media_core).maintenance.fsck(repair=True).ok
    assert stored(db) == []
    # Its claim went with it, as every removal's does (renditions.forget_claims): left to
    # lapse, it held the next request back for up to CLAIM_SECONDS (15 s) before rendering.
    assert db[renditions.CLAIMS].count_documents({}) == 0
    assert client.get(path(doc, "w_320.webp")).status_code == 200  # rendered again


class Fake:
    """A rendered payload passed in directly: what a renderer returns."""

    def __init__(self, data: bytes = b"fake-webp-bytes") -> None:
        self.data, self.width, self.height, self.format = data, 10, 10, "webp"


def _original(app):
    from avenue.media.records import MediaDoc

    return MediaDoc.from_files_doc(Buckets.PRODUCTS, put(app))


def test_a_lapsed_claim_is_taken_over(app, db):
    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    # A renderer that died holding the claim: its claim has lapsed.
    import datetime as dt

    db[renditions.CLAIMS].insert_one({"_id": wanted.claim_id(), "owner": "dead",
                                      "until": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)})
    with app.app_context():
        found = renditions.obtain(db, wanted, original, lambda data: Fake(), wait=1)
    assert found["metadata"]["spec"] == "w_320"
    assert_left_to_lapse(db)  # ours now, left to lapse after the store


def test_a_render_longer_than_the_claim_keeps_it_and_nobody_takes_it_over(app, db, backend, lease_clock):
    """The holder renews its claim while it renders, however long: a render that outlasts
    the claim's length is not taken over (nor rendered twice) while it runs; the claim is
    released after it. The claims' clock is stepped (tests/support/leaseclock.py): with a real
    0.4 s claim, one renewal slower than 0.27 s on a loaded machine let it lapse."""
    from avenue.leases import Lease

    if backend[0] is not pymongo.MongoClient:
        pytest.skip("threads need a real server (mongomock is not thread-safe)")
    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    rendering = threading.Event()
    taken_over = []

    def slow_render(data):
        rendering.set()
        for _ in range(4):  # 1.2 s of claim time: three claim lengths
            lease_clock.advance(0.3)
            deadline = time.monotonic() + 30  # the heartbeat renews it past the clock
            claim = {"_id": wanted.claim_id()}
            while as_utc(db[renditions.CLAIMS].find_one(claim)["until"]) <= lease_clock() \
                    and time.monotonic() < deadline:
                time.sleep(0.02)
            taken_over.append(Lease(db[renditions.CLAIMS], wanted.claim_id(), "other", 0.4).take())
        return Fake()

    with app.app_context():
        found = renditions.obtain(db, wanted, original, slow_render, claim_seconds=0.4)
    assert rendering.is_set() and found["metadata"]["spec"] == "w_320"
    assert taken_over and not any(taken_over)
    assert db[renditions.CLAIMS].count_documents({}) == 1  # left to lapse after the store


def test_a_live_claim_that_stores_nothing_ends_in_503_busy(app, db):
    from avenue.errors import ServerBusy

    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    import datetime as dt

    db[renditions.CLAIMS].insert_one({"_id": wanted.claim_id(), "owner": "busy elsewhere",
                                      "until": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)})
    rendered = []
    with app.app_context(), pytest.raises(ServerBusy):
        renditions.obtain(db, wanted, original, lambda data: rendered.append(1) or Fake(), wait=0.2)
    assert rendered == [] and stored(db) == []


def test_a_waiter_serves_what_the_claimant_stored(app, db):
    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    import datetime as dt

    db[renditions.CLAIMS].insert_one({"_id": wanted.claim_id(), "owner": "elsewhere",
                                      "until": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)})
    with app.app_context():
        def finish_elsewhere():
            renditions._render_and_store(db, wanted, original, lambda data: Fake(b"from-elsewhere"))

        timer = threading.Timer(0.2, finish_elsewhere)
        timer.start()
        found = renditions.obtain(db, wanted, original, lambda data: Fake(b"mine"), wait=5)
        timer.join()
    assert found["length"] == len(b"from-elsewhere") and len(stored(db)) == 1


@pytest.fixture
def recorded(backend, db_name):
    """An app whose database commands are recorded, and the recorder."""
    yield from _listened(backend, db_name, Recorder(db_name))


def test_waiters_in_the_renderer_s_process_ask_the_database_nothing_while_it_renders(recorded):
    """Eight requests for one cold rendition on one worker: one renders, the seven others wait
    on it in memory (they used to ask the database twice every 50 ms: over 200 commands
    over this one-second render)."""
    app, recorder = recorded
    original = _original(app)
    from avenue.db import get_db

    with app.app_context():
        db = get_db()
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    waiters = 8
    start = threading.Barrier(waiters)
    rendered, found = [], []

    def slow_render(data):
        rendered.append(1)
        time.sleep(1.0)
        return Fake()

    def ask():
        with app.app_context():
            start.wait()
            found.append(renditions.obtain(db, wanted, original, slow_render)["_id"])

    recorder.active = True
    threads = [threading.Thread(target=ask) for _ in range(waiters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorder.active = False
    assert rendered == [1] and len(set(found)) == 1 and len(found) == waiters
    # Each: a look before, and one after the render; the renderer: its claim, the store, the
    # counters, the release.
    assert len(recorder.commands) <= 3 * waiters + 10, len(recorder.commands)


def test_a_waiter_on_another_process_s_claim_backs_off(recorded):
    """A claim held elsewhere for the whole wait: one waiter polls it 50 ms, 100 ms, ... (not
    every 50 ms: about 50 commands in 1.5 s), then answers 503 busy."""
    from avenue.errors import ServerBusy

    app, recorder = recorded
    original = _original(app)
    from avenue.db import get_db

    with app.app_context():
        db = get_db()
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    import datetime as dt

    db[renditions.CLAIMS].insert_one({"_id": wanted.claim_id(), "owner": "busy elsewhere",
                                      "until": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)})
    recorder.active = True
    started = time.monotonic()
    with app.app_context(), pytest.raises(ServerBusy):
        renditions.obtain(db, wanted, original, lambda data: Fake(), wait=1.5)
    recorder.active = False
    # It gave up at its 1.5 s wait, not when the claim lapses a minute on (10 s: the attempts
    # each wait on the database, which can take a second on a loaded machine); the count of
    # commands below is what shows the back-off.
    assert time.monotonic() - started < 10
    # 0.05 + 0.1 + 0.2 + 0.4 + 0.8 (cut to the deadline): six rounds of a claim attempt and a look.
    assert len(recorder.commands) <= 16, len(recorder.commands)


@pytest.fixture
def every_command(backend, db_name):
    """An app whose database commands (on its database) are all seen, and the listener."""
    yield from _listened(backend, db_name, Matching(lambda event: on_database(event, db_name)))


def test_a_cold_render_looks_claims_reads_and_stores_in_four_commands(every_command):
    """The commands of one cold render, store included: a look, the claim (an insert; no
    second look, since no claim document means nothing was stored since the first), the
    original's chunks, and the store: its chunks, its files document and the counters in one
    command (a bulkWrite, in that order: three commands before). The claim is left to lapse,
    not deleted (there were eight: a second look, and the delete)."""
    app, seen = every_command
    original = _original(app)
    from avenue.db import get_db
    from avenue.dialect import dialect_of

    with app.app_context():
        db = get_db()
    assert dialect_of(db).cross_collection_writes  # SecantusDB
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    with seen.lock:
        seen.commands.clear()
    with app.app_context():
        renditions.obtain(db, wanted, original, lambda data: Fake())
    sent = [f"{name} {'+'.join(namespaces(command)) if name == 'bulkWrite' else command[name]}"
            for command in seen.commands
            for name in [next(iter(command))] if name not in {"hello", "ismaster", "endSessions"}]
    assert sorted(sent) == sorted([
        f"find {RENDITIONS}.files", f"insert {renditions.CLAIMS}", f"find {Buckets.PRODUCTS}.chunks",
        f"bulkWrite {RENDITIONS}.chunks+{RENDITIONS}.files+media_counters"]), sent
    # The claim is coordination, not data: acknowledged by the primary, no journal wait.
    (claim,) = [command for command in seen.commands if command.get("insert") == renditions.CLAIMS]
    assert claim["writeConcern"] == {"w": 1, "j": False}
    assert_left_to_lapse(db)
    assert counters_of(db, RENDITIONS)["files"] == 1


def test_a_store_that_loses_to_another_s_files_document_counts_nothing(app, db):
    """The files document the unique index refuses stops the store's command before the
    counters' update (and its chunks are taken back): the counters count the one stored."""
    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    first = renditions.keep(db, wanted, Fake(b"first"), private=False)
    again = renditions.keep(db, wanted, Fake(b"second, longer"), private=False)
    assert again["_id"] == first["_id"]
    held = counters_of(db, RENDITIONS)
    assert (held["files"], held["bytes"], held["chunks"]) == (1, len(b"first"), 1)
    assert db[f"{RENDITIONS}.chunks"].count_documents({}) == 1


def test_a_counters_update_that_fails_leaves_the_stored_rendition_and_is_logged(app, db, backend, caplog):
    """The store's counters' update (last in its command) refused by the server: the
    rendition stays stored and served, the drift is logged for the reconciliation."""
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("mongomock raises a TypeError for an $inc of a string, not the server's write error")
    db["media_counters"].insert_one({"_id": RENDITIONS, "files": "not a number"})
    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    kept = renditions.keep(db, wanted, Fake(b"kept"), private=False)
    assert renditions.find(db, wanted)["_id"] == kept["_id"]
    assert db[f"{RENDITIONS}.chunks"].count_documents({"files_id": kept["_id"]}) == 1
    assert "media counters of media_renditions not updated" in caplog.text


def test_a_claim_taken_over_looks_again_and_serves_what_was_stored_meanwhile(app, db, monkeypatch):
    """Only a claim taken on no document skips the second look: one taken over (here the
    lapsed claim of a render stored between this request's first look and its claim) looks
    again, and serves the stored file instead of rendering it a second time."""
    import datetime as dt

    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    with app.app_context():
        first = renditions.keep(db, wanted, Fake(b"first"), private=False)
    # Lapsed but not swept yet (mongomock's TTL index removes a lapsed claim at once).
    db[renditions.CLAIMS].drop_index("ttl")
    db[renditions.CLAIMS].insert_one({"_id": wanted.claim_id(), "owner": "stored it",
                                      "until": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)})
    looks, real = [], renditions.find

    def find(db, wanted):
        looks.append(1)
        return None if len(looks) == 1 else real(db, wanted)  # the first look came too early

    monkeypatch.setattr(renditions, "find", find)
    rendered = []
    with app.app_context():
        found = renditions.obtain(db, wanted, original, lambda data: rendered.append(1) or Fake(b"second"))
    assert rendered == [] and found["_id"] == first["_id"] and len(looks) == 2


def test_a_store_that_fails_deletes_its_claim_so_the_next_request_renders_at_once(app, db, monkeypatch):
    """Only a stored rendition's claim is left to lapse: a store that fails gives the claim
    back, and the next request renders at once instead of waiting up to a claim's length for
    it."""
    from pymongo.errors import AutoReconnect

    from avenue.media.store import storage

    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    real = storage.put_files

    def failing(*args, **kwargs):
        raise AutoReconnect("the database went away")

    monkeypatch.setattr(storage, "put_files", failing)
    with app.app_context(), pytest.raises(AutoReconnect):
        renditions.obtain(db, wanted, original, lambda data: Fake())
    assert db[renditions.CLAIMS].count_documents({}) == 0
    monkeypatch.setattr(storage, "put_files", real)
    with app.app_context():
        found = renditions.obtain(db, wanted, original, lambda data: Fake(), wait=0)
    assert len(stored(db)) == 1 and found["_id"] == stored(db)[0]["_id"]


@pytest.mark.parametrize("removal", ["image", "budget", "stale"])
def test_a_rendition_removed_right_after_its_store_is_rendered_again_at_once(app, db, removal):
    """A stored rendition's claim is left to lapse, so every removal deletes the claims of
    what it removed: the next request renders at once, not after the claim's 15 s."""
    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    rendered = []

    def render(data):
        rendered.append(1)
        return Fake()

    with app.app_context():
        renditions.obtain(db, wanted, original, render)
        assert db[renditions.CLAIMS].count_documents({}) == 1
        if removal == "image":
            assert renditions.remove_for(db, Buckets.PRODUCTS, original.file_id, purges=NO_PURGES) == 1
        elif removal == "budget":
            assert renditions.evict(db, 1).files == 1
        else:
            assert renditions.remove_stale(db, stored(db), purges=NO_PURGES) == 1
        assert stored(db) == [] and db[renditions.CLAIMS].count_documents({}) == 0
        renditions.obtain(db, wanted, original, render, wait=0.5)
    assert rendered == [1, 1] and len(stored(db)) == 1


def test_a_second_store_of_one_rendition_keeps_the_first(app, db):
    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    with app.app_context():
        first = renditions._render_and_store(db, wanted, original, lambda data: Fake(b"first"))
        second = renditions._render_and_store(db, wanted, original, lambda data: Fake(b"second"))
    assert second["_id"] == first["_id"] and len(stored(db)) == 1
    assert db[f"{RENDITIONS}.chunks"].count_documents({}) == 1  # the loser's chunks went


def test_a_render_whose_store_loses_is_answered_with_the_stored_file_not_its_own_bytes(app, db):
    """Its bytes may differ from the stored file's (another instance on other code): the
    answer is the stored file, whose ETag and length its body must match."""
    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    with app.app_context():
        def render(data):
            # Another renderer (a lapsed claim taken over) stores first.
            renditions.keep(db, wanted, Fake(b"stored-meanwhile"), private=False)
            return Fake(b"mine")

        got = renditions.answer(db, wanted, original, render)
    assert got.data is None and got.doc["length"] == len(b"stored-meanwhile")


def test_unsigned_cold_renders_past_the_address_limit_are_429_and_store_nothing(app_factory, monkeypatch):
    from avenue.db import get_db

    app = limited(app_factory, monkeypatch)
    client = app.test_client()
    doc = put(app)
    for options in ("w_160.webp", "w_320.webp"):
        assert client.get(path(doc, options)).status_code == 200
    refused = client.get(path(doc, "w_480.webp"))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.get_json()["error"]["code"] == "rate_limited"
    with app.app_context():
        assert sorted(f["metadata"]["spec"] for f in stored(get_db())) == ["w_160", "w_320"]
    # What is stored is still served (a warm rendition costs no render), to this address too.
    assert client.get(path(doc, "w_320.webp")).status_code == 200
    # Another address has its own count.
    assert client.get(path(doc, "w_480.webp"), environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 200


def test_editors_and_signed_urls_are_not_counted_against_the_anonymous_limit(app_factory, monkeypatch):
    app = limited(app_factory, monkeypatch, address="1/hour")
    client = app.test_client()
    doc = put(app)
    assert client.get(path(doc, "w_160.webp")).status_code == 200
    assert client.get(path(doc, "w_320.webp")).status_code == 429  # the address's one is used
    by_token = Auth(app).token("editor")
    assert client.get(path(doc, "w_320.webp"), headers=by_token).status_code == 200
    session_client, _ = Auth(app).login("admin")
    answer = session_client.get(path(doc, "w_480.webp"))
    assert answer.status_code == 200 and "Set-Cookie" not in answer.headers and "Vary" not in answer.headers
    signed = signer_from_config(app.config).rendition_url(Buckets.PRODUCTS, doc["_id"], parse("w_640").spec,
                                                          "webp")
    assert client.get(signed).status_code == 200
    signed_off_list = signer_from_config(app.config).rendition_url(Buckets.PRODUCTS, doc["_id"],
                                                                   parse("w_333").spec,
                                                                   "webp")
    assert client.get(signed_off_list).status_code == 200
    # A viewer's token is no editor's: counted like anyone.
    assert client.get(path(doc, "w_800.webp"), headers=Auth(app).token("ops")).status_code == 429


def test_an_unsigned_cold_render_counts_against_its_limits_in_one_command(backend, db_name):
    """The limits of unsigned cold renders, each window counted in one command of two
    upserting updates: the address's minute and hour (one document), the instance's minute
    (another); a new window is opened by the same command, and the render's claim is inserted
    in it too, after them (a bulkWrite, where the dialect takes several collections' writes
    in one; an ``update`` and an ``insert`` elsewhere). (There were three commands, each
    window's own, a new window a delete and an insert more; then a findAndModify per
    document; then the update and the claim's insert.)"""
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("command monitoring needs the wire protocol")
    from avenue.dialect import dialect_of
    from avenue.ratelimit import COLLECTION

    seen = Matching(lambda event: on_database(event, db_name) and (
        COLLECTION in {next(iter(event.command.values()), None), *namespaces(event.command)}))
    app = make_app((listening(seen), backend[1]), db_name, RATELIMIT_ENABLED=True,
                   AVENUE_RENDER_ADDRESS_LIMIT="60/minute;600/hour",
                   AVENUE_RENDER_INSTANCE_LIMIT="600/minute")
    try:
        doc = put(app)
        from avenue.db import get_db

        with app.app_context():
            assert dialect_of(get_db()).cross_collection_writes  # SecantusDB
        for options in ("w_160.webp", "w_320.webp"):  # the first opens the windows
            with seen.lock:
                seen.commands.clear()
            assert app.test_client().get(path(doc, options)).status_code == 200
            assert [next(iter(command)) for command in seen.commands] == ["bulkWrite"]
            assert namespaces(seen.commands[0]) == [COLLECTION, COLLECTION, renditions.CLAIMS]
            # Both coordination, not data: acknowledged by the primary, no journal wait.
            assert seen.commands[0]["writeConcern"] == {"w": 1, "j": False}
        with app.app_context():
            (claim,) = get_db()[renditions.CLAIMS].find({"_id": {"$regex": "w_320"}})
        assert claim["owner"]
    finally:
        client = app.extensions["avenue.mongo"].client
        client.drop_database(db_name)
        client.close()


def test_a_refused_cold_render_writes_no_claim(app_factory, monkeypatch):
    """The hits go before the claim in their command: a render the limits refuse inserts no
    claim (nothing holds the next request back), on every backend."""
    from avenue.db import get_db

    app = limited(app_factory, monkeypatch, address="1/minute")
    client = app.test_client()
    doc = put(app)
    assert client.get(path(doc, "w_160.webp")).status_code == 200
    assert client.get(path(doc, "w_320.webp")).status_code == 429
    with app.app_context():
        claimed = [claim["_id"].rsplit("/", 1)[1] for claim in get_db()[renditions.CLAIMS].find()]
    assert claimed == ["w_160.webp"]


def test_a_cold_render_whose_claim_is_held_elsewhere_is_counted_and_waits(app_factory, monkeypatch):
    """A claim another process holds: the claim's insert, after the hits in their command,
    is refused by its _id; the render is counted all the same (as when the hits were a
    command of their own) and waits for that claim (503 busy here: nobody stores it)."""
    import datetime as dt

    from avenue import ratelimit
    from avenue.db import get_db
    from avenue.errors import ServerBusy
    from avenue.media.records import MediaDoc

    app = limited(app_factory, monkeypatch, address="5/minute")
    original = MediaDoc.from_files_doc(Buckets.PRODUCTS, put(app))
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_160", "webp")
    with app.test_request_context(environ_base={"REMOTE_ADDR": "198.51.100.7"}):
        db = get_db()
        db[renditions.CLAIMS].insert_one({"_id": wanted.claim_id(), "owner": "elsewhere",
                                          "until": dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)})
        with pytest.raises(ServerBusy):
            renditions.answer(db, wanted, original, lambda data: Fake(), wait=0.3,
                              admit=ratelimit.cold_render_gate(lambda: False))
        (counted,) = db[ratelimit.COLLECTION].find({"_id": {"$regex": "^render-address/198.51.100.7/"}})
        assert sum(value for name, value in counted.items() if name.startswith("w60_")) == 1
        assert db[renditions.CLAIMS].find_one({"_id": wanted.claim_id()})["owner"] == "elsewhere"


def test_each_request_for_a_cold_rendition_is_counted_once_whoever_renders_it(app_factory, backend,
                                                                              monkeypatch):
    """Four requests for one cold rendition on one worker: the one that renders is counted
    with its claim's insert, the three that wait for it in memory each alone before waiting
    (as every request that found it not stored was): four hits, one render, one claim."""
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("threads need a real server (mongomock is not thread-safe)")
    from avenue import ratelimit
    from avenue.db import get_db
    from avenue.media.records import MediaDoc

    app = limited(app_factory, monkeypatch, address="100/minute")
    original = MediaDoc.from_files_doc(Buckets.PRODUCTS, put(app))
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    admit = ratelimit.cold_render_gate(lambda: False)
    requests = 4
    start, rendering = threading.Barrier(requests), threading.Event()
    rendered, found, errors = [], [], []

    def slow_render(data):
        rendered.append(1)
        rendering.set()
        time.sleep(0.5)
        return Fake()

    def ask(first: bool):
        try:
            with app.test_request_context(environ_base={"REMOTE_ADDR": "198.51.100.7"}):
                db = get_db()
                start.wait()
                if not first:
                    rendering.wait(10)
                found.append(renditions.obtain(db, wanted, original, slow_render, admit=admit)["_id"])
        except BaseException as error:  # noqa: BLE001 - every failure is the finding
            errors.append(error)

    threads = [threading.Thread(target=ask, args=(n == 0,)) for n in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and rendered == [1] and len(set(found)) == 1 and len(found) == requests
    with app.app_context():
        db = get_db()
        (counted,) = db[ratelimit.COLLECTION].find({"_id": {"$regex": "^render-address/198.51.100.7/"}})
        assert sum(value for name, value in counted.items() if name.startswith("w60_")) == requests
        assert db[renditions.CLAIMS].count_documents({}) == 1


def test_a_cold_rendition_s_path_is_parsed_once_by_the_front_door_and_the_route(app, client, monkeypatch):
    """The front door (which declines a rendition not rendered yet) and the route share one
    parse of the path (MediaUrl.of keeps it in the request's environ)."""
    from avenue.media.serve.http import MediaUrl

    doc = put(app)
    parses = []
    real = MediaUrl.parse
    monkeypatch.setattr(MediaUrl, "parse", staticmethod(lambda path: parses.append(path) or real(path)))
    assert client.get(path(doc, "w_160.webp")).status_code == 200
    assert parses == [path(doc, "w_160.webp")]
