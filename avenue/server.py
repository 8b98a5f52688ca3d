"""The gunicorn worker Avenue runs under: gthread, with slow clients kept off its threads.

gunicorn's gthread worker gives each connection a thread of its pool as soon as its first
byte arrives, then reads the request head and body with blocking reads and no deadline. A
client that sends a header line every few seconds (slowloris), or a body a byte at a time,
holds that thread for as long as it likes: ten of them starved a worker of 4 threads, and
``/healthz`` stopped answering.

:class:`GuardedThreadWorker` keeps gthread and changes six things:

- **The event loop reads the request head, and a small body,** not a thread: it collects the
  head, and a body of at most :data:`BUFFERED_BODY_BYTES` announced by Content-Length,
  without blocking, and hands the connection to the pool only once they are complete. The
  head must be complete within ``GUNICORN_HEADER_TIMEOUT`` seconds (10) of the connection's
  opening (of its first byte, on a kept-alive connection); a buffered body follows the body
  rule below. A client too slow is answered 408 and closed. Waiting costs a socket and a few
  kilobytes, never a thread: slow heads are limited only by ``worker_connections``.
- **A body read by a thread has a deadline**: no read waits longer than
  ``GUNICORN_BODY_TIMEOUT`` seconds (10), and the body must arrive at an average of at least
  ``GUNICORN_BODY_MIN_RATE`` bytes per second (1024) once that grace period is over (Apache's
  ``mod_reqtimeout`` rule). Past it the application sees the client as gone (werkzeug answers
  400) and the connection is closed, never read on. Large bodies, chunked ones and
  ``Expect: 100-continue`` requests take this path: a client sending one of those slowly
  still holds a thread, for a bounded time; the threads of a worker absorb a few dozen.
- **A response write has an idle timeout**: a write that cannot hand the client a byte for
  ``GUNICORN_SEND_TIMEOUT`` seconds (60) fails and the connection is closed (the kernel's
  ``SO_SNDTIMEO``, counted from the write's last progress, so a stalled client is cut off
  within 2-3 times that; one that keeps reading, however slowly, never is). gthread waited
  for a client that stopped reading forever, a thread with it.
- **A worker whose threads are all busy stops accepting**, so a new connection goes to a
  worker with a free thread (or waits in the kernel's backlog) instead of queueing here; one
  out of file descriptors pauses accepting for a moment instead of dying.
- **Cached public media is answered by the event loop itself**: a plain GET or HEAD of an
  image the worker's media cache holds (or its exact-ETag 304) is answered right where its
  head was read, with the front door's own answer (avenue/media/frontdoor.py), and written
  without blocking; no thread, no gunicorn parsing. Anything else, or any doubt, goes to a
  thread exactly as before (:func:`loop_environ`). ``GUNICORN_LOOP_MEDIA=0`` turns it off;
  gunicorn's access log (``GUNICORN_ACCESS_LOG``) and ``AVENUE_ACCESS_LOG=all`` do too, since
  they log what threads handle.
- **Closing connections linger in the event loop**: gthread's graceful close (shut down
  writing, then read until the client closes, up to 2 s) ran in the event loop every
  connection shares, so each client that never closed its side stalled the worker 2 s.

The read deadlines are enforced on the parser's reads (a wrapper around the connection
socket installed as the parser's source), the write timeout by the kernel. Behind nginx
(deploy/nginx/avenue.conf), nginx buffers heads and bodies and none of this is reached; it
keeps a directly exposed gunicorn, or one behind a load balancer that does not buffer,
answering. Built on gunicorn 27.0.1's ThreadWorker internals (pinned in requirements.txt;
tests/test_server.py shows the behaviour end to end); with TLS or HTTP/2 configured in
gunicorn the worker behaves exactly as gthread.
"""

from __future__ import annotations

import email.utils
import errno
import os
import re
import selectors
import socket
import struct
import time
from dataclasses import dataclass
from functools import partial

from gunicorn import SERVER
from gunicorn.util import is_hoppish
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

#: The largest body the event loop reads before handing the request to a thread (a login,
#: any JSON API write). Bounds the loop's memory to this much per open connection.
BUFFERED_BODY_BYTES = 64 * 1024
#: A head still incomplete at this size goes to a thread (gunicorn's own limits refuse it).
BUFFERED_HEAD_BYTES = 64 * 1024
_READ_SIZE = 64 * 1024
# A closing connection is drained for at most this long and this much (gunicorn's own values).
LINGER_SECONDS = 2.0
LINGER_BYTES = 64 * 1024
ACCEPT_PAUSE_SECONDS = 0.5
_TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")


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
    """How long a client may take to send its request and to read its answer."""

    header_timeout: float = 10.0  # seconds for the whole head (from the connection's opening)
    body_timeout: float = 10.0  # seconds any body read may wait; also the rate's grace period
    body_min_rate: float = 1024.0  # bytes per second a body must average after the grace period
    send_timeout: float = 60.0  # seconds a response write may wait for the client to read anything

    @classmethod
    def from_environment(cls) -> Limits:
        return cls(
            header_timeout=_number("GUNICORN_HEADER_TIMEOUT", cls.header_timeout),
            body_timeout=_number("GUNICORN_BODY_TIMEOUT", cls.body_timeout),
            body_min_rate=_number("GUNICORN_BODY_MIN_RATE", cls.body_min_rate),
            send_timeout=_number("GUNICORN_SEND_TIMEOUT", cls.send_timeout),
        )

    def body_deadline(self, started: float, received: int, last_read: float) -> float:
        """When a body that started at ``started`` and has ``received`` bytes times out."""
        by_rate = started + self.body_timeout + received / self.body_min_rate
        return min(last_read + self.body_timeout, by_rate)


def _body_to_buffer(head: bytes) -> int:
    """How many body bytes the event loop should read after ``head`` before a thread takes
    the request: its Content-Length when that is small and plain, else 0.

    This only decides how much is read ahead; gunicorn's parser still frames the request
    from the same bytes, so a head this glance misreads is refused or framed by gunicorn
    exactly as without it.
    """
    lowered = head.lower()
    if b"content-length" not in lowered:
        return 0
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name in (b"transfer-encoding", b"expect"):
            return 0  # chunked: framing is the parser's; 100-continue: the client waits for us
        if name == b"content-length":
            if length is not None or not value.strip().isdigit():
                return 0
            length = int(value.strip())
    if length is None or length > BUFFERED_BODY_BYTES:
        return 0
    return length


def _closes(fs) -> bool:
    """Whether a finished request's connection is to be closed gracefully (not kept alive).
    A request that raised is left to gthread, which closes it at once."""
    if fs.cancelled():
        return True
    try:
        return not fs.result()
    except Exception:
        return False


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


def loop_environ(head: bytes, cfg) -> dict[str, str] | None:
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
    :meth:`Limits.body_deadline`. A read past its deadline returns end-of-file (the parser
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
            deadline = self.limits.body_deadline(self._body_started, self._received, self._last_read)
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

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


class GuardedConn(TConn):
    """A gthread connection plus what the event loop has read of its next request."""

    def __init__(self, cfg, sock, client, server) -> None:
        super().__init__(cfg, sock, client, server)
        self.buffer = bytearray()
        self.wanted: int | None = None  # bytes of head + buffered body, once the head is complete
        self.deadline = 0.0
        self.head_deadline: float | None = None  # handed to the thread that parses the head
        self.head_length = 0
        self.body_started = 0.0
        self.drained = 0  # bytes read while lingering before the close
        self.guard: SlowClientGuard | None = None
        self.outgoing: list[memoryview] = []  # what the event loop still has to send of its answer


class GuardedThreadWorker(ThreadWorker):
    """gthread whose event loop reads request heads (and small bodies) before any thread
    is committed, and whose threads read bodies under a deadline (see the module docstring)."""

    def init_process(self) -> None:
        self.limits = Limits.from_environment()
        # Connections whose head or small body the event loop is reading.
        self.reading: dict[GuardedConn, None] = {}
        self.lingering: dict[GuardedConn, None] = {}  # closing: answered, draining until the client closes
        self.writing: dict[GuardedConn, None] = {}  # the event loop's answers the client is reading
        self.answer_at_once = None  # the front door's, once the app is loaded (load_wsgi)
        self._date_second, self._date_text = 0, ""
        self._next_murder = 0.0
        self.busy = 0  # connections handed to the pool and not finished yet
        self._accept_paused_until = 0.0  # out of file descriptors: accept again after this
        self.guarded = not self.cfg.is_ssl and "h2" not in self.cfg.http_protocols
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.answer_at_once = None
        # gunicorn's access log and request hooks see only what threads handle, so with the
        # access log on every request goes to a thread, as with GUNICORN_LOOP_MEDIA=0.
        if self.guarded and not self.cfg.accesslog and os.environ.get("GUNICORN_LOOP_MEDIA", "1") != "0":
            from avenue.media import front_door_of  # here, in the worker: the master never loads the app

            front = front_door_of(self.wsgi)
            if front is not None:
                self.answer_at_once = front.answer_at_once

    # --- the event loop: accepting while a thread is free, reading heads ----------------

    def set_accept_enabled(self, enabled: bool) -> None:
        """Accept only while a thread is free: with every thread busy, a new connection is
        better taken by another worker (or waits in the kernel's backlog) than queued here.
        The run loop calls this on every turn with whether ``worker_connections`` allows more."""
        if enabled and self.guarded and (self.busy >= self.cfg.threads
                                         or time.monotonic() < self._accept_paused_until):
            enabled = False
        super().set_accept_enabled(enabled)

    def enqueue_req(self, conn) -> None:
        self.busy += 1
        if self.busy >= self.cfg.threads:
            self.set_accept_enabled(False)  # the run loop enables it again once a thread is free
        super().enqueue_req(conn)

    def finish_request(self, conn, fs) -> None:
        """Back from a thread: as gthread, but a connection to close lingers in the event loop
        (gthread's graceful close waits up to 2 s for the client right here, in the loop every
        connection shares: a client that never closes its side stalled the whole worker)."""
        self.busy -= 1
        if isinstance(conn, GuardedConn) and _closes(fs):
            self.nr_conns -= 1
            self._linger(conn)
            return
        super().finish_request(conn, fs)

    def accept(self, listener) -> None:
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
        self.nr_conns += 1
        # The kernel's own idle timeout on writes (SO_SNDTIMEO): a write that could not hand
        # the client a single byte for send_timeout seconds fails instead of blocking forever.
        seconds = self.limits.send_timeout
        client_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                               struct.pack("ll", int(seconds), int(seconds % 1 * 1_000_000)))
        self._read_request(GuardedConn(self.cfg, client_sock, client_addr, listener.getsockname()))

    def on_client_socket_readable(self, conn, client) -> None:
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
        conn.deadline = time.monotonic() + self.limits.header_timeout
        self._on_readable(conn)

    def _on_readable(self, conn: GuardedConn, _fileobj=None) -> None:
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
                    conn.head_length = end + 4
                    conn.wanted = conn.head_length + _body_to_buffer(bytes(conn.buffer[:end]))
                    conn.head_deadline = conn.deadline
                    conn.body_started = time.monotonic()
                elif len(conn.buffer) >= BUFFERED_HEAD_BYTES:
                    self._dispatch(conn)
                    return
            if conn.wanted is not None:
                if len(conn.buffer) >= conn.wanted:
                    self._dispatch(conn)
                    return
                conn.deadline = self.limits.body_deadline(
                    conn.body_started, len(conn.buffer) - conn.head_length, time.monotonic())
        if conn not in self.reading:
            self.reading[conn] = None
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _stop_reading(self, conn: GuardedConn) -> None:
        if self.reading.pop(conn, False) is None:
            self.poller.unregister(conn.sock)

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
        (:meth:`avenue.media.FrontDoor.answer_at_once`: same cache, same headers, same
        conditional logic, counted in the same metrics), framed as gunicorn frames it
        (tests/test_server.py compares the bytes). Sent without blocking: what the client does
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

    def _write_some(self, conn: GuardedConn, _fileobj=None) -> None:
        """Send what the client takes now; wait for it to read the rest (without blocking)."""
        try:
            sent = conn.sock.sendmsg(conn.outgoing)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # the client went away
            self._end_write(conn, done=False)
            return
        if sent:
            conn.deadline = time.monotonic() + self.limits.send_timeout
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
            conn.close()
            return
        conn.set_timeout()
        if not self.alive:
            conn.timeout = min(conn.timeout, time.monotonic() + STOP_KEEPALIVE_LINGER)
        self.keepalived_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn))

    def _close(self, conn: GuardedConn, answer: bytes = b"") -> None:
        self._stop_reading(conn)
        self.nr_conns -= 1
        if not answer:
            conn.close()
            return
        try:
            conn.sock.send(answer)
        except OSError:
            pass
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

    def _on_linger_readable(self, conn: GuardedConn, _fileobj) -> None:
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
        """Also close connections whose head or buffered body is overdue (408 if they sent
        anything; an idle one is just closed, like an expired keep-alive)."""
        super().murder_pending()
        now = time.monotonic()
        if now < self._next_murder:
            return
        self._next_murder = now + 0.25
        for conn in [c for c in self.reading if c.deadline <= now]:
            self._close(conn, _TIMED_OUT if conn.buffer else b"")
        for conn in [c for c in self.lingering if c.deadline <= now]:
            self._end_linger(conn)
        for conn in [c for c in self.writing if c.deadline <= now]:
            self._end_write(conn, done=False)  # the client read nothing for GUNICORN_SEND_TIMEOUT

    # --- the threads ---------------------------------------------------------------------

    def handle(self, conn):
        if not isinstance(conn, GuardedConn):
            return super().handle(conn)
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
        keepalive = super().handle(conn)
        if conn.guard.tripped:
            return False  # never read the next request from the middle of a body
        return keepalive

    def handle_request(self, req, conn):
        if not isinstance(conn, GuardedConn):
            return super().handle_request(req, conn)
        conn.guard.body()
        try:
            return super().handle_request(req, conn)
        except BlockingIOError as error:
            # SO_SNDTIMEO expired: the client stopped reading. Closed like a client that went
            # away (gthread logs that at debug level, not as a socket error with a traceback).
            raise BrokenPipeError(errno.EPIPE, "the client read nothing for GUNICORN_SEND_TIMEOUT") from error
