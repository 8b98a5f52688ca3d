"""date_windows and Sampler (avenue/paging.py): windows of dates between fences that hold every
date once whatever the fences are, and fences sampled from a walk."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from avenue.paging import Sampler, date_windows

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _inside(date: dt.datetime, condition: dict[str, dt.datetime]) -> bool:
    checks = {"$gt": date.__gt__, "$gte": date.__ge__, "$lt": date.__lt__, "$lte": date.__le__}
    return all(checks[op](bound) for op, bound in condition.items())


def _held(dates: list[dt.datetime], conditions) -> list[list[dt.datetime]]:
    return [[date for date in dates if _inside(date, condition)] for condition in conditions]


def _dates(count: int = 3000) -> list[dt.datetime]:
    # Bursts and gaps, as uploads come (a zip import's thousand in a second, then a quiet
    # month), in milliseconds as BSON dates hold them; many share a millisecond.
    rng = random.Random(7)
    seconds = [rng.choice([rng.uniform(0, 2), rng.uniform(0, 3e6)]) for _ in range(count)]
    return sorted(T0 + dt.timedelta(milliseconds=round(second * 1000)) for second in seconds)


def _sampled(dates: list[dt.datetime], every: int) -> list[dt.datetime]:
    sampler = Sampler(every)
    for date in dates:
        sampler.add(date)
    return sampler.values


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("fences", ["fresh", "stale", "none", "foreign"])
def test_the_windows_hold_every_date_once_whatever_the_fences(descending, fences):
    dates = _dates()
    fence_values = {"fresh": _sampled(dates, 100), "stale": _sampled(dates[::3], 40)[5:-5],
                    "none": [], "foreign": [T0 - dt.timedelta(days=9), T0 + dt.timedelta(days=999)]}[fences]
    held = _held(dates, date_windows(fence_values, descending=descending))
    assert sorted(date for window in held for date in window) == dates  # each date in one window
    if fences == "fresh":  # about one fence's worth a read (a run of equal dates stays whole)
        assert len(held) > 20 and max(len(window) for window in held) <= 300
    if fences == "none":
        assert len(held) == 1
    edges = [next(iter(window)) for window in held if window]
    assert edges == sorted(edges, reverse=descending)  # in walk order


def test_joined_windows_read_several_fences_at_a_time():
    dates = [T0 + dt.timedelta(seconds=n) for n in range(1000)]
    fences = _sampled(dates, 10)
    one, four = list(date_windows(fences)), list(date_windows(fences, joined=4))
    assert len(one) == 101 and len(four) == 26  # a window each side of every (fourth) fence
    assert sorted(d for window in _held(dates, four) for d in window) == dates


@pytest.mark.parametrize("descending", [False, True])
def test_a_walk_resumed_from_a_date_holds_only_what_lies_beyond_it(descending):
    dates = [T0 + dt.timedelta(seconds=n) for n in range(1000)]
    start = dates[400]
    held = _held(dates, date_windows(_sampled(dates, 50), descending=descending, start=start))
    flat = sorted(date for window in held for date in window)
    assert flat == (dates[:400] if descending else dates[401:])


def test_an_inclusive_bound_is_asked_as_after_a_millisecond_less():
    # SecantusDB 0.7.0b3 left out the document equal to a $gte at the top of a compound
    # index's range (a descending date with _id after it): no window asks for $gte or $lte.
    fences = _sampled([T0 + dt.timedelta(seconds=n) for n in range(100)], 10)
    for descending in (False, True):
        for condition in date_windows(fences, descending=descending):
            assert set(condition) <= {"$gt", "$lt"}


def test_the_sampler_keeps_every_nth_value_and_one_fence_for_a_run_of_equal_values():
    sampler = Sampler(3)
    for value in [1, 2, 3, 4, 5, 6, 6, 6, 6, 6, 6, 6, 7]:
        sampler.add(value)
    assert sampler.values == [3, 6] and sampler.items == 13
