"""Who is calling: session users, Bearer tokens, CSRF and the one role check.

The rules (docs/users.md, "Accounts and access"; docs/security.md):

- **A bearer token decides alone.** A request carrying ``Authorization`` is authenticated by
  that token or not at all, whatever cookies it also sends: the session is not consulted
  (so a browser app holding an anonymous CSRF cookie can still use its token, and a cookie of
  one user plus a token of another never mixes two identities), and CSRF does not apply (a
  token is never sent by the browser on its own). A bad token is a 401 even with a good session.
- **A session ends on the server.** Each user document holds a ``session_epoch``; login copies
  it into the session, every request compares the two (the user document is read anyway), and
  logout, a new password, a role change or deactivation write a new epoch, so every session of
  that user, on every device and every instance, ends at its next request. Chosen over
  server-side session records because it costs no extra read per request and no collection
  that grows with every login.
- **A session is bound to the address the app trusts and the browser.** Login stores a hash of
  ``request.remote_addr`` (the peer, or the address ``ProxyFix`` took from the last
  ``AVENUE_PROXY_COUNT`` proxies) and the User-Agent. Flask-Login's "strong" protection is not
  used: it reads ``X-Forwarded-For`` from the client whatever proxies are trusted, and when it
  fires it also drops a bearer token sent with the cookie.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, ParamSpec, TypeVar, cast

from flask import Flask, Request, current_app, g, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from avenue.auth import service
from avenue.db import get_db
from avenue.errors import Forbidden, Unauthorized

login_manager = LoginManager()
# Off: the binding and the epoch are checked in load_session_user (module docstring: why).
login_manager.session_protection = None
SESSION_EPOCH = "epoch"
SESSION_BINDING = "bound_to"

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "X-CSRF-Token"
# An upload link's form post acts with the link alone, never with the browser's session
# (avenue/links/views.py): a forged one can do nothing the link's holder could not.
CSRF_EXEMPT = frozenset({"/api/auth/login", "/api/upload-links/files"})


class User(UserMixin):
    """A logged-in user wrapping the users document."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def get_id(self) -> str:
        return str(self.doc["_id"])

    @property
    def id(self) -> str:
        return str(self.doc["_id"])

    @property
    def role(self) -> str:
        role: str = self.doc["role"]
        return role

    @property
    def email(self) -> str:
        email: str = self.doc["email"]
        return email

    @property
    def is_active(self) -> bool:
        active: bool = self.doc.get("active", True)
        return active


def session_binding() -> str:
    """What a session is bound to: the trusted client address and the browser."""
    seen = f"{request.remote_addr or ''}|{request.headers.get('User-Agent', '')}"
    return hashlib.sha256(seen.encode("utf-8", "replace")).hexdigest()


def start_session(doc: dict[str, Any]) -> None:
    """Log ``doc``'s user in on a fresh session bound to this client and the user's epoch."""
    session.clear()
    login_user(User(doc))
    session[SESSION_EPOCH] = service.session_epoch(get_db(), doc)
    session[SESSION_BINDING] = session_binding()


def end_session(user: User) -> None:
    """Log out: this session and every other session of the user end."""
    if g.get("auth_via") == "session":
        service.end_sessions(get_db(), user.doc["_id"])
    logout_user()
    session.clear()


def _session_user(held: Mapping[str, Any]) -> dict[str, Any] | None:
    """The user document the session ``held`` is logged in as, while that session is current
    (the user's epoch, this client's binding)."""
    user_id, epoch, bound = held.get("_user_id"), held.get(SESSION_EPOCH), held.get(SESSION_BINDING)
    if not (isinstance(user_id, str) and isinstance(epoch, str) and isinstance(bound, str)):
        return None
    doc = service.get_user(get_db(), user_id)
    if (doc is None or not hmac.compare_digest(epoch, doc.get("session_epoch") or "")
            or not hmac.compare_digest(bound, session_binding())):
        return None
    return doc


@login_manager.user_loader
def load_session_user(user_id: str) -> User | None:
    if "Authorization" in request.headers:
        return None  # the token decides alone (load_token_user)
    doc = _session_user(session)
    if doc is None:
        # Ended (logout, new password, role change), replayed from elsewhere, or from before
        # epochs existed: forget it, so the browser gets an anonymous cookie back.
        for key in ("_user_id", "_fresh", "_id", SESSION_EPOCH, SESSION_BINDING):
            session.pop(key, None)
        return None
    g.auth_via = "session"
    return User(doc)


@login_manager.request_loader
def load_token_user(req: Request) -> User | None:
    header = req.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    doc = service.user_for_token(get_db(), token.strip())
    if doc is None:
        return None
    g.auth_via = "token"
    return User(doc)


#: The roles that edit images (and so are never counted as anonymous visitors of them).
EDITING_ROLES = ("admin", "editor")


def edits_images() -> bool:
    """Whether the current user (session or token) is an admin or an editor: whom the API
    gives an image's unedited original (its signed ``source.url``)."""
    return bool(current_user.is_authenticated and current_user.role in EDITING_ROLES)


def is_media_editor() -> bool:
    """Whether this request comes from a logged-in admin or editor, by bearer token or by session
    cookie, also on ``/media/`` (whose requests get no session: avenue/security.py
    CookieFreeMediaSessions; the cookie is read here without opening one, so the answer still
    sets no cookie and says no ``Vary: Cookie``)."""
    if "Authorization" in request.headers:
        user = load_token_user(request)
    else:
        # The app's interface is security.CookieFreeMediaSessions, a SecureCookieSessionInterface
        # (Flask types the attribute as any SessionInterface).
        interface = cast(SecureCookieSessionInterface, current_app.session_interface)
        held = SecureCookieSessionInterface.open_session(interface, current_app, request)
        doc = _session_user(held) if held is not None else None
        user = User(doc) if doc is not None else None
    return user is not None and user.is_active and user.role in EDITING_ROLES


@login_manager.unauthorized_handler
def unauthorized() -> NoReturn:
    raise Unauthorized("Log in or send an API token to do this.")


def csrf_token() -> str:
    """This session's CSRF token, created on first use."""
    if "csrf_token" not in session:
        session["csrf_token"] = secrets.token_urlsafe(32)
    token: str = session["csrf_token"]
    return token


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


_P = ParamSpec("_P")
_R = TypeVar("_R")


def require_role(*roles: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Allow logged-in users with one of ``roles`` (admins always): 401 anonymous, 403 else."""

    def decorator(view: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(view)
        def wrapped(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            require(*roles)
            return view(*args, **kwargs)

        # Read by tests/api/test_openapi.py: which operations need a login.
        wrapped.required_roles = roles or ("any",)  # type: ignore[attr-defined]  # a function attribute
        return wrapped

    return decorator


def require(*roles: str) -> User:
    """The current user if allowed; raise 401/403 otherwise. No roles: any logged-in user."""
    if not current_user.is_authenticated:
        raise Unauthorized("Log in or send an API token to do this.")
    if roles and current_user.role != "admin" and current_user.role not in roles:
        raise Forbidden("Your role does not allow this.")
    user: User = current_user._get_current_object()  # our loaders return only User
    return user


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.before_request(check_csrf)
