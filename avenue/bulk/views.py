"""HTTP views of the zip import: ``POST /api/builder/import-zip`` (the library, editors) and
``POST /api/shop/import-zip`` (products, admins), the same roles as a single upload there."""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from avenue import audit
from avenue.auth import require, require_role
from avenue.bulk import service
from avenue.bulk.archive import Archive, ZipLimits
from avenue.db import get_db
from avenue.errors import BadRequest, ServerBusy, UnsupportedImage
from avenue.http import zip_archive
from avenue.media import limits_from_config
from avenue.ratelimit import limit_uploads

bp = Blueprint("bulk", __name__, url_prefix="/api")

ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed"})
READ_PIECE = 1024 * 1024
# Where the archive waits while it is imported. A zip needs random access (its table is at the
# end), and it must not touch the container's disk (a multipart form would: Werkzeug spools
# file parts over 500 KB to a temporary file, so the archive is the raw body instead). Held in
# memory, bounded by the body limit (AVENUE_ZIP_MAX_BYTES, 100 MB), rather than spooled into
# GridFS and read back through a seekable GridOut: a spool writes and reads every byte through
# the database once more (the import's throughput target is 1.2x single uploads, and the
# embedded database is slow) and needs a sweep for the spools of crashed workers; memory is
# freed by the request's end whatever happens. One import at a time per worker process is
# what bounds a worker's memory to one archive; a second one at once answers 503.
_one_at_a_time = threading.BoundedSemaphore(1)


def zip_limits(config: Mapping[str, Any]) -> ZipLimits:
    """The archive limits the app is configured with."""
    return ZipLimits(max_entries=config["AVENUE_ZIP_MAX_ENTRIES"],
                     max_total_bytes=config["AVENUE_ZIP_MAX_TOTAL_BYTES"],
                     max_ratio=config["AVENUE_ZIP_MAX_RATIO"],
                     max_entry_bytes=config["AVENUE_MAX_UPLOAD_BYTES"])


@bp.post("/builder/import-zip")
@zip_archive
@require_role("editor")
@limit_uploads
def import_into_library() -> tuple[Response, int]:
    """Every image of the zip into the builder's library, in the folder it has in the archive."""
    return _import(service.LIBRARY)


@bp.post("/shop/import-zip")
@zip_archive
@require_role("admin")
@limit_uploads
def import_onto_products() -> tuple[Response, int]:
    """Every image of the zip onto the product its name names (SKU_N.jpg, SKU/x.jpg)."""
    return _import(service.PRODUCTS_TARGET)


def _import(target: str) -> tuple[Response, int]:
    if request.mimetype not in ZIP_TYPES:
        raise UnsupportedImage("Send the zip archive itself as the body, with Content-Type: application/zip.",
                               code="zip_expected")
    if not _one_at_a_time.acquire(blocking=False):
        raise ServerBusy("This worker is importing another archive; try again shortly.", retry_after=5)
    try:
        body = _read_body()
        config = current_app.config
        with Archive.open(body, zip_limits(config)) as archive:
            report = service.import_archive(get_db(), archive, target=target, owner=require().id,
                                            limits=limits_from_config(config),
                                            max_product_images=config["AVENUE_MAX_PRODUCT_IMAGES"],
                                            max_seconds=config["AVENUE_ZIP_MAX_SECONDS"])
    finally:
        _one_at_a_time.release()
    summary = report.summary()
    audit.log("zip_imported", target=target, bucket=summary["bucket"], bytes=body.getbuffer().nbytes,
              **summary["counts"])
    return jsonify(summary), 200


def _read_body() -> io.BytesIO:
    """The body, read a piece at a time into one buffer (reading it whole and wrapping it held
    it twice at the peak); the route's limit (AVENUE_ZIP_MAX_BYTES) holds while it is read."""
    body = io.BytesIO()
    while piece := request.stream.read(READ_PIECE):
        body.write(piece)
    if not body.tell():
        raise BadRequest("The body is empty; send the zip archive.", code="invalid_zip")
    body.seek(0)
    return body
