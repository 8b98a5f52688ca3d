"""Request bodies are limited per route and refused before they are read (issue 12: single-file
upload routes accepted and spooled bodies up to 101 MB before refusing)."""

from __future__ import annotations

import io
import socket
import time

import pytest

from avenue.http import JSON_BODY_LIMIT
from tests.helpers import bucket_snapshot
from tests.support.launcher import LOOPBACK, gunicorns

# Small enough that every test body stays in memory (the test client spools larger ones to files).
SMALL_UPLOADS = {"AVENUE_MAX_UPLOAD_BYTES": 20_000, "AVENUE_MAX_PRODUCT_IMAGES": 4,
                 "MAX_CONTENT_LENGTH": 20_000 * 4 + 100_000}


def files(count: int, size: int) -> list[tuple[io.BytesIO, str]]:
    return [(io.BytesIO(b"\x89PNG" + b"\x00" * (size - 4)), f"f{n}.png") for n in range(count)]


@pytest.mark.parametrize("path, field", [("/api/uploads", "file"), ("/api/builder/media", "file")])
def test_a_single_file_route_refuses_a_body_larger_than_one_file_before_the_view(app_factory, auth, path,
                                                                                  field):
    app = app_factory(**SMALL_UPLOADS)
    headers = type(auth)(app).token("admin")
    with app.app_context():
        from avenue.db import get_db

        before = bucket_snapshot(get_db())
    refused = app.test_client().post(path, headers=headers, data={field: files(6, 18_000)})
    assert refused.status_code == 413
    body = refused.get_json()["error"]
    assert body["code"] == "request_entity_too_large" and "takes at most 85,536" in body["message"]
    assert refused.headers["Connection"] == "close"
    # One file of the allowed size goes through to validation (not an image: 415/422, not 413).
    one = app.test_client().post(path, headers=headers, data={field: files(1, 18_000)})
    assert one.status_code in (415, 422)
    with app.app_context():
        assert bucket_snapshot(get_db()) == before


def test_a_product_route_takes_a_products_worth_of_files(app_factory, auth):
    app = app_factory(**SMALL_UPLOADS)
    headers = type(auth)(app).token("admin")
    client = app.test_client()
    assert client.post("/api/shop/temp-images", headers=headers,
                       data={"images": files(4, 18_000)}).status_code in (415, 422)
    assert client.post("/api/shop/temp-images", headers=headers,
                       data={"images": files(12, 18_000)}).status_code == 413


def test_a_json_route_refuses_more_than_the_largest_json_it_takes(client, auth):
    headers = auth.token("admin")
    big = b'{"name": "' + b"x" * JSON_BODY_LIMIT + b'"}'
    refused = client.post("/api/shop/products", headers={**headers, "Content-Type": "application/json"},
                          data=big)
    assert refused.status_code == 413
    login = client.post("/api/auth/login", headers={"Content-Type": "application/json"}, data=big)
    assert login.status_code == 413


@pytest.mark.slow
def test_the_server_answers_413_at_once_without_reading_a_huge_declared_body(secantus, tmp_path):
    with gunicorns(secantus.uri, tmp_path) as start:
        server = start()
        with socket.create_connection((LOOPBACK, server.port), timeout=10) as sock:
            started = time.monotonic()
            sock.sendall(b"POST /api/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer av_x\r\n"
                         b"Content-Type: multipart/form-data; boundary=b\r\n"
                         b"Content-Length: 104857600\r\n\r\n" + b"x" * 65536)
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
            assert time.monotonic() - started < 5
