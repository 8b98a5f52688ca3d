"""How many slow clients the Procfile's gunicorn survives with /healthz still answering in 1 s.

Starts SecantusDB and ``gunicorn --config gunicorn.conf.py wsgi:app`` exactly as the Procfile
does (its default workers, here 2), on 127.0.0.1 only, then for each step N keeps N
slow-header and N slow-body connections open (each sends one more piece every 2 s and
reconnects at once when the server drops it, so the pressure never lets up) while probing
``GET /healthz`` on a fresh connection every 0.2 s. A step survives when every probe answers
200 within 1 s. Then the same for large slow bodies (a 2 MB login body, the most a JSON
route takes since per-route body limits; 10 MB before them), sent a byte every 2 s, which a
thread has to read.

    .venv/bin/python bench/slowclients.py                      # the defaults below
    .venv/bin/python bench/slowclients.py --steps 10 --large 0 --stock   # gthread x 4 as before

``--stock`` runs gunicorn's own gthread worker with 4 threads (the old settings) for comparison.
Logs go to bench/work/slowclients/.
"""

from __future__ import annotations

import argparse
import os
import secrets
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import LOOPBACK, Procs, free_port, wait_http

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from tests.support.launcher import healthz  # noqa: E402  (the one /healthz probe)

HOST = "Host: 127.0.0.1\r\n"
# kind -> (what is sent at once, what is sent every interval)
KINDS = {
    "head": (f"GET /healthz HTTP/1.1\r\n{HOST}".encode(), b"X-Slow: 1\r\n"),
    "body": (f"POST /api/auth/login HTTP/1.1\r\n{HOST}Content-Type: application/json\r\n"
             "Content-Length: 4096\r\n\r\n{".encode(), b" "),
    # Anonymous and read to the end by the app (the login view parses its JSON body).
    "large": (f"POST /api/auth/login HTTP/1.1\r\n{HOST}Content-Type: application/json\r\n"
              f"Content-Length: {2 * 1024 * 1024}\r\n\r\n{{".encode(), b" "),
}


@dataclass
class _Client:
    kind: str
    sock: socket.socket | None = None
    due: float = 0.0


@dataclass
class SlowClients:
    """Slow connections driven by one selector thread; each reconnects when dropped."""

    port: int
    interval: float = 2.0
    clients: list[_Client] = field(default_factory=list)
    dropped: int = 0  # connections the server closed (each one then reconnects)
    timed_out_408: int = 0

    def __post_init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def open(self, kind: str, count: int) -> None:
        for _ in range(count):
            client = _Client(kind)
            self._connect(client)
            self.clients.append(client)

    def start(self) -> SlowClients:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for client in self.clients:
            if client.sock is not None:
                client.sock.close()
        self._selector.close()

    def _connect(self, client: _Client) -> None:
        try:
            sock = socket.create_connection((LOOPBACK, self.port), timeout=2)
            sock.sendall(KINDS[client.kind][0])
        except OSError:
            client.sock, client.due = None, time.monotonic() + 0.5  # try again soon
            return
        sock.setblocking(False)
        client.sock, client.due = sock, time.monotonic() + self.interval
        self._selector.register(sock, selectors.EVENT_READ, client)

    def _drop(self, client: _Client) -> None:
        if client.sock is not None:
            self._selector.unregister(client.sock)
            client.sock.close()
            self.dropped += 1
        self._connect(client)

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                client = key.data
                try:
                    data = client.sock.recv(65536)
                except OSError:
                    data = b""
                if data.startswith(b"HTTP/1.1 408"):
                    self.timed_out_408 += 1
                if not data:
                    self._drop(client)
            now = time.monotonic()
            for client in self.clients:
                if client.due > now:
                    continue
                if client.sock is None:
                    self._connect(client)
                    continue
                try:
                    client.sock.send(KINDS[client.kind][1])
                    client.due = now + self.interval
                except OSError:
                    self._drop(client)


@dataclass
class Step:
    label: str
    probes: list[float]  # seconds per /healthz, inf when it failed
    dropped: int
    timed_out_408: int

    @property
    def worst(self) -> float:
        return max(self.probes)

    @property
    def survived(self) -> bool:
        return self.worst < 1.0

    def line(self) -> str:
        answered = [p for p in self.probes if p != float("inf")]
        failed = len(self.probes) - len(answered)
        worst = "no answer" if failed else f"{self.worst * 1000:.0f} ms"
        median = f"{statistics.median(answered) * 1000:.0f} ms" if answered else "-"
        return (f"{self.label:<34} /healthz x{len(self.probes)}: worst {worst:>9}, median {median:>6}, "
                f"{failed} failed; server dropped {self.dropped} slow connections "
                f"({self.timed_out_408} with 408) -> {'SURVIVED' if self.survived else 'STARVED'}")


def run_step(port: int, mix: dict[str, int], seconds: float, label: str) -> Step:
    clients = SlowClients(port)
    try:
        for kind, count in mix.items():
            clients.open(kind, count)
        clients.start()
        probes = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            probes.append(healthz(port))
            time.sleep(0.2)
        return Step(label, probes, clients.dropped, clients.timed_out_408)
    finally:
        clients.close()


def start_app(procs: Procs, mongo_uri: str, extra: list[str]) -> int:
    """The Procfile's web process (its command, its default worker count) on 127.0.0.1."""
    port = free_port()
    env = dict(os.environ, HOST=LOOPBACK, PORT=str(port), MONGO_URI=mongo_uri, MONGO_DB="slowclients",
               SECRET_KEY=secrets.token_hex(32), AVENUE_ENV="production", PYTHONDONTWRITEBYTECODE="1")
    env.pop("WEB_CONCURRENCY", None)
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    argv = [gunicorn, "--config", "gunicorn.conf.py", "wsgi:app", *extra]
    proc = procs.start("gunicorn", argv, env=env, cwd=ROOT)
    wait_http(port, "/healthz", proc, 60, "gunicorn")
    return port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="10,25,50,100,200,400",
                        help="N slow-header + N slow-body connections per step")
    parser.add_argument("--large", default="8,16,24,32,48",
                        help="N slow 2 MB bodies per step (read by threads); 0 to skip")
    parser.add_argument("--seconds", type=float, default=15.0, help="probing time per step (>= 10 s "
                        "so the server's deadlines pass and every slow client reconnects at least once)")
    parser.add_argument("--stock", action="store_true", help="gunicorn's own gthread x 4 (the old settings)")
    parser.add_argument("gunicorn_args", nargs="*", help="more gunicorn flags (after --)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from avenue.embedded import EmbeddedServer

    work = BENCH / "work" / "slowclients"
    procs = Procs(work)
    extra = (["--worker-class", "gthread", "--threads", "4"] if args.stock else []) + args.gunicorn_args
    with tempfile.TemporaryDirectory(prefix="avenue-slowclients-") as folder:
        database = EmbeddedServer(Path(folder) / "db", log_path=work / "secantusd.log")
        work.mkdir(parents=True, exist_ok=True)
        database.start()
        try:
            port = start_app(procs, database.uri, extra)
            print(f"gunicorn --config gunicorn.conf.py wsgi:app {' '.join(extra)} on {LOOPBACK}:{port}")
            results = {"head+body": [], "large": []}
            for n in [int(x) for x in args.steps.split(",") if int(x)]:
                step = run_step(port, {"head": n, "body": n}, args.seconds,
                                f"{n} slow heads + {n} slow bodies")
                print(step.line(), flush=True)
                results["head+body"].append((n, step))
                time.sleep(2)
            for n in [int(x) for x in args.large.split(",") if int(x)]:
                step = run_step(port, {"large": n}, args.seconds, f"{n} slow 2 MB bodies")
                print(step.line(), flush=True)
                results["large"].append((n, step))
                time.sleep(2)
        finally:
            procs.stop_all()
            database.stop()
    for what, steps in results.items():
        survived = [(n, s) for n, s in steps if s.survived]
        if steps:
            best = (f"{survived[-1][0]} (worst /healthz {survived[-1][1].worst * 1000:.0f} ms)"
                    if survived else "none")
            print(f"largest N survived, {what}: {best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
