"""The database's dialect on the real servers (avenue/dialect.py): SecantusDB detected by one
``buildInfo`` per client, and every process logging its dialect as it prepares the database."""

from __future__ import annotations

import logging

import pymongo

from avenue.db import get_mongo
from avenue.dialect import EMBEDDED, dialect_of
from tests.helpers import listening, make_app
from tests.support.commands import Matching


def build_infos(event) -> bool:
    return event.command_name == "buildInfo"


def test_secantusdb_is_detected_by_one_build_info_per_client(secantus):
    asked = Matching(build_infos)
    client = pymongo.MongoClient(secantus.uri, event_listeners=[asked])
    try:
        assert dialect_of(client["avenue"]) is EMBEDDED
        assert dialect_of(client["avenue"]) is EMBEDDED
        assert dialect_of(client["another"]) is EMBEDDED  # one client, one server
        assert len(asked.commands) == 1
    finally:
        client.close()


def test_a_process_logs_its_dialect_and_rules_as_it_prepares_the_database(app_factory, caplog):
    app = app_factory()
    with caplog.at_level(logging.INFO, logger="avenue.db"), app.app_context():
        get_mongo().ensure_indexes()
        get_mongo().ensure_indexes()  # once a process
    lines = [record.getMessage() for record in caplog.records if record.name == "avenue.db"]
    expected = dialect_of(get_mongo(app).db)
    assert lines == [f"database dialect: {expected.name} ("
                     + ", ".join(f"{rule}={value}" for rule, value in expected.rules().items()) + ")"]
    assert "ttl_indexes=" in lines[0] and "write_batch=" in lines[0]


def test_the_embedded_rules_reach_an_app_on_secantusdb(secantus, db_name):
    sent = Matching(lambda event: True)
    app = make_app((listening(sent), secantus.uri), db_name)
    try:
        with app.app_context():
            get_mongo().ensure_indexes()
            assert dialect_of(get_mongo().db) is EMBEDDED
        names = [next(iter(command)) for command in sent.commands]
        # Detected once, by the first index created; every later setup and rule asked of the
        # same client answers from what it remembered. The indexes' listing goes first, so a
        # database that does not answer fails on the indexes, as before the dialect.
        assert names.count("buildInfo") == 1
        assert names[0] == "listIndexes"
    finally:
        client = app.extensions["avenue.mongo"].client
        client.drop_database(db_name)
        client.close()
