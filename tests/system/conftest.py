"""What the system tests share: servers started on the session's SecantusDB."""

from __future__ import annotations

import pytest

from tests.support.launcher import gunicorns


@pytest.fixture
def start_gunicorn(secantus, tmp_path):
    """Start gunicorn servers (the Procfile's worker) with extra environment; all stopped after."""
    with gunicorns(secantus.uri, tmp_path) as start:
        yield start
