"""import-legacy on the old app's uploads folder and documents (the test files' legacy_uploads/)."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from bson import ObjectId

from avenue.media import AppMedia, Buckets
from avenue.presentation.objects import image_ref
from tests.helpers import FIXTURES, image_bytes
from tests.support import records
from tests.support.legacy import LEGACY_UPLOADS, load_legacy_db, run, uninterrupted_import
from tests.support.stored import stored

# Where each top folder of the old uploads goes (anything else: the general uploads).
FOLDER_BUCKETS = {"products": Buckets.PRODUCTS, "website_builder": Buckets.BUILDER}

DISK_IMAGES = sorted(p for p in LEGACY_UPLOADS.rglob("*") if p.is_file() and p.suffix != ".txt")


@pytest.fixture
def legacy_db(db):
    load_legacy_db(db)
    return db


@pytest.fixture(scope="module")
def imported():
    """One uninterrupted ``import-legacy --json`` of the whole legacy folder (tests/support/
    legacy.py): the tests that read a finished import, run it again or compare against one
    share it; none changes it (a second run changes nothing, which its test checks)."""
    with uninterrupted_import() as done:
        yield done


def audited(db) -> list[dict]:
    """What the import-legacy runs wrote to the audit log (the command writes it, not the job)."""
    return [entry["target"] for entry in db.audit_logs.find({"action": "legacy_imported"})]


def snapshot(db) -> dict:
    """Every document of every collection: what "changes nothing" compares."""
    return {name: sorted(db[name].find(), key=lambda doc: str(doc["_id"]))
            for name in sorted(db.list_collection_names())}


def test_it_moves_every_legacy_image_into_gridfs_and_rewrites_every_reference(imported):
    _, db, result, report = imported

    # A reference to a file missing on disk remains: done, but exit 2 says "look at this".
    assert result.exit_code == 2, result.output
    counts = report["counts"]
    assert counts["files"] == 19
    assert counts["imported"] == 17 and counts["duplicates"] == 1
    assert counts["skipped_non_images"] == 1 and counts["invalid"] == 0
    assert counts["rewritten_documents"] == 7 and counts["rewritten_references"] == 14
    assert [e["path"] for e in report["skipped_non_images"]] == ["/uploads/general/notes.txt"]
    assert report["missing_references"] == [{
        "collection": "shop_products", "sku": "AV-1002",
        "path": "/uploads/products/AV-1002/missing-on-disk.jpg", "reason": "missing_on_disk"}]
    assert report["external_references"] == [{
        "collection": "shop_products", "sku": "AV-3000", "url": "https://images.example.com/ext/AV-3000.jpg"}]

    # Every image on disk is in GridFS, in its bucket; the byte-identical duplicate once.
    originals = {Buckets.PRODUCTS: 12, Buckets.BUILDER: 2, Buckets.UPLOADS: 3}
    for bucket, count in originals.items():
        assert records.images(db, bucket).count_documents(records.IMAGE) == count
    for file in DISK_IMAGES:
        path = "/uploads/" + file.relative_to(LEGACY_UPLOADS).as_posix()
        record = db.legacy_paths.find_one({"path": path})
        stored = records.record(db, record["bucket"], record["file_id"])
        assert stored["metadata"]["source_sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
        assert record["sha256"] == stored["metadata"]["source_sha256"]
        assert record["bucket"] == FOLDER_BUCKETS.get(path.split("/")[2], Buckets.UPLOADS)
    first = db.legacy_paths.find_one({"path": "/uploads/general/ffee7fbde40e6918.png"})
    duplicate = db.legacy_paths.find_one({"path": "/uploads/general/dup-of-first.png"})
    assert first["file_id"] == duplicate["file_id"]
    assert db.legacy_paths.find_one({"path": "/uploads/general/notes.txt"}) is None

    # Product references are image references now, in their old order; the rest untouched.
    for product in db.shop_products.find({"sku": {"$in": ["AV-1001", "AV-1003", "AV-1004", "AV-1005"]}}):
        assert product["images"] and all(isinstance(ref, dict) for ref in product["images"])
    av1002 = db.shop_products.find_one({"sku": "AV-1002"})
    old = json.loads((FIXTURES / "legacy_db.json").read_text())["shop_products"][1]["images"]
    for ref, path in zip(av1002["images"][:3], old[:3], strict=True):
        record = db.legacy_paths.find_one({"path": path})
        assert ref == image_ref(records.record(db, Buckets.PRODUCTS, record["file_id"]))
    assert av1002["images"][3] == "/uploads/products/AV-1002/missing-on-disk.jpg"
    assert db.shop_products.find_one({"sku": "AV-3000"})["images"] == ["https://images.example.com/ext/AV-3000.jpg"]
    untouched = db.shop_products.find_one({"sku": "AV-2000"})
    assert untouched["images"] == [] and "updated_at" not in untouched

    # Page blocks name builder media by id, and media_ids lists them.
    home = db.page_content.find_one({"slug": "home"})
    hero = db.legacy_paths.find_one({"path": "/uploads/website_builder/hero-banner.png"})["file_id"]
    logo = db.legacy_paths.find_one({"path": "/uploads/website_builder/logo.webp"})["file_id"]
    assert home["blocks"] == [
        {"type": "hero", "media_id": str(hero), "title": "Avenue"},
        {"type": "image", "media_id": str(logo)},
        {"type": "text", "html": "<p>Bienvenidos</p>"},
    ]
    assert home["media_ids"] == [hero, logo]
    assert records.record(db, Buckets.BUILDER, hero)["metadata"]["kind"] == "builder"

    # The source folder is only read.
    assert sorted(p for p in LEGACY_UPLOADS.rglob("*") if p.is_file())[0].exists()


def test_a_second_run_imports_nothing_and_changes_nothing(imported):
    app, db, _, _ = imported
    before = snapshot(db)
    result, report = run(app.test_cli_runner(), str(LEGACY_UPLOADS), "--json")
    assert snapshot(db) == before
    counts = report["counts"]
    assert counts["imported"] == 0 and counts["duplicates"] == 0 and counts["already_imported"] == 18
    assert counts["rewritten_documents"] == 0
    # What still needs a look is still reported.
    assert counts["missing_references"] == 1 and counts["skipped_non_images"] == 1
    assert result.exit_code == 2


def test_a_dry_run_writes_nothing_and_reports_what_a_real_run_does(legacy_db, runner, imported):
    before = snapshot(legacy_db)
    dry, planned = run(runner, str(LEGACY_UPLOADS), "--dry-run", "--json")
    assert snapshot(legacy_db) == before
    _, _, real, done = imported  # the real run, on the same documents and folder
    assert dry.exit_code == real.exit_code == 2
    assert planned["dry_run"] is True and done["dry_run"] is False
    assert planned["counts"] == done["counts"]
    for listing in ("skipped_non_images", "invalid", "missing_references", "external_references",
                    "rewritten"):
        assert planned[listing] == done[listing]
    actions = [(f["path"], f["action"]) for f in done["files"]]
    assert [(f["path"], f["action"]) for f in planned["files"]] == actions


def test_a_dry_run_prints_each_action_it_would_take(legacy_db, runner):
    result = runner.invoke(args=["import-legacy", str(LEGACY_UPLOADS / "general"), "--dry-run"])
    lines = result.stdout.splitlines()
    # Old paths are relative to the folder given; its byte-identical twin is stored once.
    assert "would import /uploads/68bedb0a7acead34.png -> uploads" in lines
    assert "would reuse the identical stored file for /uploads/ffee7fbde40e6918.png -> uploads" in lines
    assert any(line.startswith("would skip /uploads/notes.txt") for line in lines)
    assert lines[-1].startswith("import-legacy: 5 files: would import 3, 1 duplicates")
    assert audited(legacy_db) == []  # a dry run changes nothing, and audits nothing


def test_the_command_audits_a_run_that_changed_the_store_and_not_one_that_did_not(legacy_db, runner):
    folder = str(LEGACY_UPLOADS / "general")
    assert run(runner, folder, "--quiet")[0].exit_code == 2  # notes.txt is skipped: a look is needed
    assert run(runner, folder, "--quiet")[0].exit_code == 2  # the same, all else already imported
    [entry] = audited(legacy_db)
    assert entry["source"] == folder and entry["imported"] == 3


def test_invalid_images_are_skipped_and_listed_and_their_references_left_alone(db, runner, tmp_path):
    (tmp_path / "products" / "AV-9").mkdir(parents=True)
    (tmp_path / "products" / "AV-9" / "broken.jpg").write_bytes(image_bytes("bad/truncated.jpg"))
    (tmp_path / "products" / "AV-9" / "ok.jpg").write_bytes(image_bytes("good/grayscale.jpg"))
    db.shop_products.insert_one({"sku": "AV-9", "name": "n", "price": 1, "images": [
        "/uploads/products/AV-9/broken.jpg", "/uploads/products/AV-9/ok.jpg"]})
    result, report = run(runner, str(tmp_path), "--json")
    assert result.exit_code == 2
    assert [(e["path"], e["code"]) for e in report["invalid"]] == [
        ("/uploads/products/AV-9/broken.jpg", "corrupt_image")]
    assert report["skipped_references"] == [{
        "collection": "shop_products", "sku": "AV-9", "path": "/uploads/products/AV-9/broken.jpg",
        "reason": "invalid"}]
    images = db.shop_products.find_one({"sku": "AV-9"})["images"]
    assert images[0] == "/uploads/products/AV-9/broken.jpg" and isinstance(images[1], dict)
    assert records.images(db, Buckets.PRODUCTS).count_documents(records.IMAGE) == 1


def test_a_clean_import_exits_0_and_quiet_prints_only_the_summary(db, runner, tmp_path):
    (tmp_path / "general").mkdir()
    shutil.copy(FIXTURES / "images/good/tiny_1x1.png", tmp_path / "general/dot.png")
    (tmp_path / "general" / "readme.txt").write_text("not an image")
    result = runner.invoke(args=["import-legacy", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [result.stdout.strip()]
    assert result.stdout.startswith("import-legacy: 2 files: imported 1")
    assert result.stderr == ""


def test_progress_without_a_terminal_prints_one_line_per_phase(db, runner, tmp_path):
    (tmp_path / "general").mkdir()
    for name in ("tiny_1x1.png", "png16.png"):
        shutil.copy(FIXTURES / "images/good" / name, tmp_path / "general" / name)
    result = runner.invoke(args=["import-legacy", str(tmp_path)])
    assert result.exit_code == 0
    assert result.stderr.splitlines() == ["Importing files", "Refreshing status reports"]


def test_it_refuses_a_folder_that_does_not_exist(db, runner, tmp_path):
    result = runner.invoke(args=["import-legacy", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "is not a folder" in result.stderr


def test_a_page_image_from_another_folder_is_copied_into_builder_media(db, tmp_path, media_core):
    (tmp_path / "general").mkdir()
    shutil.copy(FIXTURES / "images/good/png16.png", tmp_path / "general/banner.png")
    db.page_content.insert_one({"slug": "p", "title": "P", "published": True,
                                "blocks": [{"type": "image", "image": "/uploads/general/banner.png"}]})
    report = AppMedia.on(db, media_core).maintenance.import_legacy(tmp_path)
    page = db.page_content.find_one({"slug": "p"})
    media = records.images(db, Buckets.BUILDER).find_one({"_id": ObjectId(page["blocks"][0]["media_id"])})
    assert media["metadata"]["role"] == "original" and media["metadata"]["kind"] == "builder"
    assert page["media_ids"] == [media["_id"]]
    assert report.counts["copied_between_buckets"] == 1
    # The old path itself still redirects to the general upload it was imported as.
    assert db.legacy_paths.find_one({"path": "/uploads/general/banner.png"})["bucket"] == Buckets.UPLOADS


def test_two_old_paths_of_the_same_bytes_in_one_product_become_one_image(db, tmp_path, media_core):
    (tmp_path / "products" / "AV-7").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        shutil.copy(FIXTURES / "images/good/png16.png", tmp_path / "products/AV-7" / name)
    db.shop_products.insert_one({"sku": "AV-7", "name": "n", "price": 1,
                                 "images": ["/uploads/products/AV-7/a.png", "/uploads/products/AV-7/b.png"]})
    AppMedia.on(db, media_core).maintenance.import_legacy(tmp_path)
    images = db.shop_products.find_one({"sku": "AV-7"})["images"]
    assert len(images) == 1 and isinstance(images[0], dict)


def test_a_product_mixing_new_images_and_old_paths_keeps_both_in_order(db, tmp_path, media_core):
    (tmp_path / "products" / "AV-8").mkdir(parents=True)
    shutil.copy(FIXTURES / "images/good/png16.png", tmp_path / "products/AV-8/old.png")
    new = stored(db, Buckets.PRODUCTS, image_bytes("good/tiny_1x1.png"), filename="new.png",
                 kind="product")
    db.shop_products.insert_one({"sku": "AV-8", "name": "n", "price": 1,
                                 "images": [image_ref(new), "/uploads/products/AV-8/old.png"]})
    report = AppMedia.on(db, media_core).maintenance.import_legacy(tmp_path)
    assert report.counts["rewritten_references"] == 1
    images = db.shop_products.find_one({"sku": "AV-8"})["images"]
    old = db.legacy_paths.find_one({"path": "/uploads/products/AV-8/old.png"})["file_id"]
    assert [ref["id"] for ref in images] == [new["_id"], old]


def test_the_folder_defaults_to_the_configured_legacy_uploads_dir(app_factory, db, tmp_path):
    (tmp_path / "general").mkdir()
    shutil.copy(FIXTURES / "images/good/tiny_1x1.png", tmp_path / "general/dot.png")
    configured = app_factory(AVENUE_LEGACY_UPLOADS_DIR=str(tmp_path))
    with configured.app_context():
        result = configured.test_cli_runner().invoke(args=["import-legacy", "--quiet"])
    assert result.exit_code == 0, result.output
    assert db.legacy_paths.find_one({"path": "/uploads/general/dot.png"}) is not None
