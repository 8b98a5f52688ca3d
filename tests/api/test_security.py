"""Security headers, CORS for configured origins only, cookie flags, and no leaked hashes."""

from __future__ import annotations

import pytest

ADMIN_PANEL = "https://admin.example.com"


# --- headers -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/auth/csrf", "/api/nothing-here", "/healthz"])
def test_every_response_carries_the_security_headers(client, path):
    headers = client.get(path).headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_api_responses_forbid_framing_and_caching(client):
    headers = client.get("/api/auth/csrf").headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store"


def test_hsts_is_sent_in_production_only(app_factory):
    production = app_factory(AVENUE_ENV="production").test_client().get("/healthz")
    assert production.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    testing = app_factory().test_client().get("/healthz")
    assert "Strict-Transport-Security" not in testing.headers


# --- session cookie ------------------------------------------------------------------------


def session_cookie(response) -> str:
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    return cookie


def login_response(app, auth):
    email, password = auth.user("editor")
    return app.test_client().post("/api/auth/login", json={"email": email, "password": password})


def test_the_session_cookie_is_httponly_and_samesite_lax(app, auth):
    cookie = session_cookie(login_response(app, auth))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_the_session_cookie_is_secure_when_configured_and_by_default_in_production(app_factory):
    from tests.helpers import Auth

    app = app_factory(SESSION_COOKIE_SECURE=True)
    assert "Secure" in session_cookie(login_response(app, Auth(app)))
    from avenue.config import from_environment

    assert from_environment()["SESSION_COOKIE_SECURE"] is True  # AVENUE_ENV defaults to production


# --- CORS ----------------------------------------------------------------------------------


@pytest.fixture
def cors_client(app_factory):
    return app_factory(AVENUE_CORS_ORIGINS=[ADMIN_PANEL]).test_client()


def test_a_configured_origin_may_read_answers_with_credentials(cors_client):
    response = cors_client.get("/api/auth/csrf", headers={"Origin": ADMIN_PANEL})
    assert response.headers["Access-Control-Allow-Origin"] == ADMIN_PANEL
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]
    assert "Origin" in response.headers["Vary"]


def test_a_configured_origins_preflight_is_answered(cors_client):
    response = cors_client.options("/api/auth/login", headers={
        "Origin": ADMIN_PANEL, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-csrf-token"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ADMIN_PANEL
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "x-csrf-token" in allowed and "authorization" in allowed


@pytest.mark.parametrize("origin", ["https://evil.example.net", "https://admin.example.com.evil.net", "null"])
def test_other_origins_get_no_cors_headers_at_all(cors_client, origin):
    read = cors_client.get("/api/auth/csrf", headers={"Origin": origin})
    preflight = cors_client.options("/api/auth/login", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST"})
    for response in (read, preflight):
        assert not [h for h in response.headers.keys() if h.lower().startswith("access-control-")]


def test_without_configured_origins_nobody_gets_cors_headers(client):
    response = client.get("/api/auth/csrf", headers={"Origin": ADMIN_PANEL})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_stays_off_outside_the_api(cors_client):
    response = cors_client.get("/healthz", headers={"Origin": ADMIN_PANEL})
    assert "Access-Control-Allow-Origin" not in response.headers


# --- no hash ever leaves -------------------------------------------------------------------


def test_no_response_or_cli_output_contains_a_password_or_token_hash(app, runner):
    outputs: list[str] = []

    def keep(response):
        outputs.append(response.get_data(as_text=True))
        outputs.append(str(response.headers))
        return response

    created = runner.invoke(args=["users", "create", "root@example.com", "--role", "admin",
                                  "--password", "root password 1"])
    prompted = runner.invoke(args=["users", "create", "ed@example.com", "--role", "editor"],
                             input="editor password 1\neditor password 1\n")
    issued = runner.invoke(args=["users", "token", "root@example.com"])
    revoked = runner.invoke(args=["users", "revoke-tokens", "ed@example.com"])
    outputs += [result.output for result in (created, prompted, issued, revoked)]
    token = issued.stdout.strip()
    bearer = {"Authorization": f"Bearer {token}"}

    session = app.test_client()
    keep(session.post("/api/auth/login", json={"email": "ed@example.com", "password": "wrong"}))
    logged_in = keep(session.post("/api/auth/login",
                                  json={"email": "ed@example.com", "password": "editor password 1"}))
    keep(session.get("/api/auth/me"))
    keep(session.get("/api/auth/csrf"))
    keep(session.post("/api/auth/logout", headers={"X-CSRF-Token": logged_in.get_json()["csrf_token"]}))
    api = app.test_client()
    keep(api.get("/api/auth/me", headers=bearer))
    keep(api.get("/api/admin/audit", headers=bearer, query_string={"per_page": 100}))
    keep(api.get("/api/admin/audit", headers=bearer, query_string={"user": "ed@example.com"}))

    with app.app_context():
        from avenue.db import get_db

        db = get_db()
        secrets = [u["password_hash"] for u in db.users.find()]
        secrets += [t["token_hash"] for t in db.api_tokens.find()]
    assert len(secrets) == 3 and all(secrets)
    everything = "\n".join(outputs)
    assert all(secret not in everything for secret in secrets)
    assert "scrypt:" not in everything and "pbkdf2:" not in everything
    assert "password_hash" not in everything and "token_hash" not in everything
