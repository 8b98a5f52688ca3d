"""Request hooks that apply to every response: security headers and CORS; media without sessions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Request, Response, current_app, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin

# What a browser on a configured origin may send and read (preflight answers).
CORS_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
# The tus protocol's request and answer headers too (avenue/tus/): browsers' tus clients need them.
CORS_HEADERS = ("Authorization, Content-Type, X-CSRF-Token, Tus-Resumable, Upload-Length, Upload-Metadata, "
                "Upload-Offset, Upload-Checksum, Upload-Defer-Length, X-HTTP-Method-Override")
CORS_EXPOSE = ("Retry-After, Content-Length, Location, Tus-Resumable, Tus-Version, Tus-Extension, "
               "Tus-Max-Size, Tus-Checksum-Algorithm, Upload-Offset, Upload-Length, Upload-Expires, "
               "Avenue-Image-Id")
CORS_MAX_AGE = "600"
HSTS = "max-age=31536000; includeSubDomains"


def _cors_origin() -> str | None:
    """The request's Origin when it is configured and the path is the API, else None."""
    origin = request.headers.get("Origin")
    if not origin or not request.path.startswith("/api/"):
        return None
    return origin if origin in current_app.config["AVENUE_CORS_ORIGINS"] else None


def answer_cors_preflight() -> Response | None:
    """Answer a configured origin's preflight; other origins get no CORS headers at all."""
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    if request.url_rule is None:
        return None  # nothing is routed here: let the 404 answer
    origin = _cors_origin()
    if origin is None:
        return None
    response = Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
    response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
    response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    return response


def add_cors_headers(response: Response) -> Response:
    """Let a configured origin read the answer with credentials; nobody else."""
    if current_app.config.get("AVENUE_CORS_ORIGINS") and request.path.startswith("/api/"):
        response.vary.add("Origin")
    origin = _cors_origin()
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE
    return response


def baseline_headers(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The headers every response carries unless its route set them: nosniff, no framing,
    a strict referrer policy, and HSTS in production."""
    headers = [("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
               ("Referrer-Policy", "strict-origin-when-cross-origin")]
    if config.get("AVENUE_ENV") == "production":
        # Browsers ignore it over plain HTTP, so it is safe to send before TLS is in front.
        headers.append(("Strict-Transport-Security", HSTS))
    return headers


def add_security_headers(response: Response) -> Response:
    """nosniff, no framing, a strict referrer policy, HSTS in production; CORS for configured origins."""
    headers = response.headers
    for name, value in baseline_headers(current_app.config):
        headers.setdefault(name, value)
    if request.path.startswith("/api/"):
        headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        headers.setdefault("Cache-Control", "no-store")
    return add_cors_headers(response)


class CookieFreeMediaSessions(SecureCookieSessionInterface):
    """No session (and so no ``Vary: Cookie`` or Set-Cookie) on media responses.

    Media is public or signed, never cookie-authenticated; a ``Vary: Cookie`` would stop
    every CDN from caching it.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith("/media/"):
            return self.make_null_session(app)
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if request.path.startswith("/media/"):
            return
        super().save_session(app, session, response)
