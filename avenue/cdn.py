"""The CDN purge hook: deliver the purge outbox (``avenue/media/effects/purge.py``) to a webhook.

Set ``AVENUE_CDN_PURGE_URL`` (and ``AVENUE_CDN_PURGE_KEY``) and every app server worker
delivers the outbox in a background job (:func:`start_delivery`, started with the worker's
other background work by :func:`avenue.background.start_all`): one ``POST`` per deleted
image, a JSON body

    {"id": "...", "reason": "deleted", "bucket": "...", "file_id": "...",
     "paths": ["/media/p/<id>", "/media/p/<id>.jpg", "/media/p/<id>/card.webp", ...],
     "urls": ["<AVENUE_MEDIA_BASE_URL>/media/p/<id>", ...]}

signed ``X-Avenue-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` with
``X-Avenue-Timestamp`` (so the receiver can refuse replays; :mod:`avenue.outbound`, which signs
the storage alert webhook the same way), which a small adapter turns into
the CDN's purge call (Cloudflare "purge by URL", Fastly, CloudFront invalidations). A 2xx
answer removes the entry; anything else is retried with back-off (30 s doubling to 1 h, 8
attempts), then given up. Each delivery and each give-up is in the audit log
(``cdn_purged``, ``cdn_purge_failed``). Entries are claimed with a compare-and-set, so two
workers never send the same one at once. Unset, nothing is queued or sent.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask
from pymongo.database import Database
from pymongo.errors import PyMongoError

from avenue import audit, background
from avenue.clock import now
from avenue.db import Document
from avenue.media.wiring import PURGE_OUTBOX
from avenue.outbound import send, signed_headers

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
FIRST_RETRY = dt.timedelta(seconds=30)
LAST_RETRY = dt.timedelta(hours=1)
CLAIM = dt.timedelta(minutes=2)  # a sender that died gives its entry back after this
POLL_SECONDS = 5.0
SEND_TIMEOUT_SECONDS = 10.0  # the whole call, its answer included (avenue/outbound.py)

Sender = Callable[[str, bytes, dict[str, str]], int]


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST ``body``; the status. OSError when the hook cannot answer in time."""
    return send(url, seconds=SEND_TIMEOUT_SECONDS, data=body, headers=headers, method="POST").status


def deliver_due(db: Database[Document], *, hook_url: str, key: str, base_url: str, send: Sender = post,
                limit: int = 20) -> int:
    """Send the purges that are due (at most ``limit``); how many were delivered."""
    delivered = 0
    outbox = db[PURGE_OUTBOX]
    for entry in list(outbox.find({"next_at": {"$lte": now()}}).sort("next_at", 1).limit(limit)):
        claimed = outbox.update_one({"_id": entry["_id"], "next_at": entry["next_at"]},
                                    {"$set": {"next_at": now() + CLAIM}})
        if claimed.modified_count != 1:
            continue  # another worker has it
        body = json.dumps({
            "id": str(entry["_id"]), "reason": "deleted", "bucket": entry["bucket"],
            "file_id": str(entry["file_id"]), "paths": entry["paths"],
            "urls": [f"{base_url}{path}" for path in entry["paths"]],
        }, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", **signed_headers(key, body)}
        try:
            status = send(hook_url, body, headers)
        except OSError as error:
            status, detail = 0, repr(error)[:200]
        else:
            detail = f"HTTP {status}"
        attempts = entry.get("attempts", 0) + 1
        target = {"bucket": entry["bucket"], "file_id": str(entry["file_id"]), "attempts": attempts}
        if 200 <= status < 300:
            outbox.delete_one({"_id": entry["_id"]})
            audit.record(db, "cdn_purged", actor={"system": "cdn"}, **target)
            delivered += 1
        elif attempts >= MAX_ATTEMPTS:
            outbox.delete_one({"_id": entry["_id"]})
            audit.record(db, "cdn_purge_failed", actor={"system": "cdn"}, last_error=detail, **target)
        else:
            wait = min(FIRST_RETRY * 2 ** (attempts - 1), LAST_RETRY)
            outbox.update_one({"_id": entry["_id"]},
                              {"$set": {"next_at": now() + wait, "attempts": attempts, "last_error": detail}})
    return delivered


def start_delivery(app: Flask) -> background.PeriodicJob | None:
    """Deliver the outbox from a background job every ``POLL_SECONDS``; None without a hook
    (tests call :func:`deliver_due` themselves)."""
    hook_url = app.config.get("AVENUE_CDN_PURGE_URL") or ""
    if not hook_url:
        return None
    settings: dict[str, Any] = {"hook_url": hook_url, "key": app.config.get("AVENUE_CDN_PURGE_KEY") or "",
                                "base_url": app.config.get("AVENUE_MEDIA_BASE_URL") or ""}

    def deliver() -> None:
        from avenue.db import get_mongo

        try:
            mongo = get_mongo(app)
            mongo.ensure_indexes()  # the outbox's, before its first query (a no-op once done)
            deliver_due(mongo.db, **settings)
        except PyMongoError as error:  # the database is away: try again next round
            log.warning("cdn purge delivery: %r", error)

    job = background.PeriodicJob("avenue-cdn-purge", deliver, every=POLL_SECONDS, first_delay=POLL_SECONDS,
                                 failure="cdn purge delivery failed")
    job.start()
    return job
