"""``make run``'s processes: the embedded database (unless MONGO_URI is set) and gunicorn.

The embedded database runs as a separate process with its data in ``var/db`` (so images
survive restarts), kept answering by :class:`avenue.embedded.supervisor.Supervisor` (restarted on the same
folder when it stalls); gunicorn serves the app on http://127.0.0.1:8000. Ctrl-C stops both
within :data:`STOP_SECONDS`, whatever state they are in; a database a killed ``make run`` left
running is stopped by the next one instead of blocking it. The entry point is
``python -m avenue.devserver``, which hands :func:`main` what prepares the app's database.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from avenue import envfile
from avenue.config import PROJECT_ROOT, embedded_cache_size
from avenue.embedded.relay import SerialRelay
from avenue.embedded.supervisor import EmbeddedServer, GaveUp, Supervisor, alive, die_with_parent, kill_group


def _secret_key(data_dir: Path) -> str:
    path = data_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


#: How long gunicorn may finish the requests in flight after Ctrl-C before it is killed, and
#: how long the database may take to stop cleanly: together under 10 s, in any state.
GUNICORN_GRACE_SECONDS = 3.0
DATABASE_GRACE_SECONDS = 2.0
STOP_SECONDS = 10


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _owner(state: Path) -> int | None:
    """The pid of a ``make run`` still running on this data folder, from its state file."""
    try:
        fields = state.read_text().split()
        owner = int(fields[2])
    except (OSError, ValueError, IndexError):
        return None
    if owner != os.getpid() and alive(owner) and "avenue.devserver" in _cmdline(owner):
        return owner
    return None


def processes_with(*words: str) -> list[int]:
    """The pids whose command line (its arguments joined by spaces, one after the last) holds
    every one of ``words`` (Linux's /proc; none elsewhere)."""
    return [int(entry.name) for entry in Path("/proc").glob("[0-9]*")
            if all(word in _cmdline(int(entry.name)) for word in words)]


def stop_leftovers(storage_path: Path) -> list[int]:
    """SIGKILL every database a killed ``make run`` left on ``storage_path`` (it holds the
    folder's WiredTiger lock, so a new one could not start); wait until they are gone."""
    pids = processes_with("secantusd", f"--storage-path {storage_path} ")
    for pid in pids:
        kill_group(pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while pids and any(alive(pid) and "secantusd" in _cmdline(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the embedded database left running (pids {pids}) did not stop")
        time.sleep(0.1)
    return pids


def _write_state(state: Path, supervisor: Supervisor) -> None:
    """``<uri> <database pid> <make run's pid>``: what CLI commands find the database by
    (avenue/config.py ``embedded_uri``: the relay's, as the app's) and what tells the next
    ``make run`` this one is alive."""
    state.write_text(f"{supervisor.uri} {supervisor.server.pid} {os.getpid()}\n")


def _stop_gunicorn(gunicorn: subprocess.Popen[bytes]) -> None:
    """SIGTERM (finish what is in flight), then SIGKILL the master and its workers: a worker
    whose threads wait on a stalled database would hold a graceful stop for 30 s."""
    if gunicorn.poll() is None:
        gunicorn.send_signal(signal.SIGTERM)
        try:
            gunicorn.wait(GUNICORN_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            print(f"gunicorn did not stop in {GUNICORN_GRACE_SECONDS:.0f} s: killing it")
    kill_group(gunicorn.pid)  # the workers too, whatever the master did
    gunicorn.wait()


def _print_database_address(uri: str, db_name: str, state: Path) -> None:
    """Where ops reach the embedded database while make run runs: the relay's address (every
    connection through it takes its turn with the app's; docs/production.md, "The embedded
    database"), never the database's own port, which a second direct connection once wedged."""
    print(f"  database: {uri} (database {db_name!r}; also in {state})")
    print(f"    connect through this address only: mongosh \"{uri}\", or from Python "
          f"pymongo.MongoClient(\"{uri}\")[\"{db_name}\"]; CLI commands use it by themselves", flush=True)


def main(prepare: Callable[[dict[str, str]], None]) -> int:
    """Run make run until Ctrl-C; ``prepare(env)`` runs once the database answers, before gunicorn."""
    envfile.load()  # .env first: its values are the defaults below's overrides
    data_dir = Path(os.environ.get("AVENUE_DATA_DIR", PROJECT_ROOT / "var"))
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("AVENUE_ENV", "development")
    env.setdefault("SECRET_KEY", _secret_key(data_dir))
    env.setdefault("HOST", "127.0.0.1")
    env.setdefault("PORT", "8000")
    env.setdefault("WEB_CONCURRENCY", "2")
    env.setdefault("SESSION_COOKIE_SECURE", "false")
    # /metrics' multiprocess folder, next to the data (gunicorn.conf.py clears its old files at start).
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(data_dir / "metrics"))
    supervisor = None
    state = data_dir / "embedded.uri"
    if not env.get("MONGO_URI"):
        owner = _owner(state)
        if owner is not None:
            print(f"The embedded database for {data_dir} is already running under make run (pid {owner}).")
            return 1
        storage = data_dir / "db"
        for pid in stop_leftovers(storage):
            print(f"Stopped the embedded database (pid {pid}) that a killed make run left running.")
        state.unlink(missing_ok=True)
        cache = embedded_cache_size()  # avenue/config.py says why 256M
        server = EmbeddedServer(storage, cache_size=cache, log_path=data_dir / "secantusd.log",
                                die_with_parent=True, standalone=True)
        print(f"Starting the embedded database (SecantusDB, data in {storage}, {cache} cache) ...")
        # Every process of this make run reaches it over one connection (avenue/embedded/relay.py says why).
        relay = SerialRelay("127.0.0.1", server.port, log=lambda line: print(line, flush=True)).start()
        supervisor = Supervisor(server, relay=relay, log=lambda line: print(line, flush=True)).start()
        _write_state(state, supervisor)
        env["MONGO_URI"] = supervisor.uri
        env["AVENUE_EMBEDDED_DATA_PATH"] = str(storage)
        _print_database_address(supervisor.uri, env.get("MONGO_DB") or "avenue", state)
    gunicorn = None
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        # Ctrl-C or a supervisor's SIGTERM: the loop below stops everything, in order.
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        prepare(env)
        url = f"http://{env['HOST']}:{env['PORT']}"
        print(f"Avenue media is running at {url}  (health: {url}/healthz, ready: {url}/readyz)")
        print("  log in: POST /api/auth/login; curl examples in docs/api.md; Ctrl-C stops everything",
              flush=True)
        # A session of its own, so Ctrl-C reaches this process only and the stop below is in
        # order (gunicorn first, then the database); it dies with this process (SIGTERM).
        gunicorn = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "--config", "gunicorn.conf.py", "wsgi:app"],
            cwd=PROJECT_ROOT, env=env, start_new_session=True, preexec_fn=die_with_parent(signal.SIGTERM),
        )
        while not stopping.is_set():
            if gunicorn.poll() is not None:
                return gunicorn.returncode
            if supervisor is not None:
                database_pid = supervisor.server.pid
                supervisor.check()
                if supervisor.server.pid != database_pid:
                    _write_state(state, supervisor)
            stopping.wait(0.5)
        return 0
    except GaveUp as exc:
        print(f"{exc}: see {data_dir / 'secantusd.log'}; Ctrl-C and make run start it again.")
        return 1
    finally:
        if gunicorn is not None:
            _stop_gunicorn(gunicorn)
        if supervisor is not None:
            print("Stopping the embedded database ...")
            supervisor.stop(DATABASE_GRACE_SECONDS)
            state.unlink(missing_ok=True)

