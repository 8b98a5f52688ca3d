"""Avenue media: shop, website-builder and general-upload images kept in MongoDB GridFS."""

from __future__ import annotations

import functools
from typing import Any

import click
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from avenue import config as config_module
from avenue import db


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: configuration, extensions, URL converters, blueprints, WSGI middleware,
    request hooks, error handlers, commands (each step below lists everything it installs)."""
    from avenue.http import Request, StrictJSONProvider

    app = Flask(__name__)
    app.request_class = Request  # uploads parsed in memory, never on the local disk (avenue/http.py)
    app.json = StrictJSONProvider(app)  # responses never carry NaN/Infinity (avenue/http.py)
    app.config.from_mapping(config_module.from_environment())
    if test_config:
        app.config.from_mapping(test_config)
    config_module.check(app.config)
    register_logging(app)
    warn_unknown_variables(app)
    if not app.config.get("MONGO_URI"):
        raise RuntimeError(
            "MONGO_URI is not set and no embedded database is running: "
            "start everything with `make run`, or set MONGO_URI."
        )
    register_extensions(app)
    register_converters(app)
    register_blueprints(app)
    register_middleware(app)
    register_hooks(app)
    register_errorhandlers(app)
    register_commands(app)
    register_background(app)
    return app


def warn_unknown_variables(app: Flask) -> None:
    """Log a warning for each AVENUE_* variable nothing reads (avenue/envfile.py)."""
    from avenue import envfile

    for name in envfile.unknown_variables():
        app.logger.warning("%s is set but nothing reads it (a typo? .env.example lists every variable)", name)


def register_logging(app: Flask) -> None:
    """Structured logs, request ids and request metrics (avenue/requestlog.py)."""
    from avenue import requestlog

    # First: every later step's log lines, and every request's hooks, are already structured.
    requestlog.init_app(app)


def register_extensions(app: Flask) -> None:
    from avenue import audit, links, monitoring, ratelimit, security
    from avenue.auth import access
    from avenue.builder.references import PageReferences
    from avenue.media import wiring as media_wiring  # the factory's plugs (avenue/media/wiring.py)
    from avenue.shop.references import ProductReferences

    retention = app.config["AVENUE_AUDIT_RETENTION_DAYS"]
    monitoring.parse_thresholds(app.config["AVENUE_ALERT_THRESHOLDS"])  # a bad value fails here, at start
    history_days = app.config["AVENUE_HISTORY_RETENTION_DAYS"]
    delivery_days = app.config["AVENUE_DELIVERY_RETENTION_DAYS"]
    db.init_app(app, index_setups=[*media_wiring.index_setups(delivery_days),
                                   lambda d: audit.ensure_retention(d, retention),
                                   lambda d: monitoring.ensure_indexes(d, history_days),
                                   links.ensure_indexes])
    access.init_app(app)
    ratelimit.init_app(app)
    # Unsigned renders of renditions not stored yet are limited per address and instance;
    # logged-in editors are never counted (avenue/ratelimit.py cold_render_gate). Who refers
    # to an image: products (the shop's) and pages (the builder's).
    media_wiring.init_app(app, database=lambda: db.get_mongo(app).db,
                          baseline_headers=security.baseline_headers,
                          admit_unsigned_render=ratelimit.cold_render_gate(access.is_media_editor),
                          owners=[ProductReferences, PageReferences])


def register_converters(app: Flask) -> None:
    from avenue.ids import ObjectIdConverter

    app.url_map.converters["oid"] = ObjectIdConverter


def register_blueprints(app: Flask) -> None:
    from avenue import admin, apidoc, auth, builder, console, health, scrape, shop, trash, tus, uploads
    from avenue.bulk import bp as zip_import
    from avenue.links import bp as upload_links
    from avenue.media import wiring as media_wiring
    from avenue.ops import redirects
    from avenue.ops import views as ops_views

    for blueprint in (media_wiring.Route.blueprint, health.bp, scrape.bp, auth.bp, admin.bp, shop.bp,
                      builder.bp, uploads.bp, zip_import, tus.bp, upload_links, trash.bp, redirects.bp,
                      ops_views.bp, console.bp, apidoc.bp):
        app.register_blueprint(blueprint)


def register_middleware(app: Flask) -> None:
    """WSGI layers around the Flask app, innermost first."""
    from avenue import requestlog
    from avenue.media import wiring as media_wiring

    # Cached public media and exact-ETag 304s answered before Flask (avenue/media/serve/frontdoor.py),
    # with an X-Request-ID, counted and logged as Flask's answers are (avenue/requestlog.py).
    logged = app.config["AVENUE_ACCESS_LOG"] != "off"
    # Also answered by gunicorn's event loop, without a thread, when plain (avenue/server.py).
    media_wiring.Route.install_front_door(app, requestlog.log_front_door_answers if logged else None)
    if app.config.get("AVENUE_PROXY_COUNT"):
        # Outermost: everything inside sees the client address the trusted proxies report.
        count = int(app.config["AVENUE_PROXY_COUNT"])
        # Flask's documented way to wrap its WSGI app in middleware.
        app.wsgi_app = ProxyFix(app.wsgi_app,  # type: ignore[method-assign]
                                x_for=count, x_proto=count, x_host=count)


def register_hooks(app: Flask) -> None:
    from avenue.http import limit_request_body
    from avenue.readiness import ensure_database_ready
    from avenue.security import CookieFreeMediaSessions, add_security_headers, answer_cors_preflight

    app.session_interface = CookieFreeMediaSessions()
    app.before_request(answer_cors_preflight)
    app.before_request(limit_request_body)
    app.before_request(ensure_database_ready)
    app.after_request(add_security_headers)


def register_errorhandlers(app: Flask) -> None:
    from avenue import console
    from avenue.errors import register_errorhandlers as register

    # JSON at every address but the files' (plain text) and the console's pages (its own page).
    register(app, pages={"/console/": console.error_page})


def register_commands(app: Flask) -> None:
    """The ``users`` group and the operations commands (``flask --app avenue <command>``).
    avenue/cli.py is the ``avenue`` console script, which builds the app: it imports this
    module, never the other way round."""
    from avenue.auth.commands import users
    from avenue.bulk.commands import import_zip
    from avenue.ops.commands import COMMANDS

    for command in (users, *COMMANDS, import_zip):
        app.cli.add_command(without_request_deadline(command))


def without_request_deadline(command: click.Command) -> click.Command:
    """``command`` (each command of a group) run under :func:`avenue.db.long_operations`: a
    gc, fsck or backup over millions of files sends commands that rightly take far longer
    than a request's ``MONGO_SOCKET_TIMEOUT_MS``."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            without_request_deadline(sub)
    elif command.callback is not None and not getattr(command.callback, "long_operations", False):
        callback = command.callback

        @functools.wraps(callback)
        def run(*args: Any, **kwargs: Any) -> Any:
            with db.long_operations():
                return callback(*args, **kwargs)

        run.long_operations = True  # type: ignore[attr-defined]  # wrapped once per process
        command.callback = run
    return command


def register_background(app: Flask) -> None:
    """The background work of an app server worker, in the order it starts: only
    ``background.start_all(app)`` starts it (gunicorn.conf.py's ``post_worker_init``), so a
    ``flask`` command or a test starts none of it. Nothing here may touch the database, which
    may be down as a worker starts: each piece ensures the indexes on its own thread first."""
    from avenue import background, cdn, monitoring, status
    from avenue.embedded import expiry
    from avenue.media import wiring as media_wiring
    from avenue.ops import rendition_budget
    from avenue.readiness import prepare_at_start
    from avenue.tus import collector

    # The indexes and the bootstrap admin now rather than on the first request, on a thread of
    # their own: an index build on a large collection can outlast the master's worker timeout.
    # (A plain thread, not the worker's pool: any worker class has threads; only gthread has a pool.)
    background.register(app, "avenue-prepare",
                        lambda: background.spawn("avenue-prepare", prepare_at_start, app))
    # The status sweep's scheduler: every worker runs one, its lease lets one sweep at a time.
    background.register(app, "status-sweep", lambda: status.warm_up_status_reports(app))
    # The storage history's sampler: every worker runs one, one of all instances samples a slot.
    background.register(app, "history-sampler", lambda: monitoring.start_sampler(app))
    # The CDN purge outbox: every worker delivers, each entry claimed by one.
    background.register(app, "cdn-purge", lambda: cdn.start_delivery(app))
    # What each worker served (the renditions' recency), written in batches every 30 s.
    background.register(app, "media-deliveries", lambda: media_wiring.Route.start_delivery_flush(app))
    # The media cache kept current (deletions polled or streamed) whether or not threads are free.
    background.register(app, "media-deletions-sync", lambda: media_wiring.Route.start_deletion_sync(app))
    # The renditions' byte budget: every worker runs one, its lease lets one evict at a time.
    rendition_budget.budget_from_config(app.config)  # a bad value stops the start, not the worker
    background.register(app, "rendition-budget", lambda: rendition_budget.start_budget(app))
    # Expiry on the embedded database, where its TTL indexes are plain (avenue/embedded/expiry.py says why).
    background.register(app, "embedded-expiry", lambda: expiry.start_expiry(db.get_mongo(app)))
    # Abandoned resumable uploads: every worker removes what expired, every 10 minutes.
    background.register(app, "tus-collector", lambda: collector.start_collector(app))
