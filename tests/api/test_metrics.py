"""/metrics: who may scrape it, and that traffic, uploads, the media cache, status and ops move it."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.client import upload


def scrape(client, headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.data[:300]
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_need_an_ops_or_admin_token(client, auth):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=auth.token("editor")).status_code == 403
    for role in ("ops", "admin"):
        assert client.get("/metrics", headers=auth.token(role)).status_code == 200


def test_an_allowed_network_scrapes_without_a_token(app_factory):
    inside = app_factory(AVENUE_METRICS_ALLOW=["10.0.0.0/8"]).test_client()
    assert inside.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert inside.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 401


def test_counters_move_with_traffic_uploads_and_the_media_cache(client, auth):
    ops = auth.token("ops")
    editor = auth.token("editor")
    before = scrape(client, ops)
    created = upload(client, editor, visibility="public")
    assert created.status_code == 201, created.get_json()
    refused = upload(client, editor, "bad/document.pdf", visibility="public")
    assert refused.status_code == 415
    url = created.get_json()["url"]
    reads = []
    for _ in range(3):  # a miss (read from GridFS, cached once read whole), then two hits
        reads.append(client.get(url))
        assert reads[-1].status_code == 200 and reads[-1].get_data()
    assert client.get("/api/nothing-here").status_code == 404
    after = scrape(client, ops)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    route = "/media/<alias>/<token>"
    assert moved("avenue_http_requests_total", route="/api/uploads", method="POST", status="201") == 1
    assert moved("avenue_http_requests_total", route="/api/uploads", method="POST", status="415") == 1
    assert moved("avenue_http_requests_total", route=route, method="GET", status="200") == 3
    assert moved("avenue_http_requests_total", route="<unmatched>", method="GET", status="404") == 1
    assert moved("avenue_http_request_duration_seconds_count", route="/api/uploads", method="POST") == 2
    assert moved("avenue_http_response_bytes_total", route=route) == sum(len(r.data) for r in reads)
    hits, misses = (moved("avenue_media_cache_requests_total", result=r) for r in ("hit", "miss"))
    assert (hits, misses) == (2, 1)
    endpoint = "uploads.create_upload"
    assert moved("avenue_uploads_total", outcome="accepted", format="jpeg", endpoint=endpoint) == 1
    assert moved("avenue_uploads_total", outcome="unsupported_type", format="unknown",
                 endpoint="uploads.create_upload") == 1
    assert moved("avenue_variant_render_seconds_count") == 1



def test_a_rendition_on_request_counts_one_render_and_its_later_answers_none(client, auth):
    ops = auth.token("ops")
    created = upload(client, auth.token("editor"), visibility="public")
    rendition = created.get_json()["url"].rsplit(".", 1)[0] + "/w_320.avif"
    before = scrape(client, ops)
    answers = [client.get(rendition) for _ in range(3)]  # rendered, then stored, then cached
    after = scrape(client, ops)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len({a.get_data() for a in answers}) == 1
    name = "avenue_rendition_render_seconds_count"
    assert value(after, name, format="avif") - value(before, name, format="avif") == 1
    assert value(after, name, format="webp") == value(before, name, format="webp")

def test_status_counts_and_quota_are_read_from_the_counters_as_fresh_as_the_last_write(app_factory, auth,
                                                                                        monkeypatch):
    from avenue.status import sweep

    app = app_factory(AVENUE_STATUS_MAX_AGE_SECONDS=3600, AVENUE_STORAGE_QUOTA_BYTES=1)
    client = app.test_client()
    ops = auth.token("ops")
    upload(client, auth.token("editor"), visibility="public")
    first = scrape(client, ops)
    # A scrape never scans the store: the counts come from the counters every write keeps
    # (avenue/status), so another upload shows at the next scrape, with no sweep run by it.
    ran = []
    monkeypatch.setattr(sweep, "run", lambda *args, **kwargs: ran.append(args))
    monkeypatch.setattr(sweep, "run_in_background", lambda *args, **kwargs: ran.append(args))
    upload(client, auth.token("editor"), "good/alpha.png", visibility="public")
    second = scrape(client, ops)
    assert ran == []
    assert value(first, "avenue_deployment_read_ok") == 1
    assert value(first, "avenue_bucket_files", bucket="uploads") > 0
    assert value(second, "avenue_bucket_files", bucket="uploads") > value(first, "avenue_bucket_files",
                                                                          bucket="uploads")
    assert value(second, "avenue_storage_quota_level", level="emergency") == 1  # 1-byte quota
    assert value(second, "avenue_storage_quota_level", level="ok") == 0
    assert value(second, "avenue_status_report_age_seconds", report="storage-status") >= 0


@pytest.mark.parametrize("command", ["gc", "fsck"])
def test_the_last_gc_and_fsck_runs_are_exported(app, client, auth, runner, command):
    ops = auth.token("ops")
    assert value(scrape(client, ops), "avenue_ops_last_run_ok", command=command) == 0
    result = runner.invoke(args=[command, "--quiet"])
    assert result.exit_code == 0, result.output
    samples = scrape(client, ops)
    assert value(samples, "avenue_ops_last_run_ok", command=command) == 1
    assert value(samples, "avenue_ops_last_run_timestamp_seconds", command=command) > 1.7e9
    kind = "removed" if command == "gc" else "files_checked"
    assert (("avenue_ops_last_run_items", (("command", command), ("kind", kind))) in samples)


def test_failed_database_commands_and_retries_are_counted():
    from bson.son import SON
    from pymongo import monitoring

    from avenue import metrics

    listener = metrics.CommandMetrics()
    before_failed = metrics.DB_FAILURES.labels("insert", "NotWritablePrimary")._value.get()
    before_retried = metrics.DB_RETRIES.labels("insert")._value.get()
    started = monitoring.CommandStartedEvent(SON([("insert", "x")]), "db", 1, ("h", 1), 77, None)
    listener.started(started)
    failure = {"errmsg": "not primary", "code": 10107, "codeName": "NotWritablePrimary"}
    took = dt.timedelta(milliseconds=5)
    listener.failed(monitoring.CommandFailedEvent(took, failure, "insert", 1, ("h", 1), 77))
    listener.started(started)  # the driver's retry: the same operation id
    listener.started(monitoring.CommandStartedEvent(SON([("insert", "x")]), "db", 2, ("h", 1), 78, None))
    assert metrics.DB_FAILURES.labels("insert", "NotWritablePrimary")._value.get() == before_failed + 1
    assert metrics.DB_RETRIES.labels("insert")._value.get() == before_retried + 1


def test_front_door_answers_folded_in_bulk_count_exactly_like_one_by_one():
    from prometheus_client import CollectorRegistry, Histogram

    from avenue import metrics

    registry = CollectorRegistry()
    one_by_one = Histogram("a_seconds", "a", buckets=metrics.LATENCY_BUCKETS, registry=registry)
    in_bulk = Histogram("b_seconds", "b", buckets=metrics.LATENCY_BUCKETS, registry=registry)
    values = [0.0, 0.001, 0.0011, 0.004, 0.1, 0.25, 7.0, 31.0, 1e-6, 0.0025]
    for value in values:
        one_by_one.observe(value)
    metrics._observe_many(in_bulk, values)

    def samples(name):
        return [(s.name.split("_", 1)[1], s.labels, s.value) for family in registry.collect()
                for s in family.samples if s.name.startswith(name) and not s.name.endswith("_created")]
    assert samples("a_seconds") == samples("b_seconds")
    assert samples("a_seconds")


def test_the_front_door_tally_reaches_the_request_counters():
    from avenue import metrics

    tally = metrics.FrontDoorTally()
    route = "/media/<alias>/<token>/<variant>"
    before = metrics.REQUESTS.labels(route, "HEAD", "304")._value.get()
    for _ in range(5):
        tally.record(route, "HEAD", 304, 0.0002, 0)
    assert tally.fold() == 5 and tally.fold() == 0
    assert metrics.REQUESTS.labels(route, "HEAD", "304")._value.get() == before + 5


STANDARD_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "OTHER"}


def http_series(samples) -> set:
    """The request metrics' series (name and labels) in a scrape."""
    return {key for key in samples if key[0].startswith("avenue_http_")}


def test_invented_methods_and_paths_add_no_series(client, auth):
    ops = auth.token("ops")

    def invented(index: int) -> None:
        assert client.open("/healthz", method=f"M{index:07d}").status_code == 405
        assert client.get(f"/no-such-page/{index}").status_code == 404
        assert client.open(f"/api/nothing/{index}", method=f"X{index}").status_code == 404
        assert client.get(f"/media/products/{index:024x}").status_code == 404  # the route's template

    invented(0)  # every kind once (and a scrape), so the series exist
    scrape(client, ops)
    before = scrape(client, ops)
    for index in range(1, 201):
        invented(index)
    after = scrape(client, ops)
    assert http_series(after) == http_series(before)
    assert {dict(labels).get("method", "GET") for _, labels in http_series(after)} <= STANDARD_METHODS
    for labels, moved in [({"route": "<unmatched>", "method": "OTHER", "status": "405"}, 200),
                          ({"route": "<unmatched>", "method": "OTHER", "status": "404"}, 200),
                          ({"route": "<unmatched>", "method": "GET", "status": "404"}, 200),
                          ({"route": "/media/<alias>/<token>", "method": "GET", "status": "404"}, 200)]:
        assert value(after, "avenue_http_requests_total", **labels) - \
            value(before, "avenue_http_requests_total", **labels) == moved, labels
