#!/usr/bin/env python3
"""Hostile clients against the Procfile's server, alone and behind the nginx front (issue 26, item 8).

One run starts the embedded database and ``gunicorn --config gunicorn.conf.py wsgi:app`` (2
workers, default settings) on loopback, uploads a public ~6 MB random-noise JPEG (over the
media cache's 4 MiB object limit, so a thread writes it) and a public 100 KB one, then
attacks the server from one anonymous client address (127.0.0.2) while an honest client
(127.0.0.1) probes ``GET /healthz`` once a second, each probe on a fresh connection with a
5 s timeout. Each attack keeps ``--connections`` connections (``--idle`` for idle sockets)
and reopens each one at once when the server drops it, so the pressure never lets up:

- slow bodies: ``POST /api/auth/login`` announcing 2,000,000 bytes, 70 KiB sent at once, then
  ~1.2 KB/s;
- slow readers: ``GET`` of the 6 MB image with a 4 KiB receive buffer, 4 KiB read every 20 s;
- idle sockets: connections that send nothing;
- slow headers: a header line every 2 s (slowloris);
- invented methods: a flood of requests with ever-new method names and paths, as fast as the
  connections can send them; ``/metrics`` is scraped before and after.

Meanwhile the workers' summed RSS (children of the master, VmRSS) is sampled every 0.2 s.
Targets: at least 90 % of the probes answered 200, under 300 MB of extra worker RSS at the peak.
Setups: the app alone (attacks on gunicorn's port) and behind the shipped nginx front
(bench/front.py; attacks on nginx; AVENUE_PROXY_COUNT=1); ``--before REF`` adds the app alone
on the code of a git ref. The same run keeps issue 18's hot-media ratio: the app alone
against Flask from disk (bench/serving.py) on a 100 KB GET and its 304, under wrk.

    .venv/bin/python bench/attacks.py --quick             # 5 s per attack, 300 idle sockets
    .venv/bin/python bench/attacks.py                     # 30 s per attack, ~6 minutes
    .venv/bin/python bench/attacks.py --before HEAD~3     # and the app alone on older code

Prints one markdown table and writes it to bench/results/attacks-<date>.md (-quick.md for
--quick); logs go to bench/work/attacks/. Traffic goes only to 127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import errno
import heapq
import http.client
import io
import itertools
import json
import math
import os
import random
import re
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pymongo
from bson import ObjectId

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # the app, and tests/support's launcher

from avenue.embedded import EmbeddedServer  # noqa: E402
from avenue.media.buckets import RENDITIONS, UPLOADS  # noqa: E402
from avenue.server import abort  # noqa: E402
from tests.support import tokens  # noqa: E402
from tests.support.fixtures import encoded, noise_jpeg, png_chunk, scene  # noqa: E402
from tests.support.launcher import Gunicorn, healthz  # noqa: E402
from tests.support.records import IMAGE, images  # noqa: E402

import data  # noqa: E402
import front  # noqa: E402
import serving  # noqa: E402
from harness import LOOPBACK, BenchError, Procs, request, stop_after, worker_pids  # noqa: E402
from hostile import rss_mb  # noqa: E402
from slowclients import HOST, KINDS  # noqa: E402

DB = "avenue_attacks"
ATTACKER = "127.0.0.2"  # one anonymous client: its own loopback address (all of 127/8 is local)
PROBES_TARGET = 0.90
RSS_TARGET_MB = 300
WORK = BENCH / "work" / "attacks"
RESULTS = BENCH / "results"
# Linux: bind() leaves the port to connect(), which picks one free for this 4-tuple; without
# it thousands of reconnects from one address run out of ports that bind() alone may take.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


# --------------------------------------------------------------------------------------
# The attacks


@dataclass(frozen=True)
class Attack:
    """What each of an attack's connections does, from its opening to the server dropping it."""

    key: str
    title: str
    connections: int
    opening: Callable[[int], bytes]  # sent as soon as connected (argument: a running count)
    every: float = 0.0  # seconds between a connection's steps (0: none)
    trickle: bytes = b""  # sent at each step
    read_bytes: int = 0  # read at each step, and nothing otherwise (a slow reader)
    receive_buffer: int = 0  # SO_RCVBUF, set before connecting
    flood: bool = False  # the next request as soon as an answer is whole


def _letters(n: int, width: int = 7) -> str:
    """``n`` in base 26 as A-Z: a method name nginx lets through (it refuses digits in one
    with 400 before the app sees it) and gunicorn accepts."""
    out = []
    for _ in range(width):
        n, digit = divmod(n, 26)
        out.append(chr(ord("A") + digit))
    return "".join(reversed(out))


def invented_request(n: int) -> bytes:
    """``MAAAABQ /healthz``, then ``MAAAABR /maaaabr/43``...: never the same method twice,
    and every other path one no route has."""
    name = _letters(n)
    path = "/healthz" if n % 2 == 0 else f"/{name.lower()}/{n}"
    return f"M{name} {path} HTTP/1.1\r\n{HOST}\r\n".encode()


def attacks(connections: int, idle: int, big_url: str) -> list[Attack]:
    slow_body = (f"POST /api/auth/login HTTP/1.1\r\n{HOST}Content-Type: application/json\r\n"
                 "Content-Length: 2000000\r\n\r\n{").encode() + b" " * (70 * 1024 - 1)
    slow_head, header_line = KINDS["head"]
    return [
        Attack("slow-bodies", "slow bodies (2 MB login, 70 KiB then 1.2 KB/s)", connections,
               lambda n: slow_body, every=1.0, trickle=b" " * 1229),
        Attack("slow-readers", "slow readers (6 MB image, 4 KiB per 20 s)", connections,
               lambda n: f"GET {big_url} HTTP/1.1\r\n{HOST}\r\n".encode(), every=20.0,
               read_bytes=4096, receive_buffer=4096),
        Attack("idle", "idle sockets (send nothing)", idle, lambda n: b""),
        Attack("slow-headers", "slow headers (a line per 2 s)", connections, lambda n: slow_head,
               every=2.0, trickle=header_line),
        Attack("invented-methods", "invented methods (flood)", connections, invented_request, flood=True),
    ]


@dataclass(eq=False)
class _Conn:
    sock: socket.socket | None = None
    connecting: bool = False
    generation: int = 0  # which connection of this slot a timer belongs to
    out: bytes = b""  # still to send
    inbox: bytes = b""  # received, not yet a whole answer (flood)
    answered: bool = False  # its first answer's status is counted (all but the flood)


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)


class Attackers:
    """An attack's connections, driven by one epoll thread from ``source``.

    A connection the server closes or resets is reopened at once; one that cannot connect
    (refused, out of ports or descriptors) is tried again 0.1 s later. ``stop`` resets every
    socket, so the server is not left holding any.
    """

    def __init__(self, attack: Attack, port: int, source: str = ATTACKER) -> None:
        self.attack = attack
        self.port = port
        self.source = source
        self.opened = 0  # connections established
        self.failed_connects = 0
        self.dropped = 0  # established connections the server closed or reset
        self.answers = 0  # whole answers read (the flood counts each; the others a connection's first)
        self.statuses: collections.Counter[str] = collections.Counter()
        self.cpu_seconds = 0.0
        self.error: str | None = None
        self._epoll = select.epoll()
        self._by_fd: dict[int, _Conn] = {}
        self._slots = [_Conn() for _ in range(attack.connections)]
        self._timers: list[tuple[float, int, _Conn, int, Callable[[_Conn], None]]] = []
        self._seq = itertools.count()
        self._requests = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"attack-{attack.key}", daemon=True)

    # -- control, from the main thread

    def start(self) -> Attackers:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for conn in self._slots:
            if conn.sock is not None:
                abort(conn.sock)  # a reset: the server frees the connection now
                conn.sock = None
        self._epoll.close()

    def summary(self, seconds: float) -> str:
        codes = ", ".join(f"{code} x{count:,}" for code, count in self.statuses.most_common(4))
        parts = [f"{self.opened:,} connections opened", f"{self.dropped:,} dropped by the server"]
        if self.failed_connects:
            parts.append(f"{self.failed_connects:,} connects failed")
        if self.attack.flood:
            parts.append(f"{self.answers / seconds:,.0f} answers/s")
        parts.append(f"answers: {codes or 'none'}")
        parts.append(f"attacker CPU {100 * self.cpu_seconds / seconds:.0f} %")
        if self.error:
            parts.append(f"driver failed: {self.error}")
        return "; ".join(parts)

    # -- the driver thread

    def _run(self) -> None:
        try:
            for conn in self._slots:
                self._connect(conn)
            while not self._stop.is_set():
                timeout = 0.05
                if self._timers:
                    timeout = max(0.0, min(timeout, self._timers[0][0] - time.monotonic()))
                for fd, events in self._epoll.poll(timeout, 1024):
                    conn = self._by_fd.get(fd)
                    if conn is not None:
                        self._event(conn, events)
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now and not self._stop.is_set():
                    _, _, conn, generation, action = heapq.heappop(self._timers)
                    if generation == conn.generation and conn.sock is not None:
                        action(conn)
        except Exception as exc:  # noqa: BLE001 - reported in the table, the run goes on
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.cpu_seconds = time.thread_time()

    def _later(self, conn: _Conn, delay: float, action: Callable[[_Conn], None]) -> None:
        due = time.monotonic() + delay
        heapq.heappush(self._timers, (due, next(self._seq), conn, conn.generation, action))

    def _connect(self, conn: _Conn) -> None:
        conn.generation += 1
        conn.out, conn.inbox, conn.answered = b"", b"", False
        sock = None
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            if self.attack.receive_buffer:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.attack.receive_buffer)
            sock.bind((self.source, 0))
            code = sock.connect_ex((LOOPBACK, self.port))
        except OSError as exc:
            code = exc.errno or -1
        if code not in (0, errno.EINPROGRESS):
            if sock is not None:
                sock.close()
            conn.sock = None
            self.failed_connects += 1
            self._later(conn, 0.1, self._connect)
            return
        conn.sock, conn.connecting = sock, True
        self._by_fd[sock.fileno()] = conn
        self._epoll.register(sock.fileno(), select.EPOLLOUT)

    def _interest(self, conn: _Conn) -> None:
        # A slow reader waits only for the server's close or reset; the others read all.
        mask = select.EPOLLRDHUP if self.attack.read_bytes else select.EPOLLIN | select.EPOLLRDHUP
        if conn.out:
            mask |= select.EPOLLOUT
        self._epoll.modify(conn.sock.fileno(), mask)

    def _event(self, conn: _Conn, events: int) -> None:
        if conn.connecting:
            if conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self._close(conn)
                self.failed_connects += 1
                self._later(conn, 0.1, self._connect)
                return
            conn.connecting = False
            self.opened += 1
            conn.out = self.attack.opening(next(self._requests))
            if self.attack.every:
                self._later(conn, self.attack.every, self._step)
            self._flush(conn)
            return
        if events & select.EPOLLOUT and conn.out:
            self._flush(conn)
            if conn.sock is None:
                return
        if self.attack.read_bytes:
            if events & (select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR):
                self._lost(conn)
            return
        if events & (select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR):
            try:
                chunk = conn.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._lost(conn)
            else:
                self._received(conn, chunk)

    def _flush(self, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.out)
            conn.out = conn.out[sent:]
        except BlockingIOError:
            pass
        except OSError:
            self._lost(conn)
            return
        self._interest(conn)

    def _step(self, conn: _Conn) -> None:
        """A connection's periodic step: a little more of its request, or of its answer."""
        if self.attack.trickle:
            conn.out += self.attack.trickle
            self._flush(conn)
        if self.attack.read_bytes and conn.sock is not None:
            try:
                chunk = conn.sock.recv(self.attack.read_bytes)
            except BlockingIOError:
                chunk = None
            except OSError:
                chunk = b""
            if chunk == b"":
                self._lost(conn)
                return
            if chunk:
                self._first_answer(conn, chunk)
        if conn.sock is not None:
            self._later(conn, self.attack.every, self._step)

    def _first_answer(self, conn: _Conn, chunk: bytes) -> None:
        if not conn.answered and chunk.startswith(b"HTTP/"):
            conn.answered = True
            self.answers += 1
            self.statuses[chunk[9:12].decode("latin-1")] += 1

    def _received(self, conn: _Conn, chunk: bytes) -> None:
        if not self.attack.flood:
            self._first_answer(conn, chunk)
            return
        conn.inbox += chunk
        while (end := conn.inbox.find(b"\r\n\r\n")) >= 0:
            head = conn.inbox[:end]
            length = _CONTENT_LENGTH.search(head)
            whole = end + 4 + (int(length[1]) if length else 0)
            if len(conn.inbox) < whole:
                return
            conn.inbox = conn.inbox[whole:]
            self.answers += 1
            self.statuses[head[9:12].decode("latin-1")] += 1
            if _CLOSE.search(head):
                return  # the server closes it next: then it is reopened
            conn.out += self.attack.opening(next(self._requests))
            self._flush(conn)
            if conn.sock is None:
                return

    def _lost(self, conn: _Conn) -> None:
        """The server closed or reset the connection: count its answer, reopen at once."""
        if not conn.answered and not self.attack.flood:
            try:  # an answer given just before the close (a slow reader reads it only now)
                self._first_answer(conn, conn.sock.recv(4096))
            except OSError:
                pass
        self._close(conn)
        self.dropped += 1
        self._connect(conn)

    def _close(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        self._by_fd.pop(fd, None)
        try:
            self._epoll.unregister(fd)
        except OSError:
            pass
        conn.sock.close()
        conn.sock = None


# --------------------------------------------------------------------------------------
# Measuring one attack


class RssPeak:
    """The workers' summed RSS every 0.2 s (re-reading who the workers are each time)."""

    def __init__(self, master: subprocess.Popen) -> None:
        self.master = master
        self.pids: set[int] = set(worker_pids(master))
        self.idle = rss_mb(sorted(self.pids))
        self.peak = self.idle
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            pids = worker_pids(self.master)
            self.pids.update(pids)
            self.peak = max(self.peak, rss_mb(pids))

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def probe_each_second(port: int, seconds: float) -> list[tuple[bool, float]]:
    """``GET /healthz`` once a second for ``seconds``, each probe on a thread and connection of
    its own (a probe stuck for its 5 s timeout does not delay the next): (answered 200, time)."""
    probes: list[tuple[bool, float]] = []
    lock = threading.Lock()

    def one() -> None:
        started = time.monotonic()
        ok = healthz(port, timeout=5.0) != math.inf
        with lock:
            probes.append((ok, time.monotonic() - started))

    threads = []
    start = time.monotonic()
    for n in range(max(1, round(seconds))):
        time.sleep(max(0.0, start + n - time.monotonic()))
        thread = threading.Thread(target=one, daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(timeout=10)
    return probes


@dataclass
class Row:
    setup: str
    attack: Attack
    probes: list[tuple[bool, float]]
    idle_mb: float
    peak_extra_mb: float
    attacker: str
    log: list[str] = field(default_factory=list)  # notable lines of the servers' logs
    workers_changed: bool = False
    metrics: tuple[tuple[int, int], tuple[int, int]] | None = None  # (series, bytes) before, after

    @property
    def share(self) -> float:
        return sum(ok for ok, _ in self.probes) / len(self.probes) if self.probes else 0.0

    @property
    def met(self) -> bool:
        return self.share >= PROBES_TARGET and self.peak_extra_mb < RSS_TARGET_MB


# The gunicorn log lines worth a look: gunicorn's warnings and errors (the worker's refusals
# among them), worker restarts, and the app's structured records above info (its access log
# lines are info). Every line of nginx's error logs is (they hold warnings and worse).
_GUNICORN_NOTABLE = re.compile(r"\[(WARNING|ERROR|CRITICAL)\]|Traceback|WORKER TIMEOUT|Booting worker|"
                               r"Worker exiting|\"level\": \"(error|critical|warning)\"|Too many open files",
                               re.IGNORECASE)
# What makes lines of one kind differ: time stamps, pids, request ids, connection numbers, counts.
_VARYING = [re.compile(p) for p in (
    r"^\[[^]]*\] \[\d+\] ",  # gunicorn: [time] [pid]
    r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ",  # nginx: date and time
    r"\"(timestamp|request_id|pid)\": \"?[^,]*,? ?",  # the app's JSON records
    r", (request|host|referrer): \"[^\"]*\"",  # nginx: the request line (invented methods vary)
)]

_NUMBER = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\d+")


class LogWatch:
    """The notable lines a log gained since :meth:`mark`, counted by kind."""

    def __init__(self, path: Path, pattern: re.Pattern[str] | None = None) -> None:
        self.path, self.pattern, self.start = path, pattern, 0

    def mark(self) -> None:
        self.start = self.path.stat().st_size if self.path.exists() else 0

    def notable(self, most: int = 4) -> list[str]:
        if not self.path.exists():
            return []
        counts: collections.Counter[str] = collections.Counter()
        with open(self.path, "rb") as fh:
            fh.seek(self.start)
            for raw in fh:
                line = raw.decode("utf-8", "replace").strip()
                if line and (self.pattern is None or self.pattern.search(line)):
                    for varying in _VARYING:
                        line = varying.sub("", line)
                    # Numbers as N, addresses kept (they say who was refused).
                    line = _NUMBER.sub(lambda m: m[0] if "." in m[0] else "N", line)
                    counts[line[:150]] += 1
        return [f"{count:,} x `{line}`" for line, count in counts.most_common(most)]


def metrics_size(app_port: int) -> tuple[int, int]:
    """/metrics' series (sample lines) and bytes, scraped from 127.0.0.1 (AVENUE_METRICS_ALLOW)."""
    reply = request("GET", app_port, "/metrics", timeout=30)
    if reply.status != 200:
        raise BenchError(f"GET /metrics answered {reply.status}")
    series = sum(1 for line in reply.body.splitlines() if line and not line.startswith(b"#"))
    return series, len(reply.body)


def settle(port: int, timeout: float = 60.0) -> None:
    """Wait until /healthz answers on the attacked port again, then 2 s more for the workers
    to finish what the last attack left them (cut-off answers, queued requests)."""
    deadline = time.monotonic() + timeout
    while healthz(port, timeout=5.0) == math.inf:
        if time.monotonic() > deadline:
            raise BenchError(f"/healthz did not answer within {timeout:.0f} s after an attack")
        time.sleep(0.5)
    time.sleep(2)


def run_attack(setup: str, attack: Attack, *, port: int, server: Gunicorn, seconds: float,
               logs: list[LogWatch]) -> Row:
    settle(port)
    before = metrics_size(server.port) if attack.flood else None
    for log in logs:
        log.mark()
    attackers = Attackers(attack, port)
    with RssPeak(server.process) as rss:
        attackers.start()
        try:
            probes = probe_each_second(port, seconds)
        finally:
            attackers.stop()
    after = metrics_size(server.port) if attack.flood else None
    time.sleep(1)  # the log lines of what the stop cut off
    notable = [f"{log.path.name}: {line}" for log in logs for line in log.notable()]
    return Row(setup, attack, probes, rss.idle, rss.peak - rss.idle, attackers.summary(seconds), notable,
               workers_changed=len(rss.pids) > 2,
               metrics=(before, after) if before and after else None)


# --------------------------------------------------------------------------------------
# The run


@dataclass
class Setup:
    label: str
    env: dict[str, str]
    root: Path
    behind_front: bool = False
    serve: bool = True  # also measured on issue 18's hot media (the app alone: not behind the front)


#: gunicorn's own gevent worker in place of GuardedThreadWorker (``--gevent``): the alternative
#: gunicorn documents for clients that are not behind a buffering proxy. A variable, not the
#: config file: GUNICORN_CMD_ARGS wins over gunicorn.conf.py's worker_class.
GEVENT = {"GUNICORN_CMD_ARGS": "--worker-class gevent --worker-connections 1000"}


def start_server(setup: Setup, uri: str, running: list[Gunicorn], log_name: str = "",
                 db_name: str = DB) -> Gunicorn:
    """The Procfile's process for ``setup`` (2 workers), remembered in ``running`` for the end."""
    name = log_name or re.sub(r"[^a-z0-9]+", "-", setup.label.lower()).strip("-")
    log = WORK / f"gunicorn-{name}.log"
    log.unlink(missing_ok=True)
    server = Gunicorn(uri, db_name, log, workers=2, root=setup.root,
                      extra_env={"AVENUE_METRICS_ALLOW": "127.0.0.1/32", **setup.env})
    running.append(server)
    return server.start()


def upload_images(server: Gunicorn, uri: str) -> tuple[str, str, bytes]:
    """The ~6 MB noise JPEG and the 100 KB image, public, uploaded by an editor: their URLs,
    and the 100 KB image's bytes as the app serves them (the disk baseline serves the same)."""
    headers = tokens.issue_on(uri, DB)
    small_file = data.ensure_files(BENCH / "work" / "data", only=("img100k.jpg",))["img100k.jpg"]
    urls = []
    for name, body in (("noise.jpg", noise_jpeg()), ("img100k.jpg", small_file.read_bytes())):
        status, image = server.upload(headers, body, name, timeout=120)
        if status not in (200, 201) or "url" not in image:
            raise BenchError(f"upload of {name}: HTTP {status} {image}")
        urls.append(image["url"])
    big = request("GET", server.port, urls[0], timeout=60)
    if big.status != 200 or len(big.body) <= 4 * 2**20:
        raise BenchError(f"the noise image: HTTP {big.status}, {len(big.body):,} bytes (want > 4 MiB)")
    small = request("GET", server.port, urls[1], timeout=60)
    if small.status != 200:
        raise BenchError(f"the 100 KB image: HTTP {small.status}")
    return urls[0], urls[1], small.body


def disk_rates(procs: Procs, body: bytes, seconds: float) -> serving.ServeResult:
    """Issue 18's baseline: Flask-from-disk serving the same 100 KB file (and its 304), under
    wrk as bench/suite.py measures it."""
    folder = WORK / "disk"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / serving.FILES["100k"]).write_bytes(body)
    venv_bin = Path(sys.executable).parent
    env = {"BENCH_DATA_DIR": str(folder), "PATH": f"{venv_bin}:/usr/bin:/bin"}
    disk = serving.start_baseline(procs, venv_bin, "disk", "Flask send_from_directory (disk)", "disk_app",
                                  env, {"100k": f"/files/{serving.FILES['100k']}"})
    try:
        return serving.measure(disk, {"100k": len(body)}, seconds=seconds, rss=False, only=("100k", "304"))
    finally:
        procs.stop(disk.proc)


def serving_ratios(server: Gunicorn, url: str, size: int, on_disk: serving.ServeResult,
                   seconds: float) -> dict[str, tuple[float, float, str]]:
    """Issue 18's hot media: wrk on the app alone against the disk baseline measured before:
    case -> (app, disk, problems)."""
    app = serving.Server("app", "Avenue app", server.port, server.process, {"100k": url})
    alone = serving.measure(app, {"100k": size}, seconds=seconds, rss=False, only=("100k", "304"))
    out = {}
    for case in ("100k", "304"):
        problems = [f"{name}: {res.errors} socket errors, {res.non_2xx_3xx} non-2xx/3xx"
                    for name, res in (("app", alone.wrk.get(case)), ("disk", on_disk.wrk.get(case)))
                    if res is not None and not res.clean]
        problems += alone.problems + on_disk.problems
        if case in alone.wrk and case in on_disk.wrk:
            out[case] = (alone.wrk[case].rps, on_disk.wrk[case].rps, "; ".join(problems))
    return out


def attack_setup(setup: Setup, uri: str, procs: Procs, running: list[Gunicorn], plan: list[Attack],
                 seconds: float, urls: tuple[str, str], say: Callable[[str], None],
                 serve: Callable[[Gunicorn], None]) -> list[Row]:
    server = start_server(setup, uri, running)
    nginx = None
    try:
        port = server.port
        logs = [LogWatch(server.log_path, _GUNICORN_NOTABLE)]
        if setup.behind_front:
            nginx, _ = front.start_front(procs, WORK, server.port)
            port = nginx.port
            logs += [LogWatch(WORK / "front" / name) for name in ("nginx-error.log", "error.log")]
        for url in urls:  # the media cache (and the front's cache) hold them, as when hot
            reply = request("GET", port, url, timeout=60)
            if reply.status != 200:
                raise BenchError(f"{setup.label}: GET {url} answered {reply.status}")
        if setup.serve:
            serve(server)
        rows = []
        for attack in plan:
            say(f"{setup.label}: {attack.title}, {attack.connections} connections, {seconds:.0f} s")
            row = run_attack(setup.label, attack, port=port, server=server, seconds=seconds, logs=logs)
            say(f"  probes {sum(ok for ok, _ in row.probes)}/{len(row.probes)}, "
                f"+{row.peak_extra_mb:.0f} MB; {row.attacker}")
            rows.append(row)
        return rows
    finally:
        if nginx is not None:
            procs.stop(nginx.proc)
        server.stop()
        running.remove(server)


# --------------------------------------------------------------------------------------
# Expensive requests (the hardening after fb4b483): each scenario on a server of its own
# setup, on a database of its own, so the rate limits' counters and the stored files are its.

HEAVY = ("rendition-flood", "tus-parking", "edits", "svg-logos", "svg-parse", "svg-poisoning", "svg-helpers",
         "refused-then-next", "wrong-urls", "zip-flat")  # in this order: zip-flat last
LADDER = (160, 320, 480, 640, 800, 960, 1280, 1600, 1920, 2560)
FLOOD_SIDE = (6930, 5200)  # 36 MP
EDIT_SIDE = (7300, 5470)  # 39.9 MP, under AVENUE_MAX_PIXELS (40,000,000)
EDIT_PNG_SIDE = (6300, 6300)  # 39.7 MP
FLAT_SIDE = (7300, 5470)
EDITS_TARGET_MB = 600
ZIP_CLIENT_SECONDS = 100.0  # the client's wait for the import's answer (the deadline is 60 s)


@dataclass
class HeavyRow:
    scenario: str
    setup: str
    load: str
    answers: str
    stored: str = ""
    rss: str = ""
    other: str = ""


def photo_jpeg(size: tuple[int, int], seed: int, label: str) -> bytes:
    """A photo-like JPEG (gradient, shapes, 5 % grain: not noise), distinct by its comment."""
    return data.with_comment(encoded(scene(size, seed, grain=0.05), "JPEG", quality=85),
                             f"{label} {uuid.uuid4().hex}")


def call(port: int, method: str, path: str, *, body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 60.0,
         source: str | None = None) -> tuple[int, bytes, float]:
    """One request on a connection of its own from ``source``: (status or 0, body, seconds)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), time.monotonic() - started
    except (OSError, http.client.HTTPException):
        return 0, b"", time.monotonic() - started
    finally:
        conn.close()


def upload_photo(server: Gunicorn, headers: dict[str, str], body: bytes, name: str,
                 visibility: str = "public") -> dict:
    status, image = server.upload(headers, body, name, timeout=180, visibility=visibility)
    if status not in (200, 201) or "url" not in image:
        raise BenchError(f"upload of {name}: HTTP {status} {str(image)[:300]}")
    return image


def base_path(image: dict) -> str:
    """The image's URL without its extension: ``<base>/<options>.<ext>`` is a rendition."""
    return image["url"].rsplit(".", 1)[0]


def codes(counter: collections.Counter) -> str:
    ordered = sorted(counter.items(), key=lambda kv: str(kv[0]))
    return ", ".join(f"{code} x{count:,}" for code, count in ordered)


class Flood:
    """``connections`` keep-alive connections from ATTACKER, each asking for the next of ``paths``
    as soon as the last answer is whole (a connection is reopened when closed or broken)."""

    def __init__(self, port: int, paths: Callable[[], str], connections: int) -> None:
        self.port, self.paths, self.connections = port, paths, connections
        self.statuses: collections.Counter = collections.Counter()
        self.times: list[float] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(connections)]

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(LOOPBACK, self.port, timeout=60, source_address=(ATTACKER, 0))

    def _run(self) -> None:
        conn = self._connect()
        while not self._stop.is_set():
            with self._lock:
                path = self.paths()
            started = time.monotonic()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                status = response.status
                close = (response.getheader("connection") or "").lower() == "close"
            except (OSError, http.client.HTTPException):
                status, close = 0, True
            with self._lock:
                self.statuses[status] += 1
                self.times.append(time.monotonic() - started)
            if close:
                conn.close()
                conn = self._connect()
        conn.close()

    def start(self) -> Flood:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=65)


class EditorProbe:
    """A logged-in editor, one thing at a time: upload a fresh 12 MP photo, then the first GET of
    a ladder width of it (w_640.webp, a render on request, with the token): that GET's time."""

    def __init__(self, server: Gunicorn, headers: dict[str, str], source: bytes) -> None:
        self.server, self.headers, self.source = server, headers, source
        self.gets: list[tuple[int, float]] = []  # (status, seconds)
        self.uploads: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def once(self) -> None:
        body = data.with_comment(self.source, f"editor {uuid.uuid4().hex}")
        started = time.monotonic()
        status, image = self.server.upload(self.headers, body, "editor.jpg", timeout=120)
        self.uploads.append(time.monotonic() - started)
        if status not in (200, 201):
            self.gets.append((-status, 0.0))
            return
        got, _, seconds = call(self.server.port, "GET", base_path(image) + "/w_640.webp",
                               headers=self.headers, timeout=120)
        self.gets.append((got, seconds))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.once()

    def start(self) -> EditorProbe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=240)

    def summary(self) -> str:
        ok = sorted(seconds for status, seconds in self.gets if status == 200)
        bad = collections.Counter(status for status, _ in self.gets if status != 200)
        if not ok:
            return f"no GET answered 200 ({codes(bad) or 'none made'})"
        median = ok[len(ok) // 2]
        text = f"{median:.2f} s median, {ok[-1]:.2f} s max ({len(ok)} GETs)"
        if bad:
            text += f"; not 200: {codes(bad)}"
        return text


def count_files(db, collection: str) -> int:
    return db[collection].count_documents({})


Say = Callable[[str], None]


def rendition_flood(server: Gunicorn, db, setup: str, seconds: float, say: Say) -> list[HeavyRow]:
    editor = server.token("editor")
    say(f"{setup}: rendition flood: uploading 4 public {FLOOD_SIDE[0]}x{FLOOD_SIDE[1]} photos")
    images = [upload_photo(server, editor, photo_jpeg(FLOOD_SIDE, 40 + n, "flood"), f"flood{n}.jpg")
              for n in range(4)]
    for image in images:  # its fixed variants rendered (the upload answers before them)
        call(server.port, "GET", next(iter(image["variant_urls"]["card"].values())), timeout=120)
    probe = EditorProbe(server, server.token("editor"), photo_jpeg((4000, 3000), 7, "editor"))
    for _ in range(3):
        probe.once()
    idle_editor = probe.summary()
    rows = [HeavyRow("rendition flood", setup, "none (the editor alone, 3 probes)", "", "", "",
                     f"editor's first GET of a new w_640.webp: {idle_editor}")]
    for connections in (4, 8):
        widths_images = images[:2] if connections == 4 else images[2:]

        def crops() -> str:
            name, width = "k" + uuid.uuid4().hex[:10], random.choice(LADDER)  # [a-z][a-z0-9_-]{0,31}
            return f"{base_path(random.choice(images))}/c_{name},w_{width}.webp"

        ladder = itertools.cycle([f"{base_path(image)}/w_{width}.{fmt}" for width in LADDER
                                  for fmt in ("avif", "webp") for image in widths_images])
        for kind, paths in (("distinct crops c_<random>,w_<ladder>.webp", crops),
                            (f"ladder widths x AVIF/WebP of {len(widths_images)} images "
                             f"({len(LADDER) * 2 * len(widths_images)} distinct, then again)",
                             lambda ladder=ladder: next(ladder))):
            settle(server.port)
            before = count_files(db, f"{RENDITIONS}.files")
            probe = EditorProbe(server, server.token("editor"), probe.source)
            say(f"{setup}: rendition flood, {connections} connections: {kind}, {seconds:.0f} s "
                "(the editor in the second half)")
            with RssPeak(server.process) as rss:  # the flood alone
                flood = Flood(server.port, paths, connections).start()
                time.sleep(seconds / 2)
            with RssPeak(server.process) as beside:  # and the editor
                probe.start()
                time.sleep(seconds / 2)
                flood.stop()
                probe.stop()
            after = count_files(db, f"{RENDITIONS}.files")
            total = sum(flood.statuses.values())
            editors = sum(status == 200 for status, _ in probe.gets)  # each a new rendition of its own
            rows.append(HeavyRow("rendition flood", setup, f"{connections} connections: {kind}",
                                 f"{total / seconds:,.1f}/s: {codes(flood.statuses)}",
                                 f"{before:,} → {after:,}: +{after - before - editors:,} by the flood "
                                 f"(and +{editors} by the editor)",
                                 f"flood alone +{rss.peak - rss.idle:,.0f} MB, with the editor "
                                 f"+{beside.peak - rss.idle:,.0f} MB (idle {rss.idle:,.0f})",
                                 f"editor's first GET of a new w_640.webp: {probe.summary()}"))
            say(f"  {rows[-1].answers}; renditions {rows[-1].stored}; {rows[-1].rss}; {rows[-1].other}")
    return rows


def tus_parking(server: Gunicorn, db, setup: str, seconds: float, say: Say) -> list[HeavyRow]:
    """One editor opens uploads of 10,000,000 bytes and PATCHes each 1 MiB at a time up to 1 MiB
    short of its end (it never finishes: the bytes stay parked), on 2 connections, while a
    third sends 1-byte PATCHes to an upload of its own, for ``seconds``."""
    headers = server.token("editor")
    version = {"Tus-Resumable": "1.0.0"}
    length, piece = 10_000_000, 2**20
    statuses = {kind: collections.Counter() for kind in ("create", "PATCH 1 MiB", "PATCH 1 byte")}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    payload = os.urandom(piece)

    def count(kind: str, status: int) -> None:
        with lock:
            statuses[kind][status] += 1

    def create() -> str | None:
        conn = http.client.HTTPConnection(LOOPBACK, server.port, timeout=60)
        try:
            conn.request("POST", "/api/tus", headers={**version, **headers, "Upload-Length": str(length),
                                                      "Upload-Metadata": "filename cGFyay5qcGc="})
            response = conn.getresponse()
            response.read()
            count("create", response.status)
            location = response.getheader("location")
            return "/api/tus/" + location.rsplit("/", 1)[-1] if response.status == 201 and location else None
        except (OSError, http.client.HTTPException):
            count("create", 0)
            return None
        finally:
            conn.close()

    def patch(conn: http.client.HTTPConnection, path: str, offset: int, body: bytes, kind: str) -> int:
        conn.request("PATCH", path, body=body, headers={**version, **headers, "Upload-Offset": str(offset),
                                                        "Content-Type": "application/offset+octet-stream"})
        response = conn.getresponse()
        response.read()
        count(kind, response.status)
        return response.status

    def parker() -> None:
        conn = http.client.HTTPConnection(LOOPBACK, server.port, timeout=60)
        while time.monotonic() < deadline:
            path = create()
            if path is None:
                time.sleep(0.05)
                continue
            offset = 0
            while offset + 2 * piece <= length and time.monotonic() < deadline:
                try:
                    if patch(conn, path, offset, payload, "PATCH 1 MiB") != 204:
                        break
                except (OSError, http.client.HTTPException):
                    count("PATCH 1 MiB", 0)
                    conn.close()
                    conn = http.client.HTTPConnection(LOOPBACK, server.port, timeout=60)
                    break
                offset += piece
        conn.close()

    def byter() -> None:
        path = None
        while path is None and time.monotonic() < deadline:
            path = create()
            if path is None:
                time.sleep(0.05)
        conn = http.client.HTTPConnection(LOOPBACK, server.port, timeout=60)
        offset = 0
        while path and time.monotonic() < deadline:
            try:
                if patch(conn, path, offset, b"x", "PATCH 1 byte") == 204:
                    offset += 1
            except (OSError, http.client.HTTPException):
                count("PATCH 1 byte", 0)
                conn.close()
                conn = http.client.HTTPConnection(LOOPBACK, server.port, timeout=60)
        conn.close()

    settle(server.port)
    say(f"{setup}: tus parking, {seconds:.0f} s")
    with RssPeak(server.process) as rss:
        threads = [threading.Thread(target=fn, daemon=True) for fn in (parker, parker, byter)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=seconds + 90)
    documents = db["media_tus_chunks"].count_documents({})
    parked = sum(int(doc.get("size", 0)) for doc in db["media_tus_chunks"].find({}, {"size": 1}))
    uploads = db["media_tus_uploads"].count_documents({})
    answers = "; ".join(f"{kind}: {codes(counter)}" for kind, counter in statuses.items() if counter)
    row = HeavyRow("tus parking", setup, "one editor: 2 connections of 1 MiB PATCHes, 1 of 1-byte PATCHes",
                   answers, f"{parked / 2**20:,.1f} MiB in {documents:,} documents of media_tus_chunks "
                   f"({uploads:,} uploads open)", f"+{rss.peak - rss.idle:,.0f} MB (idle {rss.idle:,.0f})")
    say(f"  {row.answers}; {row.stored}")
    return [row]


class WorkerRss:
    """Each worker's RSS and their sum every ``every`` seconds, with when each peaked (seconds
    from the start): what :class:`RssPeak` gives, and which worker held it when."""

    def __init__(self, master: subprocess.Popen, every: float = 0.1) -> None:
        self.master = master
        self.every = every
        self.pids = sorted(worker_pids(master))
        self.idle = {pid: rss_mb([pid]) for pid in self.pids}
        self.peak = {pid: (mb, 0.0) for pid, mb in self.idle.items()}  # pid -> (MB, at)
        self.total = (sum(self.idle.values()), 0.0)
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            at = time.monotonic() - self._started
            sizes = {pid: rss_mb([pid]) for pid in worker_pids(self.master)}
            for pid, mb in sizes.items():
                if mb > self.peak.get(pid, (0.0, 0.0))[0]:
                    self.peak[pid] = (mb, at)
            if sum(sizes.values()) > self.total[0]:
                self.total = (sum(sizes.values()), at)

    @property
    def idle_total(self) -> float:
        return sum(self.idle.values())

    def __enter__(self) -> WorkerRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def workers(self) -> str:
        """Each worker's peak, its extra over its idle figure and when."""
        return ", ".join(f"{mb:,.0f} MB (+{mb - self.idle.get(pid, 0.0):,.0f}) at {at:.1f} s"
                         for pid, (mb, at) in sorted(self.peak.items()))


def pending_variants(db, bucket: str, ids: list[str]) -> int:
    """How many variants the images ``ids`` of ``bucket`` still list as pending (not stored)."""
    count = 0
    wanted = {"_id": {"$in": [ObjectId(i) for i in ids]}}
    for doc in images(db, bucket).find(wanted, {"metadata.variants": 1}):
        for formats in ((doc.get("metadata") or {}).get("variants") or {}).values():
            count += sum(1 for info in formats.values() if isinstance(info, dict) and info.get("pending"))
    return count


def edit_png(size: tuple[int, int], seed: int) -> bytes:
    """A PNG of ``size`` that compresses to a few hundred KB (a gradient and shapes, no grain,
    distinct by ``seed``): the 40 MP picture a small upload may declare."""
    from PIL import Image, ImageDraw

    chance = random.Random(seed)
    image = Image.linear_gradient("L").rotate(chance.choice((0, 90, 180, 270))).resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = chance.randrange(size[0]), chance.randrange(size[1])
        w, h = chance.randrange(1, size[0] // 3), chance.randrange(1, size[1] // 3)
        colour = tuple(chance.randrange(256) for _ in range(3))
        (draw.ellipse if chance.random() < 0.5 else draw.rectangle)((x, y, x + w, y + h), fill=colour)
    return encoded(image, "PNG")


def edits(server: Gunicorn, db, setup: str, seconds: float, say: Say) -> list[HeavyRow]:
    """One editor's 4 edits at once, twice: of 39.9 MP photos of theirs (JPEG, rotate 90 and
    crop), then of 6300x6300 private PNGs (rotate 90 and flip: a client's attack). The workers'
    summed RSS sampled every 50 ms until every variant the edits left for after their answers
    is stored (the images list none pending), not just until the answers."""
    headers = server.token("editor")
    say(f"{setup}: edits: uploading 4 {EDIT_SIDE[0]}x{EDIT_SIDE[1]} photos")
    photos = [upload_photo(server, headers, photo_jpeg(EDIT_SIDE, 60 + n, "edit"), f"edit{n}.jpg")
              for n in range(4)]
    rows = [_edits_at_once(server, db, setup, say, headers, photos,
                           "one editor, 4 uploads of 39.9 MP, rotate 90 + crop",
                           {"rotate": 90, "crop": {"x": 0.05, "y": 0.05, "width": 0.9, "height": 0.9}})]
    say(f"{setup}: edits: uploading 4 private {EDIT_PNG_SIDE[0]}x{EDIT_PNG_SIDE[1]} PNGs")
    pngs = [upload_photo(server, headers, edit_png(EDIT_PNG_SIDE, 80 + n), f"edit{n}.png",
                         visibility="private") for n in range(4)]
    rows.append(_edits_at_once(server, db, setup, say, headers, pngs,
                               "one editor, 4 private PNGs of 39.7 MP, rotate 90 + flip",
                               {"rotate": 90, "flip_horizontal": True}))
    return rows


def _edits_at_once(server: Gunicorn, db, setup: str, say: Say, headers: dict[str, str], images: list[dict],
                   load: str, edits: dict) -> HeavyRow:
    """``edits`` of the four ``images`` at once by their uploader (``headers``), once their
    uploads' variants are stored."""
    ids = [image["id"] for image in images]
    for image in images:  # a first GET renders what the render after the answer left (it gave up: busy)
        call(server.port, "GET", next(iter(image["variant_urls"]["card"].values())), headers=headers,
             timeout=120)
    deadline = time.monotonic() + 300
    while pending_variants(db, UPLOADS, ids) and time.monotonic() < deadline:
        time.sleep(0.2)  # the uploads' variants, rendered after their answers
    if pending_variants(db, UPLOADS, ids):
        raise BenchError("the uploads' variants are still pending before the edits")
    settle(server.port)
    body = json.dumps(edits).encode()
    answers: list[tuple[int, float]] = []
    lock = threading.Lock()

    def edit(image: dict) -> None:
        status, _, took = call(server.port, "PUT", f"/api/uploads/{image['id']}/edits", body=body,
                               timeout=300, headers={**headers, "Content-Type": "application/json"})
        with lock:
            answers.append((status, took))

    say(f"{setup}: 4 edits at once: {load}")
    with WorkerRss(server.process, every=0.05) as rss:
        started = time.monotonic()
        threads = [threading.Thread(target=edit, args=(image,), daemon=True) for image in images]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=320)
        answered = time.monotonic() - started
        answered_peak = rss.total[0]
        deadline = time.monotonic() + 300  # the variants after the answers: polled until stored
        while (left := pending_variants(db, UPLOADS, ids)) and time.monotonic() < deadline:
            time.sleep(0.05)
        stored = time.monotonic() - started
        time.sleep(1)  # a last sample or so after the last listing
    peak = rss.total[0] - rss.idle_total
    row = HeavyRow("4 edits at once", setup, load,
                   codes(collections.Counter(status for status, _ in answers)),
                   f"every variant stored after {stored:.1f} s" if not left
                   else f"**{left} variants still pending** after {stored:.1f} s",
                   f"+{peak:,.0f} MB at {rss.total[1]:.1f} s (idle {rss.idle_total:,.0f}; target < "
                   f"{EDITS_TARGET_MB}: {'met' if peak < EDITS_TARGET_MB else '**missed**'}); until the "
                   f"answers +{answered_peak - rss.idle_total:,.0f} MB; each worker's peak: {rss.workers()}",
                   "answered in " + ", ".join(f"{took:.1f}" for took in sorted(t for _, t in answers))
                   + f" s (all by {answered:.1f} s)")
    say(f"  {row.answers}; {row.stored}; {row.rss}; {row.other}")
    return row


# --- costly SVG logos (issue 62) ------------------------------------------------------------


def _path(vertices: int, seed: int, size: float = 10.0) -> str:
    chance = random.Random(seed)
    points = " ".join(f"L{chance.uniform(0, size):.1f} {chance.uniform(0, size):.1f}"
                      for _ in range(vertices))
    return f"M0 0 {points}"


def marker_logo(levels: int = 4, vertices: int = 40) -> bytes:
    """Nested markers: each vertex of each level's path draws the next level's (the attack's
    2.4 KB logo: 4 levels of a 40-vertex path, 16.4 s to upload on f505b75)."""
    markers = ['<marker id="m0" markerWidth="4" markerHeight="4" viewBox="0 0 10 10">'
               '<circle cx="5" cy="5" r="3" fill="#a30"/></marker>']
    for level in range(1, levels):
        markers.append(f'<marker id="m{level}" markerWidth="4" markerHeight="4" viewBox="0 0 10 10">'
                       f'<path d="{_path(vertices, level)}" fill="none" stroke="#0a7" stroke-width="0.2" '
                       f'marker-mid="url(#m{level - 1})"/></marker>')
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400" viewBox="0 0 10 10">'
            f'<defs>{"".join(markers)}</defs><path d="{_path(vertices, 99)}" fill="none" stroke="#000" '
            f'stroke-width="0.05" marker-mid="url(#m{levels - 1})"/></svg>').encode()


def blur_logo(blurs: int = 2000) -> bytes:
    """2,000 chained feGaussianBlur (over 60 s at 400 px on f505b75)."""
    chain = "".join(f'<feGaussianBlur stdDeviation="4" result="b{n}"/>' for n in range(blurs))
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400">'
            f'<filter id="f">{chain}</filter><rect width="400" height="400" fill="#0a7" filter="url(#f)"/>'
            '</svg>').encode()


def morphology_logo() -> bytes:
    """feMorphology of radius 200 (9.2 s at 1600 px on f505b75)."""
    return (b'<svg xmlns="http://www.w3.org/2000/svg" width="1600" height="1600">'
            b'<filter id="f"><feMorphology operator="dilate" radius="200"/></filter>'
            b'<circle cx="800" cy="800" r="300" fill="#0a7" filter="url(#f)"/></svg>')


def dashed_logo(segments: int = 30) -> bytes:
    """One finely dashed stroke along crossing curves: nothing a budget counted on the tree
    refuses, about 10 s to draw at 1600 px (tests/media/ingest/test_svgdraw.py's slow_svg)."""
    chance = random.Random(1)
    curves = " ".join(f"Q{chance.uniform(0, 100):.1f} {chance.uniform(0, 80):.1f} "
                      f"{chance.uniform(0, 100):.1f} {chance.uniform(0, 80):.1f}" for _ in range(segments))
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="1600" height="1280" viewBox="0 0 100 80">'
            f'<path d="M0 0 {curves}" fill="none" stroke="#0a7" stroke-width="3" '
            'stroke-dasharray="0.05" stroke-linecap="round"/></svg>').encode()


def upload_svg(port: int, headers: dict[str, str], svg: bytes, name: str) -> tuple[int, dict, float]:
    """POST the logo to the library: (status, JSON body, seconds)."""
    from tests.support.client import multipart

    body, content_type = multipart({}, "file", name, svg)
    status, answer, took = call(port, "POST", "/api/builder/media", body=body, timeout=300,
                                headers={**headers, "Content-Type": content_type})
    try:
        parsed = json.loads(answer) if answer else {}
    except ValueError:
        parsed = {}
    return status, parsed, took


def svg_logos(server: Gunicorn, db, setup: str, seconds: float, say: Say) -> list[HeavyRow]:
    """The costly logos uploaded (refused by the sanitiser's budget, or stored, and how long
    that took), then the render slots under a costly logo's renditions: one stored as it was
    before the budget and the deadline (through a second server on the same database whose
    deadline is 10 minutes, so it stores what the first would refuse), its ladder asked for
    by 4 connections while an editor asks for cold renditions of an ordinary 3 MP photo, one
    at a time: their latency and answers beside the logo's."""
    editor = server.token("editor")
    rows = []
    for name, svg in (("markers, 4 levels of 40 vertices", marker_logo()),
                      ("2,000 chained blurs", blur_logo()),
                      ("feMorphology radius 200 at 1600 px", morphology_logo())):
        say(f"{setup}: svg logos: uploading {name} ({len(svg):,} bytes)")
        status, answer, took = upload_svg(server.port, editor, svg, "logo.svg")
        code = (answer.get("error") or {}).get("code", "")
        rows.append(HeavyRow("costly SVG logos", setup, f"upload: {name} ({len(svg):,} bytes)",
                             f"{status} {code}".strip(), other=f"answered in {took:.1f} s"))
        say(f"  {rows[-1].answers} in {took:.1f} s")
    # A costly logo stored as before the budget: through a server that waits 10 minutes a draw.
    patient = Gunicorn(server.mongo_uri, server.db_name, WORK / f"svg-patient-{uuid.uuid4().hex[:6]}.log",
                       workers=1, extra_env={"AVENUE_SVG_DRAW_SECONDS": "600"},
                       root=server.root).start(90)
    try:
        status, logo, took = upload_svg(patient.port, editor, dashed_logo(), "dashed.svg")
    finally:
        patient.stop()
    if status not in (200, 201):
        raise BenchError(f"the dashed logo was not stored even with a 10-minute deadline: {status} {logo}")
    say(f"{setup}: svg logos: the dashed logo stored in {took:.1f} s; its ladder asked for by 4 connections")
    photos = [upload_photo(server, editor, photo_jpeg((2000, 1500), 71 + n, "cold"), f"cold{n}.jpg")
              for n in range(4)]
    # Each a cold render of its own: 4 photos x the ladder x 3 formats (120 distinct, unsigned).
    colds = iter([f"{base_path(photo)}/w_{width}.{fmt}" for fmt in ("webp", "avif", "jpg")
                  for width in LADDER for photo in photos])
    logo_ladder = itertools.cycle([f"{base_path(logo)}/w_{width}.{fmt}" for width in LADDER
                                   for fmt in ("webp", "avif")])
    flood = Flood(server.port, lambda: next(logo_ladder), 4).start()
    cold: list[tuple[int, float]] = []
    try:
        time.sleep(2)  # the logo's draws take the slots first
        deadline = time.monotonic() + seconds
        for path in colds:
            if time.monotonic() > deadline:
                break
            status, _, took = call(server.port, "GET", path, timeout=60)
            cold.append((status, took))
    finally:
        flood.stop()
    took = sorted(t for _, t in cold)
    rows.append(HeavyRow("costly SVG logos", setup,
                         "a stored costly logo's 20 ladder renditions asked for by 4 connections, "
                         f"{seconds:g} s; cold renditions of 3 MP photos meanwhile, one at a time",
                         f"logo: {codes(flood.statuses)}",
                         other=f"photos' cold renditions: {codes(collections.Counter(s for s, _ in cold))}; "
                               f"median {took[len(took) // 2]:.2f} s, max {took[-1]:.2f} s "
                               f"({len(took)} asked)"))
    say(f"  {rows[-1].answers}; {rows[-1].other}")
    return rows


# --- SVG work before the draw (issue 73, svgparse) ---------------------------------------------


def sheet_svg(groups: int = 4_000, rules: int = 2_000) -> bytes:
    """4,000 empty groups and 2,000 ``.cK{fill:url(#a)}`` rules (55 KB): the count matched every
    element against every rule."""
    sheet = "".join(f".c{n}{{fill:url(#a)}}" for n in range(rules))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><defs><linearGradient id="a"/>'
            f'</defs><style>{sheet}</style>{"<g/>" * groups}</svg>').encode()


def use_context_svg(uses: int = 1_000, elements: int = 1_000) -> bytes:
    """1,000 ``<use>`` of a 1,000-element group, each with a ``url()`` fill of its own (38 KB):
    the count costed the group once per paint context."""
    copies = "".join(f'<use href="#g" fill="url(#a{n})"/>' for n in range(uses))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><defs>'
            f'<g id="g">{"<g/>" * elements}</g></defs>{copies}</svg>').encode()


def sizeless_text_svg(chars: int = 36_000) -> bytes:
    """A 36 KB text run in an SVG with no width, height or viewBox: librsvg lays it all out to
    find the size."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg"><text x="0" y="20">{"a b " * (chars // 4)}</text>'
            "</svg>").encode()


def svg_parse(server: Gunicorn, db, setup: str, seconds: float, say: Say) -> list[HeavyRow]:
    """Each costly SVG uploaded once, one at a time: the answer, how long it took and the
    workers' RSS growth over the upload (the draw helpers, children of a worker, not counted)."""
    editor = server.token("editor")
    rows = []
    for name, svg in (("sheet: 4,000 <g/> + 2,000 rules", sheet_svg()),
                      ("<use> contexts: 1,000 x 1,000 elements", use_context_svg()),
                      ("36 KB text run, no size", sizeless_text_svg())):
        say(f"{setup}: svg parse: uploading {name} ({len(svg):,} bytes)")
        with RssPeak(server.process) as rss:
            status, answer, took = upload_svg(server.port, editor, svg, "costly.svg")
        code = (answer.get("error") or {}).get("code", "")
        rows.append(HeavyRow("SVG work before the draw", setup, f"upload: {name} ({len(svg):,} bytes)",
                             f"{status} {code}".strip(), other=f"answered in {took:.1f} s",
                             rss=f"+{rss.peak - rss.idle:,.0f} MB (idle {rss.idle:,.0f})"))
        say(f"  {rows[-1].answers} in {took:.1f} s; {rows[-1].rss}")
    return rows


def _adler32_combine(first: int, second: int, second_length: int) -> int:
    """zlib's adler32_combine: the Adler-32 of A+B from those of A and B and B's length."""
    base = 65521
    rem = second_length % base
    sum1 = first & 0xFFFF
    sum2 = (rem * sum1) % base
    sum1 += (second & 0xFFFF) + base - 1
    sum2 += (first >> 16) + (second >> 16) + base - rem
    sum1 = sum1 - base if sum1 >= base else sum1
    sum1 = sum1 - base if sum1 >= base else sum1
    sum2 = sum2 - 2 * base if sum2 >= 2 * base else sum2
    sum2 = sum2 - base if sum2 >= base else sum2
    return sum1 | (sum2 << 16)


def flat_pngs(count: int, size: tuple[int, int] = FLAT_SIDE) -> list[bytes]:
    """``count`` PNGs of ``size``, each one flat colour of its own (RGB, ~127 KB each). Made
    fast: the first row is filtered Sub (the colour, then zeros) and every other row Up (all
    zeros), so only the first row differs; the rest is deflated once after a full flush."""
    width, height = size
    rest = (b"\x02" + bytes(3 * width)) * (height - 1)
    maker = zlib.compressobj(9)
    maker.compress(b"\x01" + bytes(3 * width))
    maker.flush(zlib.Z_FULL_FLUSH)
    rest_deflated = maker.compress(rest) + maker.flush()
    rest_deflated, rest_adler = rest_deflated[:-4], zlib.adler32(rest)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pngs = []
    for index in range(count):
        colour = bytes(((index * 37) % 256, (index * 11 + 80) % 256, (index // 7 * 53 + 20) % 256))
        first = b"\x01" + colour + bytes(3 * width - 3)
        head = zlib.compressobj(9)
        stream = head.compress(first) + head.flush(zlib.Z_FULL_FLUSH)
        adler = _adler32_combine(zlib.adler32(first), rest_adler, len(rest))
        idat = stream + rest_deflated + struct.pack(">I", adler)
        pngs.append(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat)
                    + png_chunk(b"IEND", b""))
    return pngs


def flat_zip(target: int = 2**20, most: int = 960) -> tuple[bytes, int]:
    """A zip of up to ``most`` flat 39.9 MP PNGs, about ``target`` bytes: (bytes, entries)."""
    pngs = flat_pngs(most)
    out = io.BytesIO()
    entries = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for index, png in enumerate(pngs):
            archive.writestr(f"flat/flat-{index:04d}.png", png)
            entries += 1
            if out.tell() >= target:
                break
    return out.getvalue(), entries


def zip_flat(server: Gunicorn, db, setup: str, seconds: float, say: Say) -> list[HeavyRow]:
    body, entries = flat_zip()
    headers = server.token("editor")
    settle(server.port)
    say(f"{setup}: zip of {entries} flat {FLAT_SIDE[0]}x{FLAT_SIDE[1]} PNGs, {len(body) / 2**20:.2f} MiB "
        f"(the client waits at most {ZIP_CLIENT_SECONDS:.0f} s)")
    with RssPeak(server.process) as rss:
        status, answer, took = call(server.port, "POST", "/api/builder/import-zip", body=body,
                                    timeout=ZIP_CLIENT_SECONDS,
                                    headers={**headers, "Content-Type": "application/zip"})
        peak = rss.peak - rss.idle
    stored = images(db, "builder_media").count_documents(IMAGE)
    if status == 0:
        outcome = (f"no answer within {ZIP_CLIENT_SECONDS:.0f} s (the client gave up; the worker goes on "
                   f"until the server is stopped)")
    else:
        try:
            report = json.loads(answer)
            counts = report.get("counts", {})
            outcome = (f"HTTP {status}: imported {counts.get('imported', '?')}, not_imported "
                       f"{counts.get('not_imported', '?')}, complete {report.get('complete', '?')}")
        except ValueError:
            outcome = f"HTTP {status}: {answer[:200]!r}"
    row = HeavyRow("zip of flat pixels", setup,
                   f"one editor: {len(body) / 2**20:.2f} MiB zip, {entries} flat "
                   f"{FLAT_SIDE[0]}x{FLAT_SIDE[1]} PNGs "
                   f"({entries * FLAT_SIDE[0] * FLAT_SIDE[1] * 3 / 2**30:,.0f} GiB of RGB pixels)", outcome,
                   f"{stored:,} images in the library when it answered"
                   + (f" (at that rate all {entries} in ~{entries / max(stored, 1) * took / 60:,.0f} min)"
                      if status == 0 else ""),
                   f"+{peak:,.0f} MB (idle {rss.idle:,.0f})",
                   f"held a worker {took:.1f} s" + (" or more" if status == 0 else ""))
    say(f"  {row.answers}; {row.other}; {row.rss}; {row.stored}")
    return [row]


# --- SVG draws under load (issue 73, items 2 and 5): the verdict and the helpers' bound -------

def curves_logo(segments: int, seed: int = 1) -> bytes:
    """An SVG the sanitiser's budget lets through whose draw costs CPU, little memory: one path
    of ``segments`` crossing curves, filled even-odd and stroked (1000: ~6 s at 1600 px idle,
    tests/media/ingest/test_svgdraw.py's slow_svg; 300: ~1 s)."""
    chance = random.Random(seed)
    curves = " ".join(f"Q{chance.uniform(0, 100):.1f} {chance.uniform(0, 80):.1f} "
                      f"{chance.uniform(0, 100):.1f} {chance.uniform(0, 80):.1f}" for _ in range(segments))
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="1600" height="1280" viewBox="0 0 100 80">'
            f'<path d="M0 0 {curves}" fill="#0a7" fill-rule="evenodd" stroke="#000" '
            'stroke-width="0.3"/></svg>').encode()


def costly_svg(seed: int) -> bytes:
    """The costly upload: 1500 crossing curves, some 9 s of CPU at 1600 px, refused at 5 s."""
    return curves_logo(1500, seed)


class UploadLoop:
    """``count`` editors uploading costly SVGs to the library again and again until stopped,
    each a new file (``svg(seed)``; the same bytes again would be found stored, not drawn):
    each a draw of up to the deadline, refused or stored."""

    def __init__(self, port: int, headers: dict[str, str], svg: Callable[[int], bytes], count: int) -> None:
        self.port, self.headers, self.svg = port, headers, svg
        self.statuses: collections.Counter = collections.Counter()
        self._stop = threading.Event()
        self._seeds = itertools.count(1000)
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(count)]

    def _run(self, n: int) -> None:
        while not self._stop.is_set():
            svg = self.svg(next(self._seeds))
            status, answer, _ = upload_svg(self.port, self.headers, svg, f"costly{n}.svg")
            self.statuses[f"{status} {(answer.get('error') or {}).get('code', '')}".strip()] += 1

    def start(self) -> UploadLoop:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(120)


def helpers_of(server: Gunicorn) -> list[int]:
    """The SVG draw helpers of the server's workers (their children running svgdraw.py)."""
    workers = {str(pid) for pid in server.workers()}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = re.search(r"PPid:\s+(\d+)", status)
        if parent and parent.group(1) in workers and b"svgdraw.py" in command:
            found.append(int(entry.name))
    return found


def helpers_rss(pids: list[int]) -> int:
    """The helpers' summed RSS (VmRSS), in bytes."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            found = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
            total += int(found.group(1)) * 1024 if found else 0
    return total


def svg_poisoning(server: Gunicorn, db, setup: str, seconds: float, say: Say) -> list[HeavyRow]:
    """The poisoning under upload load: a logo that draws at 1600 px in about 1 s idle, its 20
    ladder renditions asked for (cold, one at a time) while 8 editors upload a costly SVG
    (~9 s a draw idle: refused at the 5 s deadline) for ``seconds``, with cold renditions of a
    3 MP photo between them; then the logo's renditions asked for again once idle: a verdict
    that load faked answers them 422 for a day."""
    editor = server.token("editor")
    status, logo, _ = upload_svg(server.port, editor, curves_logo(300, seed=3), "logo.svg")
    if status not in (200, 201):
        raise BenchError(f"the logo was not stored: {status} {logo}")
    photo = upload_photo(server, editor, photo_jpeg((2000, 1500), 91, "cold"), "cold.jpg")
    logo_paths = [f"{base_path(logo)}/w_{width}.{fmt}" for width in LADDER for fmt in ("png", "webp")]
    photo_paths = iter([f"{base_path(photo)}/w_{width}.{fmt}" for fmt in ("webp", "avif", "jpg")
                        for width in LADDER])
    say(f"{setup}: svg poisoning: 8 editors upload the costly SVG for {seconds:g} s; the logo asked for")
    uploads = UploadLoop(server.port, editor, costly_svg, 8).start()
    during: collections.Counter = collections.Counter()
    cold: list[tuple[int, float]] = []
    asked: list[str] = []
    try:
        time.sleep(2)  # the uploads' draws are running
        deadline = time.monotonic() + seconds
        for n, path in enumerate(logo_paths):
            if time.monotonic() > deadline:
                break
            # Each from an address of its own: the per-address limit of cold renders is not measured here.
            status, _, _ = call(server.port, "GET", path, timeout=120, source=f"127.0.1.{n + 1}")
            during[status] += 1
            asked.append(path)
            photo_path = next(photo_paths, None)
            if photo_path is not None:
                status, _, took = call(server.port, "GET", photo_path, timeout=120, source=f"127.0.2.{n + 1}")
                cold.append((status, took))
    finally:
        uploads.stop()
    time.sleep(2)
    after = collections.Counter(call(server.port, "GET", path, timeout=120, source=f"127.0.3.{n + 1}")[0]
                                for n, path in enumerate(asked))
    remembered = db["media_undrawable"].count_documents({})
    variants = db["media_undrawable"].count_documents({"_id": {"$regex": "^variants/"}})
    took = sorted(t for _, t in cold) or [0.0]
    row = HeavyRow("SVG draws under load", setup,
                   f"8 editors uploading costly SVGs (~9 s a draw) for {seconds:g} s; a ~1 s logo's "
                   f"cold renditions asked for meanwhile, one at a time ({len(asked)})",
                   f"logo during: {codes(during)}; again once idle: {codes(after)}",
                   other=f"uploads: {codes(uploads.statuses)}; remembered undrawable: {remembered} "
                         f"({variants} an image's variants); "
                         f"photo's cold renditions between: {codes(collections.Counter(s for s, _ in cold))},"
                         f" median {took[len(took) // 2]:.2f} s, max {took[-1]:.2f} s")
    say(f"  {row.answers}; {row.other}")
    return [row]


def svg_helpers(server: Gunicorn, db, setup: str, seconds: float, say: Say) -> list[HeavyRow]:
    """The helper pool's memory: 8 editors uploading the costly SVG at once for ``seconds``,
    the helpers of the server's workers (how many, their summed RSS) sampled every 0.1 s."""
    editor = server.token("editor")
    say(f"{setup}: svg helpers: 8 concurrent uploads of the costly SVG for {seconds:g} s")
    uploads = UploadLoop(server.port, editor, costly_svg, 8).start()
    most, peak = 0, 0
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pids = helpers_of(server)
            most, peak = max(most, len(pids)), max(peak, helpers_rss(pids))
            time.sleep(0.1)
    finally:
        uploads.stop()
    row = HeavyRow("SVG draws under load", setup, f"8 concurrent uploads of a costly SVG, {seconds:g} s",
                   f"uploads: {codes(uploads.statuses)}",
                   rss=f"helpers' peak RSS {peak / 2**20:,.0f} MB together",
                   other=f"at most {most} helpers at once (2 workers)")
    say(f"  {row.answers}; {row.rss}; {row.other}")
    return [row]


# --------------------------------------------------------------------------------------
# A refusal, then the next request on its connection (issue 73, item 4)

REFUSED_ROUNDS = 3


def _workers_cpu(master: subprocess.Popen) -> float:
    """The workers' CPU seconds (user + system) so far."""
    import psutil

    total = 0.0
    for pid in worker_pids(master):
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _next_answer(sock: socket.socket) -> bytes:
    """The head of the next answer on ``sock``, its body read (Content-Length); b"" if the
    server closed the connection (or sent nothing for the socket's timeout) first."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return b""
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = _CONTENT_LENGTH.search(head)
        left = (int(length[1]) if length else 0) - len(body)
        while left > 0:
            chunk = sock.recv(min(left, 65536))
            if not chunk:
                return b""
            left -= len(chunk)
        return head
    except OSError:
        return b""


def refused_then_next(server: Gunicorn, db, setup: str, seconds: float, say: Say) -> list[HeavyRow]:
    """A body refused by its size (413) after the event loop read it whole into memory, then
    the client's next request on the same connection, as a client retrying after a refusal
    sends it: how long that next request waits for its answer (or for the connection to
    close), and the workers' CPU meanwhile. ``REFUSED_ROUNDS`` fresh connections per case."""
    editor = server.token("editor")["Authorization"]
    photo = b"\xff\xd8\xff\xe0" + os.urandom(12_700_000 - 4)  # 12.7 MB, refused on its length alone
    form, form_type = _multipart_upload(photo, "big.jpg")
    empty, empty_type = _multipart_upload(b"", "empty.jpg")

    def upload(body: bytes, content_type: str) -> bytes:
        return (f"POST /api/uploads HTTP/1.1\r\n{HOST}Authorization: {editor}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    def login(mib: float) -> bytes:
        body = b'{"email": "' + b"x" * int(mib * 2**20) + b'"}'
        return (f"POST /api/auth/login HTTP/1.1\r\n{HOST}Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    healthz_request = f"GET /healthz HTTP/1.1\r\n{HOST}\r\n".encode()
    cases = [("12.7 MB JPEG to /api/uploads, then an empty upload", upload(form, form_type),
              upload(empty, empty_type))]
    cases += [(f"{mib:g} MiB JSON to /api/auth/login, then GET /healthz", login(mib), healthz_request)
              for mib in (2.5, 3.5, 5, 15)]
    settle(server.port)
    say(f"{setup}: a refusal, then the next request on its connection, {REFUSED_ROUNDS} rounds a case")
    rows = []
    for title, refused, following in cases:
        refusals, waits, cpus, nexts = [], [], [], collections.Counter()
        with RssPeak(server.process) as rss:
            for _ in range(REFUSED_ROUNDS):
                with socket.create_connection((LOOPBACK, server.port), timeout=30) as sock:
                    started = time.monotonic()
                    sock.sendall(refused)
                    head = _next_answer(sock)
                    refusals.append((head.split(b" ", 2)[1].decode() if head else "closed",
                                     "close" if _CLOSE.search(head) else "keep-alive",
                                     time.monotonic() - started))
                    cpu = _workers_cpu(server.process)
                    started = time.monotonic()
                    try:
                        sock.sendall(following)
                        head = _next_answer(sock)
                    except OSError:
                        head = b""
                    waits.append(time.monotonic() - started)
                    cpus.append(_workers_cpu(server.process) - cpu)
                    nexts[head.split(b" ", 2)[1].decode() if head else "no answer, closed"] += 1
        first = collections.Counter(f"{status} ({connection})" for status, connection, _ in refusals)
        rows.append(HeavyRow(
            "413, then the next request on its connection", setup, title,
            f"{codes(first)} in {', '.join(f'{t:.2f}' for _, _, t in refusals)} s; "
            f"the next: {codes(nexts)} after {', '.join(f'{t:.2f}' for t in waits)} s",
            "", f"+{rss.peak - rss.idle:,.0f} MB (idle {rss.idle:,.0f})",
            f"workers' CPU from the 413 to the next answer: {', '.join(f'{c:.2f}' for c in cpus)} s"))
        say(f"  {title}: {rows[-1].answers}; {rows[-1].other}")
    return rows


def _multipart_upload(data: bytes, filename: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


# --- wrong URLs of a cached image (issue 73, item 7) -----------------------------------------
WRONG_CONNECTIONS = 16


def query_ops(db) -> int:
    """The database's count of queries so far (``serverStatus``' ``opcounters.query``)."""
    return int(db.client.admin.command("serverStatus")["opcounters"]["query"])


class ListProbe:
    """An editor's list of uploads (``GET /api/uploads?limit=20``) and ``/readyz``, one after
    the other from 127.0.0.1, as long as it runs: each one's times."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port, self.headers = port, headers
        self.times: dict[str, list[float]] = {"list": [], "readyz": []}
        self.failed: collections.Counter = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for kind, path, headers in (("list", "/api/uploads?limit=20", self.headers),
                                        ("readyz", "/readyz", {})):
                status, _, took = call(self.port, "GET", path, headers=headers, timeout=30)
                if status == 200:
                    self.times[kind].append(took)
                else:
                    self.failed[f"{kind} {status}"] += 1

    def start(self) -> ListProbe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=65)

    def summary(self) -> str:
        parts = []
        for kind, label in (("list", "editors' list"), ("readyz", "/readyz")):
            ordered = sorted(self.times[kind])
            parts.append(f"{label} p50 {ordered[len(ordered) // 2] * 1000:,.0f} ms ({len(ordered)})"
                         if ordered else f"{label}: none answered 200")
        if self.failed:
            parts.append(f"not 200: {codes(self.failed)}")
        return ", ".join(parts)


def wrong_urls(server: Gunicorn, db, setup: str, seconds: float, say: Say) -> list[HeavyRow]:
    """16 connections asking for wrong URLs of one public image both workers have cached: 8
    wrong URLs again and again (other extensions, versions it never had, a variant format it
    lacks), then a new invented version each time; beside them, an editor's list of uploads and
    ``/readyz``, one after the other. The database's queries counted (``opcounters.query``),
    the workers' tombstone polls (two a second each) and the probes' own reads among them."""
    headers = server.token("editor")
    say(f"{setup}: wrong URLs: uploading 12 public 800x600 photos")
    images = [upload_photo(server, headers, photo_jpeg((800, 600), 80 + n, "wrong"), f"wrong{n}.jpg")
              for n in range(12)]
    image = images[0]
    base, ext = image["url"].rsplit(".", 1)
    card = next(iter(image["variant_urls"]["card"].values()))
    for _ in range(8):  # both workers cache it (and its variants are rendered)
        call(server.port, "GET", image["url"])
        call(server.port, "GET", card)
    again = itertools.cycle([f"{base}.gif", f"{base}.png", f"{base}~00000000.{ext}", f"{base}~0123abcd.{ext}",
                             f"{base}~89abcdef.{ext}", f"{base}~0123abcd/thumb", f"{base}/thumb.png",
                             f"{base}/card.gif"])
    rows = []
    for load, paths in (("none (the probes alone)", None),
                        (f"{WRONG_CONNECTIONS} connections: 8 wrong URLs again and again",
                         lambda: next(again)),
                        (f"{WRONG_CONNECTIONS} connections: a new invented version each",
                         lambda: f"{base}~{random.getrandbits(32):08x}.{ext}")):
        settle(server.port)
        probe = ListProbe(server.port, headers).start()
        flood = Flood(server.port, paths, WRONG_CONNECTIONS).start() if paths is not None else None
        before, started = query_ops(db), time.monotonic()
        time.sleep(seconds)
        reads = (query_ops(db) - before) / (time.monotonic() - started)
        if flood is not None:
            flood.stop()
        probe.stop()
        answers = "" if flood is None else \
            f"{sum(flood.statuses.values()) / seconds:,.0f}/s: {codes(flood.statuses)}"
        rows.append(HeavyRow("wrong URLs of a cached image", setup, load, answers, "", "",
                             f"database queries {reads:,.0f}/s; {probe.summary()}"))
        say(f"  {load}: {answers or 'no flood'}; {rows[-1].other}")
    return rows


SCENARIOS = {"rendition-flood": rendition_flood, "tus-parking": tus_parking, "edits": edits,
             "svg-logos": svg_logos, "svg-parse": svg_parse, "zip-flat": zip_flat,
             "refused-then-next": refused_then_next, "wrong-urls": wrong_urls,
             "svg-poisoning": svg_poisoning, "svg-helpers": svg_helpers}


def heavy_setup(setup: Setup, uri: str, running: list[Gunicorn], names: list[str], seconds: float,
                say: Callable[[str], None]) -> list[HeavyRow]:
    """The scenarios ``names``, each on a fresh server of ``setup`` and a database of its own
    (dropped after): its idle RSS and rate limits' counters are its own."""
    slug = re.sub(r"[^a-z0-9]+", "_", setup.label.lower()).strip("_")
    rows: list[HeavyRow] = []
    for name in (name for name in HEAVY if name in names):
        db_name = f"{DB}_{slug}_{name}"[:60].replace("-", "_")
        server = start_server(setup, uri, running, log_name=f"{name}-{slug}", db_name=db_name)
        try:
            with pymongo.MongoClient(uri) as client:
                try:
                    rows += SCENARIOS[name](server, client[db_name], setup.label, seconds, say)
                except BenchError as exc:
                    rows.append(HeavyRow(name, setup.label, "", f"failed: {exc}"))
                    say(f"  {name} failed: {exc}")
                server.stop()  # a zip import the client gave up on goes on until then
                client.drop_database(db_name)
        finally:
            server.stop()
            running.remove(server)
    return rows


def render_heavy(rows: list[HeavyRow], seconds: float) -> list[str]:
    if not rows:
        return []
    lines = ["## Expensive requests: renditions, tus, zip imports, edits", "",
             f"Each setup on a fresh server (2 workers) and a database of its own; floods {seconds:g} s "
             f"from {ATTACKER} (keep-alive connections, the next request as soon as an answer is whole), "
             "the editor and the tus and zip clients from 127.0.0.1 with an editor's token. Workers' RSS "
             "sampled every 0.2 s, above its figure right before each row's load. A flood runs alone for "
             "its first half, then beside the editor (a fresh 12 MP upload, then its first GET of w_640.webp "
             "with the token, one after another); the editor's idle figure is 3 of those before any flood.",
             "",
             "| scenario | setup | load | answers | stored | workers' peak extra RSS | other |",
             "| --- | --- | --- | --- | --- | ---: | --- |"]
    loads: dict[str, int] = {}
    for row in rows:
        loads.setdefault(row.load, len(loads))
    for row in sorted(rows, key=lambda r: (HEAVY_ORDER.get(r.scenario, 9), loads[r.load])):
        lines.append(f"| {row.scenario} | {row.setup} | {row.load} | {row.answers} | {row.stored} "
                     f"| {row.rss} | {row.other} |")
    return lines + [""]


HEAVY_ORDER = {"rendition flood": 0, "tus parking": 1, "zip of flat pixels": 2, "4 edits at once": 3,
               "costly SVG logos": 4, "413, then the next request on its connection": 5,
               "wrong URLs of a cached image": 6}


def render(rows: list[Row], ratios: dict, *, args: argparse.Namespace, started: str,
           loads: tuple[tuple[float, ...], tuple[float, ...]], notes: list[str],
           heavy: list[HeavyRow] | None = None) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True, check=False).stdout.strip()
    mode = "quick" if args.quick else "full"
    if rows:
        intro = (f"{args.seconds:g} s per attack, one attacker address ({ATTACKER}), {args.connections} "
                 f"connections ({args.idle} idle sockets); /healthz probed from 127.0.0.1 once a second, "
                 "5 s timeout")
    else:
        intro = f"only {args.only}: {args.seconds:g} s per flood, one attacker address ({ATTACKER})"
    lines = [
        "# Hostile clients: the Procfile's server (2 workers), alone and behind the nginx front",
        "",
        f"{started}, commit {commit}, {mode} run: {intro}. Load average (1 min) {loads[0][0]:.2f} at the "
        f"start, {loads[1][0]:.2f} at the end, on {os.cpu_count()} cores shared with the attacker (and with "
        "other work on this machine).",
        "",
    ]
    if rows:
        lines += [
            "| setup | attack | connections | probes 200 / probes (share) | slowest probe "
            "| workers' peak extra RSS | target met? | what the attacker saw |",
            "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
        ]
    for row in rows:
        answered = sum(ok for ok, _ in row.probes)
        failed = len(row.probes) - answered
        slowest = max((t for _, t in row.probes), default=0.0)
        slowest_text = f"{slowest:.1f} s" if slowest >= 1 else f"{slowest * 1000:.0f} ms"
        if failed:
            slowest_text += f" ({failed} failed)"
        lines.append(
            f"| {row.setup} | {row.attack.title} | {row.attack.connections:,} "
            f"| {answered} / {len(row.probes)} ({100 * row.share:.0f} %) | {slowest_text} "
            f"| {row.peak_extra_mb:.0f} MB (idle {row.idle_mb:.0f}) | {'yes' if row.met else '**no**'} "
            f"| {row.attacker} |")
    if rows:
        lines += ["", f"Target: at least {PROBES_TARGET:.0%} of the probes answered 200, under "
                  f"{RSS_TARGET_MB} MB of extra RSS for the two workers at the peak (sampled every 0.2 s).",
                  ""]
    lines += render_heavy(heavy or [], args.seconds)
    flood = [row for row in rows if row.metrics]
    if flood:
        lines += ["## /metrics under invented methods", "",
                  "| setup | series before | series after | size before | size after |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for row in flood:
            (s0, b0), (s1, b1) = row.metrics
            lines.append(f"| {row.setup} | {s0:,} | {s1:,} | {b0 / 1024:,.0f} KB | {b1 / 1024:,.0f} KB |")
        lines.append("")
    if ratios:
        lines += ["## Hot media (issue 18): the app alone against Flask from disk", "",
                  f"wrk -t2 -c16 -d{args.wrk_seconds:g}s on each: Flask from disk once, then each "
                  "setup's app alone right before its attacks.",
                  "",
                  "| case | setup | app alone | Flask from disk | app ÷ disk | target | met? |",
                  "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
        titles = {"100k": "GET of a 100 KB image", "304": "its If-None-Match 304"}
        for case in titles:
            for label, cases in ratios.items():
                if case not in cases:
                    continue
                app, disk, problems = cases[case]
                ratio = app / disk if disk else 0.0
                met = "yes" if ratio >= 2 and not problems else "**no**"
                lines.append(f"| {titles[case]} | {label} | {app:,.0f} req/s | {disk:,.0f} req/s "
                             f"| {ratio:.2f}x | ≥ 2x | {met}{' (' + problems + ')' if problems else ''} |")
        lines.append("")
    restarts = [f"{row.setup}, {row.attack.key}: a worker was replaced during the attack"
                for row in rows if row.workers_changed]
    if notes or restarts:
        lines += ["## Notes", "", *[f"- {note}" for note in notes + restarts], ""]
    logged = [row for row in rows if row.log]
    if logged:
        lines += ["## What the servers logged during each attack", "",
                  "Notable lines only (gunicorn's warnings and errors, worker restarts, the app's records "
                  "above info, every line of nginx's error logs), counted by kind, numbers shown as N.", ""]
        for row in logged:
            lines += [f"- {row.setup}, {row.attack.key}:", *[f"  - {line}" for line in row.log]]
        lines.append("")
    return "\n".join(lines)


class _Done(Exception):
    """Only the expensive requests were asked for: they are done."""


def raise_descriptor_limit() -> None:
    """Thousands of idle sockets need descriptors: the soft limit up to the hard one (the
    servers started from here inherit it too)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, help="each attack's length (default 30; 5 with --quick)")
    parser.add_argument("--connections", type=int, default=80, help="connections per attack (80)")
    parser.add_argument("--idle", type=int, help="idle sockets (default 2000; 300 with --quick)")
    parser.add_argument("--wrk-seconds", type=float, default=5.0,
                        help="each wrk run of the hot-media ratio (5)")
    parser.add_argument("--before", metavar="REF", help="also attack the app alone on this git ref's code")
    parser.add_argument("--gevent", action="store_true",
                        help="also attack the app alone under gunicorn's gevent worker "
                             "(bench/requirements.txt)")
    parser.add_argument("--only", help="a comma-separated subset of the attacks: " + ", ".join(
        [a.key for a in attacks(1, 1, "/")] + list(HEAVY)) + " (the last five on the app alone only, "
        "and --before's; with none of the others, neither the front nor the hot-media ratio runs)")
    parser.add_argument("--quick", action="store_true",
                        help="5 s per attack and 300 idle sockets (development)")
    args = parser.parse_args()
    args.seconds = args.seconds or (5.0 if args.quick else 30.0)
    args.idle = args.idle or (300 if args.quick else 2000)
    known = [a.key for a in attacks(1, 1, "/")]
    wanted = set(args.only.split(",")) if args.only else set(known) | set(HEAVY)
    if wanted - set(known) - set(HEAVY):
        parser.error(f"--only: unknown {', '.join(sorted(wanted - set(known) - set(HEAVY)))}")
    heavy_names = [name for name in HEAVY if name in wanted]
    classic = bool(wanted & set(known))
    raise_descriptor_limit()
    needed = args.idle + 2 * args.connections + 200
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < needed:
        sys.exit(f"attacks: need {needed} file descriptors, the hard limit is lower (ulimit -Hn)")

    def say(message: str) -> None:
        print(f"[attacks {time.strftime('%H:%M:%S')}] {message}", flush=True)

    # Everything stops by itself: SIGTERM like Ctrl-C, and an overall limit well above a run.
    setups_count = 2 + bool(args.before) + bool(args.gevent)
    limit = int(600 + setups_count * 5 * (args.seconds + 45) + 4 * args.wrk_seconds)
    limit += (1 + bool(args.before)) * (bool(heavy_names) * 120 + ("rendition-flood" in heavy_names) * 4 * (
        args.seconds + 90) + ("tus-parking" in heavy_names) * (args.seconds + 120)
        + ("edits" in heavy_names) * 800 + ("zip-flat" in heavy_names) * (ZIP_CLIENT_SECONDS + 120)
        + ("svg-logos" in heavy_names) * (args.seconds + 900) + ("svg-parse" in heavy_names) * 300
        + ("refused-then-next" in heavy_names) * 5 * REFUSED_ROUNDS * 40
        + ("wrong-urls" in heavy_names) * (3 * args.seconds + 180)
        + ("svg-poisoning" in heavy_names) * (args.seconds + 600) + ("svg-helpers" in heavy_names) * (
            args.seconds + 300))

    stop_after(int(limit))

    WORK.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    loads = [os.getloadavg()]
    procs = Procs(WORK)
    running: list[Gunicorn] = []
    folder = Path(tempfile.mkdtemp(prefix="avenue-attacks-"))
    database = EmbeddedServer(folder / "db", log_path=WORK / "secantusd.log")
    worktree = None
    rows: list[Row] = []
    heavy: list[HeavyRow] = []
    ratios: dict = {}
    notes: list[str] = []
    aborted = None
    try:
        database.start()
        setups = [Setup("app alone", {}, ROOT),
                  Setup("behind the nginx front", {"AVENUE_PROXY_COUNT": "1"}, ROOT, behind_front=True,
                        serve=False)]
        if args.gevent:
            setups.insert(1, Setup("app alone, gunicorn's gevent worker", GEVENT, ROOT))
        if args.before:
            worktree = Path(tempfile.mkdtemp(prefix="avenue-before-"))
            subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.before], cwd=ROOT,
                           check=True, capture_output=True)
            setups.insert(1, Setup(f"app alone, before ({args.before})", {}, worktree))
        for setup in setups if heavy_names else []:  # the app alone, on this code and --before's
            if not setup.behind_front:
                heavy += heavy_setup(setup, database.uri, running, heavy_names, args.seconds, say)
        if not classic:
            raise _Done
        # The images on the first setup's code (this checkout); the disk baseline once.
        first = start_server(setups[0], database.uri, running, log_name="uploads-and-hot-media")
        try:
            big_url, small_url, small = upload_images(first, database.uri)
        finally:
            first.stop()
            running.remove(first)
        say(f"uploaded {big_url} and {small_url}; hot media: Flask from disk")
        on_disk = disk_rates(procs, small, args.wrk_seconds)

        def serve(label: str) -> Callable[[Gunicorn], None]:
            def measure(server: Gunicorn) -> None:
                ratios[label] = serving_ratios(server, small_url, len(small), on_disk, args.wrk_seconds)
                say(f"hot media, {label}: " + ", ".join(f"{case} {app:,.0f} vs {disk:,.0f} req/s"
                                                       for case, (app, disk, _) in ratios[label].items()))
            return measure
        plan = [attack for attack in attacks(args.connections, args.idle, big_url) if attack.key in wanted]
        for setup in setups:
            rows += attack_setup(setup, database.uri, procs, running, plan, args.seconds,
                                 (big_url, small_url), say, serve(setup.label))
    except _Done:
        pass
    except (KeyboardInterrupt, BenchError) as exc:
        aborted = f"{type(exc).__name__}: {exc}"
        say(f"stopped: {aborted}")
    finally:
        signal.alarm(0)
        for server in running:
            server.stop()
        procs.stop_all()
        database.stop()
        if worktree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False,
                           capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
    loads.append(os.getloadavg())
    if aborted:
        notes.append(f"run stopped early ({aborted}): partial results")
    text = render(rows, ratios, args=args, started=started, loads=(loads[0], loads[1]), notes=notes,
                  heavy=heavy)
    print("\n" + text)
    if aborted:
        target = WORK / "aborted.md"
    else:
        RESULTS.mkdir(exist_ok=True)
        day = time.strftime("%Y-%m-%d", time.gmtime())
        target = RESULTS / f"attacks-{day}{'-quick' if args.quick else ''}.md"
    target.write_text(text + "\n")
    say(f"written to {target.relative_to(ROOT)}; logs in {WORK.relative_to(ROOT)}/")
    return 1 if aborted else 0


if __name__ == "__main__":
    sys.exit(main())
