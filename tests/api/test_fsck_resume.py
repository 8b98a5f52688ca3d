"""fsck at scale: --since checks recent files only; the command takes --since and --resume
(a resume from the checkpoint itself: tests/media/upkeep/test_fsck.py)."""

from __future__ import annotations

import datetime as dt

from avenue.media import AppMedia, Buckets
from tests.helpers import image_bytes
from tests.support.records import images
from tests.support.stored import stored


def seed(db, count: int) -> None:
    for n in range(count):
        stored(db, Buckets.BUILDER if n % 2 else Buckets.UPLOADS,
               image_bytes("good/tiny_1x1.png") + bytes([n]) * 0,
               filename=f"f{n}.png", owner="o", scope=f"s{n}", kind="builder" if n % 2 else "upload")


def test_since_checks_only_files_uploaded_since_then(db):
    seed(db, 2)
    for bucket in (Buckets.BUILDER, Buckets.UPLOADS):
        old = {"$set": {"uploadDate": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}}
        db[f"{bucket}.files"].update_many({}, old)
        images(db, bucket).update_many({}, old)
    stored(db, Buckets.UPLOADS, image_bytes("good/png16.png"), filename="new.png", owner="o", scope="new")
    recent = AppMedia.on(db).maintenance.fsck(since=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    everything = AppMedia.on(db).maintenance.fsck()
    assert 0 < recent.files_checked < everything.files_checked
    assert (recent.images_checked, everything.images_checked) == (1, 3)  # the new image's record only


def test_the_cli_takes_since_and_resume(app, runner):
    with app.app_context():
        from avenue.db import get_mongo

        get_mongo().ensure_indexes()
    for args in (["--since", "2025-01-01"], ["--resume"]):
        result = runner.invoke(args=["fsck", *args, "--quiet"])
        assert result.exit_code == 0, result.output
