"""The one process launcher: the Procfile's gunicorn on loopback, on a database the caller
names (a test's SecantusDB, a benchmark's), and a TCP proxy that can cut the database off.

Tests get servers from :func:`gunicorns` (each on a database of its own, stopped and dropped
when the test ends); fault tests and ``bench/`` build a :class:`Gunicorn` themselves, to stop,
signal and restart it on a database they keep.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymongo

from avenue.embedded import EmbeddedServer, free_port
from avenue.embedded.relay import SerialRelay
from tests.support import client, tokens

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
#: Where the tests' hostile clients connect from: one client address of their own (the whole of
#: 127.0.0.0/8 is this machine), so the fair shares (avenue/server.py) tell them from the probes.
ATTACKER = "127.0.0.2"
# The head of a JSON request whose body (2 MiB, the most a JSON route takes) is still to come:
# what a slow-body client opens with.
LARGE_SLOW_BODY = (f"POST /api/auth/login HTTP/1.1\r\nHost: {LOOPBACK}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {2 * 1024 * 1024}\r\n\r\n{{").encode()


def launch(argv: list[str], *, cwd: Path, env: dict[str, str], log_path: Path,
           new_session: bool) -> subprocess.Popen[bytes]:
    """``argv`` started with its output appended to ``log_path``."""
    log = open(log_path, "ab")  # noqa: SIM115 - the child keeps its own descriptor
    try:
        return subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                start_new_session=new_session)
    finally:
        log.close()


def answered(process: subprocess.Popen[bytes], ready, what: str, log_path: Path, timeout: float,
             poll: float) -> bool:
    """Whether ``ready()`` came true within ``timeout`` s; raises if ``process`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log_path.read_text()[-2000:]}")
        if ready():
            return True
        time.sleep(poll)
    return False


class Gunicorn:
    """``gunicorn --config gunicorn.conf.py wsgi:app`` (the Procfile's web process) on a free
    loopback port, its output in ``log_path``; :meth:`start` starts it (again, after :meth:`stop`)."""

    def __init__(self, mongo_uri: str, db_name: str, log_path: Path, *, workers: int = 2,
                 extra_env: dict[str, str] | None = None, open_files: int | None = None,
                 root: Path = ROOT) -> None:
        self.root = root  # another checkout's code (a benchmark's "before")
        self.port = free_port()
        self.mongo_uri = mongo_uri
        self.db_name = db_name
        self.log_path = log_path
        self.open_files = open_files
        self.env = {
            **os.environ, "MONGO_URI": mongo_uri, "MONGO_DB": db_name, "PORT": str(self.port),
            "HOST": LOOPBACK, "WEB_CONCURRENCY": str(workers), "SECRET_KEY": uuid.uuid4().hex * 2,
            "AVENUE_ENV": "production", "AVENUE_STATUS_WARM_UP": "0",
            "AVENUE_UPLOAD_RATE_LIMIT": "1000/minute", "PYTHONDONTWRITEBYTECODE": "1",
            # Beside the log, not fresh folders in /dev/shm: a master the test kills (SIGKILL)
            # never removes what it made, and those folders outlived every run.
            "PROMETHEUS_MULTIPROC_DIR": str(log_path.with_name(f"{log_path.stem}-metrics")),
            "AVENUE_DECODE_LEDGER_DIR": str(log_path.with_name(f"{log_path.stem}-decode-ledger")),
            **(extra_env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Gunicorn:
        argv = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]
        if self.open_files:  # `ulimit -n open_files`, then exec gunicorn
            argv = [sys.executable, "-c", "import os, resource, sys; "
                    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({self.open_files}, {self.open_files})); "
                    "os.execv(sys.argv[1], sys.argv[1:])", *argv]
        self.process = launch(argv, cwd=self.root, env=self.env, log_path=self.log_path, new_session=True)
        if not answered(self.process, lambda: healthz(self.port, timeout=1) != float("inf"), "gunicorn",
                        self.log_path, timeout, poll=0.1):
            self.stop()
            raise RuntimeError("gunicorn did not answer /healthz in time: "
                               f"{self.log_path.read_text()[-2000:]}")
        return self

    def workers(self) -> list[int]:
        """The worker processes' pids (children of the master)."""
        assert self.process is not None
        children = []
        for status in Path("/proc").glob("[0-9]*/status"):  # no procps needed
            try:
                lines = status.read_text().splitlines()
                fields = dict(line.split(":\t", 1) for line in lines if ":\t" in line)
            except OSError:
                continue
            if fields.get("PPid", "").strip() == str(self.process.pid):
                children.append(int(status.parent.name))
        return children

    def wait_for_workers(self, count: int, timeout: float = 30.0) -> list[int]:
        """The worker pids once ``count`` are running. /healthz answers as soon as the first
        worker has bound the port (reuse_port: each binds its own), which can be before the
        master has forked the next one: a test that counts workers waits for them, not for
        the first answer."""
        deadline = time.monotonic() + timeout
        while len(workers := self.workers()) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return workers

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self, grace: float = 40) -> None:
        """SIGTERM to the master (a graceful stop); SIGKILL to its process group after ``grace`` s."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def request(self, method: str, path: str, *, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def token(self, role: str = "editor") -> dict[str, str]:
        """Authorization headers of a new user with ``role`` in this server's database."""
        return tokens.issue_on(self.mongo_uri, self.db_name, role)

    def upload(self, headers: dict[str, str], data: bytes, filename: str, *, timeout: float = 60,
               visibility: str = "public") -> tuple[int, dict]:
        """POST /api/uploads; (status, JSON body or {})."""
        return client.upload_to(self, headers, data, filename, timeout=timeout, visibility=visibility)

    def uploaded(self, data: bytes, filename: str, headers: dict[str, str] | None = None, *,
                 settled: bool = True) -> dict:
        """Upload ``data`` as a public image (by a new editor unless ``headers`` say who); its
        image object: anything but a 201 fails the test. ``settled``: also wait until its
        variants are rendered (the upload answers before them; a GET of one renders them all,
        or waits for the render after the answer), so that what a test does next is not raced by
        that render, which changes the original's files document and so every worker's cache."""
        status, image = self.upload(headers or self.token(), data, filename)
        assert status == 201, (status, image)
        if settled:
            url = next(iter(image["variant_urls"]["card"].values()))
            status, _ = self.request("GET", url[url.index("/media/"):])
            assert status == 200, (status, url)
        return image


class MakeRun:
    """``make run``'s entry point (``python -m avenue.devserver``: the embedded database under
    its supervisor, and gunicorn) on a data folder of the test's and a free port."""

    def __init__(self, data_dir: Path, log_path: Path, extra_env: dict[str, str] | None = None,
                 root: Path = ROOT) -> None:
        self.root = root  # another checkout's code (a benchmark's "before")
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = free_port()
        self.db_name = "avenue"
        self.env = {key: value for key, value in os.environ.items() if key != "MONGO_URI"}
        self.env.update({"AVENUE_DATA_DIR": str(data_dir), "PORT": str(self.port), "HOST": LOOPBACK,
                         "AVENUE_ADMIN_PASSWORD": tokens.PASSWORD, "AVENUE_STATUS_WARM_UP": "0",
                         "AVENUE_UPLOAD_RATE_LIMIT": "1000/minute", "PYTHONDONTWRITEBYTECODE": "1",
                         **(extra_env or {})})
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> MakeRun:
        # Not a session of its own: make run's own Ctrl-C handling is what the tests signal.
        self.process = launch([sys.executable, "-m", "avenue.devserver"], cwd=self.root, env=self.env,
                              log_path=self.log_path, new_session=False)
        if not answered(self.process, self.ready, "make run", self.log_path, timeout, poll=0.2):
            self.stop()
            raise RuntimeError(f"make run did not get ready in time: {self.log_path.read_text()[-2000:]}")
        return self

    def ready(self, timeout: float = 5.0) -> bool:
        try:
            return self.request("GET", "/readyz", timeout=timeout)[0] == 200
        except OSError:
            return False

    @property
    def mongo_uri(self) -> str:
        return self.state()[0]

    def state(self) -> list[str]:
        """``<uri> <database pid> <make run's pid>``: the state file make run writes."""
        return (self.data_dir / "embedded.uri").read_text().split()

    def database_pid(self) -> int:
        return int(self.state()[1])

    request = Gunicorn.request
    token = Gunicorn.token
    upload = Gunicorn.upload

    def stop(self, sig: int = signal.SIGINT, grace: float = 30) -> float:
        """``sig`` (Ctrl-C's SIGINT) to make run; the seconds until it exited."""
        if self.process is None or self.process.poll() is not None:
            return 0.0
        started = time.monotonic()
        self.process.send_signal(sig)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        return time.monotonic() - started


class MakeRunDatabase:
    """An embedded SecantusDB as ``make run`` starts it (avenue/embedded/devserver.py): standalone, every
    client reaching it through the one-connection relay (avenue/embedded/relay.py). The fault tests'
    databases are these: the replica-set server they had reached over many connections wedged
    once at a test's start beside the other test processes (docs/production.md says why), and
    this is the embedded configuration the service runs on. ``uri`` is the relay's; ``process``
    the server's, which a test may kill and :meth:`restart` on the same folder and port."""

    def __init__(self, folder: Path, log_path: Path | None = None) -> None:
        self.server = EmbeddedServer(folder, log_path=log_path, standalone=True)
        self.relay: SerialRelay | None = None

    def start(self) -> MakeRunDatabase:
        self.server.start()
        self.relay = SerialRelay("127.0.0.1", self.server.port).start()
        return self

    @property
    def uri(self) -> str:
        assert self.relay is not None
        return self.relay.uri

    @property
    def port(self) -> int:
        """The relay's port: what a client (or a proxy in front of it) connects to."""
        assert self.relay is not None
        return self.relay.port

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.server.process

    def restart(self) -> None:
        """Start the server again after a test killed it (the relay's next request reconnects)."""
        self.server = EmbeddedServer(self.server.storage_path, port=self.server.port,
                                     log_path=self.server.log_path, standalone=True).start()

    def stop(self) -> None:
        """Killed, not stopped: a clean shutdown takes seconds, and the folder is a test's."""
        if self.relay is not None:
            self.relay.stop()
        self.server.kill()


@contextmanager
def gunicorns(mongo_uri: str, folder: Path, grace: float = 10) -> Iterator:
    """``start(open_files=None, **env)`` starts the Procfile's process with these extra
    variables on a database of its own; every one started is stopped (SIGTERM, SIGKILL after
    ``grace`` s), and its database dropped, on the way out."""
    started: list[Gunicorn] = []

    def start(open_files: int | None = None, **env: str) -> Gunicorn:
        server = Gunicorn(mongo_uri, f"avenue_test_{uuid.uuid4().hex[:12]}",
                          folder / f"gunicorn-{len(started)}.log", extra_env=env, open_files=open_files)
        started.append(server)
        return server.start(30)

    try:
        yield start
    finally:
        for server in started:
            server.stop(grace=grace)
        with pymongo.MongoClient(mongo_uri) as database:
            for server in started:
                database.drop_database(server.db_name)


#: The most one ``/healthz`` probe may take while a test attacks the server. A starved probe
#: waits out the attack (a 10 s deadline by default, or the test's own) or fails (inf); a
#: loaded two-core test machine delays a healthy one by up to a second or two (CI's runs
#: share the cores with SecantusDB, Chromium and the other xdist worker). The typical probe is
#: held to a second: see :func:`assert_prompt`.
PROBE_BOUND = 3.0


def assert_prompt(probes: list[float], bound: float = PROBE_BOUND) -> None:
    """Probes answered promptly: their median under a second, and none over ``bound``."""
    assert probes and statistics.median(probes) < 1.0 and max(probes) < bound, probes


def healthz(port: int, timeout: float = 5.0) -> float:
    """Seconds for GET /healthz on a fresh connection; inf when it failed or was not 200."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        ok = response.status == 200
    except OSError:
        ok = False
    finally:
        conn.close()
    return time.monotonic() - started if ok else float("inf")
#: Commands a stalled proxy still lets through: the handshake and the driver's monitoring.
HANDSHAKES = {"hello", "ismaster"}
OP_QUERY, OP_MSG = 2004, 2013


def is_handshake(message: bytes, also: frozenset[str] = frozenset()) -> bool:
    """Whether one wire-protocol message from a client is a handshake or a monitor's check: a
    legacy OP_QUERY (only the first ``isMaster`` is one), or an OP_MSG whose command (the first
    key of its body) is ``hello``/``isMaster`` (or one of ``also``, lower case)."""
    opcode = int.from_bytes(message[12:16], "little")
    if opcode == OP_QUERY:
        return True
    if opcode != OP_MSG or len(message) < 27 or message[20] != 0:
        return False
    name = message[26:message.index(b"\0", 26)].decode("ascii", "replace").lower()
    return name in HANDSHAKES or name in also


class CuttableProxy:
    """A TCP proxy on loopback in front of the database that can cut every connection and
    refuse new ones (a network partition, or a primary stepping down), or stall: keep every
    connection, accept new ones and answer the handshakes and the driver's monitoring, but hold
    every other command (a server that stopped answering while it still looks alive, as the
    embedded one did when it deadlocked); then let them through again."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.open = threading.Event()
        self.open.set()
        self.flowing = threading.Event()
        self.flowing.set()
        self.answering: frozenset[str] = frozenset()  # commands a stall lets through besides handshakes
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)  # 5 s to connect; then it waits as the client does
            with self._lock:
                self._sockets |= {client, upstream}
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        """Copy ``source`` to ``sink``; ``requests``: the client's side, passed on message by
        message, each held while stalled unless it is a handshake."""
        pending = b""
        try:
            while self.open.is_set():
                data = source.recv(65536)
                if not data:
                    break
                if not requests:
                    sink.sendall(data)
                    continue
                pending += data
                while len(pending) >= 16 and len(pending) >= int.from_bytes(pending[:4], "little"):
                    size = int.from_bytes(pending[:4], "little")
                    message, pending = pending[:size], pending[size:]
                    if not is_handshake(message, self.answering):
                        self.flowing.wait()  # stalled: held here, sent on when it flows again
                    sink.sendall(message)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass

    def cut(self) -> None:
        """Drop every connection now and refuse new ones until :meth:`restore`."""
        self.open.clear()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            except OSError:
                pass

    def stall(self, answering: tuple[str, ...] = ()) -> None:
        """Hold every command but the handshakes (and ``answering``, e.g. ``("ping",)``: the
        deadlocked SecantusDB still answered pings) until :meth:`restore`; connections stay open."""
        self.answering = frozenset(name.lower() for name in answering)
        self.flowing.clear()

    def restore(self) -> None:
        self.open.set()
        self.flowing.set()

    def close(self) -> None:
        self.cut()
        self.flowing.set()  # stalled pipes wake, find their sockets closed and end
        self._listener.close()
