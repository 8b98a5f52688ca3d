"""gc: each kind of garbage made on purpose, and what must survive it."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest
from bson import Binary, ObjectId

from avenue.clock import now as clock_now
from avenue.media import AppMedia, Buckets, Media
from avenue.presentation.objects import image_ref
from tests.helpers import bucket_snapshot, image_bytes
from tests.support.gridfs_files import CHUNK_SIZE, put_file
from tests.support.records import images
from tests.support.stored import stored

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
    now = clock_now()
    expired = stored(db, Buckets.TEMP, image_bytes("good/png16.png"), filename="old.png",
                     expires_at=now - dt.timedelta(minutes=1))
    live = stored(db, Buckets.TEMP, image_bytes("good/tiny_1x1.png"), filename="new.png",
                  expires_at=now + dt.timedelta(hours=1))
    report = AppMedia.on(db, media_core).maintenance.collect_garbage()
    assert ids_removed(report) == {str(expired["_id"])}
    assert report.removed[0]["kind"] == "expired_temp_image"
    assert db[f"{Buckets.TEMP}.files"].count_documents({"metadata.original_id": expired["_id"]}) == 0
    assert db[f"{Buckets.TEMP}.files"].find_one({"_id": live["_id"]}) is not None
    assert report.bytes_freed == expired["length"] + sum(
        info["length"] for formats in expired["metadata"]["variants"].values() for info in formats.values())


def test_a_temp_image_with_no_expiry_is_removed_after_the_grace_period(db, media_core):
    doc = stored(db, Buckets.TEMP, image_bytes("good/png16.png"), filename="a.png")
    assert AppMedia.on(db, media_core).maintenance.collect_garbage().removed == []
    report = AppMedia.on(db, media_core).maintenance.collect_garbage(now=clock_now() + LATER)
    assert [(e["kind"], e["id"]) for e in report.removed] == [("temp_image_without_expiry", str(doc["_id"]))]


def test_it_removes_product_images_no_product_references_once_past_the_grace_period(db, media_core):
    used = stored(db, Buckets.PRODUCTS, image_bytes("good/png16.png"), filename="used.png", kind="product")
    orphan = stored(db, Buckets.PRODUCTS, image_bytes("good/tiny_1x1.png"), filename="orphan.png",
                    kind="product")
    db.shop_products.insert_one({"sku": "S1", "name": "n", "price": 1, "images": [image_ref(used)]})

    fresh = AppMedia.on(db, media_core).maintenance.collect_garbage()
    assert fresh.removed == [] and fresh.kept_in_grace >= 1  # an upload a product has not claimed yet

    report = AppMedia.on(db, media_core).maintenance.collect_garbage(now=clock_now() + LATER)
    assert [(e["kind"], e["id"]) for e in report.removed] == [
        ("unreferenced_product_image", str(orphan["_id"]))]
    assert db[f"{Buckets.PRODUCTS}.files"].find_one({"_id": orphan["_id"]}) is None
    assert db[f"{Buckets.PRODUCTS}.files"].find_one({"_id": used["_id"]}) is not None


def test_gc_handed_a_media_without_owners_refuses_before_removing_anything(db, media_core):
    """Who refers to an image is the app's Media's to say (issue 63): ``Media()``, no app, cannot
    say it, so gc raises rather than take every product image for unreferenced. (It used to
    ask the owners whichever app the process built last had registered.)"""
    used = stored(db, Buckets.PRODUCTS, image_bytes("good/png16.png"), filename="used.png", kind="product")
    orphan = stored(db, Buckets.PRODUCTS, image_bytes("good/tiny_1x1.png"), filename="orphan.png",
                    kind="product")
    db.shop_products.insert_one({"sku": "S1", "name": "n", "price": 1, "images": [image_ref(used)]})
    before = bucket_snapshot(db)
    with pytest.raises(RuntimeError, match="no owners of referring documents"):
        AppMedia.on(db, Media()).maintenance.collect_garbage(now=clock_now() + LATER)
    assert bucket_snapshot(db) == before
    report = AppMedia.on(db, media_core).maintenance.collect_garbage(now=clock_now() + LATER)
    assert ids_removed(report) == {str(orphan["_id"])}


def test_a_product_image_an_old_url_redirects_to_is_not_garbage(db, media_core):
    doc = stored(db, Buckets.PRODUCTS, image_bytes("good/png16.png"), filename="a.png", kind="product")
    db.legacy_paths.insert_one({"path": "/uploads/products/X/a.png", "bucket": Buckets.PRODUCTS,
                                "file_id": doc["_id"], "sha256": doc["metadata"]["source_sha256"],
                                "imported_at": clock_now()})
    assert AppMedia.on(db, media_core).maintenance.collect_garbage(now=clock_now() + LATER).removed == []


def test_builder_media_and_general_uploads_are_records_not_garbage(db, media_core):
    stored(db, Buckets.BUILDER, image_bytes("good/png16.png"), filename="b.png", kind="builder")
    stored(db, Buckets.UPLOADS, image_bytes("good/png16.png"), filename="u.png", owner="u1",
           scope="u1:private",
           visibility="private")
    before = bucket_snapshot(db)
    later = clock_now() + dt.timedelta(days=365)
    assert AppMedia.on(db, media_core).maintenance.collect_garbage(now=later).removed == []
    assert bucket_snapshot(db) == before


def test_it_removes_variants_whose_original_is_missing(db, media_core):
    stray = put_file(db, Buckets.BUILDER, b"x" * 100, filename="card.webp", metadata={
        "role": "variant", "key": f"{ObjectId()}/card.webp", "original_id": ObjectId(), "variant": "card"})
    # An upload writes its variants before its original.
    assert AppMedia.on(db, media_core).maintenance.collect_garbage().removed == []
    report = AppMedia.on(db, media_core).maintenance.collect_garbage(now=clock_now() + LATER)
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


def raw_image(db, bucket: str, data: bytes, *, filename: str, key: str, **metadata) -> dict:
    """An image stored by hand: its bytes a file under its id, its record in
    ``<bucket>.images`` naming them. Returns the record."""
    image_id = ObjectId()
    doc = put_file(db, bucket, data, filename=filename, file_id=image_id, metadata={
        "role": "variant", "variant": "original", "key": f"{image_id}/original", "original_id": image_id})
    record = {**doc, "metadata": {"role": "original", "key": key, **metadata}}
    images(db, bucket).insert_one(record)
    return record


def test_it_removes_files_whose_chunks_are_incomplete(db, media_core):
    data = os.urandom(CHUNK_SIZE * 2 + 10)
    broken = raw_image(db, Buckets.UPLOADS, data, filename="big.bin", key="k1", visibility="public")
    db[f"{Buckets.UPLOADS}.chunks"].delete_one({"files_id": broken["_id"], "n": 1})
    whole = raw_image(db, Buckets.UPLOADS, data, filename="ok.bin", key="k2")
    stray = put_file(db, Buckets.UPLOADS, data, filename="other.bin", metadata={})  # a file not of an image
    db[f"{Buckets.UPLOADS}.chunks"].delete_one({"files_id": stray["_id"], "n": 0})
    assert AppMedia.on(db, media_core).maintenance.collect_garbage().removed == []
    report = AppMedia.on(db, media_core).maintenance.collect_garbage(now=clock_now() + LATER)
    # An image whose bytes are incomplete goes as an image (its record too); a file as a file.
    assert sorted((e["kind"], e["id"], e["bytes"], e["files"]) for e in report.removed) == sorted([
        ("incomplete_file", str(broken["_id"]), len(data), 1),
        ("incomplete_file", str(stray["_id"]), len(data), 1)])
    assert {e["reason"] for e in report.removed} == {"2 of 3 chunks"}
    assert db[f"{Buckets.UPLOADS}.chunks"].count_documents({"files_id": broken["_id"]}) == 0
    assert images(db, Buckets.UPLOADS).find_one({"_id": broken["_id"]}) is None
    assert db[f"{Buckets.UPLOADS}.files"].find_one({"_id": whole["_id"]}) is not None
    assert images(db, Buckets.UPLOADS).find_one({"_id": whole["_id"]}) is not None


def test_it_removes_images_whose_bytes_file_is_gone(db, media_core):
    data = os.urandom(100)
    lost = raw_image(db, Buckets.BUILDER, data, filename="lost.bin", key="k1")
    db[f"{Buckets.BUILDER}.files"].delete_one({"_id": lost["_id"]})  # its chunks: orphans
    assert AppMedia.on(db, media_core).maintenance.collect_garbage().removed == []
    report = AppMedia.on(db, media_core).maintenance.collect_garbage(now=clock_now() + LATER)
    assert [(e["kind"], e["id"]) for e in report.removed] == [("incomplete_image", str(lost["_id"]))]
    assert images(db, Buckets.BUILDER).count_documents({}) == 0
    assert db[f"{Buckets.BUILDER}.chunks"].count_documents({}) == 0


def test_a_dry_run_removes_nothing_and_reports_what_a_real_run_removes(db, media_core):
    killed_upload(db, Buckets.TEMP, old_id())
    stored(db, Buckets.TEMP, image_bytes("good/png16.png"), filename="old.png",
           expires_at=clock_now() - dt.timedelta(minutes=1))
    stored(db, Buckets.PRODUCTS, image_bytes("good/tiny_1x1.png"), filename="orphan.png", kind="product")
    before = bucket_snapshot(db)
    later = clock_now() + LATER
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
