"""The status sweep: lists in bounded memory, one worker at a time, renewed, resumable."""

from __future__ import annotations

import datetime as dt
import threading
import time
import tracemalloc

import pytest
from bson import ObjectId

from avenue.clock import as_utc
from avenue.dialect import dialect_of
from avenue.embedded import fences as fenced
from avenue.media import AppMedia, Buckets, Library
from avenue.media.maintenance import Figures
from avenue.paging import Listed
from avenue.presentation.objects import image_ref
from avenue.status import sweep, warm_up_status_reports
from tests.helpers import Auth, image_bytes, swept, worker_start_hook
from tests.support import records

FAST = sweep.Settings(batch=2, lease_seconds=30, renew_seconds=0.0)


def _products(db, n: int, *, images=None) -> None:
    db.shop_products.insert_many([{"sku": f"P-{i:03}", "name": "x", "price": 1,
                                   "images": list(images or [f"/uploads/p/{i}.jpg"])} for i in range(n)])


def _stored(db, name: str, filename: str) -> dict:
    """A product image stored through the library, as its record (the sweep's reads)."""
    image = AppMedia.on(db).library(Buckets.PRODUCTS).store(Library.Upload(filename, image_bytes(name)),
                                                            kind="product").image
    return records.record(db, Buckets.PRODUCTS, image.id)


@pytest.fixture
def store_with_problems(db) -> dict:
    """Products over several batches, a reference to a missing file, an orphan, a missing variant."""
    good = _stored(db, "good/alpha.png", "a.png")
    orphan = _stored(db, "good/tiny_1x1.png", "o.png")
    _products(db, 5)
    gone = ObjectId()
    db.shop_products.insert_many([
        {"sku": "GOOD", "images": [image_ref(good)]},
        {"sku": "LOST", "images": [{**image_ref(good), "id": gone, "filename": "lost.jpg"}]},
    ])
    thumb = good["metadata"]["variants"]["thumb"]["webp"]["id"]
    db[f"{Buckets.PRODUCTS}.files"].delete_one({"_id": thumb})
    return {"good": good, "orphan": orphan, "gone": gone}


def _lists(result: dict) -> dict:
    keys = ("missing_files", "local_filesystem", "external", "orphans", "missing_variants", "stored_images")
    return {key: result[key] for key in keys}


def test_the_sweep_finds_the_same_problems_in_small_batches_as_in_one(db, store_with_problems, referrers):
    small = sweep.run(db, FAST, refs=referrers)
    large = sweep.run(db, sweep.Settings(batch=10_000), refs=referrers)
    assert small["batches"] > 4 and large["batches"] == 3
    assert _lists(small) == _lists(large)
    assert small["missing_files"]["items"] == [
        {"sku": "LOST", "reference": str(store_with_problems["gone"]), "filename": "lost.jpg"}]
    assert [o["id"] for o in small["orphans"]["items"]] == [str(store_with_problems["orphan"]["_id"])]
    assert small["missing_variants"]["items"] == [
        {"id": str(store_with_problems["good"]["_id"]), "missing": ["thumb.webp"], "skus": ["GOOD"]}]
    assert small["local_filesystem"]["count"] == 5


def test_what_a_sweep_holds_is_bounded_by_its_batch_not_by_the_store(db, monkeypatch, referrers):
    """Structural: every read returns at most one batch, every $in lookup at most IN_BATCH
    ids, every kept list at most LIST_LIMIT entries, whatever the number of documents."""
    monkeypatch.setattr(sweep, "IN_BATCH", 3)
    monkeypatch.setattr(sweep, "LIST_LIMIT", 4)
    doc = _stored(db, "good/alpha.png", "a.png")
    _products(db, 9, images=[image_ref(doc), "/uploads/x.jpg", {**image_ref(doc), "id": ObjectId()}])
    reads, lookups = [], []
    real_next, real_in = sweep.next_batch, sweep._in_batches
    monkeypatch.setattr(sweep, "next_batch", lambda *a, **k: reads.append(real_next(*a, **k)) or reads[-1])
    monkeypatch.setattr(sweep, "_in_batches",
                        lambda values: [lookups.append(part) or part for part in real_in(values)])
    result = sweep.run(db, sweep.Settings(batch=2), refs=referrers)
    assert reads and max(len(batch) for batch in reads) == 2
    assert lookups and max(len(ids) for ids in lookups) <= 3
    assert result["local_filesystem"]["count"] == 9 and len(result["local_filesystem"]["items"]) == 4
    assert result["missing_files"]["count"] == 9 and len(result["missing_files"]["items"]) == 4
    # Between batches only the checkpoint is kept: counts and cut lists, no ids.
    # Each product once, and of the files documents only the original (its 8 variants are
    # checked through its list, with one $in).
    assert sum(len(batch) for batch in reads) == 9 + 1


def _sweep_peak(db, referrers, products: int, ref: dict) -> int:
    """Bring the store to ``products`` products of five references each (written behind the
    app's back: no list fences yet), sweep it in batches of 50 and return the sweep's peak of
    traced memory in bytes."""
    have = db.shop_products.count_documents({})
    db.shop_products.insert_many([{"sku": f"M-{i:06}", "name": "x", "price": 1,
                                   "images": [{**ref, "id": ObjectId()} for _ in range(5)]}
                                  for i in range(have, products)])
    db[fenced.FENCES].delete_many({})  # as a store bulk-loaded since the last sweep
    fenced.forget_fences()
    tracemalloc.start()
    try:
        sweep.run(db, sweep.Settings(batch=50), refs=referrers)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_sweeps_peak_memory_does_not_grow_with_the_store(db, referrers):
    """Measured, not structural: the peak over a sweep of 2,000 products is within a small
    constant of the peak over 400. A first sweep on the embedded database read every product
    into one list (28 KB a product with five references: +493 MB in a worker at 15,000)."""
    if dialect_of(db).name == "mongomock":
        pytest.skip("mongomock copies every document a sorted query matches before the first one is "
                    "read: in this process, what a server holds in its own")
    ref = image_ref(_stored(db, "good/alpha.png", "a.png"))
    small = _sweep_peak(db, referrers, 400, ref)
    large = _sweep_peak(db, referrers, 2000, ref)
    # 1,600 more products held at once would be about 40 MB more; a batch of 50, about 1.5 MB.
    megabytes = f"{small / 2**20:.1f} MB at 400 products, {large / 2**20:.1f} MB at 2,000"
    assert large - small < 4 * 2**20, megabytes


def test_a_first_sweep_reads_its_products_a_fence_s_worth_at_a_time(db, monkeypatch, referrers):
    """On the embedded database every document a query's bounds hold is decoded under its one
    lock before one comes back: the products phase without fences (a first sweep after a
    bulk load) was one query of every product (4,200 products: 2.7 s, every call waiting)."""
    if dialect_of(db).whole_collection_reads:
        pytest.skip("a server that streams a cursor walks the products by _id, one cursor")
    db.shop_products.insert_many([{"sku": f"F-{i:04}", "name": "x", "price": 1, "images": []}
                                  for i in range(700)])
    db[fenced.FENCES].delete_many({})  # as a store bulk-loaded since the last sweep
    fenced.forget_fences()
    asked: list[tuple[dict, dict]] = []
    kind = type(db.shop_products)
    real_find = kind.find

    def find(self, *args, **kwargs):
        if self.name == "shop_products":
            asked.append((args[0] if args else kwargs.get("filter") or {}, args[1] if len(args) > 1 else {}))
        return real_find(self, *args, **kwargs)

    monkeypatch.setattr(kind, "find", find)
    sweep.run(db, sweep.Settings(batch=100), refs=referrers)
    monkeypatch.undo()
    reads = [db.shop_products.count_documents(query) for query, projection in asked if "images" in projection]
    assert sum(reads) >= 700 and max(reads) <= 2 * fenced.FENCE_EVERY, reads  # before: one read of 700
    # What is read whole is the skus alone, once: the product list's fences, built first.
    whole = [projection for query, projection in asked if not query or query.get("sku") == {"$exists": True}]
    assert whole == [{"sku": 1, "_id": 1}]


def test_an_interrupted_sweep_resumes_from_its_checkpoint(db, store_with_problems, monkeypatch, referrers):
    whole = sweep.run(db, FAST, refs=referrers)
    seen = []

    def interrupt(state):
        seen.append(state["documents"])
        if len(seen) == 3:
            raise KeyboardInterrupt  # the process is stopped mid-sweep

    monkeypatch.setattr(sweep, "batch_done", interrupt)
    with pytest.raises(KeyboardInterrupt):
        sweep.run(db, FAST, refs=referrers)
    saved = sweep.read(db)
    assert saved["run"]["documents"] == seen[-1] > 0 and "lease_owner" not in saved
    monkeypatch.setattr(sweep, "batch_done", lambda state: None)
    resumed = sweep.run(db, FAST, refs=referrers)
    assert resumed["resumed"] == 1
    assert resumed["documents"] == whole["documents"]  # the first part is not read again
    assert _lists(resumed) == _lists(whole)
    assert "run" not in sweep.read(db)


def test_originals_uploaded_in_the_same_instant_are_each_checked_once_across_a_resume(db, monkeypatch,
        referrers):
    # The files phase walks originals newest first after the last one's (date, id): ties on
    # the date are ordered by id, so a resume between them neither skips nor repeats one.
    ids = [_stored(db, name, f"{n}.png")["_id"]
           for n, name in enumerate(("good/alpha.png", "good/tiny_1x1.png", "good/png16.png",
                                     "good/grayscale.jpg", "good/palette_transparent.png"))]
    same = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    records.images(db, Buckets.PRODUCTS).update_many({"_id": {"$in": ids}}, {"$set": {"uploadDate": same}})
    calls = []

    def interrupt(state):
        calls.append(state["phase"])
        if state["phase"] == "files" and calls.count("files") == 1:
            raise KeyboardInterrupt  # after the first batch of originals

    monkeypatch.setattr(sweep, "batch_done", interrupt)
    with pytest.raises(KeyboardInterrupt):
        sweep.run(db, FAST, refs=referrers)
    monkeypatch.setattr(sweep, "batch_done", lambda state: None)
    resumed = sweep.run(db, FAST, refs=referrers)
    assert resumed["resumed"] == 1 and resumed["stored_images"] == 5
    assert sorted(item["id"] for item in resumed["orphans"]["items"]) == sorted(str(i) for i in ids)


def test_on_the_embedded_database_originals_are_read_between_fences_of_dates_and_resumed(db, monkeypatch,
        referrers):
    # One cursor over every original read them all into its first batch there (3.3 s for
    # 25,000, make run's every request waiting): windows of dates keep each read small.
    ids = [_stored(db, name, f"{n}.png")["_id"]
           for n, name in enumerate(("good/alpha.png", "good/tiny_1x1.png", "good/png16.png",
                                     "good/grayscale.jpg", "good/palette_transparent.png", "good/cmyk.jpg"))]
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for n, file_id in enumerate(ids):  # a week apart; the two last in the same instant
        uploaded = base + dt.timedelta(days=7 * min(n, 4))
        records.images(db, Buckets.PRODUCTS).update_one({"_id": file_id}, {"$set": {"uploadDate": uploaded}})
    db.media_counters.update_one({"_id": Buckets.PRODUCTS},
                                 {"$set": {"oldest": base, "newest": base + dt.timedelta(days=28)}})
    monkeypatch.setattr(fenced, "FENCE_EVERY", 1)
    sweep.run(db, FAST, refs=referrers)  # the first sweep's count samples the fences of the originals' dates
    db[sweep.COLLECTION].update_one({"_id": sweep.SWEEP_ID}, {"$unset": {"result": ""}})
    reads = []
    kind = type(db[f"{Buckets.PRODUCTS}.files"])
    real_find = kind.find
    walked = records.images(db, Buckets.PRODUCTS).name  # the originals are the image records

    def find(self, *args, **kwargs):
        query = args[0] if args else kwargs.get("filter") or {}
        if self.name == walked and query.get("metadata.role") == "original":
            reads.append(query)
        return real_find(self, *args, **kwargs)

    monkeypatch.setattr(kind, "find", find)
    calls = []

    def interrupt(state):
        calls.append(state["phase"])
        if state["phase"] == "files" and calls.count("files") == 2:
            raise KeyboardInterrupt  # after two batches of originals

    monkeypatch.setattr(sweep, "batch_done", interrupt)
    with pytest.raises(KeyboardInterrupt):
        sweep.run(db, FAST, refs=referrers)
    monkeypatch.setattr(sweep, "batch_done", lambda state: None)
    resumed = sweep.run(db, FAST, refs=referrers)

    assert resumed["resumed"] == 1 and resumed["stored_images"] == 6
    assert sorted(item["id"] for item in resumed["orphans"]["items"]) == sorted(str(i) for i in ids)
    if not dialect_of(db).whole_collection_reads:  # a read per fence, each bounded by dates
        assert len(reads) > 6 and all("uploadDate" in query for query in reads)
    else:  # one cursor per range, as mongod streams it
        assert len(reads) <= 3


def test_a_sweep_whose_holder_died_is_taken_over_once_its_lease_lapses(db, store_with_problems,
                                                                       lease_clock, referrers):
    settings = sweep.Settings(batch=2, lease_seconds=0.2)
    assert sweep.take_lease(db, "dead-worker", settings)
    lease_clock.advance(0.19)
    assert sweep.run(db, settings, refs=referrers) is None  # held
    lease_clock.advance(0.02)
    assert sweep.run(db, settings, refs=referrers)["missing_files"]["count"] == 1


def _lease_renewed_past(db, lease_clock) -> dt.datetime:
    """The sweep's stored lease expiry once the heartbeat (a thread, real time) renewed it past
    the leases' stepped clock; what it still is after 30 s if it never does."""
    deadline = time.monotonic() + 30
    until = as_utc(sweep.read(db)["lease_until"])
    while until <= lease_clock() and time.monotonic() < deadline:
        time.sleep(0.02)
        until = as_utc(sweep.read(db)["lease_until"])
    return until


def test_the_lease_is_renewed_while_a_long_sweep_runs(db, store_with_problems, monkeypatch, lease_clock,
        referrers):
    # 12 batches, each longer than the lease on the leases' clock (stepped past it): the lease
    # survives a batch only because the heartbeat renewed it from the stepped clock, and the
    # other worker tries after that renewal, however slow the machine is. (In real time,
    # every renewal had to land within a 1 s lease: 0.12 s, then 0.35 s, lapsed under the
    # full suite and the other worker took over.)
    settings = sweep.Settings(batch=1, lease_seconds=0.4, renew_seconds=0.02)  # a beat every 0.1 s
    leases, others = [], []
    sweep.wait_for_sweeps(30)  # nothing this process started in the background holds it

    def slow_batch(state):
        lease_clock.advance(1.1 * settings.lease_seconds)  # the batch outlasted the lease
        until = _lease_renewed_past(db, lease_clock)
        assert until > lease_clock(), "the heartbeat did not renew the lease"
        leases.append(until)
        others.append(sweep.take_lease(db, "other-worker", settings))

    monkeypatch.setattr(sweep, "batch_done", slow_batch)
    started = lease_clock()
    result = sweep.run(db, settings, refs=referrers)
    assert result is not None, "the lease was held by another sweep"
    assert lease_clock() - started > dt.timedelta(seconds=3 * settings.lease_seconds)  # three leases long
    assert result["lease_renewals"] >= len(leases) >= 3  # a renewal in every batch
    assert leases == sorted(leases) and len(set(leases)) >= 3
    assert not any(others)  # nobody could take it over while it ran


def test_a_sweep_that_lost_its_lease_stops_without_saving(db, store_with_problems, monkeypatch, referrers):
    def taken_over(state):
        db[sweep.COLLECTION].update_one({"_id": sweep.SWEEP_ID}, {"$set": {"lease_owner": "other"}})

    monkeypatch.setattr(sweep, "batch_done", taken_over)
    assert sweep.run(db, FAST, refs=referrers) is None
    assert "result" not in sweep.read(db)


def test_a_failed_sweep_frees_its_lease_and_keeps_its_checkpoint(db, store_with_problems, monkeypatch,
        referrers):
    calls = []

    def broken(state):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("database went away")

    monkeypatch.setattr(sweep, "batch_done", broken)
    with pytest.raises(RuntimeError):
        sweep.run(db, FAST, refs=referrers)
    saved = sweep.read(db)
    assert "lease_owner" not in saved and saved["run"]["batches"] == 2
    assert sweep.due(saved, FAST)


def test_a_sweep_is_due_first_then_after_its_interval_or_when_asked(db, referrers):
    settings = sweep.Settings(interval_seconds=60)
    assert sweep.due(sweep.read(db), settings)
    sweep.run(db, settings, refs=referrers)
    assert not sweep.due(sweep.read(db), settings)
    later = sweep.now() + dt.timedelta(seconds=61)
    assert sweep.due(sweep.read(db), settings, later)
    sweep.request(db)
    assert sweep.due(sweep.read(db), settings)
    sweep.take_lease(db, "other-worker", settings)
    assert not sweep.due(sweep.read(db), settings)  # one is running


def test_the_legacy_folder_is_swept_in_batches_and_resumed(db, tmp_path, monkeypatch, referrers):
    for name in ("a/1.jpg", "a/2.jpg", "b/c/3.jpg", "d.jpg", "e.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x" * 10)
    db.legacy_paths.insert_one({"path": "/uploads/b/c/3.jpg", "bucket": Buckets.PRODUCTS,
                                "file_id": ObjectId()})
    assert [parts for parts, _ in sweep.legacy_files(tmp_path, ["a", "2.jpg"])] == [
        ["b", "c", "3.jpg"], ["d.jpg"], ["e.jpg"]]
    settings = sweep.Settings(batch=2, legacy_dir=str(tmp_path))
    calls = []
    monkeypatch.setattr(sweep, "batch_done", lambda state: calls.append(state["phase"]) and None)
    legacy = sweep.run(db, settings, refs=referrers)["legacy"]
    assert (legacy["files"], legacy["imported"], legacy["not_imported"], legacy["bytes"]) == (5, 1, 4, 50)
    assert "/uploads/b/c/3.jpg" not in legacy["not_imported_items"]
    assert calls.count("legacy") >= 2


# --- the endpoints and the workers ------------------------------------------------------------


def test_status_is_fresh_right_after_a_write(app, client):
    auth = Auth(app)
    admin, ops = auth.token("admin"), auth.token("ops")
    before = client.get("/api/shop/debug/products-status", headers=ops).get_json()
    client.post("/api/shop/products", headers=admin, json={"sku": "NEW-1", "name": "New", "price": 100})
    after = client.get("/api/shop/debug/products-status", headers=ops).get_json()
    assert after["products"]["total"] == before["products"]["total"] + 1
    assert after["report"]["age_seconds"] == 0.0 and after["report"]["stale"] is False
    import io

    added = client.post("/api/shop/products/NEW-1/images", headers=admin,
                        data={"images": (io.BytesIO(image_bytes("good/alpha.png")), "a.png")})
    assert added.status_code == 201
    now_products = client.get("/api/shop/debug/products-status", headers=ops).get_json()
    storage = client.get("/api/shop/debug/storage-status", headers=ops).get_json()
    assert now_products["products"]["with_images"] == 1 and now_products["references"]["stored"] == 1
    products = storage["buckets"][Buckets.PRODUCTS]
    assert products["originals"] == 1 and products["files"] == 9
    assert now_products["sweep"]["generated_at"] is None  # no sweep yet: the lists are not known
    assert now_products["safe"] is None


def test_refresh_starts_a_sweep_in_the_background_and_answers_at_once(app, client):
    ops = Auth(app).token("ops")
    answer = client.get("/api/shop/debug/products-status?refresh=1", headers=ops).get_json()
    assert answer["sweep"]["requested"] is True
    sweep.wait_for_sweeps(30)
    for no in ("0", "no", "on"):  # refresh is 1, true or yes (any case); any other word is no
        assert client.get(f"/api/shop/debug/storage-status?refresh={no}", headers=ops).get_json()[
            "sweep"]["requested"] is False, no
    assert client.get("/api/shop/debug/storage-status?refresh=YES", headers=ops).get_json()[
        "sweep"]["requested"] is True
    sweep.wait_for_sweeps(30)
    later = client.get("/api/shop/debug/products-status", headers=ops).get_json()
    assert later["sweep"]["generated_at"] is not None and later["sweep"]["age_seconds"] >= 0
    assert later["safe"] is True and later["sweep"]["requested"] is False


def test_a_request_that_finds_no_sweep_starts_one_unless_sweeps_are_off(app_factory):
    app = app_factory(AVENUE_STATUS_WARM_UP=True)
    Auth(app).token("ops")
    client = app.test_client()
    client.get("/api/shop/debug/storage-status", headers=Auth(app).token("ops"))
    sweep.wait_for_sweeps(30)
    with app.app_context():
        from avenue.db import get_db

        assert sweep.read(get_db())["result"]["generated_at"]


def test_a_history_sample_reads_the_reports_without_asking_for_a_sweep(app, db, referrers):
    # The sampler used to read the reports with refresh=1: every sample started a sweep, so on
    # a store of a million files one was always running beside the requests.
    from avenue.monitoring import status_reports

    sweep.run(db, FAST, refs=referrers)
    before = sweep.read(db)
    storage, products = status_reports(db, app.config, referrers)()
    sweep.wait_for_sweeps(30)
    after = sweep.read(db)
    assert storage["buckets"] and products["products"]["total"] == 0
    assert after.get("requested_at") is None and after.get("lease_owner") is None
    assert after["result"]["generated_at"] == before["result"]["generated_at"]


def test_a_starting_worker_sweeps_in_the_background(app_factory):
    app = app_factory(AVENUE_STATUS_WARM_UP=True)
    Auth(app).token("admin")
    with app.app_context():
        from avenue.db import get_db

        get_db().shop_products.insert_one({"sku": "WARM-1", "name": "Warm", "price": 1, "images": []})
    scheduler = warm_up_status_reports(app)
    try:
        deadline = time.monotonic() + 30
        with app.app_context():
            while (sweep.read(get_db()) or {}).get("result") is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sweep.read(get_db())["result"]["reconciled"]["products"]["drift"]["products"] == 1
    finally:
        scheduler.stop()


def test_the_gunicorn_hook_starts_the_avenue_apps_scheduler_and_leaves_other_apps_alone(
        app_factory, monkeypatch, tmp_path):
    import threading

    from flask import Flask

    hook, worker = worker_start_hook(monkeypatch, tmp_path)
    hook(worker(Flask("a_baseline")))  # the benchmark's baselines: no error
    hook(worker(lambda environ, start_response: []))
    app = app_factory(AVENUE_STATUS_WARM_UP=True, AVENUE_HISTORY_INTERVAL_SECONDS=0)
    before = {t for t in threading.enumerate() if isinstance(t, sweep.Scheduler)}
    hook(worker(app))
    started = {t for t in threading.enumerate() if isinstance(t, sweep.Scheduler)} - before
    assert len(started) == 1
    for scheduler in started:
        scheduler.stop()


def test_a_worker_starting_on_a_fresh_database_creates_the_indexes_before_its_first_sweep(
        app_factory, monkeypatch, tmp_path, caplog):
    import threading

    from avenue.db import COLLECTION_INDEXES, PRODUCTS

    app = app_factory(AVENUE_STATUS_WARM_UP=True, AVENUE_HISTORY_INTERVAL_SECONDS=0)
    db = app.extensions["avenue.mongo"].db
    first_read: list[set[str]] = []
    read = sweep.read

    def reading(database):
        if not first_read:  # the scheduler's first query: which of the products' indexes exist
            first_read.append(set(database[PRODUCTS].index_information()))
        return read(database)

    monkeypatch.setattr(sweep, "read", reading)
    hook, worker = worker_start_hook(monkeypatch, tmp_path)
    before = {t for t in threading.enumerate() if isinstance(t, sweep.Scheduler)}
    with caplog.at_level("WARNING"):
        hook(worker(app))  # no request has reached this app: nothing ensured the indexes yet
        [scheduler] = {t for t in threading.enumerate() if isinstance(t, sweep.Scheduler)} - before
        try:
            deadline = time.monotonic() + 30
            while (read(db) or {}).get("result") is None and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            scheduler.stop()
    assert (read(db) or {}).get("result") is not None
    assert {model.document["name"] for model in COLLECTION_INDEXES[PRODUCTS]} <= first_read[0]
    assert "hint does not correspond" not in caplog.text
    assert [r.getMessage() for r in caplog.records if r.levelname in ("WARNING", "ERROR", "CRITICAL")] == []


def test_warm_up_can_be_switched_off(app_factory):
    assert warm_up_status_reports(app_factory(AVENUE_STATUS_WARM_UP=False)) is None


def test_gc_that_removed_garbage_reconciles_the_counters_a_gc_that_did_not_leaves_them(app_factory):
    app = app_factory()
    ops = Auth(app).token("ops")
    client = app.test_client()
    cli = app.test_cli_runner()

    def products_total() -> int:
        return client.get("/api/shop/debug/products-status", headers=ops).get_json()["products"]["total"]

    def add_product_and_garbage(sku: str) -> None:
        with app.app_context():
            from avenue.db import get_db

            db = get_db()
            db.shop_products.insert_one({"sku": sku, "name": "x", "price": 1, "images": []})
            # Chunks of an upload killed a day ago: garbage gc removes.
            killed = ObjectId.from_datetime(sweep.now() - dt.timedelta(days=1))
            db[f"{Buckets.BUILDER}.chunks"].insert_one({"files_id": killed, "n": 0, "data": b"x"})

    assert products_total() == 0
    add_product_and_garbage("GC-1")  # behind the counters' back
    assert cli.invoke(args=["gc", "--dry-run", "--quiet"]).exit_code == 0
    assert products_total() == 0  # a dry run changed nothing: no recount
    assert cli.invoke(args=["gc", "--quiet"]).exit_code == 0
    assert products_total() == 1  # the real run removed garbage: the counters were reconciled
    with app.app_context():
        from avenue.db import get_db

        get_db().shop_products.insert_one({"sku": "GC-2", "name": "y", "price": 1, "images": []})
        assert sweep.read(get_db())["requested_at"]  # and a sweep was asked for
    assert cli.invoke(args=["gc", "--quiet"]).exit_code == 0
    assert products_total() == 1  # nothing to remove: no recount
    swept(app)
    assert products_total() == 2  # the sweep's reconciliation finds it


def test_a_failing_scheduler_tick_is_logged_and_the_next_tick_tries_again(db, monkeypatch, caplog, referrers):
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("database went away")

    monkeypatch.setattr(sweep, "run", broken)
    with caplog.at_level("ERROR"):
        scheduler = sweep.schedule(db, sweep.Settings(), tick_seconds=0.01, refs=referrers)
        deadline = time.monotonic() + 10
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        scheduler.stop()
    assert len(calls) >= 3 and not scheduler.is_alive()
    assert any("tick failed" in record.getMessage() for record in caplog.records)


def test_a_background_sweep_that_fails_is_logged_and_leaves_its_checkpoint(db, store_with_problems,
                                                                           monkeypatch, caplog, referrers):
    def broken(state):
        raise RuntimeError("database went away")

    monkeypatch.setattr(sweep, "batch_done", broken)
    with caplog.at_level("ERROR"):
        sweep.run_in_background(db, FAST, referrers).join(30)
    assert any("sweep failed" in record.getMessage() for record in caplog.records)
    assert sweep.read(db)["run"]["batches"] == 1


def test_the_sweep_ends_by_building_every_lists_fences(db, store_with_problems, monkeypatch, referrers):
    if dialect_of(db).whole_collection_reads:
        pytest.skip("fences are built where lists are read between them (the embedded database)")
    from avenue.embedded import fences as fenced

    monkeypatch.setattr(sweep, "build_fences",
                        lambda db, listed, **kwargs: fenced.build_fences(db, listed, every=2, **kwargs))
    result = sweep.run(db, FAST, refs=referrers)
    assert set(result["fences"]) == {"shop_products", "audit_logs", "uploads.images", "builder_media.images",
                                     "media_trash.images"}
    assert (result["fences"]["shop_products"]["items"], result["fences"]["shop_products"]["fences"]) == (7, 3)
    stored = db[fenced.FENCES].find_one({"_id": "shop_products|sku"})
    assert stored["keys"] == ["LOST", "P-001", "P-003"]  # every second sku: GOOD, LOST, P-000, P-001...


def test_a_list_whose_fences_fail_to_build_keeps_the_old_ones_and_the_sweep_finishes(db, store_with_problems,
                                                                                      monkeypatch, referrers):
    if dialect_of(db).whole_collection_reads:
        pytest.skip("fences are built where lists are read between them (the embedded database)")
    from pymongo.errors import OperationFailure

    from avenue.embedded import fences as fenced

    fenced.build_fences(db, Listed("shop_products", {}, [("sku", 1)], "sku_unique"), every=3)
    before = db[fenced.FENCES].find_one({"_id": "shop_products|sku"})
    real = sweep.build_fences

    def failing(db, listed, **kwargs):
        if listed.collection == "shop_products":
            raise OperationFailure("interrupted at shutdown", code=11600)
        return real(db, listed, **kwargs)

    monkeypatch.setattr(sweep, "build_fences", failing)
    result = sweep.run(db, FAST, refs=referrers)
    assert "interrupted at shutdown" in result["fences"]["shop_products"]["error"]
    assert result["fences"]["uploads.images"]["items"] == 0  # the others were built
    assert db[fenced.FENCES].find_one({"_id": "shop_products|sku"}) == before
    assert result["missing_files"]["count"] == 1  # and the sweep's own lists are whole


def test_a_step_longer_than_the_lease_keeps_it(db, store_with_problems, monkeypatch, lease_clock, referrers):
    """The buckets' recounts have no checkpoint inside (one server-side count each): the
    heartbeat renews the lease meanwhile, so another worker cannot take the sweep over."""
    settings = sweep.Settings(batch=10, lease_seconds=0.4, renew_seconds=0.02)  # a beat every 0.1 s
    real = Figures.recount_media
    taken_meanwhile = []

    def slow(figures):
        # Three leases long on the leases' clock, stepped a lease and a bit at a time: each
        # step is survived only by a renewal from the heartbeat (waited for, in real time).
        for _ in range(3):
            lease_clock.advance(1.1 * settings.lease_seconds)
            assert _lease_renewed_past(db, lease_clock) > lease_clock(), "the heartbeat did not renew it"
        taken_meanwhile.append(sweep.take_lease(db, "another-worker", settings))
        return real(figures)

    monkeypatch.setattr(Figures, "recount_media", slow)
    result = sweep.run(db, settings, owner="this-worker", refs=referrers)
    assert taken_meanwhile == [False]
    assert result is not None and result["missing_files"]["count"] == 1
    assert result["lease_renewals"] >= 3


def test_a_reference_to_an_image_replaced_in_place_is_not_a_missing_file(db, referrers):
    """A reference names the image (its record), not the file under its id: a replace in place
    writes the new bytes under another id and deletes that file (media/store/replace.py)."""
    good = _stored(db, "good/alpha.png", "a.png")
    db.shop_products.insert_one({"sku": "REPLACED", "images": [image_ref(good)]})
    db[f"{Buckets.PRODUCTS}.files"].delete_one({"_id": good["_id"]})
    db[f"{Buckets.PRODUCTS}.chunks"].delete_many({"files_id": good["_id"]})
    assert sweep.run(db, FAST, refs=referrers)["missing_files"]["items"] == []
    records.images(db, Buckets.PRODUCTS).delete_one({"_id": good["_id"]})  # the image itself gone
    assert [item["reference"] for item in sweep.run(db, FAST, refs=referrers)["missing_files"]["items"]] == [
        str(good["_id"])]


def test_a_background_sweep_runs_beside_the_request_only_where_threads_can_share_the_database(
        db, monkeypatch, referrers):
    """mongomock is not thread-safe: a sweep run beside a request's own writes raced them into
    a 500 (a product's delete, mid-update of the counters); there it ends before the request
    goes on. Elsewhere the request does not wait for it."""
    from avenue.dialect import threads_safe

    go_on = threading.Event()

    def held_sweep(db, settings, refs):
        go_on.wait(0.5)

    monkeypatch.setattr(sweep, "run", held_sweep)
    thread = sweep.run_in_background(db, FAST, referrers)
    try:
        assert thread.is_alive() is threads_safe(db)
    finally:
        go_on.set()
        thread.join(5)
