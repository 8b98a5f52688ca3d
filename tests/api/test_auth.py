"""Accounts: users, login sessions, API tokens, roles, the CLI and the bootstrap admin."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib

import pytest

from avenue.auth import service
from avenue.errors import BadRequest, Conflict
from tests.helpers import error_body, wait_for_start_work, worker_start_hook

PASSWORD = "correct horse battery"


@contextlib.contextmanager
def database(app):
    """The database in a short app context, so no request of the test shares its ``g``
    (where flask-login caches the user)."""
    with app.app_context():
        from avenue.db import get_db

        yield get_db()


def login(client, email: str, password: str = PASSWORD, **kwargs):
    return client.post("/api/auth/login", json={"email": email, "password": password}, **kwargs)


# --- users ---------------------------------------------------------------------------------


def test_passwords_are_stored_as_werkzeug_hashes_never_plain(db):
    doc = service.create_user(db, "Alice@Example.com", PASSWORD, "editor")
    stored = db.users.find_one({"_id": doc["_id"]})
    assert stored["email"] == "alice@example.com"
    assert stored["password_hash"].startswith(("scrypt:", "pbkdf2:"))
    assert PASSWORD not in str(stored)
    assert stored["role"] == "editor" and stored["active"] is True
    assert stored["created_at"] is not None and stored["last_login_at"] is None


def test_emails_are_unique_regardless_of_case(db):
    service.create_user(db, "bob@example.com", PASSWORD, "ops")
    with pytest.raises(Conflict):
        service.create_user(db, "BOB@Example.COM", PASSWORD, "admin")
    assert db.users.count_documents({}) == 1


@pytest.mark.parametrize(("email", "password", "role", "code"), [
    ("not-an-email", PASSWORD, "editor", "invalid_email"),
    ("carol@example.com", PASSWORD, "owner", "invalid_role"),
    ("carol@example.com", "short", "editor", "weak_password"),
])
def test_it_refuses_bad_user_details_and_stores_nothing(db, email, password, role, code):
    with pytest.raises(BadRequest) as refused:
        service.create_user(db, email, password, role)
    assert refused.value.code == code
    assert db.users.count_documents({}) == 0


def test_authenticate_hashes_a_password_whether_or_not_the_email_exists(db, monkeypatch):
    service.create_user(db, "dave@example.com", PASSWORD, "editor")
    checked: list[str] = []
    real_check = service.check_password_hash

    def spy(pwhash: str, password: str) -> bool:
        checked.append(pwhash)
        return real_check(pwhash, password)

    monkeypatch.setattr(service, "check_password_hash", spy)
    assert service.authenticate(db, "nobody@example.com", PASSWORD) is None
    assert service.authenticate(db, "dave@example.com", "wrong password") is None
    # One hash check each, and the unknown email paid for a hash of the same kind.
    assert len(checked) == 2
    assert checked[0] == service._DUMMY_HASH
    assert checked[0].split("$")[0] == checked[1].split("$")[0]
    assert real_check(service._DUMMY_HASH, "avenue-timing-equaliser")  # a whole hash, not a stub


def test_authenticate_records_the_last_login_time(db):
    doc = service.create_user(db, "erin@example.com", PASSWORD, "ops")
    assert service.authenticate(db, "ERIN@example.com", PASSWORD)["_id"] == doc["_id"]
    assert db.users.find_one({"_id": doc["_id"]})["last_login_at"] is not None


# --- sessions ------------------------------------------------------------------------------


def test_a_user_logs_in_and_sees_their_profile_without_any_hash(app, auth):
    email, password = auth.user("editor")
    client = app.test_client()
    response = login(client, email.upper(), password)
    assert response.status_code == 200
    body = response.get_json()
    assert body["user"]["email"] == email and body["user"]["role"] == "editor"
    assert set(body["user"]) == {"id", "email", "role", "active", "created_at", "last_login_at"}
    assert body["csrf_token"]
    me = client.get("/api/auth/me")
    assert body["user"]["last_login_at"] is not None
    assert me.status_code == 200 and me.get_json()["user"] == body["user"]


def test_unknown_email_and_wrong_password_get_the_same_401(app, auth):
    email, _ = auth.user("admin")
    client = app.test_client()
    unknown = login(client, "nobody@example.com")
    wrong = login(client, email, "not the password")
    assert unknown.status_code == wrong.status_code == 401
    assert error_body(unknown) == error_body(wrong)
    assert unknown.get_json()["error"]["code"] == "invalid_credentials"
    assert client.get("/api/auth/me").status_code == 401


@pytest.mark.parametrize("body", [{}, {"email": "a@example.com"}, {"password": "x" * 10},
                                  {"email": "", "password": "x" * 10}, {"email": None, "password": "x" * 10},
                                  {"email": 5, "password": "x" * 10},
                                  {"email": "a@example.com", "password": ["x"]}])
def test_login_without_email_or_password_is_a_400(client, body):
    response = client.post("/api/auth/login", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "missing_credentials"


def test_a_login_form_s_other_fields_are_left_aside(app, auth):
    email, password = auth.user("editor")
    response = app.test_client().post("/api/auth/login", json={"email": email, "password": password,
                                                               "remember": True})
    assert response.status_code == 200 and response.get_json()["user"]["email"] == email


def test_login_refuses_a_form_post(app, auth):
    email, password = auth.user("admin")
    response = app.test_client().post("/api/auth/login", data={"email": email, "password": password})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"


def test_inactive_users_cannot_log_in_and_lose_their_sessions_and_tokens(app, auth):
    email, password = auth.user("editor")
    token = auth_token_for(app, email)
    client, _ = session_client(app, email, password)
    with database(app) as db:
        db.users.update_one({"email": email}, {"$set": {"active": False}})
    assert client.get("/api/auth/me").status_code == 401
    assert app.test_client().get("/api/auth/me", headers=token).status_code == 401
    refused = login(app.test_client(), email, password)
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "invalid_credentials"


def test_logout_ends_the_session(app, auth):
    client, csrf = auth.login("ops")
    assert client.post("/api/auth/logout", headers=csrf).status_code == 204
    assert client.get("/api/auth/me").status_code == 401


def test_a_session_cookie_replayed_from_another_address_or_browser_is_logged_out(app, auth):
    client, _ = auth.login("admin")
    assert client.get("/api/auth/me").status_code == 200
    moved = client.get("/api/auth/me", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert moved.status_code == 401
    other_client, _ = auth.login("admin")
    other_browser = other_client.get("/api/auth/me", headers={"User-Agent": "curl/8.0"})
    assert other_browser.status_code == 401


def test_anonymous_calls_get_a_json_401_and_wrong_roles_a_json_403(app, auth):
    anonymous = app.test_client().get("/api/admin/audit")
    assert anonymous.status_code == 401 and anonymous.get_json()["error"]["code"] == "unauthorized"
    editor = app.test_client().get("/api/admin/audit", headers=auth.token("editor"))
    assert editor.status_code == 403 and editor.get_json()["error"]["code"] == "forbidden"


# --- API tokens ----------------------------------------------------------------------------


def auth_token_for(app, email: str) -> dict:
    with database(app) as db:
        return {"Authorization": f"Bearer {service.issue_token(db, email)}"}


def session_client(app, email: str, password: str):
    client = app.test_client()
    response = login(client, email, password)
    assert response.status_code == 200
    return client, {"X-CSRF-Token": response.get_json()["csrf_token"]}


def test_tokens_are_random_long_and_stored_only_as_a_hash(db):
    service.create_user(db, "frank@example.com", PASSWORD, "admin")
    first = service.issue_token(db, "frank@example.com")
    second = service.issue_token(db, "frank@example.com")
    assert first != second
    secret = first.removeprefix(service.TOKEN_PREFIX)
    assert len(secret) >= 43  # token_urlsafe(32): 32 random bytes
    stored = list(db.api_tokens.find())
    assert len(stored) == 2
    assert {doc["token_hash"] for doc in stored} == {hashlib.sha256(t.encode()).hexdigest()
                                                      for t in (first, second)}
    assert all(first not in str(doc) and secret not in str(doc) for doc in stored)


def test_a_bearer_token_authenticates_without_a_session(app, auth):
    headers = auth.token("ops")
    client = app.test_client()
    response = client.get("/api/auth/me", headers=headers)
    assert response.status_code == 200 and response.get_json()["user"]["role"] == "ops"
    assert "Set-Cookie" not in response.headers
    assert client.get("/api/auth/me").status_code == 401


@pytest.mark.parametrize("header", [
    "Bearer av_not-a-real-token", "Bearer nonsense", "Bearer ", "Basic YWRtaW46YWRtaW4=", "av_abc",
])
def test_unknown_or_malformed_tokens_are_a_401(client, header):
    response = client.get("/api/auth/me", headers={"Authorization": header})
    assert response.status_code == 401 and response.is_json


def test_a_revoked_token_is_refused(app, auth):
    email, _ = auth.user("admin")
    headers = auth_token_for(app, email)
    assert app.test_client().get("/api/auth/me", headers=headers).status_code == 200
    with database(app) as db:
        assert service.revoke_tokens(db, email) == 1
    assert app.test_client().get("/api/auth/me", headers=headers).status_code == 401
    with database(app) as db:
        assert service.revoke_tokens(db, email) == 0


def _token_record(db, headers: dict) -> dict:
    token = headers["Authorization"].split(" ", 1)[1]
    return db.api_tokens.find_one({"token_hash": hashlib.sha256(token.encode()).hexdigest()})


def test_an_expired_token_is_refused(app, auth):
    email, _ = auth.user("admin")
    headers = auth_token_for(app, email)
    with database(app) as db:
        record = _token_record(db, headers)
        assert record["expires_at"] - record["created_at"] == dt.timedelta(days=service.DEFAULT_TOKEN_DAYS)
        db.api_tokens.update_one({"_id": record["_id"]},
                                 {"$set": {"expires_at": service.now() - dt.timedelta(seconds=1)}})
    response = app.test_client().get("/api/auth/me", headers=headers)
    assert response.status_code == 401 and response.is_json


def test_a_token_without_expiry_lives_until_revoked_and_a_zero_lifetime_is_refused(db):
    service.create_user(db, "kim@example.com", PASSWORD, "ops")
    token = service.issue_token(db, "kim@example.com", days=None)
    assert db.api_tokens.find_one()["expires_at"] is None
    assert service.user_for_token(db, token)["email"] == "kim@example.com"
    with pytest.raises(BadRequest):
        service.issue_token(db, "kim@example.com", days=0)
    assert db.api_tokens.count_documents({}) == 1


def test_a_tokens_last_use_is_noted_at_most_every_few_minutes(app, auth):
    email, _ = auth.user("admin")
    headers = auth_token_for(app, email)
    with database(app) as db:
        assert _token_record(db, headers)["last_used_at"] is None
    assert app.test_client().get("/api/auth/me", headers=headers).status_code == 200
    with database(app) as db:
        first = _token_record(db, headers)["last_used_at"]
    assert first is not None
    assert app.test_client().get("/api/auth/me", headers=headers).status_code == 200
    with database(app) as db:
        assert _token_record(db, headers)["last_used_at"] == first  # no write per request
        old = service.now() - service.LAST_USED_RESOLUTION - dt.timedelta(seconds=1)
        db.api_tokens.update_one({"_id": _token_record(db, headers)["_id"]}, {"$set": {"last_used_at": old}})
    assert app.test_client().get("/api/auth/me", headers=headers).status_code == 200
    with database(app) as db:
        assert _token_record(db, headers)["last_used_at"].replace(tzinfo=None) > old.replace(tzinfo=None)


# --- the CLI -------------------------------------------------------------------------------


def test_cli_creates_a_user_with_a_password_option(runner, app):
    result = runner.invoke(args=["users", "create", "Grace@Example.com", "--role", "editor",
                                 "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    assert "created editor grace@example.com" in result.output
    assert login(app.test_client(), "grace@example.com").status_code == 200


def test_cli_prompts_for_the_password_twice_when_it_is_omitted(runner, app):
    result = runner.invoke(args=["users", "create", "heidi@example.com", "--role", "ops"],
                           input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # hidden input is not echoed
    assert login(app.test_client(), "heidi@example.com").status_code == 200


def test_cli_refuses_a_duplicate_or_weak_user_with_a_nonzero_exit(runner, db):
    ok = runner.invoke(args=["users", "create", "ivan@example.com", "--role", "ops", "--password", PASSWORD])
    assert ok.exit_code == 0
    duplicate = runner.invoke(args=["users", "create", "IVAN@example.com", "--role", "admin",
                                    "--password", PASSWORD])
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    weak = runner.invoke(args=["users", "create", "judy@example.com", "--role", "ops", "--password", "x"])
    assert weak.exit_code == 1 and "at least" in weak.output
    assert db.users.count_documents({}) == 1
    assert db.users.find_one()["role"] == "ops"


def test_cli_token_prints_a_working_token_once_and_revoke_tokens_kills_it(runner, app, auth):
    email, _ = auth.user("editor")
    result = runner.invoke(args=["users", "token", email])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith(service.TOKEN_PREFIX)
    headers = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/auth/me", headers=headers).status_code == 200
    revoked = runner.invoke(args=["users", "revoke-tokens", email])
    assert revoked.exit_code == 0 and "revoked 1 token" in revoked.output
    assert app.test_client().get("/api/auth/me", headers=headers).status_code == 401


def test_cli_token_for_an_unknown_user_fails(runner, db):
    result = runner.invoke(args=["users", "token", "nobody@example.com"])
    assert result.exit_code == 1 and "No user" in result.output
    assert db.api_tokens.count_documents({}) == 0


# --- the bootstrap admin -------------------------------------------------------------------

BOOT_EMAIL = "boss@example.com"
BOOT_PASSWORD = "bootstrap password 1"


def boot_app(app_factory, **overrides):
    return app_factory(AVENUE_ADMIN_EMAIL=overrides.pop("email", BOOT_EMAIL),
                       AVENUE_ADMIN_PASSWORD=overrides.pop("password", BOOT_PASSWORD), **overrides)


def users_of(app) -> list[dict]:
    with database(app) as db:
        return list(db.users.find())


def test_the_configured_admin_is_created_before_the_first_request(app_factory):
    app = boot_app(app_factory)
    assert users_of(app) == []
    client = app.test_client()
    response = login(client, BOOT_EMAIL, BOOT_PASSWORD)
    assert response.status_code == 200
    assert response.get_json()["user"]["role"] == "admin"
    [user] = users_of(app)
    assert user["email"] == BOOT_EMAIL and user["password_hash"] != BOOT_PASSWORD
    with database(app) as db:
        entry = db.audit_logs.find_one({"action": "user_created"})
    assert entry["target"]["email"] == BOOT_EMAIL and entry["actor"] == {"via": "bootstrap"}


def test_the_configured_admin_exists_as_soon_as_a_worker_starts(app_factory, monkeypatch, tmp_path):
    app = boot_app(app_factory, AVENUE_HISTORY_INTERVAL_SECONDS=0)
    hook, worker = worker_start_hook(monkeypatch, tmp_path)
    started = worker(app)
    hook(started)  # gunicorn.conf.py's post_worker_init; no request reaches the app
    wait_for_start_work()
    [user] = users_of(app)
    assert user["email"] == BOOT_EMAIL and user["role"] == "admin"
    with database(app) as db:
        assert db.audit_logs.find_one({"action": "user_created"})["actor"] == {"via": "bootstrap"}


def test_a_worker_that_starts_while_the_database_is_down_starts_and_its_first_request_creates_the_admin(
        app_factory, monkeypatch, tmp_path, caplog):
    from pymongo.errors import ServerSelectionTimeoutError

    from avenue.db import Mongo

    ensure_indexes = Mongo.ensure_indexes
    calls = []

    def down_at_first(self):
        calls.append(self)
        if len(calls) == 1:
            raise ServerSelectionTimeoutError("no servers found yet")
        ensure_indexes(self)

    monkeypatch.setattr(Mongo, "ensure_indexes", down_at_first)
    app = boot_app(app_factory, AVENUE_HISTORY_INTERVAL_SECONDS=0)
    hook, worker = worker_start_hook(monkeypatch, tmp_path)
    started = worker(app)
    hook(started)  # does not raise: the worker starts
    wait_for_start_work()
    assert calls and "did not answer as this worker started" in caplog.text
    assert users_of(app) == []
    assert app.test_client().get("/api/auth/csrf").status_code == 200
    assert [user["email"] for user in users_of(app)] == [BOOT_EMAIL]


def test_the_bootstrap_never_overwrites_an_existing_admin(app_factory, db):
    service.create_user(db, BOOT_EMAIL, "the admins own password", "admin")
    app = boot_app(app_factory)
    client = app.test_client()
    assert login(client, BOOT_EMAIL, BOOT_PASSWORD).status_code == 401
    assert login(client, BOOT_EMAIL, "the admins own password").status_code == 200
    other = boot_app(app_factory, email="second-boss@example.com")
    assert other.test_client().get("/api/auth/csrf").status_code == 200
    assert [u["email"] for u in users_of(other)] == [BOOT_EMAIL]


def test_the_bootstrap_does_not_promote_an_existing_user_with_that_email(app_factory, db):
    service.create_user(db, BOOT_EMAIL, "an editors password", "editor")
    app = boot_app(app_factory)
    assert app.test_client().get("/api/auth/csrf").status_code == 200
    [user] = users_of(app)
    assert user["role"] == "editor"
    assert service.check_password_hash(user["password_hash"], "an editors password")


def test_a_bad_bootstrap_password_is_logged_and_the_app_keeps_serving(app_factory, caplog):
    app = boot_app(app_factory, password="short")
    response = app.test_client().get("/api/auth/csrf")
    assert response.status_code == 200
    assert users_of(app) == []
    assert "AVENUE_ADMIN_PASSWORD" in caplog.text


def test_without_both_variables_no_admin_is_created(app_factory):
    app = app_factory(AVENUE_ADMIN_EMAIL=BOOT_EMAIL)
    assert app.test_client().get("/api/auth/csrf").status_code == 200
    assert users_of(app) == []


def test_cli_sets_a_new_password_and_audits_it(runner, app, db):
    runner.invoke(args=["users", "create", "olga@example.com", "--role", "ops", "--password", PASSWORD])
    result = runner.invoke(args=["users", "set-password", "OLGA@example.com",
                                 "--password", "a new password!"])
    assert result.exit_code == 0, result.output
    client = app.test_client()
    old = client.post("/api/auth/login", json={"email": "olga@example.com", "password": PASSWORD})
    new = client.post("/api/auth/login", json={"email": "olga@example.com", "password": "a new password!"})
    assert old.status_code == 401 and new.status_code == 200
    actions = {entry["action"] for entry in db.audit_logs.find({"target.email": "olga@example.com"})}
    assert {"user_created", "password_set"} <= actions


def test_cli_set_password_refuses_unknown_users_and_weak_passwords(runner, db):
    unknown = runner.invoke(args=["users", "set-password", "nobody@example.com", "--password", PASSWORD])
    assert unknown.exit_code == 1 and "No user" in unknown.output
    runner.invoke(args=["users", "create", "pia@example.com", "--role", "ops", "--password", PASSWORD])
    weak = runner.invoke(args=["users", "set-password", "pia@example.com", "--password", "x"])
    assert weak.exit_code == 1 and "at least" in weak.output


def test_cli_tokens_lists_names_states_and_lifetimes_never_the_secret(runner, app, auth):
    email, _ = auth.user("ops")
    short = runner.invoke(args=["users", "token", email, "--name", "deploy-script", "--days", "30"])
    forever = runner.invoke(args=["users", "token", email, "--name", "monitor", "--days", "0"])
    assert short.exit_code == 0 and forever.exit_code == 0
    assert "valid 30 days" in short.stderr and "valid until revoked" in forever.stderr
    with database(app) as db:
        record = db.api_tokens.find_one({"name": "deploy-script"})
        assert record["expires_at"] - record["created_at"] == dt.timedelta(days=30)
        assert db.api_tokens.find_one({"name": "monitor"})["expires_at"] is None
        db.api_tokens.update_one({"name": "monitor"}, {"$set": {"revoked_at": service.now()}})
    listing = runner.invoke(args=["users", "tokens", email])
    assert listing.exit_code == 0, listing.output
    lines = listing.stdout.splitlines()
    assert any("deploy-script" in line and " live " in line for line in lines)
    assert any("monitor" in line and " revoked " in line and "never" in line for line in lines)
    assert "2 token(s)" in lines[-1] and "1 live" in lines[-1]
    for secret in (short.stdout.strip(), forever.stdout.strip()):
        assert secret not in listing.output
    assert runner.invoke(args=["users", "tokens", "nobody@example.com"]).exit_code == 1
