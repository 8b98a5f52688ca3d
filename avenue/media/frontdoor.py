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
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from avenue.media.buckets import BUCKETS
from avenue.media.http import Headers, Representation, decide, resolve
from avenue.media.route import get_state, headers_for
from avenue.metrics import FRONT_DOOR

log = logging.getLogger(__name__)
# The labels of front-door answers in the metrics: the media route's own URL rules.
ROUTE, VARIANT_ROUTE = "/media/<alias>/<token>", "/media/<alias>/<token>/<variant>"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FrontDoor:
    """The media fast path in front of ``wsgi_app`` (the Flask app's own WSGI callable)."""

    def __init__(self, app: Flask, wsgi_app: WSGIApp,
                 on_answer: Callable[[dict[str, Any], int, float, int], None] | None = None) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        # Told about every answer given here (environ, status, seconds, body bytes): the app's
        # access log when it logs these too (AVENUE_ACCESS_LOG=all); None keeps the path lean.
        self.on_answer = on_answer

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        if path.startswith("/media/") and method in ("GET", "HEAD"):
            started = time.perf_counter()
            try:
                answer = self.answer(environ, path)
            except Exception:  # the Flask route answers instead, and reports properly
                log.exception("media front door failed on %r", path)
                answer = None
            if answer is not None:
                status, headers, body = answer
                start_response(status, headers)
                # Counted for the metrics by a deque append (avenue/metrics.py FrontDoorTally:
                # this path is benchmarked); not logged, unless AVENUE_ACCESS_LOG=all.
                route = VARIANT_ROUTE if path.count("/") == 4 else ROUTE
                FRONT_DOOR.record(route, method, int(status[:3]),
                                  time.perf_counter() - started, len(body[0]) if body else 0)
                if self.on_answer is not None:
                    self.on_answer(environ, int(status[:3]), time.perf_counter() - started,
                                   len(body[0]) if body else 0)
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
        if not isinstance(rep, Representation) or rep.doc.private:
            return None  # a 404 or a redirect (an earlier version): the route answers it
        decided = decide(environ, rep, headers_for(self.app, rep))
        if decided is None:
            return None
        status = f"{decided.status} {HTTP_STATUS_CODES[decided.status].upper()}"
        if not decided.with_body:
            return status, decided.headers, []
        data = cache.get_blob(rep.bucket, rep.file_id)
        return (status, decided.headers, [data]) if data is not None else None
