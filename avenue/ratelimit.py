"""Rate limits that hold across gunicorn workers and instances: counters live in MongoDB.

Flask-Limiter owns the configuration (``RATELIMIT_ENABLED``, strategy, storage) and one
``Limiter`` per app; the limits are checked explicitly where their key is known (the account
after parsing the login body, the user after authentication), so there are no route-wide
limits and no per-request cost for routes without one.

Storage: ``limits``' own MongoDB storage was tried against the embedded database first. Its
fixed-window counter resets through an aggregation-pipeline update comparing ``$expireAt``
with ``$$NOW``, which the embedded database evaluates as false, so a used-up window never reopened until
the TTL sweep deleted it; its sliding-window counter fails with InternalError; its moving
window works there but not on mongomock, and it opens a second client per worker. So
:class:`MongoWindowStorage` below keeps fixed windows on the app's own client with plain
query operators only (an atomic ``$inc`` on the open window, else ``delete_one`` of a finished
one and an ``insert_one`` that exactly one racing hit wins) plus a TTL index, which behaves the
same on mongod, the embedded database and mongomock.

The limits of unsigned cold renders (:func:`cold_render_gate`) count outside ``limits``'
windows: :class:`WindowGroup` counts every window of a key (an address's minute and hour) in
one document on windows aligned to the clock, where ``limits`` took a command per window and
three to open one; the address's and the instance's documents are counted in one ``update``
command (:func:`hit_all`), which a cold rendition pays before its render; where the dialect
takes several collections' writes in one command, the render's claim goes in that same
command, after the hits (:func:`cold_render_gate`).

Durability: the counters are written with :data:`COUNTER_WRITES` (``w: 1``, no journal wait),
not the app's ``w: majority, j: true`` (avenue/db.py ``durability``). A count a crash or a
failover loses lets a few more attempts through once; waiting for the journal cost each hit
a log sync (3.9 ms against 1.6 ms a ``findAndModify`` on the embedded database, twice its CPU),
and a cold rendition pays three hits before its render. The counters stay on the primary,
shared by every worker and instance.
"""

from __future__ import annotations

import functools
import hashlib
import math
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_login import current_user
from limits import RateLimitItem, parse_many
from limits.storage import Storage
from pymongo import ReturnDocument, UpdateOne, WriteConcern
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from avenue import writes
from avenue.clock import as_utc
from avenue.db import DUPLICATE_KEY, Document, duplicate_key_write
from avenue.dialect import dialect_of
from avenue.errors import RateLimited, Unauthorized
from avenue.writes import Write, write_together

EXTENSION = "avenue.limiter"
COLLECTION = "rate_limits"
STORAGE_URI = "avenue-mongodb://"
#: How counters are written: acknowledged by the primary, not waiting for the journal or a
#: majority (see the module doc).
COUNTER_WRITES = WriteConcern(w=1, j=False)


class MongoWindowStorage(Storage):
    """A ``limits`` fixed-window storage on the app's own MongoDB database."""

    STORAGE_SCHEME = ["avenue-mongodb"]

    def __init__(self, uri: str | None = None, *, database: Callable[[], Database[Document]],
                 wrap_exceptions: bool = False, **options: float | str | bool) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._database = database

    @property
    def base_exceptions(self) -> type[Exception]:
        return PyMongoError

    @property
    def counters(self) -> Collection[Document]:
        return self._database().get_collection(COLLECTION, write_concern=COUNTER_WRITES)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to the key's open window (a new one of ``expiry`` seconds if none).

        Exact under concurrency: the count comes back from an atomic ``$inc`` on an existing
        window, or from the one insert that opened it. (An upserting update was used before:
        the embedded database can answer an upsert that raced another with no document, and reading the
        window back then returned a count two hits shared.)
        """
        for _ in range(5):
            now = datetime.now(UTC)
            doc = self.counters.find_one_and_update(
                {"_id": key, "expireAt": {"$gt": now}}, {"$inc": {"count": amount}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                return int(doc["count"])
            # No open window. A finished one starts over (the TTL index only sweeps about once a
            # minute); then exactly one of the hits racing here opens the new window.
            self.counters.delete_one({"_id": key, "expireAt": {"$lte": now}})
            try:
                self.counters.insert_one({"_id": key, "count": amount,
                                          "expireAt": now + timedelta(seconds=expiry)})
            except DuplicateKeyError:
                continue  # another hit opened it first: count in it
            return amount
        raise RuntimeError(f"could not update the rate limit counter {key!r}")

    def _open(self, key: str) -> dict[str, Any] | None:
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

    for name in LIMIT_SETTINGS:
        try:
            parse_many(app.config[name])
        except ValueError as exc:
            raise RuntimeError(f"{name} must look like '10/minute' or '10/minute;30/hour', "
                               f"got {app.config[name]!r}") from exc
    limiter = Limiter(
        key_func=lambda: request.remote_addr or "unknown",
        storage_uri=STORAGE_URI,
        # limits hands the options to the storage's constructor as they are: a callable here
        # (its types allow only numbers and strings).
        storage_options={"database": lambda: get_mongo(app).db},  # type: ignore[dict-item]
        strategy="fixed-window",
    )
    # No route-wide limits: every limit is a named check below, made where its key is known.
    limiter.request_filter(lambda: True)
    limiter.init_app(app)
    app.extensions[EXTENSION] = limiter


LIMIT_SETTINGS = ("AVENUE_LOGIN_RATE_LIMIT", "AVENUE_LOGIN_ACCOUNT_LIMIT",
                  "AVENUE_LOGIN_ADDRESS_LIMIT", "AVENUE_UPLOAD_RATE_LIMIT", "AVENUE_UPLOAD_LINK_GUESS_LIMIT",
                  "AVENUE_RENDER_ADDRESS_LIMIT", "AVENUE_RENDER_INSTANCE_LIMIT",
                  "AVENUE_URL_IMPORT_RATE_LIMIT")
#: What the per-instance limit of cold renders counts under: this host (its workers share it).
INSTANCE = socket.gethostname() or "instance"


def _limiter() -> Limiter | None:
    limiter: Limiter | None = current_app.extensions.get(EXTENSION)
    return limiter if limiter is not None and limiter.enabled else None


def _refuse(limiter: Limiter, item: RateLimitItem, scope: str, key: str, message: str) -> None:
    reset_at, _ = limiter.limiter.get_window_stats(item, scope, key)
    retry_after = max(1, math.ceil(reset_at - time.time()))
    raise RateLimited(f"{message} Try again in {retry_after} s.", retry_after=retry_after,
                      limit=str(item))


def hit(scope: str, limit: str, key: str, message: str = "") -> None:
    """Count one request for ``key`` against ``limit`` (every window of it); 429 with
    Retry-After once one is used up (``message`` saying why, else the limit)."""
    limiter = _limiter()
    if limiter is None:
        return
    for item in parse_many(limit):
        if not limiter.limiter.hit(item, scope, key):
            _refuse(limiter, item, scope, key, message or f"Too many requests: the limit is {limit}.")


class LoginThrottle:
    """Failed logins, counted so that nobody can lock an account's owner out.

    Only failures count (a correct password costs nothing), in three places:

    - per account *and* client address (``AVENUE_LOGIN_RATE_LIMIT``, tight, in stepped
      windows such as ``10/minute;30/hour``: the back-off, a longer wait once the short
      windows keep filling up);
    - per client address over all accounts (``AVENUE_LOGIN_ADDRESS_LIMIT``: one address
      trying many accounts);
    - per account over all addresses (``AVENUE_LOGIN_ACCOUNT_LIMIT``, loose): once used up,
      only addresses that already failed on this account are refused. An address with no
      failure for the account, the owner's, still gets its attempt checked.

    A success clears that account-and-address pair. Checked before the password is hashed,
    so a refused attempt costs no hashing. The check and the count are two steps: requests
    running at the same moment can each pass the check, so a burst may get as many extra
    attempts as it has requests in flight (bounded by the workers' threads), once per window.
    """

    def __init__(self, limiter: Limiter, email: str, address: str) -> None:
        self.limiter = limiter
        config = current_app.config
        # Hashed: the counters collection need not hold email addresses.
        account = hashlib.sha256(email.encode()).hexdigest()
        self.pair = ("login-pair", parse_many(config["AVENUE_LOGIN_RATE_LIMIT"]), f"{account}|{address}")
        self.address = ("login-address", parse_many(config["AVENUE_LOGIN_ADDRESS_LIMIT"]), address)
        self.account = ("login-account", parse_many(config["AVENUE_LOGIN_ACCOUNT_LIMIT"]), account)

    def _used_up(self, counter: tuple[str, list[RateLimitItem], str]) -> RateLimitItem | None:
        scope, items, key = counter
        return next((item for item in items if not self.limiter.limiter.test(item, scope, key)), None)

    def _has_failed_here(self) -> bool:
        scope, items, key = self.pair
        return any(self.limiter.limiter.get_window_stats(item, scope, key).remaining < item.amount
                   for item in items)

    def check(self) -> None:
        """Refuse (429) before any hashing when this attempt may not be made now."""
        for counter, message in ((self.pair, "Too many failed logins for this account from your address."),
                                 (self.address, "Too many failed logins from your address.")):
            item = self._used_up(counter)
            if item is not None:
                _refuse(self.limiter, item, counter[0], counter[2], message)
        item = self._used_up(self.account)
        if item is not None and self._has_failed_here():
            _refuse(self.limiter, item, self.account[0], self.account[2],
                    "Too many failed logins for this account.")

    def failed(self) -> None:
        """Count a wrong password (or unknown account) in every window."""
        for scope, items, key in (self.pair, self.address, self.account):
            for item in items:
                self.limiter.limiter.hit(item, scope, key)

    def succeeded(self) -> None:
        """The owner got in: this pair's failures are forgiven."""
        scope, items, key = self.pair
        for item in items:
            self.limiter.limiter.clear(item, scope, key)


class _Unlimited:
    def check(self) -> None:
        pass

    def failed(self) -> None:
        pass

    def succeeded(self) -> None:
        pass


def login_throttle(email: str) -> LoginThrottle | _Unlimited:
    """The throttle for a login attempt on ``email`` from this request's trusted address."""
    limiter = _limiter()
    if limiter is None:
        return _Unlimited()
    return LoginThrottle(limiter, email, request.remote_addr or "unknown")


_P = ParamSpec("_P")
_R = TypeVar("_R")


def limit_uploads(view: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorate an upload view (below ``@require_role``): uploads are limited per user."""

    @functools.wraps(view)
    def wrapped(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if not current_user.is_authenticated:
            raise Unauthorized("Log in or send an API token to do this.")
        hit("uploads", current_app.config["AVENUE_UPLOAD_RATE_LIMIT"], current_user.id)
        return view(*args, **kwargs)

    return wrapped


class FailureThrottle:
    """Failures counted per client address in one scope (a guessed upload-link secret): checked
    before the work a failure would cost, counted only when it fails, so a caller that holds a
    real secret is never slowed by it. Like :class:`LoginThrottle`, the check and the count
    are two steps: a burst gets at most its requests in flight extra, once per window."""

    def __init__(self, limiter: Limiter, scope: str, limit: str, key: str) -> None:
        self.limiter, self.scope, self.items, self.key = limiter, scope, parse_many(limit), key
        self.limit = limit

    def check(self) -> None:
        """429 with Retry-After while this address has used up its failures."""
        for item in self.items:
            if not self.limiter.limiter.test(item, self.scope, self.key):
                _refuse(self.limiter, item, self.scope, self.key,
                        f"Too many failed attempts from your address (the limit is {self.limit}).")

    def failed(self) -> None:
        for item in self.items:
            self.limiter.limiter.hit(item, self.scope, self.key)


def failure_throttle(scope: str, setting: str) -> FailureThrottle | _Unlimited:
    """The throttle of ``scope``'s failures from this request's trusted address, by the limit
    the configuration names ``setting``."""
    limiter = _limiter()
    if limiter is None:
        return _Unlimited()
    return FailureThrottle(limiter, scope, current_app.config[setting], request.remote_addr or "unknown")


class WindowGroup:
    """The windows of one limit that one document counts in a single command (the cold
    render gate's: :func:`cold_render_gate`), instead of one ``limits`` window each.

    Windows are aligned to the clock (window ``i`` of ``s`` seconds is ``[i*s, (i+1)*s)``), so
    a window of a length that divides the longest one's (a minute in an hour) lies inside one
    of the longest's windows; one document per key and longest window holds a count per
    window (``w<seconds>_<index>``: at most 60 minutes' fields in an hour's document) and
    expires with the longest window (the TTL index on ``expireAt``). A hit is one upserting
    update (:meth:`update`; :func:`hit_all` sends several groups' in one command): ``$inc`` on
    every window, filtered on each being under its limit, with upsert (the first hit of a
    window opens the document in that same command). A hit past a limit matches nothing and
    its upsert hits the ``_id``: refused, and counted nowhere (a refused render costs nothing,
    so it does not use up a longer window either; with one ``limits`` window per command it
    was counted in the windows before the refusing one).
    A window whose length does not divide the longest's gets a group of its own.
    """

    def __init__(self, scope: str, items: list[RateLimitItem]) -> None:
        self.scope = scope
        self.items = sorted(items, key=lambda item: -item.get_expiry())

    @staticmethod
    def of(scope: str, limit: str) -> list[WindowGroup]:
        """``limit``'s windows in as few groups as nest (one for ``60/minute;600/hour``)."""
        groups: list[list[RateLimitItem]] = []
        for item in sorted(parse_many(limit), key=lambda item: -item.get_expiry()):
            home = next((group for group in groups if group[0].get_expiry() % item.get_expiry() == 0), None)
            if home is None:
                groups.append([item])
            else:
                home.append(item)
        return [WindowGroup(scope, group) for group in groups]

    def update(self, key: str, moment: float) -> UpdateOne:
        """The one upserting update that counts a hit for ``key`` at UNIX time ``moment`` in
        every window of the group, matching only while each is under its limit."""
        hit = self.counting(key, moment)
        return UpdateOne(hit.filter or {}, hit.update or {}, upsert=True)

    def counting(self, key: str, moment: float) -> Write:
        """:meth:`update` as a write of the counters' collection (``avenue.writes``), to send
        with another collection's."""
        fields = self.fields(moment)
        under = {field: {"$not": {"$gte": item.amount}} for item, field in fields.items()}
        longest = self.items[0].get_expiry()
        ends = datetime.fromtimestamp((moment // longest + 1) * longest, UTC)
        counted = {"$inc": dict.fromkeys(fields.values(), 1), "$setOnInsert": {"expireAt": ends}}
        return writes.update_one(COLLECTION, {"_id": self.doc_id(key, moment), **under}, counted, upsert=True)

    def fields(self, moment: float) -> dict[RateLimitItem, str]:
        return {item: f"w{item.get_expiry()}_{int(moment // item.get_expiry())}" for item in self.items}

    def doc_id(self, key: str, moment: float) -> str:
        longest = self.items[0].get_expiry()
        return f"{self.scope}/{key}/{longest}/{int(moment // longest)}"

    def full(self, counters: Collection[Document], key: str, moment: float) -> RateLimitItem | None:
        """The group's window that is used up for ``key`` at ``moment`` (read), else None."""
        doc = counters.find_one({"_id": self.doc_id(key, moment)}) or {}
        return next((item for item, field in self.fields(moment).items() if doc.get(field, 0) >= item.amount),
                    None)

    def hit(self, counters: Collection[Document], key: str, moment: float) -> RateLimitItem | None:
        """Count one hit for ``key`` at UNIX time ``moment``; the window that refused it (not
        counted), else None (:func:`hit_all` of this group alone)."""
        refused = hit_all(counters, [(self, key)], moment)
        return None if refused is None else refused[1]

    def refusal(self, item: RateLimitItem, moment: float, message: str) -> RateLimited:
        """The 429 of a hit ``item``'s window refused at ``moment``: retry once it ends."""
        seconds = item.get_expiry()
        retry_after = max(1, math.ceil((moment // seconds + 1) * seconds - moment))
        return RateLimited(f"{message} Try again in {retry_after} s.", retry_after=retry_after,
                           limit=str(item))


def hit_all(counters: Collection[Document], hits: list[tuple[WindowGroup, str]],
            moment: float, then: Write | None = None) -> tuple[WindowGroup, RateLimitItem] | None:
    """Count one hit at UNIX time ``moment`` for each ``(group, key)`` of ``hits``, in order,
    in one ``update`` command (an ordered bulk write of the groups' upserting updates). The first
    group whose window is used up stops the rest: it and the groups after it are not counted
    (those before it are, as when each was a command of its own); answered as that group and
    window, else None. A hit past a limit matches nothing and its upsert hits the ``_id``
    (E11000): then the document is read to tell a used-up window from a race lost to the
    document's first insert (not full: counted again from that group on).

    ``then``: a write of another collection sent after the hits in the same command
    (``avenue.writes``; a rendition's claim), made only if none is refused: written when this
    returns None; its own refusal by a unique index raises ``DuplicateKeyError`` (the hits
    counted). The caller sends it so only where the dialect takes several collections'
    writes in one command (:func:`carries`)."""
    left = list(hits)
    for _ in range(5 * len(hits) + 1):
        if not left and then is None:
            return None  # nothing to count and nothing to carry (with ``then``: it alone)
        try:
            if then is None:
                counters.bulk_write([group.update(key, moment) for group, key in left], ordered=True)
            else:
                write_together(counters.database,
                               [*(group.counting(key, moment) for group, key in left), then],
                               write_concern=counters.write_concern)
            return None
        except BulkWriteError as error:
            refused_write = duplicate_key_write(error)
            if refused_write is None:
                raise
            index = int(refused_write.get("index", 0))
            if index == len(left):  # ``then``'s own: the hits were counted
                raise DuplicateKeyError(str(refused_write.get("errmsg")), DUPLICATE_KEY,
                                        refused_write) from error
            group, key = left[index]
            refused = group.full(counters, key, moment)
            if refused is not None:
                return group, refused
            left = left[index:]  # the ones before it were counted; a racing insert: again
    raise RuntimeError(f"could not count the hits {[group.doc_id(key, moment) for group, key in hits]!r}")


def carries(counters: Collection[Document]) -> bool:
    """Whether the hits on ``counters`` take another collection's write along in their one
    command (``Dialect.cross_collection_writes``)."""
    return dialect_of(counters.database).cross_collection_writes


def cold_render_gate(exempt: Callable[[], bool]) -> Callable[[Write | None], bool]:
    """What the media route calls before an unsigned rendition on request is rendered (one not
    stored yet: a cold render costs a decode and an encode, a stored one a read): counted per
    client address (``AVENUE_RENDER_ADDRESS_LIMIT``) and per instance over every address
    (``AVENUE_RENDER_INSTANCE_LIMIT``), 429 ``rate_limited`` with Retry-After past either, so
    one visitor, or many, cannot take the render slots from everyone else. ``exempt``: whether
    this request is a logged-in editor's, never counted (signed URLs never come here).

    The gate is called with the write the render starts with (its claim's insert) or None,
    and answers whether it made that write: where the dialect takes several collections'
    writes in one command (:func:`carries`), it goes after the hits in their command, made
    only if they are admitted (a refused render writes nothing); its refusal by a unique index
    (a claim held) raises ``DuplicateKeyError``, the hits counted. Otherwise (or with nothing
    to count) False: the caller makes it."""

    # Parsed once per limit string (parse_many's regex on every cold render was measurable).
    groups: dict[tuple[str, str], list[WindowGroup]] = {}

    def admit(then: Write | None = None) -> bool:
        limiter = _limiter()
        if limiter is None or exempt():  # limits off: not even the editor check's read
            return False
        config = current_app.config
        storage = limiter.limiter.storage
        if not isinstance(storage, MongoWindowStorage):
            raise RuntimeError("the limits of cold renders count in MongoDB (Avenue's storage)")
        counters = storage.counters
        moment = time.time()
        hits: list[tuple[WindowGroup, str]] = []
        whose: dict[str, tuple[str, str]] = {}
        for scope, setting, key, who in (
                ("render-address", "AVENUE_RENDER_ADDRESS_LIMIT", request.remote_addr or "unknown",
                 "from your address"),
                ("render-instance", "AVENUE_RENDER_INSTANCE_LIMIT", INSTANCE, "on this server")):
            limit = config[setting]
            if (scope, limit) not in groups:
                groups[(scope, limit)] = WindowGroup.of(scope, limit)
            hits += [(group, key) for group in groups[(scope, limit)]]
            whose[scope] = (who, limit)
        carried = then if then is not None and carries(counters) else None
        refused = hit_all(counters, hits, moment, then=carried)
        if refused is not None:
            group, item = refused
            who, limit = whose[group.scope]
            raise group.refusal(item, moment, f"Too many new renditions {who} (the limit is {limit}): "
                                              "stored ones are still served; ask again later, or use a "
                                              "signed URL.")
        return carried is not None
    return admit
