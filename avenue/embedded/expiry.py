"""Expiry on the embedded database: its TTL indexes are plain indexes, and the app deletes
what has expired, through the index, once a minute.

Why (docs/production.md, "The embedded database"): the embedded database's TTL sweeper is a thread of
its own, with a WiredTiger session of its own, that every 60 s walks every document of every
collection with a TTL index under the store's one lock (``Storage.prune_ttl``: a full scan,
each document decoded). The wedges py-spy caught needed two sessions at once; make run's relay
(avenue/embedded/relay.py) leaves the connections one, and this removes the other one's work and its
minute-long scans. That the sweeper alone wedges the server is not shown (the reproduction
with a TTL index did not wedge in 120 s). It cannot be switched off from the command line
(its command does not pass ``ttl_sweep_seconds`` on), and it does nothing for a
collection without a TTL index. So on the embedded database :func:`plain_indexes` creates the
TTL indexes the app declares without ``expireAfterSeconds`` (an index already made with it is
dropped and made again), remembers each one's rule, and :func:`start_expiry` deletes
``{field: {$lt: now - seconds}}`` (and the index's partial filter), which the same index
serves, as mongod's TTL monitor does once a minute.

On MongoDB nothing changes: its TTL monitor does the work (``expireAfterSeconds`` as declared).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import IndexModel
from pymongo.collection import Collection
from pymongo.errors import OperationFailure

from avenue import background

INDEX_NOT_FOUND = 27  # MongoDB's IndexNotFound
#: How often the app's expiry runs on the embedded database (mongod's TTL monitor: 60 s).
EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class Rule:
    """One TTL index's expiry: documents whose ``field`` is a date before now - ``seconds``."""

    field: str
    seconds: float
    partial: tuple[tuple[str, Any], ...] = ()

    def query(self, now: dt.datetime) -> dict[str, Any]:
        due: dict[str, Any] = {self.field: {"$lt": now - dt.timedelta(seconds=self.seconds)}}
        return {"$and": [due, dict(self.partial)]} if self.partial else due


#: (database, collection) -> index name -> rule: what this process made plain on the embedded database.
_RULES: dict[tuple[str, str], dict[str, Rule]] = {}
_LOCK = threading.Lock()


def rule_of(document: dict[str, Any]) -> Rule | None:
    """The expiry an index document (an IndexModel's) declares, if it is a TTL index mongod
    would run: one field, not ``_id``."""
    seconds = document.get("expireAfterSeconds")
    keys = list(document["key"].items())
    if seconds is None or len(keys) != 1 or keys[0][0] == "_id":
        return None
    return Rule(keys[0][0], float(seconds), tuple(document.get("partialFilterExpression", {}).items()))


def plain_indexes(collection: Collection[Any], models: Sequence[IndexModel],
                  present: MutableMapping[str, Any]) -> list[IndexModel]:
    """``models`` with each TTL index made plain, its rule remembered for ``collection``; an
    index in ``present`` (index_information) that still expires on the server is dropped, so
    the plain one can take its name (a data folder from before this change)."""
    plain: list[IndexModel] = []
    for model in models:
        document = dict(model.document)
        rule = rule_of(document)
        if rule is None:
            plain.append(model)
            continue
        name = document.pop("name")
        document.pop("expireAfterSeconds")
        keys = list(document.pop("key").items())
        with _LOCK:
            _RULES.setdefault((collection.database.name, collection.name), {})[name] = rule
        if present.get(name, {}).get("expireAfterSeconds") is not None:
            try:
                collection.drop_index(name)
            except OperationFailure as exc:  # another worker starting dropped it first
                if exc.code != INDEX_NOT_FOUND:
                    raise
            del present[name]
        plain.append(IndexModel(keys, name=name, **document))
    return plain


def forget(database: str, collection: str, name: str) -> None:
    """An index dropped on purpose (a changed retention period): its rule goes with it."""
    with _LOCK:
        _RULES.get((database, collection), {}).pop(name, None)


def named_rules(database: str, collection: str) -> dict[str, Rule]:
    """Index name -> rule, for one collection."""
    with _LOCK:
        return dict(_RULES.get((database, collection), {}))


def rules(database: str) -> dict[str, list[Rule]]:
    """Collection -> the rules this process applies to ``database``."""
    with _LOCK:
        return {collection: list(by_name.values())
                for (db_name, collection), by_name in _RULES.items() if db_name == database and by_name}


def expire(db: Any, now: dt.datetime | None = None) -> int:
    """Delete what has expired in ``db`` under the remembered rules; how many documents."""
    now = now or dt.datetime.now(dt.UTC)
    deleted = 0
    for collection, collection_rules in rules(db.name).items():
        for rule in collection_rules:
            deleted += db[collection].delete_many(rule.query(now)).deleted_count
    return deleted


def start_expiry(mongo: Any, every: float = EVERY_SECONDS,
                 clock: Callable[[], dt.datetime] | None = None) -> background.PeriodicJob:
    """A worker's expiry job on ``mongo``'s database (avenue.db's ``Mongo``); it deletes nothing
    where no index was made plain (MongoDB, mongomock)."""
    job = background.PeriodicJob("avenue-embedded-expiry",
                                 lambda: expire(mongo.db, clock() if clock else None),
                                 every=every, first_delay=every,
                                 failure="the embedded database's expiry failed")
    job.start()
    return job
