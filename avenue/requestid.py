"""Each request's id: the client's ``X-Request-ID`` when it is safe to echo, else a new one.

The id goes into the response header, every log line of the request and every JSON error
body, so one id finds a request in the client's report, the load balancer's log and ours. A
client-sent id is kept only if it is 1-128 characters of ``A-Z a-z 0-9 . _ : -`` (what proxies
and tracing headers use): anything else could forge log content or grow every line, so it is
replaced by a generated one.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask import g, has_request_context, request

HEADER = "X-Request-ID"
ENVIRON_KEY = "HTTP_X_REQUEST_ID"
SAFE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def valid_or_new(sent: str | None) -> str:
    """``sent`` when it is a safe id, else a new random one (32 hex digits)."""
    if sent is not None and SAFE.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


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
