"""Which server is behind a database: mongomock (the tests' in-memory one), the embedded
SecantusDB, or MongoDB. The one place the app tells them apart; where it acts differently on
one, it says why there. A foundation module (no Flask, no other avenue module), so that
avenue.indexes can ask it as avenue.db does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pymongo
from pymongo.database import Database

Document = dict[str, Any]
T = TypeVar("T")
_REMEMBERING = threading.Lock()


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


def remembered(db: Database[Document], key: str, seconds: float, ask: Callable[[], T | None]) -> T | None:
    """What ``ask()`` answered about ``db``'s server within the last ``seconds``, remembered
    on its client (as :func:`is_embedded` remembers its answer); asked again past that. A None
    answer (the server could not say) is not remembered: the next call asks again. For facts
    that change only with an upgrade, a restart or an operator's hand (a server's build, an
    index's presence), so that a status call need not send a command for each."""
    client = db.client
    held: dict[str, tuple[float, T]] = vars(client).setdefault("_avenue_remembered", {})  # see is_embedded
    now = time.monotonic()
    with _REMEMBERING:
        known = held.get(key)
    if known is not None and now - known[0] < seconds:
        return known[1]
    value = ask()
    if value is not None:
        with _REMEMBERING:
            held[key] = (now, value)
    return value
