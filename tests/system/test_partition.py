"""The database connection cut and restored under load (a partition, or a primary stepping
down), including a cut between an upload's chunks and its files documents; and a database that
keeps its connections but stops answering (the embedded one deadlocked so once)."""

from __future__ import annotations

import threading

import pymongo
import pytest

from avenue.db import get_db
from avenue.media import AppMedia, Buckets
from tests.helpers import Auth, make_app
from tests.support.client import upload
from tests.support.fixtures import photo
from tests.support.launcher import CuttableProxy, MakeRunDatabase
from tests.support.records import images

# Each test has a SecantusDB of its own, as make run starts it (standalone, through the relay:
# tests/support/launcher.py MakeRunDatabase); the replica-set server they had, reached over many
# connections, once deadlocked at a test's start beside the other test processes, so these ran
# alone after the rest. As make run's they run beside the others.
pytestmark = [pytest.mark.slow]

# How long the app waits for one answer of the database here (MONGO_SOCKET_TIMEOUT_MS), and how long a
# request may take to answer once the database stops answering: many times that limit, but
# far short of forever, which is what a request waited before there was one.
OPERATION_TIMEOUT_MS = 3000
PATIENCE_SECONDS = 10 * OPERATION_TIMEOUT_MS / 1000


@pytest.fixture
def proxied(tmp_path):
    server = MakeRunDatabase(tmp_path / "db", log_path=tmp_path / "db.log").start()
    proxy = CuttableProxy(server.port)  # in front of the relay: a cut or a stall is the app's link
    app = make_app((pymongo.MongoClient, proxy.uri), "avenue_partition", MONGO_TIMEOUT_MS=1500,
                   MONGO_SOCKET_TIMEOUT_MS=OPERATION_TIMEOUT_MS)
    yield app, proxy, server
    app.extensions["avenue.mongo"].client.close()
    proxy.close()
    server.stop()


def test_reads_and_writes_answer_503_during_a_cut_and_work_again_after_it(proxied):
    app, proxy, _ = proxied
    client, headers = app.test_client(), Auth(app).token("editor")
    first = upload(client, headers, data=photo(1, 400), filename="a.jpg", visibility="public")
    assert first.status_code == 201
    url = first.get_json()["url"]
    assert client.get(url).data  # read whole: now cached by this worker

    proxy.cut()
    during = upload(client, headers, data=photo(2, 400), filename="b.jpg", visibility="public")
    assert during.status_code == 503 and during.get_json()["error"]["code"] == "database_unavailable"
    assert client.get("/api/uploads", headers=headers).status_code == 503
    assert client.get(url).status_code == 200  # the hot image keeps being served from the cache
    assert client.get("/readyz").status_code == 503

    proxy.restore()
    after = upload(client, headers, data=photo(3, 400), filename="c.jpg", visibility="public")
    assert after.status_code == 201
    assert client.get("/readyz").status_code == 200
    assert client.get(after.get_json()["url"]).status_code == 200


def test_a_cut_between_the_chunks_and_the_files_documents_leaves_only_garbage_gc_removes(proxied,
                                                                                          monkeypatch):
    app, proxy, server = proxied
    client, headers = app.test_client(), Auth(app).token("editor")
    # Let the upload's chunks through, then cut the connection before its files documents go:
    # the first insert into a chunks collection (an upload writes its files' chunks, then their
    # documents) cuts the link once it is in.
    real_insert = pymongo.collection.Collection.insert_many
    calls = []

    def insert_then_cut(self, documents, *args, **kwargs):
        result = real_insert(self, documents, *args, **kwargs)
        if self.name.endswith(".chunks") and not calls:
            calls.append(1)
            proxy.cut()
        return result

    monkeypatch.setattr(pymongo.collection.Collection, "insert_many", insert_then_cut)
    data = photo(7, 500)
    refused = upload(client, headers, data=data, filename="cut.jpg", visibility="public")
    assert refused.status_code == 503
    monkeypatch.undo()
    proxy.restore()

    direct = pymongo.MongoClient(server.uri)
    try:
        db = direct.avenue_partition
        assert images(db, Buckets.UPLOADS).count_documents({}) == 0  # nobody can see a half image
        assert db[f"{Buckets.UPLOADS}.files"].count_documents({}) == 0  # nor a half file
        assert db[f"{Buckets.UPLOADS}.chunks"].count_documents({}) > 0  # its chunks are garbage...
        AppMedia.on(db, AppMedia.of(app).core).maintenance.collect_garbage(grace_seconds=0)
        assert db[f"{Buckets.UPLOADS}.chunks"].count_documents({}) == 0  # ...that gc removes
        assert AppMedia.on(db).maintenance.fsck().ok
    finally:
        direct.close()
    # The client retries: stored whole.
    again = upload(client, headers, data=data, filename="cut.jpg", visibility="public")
    assert again.status_code == 201
    with app.app_context():
        assert AppMedia.on(get_db()).maintenance.fsck().ok


def answer_within(seconds: float, call):
    """``call()``'s response, from a thread; fails the test if it has not come in ``seconds``."""
    answers = []
    thread = threading.Thread(target=lambda: answers.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert answers, f"no answer within {seconds} s: the request waits on the database for ever"
    return answers[0]


def test_requests_answer_503_when_the_database_stops_answering_and_work_again_after(proxied):
    app, proxy, _ = proxied
    client, headers = app.test_client(), Auth(app).token("editor")
    stored = upload(client, headers, data=photo(4, 400), filename="d.jpg", visibility="public")
    assert stored.status_code == 201
    one = f"/api/uploads/{stored.get_json()['id']}"

    another = photo(5, 400)
    proxy.stall()  # connections stay open and the handshakes are answered; nothing else is
    try:
        for call in (lambda: upload(client, headers, data=another, filename="e.jpg", visibility="public"),
                     lambda: client.get("/api/uploads", headers=headers),
                     lambda: client.get(one, headers=headers)):
            response = answer_within(PATIENCE_SECONDS, call)
            assert response.status_code == 503, response.get_json()
            assert response.get_json()["error"]["code"] == "database_unavailable"
            assert response.headers["Retry-After"] == "5"
    finally:
        proxy.restore()

    after = upload(client, headers, data=photo(6, 400), filename="f.jpg", visibility="public")
    assert after.status_code == 201
    assert client.get(one, headers=headers).status_code == 200


def test_readyz_fails_within_seconds_when_reads_stall_though_ping_answers(proxied):
    """The deadlocked embedded database answered ``ping`` and nothing else; a readiness probe
    that only pings kept a dead instance in service."""
    import time

    app, proxy, _ = proxied
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    proxy.stall(answering=("ping",))
    try:
        with app.app_context():
            get_db().command("ping")  # the stall lets pings through, as the deadlocked server did
        started = time.monotonic()
        down = answer_within(10, lambda: client.get("/readyz"))
        assert time.monotonic() - started < 10
        assert down.status_code == 503, down.get_json()
        assert down.get_json()["error"]["code"] == "database_unavailable"
        assert down.headers["Retry-After"] == "5"
    finally:
        proxy.restore()
    deadline = time.monotonic() + 30
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "readyz did not recover by itself"
        time.sleep(0.5)
