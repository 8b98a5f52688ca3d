"""/metrics under the Procfile's gunicorn with two workers: every scrape counts every worker.

In-process tests (tests/api/test_metrics.py) cannot show the multiprocess mode: here the requests
are spread over two worker processes by the kernel, each scrape lands on one of them, and
every scrape must report all of them, also after a worker has died and been replaced. Nor
can they show gunicorn's event loop answering cached media itself: those answers are counted,
given an id and logged like every other.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import time
import uuid
from http.client import HTTPConnection

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.fixtures import photo
from tests.support.launcher import Gunicorn

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
        headers = server.token()
        status, image = server.upload(headers, photo(1, 300), "a.jpg")
        assert status == 201, image
        reads = 60
        for _ in range(reads):  # a new connection each: SO_REUSEPORT spreads them over the workers
            assert server.request("GET", image["url"])[0] == 200
        # The front door's tally is folded in every second by each worker's thread (a scrape
        # folds the answering worker's at once): waited for, not slept for a fixed time.
        deadline = time.monotonic() + 30
        while True:
            writers = {path.name.split("_")[-1] for path in folder.glob("counter_*.db")}
            if len(writers) >= 2 and scrape(server)[MEDIA] == reads or time.monotonic() > deadline:
                break
            time.sleep(0.2)
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


# Holds a worker's thread: it reads this 2 MB body, which never comes (tests/system/test_server.py).
HOLD_A_THREAD = (b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 2097152\r\n\r\n{")


def test_every_event_loop_answer_has_an_id_a_count_and_a_log_line(secantus, tmp_path):
    server = Gunicorn(secantus.uri, f"avenue_test_{uuid.uuid4().hex[:12]}", tmp_path / "gunicorn.log",
                      workers=1, extra_env={"AVENUE_METRICS_ALLOW": "127.0.0.1/32",
                                            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
                                            "GUNICORN_THREADS": "1", "GUNICORN_BODY_TIMEOUT": "8",
                                            # 1 KiB: the slow 2 MB body below is read by the thread
                                            "GUNICORN_BUFFER_BODY_BYTES": "1024",
                                            # The loop answers within a poll interval of the last
                                            # deletion poll: 5 s, so a late poll on a loaded
                                            # machine cannot send a GET to the held thread.
                                            "AVENUE_DELETIONS_POLL_MS": "5000"}).start()
    try:
        token = server.token()
        image = server.uploaded(photo(1, 300), "a.jpg", token)  # variants rendered: no cache change later
        before = scrape(server)
        n = 20
        conn = HTTPConnection("127.0.0.1", server.port, timeout=10)  # one kept-alive connection
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as holder:

            def get(sent: dict[str, str]) -> str | None:
                conn.request("GET", image["url"], headers=sent)
                response = conn.getresponse()
                assert response.status == 200 and response.read()
                return response.getheader("X-Request-ID")

            ids = [get({})]  # a thread answers: read whole, cached from now on
            holder.sendall(HOLD_A_THREAD)  # the worker's one thread waits for this body (8 s)
            time.sleep(0.2)
            # Every other request sends its own id (kept).
            sent = [{"X-Request-ID": f"loop-{i}"} if i % 2 else {} for i in range(n)]
            ids += [get(headers) for headers in sent]
            # Causal, not timed (a < 1 s bound is at the mercy of a loaded CI machine): the holder
            # has no answer yet, so its thread still waits and no thread answered these.
            assert select.select([holder], [], [], 0)[0] == []
            holder.settimeout(20)
            assert holder.recv(65536).startswith(b"HTTP/1.1 400")  # the thread is free again
        conn.close()
        assert None not in ids and len(set(ids)) == n + 1, ids
        assert ids[2::2] == [f"loop-{i}" for i in range(1, n, 2)]
        after = scrape(server)  # folds the worker's answers: counted, and their lines written
        assert after[MEDIA] - before.get(MEDIA, 0.0) == n + 1
        log = server.log_path.read_text().splitlines()
        lines = [json.loads(text) for text in log if text.startswith("{")]
        logged = [line["request_id"] for line in lines
                  if line.get("event") == "request" and line.get("path") == image["url"]]
        assert sorted(logged) == sorted(ids)
    finally:
        server.stop()
