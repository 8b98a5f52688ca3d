"""Start and stop the embedded SecantusDB server as a separate process.

SecantusDB is GPL-2.0: it is run as its own process (console script ``secantusd-py``) and
spoken to over the MongoDB wire protocol, never imported.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import pymongo
from pymongo.errors import PyMongoError

from avenue.config import embedded_cache_size


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def executable() -> str:
    """The secantusd-py script next to this interpreter, or on PATH."""
    candidate = Path(sys.executable).with_name("secantusd-py")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("secantusd-py")
    if not found:
        raise RuntimeError("secantusd-py is not installed: pip install -r requirements.txt")
    return found


class EmbeddedServer:
    """One secantusd-py process on a free loopback port."""

    def __init__(self, storage_path: str | Path, cache_size: str | None = None, port: int | None = None,
                 log_path: str | Path | None = None) -> None:
        self.storage_path = str(storage_path)
        # make run's (AVENUE_EMBEDDED_CACHE_SIZE, else avenue/config.py's): the benchmarks measure that.
        self.cache_size = cache_size or embedded_cache_size()
        self.port = port or free_port()
        self.log_path = log_path
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
                 "--cache-size", self.cache_size],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
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

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (a clean WiredTiger shutdown), SIGKILL if it does not go in time."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
