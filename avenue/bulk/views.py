"""HTTP views of the zip import: ``POST /api/builder/import-zip`` (the library, editors) and
``POST /api/shop/import-zip`` (products, admins), the same roles as a single upload there; and
of the imports from a URL (avenue/bulk/urls.py): ``POST /api/builder/media/import-url``
(editors), ``POST /api/shop/products/<sku>/images/import-url`` and ``POST /api/shop/import-urls``
(a CSV of sku,url rows; admins)."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask.sansio.blueprints import BlueprintSetupState

from avenue import audit
from avenue.auth import edits_images, require, require_role
from avenue.builder import service as builder
from avenue.bulk import service, urls
from avenue.bulk.archive import Archive, ZipLimits
from avenue.db import get_db
from avenue.errors import BadRequest, Forbidden, ServerBusy, UnsupportedImage
from avenue.http import app_media, takes, zip_archive
from avenue.media import Buckets, Limits, UrlSigner
from avenue.presentation.objects import signer_from_config
from avenue.ratelimit import hit, limit_uploads
from avenue.shop import service as shop
from avenue.urlfetch import Fetched, Policy, fetch_image, parse_hosts, parse_networks, parse_ports

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
    return _import("library")


@bp.post("/shop/import-zip")
@zip_archive
@require_role("admin")
@limit_uploads
def import_onto_products() -> tuple[Response, int]:
    """Every image of the zip onto the product its name names (SKU_N.jpg, SKU/x.jpg)."""
    return _import("products")


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
            report = service.import_archive(app_media(), archive, target=target, owner=require().id,
                                            limits=Limits.from_config(config),
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


# --- imports from a URL ----------------------------------------------------------------------

CSV_TYPES = frozenset({"text/csv", "text/plain", "application/csv"})
clock = time.monotonic  # a CSV import's deadline's clock (a test moves it)


def url_policy(config: Mapping[str, Any]) -> Policy:
    """What a URL import may fetch, from the app's configuration (ValueError when a setting is
    malformed: checked as the app starts, below)."""
    return Policy(max_bytes=config["AVENUE_MAX_UPLOAD_BYTES"], seconds=config["AVENUE_URL_IMPORT_SECONDS"],
                  max_redirects=config["AVENUE_URL_IMPORT_MAX_REDIRECTS"],
                  hosts=parse_hosts(config["AVENUE_URL_IMPORT_HOSTS"]),
                  ports=parse_ports(config["AVENUE_URL_IMPORT_PORTS"]),
                  networks=parse_networks(config["AVENUE_URL_IMPORT_ALLOW_NETWORKS"]))


@bp.record_once
def _check_url_settings(state: BlueprintSetupState) -> None:
    """A malformed AVENUE_URL_IMPORT_* setting stops the start, not the first import."""
    try:
        url_policy(state.app.config)
    except ValueError as error:
        raise RuntimeError(f"AVENUE_URL_IMPORT_PORTS / _ALLOW_NETWORKS: {error}") from None


def _fetcher() -> urls.Fetch:
    """The configured fetch (403 ``url_import_disabled`` when AVENUE_URL_IMPORT is off)."""
    config = current_app.config
    if not config["AVENUE_URL_IMPORT"]:
        raise Forbidden("Importing images from a URL is turned off here (AVENUE_URL_IMPORT).",
                        code="url_import_disabled")
    policy = url_policy(config)

    def fetch(url: object) -> Fetched:
        return fetch_image(url, policy)
    return fetch


def _admit() -> None:
    """One URL counted against the caller's AVENUE_URL_IMPORT_RATE_LIMIT (429 past it)."""
    limit = current_app.config["AVENUE_URL_IMPORT_RATE_LIMIT"]
    hit("url-import", limit, require().id, f"Too many images imported from URLs (the limit is {limit}).")


def _signer() -> UrlSigner:
    return signer_from_config(current_app.config, sources=edits_images())


@bp.post("/builder/media/import-url")
@require_role("editor")
@limit_uploads
@takes(urls.LibraryUrlImport)
def import_url_into_library(body: urls.LibraryUrlImport) -> tuple[Response, int]:
    """The image at ``url``, fetched by the server, into the library (as an upload with the same
    ``alt``, ``folder`` and ``tags`` would be): 201 when stored, 200 when already there."""
    fetch = _fetcher()
    result = urls.into_library(app_media(), body.url, fetch=fetch, admit=_admit, owner=require().id,
                               limits=Limits.from_config(current_app.config), alt=body.alt,
                               folder=body.folder, tags=body.tags)
    image = result.image
    audit.log("builder_media_imported_from_url", bucket=Buckets.BUILDER, image_id=str(image.id),
              url=_audited(body.url), created=result.created)
    return jsonify(builder.media_object(get_db(), image, _signer(), near=result.near)), \
        201 if result.created else 200


@bp.post("/shop/products/<sku>/images/import-url")
@require_role("admin")
@limit_uploads
@takes(urls.ProductUrlImport)
def import_url_onto_product(body: urls.ProductUrlImport, sku: str) -> tuple[Response, int]:
    """The image at ``url``, fetched by the server, added to the product: 201 when added, 200
    when the product already had it (``added`` empty)."""
    fetch = _fetcher()
    added = urls.onto_product(app_media(), sku, body.url, fetch=fetch, admit=_admit,
                              owner=require().id, settings=_shop_settings())
    audit.log("product_image_imported_from_url", sku=sku, bucket=Buckets.PRODUCTS, url=_audited(body.url),
              image_ids=[str(ref["id"]) for ref in added.refs])
    signer = _signer()
    return jsonify({"product": shop.product_object(added.product, signer),
                    "added": added.entries(signer)}), 201 if added.refs else 200


@bp.post("/shop/import-urls")
@require_role("admin")
@limit_uploads
def import_urls_onto_products() -> tuple[Response, int]:
    """A CSV of sku,url rows (the body as text/csv, or a multipart file ``file``): each row's
    image fetched and added to its product; the report says what became of every row."""
    fetch = _fetcher()
    config = current_app.config
    rows = urls.parse_csv(_csv_bytes(), config["AVENUE_URL_IMPORT_MAX_ROWS"])
    until = clock() + config["AVENUE_URL_IMPORT_MAX_SECONDS"]
    signer = _signer()
    report = urls.import_rows(app_media(), rows, fetch=fetch, admit=_admit, owner=require().id,
                              settings=_shop_settings(), describe=lambda ref: shop.image_entry(ref, signer),
                              deadline_passed=lambda: clock() >= until)
    summary = report.summary()
    audit.log("product_images_imported_from_urls", bucket=Buckets.PRODUCTS, rows=len(rows),
              **summary["counts"])
    return jsonify(summary), 200


def _audited(url: str) -> str:
    """The URL as the audit keeps it: without its query string and fragment (a signed URL's
    token is not kept for a year), at most 500 characters."""
    return url.split("?", 1)[0].split("#", 1)[0][:500]


def _shop_settings() -> shop.Settings:
    config = current_app.config
    return shop.Settings(max_images=config["AVENUE_MAX_PRODUCT_IMAGES"],
                         temp_ttl_seconds=config["AVENUE_TEMP_IMAGE_TTL_SECONDS"],
                         limits=Limits.from_config(config))


def _csv_bytes() -> bytes:
    """The CSV: the body itself (text/csv), or the multipart file ``file``; 415 otherwise."""
    if request.mimetype == "multipart/form-data":
        file = request.files.get("file")
        if file is None:
            raise BadRequest("Send the CSV as the multipart file 'file'.", code="missing_file")
        data: bytes = file.read()
        return data
    if request.mimetype not in CSV_TYPES:
        raise UnsupportedImage("Send the CSV as the body with Content-Type: text/csv, or as the multipart "
                               "file 'file'.", code="csv_expected")
    return request.get_data()
