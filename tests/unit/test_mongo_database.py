"""The app's pymongo ``Database`` object (``avenue.db.Mongo.db``): built once per client, not on
every ``get_db()`` (a cold rendition's request built seven), and built again when the client
is replaced (tests/api/test_openapi.py takes the database down so)."""

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


def test_a_replaced_client_gets_a_database_of_its_own():
    app = make_app((mongomock.MongoClient, "mongodb://localhost"), "avenue_db_replaced")
    mongo = app.extensions["avenue.mongo"]
    before = mongo.db
    mongo.client = mongomock.MongoClient()
    after = mongo.db
    assert after is not before and after.client is mongo.client and after.name == "avenue_db_replaced"
    assert mongo.db is after
