"""The audit log: one function writes it, admins read it newest first, filtered by user/action."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from bson import ObjectId

from avenue import audit


@contextlib.contextmanager
def database(app):
    with app.app_context():
        from avenue.db import get_db, get_mongo

        get_mongo().ensure_indexes()
        yield get_db()


def read(client, headers, **query):
    response = client.get("/api/admin/audit", headers=headers, query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_log_records_the_requests_user_address_and_target(app, auth):
    headers = auth.token("editor")
    with app.test_request_context("/api/builder/media", method="POST", headers=headers,
                                  environ_base={"REMOTE_ADDR": "192.0.2.7"}):
        from flask_login import current_user

        assert current_user.role == "editor"
        audit.log("image_uploaded", bucket="builder_media", image_id=ObjectId(), sku=None)
    with database(app) as db:
        entry = db.audit_logs.find_one({"action": "image_uploaded"})
    assert entry["actor"]["role"] == "editor" and entry["actor"]["email"].startswith("editor-")
    assert entry["ip"] == "192.0.2.7"
    assert set(entry["target"]) == {"bucket", "image_id"}  # None values are left out
    assert isinstance(entry["at"], dt.datetime)


def test_record_writes_outside_requests_with_the_actor_given(app):
    with database(app) as db:
        audit.record(db, "gc_ran", actor={"via": "cli"}, deleted=3)
        entry = db.audit_logs.find_one({"action": "gc_ran"})
    assert entry["actor"] == {"via": "cli"} and entry["ip"] is None and entry["target"] == {"deleted": 3}


def test_logins_and_failed_logins_are_audited(app, auth):
    email, password = auth.user("ops")
    client = app.test_client()
    client.post("/api/auth/login", json={"email": email, "password": "not it"})
    client.post("/api/auth/login", json={"email": email, "password": password})
    body = read(app.test_client(), auth.token("admin"))
    actions = [(item["action"], item["actor"] and item["actor"]["email"]) for item in body["items"]]
    assert actions[:2] == [("login", email), ("login_failed", None)]
    assert body["items"][1]["target"] == {"email": email}


def test_admins_read_the_log_newest_first_and_paginated(app, auth):
    headers = auth.token("admin")
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with database(app) as db:
        db.audit_logs.delete_many({})
        db.audit_logs.insert_many([{"at": start + dt.timedelta(minutes=n), "action": f"step_{n}",
                                    "actor": None, "ip": None, "target": {}} for n in range(5)])
    client = app.test_client()
    first = read(client, headers, per_page=2)
    assert (first["total"], first["page"], first["per_page"]) == (5, 1, 2)
    assert [item["action"] for item in first["items"]] == ["step_4", "step_3"]
    assert first["items"][0]["at"] == "2026-01-01T00:04:00Z"
    last = read(client, headers, per_page=2, page=3)
    assert [item["action"] for item in last["items"]] == ["step_0"]
    assert read(client, headers, per_page=2, page=4)["items"] == []


def seed_two_users(app, auth):
    alice_email, _ = auth.user("editor", email="alice@example.com")
    bob_email, _ = auth.user("editor", email="bob@example.com")
    with database(app) as db:
        ids = {e: str(db.users.find_one({"email": e})["_id"]) for e in (alice_email, bob_email)}
        for email, action in [(alice_email, "image_uploaded"), (alice_email, "image_deleted"),
                              (bob_email, "image_uploaded")]:
            audit.record(db, action, actor={"id": ids[email], "email": email, "role": "editor"},
                         ip="192.0.2.1", image_id=ObjectId())
    return ids


def test_the_log_filters_by_user_email_or_id_and_by_action(app, auth):
    ids = seed_two_users(app, auth)
    headers = auth.token("admin")
    client = app.test_client()
    by_email = read(client, headers, user="ALICE@example.com")
    assert by_email["total"] == 2
    assert {item["actor"]["email"] for item in by_email["items"]} == {"alice@example.com"}
    assert read(client, headers, user=ids["bob@example.com"])["total"] == 1
    uploads = read(client, headers, action="image_uploaded")
    assert uploads["total"] == 2 and {i["action"] for i in uploads["items"]} == {"image_uploaded"}
    both = read(client, headers, user="alice@example.com", action="image_deleted")
    assert both["total"] == 1 and both["items"][0]["action"] == "image_deleted"
    assert read(client, headers, user="nobody@example.com")["total"] == 0


def test_a_deleted_users_entries_are_still_found_by_email(app, auth):
    seed_two_users(app, auth)
    with database(app) as db:
        db.users.delete_one({"email": "bob@example.com"})
    assert read(app.test_client(), auth.token("admin"), user="bob@example.com")["total"] == 1


def test_entries_show_ids_as_strings_times_in_iso_and_never_a_secret(app, auth):
    image_id = ObjectId()
    with database(app) as db:
        audit.record(db, "careless", actor=None, image_id=image_id, password="hunter2hunter2",
                     token_hash="deadbeef", nested={"when": dt.datetime(2026, 2, 3, tzinfo=dt.UTC),
                                                    "ids": [image_id], "token": "av_secret"})
    body = read(app.test_client(), auth.token("admin"), action="careless")
    [item] = body["items"]
    assert item["target"] == {"image_id": str(image_id),
                              "nested": {"when": "2026-02-03T00:00:00Z", "ids": [str(image_id)]}}
    assert set(item) == {"id", "at", "action", "actor", "ip", "target"}


@pytest.mark.parametrize(("query", "code"), [
    ({"user": "not an id or an email"}, "invalid_filter"),
    ({"action": "x" * 65}, "invalid_filter"),
    ({"page": "0"}, "invalid_pagination"),
    ({"per_page": "1000"}, "invalid_pagination"),
])
def test_bad_filters_are_a_400(app, auth, query, code):
    response = app.test_client().get("/api/admin/audit", headers=auth.token("admin"), query_string=query)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == code


@pytest.mark.parametrize("role", ["editor", "ops"])
def test_only_admins_read_the_log(app, auth, role):
    assert app.test_client().get("/api/admin/audit", headers=auth.token(role)).status_code == 403
    assert app.test_client().get("/api/admin/audit").status_code == 401
