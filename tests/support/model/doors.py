"""How the store model reaches the service: a *door* is one worker's HTTP surface.

The model (tests/support/model/machine.py) makes every write through one door and reads every URL
through all of them, so a worker that answers from a stale cache is caught. Two kinds:

- :class:`FlaskDoor`: an app in this process (its own media cache; its in-memory evictions
  are not heard by the others, as in another process), through Flask's test client;
- :class:`HttpDoor`: a real server on loopback (gunicorn, the Procfile's worker), a fresh
  connection per request, so with ``reuse_port`` each request may land on any of its
  workers: a URL is read ``reads`` times through it.
"""

from __future__ import annotations

import http.client
import json as json_text
from dataclasses import dataclass, field
from typing import Any

from tests.support.launcher import LOOPBACK


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json_text.loads(self.body) if self.body else None


class FlaskDoor:
    """A worker in this process."""

    reads = 1

    def __init__(self, app: Any) -> None:
        self.app = app
        self.client = app.test_client()

    def call(self, method: str, path: str, *, headers: dict[str, str] | None = None,
             body: bytes | None = None, json: Any = None, content_type: str | None = None) -> Answer:
        response = self.client.open(path, method=method, headers=headers or {}, data=body, json=json,
                                    content_type=content_type)
        try:
            return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()},
                          response.get_data())
        finally:
            response.close()


@dataclass
class HttpDoor:
    """A server on loopback; ``reads``: how many fresh connections a URL is read on."""

    port: int
    reads: int = 3
    timeout: float = 60.0
    name: str = field(default="server")

    def call(self, method: str, path: str, *, headers: dict[str, str] | None = None,
             body: bytes | None = None, json: Any = None, content_type: str | None = None) -> Answer:
        sent = dict(headers or {})
        if json is not None:
            body = json_text.dumps(json).encode()
            content_type = "application/json"
        if content_type:
            sent["Content-Type"] = content_type
        sent["Connection"] = "close"
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=self.timeout)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()
