"""Who is calling: session users, Bearer tokens, CSRF and the one role check."""

from __future__ import annotations

import functools
import hmac
import secrets

from flask import Flask, g, request, session
from flask_login import LoginManager, UserMixin, current_user

from avenue.auth import service
from avenue.db import get_db
from avenue.errors import Forbidden, Unauthorized

login_manager = LoginManager()
# "strong": a session cookie replayed from another address or browser is logged out ("basic"
# only marks it non-fresh, which nothing here checks).
login_manager.session_protection = "strong"

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_EXEMPT = frozenset({"/api/auth/login"})


class User(UserMixin):
    """A logged-in user wrapping the users document."""

    def __init__(self, doc: dict) -> None:
        self.doc = doc

    def get_id(self) -> str:
        return str(self.doc["_id"])

    @property
    def id(self) -> str:
        return str(self.doc["_id"])

    @property
    def role(self) -> str:
        return self.doc["role"]

    @property
    def email(self) -> str:
        return self.doc["email"]

    @property
    def is_active(self) -> bool:
        return self.doc.get("active", True)


@login_manager.user_loader
def load_session_user(user_id: str) -> User | None:
    doc = service.get_user(get_db(), user_id)
    if doc is None:
        return None
    g.auth_via = "session"
    return User(doc)


@login_manager.request_loader
def load_token_user(req) -> User | None:
    header = req.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    doc = service.user_for_token(get_db(), token.strip())
    if doc is None:
        return None
    g.auth_via = "token"
    return User(doc)


@login_manager.unauthorized_handler
def unauthorized():
    raise Unauthorized("Log in or send an API token to do this.")


def csrf_token() -> str:
    """This session's CSRF token, created on first use."""
    if "csrf_token" not in session:
        session["csrf_token"] = secrets.token_urlsafe(32)
    return session["csrf_token"]


def check_csrf() -> None:
    """Refuse state-changing cookie-authenticated API calls without the session's token."""
    if request.method not in UNSAFE_METHODS or not request.path.startswith("/api/"):
        return
    if request.path in CSRF_EXEMPT:
        return
    if not current_user.is_authenticated or g.get("auth_via") != "session":
        return
    expected = session.get("csrf_token")
    sent = request.headers.get(CSRF_HEADER, "")
    if not expected or not hmac.compare_digest(expected, sent):
        raise Forbidden(f"Missing or invalid CSRF token: send the {CSRF_HEADER} header "
                        "from GET /api/auth/csrf.", code="csrf_failed")


def require_role(*roles: str):
    """Allow logged-in users with one of ``roles`` (admins always): 401 anonymous, 403 else."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            require(*roles)
            return view(*args, **kwargs)

        wrapped.required_roles = roles or ("any",)
        return wrapped

    return decorator


def require(*roles: str) -> User:
    """The current user if allowed; raise 401/403 otherwise. No roles: any logged-in user."""
    if not current_user.is_authenticated:
        raise Unauthorized("Log in or send an API token to do this.")
    if roles and current_user.role != "admin" and current_user.role not in roles:
        raise Forbidden("Your role does not allow this.")
    return current_user._get_current_object()


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.before_request(check_csrf)
