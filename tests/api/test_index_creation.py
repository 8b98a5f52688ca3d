"""Indexes are created only where missing (avenue/indexes.py): a start on an indexed database
sends no ``createIndexes``, and a changed definition is still sent, so the server refuses it."""

from __future__ import annotations

import pymongo
import pytest
from pymongo import ASCENDING, DESCENDING, IndexModel, monitoring

from avenue.dialect import dialect_of
from avenue.indexes import create_missing
from tests.helpers import expires_after, listening, make_app


class Recorded:
    """A collection whose ``create_indexes`` calls are noted (then passed on)."""

    def __init__(self, collection):
        self.collection, self.created = collection, []
        self.database, self.name = collection.database, collection.name

    def drop_index(self, name):
        return self.collection.drop_index(name)

    def index_information(self):
        return self.collection.index_information()

    def create_indexes(self, models):
        self.created.append([model.document["name"] for model in models])
        return self.collection.create_indexes(models)


MODELS = [IndexModel([("sku", ASCENDING)], name="sku_unique", unique=True),
          IndexModel([("at", DESCENDING), ("_id", DESCENDING)], name="newest"),
          IndexModel([("gone_at", ASCENDING)], name="ttl", expireAfterSeconds=3600)]
# (A partial index is covered by the app's own, below: mongomock does not report a partial
# filter, so there it is sent again every time, which is harmless.)


def test_only_missing_indexes_are_created(db):
    first = Recorded(db.things)
    create_missing(first, MODELS)
    assert first.created == [["sku_unique", "newest", "ttl"]]
    assert {"sku_unique", "newest", "ttl"} <= set(db.things.index_information())

    again = Recorded(db.things)
    before = create_missing(again, MODELS)
    assert again.created == []  # every one is there as defined
    assert set(before) >= {"sku_unique", "newest", "ttl"}

    db.things.drop_index("newest")
    third = Recorded(db.things)
    create_missing(third, MODELS)
    assert third.created == [["newest"]]


def test_a_changed_definition_is_still_sent(db):
    create_missing(db.things, MODELS)
    changed = [IndexModel([("sku", ASCENDING)], name="sku_unique"),  # no longer unique
               IndexModel([("gone_at", ASCENDING)], name="ttl", expireAfterSeconds=60),
               IndexModel([("at", ASCENDING), ("_id", DESCENDING)], name="newest")]
    recorded = Recorded(db.things)
    try:
        create_missing(recorded, changed)
    except pymongo.errors.OperationFailure:
        pass  # the server refuses a second definition under a name, as before
    if not dialect_of(db).ttl_indexes:  # plain there: the app keeps its period (avenue/embedded/expiry.py)
        assert recorded.created == [["sku_unique", "newest"]]
        assert expires_after(db.things, "ttl") == 60
    else:
        assert recorded.created == [["sku_unique", "ttl", "newest"]]


class Commands(monitoring.CommandListener):
    def __init__(self):
        self.names = []

    def started(self, event):
        self.names.append(event.command_name)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def test_a_start_on_an_indexed_database_creates_nothing(backend, db_name, monkeypatch):
    """The app's whole ensure_indexes (every collection and bucket, partial, sparse, TTL and
    unique indexes among them): the second app on the same database lists the indexes and
    creates none. (The tests' index memo is off: it would skip the collections it saw.)"""
    from avenue.db import get_mongo
    from tests.support import databases

    monkeypatch.setattr(databases, "MEMOISE_INDEXES", False)
    if backend[1].startswith("mongodb://mongomock"):
        pytest.skip("command monitoring needs a real server")
    apps = []
    try:
        for _ in range(2):
            commands = Commands()
            apps.append(make_app((listening(commands), backend[1]), db_name))
            with apps[-1].app_context():
                get_mongo().ensure_indexes()
        assert commands.names.count("listIndexes") >= 30  # every collection asked
        assert "createIndexes" not in commands.names
    finally:
        for app in apps:
            app.extensions["avenue.mongo"].client.drop_database(db_name)
            app.extensions["avenue.mongo"].client.close()
