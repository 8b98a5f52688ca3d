"""The app factory, configuration, health probes and JSON errors."""

from __future__ import annotations

import pymongo
import pytest

from avenue import create_app
from avenue.embedded import EmbeddedServer, free_port


def test_production_refuses_a_missing_or_default_secret_key(monkeypatch):
    monkeypatch.setenv("MONGO_URI", "mongodb://127.0.0.1:1")
    monkeypatch.delenv("AVENUE_ENV", raising=False)
    for value in ("", "dev", "change-me", "short"):
        monkeypatch.setenv("SECRET_KEY", value)
        with pytest.raises(RuntimeError, match="SECRET_KEY"):
            create_app()


def test_production_starts_with_a_real_secret_key(monkeypatch):
    monkeypatch.setenv("MONGO_URI", "mongodb://127.0.0.1:1")
    monkeypatch.setenv("SECRET_KEY", "x" * 64)
    monkeypatch.delenv("AVENUE_ENV", raising=False)
    app = create_app()
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["AVENUE_MAX_UPLOAD_BYTES"] == 10485760
    assert app.config["AVENUE_MAX_PIXELS"] == 40_000_000
    assert app.config["AVENUE_MAX_PRODUCT_IMAGES"] == 10
    assert app.config["MONGO_DB"] == "avenue"
    app.extensions["avenue.mongo"].client.close()


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MONGO_URI", "mongodb://127.0.0.1:1")
    monkeypatch.setenv("AVENUE_ENV", "development")
    monkeypatch.setenv("AVENUE_MAX_UPLOAD_BYTES", "1000")
    monkeypatch.setenv("AVENUE_MAX_PRODUCT_IMAGES", "3")
    app = create_app()
    assert app.config["AVENUE_MAX_UPLOAD_BYTES"] == 1000
    # The app's ceiling is the largest route's: a zip import's, over a product's worth of files.
    assert app.config["MAX_CONTENT_LENGTH"] == max(3000 + 1024 * 1024, app.config["AVENUE_ZIP_MAX_BYTES"])
    app.extensions["avenue.mongo"].client.close()


def test_healthz_answers_while_the_process_runs(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_answers_when_the_database_does(client):
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_while_the_database_is_down_and_recovers_by_itself(tmp_path):
    from tests.helpers import make_app

    port = free_port()
    app = make_app((pymongo.MongoClient, f"mongodb://127.0.0.1:{port}/?directConnection=true"),
                   "avenue", MONGO_TIMEOUT_MS=300)
    client = app.test_client()
    try:
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.get_json()["error"]["code"] == "database_unavailable"
        api = client.get("/api/auth/me", headers={"Authorization": "Bearer av_x"})
        assert api.status_code == 503 and api.is_json
        # A console page waits for it as any page that needs it does, then says so in a page
        # of the console (not the API's JSON), as the browser's user reads it.
        page = client.get("/console/products")
        assert page.status_code == 503 and page.mimetype == "text/html"
        assert "The database is not answering" in page.get_data(as_text=True)
        assert page.headers["Retry-After"] == "5" and page.headers["Cache-Control"] == "no-store"
        server = EmbeddedServer(tmp_path / "db", port=port).start()
        try:
            assert client.get("/readyz").status_code == 200
            assert client.get("/console/products").status_code == 302  # to the login: answered
        finally:
            server.stop()
    finally:
        app.extensions["avenue.mongo"].client.close()


@pytest.mark.parametrize("path", ["/metrics", "/api/openapi.json", "/console/static/console.css",
                                  "/console/login", "/healthz"])
def test_what_needs_no_database_is_answered_by_a_worker_started_while_it_is_down(monkeypatch, path):
    """The readiness hook (indexes, bootstrap admin) waits for the database before a request
    that needs it; these need none, so they answer at once, /metrics without its database part.
    They used to wait out two server selection timeouts (about 30 s) and answer 503."""
    from avenue import readiness
    from tests.helpers import make_app

    app = make_app((pymongo.MongoClient, f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"),
                   "avenue", MONGO_TIMEOUT_MS=300, AVENUE_METRICS_ALLOW=["127.0.0.1/32"])
    prepared = []
    monkeypatch.setattr(readiness, "prepare", prepared.append)
    client = app.test_client()
    try:
        with client.get(path) as answer:  # closed: a static file's answer holds the file open
            assert answer.status_code == 200, answer.data[:300]
        assert prepared == []
        client.get("/api/auth/me", headers={"Authorization": "Bearer av_x"})
        assert prepared == [app]  # the hook is there: an API request prepares first
    finally:
        app.extensions["avenue.mongo"].client.close()


@pytest.mark.parametrize(("method", "path", "status"), [
    ("get", "/api/nothing-here", 404),
    ("get", "/api", 404),  # the API's own root, without the slash
    ("delete", "/api/auth/csrf", 405),
    # Outside the API too: Werkzeug's HTML page answered these until the console's error page.
    ("get", "/nothing", 404),
    ("post", "/.env", 404),
    ("get", "/shop/products", 404),  # the API's address without /api
    ("get", "/%ff", 404),
    ("post", "/healthz", 405),
    ("put", "/metrics", 405),
])
def test_errors_are_json_at_every_address_but_the_files_and_the_console(client, method, path, status):
    response = getattr(client, method)(path)
    assert response.status_code == status and response.is_json
    body = response.get_json()
    assert set(body["error"]) >= {"code", "message", "request_id"} and body["error"]["message"]
    assert body["error"]["request_id"] == response.headers["X-Request-ID"]
    if status == 405:
        assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize("path", ["/static/nothing.css", "/console/static/nothing.js"])
def test_a_static_address_refuses_in_plain_text_as_the_other_file_addresses(client, path):
    missing = client.get(path)
    assert missing.status_code == 404 and missing.mimetype == "text/plain"
    assert missing.get_data(as_text=True) == "Not found\n"
    assert missing.headers["Cache-Control"] == "no-store"
    assert missing.headers["X-Content-Type-Options"] == "nosniff"
    refused = client.post(path)
    assert refused.status_code == 405 and refused.mimetype == "text/plain"
    assert "GET" in refused.headers["Allow"]


def test_a_console_address_answers_its_errors_with_a_console_page_drawn_without_the_user(app, auth,
                                                                                       monkeypatch):
    """A person in a browser: a mistyped console link gets the console's page (its name, a way
    back to the console), not JSON nor Werkzeug's bare page; a method a page does not take too.
    The page loads no user (the database may be why it is shown): a loader that fails is not called."""
    browser, _ = auth.login("editor")

    def no_database(user_id):
        raise AssertionError("the error page loaded the user")

    # The process's one LoginManager (every app's): set for this test only.
    monkeypatch.setattr(app.login_manager, "_user_callback", no_database)
    missing = browser.get("/console/produtcs")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    page = missing.get_data(as_text=True)
    assert "<h1>Not found</h1>" in page and 'href="/console/"' in page and "console.css" in page
    assert missing.headers["Cache-Control"] == "no-store"
    assert missing.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert missing.headers["X-Request-ID"]
    refused = browser.post("/console/login")
    assert refused.status_code == 405 and refused.mimetype == "text/html"
    assert "cannot be opened with POST" in refused.get_data(as_text=True)
    assert "GET" in refused.headers["Allow"]


def test_an_unexpected_error_is_json_at_every_address_but_the_files_and_the_console(app_factory, own_routes):
    app = app_factory()
    app.testing = False  # answered by the handler, not raised into the test

    def boom():
        raise RuntimeError("boom")

    for rule in ("/boom", "/console/boom", "/media/boom"):
        app.add_url_rule(rule, endpoint=rule, view_func=boom)
    client = app.test_client()
    answer = client.get("/boom")
    assert answer.status_code == 500 and answer.get_json()["error"]["code"] == "internal_error"
    for path in ("/console/boom", "/media/boom"):
        answer = client.get(path)
        assert answer.status_code == 500 and answer.get_data(as_text=True) == "Internal server error\n"


def test_an_oversized_request_is_a_json_413(app_factory):
    app = app_factory(MAX_CONTENT_LENGTH=1000)
    response = app.test_client().post("/api/auth/login", data=b"x" * 5000,
                                      content_type="application/json")
    assert response.status_code == 413 and response.is_json


def test_a_products_images_route_keeps_its_own_limit_under_the_zip_imports_larger_ceiling(app_factory, auth):
    """MAX_CONTENT_LENGTH is the largest route's (a zip import, 100 MB): a product's photos stay
    limited to AVENUE_MAX_PRODUCT_IMAGES files of AVENUE_MAX_UPLOAD_BYTES plus 1 MB of form."""
    app = app_factory(AVENUE_MAX_UPLOAD_BYTES=1000, AVENUE_MAX_PRODUCT_IMAGES=2)
    assert app.config["MAX_CONTENT_LENGTH"] >= app.config["AVENUE_ZIP_MAX_BYTES"] > 2000 + 1024 * 1024
    headers = type(auth)(app).token("admin")
    # Refused from Content-Length, before a byte is read (a small body declaring more).
    declared = {"CONTENT_LENGTH": str(2000 + 1024 * 1024 + 1)}  # more than the route takes
    response = app.test_client().post("/api/shop/products/sku-1/images", headers=headers, data=b"--b--",
                                      content_type="multipart/form-data; boundary=b",
                                      environ_overrides=declared)
    assert response.status_code == 413, response.get_json()
    assert response.get_json()["error"]["code"] == "request_entity_too_large"


def test_every_response_carries_security_headers(client):
    headers = client.get("/healthz").headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"]
