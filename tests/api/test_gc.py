"""gc: each kind of garbage made on purpose, and what must survive it."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest
from bson import Binary, ObjectId

from avenue.media import AppMedia, Buckets, Media
from avenue.media.ingest import pipeline
from avenue.media.store import pending, storage
from avenue.media.store.originals import store, transfer
from avenue.presentation.objects import image_ref
from tests.helpers import bucket_snapshot, image_bytes

LATER = dt.timedelta(hours=2)  # past the default one-hour grace period


def old_id(age: dt.timedelta = dt.timedelta(days=1)) -> ObjectId:
    """A unique ObjectId generated ``age`` ago (as a killed upload's file id would be)."""
    seconds = int((dt.datetime.now(dt.UTC) - age).timestamp())
    return ObjectId(seconds.to_bytes(4, "big") + os.urandom(8))


def killed_upload(db, bucket: str, file_id: ObjectId, chunks: int = 2) -> int:
    """Chunks written by an upload killed before its files document (see EMBEDDED_DB.md item 4)."""
    data = [os.urandom(1000) for _ in range(chunks)]
    db[f"{bucket}.chunks"].insert_many([{"files_id": file_id, "n": n, "data": Binary(piece)}
                                        for n, piece in enumerate(data)])
    return sum(len(piece) for piece in data)


def ids_removed(report) -> set[str]:
    return {entry["id"] for entry in report.removed}


def test_it_removes_expired_temp_images_with_their_variants_and_keeps_live_ones(db, media_core):
    now = storage.now()
    expired = store(db, Buckets.TEMP, image_bytes("good/png16.png"), filename="old.png",
                    extra={"expires_at": now - dt.timedelta(minutes=1)}).doc
    live = store(db, Buckets.TEMP, image_bytes("good/tiny_1x1.png"), filename="new.png",
                 extra={"expires_at": now + dt.timedelta(hours=1)}).doc
    report = AppMedia.on(db, media_core).maintenance.collect_garbage()
    assert ids_removed(report) == {str(expired["_id"])}
    assert report.removed[0]["kind"] == "expired_temp_image"
    assert db[f"{Buckets.TEMP}.files"].count_documents({"metadata.original_id": expired["_id"]}) == 0
    assert db[f"{Buckets.TEMP}.files"].find_one({"_id": live["_id"]}) is not None
    assert report.bytes_freed == expired["length"] + sum(
        info["length"] for formats in expired["metadata"]["variants"].values() for info in formats.values())


def test_a_temp_image_with_no_expiry_is_removed_after_the_grace_period(db, media_core):
    doc = store(db, Buckets.TEMP, image_bytes("good/png16.png"), filename="a.png").doc
    assert AppMedia.on(db, media_core).maintenance.collect_garbage().removed == []
    report = AppMedia.on(db, media_core).maintenance.collect_garbage(now=storage.now() + LATER)
    assert [(e["kind"], e["id"]) for e in report.removed] == [("temp_image_without_expiry", str(doc["_id"]))]


def test_it_removes_product_images_no_product_references_once_past_the_grace_period(db, media_core):
    used = store(db, Buckets.PRODUCTS, image_bytes("good/png16.png"), filename="used.png", kind="product").doc
    orphan = store(db, Buckets.PRODUCTS, image_bytes("good/tiny_1x1.png"), filename="orphan.png",
                   kind="product").doc
    db.shop_products.insert_one({"sku": "S1", "name": "n", "price": 1, "images": [image_ref(used)]})

    fresh = AppMedia.on(db, media_core).maintenance.collect_garbage()
    assert fresh.removed == [] and fresh.kept_in_grace >= 1  # an upload a product has not claimed yet

    report = AppMedia.on(db, media_core).maintenance.collect_garbage(now=storage.now() + LATER)
    assert [(e["kind"], e["id"]) for e in report.removed] == [
        ("unreferenced_product_image", str(orphan["_id"]))]
    assert db[f"{Buckets.PRODUCTS}.files"].find_one({"_id": orphan["_id"]}) is None
    assert db[f"{Buckets.PRODUCTS}.files"].find_one({"_id": used["_id"]}) is not None


def test_gc_handed_a_media_without_owners_refuses_before_removing_anything(db, media_core):
    """Who refers to an image is the app's Media's to say (issue 63): ``Media()``, no app, cannot
    say it, so gc raises rather than take every product image for unreferenced. (It used to
    ask the owners whichever app the process built last had registered.)"""
    used = store(db, Buckets.PRODUCTS, image_bytes("good/png16.png"), filename="used.png", kind="product").doc
    orphan = store(db, Buckets.PRODUCTS, image_bytes("good/tiny_1x1.png"), filename="orphan.png",
                   kind="product").doc
    db.shop_products.insert_one({"sku": "S1", "name": "n", "price": 1, "images": [image_ref(used)]})
    before = bucket_snapshot(db)
    with pytest.raises(RuntimeError, match="no owners of referring documents"):
        AppMedia.on(db, Media()).maintenance.collect_garbage(now=storage.now() + LATER)
    assert bucket_snapshot(db) == before
    report = AppMedia.on(db, media_core).maintenance.collect_garbage(now=storage.now() + LATER)
    assert ids_removed(report) == {str(orphan["_id"])}


def test_a_product_image_an_old_url_redirects_to_is_not_garbage(db, media_core):
    doc = store(db, Buckets.PRODUCTS, image_bytes("good/png16.png"), filename="a.png", kind="product").doc
    db.legacy_paths.insert_one({"path": "/uploads/products/X/a.png", "bucket": Buckets.PRODUCTS,
                                "file_id": doc["_id"], "sha256": doc["metadata"]["source_sha256"],
                                "imported_at": storage.now()})
    assert AppMedia.on(db, media_core).maintenance.collect_garbage(now=storage.now() + LATER).removed == []


def test_a_temp_image_just_claimed_by_a_product_is_not_garbage(db, media_core):
    # transfer keeps the temp image's id and upload date; the product's reference comes next.
    temp = store(db, Buckets.TEMP, image_bytes("good/png16.png"), filename="a.png",
                 extra={"expires_at": storage.now() + dt.timedelta(hours=3)}).doc
    db[f"{Buckets.TEMP}.files"].update_many({}, {"$set": {"uploadDate": storage.now() - LATER}})
    temp = db[f"{Buckets.TEMP}.files"].find_one({"_id": temp["_id"]})
    moved = transfer(db, Buckets.TEMP, Buckets.PRODUCTS, temp, kind="product").doc
    hour_ago = storage.now() - dt.timedelta(hours=1)
    assert moved["uploadDate"].replace(tzinfo=None) < hour_ago.replace(tzinfo=None)
    report = AppMedia.on(db, media_core).maintenance.collect_garbage()
    assert report.removed == [] and report.kept_in_grace == 1


def test_builder_media_and_general_uploads_are_records_not_garbage(db, media_core):
    store(db, Buckets.BUILDER, image_bytes("good/png16.png"), filename="b.png", kind="builder")
    store(db, Buckets.UPLOADS, image_bytes("good/png16.png"), filename="u.png", owner="u1",
          scope="u1:private",
          visibility="private")
    before = bucket_snapshot(db)
    later = storage.now() + dt.timedelta(days=365)
    assert AppMedia.on(db, media_core).maintenance.collect_garbage(now=later).removed == []
    assert bucket_snapshot(db) == before


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


def test_it_removes_variants_whose_original_is_missing(db, media_core):
    stray = storage.write_file(db, Buckets.BUILDER, b"x" * 100, filename="card.webp", metadata={
        "role": "variant", "key": f"{ObjectId()}/card.webp", "original_id": ObjectId(), "variant": "card"})
    # An upload writes its variants before its original.
    assert AppMedia.on(db, media_core).maintenance.collect_garbage().removed == []
    report = AppMedia.on(db, media_core).maintenance.collect_garbage(now=storage.now() + LATER)
    assert [(e["kind"], e["id"], e["bytes"]) for e in report.removed] == [
        ("orphan_variant", str(stray["_id"]), 100)]
    assert db[f"{Buckets.BUILDER}.chunks"].count_documents({"files_id": stray["_id"]}) == 0


def test_it_removes_chunks_left_by_an_interrupted_upload_but_not_one_in_flight(db, media_core):
    killed = old_id()
    freed = killed_upload(db, Buckets.PRODUCTS, killed, chunks=3)
    in_flight = ObjectId()
    killed_upload(db, Buckets.PRODUCTS, in_flight)
    report = AppMedia.on(db, media_core).maintenance.collect_garbage()
    assert [(e["kind"], e["id"], e["bytes"], e["chunks"]) for e in report.removed] == [
        ("orphan_chunks", str(killed), freed, 3)]
    assert db[f"{Buckets.PRODUCTS}.chunks"].count_documents({"files_id": killed}) == 0
    assert db[f"{Buckets.PRODUCTS}.chunks"].count_documents({"files_id": in_flight}) == 2


def test_it_removes_files_whose_chunks_are_incomplete(db, media_core):
    data = os.urandom(storage.CHUNK_SIZE * 2 + 10)
    broken = storage.write_file(db, Buckets.UPLOADS, data, filename="big.bin",
                                metadata={"role": "original", "key": "k1", "visibility": "public"})
    db[f"{Buckets.UPLOADS}.chunks"].delete_one({"files_id": broken["_id"], "n": 1})
    whole = storage.write_file(db, Buckets.UPLOADS, data, filename="ok.bin",
                               metadata={"role": "original", "key": "k2"})
    assert AppMedia.on(db, media_core).maintenance.collect_garbage().removed == []
    report = AppMedia.on(db, media_core).maintenance.collect_garbage(now=storage.now() + LATER)
    assert [(e["kind"], e["id"], e["bytes"]) for e in report.removed] == [
        ("incomplete_file", str(broken["_id"]), len(data))]
    assert report.removed[0]["reason"] == "2 of 3 chunks"
    assert db[f"{Buckets.UPLOADS}.chunks"].count_documents({"files_id": broken["_id"]}) == 0
    assert db[f"{Buckets.UPLOADS}.files"].find_one({"_id": whole["_id"]}) is not None


def test_a_dry_run_removes_nothing_and_reports_what_a_real_run_removes(db, media_core):
    killed_upload(db, Buckets.TEMP, old_id())
    store(db, Buckets.TEMP, image_bytes("good/png16.png"), filename="old.png",
          extra={"expires_at": storage.now() - dt.timedelta(minutes=1)})
    store(db, Buckets.PRODUCTS, image_bytes("good/tiny_1x1.png"), filename="orphan.png", kind="product")
    before = bucket_snapshot(db)
    later = storage.now() + LATER
    dry = AppMedia.on(db, media_core).maintenance.collect_garbage(dry_run=True, now=later)
    assert bucket_snapshot(db) == before
    real = AppMedia.on(db, media_core).maintenance.collect_garbage(now=later)
    assert dry.summary()["removed"] == real.summary()["removed"]
    assert dry.bytes_freed == real.bytes_freed > 0
    assert AppMedia.on(db, media_core).maintenance.collect_garbage(now=later).removed == []


def test_the_command_prints_what_it_removed_and_the_bytes_freed(db, runner):
    killed = old_id()
    freed = killed_upload(db, Buckets.BUILDER, killed)
    result = runner.invoke(args=["gc"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"removed orphan_chunks {Buckets.BUILDER} {killed} ({freed} bytes)")
    assert lines[-1].startswith(f"gc: removed 1 items (1 orphan chunks), {freed} bytes freed")
    assert result.stderr.splitlines() == ["Collecting garbage", "Refreshing status reports"]
    audited = db.audit_logs.find_one({"action": "garbage_collected"})  # by the command, not the job
    assert audited["actor"] == {"via": "cli"} and audited["target"] == {"items": 1, "bytes_freed": freed}


def test_the_command_audits_nothing_when_it_removed_nothing_or_only_looked(db, runner):
    killed_upload(db, Buckets.BUILDER, old_id())
    assert runner.invoke(args=["gc", "--dry-run"]).exit_code == 0
    assert runner.invoke(args=["gc"]).exit_code == 0
    assert runner.invoke(args=["gc"]).exit_code == 0  # nothing left to collect
    assert db.audit_logs.count_documents({"action": "garbage_collected"}) == 1


def test_the_command_answers_json_and_honours_dry_run_and_grace(db, runner):
    killed_upload(db, Buckets.BUILDER, old_id(dt.timedelta(minutes=10)))
    kept = json.loads(runner.invoke(args=["gc", "--json"]).stdout)
    assert kept["removed_items"] == 0 and kept["kept_in_grace"] == 1
    dry = json.loads(runner.invoke(args=["gc", "--json", "--dry-run", "--grace-seconds", "60"]).stdout)
    assert dry["dry_run"] and dry["counts"] == {"orphan_chunks": 1}
    assert db[f"{Buckets.BUILDER}.chunks"].count_documents({}) == 2
    quiet = runner.invoke(args=["gc", "--quiet", "--grace-seconds", "60"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert quiet.stdout.startswith("gc: removed 1 items")
    assert db[f"{Buckets.BUILDER}.chunks"].count_documents({}) == 0
