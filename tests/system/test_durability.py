"""Durability: what the client asks of the database, and an acknowledged upload surviving a
SIGKILL of the embedded database (which does not sync its log on commit by default)."""

from __future__ import annotations

import io
import os
import signal

import pymongo
import pytest
from PIL import Image

from avenue.db import durability
from avenue.embedded import EmbeddedServer
from tests.helpers import Auth, make_app


def test_writes_wait_for_a_majority_and_the_journal_and_reads_see_only_committed_data():
    config = {"MONGO_URI": "mongodb://db1,db2,db3/?replicaSet=rs0", "MONGO_WRITE_CONCERN": "majority",
              "MONGO_JOURNAL": True, "MONGO_READ_CONCERN": "majority"}
    assert durability(config) == {"w": "majority", "journal": True, "readConcernLevel": "majority"}
    client = pymongo.MongoClient(config["MONGO_URI"], connect=False, **durability(config))
    try:
        assert client.write_concern.document == {"w": "majority", "j": True}
        assert client.read_concern.level == "majority"
    finally:
        client.close()


def test_options_spelled_in_the_uri_win():
    config = {"MONGO_URI": "mongodb://db1/?w=2&journal=false&readConcernLevel=local",
              "MONGO_WRITE_CONCERN": "majority", "MONGO_JOURNAL": True, "MONGO_READ_CONCERN": "majority"}
    assert durability(config) == {}
    assert durability({**config, "MONGO_URI": "mongodb://db1/", "MONGO_WRITE_CONCERN": "1"})["w"] == 1


def test_the_apps_client_is_configured_for_durability(app):
    client = app.extensions["avenue.mongo"].client
    if isinstance(client, pymongo.MongoClient):
        assert client.write_concern.document == {"w": "majority", "j": True}
    assert app.config["MONGO_TIMEOUT_MS"] >= 12_000 or app.config["TESTING"]


def _photo(index: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (index * 20 % 256, 90, 160)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


@pytest.mark.slow
def test_every_acknowledged_upload_survives_a_sigkill_of_the_embedded_database(tmp_path):
    folder = tmp_path / "db"
    server = EmbeddedServer(folder, log_path=tmp_path / "server.log").start()
    app = make_app((pymongo.MongoClient, server.uri), "avenue_durability", MONGO_WRITE_CONCERN="majority",
                   MONGO_JOURNAL=True, MONGO_READ_CONCERN="majority")
    client = app.test_client()
    headers = Auth(app).token("editor")
    stored = []
    for index in range(8):
        data = _photo(index)
        response = client.post("/api/uploads", headers=headers, content_type="multipart/form-data",
                               data={"file": (io.BytesIO(data), f"p{index}.jpg"), "visibility": "public"})
        assert response.status_code == 201, response.get_json()
        stored.append((response.get_json()["url"], response.get_json()["sha256"]))
    # Acknowledged: now kill the database as a power cut would, and start it on the same data.
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(10)
    app.extensions["avenue.mongo"].client.close()
    restarted = EmbeddedServer(folder, port=server.port, log_path=tmp_path / "server.log").start()
    after = make_app((pymongo.MongoClient, restarted.uri), "avenue_durability")
    try:
        for url, sha256 in stored:
            response = after.test_client().get(url)
            assert response.status_code == 200, url
            assert response.headers["ETag"] == f'"{sha256}"'
    finally:
        after.extensions["avenue.mongo"].client.close()
        restarted.stop()
