"""The app's pymongo ``Database`` object (``avenue.db.Mongo.db``): built once, not on every
``get_db()`` (a cold rendition's request built seven), and the one place the app's client is
held (tests/api/test_openapi.py takes the database down by replacing it)."""

from __future__ import annotations

import mongomock

from avenue.db import get_db
from tests.helpers import make_app


def test_every_call_in_the_app_gets_the_same_database_object():
    app = make_app((mongomock.MongoClient, "mongodb://localhost"), "avenue_db_once")
    mongo = app.extensions["avenue.mongo"]
    with app.app_context():
        first = get_db()
        assert get_db() is first and mongo.db is first
    assert first.name == "avenue_db_once" and first.client is mongo.client


def test_a_replaced_database_brings_its_client_with_it():
    app = make_app((mongomock.MongoClient, "mongodb://localhost"), "avenue_db_replaced")
    mongo = app.extensions["avenue.mongo"]
    replacement = mongomock.MongoClient()["avenue_db_replaced"]
    mongo.db = replacement
    with app.app_context():
        assert get_db() is replacement
    assert mongo.client is replacement.client
