"""fsck at scale: an interrupted run resumes where it stopped; --since checks recent files only."""

from __future__ import annotations

import datetime as dt

import pytest

from avenue.media import Buckets
from avenue.media.store.originals import store
from avenue.media.upkeep import fsck as fsck_module
from avenue.media.upkeep.fsck import checkpoint, fsck
from tests.helpers import image_bytes


def seed(db, count: int) -> None:
    for n in range(count):
        store(db, Buckets.BUILDER if n % 2 else Buckets.UPLOADS,
              image_bytes("good/tiny_1x1.png") + bytes([n]) * 0,
              filename=f"f{n}.png", owner="o", scope=f"s{n}", kind="builder" if n % 2 else "upload")


class Interrupted(Exception):
    pass


def test_an_interrupted_check_resumes_after_its_last_checkpoint(db, monkeypatch):
    seed(db, 4)  # 4 originals and their variants
    total = fsck(db).files_checked
    monkeypatch.setattr(fsck_module, "BATCH", 5)
    monkeypatch.setattr(fsck_module, "CHECKPOINT_EVERY", 10)

    def stop_after_15(phase, done, _total):
        if done == 15:
            raise Interrupted

    with pytest.raises(Interrupted):
        fsck(db, progress=stop_after_15)  # batches of 5: saved after file 10, stopped after 15
    saved = checkpoint(db)
    assert saved is not None  # position after file 10
    resumed = fsck(db, resume=True)
    assert resumed.ok and resumed.files_checked == total - 10
    assert checkpoint(db) is None  # a finished run clears it
    assert fsck(db, resume=True).files_checked == total  # nothing to resume: everything


def test_since_checks_only_files_uploaded_since_then(db):
    seed(db, 2)
    for bucket in (Buckets.BUILDER, Buckets.UPLOADS):
        old = {"$set": {"uploadDate": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}}
        db[f"{bucket}.files"].update_many({}, old)
    store(db, Buckets.UPLOADS, image_bytes("good/png16.png"), filename="new.png", owner="o", scope="new")
    recent = fsck(db, since=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    assert 0 < recent.files_checked < fsck(db).files_checked


def test_the_cli_takes_since_and_resume(app, runner):
    with app.app_context():
        from avenue.db import get_mongo

        get_mongo().ensure_indexes()
    for args in (["--since", "2025-01-01"], ["--resume"]):
        result = runner.invoke(args=["fsck", *args, "--quiet"])
        assert result.exit_code == 0, result.output
