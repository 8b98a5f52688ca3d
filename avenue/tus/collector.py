"""Abandoned resumable uploads removed by the app itself, not only by ``gc``.

Every app server worker runs one :class:`avenue.background.PeriodicJob` that removes expired
uploads and every expired piece (:meth:`avenue.media.Resumables.collect_expired`) every
:data:`COLLECT_SECONDS`: the bytes an upload parked are gone within that of its expiry. The
deletes are idempotent, so workers need no lease to share the work (two that run at once
delete the same documents once).
"""

from __future__ import annotations

import logging

from flask import Flask
from pymongo.database import Database

from avenue import background
from avenue.clock import now
from avenue.db import Document
from avenue.media import Resumables

log = logging.getLogger(__name__)
COLLECT_SECONDS = 600


def collect(db: Database[Document]) -> Resumables.Expired:
    """Remove what expired by now (one tick)."""
    removed = Resumables(db).collect_expired(now())
    if removed.uploads or removed.pieces:
        log.info("tus: removed %d expired uploads and %d pieces (%d bytes)", len(removed.uploads),
                 removed.pieces, removed.bytes)
    return removed


def start_collector(app: Flask) -> background.PeriodicJob:
    """Start this worker's collector job."""
    from avenue.db import get_mongo

    mongo = get_mongo(app)
    job = background.PeriodicJob("avenue-tus-collector", lambda: collect(mongo.db), every=COLLECT_SECONDS,
                                 first_delay=COLLECT_SECONDS, failure="removing expired tus uploads failed")
    job.start()
    return job
