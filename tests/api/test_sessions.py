"""Sessions that really end, bound to the address the app trusts, and the bearer-token rule.

Each test here failed on the code before session epochs (issue 12): the cookie was the whole
session and nothing on the server recorded that it had ended.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile

import pytest

from avenue.auth import service

PASSWORD = "correct horse battery"
NEW_PRODUCT = {"sku": "SESSION-1", "name": "Lamp", "price": 10}


@contextlib.contextmanager
def database(app):
    with app.app_context():
        from avenue.db import get_db

        yield get_db()


def log_in(app, email: str, password: str = PASSWORD, **kwargs):
    """A client logged in by session, its CSRF header and its session cookie's value."""
    client = app.test_client()
    response = client.post("/api/auth/login", json={"email": email, "password": password}, **kwargs)
    assert response.status_code == 200, response.get_json()
    return client, {"X-CSRF-Token": response.get_json()["csrf_token"]}, client.get_cookie("session").value


def replay(app, cookie: str):
    """Another client (the same browser and address) sending a copy of a session cookie."""
    client = app.test_client()
    client.set_cookie("session", cookie)
    return client


def assert_ended(client, csrf: dict, **kwargs) -> None:
    me = client.get("/api/auth/me", **kwargs)
    assert me.status_code == 401 and me.get_json()["error"]["code"] == "unauthorized"
    created = client.post("/api/shop/products", headers=csrf, json=NEW_PRODUCT, **kwargs)
    assert created.status_code == 401


def test_logout_ends_the_session_even_for_a_saved_copy_of_its_cookie(app, auth):
    email, _ = auth.user("admin")
    client, csrf, cookie = log_in(app, email)
    saved = replay(app, cookie)
    assert saved.get("/api/auth/me").status_code == 200
    assert client.post("/api/auth/logout", headers=csrf).status_code == 204
    assert_ended(saved, csrf)
    with database(app) as db:
        assert db.shop_products.count_documents({}) == 0


def test_logout_ends_every_session_of_that_user_and_no_one_elses(app, auth):
    email, _ = auth.user("admin")
    other_email, _ = auth.user("admin")
    laptop, laptop_csrf, _ = log_in(app, email)
    phone, phone_csrf, _ = log_in(app, email)
    colleague, colleague_csrf, _ = log_in(app, other_email)
    assert laptop.post("/api/auth/logout", headers=laptop_csrf).status_code == 204
    assert_ended(phone, phone_csrf)
    assert colleague.get("/api/auth/me").status_code == 200
    # Logging in again opens a new session that works.
    again, again_csrf, _ = log_in(app, email)
    assert again.post("/api/shop/products", headers=again_csrf, json=NEW_PRODUCT).status_code == 201


def test_logging_out_with_a_token_leaves_the_users_sessions_and_token_alone(app, auth):
    email, _ = auth.user("editor")
    client, _, _ = log_in(app, email)
    with database(app) as db:
        token = {"Authorization": f"Bearer {service.issue_token(db, email)}"}
    assert app.test_client().post("/api/auth/logout", headers=token).status_code == 204
    assert client.get("/api/auth/me").status_code == 200
    assert app.test_client().get("/api/auth/me", headers=token).status_code == 200


@pytest.mark.parametrize("command", [
    ["set-password", "--password", "a brand new password"],
    ["set-role", "editor"],
    ["deactivate"],
])
def test_a_password_role_or_activation_change_ends_every_session(app, auth, runner, command):
    email, _ = auth.user("admin")
    client, csrf, cookie = log_in(app, email)
    result = runner.invoke(args=["users", command[0], email, *command[1:]])
    assert result.exit_code == 0, result.output
    assert "session" in result.output
    assert_ended(client, csrf)
    assert_ended(replay(app, cookie), csrf)


def test_a_role_change_is_audited_and_applies_to_the_users_tokens(app, auth, runner):
    email, _ = auth.user("admin")
    with database(app) as db:
        token = {"Authorization": f"Bearer {service.issue_token(db, email)}"}
    assert runner.invoke(args=["users", "set-role", email, "ops"]).exit_code == 0
    assert app.test_client().get("/api/auth/me", headers=token).get_json()["user"]["role"] == "ops"
    assert app.test_client().post("/api/shop/products", headers=token,
                                  json=NEW_PRODUCT).status_code == 403
    with database(app) as db:
        entry = db.audit_logs.find_one({"action": "role_changed"})
    assert entry["target"]["before"] == "admin" and entry["target"]["role"] == "ops"
    refused = runner.invoke(args=["users", "set-role", email, "root"])
    assert refused.exit_code != 0


def test_a_deactivated_user_can_be_activated_and_log_in_again(app, auth, runner):
    email, _ = auth.user("editor")
    assert runner.invoke(args=["users", "deactivate", email]).exit_code == 0
    refused = app.test_client().post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert refused.status_code == 401
    assert runner.invoke(args=["users", "activate", email]).exit_code == 0
    log_in(app, email)
    unknown = runner.invoke(args=["users", "deactivate", "nobody@example.com"])
    assert unknown.exit_code != 0 and "nobody@example.com" in unknown.output


def test_a_session_from_before_epochs_is_not_honoured(app, auth):
    email, _ = auth.user("admin")
    with database(app) as db:
        user_id = str(db.users.find_one({"email": email})["_id"])
    client = app.test_client()
    with client.session_transaction() as session:  # what a cookie issued by the old code held
        session.update({"_user_id": user_id, "_fresh": True, "csrf_token": "x"})
    assert client.get("/api/auth/me").status_code == 401


@pytest.mark.parametrize("with_hashes", [False, True])
def test_a_backup_never_carries_the_session_epoch(app, auth, with_hashes, media_core):
    from avenue.ops.backup import backup

    email, _ = auth.user("admin")
    buffer = io.BytesIO()
    with database(app) as db:
        assert db.users.find_one({"email": email})["session_epoch"]
        backup(db, buffer, include_password_hashes=with_hashes, media=media_core)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        users = [json.loads(line) for line in tar.extractfile("collections/users.jsonl")]
    assert [user["email"] for user in users] == [email]
    assert "session_epoch" not in users[0]
    assert ("password_hash" in users[0]) is with_hashes


# --- binding: the address the app trusts, never a header the client writes -----------------


def test_a_replayed_cookie_is_refused_even_with_a_forged_forwarded_for(app, auth):
    email, _ = auth.user("admin")
    _, csrf, cookie = log_in(app, email, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    thief = replay(app, cookie)
    forged = {"X-Forwarded-For": "198.51.100.7"}
    elsewhere = {"REMOTE_ADDR": "203.0.113.66"}
    assert thief.get("/api/auth/me", headers=forged, environ_base=elsewhere).status_code == 401
    assert replay(app, cookie).get("/api/auth/me", environ_base={"REMOTE_ADDR": "198.51.100.7"}
                                   ).status_code == 200


def test_behind_a_trusted_proxy_the_session_is_bound_to_the_forwarded_address(app_factory, auth):
    app = app_factory(AVENUE_PROXY_COUNT=1)
    email, _ = type(auth)(app).user("admin")
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    client, _, cookie = log_in(app, email, environ_base=proxy,
                               headers={"X-Forwarded-For": "198.51.100.7"})
    same = replay(app, cookie).get("/api/auth/me", environ_base=proxy,
                                   headers={"X-Forwarded-For": "198.51.100.7"})
    assert same.status_code == 200
    # The proxy appends the real peer: a client-written first entry changes nothing.
    moved = replay(app, cookie).get("/api/auth/me", environ_base=proxy,
                                    headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.66"})
    assert moved.status_code == 401


def test_a_cookie_replayed_from_another_browser_is_refused(app, auth):
    email, _ = auth.user("admin")
    _, _, cookie = log_in(app, email)
    assert replay(app, cookie).get("/api/auth/me", headers={"User-Agent": "curl/8.0"}).status_code == 401


# --- a bearer token decides alone --------------------------------------------------------------


def test_a_bearer_token_works_alongside_an_anonymous_csrf_cookie(app, auth):
    token = auth.token("admin")
    client = app.test_client()
    assert client.get("/api/auth/csrf").status_code == 200
    assert client.get_cookie("session") is not None
    assert client.get("/api/auth/me", headers=token).status_code == 200
    created = client.post("/api/shop/products", headers=token, json=NEW_PRODUCT)
    assert created.status_code == 201  # no CSRF header: a token is not ambient


def test_a_token_and_another_users_session_never_mix(app, auth):
    session_email, _ = auth.user("ops")
    client, csrf, _ = log_in(app, session_email)
    admin_token = auth.token("admin")
    me = client.get("/api/auth/me", headers=admin_token).get_json()["user"]
    assert me["role"] == "admin" and me["email"] != session_email
    # A bad token is a 401 even though the cookie holds a good session.
    bad = client.get("/api/auth/me", headers={"Authorization": "Bearer av_not-a-token", **csrf})
    assert bad.status_code == 401
    # And the session is still the ops user's own afterwards.
    assert client.get("/api/auth/me").get_json()["user"]["email"] == session_email


def test_a_first_login_of_a_user_deleted_meanwhile_gets_an_epoch_not_a_server_error(db):
    # The user was read, then deleted before its first epoch was stored: the find after the
    # update finds nothing (it raised TypeError); the session binds an epoch no user has.
    from bson import ObjectId

    epoch = service.session_epoch(db, {"_id": ObjectId(), "email": "gone@example.com"})
    assert isinstance(epoch, str) and epoch
