"""The audit log: who did what to which image, when, from where. One function writes it."""

from __future__ import annotations

from typing import Any

from flask import has_request_context, request
from flask_login import current_user
from pymongo.database import Database

from avenue import retention
from avenue.clock import now
from avenue.db import Document


def ensure_retention(db: Database[Document], days: int) -> None:
    """Keep audit entries ``days`` days (a TTL index on ``at``; 0: forever): a changed
    ``AVENUE_AUDIT_RETENTION_DAYS`` replaces the index on the next start (avenue/retention.py)."""
    retention.ensure_retention(db.audit_logs, "at", days)


def record(db: Database[Document], action: str, *, actor: dict[str, Any] | None = None, ip: str | None = None,
           **target: Any) -> None:
    """Append one entry; ``target`` names what was acted on (sku, image_id, bucket...)."""
    db.audit_logs.insert_one({"at": now(), "action": action, "actor": actor, "ip": ip,
                              "target": {k: v for k, v in target.items() if v is not None}})


def log(action: str, **target: Any) -> None:
    """Record ``action`` for the current request's user and client address."""
    from avenue.db import get_db

    actor = None
    ip = None
    if has_request_context():
        ip = request.remote_addr
        if current_user and current_user.is_authenticated:
            actor = {"id": current_user.id, "email": current_user.email, "role": current_user.role}
    record(get_db(), action, actor=actor, ip=ip, **target)
