"""One MongoDB client per process, the database handle, and the indexes the app relies on."""

from __future__ import annotations

import threading

import pymongo
from flask import Flask, current_app
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.database import Database

from avenue.media.buckets import BUCKETS

EXTENSION = "avenue.mongo"


class Mongo:
    """The app's client, created lazily so it is safe to build before gunicorn forks."""

    def __init__(self, app: Flask) -> None:
        config = app.config
        client_class = config.get("MONGO_CLIENT_CLASS") or pymongo.MongoClient
        # connect=False: no sockets or monitor threads exist until the first operation, so a
        # client built before gunicorn forks its workers is never shared across processes.
        self.client = client_class(
            config["MONGO_URI"],
            connect=False,
            serverSelectionTimeoutMS=config["MONGO_TIMEOUT_MS"],
            tz_aware=True,
            appname="avenue",
        )
        self.db_name = config["MONGO_DB"]
        self._indexes_ready = False
        self._lock = threading.Lock()

    @property
    def db(self) -> Database:
        return self.client[self.db_name]

    def ensure_indexes(self) -> None:
        """Create the indexes once per process; cheap to call on every request."""
        if self._indexes_ready:
            return
        with self._lock:
            if not self._indexes_ready:
                ensure_indexes(self.db)
                self._indexes_ready = True


def init_app(app: Flask) -> None:
    """Attach the client to ``app``; nothing connects until first use."""
    app.extensions[EXTENSION] = Mongo(app)


def get_mongo(app: Flask | None = None) -> Mongo:
    return (app or current_app).extensions[EXTENSION]


def get_db() -> Database:
    """The app's database for the current app context."""
    return get_mongo().db


# Collections the domain uses, with the indexes their queries need.
COLLECTION_INDEXES: dict[str, list[IndexModel]] = {
    "users": [IndexModel([("email", ASCENDING)], unique=True, name="email_unique")],
    "api_tokens": [
        IndexModel([("token_hash", ASCENDING)], unique=True, name="token_hash_unique"),
        IndexModel([("user_id", ASCENDING)], name="user"),
    ],
    "audit_logs": [
        IndexModel([("at", DESCENDING)], name="at"),
        IndexModel([("actor.id", ASCENDING), ("at", DESCENDING)], name="actor_at"),
        IndexModel([("action", ASCENDING), ("at", DESCENDING)], name="action_at"),
    ],
    "shop_products": [
        IndexModel([("sku", ASCENDING)], unique=True, name="sku_unique"),
        IndexModel([("images.id", ASCENDING)], name="image_refs"),
    ],
    "page_content": [
        IndexModel([("slug", ASCENDING)], unique=True, name="slug_unique"),
        IndexModel([("media_ids", ASCENDING)], name="media_refs"),
    ],
    "legacy_paths": [IndexModel([("path", ASCENDING)], unique=True, name="path_unique")],
    # Rate-limit windows shared by every worker (avenue/ratelimit.py); finished ones expire.
    "rate_limits": [IndexModel([("expireAt", ASCENDING)], expireAfterSeconds=0, name="ttl")],
    # Deleted media, polled by every worker to evict its in-process cache (see media/cache.py).
    "media_deletions": [
        IndexModel([("at", ASCENDING)], expireAfterSeconds=24 * 3600, name="ttl"),
    ],
}


def bucket_indexes() -> list[IndexModel]:
    return [IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], unique=True, name="files_id_1_n_1")]


def files_indexes() -> list[IndexModel]:
    return [
        # The GridFS spec's own index (filename, uploadDate).
        IndexModel([("filename", ASCENDING), ("uploadDate", ASCENDING)], name="filename_1_uploadDate_1"),
        # Content-addressed dedupe: originals are keyed by source hash (+ scope), variants by
        # original id + name. Unique, so concurrent identical uploads store one file.
        IndexModel([("metadata.key", ASCENDING)], unique=True, name="metadata_key_unique"),
        IndexModel([("metadata.role", ASCENDING), ("uploadDate", DESCENDING)], name="role_uploaded"),
        IndexModel([("metadata.original_id", ASCENDING)], name="variant_of"),
        IndexModel([("metadata.owner", ASCENDING), ("uploadDate", DESCENDING)], name="owner_uploaded"),
        IndexModel([("metadata.expires_at", ASCENDING)], name="expires_at", sparse=True),
    ]


def ensure_indexes(db: Database) -> None:
    """Create every index the app relies on (idempotent, any backend).

    Our own GridFS writer never runs the driver's per-upload "does this bucket need indexes?"
    probe (an unfiltered find_one that scans the whole collection on some servers), so this
    start-up step is what guarantees the chunk index GridFS readers and the unique dedupe
    key depend on.
    """
    for name, models in COLLECTION_INDEXES.items():
        db[name].create_indexes(models)
    for bucket in BUCKETS.values():
        db[f"{bucket}.chunks"].create_indexes(bucket_indexes())
        db[f"{bucket}.files"].create_indexes(files_indexes())
