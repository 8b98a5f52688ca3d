"""What every CLI command does on failure: say why on stderr and exit with status 1."""

from __future__ import annotations

from typing import NoReturn

import click


def fail(message: str) -> NoReturn:
    """Print ``message`` to stderr and exit with status 1."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(1)
