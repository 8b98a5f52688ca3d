"""The console in a real browser: headless Chromium (Debian's, `make chromium`) driven by
Playwright against the app served on loopback over the session's SecantusDB.

Each module here gets its own served app on a database of its own (``live``, module-scoped),
and is one xdist group (its ``pytestmark``): make test's ``--dist loadgroup`` runs each module
on one process, the modules side by side. Chromium is one per test process (``browser``,
tests/system/conftest.py). Screenshots of
every screen go to tests/artifacts/console/ (git-ignored); those docs/users.md shows come from
there (docs/console/).
"""

from __future__ import annotations

import time
import uuid

import pymongo
import pytest

from tests.helpers import make_app
from tests.support.browser import served, user_pages
from tests.support.console import PASSWORD


@pytest.fixture(scope="module")
def live(secantus):
    """The app on a free loopback port (werkzeug's threaded server), on its own database."""
    db_name = f"avenue_test_{uuid.uuid4().hex[:12]}"
    app = make_app((pymongo.MongoClient, secantus.uri), db_name, AVENUE_HISTORY_INTERVAL_SECONDS=0,
                   AVENUE_STORAGE_QUOTA_BYTES=40 * 1024 * 1024)
    with served(app):
        yield app


@pytest.fixture
def open_as(live, browser):
    """``open_as(role)``: a page logged in as a new user with ``role`` (by the API, like the form)."""
    with user_pages(browser, live, PASSWORD) as page_as:
        yield page_as


@pytest.fixture
def late_lookups(monkeypatch):
    """Every near-duplicate lookup takes 0.3 s more and no answer waits for one: each upload's
    answer leaves ``near_duplicates`` out, as on a loaded embedded database (docs/api.md)."""
    from avenue.media.store import near_duplicates

    real_near = near_duplicates.near

    def slow(*args, **kwargs):
        time.sleep(0.3)
        return real_near(*args, **kwargs)

    monkeypatch.setattr(near_duplicates, "near", slow)
    monkeypatch.setattr(near_duplicates, "WAIT_FLOOR_SECONDS", 0.0)
    monkeypatch.setattr(near_duplicates, "WAIT_SECONDS", 0.0)
