"""Background work (avenue/background.py): periodic jobs that survive failures and stop when
asked, jobs under a lease, and the one start of a worker's background work."""

from __future__ import annotations

import os
import threading
import time
import types

import pymongo
import pytest

from avenue import background
from avenue.leases import Lease


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_periodic_job_runs_every_interval_until_stopped():
    ticks: list[float] = []
    job = background.PeriodicJob("test-job", lambda: ticks.append(time.monotonic()), every=0.02)
    job.start()
    wait_until(lambda: len(ticks) >= 3)
    job.stop()
    assert len(ticks) >= 3 and not job.is_alive()
    stopped_at = len(ticks)
    time.sleep(0.1)
    assert len(ticks) == stopped_at


def test_a_job_waits_its_first_delay_before_the_first_tick():
    # When the first tick came, measured from before the job started: a lower bound only (a
    # check after a 0.1 s sleep that no tick had come yet fails when that sleep overruns by 0.2 s).
    ticks: list[float] = []
    job = background.PeriodicJob("test-job", lambda: ticks.append(time.monotonic()), every=0.01,
                                 first_delay=0.3)
    scheduled = time.monotonic()
    job.start()
    wait_until(lambda: ticks)
    job.stop()
    assert ticks and ticks[0] - scheduled >= 0.3


def test_a_job_stopped_during_its_first_delay_never_ticks():
    ticks: list[int] = []
    job = background.PeriodicJob("test-job", lambda: ticks.append(1), every=0.01, first_delay=30)
    job.start()
    started = time.monotonic()
    job.stop()
    assert time.monotonic() - started < 5 and not job.is_alive() and ticks == []


def test_a_tick_that_raises_is_logged_and_the_job_goes_on(caplog):
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise RuntimeError("database went away")

    job = background.PeriodicJob("test-job", broken, every=0.01, failure="the test job's tick failed")
    with caplog.at_level("ERROR"):
        job.start()
        wait_until(lambda: len(calls) >= 3)
        job.stop()
    assert len(calls) >= 3 and not job.is_alive()
    assert any(r.getMessage() == "the test job's tick failed" and r.exc_info for r in caplog.records)


@pytest.mark.database
def test_jobs_under_one_lease_never_tick_at_once_and_give_it_back(db, backend):
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("threads need a real server (mongomock is not thread-safe)")
    running: list[str] = []
    overlaps: list[int] = []
    ticks: list[str] = []

    def tick(name: str) -> None:
        running.append(name)
        overlaps.append(len(running))
        ticks.append(name)
        time.sleep(0.03)
        running.remove(name)

    jobs = [background.PeriodicJob(f"test-leased-{name}", lambda name=name: tick(name), every=0.005,
                                   lease=lambda name=name: Lease(db.test_leases, "job", name, 30))
            for name in ("a", "b")]
    for job in jobs:
        job.start()
    wait_until(lambda: len(ticks) >= 6)
    for job in jobs:
        job.stop()
    assert len(ticks) >= 6 and max(overlaps) == 1
    assert db.test_leases.count_documents({}) == 0  # released after each tick


def test_a_job_whose_lease_is_held_elsewhere_does_not_tick(db):
    assert Lease(db.test_leases, "job", "elsewhere", 30).take()
    ticks: list[int] = []
    job = background.PeriodicJob("test-leased", lambda: ticks.append(1), every=0.01,
                                 lease=lambda: Lease(db.test_leases, "job", "here", 30))
    job.start()
    time.sleep(0.2)
    job.stop()
    assert ticks == []


def test_start_all_starts_what_was_registered_in_order():
    app = types.SimpleNamespace(extensions={})
    started: list[str] = []
    background.register(app, "first", lambda: started.append("first"))
    background.register(app, "off", lambda: None)
    background.register(app, "last", lambda: started.append("last") or "job")
    assert background.start_all(app) == {"first": None, "off": None, "last": "job"}
    assert started == ["first", "last"]
    assert background.start_all(types.SimpleNamespace(extensions={})) == {}


def test_spawn_runs_the_work_on_a_named_daemon_thread():
    seen: list[tuple[str, bool, int]] = []
    thread = background.spawn("test-spawned", lambda x: seen.append(
        (threading.current_thread().name, threading.current_thread().daemon, x)), 7)
    thread.join(5)
    assert seen == [("test-spawned", True, 7)]


def test_a_starting_worker_starts_each_piece_of_its_background_work_once(app_factory, monkeypatch, tmp_path):
    from avenue.status import sweep
    from tests.helpers import wait_for_start_work, worker_start_hook

    app = app_factory(AVENUE_STATUS_WARM_UP=True, AVENUE_HISTORY_INTERVAL_SECONDS=3600,
                      AVENUE_CDN_PURGE_URL="http://127.0.0.1:9/hook", AVENUE_CDN_PURGE_KEY="k" * 32)
    assert list(app.extensions[background.EXTENSION]) == [
        "avenue-prepare", "status-sweep", "history-sampler", "cdn-purge", "media-deliveries",
        "media-deletions-sync", "rendition-budget", "embedded-expiry", "tus-collector"]
    before = set(threading.enumerate())
    hook, worker = worker_start_hook(monkeypatch, tmp_path)
    hook(worker(app))
    started = set(threading.enumerate()) - before
    try:
        ours = ("avenue-cdn-purge", "avenue-embedded-expiry", "avenue-media-deletions-sync",
                "avenue-media-deliveries", "avenue-rendition-budget",
                "avenue-tus-collector", "history-sampler", "status-sweep-scheduler")
        assert sorted(t.name for t in started if t.name in ours) == list(ours)  # one each
    finally:
        wait_for_start_work()
        for thread in started:
            if isinstance(thread, background.PeriodicJob):
                thread.stop()
        sweep.wait_for_sweeps(30)


def test_a_lane_runs_its_jobs_one_at_a_time_in_order_on_one_thread():
    lane = background.Lane("test-lane", idle_seconds=0.1)
    running, most, seen = [0], [0], []
    lock = threading.Lock()

    def job(index: int) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.01)
        seen.append((index, threading.current_thread().name))
        with lock:
            running[0] -= 1

    for index in range(5):
        lane.submit(lambda index=index: job(index))
    assert lane.drain(10)
    assert [index for index, _ in seen] == [0, 1, 2, 3, 4]
    assert {name for _, name in seen} == {"test-lane"} and most[0] == 1
    assert lane.pending() == 0


def test_draining_a_lane_waits_for_the_job_running_and_those_queued_and_gives_up_at_its_timeout():
    lane = background.Lane("test-lane", idle_seconds=0.1)
    release = threading.Event()
    done: list[str] = []
    lane.submit(lambda: (release.wait(10), done.append("first")))
    lane.submit(lambda: done.append("second"))
    assert not lane.drain(0.1)  # the first still waits
    assert lane.pending() == 2
    release.set()
    assert lane.drain(10)
    assert done == ["first", "second"]


def test_a_lane_job_that_raises_is_logged_and_the_next_one_runs(caplog):
    lane = background.Lane("test-lane", idle_seconds=0.1)
    done: list[int] = []
    lane.submit(lambda: 1 / 0)
    lane.submit(lambda: done.append(1))
    assert lane.drain(10)
    assert done == [1]
    assert "a job of test-lane failed" in caplog.text


def test_a_job_past_a_lanes_most_runs_on_the_submitting_thread_and_a_failure_there_is_logged(caplog):
    lane = background.Lane("test-lane-most", idle_seconds=0.1, most=1)
    release = threading.Event()
    ran: list[str] = []
    assert lane.submit(lambda: (release.wait(10), ran.append(threading.current_thread().name)))
    assert lane.submit(lambda: ran.append(threading.current_thread().name)) is False  # one pending
    assert ran == [threading.current_thread().name] and lane.pending() == 1
    assert lane.submit(lambda: 1 / 0) is False  # raises here: logged, not raised
    assert "a job of test-lane-most failed" in caplog.text
    release.set()
    assert lane.drain(10)
    assert ran[-1] == "test-lane-most"
    assert lane.submit(lambda: ran.append("queued again")) and lane.drain(10)  # room again
    assert ran[-1] == "queued again"


def test_a_lane_runs_below_the_process_priority_where_the_system_allows():
    lane = background.Lane("test-lane", nice=5, idle_seconds=0.1)
    seen: list[int] = []
    lane.submit(lambda: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
    assert lane.drain(10)
    # Linux: the lane's own thread only (this one keeps its priority).
    assert seen == [os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) + 5]


def test_an_idle_lane_ends_its_thread_and_the_next_job_starts_one():
    lane = background.Lane("test-lane-idle", idle_seconds=0.05)
    lane.submit(lambda: None)
    assert lane.drain(10)
    wait_until(lambda: not any(t.name == "test-lane-idle" for t in threading.enumerate()))
    assert not any(t.name == "test-lane-idle" for t in threading.enumerate())
    done: list[int] = []
    lane.submit(lambda: done.append(1))
    assert lane.drain(10) and done == [1]
