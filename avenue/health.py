"""Liveness and readiness probes."""

from __future__ import annotations

import pymongo
from bson import ObjectId
from flask import Blueprint, Response, jsonify
from pymongo.errors import PyMongoError

from avenue.db import USERS, get_db, get_mongo
from avenue.errors import error_response

bp = Blueprint("health", __name__)

#: How long ``/readyz`` gives the database to answer its read.
READY_TIMEOUT_SECONDS = 2.0
#: An ``_id`` no document has: the probe's read walks the ``_id`` index and finds nothing.
_NOBODY = ObjectId("000000000000000000000000")


@bp.get("/healthz")
def healthz() -> Response:
    """200 while the process runs; touches nothing else."""
    return jsonify(status="ok")


def database_answers() -> None:
    """Raise ``PyMongoError`` unless the database answers a real read within
    :data:`READY_TIMEOUT_SECONDS`: a ``find`` by ``_id``, through the storage engine as every
    request goes (one index seek on a small collection on mongod).

    Not a ``ping``: the embedded database answers ``ping`` on its connection thread without
    the store's lock, so it kept answering while every read and write waited on a thread stuck
    in WiredTiger's eviction (docs/production.md, "The embedded database"). The read answers
    for everything a ping would."""
    with pymongo.timeout(READY_TIMEOUT_SECONDS):
        get_db()[USERS].find_one({"_id": _NOBODY}, projection={"_id": 1})


@bp.get("/readyz")
def readyz() -> Response:
    """200 when the database answers a read within 2 s, 503 otherwise (recovers by itself)."""
    try:
        database_answers()
        get_mongo().ensure_indexes()
    except PyMongoError as exc:
        response = error_response(503, "database_unavailable",
                                  f"The database is not answering: {type(exc).__name__}.")
        response.headers["Retry-After"] = "5"
        return response
    return jsonify(status="ready")
