"""What the system tests share: servers started on the session's SecantusDB."""

from __future__ import annotations

import pytest

from tests.support.browser import chromium
from tests.support.launcher import gunicorns


@pytest.fixture
def start_gunicorn(secantus, tmp_path):
    """Start gunicorn servers (the Procfile's worker) with extra environment; all stopped after."""
    with gunicorns(secantus.uri, tmp_path) as start:
        yield start


@pytest.fixture(scope="session")
def gunicorn_server(secantus, tmp_path_factory):
    """The Procfile's gunicorn as it ships (two workers, no extra environment), one per test
    process, started by the first test that asks: for the tests that only need a real server.
    Each makes what it reads (a user of its own, its uploads) and asserts on that alone; a test
    that configures, starves, signals or stops a server starts its own (``start_gunicorn``).
    Killed at the end, not stopped gracefully (3-10 s at the end of each process): its database
    is dropped after it, and the graceful stop is tested on servers of their own."""
    with gunicorns(secantus.uri, tmp_path_factory.mktemp("gunicorn-server"), grace=0) as start:
        yield start()


@pytest.fixture(scope="session")
def browser():
    """One Chromium per test process, started by the first browser test: each test opens
    contexts (profiles) of its own. Session-scoped, not a module's: a process runs several
    browser modules (each one xdist group, tests/support/xdist_groups.py), one Chromium for all."""
    with chromium() as launched:
        yield launched
