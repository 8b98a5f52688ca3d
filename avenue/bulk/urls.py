"""Images imported from URLs the server fetches: one into the builder's library, one onto a
product, or a CSV of ``sku,url`` rows onto products.

Each URL is fetched by a ``fetch`` callable (the views hand over :func:`avenue.urlfetch.fetch_image`
under the configured policy: every SSRF guard is there), after ``admit`` counted it against the
caller's limit; its bytes then go through exactly the service call an upload makes:
``builder.service.upload_media`` or ``shop.service.add_images``, so validation (type sniffing,
pixel limits), dedupe, variants, counters and write order are theirs. A refused URL stores
nothing; nothing here writes a document of its own.

A CSV import goes row by row, like the zip import (:mod:`avenue.bulk.service`): a product is
looked up before its URL is fetched (an unknown sku is reported, never created, and costs no
fetch), each row is reported (stored with its image, or refused with a code and message), and
once ``max_seconds`` passed no row is started (``not_imported``, ``complete`` false); sending
the same CSV again imports those and reports the others ``already_there`` (a product's images
are content-addressed). Once the caller's URL limit is used up, the rows left are refused
``rate_limited`` without a fetch.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import Field

from avenue.builder import service as builder
from avenue.bulk.service import product_known
from avenue.errors import AvenueError, BadRequest, RateLimited
from avenue.media import AppMedia, Library, Limits
from avenue.metrics import count_upload
from avenue.shapes import Absent, Answer, ObjectIdText, OneOf, Refuse, Shape, counts_of, described_by
from avenue.shop import service as shop
from avenue.urlfetch import MAX_URL_LENGTH, Fetched, FetchRefused

#: A URL's bytes, or FetchRefused (avenue/urlfetch.py fetch_image under the app's policy).
Fetch = Callable[[object], Fetched]
#: Counts one URL against the caller's limit; RateLimited once it is used up.
Admit = Callable[[], None]
#: An added product image's reference as the answer shows it.
Describe = Callable[[dict[str, Any]], dict[str, Any]]

IMPORTED, ALREADY_THERE, UNKNOWN_SKU, REFUSED, NOT_IMPORTED = (
    "imported", "already_there", "unknown_sku", "refused", "not_imported")
OUTCOMES = (IMPORTED, ALREADY_THERE, UNKNOWN_SKU, REFUSED, NOT_IMPORTED)
HEADER = ["sku", "url"]


class ProductUrlImport(Shape):
    """The image to fetch and add to the product."""

    refusal = Refuse("unknown_field", "Send url only.")

    url: Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH, examples=[
        "https://cdn.supplier.example/a.jpg"], description=(
        "http or https; fetched by the server through the SSRF guard (docs/security.md).")),
        Refuse("bad_url", f"url: an http or https URL, as text of at most {MAX_URL_LENGTH} characters.")]


class LibraryUrlImport(ProductUrlImport):
    """The image to fetch into the library, with what an upload of it would carry (each
    checked as an upload's is: invalid_alt, invalid_folder, invalid_tags)."""

    refusal = Refuse("unknown_field", "Send url, alt, folder, tags only.")

    alt: Annotated[str | None, Refuse("invalid_alt", "alt is a string.")] = None
    folder: Annotated[str | None, Refuse("invalid_folder", "folder is a string.")] = None
    tags: Annotated[list[str] | str | None, Refuse("invalid_tags", "tags is a list of strings."),
                    Field(description="A list, or comma-separated.")] = None


def into_library(media: AppMedia, url: object, *, fetch: Fetch, admit: Admit, owner: str,
                 limits: Limits, alt: str | None = None, folder: str | None = None,
                 tags: list[str] | str | None = None) -> Library.Stored:
    """Fetch ``url`` and store it in the library as an upload with these labels would be."""
    admit()
    fetched = _fetch(fetch, url)
    return builder.upload_media(media, Library.Upload(fetched.filename, fetched.data), owner=owner, alt=alt,
                                limits=limits, folder=folder, tags=tags)


def onto_product(media: AppMedia, sku: str, url: object, *, fetch: Fetch, admit: Admit, owner: str,
                 settings: shop.Settings) -> shop.AddedImages:
    """Fetch ``url`` and add it to the product (404 before any fetch when there is none):
    what was added (no reference: it already had this image)."""
    shop.get_product(media.db, sku)
    admit()
    fetched = _fetch(fetch, url)
    return shop.add_images(media, sku, [Library.Upload(fetched.filename, fetched.data)], owner=owner,
                           settings=settings)


# --- a CSV of sku,url rows -------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One row of the CSV: its line, and its sku and URL (empty when missing)."""

    line: int
    sku: str
    url: str
    extra: bool = False  # more than two non-empty fields


def parse_csv(data: bytes, max_rows: int) -> list[Row]:
    """The rows of a ``sku,url`` CSV (UTF-8; an optional ``sku,url`` header; blank lines
    skipped). 400 ``invalid_csv`` when it is not one or has no row, 400 ``too_many_rows`` past
    ``max_rows`` (nothing is imported then)."""
    try:
        text = data.decode("utf-8-sig")
        lines = list(csv.reader(io.StringIO(text, newline="")))
    except (UnicodeDecodeError, csv.Error):
        raise BadRequest("Send a UTF-8 CSV of sku,url rows.", code="invalid_csv") from None
    rows: list[Row] = []
    for number, fields in enumerate(lines, 1):
        cells = [cell.strip() for cell in fields]
        if not any(cells):
            continue
        if not rows and [cell.lower() for cell in cells[:2]] == HEADER and not any(cells[2:]):
            continue
        cells += ["", ""]
        rows.append(Row(number, cells[0], cells[1], extra=any(cells[2:])))
        if len(rows) > max_rows:
            raise BadRequest(f"The CSV has more than {max_rows} rows; send it in parts.",
                             code="too_many_rows", max_rows=max_rows)
    if not rows:
        raise BadRequest("The CSV has no sku,url row.", code="invalid_csv")
    return rows


@dataclass
class Report:
    """What a CSV import did, row by row, and its counts."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: Row, outcome: str, **details: Any) -> None:
        self.rows.append({"line": row.line, "sku": row.sku, "url": row.url, "outcome": outcome,
                          **{key: value for key, value in details.items() if value is not None}})

    def refused(self, row: Row, error: AvenueError) -> None:
        self.add(row, REFUSED, status=error.status, code=error.code, message=error.message)

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for row in self.rows:
            counts[row["outcome"]] += 1
        return counts

    def summary(self) -> dict[str, Any]:
        """The report as the API answers it."""
        counts = self.counts
        return UrlReport(complete=not counts[NOT_IMPORTED], counts=counts,
                         rows=[UrlRow(**row) for row in self.rows]).answer()


#: What a refused URL answers (docs/api.md, "Imports from a URL"), besides the body's own 400s.
URL_CODES = ("bad_url (400), url_import_disabled (403), too_large (413), not_an_image (415; the upload's own "
             "unsupported_type too), host_not_allowed, forbidden_address, and what the supplier did: "
             "fetch_failed, http_error, too_many_redirects, timeout (422), rate_limited (429)")


class UrlRow(Answer):
    """One row of the CSV and what became of it."""

    line: Annotated[int, Field(ge=1, description="The row's line in the CSV.")]
    sku: str
    url: str
    outcome: Annotated[str, OneOf(OUTCOMES)]
    id: Annotated[Absent[ObjectIdText], Field(description="imported: the image added.")] = None
    image: Annotated[Absent[Annotated[dict[str, Any], described_by("Image")]], Field(
        description="imported: the image as the product shows it.")] = None
    reason: Annotated[Absent[str], Field(description="not_imported: deadline.")] = None
    status: Annotated[Absent[int], Field(
        description="refused: what a single import of it would have answered.")] = None
    code: Annotated[Absent[str], Field(
        description=f"refused: {URL_CODES}, bad_row, or the upload's own refusal.")] = None
    message: Absent[str] = None


class UrlReport(Answer):
    """What a CSV import did, row by row, and its counts."""

    complete: Annotated[bool, Field(description="False when AVENUE_URL_IMPORT_MAX_SECONDS passed: the rows "
                                                "not_imported are imported by sending the CSV again.")]
    counts: Annotated[dict[str, Annotated[int, Field(ge=0)]],
                      counts_of(OUTCOMES)]
    rows: list[UrlRow]


def import_rows(media: AppMedia, rows: Sequence[Row], *, fetch: Fetch, admit: Admit, owner: str,
                settings: shop.Settings, describe: Describe, deadline_passed: Callable[[], bool]) -> Report:
    """Each row's URL onto its product, one at a time, as :func:`onto_product` would; the
    report says what became of every row."""
    db = media.db
    report = Report()
    known: dict[str, bool] = {}
    limited: RateLimited | None = None
    for row in rows:
        if deadline_passed():
            report.add(row, NOT_IMPORTED, reason="deadline")
            continue
        if not row.sku or not row.url or row.extra:
            report.refused(row, BadRequest("A row is sku,url: two fields, neither empty.", code="bad_row"))
            continue
        if not product_known(db, row.sku, known):
            report.add(row, UNKNOWN_SKU)
            continue
        if limited is not None:
            report.refused(row, limited)
            continue
        try:
            admit()
        except RateLimited as error:
            limited = error
            report.refused(row, error)
            continue
        try:
            added = shop.add_images(media, row.sku, [Library.Upload(*_fetched(fetch, row.url))], owner=owner,
                                    settings=settings).refs
        except AvenueError as error:
            report.refused(row, error)
            continue
        if added:
            report.add(row, IMPORTED, id=str(added[0]["id"]), image=describe(added[0]))
        else:
            report.add(row, ALREADY_THERE)
    return report


def _fetched(fetch: Fetch, url: str) -> tuple[str, bytes]:
    fetched = _fetch(fetch, url)
    return fetched.filename, fetched.data


def _fetch(fetch: Fetch, url: object) -> Fetched:
    """``fetch(url)``; a refused URL is counted as an upload refused with its code (avenue_uploads,
    as the store counts the refusals of the bytes it is given)."""
    try:
        return fetch(url)
    except FetchRefused as error:
        count_upload(error.code, None)
        raise
