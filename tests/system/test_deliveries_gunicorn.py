"""Delivery numbers across the Procfile's gunicorn workers: N answers, N counted after the flush."""

from __future__ import annotations

import datetime as dt
import http.client

import pymongo
import pytest
from bson import ObjectId

from avenue.media import Buckets, Deliveries
from tests.helpers import image_bytes
from tests.support.launcher import LOOPBACK

N = 40


def fetch(port: int, path: str) -> int:
    """One GET on a new connection (so the master's workers share them); its status."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    try:
        connection.request("GET", path, headers={"Accept": "image/webp"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@pytest.mark.slow
def test_n_answers_spread_over_two_workers_are_n_counted_once_they_exit(start_gunicorn, secantus):
    server = start_gunicorn(WEB_CONCURRENCY="2")
    # Not settled: only the N GETs below are to be counted.
    image = server.uploaded(image_bytes("good/progressive.jpg"), "progressive.jpg", settled=False)
    paths = [image["url"], image["variants"]["card"]]
    for n in range(N):
        assert fetch(server.port, paths[n % 2]) == 200
    server.stop(grace=20)  # SIGTERM: each worker's worker_exit writes what it noted
    now = dt.datetime.now(dt.UTC)  # the days around now: a run across midnight counts on two
    with pymongo.MongoClient(secantus.uri) as client:
        numbers = Deliveries(client[server.db_name]).daily(
            Buckets.UPLOADS, ObjectId(image["id"]), now - dt.timedelta(days=1), now + dt.timedelta(days=1))
    assert sum(day["requests"] for day in numbers["days"]) == N
    assert {file.split(".")[0] for day in numbers["days"] for file in day["by_file"]} == {"original", "card"}
