"""The tests' own SecantusDB (tests/conftest.py's ``secantus``) dies with the test process that
started it, even one killed before its teardown could run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")


def running(pid: int) -> bool:
    """Whether process ``pid`` runs: it exists and is not a zombie (a killed server's new parent
    may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


def test_a_killed_test_process_leaves_no_database_running(tmp_path):
    ready = tmp_path / "server.pid"
    (tmp_path / "test_hold.py").write_text(f'''
import time
from pathlib import Path

def test_hold(secantus):
    Path({str(ready)!r}).write_text(str(secantus.process.pid))
    time.sleep(120)
''')
    # The project's conftest as a plugin: the fixture exactly as the suite gets it.
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
                            "-q", "-n", "0", "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path)],
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while not ready.exists() or not ready.read_text():
            assert run.poll() is None, "the test process ended before its server started"
            assert time.monotonic() < deadline, "the session server did not start"
            time.sleep(0.1)
        server = int(ready.read_text())
        assert b"secantusd" in Path(f"/proc/{server}/cmdline").read_bytes()
        run.send_signal(signal.SIGKILL)  # no teardown runs
        run.wait(10)
        deadline = time.monotonic() + 10
        while running(server) and time.monotonic() < deadline:
            time.sleep(0.1)
        if running(server):
            os.kill(server, signal.SIGKILL)
            pytest.fail("the server outlived the test process that started it")
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(10)
