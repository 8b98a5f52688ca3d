"""/metrics under the Procfile's gunicorn with two workers: every scrape counts every worker.

In-process tests (tests/test_metrics.py) cannot show the multiprocess mode: here the requests
are spread over two worker processes by the kernel, each scrape lands on one of them, and
every scrape must report all of them, also after a worker has died and been replaced.
"""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import Gunicorn, editor_token, photo, upload

pytestmark = pytest.mark.slow
MEDIA = ("avenue_http_requests_total", (("method", "GET"), ("route", "/media/<alias>/<token>"),
                                        ("status", "200")))


def scrape(server: Gunicorn) -> dict:
    status, body = server.request("GET", "/metrics")
    assert status == 200, body[:300]
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def test_every_scrape_adds_up_every_workers_counts(secantus, tmp_path):
    folder = tmp_path / "metrics"
    server = Gunicorn(secantus.uri, f"avenue_test_{uuid.uuid4().hex[:12]}", tmp_path / "gunicorn.log",
                      workers=2, extra_env={"AVENUE_METRICS_ALLOW": "127.0.0.1/32",
                                            "PROMETHEUS_MULTIPROC_DIR": str(folder)}).start()
    try:
        headers = editor_token(secantus.uri, server.env["MONGO_DB"])
        status, image = upload(server, headers, photo(1, 300), "a.jpg")
        assert status == 201, image
        reads = 60
        for _ in range(reads):  # a new connection each: SO_REUSEPORT spreads them over the workers
            assert server.request("GET", image["url"])[0] == 200
        time.sleep(1.5)  # the front door's tally is folded in every second
        writers = {path.name.split("_")[-1] for path in folder.glob("counter_*.db")}
        assert len(writers) >= 2, writers  # both workers counted something
        assert {scrape(server)[MEDIA] for _ in range(6)} == {reads}
        victim = server.workers()[0]
        os.kill(victim, signal.SIGTERM)  # the master replaces it; its counts stay
        deadline = time.monotonic() + 30
        while victim in server.workers() or len(server.workers()) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert {scrape(server)[MEDIA] for _ in range(4)} == {reads}
    finally:
        server.stop()


def test_invented_methods_and_paths_add_no_series_under_gunicorn(secantus, tmp_path):
    server = Gunicorn(secantus.uri, f"avenue_test_{uuid.uuid4().hex[:12]}", tmp_path / "gunicorn.log",
                      extra_env={"AVENUE_METRICS_ALLOW": "127.0.0.1/32",
                                 "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}).start()

    def invented(index: int) -> None:
        # The attack as it was sent: `M0000042 /healthz` (gunicorn takes any 3-20 upper-case
        # characters as a method, the app answers 405), and paths no rule matches.
        assert server.request(f"M{index:07d}", "/healthz")[0] == 405
        assert server.request("GET", f"/no-such-page/{index}")[0] == 404

    try:
        invented(0)  # every kind once (and a scrape), so the series exist
        scrape(server)
        before = scrape(server)
        for index in range(1, 201):
            invented(index)
        after = scrape(server)
        assert {key for key in after if key[0].startswith("avenue_http_")} == \
            {key for key in before if key[0].startswith("avenue_http_")}
        moved = {key: after[key] - before.get(key, 0.0) for key in after
                 if key[0] == "avenue_http_requests_total" and after[key] != before.get(key, 0.0)}
        assert moved[("avenue_http_requests_total", (("method", "OTHER"), ("route", "<unmatched>"),
                                                     ("status", "405")))] == 200
        assert moved[("avenue_http_requests_total", (("method", "GET"), ("route", "<unmatched>"),
                                                     ("status", "404")))] == 200
    finally:
        server.stop()
