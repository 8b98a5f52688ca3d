"""Stored renditions (avenue/media/store/renditions.py) under a byte budget: recency noted on
every serving path and written in batches, the least recently used evicted, the running total,
storage-status, CDN purges of rendition URLs, and backups that leave renditions out."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import runpy
import threading
import types
from pathlib import Path

import pytest
from flask import current_app
from werkzeug.test import Client

from avenue import opsruns
from avenue.media import AppMedia, Buckets
from avenue.media.buckets import RENDITIONS
from avenue.media.effects import counters, purge
from avenue.media.effects.served import Deliveries
from avenue.media.serve import route
from avenue.media.serve.frontdoor import FrontDoor
from avenue.media.store import renditions
from avenue.media.store.originals import delete_image, store
from avenue.media.store.replace import replace_bytes
from avenue.ops import backup as backup_module
from avenue.ops import rendition_budget
from tests.helpers import Auth, image_bytes

HOOK = {"AVENUE_CDN_PURGE_URL": "https://purge.example/hook", "AVENUE_CDN_PURGE_KEY": "k" * 32,
        "AVENUE_MEDIA_BASE_URL": "https://cdn.example"}


def put(app, name="good/progressive.jpg", bucket=Buckets.PRODUCTS, **kwargs) -> dict:
    """Store a fixture through the media core; its files document."""
    from avenue.db import get_db, get_mongo

    with app.app_context():
        get_mongo().ensure_indexes()
        return store(get_db(), bucket, image_bytes(name), filename=name.split("/")[-1], **kwargs).doc


def path(doc, options: str, alias: str = "products") -> str:
    version = (doc.get("metadata") or {}).get("version") or ""
    token = f"{doc['_id']}~{version}" if version else str(doc["_id"])
    return f"/media/{alias}/{token}/{options}"


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
