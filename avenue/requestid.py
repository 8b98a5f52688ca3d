"""Each request's id: the client's ``X-Request-ID`` when it is safe to echo, else a new one.

The id goes into the response header, every log line of the request and every JSON error
body, so one id finds a request in the client's report, the load balancer's log and ours. A
client-sent id is kept only if it is 1-128 characters of ``A-Z a-z 0-9 . _ : -`` (what proxies
and tracing headers use): anything else could forge log content or grow every line, so it is
replaced by a generated one.

Every answer gets one, the media front door's cached answers included (answered in ~20 µs on
gunicorn's event loop), so a new id is cheap: this process's random 64-bit prefix and a
counter, 32 hex digits like a UUID's. Unique without a lock (``next`` on an
``itertools.count`` is one atomic call under the GIL) and across processes (a worker forked
from gunicorn's master draws its own prefix); half the cost of ``os.urandom(16).hex()``
(docs/performance.md, "Measurements behind the code"). Ids are labels, not secrets: a client
may send any id it likes.
"""

from __future__ import annotations

import itertools
import os
import re
from typing import Any

from flask import g, has_request_context, request

HEADER = "X-Request-ID"
ENVIRON_KEY = "HTTP_X_REQUEST_ID"
SAFE = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_prefix = os.urandom(8).hex()
_counter = itertools.count()


def _new_prefix() -> None:
    global _prefix, _counter
    _prefix, _counter = os.urandom(8).hex(), itertools.count()


os.register_at_fork(after_in_child=_new_prefix)  # each gunicorn worker numbers its own ids


def new() -> str:
    """A new id: 32 hex digits, unique to this process and this request."""
    return f"{_prefix}{next(_counter):016x}"


def valid_or_new(sent: str | None) -> str:
    """``sent`` when it is a safe id, else a new one (32 hex digits)."""
    if sent is not None and SAFE.fullmatch(sent):
        return sent
    return new()


def from_environ(environ: dict[str, Any]) -> str:
    """The id of a request seen as a WSGI environ (the media front door, before Flask)."""
    return valid_or_new(environ.get(ENVIRON_KEY))


def current() -> str | None:
    """The id of the request being handled (chosen on first use), or None outside a request."""
    if not has_request_context():
        return None
    rid: str | None = g.get("request_id")
    if rid is None:
        rid = g.request_id = valid_or_new(request.headers.get(HEADER))
    return rid
