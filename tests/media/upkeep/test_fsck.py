"""upkeep/fsck.py: a repair racing a delete, and a check resumed from its checkpoint."""

from __future__ import annotations

import pytest

from avenue.media import AppMedia, Buckets
from avenue.media.core import NO_PURGES
from avenue.media.ingest import pipeline
from avenue.media.store import storage
from avenue.media.store.originals import delete_image, store
from avenue.media.upkeep import fsck as fsck_module
from avenue.media.upkeep.fsck import checkpoint, fsck
from tests.helpers import image_bytes
from tests.support.records import images


def test_a_repair_of_an_image_deleted_while_it_renders_leaves_no_variant_behind(db, monkeypatch, media_core):
    doc = store(db, Buckets.BUILDER, image_bytes("good/png16.png"), filename="a.png", kind="builder").doc
    storage.delete_file(db, Buckets.BUILDER, doc["metadata"]["variants"]["card"]["webp"]["id"])
    real = pipeline.render_stored

    def deleted_meanwhile(*args, **kwargs):  # the repair read the image; a delete lands now
        rendered = list(real(*args, **kwargs))
        delete_image(db, Buckets.BUILDER, doc["_id"], purges=NO_PURGES)
        return rendered

    monkeypatch.setattr(pipeline, "render_stored", deleted_meanwhile)
    report = AppMedia.on(db, media_core).maintenance.fsck(repair=True)
    # The variant it rendered was never listed: removed again, not left as an orphan.
    assert report.ok, report.summary()
    assert db[f"{Buckets.BUILDER}.files"].count_documents({}) == 0
    assert db[f"{Buckets.BUILDER}.chunks"].count_documents({}) == 0
    assert images(db, Buckets.BUILDER).count_documents({}) == 0


def seed(db, count: int) -> None:
    for n in range(count):
        store(db, Buckets.BUILDER if n % 2 else Buckets.UPLOADS,
              image_bytes("good/tiny_1x1.png") + bytes([n]) * 0,
              filename=f"f{n}.png", owner="o", scope=f"s{n}", kind="builder" if n % 2 else "upload")


class Interrupted(Exception):
    pass


def test_an_interrupted_check_resumes_after_its_last_checkpoint(db, monkeypatch):
    seed(db, 4)  # 4 images: their records, their bytes and their variants
    total = fsck(db).checked  # files and records: what the progress and the checkpoints count
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
    assert resumed.ok and resumed.checked == total - 10
    assert checkpoint(db) is None  # a finished run clears it
    assert fsck(db, resume=True).checked == total  # nothing to resume: everything


def test_a_check_resumed_in_a_buckets_records_skips_its_files(db, monkeypatch):
    seed(db, 2)
    total = fsck(db)
    monkeypatch.setattr(fsck_module, "BATCH", 1)
    monkeypatch.setattr(fsck_module, "CHECKPOINT_EVERY", 1)
    seen = []

    def stop_in_the_records(phase, done, _total):
        saved = checkpoint(db)
        if saved is not None and saved.get("collection") == "images":
            seen.append(saved)
            raise Interrupted

    with pytest.raises(Interrupted):
        fsck(db, progress=stop_in_the_records)
    bucket = seen[0]["bucket"]  # the first bucket with a record: its files all checked before it
    assert seen[0]["last_id"] == images(db, bucket).find_one()["_id"]
    files = db[f"{bucket}.files"].count_documents({})
    resumed = fsck(db, resume=True)
    # That bucket's files and its one record were checked before it stopped.
    assert resumed.ok and resumed.files_checked == total.files_checked - files
    assert resumed.images_checked == total.images_checked - 1
