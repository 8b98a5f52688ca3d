"""A worker's media cache (avenue/media/serve/cache.py): reads of one document shared by
concurrent requests (SharedReads: never an answer older than the request, at most one read of a
key at a time), and a cache evicted reads a redirect window that lapsed behind its back."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from bson import ObjectId

from avenue.clock import now
from avenue.media import Buckets
from avenue.media.serve.cache import SharedReads
from tests.helpers import library_upload
from tests.support.replacing import replace_media


def waiting(reads: SharedReads, count: int) -> None:
    """Until ``count`` requests wait on ``reads`` (CPython's Condition keeps its waiters)."""
    until = time.monotonic() + 30
    while len(reads._changed._waiters) < count:  # type: ignore[attr-defined]
        assert time.monotonic() < until, "the requests never waited"
        time.sleep(0.005)


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

    first = threading.Thread(target=ask, args=("first",))
    first.start()
    while not loads:
        time.sleep(0.005)
    later = [threading.Thread(target=ask, args=(f"later{n}",)) for n in range(5)]
    for thread in later:
        thread.start()
    waiting(reads, 5)
    release.set()
    for thread in [first, *later]:
        thread.join(30)
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

    first = threading.Thread(target=ask, args=("first",))
    first.start()
    while not loads:
        time.sleep(0.005)
    later = [threading.Thread(target=ask, args=(f"later{n}",)) for n in range(3)]
    for thread in later:
        thread.start()
    waiting(reads, 3)
    release.set()
    for thread in [first, *later]:
        thread.join(30)
    assert isinstance(answers.pop("first"), RuntimeError)  # only the request that read it fails
    assert answers == {f"later{n}": 2 for n in range(3)} and loads == [1, 2]
    assert reads._flights == {} and reads._asking == {}


def test_old_urls_answer_404_once_the_redirect_window_is_over(client, app, db, editor):
    media = library_upload(client, editor)
    new = replace_media(client, editor, media["id"]).get_json()
    assert client.get(media["url"]).status_code == 308
    lapsed = now() - dt.timedelta(seconds=1)
    db[f"{Buckets.BUILDER}.files"].update_one({"_id": ObjectId(media["id"])},
                                              {"$set": {"metadata.versions.0.until": lapsed}})
    from avenue.media.serve.route import get_cache
    get_cache(app).evict(Buckets.BUILDER, [ObjectId(media["id"])])
    assert client.get(media["url"]).status_code == 404
    assert client.get(media["variants"]["thumb"]).status_code == 404
    assert client.get(new["url"]).status_code == 200
    # A version that never existed is a 404 too.
    assert client.get(new["url"].replace(new["version"], "0123abcd")).status_code == 404
