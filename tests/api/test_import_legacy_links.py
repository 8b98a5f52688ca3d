"""import-legacy never follows a symbolic link out of the folder it imports."""

from __future__ import annotations

import json
import shutil

import pytest

from avenue.media import Buckets
from tests.helpers import IMAGES
from tests.support import records


@pytest.fixture
def folders(tmp_path):
    """An old uploads folder and, beside it, a folder that must never be published."""
    uploads, outside = tmp_path / "uploads", tmp_path / "private"
    (uploads / "general").mkdir(parents=True)
    (uploads / "products").mkdir()
    outside.mkdir()
    shutil.copy(IMAGES / "good/png16.png", outside / "secret.png")
    shutil.copy(IMAGES / "good/tiny_1x1.png", uploads / "general" / "dot.png")
    return uploads, outside


def import_json(runner, *args):
    result = runner.invoke(args=["import-legacy", *args, "--json"])
    return result, json.loads(result.stdout)


def originals(db, bucket) -> int:
    return records.images(db, bucket).count_documents(records.IMAGE)


def test_a_link_to_a_file_outside_is_reported_and_never_published(db, runner, folders):
    uploads, outside = folders
    (uploads / "general" / "secret.png").symlink_to(outside / "secret.png")
    (uploads / "general" / "same-dot.png").symlink_to(uploads / "general" / "dot.png")  # inside: fine
    result, report = import_json(runner, str(uploads))
    assert result.exit_code == 2  # something needs a look
    [refused] = report["invalid"]
    assert refused["path"] == "/uploads/general/secret.png"
    assert refused["code"] == "link_outside_folder"
    assert "outside the import folder" in refused["reason"]
    assert db.legacy_paths.find_one({"path": "/uploads/general/secret.png"}) is None
    assert sorted(d["path"] for d in db.legacy_paths.find()) == [
        "/uploads/general/dot.png", "/uploads/general/same-dot.png"]
    assert originals(db, Buckets.UPLOADS) == 1  # the dot, once; never the outside file


def test_a_link_to_a_folder_outside_is_reported_and_never_walked(db, runner, folders):
    uploads, outside = folders
    (uploads / "products" / "AV-7").symlink_to(outside, target_is_directory=True)
    db.shop_products.insert_one({"sku": "AV-7", "name": "n", "price": 1,
                                 "images": ["/uploads/products/AV-7/secret.png"]})
    result, report = import_json(runner, str(uploads))
    assert result.exit_code == 2
    assert [(e["path"], e["code"]) for e in report["invalid"]] == [
        ("/uploads/products/AV-7", "link_outside_folder")]
    assert "a folder outside the import folder" in report["invalid"][0]["reason"]
    assert originals(db, Buckets.PRODUCTS) == 0
    assert db.shop_products.find_one({"sku": "AV-7"})["images"] == ["/uploads/products/AV-7/secret.png"]


def test_the_refused_links_are_listed_in_a_dry_run_too(db, runner, folders):
    uploads, outside = folders
    (uploads / "general" / "passwd.png").symlink_to("/etc/passwd")
    (uploads / "general" / "root").symlink_to("/", target_is_directory=True)
    (uploads / "general" / "loop").symlink_to(uploads / "general" / "loop")
    result = runner.invoke(args=["import-legacy", str(uploads), "--dry-run"])
    assert result.exit_code == 2
    skipped = sorted(line for line in result.stdout.splitlines() if line.startswith("would skip"))
    assert skipped == [
        "would skip /uploads/general/loop: a symbolic link that resolves nowhere (a loop); not followed",
        "would skip /uploads/general/passwd.png: a symbolic link to a file outside the import folder; "
        "not followed",
        "would skip /uploads/general/root: a symbolic link to a folder outside the import folder; "
        "not followed",
    ]
