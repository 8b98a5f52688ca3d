"""backup FILE: the archive (every private image, the users) is readable by its owner only."""

from __future__ import annotations

import os
import stat

import pytest

from avenue.media import AppMedia, Buckets, Library
from avenue.ops import backup as backup_module
from tests.helpers import image_bytes


@pytest.fixture
def loose_umask():
    """The usual umask (022), under which a plain open() makes a world-readable file."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def private_upload(db, auth):
    AppMedia.on(db).library(Buckets.UPLOADS).store(Library.Upload("scan.png", image_bytes("good/png16.png")),
                                                   owner="u1", scope="u1:private", visibility="private")
    auth.user("editor")


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_archive_is_0600_from_its_first_byte_to_its_final_name(private_upload, runner, tmp_path,
                                                                   loose_umask, monkeypatch):
    seen_while_writing = []
    real_backup = backup_module.backup

    def watched(db, out, **kwargs):
        seen_while_writing.append(stat.S_IMODE(os.fstat(out.fileno()).st_mode))
        return real_backup(db, out, **kwargs)

    monkeypatch.setattr(backup_module, "backup", watched)
    archive = tmp_path / "avenue.tar"
    result = runner.invoke(args=["backup", str(archive), "--quiet"])
    assert result.exit_code == 0, result.output
    assert seen_while_writing == [0o600]
    assert mode(archive) == 0o600
    assert not (tmp_path / "avenue.tar.partial").exists()


def test_a_world_readable_leftover_of_an_earlier_run_is_made_private(private_upload, runner, tmp_path,
                                                                     loose_umask):
    archive = tmp_path / "avenue.tar"
    leftover = tmp_path / "avenue.tar.partial"
    leftover.write_bytes(b"half an archive")
    leftover.chmod(0o644)
    result = runner.invoke(args=["backup", str(archive), "--quiet"])
    assert result.exit_code == 0, result.output
    assert mode(archive) == 0o600


def test_a_symlink_planted_at_the_partial_name_is_not_written_through(private_upload, runner, tmp_path,
                                                                      loose_umask):
    victim = tmp_path / "elsewhere.txt"
    victim.write_text("not yours")
    victim.chmod(0o644)
    archive = tmp_path / "avenue.tar"
    (tmp_path / "avenue.tar.partial").symlink_to(victim)
    result = runner.invoke(args=["backup", str(archive), "--quiet"])
    assert result.exit_code == 1
    assert "backup failed" in result.stderr
    assert victim.read_text() == "not yours" and mode(victim) == 0o644
    assert not archive.exists()
