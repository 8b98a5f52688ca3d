"""How the app plugs the media core in: not a door of the blueprints, the app factory's plugs.

The app factory (``avenue/__init__.py``), the gunicorn worker (``avenue/server.py``, and
``gunicorn.conf.py``'s exit hook) and the CDN hook (``avenue/cdn.py``) are the only importers
(the ``media-wiring`` import-linter contract): they give the app its media core (who refers
to images included) and its indexes, install the media route with its front door and
background jobs, finish an exiting worker's work, and drain the purge outbox.
Blueprints use the library door (``avenue.media``); ops and status the maintenance door
(``avenue.media.maintenance``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from flask import Blueprint, Flask
from pymongo.database import Database

from avenue import background
from avenue.media.app import EXTENSION, AppMedia
from avenue.media.effects.purge import OUTBOX as PURGE_OUTBOX
from avenue.media.records import Document
from avenue.media.references import Owner
from avenue.media.serve import frontdoor, route
from avenue.media.serve.http import Headers
from avenue.media.store import deliveries, indexes, layout, renditions
from avenue.metrics import AnswerLog

__all__ = [
    # The factory's: the media core on the app, and the indexes.
    "init_app", "index_setups",
    # The media route: the factory's blueprint, front door and jobs; the worker's front door.
    "Route",
    # The CDN hook's: the collection of purges owed (effects/purge.py).
    "PURGE_OUTBOX",
]


def init_app(app: Flask, *, database: Callable[[], Database[Document]],
             baseline_headers: Callable[[Mapping[str, Any]], Headers],
             admit_unsigned_render: renditions.Admit | None, owners: Iterable[Owner]) -> None:
    """Give the app its media core (serve/route.py's ``init_app``: its cache, database, headers,
    limit of unsigned cold renders, and the owners of documents that refer to images,
    references.py, which every job asks through it: ``Media.referrers``), and the
    :class:`~avenue.media.AppMedia` on it that views hand to services (app.py)."""
    route.init_app(app, database=database, baseline_headers=baseline_headers, owners=owners,
                   admit_unsigned_render=admit_unsigned_render)
    app.extensions[EXTENSION] = AppMedia(route.get_state(app), database)


def index_setups(delivery_days: int) -> list[Callable[[Database[Document]], None]]:
    """The media core's index setups, for ``db.init_app``: the buckets' and the collections'
    (store/indexes.py), and the delivery numbers' kept ``delivery_days`` (store/deliveries.py).
    First the layout's check (store/layout.py): on a store not migrated to this version's
    layout it raises ``StoreNotMigrated``, so no request, worker or command goes past it."""
    return [layout.ensure_current, indexes.ensure_indexes,
            lambda db: deliveries.ensure_indexes(db, delivery_days)]


class Route:
    """The media route (serve/route.py) as the app plugs it in: its blueprint, the WSGI front
    door before it (serve/frontdoor.py: installed by the factory, found by the gunicorn
    worker's event loop, which answers with it), its background jobs, which every app
    server worker runs (the factory registers them), and what a worker's exit finishes
    (gunicorn.conf.py)."""

    blueprint: ClassVar[Blueprint] = route.bp

    @staticmethod
    def install_front_door(app: Flask, access_log: AnswerLog | None) -> frontdoor.FrontDoor:
        """Put the front door before ``app``'s WSGI callable; ``access_log`` writes each
        answer's line (None: not logged)."""
        return frontdoor.install_front_door(app, access_log)

    @staticmethod
    def front_door_of(app: Any) -> frontdoor.FrontDoor | None:
        """The front door installed in ``app`` (a Flask app, or any WSGI app: None), if any."""
        return frontdoor.front_door_of(app)

    @staticmethod
    def start_delivery_flush(app: Flask) -> background.PeriodicJob:
        """Write what this worker served in batches (effects/served.py: the renditions' recency)."""
        return route.start_delivery_flush(app)

    @staticmethod
    def start_deletion_sync(app: Flask) -> background.PeriodicJob:
        """Keep this worker's media cache current (deletions polled or streamed)."""
        return route.start_deletion_sync(app)

    @staticmethod
    def finish_after_answer(seconds: float) -> bool:
        """Wait up to ``seconds`` for the renders this process queued after answers (a
        stopping worker: gunicorn.conf.py ``worker_exit``); True when none is left."""
        return route.finish_after_answer(seconds)

    @staticmethod
    def flush_deliveries(app: Flask, seconds: float = 2.0) -> dict[str, int]:
        """Write what this worker served and has not written yet, within ``seconds`` (a
        worker's exit); what each sink wrote (effects/served.py)."""
        return route.flush_deliveries(app, seconds)
