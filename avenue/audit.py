"""The audit log: who did what to which image, when, from where. One function writes it."""

from __future__ import annotations

from flask import has_request_context, request
from flask_login import current_user
from pymongo import ASCENDING
from pymongo.database import Database

from avenue.clock import now

RETENTION_INDEX_PREFIX = "retention_"


def ensure_retention(db: Database, days: int) -> None:
    """Keep audit entries ``days`` days (a TTL index on ``at``; 0: forever).

    The index name carries the period, so changing ``AVENUE_AUDIT_RETENTION_DAYS`` creates the
    new index and drops the old one on the next start (no ``collMod``, which not every
    backend has). Removal runs on the server's TTL sweep, about once a minute."""
    wanted = f"{RETENTION_INDEX_PREFIX}{days}d" if days > 0 else None
    existing = [name for name in db.audit_logs.index_information() if name.startswith(RETENTION_INDEX_PREFIX)]
    for name in existing:  # first: mongod refuses a second index on the same key
        if name != wanted:
            db.audit_logs.drop_index(name)
    if wanted and wanted not in existing:
        db.audit_logs.create_index([("at", ASCENDING)], name=wanted, expireAfterSeconds=days * 86400)


def record(db: Database, action: str, *, actor: dict | None = None, ip: str | None = None,
           **target) -> None:
    """Append one entry; ``target`` names what was acted on (sku, image_id, bucket...)."""
    db.audit_logs.insert_one({"at": now(), "action": action, "actor": actor, "ip": ip,
                              "target": {k: v for k, v in target.items() if v is not None}})


def log(action: str, **target) -> None:
    """Record ``action`` for the current request's user and client address."""
    from avenue.db import get_db

    actor = None
    ip = None
    if has_request_context():
        ip = request.remote_addr
        if current_user and current_user.is_authenticated:
            actor = {"id": current_user.id, "email": current_user.email, "role": current_user.role}
    record(get_db(), action, actor=actor, ip=ip, **target)
