"""The history an image lists (avenue/media/store/history.py): what changed between two
versions, the list a switch leaves, its bound; without a database or HTTP."""

from __future__ import annotations

import datetime as dt

from avenue.media.store import history

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def test_what_changed_between_two_versions_names_each_field_that_differs():
    before = {"source_sha256": "a", "focal_point": {"x": 0.5, "y": 0.5}}
    assert history.changed(before, dict(before)) == []
    after = {**before, "source_sha256": "b", "crops": {"og": {}}}
    assert history.changed(before, after) == ["bytes", "crops"]
    assert history.changed({**before, "edits": {"rotate": 90}}, before) == ["edits"]


def test_a_switch_lists_the_version_it_replaces_drops_expired_ones_and_points_old_bytes_at_the_copy():
    day, lapsed = NOW + dt.timedelta(days=1), NOW - dt.timedelta(seconds=1)
    meta = {"source_sha256": "old", "history": [
        {"v": "00000001", "source_sha256": "old", "keep_until": day},
        {"v": "00000002", "source_sha256": "older", "trash_id": "t0", "keep_until": day},
        {"v": "00000003", "source_sha256": "old", "keep_until": lapsed},  # expired
        {"v": "0000000a", "source_sha256": "new", "keep_until": day},  # becomes current
    ]}
    old = history.entry({**meta, "changed": ["edits"]}, "00000004", since=NOW - dt.timedelta(hours=1),
                        moment=NOW, keep_days=30, length=123)
    assert old["keep_until"] == NOW + dt.timedelta(days=30) and old["changed"] == ["edits"]
    listed = history.after_switch(meta, old, "0000000a", NOW, trash_id="t1")
    assert [(i["v"], i.get("trash_id")) for i in listed] == [("00000001", "t1"), ("00000002", "t0"),
                                                            ("00000004", "t1")]
    assert [i["v"] for i in history.live({"history": listed}, NOW)] == ["00000004", "00000002", "00000001"]


def test_with_the_trash_off_nothing_is_listed_and_the_list_is_bounded():
    many = {"history": [{"v": f"{n:08x}", "keep_until": NOW + dt.timedelta(days=1)} for n in range(60)]}
    assert len(history.after_switch(many, None, "ffffffff", NOW)) == history.MAX_HISTORY
    assert history.after_switch({}, None, "ffffffff", NOW) == []


def test_a_version_made_before_versions_were_kept_names_no_change_and_a_first_upload_its_upload():
    assert history.made_by({}) == ["upload"]
    assert history.made_by({"version": "0123abcd"}) == []
    assert history.made_by({"version": "0123abcd", "changed": ["crops"]}) == ["crops"]
