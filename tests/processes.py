"""Real processes for fault tests: the Procfile's gunicorn serving the app on a SecantusDB."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pymongo
from PIL import Image

from avenue.auth import service
from avenue.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent


class Gunicorn:
    """``gunicorn --config gunicorn.conf.py wsgi:app`` (the Procfile's command) on a free port."""

    def __init__(self, mongo_uri: str, db_name: str, log_path: Path, *, workers: int = 2,
                 extra_env: dict[str, str] | None = None, root: Path = ROOT) -> None:
        self.root = root  # another checkout's code (a benchmark's "before")
        self.port = free_port()
        self.log_path = log_path
        self.env = {
            **os.environ, "MONGO_URI": mongo_uri, "MONGO_DB": db_name, "PORT": str(self.port),
            "HOST": "127.0.0.1", "WEB_CONCURRENCY": str(workers), "SECRET_KEY": uuid.uuid4().hex * 2,
            "AVENUE_ENV": "production", "AVENUE_STATUS_WARM_UP": "0",
            "AVENUE_UPLOAD_RATE_LIMIT": "1000/minute",
            **(extra_env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Gunicorn:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps its own descriptor
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"],
                cwd=self.root, env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()[-2000:]}")
            try:
                if self.request("GET", "/healthz", timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer /healthz in time")

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

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def request(self, method: str, path: str, *, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


def editor_token(mongo_uri: str, db_name: str) -> dict[str, str]:
    """Authorization headers of a fresh editor, written straight into the database."""
    client = pymongo.MongoClient(mongo_uri)
    try:
        db = client[db_name]
        email = f"editor-{uuid.uuid4().hex[:6]}@example.com"
        service.create_user(db, email, "correct horse battery", "editor")
        return {"Authorization": f"Bearer {service.issue_token(db, email)}"}
    finally:
        client.close()


def photo(index: int, side: int = 1100) -> bytes:
    """A distinct ~1-3 MB JPEG (noise compresses like a detailed photo)."""
    image = Image.effect_noise((side, side), 40 + index % 20).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92, comment=f"fault test {index} {uuid.uuid4().hex}".encode())
    return buffer.getvalue()


def multipart(field: str, filename: str, data: bytes, **fields: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n".encode()
             for name, value in fields.items()]
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: image/jpeg\r\n\r\n")
    parts.append(head.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(server: Gunicorn, headers: dict[str, str], data: bytes, name: str,
           timeout: float = 60) -> tuple[int, dict]:
    """POST /api/uploads (public); (status, JSON body or {})."""
    body, ctype = multipart("file", name, data, visibility="public")
    status, raw = server.request("POST", "/api/uploads", body=body, timeout=timeout,
                                 headers={**headers, "Content-Type": ctype})
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, {}


class CuttableProxy:
    """A TCP proxy on loopback in front of the database that can cut every connection and
    refuse new ones (a network partition, or a primary stepping down), then let them through."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.open = threading.Event()
        self.open.set()
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
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while self.open.is_set():
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
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

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self._listener.close()
