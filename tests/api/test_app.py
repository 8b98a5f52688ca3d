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
        server = EmbeddedServer(tmp_path / "db", port=port).start()
        try:
            assert client.get("/readyz").status_code == 200
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
])
def test_api_errors_are_json(client, method, path, status):
    response = getattr(client, method)(path)
    assert response.status_code == status
    body = response.get_json()
    assert set(body["error"]) >= {"code", "message"}


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
