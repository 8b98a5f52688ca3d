"""The media package is handed the app's settings (avenue/media/settings.py): only the Flask
route module reads ``current_app``; the store takes numbers."""

from __future__ import annotations

import ast
import io
from pathlib import Path

from avenue.media import BUILDER, Library, Upload
from avenue.media.buckets import TRASH
from avenue.media.settings import MediaSettings, current
from tests.helpers import image_bytes

MEDIA = Path(__file__).resolve().parents[2] / "avenue" / "media"


def reads_current_app(path: Path) -> bool:
    """Whether the module's code (not its docs) imports or names ``current_app``."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.alias) and node.name.split(".")[-1] == "current_app":
            return True
        if isinstance(node, ast.Name | ast.Attribute) and "current_app" in (
                getattr(node, "id", None), getattr(node, "attr", None)):
            return True
    return False


def test_no_module_of_the_media_package_but_the_route_reads_current_app():
    readers = sorted(str(path.relative_to(MEDIA)) for path in MEDIA.rglob("*.py") if reads_current_app(path))
    assert readers == ["serve/route.py"]


def test_the_settings_come_from_the_config_with_the_defaults_for_what_is_not_set():
    assert MediaSettings.from_config({}) == MediaSettings(trash_days=30, redirect_days=30)
    assert MediaSettings.from_config({"AVENUE_TRASH_DAYS": 0, "AVENUE_REPLACED_REDIRECT_DAYS": 7}) == \
        MediaSettings(trash_days=0, redirect_days=7)


def test_outside_an_app_a_library_has_the_defaults(db):
    assert current() == MediaSettings()
    assert Library(db, BUILDER).settings == MediaSettings()


def test_an_app_hands_its_own_settings_to_the_libraries_opened_in_its_context(app_factory):
    app = app_factory(AVENUE_TRASH_DAYS=0)
    with app.app_context():
        from avenue.db import get_db

        assert Library(get_db(), BUILDER).settings.trash_days == 0
        app.config["AVENUE_TRASH_DAYS"] = 3  # read when asked, not once at start
        assert Library(get_db(), BUILDER).settings.trash_days == 3


def test_a_library_given_no_trash_deletes_for_good_without_any_app(db):
    for days, kept in [(0, 0), (30, 1)]:
        library = Library(db, BUILDER, MediaSettings(trash_days=days))
        stored = library.store(Upload("a.png", io.BytesIO(image_bytes("good/alpha.png"))), kind="builder")
        assert library.delete(stored.image, to_trash={})
        assert db[f"{TRASH}.files"].count_documents({"metadata.role": "original"}) == kept
