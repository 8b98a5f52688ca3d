"""An upload answered by one server, every URL of its answer asked of another at once: real
gunicorn processes on one database, the render after the answer racing the GETs."""

from __future__ import annotations

import io
import uuid

import pymongo
import pytest
from PIL import Image, ImageOps

from tests.helpers import image_bytes
from tests.support.launcher import Gunicorn


@pytest.mark.slow
def test_every_url_of_an_answer_serves_the_right_image_from_another_server_at_once(secantus, tmp_path):
    db_name = f"avenue_test_{uuid.uuid4().hex[:12]}"
    answering = Gunicorn(secantus.uri, db_name, tmp_path / "answering.log", workers=1)
    other = Gunicorn(secantus.uri, db_name, tmp_path / "other.log", workers=1)
    try:
        answering.start(30), other.start(30)
        body = answering.uploaded(image_bytes("good/photo_exif_rotated.jpg"), "rotated.jpg", settled=False)
        urls = [("original", "", body["url"])] + [(name, "", url) for name, url in body["variants"].items()]
        urls += [(name, ext, url) for name, by_ext in body["variant_urls"].items()
                 for ext, url in by_ext.items()]
        for name, ext, url in urls:  # at once, while the answering server renders them too
            status, data = other.request("GET", url, headers={"Accept": "image/webp,*/*"})
            assert status == 200, (name, ext, status, data[:200])
            image = Image.open(io.BytesIO(data))
            image.load()
            kind = image.format
            image = ImageOps.exif_transpose(image)  # the original keeps its Orientation tag
            size = (body["width"], body["height"]) if name == "original" else \
                (body["variant_sizes"][name]["width"], body["variant_sizes"][name]["height"])
            assert image.size == size, (name, ext)
            if ext:
                assert kind == {"webp": "WEBP", "jpg": "JPEG", "png": "PNG"}[ext]
        log = answering.log_path.read_text() + other.log_path.read_text()
        assert "Traceback" not in log
    finally:
        answering.stop(grace=10)
        other.stop(grace=10)
        with pymongo.MongoClient(secantus.uri) as client:
            client.drop_database(db_name)
