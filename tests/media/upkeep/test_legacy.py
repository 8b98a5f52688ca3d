"""upkeep/legacy.py: an import killed half way, even inside a file's write, resumes to the same state."""

from __future__ import annotations

import pytest

from avenue.media import AppMedia
from avenue.media.store import storage
from tests.support.legacy import LEGACY_UPLOADS, load_legacy_db, normalized_state, uninterrupted_import


@pytest.fixture
def legacy_db(db):
    load_legacy_db(db)
    return db


@pytest.fixture(scope="module")
def imported():
    """One uninterrupted import of the whole legacy folder (tests/support/legacy.py)."""
    with uninterrupted_import() as done:
        yield done


def test_a_run_killed_halfway_resumes_to_the_same_state_as_an_uninterrupted_one(
        legacy_db, imported, monkeypatch, media_core):
    class Killed(BaseException):
        pass

    def kill_after(files: int):
        def progress(phase: str, done: int, total: int) -> None:
            if phase == "Importing files" and done == files:
                raise Killed
        return progress

    with pytest.raises(Killed):
        AppMedia.on(legacy_db, media_core).maintenance.import_legacy(LEGACY_UPLOADS, progress=kill_after(7))
    # Killed again, this time while writing a file (its original and variants).
    real_write = storage.write_image
    calls = {"n": 0}

    def dying_write(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed
        return real_write(*args, **kwargs)

    monkeypatch.setattr(storage, "write_image", dying_write)
    with pytest.raises(Killed):
        AppMedia.on(legacy_db, media_core).maintenance.import_legacy(LEGACY_UPLOADS)
    monkeypatch.setattr(storage, "write_image", real_write)
    resumed = AppMedia.on(legacy_db, media_core).maintenance.import_legacy(LEGACY_UPLOADS)
    counts = resumed.counts
    assert counts["imported"] + counts["duplicates"] + counts["already_imported"] == 18
    _, uninterrupted, _, _ = imported
    assert normalized_state(legacy_db) == normalized_state(uninterrupted)
