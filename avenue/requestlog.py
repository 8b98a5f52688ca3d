"""The request log and request metrics: one structured line and one count per request.

Each request gets an id (:mod:`avenue.requestid`) bound to the log context, so every line
logged while it runs carries ``request_id`` (the unhandled-error line with its traceback too,
logged once by ``avenue/errors.py``), and the response carries ``X-Request-ID``. When the
response is ready one ``request`` line gives the id, user id, method, route template, path,
status, duration and body bytes, and the same figures go to the metrics (avenue/metrics.py).

Why structlog: the access line and every ``logging`` record of the app (``app.logger``, the
modules' ``logging.getLogger(__name__)``) go through one processor chain, so the same fields
come out as one JSON object per line in production (what log shippers parse without a
regex) and as aligned, readable text in development, and context (the request id) is bound
once per request in a contextvar instead of being passed to every call. The stdlib logging
records stay ordinary records, so ``caplog`` and the existing log calls are unchanged.

The media front door's cached answers, given before Flask runs (avenue/media/serve/frontdoor.py),
get the same id, the same count and the same line: the front door only records them (the
path is benchmarked) and the thread folding them into the metrics writes their lines with
:func:`log_front_door_answers`, up to a second later but stamped with the answer's time.

``AVENUE_ACCESS_LOG``: ``on`` (the default) logs every answer, Flask's and the front door's
(``all`` is the same: it once added the front door's to ``on``); ``off`` none (errors are
still logged). ``AVENUE_LOG_FORMAT``: ``json`` (default in production) or ``console``
(default in development and tests).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from typing import Any

import structlog
from flask import Flask, Response, current_app, g, request
from flask.logging import default_handler
from flask_login import current_user
from structlog.typing import EventDict, WrappedLogger

from avenue import metrics, requestid
from avenue.config import RELAXED_ENVIRONMENTS

ACCESS_LOGGER = "avenue.access"
UNMATCHED = metrics.UNMATCHED  # the route of requests no URL rule matched (404s, 405s, probes)
_HANDLER_NAME = "avenue-structured"

_NOW = structlog.processors.TimeStamper(fmt="iso", utc=True)


def _timestamp(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """The line's ISO time in UTC: now, or its ``answered_at`` (a front-door answer's line is
    written later, by the thread that folds them)."""
    answered_at = event_dict.pop("answered_at", None)
    if answered_at is None:
        return _NOW(logger, method_name, event_dict)
    event_dict["timestamp"] = _iso(answered_at)
    return event_dict


def _iso(moment: float) -> str:
    """``moment`` (seconds since the epoch) as TimeStamper writes the time (ISO, UTC, "Z")."""
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat().replace("+00:00", "Z")


# What every line goes through, structlog's own (the access line) and stdlib records alike.
_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    _timestamp,
]


def configure_logging(app: Flask) -> None:
    """Send the app's logs (``avenue.*`` loggers) through structlog: JSON or readable text."""
    chosen = app.config.get("AVENUE_LOG_FORMAT") or (
        "console" if app.config.get("AVENUE_ENV") in RELAXED_ENVIRONMENTS else "json")
    json_lines = chosen != "console"
    renderer: Any
    if json_lines:
        # The traceback as one string field: a log line stays one line, one JSON object.
        renderer = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        renderer = [structlog.dev.ConsoleRenderer(colors=False)]
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.avenue_json = json_lines  # type: ignore[attr-defined]  # log_front_door_answers' fast path
    handler.setFormatter(formatter)
    root = logging.getLogger("avenue")  # app.logger and every avenue.* module logger
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(app.config["LOG_LEVEL"].upper())
    app.logger.removeHandler(default_handler)  # Flask's plain handler would print each line twice


def start_request() -> None:
    """Note the start time and bind the request id to every log line of this request."""
    g.request_started = time.perf_counter()
    structlog.contextvars.clear_contextvars()  # a thread serves many requests, one at a time
    structlog.contextvars.bind_contextvars(request_id=requestid.current())
    metrics.current_endpoint.set(request.endpoint or UNMATCHED)


def _user_id() -> str | None:
    try:
        return current_user.id if current_user and current_user.is_authenticated else None
    except Exception:  # the user could not be loaded (database down): the line is still logged
        return None


def finish_request(response: Response) -> Response:
    """Add ``X-Request-ID``; count the request and log its line."""
    rid = requestid.current() or requestid.valid_or_new(None)
    response.headers[requestid.HEADER] = rid
    started = g.get("request_started")
    seconds = time.perf_counter() - started if started is not None else 0.0
    rule = request.url_rule.rule if request.url_rule is not None else None
    body_bytes = (response.content_length or 0) if request.method != "HEAD" else 0
    # The metrics label the method and route from fixed sets (metrics.request_labels); the log
    # line keeps the method as sent, and the path.
    metrics.observe_request(rule, request.method, response.status_code, seconds, body_bytes)
    route = rule or UNMATCHED
    if current_app.config["AVENUE_ACCESS_LOG"] != "off":
        structlog.get_logger(ACCESS_LOGGER).info(
            "request", request_id=rid, user_id=_user_id(), method=request.method, route=route,
            path=request.path, status=response.status_code, duration_ms=round(seconds * 1000, 2),
            bytes=body_bytes)
    return response


def _answer_fields(answer: metrics.FrontDoorAnswer) -> dict[str, Any]:
    return {"request_id": answer.request_id, "user_id": None, "method": answer.method,
            "route": answer.route, "path": answer.path, "status": answer.status,
            "duration_ms": round(answer.seconds * 1000, 2), "bytes": answer.body_bytes}


def _only_json_handler() -> logging.StreamHandler[Any] | None:
    """The app's JSON handler when an access record would reach it and nothing else (the
    production set-up: no other handler on the way, INFO enabled), else None."""
    logger: logging.Logger | None = logging.getLogger(ACCESS_LOGGER)
    if not logger or not logger.isEnabledFor(logging.INFO):
        return None
    found = None
    while logger is not None:
        for handler in logger.handlers:
            if found is not None or handler.get_name() != _HANDLER_NAME:
                return None
            found = handler
        logger = logger.parent if logger.propagate else None
    if isinstance(found, logging.StreamHandler) and getattr(found, "avenue_json", False):
        return found
    return None


def log_front_door_answers(answers: list[metrics.FrontDoorAnswer]) -> None:
    """The access lines of media front-door answers, with the fields of Flask's (no user: the
    front door answers public media only); called by the thread that folds the answers.

    In production (JSON lines, the app's handler the only one) the lines are rendered here,
    exactly as structlog renders them, and written at once: structlog and logging cost about
    40 us a line in this thread, which shares the interpreter with the event loop answering
    thousands of these a second (7 us a line written this way). Anywhere else (console
    format, ``caplog`` or any other handler listening) each line goes through structlog."""
    handler = _only_json_handler()
    if handler is not None:
        text = "".join(json.dumps({**_answer_fields(answer), "event": "request", "level": "info",
                                   "logger": ACCESS_LOGGER, "timestamp": _iso(answer.at)}) + "\n"
                       for answer in answers)
        handler.acquire()
        try:
            handler.stream.write(text)
            handler.flush()
        finally:
            handler.release()
        return
    log = structlog.get_logger(ACCESS_LOGGER)  # once: a first use finds the stdlib logger by frames
    for answer in answers:
        log.info("request", **_answer_fields(answer), answered_at=answer.at)


def init_app(app: Flask) -> None:
    """Log through structlog and observe every request (the first hook, so every other hook's
    errors already carry the request id)."""
    configure_logging(app)
    app.before_request_funcs.setdefault(None, []).insert(0, start_request)
    # after_request hooks run last-registered first: first in the list, this one sees the
    # final response.
    app.after_request_funcs.setdefault(None, []).insert(0, finish_request)
