"""Status reports served from a shared snapshot, refreshed in the background."""

from __future__ import annotations

import datetime as dt

from avenue.shop import reports


def _counter():
    calls = {"n": 0}

    def compute():
        calls["n"] += 1
        return {"value": calls["n"]}

    return calls, compute


def _age(db, name, seconds):
    db[reports.COLLECTION].update_one(
        {"_id": name}, {"$set": {"generated_at": reports.now() - dt.timedelta(seconds=seconds)}})


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


def test_a_stale_snapshot_is_answered_at_once_and_refreshed_in_the_background(db):
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


def test_only_one_worker_refreshes_a_stale_report(db):
    calls, compute = _counter()
    reports.cached_report(db, "r", compute, max_age=60)
    _age(db, "r", 3600)
    answers = [reports.cached_report(db, "r", compute, max_age=60) for _ in range(3)]
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
    from tests.conftest import Auth

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
