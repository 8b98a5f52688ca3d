"""The suite's timing table (tests/support/timing.py): it counts each test once under its
backend and puts a fixture's and a test's seconds in their rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_table_counts_tests_by_backend_and_times_fixtures_and_calls(tmp_path):
    (tmp_path / "test_sample.py").write_text('''
import time
import pytest

@pytest.fixture(params=["mongomock", "secantus"])
def backend(request):
    return request.param

@pytest.fixture
def app(backend):
    time.sleep(0.2)

def test_one(app):
    time.sleep(1.5)

def test_plain():
    pass
''')
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.support.timing",
                           "-p", "no:cacheprovider", "-q", "-n", "0", "-c", os.devnull, str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
            for line in done.stdout.splitlines() if line.startswith("| ")}
    header = next(line for line in done.stdout.splitlines() if line.startswith("| where the time went"))
    assert "mongomock (1 tests)" in header and "secantus (1 tests)" in header and "none (1 tests)" in header
    mongomock, none, secantus = 0, 1, 2  # then all
    app, call = rows["app start (create_app)"], rows["the tests themselves"]
    assert float(app[mongomock]) >= 0.2 and float(app[secantus]) >= 0.2 and float(app[none]) == 0
    # The plain test's call is its own (a loaded machine may take a second over nothing), not
    # test_one's 1.5 s counted into it.
    assert float(call[mongomock]) >= 1.5 and float(call[secantus]) >= 1.5 and float(call[none]) < 1.0
