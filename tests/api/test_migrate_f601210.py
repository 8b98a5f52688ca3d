"""``migrate-media`` on a store REALLY written by commit f601210's code (issue 75), not made by
hand as tests/media/upkeep/test_migrate.py's is.

tests/fixtures/stores/f601210.jsonl.gz is every collection of a database that f601210's app
wrote through its HTTP API (tests/support/old_store/make_f601210.py says how it was made and
run): products with photos, library media, general uploads, images replaced in place (once,
twice), edited, edits undone, a focal point changed, a version restored, images deleted to the
trash (one with an earlier version kept there), renditions on request. Its manifest gives every
image's kind, the SHA-256 of what its main URL served, and every version the versions API
listed with the SHA-256 of what the image served while it was current (f601210 itself restored
each to those bytes when the dump was made).

Loaded into the test's database, the app refuses it; once migrated by the command: every image
serves the same bytes, every version restores to its bytes, every files document is a whole
GridFS file that stock ``GridFSBucket`` reads, fsck is clean, nothing is lost, and a second run
changes nothing.
"""

from __future__ import annotations

import gzip
import json
from hashlib import sha256
from pathlib import Path
from typing import Any

import gridfs
import pytest
from bson import ObjectId, json_util

from avenue.media import AppMedia, Buckets
from avenue.media.maintenance import Figures
from tests.support.gridfs_read import current_bytes, stock_gridfs
from tests.support.gridfs_spec import buckets, invalid_files
from tests.support.records import images

STORES = Path(__file__).resolve().parents[1] / "fixtures" / "stores"
DUMP = STORES / "f601210.jsonl.gz"
MANIFEST: dict[str, Any] = json.loads((STORES / "f601210.manifest.json").read_text())
STORED = (*Buckets.BY_ALIAS.values(), Figures.TRASH)
BUCKET = {"builder": Buckets.BUILDER, "uploads": Buckets.UPLOADS, "products": Buckets.PRODUCTS}
LIVE = [image for image in MANIFEST["images"] if not image.get("trashed")]
TRASHED = [image for image in MANIFEST["images"] if image.get("trashed")]
LAYOUT = "media_layout"  # the layout marker's collection (avenue/media/store/layout.py)


def load(db, path: Path) -> list[str]:
    """Every document of the dump at ``path`` into ``db`` (one there with the same ``_id``,
    a counter the first start wrote, replaced); the collections' names."""
    by_collection: dict[str, list[dict[str, Any]]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            entry = json_util.loads(line, json_options=json_util.CANONICAL_JSON_OPTIONS)
            by_collection.setdefault(entry["collection"], []).append(entry["doc"])
    for name, docs in by_collection.items():
        db[name].delete_many({"_id": {"$in": [doc["_id"] for doc in docs]}})
        db[name].insert_many(docs)
    return sorted(by_collection)


def snapshot(db) -> dict[str, list[Any]]:
    """Every document of every collection but those of the runs themselves (the audit log,
    the ops runs' records), in a comparable order."""
    return {name: sorted(db[name].find(), key=lambda doc: str(doc["_id"]))
            for name in sorted(db.list_collection_names()) if name not in ("audit_logs", "ops_runs")}


@pytest.fixture
def old_store(db, admin) -> dict[str, Any]:
    """The test's database holding f601210's store (the layout marker the first start wrote
    taken away, as a store f601210 wrote has none); the admin's headers made before."""
    load(db, DUMP)
    db[LAYOUT].delete_many({})
    return admin


def base(image: dict[str, Any]) -> str:
    """The image's API path in the API of its kind."""
    if image["kind"] == "products":
        return f"/api/shop/products/{image['sku']}/images/{image['id']}"
    return {"builder": "/api/builder/media", "uploads": "/api/uploads"}[image["kind"]] + f"/{image['id']}"


def media_object(client, headers, image: dict[str, Any]) -> dict[str, Any]:
    """The image's API object as today's app answers it."""
    if image["kind"] == "products":
        answer = client.get(f"/api/shop/products/{image['sku']}", headers=headers)
        assert answer.status_code == 200, answer.get_json()
        return next(found for found in answer.get_json()["images"] if found["id"] == image["id"])
    answer = client.get(base(image), headers=headers)
    assert answer.status_code == 200, (image, answer.get_json())
    found: dict[str, Any] = answer.get_json()
    return found


def served(client, headers, image: dict[str, Any]) -> str:
    """The SHA-256 of what the image's main URL (``url`` of its API object) serves."""
    answer = client.get(media_object(client, headers, image)["url"], headers=headers)
    assert answer.status_code == 200, (image["id"], answer.status_code)
    return sha256(answer.data).hexdigest()


def migrated(app_factory) -> str:
    result = app_factory().test_cli_runner().invoke(args=["migrate-media"])
    assert result.exit_code == 0, result.output
    return str(result.output)


@pytest.mark.damages_files  # not migrated: its chunkless heads are what the others convert
def test_the_store_is_one_f601210_wrote_with_every_kind_of_image(db, old_store):
    assert MANIFEST["commit"].startswith("f601210")
    hows = {how for image in MANIFEST["images"] for how in image["how"]}
    assert {"upload", "replace", "edits", "edits_undone", "focal_point", "restore", "crop", "name"} <= hows
    assert {image["kind"] for image in LIVE} == set(BUCKET) and TRASHED
    assert max(len(image["versions"]) for image in LIVE) >= 3
    heads = {bucket: db[f"{bucket}.files"].count_documents({"metadata.role": "original"})
             for bucket in STORED}
    assert heads == {bucket: MANIFEST["buckets"][bucket]["heads"] for bucket in STORED}
    assert db[f"{Buckets.BUILDER}.files"].count_documents({"metadata.content.id": {"$exists": True}})
    assert db[f"{Figures.TRASH}.files"].count_documents({"metadata.content.id": {"$exists": True}})
    renditions = MANIFEST["buckets"]["media_renditions"]["files"]
    assert renditions and db["media_renditions.files"].count_documents({}) == renditions
    assert invalid_files(db)  # the chunkless heads: not whole GridFS files


def test_refused_before_then_migrated_every_image_serves_the_same_bytes_and_nothing_is_lost(
        app_factory, db, old_store):
    answer = app_factory().test_client().get("/api/builder/media", headers=old_store)
    assert answer.status_code == 503 and answer.get_json()["error"]["code"] == "store_not_migrated"
    output = migrated(app_factory)
    heads = sum(MANIFEST["buckets"][bucket]["heads"] for bucket in STORED)
    assert f"migrated {heads} image records to layout 2" in output
    app = app_factory()
    client = app.test_client()
    for image in LIVE:  # every image serves what it served, and stock GridFS reads it by the rule
        assert served(client, old_store, image) == image["sha256"], image
        found = current_bytes(db, BUCKET[image["kind"]], ObjectId(image["id"]))
        assert sha256(found).hexdigest() == image["sha256"], image
    # The URLs f601210 gave (each image's and its variants', the renditions on request asked
    # for): the same bytes.
    urls = {url: digest for image in LIVE for url, digest in image["urls"].items()}
    assert len(urls) > len(LIVE) and MANIFEST["renditions"]
    for url, digest in {**urls, **MANIFEST["renditions"]}.items():
        answer = client.get(url)
        assert answer.status_code == 200 and sha256(answer.data).hexdigest() == digest, url
    # Nothing lost: every record in its bucket's .images, the trash's items still listed.
    for image in LIVE:
        assert images(db, BUCKET[image["kind"]]).count_documents({"_id": ObjectId(image["id"])}) == 1, image
    assert sum(images(db, bucket).count_documents({}) for bucket in STORED) == heads
    listed = client.get("/api/trash", headers=old_store, query_string={"limit": 100})
    assert listed.status_code == 200, listed.get_json()
    assert sorted((item["id"], item["from"]) for item in listed.get_json()["items"]) == \
        sorted((item["id"], item["from"]) for item in MANIFEST["trash"])
    for image in TRASHED:
        assert image["id"] in {item["id"] for item in listed.get_json()["items"]}
    # Every files document a whole GridFS file, read in full by stock GridFS; fsck clean.
    assert invalid_files(db) == []
    for bucket in buckets(db):
        with stock_gridfs(db):
            grid = gridfs.GridFSBucket(db, bucket_name=bucket)
            for doc in db[f"{bucket}.files"].find():
                data = grid.open_download_stream(doc["_id"]).read()
                assert len(data) == doc["length"], (bucket, doc["_id"])
                digest = (doc.get("metadata") or {}).get("sha256")
                assert digest is None or sha256(data).hexdigest() == digest, (bucket, doc["_id"])
    report = AppMedia.of(app).maintenance.fsck()
    assert report.ok and report.findings == [] and report.index_problems == [], report.summary()


def test_every_version_restores_to_its_bytes(app_factory, db, old_store):
    migrated(app_factory)
    client = app_factory().test_client()
    for image in LIVE:
        for version in image["versions"]:
            answer = client.post(f"{base(image)}/versions/{version['id']}/restore", headers=old_store)
            assert answer.status_code == 200, (image["id"], version, answer.get_json())
            assert served(client, old_store, image) == version["sha256"], (image["id"], version)
    assert invalid_files(db) == []


def test_the_images_deleted_before_come_back_from_the_trash_with_their_bytes_and_versions(
        app_factory, db, old_store):
    migrated(app_factory)
    client = app_factory().test_client()
    for image in TRASHED:  # a product photo back on its product, the others in their bucket
        answer = client.post(f"/api/trash/{image['id']}/restore", headers=old_store)
        assert answer.status_code == 200, (image, answer.get_json())
        assert served(client, old_store, image) == image["sha256"], image
        found = current_bytes(db, BUCKET[image["kind"]], ObjectId(image["id"]))
        assert sha256(found).hexdigest() == image["sha256"], image
        for version in image["versions"]:  # one replaced before its delete: its first bytes too
            answer = client.post(f"{base(image)}/versions/{version['id']}/restore", headers=old_store)
            assert answer.status_code == 200, (image["id"], version, answer.get_json())
            assert served(client, old_store, image) == version["sha256"], (image["id"], version)
    assert max(len(image["versions"]) for image in TRASHED) >= 2
    assert invalid_files(db) == []


def test_every_item_of_the_trash_restores_to_what_f601210_restored(app_factory, db, old_store):
    """Each in the order the manifest lists them (f601210's trash's), as the manifest's were
    restored on f601210: the images deleted, the copies of replaced versions."""
    migrated(app_factory)
    client = app_factory().test_client()
    for item in MANIFEST["trash"]:
        answer = client.post(f"/api/trash/{item['id']}/restore", headers=old_store)
        assert answer.status_code == 200, (item, answer.get_json())
        got = client.get(answer.get_json()["image"]["url"], headers=old_store)
        assert got.status_code == 200 and sha256(got.data).hexdigest() == item["sha256"], item
    assert invalid_files(db) == []


def test_a_second_run_changes_nothing(app_factory, db, old_store):
    migrated(app_factory)
    before = snapshot(db)
    assert "migrated 0 image records" in migrated(app_factory)
    assert snapshot(db) == before
