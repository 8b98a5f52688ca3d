"""Reading the audit log: filters, newest first, entries as the API shows them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from bson import ObjectId
from pydantic import Field
from pymongo.database import Database

from avenue.auth.service import normalize_email
from avenue.clock import isoformat
from avenue.db import AUDIT_LIST, Document
from avenue.dialect import lister
from avenue.errors import BadRequest
from avenue.paging import Page, Window
from avenue.shapes import QUERY, Answer, ObjectIdText, Shape

MAX_ACTION_LENGTH = 64
# Never echoed, even if a caller of audit.log passed one by mistake.
SECRET_KEYS = frozenset({"password", "password_hash", "token", "token_hash"})


def audit_filter(db: Database[Document], user: str | None = None,
                 action: str | None = None) -> dict[str, Any]:
    """The query for ``?user=<email or id>`` and ``?action=<name>`` (both optional)."""
    query: dict[str, Any] = {}
    user = (user or "").strip()
    if user:
        if ObjectId.is_valid(user):
            query["actor.id"] = user
        elif "@" in user:
            email = normalize_email(user)
            found = db.users.find_one({"email": email}, {"_id": 1})
            # By id when the account exists (indexed); by the recorded email otherwise.
            query.update({"actor.id": str(found["_id"])} if found else {"actor.email": email})
        else:
            raise BadRequest("user must be an email address or a user id.", code="invalid_filter")
    action = (action or "").strip()
    if action:
        if len(action) > MAX_ACTION_LENGTH:
            raise BadRequest(f"action is at most {MAX_ACTION_LENGTH} characters.", code="invalid_filter")
        query["action"] = action
    return query


class AuditQuery(Shape):
    """The filters of ``GET /api/admin/audit`` (:func:`list_entries`)."""

    model_config = QUERY

    user: Annotated[str | None, Field(description="An email or user id.")] = None
    action: Annotated[str | None, Field(description="One action, e.g. upload_created.")] = None


def list_entries(db: Database[Document], window: Window, *, user: str | None = None,
                 action: str | None = None) -> tuple[list[dict[str, Any]], Page]:
    """One page of matching entries, newest first (each filter has an index ending in the order)."""
    page = lister(db)(db.audit_logs, audit_filter(db, user, action), AUDIT_LIST.sort, window,
                 index=AUDIT_LIST.index)
    return [public_entry(doc) for doc in page.docs], page


class AuditEntry(Answer):
    """An audit entry as the API shows it: ids as strings, times in ISO 8601, no secrets."""

    id: ObjectIdText
    at: Annotated[str | None, Field(json_schema_extra={"format": "date-time"})]
    action: str | None
    actor: Annotated[dict[str, Any] | None, Field(description="Who: a user (id, email, role) or the CLI.")]
    ip: str | None
    target: Annotated[dict[str, Any], Field(description="What was acted on (sku, image_id, bucket...).")]


def public_entry(doc: dict[str, Any]) -> dict[str, Any]:
    """An audit entry as the API shows it (:class:`AuditEntry`)."""
    return AuditEntry.model_validate({
        "id": str(doc["_id"]), "at": isoformat(doc.get("at")), "action": doc.get("action"),
        "actor": _jsonable(doc.get("actor")), "ip": doc.get("ip"),
        "target": _jsonable(doc.get("target") or {}),
    }).answer()


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if k not in SECRET_KEYS}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, dt.datetime):
        return isoformat(value)
    return value
