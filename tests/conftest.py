"""Fixtures: the app on every backend, clients, users and the shared test files."""

from __future__ import annotations

import os
import types
import uuid
from pathlib import Path

import mongomock
import pymongo
import pytest

from avenue import create_app
from avenue.auth import service
from avenue.embedded import EmbeddedServer

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"
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

# pymongo 4.20 reads client.options.timeout, which mongomock's client lacks (EMBEDDED_DB.md).
mongomock.MongoClient.options = types.SimpleNamespace(timeout=None)

BACKENDS = ["mongomock", "secantus"] + (["external"] if os.environ.get("AVENUE_TEST_MONGO_URI") else [])


def pytest_configure(config):
    if not FIXTURES.is_dir():
        raise pytest.UsageError(f"shared test files not found at {FIXTURES}")


@pytest.fixture(scope="session")
def secantus(tmp_path_factory):
    """One SecantusDB process for the session (a separate process, on a free port)."""
    # On disk (a temp folder), not ":memory:": an in-memory WiredTiger cannot evict, and a
    # whole run writes more than its cache holds (WT_CACHE_FULL).
    folder = tmp_path_factory.mktemp("secantus")
    server = EmbeddedServer(folder / "db", cache_size="256M", log_path=folder / "server.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request):
    """(client class, URI) for each backend; each test uses a database of its own."""
    if request.param == "mongomock":
        # One in-memory server per test, shared by every app the test builds (like workers
        # sharing one real database).
        shared = mongomock.MongoClient()
        return (lambda *args, **kwargs: shared), "mongodb://mongomock.invalid:27017"
    if request.param == "secantus":
        return pymongo.MongoClient, request.getfixturevalue("secantus").uri
    return pymongo.MongoClient, os.environ["AVENUE_TEST_MONGO_URI"]


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
        "AVENUE_STATUS_MAX_AGE_SECONDS": 0,  # reports computed on every call unless a test says otherwise
        "SESSION_COOKIE_SECURE": False,
    }
    config.update(overrides)
    return create_app(config)


@pytest.fixture
def db_name():
    return f"avenue_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def app_factory(backend, db_name):
    """Build apps on this test's database (e.g. two gunicorn workers); all closed after."""
    apps = []

    def factory(**overrides):
        apps.append(make_app(backend, db_name, **overrides))
        return apps[-1]

    yield factory
    for index, built in enumerate(apps):
        client = built.extensions["avenue.mongo"].client
        if index == 0:
            client.drop_database(db_name)
        client.close()


@pytest.fixture
def app(app_factory):
    return app_factory()


@pytest.fixture
def db(app):
    """The test's database, indexes ensured. No app context stays pushed: requests made by
    the test client get their own context (and their own flask-login user)."""
    from avenue.db import get_db, get_mongo

    with app.app_context():
        get_mongo().ensure_indexes()
        return get_db()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


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
        email, _ = self.user(role)
        with self.app.app_context():
            from avenue.db import get_db

            token = service.issue_token(get_db(), email)
        return {"Authorization": f"Bearer {token}"}

    def login(self, role: str):
        """A test client logged in by session cookie, and its CSRF header."""
        email, password = self.user(role)
        client = self.app.test_client()
        response = client.post("/api/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.get_json()
        return client, {"X-CSRF-Token": response.get_json()["csrf_token"]}


@pytest.fixture
def auth(app):
    return Auth(app)


def image_bytes(relative: str) -> bytes:
    return (IMAGES / relative).read_bytes()


def bucket_snapshot(db) -> dict:
    """Every GridFS collection's document count: what "nothing was stored" compares."""
    from avenue.media.buckets import BUCKETS

    return {f"{b}.{part}": db[f"{b}.{part}"].count_documents({})
            for b in BUCKETS.values() for part in ("files", "chunks")}
