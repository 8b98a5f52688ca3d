"""The Procfile's gunicorn keeps answering while slow clients hold connections (avenue/server.py).

The slow tests start the real thing: ``gunicorn --config gunicorn.conf.py wsgi:app`` on
127.0.0.1 and a free port, on the session's SecantusDB, and stop it (by its process group)
at the end. ``bench/slowclients.py`` measures the same at growing numbers of clients.
"""

from __future__ import annotations

import json
import socket
import time
from http.client import HTTPConnection

import pytest

from avenue.server import BUFFERED_BODY_BYTES, Limits, SlowClientGuard, _body_to_buffer
from tests.helpers import image_bytes
from tests.servers import LOOPBACK, api_token, gunicorns, healthz, multipart

HOST = "Host: 127.0.0.1\r\n"
SLOW_HEAD = f"GET /healthz HTTP/1.1\r\n{HOST}".encode()
SMALL_SLOW_BODY = (f"POST /api/auth/login HTTP/1.1\r\n{HOST}Content-Type: application/json\r\n"
                   "Content-Length: 4096\r\n\r\n{").encode()
LARGE_SLOW_BODY = (f"POST /api/auth/login HTTP/1.1\r\n{HOST}Content-Type: application/json\r\n"
                   f"Content-Length: {2 * 1024 * 1024}\r\n\r\n{{").encode()  # the most a JSON route takes


# --- the guard and the glance at the head, without a server ------------------------------


@pytest.mark.parametrize(("head", "buffered"), [
    (b"GET / HTTP/1.1\r\nHost: x", 0),
    (b"POST /api/auth/login HTTP/1.1\r\nContent-Length: 57", 57),
    (b"POST / HTTP/1.1\r\ncontent-length:  12 ", 12),
    (b"POST / HTTP/1.1\r\nContent-Length: %d" % (BUFFERED_BODY_BYTES + 1), 0),  # a thread reads it
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6", 0),  # gunicorn refuses it
    (b"POST / HTTP/1.1\r\nContent-Length: -5", 0),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5", 0),
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue", 0),  # the client waits for us
])
def test_only_a_small_plain_body_is_read_ahead_by_the_event_loop(head, buffered):
    assert _body_to_buffer(head) == buffered


def test_the_guard_ends_a_head_at_its_deadline_with_end_of_file():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        guard = SlowClientGuard(ours, Limits())
        guard.head(time.monotonic() + 0.3)
        theirs.sendall(b"GET / HTTP/1.1\r\n")
        assert guard.recv(100) == b"GET / HTTP/1.1\r\n"
        started = time.monotonic()
        assert guard.recv(100) == b""  # nothing more came: the parser sees the client gone
        assert 0.2 < time.monotonic() - started < 1.0
        assert guard.tripped


def test_the_guard_holds_a_body_to_the_idle_timeout_and_the_minimum_rate():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        guard = SlowClientGuard(ours, Limits(body_timeout=0.5, body_min_rate=100))
        guard.body()
        for _ in range(3):  # 10 bytes every 0.2 s: never idle for 0.5 s, but 50 bytes/s
            theirs.sendall(b"x" * 10)
            assert guard.recv(100) == b"x" * 10
            time.sleep(0.2)
        theirs.sendall(b"late")
        # 30 bytes bought 0.3 s beyond the 0.5 s grace; 0.6 s have passed: already over.
        time.sleep(0.3)
        assert guard.recv(100) == b"" and guard.tripped


def test_gunicorns_own_timeouts_still_raise_through_the_guard():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        guard = SlowClientGuard(ours, Limits())
        guard.body()
        guard.settimeout(0.2)  # what gunicorn's bounded drain of an unread body does
        with pytest.raises(TimeoutError):
            guard.recv(100)
        assert guard.gettimeout() == 0.2 and not guard.tripped


# --- the Procfile's process ---------------------------------------------------------------


@pytest.fixture
def start_gunicorn(secantus, tmp_path):
    with gunicorns(secantus.uri, tmp_path) as start:
        yield start


class SlowClients:
    """Connections that send ``first`` and then one ``more`` every ``interval`` seconds."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sockets: list[tuple[socket.socket, bytes]] = []

    def open(self, first: bytes, more: bytes, count: int) -> None:
        for _ in range(count):
            sock = socket.create_connection((LOOPBACK, self.port), timeout=2)
            sock.sendall(first)
            sock.setblocking(False)
            self.sockets.append((sock, more))

    def trickle(self) -> int:
        """Send each open connection its next piece; returns how many the server has closed."""
        closed = 0
        for sock, more in self.sockets:
            try:
                if sock.recv(65536, socket.MSG_PEEK) == b"":
                    closed += 1
                    continue
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
                continue
            try:
                sock.send(more)
            except OSError:
                closed += 1
        return closed

    def answers(self) -> list[bytes]:
        """The first line each connection got back (b"" when closed without an answer)."""
        lines = []
        for sock, _ in self.sockets:
            try:
                lines.append(sock.recv(65536).split(b"\r\n", 1)[0])
            except OSError:
                lines.append(b"")
        return lines

    def close(self) -> None:
        for sock, _ in self.sockets:
            sock.close()


@pytest.fixture
def slow_clients():
    opened = []

    def open_on(port: int) -> SlowClients:
        opened.append(SlowClients(port))
        return opened[-1]

    yield open_on
    for clients in opened:
        clients.close()


@pytest.mark.slow
def test_healthz_answers_within_1s_while_slow_heads_and_slow_bodies_hold_connections(start_gunicorn,
                                                                                   slow_clients):
    server = start_gunicorn()  # the defaults: 10 s deadlines, 2 workers x 32 threads
    clients = slow_clients(server.port)
    clients.open(SLOW_HEAD, b"X-Slow: 1\r\n", 50)
    clients.open(SMALL_SLOW_BODY, b" ", 50)
    clients.open(LARGE_SLOW_BODY, b" ", 20)  # read by threads: they hold one each until cut off
    probes, closed = [], 0
    deadline = time.monotonic() + 13  # past the 10 s deadlines, so every slow client is cut off
    next_trickle = 0.0
    while time.monotonic() < deadline:
        if time.monotonic() >= next_trickle:
            closed = clients.trickle()
            next_trickle = time.monotonic() + 2
        probes.append(healthz(server.port))
        time.sleep(0.2)
    assert len(probes) >= 30
    assert max(probes) < 1.0, f"slowest /healthz {max(probes):.2f} s; all: {probes}"
    time.sleep(1.5)
    answers = clients.answers()
    assert answers[:100].count(b"HTTP/1.1 408 Request Timeout") == 100  # heads and small bodies
    assert all(line.startswith(b"HTTP/1.1 400") for line in answers[100:]), answers[100:]
    assert closed + clients.trickle() >= 100


@pytest.mark.slow
def test_a_slow_body_read_by_a_thread_is_cut_off_and_its_connection_never_reused(start_gunicorn):
    server = start_gunicorn(GUNICORN_BODY_TIMEOUT="1", GUNICORN_BODY_MIN_RATE="100")
    with socket.create_connection((LOOPBACK, server.port), timeout=5) as sock:
        # 2 MB announced, so a thread reads it; in it, a request that must never be served.
        sock.sendall(LARGE_SLOW_BODY + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        sock.settimeout(0.25)
        answer = b""
        while time.monotonic() - started < 5 and not answer:
            try:
                sock.sendall(b" ")  # 4 bytes a second: never idle for 1 s, far below 100 bytes/s
                answer = sock.recv(65536)
            except TimeoutError:
                continue
        took = time.monotonic() - started
        sock.settimeout(5)
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
    # 1 s of grace plus what 100 bytes/s buys for the ~40 bytes sent: cut off after ~1.4 s, and
    # nothing of the body is ever parsed as a request of its own.
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert 1.0 <= took < 4.0
    assert b"HTTP/1.1 200" not in answer + rest


@pytest.mark.slow
def test_the_procfile_process_serves_kept_alive_and_pipelined_requests(start_gunicorn):
    server = start_gunicorn(GUNICORN_HEADER_TIMEOUT="1")
    with socket.create_connection((LOOPBACK, server.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 3)  # three at once
        received = b""
        while received.count(b'{"status":"ok"}') < 3:
            received += sock.recv(65536)
        assert received.count(b"HTTP/1.1 200 OK") == 3
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the next one, unfinished
        started = time.monotonic()
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout")
        assert 0.5 < time.monotonic() - started < 3.0
        assert sock.recv(65536) == b""  # closed
    assert "Using worker: avenue.server.GuardedThreadWorker" in server.log_path.read_text()


@pytest.mark.slow
def test_a_worker_out_of_file_descriptors_pauses_accepting_and_recovers_without_dying(start_gunicorn,
                                                                                    slow_clients):
    server = start_gunicorn(open_files=150, GUNICORN_HEADER_TIMEOUT="2")
    clients = slow_clients(server.port)
    clients.open(SLOW_HEAD, b"X-Slow: 1\r\n", 300)  # more than two workers of 150 descriptors hold
    opened = time.monotonic()
    # Starved while they hold every descriptor; answering again once the head deadline (2 s)
    # has closed them and accepting resumed.
    while healthz(server.port, timeout=2) == float("inf"):
        assert time.monotonic() - opened < 10, "gunicorn did not recover"
    # Answering promptly again: the best of three probes (the first may still queue behind the
    # workers closing the slow clients; under the full suite one took 3.9 s).
    assert min(healthz(server.port) for _ in range(3)) < 1.0
    log = server.log_path.read_text()
    assert "cannot accept connections for now" in log
    assert log.count("Booting worker") == 2 and "Traceback" not in log  # no worker died


@pytest.mark.slow
def test_a_client_that_stops_reading_is_disconnected_after_the_send_timeout(start_gunicorn):
    server = start_gunicorn(GUNICORN_SEND_TIMEOUT="1")
    photo = image_bytes("good/photo_12mp.jpg")
    body, content_type = multipart({"visibility": "public"}, "file", "big.jpg", photo)
    conn = HTTPConnection(LOOPBACK, server.port, timeout=30)
    conn.request("POST", "/api/uploads", body, {"Authorization": f"Bearer {api_token(server)}",
                                                "Content-Type": content_type})
    upload = conn.getresponse()
    assert upload.status == 201
    url = json.loads(upload.read())["url"]
    conn.close()
    size = content_length(server.port, url)
    readers = []
    for _ in range(40):  # each holds a thread while its answer cannot be written
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((LOOPBACK, server.port))
        sock.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode() * 20)  # and never reads
        readers.append(sock)
    try:
        probes = []
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            probes.append(healthz(server.port))
            time.sleep(0.2)
        assert max(probes) < 1.0, probes
        # The kernel counts the timeout from a write's last progress: a stalled client is cut
        # off within 2-3 times it. By now the server has given up on each of them.
        received = []
        for sock in readers:
            sock.settimeout(5)
            total = 0
            while chunk := sock.recv(1 << 20):
                total += len(chunk)
            received.append(total)
        assert all(0 < total < 20 * size for total in received), (size, received)
    finally:
        for sock in readers:
            sock.close()


def content_length(port: int, path: str) -> int:
    """The Content-Length of a GET of ``path``."""
    conn = HTTPConnection(LOOPBACK, port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        return int(response.headers["Content-Length"])
    finally:
        conn.close()
