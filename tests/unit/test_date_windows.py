"""DateWindows (avenue/paging.py): windows of dates that partition every date whatever the hints
say, and whose size follows what the last one held."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from avenue.paging import DateWindows

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _inside(date: dt.datetime, condition: dict[str, dt.datetime]) -> bool:
    checks = {"$gt": date.__gt__, "$gte": date.__ge__, "$lt": date.__lt__, "$lte": date.__le__}
    return all(checks[op](bound) for op, bound in condition.items())


def _walk(dates: list[dt.datetime], windows: DateWindows) -> list[list[dt.datetime]]:
    held = []
    while windows:
        condition = windows.take()
        inside = [date for date in dates if _inside(date, condition)]
        held.append(inside)
        windows.saw(len(inside))
    return held


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("hints", ["right", "narrow", "wide", "none"])
def test_the_windows_hold_every_date_once_whatever_the_hints(descending, hints):
    rng = random.Random(7)
    # Bursts and gaps, as uploads come: a zip import's thousand in a second, then a quiet month.
    # Milliseconds, as BSON dates hold them.
    seconds = [rng.choice([rng.uniform(0, 2), rng.uniform(0, 3e6)]) for _ in range(3000)]
    dates = sorted({T0 + dt.timedelta(milliseconds=round(second * 1000)) for second in seconds})
    low, high = {"right": (dates[0], dates[-1]), "narrow": (dates[100], dates[-100]),
                 "wide": (dates[0] - dt.timedelta(days=400), dates[-1] + dt.timedelta(days=9)),
                 "none": (None, None)}[hints]
    held = _walk(dates, DateWindows(low, high, len(dates), descending=descending, target=100))
    flat = [date for window in held for date in window]
    assert sorted(flat) == dates  # each date in exactly one window
    if hints in ("right", "narrow"):
        assert len(held) > 10  # many reads, not one
    elif hints == "none":
        assert len(held) == 1


def test_the_windows_follow_what_each_one_held():
    dates = [T0 + dt.timedelta(milliseconds=n) for n in range(20_000)]
    held = _walk(dates, DateWindows(dates[0], dates[-1], len(dates), target=500))
    sizes = [len(window) for window in held]
    assert sum(sizes) == len(dates)
    assert max(sizes) <= 4 * 500 and sorted(sizes)[len(sizes) // 2] >= 250  # near the target


def test_past_a_gap_the_windows_grow_no_wider_than_four_times_the_first_guess():
    # The hint says the dates start 30 days before they do (the oldest uploads were deleted):
    # the empty windows widen, and uncapped the first one past the gap took all 20,000 dates.
    dates = [T0 + dt.timedelta(days=30, seconds=n * 30 * 86400 / 20_000) for n in range(20_000)]
    held = _walk(dates, DateWindows(T0, dates[-1], len(dates), target=100))
    assert sorted(d for window in held for d in window) == dates
    assert max(len(window) for window in held) <= 800  # 4 first guesses of 200 dates


@pytest.mark.parametrize("descending", [False, True])
def test_a_walk_resumed_from_a_date_holds_only_what_lies_beyond_it(descending):
    dates = [T0 + dt.timedelta(seconds=n) for n in range(1000)]
    start = dates[400]
    held = _walk(dates, DateWindows(dates[0], dates[-1], len(dates), descending=descending,
                                    start=start, target=50))
    flat = sorted(date for window in held for date in window)
    assert flat == (dates[:400] if descending else dates[401:])
