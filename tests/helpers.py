"""What tests share besides fixtures: the shared test files, the app builder, users and tokens.

Fixtures live in ``conftest.py``; everything a test module imports by name lives here.
"""

from __future__ import annotations

import io
import re
import uuid
from contextlib import contextmanager
from pathlib import Path

from werkzeug.test import Client

from avenue import create_app
from avenue.auth import service
from avenue.media.serve.frontdoor import FrontDoor
from tests.support import fixtures, tokens
from tests.support.client import MEDIA, uploaded

# ../shared/fixtures when it is there, else the corpus tests/support/fixtures.py makes.
FIXTURES = fixtures.location()
IMAGES = FIXTURES / "images"
GOOD_NAMES = sorted(p.name for p in (IMAGES / "good").iterdir()) if IMAGES.is_dir() else []
# The status every refused shared fixture must get (fixtures README): the one copy of it.
REFUSED = {
    "bad/empty.jpg": {400, 422},
    "bad/truncated.jpg": {422},
    "bad/text_named.jpg": {415},
    "bad/document.pdf": {415},
    "bad/archive_named.png": {415},
    "bad/elf_named.png": {415},
    "bad/html_polyglot.gif": {415, 422},
    "bad/script.svg": {415},
    "bad/bomb_50000x50000.png": {413, 422},
    "bad/bomb_screen.gif": {413, 422},
    "bad/corrupt_chunk.png": {422},
    "unsupported/bitmap.bmp": {415},
    "unsupported/scan.tiff": {415},
    "unsupported/icon.ico": {415},
}
# Filenames that must be stored sanitized and never reflected unescaped.
HOSTILE_NAMES = [
    "../../etc/pass\x07wd.png",
    "C:/Windows/evil\x00name.png",
    "invoice\u202egnp.exe.png",
    "<script>alert(1)</script>.png",
    "a" * 1000 + ".png",
]
# An image's placeholder as the API states it: a 4x3-component blurhash and its dominant colour.
BLURHASH = re.compile(r"^[0-9A-Za-z#$%*+,\-.:;=?@\[\]^_{|}~]{28}$")
COLOR = re.compile(r"^#[0-9a-f]{6}$")


def listening(listener):
    """A client class (for :func:`make_app`'s backend) that reports every command to
    ``listener`` as well as to the app's own listeners (the metrics')."""
    import pymongo

    def client(*args, **kwargs):
        return pymongo.MongoClient(*args, **{**kwargs, "event_listeners": [
            listener, *kwargs.get("event_listeners", [])]})
    return client


def make_app(backend, db_name: str, **overrides):
    client_class, uri = backend
    config = {
        "TESTING": True,
        "AVENUE_ENV": "testing",
        "SECRET_KEY": "test-secret-key-for-avenue",
        "MONGO_URI": uri,
        "MONGO_DB": db_name,
        "MONGO_CLIENT_CLASS": client_class,
        "MONGO_TIMEOUT_MS": 3000,
        "RATELIMIT_ENABLED": False,
        # No status sweep starts by itself (tests run it: tests/helpers.py swept); ?refresh=1 still does.
        "AVENUE_STATUS_WARM_UP": False,
        # An upload's pending variants are rendered before the test client gets the answer (the
        # client never closes a response, so "after the answer" would never come): what a test
        # reads of GridFS is whole. tests/media/store/test_pending.py tests the render after it.
        "AVENUE_VARIANTS_AFTER_ANSWER": False,
        # A status call waits for fresh counts however loaded the test machine: the tests read
        # what a write just changed. The stale answer has its own tests (test_status_reports.py).
        "AVENUE_STATUS_ANSWER_MS": 600_000,
        "SESSION_COOKIE_SECURE": False,
    }
    config.update(overrides)
    return create_app(config)


class Auth:
    """Create users and get API tokens or logged-in session clients for them."""

    def __init__(self, app):
        self.app = app

    def user(self, role: str, email: str | None = None, password: str = "correct horse battery"):
        with self.app.app_context():
            from avenue.db import get_db, get_mongo

            get_mongo().ensure_indexes()
            email = email or f"{role}-{uuid.uuid4().hex[:6]}@example.com"
            service.create_user(get_db(), email, password, role)
        return email, password

    def token(self, role: str) -> dict:
        """Authorization headers of a fresh user with ``role``."""
        with self.app.app_context():
            from avenue.db import get_db, get_mongo

            get_mongo().ensure_indexes()
            return tokens.issue(get_db(), role)

    def login(self, role: str):
        """A test client logged in by session cookie, and its CSRF header."""
        email, password = self.user(role)
        client = self.app.test_client()
        response = client.post("/api/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.get_json()
        return client, {"X-CSRF-Token": response.get_json()["csrf_token"]}


def error_body(response) -> dict:
    """A JSON error's fields but its ``request_id`` (each request's own): what "the same answer
    as for something that does not exist" compares."""
    return {key: value for key, value in response.get_json()["error"].items() if key != "request_id"}


def passed_to_route(app, url: str, headers: dict | None = None) -> list[str]:
    """The paths the front door (``avenue.media.serve.frontdoor.FrontDoor``) hands on to the route when asked
    for ``url``: ``[its path]`` when it leaves the request to the route, ``[]`` when it answers."""
    passed = []

    def route_stand_in(environ, start_response):
        passed.append(environ["PATH_INFO"])
        start_response("204 NO CONTENT", [])
        return []

    Client(FrontDoor(app, route_stand_in)).get(url, headers=headers)
    return passed


def image_bytes(relative: str) -> bytes:
    return (IMAGES / relative).read_bytes()


def bucket_snapshot(db) -> dict:
    """Each bucket collection's document count (records, files, chunks): "nothing was stored"."""
    from avenue.media.buckets import BUCKETS

    return {f"{b}.{part}": db[f"{b}.{part}"].count_documents({})
            for b in BUCKETS.values() for part in ("files", "chunks", "images")}


def swept(app) -> dict:
    """Run the status sweep now (reconciling the counters) and return its result: what a
    worker's scheduler does in the background, for data a test wrote behind the app's back."""
    from avenue import status

    status.wait_for_sweeps(30)  # a sweep a ?refresh=1 started must not hold the lease
    with app.app_context():
        from avenue.db import get_db
        from avenue.media import AppMedia

        result = status.sweep_now(get_db(), app.config, AppMedia.of(app).core.referrers(get_db()))
    assert result is not None, "another sweep held the lease"
    return result


def form(name: str, field: str = "file") -> dict:
    """A multipart form with the fixture image ``name`` (``good/...``) as ``field``."""
    return {field: (io.BytesIO(image_bytes(name)), name.split("/")[-1])}


def library_upload(client, headers, name: str = "good/progressive.jpg") -> dict:
    """Upload a fixture image to the builder library; its media object."""
    return uploaded(client, headers, name, to=MEDIA)


def worker_start_hook(monkeypatch, tmp_path):
    """gunicorn.conf.py's ``post_worker_init``, and a stand-in for the worker it is given (the
    app: any worker class has one). Reading gunicorn.conf.py prepares Prometheus'
    multiprocess folder and exports it, which would switch every later test's /metrics to
    that folder: it gets one marked as already prepared, both variables undone after the test."""
    import os
    import runpy
    import types

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("AVENUE_METRICS_PREPARED_BY", str(os.getpid()))
    hook = runpy.run_path(str(Path(__file__).resolve().parents[1] / "gunicorn.conf.py"))["post_worker_init"]

    def worker(app):
        return types.SimpleNamespace(wsgi=app)
    return hook, worker


def wait_for_start_work(timeout: float = 60.0) -> None:
    """Wait until the work ``post_worker_init`` started on its own thread (the indexes and the
    bootstrap admin: ``avenue-prepare``) is done."""
    import threading

    for thread in threading.enumerate():
        if thread.name == "avenue-prepare":
            thread.join(timeout)
            assert not thread.is_alive(), "the start-up work did not finish"


@contextmanager
def trickling_server(pause: float = 0.2, status: int = 200, *, certificate: tuple[Path, Path] | None = None):
    """A server on 127.0.0.1 that answers every request a byte every ``pause`` seconds, its
    head included, for as long as the client listens (a target holding its sender); its URL.
    With ``certificate`` (a certificate and key file) it speaks TLS."""
    import http.server
    import ssl
    import threading

    stopping = threading.Event()
    answer = (f"HTTP/1.1 {status} Slow\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n\r\n".encode()
              + b"x" * 64)

    class Trickle(http.server.BaseHTTPRequestHandler):
        def answer(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            for byte in answer:
                if stopping.wait(pause):
                    return
                try:
                    self.wfile.write(bytes([byte]))
                except OSError:  # the client gave up
                    return

        do_GET = do_POST = answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    if certificate is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"{'https' if certificate else 'http'}://127.0.0.1:{server.server_port}/hook"
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()


def expires_after(collection, name: str) -> float | None:
    """The seconds after which index ``name`` of ``collection`` expires its documents: its
    ``expireAfterSeconds`` on MongoDB and mongomock; on the embedded SecantusDB, where the
    index is plain, the rule the app expires by (avenue/embedded/expiry.py). None: it expires nothing."""
    from avenue.embedded import expiry

    info = collection.index_information()[name]
    if "expireAfterSeconds" in info:
        return float(info["expireAfterSeconds"])
    for rule_name, rule in expiry.named_rules(collection.database.name, collection.name).items():
        if rule_name == name:
            return rule.seconds
    return None
