"""Resumable uploads against the Procfile's process with a real tus client (tuspy): a 10 MB
photo cut off mid-request at 50, 90 and 99 % resumes on another instance with one request for
the remainder, and is stored as the very image a multipart upload of the same bytes is."""

from __future__ import annotations

import io
import json
import socket
import uuid

import pytest
from tusclient import client as tus_client
from tusclient.uploader import Uploader

from avenue.embedded import EmbeddedServer
from tests.support.fixtures import noise_jpeg
from tests.support.launcher import LOOPBACK, Gunicorn

CHUNK = 1024 * 1024


@pytest.fixture(scope="module")
def secantus(tmp_path_factory):
    """A database server of this module's own (it replaces the session's for the tests
    here): its 10 MB photos, each stored several times over (tus pieces on two instances, the
    image, a multipart copy), once wedged the session's server after the slow part's other
    modules had filled its cache (tests/conftest.py)."""
    folder = tmp_path_factory.mktemp("tus-db")
    server = EmbeddedServer(folder / "db", cache_size="1G", log_path=folder / "server.log").start()
    yield server
    server.stop()


def ten_mb_photo() -> bytes:
    """A distinct JPEG of about 9 MB (noise compresses like a detailed photo), under the 10 MiB limit."""
    data = noise_jpeg(3700, 2800)
    assert 8 * 1024 * 1024 < len(data) <= 10 * 1024 * 1024
    return data


def cut_patch(port: int, path: str, headers: dict[str, str], offset: int, data: bytes, sent: int) -> None:
    """A PATCH announcing the rest of ``data`` from ``offset`` whose connection drops after
    ``sent`` of its bytes (a phone losing its network mid-request)."""
    head = [f"PATCH {path} HTTP/1.1", f"Host: {LOOPBACK}", "Tus-Resumable: 1.0.0",
            f"Upload-Offset: {offset}", "Content-Type: application/offset+octet-stream",
            f"Content-Length: {len(data) - offset}", *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection((LOOPBACK, port), timeout=10) as conn:
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        conn.sendall(data[offset:offset + sent])
        conn.shutdown(socket.SHUT_RDWR)


@pytest.mark.slow
def test_a_cut_off_upload_resumes_on_another_instance_with_one_request_and_is_the_multipart_image(
        start_gunicorn, secantus, tmp_path):
    first = start_gunicorn()  # two workers, as the Procfile runs
    second = Gunicorn(secantus.uri, first.db_name, tmp_path / "second.log").start(30)
    try:
        user = first.token("ops")
        for percent in (50, 90, 99):
            photo = ten_mb_photo()
            name = f"cut-{percent}-{uuid.uuid4().hex[:6]}.jpg"
            tus = tus_client.TusClient(f"http://{LOOPBACK}:{first.port}/api/tus", headers=user)
            uploader = tus.uploader(file_stream=io.BytesIO(photo), chunk_size=CHUNK,
                                    metadata={"filename": name, "visibility": "public"})
            cut_at = len(photo) * percent // 100
            sent_whole = cut_at // CHUNK * CHUNK
            uploader.upload(stop_at=sent_whole)  # whole chunks, then the request that is cut
            assert uploader.offset == sent_whole
            path = "/api/tus/" + uploader.url.rsplit("/", 1)[-1]
            cut_patch(first.port, path, user, sent_whole, photo, cut_at - sent_whole)

            # On the other instance: one HEAD for the offset, then one PATCH with the remainder.
            resumed = Uploader(file_stream=io.BytesIO(photo), url=f"http://{LOOPBACK}:{second.port}{path}",
                               client=tus_client.TusClient(f"http://{LOOPBACK}:{second.port}/api/tus",
                                                           headers=user),
                               chunk_size=10 * 1024 * 1024)
            assert sent_whole <= resumed.offset <= cut_at
            resumed.upload_chunk()
            assert resumed.offset == len(photo)
            image_id = resumed.request.response_headers["avenue-image-id"]

            status, body = second.request("GET", path, headers=user)
            state = json.loads(body)
            assert status == 200 and state["state"] == "done" and state["image"]["id"] == image_id
            assert state["image"]["filename"] == name and state["image"]["bytes"] > 0
            # The same bytes as one multipart upload: dedupe answers the tus upload's image.
            status, image = first.upload(user, photo, name)
            assert status == 200 and image["id"] == image_id
    finally:
        second.stop(grace=10)
