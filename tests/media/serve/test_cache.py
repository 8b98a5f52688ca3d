"""A worker's media cache (avenue/media/serve/cache.py): reads of one document shared by
concurrent requests (SharedReads: never an answer older than the request, at most one read of
a key at a time); fleet-friendly invalidation, one tombstone per image, a change stream where
the server has one and polling where it has not (issue 14); and a cache evicted reads a
redirect window that lapsed behind its back."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import pymongo
import pytest
from bson import ObjectId

from avenue.clock import now
from avenue.media import Buckets
from avenue.media.core import NO_PURGES
from avenue.media.effects import invalidation
from avenue.media.effects.invalidation import DELETIONS
from avenue.media.records import MediaDoc
from avenue.media.serve.cache import MediaCache, SharedReads
from avenue.media.serve.http import MediaUrl
from avenue.media.serve.route import get_cache
from avenue.media.store import storage as storage_module
from avenue.media.store.originals import delete_image
from tests.helpers import Auth, library_upload, listening, make_app
from tests.support.client import uploaded
from tests.support.commands import Matching
from tests.support.records import images
from tests.support.replacing import replace_media
from tests.support.serving import put


def waiting(reads: SharedReads, count: int) -> None:
    """Until ``count`` requests wait on ``reads`` (CPython's Condition keeps its waiters)."""
    until = time.monotonic() + 30
    while len(reads._changed._waiters) < count:  # type: ignore[attr-defined]
        assert time.monotonic() < until, "the requests never waited"
        time.sleep(0.005)


def status_within(client, path: str, seconds: float) -> int:
    """The status ``path`` answers once it stops answering 200, or 200 after ``seconds``."""
    deadline = time.monotonic() + seconds
    status = 200
    while status == 200 and time.monotonic() < deadline:
        status = client.get(path).status_code
        time.sleep(0.05)
    return status


def asked_during_the_first_read(reads: SharedReads, ask, loads: list, release: threading.Event,
                                later: int) -> None:
    """One request starts a read; ``later`` more ask while it is on its way (each waiting on
    ``reads``); then the first read is let go and every request is waited for."""
    first = threading.Thread(target=ask, args=("first",))
    first.start()
    while not loads:
        time.sleep(0.005)
    others = [threading.Thread(target=ask, args=(f"later{n}",)) for n in range(later)]
    for thread in others:
        thread.start()
    waiting(reads, later)
    release.set()
    for thread in [first, *others]:
        thread.join(30)


def test_requests_that_ask_during_a_read_share_one_read_that_began_after_them():
    reads, release, loads = SharedReads(), threading.Event(), []

    def load() -> int:
        loads.append(len(loads) + 1)
        if len(loads) == 1:
            release.wait(30)  # the first read is slow: the others ask meanwhile
        return loads[-1]

    answers: dict[str, int] = {}

    def ask(name: str) -> None:
        answers[name] = reads.read(("media", 1), load)

    asked_during_the_first_read(reads, ask, loads, release, later=5)
    # The five asked while the first read was on its way: its answer may be older than a write
    # they must see, so they share one read begun after them, not six reads, nor the first's.
    assert loads == [1, 2]
    assert answers == {"first": 1, **{f"later{n}": 2 for n in range(5)}}
    assert reads._flights == {} and reads._asking == {}  # nothing kept once nobody asks


def test_another_key_is_read_on_its_own_and_a_failed_read_is_not_shared():
    reads, calls = SharedReads(), []

    def failing() -> int:
        calls.append("failed")
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        reads.read(("media", 1), failing)
    assert reads.read(("media", 1), lambda: 7) == 7
    assert reads.read(("media", 2), lambda: 8) == 8
    assert calls == ["failed"]
    assert reads._flights == {} and reads._asking == {}


def test_requests_waiting_on_a_read_that_fails_share_the_next_one():
    reads, release, loads = SharedReads(), threading.Event(), []

    def load() -> int:
        loads.append(len(loads) + 1)
        if len(loads) == 1:
            release.wait(30)
            raise RuntimeError("the database went away")
        return loads[-1]

    answers: dict[str, object] = {}

    def ask(name: str) -> None:
        try:
            answers[name] = reads.read(("media", 1), load)
        except RuntimeError as error:
            answers[name] = error

    asked_during_the_first_read(reads, ask, loads, release, later=3)
    assert isinstance(answers.pop("first"), RuntimeError)  # only the request that read it fails
    assert answers == {f"later{n}": 2 for n in range(3)} and loads == [1, 2]
    assert reads._flights == {} and reads._asking == {}


def test_old_urls_answer_404_once_the_redirect_window_is_over(client, app, db, editor):
    media = library_upload(client, editor)
    new = replace_media(client, editor, media["id"]).get_json()
    assert client.get(media["url"]).status_code == 308
    lapsed = now() - dt.timedelta(seconds=1)
    images(db, Buckets.BUILDER).update_one({"_id": ObjectId(media["id"])},
                                           {"$set": {"metadata.versions.0.until": lapsed}})
    from avenue.media.serve.route import get_cache
    get_cache(app).evict(Buckets.BUILDER, [ObjectId(media["id"])])
    assert client.get(media["url"]).status_code == 404
    assert client.get(media["variants"]["thumb"]).status_code == 404
    assert client.get(new["url"]).status_code == 200
    # A version that never existed is a 404 too.
    assert client.get(new["url"].replace(new["version"], "0123abcd")).status_code == 404


def upload(app) -> tuple[dict, dict]:
    """A new editor of ``app`` (one of two workers) uploads an image: the image, the headers."""
    headers = Auth(app).token("editor")
    image = uploaded(app.test_client(), headers, "good/grayscale.jpg", filename="p.jpg", expect=(201,))
    return image, headers


def test_deleting_an_image_writes_one_tombstone_for_its_files_not_one_per_file(app, db):
    image, headers = upload(app)
    assert app.test_client().delete(f"/api/uploads/{image['id']}", headers=headers).status_code == 204
    stones = list(db[DELETIONS].find())
    files = sum(len(stone["file_ids"]) for stone in stones)
    assert files >= 9  # the original and its eight variants
    assert len(stones) <= 2  # the original's own (written before its delete) and the rest


def test_a_tombstone_from_before_batching_is_still_honoured(app, db):
    cache = get_cache(app)
    cache.put_blob(Buckets.UPLOADS, "old-id", b"x")
    cache.sync(db, clock=lambda: 0.0)  # first poll: starts the clock
    db[DELETIONS].insert_one({"bucket": Buckets.UPLOADS, "file_id": "old-id", "at": invalidation.now()})
    cache._poll(db, force=True)
    assert cache.get_blob(Buckets.UPLOADS, "old-id") is None


def test_a_worker_s_background_sync_keeps_its_cache_current_and_evicts_without_a_request(app, db):
    # What lets gunicorn's event loop answer cached media while every thread is busy
    # (tests/system/test_server.py): no request on a thread has to sync the cache first.
    from avenue.media.serve.route import start_deletion_sync

    cache = get_cache(app)
    cache.put_blob(Buckets.UPLOADS, "gone-id", b"x")
    cache.sync(db)  # the first poll, as a first request makes it
    job = start_deletion_sync(app)
    try:
        db[DELETIONS].insert_one({"bucket": Buckets.UPLOADS, "file_ids": ["gone-id"],
                                  "at": invalidation.now()})
        deadline = time.monotonic() + 10
        while cache.get_blob(Buckets.UPLOADS, "gone-id") is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cache.get_blob(Buckets.UPLOADS, "gone-id") is None  # evicted, no request made
        # The job polls again by itself: the cache's last check moves on with no request made
        # (waited for, not slept: one poll on the embedded database may take a second under
        # load). Taken under the sync lock, the evicting poll has recorded its own check.
        with cache._sync_lock:
            evicted_by = cache._checked
        deadline = time.monotonic() + 30
        while cache._checked <= evicted_by and time.monotonic() < deadline:
            time.sleep(0.05)
        checked = cache._checked
        assert checked > evicted_by
        assert cache.current(clock=lambda: checked)  # nothing else is due either (the stream)
    finally:
        job.stop()


def test_a_sync_with_a_margin_polls_what_falls_due_within_it(app, db):
    # The background sync passes its period as the margin: a tick just short of the interval
    # polls, so the cache is never past due before the next tick (the event loop answers only
    # while it is current). Without the margin that tick did nothing.
    cache = get_cache(app)
    interval = cache.poll_interval
    cache.sync(db, clock=lambda: 1000.0)  # a poll: the clock starts at 1000
    assert cache._checked == 1000.0
    short = 1000.0 + interval * 0.6
    cache.sync(db, clock=lambda: short)  # not due yet: nothing
    assert cache._checked == 1000.0 and not cache.current(clock=lambda: 1000.0 + interval)
    cache.sync(db, clock=lambda: short, margin=interval / 2)  # due within the margin: polled
    assert cache._checked == short and cache.current(clock=lambda: 1000.0 + interval)


def finds_of_deletions(event) -> bool:
    return event.command_name == "find" and event.command.get("find") == DELETIONS


def change_streams(event) -> bool:
    """An ``aggregate`` that opens a change stream."""
    return event.command_name == "aggregate" and any(
        "$changeStream" in stage for stage in event.command.get("pipeline") or [])


@pytest.mark.slow
def test_with_a_change_stream_workers_evict_without_polling(backend, db_name, request):
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("mongomock has no change streams: polling is what it uses (other tests)")
    uri = backend[1]
    if request.node.callspec.params["backend"] == "secantus":
        # The session's SecantusDB is standalone, as make run's (tests/conftest.py): a change
        # stream needs a replica set, so this test has one of its own, on a database of its own.
        uri = request.getfixturevalue("secantus_replica_set").uri
        db_name = f"avenue_test_{uuid.uuid4().hex[:12]}"
    finds = Matching(finds_of_deletions)
    # `on`: the embedded SecantusDB is polled by default (the next test); the stream is what is tested here.
    worker = make_app((listening(finds), uri), db_name, AVENUE_DELETIONS_STREAM="on")
    deleter = make_app((pymongo.MongoClient, uri), db_name)
    try:
        image, headers = upload(deleter)
        client = worker.test_client()
        path = image["url"][image["url"].index("/media/"):]
        assert client.get(path).status_code == 200
        invalidation.LOCAL_CACHES.discard(get_cache(worker))  # as if in another process
        deadline = time.monotonic() + 10
        while not get_cache(worker)._streaming and time.monotonic() < deadline:
            time.sleep(0.05)
        assert get_cache(worker)._streaming
        before = finds.count
        for _ in range(30):  # three seconds of traffic: no poll while the stream is live
            assert client.get(path).status_code == 200
            time.sleep(0.1)
        assert finds.count == before
        assert deleter.test_client().delete(f"/api/uploads/{image['id']}", headers=headers).status_code == 204
        # 10 s, not the promised 2: a request waits on the database, which can take a second
        # on a loaded machine; without the stream's eviction the worker would serve the
        # cached image until its next poll, and no poll is made while the stream is live.
        assert status_within(client, path, 10) == 404
    finally:
        worker.extensions["avenue.mongo"].client.close()
        deleter.extensions["avenue.mongo"].client.close()


@pytest.mark.slow
def test_on_the_embedded_database_workers_poll_and_evict(db_name, secantus):
    """``auto`` opens no change stream on SecantusDB: it reads every oplog entry, chunks included,
    under the lock every operation waits for (docs/production.md, "The embedded database")."""
    streams = Matching(change_streams)
    worker = make_app((listening(streams), secantus.uri), db_name)
    try:
        deleter = make_app((pymongo.MongoClient, secantus.uri), db_name)
        image, headers = upload(deleter)
        client = worker.test_client()
        path = image["url"][image["url"].index("/media/"):]
        assert client.get(path).status_code == 200
        invalidation.LOCAL_CACHES.discard(get_cache(worker))  # as if in another process
        deadline = time.monotonic() + 30  # each request may take a second on SecantusDB
        while not get_cache(worker)._polls_only and time.monotonic() < deadline:
            assert client.get(path).status_code == 200
            time.sleep(0.05)
        assert get_cache(worker)._polls_only and not get_cache(worker)._streaming
        assert deleter.test_client().delete(f"/api/uploads/{image['id']}", headers=headers).status_code == 204
        # Within 10 s: each request here waits on SecantusDB, which can take a second under
        # load. That a due poll comes within the second promised is shown with an injected
        # clock (test_media_serving.py, test_the_cache_is_current_while_no_deletion_check_is_due).
        assert status_within(client, path, 10) == 404
        assert streams.count == 0
        deleter.extensions["avenue.mongo"].client.drop_database(db_name)
        deleter.extensions["avenue.mongo"].client.close()
    finally:
        worker.extensions["avenue.mongo"].client.close()


def test_the_deletion_poll_interval_is_the_one_configured_and_a_too_small_one_refuses_to_start(
        app_factory):
    assert get_cache(app_factory()).poll_interval == 1.0  # the default: avenue/config.py
    assert get_cache(app_factory(AVENUE_DELETIONS_POLL_MS=5000)).poll_interval == 5.0
    with pytest.raises(RuntimeError, match="AVENUE_DELETIONS_POLL_MS must be at least 100, got 99"):
        app_factory(AVENUE_DELETIONS_POLL_MS=99)


def test_a_stream_asked_for_by_name_does_not_ask_the_dialect_first(secantus, db_name):
    """``AVENUE_DELETIONS_STREAM=on`` opens the stream without asking which server it is: only
    ``auto`` asks the dialect (``Dialect.deletions_stream``), so ``on`` sends no ``buildInfo``."""
    from avenue.media.serve.cache import MediaCache

    asked = Matching(lambda event: event.command_name == "buildInfo")
    client = pymongo.MongoClient(secantus.uri, event_listeners=[asked])
    try:
        cache = MediaCache(1 << 20, 1 << 16, stream="on")
        cache._watch(client[db_name])  # the session's standalone server refuses the stream: it ends
        assert not cache._streaming and asked.count == 0
    finally:
        client.close()


def _doc(version: str = "") -> MediaDoc:
    return MediaDoc(file_id="a", length=1, chunk_size=1, sha256="", content_type="image/jpeg",
                    upload_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), filename="a.jpg", format="jpeg",
                    visibility="public", variants={}, version=version)


def test_a_refusal_lasts_one_poll_interval_and_only_for_the_document_that_refused():
    cache = MediaCache(1 << 20, 1 << 16, poll_interval=1.0)
    doc, url = _doc(), MediaUrl("media", "a~00000000.jpg")
    cache.refuse("media", doc, url, clock=lambda: 100.0)
    assert cache.refused("media", doc, url, clock=lambda: 100.9)
    assert not cache.refused("media", doc, MediaUrl("media", "a~00000001.jpg"), clock=lambda: 100.9)
    assert not cache.refused("media", doc, url, clock=lambda: 101.0)  # lapsed: read again
    cache.refuse("media", doc, url, clock=lambda: 200.0)
    # Read again the same, it still refuses; changed (a tombstone evicted it, the next request
    # read it again: replaced meanwhile), the refusal was another document's.
    assert cache.refused("media", _doc(), url, clock=lambda: 200.1)
    assert not cache.refused("media", _doc("0123abcd"), url, clock=lambda: 200.2)
    cache.refuse("media", doc, url, clock=lambda: 300.0)
    cache.clear()
    assert not cache.refused("media", doc, url, clock=lambda: 300.1)


def test_refusals_are_bounded():
    cache = MediaCache(1 << 20, 1 << 16, poll_interval=60.0, max_refusals=3)
    doc = _doc()
    urls = [MediaUrl("media", f"a~0000000{n}.jpg") for n in range(5)]
    for url in urls:
        cache.refuse("media", doc, url, clock=lambda: 0.0)
    kept = [cache.refused("media", doc, url, clock=lambda: 1.0) for url in urls]
    assert kept == [False, False, True, True, True]  # the least recently refused dropped


def _served_until_gone(client, url: str, seconds: float = 10.0) -> int:
    """Fetch ``url`` until it is gone or ``seconds`` passed; the last status. 10 s, not the
    promised 2: each request waits on the database, which can take a second on a loaded
    machine (the promise itself: test_the_cache_is_current_while_no_deletion_check_is_due)."""
    deadline = time.monotonic() + seconds
    status = 200
    while time.monotonic() < deadline and status == 200:
        status = client.get(url).status_code
        time.sleep(0.05)
    return status


def test_every_worker_honours_a_deletion(app_factory):
    deleter = app_factory()
    other = app_factory()  # another gunicorn worker: its own cache
    stored = put(deleter)
    other_client = other.test_client()
    assert other_client.get(stored["obj"]["url"]).data == stored["bytes"]
    assert get_cache(other).get_blob(Buckets.PRODUCTS, stored["doc"]["_id"]) is not None
    # Another process's cache would not hear this process's in-memory eviction.
    invalidation.LOCAL_CACHES.discard(get_cache(other))
    with deleter.app_context():
        from avenue.db import get_db

        delete_image(get_db(), Buckets.PRODUCTS, stored["doc"]["_id"], purges=NO_PURGES)
    # 10 s, not the promised 2: each request waits on the database, which can take a second on
    # a loaded machine. That a poll is due a second after the last one (so the promise holds)
    # is shown with an injected clock: test_the_cache_is_current_while_no_deletion_check_is_due.
    assert status_within(other_client, stored["obj"]["url"], 10) == 404


@pytest.mark.damages_files
def test_a_file_deleted_behind_a_stale_cache_entry_is_a_clean_404(app_factory):
    from avenue.db import get_db

    deleter, other = app_factory(), app_factory()
    stored = put(deleter)
    other_client = other.test_client()
    assert other_client.head(stored["obj"]["url"]).status_code == 200  # document cached, bytes not
    invalidation.LOCAL_CACHES.discard(get_cache(other))  # as if in another process
    with deleter.app_context():
        held_by = MediaDoc.from_files_doc(Buckets.PRODUCTS, stored["doc"]).bytes_id  # the bytes' file
        get_db()[f"{Buckets.PRODUCTS}.chunks"].delete_many({"files_id": held_by})
    response = other_client.get(stored["obj"]["url"])
    assert response.status_code == 404


def test_the_cache_is_current_while_no_deletion_check_is_due():
    cache = MediaCache(1 << 20, 1 << 20, poll_interval=1.0)
    assert not cache.current(lambda: 100.0)  # never polled
    cache._stream_tried = 100.0  # as sync() does before its first poll
    cache._poll(None, clock=lambda: 100.0)  # the first poll reads nothing: it starts afresh
    assert cache.current(lambda: 100.5)
    assert not cache.current(lambda: 101.0)  # a poll is due
    cache._checked = 161.0  # polled again, but ...
    assert not cache.current(lambda: 161.2)  # ... the change stream is due to be retried
    cache._streaming = True  # a live stream delivers deletions as they are written
    assert cache.current(lambda: 500.0)
    cache._repeat["stone"] = (600.0, Buckets.PRODUCTS, ["id"])  # a tombstone written before its delete
    cache._repeated = 499.5
    assert cache.current(lambda: 500.0)
    assert not cache.current(lambda: 500.6)  # ... due to be applied again


def test_a_delete_cut_off_after_its_first_step_still_reaches_every_worker(app_factory, monkeypatch):
    """The database goes away between deleting the files document and the chunks: the other
    workers must stop serving the image anyway (the tombstone is written first)."""
    from pymongo.errors import AutoReconnect

    from avenue.db import get_db

    deleter, other = app_factory(), app_factory()
    stored = put(deleter)
    other_client = other.test_client()
    assert other_client.get(stored["obj"]["url"]).data == stored["bytes"]
    invalidation.LOCAL_CACHES.discard(get_cache(other))  # as if in another process
    with deleter.app_context():
        Collection = type(get_db()[f"{Buckets.PRODUCTS}.chunks"])  # pymongo's, or mongomock's
    real_delete_many = Collection.delete_many

    def cut_off(self, query, *args, **kwargs):
        if self.name.endswith(".chunks"):
            raise AutoReconnect("connection closed")
        return real_delete_many(self, query, *args, **kwargs)

    with deleter.app_context():
        monkeypatch.setattr(Collection, "delete_many", cut_off)
        with pytest.raises(AutoReconnect):
            delete_image(get_db(), Buckets.PRODUCTS, stored["doc"]["_id"], purges=NO_PURGES)
        monkeypatch.undo()
    assert _served_until_gone(other_client, stored["obj"]["url"]) == 404


def test_a_worker_that_reloads_between_the_tombstone_and_the_delete_evicts_again(app_factory):
    from avenue.db import get_db

    deleter, other = app_factory(), app_factory()
    stored = put(deleter)
    url, file_id = stored["obj"]["url"], stored["doc"]["_id"]
    other_client = other.test_client()
    invalidation.LOCAL_CACHES.discard(get_cache(other))
    with deleter.app_context():
        invalidation.invalidate(get_db(), Buckets.PRODUCTS, [file_id], lasting=storage_module.DELETE_WINDOW)
        time.sleep(1.1)  # the other worker polls and evicts...
        assert other_client.get(url).data == stored["bytes"]  # ...then reloads and caches it again
        images(get_db(), Buckets.PRODUCTS).delete_one({"_id": file_id})  # the delete lands after
    assert _served_until_gone(other_client, url) == 404
