"""Start, stop and supervise the embedded SecantusDB server as a separate process.

SecantusDB is GPL-2.0: it is run as its own process (console script ``secantusd-py``) and
spoken to over the MongoDB wire protocol, never imported.

:class:`Supervisor` is what ``make run`` keeps it alive with: a thread that asks it for a real
operation every few seconds, and a restart on the same folder and port when it stops answering
(docs/production.md, "The embedded database", says why it can).
"""

from __future__ import annotations

import ctypes
import datetime as dt
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pymongo
from pymongo.errors import PyMongoError

from avenue.config import (
    EMBEDDED_OPLOG_MAX_ENTRIES,
    EMBEDDED_OPLOG_RETENTION_SECONDS,
    embedded_cache_size,
)
from avenue.embedded.relay import SerialRelay

#: Where :func:`free_port` looks: below Linux's usual ephemeral range (32768-60999,
#: ``/proc/sys/net/ipv4/ip_local_port_range``) and above the well-known services'.
PORTS = range(20000, 32768)


def free_port() -> int:
    """A loopback port free now, for a server started a moment later (SecantusDB, gunicorn).
    Not the kernel's choice for port 0: that one comes from the ephemeral range, which every
    outgoing connection's own port and every other port-0 bind also draw from, so in the seconds
    before the server binds it a connection could take it (a full test run once saw gunicorn's
    port taken: "Address already in use"). Below that range only another such pick can."""
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.choice(PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # the whole range busy: the kernel's choice after all
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen


def executable() -> str:
    """The secantusd-py script next to this interpreter, or on PATH."""
    candidate = Path(sys.executable).with_name("secantusd-py")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("secantusd-py")
    if not found:
        raise RuntimeError("secantusd-py is not installed: pip install -r requirements.txt")
    return found


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send ``sig`` to the child when the thread that
    started it dies (Linux's ``PR_SET_PDEATHSIG``), or None elsewhere. ``make run`` starts its
    database and gunicorn with it, so a ``make run`` that is killed (SIGKILL, a closed
    terminal) leaves neither behind to hold the port or the data folder."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here, before the fork
    pr_set_pdeathsig = 1

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, sig)

    return preexec


class EmbeddedServer:
    """One secantusd-py process on a free loopback port."""

    def __init__(self, storage_path: str | Path, cache_size: str | None = None, port: int | None = None,
                 log_path: str | Path | None = None, oplog_max_entries: int | None = None,
                 oplog_retention_seconds: int | None = None, die_with_parent: bool = False,
                 standalone: bool = False) -> None:
        self.storage_path = str(storage_path)
        # make run's (AVENUE_EMBEDDED_CACHE_SIZE, else avenue/config.py's): the benchmarks measure that.
        self.cache_size = cache_size or embedded_cache_size()
        # The oplog's bounds (avenue/config.py says why they are small): make run's unless given.
        self.oplog_max_entries = oplog_max_entries or EMBEDDED_OPLOG_MAX_ENTRIES
        self.oplog_retention_seconds = oplog_retention_seconds or EMBEDDED_OPLOG_RETENTION_SECONDS
        self.port = port or free_port()
        self.log_path = log_path
        self.die_with_parent = die_with_parent
        # No replica set, so no oplog (``--standalone``): make run's. The app needs neither
        # transactions nor, there, a change stream (AVENUE_DELETIONS_STREAM polls on it); the
        # oplog's writes and prunes inside every insert are where the stall was caught, and in
        # its reproduction a standalone server never wedged (docs/production.md). The tests'
        # session servers are standalone too (tests/conftest.py says why); a replica set is
        # started where a test needs one (a change stream) and by the benchmarks.
        self.standalone = standalone
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self, timeout: float = 30.0) -> EmbeddedServer:
        if self.storage_path != ":memory:":
            Path(self.storage_path).mkdir(parents=True, exist_ok=True)
        log: IO[bytes] | int = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [executable(), "--host", "127.0.0.1", "--port", str(self.port),
                 "--storage-path", self.storage_path, "--log-level", "WARNING",
                 "--cache-size", self.cache_size,
                 "--oplog-max-entries", str(self.oplog_max_entries),
                 "--oplog-retention-seconds", str(self.oplog_retention_seconds),
                 *(["--standalone"] if self.standalone else [])],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=die_with_parent() if self.die_with_parent else None,
            )
        finally:
            if not isinstance(log, int):
                log.close()  # the child keeps its own descriptor
        deadline = time.monotonic() + timeout
        client: pymongo.MongoClient[dict[str, Any]]
        client = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=500)
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"secantusd-py exited with status {self.process.returncode}")
                try:
                    client.admin.command("ping")
                    return self
                except PyMongoError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError("secantusd-py did not answer in time") from None
                    time.sleep(0.1)
        finally:
            client.close()

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (a clean WiredTiger shutdown), SIGKILL if it does not go in time: a
        deadlocked SecantusDB never acts on SIGTERM (its handler waits for the stuck thread)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(process.pid)
            process.wait(5)

    def kill(self) -> None:
        """SIGKILL now. What it acknowledged is kept: the app's writes wait for the journal
        (``MONGO_JOURNAL``, avenue/db.py), and WiredTiger recovers from it at the next start."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            kill_group(process.pid)
            process.wait(5)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (another user's counts: it is alive, not ours to signal)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(pid: int) -> None:
    """SIGKILL the process group ``pid`` leads (the server runs in a session of its own)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def probe(client: pymongo.MongoClient[dict[str, Any]]) -> None:
    """One real operation, as every request makes: an upsert of one small document, which takes
    the store's lock, writes its journal and its oplog entry. A ``ping`` is not one: the
    deadlocked SecantusDB answered pings on its connection threads without that lock."""
    client[WATCHDOG_DB].watchdog.update_one(
        {"_id": "probe"}, {"$set": {"at": dt.datetime.now(dt.UTC)}}, upsert=True)


#: The database the supervisor's probe writes its one document to (never the app's own).
WATCHDOG_DB = "avenue_embedded"
#: Below this share of one core (run or waited for), a server that answers nothing is wedged, not busy.
#: A wedged SecantusDB is not at 0: the thread drafted into WiredTiger's eviction wakes on a timed
#: wait, and the connection threads' awaitable hellos wake every 10 s. The standalone server's
#: wedges under the soak measured 10, 12 and 18 % (bench/results/embedded-2026-11-25-soak-standalone.md),
#: so at 10 % two of three waited out the 60 s busy bound; a busy one runs its lock holder
#: (pure Python) on a core or waits for one, 100 % and up. Under the soak's whole mix (cold
#: renders and tus all hour, bench/results/embedded-2026-11-25-soak-realmix.md) wedges measured
#: 11-35 %, and at 35 % those near it waited 42-49 s instead of 15: 50 % tells them apart.
IDLE_SHARE = 0.5


def scheduled_seconds(pid: int | None) -> float | None:
    """The seconds process ``pid``'s threads have run *or waited to run* (Linux's
    ``/proc/<pid>/task/*/schedstat``: time on a CPU plus time runnable on a run queue), or
    None where that cannot be read. A wedged SecantusDB does neither: its threads sleep on
    locks. A busy one on a loaded machine may get little CPU, but it waits for it."""
    if pid is None:
        return None
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            ran, waited = (task / "schedstat").read_text().split()[:2]
        except (OSError, ValueError):
            continue  # a thread that ended meanwhile
        total += int(ran) + int(waited)
    return total / 1e9 if tasks else None


class Supervisor:
    """Keeps an :class:`EmbeddedServer` answering: a daemon thread runs :func:`probe` every
    ``interval`` seconds (each may take ``probe_timeout``), and :meth:`check`, called by the
    owner's loop, restarts the server on the same folder and port when it has exited, or has
    answered no probe for ``stall_seconds`` while its threads ran or waited to run under :data:`IDLE_SHARE`
    (wedged: its deadlock waits with no CPU), or for ``busy_seconds`` whatever its CPU (a
    server too busy to answer a one-document write for that long serves nobody). A busy
    server is not killed at ``stall_seconds``: on a loaded machine that threw away work in
    progress five times in ten minutes (bench/embedded.py). At most ``max_restarts`` restarts
    in ``window_seconds``: past that :meth:`check` raises :class:`GaveUp`, since a server that
    keeps stalling needs a person (its log says why). Every restart is logged with its reason.
    60 an hour: the soak's heavy mix wedged the standalone server about every 3 minutes, and
    10 an hour stopped ``make run`` within half an hour of it; a server that dies at every
    start uses the 60 up in a minute or two.

    The restart is a SIGKILL: a stalled SecantusDB ignores SIGTERM. Requests in flight on the
    killed server's connections fail at once and answer JSON 503 ``database_unavailable``
    (``Retry-After``); pymongo connects again to the new process on the same port."""

    def __init__(self, server: EmbeddedServer, *, relay: SerialRelay | None = None,
                 interval: float = 2.0, probe_timeout: float = 5.0,
                 stall_seconds: float = 15.0, busy_seconds: float = 60.0, max_restarts: int = 60,
                 window_seconds: float = 3600.0, log: Callable[[str], None] = print,
                 clock: Callable[[], float] = time.monotonic,
                 scheduled: Callable[[int | None], float | None] = scheduled_seconds) -> None:
        self.server = server
        # make run's one connection to the server (avenue/embedded/relay.py): the probe goes through it
        # too, so it adds no second connection thread, and it is cut when the server restarts.
        self.relay = relay
        self.interval = interval
        self.probe_timeout = probe_timeout
        self.stall_seconds = stall_seconds
        self.busy_seconds = busy_seconds
        self.scheduled = scheduled
        self.scheduled_at_answer: float | None = None  # run + run-queue time at its last answer
        self.max_restarts = max_restarts
        self.window_seconds = window_seconds
        self.log = log
        self.clock = clock
        self.restarts: list[tuple[float, str]] = []  # (when, why), within the window
        self.answered = clock()  # the last probe the server answered (or its start)
        self.failure = ""
        self._relay_answered = relay.answered_at if relay is not None else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Supervisor:
        if not self.server.running():
            self.server.start()
        self._answered_now()
        self._thread = threading.Thread(target=self._watch, name="avenue-embedded-watchdog", daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        timeout_ms = int(self.probe_timeout * 1000)
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            self.uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
            socketTimeoutMS=timeout_ms, maxPoolSize=1, retryWrites=False, appname="avenue-watchdog")
        try:
            while not self._stop.is_set():
                try:
                    probe(client)
                    self._answered_now()
                    self.failure = ""
                except PyMongoError as exc:
                    self.failure = f"{type(exc).__name__}: {exc}"[:300]
                self._stop.wait(self.interval)
        finally:
            client.close()

    @property
    def uri(self) -> str:
        """Where the app reaches the server: through the relay when there is one."""
        return self.relay.uri if self.relay is not None else self.server.uri

    def _answered_now(self) -> None:
        self.scheduled_at_answer = self.scheduled(self.server.pid)
        self.answered = self.clock()

    def stalled_for(self) -> float:
        return self.clock() - self.answered

    def busy_share(self) -> float | None:
        """The share of the time since its last answer the server's threads ran or waited to
        run, over one core (None: unknown)."""
        now = self.scheduled(self.server.pid)
        stalled = self.stalled_for()
        if now is None or self.scheduled_at_answer is None or stalled <= 0:
            return None
        return (now - self.scheduled_at_answer) / stalled

    def check(self) -> None:
        """Restart the server if it exited or stalled (raises :class:`GaveUp` past the bound).
        Through a relay, any reply the server sent since the last check counts as an answer:
        the probe waits its turn behind the others' requests, and a server that answers them
        is not stalled however long that queue."""
        if self.relay is not None and self.relay.answered_at != self._relay_answered:
            self._relay_answered = self.relay.answered_at
            self._answered_now()
        if not self.server.running():
            status = None if self.server.process is None else self.server.process.returncode
            self.restart(f"it exited (status {status})")
            return
        stalled = self.stalled_for()
        if stalled < self.stall_seconds:
            return
        share = self.busy_share()
        cause = self.failure or "no answer yet"
        if share is None or share < IDLE_SHARE:
            used = "" if share is None else f", running or runnable {share:.0%} of the time: wedged"
            self.restart(f"it answered no operation for {stalled:.0f} s{used} ({cause})")
        elif stalled >= self.busy_seconds:
            self.restart(f"it answered no operation for {stalled:.0f} s, running or runnable {share:.0%} "
                         f"of the time ({cause})")

    def restart(self, why: str) -> None:
        now = self.clock()
        self.restarts = [(at, reason) for at, reason in self.restarts if now - at < self.window_seconds]
        if len(self.restarts) >= self.max_restarts:
            raise GaveUp(f"the embedded database stopped again ({why}) after {len(self.restarts)} "
                         f"restarts in {self.window_seconds / 60:.0f} minutes; giving up")
        in_flight = self.relay.current() if self.relay is not None else ""
        if in_flight:
            why += f"; in flight: {in_flight}"
        self.restarts.append((now, why))
        self.log(f"Restarting the embedded database (pid {self.server.pid}): {why}")
        self.server.kill()
        if self.relay is not None:
            self.relay.reset()
        try:
            self.server.start()
        except RuntimeError as exc:  # the next check finds it not running and tries again
            self.log(f"The embedded database did not start again: {exc}")
            return
        self._answered_now()
        self.log(f"The embedded database answers again (pid {self.server.pid}, restart {len(self.restarts)} "
                 f"of at most {self.max_restarts} in {self.window_seconds / 60:.0f} minutes)")

    def stop(self, timeout: float = 3.0) -> None:
        """Stop watching, then stop the server: SIGTERM, SIGKILL after ``timeout``."""
        self._stop.set()
        self.server.stop(timeout)
        if self.relay is not None:
            self.relay.stop()
        if self._thread is not None:
            # A daemon thread: a probe still waiting on the stopped server ends with the process.
            self._thread.join(0.5)


class GaveUp(RuntimeError):
    """The embedded database kept stalling: :class:`Supervisor` stopped restarting it."""
