"""Outbound calls: what the app sends to other servers, how long it waits, and how a receiver
knows the call is ours.

Every call to another server (the CDN purge hook, :mod:`avenue.cdn`; the storage alert webhook,
:mod:`avenue.monitoring.alerts`; the console's vendor check) goes through :func:`send`, under
one deadline for the whole call. urllib's ``timeout=`` bounds each socket operation, not the
call: a target that answers a byte every few seconds held its sender for as long as it liked
(a background thread, and everything queued behind it). :func:`send` sets the socket's timeout
to what is left of the deadline before the connection, the TLS handshake, each write and each
read of the answer, and refuses to go on once it has passed. Only the name lookup is outside
it (``getaddrinfo`` takes no timeout); behind an HTTP proxy, the handshake after the proxy's
CONNECT answer waits at most what was left when the connection was made.

A URL import (:mod:`avenue.urlfetch`) must connect to the very address it checked, not to
whatever a second name lookup answers: :func:`pinned` opens one request to addresses given
by the caller (no lookup), while the Host header, TLS SNI and the certificate check stay the
URL's host's, under the same deadline, and follows no redirect (its caller checks each one).

The app's webhooks sign each body with a key the receiver shares:
``X-Avenue-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` with the Unix time in
``X-Avenue-Timestamp``, so a receiver can check the sender and refuse replays.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import http.client
import io
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEADER = "X-Avenue-Signature"
TIMESTAMP_HEADER = "X-Avenue-Timestamp"


def signature(key: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``key``."""
    return "sha256=" + hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_headers(key: str, body: bytes, moment: float | None = None) -> dict[str, str]:
    """The timestamp and signature headers of a webhook ``body`` sent at ``moment`` (now)."""
    timestamp = str(int(time.time() if moment is None else moment))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(key, timestamp, body)}


@dataclass(frozen=True)
class Answer:
    """A server's answer: its status, and as much of its body as was asked for."""

    status: int
    body: bytes = b""


class Deadline:
    """A moment on the monotonic clock; :meth:`left` is the time to it, TimeoutError past it."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left (a socket timeout); TimeoutError once none are."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the call's deadline passed")
        return left


def send(url: str, *, seconds: float, data: bytes | None = None, headers: Mapping[str, str] | None = None,
         method: str | None = None, max_body: int = 0) -> Answer:
    """Make one request and read its answer within ``seconds`` in all (TimeoutError, or
    another OSError such as urllib's URLError, when it cannot). An error status is an answer
    like any other; its body is read only when ``max_body`` asks for it (ValueError when
    longer)."""
    deadline = Deadline(seconds)
    request = urllib.request.Request(url, data=data, headers=dict(headers or {}), method=method)
    opener = urllib.request.build_opener(_HTTPHandler(deadline), _HTTPSHandler(deadline))
    try:
        response = opener.open(request, timeout=deadline.left())
    except urllib.error.HTTPError as error:
        status, response = error.code, error
    else:
        status = int(response.status)
    with response:
        body = response.read(max_body + 1) if max_body else b""
    if len(body) > max_body:
        raise ValueError(f"the answer of {url} is longer than {max_body} bytes")
    return Answer(status, body)


class _Reads(io.RawIOBase):
    """The answer's socket reads, each given what is left of the deadline."""

    def __init__(self, raw: Any, sock: socket.socket, deadline: Deadline) -> None:
        self.raw, self.sock, self.deadline = raw, sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self.sock.settimeout(self.deadline.left())
        return self.raw.readinto(buffer)  # type: ignore[no-any-return]

    def fileno(self) -> int:
        return int(self.raw.fileno())

    def close(self) -> None:
        self.raw.close()  # the socket closes with its last file, as with http.client's own
        super().close()


class _Response(http.client.HTTPResponse):
    """http.client's answer, reading through :class:`_Reads` (the head too: a slow head is
    the usual way to hold a sender)."""

    def __init__(self, sock: socket.socket, *args: Any, deadline: Deadline, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        # Nothing is read yet: the buffer is empty, so its raw file can change hands.
        self.fp = io.BufferedReader(_Reads(self.fp.detach(), sock, deadline))


class _Bounded(http.client.HTTPConnection):
    """A connection whose every step waits at most what is left of ``deadline``."""

    deadline: Deadline
    #: Where to connect instead of looking the host up (:func:`pinned`); empty: the host.
    addresses: Sequence[str] = ()

    def bound(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.response_class = functools.partial(_Response, deadline=deadline)  # type: ignore[assignment]
        # http.client's hook for making the socket (kept replaceable for tests): connected
        # within what is left, then given what is left after that, for the TLS handshake that
        # follows at once (HTTPS) and the request.
        self._create_connection = self._connect

    def _connect(self, address: tuple[str, int], timeout: Any = None,
                 source_address: tuple[str, int] | None = None) -> socket.socket:
        if not self.addresses:
            sock = socket.create_connection(address, self.deadline.left(), source_address)
            sock.settimeout(self.deadline.left())
            return sock
        # Pinned: each checked address in turn (a numeric host: create_connection looks
        # nothing up), the next one only when this one cannot be connected to.
        failure: OSError | None = None
        for pinned_address in self.addresses:
            try:
                sock = socket.create_connection((pinned_address, address[1]), self.deadline.left(),
                                                source_address)
            except TimeoutError:
                raise
            except OSError as error:
                failure = error
                continue
            sock.settimeout(self.deadline.left())
            return sock
        assert failure is not None
        raise failure

    def send(self, data: Any) -> None:
        """Each write of the request within what is left (``sendall`` counts its whole time)."""
        if self.sock is not None:
            self.sock.settimeout(self.deadline.left())
        super().send(data)


class _HTTPConnection(_Bounded):
    def __init__(self, *args: Any, deadline: Deadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bound(deadline)


class _HTTPSConnection(_Bounded, http.client.HTTPSConnection):
    def __init__(self, *args: Any, deadline: Deadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bound(deadline)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_HTTPConnection, deadline=self.deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_HTTPSConnection, deadline=self.deadline), req)


class BodyTooLarge(ValueError):
    """An answer's body is longer than the caller takes (declared, or found while reading)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is longer than {limit} bytes")
        self.limit = limit


def tls_context() -> ssl.SSLContext:
    """A pinned HTTPS request's TLS context: the system's CAs, the host's name checked (a test
    replaces it with one trusting its own certificate)."""
    return ssl.create_default_context()


@contextmanager
def pinned(scheme: str, host: str, port: int, target: str, *, addresses: Sequence[str], deadline: Deadline,
           headers: Mapping[str, str] | None = None) -> Iterator[http.client.HTTPResponse]:
    """One GET of ``target`` on ``host``, connected to ``addresses`` (tried in order; never a
    name looked up again), every step within ``deadline``. The Host header is ``host``'s, and for
    ``https`` the TLS handshake names ``host`` (SNI) and verifies its certificate for ``host``
    with the system's CAs. The answer is handed over with its body unread (:func:`read_capped`);
    a redirect is an answer like another. The connection is closed after the block."""
    if scheme == "https":
        connection: _Bounded = _HTTPSConnection(host, port, deadline=deadline, context=tls_context())
    else:
        connection = _HTTPConnection(host, port, deadline=deadline)
    connection.addresses = tuple(addresses)
    try:
        connection.request("GET", target, headers=dict(headers or {}))
        yield connection.getresponse()
    finally:
        connection.close()


def read_capped(response: http.client.HTTPResponse, limit: int, piece: int = 64 * 1024) -> bytes:
    """The body of ``response``, at most ``limit`` bytes: BodyTooLarge at once when its
    Content-Length says more, else as soon as more arrives (no Content-Length, chunked, or a
    server sending past what it declared: http.client stops at the declared length).
    IncompleteRead when the connection ends before the declared length (a cut answer)."""
    said = (response.getheader("Content-Length") or "").strip()
    # Not a length ("²" passes str.isdigit and fails int): read as if unsaid.
    declared = int(said) if said.isascii() and said.isdigit() else None
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit)
    body = bytearray()
    while chunk := response.read(min(piece, limit + 1 - len(body))):
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(limit)
    if declared is not None and len(body) < declared:
        raise http.client.IncompleteRead(bytes(body), declared - len(body))  # cut short
    return bytes(body)
