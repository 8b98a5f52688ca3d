"""Real processes for fault tests: the Procfile's gunicorn serving the app on a SecantusDB."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import subprocess
import sys
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
                 extra_env: dict[str, str] | None = None) -> None:
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
                cwd=ROOT, env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
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
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

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
