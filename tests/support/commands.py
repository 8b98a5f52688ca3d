"""The commands an app sends to the database, recorded by a pymongo command listener."""

from __future__ import annotations

import copy
import threading

from pymongo import monitoring

QUERY_COMMANDS = {"find", "count", "aggregate", "findAndModify", "update", "delete", "distinct"}
# Fields the driver adds to a command that explain does not take.
SESSION_FIELDS = {"lsid", "$db", "$clusterTime", "txnNumber", "readConcern", "writeConcern",
                  "$readPreference", "startTransaction", "autocommit", "ordered", "cursor"}


def on_database(event, name: str) -> bool:
    """Whether a started command writes or reads database ``name``: one sent to it, or a
    ``bulkWrite`` (several collections' writes in one command, avenue/writes.py), which is
    sent to ``admin`` and names its collections in ``nsInfo``."""
    if event.command_name == "bulkWrite":
        return any(str(ns.get("ns", "")).startswith(f"{name}.") for ns in event.command.get("nsInfo", []))
    return event.database_name == name


def namespaces(command: dict) -> list[str]:
    """The collections a ``bulkWrite`` command writes, in the order of its writes (``ops``:
    ``insert``/``update``/``delete`` name an index into ``nsInfo``)."""
    spaces = [ns["ns"].split(".", 1)[1] for ns in command.get("nsInfo", [])]
    return [spaces[next(value for key, value in op.items() if key in ("insert", "update", "delete"))]
            for op in command.get("ops", [])]


class Recorder(monitoring.CommandListener):
    def __init__(self, database: str) -> None:
        self.database = database
        self.commands: list[dict] = []
        self.lock = threading.Lock()
        self.active = False

    def started(self, event) -> None:
        if self.active and event.database_name == self.database and event.command_name in QUERY_COMMANDS:
            command = {k: v for k, v in copy.deepcopy(dict(event.command)).items() if k not in SESSION_FIELDS}
            if event.command_name == "aggregate":
                command["cursor"] = {}
            with self.lock:
                self.commands.append(command)

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


class Matching(monitoring.CommandListener):
    """Every command the client starts that ``match(event)`` accepts, as sent (``commands``;
    ``count``): what a test counts of one kind (finds of a collection, change streams opened,
    inserts into a bucket's chunks)."""

    def __init__(self, match) -> None:
        self.match = match
        self.commands: list[dict] = []
        self.lock = threading.Lock()

    @property
    def count(self) -> int:
        return len(self.commands)

    def started(self, event) -> None:
        if self.match(event):
            with self.lock:
                self.commands.append(dict(event.command))

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass
