"""The media package is handed the app's :class:`~avenue.media.Media` (avenue/media/core.py),
built once per app and kept in ``app.extensions`` with the :class:`~avenue.media.AppMedia` over
it (avenue/media/app.py) that views hand to services: only the Flask route module reads
``current_app``, no service does; the store takes what it is given."""

from __future__ import annotations

import ast
import io
from pathlib import Path

from avenue.media import AppMedia, Buckets, Library, Media
from avenue.media.maintenance import Figures
from tests.helpers import image_bytes
from tests.support import source
from tests.support.records import IMAGE, images

AVENUE = Path(__file__).resolve().parents[2] / "avenue"
MEDIA = AVENUE / "media"


def reads_current_app(path: Path) -> bool:
    """Whether the module's code (not its docs) imports or names ``current_app``."""
    for node in source.nodes(path):
        if isinstance(node, ast.alias) and node.name.split(".")[-1] == "current_app":
            return True
        if isinstance(node, ast.Name | ast.Attribute) and "current_app" in (
                getattr(node, "id", None), getattr(node, "attr", None)):
            return True
    return False


def test_no_module_of_the_media_package_but_the_route_reads_current_app():
    readers = sorted(str(path.relative_to(MEDIA)) for path in MEDIA.rglob("*.py") if reads_current_app(path))
    assert readers == ["serve/route.py"]


# Modules below the views: handed the app's media (AppMedia) by their view or command.
SERVICES = ["shop/service.py", "builder/service.py", "uploads/service.py", "trash/service.py",
            "bulk/service.py", "bulk/urls.py", "links/service.py", "admin/deliveries.py", "targets.py"]


def test_no_service_reads_the_app():
    readers = [name for name in SERVICES if reads_current_app(AVENUE / name)]
    callers = [name for name in SERVICES if "app_media(" in (AVENUE / name).read_text()]
    assert readers == [] and callers == []


def test_the_settings_come_from_the_config_with_the_defaults_for_what_is_not_set():
    default = Media({}).settings
    assert (default.trash_days, default.redirect_days) == (30, 30)
    configured = Media({"AVENUE_TRASH_DAYS": 0, "AVENUE_REPLACED_REDIRECT_DAYS": 7}).settings
    assert (configured.trash_days, configured.redirect_days) == (0, 7)
    assert configured.decode_budget_bytes == default.decode_budget_bytes


def test_a_library_given_no_media_has_the_defaults(db):
    assert Library(db, Buckets.BUILDER, Media()).shelf.settings == Media().settings
    assert AppMedia.on(db).library(Buckets.BUILDER).shelf.settings == Media().settings


def test_an_app_builds_its_media_once_and_its_libraries_take_its_settings(app_factory):
    app = app_factory(AVENUE_TRASH_DAYS=0)
    media = AppMedia.of(app)
    assert AppMedia.of(app) is media and media.core is app.extensions["avenue.media"]
    with app.app_context():
        from avenue.db import get_db

        assert media.db is get_db() and media.dialect.name == "mongomock"
    assert media.library(Buckets.BUILDER).shelf.settings.trash_days == 0
    app.config["AVENUE_TRASH_DAYS"] = 3  # read when asked, not once at start
    assert media.library(Buckets.BUILDER).shelf.settings.trash_days == 3


def test_two_apps_of_one_process_keep_their_own_settings(app_factory):
    # Once, the settings came from whichever app's context a call ran in, through a hook the
    # last init_app set in a module; each app's Media is its own.
    first, second = app_factory(AVENUE_TRASH_DAYS=0), app_factory(AVENUE_TRASH_DAYS=5)
    assert AppMedia.of(first).library(Buckets.BUILDER).shelf.settings.trash_days == 0
    with first.app_context():  # the context a call runs in decides nothing
        assert AppMedia.of(second).library(Buckets.BUILDER).shelf.settings.trash_days == 5


def test_a_library_given_no_trash_deletes_for_good_without_any_app(db):
    for days, kept in [(0, 0), (30, 1)]:
        library = Library(db, Buckets.BUILDER, Media({"AVENUE_TRASH_DAYS": days}))
        upload = Library.Upload("a.png", io.BytesIO(image_bytes("good/alpha.png")))
        stored = library.store(upload, kind="builder")
        assert library.delete(stored.image, to_trash={})
        assert images(db, Figures.TRASH).count_documents(IMAGE) == kept
