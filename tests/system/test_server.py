"""The Procfile's gunicorn keeps answering while slow clients hold connections (avenue/server.py).

The slow tests start the real thing: ``gunicorn --config gunicorn.conf.py wsgi:app`` on
127.0.0.1 and a free port, on the session's SecantusDB, and stop it (by its process group)
at the end. ``bench/slowclients.py`` measures the same at growing numbers of clients.
"""

from __future__ import annotations

import select
import socket
import struct
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avenue.server import (
    BUFFERED_BODY_BYTES,
    BodyPlan,
    GuardedThreadWorker,
    Limits,
    SlowClientGuard,
    _body_to_buffer,
    loop_environ,
    loop_response_head,
)
from tests.helpers import image_bytes
from tests.support.fixtures import noise_jpeg
from tests.support.launcher import (
    ATTACKER,
    LARGE_SLOW_BODY,
    LOOPBACK,
    PROBE_BOUND,
    Gunicorn,
    assert_prompt,
    healthz,
)

HOST = "Host: 127.0.0.1\r\n"
SLOW_HEAD = f"GET /healthz HTTP/1.1\r\n{HOST}".encode()
SMALL_SLOW_BODY = (f"POST /api/auth/login HTTP/1.1\r\n{HOST}Content-Type: application/json\r\n"
                   "Content-Length: 4096\r\n\r\n{").encode()


# --- the guard and the glance at the head, without a server ------------------------------


@pytest.mark.parametrize(("head", "buffered", "expects"), [
    (b"GET / HTTP/1.1\r\nHost: x", 0, False),
    (b"POST /api/auth/login HTTP/1.1\r\nContent-Length: 57", 57, False),
    (b"POST / HTTP/1.1\r\ncontent-length:  12 ", 12, False),
    (b"POST /api/uploads HTTP/1.1\r\nContent-Length: 10486660", 10486660, False),  # 10 MiB + framing
    (b"POST / HTTP/1.1\r\nContent-Length: %d" % (BUFFERED_BODY_BYTES + 1), 0, False),  # a thread reads it
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6", 0, False),  # gunicorn refuses it
    (b"POST / HTTP/1.1\r\nContent-Length: -5", 0, False),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5", 0, False),
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue", 5, True),  # answered by the loop
    (b"POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue", 5, False),  # 1.0: ignored
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: something-else", 0, False),  # gunicorn's 417
])
def test_a_plain_body_up_to_the_buffer_size_is_read_by_the_event_loop(head, buffered, expects):
    assert _body_to_buffer(head) == BodyPlan(buffered, expects)


def test_the_guard_ends_a_head_at_its_deadline_with_end_of_file():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        guard = SlowClientGuard(ours, Limits())
        headed = time.monotonic()
        guard.head(headed + 0.3)
        theirs.sendall(b"GET / HTTP/1.1\r\n")
        assert guard.recv(100) == b"GET / HTTP/1.1\r\n"
        started = time.monotonic()
        assert guard.recv(100) == b""  # nothing more came: the parser sees the client gone
        # Not before the deadline (measured from when it was set, so a slow first read cannot
        # eat into it), and at it, not never: 5 s allows for a loaded machine.
        assert time.monotonic() - headed >= 0.3 and time.monotonic() - started < 5
        assert guard.tripped


def test_the_guard_holds_a_body_to_the_idle_timeout_and_the_minimum_rate():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        # Seconds, not tenths: a thread held off a CPU for half a second changes no outcome
        # here (each margin below is over a second).
        guard = SlowClientGuard(ours, Limits(body_timeout=3, body_min_rate=100))
        guard.body()
        for _ in range(3):  # 10 bytes every 1 s: never idle for 3 s, but 10 bytes/s
            theirs.sendall(b"x" * 10)
            assert guard.recv(100) == b"x" * 10
            time.sleep(1)
        theirs.sendall(b"late")
        # 30 bytes bought 0.3 s beyond the 3 s grace: over at 3.3 s, and 3.6 s have passed,
        # though the last read was only 1.6 s ago (the idle limit is 3 s): the rate cuts it.
        time.sleep(0.6)
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


# --- plain media requests: what the event loop takes, and how it frames the answer --------

MEDIA = "/media/products/0123456789abcdef01234567~1a2b3c4d/card"


@pytest.mark.parametrize("head", [
    f"GET {MEDIA} HTTP/1.1\r\nHost: x",
    f"HEAD {MEDIA}.webp HTTP/1.1\r\nHost: x\r\nAccept: image/webp,*/*\r\nConnection: keep-alive",
    f"GET {MEDIA} HTTP/1.1\r\nhost:x\r\nIf-None-Match:   \"abc\"\t\r\nX-Forwarded-For: 10.0.0.1",
])
def test_a_plain_media_request_is_taken_by_the_event_loop(head):
    environ = loop_environ(head.encode(), Config())
    assert environ is not None
    assert environ["PATH_INFO"] == head.split(" ")[1] and environ["HTTP_HOST"] == "x"
    assert environ["REQUEST_METHOD"] == head.split(" ")[0] and environ["QUERY_STRING"] == ""
    if "If-None-Match" in head:
        assert environ["HTTP_IF_NONE_MATCH"] == '"abc"'  # blanks around a value are not part of it


@pytest.mark.parametrize("head", [
    f"POST {MEDIA} HTTP/1.1\r\nHost: x",  # a method the front door never answers
    f"get {MEDIA} HTTP/1.1\r\nHost: x",
    "GET /api/shop/products HTTP/1.1\r\nHost: x",  # not media
    f"GET {MEDIA} HTTP/1.0\r\nHost: x",  # HTTP/1.0 is kept alive differently
    f"GET {MEDIA}?sig=abc HTTP/1.1\r\nHost: x",  # a query: signed (private) media
    "GET /media/products/%30123 HTTP/1.1\r\nHost: x",  # percent-encoded: gunicorn decodes it
    f"GET  {MEDIA} HTTP/1.1\r\nHost: x",
    f"GET {MEDIA} HTTP/1.1",  # no Host
    f"GET {MEDIA} HTTP/1.1\r\nHost: x\r\nHost: y",  # twice
    f"GET {MEDIA} HTTP/1.1\r\nHost: x\r\nAccept: a\r\naccept: b",
    f"GET {MEDIA} HTTP/1.1\r\nHost: x\r\nContent-Length: 0",  # framing: a thread and gunicorn
    f"GET {MEDIA} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked",
    f"GET {MEDIA} HTTP/1.1\r\nHost: x\r\nConnection: close",
    f"GET {MEDIA} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c",
    f"GET {MEDIA} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue",
    f"GET {MEDIA} HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https",  # trusted or not: gunicorn decides
    f"GET {MEDIA} HTTP/1.1\r\nHost: x\r\nX_Custom: 1",  # gunicorn drops underscored names
    f"GET {MEDIA} HTTP/1.1\r\nHost: x\r\nAccept : */*",  # a blank before the colon
    f"GET {MEDIA} HTTP/1.1\r\nHost: x\r\nAccept: a\r\n b",  # obsolete folding
    f"GET {MEDIA} HTTP/1.1\r\nHost: x\r\nNoColon",
    f"GET {MEDIA} HTTP/1.1\r\nHost: x\r\nUser-Agent: caf\xe9",  # 8-bit: gunicorn's parser decides
    f"GET {MEDIA} HTTP/1.1\r\nHost: x\r\nX-Long: {'a' * 8200}",  # over limit_request_field_size
    f"GET {MEDIA} HTTP/1.1\r\nHost: x" + "\r\nX-Many: 1" * 101,  # over limit_request_fields
])
def test_anything_else_goes_to_a_thread_and_gunicorns_parser(head):
    assert loop_environ(head.encode("latin-1"), Config()) is None


def test_the_event_loop_frames_an_answer_as_gunicorn_does():
    head = loop_response_head("200 OK", [("Content-Type", "image/webp"), ("Content-Length", "12"),
                                         ("Vary", " Accept\t"), ("Connection", "close")], "DATE")
    assert head == (b"HTTP/1.1 200 OK\r\nServer: gunicorn\r\nDate: DATE\r\nConnection: keep-alive\r\n"
                    b"Content-Type: image/webp\r\nContent-Length: 12\r\nVary: Accept\r\n\r\n")
    assert loop_response_head("304 NOT MODIFIED", [("ETag", '"x"')], "DATE").startswith(b"HTTP/1.1 304")
    # A body without a length would be chunked by gunicorn: the event loop does not answer it.
    assert loop_response_head("200 OK", [("Content-Type", "image/webp")], "DATE") is None


def test_a_failure_while_answering_in_the_event_loop_leaves_the_request_to_a_thread():
    head = f"GET {MEDIA} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    conn = SimpleNamespace(buffer=bytearray(head), head_length=len(head), wanted=len(head))
    logged = []
    worker = GuardedThreadWorker.__new__(GuardedThreadWorker)  # only what the decision reads
    worker.cfg, worker.alive, worker.nr, worker.max_requests = Config(), True, 0, 1000
    worker.keepalived_conns, worker.max_keepalived = [], 100
    worker.log = SimpleNamespace(exception=lambda message, *args: logged.append(message % args))
    worker._date_second = 0

    def broken(environ):
        raise RuntimeError("cache broke")

    worker.answer_at_once = broken
    assert worker._answer_in_loop(conn) is False  # the worker carries on: a thread answers
    assert conn.buffer == head and "answering" in logged[0]


# Mostly plain heads (the event loop takes about a third), each part now and then replaced by
# something a hostile or sloppy client sends.
_SAFE = st.text(alphabet=st.sampled_from(list("aZ09._~/-")), min_size=1, max_size=16)
_ODD = st.text(alphabet=st.sampled_from(list("aZ09._~/-%?#&=;:@+ \t\xe9\x00\x7f\x85\r\n\"*,")), max_size=12)
_NAMES = ["Accept", "If-None-Match", "If-Modified-Since", "Range", "User-Agent", "Cookie", "X-Ok",
          "X-Forwarded-For", "Connection", "Host", "host", "Content-Length", "Transfer-Encoding",
          "Expect", "Upgrade", "TE", "X-Forwarded-Proto", "Forwarded", "X_Under", "Accept ", " Accept",
          "Acc\xe9pt", "A(B", ""]


_METHOD = st.sampled_from(["GET", "HEAD"])
_ODD_METHOD = st.sampled_from(["get", "POST", "OPTIONS", "GET\t", "GE T"])
_TARGET = _SAFE.map(lambda tail: "/media/products/" + tail)
_ODD_TARGET = st.tuples(st.sampled_from(["/media/", "/media", "/api/", "http://x/media/", ""]),
                        _ODD).map("".join)
_VERSION = st.just("HTTP/1.1")
_ODD_VERSION = st.sampled_from(["HTTP/1.0", "HTTP/1.10", "http/1.1", "HTTP/2.0", ""])
_NAME, _ODD_NAME = st.sampled_from(_NAMES[:7]), st.sampled_from(_NAMES)
_SEPARATOR, _ODD_SEPARATOR = st.sampled_from([": ", ":"]), st.sampled_from([":\t", " :", "", ":  "])
_VALUE = st.one_of(_SAFE, st.sampled_from(["keep-alive", '"abc"', "0"]))
_FOLD = st.sampled_from([" folded", "\tfolded", ""])
_IS_ODD = st.sampled_from([False] * 7 + [True])
_YES, _NO = st.just(True), st.just(False)


def _sometimes(draw, plain, odd):
    """``plain`` mostly, ``odd`` one time in eight. A draw of a number, not a ``flatmap``, and
    the strategies made once above: hypothesis builds and validates a new strategy at every
    ``flatmap`` draw, which was most of this test's CPU (the same heads, as often)."""
    return draw(odd) if draw(_IS_ODD) else draw(plain)


@st.composite
def request_heads(draw) -> bytes:
    method = _sometimes(draw, _METHOD, _ODD_METHOD)
    target = _sometimes(draw, _TARGET, _ODD_TARGET)
    version = _sometimes(draw, _VERSION, _ODD_VERSION)
    lines = [f"{method} {target} {version}"]
    if _sometimes(draw, _YES, _NO):
        lines.append("Host: " + _sometimes(draw, _SAFE, _ODD))
    for _ in range(draw(st.integers(0, 4))):
        name = _sometimes(draw, _NAME, _ODD_NAME)
        separator = _sometimes(draw, _SEPARATOR, _ODD_SEPARATOR)
        value = _sometimes(draw, _VALUE, _ODD)
        lines.append(name + separator + value)
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(_FOLD))
    return "\r\n".join(lines).encode("latin-1")


# One gunicorn Config for every example, as a worker has one for every request (making one
# builds all of gunicorn's settings: 2 ms, twice an example, was a third of this test's CPU).
_CONFIG = Config()


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request_heads())
def test_whatever_the_event_loop_takes_gunicorns_parser_reads_the_same(head):
    """Differential: a head the event loop answers from must be one gunicorn's own parser
    accepts, with the same method, path and fields, no body, and a kept-alive connection."""
    environ = loop_environ(head, _CONFIG)
    if environ is None:
        return  # a thread and gunicorn's parser take it, as without the event loop's path
    cfg = _CONFIG
    request = next(RequestParser(cfg, iter([head + b"\r\n\r\n"]), ("127.0.0.1", 5)))
    _, theirs = wsgi.create(request, None, ("127.0.0.1", 5), ("127.0.0.1", 80), cfg)
    assert request.body.read() == b"" and not request.should_close()
    assert {key: value for key, value in theirs.items() if key.startswith("HTTP_")} == \
        {key: value for key, value in environ.items() if key.startswith("HTTP_")}
    for key in ("REQUEST_METHOD", "PATH_INFO", "RAW_URI", "QUERY_STRING", "SERVER_PROTOCOL"):
        assert theirs[key] == environ[key], key


# --- the Procfile's process ---------------------------------------------------------------


def upload(server, name: str = "good/progressive.jpg", headers: dict[str, str] | None = None,
           data: bytes | None = None) -> dict:
    """Upload a public image (the fixture ``name``, or ``data``) through the API; returns its
    image object."""
    return server.uploaded(image_bytes(name) if data is None else data, name.split("/")[-1], headers)


class SlowClients:
    """Connections that send ``first`` and then one ``more`` every ``interval`` seconds."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sockets: list[tuple[socket.socket, bytes]] = []

    def open(self, first: bytes, more: bytes, count: int) -> None:
        for _ in range(count):
            sock = socket.create_connection((LOOPBACK, self.port), timeout=2, source_address=(ATTACKER, 0))
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
    assert len(probes) >= 20
    assert_prompt(probes)
    time.sleep(1.5)
    answers = clients.answers()
    assert answers.count(b"HTTP/1.1 408 Request Timeout") == 120, answers  # heads and every body
    assert closed + clients.trickle() >= 100


@pytest.mark.slow
def test_a_slow_body_read_by_a_thread_is_cut_off_and_its_connection_never_reused(start_gunicorn):
    server = start_gunicorn(GUNICORN_BODY_TIMEOUT="1", GUNICORN_BODY_MIN_RATE="100",
                            GUNICORN_BUFFER_BODY_BYTES="1024")
    with socket.create_connection((LOOPBACK, server.port), timeout=5) as sock:
        # 2 MB announced, over the (here 1 KiB) buffer size, so a thread reads it; in it, a
        # request that must never be served.
        started = time.monotonic()  # before the server can start the body's clock
        sock.sendall(LARGE_SLOW_BODY + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(0.25)
        answer = b""
        while time.monotonic() - started < 15 and not answer:
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
    # nothing of the body is ever parsed as a request of its own. Under 8 s on a loaded
    # machine; were the settings ignored, the default 10 s grace would cut it off at 10 s
    # (and without the rate, only the 600 s body deadline: it is never idle for 1 s).
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert 1.0 <= took < 8.0
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
        started = time.monotonic()  # before its head's clock starts (when its bytes come)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the next one, unfinished
        sock.settimeout(15)
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout")
        # At the 1 s header timeout; under 8 s on a loaded machine, and the default 10 s would
        # not be.
        assert 0.5 < time.monotonic() - started < 8.0
        assert sock.recv(65536) == b""  # closed
    log = server.log_path.read_text()
    assert "Using worker: avenue.server.GuardedThreadWorker" in log
    assert f"Listening at: http://{LOOPBACK}:{server.port} (each worker binds it" in log  # when_ready
    assert "Listening at:  (" not in log  # gunicorn's own line, naming nothing, dropped (on_starting)


@pytest.mark.slow
def test_the_app_is_built_once_in_the_master_and_the_workers_are_forked_with_it(start_gunicorn):
    """gunicorn.conf.py's preload_app: create_app runs in the master, so what it logs is logged
    once, not once a worker; each worker still numbers its own request ids."""
    server = start_gunicorn(AVENUE_NOT_A_SETTING="1")
    assert len(server.wait_for_workers(2)) == 2  # the first answer can come before the second fork
    # Each worker's own prefix answers, asked on new connections (the kernel spreads them over
    # the workers' sockets) until both have, or 30 s: a worker just forked may not have bound yet.
    prefixes: set[str] = set()
    deadline = time.monotonic() + 30
    while len(prefixes) < 2 and time.monotonic() < deadline:
        prefixes.add(server_request_id(server)[:16])
    assert len(prefixes) == 2, prefixes
    log = server.log_path.read_text()
    assert log.count("AVENUE_NOT_A_SETTING is set but nothing reads it") == 1, log[-3000:]


def server_request_id(server) -> str:
    connection = HTTPConnection(LOOPBACK, server.port, timeout=10)  # a new connection: any worker
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        return response.headers["X-Request-ID"]
    finally:
        connection.close()


@pytest.mark.slow
def test_a_bad_configuration_stops_the_master_at_once_with_the_apps_message(tmp_path):
    """Built in the master, the app's refusal of its configuration ends the server before any
    worker starts: exit code 1 and the message, not workers failing to boot one after another."""
    server = Gunicorn("mongodb://127.0.0.1:9/unused", "unused", tmp_path / "gunicorn.log",
                      extra_env={"AVENUE_ALERT_THRESHOLDS": "garbage"})
    run = subprocess.run([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"],
                         cwd=server.root, env=server.env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stderr[-2000:]
    assert "AVENUE_ALERT_THRESHOLDS must be three numbers, got 'garbage'" in run.stderr
    assert "Booting worker" not in run.stderr


@pytest.mark.slow
def test_an_idle_kept_alive_connection_lives_gunicorn_keepalive_seconds(start_gunicorn):
    server = start_gunicorn(GUNICORN_KEEPALIVE="2")
    with socket.create_connection((LOOPBACK, server.port), timeout=10) as sock:
        assert exchange(sock, get("/healthz")).startswith(b"HTTP/1.1 200 OK")
        time.sleep(0.5)
        asked = time.monotonic()
        assert exchange(sock, get("/healthz")).startswith(b"HTTP/1.1 200 OK")  # kept
        answered = time.monotonic()
        # Waited for, not slept: gthread's keep-alive sweep (at least once a second) closes it
        # 2 s after the answer. Not before (its clock starts after the request was sent), and
        # well before the default 5 s would (a fixed long sleep could not tell the two apart).
        try:
            closed = sock.recv(65536) == b""
        except ConnectionResetError:
            closed = True  # closed, seen as a reset
        closed_at = time.monotonic()
        assert closed
        assert closed_at - asked >= 2 and closed_at - answered < 4.5


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
    assert min(healthz(server.port) for _ in range(3)) < PROBE_BOUND
    log = server.log_path.read_text()
    assert "cannot accept connections for now" in log
    assert log.count("Booting worker") == 2 and "Traceback" not in log  # no worker died


@pytest.mark.slow
def test_a_client_that_stops_reading_is_disconnected_after_the_send_timeout(start_gunicorn):
    server = start_gunicorn(GUNICORN_SEND_TIMEOUT="1")
    url = upload(server, "good/photo_12mp.jpg")["url"]
    size = content_length(server.port, url)
    readers = []
    for _ in range(40):  # each holds a thread while its answer cannot be written
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.bind((ATTACKER, 0))
        sock.connect((LOOPBACK, server.port))
        sock.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode() * 20)  # and never reads
        readers.append(sock)
    try:
        probes = []
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            probes.append(healthz(server.port))
            time.sleep(0.2)
        assert_prompt(probes)
        # The kernel counts the timeout from a write's last progress: a stalled client is cut
        # off within 2-3 times it. By now the server has given up on each of them, with a
        # reset (what the kernel still held for them is dropped, not sent on).
        received = [received_until_cut_off(sock) for sock in readers]
        assert all(total < 20 * size for total in received), (size, received)
    finally:
        for sock in readers:
            sock.close()


def received_until_cut_off(sock: socket.socket) -> int:
    """Bytes ``sock`` still receives before the server's reset (or close); fails if the
    server keeps it open for 5 s more."""
    sock.settimeout(5)
    total = 0
    try:
        while chunk := sock.recv(1 << 20):
            total += len(chunk)
    except ConnectionResetError:
        pass
    return total


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


# --- cached media answered by the event loop, end to end ----------------------------------


def exchange(sock: socket.socket, request: bytes, head_only: bool = False) -> bytes:
    """Send ``request`` on a kept-alive connection and read one whole answer."""
    sock.sendall(request)
    return read_answer(sock, head_only)


def read_answer(sock: socket.socket, head_only: bool = False) -> bytes:
    """One answer and not a byte more (pipelined answers may arrive in one segment): the head
    a byte at a time, then exactly its Content-Length."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        assert byte, f"closed after {head!r}"
        head += byte
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    if head_only or head.startswith(b"HTTP/1.1 304"):
        length = 0
    body = b""
    while len(body) < length:
        chunk = sock.recv(min(1 << 20, length - len(body)))
        assert chunk, "closed in the middle of a body"
        body += chunk
    return head + body


def get(path: str, *fields: str, method: str = "GET") -> bytes:
    return "\r\n".join([f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *fields, "", ""]).encode()


def without_date(answer: bytes) -> bytes:
    """The answer without its Date and X-Request-ID lines (every answer has an id of its own)."""
    return b"\r\n".join(line for line in answer.split(b"\r\n")
                        if not line.startswith((b"Date: ", b"X-Request-ID: ")))


@pytest.mark.slow
def test_cached_media_is_answered_by_the_event_loop_as_a_thread_answers_it(gunicorn_server):
    server = gunicorn_server
    obj = upload(server)
    url, card = obj["url"], obj["variants"]["card"]
    with socket.create_connection((LOOPBACK, server.port), timeout=10) as sock:
        for path in (url, card):
            for accept in ("image/webp", "*/*"):  # read whole: now cached, both formats
                assert exchange(sock, get(path, f"Accept: {accept}")).startswith(b"HTTP/1.1 200 OK")
        etag = [line for line in exchange(sock, get(url)).split(b"\r\n")
                if line.startswith(b"ETag: ")][0][6:].decode()
        for request, head_only in [(get(url), False), (get(url, method="HEAD"), True),
                                   (get(url, f"If-None-Match: {etag}"), False),
                                   (get(card, "Accept: image/avif,image/webp,*/*"), False),
                                   (get(card, "Accept: */*", "Connection: keep-alive"), False)]:
            by_loop = exchange(sock, request, head_only)
            # "TE" is one of the fields that send a request to a thread (avenue/server.py).
            by_thread = exchange(sock, request.replace(b"\r\n\r\n", b"\r\nTE: trailers\r\n\r\n"), head_only)
            assert without_date(by_loop) == without_date(by_thread)
            assert b"\r\nDate: " in by_loop and b"Connection: keep-alive" in by_loop
        # Pipelined: a thread takes them (the loop answers one request with nothing behind it),
        # in order; the kept-alive connection then goes on as before.
        sock.sendall(get(url) + get(card, "Accept: image/webp") + get(url, method="HEAD"))
        answers = [read_answer(sock), read_answer(sock), read_answer(sock, head_only=True)]
        assert [a.split(b"\r\n")[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 3
        assert b"Content-Type: image/webp" in answers[1] and answers[2].endswith(b"\r\n\r\n")
        assert exchange(sock, get("/healthz")).endswith(b'{"status":"ok"}\n')
        assert exchange(sock, get(url)).startswith(b"HTTP/1.1 200 OK")


@pytest.mark.slow
def test_a_warm_rendition_on_request_is_answered_by_the_event_loop_as_a_thread_answers_it(gunicorn_server):
    server = gunicorn_server
    obj = upload(server)
    rendition = obj["url"].rsplit(".", 1)[0] + "/w_320"
    with socket.create_connection((LOOPBACK, server.port), timeout=30) as sock:
        for accept in ("image/webp", "*/*"):  # rendered, stored and read whole: now cached
            assert exchange(sock, get(rendition, f"Accept: {accept}")).startswith(b"HTTP/1.1 200 OK")
        for request in (get(rendition, "Accept: image/webp"), get(rendition + ".jpg"),
                        get(rendition, "Accept: */*")):
            by_loop = exchange(sock, request)
            by_thread = exchange(sock, request.replace(b"\r\n\r\n", b"\r\nTE: trailers\r\n\r\n"))
            assert by_loop.startswith(b"HTTP/1.1 200 OK")
            assert without_date(by_loop) == without_date(by_thread)


@pytest.mark.slow
def test_the_event_loop_answers_cached_media_while_every_thread_is_busy(start_gunicorn):
    # A 1 KiB buffer size, so the 2 MB slow body below is read by the worker's one thread.
    # Causal, not timed: the three answers must arrive while the holder's body is still being
    # waited for (its connection has no answer yet), so no thread can have given them. A timed
    # bound (< 1 s) failed once in CI with four test workers on two cores (2.8 s).
    # Deletions polled every 2 s (the worker's sync polls every 1 s): a poll must be a second
    # late, not half a second as with the default, to send a GET to the busy thread. The body
    # is waited for 15 s, not 8: a full run on two cores once answered the holder before the
    # three GETs (the sync then let the cache lapse between two ticks: avenue/media/serve/cache.py).
    server = start_gunicorn(WEB_CONCURRENCY="1", GUNICORN_THREADS="1", GUNICORN_BODY_TIMEOUT="15",
                            GUNICORN_BUFFER_BODY_BYTES="1024", AVENUE_DELETIONS_POLL_MS="2000")
    url = upload(server)["url"]
    with socket.create_connection((LOOPBACK, server.port), timeout=10) as sock, \
            socket.create_connection((LOOPBACK, server.port), timeout=10) as holder:
        assert exchange(sock, get(url)).startswith(b"HTTP/1.1 200 OK")  # a thread: cached now
        holder.sendall(LARGE_SLOW_BODY)  # the worker's one thread waits for this body (15 s)
        # Longer than the cache's poll interval (2 s): the cache is still known to be current
        # (the worker's background sync), so a busy thread does not stop the loop's answers.
        time.sleep(2.5)
        for _ in range(3):
            assert exchange(sock, get(url)).startswith(b"HTTP/1.1 200 OK")
        assert select.select([holder], [], [], 0)[0] == []  # the thread still waits for the body
        # A request the loop does not take waits for the thread.
        sock.sendall(get(url, "TE: trailers"))
        sock.settimeout(1.0)
        with pytest.raises(TimeoutError):
            sock.recv(65536)
        assert select.select([holder], [], [], 0)[0] == []  # ... so the TE request was not answered
        sock.settimeout(20)
        assert read_answer(sock).startswith(b"HTTP/1.1 200 OK")  # once the body is cut off
        assert holder.recv(65536).startswith(b"HTTP/1.1 400")


@pytest.mark.slow
def test_event_loop_answers_to_slow_stalled_and_vanishing_readers(start_gunicorn):
    """A slow reader gets its answer whole; one that stops reading is cut off by the send
    timeout; one that resets mid-answer is closed; the worker carries on throughout."""
    # A 3 s send timeout: with 1 s, the slow reader below was cut off twice in about ten full
    # runs (a reading thread descheduled for a second among four test processes on two cores);
    # the stalled readers are cut off all the same, 3 s in. Deletions polled every 5 s: the
    # loop answers only within a poll interval of its last poll, and on a loaded test machine
    # a poll 0.5 s late once sent the stalled readers to both threads, holding a probe 3 s.
    # Kept alive 30 s: the keep-alive clock starts once the loop has handed the last byte to
    # the kernel, and the slow reader still drains megabytes of socket buffers after that (on
    # a loaded machine over the default 5 s once, so its next request found it closed).
    server = start_gunicorn(WEB_CONCURRENCY="1", GUNICORN_THREADS="2", GUNICORN_SEND_TIMEOUT="3",
                            AVENUE_DELETIONS_POLL_MS="5000", GUNICORN_KEEPALIVE="30",
                            AVENUE_MEDIA_CACHE_MAX_OBJECT_BYTES=str(16 * 2**20))
    url = upload(server, "noise.jpg", data=noise_jpeg())["url"]
    with socket.create_connection((LOOPBACK, server.port), timeout=10) as sock:
        exchange(sock, get(url))  # read whole: now cached
        whole = exchange(sock, get(url))  # the event loop's answer
    size = len(whole.partition(b"\r\n\r\n")[2])
    assert size > 5_000_000
    stalled = []
    for _ in range(20):  # never read: the loop holds what the kernel does not take, no thread does
        reader = socket.create_connection((LOOPBACK, server.port))
        reader.sendall(get(url))
        stalled.append(reader)
    stalled_at = time.monotonic()
    slow = socket.create_connection((LOOPBACK, server.port), timeout=10)
    try:
        slow.sendall(get(url))
        received, probes = b"", []
        started = time.monotonic()
        reading = threading.Event()

        def probe() -> None:  # a thread's answer, meanwhile, every half second
            while True:
                probes.append(healthz(server.port))
                if reading.wait(0.5):
                    return

        # Probed from another thread: a probe on the reading thread paused the reader for as
        # long as it took (up to a second on a loaded machine), past the send timeout (1 s then).
        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        # About 3 s at 16 KB per 5 ms: the loop sends as it reads, never idle for long.
        try:
            while b"\r\n\r\n" not in received or len(received.partition(b"\r\n\r\n")[2]) < size:
                chunk = slow.recv(16384)
                assert chunk, (len(received), time.monotonic() - started)
                received += chunk
                time.sleep(0.005)
        finally:
            reading.set()
            prober.join(10)
        assert without_date(received) == without_date(whole)
        # A starved probe would wait for a stalled reader's 3 s send timeout.
        assert len(probes) >= 3
        assert_prompt(probes, bound=2.5)
        assert exchange(slow, get(url)).startswith(b"HTTP/1.1 200 OK")  # still kept alive
        for _ in range(5):  # gone in the middle of an answer (a reset): closed, nothing else
            with socket.create_connection((LOOPBACK, server.port), timeout=10) as gone:
                gone.sendall(get(url))
                assert gone.recv(65536).startswith(b"HTTP/1.1 200 OK")
                gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        assert exchange(slow, get(url)).startswith(b"HTTP/1.1 200 OK")
        # The loop gives up on the stalled ones once they took nothing for 3 s, and closes them
        # part sent; read only after that (a read before it would let the answer go on).
        time.sleep(max(0.0, stalled_at + 4.5 - time.monotonic()))
        for reader in stalled:
            assert received_until_cut_off(reader) < len(whole)
        log = server.log_path.read_text()
        assert log.count("Booting worker") == 1 and "Traceback" not in log  # the worker never died
    finally:
        slow.close()
        for reader in stalled:
            reader.close()


@pytest.mark.slow
def test_a_deleted_image_stops_being_answered_by_every_event_loop_within_a_few_polls(gunicorn_server):
    # A poll a second (AVENUE_DELETIONS_POLL_MS): about two seconds on a responsive database,
    # shown with a stepped clock by tests/media/serve/test_cache.py. Here, gunicorn's
    # event loops on a loaded test machine, where one poll of SecantusDB can take a second
    # and one that times out waits for the next: five seconds, still far from "served on".
    server = gunicorn_server  # two workers: the delete reaches the other one by its tombstone
    token = server.token()
    obj = upload(server, headers=token)
    readers = [socket.create_connection((LOOPBACK, server.port), timeout=10) for _ in range(6)]
    try:
        for sock in readers:  # kept alive, spread over both workers; cached, then loop answers
            for _ in range(3):
                assert exchange(sock, get(obj["url"])).startswith(b"HTTP/1.1 200 OK")
        conn = HTTPConnection(LOOPBACK, server.port, timeout=10)
        conn.request("DELETE", f"/api/uploads/{obj['id']}", headers=token)
        assert conn.getresponse().status == 204
        conn.close()
        deleted = time.monotonic()
        pending = set(range(len(readers)))
        while pending and time.monotonic() - deleted < 5.0:
            for index in list(pending):
                if exchange(readers[index], get(obj["url"])).startswith(b"HTTP/1.1 404"):
                    pending.discard(index)
            time.sleep(0.05)
        assert not pending, f"still served {time.monotonic() - deleted:.2f} s after the delete"
    finally:
        for sock in readers:
            sock.close()
