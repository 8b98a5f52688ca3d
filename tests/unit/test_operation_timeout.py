"""How long the app waits for the database's answer (MONGO_SOCKET_TIMEOUT_MS): what the client
is given, the CLI commands that run without it, and a timed-out operation answered as the
database being unavailable."""

from __future__ import annotations

import click
import mongomock
import pymongo
from pymongo import _csot
from pymongo.errors import ExecutionTimeout, OperationFailure

from avenue import without_request_deadline
from avenue.db import LONG_OPERATION_SECONDS, operation_timeout
from tests.helpers import make_app

URI = "mongodb://db1,db2,db3/?replicaSet=rs0"
CONFIG = {"MONGO_URI": URI, "MONGO_SOCKET_TIMEOUT_MS": 30000}


def test_the_client_waits_for_an_answer_as_long_as_the_setting_says():
    assert operation_timeout(CONFIG) == {"socketTimeoutMS": 30000}
    client = pymongo.MongoClient(URI, connect=False, **operation_timeout(CONFIG))
    try:
        assert client.options.pool_options.socket_timeout == 30
    finally:
        client.close()


def test_zero_means_no_limit_and_a_timeout_in_the_uri_wins():
    assert operation_timeout({**CONFIG, "MONGO_SOCKET_TIMEOUT_MS": 0}) == {}
    assert operation_timeout({**CONFIG, "MONGO_URI": URI + "&socketTimeoutMS=5000"}) == {}
    assert operation_timeout({**CONFIG, "MONGO_URI": URI + "&timeoutMS=5000"}) == {}


def test_a_cli_command_runs_under_the_long_deadline_not_a_requests():
    seen = []
    probe = click.Command("probe", callback=lambda: seen.append(_csot.get_timeout()))
    command = without_request_deadline(probe)
    command.main([], standalone_mode=False)
    assert seen == [LONG_OPERATION_SECONDS]


def test_every_registered_command_runs_under_the_long_deadline():
    app = make_app((mongomock.MongoClient, "mongodb://localhost"), "avenue_cli")

    def leaves(command):
        if isinstance(command, click.Group):
            for sub in command.commands.values():
                yield from leaves(sub)
        else:
            yield command

    commands = [leaf for command in app.cli.commands.values() for leaf in leaves(command)]
    assert len(commands) > 5
    assert all(getattr(leaf.callback, "long_operations", False) for leaf in commands), [
        leaf.name for leaf in commands if not getattr(leaf.callback, "long_operations", False)]


def test_an_operation_past_its_time_or_a_server_in_trouble_answers_503_and_any_other_database_error_500(
        own_routes):
    app = make_app((mongomock.MongoClient, "mongodb://localhost"), "avenue_timeouts")
    errors = {"timed-out": ExecutionTimeout("operation exceeded time limit", 50),
              "failed": OperationFailure("something else", 2),
              # What SecantusDB answered every write once its disk was full.
              "disk-full": OperationFailure("internal server error", 1),
              "out-of-disk": OperationFailure("No space left on device", 14031),
              "shutting-down": OperationFailure("interrupted at shutdown", 11600)}

    def fail(kind):
        raise errors[kind]

    app.add_url_rule("/api/probe/<kind>", view_func=fail)
    client = app.test_client()
    timed_out = client.get("/api/probe/timed-out")
    assert timed_out.status_code == 503 and timed_out.get_json()["error"]["code"] == "database_unavailable"
    assert timed_out.headers["Retry-After"] == "5"
    failed = client.get("/api/probe/failed")
    assert failed.status_code == 500 and failed.get_json()["error"]["code"] == "internal_error"
    for kind in ("disk-full", "out-of-disk", "shutting-down"):
        troubled = client.get(f"/api/probe/{kind}")
        assert troubled.status_code == 503, kind
        assert troubled.get_json()["error"]["code"] == "database_unavailable"
        assert troubled.headers["Retry-After"] == "5"
