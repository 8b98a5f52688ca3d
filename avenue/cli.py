"""Every CLI command the app has: ``flask --app avenue <command>`` (see docs/operations.md)."""

from __future__ import annotations

import sys

from flask import Flask
from flask.cli import FlaskGroup

from avenue.auth.commands import users
from avenue.ops.commands import COMMANDS


def register(app: Flask) -> None:
    """Add the ``users`` group and the operations commands to ``app.cli``."""
    app.cli.add_command(users)
    for command in COMMANDS:
        app.cli.add_command(command)


def main() -> None:
    """The ``avenue`` console script: ``flask --app avenue`` with ``.env`` loaded first."""
    from avenue import create_app, envfile

    envfile.load()
    group = FlaskGroup(create_app=lambda: create_app(), name="avenue",
                       help="Avenue media: users, import-legacy, gc, fsck, backup, restore.")
    sys.exit(group.main())
