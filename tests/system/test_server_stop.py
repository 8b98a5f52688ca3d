"""A graceful stop of the Procfile's gunicorn (avenue/server.py): every connection made before
the TERM is read and answered, a connection made after it is refused at connect, never
queued and then reset, and the variants left for after the uploads' answers are rendered
before the worker exits (gunicorn.conf.py worker_exit).

The worker is made busy on purpose (one thread, held by an upload whose body is still coming)
so that a second upload is left in the kernel's backlog, not yet accepted, when the TERM comes:
what a burst of uploads does to a busy worker.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from pathlib import Path

import pymongo
import pytest

from tests.helpers import image_bytes
from tests.support.client import UPLOADS, multipart
from tests.support.launcher import LOOPBACK
from tests.support.records import IMAGE, images

pytestmark = pytest.mark.slow
LISTEN = "0A"  # a listening socket's state in /proc/net/tcp


def pending_of(doc: dict) -> list[tuple[str, str]]:
    """The variants an image's record lists as pending (``pending`` set on its entry
    under ``metadata.variants.<name>.<format>``: its file not written yet)."""
    listed = doc["metadata"]["variants"]
    return [(name, fmt) for name, formats in listed.items() for fmt, info in formats.items()
            if info.get("pending")]


def _queued(port: int) -> int:
    """Connections the kernel holds, not yet accepted, on the sockets listening on ``port``
    (/proc/net/tcp: a listening socket's rx_queue is its accept queue)."""
    queued = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
            queued += int(fields[4].split(":")[1], 16)
    return queued


def _upload_request(headers: dict[str, str], name: str) -> bytes:
    body, content_type = multipart({"visibility": "public"}, "file", name.split("/")[-1], image_bytes(name))
    fields = {**headers, "Host": LOOPBACK, "Content-Type": content_type, "Content-Length": str(len(body)),
              "Connection": "close"}
    head = f"POST {UPLOADS} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
    return head.encode() + body


def _answer(sock: socket.socket) -> tuple[int, dict]:
    """Read an answer to its end (the request said ``Connection: close``); (status, JSON).
    A reset reads as status -1: the upload was never answered."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        return -1, {}
    if not received:
        return -1, {}
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body or b"{}")


def _refused(port: int) -> bool:
    try:
        socket.create_connection((LOOPBACK, port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_graceful_stop_answers_the_uploads_connected_before_it_and_refuses_later_ones(start_gunicorn):
    # One worker, one thread; bodies over 1 KiB are read by the thread, not the event loop.
    server = start_gunicorn(WEB_CONCURRENCY="1", GUNICORN_THREADS="1", GUNICORN_BUFFER_BODY_BYTES="1024",
                            GUNICORN_BODY_TIMEOUT="60")
    headers = server.token()
    first_request = _upload_request(headers, "good/progressive.jpg")
    second_request = _upload_request(headers, "good/grayscale.jpg")
    first = socket.create_connection((LOOPBACK, server.port), timeout=30)
    second = None
    try:
        # The first upload's head and half its body: its thread waits for the rest, and the
        # worker, every thread busy, stops accepting (a moment for it to get there).
        first.sendall(first_request[:len(first_request) // 2])
        time.sleep(1)
        # The second connects and sends its whole upload: the kernel queues it, unaccepted.
        second = socket.create_connection((LOOPBACK, server.port), timeout=30)
        sender = threading.Thread(target=second.sendall, args=(second_request,))
        sender.start()
        deadline = time.monotonic() + 10
        while _queued(server.port) < 1:
            assert time.monotonic() < deadline, "the second upload was accepted: the worker is not busy"
            time.sleep(0.05)

        server.signal(signal.SIGTERM)
        # The worker takes what was queued and stops listening: a new connection is refused,
        # while the first upload is still in flight.
        deadline = time.monotonic() + 10
        while not _refused(server.port):
            assert time.monotonic() < deadline, "still accepting connections after the TERM"
            time.sleep(0.2)

        first.sendall(first_request[len(first_request) // 2:])  # the rest of the first body
        sender.join(30)
        first_status, first_body = _answer(first)
        second_status, second_body = _answer(second)
    finally:
        first.close()
        if second is not None:
            second.close()
    assert first_status == 201, first_body
    assert second_status == 201, second_body
    assert server.process is not None
    server.process.wait(30)
    log = server.log_path.read_text()
    assert "answering 1 connection(s) the kernel had queued" in log
    assert "Traceback" not in log


def test_a_stopping_worker_renders_the_variants_its_answered_uploads_left_for_after_the_answer(
        start_gunicorn):
    server = start_gunicorn(WEB_CONCURRENCY="1", AVENUE_VARIANTS_AFTER_ANSWER="true")
    headers = server.token()
    names = ["good/progressive.jpg", "good/grayscale.jpg", "good/photo_exif_rotated.jpg", "good/cmyk.jpg"]
    for name in names:
        status, _ = server.upload(headers, image_bytes(name), name.split("/")[-1])
        assert status == 201
    server.signal(signal.SIGTERM)  # at once: their variants are still queued or being rendered
    assert server.process is not None
    server.process.wait(60)
    client = pymongo.MongoClient(server.mongo_uri)
    try:
        originals = list(images(client[server.db_name], "uploads").find(IMAGE))
    finally:
        client.close()
    assert len(originals) == len(names)
    assert [pending_of(doc) for doc in originals] == [[]] * len(names)  # every variant listed, none pending
    log = server.log_path.read_text()
    assert "pending variants" not in log and "Traceback" not in log
