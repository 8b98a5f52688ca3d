"""Request hooks that apply to every response: security headers and index readiness."""

from __future__ import annotations

from flask import Response, request
from flask.sessions import SecureCookieSessionInterface

from avenue.db import get_mongo

_SKIP_READY = ("/healthz", "/readyz", "/media/")


def ensure_database_ready() -> None:
    """Create indexes once per process before the first request that may need them."""
    if not request.path.startswith(_SKIP_READY):
        get_mongo().ensure_indexes()


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if request.path.startswith("/api/"):
        headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        headers.setdefault("Cache-Control", "no-store")
    return response


class CookieFreeMediaSessions(SecureCookieSessionInterface):
    """No session (and so no ``Vary: Cookie`` or Set-Cookie) on media responses.

    Media is public or signed, never cookie-authenticated; a ``Vary: Cookie`` would stop
    every CDN from caching it.
    """

    def open_session(self, app, request):
        if request.path.startswith("/media/"):
            return self.make_null_session(app)
        return super().open_session(app, request)

    def save_session(self, app, session, response) -> None:
        if request.path.startswith("/media/"):
            return
        super().save_session(app, session, response)
