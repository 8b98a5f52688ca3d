"""Upload counts (avenue/media/effects/uploads.py), as the storage history's series draws them:
per hour and per day, and not counted before counting began."""

from __future__ import annotations

import datetime as dt

import pytest

from avenue.media import Buckets
from avenue.media.effects import uploads as upload_counts
from avenue.monitoring import history
from tests.support.monitoring import T0, take


@pytest.fixture
def mdb(db, app):
    from avenue import monitoring

    monitoring.ensure_indexes(db, 90)
    return db


def test_series_draws_points_and_uploads_per_bar_from_the_upload_counts(mdb):
    for hour in range(6):
        take(mdb, T0 + dt.timedelta(hours=hour), 10.0 + hour, originals=2 + hour)
    mdb[upload_counts.UPLOADS].delete_many({})  # counting began before T0 here, not at the app's start
    upload_counts.start_counting(mdb, T0 - dt.timedelta(days=2))
    for hour, count in [(1, 3), (3, 4), (5, 5)]:
        upload_counts.record(mdb, Buckets.UPLOADS, count, T0 + dt.timedelta(hours=hour, minutes=20))
    moment = T0 + dt.timedelta(hours=5, minutes=30)  # the current hour's uploads count already
    day = history.series(mdb, "24h", moment)
    assert [p["gridfs_bytes"] for p in day["points"]] == [10 * c for c in range(2, 8)]
    assert day["bar_seconds"] == 3600 and len(day["uploads"]) == 25
    by_start = {bar["start"]: bar["count"] for bar in day["uploads"]}
    assert by_start["2026-11-01T13:00:00Z"] == 3 and by_start["2026-11-01T15:00:00Z"] == 4
    assert by_start["2026-11-01T14:00:00Z"] == 0 and by_start["2026-11-01T17:00:00Z"] == 5
    assert day["uploads"][-1] == {"start": "2026-11-01T17:00:00Z", "count": 5}
    assert sum(by_start.values()) == 12
    week = history.series(mdb, "7d", moment)
    assert week["bar_seconds"] == 86400 and [b["count"] for b in week["uploads"]][-1] == 12
    later = history.series(mdb, "24h", moment + dt.timedelta(days=2))
    assert later["points"] == [] and sum(b["count"] for b in later["uploads"]) == 0


def test_days_before_counting_began_are_not_counted_rather_than_zero(mdb):
    mdb[upload_counts.UPLOADS].delete_many({})
    upload_counts.start_counting(mdb, T0 - dt.timedelta(days=2, hours=1))
    upload_counts.start_counting(mdb, T0)  # a later start changes nothing
    week = history.series(mdb, "7d", T0)
    assert week["uploads_counted_since"] == "2026-10-30T11:00:00Z"
    counts = [bar["count"] for bar in week["uploads"]]
    assert counts == [None, None, None, None, None, 0, 0, 0]  # Oct 25-29 before it; Oct 30 on
