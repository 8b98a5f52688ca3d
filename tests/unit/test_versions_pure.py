"""The versions' pure parts: the heat map (avenue/media/ingest/difference.py) and the history an
image lists (avenue/media/store/history.py), without a database or HTTP."""

from __future__ import annotations

import datetime as dt
import io

from PIL import Image

from avenue.media.ingest import difference
from avenue.media.ingest.images import Limits
from avenue.media.store import history

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def grey(width: int = 200, height: int = 100) -> Image.Image:
    return Image.new("RGB", (width, height), (120, 120, 120))


def png(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def test_the_same_picture_changes_no_pixel():
    made = difference.heat_map(grey(), grey())
    assert made.share == 0
    assert Image.open(io.BytesIO(made.data)).size == (200, 100)


def test_the_share_is_the_area_that_changed_and_noise_under_the_threshold_is_not_change():
    after = grey()
    after.paste((250, 120, 120), (0, 0, 50, 100))  # a quarter, changed a lot
    after.paste((130, 125, 120), (100, 0, 200, 100))  # half, changed by JPEG-noise amounts
    made = difference.heat_map(grey(), after)
    assert made.share == 0.25
    heat = Image.open(io.BytesIO(made.data)).convert("RGB")
    assert heat.getpixel((10, 50))[0] > 200 and heat.getpixel((150, 50))[0] < 60  # hot, dim


def test_a_second_picture_of_another_size_is_compared_at_the_first_ones():
    made = difference.heat_map(grey(200, 100), grey(400, 200))
    assert (made.width, made.height, made.share) == (200, 100, 0)


def test_pictures_are_drawn_at_most_512_px():
    big = png(Image.new("RGB", (2000, 1000), (10, 200, 30)))
    small = difference.small(big, Limits.for_stored(len(big)))
    assert small.size == (512, 256) and small.mode == "RGB"


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
