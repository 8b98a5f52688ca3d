"""The embedded database's supervisor decides when to restart, and when to give up, by its
clock and its server's state alone (no database: a fake server)."""

from __future__ import annotations

import pytest

from avenue.embedded import GaveUp, Supervisor


class FakeServer:
    def __init__(self) -> None:
        self.fails_to_start = 0
        self.alive = True
        self.pid = 100
        self.process = None
        self.kills = 0
        self.uri = "mongodb://127.0.0.1:1/"

    def running(self) -> bool:
        return self.alive

    def kill(self) -> None:
        self.kills += 1
        self.alive = False

    def start(self) -> FakeServer:
        if self.fails_to_start:
            self.fails_to_start -= 1
            raise RuntimeError("secantusd-py exited with status 1")
        self.alive = True
        self.pid += 1
        return self


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Cpu:
    """The seconds the server's threads ran or waited to run, as the test spends them."""

    def __init__(self) -> None:
        self.seconds: float | None = 0.0

    def __call__(self, pid: int | None) -> float | None:
        return self.seconds


def supervisor(**kwargs) -> tuple[Supervisor, FakeServer, Clock, list[str]]:
    server, clock, lines = FakeServer(), Clock(), []
    cpu = kwargs.pop("cpu", Cpu())
    watched = Supervisor(server, clock=clock, log=lines.append, scheduled=cpu, **kwargs)  # type: ignore[arg-type]
    watched._answered_now()
    return watched, server, clock, lines


def test_a_server_that_answers_is_left_alone():
    watched, server, clock, lines = supervisor(stall_seconds=15)
    for _ in range(100):
        clock.now += 5
        watched.answered = clock.now  # each probe answered
        watched.check()
    assert server.kills == 0 and lines == []


def test_a_stall_of_stall_seconds_restarts_it_with_the_reason():
    watched, server, clock, lines = supervisor(stall_seconds=15)
    watched.failure = "NetworkTimeout: timed out"
    clock.now += 14.9
    watched.check()
    assert server.kills == 0
    clock.now += 0.2
    watched.check()
    assert server.kills == 1 and server.pid == 101
    assert lines[0] == ("Restarting the embedded database (pid 100): it answered no operation for 15 s, "
                        "running or runnable 0% of the time: wedged (NetworkTimeout: timed out)")
    assert "restart 1 of at most 60" in lines[1]
    watched.check()  # the restart counts as an answer: no second restart at once
    assert server.kills == 1


def test_a_server_that_exited_is_started_again():
    watched, server, clock, lines = supervisor()
    server.alive = False
    watched.check()
    assert server.alive and server.pid == 101
    assert "it exited" in lines[0]


def test_it_gives_up_after_max_restarts_in_the_window_and_forgets_old_ones():
    watched, server, clock, lines = supervisor(stall_seconds=10, max_restarts=3, window_seconds=600)
    for _ in range(3):
        clock.now += 11
        watched.check()
    assert server.kills == 3
    clock.now += 11
    with pytest.raises(GaveUp, match="after 3 restarts in 10 minutes"):
        watched.check()
    assert server.kills == 3
    # Later than the window: the old restarts no longer count.
    clock.now += 600
    watched.check()
    assert server.kills == 4


def test_a_busy_server_is_given_busy_seconds_before_it_is_restarted():
    cpu = Cpu()
    watched, server, clock, lines = supervisor(stall_seconds=15, busy_seconds=60, cpu=cpu)
    for _ in range(11):  # 55 s without an answer, at 80 % of a core: busy, not wedged
        clock.now += 5
        cpu.seconds += 4
        watched.check()
    assert server.kills == 0
    clock.now += 5
    cpu.seconds += 4
    watched.check()
    assert server.kills == 1
    assert "for 60 s, running or runnable 80% of the time" in lines[0]


@pytest.mark.parametrize("share", [0.18, 0.35, 0.45])
def test_a_wedge_whose_eviction_thread_wakes_now_and_then_is_still_restarted_at_stall_seconds(share):
    """The standalone server's wedges measured 10-35 % of a core (WiredTiger's eviction wait
    and the hello streams wake on timers): a wedge, restarted at 15 s, not after 60."""
    cpu = Cpu()
    watched, server, clock, lines = supervisor(stall_seconds=15, busy_seconds=60, cpu=cpu)
    clock.now += 16
    cpu.seconds += 16 * share
    watched.check()
    assert server.kills == 1
    assert f"for 16 s, running or runnable {share:.0%} of the time: wedged" in lines[0]


def test_a_busy_server_that_answers_again_is_never_restarted():
    cpu = Cpu()
    watched, server, clock, lines = supervisor(stall_seconds=15, busy_seconds=60, cpu=cpu)
    clock.now += 40
    cpu.seconds += 30
    watched.check()
    watched._answered_now()  # the probe got through
    clock.now += 40
    cpu.seconds += 1  # now idle, but it answered 40 s ago: past stall_seconds, so restarted
    watched.check()
    assert server.kills == 1 and "wedged" in lines[0]


def test_without_a_cpu_reading_it_goes_by_time_alone():
    cpu = Cpu()
    cpu.seconds = None
    watched, server, clock, lines = supervisor(stall_seconds=15, cpu=cpu)
    clock.now += 16
    watched.check()
    assert server.kills == 1 and "runnable" not in lines[0]


def test_scheduled_seconds_counts_this_process_s_threads_time():
    import os
    import time

    from avenue.embedded.supervisor import scheduled_seconds

    # Spin until 0.1 s accrued, not for a fixed 0.2 s of wall time: what a loaded machine
    # gives the thread meanwhile does not matter. A count that does not grow with the time
    # this process's threads run never gets there (30 s).
    before = scheduled_seconds(os.getpid())
    assert before is not None
    deadline = time.monotonic() + 30
    after = before
    while after - before < 0.1 and time.monotonic() < deadline:  # spin: run time accrues
        after = scheduled_seconds(os.getpid())
        assert after is not None
    assert after - before >= 0.1
    assert scheduled_seconds(None) is None


def test_a_restart_that_fails_to_start_is_logged_and_tried_again_at_the_next_check():
    watched, server, clock, lines = supervisor(stall_seconds=15)
    server.fails_to_start = 1
    clock.now += 16
    watched.check()
    assert server.kills == 1 and not server.alive
    assert lines[-1] == "The embedded database did not start again: secantusd-py exited with status 1"
    watched.check()  # not running: started again, counted as a second restart
    assert server.alive and server.pid == 101 and len(watched.restarts) == 2
    assert "it exited" in lines[-2] and "restart 2 of at most 60" in lines[-1]


class FakeRelay:
    """make run's relay as the supervisor reads it: the server's last reply, what is in flight."""

    def __init__(self) -> None:
        self.answered_at = 0.0
        self.in_flight = ""
        self.resets = 0

    def current(self) -> str:
        return self.in_flight

    def reset(self) -> None:
        self.resets += 1


def test_through_a_relay_any_reply_of_the_server_is_an_answer_though_the_probe_waits_its_turn():
    relay = FakeRelay()
    watched, server, clock, lines = supervisor(stall_seconds=15, relay=relay)
    for _ in range(10):  # the probe never comes back (queued behind others), the others' replies do
        clock.now += 10
        relay.answered_at += 10
        watched.check()
    assert server.kills == 0 and lines == []
    clock.now += 15  # now nothing comes back at all
    watched.check()
    assert server.kills == 1 and relay.resets == 1


def test_a_restart_through_a_relay_says_what_was_in_flight():
    relay = FakeRelay()
    relay.in_flight = "aggregate avenue.uploads.files, in flight for 15.2 s"
    watched, server, clock, lines = supervisor(stall_seconds=15, relay=relay)
    clock.now += 15.1
    watched.check()
    assert server.kills == 1
    assert lines[0].endswith("; in flight: aggregate avenue.uploads.files, in flight for 15.2 s")
