"""Status reports served from a shared snapshot, refreshed in the background."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from bson import ObjectId

from avenue.media import BUILDER
from avenue.status import snapshots as reports
from avenue.status import warm_up_status_reports


def _counter():
    calls = {"n": 0}

    def compute():
        calls["n"] += 1
        return {"value": calls["n"]}

    return calls, compute


def _age(db, name, seconds):
    """Make the snapshot ``seconds`` old: when it was computed and when that compute started
    (a refresh never replaces a snapshot whose compute started later, or in the same ms)."""
    then = reports.now() - dt.timedelta(seconds=seconds)
    db[reports.COLLECTION].update_one({"_id": name}, {"$set": {"generated_at": then, "started_at": then}})


def test_a_fresh_snapshot_is_answered_without_recomputing(db):
    calls, compute = _counter()
    first = reports.cached_report(db, "r", compute, max_age=60)
    second = reports.cached_report(db, "r", compute, max_age=60)
    assert first["value"] == second["value"] == 1 and calls["n"] == 1
    assert second["report"]["stale"] is False and second["report"]["generated_at"]


def test_refresh_recomputes_at_once(db):
    calls, compute = _counter()
    reports.cached_report(db, "r", compute, max_age=60)
    assert reports.cached_report(db, "r", compute, max_age=60, refresh=True)["value"] == 2


def test_a_stale_snapshot_is_answered_at_once_and_refreshed_in_the_background(db, monkeypatch):
    frozen = reports.now()  # every compute starts in the same millisecond, as on a fast machine
    monkeypatch.setattr(reports, "now", lambda: frozen)
    calls, compute = _counter()
    reports.cached_report(db, "r", compute, max_age=60)
    _age(db, "r", 3600)
    stale = reports.cached_report(db, "r", compute, max_age=60)
    assert stale["value"] == 1
    assert stale["report"]["stale"] is True and stale["report"]["refreshing"] is True
    assert stale["report"]["age_seconds"] >= 3600
    reports.wait_for_refreshes()
    fresh = reports.cached_report(db, "r", compute, max_age=60)
    assert fresh["value"] == 2 and fresh["report"]["stale"] is False


def test_a_snapshot_that_was_slow_to_compute_lives_ten_times_its_compute_time(db):
    calls, compute = _counter()
    reports.cached_report(db, "r", compute, max_age=60)
    db[reports.COLLECTION].update_one({"_id": "r"}, {"$set": {"compute_ms": 30_000}})  # took 30 s
    _age(db, "r", 200)  # past max_age, within 10 x 30 s
    kept = reports.cached_report(db, "r", compute, max_age=60)
    assert kept["report"]["stale"] is False and kept["report"]["stale_after_seconds"] == 300
    _age(db, "r", 301)
    stale = reports.cached_report(db, "r", compute, max_age=60)
    assert stale["report"]["stale"] is True and stale["report"]["refreshing"] is True
    reports.wait_for_refreshes()
    assert calls["n"] == 2


def test_only_one_worker_refreshes_a_stale_report(db):
    calls, compute = _counter()
    reports.cached_report(db, "r", compute, max_age=60)
    _age(db, "r", 3600)
    release = threading.Event()

    def slow():  # the refresh is still running while the other calls come in
        release.wait(10)
        return compute()

    answers = [reports.cached_report(db, "r", slow, max_age=60) for _ in range(3)]
    release.set()
    reports.wait_for_refreshes()
    assert [a["report"]["refreshing"] for a in answers] == [True, False, False]
    assert calls["n"] == 2


def test_a_zero_max_age_always_computes(db):
    calls, compute = _counter()
    for _ in range(2):
        reports.cached_report(db, "r", compute, max_age=0)
    assert calls["n"] == 2


def test_the_endpoint_says_how_old_its_report_is(app_factory, auth):
    app = app_factory(AVENUE_STATUS_MAX_AGE_SECONDS=60)
    from tests.helpers import Auth

    headers = Auth(app).token("ops")
    client = app.test_client()
    first = client.get("/api/shop/debug/products-status", headers=headers).get_json()
    assert first["report"]["stale"] is False
    client.post("/api/shop/products", headers=Auth(app).token("admin"),
                json={"sku": "NEW-1", "name": "New", "price": 100})
    cached = client.get("/api/shop/debug/products-status", headers=headers).get_json()
    assert cached["report"]["generated_at"] == first["report"]["generated_at"]
    refreshed = client.get("/api/shop/debug/products-status?refresh=1", headers=headers).get_json()
    assert refreshed != cached


def _hold_first_lease(db, name, owner="other-worker", seconds=300):
    """Another worker has started computing a report that has no snapshot yet."""
    db[reports.COLLECTION].insert_one(
        {"_id": name, "lease_owner": owner, "lease_until": reports.now() + dt.timedelta(seconds=seconds)})


def test_without_a_snapshot_a_request_waits_for_the_worker_already_computing_it(db):
    calls, compute = _counter()
    _hold_first_lease(db, "r")
    other = threading.Thread(target=lambda: (time.sleep(0.5), reports._compute_and_save(
        db, "r", lambda: {"value": "theirs"}, "other-worker")))
    other.start()
    answer = reports.cached_report(db, "r", compute, max_age=60)
    other.join()
    assert answer["value"] == "theirs" and calls["n"] == 0
    assert answer["report"]["waited_for_compute"] is True


def test_a_request_computes_the_first_snapshot_itself_when_the_other_lease_expired(db):
    calls, compute = _counter()
    _hold_first_lease(db, "r", seconds=-1)
    answer = reports.cached_report(db, "r", compute, max_age=60)
    assert answer["value"] == 1 and calls["n"] == 1
    assert answer["report"]["waited_for_compute"] is False
    assert "lease_owner" not in db[reports.COLLECTION].find_one({"_id": "r"})


def test_a_failed_compute_frees_its_lease(db):
    def broken():
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        reports.cached_report(db, "r", broken, max_age=60)
    assert "lease_owner" not in db[reports.COLLECTION].find_one({"_id": "r"})
    calls, compute = _counter()
    assert reports.cached_report(db, "r", compute, max_age=60, wait=0)["value"] == 1


def test_a_compute_that_started_earlier_never_replaces_a_newer_snapshot(db):
    def slow_and_old():
        # While this compute runs, another one starts, finishes and saves.
        reports._compute_and_save(db, "r", lambda: {"value": "newer"}, "other-worker")
        return {"value": "older"}

    reports._compute_and_save(db, "r", slow_and_old, "this-worker")
    doc = db[reports.COLLECTION].find_one({"_id": "r"})
    assert doc["report"] == {"value": "newer"} and "lease_owner" not in doc


def test_warm_up_computes_only_the_missing_snapshots_nobody_is_computing(db):
    fresh_calls, fresh = _counter()
    missing_calls, missing = _counter()
    leased_calls, leased = _counter()
    reports.cached_report(db, "fresh", fresh, max_age=60)
    _hold_first_lease(db, "leased")
    done = reports.warm_up(db, {"fresh": fresh, "missing": missing, "leased": leased})
    assert done == ["missing"]
    assert (fresh_calls["n"], missing_calls["n"], leased_calls["n"]) == (1, 1, 0)
    answer = reports.cached_report(db, "missing", missing, max_age=60)
    assert answer["value"] == 1 and missing_calls["n"] == 1


def test_warm_up_leaves_a_stale_snapshot_to_the_requests(db):
    calls, compute = _counter()
    reports.cached_report(db, "r", compute, max_age=60)
    _age(db, "r", 3600)
    assert reports.warm_up(db, {"r": compute}) == [] and calls["n"] == 1


def test_a_starting_worker_computes_both_missing_reports_in_the_background(app_factory, auth):
    app = app_factory(AVENUE_STATUS_MAX_AGE_SECONDS=60)
    from tests.helpers import Auth

    admin = Auth(app).token("admin")
    client = app.test_client()
    client.post("/api/shop/products", headers=admin, json={"sku": "WARM-1", "name": "Warm", "price": 1})
    thread = warm_up_status_reports(app)
    thread.join(60)
    with app.app_context():
        from avenue.db import get_db

        saved = {doc["_id"]: doc for doc in get_db()[reports.COLLECTION].find()}
    assert set(saved) == {"products-status", "storage-status"}
    assert saved["products-status"]["report"]["products"]["total"] == 1
    assert saved["storage-status"]["report"]["backend"] == "mongodb-gridfs"
    answer = client.get("/api/shop/debug/products-status", headers=Auth(app).token("ops")).get_json()
    assert answer["report"]["generated_at"] == reports.isoformat(saved["products-status"]["generated_at"])


def test_the_gunicorn_hook_warms_the_avenue_app_and_leaves_other_apps_alone(app_factory):
    import runpy
    import types
    from pathlib import Path

    from flask import Flask

    hook = runpy.run_path(str(Path(__file__).parents[1] / "gunicorn.conf.py"))["post_worker_init"]
    hook(types.SimpleNamespace(wsgi=Flask("a_baseline")))  # the benchmark's baselines: no error
    hook(types.SimpleNamespace(wsgi=lambda environ, start_response: []))
    app = app_factory()
    hook(types.SimpleNamespace(wsgi=app))
    reports.wait_for_refreshes(60)
    with app.app_context():
        from avenue.db import get_db

        names = {doc["_id"] for doc in get_db()[reports.COLLECTION].find({"report": {"$exists": True}})}
    assert names == {"products-status", "storage-status"}


def test_warm_up_can_be_switched_off(app_factory):
    assert warm_up_status_reports(app_factory(AVENUE_STATUS_WARM_UP=False)) is None


def test_gc_that_removed_garbage_refreshes_the_snapshots_a_gc_that_did_not_leaves_them(app_factory, auth):
    app = app_factory(AVENUE_STATUS_MAX_AGE_SECONDS=3600)
    from tests.helpers import Auth

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
            killed = ObjectId.from_datetime(reports.now() - dt.timedelta(days=1))
            db[f"{BUILDER}.chunks"].insert_one({"files_id": killed, "n": 0, "data": b"x"})

    assert products_total() == 0
    add_product_and_garbage("GC-1")
    assert cli.invoke(args=["gc", "--dry-run", "--quiet"]).exit_code == 0
    assert products_total() == 0  # a dry run changed nothing: the snapshot stays
    assert cli.invoke(args=["gc", "--quiet"]).exit_code == 0
    assert products_total() == 1  # the real run removed garbage: the snapshot was refreshed
    with app.app_context():
        from avenue.db import get_db

        get_db().shop_products.insert_one({"sku": "GC-2", "name": "y", "price": 1, "images": []})
    assert cli.invoke(args=["gc", "--quiet"]).exit_code == 0
    assert products_total() == 1  # nothing to remove: no recompute


def test_warm_up_leases_every_missing_report_before_computing_the_first(db):
    seen = {}

    def first():
        # While the first report is computed, the second is already leased to this worker.
        seen["second"] = db[reports.COLLECTION].find_one({"_id": "second"})
        return {"value": 1}

    assert reports.warm_up(db, {"first": first, "second": lambda: {"value": 2}}) == ["first", "second"]
    assert seen["second"]["lease_owner"] and "report" not in seen["second"]
    assert reports.warm_up(db, {"first": first, "second": lambda: {"value": 3}}) == []
