"""Users and API tokens: domain functions that take the database as an argument."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Annotated, Any

from bson import ObjectId
from pydantic import ConfigDict, Field
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError
from werkzeug.security import check_password_hash, generate_password_hash

from avenue.clock import isoformat, maybe_utc, now
from avenue.db import Document
from avenue.errors import BadRequest, Conflict, NotFound
from avenue.ids import parse_object_id
from avenue.shapes import Answer, ObjectIdText, OneOf, Refuse, Shape

ROLES = ("admin", "editor", "ops")
MIN_PASSWORD_LENGTH = 8
TOKEN_PREFIX = "av_"
DEFAULT_TOKEN_DAYS = 365
# A token's last use is written at most this often, not on every request it authenticates.
LAST_USED_RESOLUTION = dt.timedelta(minutes=5)
# Compared against when the email is unknown, so both answers take the same time: what
# generate_password_hash("avenue-timing-equaliser") made once, written out rather than made at
# import, where its scrypt was 100 ms of every process's start (each gunicorn worker, CLI
# command, make run). tests/api/test_auth.py checks it is of the method new hashes are.
_DUMMY_HASH = ("scrypt:32768:8:1$WheamGhhUSEjNHCZ$f95c04186e35246f4278e8b3c5a4367b0d76d46e0db3246be365e3c"
               "94f50d39285579d465943dc43d3be359b6e838c1187e3e12843894690dbe6d4cc1080dd7b")


class Credentials(Shape):
    """A login: an email and a password, both text and not empty."""

    # A login form may send more (a "remember me"...): left aside, as it always was.
    model_config = ConfigDict(extra="ignore")
    refusal = Refuse("missing_credentials", "Send your email and password.")

    email: Annotated[str, Field(min_length=1)]
    password: Annotated[str, Field(min_length=1)]


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def create_user(db: Database[Document], email: str, password: str, role: str) -> dict[str, Any]:
    """Create a user; emails are unique regardless of case."""
    email = normalize_email(email)
    if "@" not in email or len(email) > 254:
        raise BadRequest("A valid email address is required.", code="invalid_email")
    if role not in ROLES:
        raise BadRequest(f"Role must be one of {', '.join(ROLES)}.", code="invalid_role")
    _check_password(password)
    doc = {
        "_id": ObjectId(),
        "email": email,
        "password_hash": generate_password_hash(password),
        "role": role,
        "active": True,
        "created_at": now(),
        "last_login_at": None,
        "session_epoch": new_session_epoch(),
    }
    try:
        db.users.insert_one(doc)
    except DuplicateKeyError as exc:
        raise Conflict(f"A user with the email {email} already exists.", code="user_exists") from exc
    return doc


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise BadRequest(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.",
                         code="weak_password")


def new_session_epoch() -> str:
    """A fresh session epoch: sessions carrying any other value are over."""
    return secrets.token_urlsafe(12)


def _change_user(db: Database[Document], email: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply ``changes`` to a user and end every session it has (a new epoch, atomically)."""
    user = db.users.find_one_and_update(
        {"email": normalize_email(email)},
        {"$set": {**changes, "session_epoch": new_session_epoch()}},
    )
    if user is None:
        raise NotFound(f"No user with the email {normalize_email(email)}.")
    return user


def set_password(db: Database[Document], email: str, password: str) -> dict[str, Any]:
    """Give a user a new password (e.g. after a restore, which carries no hashes); every
    session the user had ends."""
    _check_password(password)
    return _change_user(db, email, {"password_hash": generate_password_hash(password)})


def set_role(db: Database[Document], email: str, role: str) -> dict[str, Any]:
    """Give a user another role; sessions opened under the old one end."""
    if role not in ROLES:
        raise BadRequest(f"Role must be one of {', '.join(ROLES)}.", code="invalid_role")
    return _change_user(db, email, {"role": role})


def set_active(db: Database[Document], email: str, active: bool) -> dict[str, Any]:
    """Deactivate (no login, no session, no token) or reactivate a user."""
    return _change_user(db, email, {"active": bool(active)})


def end_sessions(db: Database[Document], user_id: ObjectId) -> None:
    """End every session of this user, on every device (logout)."""
    db.users.update_one({"_id": user_id}, {"$set": {"session_epoch": new_session_epoch()}})


def session_epoch(db: Database[Document], user: dict[str, Any]) -> str:
    """The user's current epoch, created for users stored before epochs existed."""
    held: str | None = user.get("session_epoch")
    if held:
        return held
    epoch = new_session_epoch()
    # Only where none is set yet: two first logins at once must agree on one value.
    db.users.update_one({"_id": user["_id"], "session_epoch": None}, {"$set": {"session_epoch": epoch}})
    stored = db.users.find_one({"_id": user["_id"]}, {"session_epoch": 1})
    if stored is None or not stored.get("session_epoch"):
        # Deleted meanwhile: the session this epoch binds finds no user on its next request.
        return epoch
    current: str = stored["session_epoch"]
    return current


def authenticate(db: Database[Document], email: str, password: str) -> dict[str, Any] | None:
    """The active user with these credentials, or None (same work either way)."""
    user = db.users.find_one({"email": normalize_email(email)})
    valid = check_password_hash(user["password_hash"] if user else _DUMMY_HASH, password or "")
    if not user or not valid or not user.get("active", True):
        return None
    user["last_login_at"] = now()
    db.users.update_one({"_id": user["_id"]}, {"$set": {"last_login_at": user["last_login_at"]}})
    return user


def ensure_admin(db: Database[Document], email: str, password: str) -> dict[str, Any] | None:
    """Create this admin when no admin exists yet; never touch an existing one."""
    if not email or not password or db.users.find_one({"role": "admin"}) is not None:
        return None
    try:
        return create_user(db, email, password, "admin")
    except Conflict:
        return None


def get_user(db: Database[Document], user_id: ObjectId | str) -> dict[str, Any] | None:
    oid = parse_object_id(str(user_id))
    if oid is None:
        return None
    user = db.users.find_one({"_id": oid})
    return user if user and user.get("active", True) else None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(db: Database[Document], email: str, name: str = "",
                days: int | None = DEFAULT_TOKEN_DAYS) -> str:
    """A new API token for the user, valid ``days`` days (None: until revoked); only its hash
    is stored, so it is shown once."""
    user = db.users.find_one({"email": normalize_email(email)})
    if user is None:
        raise NotFound(f"No user with the email {normalize_email(email)}.")
    if days is not None and days < 1:
        raise BadRequest("A token must be valid for at least one day.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    created = now()
    db.api_tokens.insert_one({
        "user_id": user["_id"],
        "token_hash": _token_hash(token),
        "name": name,
        "created_at": created,
        "expires_at": created + dt.timedelta(days=days) if days is not None else None,
        "last_used_at": None,
        "revoked_at": None,
    })
    return token


def user_for_token(db: Database[Document], token: str) -> dict[str, Any] | None:
    """The active user a live (not revoked, not expired) token belongs to, or None.

    Notes the token's last use, at most once per ``LAST_USED_RESOLUTION``.
    """
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    # By the unique hash alone (token_state checks revocation): one index lookup everywhere.
    record = db.api_tokens.find_one({"token_hash": _token_hash(token)})
    if record is None:
        return None
    moment = now()
    if token_state(record, moment) != "live":
        return None
    last_used = maybe_utc(record.get("last_used_at"))
    if last_used is None or moment - last_used >= LAST_USED_RESOLUTION:
        db.api_tokens.update_one({"_id": record["_id"]}, {"$set": {"last_used_at": moment}})
    return get_user(db, record["user_id"])


def token_state(record: dict[str, Any], moment: dt.datetime | None = None) -> str:
    """"revoked", "expired" or "live"."""
    if record.get("revoked_at") is not None:
        return "revoked"
    expires = maybe_utc(record.get("expires_at"))
    return "expired" if expires is not None and expires <= (moment or now()) else "live"


def list_tokens(db: Database[Document], email: str) -> list[dict[str, Any]]:
    """A user's tokens, newest first, without their hashes."""
    user = db.users.find_one({"email": normalize_email(email)})
    if user is None:
        raise NotFound(f"No user with the email {normalize_email(email)}.")
    return list(db.api_tokens.find({"user_id": user["_id"]}, {"token_hash": 0}).sort("created_at", -1))


def revoke_tokens(db: Database[Document], email: str) -> int:
    """Revoke every token of a user; returns how many were live."""
    user = db.users.find_one({"email": normalize_email(email)})
    if user is None:
        raise NotFound(f"No user with the email {normalize_email(email)}.")
    result = db.api_tokens.update_many({"user_id": user["_id"], "revoked_at": None},
                                       {"$set": {"revoked_at": now()}})
    return result.modified_count


TIME = Field(json_schema_extra={"format": "date-time"})


class User(Answer):
    """A user as the API shows it: never a password hash."""

    id: ObjectIdText
    email: str
    role: Annotated[str, OneOf(ROLES)]
    active: bool
    created_at: Annotated[str | None, TIME]
    last_login_at: Annotated[str | None, TIME]


class LoggedIn(Answer):
    """A session started: who, and the CSRF token its writes send."""

    user: User
    csrf_token: str


class Caller(Answer):
    """Who is calling."""

    user: User


class CsrfToken(Answer):
    """This session's CSRF token (send it as X-CSRF-Token)."""

    csrf_token: str


def public_user(user: dict[str, Any]) -> User:
    """A user as the API shows it: never a hash."""
    return User(id=str(user["_id"]), email=user["email"], role=user["role"], active=user.get("active", True),
                created_at=isoformat(user.get("created_at")),
                last_login_at=isoformat(user.get("last_login_at")))
