"""Writes to several collections in one command where the dialect allows (avenue/writes.py):
in order, stopping at the first that fails, that one named by its index in the caller's list,
the same on every backend, whether sent as one command or as one per collection."""

from __future__ import annotations

from dataclasses import replace

import pymongo
import pytest
from pymongo.errors import BulkWriteError

from avenue import dialect, writes
from avenue.db import duplicate_key_write
from avenue.writes import Write, write_together
from tests.helpers import listening, make_app
from tests.support.commands import Matching, namespaces, on_database


def several(db) -> list[Write]:
    return [writes.insert("w_a", {"_id": 1}), writes.insert("w_a", {"_id": 2}),
            writes.insert("w_b", {"_id": "k"}),
            writes.update_one("w_c", {"_id": "n"}, {"$inc": {"n": 1}}, upsert=True)]


def test_writes_to_several_collections_are_all_made_in_order(db):
    write_together(db, several(db))
    assert [doc["_id"] for doc in db.w_a.find().sort("_id")] == [1, 2]
    assert db.w_b.find_one({"_id": "k"}) is not None
    assert db.w_c.find_one({"_id": "n"})["n"] == 1


@pytest.mark.parametrize("refused", [1, 2])
def test_the_first_write_that_fails_stops_the_rest_and_is_named_by_its_index(db, refused):
    db.w_a.insert_one({"_id": 2}) if refused == 1 else db.w_b.insert_one({"_id": "k"})
    with pytest.raises(BulkWriteError) as raised:
        write_together(db, several(db))
    failed = duplicate_key_write(raised.value)
    assert failed is not None and failed["index"] == refused
    assert db.w_a.find_one({"_id": 1}) is not None  # made before it
    assert db.w_c.find_one({"_id": "n"}) is None  # after it: never made
    assert (db.w_b.find_one({"_id": "k"}) is None) == (refused == 1)


@pytest.fixture
def sent(backend, db_name):
    """A database whose commands are counted (the wire-protocol server only), the counter."""
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("command monitoring needs the wire protocol")
    seen = Matching(lambda event: on_database(event, db_name) and event.command_name in
                    {"bulkWrite", "insert", "update"})
    app = make_app((listening(seen), backend[1]), db_name)
    try:
        with app.app_context():
            from avenue.db import get_db

            yield get_db(), seen
    finally:
        app.extensions["avenue.mongo"].client.drop_database(db_name)
        app.extensions["avenue.mongo"].client.close()


def test_they_are_one_command_where_the_dialect_takes_several_collections_writes(sent):
    db, seen = sent
    assert dialect.dialect_of(db).cross_collection_writes  # SecantusDB answers MongoDB 8.0's bulkWrite
    write_together(db, several(db))
    assert [next(iter(command)) for command in seen.commands] == ["bulkWrite"]
    assert namespaces(seen.commands[0]) == ["w_a", "w_a", "w_b", "w_c"]


def test_elsewhere_they_are_a_command_per_collection_s_inserts_and_per_update(sent, monkeypatch):
    db, seen = sent
    older = replace(dialect.dialect_of(db), cross_collection_writes=False)  # a mongod before 8.0
    monkeypatch.setattr(writes, "dialect_of", lambda _: older)
    write_together(db, several(db))
    assert [f"{name} {command[name]}" for command in seen.commands for name in [next(iter(command))]] == [
        "insert w_a", "insert w_b", "update w_c"]
    assert len(seen.commands[0]["documents"]) == 2
