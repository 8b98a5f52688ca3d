"""Outbound calls (avenue/outbound.py): one deadline for the whole call, answers of any status,
and the signature the webhooks carry."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import shutil
import subprocess
import threading
import time
from contextlib import contextmanager

import pytest

from avenue.outbound import send, signed_headers
from tests.helpers import trickling_server


@contextmanager
def answering(status: int, body: bytes):
    """A server on 127.0.0.1 answering every request ``status`` and ``body`` at once; its URL."""

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/file"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def certificate(tmp_path, monkeypatch):
    """A self-signed certificate for 127.0.0.1, trusted by this test's TLS clients."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # read by OpenSSL when a default context loads
    return cert, key


def test_an_answer_in_time_is_read_whole():
    with answering(200, b"a tarball" * 1000) as url:
        answer = send(url, seconds=5, max_body=1 << 20)
    assert answer.status == 200 and answer.body == b"a tarball" * 1000


def test_an_error_status_is_an_answer_and_its_body_is_read_only_when_asked_for():
    with answering(503, b"busy") as url:
        assert send(url, seconds=5).status == 503
        assert send(url, seconds=5, max_body=100).body == b"busy"


def test_an_answer_longer_than_asked_for_is_refused():
    with answering(200, b"x" * 101) as url, pytest.raises(ValueError, match="longer than 100 bytes"):
        send(url, seconds=5, max_body=100)


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_target_that_trickles_its_answer_is_cut_off_at_the_deadline(tls, request):
    certificate = request.getfixturevalue("certificate") if tls else None
    # A byte every 0.2 s: each read gets one within any per-read timeout, so only a deadline
    # for the whole call ends it (the answer would take 26 s, its head alone 13 s: under 8 s
    # allows for a loaded machine and still tells a deadline from one checked only after the
    # head was read).
    with trickling_server(pause=0.2, certificate=certificate) as url:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            send(url, seconds=1.0, max_body=1000)
        assert time.monotonic() - started < 8.0


def test_a_trickled_answer_that_fits_the_deadline_is_read(certificate):
    with trickling_server(pause=0.001, certificate=certificate) as url:
        answer = send(url, seconds=10, max_body=1000)
    assert answer.status == 200 and answer.body == b"x" * 64


def test_webhooks_are_signed_over_the_timestamp_and_the_body():
    headers = signed_headers("a key", b'{"a":1}', moment=1_800_000_000.7)
    assert headers["X-Avenue-Timestamp"] == "1800000000"
    digest = hmac.new(b"a key", b'1800000000.{"a":1}', hashlib.sha256).hexdigest()
    assert headers["X-Avenue-Signature"] == f"sha256={digest}"
