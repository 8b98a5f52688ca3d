"""CSRF: state-changing requests made with the session cookie must carry the session's token."""

from __future__ import annotations

import pytest


def refused_as_csrf(response) -> bool:
    return (response.status_code == 403 and response.is_json
            and response.get_json()["error"]["code"] == "csrf_failed")


@pytest.mark.parametrize("headers", [{}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": ""}])
def test_a_cookie_request_without_the_right_token_is_refused_and_changes_nothing(auth, headers):
    client, _ = auth.login("editor")
    response = client.post("/api/auth/logout", headers=headers)
    assert refused_as_csrf(response)
    assert "header" in response.get_json()["error"]["message"]
    assert client.get("/api/auth/me").status_code == 200  # still logged in


def test_a_cookie_request_with_the_login_token_is_accepted(auth):
    client, csrf = auth.login("editor")
    assert client.post("/api/auth/logout", headers=csrf).status_code == 204
    assert client.get("/api/auth/me").status_code == 401


def test_the_token_from_get_csrf_is_the_sessions_token(auth):
    client, csrf = auth.login("ops")
    fetched = client.get("/api/auth/csrf")
    assert fetched.status_code == 200
    assert fetched.get_json() == {"csrf_token": csrf["X-CSRF-Token"]}
    assert client.post("/api/auth/logout", headers={"X-CSRF-Token": fetched.get_json()["csrf_token"]}
                       ).status_code == 204


def test_another_sessions_token_is_refused(auth):
    first, _ = auth.login("admin")
    _, second_token = auth.login("admin")
    assert refused_as_csrf(first.post("/api/auth/logout", headers=second_token))


def test_a_new_login_gets_a_new_token(app, auth):
    email, password = auth.user("editor")
    client = app.test_client()
    before = client.get("/api/auth/csrf").get_json()["csrf_token"]
    after = client.post("/api/auth/login", json={"email": email, "password": password}
                        ).get_json()["csrf_token"]
    assert before != after
    assert refused_as_csrf(client.post("/api/auth/logout", headers={"X-CSRF-Token": before}))


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_every_unsafe_method_is_checked(auth, method):
    client, _ = auth.login("admin")
    # Checked before any view runs: the refusal comes even before "method not allowed".
    assert refused_as_csrf(client.open("/api/admin/audit", method=method))


def test_reads_need_no_token(auth):
    client, _ = auth.login("admin")
    assert client.get("/api/admin/audit").status_code == 200


def test_bearer_token_requests_need_no_csrf_token(app, auth):
    headers = auth.token("editor")
    response = app.test_client().post("/api/auth/logout", headers=headers)
    assert response.status_code == 204


def test_login_itself_needs_no_token(app, auth):
    email, password = auth.user("ops")
    response = app.test_client().post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200
