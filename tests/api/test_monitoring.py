"""Storage history and alerts (avenue/monitoring): samples, the lease, series, crossings,
cooldowns, acknowledgement, the webhook; then the three endpoints."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.server
import json
import threading
import time

import pytest

from avenue.clock import as_utc
from avenue.embedded import free_port
from avenue.monitoring import alerts, history, sampler
from tests.helpers import expires_after, trickling_server
from tests.support.client import uploaded
from tests.support.monitoring import T0, THRESHOLDS, reports, take


@pytest.fixture
def mdb(db, app):
    from avenue import monitoring

    monitoring.ensure_indexes(db, 90)
    return db


def test_a_sample_holds_the_reports_numbers(mdb):
    sample = take(mdb, T0, 50.0, originals=3)
    stored = mdb[history.SAMPLES].find_one({})
    assert as_utc(stored["slot"]) == T0 and sample["slot"] == T0
    assert stored["gridfs_bytes"] == 30 and stored["database_bytes"] == 600
    assert stored["buckets"]["products"] == {"files": 15, "originals": 3, "bytes": 30}
    assert stored["quota"]["percent"] == 50.0 and stored["safety"]["safe"] is True


def test_only_one_instance_samples_each_slot(mdb):
    assert take(mdb, T0 + dt.timedelta(minutes=1), owner="a") is not None
    assert take(mdb, T0 + dt.timedelta(minutes=2), owner="b") is None
    assert take(mdb, T0 + dt.timedelta(minutes=59), owner="a") is None
    assert take(mdb, T0 + dt.timedelta(hours=1, minutes=1), owner="b") is not None
    assert mdb[history.SAMPLES].count_documents({}) == 2


def test_a_slot_never_gets_two_samples_even_past_the_lease(mdb):
    take(mdb, T0)
    mdb[sampler.LEASES].delete_many({})  # the lease document lost (restored backup, manual cleanup)
    assert take(mdb, T0 + dt.timedelta(minutes=5), owner="b") is None
    assert mdb[history.SAMPLES].count_documents({}) == 1


def test_samples_expire_after_the_retention(mdb):
    assert expires_after(mdb[history.SAMPLES], "retention_90d") == 90 * 86400
    history.ensure_indexes(mdb, 30)
    info = mdb[history.SAMPLES].index_information()
    assert "retention_90d" not in info and expires_after(mdb[history.SAMPLES], "retention_30d") == 30 * 86400


def test_quota_crossings_are_recorded_once_per_cooldown_and_escalate_at_once(mdb):
    take(mdb, T0, 72.0)
    take(mdb, T0 + dt.timedelta(hours=1), 74.0)  # still warning: in its 7-day cooldown
    assert [(a["kind"], a["level"]) for a in alerts.list_alerts(mdb)] == [("quota", "warning")]
    take(mdb, T0 + dt.timedelta(hours=2), 90.0)  # worse: recorded at once
    take(mdb, T0 + dt.timedelta(hours=3), 96.0)
    take(mdb, T0 + dt.timedelta(hours=4), 97.0)
    levels = [a["level"] for a in alerts.list_alerts(mdb)]
    assert levels == ["emergency", "critical", "warning"]
    take(mdb, T0 + dt.timedelta(hours=28), 97.0)  # emergency's cooldown is 24 h
    take(mdb, T0 + dt.timedelta(hours=49), 90.0)  # critical's is 48 h: 47 h after, not again
    take(mdb, T0 + dt.timedelta(hours=51), 90.0)  # 49 h after: again
    take(mdb, T0 + dt.timedelta(days=6), 72.0)  # warning's is 7 days: not again
    assert [a["level"] for a in alerts.list_alerts(mdb)] == ["critical", "emergency", "emergency",
                                                              "critical", "warning"]
    take(mdb, T0 + dt.timedelta(days=7, hours=1), 72.0)
    assert alerts.list_alerts(mdb)[0]["level"] == "warning"
    first = alerts.list_alerts(mdb)[-1]
    assert "72.0 %" in first["message"] and first["threshold"] == 70.0


def test_no_quota_no_quota_alert_and_an_unsafe_verdict_is_one(mdb):
    take(mdb, T0, None, safe=False, missing=0)
    take(mdb, T0 + dt.timedelta(hours=1), None, safe=False, missing=3)
    found = alerts.list_alerts(mdb)
    assert [(a["kind"], a["level"]) for a in found] == [("safety", "critical"), ("safety", "warning")]
    assert "3 missing file(s)" in found[0]["message"]


def test_thresholds_are_configurable_and_checked():
    assert alerts.parse_thresholds("60, 80,90") == (60.0, 80.0, 90.0)
    assert alerts.quota_level(79.9, (60.0, 80.0, 90.0)) == "warning"
    for bad in ("70,85", "85,70,95", "a,b,c", "70,85,120"):
        with pytest.raises(RuntimeError, match="AVENUE_ALERT_THRESHOLDS"):
            alerts.parse_thresholds(bad)


def test_acknowledging_keeps_the_first_acknowledgement(mdb):
    take(mdb, T0, 99.0)
    alert = alerts.list_alerts(mdb)[0]
    from bson import ObjectId

    done = alerts.acknowledge(mdb, ObjectId(alert["id"]), "ops@example.com", T0 + dt.timedelta(hours=1))
    again = alerts.acknowledge(mdb, ObjectId(alert["id"]), "admin@example.com", T0 + dt.timedelta(hours=2))
    assert done["acknowledged"] and again["acknowledged_by"] == "ops@example.com"
    assert again["acknowledged_at"] == "2026-11-01T13:00:00Z"
    assert alerts.list_alerts(mdb, open_only=True) == []
    with pytest.raises(alerts.NotFound):
        alerts.acknowledge(mdb, ObjectId(), "x", T0)


def test_a_bad_range_is_refused():
    with pytest.raises(history.BadRequest):
        history.parse_range("1y")
    assert history.parse_range(None) == "7d"


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers["Content-Length"])
        _Hook.received.append((dict(self.headers), self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


HOOK_KEY = "alert-hook-key-" + "k" * 24


def hook_config(url: str) -> dict:
    return {"AVENUE_HISTORY_INTERVAL_SECONDS": 3600, "AVENUE_ALERT_THRESHOLDS": "70,85,95",
            "AVENUE_ALERT_WEBHOOK_URL": url, "AVENUE_ALERT_WEBHOOK_KEY": HOOK_KEY}


def test_new_alerts_go_to_the_webhook_signed_and_its_outcome_is_kept(mdb):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # The notifier a worker's sampler builds from its configuration (its thread not started).
        notify = sampler.Sampler(mdb, lambda: reports(88.0),
                                 hook_config(f"http://127.0.0.1:{server.server_port}/hook")).notify
        sampler.sample_once(mdb, lambda: reports(88.0), interval=3600, thresholds=THRESHOLDS,
                            moment=T0, owner="a", notify=notify)
    finally:
        server.shutdown()
        server.server_close()
    headers, body = _Hook.received[-1]
    assert json.loads(body)["alert"]["level"] == "critical"
    # Signed as the CDN purge hook is: HMAC-SHA256 of "<timestamp>.<body>" under the key.
    signed = headers["X-Avenue-Timestamp"].encode() + b"." + body
    expected = "sha256=" + hmac.new(HOOK_KEY.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Avenue-Signature"], expected)
    assert abs(int(headers["X-Avenue-Timestamp"]) - time.time()) < 60
    assert alerts.list_alerts(mdb)[0]["notified"]["ok"] is True
    closed = alerts.webhook_notifier(f"http://127.0.0.1:{free_port()}/hook", lambda: T0, key=HOOK_KEY)
    sampler.sample_once(mdb, lambda: reports(99.0), interval=3600, thresholds=THRESHOLDS,
                        moment=T0 + dt.timedelta(hours=1), owner="a", notify=closed)
    assert alerts.list_alerts(mdb)[0]["notified"]["ok"] is False


def test_a_webhook_that_trickles_its_answer_is_given_up_at_the_deadline(monkeypatch):
    # urllib's timeout bounds each read: a byte every 0.2 s would have held the sampler ~13 s
    # for the head alone (forever, with a longer answer). Under 8 s: a loaded machine, and
    # still well short of that.
    monkeypatch.setattr(alerts, "WEBHOOK_TIMEOUT_SECONDS", 1.0)
    with trickling_server(pause=0.2) as url:
        started = time.monotonic()
        outcome = alerts.webhook_notifier(url, lambda: T0, key=HOOK_KEY)({"id": "a"})
        elapsed = time.monotonic() - started
    assert outcome["ok"] is False and "timed out" in outcome["error"]
    assert elapsed < 8.0


def test_a_production_alert_webhook_needs_a_real_key():
    from avenue.config import check

    config = {"AVENUE_ENV": "production", "SECRET_KEY": "s" * 40, "MONGO_URI": "mongodb://x",
              "AVENUE_ALERT_WEBHOOK_URL": "https://alerts.example/hook", "AVENUE_ALERT_WEBHOOK_KEY": "short"}
    with pytest.raises(RuntimeError, match="AVENUE_ALERT_WEBHOOK_KEY"):
        check(config)
    check({**config, "AVENUE_ALERT_WEBHOOK_KEY": HOOK_KEY})


def test_sampler_threads_of_two_instances_sample_each_interval_once(app, mdb):
    config = {"AVENUE_HISTORY_INTERVAL_SECONDS": 1, "AVENUE_ALERT_THRESHOLDS": "70,85,95"}
    threads = [sampler.Sampler(mdb, lambda: reports(10.0), config, first_delay=0).start() for _ in range(2)]
    # Until two intervals were sampled (waited for: a sample may take a second on a loaded
    # machine), both instances ticking at every quarter interval meanwhile.
    deadline = time.monotonic() + 30
    while mdb[history.SAMPLES].count_documents({}) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    for thread in threads:
        thread.stop()
    slots = [doc["slot"] for doc in mdb[history.SAMPLES].find({})]
    assert len(slots) >= 2 and len(slots) == len(set(slots))


def test_the_app_refuses_bad_thresholds_and_starts_no_sampler_when_off(app_factory):
    from avenue import monitoring

    with pytest.raises(RuntimeError, match="AVENUE_ALERT_THRESHOLDS"):
        app_factory(AVENUE_ALERT_THRESHOLDS="90,80,70")
    assert monitoring.start_sampler(app_factory(AVENUE_HISTORY_INTERVAL_SECONDS=0)) is None
    running = monitoring.start_sampler(app_factory(AVENUE_HISTORY_INTERVAL_SECONDS=3600))
    try:
        assert running.thread.is_alive() and running.interval == 3600
    finally:
        running.stop()


def test_the_endpoints_serve_history_and_alerts_to_ops(app, auth, mdb):
    take(mdb, dt.datetime.now(dt.UTC) - dt.timedelta(hours=2), 90.0, originals=1)
    client, csrf = auth.login("ops")
    answer = client.get("/api/admin/history?range=24h")
    assert answer.status_code == 200 and len(answer.get_json()["points"]) == 1
    refused = client.get("/api/admin/history?range=forever")
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_range"
    assert refused.get_json()["error"]["message"] == "range must be one of 24h, 7d, 30d."
    assert client.get("/api/admin/history?range=%2024h%20").status_code == 200  # stripped, as before
    answer = client.get("/api/admin/alerts").get_json()
    assert answer["thresholds"] == {"warning": 70.0, "critical": 85.0, "emergency": 95.0}
    items = answer["items"]
    assert [a["level"] for a in items] == ["critical"]
    assert client.post(f"/api/admin/alerts/{items[0]['id']}/ack").status_code == 403  # no CSRF token
    acked = client.post(f"/api/admin/alerts/{items[0]['id']}/ack", headers=csrf)
    assert acked.status_code == 200 and acked.get_json()["acknowledged_by"].startswith("ops-")
    assert client.get("/api/admin/alerts?open=1").get_json()["items"] == []
    assert client.get("/api/admin/alerts?open=YES").get_json()["items"] == []  # any case
    for no in ("0", "no", "on", ""):  # any other word is no: every alert, acknowledged or not
        assert len(client.get(f"/api/admin/alerts?open={no}").get_json()["items"]) == 1, no
    missing = client.post("/api/admin/alerts/0123456789abcdef01234567/ack", headers=csrf)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "alert_not_found"


def test_a_just_made_upload_counts_in_this_hour_and_today_and_a_delete_does_not_hide_it(client, auth):
    uploader = auth.token("editor")
    made = uploaded(client, uploader, visibility="public")
    assert client.delete(f"/api/uploads/{made['id']}", headers=uploader).status_code == 204
    ops = auth.token("ops")
    hour = made["uploaded_at"][:13] + ":00:00Z"
    day = client.get("/api/admin/history?range=24h", headers=ops).get_json()
    assert {bar["start"]: bar["count"] for bar in day["uploads"]}[hour] == 1
    assert sum(bar["count"] or 0 for bar in day["uploads"]) == 1
    week = client.get("/api/admin/history?range=7d", headers=ops).get_json()
    today = made["uploaded_at"][:10] + "T00:00:00Z"
    assert {bar["start"]: bar["count"] for bar in week["uploads"]}[today] == 1
    assert week["uploads_counted_since"] is not None
    uploaded(client, uploader, "good/alpha.png")
    uploaded(client, uploader, "good/alpha.png")  # the same bytes again: no new image, not counted
    day = client.get("/api/admin/history?range=24h", headers=ops).get_json()
    assert sum(bar["count"] or 0 for bar in day["uploads"]) == 2
