"""The database's dialect (avenue/dialect.py): which kind of server is detected, the rules of
each kind, the docs' table equal to them, and no other module telling servers apart."""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from pathlib import Path

import mongomock
import pymongo
import pytest
from pymongo.errors import PyMongoError, ServerSelectionTimeoutError

from avenue import dialect
from avenue.dialect import (
    DIALECTS,
    EMBEDDED,
    MONGOD,
    MONGOMOCK,
    REPLICA_SET,
    SHARDED,
    Dialect,
    below_minimum,
    choose,
    dialect_of,
    server_commands,
    threads_safe,
)

ROOT = Path(__file__).resolve().parents[2]
MONGOD_BUILD = {"version": "8.0.4", "ok": 1.0}
EMBEDDED_BUILD = {"version": "8.2.0", "secantusVersion": "0.7.0b3", "ok": 1.0}


@pytest.mark.parametrize(("topology", "servers", "expected"), [
    ("Single", ["Standalone"], MONGOD),
    ("ReplicaSetWithPrimary", ["RSPrimary", "RSSecondary"], REPLICA_SET),
    ("ReplicaSetNoPrimary", ["RSSecondary"], REPLICA_SET),
    ("Single", ["RSPrimary"], REPLICA_SET),  # directConnection=true to a member
    ("Sharded", ["Mongos", "Mongos"], SHARDED),
    ("Single", ["Mongos"], SHARDED),
    ("LoadBalanced", ["LoadBalancer"], SHARDED),
])
def test_a_mongod_s_dialect_is_its_topology(topology, servers, expected):
    assert choose(MONGOD_BUILD, topology, servers) is expected


@pytest.mark.parametrize(("topology", "servers"), [("Single", ["Standalone"]), ("Single", ["RSPrimary"]),
                                                   ("ReplicaSetWithPrimary", ["RSPrimary"])])
def test_secantusdb_is_known_by_its_build_whatever_its_topology(topology, servers):
    # make run's server is standalone; the benchmarks' and a change stream's test a replica set.
    assert choose(EMBEDDED_BUILD, topology, servers) is EMBEDDED


@pytest.mark.parametrize(("topology", "servers", "kind"), [
    ("Single", ["Standalone"], MONGOD), ("ReplicaSetWithPrimary", ["RSPrimary"], REPLICA_SET),
    ("Sharded", ["Mongos"], SHARDED)])
def test_a_mongod_before_8_writes_each_collection_in_a_command_of_its_own(topology, servers, kind):
    # MongoDB 8.0 brought the bulkWrite command (several collections' writes in one).
    for build in ({"version": "7.0.14", "ok": 1.0}, {"versionArray": [6, 0, 3, 0], "version": "6.0.3"}):
        older = choose(build, topology, servers)
        assert not older.cross_collection_writes and older.name == f"{kind.name} before 8.0"
        assert {**older.rules(), "cross_collection_writes": True} == kind.rules()
    assert choose({"version": "8.2.1", "ok": 1.0}, topology, servers).cross_collection_writes


@pytest.mark.parametrize(("version", "leaks", "no_bulk_write"), [
    ("4.2.25", True, True), ("6.0.26", True, True), ("7.0.14", True, True), ("7.0.28", False, True),
    ("8.0.0-rc3", True, False), ("8.0.16", True, False), ("8.1.2", True, False), ("8.2.2", True, False)])
def test_a_mongod_below_production_s_minimum_says_why(version, leaks, no_bulk_write):
    below = below_minimum({"version": version, "ok": 1.0})
    assert below is not None and (below.version, below.minimum) == (version, "8.0.17")
    assert any("CVE-2025-14847" in reason for reason in below.reasons) is leaks
    assert any("bulkWrite" in reason for reason in below.reasons) is no_bulk_write
    assert below.sentence().startswith(f"MongoDB {version} is below what production runs on "
                                       "(8.0.17 or later, 8.2.3 or later on 8.2: docs/production.md): ")


@pytest.mark.parametrize("build", [
    {"version": "8.0.17"}, {"version": "8.0.23"}, {"version": "8.2.3"}, {"version": "8.3.1"},
    {"versionArray": [9, 0, 0, 0], "version": "9.0.0"},
    # SecantusDB reports the MongoDB it imitates (8.2.0 < 8.2.3): not mongod's code, nor production's.
    {**EMBEDDED_BUILD, "version": "8.2.0"},
    {"ok": 1.0}, None])  # no version said, or no buildInfo at all (mongomock)
def test_a_current_mongod_the_embedded_database_or_no_version_is_not_warned_of(build):
    assert below_minimum(build) is None


def test_mongomock_s_dialect_is_known_without_a_command():
    db = mongomock.MongoClient()["avenue"]
    assert dialect_of(db) is MONGOMOCK
    assert not threads_safe(db) and not server_commands(db)


def unreachable() -> pymongo.MongoClient:
    # Port 9 (discard) on loopback: nothing answers (and never connected: connect=False).
    return pymongo.MongoClient("mongodb://127.0.0.1:9/?directConnection=true", connect=False,
                               serverSelectionTimeoutMS=50)


def test_a_server_that_cannot_be_asked_raises_as_the_operation_it_precedes_would(monkeypatch):
    def no_server(self, *args, **kwargs):
        raise ServerSelectionTimeoutError("127.0.0.1:9: connection refused")

    monkeypatch.setattr(pymongo.database.Database, "command", no_server)  # without waiting for it
    client = unreachable()
    try:
        with pytest.raises(PyMongoError):
            dialect_of(client["avenue"])
        # What the client itself decides is known all the same: a status call during an
        # outage answers from what it held instead of waiting on a detection.
        assert threads_safe(client["avenue"]) and server_commands(client["avenue"])
    finally:
        client.close()


def test_the_dialect_is_detected_once_per_client_and_remembered_on_it():
    client = unreachable()
    try:
        client._avenue_dialect = EMBEDDED  # as dialect_of leaves it after its one buildInfo
        assert dialect_of(client["avenue"]) is EMBEDDED  # not asked again: the server is unreachable
        assert dialect_of(client["other"]) is EMBEDDED  # one client, one server: every database
    finally:
        client.close()


def test_every_mongod_topology_has_mongod_s_rules():
    assert REPLICA_SET.rules() == MONGOD.rules() == SHARDED.rules()
    assert MONGOD == Dialect(name="mongod", ttl_indexes=True, write_batch=None, deletions_stream=True,
                             whole_collection_reads=True,
                             concurrent_operations=True, threads_safe=True, server_commands=True,
                             db_stats=True, cross_collection_writes=True)


def test_the_embedded_database_s_rules():
    assert EMBEDDED.rules() == {"ttl_indexes": False, "write_batch": 4, "deletions_stream": False,
                                "whole_collection_reads": False,
                                "concurrent_operations": False, "threads_safe": True,
                                "server_commands": True, "db_stats": False,
                                "cross_collection_writes": True}


def test_mongomock_differs_from_mongod_only_in_what_an_in_process_database_cannot_do():
    differ = {rule for rule, value in MONGOMOCK.rules().items() if MONGOD.rules()[rule] != value}
    assert differ == {"threads_safe", "server_commands", "concurrent_operations", "cross_collection_writes"}


def test_every_rule_is_documented_where_it_is_declared():
    source = Path(dialect.__file__).read_text()
    for rule in (field.name for field in fields(Dialect)):
        assert re.search(rf"#: .*\n(?:    #:.*\n)*    {rule}: ", source), f"{rule} has no comment saying why"


def _table() -> dict[str, list[str]]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## The database's dialect", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| `")]
    return {row[0].strip("| `"): row[1:4] for row in rows}


def _says(cell: str, value: object) -> bool:
    """Whether a table cell states ``value``: yes/no for a flag, the number for a count."""
    if isinstance(value, bool):
        return cell.startswith("yes" if value else "no")
    if value is None:
        return cell.startswith("all")
    return cell.startswith(str(value))


def test_the_docs_table_states_every_rule_as_the_code_does():
    table = _table()
    rules = [field.name for field in fields(Dialect) if field.name != "name"]
    assert sorted(table) == sorted(rules)
    for rule in rules:
        mongod, embedded, mock = table[rule]
        for cell, kind in ((mongod, MONGOD), (embedded, EMBEDDED), (mock, MONGOMOCK)):
            assert _says(cell, getattr(kind, rule)), f"architecture.md: {rule} on {kind.name} says {cell!r}"


def test_the_dialects_are_one_per_kind_of_server():
    assert len({kind.name for kind in DIALECTS}) == len(DIALECTS) == 5


# What tells one server from another: only the dialect module may spell these.
TELLING = {"is_embedded", "is_mongomock", "_avenue_dialect", dialect.EMBEDDED_MARK}


def telling_apart(source: str) -> list[tuple[int, str]]:
    """Where ``source`` tells servers apart itself: calls or names in :data:`TELLING`, the
    build's mark as a string, a client's class module compared with ``"mongomock"``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and node.id in TELLING:
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute) and node.attr in TELLING:
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.alias) and node.name in TELLING:
            found.append((getattr(node, "lineno", 0), node.name))
        elif isinstance(node, ast.Constant) and node.value in TELLING:
            found.append((node.lineno, str(node.value)))
        elif isinstance(node, ast.Compare) and "mongomock" in [
                part.value for part in (node.left, *node.comparators) if isinstance(part, ast.Constant)]:
            found.append((node.lineno, "== 'mongomock'"))
    return found


def test_the_checker_finds_the_ways_servers_were_told_apart():
    before = ('from avenue.servers import is_embedded\n'
              'if is_embedded(db): pass\n'
              'if "secantusVersion" in build: pass\n'
              'if type(client).__module__.split(".")[0] == "mongomock": pass\n')
    assert sorted(telling_apart(before)) == [(1, "is_embedded"), (2, "is_embedded"), (3, "secantusVersion"),
                                             (4, "== 'mongomock'")]


def test_only_the_dialect_module_tells_servers_apart():
    found = [f"{path.relative_to(ROOT)}:{line} {name}"
             for path in sorted((ROOT / "avenue").rglob("*.py")) if path.name != "dialect.py" or
             path.parent.name != "avenue"
             for line, name in telling_apart(path.read_text())]
    assert found == [], "ask the dialect's rule (avenue/dialect.py: dialect_of(db).<rule>) instead"
