"""The leases' clock, moved by a test: a lapse is a step of the clock, not a sleep.

A sleep only bounds time from below: a test that takes a 0.2 s lease and checks at once that
it is held fails when the take itself is slow on a loaded machine. With this clock the lease
lapses exactly when the test steps past it. ``avenue.leases`` reads the time through its
module-level ``now`` (``avenue.clock.now``), which the ``lease_clock`` fixture replaces.
"""

from __future__ import annotations

import datetime as dt

import pytest

from avenue import leases
from avenue.clock import now


class LeaseClock:
    def __init__(self) -> None:
        self.moment = now()

    def __call__(self) -> dt.datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += dt.timedelta(seconds=seconds)


@pytest.fixture
def lease_clock(monkeypatch: pytest.MonkeyPatch) -> LeaseClock:
    clock = LeaseClock()
    monkeypatch.setattr(leases, "now", clock)
    return clock
