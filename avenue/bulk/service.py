"""Import every image of a zip archive into the builder's library or onto products.

Each image goes through exactly the path a single upload takes: its name gives it a target
(avenue/bulk/naming.py: the library in its folder, or the product its name names) and
:func:`avenue.targets.store` stores it by the same service call as that target's multipart
route (``builder.service.upload_media``, ``shop.service.add_images``), so validation, metadata
stripping, dedupe, variants, counters, write order and the trash's rules are theirs,
unchanged. Nothing here writes a document of its own.

The import's API and CLI name their target by their own words, ``library`` and ``products``
(:data:`RULES`); each is one kind of avenue/targets.py, the one vocabulary, and that is the
only place the words are mapped.

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
from typing import Annotated, Any

from pydantic import Field
from pymongo.database import Database

from avenue import targets
from avenue.bulk.archive import Archive, Entry, EntryTooLarge, EntryUnreadable
from avenue.bulk.naming import SKU, library_folder, product_slot
from avenue.db import Document
from avenue.errors import AvenueError
from avenue.media import AppMedia, Limits
from avenue.metrics import count_upload
from avenue.shapes import Absent, Answer, ObjectIdText, OneOf, counts_of
from avenue.shop import service as shop

# What each entry's report says happened to it.
IMPORTED, ALREADY_THERE, SKIPPED, UNKNOWN_SKU, UNMATCHED, REFUSED, NOT_IMPORTED = (
    "imported", "already_there", "skipped", "unknown_sku", "unmatched_name", "refused", "not_imported")
OUTCOMES = (IMPORTED, ALREADY_THERE, SKIPPED, UNKNOWN_SKU, UNMATCHED, REFUSED, NOT_IMPORTED)
clock = time.monotonic  # the deadline's clock (a test moves it)

# progress(phase, done, total), as the ops commands' (avenue/ops/commands.py)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Planned:
    """An image entry on its way: the target its name gives (its parameters, the folder or the
    product's sku, are what the entry's report line says of it)."""

    entry: Entry
    target: targets.Target


# An import's plan: every image entry with its target, in the order they are stored (entries
# whose name gives none are reported here, and left out).
Plan = Callable[[Archive, "Report"], list[Planned]]
# Whether a planned entry's target is there to store into (else reported here); the dict
# remembers what was asked during one import.
Admit = Callable[[Database[Document], Planned, "Report", dict[str, bool]], bool]
# What a stored entry's report line says besides its outcome.
Reported = Callable[[Planned, targets.Completed], dict[str, Any]]


@dataclass(frozen=True)
class Rule:
    """One of the import's targets, by its own word: the kind of avenue/targets.py it is, how
    an entry's name gives its target, whether that target is there, and what a stored entry's
    line reports."""

    kind: str
    plan: Plan
    admit: Admit
    reported: Reported

    @property
    def bucket(self) -> str:
        return targets.KIND[self.kind].bucket


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
        """The report as the API answers it (and the CLI prints it)."""
        return ZipReport(target=self.target, bucket=RULES[self.target].bucket, complete=self.complete,
                         counts=self.counts, entries=[ZipEntry(**entry) for entry in self.entries]).answer()

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


def import_archive(media: AppMedia, archive: Archive, *, target: str, owner: str, limits: Limits,
                   max_product_images: int = 10, progress: Progress | None = None,
                   max_seconds: float | None = None) -> Report:
    """Store every image of ``archive`` into ``target`` (``library`` or ``products``), one at a
    time through the single-upload path; the report lists every entry and what became of it.
    No entry is started after ``max_seconds`` (those are ``not_imported``)."""
    rule = RULES[target]
    report = Report(target)
    deadline = _Deadline(max_seconds)
    for skipped in archive.skipped:
        report.add(skipped.name, SKIPPED, reason=skipped.reason)
    tick = progress or (lambda phase, done, total: None)
    tick("Importing", 0, len(archive.images))
    plan = rule.plan(archive, report)
    settings = targets.Settings(limits=limits, max_product_images=max_product_images, temp_ttl_seconds=0)
    known: dict[str, bool] = {}
    for done, planned in enumerate(plan, 1):
        if deadline.passed():
            report.add(planned.entry.name, NOT_IMPORTED, reason="deadline", **planned.target.params)
        elif rule.admit(media.db, planned, report, known):
            _import_entry(media, archive, planned, rule, report, owner=owner, settings=settings)
        tick("Importing", done, len(plan))
    return report


def _import_entry(media: AppMedia, archive: Archive, planned: Planned, rule: Rule, report: Report, *,
                  owner: str, settings: targets.Settings) -> None:
    """One entry read and stored into its target (reported refused when either is refused)."""
    entry = planned.entry
    try:
        data = archive.read(entry)
        done = targets.store(media, planned.target, entry.basename, data, owner=owner, settings=settings)
    except AvenueError as error:
        if isinstance(error, EntryTooLarge | EntryUnreadable):
            count_upload(error.code, None)  # refused before the store saw it (it counts its own)
        report.add(entry.name, REFUSED, status=error.status, code=error.code, message=error.message,
                   **planned.target.params)
        return
    report.add(entry.name, IMPORTED if done.created else ALREADY_THERE, **rule.reported(planned, done))


# --- the two targets: how an entry's name gives its target, and what its line reports -----------

def _in_folders(archive: Archive, report: Report) -> list[Planned]:
    """Every image into the library, in the folder it has in the archive, in the archive's order."""
    return [Planned(entry, targets.Target("builder", {"folder": library_folder(entry)}))
            for entry in archive.images]


def _always(db: Database[Document], planned: Planned, report: Report, known: dict[str, bool]) -> bool:
    return True


def _library_line(planned: Planned, done: targets.Completed) -> dict[str, Any]:
    # the folder as stored (cleaned), the entry's own when the image has none
    return {"id": str(done.image_id), "folder": (done.image.folder if done.image else None)
            or planned.target.params["folder"]}


def _onto_named_products(archive: Archive, report: Report) -> list[Planned]:
    """Every image onto the product its name names, in order of product, place and name; a name
    that names none is reported ``unmatched_name``."""
    slotted = [(product_slot(entry), entry) for entry in archive.images]
    for slot, entry in slotted:
        if slot is None:
            count_upload("unmatched_name", None)
            report.add(entry.name, UNMATCHED, reason="The name fits no rule: SKU_N.ext, SKU.ext or "
                                                     "SKU/name.ext.")
    matched = sorted(((slot, entry) for slot, entry in slotted if slot is not None),
                     key=lambda pair: (pair[0].sku, pair[0].place, pair[1].name))
    return [Planned(entry, targets.Target("product", {"sku": slot.sku})) for slot, entry in matched]


def _product_exists(db: Database[Document], planned: Planned, report: Report, known: dict[str, bool]) -> bool:
    """A product that does not exist is reported ``unknown_sku``, never created."""
    sku = planned.target.params["sku"]
    if product_known(db, sku, known):
        return True
    count_upload("unknown_sku", None)
    report.add(planned.entry.name, UNKNOWN_SKU, sku=sku)
    return False


def _product_line(planned: Planned, done: targets.Completed) -> dict[str, Any]:
    # an image the product already had is reported without its id (docs/api.md, "Zip imports")
    return {"sku": planned.target.params["sku"], "id": str(done.image_id) if done.created else None}


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


#: The import's targets by its own words (its API's, its CLI's and its report's).
RULES = {"library": Rule("builder", _in_folders, _always, _library_line),
         "products": Rule("product", _onto_named_products, _product_exists, _product_line)}
TARGETS = tuple(RULES)


#: What the report counts: every outcome, each a whole number.
Counts = Annotated[dict[str, Annotated[int, Field(ge=0)]], counts_of(OUTCOMES)]


class ZipEntry(Answer):
    """One entry of the archive and what became of it."""

    name: Annotated[str, Field(description="The entry's name in the archive.")]
    outcome: Annotated[str, OneOf(OUTCOMES)]
    id: Annotated[Absent[ObjectIdText], Field(description="The image (imported or already there).")] = None
    sku: Absent[Annotated[str, Field(pattern=f"^{SKU}$")]] = None
    folder: Absent[Annotated[str, Field(max_length=600, description="/name/name…, at most 8 names.")]] = None
    reason: Annotated[Absent[str], Field(
        description="Why it was skipped, matched nothing or was not imported (deadline).")] = None
    status: Annotated[Absent[int], Field(
        description="A refused image: what a single upload of it would have answered.")] = None
    code: Absent[str] = None
    message: Absent[str] = None


class ZipReport(Answer):
    """What a zip import did, entry by entry, and its counts."""

    target: Annotated[str, OneOf(TARGETS)]
    bucket: str
    complete: Annotated[bool, Field(description="False when AVENUE_ZIP_MAX_SECONDS passed: the entries "
                                                "not_imported are imported by sending the archive again.")]
    counts: Counts
    entries: list[ZipEntry]
