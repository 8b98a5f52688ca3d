"""WSGI middleware answering, before Flask, the media requests this worker's cache answers.

Those are a plain GET or HEAD of a public image whose document (and, for GET, bytes) is
cached, and a revalidation carrying exactly its ETag (304). They need no database round trip,
and skipping Flask's request context, routing and hooks is what makes them cheaper than any
Flask view. The answer is the route's own: the same :func:`~avenue.media.serve.http.resolve`, the
same headers and the same :func:`~avenue.media.serve.http.decide`. Everything else (a miss, a
private image, ranges and other conditional requests, any error) goes on to the Flask app
unchanged. Deletions are honoured exactly as on the route: the cache polls tombstones first.

The same answers are given by gunicorn's event loop itself when the request is plain enough
(avenue/server.py): :meth:`FrontDoor.answer_at_once`, which answers only from a cache that
has nothing to check first, so it never waits on the database.

A rendition answered here is noted as used (:mod:`avenue.media.effects.served`: one
deque append; the worker folds and writes its notes in batches), exactly as the route
notes it: the byte budget evicts by that recency.

Either way an answer is traced like one of Flask's: it carries ``X-Request-ID`` (the
client's if safe, else a new one: :mod:`avenue.requestid`), is counted in the same request
metrics and gets the same access-log line. Counting and logging cost the hot path one deque
append (:class:`avenue.metrics.FrontDoorTally`); a thread does the rest every second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from avenue.errors import AvenueError
from avenue.media.serve.http import (
    ROUTE,
    Headers,
    MediaUrl,
    Moved,
    Pending,
    RenditionTarget,
    Representation,
    decide,
    is_rendition,
    resolve,
    resolve_named,
    resolve_rendition,
)
from avenue.media.serve.route import get_state, headers_for, note_served
from avenue.metrics import FRONT_DOOR, AnswerLog
from avenue.requestid import HEADER, from_environ

log = logging.getLogger(__name__)
EXTENSION = "avenue.front_door"  # app.extensions key of the app's front door
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FrontDoor:
    """The media fast path in front of ``wsgi_app`` (the Flask app's own WSGI callable)."""

    def __init__(self, app: Flask, wsgi_app: WSGIApp, access_log: AnswerLog | None = None) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        # Writes each answer's access-log line (the app's, unless AVENUE_ACCESS_LOG=off), from
        # the thread that folds the answers into the metrics: never on the answer's own path.
        self.access_log = access_log

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        if path.startswith("/media/") and method in ("GET", "HEAD"):
            answer = self._serve(environ, path, method, sync=True)
            if answer is not None:
                status, headers, body = answer
                start_response(status, headers)
                return body
        return self.wsgi_app(environ, start_response)

    def answer_at_once(self, environ: dict[str, Any]) -> tuple[str, Headers, list[bytes]] | None:
        """The answer this worker's cache gives ``environ`` without waiting on anything (no
        database round trip, only the cache's short locks), or None: the request is not one
        the front door answers, or the cache is due to check for deletions (a request on the
        app's path does that, then this answers again). avenue/server.py calls it from
        gunicorn's event loop, with an environ holding the method, the path and the request's
        header fields."""
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        if (not path.startswith("/media/") or method not in ("GET", "HEAD")
                or not get_state(self.app).cache.current()):
            return None
        return self._serve(environ, path, method, sync=False)

    def _serve(self, environ: dict[str, Any], path: str, method: str,
               sync: bool) -> tuple[str, Headers, list[bytes]] | None:
        started = time.perf_counter()
        try:
            answer = self.answer(environ, path, sync=sync)
        except Exception:  # the Flask route answers instead, and reports properly
            log.exception("media front door failed on %r", path)
            return None
        if answer is None:
            return None
        status, headers, body = answer
        rid = from_environ(environ)
        # Counted and logged by a deque append (avenue/metrics.py FrontDoorTally: this path is
        # benchmarked); the thread folding them writes the access-log line.
        answered = time.perf_counter()
        url = MediaUrl.of(environ)
        FRONT_DOOR.record(url.route if url is not None else ROUTE, method, int(status[:3]),
                          answered - started, len(body[0]) if body else 0, self.access_log, rid, path,
                          answered)
        return status, [*headers, (HEADER, rid)], body  # a new list: the cache keeps the 200's

    def answer(self, environ: dict[str, Any], path: str,
               sync: bool = True) -> tuple[str, Headers, list[bytes]] | None:
        """(status, headers, body) when the cache answers this request alone, else None.
        ``sync`` first applies deletions made by any worker (a database read at most once a
        second, :meth:`~avenue.media.serve.cache.MediaCache.sync`); without it the caller has
        checked that the cache is current."""
        url = MediaUrl.of(environ)
        if url is None:
            return None
        bucket = url.bucket
        state = get_state(self.app)
        cache = state.cache
        if sync:
            cache.sync(state.database())
        accept = environ.get("HTTP_ACCEPT", "")
        rep: Representation | Pending | Moved | None
        if url.named is not None:
            rep = resolve_named(bucket, url.token, url.named, cache.get_doc)
        elif url.variant is not None and is_rendition(url.variant, state.allow):
            rep = self._rendition(bucket, url.token, url.variant, accept, environ)
        else:
            rep = resolve(bucket, url.token, url.variant, cache.get_doc, accept)
        if not isinstance(rep, Representation) or rep.signed_only:
            # A 404, a redirect or a variant still to render, or a signed file (a private one,
            # an unedited original): the route answers it.
            return None
        decided = decide(environ, rep, headers_for(self.app, rep))
        if decided is None:
            return None
        status = f"{decided.status} {HTTP_STATUS_CODES[decided.status].upper()}"
        data = cache.get_blob(rep.bucket, rep.file_id) if decided.with_body else None
        if decided.with_body and data is None:
            return None
        if data is not None:  # a HEAD or a 304 is not a delivery (effects/served.py)
            # One deque append, never a write here (none for the console's own loads).
            note_served(state, bucket, rep, len(data), environ.get("QUERY_STRING", ""))
        return status, decided.headers, [data] if data is not None else []

    def _rendition(self, bucket: str, token: str, segment: str, accept: str,
                   environ: Mapping[str, Any]) -> Representation | None:
        """A rendition on request this worker has served before, of a public image's current
        version, on the allow-list (a signed one goes to the route, which checks the
        signature); None for anything else, a malformed URL included (the route answers it)."""
        state = get_state(self.app)
        try:
            found = resolve_rendition(bucket, token, segment, state.allow, state.cache.get_doc, accept,
                                      hint=lambda name: environ.get("HTTP_" + name.upper().replace("-", "_")))
        except AvenueError:
            return None
        if (not isinstance(found, RenditionTarget) or found.doc.private
                or not state.allow.allows(found.asked, found.doc.crops)):
            return None
        known: Representation | None = state.cache.get_rendition(found.cache_key(bucket))
        if known is None or (known.vary, known.hints) == (found.vary, found.hints):
            return known
        # The same file asked with and without an extension, or as w_auto and by its width.
        return replace(known, vary=found.vary, hints=found.hints)


def install_front_door(app: Flask, access_log: AnswerLog | None) -> FrontDoor:
    """Put a front door before ``app``'s WSGI callable, where :func:`front_door_of` finds it;
    ``access_log`` writes each answer's line (None: not logged)."""
    front = FrontDoor(app, app.wsgi_app, access_log=access_log)
    app.wsgi_app = front  # type: ignore[method-assign]
    app.extensions[EXTENSION] = front
    return front


def front_door_of(app: Any) -> FrontDoor | None:
    """The front door installed in ``app`` (a Flask app, or any WSGI app: None), if any."""
    found = getattr(app, "extensions", {}).get(EXTENSION)
    return found if isinstance(found, FrontDoor) else None
