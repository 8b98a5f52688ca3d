"""Expiry of a collection's documents after a configured number of days: a TTL index whose
name carries the period (``retention_<days>d``).

A changed period drops the old index and creates the new one at the next start (no
``collMod``, which not every backend has); mongod refuses a second index on the same key, so
the old one goes first. Removal runs on the server's TTL sweep, about once a minute (where
the dialect has no TTL indexes, the app's: avenue/embedded/expiry.py).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.collection import Collection

from avenue.dialect import dialect_of
from avenue.embedded.expiry import forget
from avenue.indexes import create_missing

PREFIX = "retention_"


def ensure_retention(collection: Collection[Any], field: str, days: int, *,
                     otherwise: str | None = None) -> None:
    """Expire ``collection``'s documents ``days`` days after their ``field`` (0: keep them for
    ever; then a plain index named ``otherwise`` on ``field`` when given, for the queries that
    need one either way)."""
    wanted = f"{PREFIX}{days}d" if days > 0 else otherwise
    names = collection.index_information()
    for name in names:
        if name != wanted and (name.startswith(PREFIX) or name == otherwise):
            collection.drop_index(name)
            forget(collection.database.name, collection.name, name)
    if wanted is None:
        return
    options: dict[str, Any] = {"expireAfterSeconds": days * 86400} if days > 0 else {}
    if not dialect_of(collection.database).ttl_indexes:
        # Made plain, and expired by the app (avenue/embedded/expiry.py); create_missing
        # remembers its rule in every process that ensures it.
        create_missing(collection, [IndexModel([(field, ASCENDING)], name=wanted, **options)])
    elif wanted not in names:
        collection.create_index([(field, ASCENDING)], name=wanted, **options)
