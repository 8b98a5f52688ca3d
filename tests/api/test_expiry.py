"""Expiry on the embedded SecantusDB (avenue/embedded/expiry.py): its TTL indexes are plain and the app
deletes what expired; on mongomock (and MongoDB) the TTL index stays as declared."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from pymongo import ASCENDING, IndexModel

from avenue.db import get_mongo
from avenue.dialect import dialect_of
from avenue.embedded import expiry
from avenue.indexes import create_missing

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
MODELS = [IndexModel([("at", ASCENDING)], name="ttl", expireAfterSeconds=3600),
          IndexModel([("gone", ASCENDING)], name="gone_ttl", expireAfterSeconds=0,
                     partialFilterExpression={"kind": "temp"})]


def seed(collection) -> None:
    collection.insert_many([
        {"_id": "old", "at": NOW - dt.timedelta(hours=2)},
        {"_id": "fresh", "at": NOW - dt.timedelta(minutes=59)},
        {"_id": "no date", "at": "yesterday"},
        {"_id": "no field"},
        {"_id": "old array", "at": [NOW - dt.timedelta(days=1), NOW]},
        {"_id": "gone temp", "gone": NOW - dt.timedelta(seconds=1), "kind": "temp"},
        {"_id": "gone kept", "gone": NOW - dt.timedelta(seconds=1), "kind": "kept"},
    ])


def left(collection) -> set[str]:
    return {doc["_id"] for doc in collection.find({}, {"_id": 1})}


def test_ttl_indexes_expire_as_mongod_would_on_either_side(db):
    create_missing(db.things, MODELS)
    seed(db.things)
    info = db.things.index_information()
    deleted = expiry.expire(db, NOW)
    if not dialect_of(db).ttl_indexes:
        # Plain: SecantusDB's sweeper has nothing to walk; the app deleted what expired,
        # through the same index, the partial filter kept.
        assert "expireAfterSeconds" not in info["ttl"] and "expireAfterSeconds" not in info["gone_ttl"]
        assert deleted == 3
        assert left(db.things) == {"fresh", "no date", "no field", "gone kept"}
    else:
        assert info["ttl"]["expireAfterSeconds"] == 3600  # the server's own TTL monitor does it
        assert deleted == 0  # (mongomock expires as it reads)


def test_an_index_that_still_expires_on_the_embedded_server_is_made_plain(db):
    if dialect_of(db).ttl_indexes:
        pytest.skip("the embedded database's own change (Dialect.ttl_indexes)")
    db.things.create_index([("at", ASCENDING)], name="ttl", expireAfterSeconds=3600)  # an older run's
    create_missing(db.things, MODELS[:1])
    assert "expireAfterSeconds" not in db.things.index_information()["ttl"]
    assert expiry.named_rules(db.name, "things")["ttl"].seconds == 3600


def test_two_workers_making_the_same_old_index_plain_both_start(db):
    """Two workers start on an older data folder at once: both saw the TTL index, one drops it
    first; the other's drop finds nothing, and it goes on (IndexNotFound is not a failure)."""
    if dialect_of(db).ttl_indexes:
        pytest.skip("the embedded database's own change (Dialect.ttl_indexes)")
    db.things.create_index([("at", ASCENDING)], name="ttl", expireAfterSeconds=3600)
    seen = db.things.index_information()  # what the second worker listed before the first dropped it
    db.things.drop_index("ttl")
    plain = expiry.plain_indexes(db.things, MODELS[:1], seen)
    db.things.create_indexes(plain)
    assert "expireAfterSeconds" not in db.things.index_information()["ttl"]


def test_no_index_of_the_app_expires_on_the_embedded_server(app, db):
    """Every TTL index the app declares (rate limits, purge outbox, deletions, links, the
    retention of logs and numbers) is plain there, so SecantusDB's sweeper never walks a
    collection; each one's rule is the app's. Fails if one is created outside create_missing."""
    if dialect_of(db).ttl_indexes:
        pytest.skip("the embedded database's own change (Dialect.ttl_indexes)")
    with app.app_context():
        get_mongo().ensure_indexes()
    expiring = [(name, index["name"]) for name in db.list_collection_names()
                for index in db[name].list_indexes() if "expireAfterSeconds" in index]
    assert expiring == []
    ruled = {collection for collection in expiry.rules(db.name)}
    assert {"rate_limits", "media_deletions", "audit_logs"} <= ruled


def test_the_job_deletes_what_expired_once_a_tick(app, db):
    if dialect_of(db).ttl_indexes:
        pytest.skip("the app expires only where TTL indexes are plain (Dialect.ttl_indexes)")
    create_missing(db.things, MODELS)
    seed(db.things)
    job = expiry.start_expiry(get_mongo(app), every=0.1, clock=lambda: NOW)
    try:
        deadline = time.monotonic() + 10
        while "old" in left(db.things) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        job.stop(5)
    assert left(db.things) == {"fresh", "no date", "no field", "gone kept"}
