"""Rate limits that hold across gunicorn workers and instances: counters live in MongoDB.

Flask-Limiter owns the configuration (``RATELIMIT_ENABLED``, strategy, storage) and one
``Limiter`` per app; the limits are checked explicitly where their key is known (the account
after parsing the login body, the user after authentication), so there are no route-wide
limits and no per-request cost for routes without one.

Storage: ``limits``' own MongoDB storage was tried against SecantusDB 0.7.0b3 first. Its
fixed-window counter resets through an aggregation-pipeline update comparing ``$expireAt``
with ``$$NOW``, which SecantusDB evaluates as false, so a used-up window never reopened until
the TTL sweep deleted it; its sliding-window counter fails with InternalError; its moving
window works there but not on mongomock, and it opens a second client per worker. So
:class:`MongoWindowStorage` below keeps fixed windows on the app's own client with plain
query operators only (``delete_one`` of a finished window, then an atomic upserting
``find_one_and_update`` with ``$inc``/``$setOnInsert``) plus a TTL index, which behaves the
same on mongod, SecantusDB and mongomock.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_login import current_user
from limits import parse
from limits.storage import Storage
from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from avenue.clock import as_utc
from avenue.errors import RateLimited, Unauthorized

EXTENSION = "avenue.limiter"
COLLECTION = "rate_limits"
STORAGE_URI = "avenue-mongodb://"


class MongoWindowStorage(Storage):
    """A ``limits`` fixed-window storage on the app's own MongoDB database."""

    STORAGE_SCHEME = ["avenue-mongodb"]

    def __init__(self, uri: str | None = None, *, database: Callable[[], Database],
                 wrap_exceptions: bool = False, **options) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._database = database

    @property
    def base_exceptions(self) -> type[Exception]:
        return PyMongoError

    @property
    def counters(self):
        return self._database()[COLLECTION]

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to the key's open window (a new one of ``expiry`` seconds if none)."""
        now = datetime.now(UTC)
        # A finished window starts over; the TTL index only sweeps about once a minute.
        self.counters.delete_one({"_id": key, "expireAt": {"$lte": now}})
        for _ in range(3):
            try:
                doc = self.counters.find_one_and_update(
                    {"_id": key},
                    {"$inc": {"count": amount},
                     "$setOnInsert": {"expireAt": now + timedelta(seconds=expiry)}},
                    upsert=True, return_document=ReturnDocument.AFTER,
                )
                if doc is None:
                    # The embedded server can answer an upsert that raced another worker's
                    # with no document (mongod never does): the update was applied, so read
                    # the window back rather than count this hit twice.
                    doc = self.counters.find_one({"_id": key})
                if doc is not None:
                    return int(doc["count"])
            except DuplicateKeyError:
                # Another worker opened the window between our find and insert: count in it.
                continue
        raise RuntimeError(f"could not update the rate limit counter {key!r}")

    def _open(self, key: str) -> dict | None:
        return self.counters.find_one({"_id": key, "expireAt": {"$gt": datetime.now(UTC)}})

    def get(self, key: str) -> int:
        """The count in the key's open window (0 when none is open)."""
        doc = self._open(key)
        return int(doc["count"]) if doc else 0

    def get_expiry(self, key: str) -> float:
        """When the key's open window ends, as a UNIX time (now when none is open)."""
        doc = self._open(key)
        if not doc:
            return time.time()
        return as_utc(doc["expireAt"]).timestamp()

    def check(self) -> bool:
        """Whether the database answers."""
        try:
            self._database().command("ping")
        except PyMongoError:
            return False
        return True

    def reset(self) -> int | None:
        """Forget every counter."""
        return self.counters.delete_many({}).deleted_count

    def clear(self, key: str) -> None:
        """Forget one key's counter."""
        self.counters.delete_one({"_id": key})


def init_app(app: Flask) -> None:
    """Attach this app's Limiter; ``RATELIMIT_ENABLED=False`` turns every limit off."""
    from avenue.db import get_mongo

    for name in ("AVENUE_LOGIN_RATE_LIMIT", "AVENUE_UPLOAD_RATE_LIMIT"):
        try:
            parse(app.config[name])
        except ValueError as exc:
            raise RuntimeError(f"{name} must look like '10/minute', got {app.config[name]!r}") from exc
    limiter = Limiter(
        key_func=lambda: request.remote_addr or "unknown",
        storage_uri=STORAGE_URI,
        storage_options={"database": lambda: get_mongo(app).db},
        strategy="fixed-window",
    )
    # No route-wide limits: every limit is a named check below, made where its key is known.
    limiter.request_filter(lambda: True)
    limiter.init_app(app)
    app.extensions[EXTENSION] = limiter


def hit(scope: str, limit: str, key: str) -> None:
    """Count one request for ``key`` against ``limit``; 429 with Retry-After once used up."""
    limiter: Limiter | None = current_app.extensions.get(EXTENSION)
    if limiter is None or not limiter.enabled:
        return
    item = parse(limit)
    strategy = limiter.limiter
    if strategy.hit(item, scope, key):
        return
    reset_at, _ = strategy.get_window_stats(item, scope, key)
    retry_after = max(1, math.ceil(reset_at - time.time()))
    raise RateLimited(f"Too many requests: the limit is {limit}. Try again in {retry_after} s.",
                      retry_after=retry_after, limit=limit)


def limit_login(email: str) -> None:
    """Count a login attempt per client address and per account (known or not)."""
    limit = current_app.config["AVENUE_LOGIN_RATE_LIMIT"]
    hit("login-ip", limit, request.remote_addr or "unknown")
    # Hashed: the counters collection need not hold email addresses.
    hit("login-account", limit, hashlib.sha256(email.encode()).hexdigest())


def limit_uploads(view: Callable) -> Callable:
    """Decorate an upload view (below ``@require_role``): uploads are limited per user."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            raise Unauthorized("Log in or send an API token to do this.")
        hit("uploads", current_app.config["AVENUE_UPLOAD_RATE_LIMIT"], current_user.id)
        return view(*args, **kwargs)

    return wrapped
