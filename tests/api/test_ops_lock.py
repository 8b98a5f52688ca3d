"""One gc and one fsck at a time, across processes and instances (avenue/ops/lock.py)."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from avenue.clock import as_utc
from avenue.ops import lock
from avenue.ops.lock import COLLECTION, Held, exclusive


def test_a_second_run_while_the_first_holds_the_lease_stops_naming_the_holder(db):
    with exclusive(db, "gc") as first:
        with pytest.raises(Held) as held:
            with exclusive(db, "gc"):
                pass
        assert str(first["pid"]) in held.value.message and "lapses at" in held.value.message
        with exclusive(db, "fsck"):  # another command's lease is its own
            pass
    with exclusive(db, "gc"):  # released at the end
        pass


def test_the_lease_is_released_when_the_run_fails(db):
    with pytest.raises(RuntimeError):
        with exclusive(db, "gc"):
            raise RuntimeError("boom")
    assert db[COLLECTION].count_documents({}) == 0


def test_a_lease_whose_holder_died_is_taken_over_once_it_lapses(db):
    db[COLLECTION].insert_one({"_id": "gc", "holder": {"host": "gone", "pid": 1, "run": "x"},
                               "until": lock.now() - dt.timedelta(seconds=1)})
    with exclusive(db, "gc") as holder:
        assert db[COLLECTION].find_one({"_id": "gc"})["holder"]["run"] == holder["run"]


def test_a_long_run_keeps_its_lease_by_renewing_it(db, monkeypatch, lease_clock):
    # The leases' clock is stepped past the first expiry; the heartbeat (every 0.2 s, real
    # time) renews the lease from the stepped clock, however slow the machine is.
    monkeypatch.setattr(lock, "LEASE", dt.timedelta(seconds=0.6))
    with exclusive(db, "gc"):
        first = as_utc(db[COLLECTION].find_one({"_id": "gc"})["until"])
        lease_clock.advance(0.7)  # past the first expiry
        deadline = time.monotonic() + 30
        while as_utc(db[COLLECTION].find_one({"_id": "gc"})["until"]) <= lease_clock() \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        assert as_utc(db[COLLECTION].find_one({"_id": "gc"})["until"]) > first
        with pytest.raises(Held):
            with exclusive(db, "gc"):
                pass


def test_two_gc_commands_never_run_at_once(app, runner, db):
    with exclusive(db, "gc"):
        result = runner.invoke(args=["gc", "--quiet"])
    assert result.exit_code == 1 and "Another gc run holds the lock" in result.output
    assert runner.invoke(args=["gc", "--quiet"]).exit_code == 0
