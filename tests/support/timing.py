"""Where the suite's time goes: a pytest plugin that times every fixture's setup and every
test's call and teardown, by kind and backend, and prints the table at the end.

    .venv/bin/python -m pytest -p tests.support.timing -m "not slow" -n auto --maxprocesses=4

Each process (every xdist worker) adds its figures to a file in ``.pytest_cache/timing/``;
the controlling process sums them when the run ends. Times are the seconds each process
spent (summed over the workers, so the sum exceeds the wall time on more than one worker).
A fixture's figure is its own function's time, without the fixtures it asks for in its
signature (pytest sets those up first and times them separately); a fixture that asks for
others inside its body (``request.getfixturevalue``) includes them.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import time
import uuid
from pathlib import Path

import pytest

FOLDER = Path(".pytest_cache") / "timing"

# Fixture name -> the kind reported (anything else: "other fixtures").
KINDS = {
    "secantus": "database start (SecantusDB)",
    "databases": "database start (SecantusDB)",
    "db_name": "test database (taken, emptied after)",
    "databases_handed_out": "test database (taken, emptied after)",
    "app": "app start (create_app)",
    "db": "indexes (ensure_indexes)",
    "auth": "users and tokens",
    "admin": "users and tokens",
    "editor": "users and tokens",
    "browser": "browser start (Chromium)",
    "page": "browser start (Chromium)",
    "start_gunicorn": "servers (gunicorn)",
}


def backend_of(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "backend" in callspec.params:
        return str(callspec.params["backend"])
    return "none"


class Timing:
    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], float] = collections.defaultdict(float)
        self.tests: dict[str, int] = collections.Counter()
        self.current = "none"

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item):
        self.current = backend_of(item)
        self.tests[self.current] += 1
        return (yield)

    @contextlib.contextmanager
    def _timed(self, kind: str):
        """Add the block's seconds to ``kind`` of the current test's backend."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[(self.current, kind)] += time.perf_counter() - started

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        with self._timed(KINDS.get(fixturedef.argname, "other fixtures (uploads, data, monkeypatches)")):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        with self._timed("the tests themselves"):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item, nextitem):
        with self._timed("teardown (every fixture's)"):
            return (yield)

    def pytest_sessionfinish(self, session):
        if not hasattr(session.config, "workerinput"):
            return  # the controlling process sums its own figures with the workers' files
        FOLDER.mkdir(parents=True, exist_ok=True)
        mine = {"seconds": [[b, k, s] for (b, k), s in self.seconds.items()], "tests": dict(self.tests)}
        (FOLDER / f"{os.getpid()}-{uuid.uuid4().hex[:6]}.json").write_text(json.dumps(mine))

    def pytest_terminal_summary(self, terminalreporter):
        if hasattr(terminalreporter.config, "workerinput"):
            return
        seconds: dict[tuple[str, str], float] = collections.defaultdict(float, self.seconds)
        tests: dict[str, int] = collections.Counter(self.tests)
        for path in FOLDER.glob("*.json"):
            data = json.loads(path.read_text())
            for backend, kind, value in data["seconds"]:
                seconds[(backend, kind)] += value
            tests.update(data["tests"])
            path.unlink()
        backends = sorted(tests)
        kinds = sorted({kind for _, kind in seconds}, key=lambda k: -sum(
            seconds[(b, k)] for b in backends))
        write = terminalreporter.write_line
        write("")
        write("| where the time went (s, summed over processes) | " + " | ".join(
            f"{b} ({tests[b]} tests)" for b in backends) + " | all |")
        write("| --- |" + " ---: |" * (len(backends) + 1))
        for kind in kinds:
            row = [seconds[(b, kind)] for b in backends]
            write(f"| {kind} | " + " | ".join(f"{v:,.1f}" for v in row) + f" | {sum(row):,.1f} |")
        totals = [sum(seconds[(b, k)] for k in kinds) for b in backends]
        write("| total | " + " | ".join(f"{v:,.1f}" for v in totals) + f" | {sum(totals):,.1f} |")


def pytest_configure(config):
    if not hasattr(config, "workerinput"):
        for stale in FOLDER.glob("*.json"):
            stale.unlink()
    config.pluginmanager.register(Timing(), "avenue-timing")
