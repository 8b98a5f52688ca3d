"""The database's dialect on the real servers (avenue/dialect.py): SecantusDB detected by one
``buildInfo`` per client, every process logging its dialect as it prepares the database, and a
mongod below what production runs on warned of there and in storage-status."""

from __future__ import annotations

import logging

import pymongo
import pytest

from avenue.db import get_mongo
from avenue.dialect import EMBEDDED, dialect_of
from avenue.status import storage
from tests.helpers import Auth, listening, make_app
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


def reporting(monkeypatch, version: str) -> None:
    """The server answers ``buildInfo`` as a mongod of ``version`` would: its own answer with
    that version and without SecantusDB's mark (what the dialect and storage-status read)."""
    command = pymongo.database.Database.command

    def answered(self, spec, *args, **kwargs):
        answer = command(self, spec, *args, **kwargs)
        if spec == "buildInfo":
            answer.pop("secantusVersion", None)
            answer.update(version=version, versionArray=[*map(int, version.split(".")), 0])
        return answer

    monkeypatch.setattr(pymongo.database.Database, "command", answered)


@pytest.mark.parametrize(("version", "warned"), [("7.0.14", True), ("8.0.16", True), ("8.0.17", False),
                                                 ("8.2.3", False)])
def test_a_mongod_below_production_s_minimum_is_warned_of_at_start_and_in_storage_status(
        secantus, db_name, monkeypatch, caplog, version, warned):
    monkeypatch.setattr(storage, "KNOWN_SECONDS", 0.0)  # this call's buildInfo, not another test's
    reporting(monkeypatch, version)
    app = make_app((pymongo.MongoClient, secantus.uri), db_name)
    try:
        with caplog.at_level(logging.INFO, logger="avenue.db"), app.app_context():
            get_mongo().ensure_indexes()
        lines = [record.msg for record in caplog.records
                 if record.name == "avenue.db" and record.levelno == logging.WARNING]
        ops = Auth(app).token("ops")
        report = app.test_client().get("/api/shop/debug/storage-status", headers=ops).get_json()
        assert report["server_version"] == version
        if not warned:
            assert lines == [] and report["server_warning"] is None
            return
        # One structured line as the process prepares the database: fields, not a sentence.
        [line] = lines
        assert line["event"] == "database server below production's minimum"
        assert (line["server_version"], line["minimum"]) == (version, "8.0.17")
        assert any("CVE-2025-14847" in reason for reason in line["reasons"])
        assert any("bulkWrite" in reason for reason in line["reasons"]) is version.startswith("7.")
        assert report["server_warning"].startswith(f"MongoDB {version} is below what production runs on")
        assert "CVE-2025-14847" in report["server_warning"] and "zlib" in report["server_warning"]
    finally:
        client = app.extensions["avenue.mongo"].client
        client.drop_database(db_name)
        client.close()


#: The keys the API's lists are sorted on first: a range bounded on both sides on one of them
#: is a window between fences (a cursor's ``after`` is a range open on one side).
LEADING_KEYS = ("uploadDate", "sku", "at", "metadata.trash.deleted_at")


def fenced_or_windowed(command: dict) -> bool:
    """Whether a command reads or writes the fences, or asks for a window of a list."""
    if "list_fences" in (str(value) for value in command.values()):
        return True
    filters = [command.get("filter"), command.get("query"),
               *(stage.get("$match") for stage in command.get("pipeline") or [] if isinstance(stage, dict))]

    def windows(condition) -> bool:
        if isinstance(condition, dict):
            for key, value in condition.items():
                bounds = set(value) if key in LEADING_KEYS and isinstance(value, dict) else set()
                if bounds & {"$gt", "$gte"} and bounds & {"$lt", "$lte"}:
                    return True
                if windows(value):
                    return True
        if isinstance(condition, list):
            return any(windows(item) for item in condition)
        return False

    return any(windows(found) for found in filters)


def test_on_the_mongod_dialect_a_list_page_a_status_call_and_a_sweep_send_no_fence_or_window(
        secantus, db_name, monkeypatch):
    """Fences and windows are the embedded database's (avenue/embedded/): a server that reports
    itself as mongod gets one cursor a page and a sweep that builds no fences."""
    from avenue.dialect import MONGOD
    from tests.helpers import form, swept

    reporting(monkeypatch, "8.0.17")
    sent = Matching(lambda event: event.database_name == db_name)
    app = make_app((listening(sent), secantus.uri), db_name)
    try:
        with app.app_context():
            get_mongo().ensure_indexes()
            assert dialect_of(get_mongo().db) == MONGOD
        auth = Auth(app)
        admin, ops, client = auth.token("admin"), auth.token("ops"), app.test_client()
        for n, name in enumerate(["alpha.png", "grayscale.jpg", "cmyk.jpg"]):
            assert client.post("/api/shop/products", headers=admin,
                               json={"sku": f"P-{n}", "name": "x", "price": 1}).status_code == 201
            uploaded = client.post("/api/builder/media", headers=admin, data=form(f"good/{name}"))
            assert uploaded.status_code == 201
        sent.commands.clear()
        first = client.get("/api/shop/products", query_string={"per_page": 2}).get_json()
        following = client.get("/api/shop/products", query_string={"per_page": 2, "after": first["next"]})
        assert [item["sku"] for item in following.get_json()["items"]] == ["P-2"]
        media = client.get("/api/builder/media", headers=admin, query_string={"per_page": 2, "page": 2})
        assert len(media.get_json()["items"]) == 1
        listing = list(sent.commands)
        sent.commands.clear()
        assert client.get("/api/shop/debug/storage-status", headers=ops).status_code == 200
        status = list(sent.commands)
        sent.commands.clear()
        assert "fences" in swept(app)
        sweeping = list(sent.commands)
        assert listing and status and sweeping
        for phase, commands in (("list page", listing), ("status call", status), ("sweep", sweeping)):
            assert [command for command in commands if fenced_or_windowed(command)] == [], phase
    finally:
        client = app.extensions["avenue.mongo"].client
        client.drop_database(db_name)
        client.close()
