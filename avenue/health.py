"""Liveness and readiness probes."""

from __future__ import annotations

import pymongo
from bson import ObjectId
from flask import Blueprint, jsonify
from pymongo.errors import PyMongoError

from avenue.db import USERS, get_db, get_mongo
from avenue.errors import error_response

bp = Blueprint("health", __name__)

#: How long ``/readyz`` gives the database, for the ping and the read together.
READY_TIMEOUT_SECONDS = 2.0
#: An ``_id`` no document has: the probe's read walks the ``_id`` index and finds nothing.
_NOBODY = ObjectId("000000000000000000000000")


@bp.get("/healthz")
def healthz():
    """200 while the process runs; touches nothing else."""
    return jsonify(status="ok")


def database_answers() -> None:
    """Raise ``PyMongoError`` unless the database answers a real read within
    :data:`READY_TIMEOUT_SECONDS`.

    A ``ping`` alone is not enough: the embedded SecantusDB answers ``ping`` on its connection
    thread without the store's lock, so it kept answering while every read and write waited
    on a thread stuck in WiredTiger's eviction (docs/production.md, "The embedded database").
    A ``find`` by ``_id`` goes through the storage engine as every request does; on mongod it
    is one index seek on a small collection."""
    with pymongo.timeout(READY_TIMEOUT_SECONDS):
        db = get_db()
        db.command("ping")
        db[USERS].find_one({"_id": _NOBODY}, projection={"_id": 1})


@bp.get("/readyz")
def readyz():
    """200 when the database answers a ping and a read within 2 s, 503 otherwise (recovers by
    itself)."""
    try:
        database_answers()
        get_mongo().ensure_indexes()
    except PyMongoError as exc:
        response = error_response(503, "database_unavailable",
                                  f"The database is not answering: {type(exc).__name__}.")
        response.headers["Retry-After"] = "5"
        return response
    return jsonify(status="ready")
