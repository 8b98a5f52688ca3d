"""Every CLI command the app has: ``flask --app avenue <command>`` (see the README's Operations)."""

from __future__ import annotations

from flask import Flask

from avenue.auth.commands import users
from avenue.ops.commands import COMMANDS


def register(app: Flask) -> None:
    """Add the ``users`` group and the operations commands to ``app.cli``."""
    app.cli.add_command(users)
    for command in COMMANDS:
        app.cli.add_command(command)
