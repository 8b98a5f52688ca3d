"""The database commands an app sends, counted by a pymongo command listener: the one counter
bench/cold_commands.py, cold_cpu.py and costs.py share (a module of its own: those run in the
app's venv, without bench/harness.py's psutil)."""

from __future__ import annotations

import threading
from typing import Any

import pymongo
from pymongo import monitoring


class CommandCounter(monitoring.CommandListener):
    """The commands by name and collection (``seen``), the handshakes, the monitors' pings and
    authentication left out; with ``threads``, only those sent from threads of these names (a
    request's and its after-answer lanes', not the app's pollers)."""

    IGNORED = frozenset({"hello", "ismaster", "isMaster", "endSessions", "ping", "saslStart", "saslContinue"})

    def __init__(self, threads: set[str] | None = None) -> None:
        self.seen: list[str] = []
        self.threads = threads

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in self.IGNORED:
            return
        if self.threads is not None and threading.current_thread().name not in self.threads:
            return
        target = event.command.get(event.command_name)
        if event.command_name == "bulkWrite":  # several collections' writes: name them all
            target = "+".join(ns["ns"].split(".", 1)[1] for ns in event.command.get("nsInfo", []))
        self.seen.append(f"{event.command_name} {target if isinstance(target, str) else ''}".strip())

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def client_class(self) -> Any:
        """A ``MONGO_CLIENT_CLASS`` whose clients report to this counter."""

        def client(*args: Any, **kwargs: Any) -> pymongo.MongoClient[Any]:
            listeners = [self, *kwargs.get("event_listeners", [])]
            return pymongo.MongoClient(*args, **{**kwargs, "event_listeners": listeners})
        return client
