"""``flask --app avenue import-zip ARCHIVE --target library|products``: the zip import from a shell.

The same import as the API's (avenue/bulk/service.py), read from the operator's file (a zip is
read where it lies, never copied), with progress on stderr and the report on stdout. Exit
status: 0 done, 1 the archive refused or the run stopped (run it again: it resumes), 2 done
but some entries need a look (unknown sku, a name that fits no rule, an image refused).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from pymongo.errors import PyMongoError

from avenue import audit
from avenue.bulk import service
from avenue.bulk.archive import Archive
from avenue.bulk.views import zip_limits
from avenue.db import get_db, get_mongo
from avenue.errors import AvenueError
from avenue.media import AppMedia, Limits
from avenue.ops.commands import Progress, json_option, quiet_option
from avenue.terminal import fail

CLI_OWNER = "cli:import-zip"


@click.command("import-zip")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--target", type=click.Choice(service.TARGETS), required=True,
              help="library: the builder's library, folders from the archive's; products: onto the "
                   "product each name names (SKU_N.jpg, SKU.jpg, SKU/any.jpg).")
@json_option
@quiet_option
@with_appcontext
def import_zip(archive: Path, target: str, as_json: bool, quiet: bool) -> None:
    """Import every image of a zip ARCHIVE into the library or onto products."""
    config = current_app.config
    try:
        get_mongo().ensure_indexes()
        with Archive.open(str(archive), zip_limits(config)) as opened, Progress(quiet or as_json) as progress:
            report = service.import_archive(AppMedia.of(current_app), opened, target=target, owner=CLI_OWNER,
                                            limits=Limits.from_config(config),
                                            max_product_images=config["AVENUE_MAX_PRODUCT_IMAGES"],
                                            progress=progress)
    except AvenueError as error:
        fail(f"{archive} refused: {error.message} ({error.code})")
    except (PyMongoError, OSError) as error:
        fail(f"import-zip stopped: {error}; run it again to resume")
    summary = report.summary()
    audit.record(get_db(), "zip_imported", actor={"cli": CLI_OWNER}, target=target, bucket=summary["bucket"],
                 archive=archive.name, **summary["counts"])
    lines = [f"{entry['outcome'].replace('_', ' ')}: {entry['name']}"
             + (f" ({entry.get('code') or entry.get('reason') or entry.get('sku')})"
                if entry["outcome"] not in (service.IMPORTED, service.ALREADY_THERE) else "")
             for entry in report.entries]
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        for line in [] if quiet else lines:
            click.echo(line)
        click.echo(report.summary_line())
    if report.needs_attention:
        sys.exit(2)
