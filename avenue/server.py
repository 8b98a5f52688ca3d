"""The gunicorn worker Avenue runs under: gthread, with what a client costs bounded.

gunicorn's gthread worker gives each connection a thread of its pool as soon as its first
byte arrives, then reads the request head and body with blocking reads and no deadline, and
writes the answer with blocking writes: a client that sends (or reads) a byte at a time holds
that thread for as long as it likes, and a few dozen such clients stop ``/healthz``.

:class:`GuardedThreadWorker` keeps gthread and bounds what any one client can cost:

- **The event loop reads the request head and its body,** not a thread: the head, and a body
  announced by Content-Length of at most ``GUNICORN_BUFFER_BODY_BYTES`` (16 MiB: any JSON
  write, any single upload), are collected without blocking and the connection goes to the
  pool only once they are complete, so a thread is committed to a request only when it can
  run straight through. ``Expect: 100-continue`` is answered here. The head must be complete
  within ``GUNICORN_HEADER_TIMEOUT`` seconds (10) of the connection's opening (of its first
  byte, on a kept-alive connection); the body follows the body rule below. Too slow: a JSON
  408 and the connection closed. The bodies being read cost memory, bounded per worker
  (``GUNICORN_BUFFER_TOTAL_BYTES``, 64 MiB) and per client (a quarter of that, at least one
  whole body): a body's whole length is reserved before it is read, and one that does not
  fit waits, unread (TCP pushes back on the client), until an earlier one is answered;
  nothing else waits.
- **Every body has a deadline**: it may idle at most ``GUNICORN_BODY_TIMEOUT`` seconds (10),
  must average ``GUNICORN_BODY_MIN_RATE`` bytes per second (8192) once that grace period is
  over (Apache's ``mod_reqtimeout`` rule), and never takes longer than
  ``GUNICORN_BODY_DEADLINE`` seconds (600) in all. 8 KiB/s is 64 kbit/s: a phone on 2G's
  EDGE sends faster; a 10 MB photo within 600 s needs 17 KB/s (a weak 3G uplink); worse
  networks are what resumable uploads are for. Bodies a thread reads (chunked ones, ones over
  the buffer size) are held to the same rule on the thread's reads; past it the application
  sees the client as gone and the connection is closed, never read on.
- **Every answer a thread writes has a deadline too**: a write may idle at most
  ``GUNICORN_SEND_TIMEOUT`` seconds (60), and the answer must average
  ``GUNICORN_SEND_MIN_RATE`` bytes per second (8192) after ``GUNICORN_SEND_GRACE`` seconds
  (10); a reader
  slower than that (4 KiB every 20 s) is cut off instead of holding a thread for hours.
- **One client cannot take more than its share**: a client (its address, or behind
  ``AVENUE_PROXY_COUNT`` proxies the address they forward) runs at most
  ``GUNICORN_CLIENT_THREADS`` requests at once (a quarter of the threads); its other requests
  wait in the event loop, without a thread, for up to ``GUNICORN_QUEUE_TIMEOUT`` seconds (30,
  then a JSON 503). Without a proxy, one address holds at most ``GUNICORN_CLIENT_CONNECTIONS``
  connections per worker (a quarter of ``worker_connections``); more are answered 503 and
  closed. And when the worker nears ``worker_connections`` (90 %), idle connections (kept
  alive, or open without a byte sent) are closed oldest first, so sockets that send nothing
  cannot keep anyone out.
- **An answer given before the body was read keeps the connection usable**: a body the
  event loop buffered is dropped from memory in one read whatever its size; any other unread body
  (chunked, too large to buffer) closes the connection, and the answer says so
  (``Connection: close``): the client's next request is never lost (gunicorn issues 3334, 840:
  gthread drained at most 64 KiB and then closed a connection it had announced as kept alive).
- **The server's own refusals are JSON**: a request line or head too long, bad syntax, a
  deadline missed, a client over its share: the API's error shape
  (``{"error": {"code", "message"}}``) with an ``X-Request-ID``, counted in the request
  metrics and logged like any answer.
- **A worker whose threads are all busy stops accepting**: a new connection waits in the
  kernel's backlog instead of in this worker's event loop (with ``reuse_port`` each worker
  listens on a socket of its own and the kernel spreads connections over them, so it is this
  worker's backlog: a busy worker does not hand its share to another); one out of file
  descriptors pauses accepting for a moment instead of dying.
- **Cached public media is answered by the event loop itself**: a plain GET or HEAD of an
  image the worker's media cache holds (or its exact-ETag 304) is answered right where its
  head was read, with the front door's own answer (avenue/media/serve/frontdoor.py), and written
  without blocking; no thread, no gunicorn parsing. Anything else, or any doubt, goes to a
  thread exactly as before (:func:`loop_environ`). ``GUNICORN_LOOP_MEDIA=0`` turns it off;
  gunicorn's access log (``GUNICORN_ACCESS_LOG``) does too, since it logs only what threads
  handle (the app's own access log and metrics count the loop's answers as any other).
- **A graceful stop answers every connection made before it, and refuses the rest at
  connect**: on TERM (or a recycle) gthread stops watching its listening socket but closes it
  only once its last request is answered, up to ``graceful_timeout`` later; with
  ``reuse_port`` every worker listens on a socket of its own, so all that while the kernel
  went on completing handshakes into this worker's backlog (and with every thread busy some
  were queued there already), and closing the socket reset every one of them: a client that
  had connected and sent its upload got a reset, never an answer. The worker now takes what
  the kernel queued the moment it starts stopping, reads and answers it like any other
  connection, and closes its listening socket at once: from then on a new connection is
  refused at connect (or, on a rolling restart, goes to the new workers' sockets).
- **Closing connections linger in the event loop**: gthread's graceful close (shut down
  writing, then read until the client closes, up to 2 s) ran in the event loop every
  connection shares, so each client that never closed its side stalled the worker 2 s.

Why a worker of our own rather than gunicorn's gevent worker (which gunicorn documents for
clients not behind a buffering proxy): gevent gives every connection a greenlet, so slow
clients cost little, but pymongo, Pillow and libvips would then run on one event loop: the
image work (hundreds of milliseconds of CPU per upload) would need a thread pool of its own
and pymongo the monkey-patched socket module, and the event loop's own answers of cached media
(4x Flask-from-disk, bench/results/perf-loop-2026-11-23.md) would be lost.
bench/attacks.py measures what this worker withstands, with and without nginx in front.

The read deadlines are enforced on the parser's reads (a wrapper around the connection
socket installed as the parser's source), the write deadline on the response's writes (a
wrapper given to gunicorn's response). Behind nginx (deploy/nginx/avenue.conf), nginx
buffers heads, bodies and answers and little of this is reached; it keeps a directly exposed
gunicorn, or one behind a load balancer that does not buffer, answering. Built on gunicorn
27.0.1's ThreadWorker internals (pinned in requirements.txt; tests/system/test_server.py shows the
behaviour end to end); with TLS or HTTP/2 configured in gunicorn the worker behaves exactly as
gthread.
"""

from __future__ import annotations

import collections
import email.utils
import errno
import fcntl
import json
import os
import re
import select
import selectors
import socket
import struct
import termios
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import IO, Any

from gunicorn import SERVER
from gunicorn.http.body import LengthReader
from gunicorn.util import is_hoppish
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

#: The front door's answer to a request's environ, if it has one at once: status line, headers, body.
AnswerAtOnce = Callable[[dict[str, Any]], tuple[str, list[tuple[str, str]], list[bytes]] | None]
#: The largest body the event loop reads before handing the request to a thread: any JSON
#: write (2.06 MB) and a single upload with its multipart framing (10 MiB + a little).
BUFFERED_BODY_BYTES = 16 * 1024 * 1024
#: What the bodies being read may hold in memory at once, per worker.
BUFFERED_TOTAL_BYTES = 64 * 1024 * 1024
#: A head still incomplete at this size goes to a thread (gunicorn's own limits refuse it).
BUFFERED_HEAD_BYTES = 64 * 1024
_READ_SIZE = 256 * 1024
# A closing connection is drained for at most this long and this much (gunicorn's own values).
LINGER_SECONDS = 2.0
LINGER_BYTES = 64 * 1024
ACCEPT_PAUSE_SECONDS = 0.5
#: When a worker holds this share of ``worker_connections``, idle ones are closed down to
#: :data:`IDLE_LOW_WATER` of it.
IDLE_HIGH_WATER = 0.9
IDLE_LOW_WATER = 0.8
#: The route label the server's own answers are counted under (avenue/metrics.py).
SERVER_ROUTE = "<server>"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_EXPECT_CONTINUE = re.compile(rb"\r\nexpect:[ \t]*100-continue[ \t]*(?=\r\n)", re.IGNORECASE)
_REQUEST_ID_FIELD = re.compile(rb"\r\nx-request-id:[ \t]*([^\r\n]*?)[ \t]*(?=\r\n)", re.IGNORECASE)
_FORWARDED_FOR = re.compile(rb"\r\nx-forwarded-for:([^\r\n]*)", re.IGNORECASE)


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be a number, got {raw!r}") from exc
    if value <= 0:
        raise RuntimeError(f"{name} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class Limits:
    """What one client may cost a worker: time to send its request and read its answer, the
    memory its bodies take while read, and its share of threads and connections."""

    header_timeout: float = 10.0  # seconds for the whole head (from the connection's opening)
    body_timeout: float = 10.0  # seconds any body read may wait; also the rate's grace period
    body_min_rate: float = 8192.0  # bytes per second a body must average after the grace period
    body_deadline: float = 600.0  # seconds a body may take in all, however fast it starts
    send_timeout: float = 60.0  # seconds a response write may wait for the client to read anything
    send_min_rate: float = 8192.0  # bytes per second an answer must average after the grace period
    send_grace: float = 10.0  # seconds before that rate applies (the kernel's buffers fill first)
    buffer_body_bytes: int = BUFFERED_BODY_BYTES  # the largest body the event loop reads
    buffer_total_bytes: int = BUFFERED_TOTAL_BYTES  # what bodies being read may hold, per worker
    client_threads: int = 0  # requests one client runs at once (0: a quarter of the threads)
    client_connections: int = 0  # connections one address holds (0: a quarter of worker_connections)
    queue_timeout: float = 30.0  # seconds a request waits for its client's share of threads
    proxy_count: int = 0  # proxies in front (AVENUE_PROXY_COUNT): clients are who they forward

    @classmethod
    def from_environment(cls) -> Limits:
        from avenue.config import DEFAULTS  # in the worker (init_process): the master never loads avenue

        proxies = (os.environ.get("AVENUE_PROXY_COUNT") or "").strip() or str(DEFAULTS["AVENUE_PROXY_COUNT"])
        if not proxies.isdigit():
            raise RuntimeError(f"AVENUE_PROXY_COUNT must be a whole number, got {proxies!r}")
        return cls(
            header_timeout=_number("GUNICORN_HEADER_TIMEOUT", cls.header_timeout),
            body_timeout=_number("GUNICORN_BODY_TIMEOUT", cls.body_timeout),
            body_min_rate=_number("GUNICORN_BODY_MIN_RATE", cls.body_min_rate),
            body_deadline=_number("GUNICORN_BODY_DEADLINE", cls.body_deadline),
            send_timeout=_number("GUNICORN_SEND_TIMEOUT", cls.send_timeout),
            send_min_rate=_number("GUNICORN_SEND_MIN_RATE", cls.send_min_rate),
            send_grace=_number("GUNICORN_SEND_GRACE", cls.send_grace),
            buffer_body_bytes=int(_number("GUNICORN_BUFFER_BODY_BYTES", cls.buffer_body_bytes)),
            buffer_total_bytes=int(_number("GUNICORN_BUFFER_TOTAL_BYTES", cls.buffer_total_bytes)),
            client_threads=int(_number("GUNICORN_CLIENT_THREADS", cls.client_threads)),
            client_connections=int(_number("GUNICORN_CLIENT_CONNECTIONS", cls.client_connections)),
            queue_timeout=_number("GUNICORN_QUEUE_TIMEOUT", cls.queue_timeout),
            proxy_count=int(proxies),
        )

    def body_deadline_at(self, started: float, received: int, last_read: float) -> float:
        """When a body that started at ``started`` and has ``received`` bytes times out."""
        by_rate = started + self.body_timeout + received / self.body_min_rate
        return min(last_read + self.body_timeout, by_rate, started + self.body_deadline)

    def send_deadline_at(self, started: float, sent: int, last_sent: float) -> float:
        """When an answer that started at ``started``, of which the client has taken ``sent``
        bytes, times out (idle for ``send_timeout``, or slower than ``send_min_rate``)."""
        return min(last_sent + self.send_timeout,
                   started + self.send_grace + sent / self.send_min_rate)


@dataclass(frozen=True)
class BodyPlan:
    """How the event loop takes a request's body: ``length`` bytes to read before a thread
    takes it (0: none, or a thread reads it), and whether to answer ``100 Continue`` first."""

    length: int = 0
    expects_continue: bool = False


def _body_to_buffer(head: bytes, limit: int = BUFFERED_BODY_BYTES) -> BodyPlan:
    """How much body the event loop should read after ``head`` before a thread takes the
    request: its Content-Length when that is plain and at most ``limit``, else nothing.

    This only decides how much is read ahead; gunicorn's parser still frames the request
    from the same bytes, so a head this glance misreads is refused or framed by gunicorn
    exactly as without it.
    """
    lowered = head.lower()
    if b"content-length" not in lowered:
        return BodyPlan()
    length = None
    expects = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding":
            return BodyPlan()  # chunked: framing is the parser's
        if name == b"expect":
            if expects or value.strip().lower() != b"100-continue":
                return BodyPlan()  # an expectation gunicorn refuses (417), or named twice
            expects = True
        if name == b"content-length":
            if length is not None or not value.strip().isdigit():
                return BodyPlan()
            length = int(value.strip())
    if length is None or length > limit:
        return BodyPlan()
    # An HTTP/1.0 client does not wait for 100 Continue (RFC 9110 10.1.1: ignore it).
    return BodyPlan(length, expects and head.split(b"\r\n", 1)[0].endswith(b" HTTP/1.1"))


def _closes(fs: Future[Any]) -> bool:
    """Whether a finished request's connection is to be closed gracefully (not kept alive).
    A request that raised is left to gthread, which closes it at once."""
    if fs.cancelled():
        return True
    try:
        return not fs.result()
    except Exception:
        return False


def unsent(sock: socket.socket) -> int:
    """Bytes written to ``sock`` that the client has not acknowledged yet (Linux's SIOCOUTQ;
    0 where that cannot be asked). An answer's pace is what the client took, not what the
    kernel's send buffer (up to 4 MB) absorbed: counting the latter, a client that reads
    4 KiB a second looked like one that read 4 MB in its first second."""
    try:
        return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0])
    except (OSError, ValueError):
        return 0


def abort(sock: socket.socket) -> None:
    """Close ``sock`` with a reset, dropping what the kernel still holds to send: a client
    given up on for reading too slowly would otherwise be sent it all the same, at its own
    pace, by an orphaned socket holding up to 4 MB of the machine's memory."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def client_of(head: bytes, peer: str, proxy_count: int) -> str:
    """Who sent ``head``: ``peer``, or behind ``proxy_count`` proxies the address the
    nearest trusted one forwarded (X-Forwarded-For, counted from the right as werkzeug's
    ProxyFix does for the app); ``peer`` when the header has fewer entries than proxies."""
    if proxy_count <= 0:
        return peer
    values = [v.strip() for found in _FORWARDED_FOR.findall(head)
              for v in found.decode("latin-1").split(",")]
    return values[-proxy_count] if len(values) >= proxy_count and values[-proxy_count] else peer


#: The server's own refusals: status line, error code and message (the API's error shape).
_REFUSALS: dict[int, tuple[str, str, str]] = {
    400: ("400 Bad Request", "bad_request", "The request could not be read as HTTP."),
    403: ("403 Forbidden", "forbidden", "This request is not accepted here."),
    408: ("408 Request Timeout", "request_timeout",
          "The request was not received in time: send it faster, or in parts."),
    414: ("414 URI Too Long", "uri_too_long", "The request line is too long."),
    417: ("417 Expectation Failed", "expectation_failed", "Only Expect: 100-continue is supported."),
    431: ("431 Request Header Fields Too Large", "request_header_fields_too_large",
          "The request's header fields are too many or too large."),
    500: ("500 Internal Server Error", "internal_error", "The server failed to answer this request."),
    501: ("501 Not Implemented", "not_implemented", "This transfer coding is not supported."),
    503: ("503 Service Unavailable", "server_busy",
          "This client has too many requests in progress; try again shortly."),
}
_TOO_MANY_CONNECTIONS = ("too_many_connections", "This client holds too many connections.")


def refusal(status: int, request_id: str, code: str | None = None, message: str | None = None) -> bytes:
    """A whole answer (closing the connection) in the API's JSON error shape."""
    line, default_code, default_message = _REFUSALS.get(status, _REFUSALS[400])
    body = json.dumps({"error": {"code": code or default_code,
                                 "message": message or default_message}}).encode()
    extra = "Retry-After: 1\r\n" if status == 503 else ""
    head = (f"HTTP/1.1 {line}\r\nServer: {SERVER}\r\nDate: {email.utils.formatdate(usegmt=True)}\r\n"
            f"Connection: close\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Request-ID: {request_id}\r\nCache-Control: no-store\r\n{extra}\r\n")
    return head.encode("latin-1") + body


def _request_id(head: bytes) -> str:
    """The id the client sent in ``head`` when it is a safe one, else a new one."""
    from avenue import requestid  # in the worker: the master never loads the app's modules

    found = _REQUEST_ID_FIELD.search(head)
    return requestid.valid_or_new(found[1].decode("latin-1") if found else None)


def _method(head: bytes) -> str:
    return head.split(b" ", 1)[0].decode("latin-1") if b" " in head[:32] else "-"


def count_server_answer(head: bytes, status: int, request_id: str, seconds: float, body_bytes: int) -> None:
    """Count and log an answer the server gave itself, as the front door's answers are counted
    and logged (the same metrics, the same access line: avenue/requestlog.py)."""
    from avenue import metrics, requestlog  # in the worker only, as above
    from avenue.config import DEFAULTS

    method = _method(head)[:16]
    target = head.split(b" ", 2)[1][:200].decode("latin-1") if head.count(b" ") >= 2 else ""
    try:  # never the event loop's end: out of file descriptors, the metrics' files cannot open
        metrics.observe_request(SERVER_ROUTE, method, status, seconds, body_bytes)
        if os.environ.get("AVENUE_ACCESS_LOG", DEFAULTS["AVENUE_ACCESS_LOG"]).strip().lower() != "off":
            requestlog.log_front_door_answers([metrics.FrontDoorAnswer(
                request_id, method, SERVER_ROUTE, target, status, seconds, body_bytes, time.time())])
    except OSError:
        pass


# --- plain media requests, answered by the event loop ----------------------------------

#: The request lines the event loop answers itself: GET or HEAD of a media path of plain
#: characters (nothing percent-encoded, no query), HTTP/1.1.
_LOOP_REQUEST_LINE = re.compile(rb"(GET|HEAD) (/media/[A-Za-z0-9._~/-]+) HTTP/1\.1")
#: A header field the event loop takes as it is: a token name without "_" (gunicorn drops
#: those), printable ASCII in the value. Anything else (obsolete folding, 8-bit bytes, a
#: bare name) goes to a thread and gunicorn's parser, which accepts or refuses it as always.
_LOOP_FIELD = re.compile(rb"([!#$%&'*+.^`|~0-9A-Za-z-]+):([\t\x20-\x7e]*)")
#: Fields that change how a request is framed, kept, upgraded or trusted: a request with
#: any of them goes to a thread (``Connection: keep-alive`` alone is taken).
_THREAD_FIELDS = frozenset({
    b"content-length", b"transfer-encoding", b"expect", b"upgrade", b"http2-settings", b"te",
    b"trailer", b"connection", b"forwarded", b"x-forwarded-proto", b"x-forwarded-protocol",
    b"x-forwarded-ssl", b"front-end-https",
})


def loop_environ(head: bytes, cfg: Any) -> dict[str, str] | None:  # cfg: gunicorn's Config
    """The environ the front door needs for ``head`` (the request line and fields, without
    the blank line), or None unless the request is plain enough to answer in the event loop:
    a GET or HEAD of a plain media path, HTTP/1.1, one Host, no body, every field plain and
    named once, within gunicorn's size limits (``limit_request_*``). None is never an error:
    the request goes to a thread as it would have without this path."""
    lines = head.split(b"\r\n")
    request = _LOOP_REQUEST_LINE.fullmatch(lines[0])
    if (request is None or len(lines[0]) > cfg.limit_request_line > 0
            or len(lines) - 1 > cfg.limit_request_fields):
        return None
    environ = {"REQUEST_METHOD": request[1].decode(), "PATH_INFO": request[2].decode(),
               "RAW_URI": request[2].decode(), "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1"}
    for line in lines[1:]:
        field = _LOOP_FIELD.fullmatch(line)
        if field is None or len(line) + 2 > cfg.limit_request_field_size > 0:
            return None
        name, value = field[1].lower(), field[2].strip(b" \t")
        if name in _THREAD_FIELDS and not (name == b"connection" and value.lower() == b"keep-alive"):
            return None
        key = "HTTP_" + name.decode().upper().replace("-", "_")
        if key in environ:
            return None  # named twice: gunicorn joins or refuses it
        environ[key] = value.decode()
    return environ if "HTTP_HOST" in environ else None


_BLANKS = " \t"  # stripped from field values, as gunicorn does (RFC 9110 5.5)


def loop_response_head(status: str, headers: list[tuple[str, str]], date: str) -> bytes | None:
    """The status line and fields gunicorn would send for this kept-alive answer (its Server,
    Date and Connection fields, then the app's, hop-by-hop ones left out), or None when
    gunicorn would frame it otherwise: a body with no Content-Length (chunked)."""
    if not status.startswith("304") and not any(name.lower() == "content-length" for name, _ in headers):
        return None
    lines = [f"HTTP/1.1 {status}\r\nServer: {SERVER}\r\nDate: {date}\r\nConnection: keep-alive\r\n"]
    lines.extend(f"{name}: {value.strip(_BLANKS)}\r\n" for name, value in headers if not is_hoppish(name))
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


class SlowClientGuard:
    """The parser's view of the connection socket: every ``recv`` bounded by a deadline.

    In the head phase the deadline is absolute; in the body phase it follows
    :meth:`Limits.body_deadline_at`. A read past its deadline returns end-of-file (the parser
    then drops the connection, or werkzeug tells the app the client went away) and marks
    the guard ``tripped``: the worker closes the connection instead of reading a next
    request from the middle of a body. Timeouts gunicorn sets itself (its bounded drain of
    an unread body) still apply and raise as before.
    """

    def __init__(self, sock: socket.socket, limits: Limits) -> None:
        self.sock = sock
        self.limits = limits
        self.tripped = False
        self._own_timeout: float | None = None  # what gunicorn asked for with settimeout()
        self._head_deadline: float | None = None
        self._body_started: float | None = None
        self._received = 0
        self._last_read = 0.0

    def head(self, deadline: float) -> None:
        self._head_deadline, self._body_started = deadline, None

    def body(self) -> None:
        now = time.monotonic()
        self._head_deadline, self._body_started, self._received, self._last_read = None, now, 0, now

    def settimeout(self, timeout: float | None) -> None:
        self._own_timeout = timeout

    def gettimeout(self) -> float | None:
        return self._own_timeout

    def recv(self, size: int) -> bytes:
        now = time.monotonic()
        if self._head_deadline is not None:
            deadline = self._head_deadline
        elif self._body_started is not None:
            deadline = self.limits.body_deadline_at(self._body_started, self._received, self._last_read)
        else:
            deadline = None
        timeout = None if deadline is None else deadline - now
        ours = True
        if self._own_timeout is not None and (timeout is None or self._own_timeout < timeout):
            timeout, ours = self._own_timeout, False
        if timeout is not None and timeout <= 0:
            if not ours:
                raise TimeoutError("timed out")
            self.tripped = True
            return b""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(size)
        except TimeoutError:
            if not ours:
                raise
            self.tripped = True
            return b""
        finally:
            self.sock.settimeout(None)
        self._received += len(data)
        self._last_read = time.monotonic()
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class SendTimedOut(BrokenPipeError):
    """The client read the answer too slowly (``GUNICORN_SEND_TIMEOUT`` idle, or under
    ``GUNICORN_SEND_MIN_RATE``): closed like a client that went away."""


class PacedWriter:
    """The response's view of the connection socket: every write held to
    :meth:`Limits.send_deadline_at` from the answer's first byte. gthread's writes block
    with no deadline; the kernel's idle timeout alone lets a client that takes a few bytes
    every few seconds hold a thread for hours."""

    def __init__(self, sock: socket.socket, limits: Limits) -> None:
        self.sock = sock
        self.limits = limits
        self._started: float | None = None
        self._sent = 0
        self._last_sent = 0.0

    def _remaining(self) -> float:
        now = time.monotonic()
        if self._started is None:
            self._started = self._last_sent = now
        taken = max(0, self._sent - unsent(self.sock))
        remaining = self.limits.send_deadline_at(self._started, taken, self._last_sent) - now
        if remaining <= 0:
            raise SendTimedOut(errno.EPIPE, "the client read the answer too slowly")
        return remaining

    def _progress(self, sent: int) -> None:
        if sent:
            self._sent += sent
            self._last_sent = time.monotonic()

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        try:
            while view:
                self.sock.settimeout(self._remaining())
                try:
                    sent = self.sock.send(view)
                except TimeoutError as error:
                    raise SendTimedOut(errno.EPIPE, "the client read the answer too slowly") from error
                self._progress(sent)
                view = view[sent:]
        finally:
            self.sock.settimeout(None)

    def send(self, data: bytes | bytearray | memoryview) -> int:
        self.sendall(data)
        return len(data)

    def sendfile(self, file: IO[bytes], offset: int = 0, count: int | None = None) -> int:
        """``socket.sendfile`` a piece at a time, so the deadline is checked between pieces
        (gunicorn uses it for files on disk: the benchmark's baselines, never GridFS)."""
        total = 0
        try:
            while count is None or total < count:
                piece = 1024 * 1024 if count is None else min(1024 * 1024, count - total)
                self.sock.settimeout(self._remaining())
                try:
                    sent = self.sock.sendfile(file, offset + total, piece)
                except TimeoutError as error:
                    raise SendTimedOut(errno.EPIPE, "the client read the answer too slowly") from error
                if not sent:
                    break
                self._progress(sent)
                total += sent
        finally:
            self.sock.settimeout(None)
        return total

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class GuardedConn(TConn):
    """A gthread connection plus what the event loop has read of its next request."""

    def __init__(self, cfg: Any, sock: Any, client: Any, server: Any,
                 on_close: Callable[[GuardedConn], None] | None = None) -> None:
        super().__init__(cfg, sock, client, server)
        self.buffer = bytearray()
        self.wanted: int | None = None  # bytes of head + buffered body, once the head is complete
        self.deadline = 0.0
        self.head_deadline: float | None = None  # handed to the thread that parses the head
        self.head_length = 0
        self.body_started = 0.0
        self.opened = time.monotonic()
        self.drained = 0  # bytes read while lingering before the close
        self.guard: SlowClientGuard | None = None
        self.outgoing: list[memoryview] = []  # what the event loop still has to send of its answer
        self.sent = 0  # bytes of the event loop's answer sent so far
        self.answer_started = 0.0
        self.last_sent = 0.0
        self.peer = client[0] if isinstance(client, tuple) and client else str(client or "")
        self.key = self.peer  # who this is for the fair shares (the forwarded client, behind proxies)
        self.held = 0  # bytes of this connection's bodies counted against the memory bounds
        self.head = b""  # the request's head, for the server's own answers
        self.queued_at = 0.0  # when it began to wait for its client's share of threads
        self.too_slow = False  # its answer was given up on: closed with a reset
        self._on_close = on_close

    def close(self, graceful: bool = False) -> None:
        super().close(graceful)
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close(self)


class _CapturedAnswer:
    """Stands in for the client socket while gunicorn writes one of its HTML error pages,
    so the worker can send the same status in the API's JSON shape instead."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def setblocking(self, flag: bool) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self.data += data

    @property
    def status(self) -> int:
        parts = self.data.split(b" ", 2)
        return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 500


class GuardedThreadWorker(ThreadWorker):
    """gthread whose event loop reads request heads and bodies before any thread is
    committed, shares threads, connections and memory fairly between clients, and whose
    threads read and write under deadlines (see the module docstring)."""

    def init_process(self) -> None:
        self.limits = Limits.from_environment()
        # Connections whose head or body the event loop is reading.
        self.reading: dict[GuardedConn, None] = {}
        self.paused: dict[GuardedConn, None] = {}  # bodies not read on until memory is released
        self.lingering: dict[GuardedConn, None] = {}  # closing: answered, draining until the client closes
        self.writing: dict[GuardedConn, None] = {}  # the event loop's answers the client is reading
        # The fair shares: requests each client runs in threads, and those waiting for one.
        self.running: collections.Counter[str] = collections.Counter()
        self.waiting: dict[str, collections.deque[GuardedConn]] = {}
        self.held_total = 0  # bytes of bodies read by the event loop and not yet answered
        self.held_by: collections.Counter[str] = collections.Counter()
        self.connections_by: collections.Counter[str] = collections.Counter()  # per address
        quarter = 4  # one client gets at most a quarter of each of the worker's resources
        self.client_threads = self.limits.client_threads or max(1, self.cfg.threads // quarter)
        self.client_connections = (self.limits.client_connections
                                   or max(1, self.cfg.worker_connections // quarter))
        self.client_held = max(self.limits.buffer_body_bytes, self.limits.buffer_total_bytes // quarter)
        self._refused_connections = 0  # since the last log line about them
        self._refusals_logged = 0.0
        self._local = threading.local()  # the connection a thread handles (for handle_error)
        # The front door's, once the app is loaded (load_wsgi).
        self.answer_at_once: AnswerAtOnce | None = None
        self._date_second, self._date_text = 0, ""
        self._next_murder = 0.0
        self.busy = 0  # connections handed to the pool and not finished yet
        self.stopping_since: float | None = None  # when its graceful stop began
        self._accept_paused_until = 0.0  # out of file descriptors: accept again after this
        self.guarded = not self.cfg.is_ssl and "h2" not in self.cfg.http_protocols
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.answer_at_once = None
        # gunicorn's access log and request hooks see only what threads handle, so with the
        # access log on every request goes to a thread, as with GUNICORN_LOOP_MEDIA=0.
        if self.guarded and not self.cfg.accesslog and os.environ.get("GUNICORN_LOOP_MEDIA", "1") != "0":
            from avenue.media.wiring import Route

            front = Route.front_door_of(self.wsgi)
            if front is not None:
                self.answer_at_once = front.answer_at_once

    # --- the event loop: accepting while a thread is free, reading heads ----------------

    def set_accept_enabled(self, enabled: bool) -> None:
        """Accept only while a thread is free: with every thread busy, a new connection is
        better left in the kernel's backlog than queued in this event loop.
        The run loop calls this on every turn with whether ``worker_connections`` allows more."""
        if enabled and self.guarded and (self.busy >= self.cfg.threads
                                         or time.monotonic() < self._accept_paused_until):
            enabled = False
        super().set_accept_enabled(enabled)

    def enqueue_req(self, conn: TConn) -> None:
        """Give ``conn`` a thread, unless its client already runs its share of them: then it
        waits here, without a thread, until one of that client's requests is done."""
        if isinstance(conn, GuardedConn) and self.guarded:
            if self.running[conn.key] >= self.client_threads:
                conn.queued_at = time.monotonic()
                self.waiting.setdefault(conn.key, collections.deque()).append(conn)
                return
            self.running[conn.key] += 1
        self.busy += 1
        if self.busy >= self.cfg.threads:
            self.set_accept_enabled(False)  # the run loop enables it again once a thread is free
        super().enqueue_req(conn)

    def finish_request(self, conn: TConn, fs: Future[Any]) -> None:
        """Back from a thread: as gthread, but a connection to close lingers in the event loop
        (gthread's graceful close waits up to 2 s for the client right here, in the loop every
        connection shares: a client that never closes its side stalled the whole worker), and
        the client's share and memory are given back."""
        self.busy -= 1
        if isinstance(conn, GuardedConn) and self.guarded:
            self._release(conn)
            self._done_running(conn.key)
        if isinstance(conn, GuardedConn) and _closes(fs):
            self.nr_conns -= 1
            if conn.too_slow:
                abort(conn.sock)
                conn.close()
            else:
                self._linger(conn)
            return
        super().finish_request(conn, fs)

    def _done_running(self, key: str) -> None:
        """One of ``key``'s requests is done: the next one it has waiting takes a thread."""
        self.running[key] -= 1
        if self.running[key] <= 0:
            del self.running[key]
        queue = self.waiting.get(key)
        if queue:
            self.enqueue_req(queue.popleft())
            if not queue:
                del self.waiting[key]

    def _cap_keepalive(self, deadline: float) -> None:
        """gthread calls this once, as its graceful stop begins (TERM, a recycle, the master
        gone): first take what the kernel queued for this worker, then stop listening."""
        self.stopping_since = time.monotonic()  # gunicorn.conf.py's worker_exit: what is left of the grace
        self._stop_listening()
        super()._cap_keepalive(deadline)

    def _stop_listening(self) -> None:
        """Accept every connection already queued on this worker's listening sockets (their
        clients connected and may have sent a whole upload: they are read and answered like
        any other), then close the sockets, so that a connection made from now on is refused
        at connect instead of being queued and reset when the worker exits (see the module
        docstring). A connection whose handshake completes between the last accept and the
        close is still reset: a window of microseconds, not of ``graceful_timeout``."""
        taken = 0
        for listener in self.sockets:
            try:
                listener.setblocking(False)
                queued = select.poll()  # not select(): a worker's descriptors go past 1024
                queued.register(listener.fileno(), select.POLLIN)
                # At most a backlog's worth: under a flood of connections this must end.
                for _ in range(max(1, self.cfg.backlog)):
                    if not queued.poll(0) or time.monotonic() < self._accept_paused_until:
                        break
                    before = self.nr_conns
                    self.accept(listener)
                    taken += self.nr_conns > before
            except OSError as error:  # out of file descriptors, a socket gone: close it anyway
                self.log.warning("taking the queued connections on stopping failed: %s", error)
            listener.close()
        if taken:
            self.log.info("stopping: answering %d connection(s) the kernel had queued", taken)

    def accept(self, listener: Any) -> None:
        if not self.guarded:
            return super().accept(listener)
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                # Out of file descriptors (a flood of connections, a low `ulimit -n`): pause
                # accepting for a moment; gthread raised here and the worker died with every
                # connection it held.
                self.log.warning("cannot accept connections for now: %s", e)
                self._accept_paused_until = time.monotonic() + ACCEPT_PAUSE_SECONDS
                self.set_accept_enabled(False)
                return
            raise
        peer = client_addr[0] if isinstance(client_addr, tuple) and client_addr else str(client_addr or "")
        if self.limits.proxy_count == 0 and self.connections_by[peer] >= self.client_connections:
            self._refuse_connection(client_sock, peer)
            return
        self.nr_conns += 1
        self.connections_by[peer] += 1
        # The kernel's own idle timeout on writes (SO_SNDTIMEO): a write that could not hand
        # the client a single byte for send_timeout seconds fails instead of blocking forever.
        seconds = self.limits.send_timeout
        client_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                               struct.pack("ll", int(seconds), int(seconds % 1 * 1_000_000)))
        self._shed_idle()
        conn = GuardedConn(self.cfg, client_sock, client_addr, listener.getsockname(), self._closed)
        self._read_request(conn)

    def _closed(self, conn: GuardedConn) -> None:
        """A connection is closed for good: its address holds one fewer, its memory is free."""
        self._release(conn)
        self.connections_by[conn.peer] -= 1
        if self.connections_by[conn.peer] <= 0:
            del self.connections_by[conn.peer]

    def _refuse_connection(self, sock: socket.socket, peer: str) -> None:
        """One address holds its share of connections already: 503 and close at once. Counted
        in the metrics; logged once a second at most (a flood must not become one of logs)."""
        answer = refusal(503, _request_id(b""), *_TOO_MANY_CONNECTIONS)
        try:
            sock.setblocking(False)
            sock.send(answer)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        sock.close()
        from avenue import metrics  # in the worker only

        try:  # as in count_server_answer: never the event loop's end
            metrics.observe_request(SERVER_ROUTE, "-", 503, 0.0, 0)
        except OSError:
            pass
        self._refused_connections += 1
        now = time.monotonic()
        if now - self._refusals_logged >= 1.0:
            self.log.warning("refused %d connection(s): %s holds %d, its share of this worker",
                             self._refused_connections, peer, self.client_connections)
            self._refused_connections, self._refusals_logged = 0, now

    def _shed_idle(self) -> None:
        """Near ``worker_connections``, close idle connections (kept alive after an answer,
        oldest first; then open without a byte sent) down to :data:`IDLE_LOW_WATER` of it, so
        sockets that send nothing cannot keep anyone else out."""
        if self.nr_conns < self.worker_connections * IDLE_HIGH_WATER:
            return
        target = self.worker_connections * IDLE_LOW_WATER
        while self.nr_conns > target and self.keepalived_conns:
            conn = self.keepalived_conns.popleft()
            try:
                self.poller.unregister(conn.sock)
            except (OSError, KeyError, ValueError):
                pass
            self.nr_conns -= 1
            conn.close()
        for conn in [c for c in self.reading if not c.buffer]:
            if self.nr_conns <= target:
                break
            self._close(conn)

    def on_client_socket_readable(self, conn: TConn, client: Any) -> None:
        """A kept-alive connection sends its next request: read its head here too."""
        if not isinstance(conn, GuardedConn):
            return super().on_client_socket_readable(conn, client)
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_request(conn)

    def _read_request(self, conn: GuardedConn) -> None:
        """Start reading a request: at once if its bytes are there (a kept-alive connection
        that became readable, a client that sent with its handshake), else when they come."""
        conn.sock.setblocking(False)
        conn.buffer = bytearray()
        conn.wanted = None
        conn.head_deadline = None
        conn.head = b""
        conn.deadline = time.monotonic() + self.limits.header_timeout
        self._on_readable(conn)

    def _on_readable(self, conn: GuardedConn, _fileobj: object = None) -> None:
        if conn.wanted is not None and not conn.held:
            self._pause(conn)  # its body is read once memory is reserved for it
            return
        try:
            data = conn.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            data = None
        except OSError:
            data = b""
        if data == b"":  # the client went away
            self._close(conn)
            return
        if data:
            conn.buffer += data
            if conn.wanted is None:
                end = conn.buffer.find(b"\r\n\r\n")
                if end >= 0:
                    if not self._head_complete(conn, end):
                        return
                elif len(conn.buffer) >= BUFFERED_HEAD_BYTES:
                    conn.head = bytes(conn.buffer[:2048])
                    self._dispatch(conn)
                    return
            if conn.wanted is not None:
                if len(conn.buffer) >= conn.wanted:
                    self._dispatch(conn)
                    return
                conn.deadline = self.limits.body_deadline_at(
                    conn.body_started, len(conn.buffer) - conn.head_length, time.monotonic())
        if conn not in self.reading:
            self.reading[conn] = None
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _head_complete(self, conn: GuardedConn, end: int) -> bool:
        """The head ends at ``end``: note who sent it and how much body to read; answer
        ``100 Continue`` for a body the loop reads. False when the connection is gone."""
        head = bytes(conn.buffer[:end])
        plan = _body_to_buffer(head, self.limits.buffer_body_bytes)
        conn.key = client_of(head, conn.peer, self.limits.proxy_count)
        if plan.expects_continue:
            # Answered here, and taken out of the head so gunicorn does not answer it again.
            stripped = _EXPECT_CONTINUE.sub(b"", head + b"\r\n", count=1)[:-2]
            conn.buffer[:end] = stripped
            end, head = len(stripped), stripped
            try:
                conn.sock.send(_CONTINUE)
            except OSError:
                self._close(conn)
                return False
        conn.head = head
        conn.head_length = end + 4
        conn.wanted = conn.head_length + plan.length
        conn.head_deadline = conn.deadline
        conn.body_started = time.monotonic()
        if len(conn.buffer) < conn.wanted and not self._reserve(conn):
            self._pause(conn)  # read on once memory is released
            return False
        return True

    # --- the event loop: memory held by bodies being read --------------------------------

    def _reserve(self, conn: GuardedConn) -> bool:
        """Reserve memory for ``conn``'s whole body before reading it, within the worker's
        bound and its client's share; False when there is no room yet.

        The whole body at once, not each read as it comes: counted per read, two bodies half
        read could fill a client's share between them and wait for each other until both
        timed out (an admin's two 10 MB uploads at once); a reserved body is always read to
        its end or its deadline, and then gives its memory back."""
        size = max(0, conn.wanted - conn.head_length) if conn.wanted is not None else 0
        if (self.held_total + size > self.limits.buffer_total_bytes
                or self.held_by[conn.key] + size > self.client_held):
            return False
        conn.held = size
        self.held_total += size
        self.held_by[conn.key] += size
        return True

    def _release(self, conn: GuardedConn) -> None:
        """``conn``'s body is answered (or abandoned): its memory is free again, and bodies
        paused for memory are read where it now allows, first paused first."""
        if conn.held:
            self.held_total -= conn.held
            self.held_by[conn.key] -= conn.held
            if self.held_by[conn.key] <= 0:
                del self.held_by[conn.key]
            conn.held = 0
            for paused in list(self.paused):
                if self._reserve(paused):
                    del self.paused[paused]
                    self._on_readable(paused)

    def _pause(self, conn: GuardedConn) -> None:
        self._stop_reading(conn)
        self.paused[conn] = None

    def _stop_reading(self, conn: GuardedConn) -> None:
        if self.reading.pop(conn, False) is None:
            self.poller.unregister(conn.sock)
        self.paused.pop(conn, None)

    def _dispatch(self, conn: GuardedConn) -> None:
        """The request is ready to parse: give the connection to a thread."""
        self._stop_reading(conn)
        if conn.head_deadline is None:  # an oversized head: the thread reads on, same deadline
            conn.head_deadline = conn.deadline
        if self._answer_in_loop(conn):
            return
        conn.data_ready = True
        self.enqueue_req(conn)

    # --- the event loop: cached media answered without a thread --------------------------

    def _answer_in_loop(self, conn: GuardedConn) -> bool:
        """Answer a plain GET or HEAD of cached public media here, in the event loop, and keep
        the connection alive; False (nothing done) for any other request, which a thread takes.

        Such an answer needs no thread, no database and nothing of gunicorn's request parsing
        and response machinery, which cost a front-door answer more than the answer itself
        (a py-spy profile under wrk: gunicorn's parsing, thread hand-off, writing and event
        loop about 70 % of the workers' samples, the front door 15 %). The answer is the front door's own
        (:meth:`avenue.media.serve.frontdoor.FrontDoor.answer_at_once`: same cache, same headers, same
        conditional logic, counted in the same metrics), framed as gunicorn frames it
        (tests/system/test_server.py compares the bytes). Sent without blocking: what the client does
        not take at once is sent as it reads, under the same idle timeout as a thread's write
        (``GUNICORN_SEND_TIMEOUT``), so a slow reader never holds the loop or a thread."""
        if (self.answer_at_once is None or not self.alive or conn.wanted != conn.head_length
                or len(conn.buffer) != conn.head_length or self.nr + 1 >= self.max_requests
                or len(self.keepalived_conns) >= self.max_keepalived):
            return False  # a body, a pipelined request, a worker stopping or recycling: a thread
        try:
            environ = loop_environ(bytes(conn.buffer[:conn.head_length - 4]), self.cfg)
            answer = self.answer_at_once(environ) if environ is not None else None
            # The front door's answers always carry a length (or are 304s): a None head only
            # guards the framing should that ever change (the thread then answers again).
            head = loop_response_head(answer[0], answer[1], self._http_date()) if answer else None
        except Exception:  # never the event loop's end: the thread's path answers, or reports
            self.log.exception("answering %r in the event loop failed", bytes(conn.buffer[:200]))
            return False
        if answer is None or head is None:
            return False
        body = answer[2]
        self.nr += 1
        conn.buffer = bytearray()
        conn.wanted = None
        conn.outgoing = [memoryview(head), *(memoryview(part) for part in body if part)]
        conn.deadline = time.monotonic() + self.limits.send_timeout
        self._write_some(conn)
        return True

    def _http_date(self) -> str:
        """The Date field's value, formatted once a second (gunicorn formats it per answer)."""
        now = int(time.time())
        if now != self._date_second:
            self._date_second, self._date_text = now, email.utils.formatdate(now, usegmt=True)
        return self._date_text

    def _write_some(self, conn: GuardedConn, _fileobj: object = None) -> None:
        """Send what the client takes now; wait for it to read the rest (without blocking),
        under the same deadline as a thread's answer (:meth:`Limits.send_deadline_at`)."""
        now = time.monotonic()
        if conn not in self.writing:  # the answer's first write
            conn.answer_started, conn.last_sent, conn.sent = now, now, 0
        try:
            sent = conn.sock.sendmsg(conn.outgoing)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # the client went away
            self._end_write(conn, done=False)
            return
        if sent:
            conn.sent += sent
            conn.last_sent = now
        conn.deadline = self.limits.send_deadline_at(
            conn.answer_started, max(0, conn.sent - unsent(conn.sock)), conn.last_sent)
        while sent:
            first = conn.outgoing[0]
            if sent < len(first):
                conn.outgoing[0] = first[sent:]
                break
            sent -= len(first)
            conn.outgoing.pop(0)
        if not conn.outgoing:
            self._end_write(conn, done=True)
        elif conn not in self.writing:
            self.writing[conn] = None
            self.poller.register(conn.sock, selectors.EVENT_WRITE, partial(self._write_some, conn))

    def _end_write(self, conn: GuardedConn, done: bool) -> None:
        """An answer sent (the connection is kept alive, as gthread keeps it after a thread's
        answer) or given up (closed)."""
        if self.writing.pop(conn, False) is None:
            self.poller.unregister(conn.sock)
        conn.outgoing = []
        if not done:
            self.nr_conns -= 1
            abort(conn.sock)
            conn.close()
            return
        conn.set_timeout()
        if not self.alive:
            assert conn.timeout is not None  # set_timeout() just set it
            conn.timeout = min(conn.timeout, time.monotonic() + STOP_KEEPALIVE_LINGER)
        self.keepalived_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn))

    def _close(self, conn: GuardedConn, status: int | None = None) -> None:
        """Close ``conn`` (still being read, or waiting for its client's share), first
        answering ``status`` in the API's JSON shape when given."""
        self._stop_reading(conn)
        self.nr_conns -= 1
        if status is None:
            conn.close()
            return
        request_id = _request_id(conn.head)
        answer = refusal(status, request_id)
        try:
            conn.sock.setblocking(False)
            conn.sock.send(answer)
        except OSError:
            pass
        count_server_answer(conn.head, status, request_id, time.monotonic() - conn.opened, len(answer))
        self._linger(conn)

    def _linger(self, conn: GuardedConn) -> None:
        """Close like gunicorn's graceful close (RFC 9112 9.6: FIN first, then read what the
        client still sends for up to 2 s, so the last answer is not lost to a reset), without
        waiting: the event loop drains the socket and closes it when the client does."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            conn.close()
            return
        conn.sock.setblocking(False)
        conn.deadline = time.monotonic() + LINGER_SECONDS
        conn.drained = 0
        self.lingering[conn] = None
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_linger_readable, conn))

    def _on_linger_readable(self, conn: GuardedConn, _fileobj: object) -> None:
        try:
            data = conn.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        conn.drained += len(data)
        if not data or conn.drained >= LINGER_BYTES:
            self._end_linger(conn)

    def _end_linger(self, conn: GuardedConn) -> None:
        del self.lingering[conn]
        self.poller.unregister(conn.sock)
        conn.close()

    def murder_pending(self) -> None:
        """Also close connections whose head or body is overdue (a JSON 408 if they sent
        anything; an idle one is just closed, like an expired keep-alive), requests that
        waited too long for their client's share of threads (503), and answers the client
        reads too slowly."""
        super().murder_pending()
        now = time.monotonic()
        if now < self._next_murder:
            return
        self._next_murder = now + 0.25
        for conn in [c for c in (*self.reading, *self.paused) if c.deadline <= now]:
            self._close(conn, 408 if conn.buffer else None)
        for key, queue in list(self.waiting.items()):
            while queue and queue[0].queued_at + self.limits.queue_timeout <= now:
                self._close(queue.popleft(), 503)
            if not queue:
                del self.waiting[key]
        for conn in [c for c in self.lingering if c.deadline <= now]:
            self._end_linger(conn)
        for conn in [c for c in self.writing if c.deadline <= now]:
            self._end_write(conn, done=False)  # the client reads too slowly (send_deadline_at)

    # --- the threads ---------------------------------------------------------------------

    def handle(self, conn: TConn) -> object:
        if not isinstance(conn, GuardedConn):
            return super().handle(conn)
        self._local.conn = conn
        conn.sock.setblocking(True)
        conn.init()
        if conn.guard is None:
            conn.guard = SlowClientGuard(conn.sock, self.limits)
            conn.parser.unreader.sock = conn.guard
        if conn.buffer:
            conn.parser.unreader.unread(bytes(conn.buffer))
            conn.buffer = bytearray()
        # A request pipelined behind the last one was not read by the event loop: its head
        # gets a deadline of its own.
        deadline = conn.head_deadline or time.monotonic() + self.limits.header_timeout
        conn.head_deadline = None
        conn.guard.head(deadline)
        conn.guard.tripped = False
        try:
            keepalive = super().handle(conn)
        finally:
            self._local.conn = None
        if conn.guard.tripped:
            return False  # never read the next request from the middle of a body
        return keepalive

    def handle_request(self, req: Any, conn: TConn) -> bool:
        if not isinstance(conn, GuardedConn):
            return super().handle_request(req, conn)
        assert conn.guard is not None  # handle() gave it one before gthread calls this
        conn.guard.body()
        if not _body_in_memory(req, conn):
            # Should the app answer before reading it all, what is left could only be drained
            # from the network at the client's pace: close after the answer, and say so.
            req.must_close = True
        sock = conn.sock
        conn.sock = PacedWriter(sock, self.limits)
        try:
            return super().handle_request(req, conn)
        except SendTimedOut:
            conn.too_slow = True
            raise
        except BlockingIOError as error:
            # SO_SNDTIMEO expired: the client stopped reading. Closed like a client that went
            # away (gthread logs that at debug level, not as a socket error with a traceback).
            raise BrokenPipeError(errno.EPIPE, "the client read nothing for GUNICORN_SEND_TIMEOUT") from error
        finally:
            conn.sock = sock

    def _keepalive_after(self, conn: TConn, keepalive: bool) -> bool:
        """Keep the connection when what is left of the body is already in memory, however
        much (gunicorn drains at most 64 KiB, then closes a connection its answer announced
        as kept alive, and the client's next request is lost); otherwise as gunicorn."""
        if keepalive and isinstance(conn, GuardedConn) and _body_in_memory(conn.parser.mesg, conn):
            # Kept alive, not closed: a client retries on the same connection after a refusal
            # (a 413, a 401), and dropping bytes already in memory costs nothing to wait for.
            _drop_buffered_body(conn.parser.mesg)
            return bool(conn.parser.finish_body(deadline=time.monotonic() + self.limits.body_timeout,
                                                max_bytes=1 << 62))
        return super()._keepalive_after(conn, keepalive)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn's own refusals (a request line or head too long, bad syntax...) with its
        status and access log, but in the API's JSON shape, traced and counted."""
        captured = _CapturedAnswer()
        super().handle_error(req, captured, addr, exc)
        conn = getattr(self._local, "conn", None)
        head = conn.head if isinstance(conn, GuardedConn) else b""
        request_id = _request_id(head)
        answer = refusal(captured.status, request_id)
        try:
            client.setblocking(False)
            client.sendall(answer)
        except Exception:  # the client is gone: nothing to tell it
            self.log.debug("Failed to send error message.")
        count_server_answer(head, captured.status, request_id, 0.0, len(answer))


def _body_in_memory(req: Any, conn: GuardedConn) -> bool:  # req: gunicorn's Request
    """Whether what is left of ``req``'s body is already in memory (the event loop read it),
    so that draining it costs no wait on the client."""
    body = getattr(req, "body", None)
    if body is None:
        return True
    reader = body.reader
    if not isinstance(reader, LengthReader):
        return False  # chunked, or read to the end of the connection: only reading tells
    if reader.length == 0:
        return True
    with conn.parser.unreader.buf.getbuffer() as view:
        buffered: int = view.nbytes
        return reader.length <= buffered


def _drop_buffered_body(req: Any) -> None:  # req: gunicorn's Request, its body in memory
    """Discard what is left of ``req``'s body (in memory: :func:`_body_in_memory`) in one read
    of its reader, which takes it from the unreader's buffer in one slice. gunicorn's
    ``finish_body`` reads 1 KiB at a time, and each read copies all the unreader still holds:
    quadratic in the body, past the body deadline at about 12 MiB."""
    body = getattr(req, "body", None)
    if body is not None and isinstance(body.reader, LengthReader) and body.reader.length:
        body.reader.read(body.reader.length)
