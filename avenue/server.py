"""The gunicorn worker Avenue runs under: gthread, with slow clients kept off its threads.

gunicorn's gthread worker gives each connection a thread of its pool as soon as its first
byte arrives, then reads the request head and body with blocking reads and no deadline. A
client that sends a header line every few seconds (slowloris), or a body a byte at a time,
holds that thread for as long as it likes: ten of them starved a worker of 4 threads, and
``/healthz`` stopped answering.

:class:`GuardedThreadWorker` keeps gthread and changes five things:

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

import errno
import os
import selectors
import socket
import struct
import time
from dataclasses import dataclass
from functools import partial

from gunicorn.workers.gthread import TConn, ThreadWorker

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


class GuardedThreadWorker(ThreadWorker):
    """gthread whose event loop reads request heads (and small bodies) before any thread
    is committed, and whose threads read bodies under a deadline (see the module docstring)."""

    def init_process(self) -> None:
        self.limits = Limits.from_environment()
        # Connections whose head or small body the event loop is reading.
        self.reading: dict[GuardedConn, None] = {}
        self.lingering: dict[GuardedConn, None] = {}  # closing: answered, draining until the client closes
        self._next_murder = 0.0
        self.busy = 0  # connections handed to the pool and not finished yet
        self._accept_paused_until = 0.0  # out of file descriptors: accept again after this
        self.guarded = not self.cfg.is_ssl and "h2" not in self.cfg.http_protocols
        super().init_process()

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
        conn.data_ready = True
        self.enqueue_req(conn)

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
