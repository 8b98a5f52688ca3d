"""Liveness and readiness probes."""

from __future__ import annotations

import pymongo
from flask import Blueprint, jsonify
from pymongo.errors import PyMongoError

from avenue.db import get_db, get_mongo
from avenue.errors import error_response

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 while the process runs; touches nothing else."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """200 when the database answers a ping within 2 s, 503 otherwise (recovers by itself)."""
    try:
        with pymongo.timeout(2.0):
            get_db().command("ping")
        get_mongo().ensure_indexes()
    except PyMongoError as exc:
        response = error_response(503, "database_unavailable",
                                  f"The database is not answering: {type(exc).__name__}.")
        response.headers["Retry-After"] = "5"
        return response
    return jsonify(status="ready")
