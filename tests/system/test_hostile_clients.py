"""What one hostile client can cost the Procfile's process (avenue/server.py, issue 26).

Each system test starts the real gunicorn (tests/support/launcher.py) and attacks it from a client
address of its own (``ATTACKER``, 127.0.0.2) while ``/healthz`` is probed from 127.0.0.1, as a
second, honest client. Each fails on the worker before issue 26: it gave bodies over 64 KiB,
slow readers and any number of connections from one address a thread or a socket each.
bench/attacks.py measures the same at 80 connections (2,000 idle ones) for 30 s.
"""

from __future__ import annotations

import json
import re
import socket
import time

import pytest
from gunicorn.config import Config

from avenue.server import (
    GuardedConn,
    GuardedThreadWorker,
    Limits,
    PacedWriter,
    SendTimedOut,
    client_of,
    refusal,
)
from tests.helpers import image_bytes
from tests.support.client import multipart
from tests.support.fixtures import noise_jpeg
from tests.support.launcher import ATTACKER, LARGE_SLOW_BODY, LOOPBACK, PROBE_BOUND, assert_prompt, healthz


def attacker(port: int, *, receive_buffer: int | None = None, source: str = ATTACKER) -> socket.socket:
    """A connection from the attacker's own address."""
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.bind((source, 0))
    sock.connect((LOOPBACK, port))
    return sock


def probe_for(port: int, seconds: float, every: float = 0.2) -> list[float]:
    """``/healthz`` from 127.0.0.1 every ``every`` seconds for ``seconds``: each one's time."""
    probes = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        probes.append(healthz(port))
        time.sleep(every)
    return probes


def answer_of(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything ``sock`` receives until the server closes it (or ``timeout`` passes)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def json_error(answer: bytes) -> dict:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"\r\nContent-Type: application/json\r\n" in head, head
    assert re.search(rb"\r\nX-Request-ID: [0-9a-f]{32}\r\n", head), head
    return json.loads(body)["error"]


# --- without a server ------------------------------------------------------------------------


def test_the_paced_writer_cuts_off_a_reader_slower_than_the_minimum_rate():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        writer = PacedWriter(ours, Limits(send_timeout=5, send_min_rate=20_000, send_grace=0.5))
        started = time.monotonic()
        with pytest.raises(SendTimedOut):
            for _ in range(1000):
                writer.sendall(b"x" * 4096)
                theirs.recv(1024)  # 1 KiB per write taken: the kernel's buffers fill, then stall
                time.sleep(0.05)  # about 20 KB/s at best, and less once the buffers are full
        # Never idle for 5 s, but under 20,000 bytes/s past the 0.5 s grace: cut off early.
        assert time.monotonic() - started < 4.0


def test_the_paced_writer_lets_a_prompt_reader_take_everything():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        writer = PacedWriter(ours, Limits(send_timeout=1, send_min_rate=1_000_000, send_grace=0.5))
        for _ in range(20):
            writer.sendall(b"y" * 65536)
            assert len(theirs.recv(65536, socket.MSG_WAITALL)) == 65536


@pytest.mark.parametrize(("head", "proxies", "client"), [
    (b"GET / HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6", 0, "10.0.0.9"),  # no proxy: the peer, whatever it says
    (b"GET / HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6, 1.2.3.4", 1, "1.2.3.4"),  # what nginx saw
    (b"GET / HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6\r\nx-forwarded-for: 1.2.3.4, 5.6.7.8", 2, "1.2.3.4"),
    (b"GET / HTTP/1.1\r\nHost: x", 1, "10.0.0.9"),  # a proxy that forwarded nothing: the peer
])
def test_a_client_is_its_address_or_the_one_its_trusted_proxies_forward(head, proxies, client):
    assert client_of(head, "10.0.0.9", proxies) == client


def test_the_servers_own_refusals_are_the_apis_json_errors():
    answer = refusal(414, "abc123")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414 URI Too Long\r\n")
    assert b"\r\nConnection: close\r\n" in head and b"\r\nX-Request-ID: abc123\r\n" in head
    assert b"\r\nContent-Length: %d\r\n" % len(body) in head
    assert json.loads(body) == {"error": {"code": "uri_too_long", "message": "The request line is too long."}}


def test_a_refused_body_held_in_memory_is_discarded_in_one_read_and_the_next_request_kept():
    """gunicorn's finish_body discarded it 1 KiB at a time, each read copying all that was left
    (2,048 reads for 2 MiB; past the 10 s body deadline at about 12 MiB: the connection closed)."""
    body = b"{" + b" " * (2 * 2**20 - 1)
    request = (b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body)) + body + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    ours, theirs = socket.socketpair()
    with ours, theirs:
        conn = GuardedConn(Config(), ours, ("127.0.0.1", 1), ("127.0.0.1", 2))
        conn.init()
        conn.parser.unreader.unread(request)  # as the event loop hands over what it read
        refused = next(conn.parser)
        assert refused.path == "/api/auth/login"  # refused (a 413) with not a byte of its body read
        reads = []
        read = conn.parser.unreader.read
        conn.parser.unreader.read = lambda *args, **kwargs: reads.append(args) or read(*args, **kwargs)
        worker = GuardedThreadWorker.__new__(GuardedThreadWorker)  # only what the decision reads
        worker.limits = Limits()
        assert worker._keepalive_after(conn, True) is True
        assert len(reads) <= 2, len(reads)  # the rest in one read (and the end of the body seen)
        following = next(conn.parser)  # the next request, whole, from what was left behind the body
        assert (following.method, following.path) == ("GET", "/healthz")


# --- the Procfile's process --------------------------------------------------------------------


@pytest.mark.slow
def test_slow_bodies_over_64_kib_hold_no_thread(start_gunicorn):
    server = start_gunicorn(WEB_CONCURRENCY="1", GUNICORN_THREADS="4")
    slow = [attacker(server.port) for _ in range(12)]  # three times the worker's threads
    try:
        for sock in slow:  # 2 MB announced, 70 KiB at once (past the 64 KiB the loop once read)
            sock.sendall(LARGE_SLOW_BODY + b" " * 70 * 1024)
        probes = probe_for(server.port, 4)
        assert_prompt(probes)
    finally:
        for sock in slow:
            sock.close()


@pytest.mark.slow
def test_a_reader_slower_than_the_minimum_rate_is_cut_off_and_frees_its_thread(start_gunicorn):
    # 6 MB: over the media cache's 4 MiB object limit, so a thread writes every answer.
    server = start_gunicorn(WEB_CONCURRENCY="1", GUNICORN_THREADS="4", GUNICORN_CLIENT_THREADS="4",
                            GUNICORN_SEND_MIN_RATE="100000", GUNICORN_SEND_GRACE="1")
    url = server.uploaded(noise_jpeg(), "noise.jpg")["url"]
    readers = [attacker(server.port, receive_buffer=4096) for _ in range(4)]  # every thread
    try:
        for sock in readers:
            sock.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        started = time.monotonic()
        open_readers = list(readers)
        while open_readers and time.monotonic() - started < 30:
            for sock in list(open_readers):  # 4 KiB every 0.5 s each: never idle, 8 KB/s at most
                sock.settimeout(0.01)
                try:
                    if sock.recv(4096) == b"":
                        open_readers.remove(sock)
                except TimeoutError:
                    pass
                except OSError:
                    open_readers.remove(sock)
            time.sleep(0.5)
        took = time.monotonic() - started
        # Cut off once the kernel's buffers are full and the rate falls under 100 KB/s; the
        # idle timeout (60 s) alone never would.
        assert not open_readers and took < 30
        assert healthz(server.port) < PROBE_BOUND  # the four threads are free again
    finally:
        for sock in readers:
            sock.close()


@pytest.mark.slow
def test_one_client_runs_a_quarter_of_the_threads_and_its_other_requests_wait_without_one(start_gunicorn):
    server = start_gunicorn(WEB_CONCURRENCY="1", GUNICORN_THREADS="4", GUNICORN_QUEUE_TIMEOUT="2")
    url = server.uploaded(noise_jpeg(), "noise.jpg")["url"]  # a thread writes it (6 MB)
    readers = [attacker(server.port, receive_buffer=4096) for _ in range(6)]  # and never read
    try:
        for sock in readers:
            sock.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        probes = probe_for(server.port, 3.5)
        assert_prompt(probes)  # the attacker holds one thread of four, not all
        # Its five other requests waited for its share, without a thread, then were refused.
        refused = [answer_of(sock, timeout=1) for sock in readers]
        busy = [json_error(answer) for answer in refused if answer.startswith(b"HTTP/1.1 503")]
        assert len(busy) == 5 and {error["code"] for error in busy} == {"server_busy"}, refused
    finally:
        for sock in readers:
            sock.close()


@pytest.mark.slow
def test_one_address_holds_its_share_of_connections_and_no_more(start_gunicorn):
    server = start_gunicorn(WEB_CONCURRENCY="1", GUNICORN_CLIENT_CONNECTIONS="5")
    idle = [attacker(server.port) for _ in range(8)]
    try:
        time.sleep(0.5)
        answers = [answer_of(sock, timeout=0.3) for sock in idle]
        refused = [json_error(answer) for answer in answers if answer.startswith(b"HTTP/1.1 503")]
        assert len(refused) == 3 and {error["code"] for error in refused} == {"too_many_connections"}
        assert all(answer == b"" for answer in answers[:5])  # still open: within its share
        assert healthz(server.port) < PROBE_BOUND  # another address is not affected
    finally:
        for sock in idle:
            sock.close()


@pytest.mark.slow
def test_idle_connections_are_closed_when_the_worker_nears_its_limit(start_gunicorn):
    server = start_gunicorn(WEB_CONCURRENCY="1", GUNICORN_HEADER_TIMEOUT="60",
                            GUNICORN_CMD_ARGS="--worker-connections 50")
    # 60 sockets that send nothing, from ten addresses (none over its share of 12).
    idle = [attacker(server.port, source=f"127.0.0.{10 + i % 10}") for i in range(60)]
    try:
        time.sleep(0.5)
        probes = [healthz(server.port, timeout=3) for _ in range(5)]
        assert_prompt(probes)  # gthread stopped accepting at 50 until a head timed out
        closed = [answer_of(sock, timeout=0.05) == b"" and not _open(sock) for sock in idle]
        assert sum(closed) >= 10 and all(closed[:5])  # the oldest went first
    finally:
        for sock in idle:
            sock.close()


def _open(sock: socket.socket) -> bool:
    """Whether the server still holds ``sock`` open (nothing to read, no end of file)."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_a_kept_alive_connection_stays_usable_after_a_refusal_given_before_the_body_was_read(
        gunicorn_server):
    server = gunicorn_server
    body, content_type = multipart({"visibility": "public"}, "file", "big.jpg", b"\xff" * 300_000)
    refused = (f"POST /api/uploads HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body  # no credentials: 401 unread
    with attacker(server.port, source=LOOPBACK) as sock:
        sock.settimeout(10)
        for _ in range(40):
            sock.sendall(refused + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answers = b""
            while b'"status":"ok"' not in answers:
                chunk = sock.recv(65536)
                assert chunk, answers  # gthread closed here after draining 64 KiB of 300
                answers += chunk
            assert answers.startswith(b"HTTP/1.1 401") and b"HTTP/1.1 200 OK" in answers, answers
            assert b"Connection: close" not in answers
        # Refused by size (413) once read whole into memory, then the client's next request on the
        # same connection: it waited for a discard 1 KiB at a time (7 s after 2.5 MiB), or the
        # connection closed after 10 s and the request was lost (3.5 MiB and more, issue 73).
        editor = server.token("editor")["Authorization"]
        # (the refused request, the next one, the next one's status: an empty upload is a 400)
        cases = [(upload_request(editor, b"\xff" * 12_700_000), upload_request(editor, b""), b"400")]
        for mib in (2.5, 3.5, 5):
            json_body = b'{"email": "' + b"x" * int(mib * 2**20) + b'"}'
            cases.append((b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(json_body) + json_body,
                          b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"200"))
        sock.settimeout(30)
        for refused_request, next_request, status in cases:
            sock.sendall(refused_request)
            head, body = one_answer(sock)
            assert head.startswith(b"HTTP/1.1 413 ") and b"\r\nConnection: keep-alive\r\n" in head, head
            assert json.loads(body)["error"]["code"] == "request_entity_too_large"
            started = time.monotonic()
            sock.sendall(next_request)
            head, body = one_answer(sock)  # not the end of the connection
            assert time.monotonic() - started < PROBE_BOUND  # a generous bound against a hang
            assert head.startswith(b"HTTP/1.1 %s " % status), head


def upload_request(authorization: str, data: bytes) -> bytes:
    """``POST /api/uploads`` of ``data`` as a public image, whole."""
    body, content_type = multipart({"visibility": "public"}, "file", "big.jpg", data)
    return (f"POST /api/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def one_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """The head and body of the next answer on ``sock`` (framed by its Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection after {data[:200]!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"\r\nContent-Length: (\d+)\r\n", head)[1])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection in the answer to {head[:200]!r}"
        body += chunk
    assert len(body) == length, head  # nothing unasked for behind it
    return head, body


@pytest.mark.slow
def test_a_refusal_before_a_body_the_loop_did_not_read_says_it_closes(gunicorn_server):
    server = gunicorn_server
    with attacker(server.port, source=LOOPBACK) as sock:
        sock.sendall(b"POST /api/uploads HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: multipart/form-data; boundary=b\r\n\r\n1000\r\n" + b"x" * 100)
        answer = answer_of(sock)
    head = answer.partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 401") and b"\r\nConnection: close\r\n" in head, head


@pytest.mark.slow
def test_the_servers_own_refusals_are_json_traced_and_counted(start_gunicorn):
    server = start_gunicorn(AVENUE_METRICS_ALLOW="127.0.0.1/32", GUNICORN_HEADER_TIMEOUT="1",
                            GUNICORN_BODY_TIMEOUT="1")
    cases = [
        (b"GET /api/uploads?" + b"q" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (b"GARBAGE\r\nHost: x\r\n\r\n", 400, "bad_request"),
        (b"GET / HTTP/1.1\r\n" + b"".join(b"X-F%d: y\r\n" % i for i in range(200)) + b"\r\n", 431,
         "request_header_fields_too_large"),
        (b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", 408, "request_timeout"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Request-ID: mine-1\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
         "bad_request"),
    ]
    for request, status, code in cases:
        with attacker(server.port, source=LOOPBACK) as sock:
            sock.sendall(request)
            answer = answer_of(sock)
        assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:200]
        head, _, body = answer.partition(b"\r\n\r\n")
        if b"mine-1" in request:  # the client's own id is kept
            assert b"\r\nX-Request-ID: mine-1\r\n" in head and json.loads(body)["error"]["code"] == code
        else:
            assert json_error(answer)["code"] == code
    with socket.create_connection((LOOPBACK, server.port), timeout=10) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        metrics = answer_of(sock, timeout=10).decode()
    counted = {int(found) for found in re.findall(r'avenue_http_requests_total\{[^}]*route="<server>"[^}]*'
                                                  r'status="(\d+)"\}', metrics)}
    assert counted >= {400, 408, 414, 431}, counted
    # And each got its access line, as any answer does (the id it was answered with included).
    lines = [json.loads(text) for text in server.log_path.read_text().splitlines() if text.startswith("{")]
    logged = {line["status"] for line in lines if line.get("route") == "<server>"}
    assert logged >= {400, 408, 414, 431}, logged
    assert any(line.get("request_id") == "mine-1" for line in lines if line.get("route") == "<server>")


@pytest.mark.slow
def test_an_upload_that_expects_100_continue_is_answered_continue_once_and_stored(gunicorn_server):
    server = gunicorn_server
    body, content_type = multipart({"visibility": "public"}, "file", "c.jpg",
                                   image_bytes("good/progressive.jpg"))
    with attacker(server.port, source=LOOPBACK) as sock:
        sock.settimeout(10)
        sock.sendall((f"POST /api/uploads HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: {server.token()['Authorization']}\r\nContent-Type: {content_type}\r\n"
                      f"Content-Length: {len(body)}\r\n"
                      "Expect: 100-continue\r\nConnection: close\r\n\r\n").encode())
        assert sock.recv(64) == b"HTTP/1.1 100 Continue\r\n\r\n"  # before a byte of the body
        sock.sendall(body)
        answer = answer_of(sock, timeout=30)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:300]
    assert b"100 Continue" not in answer  # gunicorn did not answer it again


@pytest.mark.slow
def test_a_client_over_its_share_of_buffered_memory_waits_and_nothing_else_does(start_gunicorn):
    # 600 KB bodies, 1 MB for a worker's bodies in all: one client may hold 600 KB of it.
    server = start_gunicorn(WEB_CONCURRENCY="1", GUNICORN_BUFFER_BODY_BYTES="600000",
                            GUNICORN_BUFFER_TOTAL_BYTES="1000000")
    head = (b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 590000\r\nConnection: close\r\n\r\n{")
    with attacker(server.port) as first, attacker(server.port) as second:
        first.sendall(head + b" " * 560_000)  # held, not complete
        time.sleep(0.5)
        second.sendall(head + b" " * 589_999)  # complete, but its client is over its share
        second.settimeout(1.5)
        with pytest.raises(TimeoutError):
            second.recv(1)  # not read on, so not answered: it waits for memory
        assert healthz(server.port) < PROBE_BOUND  # another client is not held up
        first.sendall(b" " * 29_999)  # the first completes, is answered, its memory released
        assert answer_of(first).startswith(b"HTTP/1.1 400")
        assert answer_of(second, timeout=10).startswith(b"HTTP/1.1 400")  # then the second is read on


@pytest.mark.slow
def test_two_bodies_of_one_client_that_fill_its_share_between_them_are_both_read(start_gunicorn):
    """Counted per read, two half-read bodies filled the client's share and waited for each
    other until both timed out (an admin's two big uploads at once); reserved whole, one is
    read first, then the other."""
    server = start_gunicorn(WEB_CONCURRENCY="1", GUNICORN_BUFFER_BODY_BYTES="600000",
                            GUNICORN_BUFFER_TOTAL_BYTES="1000000")
    head = (b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 590000\r\nConnection: close\r\n\r\n{")
    with attacker(server.port, source=LOOPBACK) as one, attacker(server.port, source=LOOPBACK) as two:
        for sock in (one, two):
            sock.sendall(head + b" " * 300_000)  # half of each: together over the 600 KB share
        time.sleep(0.3)
        for sock in (one, two):
            sock.sendall(b" " * 289_999)
        started = time.monotonic()
        answers = [answer_of(sock, timeout=8) for sock in (one, two)]
    assert all(answer.startswith(b"HTTP/1.1 400") for answer in answers), [a[:40] for a in answers]
    assert time.monotonic() - started < 5  # not after a deadline
