"""date_windows and Sampler (avenue/embedded/fences.py): windows of dates between fences that hold every
date once whatever the fences are, and fences sampled from a walk."""

from __future__ import annotations

import bisect
import datetime as dt
import random

import pytest

from avenue.embedded.fences import (
    FIRST_APPROACH,
    FIRST_GROWTH,
    FIRST_READ,
    Sampler,
    date_windows,
    first_date_windows,
)

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


def _first_walk(dates: list[dt.datetime], **options) -> list[list[dt.datetime]]:
    """What each window of a first walk holds, each read's count sent back as a walk does."""
    windows = first_date_windows(**options)
    held: list[list[dt.datetime]] = []
    condition = next(windows)
    while True:  # dates are sorted: a window is a slice
        low = bisect.bisect_right(dates, condition["$gt"]) if "$gt" in condition else 0
        high = bisect.bisect_left(dates, condition["$lt"]) if "$lt" in condition else len(dates)
        held.append(dates[low:high])
        try:
            condition = windows.send(len(held[-1]))
        except StopIteration:
            return held


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("hints", ["right", "wrong", "none"])
@pytest.mark.parametrize("resumed", [False, True])
def test_a_first_walk_holds_every_date_once_whatever_its_hints(descending, hints, resumed):
    dates = _dates() + [dt.datetime(1969, 7, 20, tzinfo=dt.UTC), dt.datetime(2090, 1, 1, tzinfo=dt.UTC)]
    dates.sort()
    hinted = {"right": {"oldest": dates[1], "newest": dates[-2], "size": len(dates)},
              "wrong": {"oldest": T0 + dt.timedelta(days=3), "newest": T0 + dt.timedelta(days=4), "size": 9},
              "none": {}}[hints]
    start = dates[1500] if resumed else None
    held = _first_walk(dates, descending=descending, start=start, moment=T0 + dt.timedelta(days=40),
                       **hinted)
    expected = [d for d in dates if start is None or (d < start if descending else d > start)]
    assert sorted(date for window in held for date in window) == expected  # each date in one window
    edges = [window[0] for window in held if window]
    assert edges == sorted(edges, reverse=descending)  # in walk order
    assert all(set(condition) <= {"$gt", "$lt"} for condition in _conditions(descending, hinted))


def _conditions(descending: bool, hinted: dict) -> list[dict]:
    windows = first_date_windows(descending=descending, moment=T0, **hinted)
    conditions = [next(windows)]
    for _ in range(5):  # the first six, or all of them when the walk is shorter
        try:
            conditions.append(windows.send(0))
        except StopIteration:
            break
    return conditions


@pytest.mark.parametrize("descending", [False, True])
def test_a_first_walks_reads_hold_about_a_fence_s_worth_where_the_counters_say_the_dates_lie(descending):
    # As bench/scale.py seeds (and the app writes): an image a second, its 9 files documents
    # under one date, the bucket's counters holding its oldest and newest date and its size.
    dates = sorted(T0 + dt.timedelta(seconds=n) for n in range(3000) for _ in range(9))
    held = _first_walk(dates, descending=descending, oldest=dates[0], newest=dates[-1], size=len(dates),
                       moment=T0 + dt.timedelta(days=400))
    sizes = [len(window) for window in held]
    assert sum(sizes) == len(dates)
    assert max(sizes) <= FIRST_GROWTH * FIRST_READ  # a read held the whole walk before (27,000)
    assert len(held) < 2 * len(dates) / FIRST_READ + 60  # and empty reads stay few (gaps of years)


@pytest.mark.parametrize("descending", [False, True])
def test_files_past_a_long_gap_are_read_an_eighth_at_most(descending):
    # A bulk load of last year's files, and today's few uploads: the counters' dates span the
    # year; walking down from today, the windows grow over the empty months but never reach
    # more than an eighth of what is left to the oldest date (a window grown over the gap
    # held all 27,000 files at once).
    dense = [T0 + dt.timedelta(seconds=n) for n in range(3000) for _ in range(9)]
    today = T0 + dt.timedelta(days=365)
    dates = sorted([*dense, *[today] * 9])
    held = _first_walk(dates, descending=descending, oldest=dates[0], newest=dates[-1], size=len(dates),
                       moment=today)
    sizes = [len(window) for window in held]
    assert sum(sizes) == len(dates)
    assert max(sizes) <= len(dense) // FIRST_APPROACH + FIRST_READ
    # The empty months: an eighth of what is left at a time towards the files (fifty-odd
    # reads); away from them, once the 9 left fit one read, one read.
    assert sum(1 for size in sizes if not size) < (110 if descending else 20)


YEAR_AGO = T0 - dt.timedelta(days=365)


def _empty_reads(dates: list[dt.datetime], descending: bool, size: int, bucket: list[dt.datetime]) -> int:
    """The empty reads of a first walk of ``dates`` (of ``size`` at most) whose hints are the
    dates of the whole ``bucket``, as a role's walk has them from its bucket's counters."""
    held = _first_walk(dates, descending=descending, oldest=min(bucket), newest=max(bucket), size=size,
                       moment=T0)
    assert sorted(date for window in held for date in window) == dates
    return sum(1 for window in held if not window)


@pytest.mark.parametrize("descending", [False, True])
def test_a_year_without_uploads_costs_a_walk_a_few_empty_reads(descending):
    # As bench/scale.py seeds (tests/api/test_scale_bench.py): 8 images a second apart from a
    # year ago, 9 files each, and its templates' 27 files today. Before, each window across
    # the year covered an eighth of what was left to today: 152-216 empty reads a walk, an
    # empty role's walk too (the seed test's first count: 2,592 reads, 9 s on SecantusDB).
    images = [YEAR_AGO + dt.timedelta(seconds=n) for n in range(8)] + [T0] * 3
    bucket = [date for date in images for _ in range(9)]
    assert _empty_reads(images, descending, len(images), bucket) <= 22  # the originals
    assert _empty_reads([], descending, 0, bucket) <= 22  # a role with no files
    # 33,000 images: the walk that meets today's files first still crosses the year by eighths
    # towards the others (tested above); the other way, one read past the last of them.
    images = [YEAR_AGO + dt.timedelta(seconds=n) for n in range(33_000)] + [T0] * 3
    assert _empty_reads(images, descending, len(images), images) <= (90 if descending else 22)


@pytest.mark.parametrize("descending", [False, True])
def test_a_store_of_bursts_and_gaps_costs_a_walk_a_few_empty_reads(descending):
    # Five bursts a season apart, and today's upload: the files left fit a read after the
    # first burst (before: 35-39 empty reads, 213 with bursts of 3,000); with bursts of 3,000
    # windows cover what would hold 4 reads were the rest even (an eighth at least).
    for burst, most in ((100, 22), (3000, 70)):
        dates = [YEAR_AGO + dt.timedelta(days=73 * k, seconds=n) for k in range(5) for n in range(burst)]
        dates.append(T0)
        assert _empty_reads(dates, descending, len(dates), dates) <= most


def test_counters_that_missed_a_bulk_load_never_let_a_window_reach_past_it():
    # The counters hold 50 files; 27,000 more were loaded behind the app's back a year ago
    # and 27,000 just before today. Once the walk has read more than the counters say, what
    # they leave is unknown: the windows still approach today by eighths.
    early = [YEAR_AGO + dt.timedelta(seconds=n) for n in range(3000) for _ in range(9)]
    late = [T0 - dt.timedelta(seconds=n) for n in range(1, 3001) for _ in range(9)]
    dates = sorted([*early, *late, T0])
    held = _first_walk(dates, oldest=YEAR_AGO, newest=T0, size=50, moment=T0)
    sizes = [len(window) for window in held]
    assert sum(sizes) == len(dates)
    assert max(sizes) <= len(late) // FIRST_APPROACH + FIRST_READ


@pytest.mark.parametrize("descending", [False, True])
def test_a_small_role_with_its_counters_right_costs_a_walk_a_few_reads(descending):
    # Most shops: a bucket of a few dozen images over a year, its counters right. Nothing lies
    # outside the counters' dates, so each side of them is one window: a role's walk is a few
    # reads, where windows growing from a second took 9 reads to a day from now and 16 down to
    # 1970 (14-22 a walk, every role of every bucket: the store model's sweeps took 3.5 times as
    # long on SecantusDB as before the first walks had windows).
    images = [YEAR_AGO + dt.timedelta(days=7 * n) for n in range(40)] + [T0]
    bucket = [date for date in images for _ in range(9)]
    for dates, size in ((images, len(images)), ([], 0)):  # the originals, and a role with no files
        held = _first_walk(dates, descending=descending, oldest=min(bucket), newest=max(bucket), size=size,
                           moment=T0)
        assert sorted(date for window in held for date in window) == dates
        assert len(held) <= 5, [len(window) for window in held]


def test_up_from_1970_without_hints_a_walk_is_one_read():
    # No counters say where the dates lie (a bucket never written to, or loaded with none):
    # windows grown from a second up from 1970 reach today's files decades wide, so they bound
    # nothing, and an empty bucket's role paid 17 empty reads a walk. Down from a day from now
    # they do bound the newest files, and stay.
    dates = sorted(T0 - dt.timedelta(minutes=n) for n in range(500))
    assert len(_first_walk(dates, moment=T0)) == 1
    assert len(_first_walk([], moment=T0)) == 1
    down = _first_walk(dates, descending=True, moment=T0)
    assert sorted(date for window in down for date in window) == dates
    assert max(len(window) for window in down) <= FIRST_GROWTH * FIRST_READ
