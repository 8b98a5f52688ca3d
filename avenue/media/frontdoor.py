"""WSGI middleware answering, before Flask, the media requests this worker's cache answers.

Those are a plain GET or HEAD of a public image whose document (and, for GET, bytes) is
cached, and a revalidation carrying exactly its ETag (304). They need no database round trip,
and skipping Flask's request context, routing and hooks is what makes them cheaper than any
Flask view. The answer is the route's own: the same :func:`~avenue.media.http.resolve`, the
same headers and the same :func:`~avenue.media.http.decide`. Everything else (a miss, a
private image, ranges and other conditional requests, any error) goes on to the Flask app
unchanged. Deletions are honoured exactly as on the route: the cache polls tombstones first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from avenue.media.buckets import BUCKETS
from avenue.media.http import Headers, decide, resolve
from avenue.media.route import get_state, headers_for

log = logging.getLogger(__name__)
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FrontDoor:
    """The media fast path in front of ``wsgi_app`` (the Flask app's own WSGI callable)."""

    def __init__(self, app: Flask, wsgi_app: WSGIApp) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/media/") and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            try:
                answer = self.answer(environ, path)
            except Exception:  # the Flask route answers instead, and reports properly
                log.exception("media front door failed on %r", path)
                answer = None
            if answer is not None:
                status, headers, body = answer
                start_response(status, headers)
                return body
        return self.wsgi_app(environ, start_response)

    def answer(self, environ: dict[str, Any], path: str) -> tuple[str, Headers, list[bytes]] | None:
        """(status, headers, body) when the cache answers this request alone, else None."""
        parts = path[len("/media/"):].split("/")
        bucket = BUCKETS.get(parts[0])
        if bucket is None or len(parts) not in (2, 3) or not all(parts):
            return None
        state = get_state(self.app)
        cache = state.cache
        cache.sync(state.database())
        rep = resolve(bucket, parts[1], parts[2] if len(parts) == 3 else None, cache.get_doc,
                      environ.get("HTTP_ACCEPT", ""))
        if rep is None or rep.doc.private:
            return None
        decided = decide(environ, rep, headers_for(self.app, rep))
        if decided is None:
            return None
        status = f"{decided.status} {HTTP_STATUS_CODES[decided.status].upper()}"
        if not decided.with_body:
            return status, decided.headers, []
        data = cache.get_blob(rep.bucket, rep.file_id)
        return (status, decided.headers, [data]) if data is not None else None
