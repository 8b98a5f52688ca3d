"""The one token maker: a new user with a role, and its API token, written straight into a database."""

from __future__ import annotations

import uuid

import pymongo

from avenue.auth import service

PASSWORD = "correct horse battery"


def issue(db, role: str = "editor", email: str | None = None) -> dict[str, str]:
    """Authorization headers of a new user with ``role`` (``email`` or a fresh one) in ``db``."""
    email = email or f"{role}-{uuid.uuid4().hex[:6]}@example.com"
    service.create_user(db, email, PASSWORD, role)
    return {"Authorization": f"Bearer {service.issue_token(db, email)}"}


def issue_on(mongo_uri: str, db_name: str, role: str = "editor") -> dict[str, str]:
    """:func:`issue` on the database ``db_name`` of the server at ``mongo_uri`` (a real server's)."""
    with pymongo.MongoClient(mongo_uri) as client:
        return issue(client[db_name], role)
