"""Leases in MongoDB (avenue/leases.py): take, renew, release, lapse, takeover, races; on
every backend."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pymongo
import pytest

from avenue import leases
from avenue.clock import as_utc, now
from avenue.leases import Lease

LEASES = "test_leases"


def lease(db, owner: str, seconds: float = 30.0, **kwargs) -> Lease:
    collection = db if isinstance(db, Counted) else db[LEASES]
    return Lease(collection, "job", owner, seconds, **kwargs)


def race(backend, count: int, attempt) -> list[bool]:
    """``attempt(i)`` from ``count`` threads let go at once; their answers. On a real server
    only: mongomock is not thread-safe (an update's match and write are not one step), so a
    race there tests mongomock; the sequential tests show the same rules on it."""
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("threads need a real server (mongomock is not thread-safe)")
    barrier = threading.Barrier(count)
    answers: list[bool] = [False] * count

    def run(i: int) -> None:
        barrier.wait()
        answers[i] = attempt(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return answers


def test_a_free_lease_is_taken_and_a_held_one_is_refused(db):
    assert lease(db, "a").take()
    assert not lease(db, "b").take()
    assert lease(db, "a").take()  # its owner may take it again (a resumed run)
    assert db[LEASES].find_one({"_id": "job"})["owner"] == "a"


class Counted:
    """A collection whose writes are counted by name (every other call passed through)."""

    def __init__(self, collection) -> None:
        self.collection, self.calls = collection, []

    def __getattr__(self, name):
        if name in {"insert_one", "update_one", "delete_one"}:
            self.calls.append(name)
        return getattr(self.collection, name)


def test_a_free_lease_deleted_on_release_is_taken_in_one_command(db):
    """A rendition's claim (and an ops lock) is a document that exists only while held: its
    take is one insert, not an update that matches nothing and then the insert; a lapsed one
    is still taken over, and a live one refused."""
    counted = Counted(db[LEASES])
    assert Lease(counted, "job", "a", 30.0).take()
    assert counted.calls == ["insert_one"]
    db[LEASES].update_one({"_id": "job"}, {"$set": {"until": now() - dt.timedelta(seconds=1)}})
    assert Lease(db[LEASES], "job", "b", 30.0).take()  # lapsed: taken over
    assert not Lease(db[LEASES], "job", "c", 30.0).take()  # live: refused
    assert db[LEASES].find_one({"_id": "job"})["owner"] == "b"


def test_a_lease_s_document_may_be_inserted_by_the_caller_s_own_write(db):
    """``insert``: the caller inserts the document (a rendition's claim goes in the command
    that counts the render); its DuplicateKeyError is a lease that exists: taken over if
    lapsed, refused if live."""
    inserted = []

    def insert(doc):
        inserted.append(doc["_id"])
        db[LEASES].insert_one(doc)

    assert Lease(db[LEASES], "job", "a", 30.0, insert=insert).take()
    assert inserted == ["job"] and db[LEASES].find_one({"_id": "job"})["owner"] == "a"
    held = Lease(db[LEASES], "job", "b", 30.0, insert=insert)
    assert not held.take() and not held.inserted
    db[LEASES].update_one({"_id": "job"}, {"$set": {"until": now() - dt.timedelta(seconds=1)}})
    assert held.take() and not held.inserted and inserted == ["job", "job", "job"]


def test_a_kept_document_s_lease_is_taken_by_its_update(db):
    db[LEASES].insert_one({"_id": "job", "result": 42})
    counted = Counted(db[LEASES])
    held = lease(counted, "a", owner_field="lease_owner", until_field="lease_until", keep_document=True)
    assert held.take()
    assert counted.calls == ["update_one"]


def test_a_released_lease_is_free_at_once(db):
    first = lease(db, "a")
    assert first.take()
    first.release()
    assert db[LEASES].count_documents({}) == 0
    assert lease(db, "b").take()


def test_a_release_by_someone_who_lost_the_lease_leaves_the_new_holders_alone(db, lease_clock):
    first = lease(db, "a", seconds=0.1)
    assert first.take()
    lease_clock.advance(0.2)
    assert lease(db, "b").take()  # lapsed: taken over
    first.release()
    assert db[LEASES].find_one({"_id": "job"})["owner"] == "b"


def test_a_lease_that_is_not_renewed_lapses_and_is_taken_over(db, lease_clock):
    assert lease(db, "a", seconds=0.2).take()
    lease_clock.advance(0.19)
    assert not lease(db, "b").take()
    lease_clock.advance(0.02)
    assert lease(db, "b").take()


def test_renewing_pushes_the_expiry_until_the_lease_is_taken_over(db, lease_clock):
    first = lease(db, "a", seconds=0.3)
    assert first.take()
    before = db[LEASES].find_one({"_id": "job"})["until"]
    lease_clock.advance(0.2)
    assert first.renew() and first.renewals == 1
    assert db[LEASES].find_one({"_id": "job"})["until"] > before
    lease_clock.advance(0.2)  # past the first expiry, not past the renewed one
    assert not lease(db, "b").take()
    lease_clock.advance(0.2)
    assert lease(db, "b").take()
    assert not first.renew()


def test_the_holders_fenced_writes_match_nothing_once_it_was_taken_over(db, lease_clock):
    first = lease(db, "a", seconds=0.1)
    assert first.take()
    assert db[LEASES].update_one(first.mine(), {"$set": {"step": 1}}).matched_count == 1
    lease_clock.advance(0.2)
    assert lease(db, "b").take()
    assert db[LEASES].update_one(first.mine(), {"$set": {"step": 2}}).matched_count == 0
    assert db[LEASES].find_one({"_id": "job"})["step"] == 1


def test_of_owners_racing_for_a_new_lease_exactly_one_wins(db, backend):
    answers = race(backend, 6, lambda i: lease(db, f"owner-{i}").take())
    assert answers.count(True) == 1
    assert db[LEASES].find_one({"_id": "job"})["owner"] == f"owner-{answers.index(True)}"


def test_of_owners_racing_for_a_lapsed_lease_exactly_one_wins(db, backend):
    db[LEASES].insert_one({"_id": "job", "owner": "dead", "until": now() - dt.timedelta(seconds=1)})
    answers = race(backend, 6, lambda i: lease(db, f"owner-{i}").take())
    assert answers.count(True) == 1
    assert db[LEASES].find_one({"_id": "job"})["owner"] == f"owner-{answers.index(True)}"


def test_a_kept_lease_is_renewed_by_its_heartbeat_and_cannot_be_taken_meanwhile(db, lease_clock):
    # The leases' clock is stepped past the lease three times; the heartbeat (a thread, real
    # time) renews it from the stepped clock, and b tries only after that renewal: in real
    # time, a renewal that took a second on a loaded machine let the 1 s lease lapse.
    held = lease(db, "a", seconds=1.0)
    assert held.take()
    with held.kept(0.05, "test-lease"):
        for _ in range(3):  # three leases long
            lease_clock.advance(1.1)
            deadline = time.monotonic() + 30
            while as_utc(db[LEASES].find_one({"_id": "job"})["until"]) <= lease_clock() \
                    and time.monotonic() < deadline:
                time.sleep(0.02)
            assert as_utc(db[LEASES].find_one({"_id": "job"})["until"]) > lease_clock()
            assert not lease(db, "b").take()
    assert held.renewals >= 3
    assert not any(t.name == "test-lease" for t in threading.enumerate())


def test_the_heartbeat_stops_once_the_lease_was_taken_over(db):
    held = lease(db, "a", seconds=30)
    assert held.take()
    with held.kept(0.02, "test-lease"):
        db[LEASES].update_one({"_id": "job"}, {"$set": {"owner": "b"}})
        # The heartbeat's thread ends by itself, while the body still runs (leaving ``kept``
        # would stop it anyway): waited for, as a renewal in flight may take a second.
        deadline = time.monotonic() + 10
        while any(t.name == "test-lease" for t in threading.enumerate()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(t.name == "test-lease" for t in threading.enumerate())
        renewals = held.renewals
        time.sleep(0.1)
        assert held.renewals == renewals
    assert db[LEASES].find_one({"_id": "job"})["owner"] == "b"


def test_lease_fields_on_a_document_that_holds_more_are_unset_on_release(db):
    db[LEASES].insert_one({"_id": "job", "result": 42})
    held = lease(db, "a", owner_field="lease_owner", until_field="lease_until", keep_document=True)
    assert held.take()
    assert not lease(db, "b", owner_field="lease_owner", until_field="lease_until").take()
    held.release()
    assert db[LEASES].find_one({"_id": "job"}) == {"_id": "job", "result": 42}


def test_an_owner_kept_inside_a_record_is_written_through_it(db):
    holder = {"host": "h", "pid": 1, "run": "r1"}
    held = lease(db, "r1", owner_field="holder.run", record={"holder": holder})
    assert held.take()
    assert db[LEASES].find_one({"_id": "job"})["holder"] == holder
    assert not lease(db, "r2", owner_field="holder.run", record={"holder": {**holder, "run": "r2"}}).take()
    held.release()
    assert db[LEASES].count_documents({}) == 0


def test_a_stamp_is_a_compare_and_set_on_the_values_read(db):
    files = db[LEASES]
    files.insert_one({"_id": 1, "metadata": {}})
    moment = now()
    assert leases.stamp(files, 1, "metadata.deleting_at", {"metadata.deleting_at": None}, moment)
    assert not leases.stamp(files, 1, "metadata.deleting_at", {"metadata.deleting_at": None}, now())
    assert leases.held(moment, dt.timedelta(seconds=60), now())
    assert not leases.held(moment, dt.timedelta(seconds=60), now() + dt.timedelta(seconds=61))
    assert not leases.held(None, dt.timedelta(seconds=60), now())
    leases.unstamp(files, 1, "metadata.deleting_at", moment - dt.timedelta(seconds=1))  # not ours
    assert files.find_one({"_id": 1})["metadata"]["deleting_at"]
    leases.unstamp(files, 1, "metadata.deleting_at", moment)
    assert files.find_one({"_id": 1})["metadata"] == {}


def test_of_stampers_racing_exactly_one_wins(db, backend):
    db[LEASES].insert_one({"_id": 1, "metadata": {}})
    answers = race(backend, 6, lambda i: leases.stamp(db[LEASES], 1, "metadata.replacing_at",
                                             {"metadata.replacing_at": None}, now()))
    assert answers.count(True) == 1


def test_each_turn_is_taken_once_and_never_an_earlier_one(db):
    t0 = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
    hour = dt.timedelta(hours=1)
    assert leases.take_turn(db[LEASES], "turn", t0, "a", t0)
    assert not leases.take_turn(db[LEASES], "turn", t0, "b", t0)
    assert leases.take_turn(db[LEASES], "turn", t0 + hour, "b", t0 + hour)
    assert not leases.take_turn(db[LEASES], "turn", t0, "a", t0 + hour)


def test_of_instances_racing_for_a_turn_exactly_one_wins(db, backend):
    t0 = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
    assert leases.take_turn(db[LEASES], "turn", t0, "a", t0)
    answers = race(backend, 6, lambda i: leases.take_turn(db[LEASES], "turn", t0 + dt.timedelta(hours=1),
                                                          f"o{i}", t0))
    assert answers.count(True) == 1
