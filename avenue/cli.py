"""The ``avenue`` console script: ``flask --app avenue <command>`` with ``.env`` loaded first
(the commands themselves are registered by the app factory, avenue/__init__.py's
``register_commands``; see docs/operations.md)."""

from __future__ import annotations

import sys

from flask.cli import FlaskGroup

from avenue import create_app, envfile


def main() -> None:
    """The ``avenue`` console script: ``flask --app avenue`` with ``.env`` loaded first."""
    envfile.load()
    group = FlaskGroup(create_app=lambda: create_app(), name="avenue",
                       help="Avenue media: users, import-legacy, gc, fsck, backup, restore.")
    sys.exit(group.main())
