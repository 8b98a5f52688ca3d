"""Old filesystem URLs (/uploads/...) after import-legacy: 301 to the new media URL, or 404."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from avenue.media import AppMedia, Buckets, Image
from tests.helpers import FIXTURES
from tests.support import records
from tests.support.legacy import LEGACY_UPLOADS, load_legacy_db


@pytest.fixture
def legacy_db(db):
    load_legacy_db(db)
    return db


def test_old_paths_answer_301_to_urls_that_serve_the_same_bytes(legacy_db, client, media_core):
    db = legacy_db
    media = AppMedia.on(db, media_core)
    media.maintenance.import_legacy(LEGACY_UPLOADS, limits=None)
    paths = [record["path"] for record in db.legacy_paths.find()] + [
        record["path"] for record in db.uploads.find()]
    assert len(paths) == 18 + 3
    for path in paths:
        response = client.get(path)
        assert response.status_code == 301, path
        assert "max-age" in response.headers["Cache-Control"]
        location = response.headers["Location"]
        assert location.startswith("/media/")
        served = client.get(location)
        record = db.legacy_paths.find_one({"path": path})
        stored = records.record(db, record["bucket"], record["file_id"])
        assert served.status_code == 200
        bucket = record["bucket"]
        assert served.data == media.library(bucket).read(Image.from_files_doc(bucket, stored))
        assert hashlib.sha256(served.data).hexdigest() == stored["metadata"]["sha256"]
        assert client.head(path).status_code == 301


def test_old_paths_that_were_never_imported_answer_404(legacy_db, client, media_core):
    AppMedia.on(legacy_db, media_core).maintenance.import_legacy(LEGACY_UPLOADS / "general")
    for path in ("/uploads/products/AV-1002/missing-on-disk.jpg", "/uploads/notes.txt", "/uploads/x/../y"):
        response = client.get(path)
        assert response.status_code == 404
        assert len(response.data) < 20 and response.mimetype == "text/plain"


def test_redirects_point_at_the_configured_media_base_url(app_factory, db, tmp_path, media_core):
    (tmp_path / "general").mkdir()
    shutil.copy(FIXTURES / "images/good/tiny_1x1.png", tmp_path / "general/dot.png")
    AppMedia.on(db, media_core).maintenance.import_legacy(tmp_path)
    cdn = app_factory(AVENUE_MEDIA_BASE_URL="https://cdn.example.com")
    response = cdn.test_client().get("/uploads/general/dot.png")
    assert response.status_code == 301
    assert response.headers["Location"].startswith("https://cdn.example.com/media/uploads/")


def test_an_old_path_whose_image_was_deleted_since_answers_404(db, client, tmp_path, media_core):
    (tmp_path / "products" / "AV-1").mkdir(parents=True)
    shutil.copy(FIXTURES / "images/good/png16.png", tmp_path / "products/AV-1/a.png")
    AppMedia.on(db, media_core).maintenance.import_legacy(tmp_path)
    path = "/uploads/products/AV-1/a.png"
    assert client.get(path).status_code == 301
    imported = db.legacy_paths.find_one({"path": path})["file_id"]
    AppMedia.on(db, media_core).library(Buckets.PRODUCTS).delete(imported)
    assert client.get(path).status_code == 404


def test_a_redirect_sets_no_cookie(db, client, tmp_path, media_core):
    (tmp_path / "general").mkdir()
    shutil.copy(FIXTURES / "images/good/tiny_1x1.png", tmp_path / "general/dot.png")
    AppMedia.on(db, media_core).maintenance.import_legacy(tmp_path)
    response = client.get("/uploads/general/dot.png")
    assert response.status_code == 301
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "public, max-age=2592000"
