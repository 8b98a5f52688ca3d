"""upkeep/gc.py against a store in flight: variants whose render lands around gc, a claim's move,
the files an interrupted replace left."""

from __future__ import annotations

import datetime as dt

import pytest
from bson import ObjectId

from avenue.clock import now
from avenue.media import AppMedia, Buckets, Media
from avenue.media.ingest import pipeline
from avenue.media.store import pending, storage
from avenue.media.store.originals import store, transfer
from avenue.media.upkeep.fsck import check
from tests.helpers import image_bytes, library_upload
from tests.support.records import images, record

LATER = dt.timedelta(hours=2)  # past the default one-hour grace period


def test_a_temp_image_just_claimed_by_a_product_is_not_garbage(db, media_core):
    # transfer keeps the temp image's id and upload date; the product's reference comes next.
    temp = store(db, Buckets.TEMP, image_bytes("good/png16.png"), filename="a.png",
                 extra={"expires_at": storage.now() + dt.timedelta(hours=3)}).doc
    for collection in (db[f"{Buckets.TEMP}.files"], images(db, Buckets.TEMP)):  # its files and its record
        collection.update_many({}, {"$set": {"uploadDate": storage.now() - LATER}})
    temp = record(db, Buckets.TEMP, temp["_id"])
    moved = transfer(db, Buckets.TEMP, Buckets.PRODUCTS, temp, kind="product").doc
    hour_ago = storage.now() - dt.timedelta(hours=1)
    assert moved["uploadDate"].replace(tzinfo=None) < hour_ago.replace(tzinfo=None)
    report = AppMedia.on(db, media_core).maintenance.collect_garbage()
    assert report.removed == [] and report.kept_in_grace == 1


@pytest.fixture
def held(monkeypatch) -> list:
    """The renders of pending variants a store leaves for after its answer, kept here (as a
    request leaves them) and run when the test says: the store writes the image with seven
    variants pending."""
    jobs: list = []
    monkeypatch.setattr(Media, "later", lambda self, job: jobs.append(job) or False)
    return jobs


@pytest.mark.parametrize("lands", ["before gc", "between gc's read and its delete", "while it renders",
                                   "after gc"])
def test_an_expired_temp_image_goes_with_its_variants_wherever_their_render_lands(
        db, runner, held, monkeypatch, lands, media_core):
    doc = store(db, Buckets.TEMP, image_bytes("good/png16.png"), filename="old.png",
                extra={"expires_at": storage.now() - dt.timedelta(minutes=1)}).doc
    assert len(pending.pending_of(doc)) == 7 and len(held) == 1
    real_delete, real_render = storage.delete_file, pipeline.render_stored

    def render_then_delete(*args, **kwargs):  # gc read the image (pending); the render lists now
        while held:
            held.pop()()
        return real_delete(*args, **kwargs)

    def gc_while_rendering(*args, **kwargs):  # the render read the image; gc removes it, then it lists
        rendered = list(real_render(*args, **kwargs))
        AppMedia.on(db, media_core).maintenance.collect_garbage()
        return rendered

    if lands == "before gc":
        held.pop()()
    elif lands == "between gc's read and its delete":
        monkeypatch.setattr(storage, "delete_file", render_then_delete)
    elif lands == "while it renders":
        monkeypatch.setattr(pipeline, "render_stored", gc_while_rendering)
        held.pop()()
    AppMedia.on(db, media_core).maintenance.collect_garbage()
    while held:  # after gc: its render finds no image
        held.pop()()
    monkeypatch.undo()
    assert db[f"{Buckets.TEMP}.files"].count_documents({"$or": [{"_id": doc["_id"]},
                                                                {"metadata.original_id": doc["_id"]}]}) == 0
    checked = runner.invoke(args=["fsck"])
    assert checked.exit_code == 0, checked.output  # was 7 orphan_variant between gc's read and delete


def test_gc_collects_the_files_an_interrupted_replace_left_and_keeps_the_listed_ones(client, db, editor,
        media_core):
    """A worker killed after writing a replace's new files (before the switch) leaves files that
    point at an existing original that does not list them: gc removes them once past its grace
    period, and never a file the original lists."""
    media = library_upload(client, editor)
    image_id = ObjectId(media["id"])
    from avenue.media.ingest.variants import Rendition
    from avenue.media.store import originals, storage

    stray = Rendition("thumb", "webp", image_bytes("good/tiny_1x1.png"), 1, 1)
    new, _ = originals.variant_file(image_id, stray, version="deadbeef")
    storage.write_files(db, Buckets.BUILDER, [new])
    fresh = AppMedia.on(db, media_core).maintenance.collect_garbage()
    assert fresh.removed == [] and db[f"{Buckets.BUILDER}.files"].find_one({"_id": new.file_id}) is not None
    later = AppMedia.on(db, media_core).maintenance.collect_garbage(now=now() + dt.timedelta(hours=2))
    assert [(r["kind"], r["id"]) for r in later.removed] == [("orphan_variant", str(new.file_id))]
    # Its 8 variants and the file holding its bytes, all listed.
    assert db[f"{Buckets.BUILDER}.files"].count_documents({"metadata.original_id": image_id}) == 8 + 1
    assert client.get(media["variants"]["thumb"]).status_code == 200
    assert check(db).findings == []
