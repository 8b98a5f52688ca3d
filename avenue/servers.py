"""Which server is behind a database: mongomock (the tests' in-memory one), the embedded
SecantusDB, or MongoDB. The one place the app tells them apart; where it acts differently on
one, it says why there. A foundation module (no Flask, no other avenue module), so that
avenue.indexes can ask it as avenue.db does."""

from __future__ import annotations

from typing import Any

import pymongo
from pymongo.database import Database

Document = dict[str, Any]


def is_mongomock(db: Database[Document]) -> bool:
    """Whether ``db`` is mongomock's, the tests' in-memory database: the one place the app
    tells it apart (it has no server commands, no change streams, and is not thread-safe)."""
    return type(db.client).__module__.split(".", 1)[0] == "mongomock"


def threads_safe(db: Database[Document]) -> bool:
    """Whether ``db`` may be used from several threads at once: every real server's client
    may; mongomock's may not, so work that would run beside a request runs inline there."""
    return not is_mongomock(db)


def is_embedded(db: Database[Document]) -> bool:
    """Whether ``db``'s server is the embedded SecantusDB (its ``buildInfo`` carries
    ``secantusVersion``); asked once per client and remembered on it. Where the app acts
    differently there, it says why (docs/production.md, "The embedded database"). mongomock is
    not; a server that cannot be asked raises ``PyMongoError``, as the operation it precedes would."""
    client = db.client
    if is_mongomock(db):
        return False
    known = vars(client).get("_avenue_embedded")  # not getattr: a client's attributes are its databases
    if known is None:
        with pymongo.timeout(5.0):
            known = "secantusVersion" in client.admin.command("buildInfo")
        client._avenue_embedded = known  # type: ignore[attr-defined]
    return bool(known)
