"""How the app plugs the media core in: not a door of the blueprints, the app factory's plugs.

The app factory (``avenue/__init__.py``), the gunicorn worker (``avenue/server.py``) and the
CDN hook (``avenue/cdn.py``) are the only importers (the ``media-wiring`` import-linter
contract): they install the media route and its front door (with the app's media core, who
refers to images included), ensure the indexes, start the route's background jobs and drain
the purge outbox. Blueprints use the library door (``avenue.media``); ops and status the
maintenance door (``avenue.media.maintenance``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Flask
from pymongo.database import Database

from avenue.media.app import EXTENSION, AppMedia
from avenue.media.effects.purge import OUTBOX as PURGE_OUTBOX
from avenue.media.records import Document
from avenue.media.references import Owner
from avenue.media.serve import route
from avenue.media.serve.frontdoor import front_door_of, install_front_door
from avenue.media.serve.http import Headers
from avenue.media.serve.route import bp as blueprint
from avenue.media.serve.route import start_deletion_sync, start_delivery_flush
from avenue.media.store import deliveries, indexes, renditions

__all__ = [
    # The factory's: the media core on the app, the indexes, the blueprint, the WSGI front door.
    "blueprint", "index_setups", "init_app", "install_front_door",
    # The gunicorn worker's: the front door the event loop answers with, the route's jobs.
    "front_door_of", "start_deletion_sync", "start_delivery_flush",
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
    (store/indexes.py), and the delivery numbers' kept ``delivery_days`` (store/deliveries.py)."""
    return [indexes.ensure_indexes, lambda db: deliveries.ensure_indexes(db, delivery_days)]
