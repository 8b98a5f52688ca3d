"""One MongoDB client per process, the database handle, and the indexes the app relies on."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import pymongo
import structlog
from flask import Flask, current_app
from pymongo import ASCENDING, DESCENDING, IndexModel, uri_parser
from pymongo.database import Database
from pymongo.errors import BulkWriteError, ConfigurationError, DuplicateKeyError, InvalidURI

from avenue import metrics
from avenue.dialect import below_minimum, detected_build, dialect_of
from avenue.indexes import create_missing
from avenue.paging import Listed

EXTENSION = "avenue.mongo"
log = logging.getLogger(__name__)
# Creates the indexes one part of the app relies on (idempotent); the app factory hands the
# client every part's setup, so this module never has to know about the layers above it.
# What every collection here holds: BSON documents as dicts (the driver's default type).
Document = dict[str, Any]
IndexSetup = Callable[[Database[Document]], None]

#: The server's code for a write refused by a unique index (``E11000``).
DUPLICATE_KEY = 11000


def duplicate_key_write(error: Exception) -> dict[str, Any] | None:
    """The first write error of ``error`` refused by a unique index (a ``DuplicateKeyError``'s
    details, or the first ``writeErrors`` entry of a bulk write's with code 11000: its
    ``index`` says which write), else None. The one place that knows the code, for the
    writers that race each other to a unique key (the media package's stores, the limits'
    counters)."""
    if isinstance(error, DuplicateKeyError):
        return dict(error.details or {}) or {"code": DUPLICATE_KEY}
    details = error.details if isinstance(error, BulkWriteError) else None
    return next((e for e in (details or {}).get("writeErrors", []) if e.get("code") == DUPLICATE_KEY), None)


# The domain's collections (the GridFS buckets and the media cache's log are the media
# package's own: ``avenue.media.store.indexes.ensure_indexes``).
USERS = "users"
API_TOKENS = "api_tokens"
AUDIT_LOGS = "audit_logs"
PRODUCTS = "shop_products"
# The lists of these collections the API pages through (avenue/paging.py), each on its index.
PRODUCT_LIST = Listed(PRODUCTS, {}, [("sku", ASCENDING)], "sku_unique")
AUDIT_LIST = Listed(AUDIT_LOGS, {}, [("at", DESCENDING), ("_id", DESCENDING)], "newest")
PAGES = "page_content"
LEGACY_PATHS = "legacy_paths"
RATE_LIMITS = "rate_limits"


class Mongo:
    """The app's client, created lazily so it is safe to build before gunicorn forks."""

    def __init__(self, app: Flask, index_setups: Sequence[IndexSetup]) -> None:
        config = app.config
        client_class = config.get("MONGO_CLIENT_CLASS") or pymongo.MongoClient
        # connect=False: no sockets or monitor threads exist until the first operation, so a
        # client built before gunicorn forks its workers is never shared across processes.
        client = client_class(
            config["MONGO_URI"],
            connect=False,
            serverSelectionTimeoutMS=config["MONGO_TIMEOUT_MS"],
            **operation_timeout(config),
            **durability(config),
            tz_aware=True,
            appname="avenue",
            # Failed and retried commands counted for /metrics (avenue/metrics.py).
            event_listeners=[metrics.CommandMetrics()],
        )
        self.db_name = config["MONGO_DB"]
        # The app's database, built once: pymongo's Database objects are immutable and
        # thread-safe, and a cold rendition's request called get_db() seven times. The client
        # is the database's own (:attr:`client`), not held apart.
        self.db: Database[Document] = client[self.db_name]
        self.index_setups = tuple(index_setups)
        self._indexes_ready = False
        self._lock = threading.Lock()

    @property
    def client(self) -> pymongo.MongoClient[Document]:
        """The app's client: the database's."""
        return self.db.client

    def ensure_indexes(self) -> None:
        """Create the indexes once per process; cheap to call on every request. Then log the
        database's dialect (avenue/dialect.py: what the app does differently on this kind of
        server) with its rules: the first index created detected it (``create_missing`` asks
        its ``ttl_indexes``), so the line costs no command, and a database that does not
        answer fails on the indexes, as it did before there was a dialect. A mongod below
        what production runs on (avenue/dialect.py's ``below_minimum``) adds a warning line
        with its version and why, from the same answer."""
        if self._indexes_ready:
            return
        with self._lock:
            if not self._indexes_ready:
                for setup in self.index_setups:
                    setup(self.db)
                dialect = dialect_of(self.db)
                log.info("database dialect: %s (%s)", dialect.name,
                         ", ".join(f"{rule}={value}" for rule, value in dialect.rules().items()))
                below = below_minimum(detected_build(self.db))
                if below is not None:
                    # structlog's fields (JSON in production: avenue/requestlog.py), so an alert
                    # can match the event and read the version without parsing a sentence.
                    structlog.get_logger(__name__).warning(
                        "database server below production's minimum", server_version=below.version,
                        minimum=below.minimum, reasons=list(below.reasons))
                self._indexes_ready = True


def _uri_options(config: Mapping[str, Any]) -> set[str]:
    """The options ``MONGO_URI`` spells itself (lower case): those win over the settings."""
    try:
        return {key.lower() for key in uri_parser.parse_uri(config.get("MONGO_URI") or "")["options"]}
    except (InvalidURI, ValueError, ConfigurationError):
        return set()


def operation_timeout(config: Mapping[str, Any]) -> dict[str, Any]:
    """The client's ``socketTimeoutMS``: how long it waits for the server's answer to one
    command, unless ``MONGO_URI`` spells its own (``MONGO_SOCKET_TIMEOUT_MS``; 0 for none).

    Without it a request thread waits forever on a server that accepts connections but stops
    answering: the embedded database did, deadlocked in WiredTiger's eviction
    (docs/production.md, "The embedded database"), and a mongod whose disk hangs does the
    same. Past it pymongo raises ``NetworkTimeout`` (retried once, for a retryable read or
    write) and the request answers 503 ``database_unavailable`` (avenue/errors.py). A socket
    timeout, not the drivers' client-side operation timeout (``timeoutMS``): with that one
    pymongo retries an operation on a database that is down until its deadline, so every
    request during an outage took the whole limit instead of ``MONGO_TIMEOUT_MS``
    (tests/system/test_faults.py: 10 uploads answered 503 in 60 s against 7 s). Each batch of a
    cursor is its own answer, so streaming a large image to a slow client is not cut. 30 s by
    default: far above any answer a request waits for on mongod (an indexed find, one 2 MB
    batch of chunks, a 10 MB upload's chunk insert, a capped count); what scans a whole bucket
    runs under :func:`long_operations` instead.
    """
    limit = int(config.get("MONGO_SOCKET_TIMEOUT_MS") or 0)
    if {"sockettimeoutms", "timeoutms"} & _uri_options(config) or limit <= 0:
        return {}
    return {"socketTimeoutMS": limit}


#: The deadline of :func:`long_operations`: a CLI command's whole run, or one count over every
#: file of a bucket (10 M images' files documents and their chunks' index on mongod).
LONG_OPERATION_SECONDS = 24 * 3600


def long_operations() -> AbstractContextManager[None]:
    """A block whose operations may each take far longer than a request's
    (``MONGO_SOCKET_TIMEOUT_MS``): the CLI's commands (gc, fsck, backups over every file)
    and the whole-bucket recounts of the status sweep. ``pymongo.timeout`` gives the block
    one deadline of :data:`LONG_OPERATION_SECONDS`; inside it pymongo waits for an answer up
    to that deadline instead of the client's socket timeout."""
    return pymongo.timeout(LONG_OPERATION_SECONDS)


def durability(config: Mapping[str, Any]) -> dict[str, Any]:
    """Write and read concerns for the client, unless ``MONGO_URI`` spells its own.

    Writes wait for a majority of the replica set and for the journal (``w: majority,
    j: true`` by default): an acknowledged upload can then not be rolled back by a failover,
    and the embedded database, which does not sync its log on commit by default, keeps it
    through a SIGKILL (a test kills it right after a 201). Reads use the ``majority`` read
    concern, so a dedupe check, a reference count, fsck or a backup never acts on data a
    failover could still roll back. ``bench/durability.py`` measures what each choice costs.
    """
    given = _uri_options(config)
    options: dict[str, Any] = {}
    if "w" not in given and config.get("MONGO_WRITE_CONCERN"):
        w = config["MONGO_WRITE_CONCERN"]
        options["w"] = int(w) if str(w).isdigit() else w
    if "journal" not in given and config.get("MONGO_JOURNAL") is not None:
        options["journal"] = bool(config["MONGO_JOURNAL"])
    if "readconcernlevel" not in given and config.get("MONGO_READ_CONCERN"):
        options["readConcernLevel"] = config["MONGO_READ_CONCERN"]
    return options


def init_app(app: Flask, index_setups: Sequence[IndexSetup] = ()) -> None:
    """Attach the client to ``app``; nothing connects until first use. ``index_setups`` run
    once per process before the first request that needs the database (besides this
    module's own :func:`ensure_indexes`)."""
    app.extensions[EXTENSION] = Mongo(app, (ensure_indexes, *index_setups))


def get_mongo(app: Flask | None = None) -> Mongo:
    mongo: Mongo = (app or current_app).extensions[EXTENSION]
    return mongo


def get_db() -> Database[Document]:
    """The app's database for the current app context."""
    return get_mongo().db


# Collections the domain uses, with the indexes their queries need.
COLLECTION_INDEXES: dict[str, list[IndexModel]] = {
    USERS: [IndexModel([("email", ASCENDING)], unique=True, name="email_unique")],
    API_TOKENS: [
        IndexModel([("token_hash", ASCENDING)], unique=True, name="token_hash_unique"),
        IndexModel([("user_id", ASCENDING)], name="user"),
    ],
    # Newest first, by any filter: each index ends in the list order (at, _id) so a page is
    # one index walk (avenue/paging.py). Retention is a TTL index (avenue/audit.py).
    AUDIT_LOGS: [
        IndexModel([("at", DESCENDING), ("_id", DESCENDING)], name="newest"),
        IndexModel([("actor.id", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)], name="actor_newest"),
        IndexModel([("actor.email", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)],
                   name="actor_email_newest"),
        IndexModel([("action", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)], name="action_newest"),
    ],
    PRODUCTS: [
        IndexModel([("sku", ASCENDING)], unique=True, name="sku_unique"),
        IndexModel([("images.id", ASCENDING)], name="image_refs"),
    ],
    PAGES: [
        IndexModel([("slug", ASCENDING)], unique=True, name="slug_unique"),
        IndexModel([("media_ids", ASCENDING)], name="media_refs"),
    ],
    LEGACY_PATHS: [
        IndexModel([("path", ASCENDING)], unique=True, name="path_unique"),
        # gc and status look redirects up by the file they point to, a batch at a time.
        IndexModel([("bucket", ASCENDING), ("file_id", ASCENDING)], name="bucket_file"),
    ],
    # Rate-limit windows shared by every worker (avenue/ratelimit.py); finished ones expire.
    RATE_LIMITS: [IndexModel([("expireAt", ASCENDING)], expireAfterSeconds=0, name="ttl")],
}


# How each collection may be sharded (docs/production.md, "Scaling"): the shard key, or None for "leave it
# unsharded", with the reason. A unique index can only be enforced on a sharded collection
# when the shard key is a prefix of it; tests/api/test_sharding.py checks every unique index the
# app creates against these keys, and that every upsert on a sharded collection names its key.
# Bucket collections are matched by suffix (".files", ".chunks", ".images").
SHARD_KEYS: dict[str, tuple[tuple[str, ...] | None, str]] = {
    PRODUCTS: (("sku",), "every product write selects by sku; unique sku"),
    PAGES: (("slug",), "every page write selects by slug; unique slug"),
    AUDIT_LOGS: (("_id",), "append-only; shard on {_id: 'hashed'} to spread the inserts"),
    ".chunks": (("files_id", "n"), "the GridFS spec's key, prefix of the unique chunk index; "
                                   "ascending ObjectIds put new chunks on one shard (docs/production.md)"),
    ".files": (None, "the unique dedupe key (metadata.key) and lookups by _id cannot share one "
                     "shard key; ~1 KB a file, 10 M files is ~10 GB on the primary shard"),
    ".images": (None, "the image records (avenue/media/records.py): the unique dedupe key "
                      "(metadata.key) and lookups by _id cannot share one shard key, as .files"),
    USERS: (None, "small; unique email"),
    API_TOKENS: (None, "small; unique token hash"),
    LEGACY_PATHS: (None, "one document per legacy file, written once by import-legacy"),
    RATE_LIMITS: (None, "small and short-lived (TTL)"),
    "media_deletions": (None, "small and short-lived (TTL)"),
    "cdn_purges": (None, "the purge outbox: small and short-lived (TTL)"),
    "media_layout": (None, "one document: the layout the buckets are written in (media/store/layout.py)"),
    "ops_locks": (None, "a lease document per ops command"),
    "ops_checkpoints": (None, "where an unfinished fsck stopped"),
    "status_reports": (None, "the status sweep's result and checkpoint: one document"),
    "status_counters": (None, "the product counters: one document"),
    "list_fences": (None, "one document per fenced list (avenue/embedded/fences.py), rebuilt by the sweep"),
    "ops_runs": (None, "the last run of each maintenance command: one document per command"),
    "ops_progress": (None, "the progress of the re-render run started from the API: one document"),
    "media_counters": (None, "the per-bucket counters: one document per bucket"),
    "media_facets": (None, "the library's counts: one document per folder and per tag"),
    "media_uploads": (None, "uploads per hour: 24 small documents a day, kept for years"),
    "monitoring_samples": (None, "one storage sample per hour, 90 days (TTL): ~2,200 documents"),
    "monitoring_alerts": (None, "a few threshold crossings a week (TTL)"),
    "monitoring_leases": (None, "the history sampler's lease document"),
    "media_deliveries": (None, "per image per day (a TTL keeps AVENUE_DELIVERY_RETENTION_DAYS) and "
                               "one summary per image, upserted by _id in one bulk_write per flush; "
                               "shard on {_id: 'hashed'} once it outgrows the primary shard"),
    "media_rendition_claims": (None, "one short-lived claim per rendition or pending variants being "
                                     "rendered; lapses 15 s after its last renewal (a stored "
                                     "rendition's is left to lapse), then TTL"),
    "media_undrawable": (None, "one small document per rendition or image version whose SVG draw ran "
                               "past the deadline, kept a day (TTL)"),
    "media_tus_uploads": (None, "one document per resumable upload until it expires (gc removes it)"),
    "media_upload_links": (None, "one small document per upload link, removed 30 days after it "
                                 "expires (TTL)"),
    "media_tus_chunks": (("upload_id", "offset"), "prefix of the unique piece index; every read "
                                                  "and write names the upload"),
}


def shard_key(collection: str) -> tuple[str, ...] | None:
    """The declared shard key of ``collection`` (None: unsharded); KeyError when undeclared."""
    for name, (key, _) in SHARD_KEYS.items():
        if collection == name or (name.startswith(".") and collection.endswith(name)):
            return key
    raise KeyError(collection)


# Indexes an earlier version created that the ones above replace: dropped when found.
OBSOLETE_INDEXES: dict[str, tuple[str, ...]] = {AUDIT_LOGS: ("at", "actor_at", "action_at")}


def ensure_indexes(db: Database[Document]) -> None:
    """Create the indexes of the domain's collections (idempotent, any backend) and drop the
    ones they replace."""
    for name, models in COLLECTION_INDEXES.items():
        obsolete = set(OBSOLETE_INDEXES.get(name, ())) & set(create_missing(db[name], models))
        for index in sorted(obsolete):
            db[name].drop_index(index)
