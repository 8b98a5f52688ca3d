"""Readiness: what runs once per process before the database is used.

First the indexes every part of the app relies on (``avenue.db.Mongo.ensure_indexes``), then
the bootstrap admin from ``AVENUE_ADMIN_EMAIL``/``AVENUE_ADMIN_PASSWORD`` (created only when no
admin exists; never overwritten). An app server worker does both as it starts, on one of its
threads (:func:`prepare_at_start`, from ``gunicorn.conf.py``); a worker that found the database
down, and any other process (``flask``, tests), does them before its first request that needs
the database (:func:`ensure_database_ready`).
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask, current_app, request
from pymongo.errors import PyMongoError

from avenue import audit
from avenue.auth import service
from avenue.db import get_mongo
from avenue.errors import AvenueError, StoreNotMigrated

#: What answers without the preparation: the probes; the media route (it answers from its
#: cache and maps its own database errors); /metrics (its deployment part reads the database
#: within 2 s and answers without it: ops must see a scrape while the database is down); and
#: what never reads the database: the OpenAPI document, the static files, the login form.
#: Before, a worker started while the database was down held each of these for two server
#: selection timeouts (about 30 s) and then answered 503: a Prometheus scrape timed out for
#: as long as the outage lasted.
_SKIP_READY = ("/healthz", "/readyz", "/media/", "/metrics", "/api/openapi.json", "/static/",
               "/console/static/", "/console/login")
BOOTSTRAP = "avenue.bootstrap"


def ensure_database_ready() -> None:
    """Create indexes, then the bootstrap admin, once per process before the first request."""
    if request.path.startswith(_SKIP_READY):
        return
    # current_app is a werkzeug LocalProxy, which Flask types as the Flask it stands for.
    prepare(current_app._get_current_object())  # type: ignore[attr-defined]


def prepare(app: Flask) -> None:
    """The indexes, then the bootstrap admin, once per process (cheap once done)."""
    get_mongo(app).ensure_indexes()
    bootstrap_admin_once(app)


def prepare_at_start(app: Flask) -> bool:
    """:func:`prepare` as a worker starts, so the admin exists before anyone asks for it. A
    database that does not answer is logged, never raised (the worker must start and answer
    /readyz with 503): the first request that needs the database tries again."""
    try:
        prepare(app)
    except StoreNotMigrated as error:
        # A store in an older layout (avenue/media/store/layout.py): this version does not start
        # on it. Every request but the probes' answers 503 with this message, /readyz too, so a
        # deploy's health check keeps the old version serving until ops runs the migration.
        app.logger.critical("%s", error.message)
        return False
    except PyMongoError as error:
        app.logger.warning("the database did not answer as this worker started (%s): the indexes and "
                           "the bootstrap admin wait for the first request that needs it",
                           type(error).__name__)
        return False
    return True


def bootstrap_admin_once(app: Flask) -> None:
    """Create the configured admin when no admin exists; runs once per process (never overwrites)."""
    state = app.extensions.setdefault(BOOTSTRAP, {"done": False, "lock": threading.Lock()})
    if state["done"]:
        return
    with state["lock"]:
        if state["done"]:
            return
        bootstrap_admin(app)
        state["done"] = True


def bootstrap_admin(app: Flask) -> dict[str, Any] | None:
    """Create ``AVENUE_ADMIN_EMAIL`` as admin if both variables are set and no admin exists."""
    email = app.config["AVENUE_ADMIN_EMAIL"]
    password = app.config["AVENUE_ADMIN_PASSWORD"]
    if not email or not password:
        return None
    db = get_mongo(app).db
    try:
        created = service.ensure_admin(db, email, password)
    except AvenueError as error:
        # A bad bootstrap setting must not take every request down with it: say why, go on.
        app.logger.error("AVENUE_ADMIN_EMAIL/AVENUE_ADMIN_PASSWORD not used: %s", error.message)
        return None
    if created is not None:
        audit.record(db, "user_created", actor={"via": "bootstrap"}, user_id=str(created["_id"]),
                     email=created["email"], role="admin")
        app.logger.info("created the admin %s from AVENUE_ADMIN_EMAIL", created["email"])
    return created
