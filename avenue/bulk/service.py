"""Import every image of a zip archive into the builder's library or onto products.

Each image goes through exactly the path a single upload takes, by calling the same service
functions: ``builder.service.upload_media`` (library) and ``shop.service.add_images``
(products), so validation, metadata stripping, dedupe, variants, counters, write order and
the trash's rules are theirs, unchanged. Nothing here writes a document of its own.

Entries are read and stored one at a time, so a worker holds the archive (bounded by
``AVENUE_ZIP_MAX_BYTES`` for the API; the operator's file for the CLI) and one image at a
time. A re-run of the same archive is idempotent and resumes a run that died: both store
paths are content-addressed, so an image already in the library, or already on its product,
is reported ``already_there`` and nothing is written twice.

An import through the API has a deadline (``AVENUE_ZIP_MAX_SECONDS``): once it passes, no
further entry is started, and the entries not reached are reported ``not_imported`` (reason
``deadline``) with the report's ``complete`` false; running the same archive again imports
them (and reports the others ``already_there``). Each entry is one upload, bounded by the
upload limits, so the deadline is overrun by at most one image's time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pymongo.database import Database

from avenue.builder import service as builder
from avenue.bulk.archive import Archive, Entry, EntryTooLarge, EntryUnreadable
from avenue.bulk.naming import ProductSlot, library_folder, product_slot
from avenue.db import Document
from avenue.errors import AvenueError, BadRequest
from avenue.media import BUILDER, PRODUCTS, Limits, Upload
from avenue.metrics import count_upload
from avenue.shop import service as shop

LIBRARY, PRODUCTS_TARGET = "library", "products"
TARGETS = (LIBRARY, PRODUCTS_TARGET)
BUCKETS = {LIBRARY: BUILDER, PRODUCTS_TARGET: PRODUCTS}
# What each entry's report says happened to it.
IMPORTED, ALREADY_THERE, SKIPPED, UNKNOWN_SKU, UNMATCHED, REFUSED, NOT_IMPORTED = (
    "imported", "already_there", "skipped", "unknown_sku", "unmatched_name", "refused", "not_imported")
OUTCOMES = (IMPORTED, ALREADY_THERE, SKIPPED, UNKNOWN_SKU, UNMATCHED, REFUSED, NOT_IMPORTED)
clock = time.monotonic  # the deadline's clock (a test moves it)

# progress(phase, done, total), as the ops commands' (avenue/ops/commands.py)
Progress = Callable[[str, int, int], None]


def parse_target(value: str | None) -> str:
    """``library`` or ``products``, or 400 ``invalid_target``."""
    if value not in TARGETS:
        raise BadRequest("target is library or products.", code="invalid_target")
    return value


@dataclass
class Report:
    """What an import did, entry by entry, and its counts."""

    target: str
    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(self, name: str, outcome: str, **details: Any) -> None:
        self.entries.append({"name": name, "outcome": outcome,
                             **{key: value for key, value in details.items() if value is not None}})

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for entry in self.entries:
            counts[entry["outcome"]] += 1
        return counts

    @property
    def complete(self) -> bool:
        """Every entry was reached (none ``not_imported``: the deadline did not pass)."""
        return not self.counts[NOT_IMPORTED]

    def summary(self) -> dict[str, Any]:
        return {"target": self.target, "bucket": BUCKETS[self.target], "complete": self.complete,
                "counts": self.counts, "entries": self.entries}

    def summary_line(self) -> str:
        counts = self.counts
        return (f"import-zip into {self.target}: {counts[IMPORTED]} imported, {counts[ALREADY_THERE]} "
                f"already there, {counts[SKIPPED]} skipped, {counts[UNKNOWN_SKU]} unknown sku, "
                f"{counts[UNMATCHED]} unmatched name, {counts[REFUSED]} refused, "
                f"{counts[NOT_IMPORTED]} not imported")

    @property
    def needs_attention(self) -> bool:
        counts = self.counts
        return any(counts[key] for key in (UNKNOWN_SKU, UNMATCHED, REFUSED, NOT_IMPORTED))


class _Deadline:
    """Whether an import may start another entry (None: no deadline)."""

    def __init__(self, seconds: float | None) -> None:
        self.until = None if seconds is None else clock() + seconds

    def passed(self) -> bool:
        return self.until is not None and clock() >= self.until


def _not_reached(report: Report, entry: Entry, **details: Any) -> None:
    report.add(entry.name, NOT_IMPORTED, reason="deadline", **details)


def import_archive(db: Database[Document], archive: Archive, *, target: str, owner: str, limits: Limits,
                   max_product_images: int = 10, progress: Progress | None = None,
                   max_seconds: float | None = None) -> Report:
    """Store every image of ``archive`` into ``target`` (``library`` or ``products``), one at a
    time through the single-upload path; the report lists every entry and what became of it.
    No entry is started after ``max_seconds`` (those are ``not_imported``)."""
    report = Report(target)
    deadline = _Deadline(max_seconds)
    for skipped in archive.skipped:
        report.add(skipped.name, SKIPPED, reason=skipped.reason)
    total = len(archive.images)
    tick = progress or (lambda phase, done, total: None)
    tick("Importing", 0, total)
    if target == LIBRARY:
        for done, entry in enumerate(archive.images, 1):
            if deadline.passed():
                _not_reached(report, entry, folder=library_folder(entry))
            else:
                _into_library(db, archive, entry, report, owner=owner, limits=limits)
            tick("Importing", done, total)
    else:
        settings = shop.Settings(max_images=max_product_images, temp_ttl_seconds=0, limits=limits)
        slotted = [(product_slot(entry), entry) for entry in archive.images]
        for slot, entry in slotted:
            if slot is None:
                count_upload("unmatched_name", None)
                report.add(entry.name, UNMATCHED, reason="The name fits no rule: SKU_N.ext, SKU.ext or "
                                                         "SKU/name.ext.")
        matched = sorted(((slot, entry) for slot, entry in slotted if slot is not None),
                         key=lambda pair: (pair[0].sku, pair[0].place, pair[1].name))
        known: dict[str, bool] = {}
        for done, (slot, entry) in enumerate(matched, 1):
            if deadline.passed():
                _not_reached(report, entry, sku=slot.sku)
            else:
                _onto_product(db, archive, entry, slot, report, known, owner=owner, settings=settings)
            tick("Importing", done, len(matched))
    return report


def _refused(report: Report, entry: Entry, error: AvenueError, **details: Any) -> None:
    report.add(entry.name, REFUSED, status=error.status, code=error.code, message=error.message, **details)


def _into_library(db: Database[Document], archive: Archive, entry: Entry, report: Report, *, owner: str,
                  limits: Limits) -> None:
    folder = library_folder(entry)
    try:
        data = archive.read(entry)
        result = builder.upload_media(db, Upload(entry.basename, data), owner=owner, alt=None, limits=limits,
                                      folder=folder)
    except AvenueError as error:
        _count_unstored(error)
        _refused(report, entry, error, folder=folder)
        return
    report.add(entry.name, IMPORTED if result.created else ALREADY_THERE, id=str(result.image.id),
               folder=result.image.folder or folder)


def product_known(db: Database[Document], sku: str, known: dict[str, bool]) -> bool:
    """Whether product ``sku`` exists, asked once per import (``known`` remembers the answers):
    an import reports an unknown sku, never creates it (a product needs a name and a price)."""
    if sku not in known:
        try:
            shop.get_product(db, sku)
            known[sku] = True
        except shop.ProductNotFound:
            known[sku] = False
    return known[sku]


def _onto_product(db: Database[Document], archive: Archive, entry: Entry, slot: ProductSlot, report: Report,
                  known: dict[str, bool], *, owner: str, settings: shop.Settings) -> None:
    if not product_known(db, slot.sku, known):
        count_upload("unknown_sku", None)
        report.add(entry.name, UNKNOWN_SKU, sku=slot.sku)
        return
    try:
        data = archive.read(entry)
        _, added = shop.add_images(db, slot.sku, [Upload(entry.basename, data)], owner=owner,
                                   settings=settings)
    except AvenueError as error:
        _count_unstored(error)
        _refused(report, entry, error, sku=slot.sku)
        return
    if added:
        report.add(entry.name, IMPORTED, sku=slot.sku, id=str(added[0]["id"]))
    else:
        report.add(entry.name, ALREADY_THERE, sku=slot.sku)


def _count_unstored(error: AvenueError) -> None:
    """Count an entry refused before the store path saw it (the store counts its own refusals)."""
    if isinstance(error, EntryTooLarge | EntryUnreadable):
        count_upload(error.code, None)
