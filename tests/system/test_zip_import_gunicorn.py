"""The zip import on the Procfile's gunicorn (two workers): ``POST /api/builder/import-zip`` of a
small archive with a refused entry, the report, the images served, and a re-run that adds
nothing; a zip bomb refused whole with nothing stored. The rules one by one are in
tests/api/test_zip_import.py (in process, every backend)."""

from __future__ import annotations

import http.client
import json
import time
import zipfile

import pymongo
import pytest

from avenue.media import Buckets
from tests.helpers import bucket_snapshot, image_bytes
from tests.support.records import IMAGE, images
from tests.support.zips import make_zip

pytestmark = pytest.mark.slow

URL = "/api/builder/import-zip"


def imported(server, headers, archive: bytes) -> tuple[int, dict, str]:
    """POST the archive; (status, the JSON report, the answer's X-Request-ID)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        connection.request("POST", URL, body=archive, headers={**headers, "Content-Type": "application/zip"})
        response = connection.getresponse()
        return response.status, json.loads(response.read()), response.getheader("X-Request-ID") or ""
    finally:
        connection.close()


def pending_variants(db) -> list[str]:
    """The variants the originals of every bucket list as not rendered yet (rendered after the answer)."""
    return [f"{bucket}/{doc['_id']}/{name}.{fmt}"
            for bucket in Buckets.BY_ALIAS.values()
            for doc in images(db, bucket).find(IMAGE, {"metadata.variants": 1})
            for name, formats in ((doc.get("metadata") or {}).get("variants") or {}).items()
            if isinstance(formats, dict)
            for fmt, entry in formats.items() if isinstance(entry, dict) and entry.get("pending")]


def settled_snapshot(db) -> dict:
    """The buckets' snapshot once the server's renders after an answer are done: no original
    lists a variant still pending and two readings a second apart agree, or a late render counts
    as what the test does next (equal readings alone were not enough under a load of 15 on two
    cores: 4 builder files, then 11). The server is shared: an earlier test's uploads count too."""
    before, deadline = bucket_snapshot(db), time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(1)
        now = bucket_snapshot(db)
        if now == before and not pending_variants(db):
            break
        before = now
    return before


def test_an_archive_is_imported_with_a_report_and_a_re_run_adds_nothing(gunicorn_server, secantus):
    server = gunicorn_server
    editor = server.token("editor")
    with pymongo.MongoClient(secantus.uri) as client:
        imports_before = client[server.db_name].audit_logs.count_documents({"action": "zip_imported"})
    archive = make_zip([("summer/beach/a.jpg", image_bytes("good/progressive.jpg")),
                        ("b.png", image_bytes("good/alpha.png")),
                        ("broken.jpg", image_bytes("bad/truncated.jpg")),
                        ("notes.txt", b"shot list")])

    status, report, request_id = imported(server, editor, archive)
    assert status == 200, report
    assert request_id
    outcomes = {entry["name"]: entry["outcome"] for entry in report["entries"]}
    assert outcomes == {"summer/beach/a.jpg": "imported", "b.png": "imported", "broken.jpg": "refused",
                        "notes.txt": "skipped"}
    broken = next(entry for entry in report["entries"] if entry["name"] == "broken.jpg")
    assert (broken["status"], broken["code"]) == (422, "corrupt_image")
    # The imported images are in the library, where their names put them, and served.
    ids = {entry["name"]: entry["id"] for entry in report["entries"] if entry["outcome"] == "imported"}
    code, body = server.request("GET", f"/api/builder/media/{ids['summer/beach/a.jpg']}", headers=editor)
    media = json.loads(body)
    assert code == 200 and (media["folder"], media["filename"]) == ("/summer/beach", "a.jpg")
    code, served = server.request("GET", media["url"])
    assert code == 200 and served.startswith(b"\xff\xd8"), code  # the stored JPEG (metadata stripped)

    with pymongo.MongoClient(secantus.uri) as client:
        db = client[server.db_name]
        before = settled_snapshot(db)  # the first import's variants are rendered after its answer
        status, again, _ = imported(server, editor, archive)
        assert status == 200, again
        assert {entry["name"]: entry["outcome"] for entry in again["entries"]} == {
            "summer/beach/a.jpg": "already_there", "b.png": "already_there", "broken.jpg": "refused",
            "notes.txt": "skipped"}
        assert bucket_snapshot(db) == before
        assert db.audit_logs.count_documents({"action": "zip_imported"}) == imports_before + 2


def test_a_zip_bomb_is_refused_whole_and_stores_nothing(gunicorn_server, secantus):
    server = gunicorn_server
    editor = server.token("editor")
    bomb = make_zip([("a.jpg", image_bytes("good/progressive.jpg")), ("zeros.png", bytes(50 * 1024 * 1024))],
                    compression=zipfile.ZIP_DEFLATED)
    with pymongo.MongoClient(secantus.uri) as client:
        db = client[server.db_name]
        before = settled_snapshot(db)
        status, answer, request_id = imported(server, editor, bomb)
        assert (status, answer["error"]["code"]) == (413, "zip_ratio_too_high") and request_id, answer
        assert bucket_snapshot(db) == before
