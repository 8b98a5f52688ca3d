"""Real servers for the tests that need one: the Procfile's gunicorn on loopback, on the session's
SecantusDB (tests/conftest.py), each stopped by its process group when the test ends."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from http.client import HTTPConnection
from pathlib import Path

import pymongo
import pytest

from avenue.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
#: Where the tests' hostile clients connect from: one client address of their own (the whole of
#: 127.0.0.0/8 is this machine), so the fair shares (avenue/server.py) tell them from the probes.
ATTACKER = "127.0.0.2"


class Gunicorn:
    """``gunicorn --config gunicorn.conf.py wsgi:app`` (the Procfile's web process) on loopback."""

    def __init__(self, mongo_uri: str, log_path: Path, open_files: int | None = None, **env: str) -> None:
        self.port = free_port()
        self.db_name = f"avenue_test_{uuid.uuid4().hex[:12]}"
        self.mongo_uri = mongo_uri
        inherited = {name: value for name, value in os.environ.items() if name != "WEB_CONCURRENCY"}
        environment = dict(inherited, HOST=LOOPBACK, PORT=str(self.port), MONGO_URI=mongo_uri,
                           MONGO_DB=self.db_name, SECRET_KEY=secrets.token_hex(32), AVENUE_ENV="production",
                           AVENUE_STATUS_WARM_UP="false", PYTHONDONTWRITEBYTECODE="1", **env)
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        argv = [str(Path(sys.executable).with_name("gunicorn")), "--config", "gunicorn.conf.py", "wsgi:app"]
        if open_files:  # `ulimit -n open_files`, then exec gunicorn
            argv = [sys.executable, "-c", "import os, resource, sys; "
                    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({open_files}, {open_files})); "
                    "os.execv(sys.argv[1], sys.argv[1:])", *argv]
        self.process = subprocess.Popen(argv, cwd=ROOT, env=environment, stdout=self.log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        deadline = time.monotonic() + 30
        while healthz(self.port, timeout=1) == float("inf"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"gunicorn did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.log.close()
        with pymongo.MongoClient(self.mongo_uri) as client:
            client.drop_database(self.db_name)


@contextmanager
def gunicorns(mongo_uri: str, folder: Path):
    """``start(**env)`` starts the Procfile's process with these extra variables; every one
    started is stopped (and its database dropped) on the way out."""
    started = []

    def start(open_files: int | None = None, **env: str) -> Gunicorn:
        started.append(Gunicorn(mongo_uri, folder / f"gunicorn-{len(started)}.log", open_files, **env))
        return started[-1]

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def healthz(port: int, timeout: float = 5.0) -> float:
    """Seconds for GET /healthz on a fresh connection; inf when it failed or was not 200."""
    started = time.monotonic()
    conn = HTTPConnection(LOOPBACK, port, timeout=timeout)
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


def multipart(fields: dict[str, str], name: str, filename: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with ``fields`` and one file; returns (body, content type)."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
             for key, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def api_token(server: Gunicorn, role: str = "editor") -> str:
    """A bearer token of a new user in ``server``'s database."""
    from avenue.auth import service

    email = f"{role}-{uuid.uuid4().hex[:6]}@example.com"
    with pymongo.MongoClient(server.mongo_uri) as client:
        db = client[server.db_name]
        service.create_user(db, email, "correct horse battery", role)
        return service.issue_token(db, email)
