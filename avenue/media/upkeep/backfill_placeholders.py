"""``flask --app avenue placeholders``: give every stored image made before placeholders its
blurhash and dominant colour.

Originals without ``metadata.placeholder`` are read in batches in ``_id`` order
(``thumbs_lacking``, avenue/media/upkeep/backfill.py: a keyset, so memory is one batch whatever the
store's size and a rerun starts over cheaply: done images no longer match). Each gets its
placeholder from its WebP thumb (read from GridFS; a few KB) and a single-document ``$set``;
then the documents that reference it and keep a copy of its description (products: their
answers are built from that copy) get the same, through their owner
(``References.fill_placeholder``, avenue/media/references.py). The two writes are idempotent:
a run cut off between them leaves a product without the placeholder until the next run, which
finds the original done and fills in only what is missing (its owner lists the references
lacking one).

Originals whose thumb is missing or unreadable are counted and left (``fsck --repair``
renders lost variants again; run this afterwards).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pymongo.database import Database

from avenue.db import Document
from avenue.media.buckets import BUCKETS
from avenue.media.core import Media
from avenue.media.ingest.placeholders import compute as compute_placeholder
from avenue.media.references import Referrers
from avenue.media.store.library import Library
from avenue.media.store.scan import set_metadata as set_file_metadata
from avenue.media.upkeep.backfill import BATCH, ProgressFn, computed_for_lacking


@dataclass
class PlaceholderReport:
    """What a run did, per bucket."""

    computed: dict[str, int] = field(default_factory=dict)
    unreadable: list[dict[str, str]] = field(default_factory=list)
    products_updated: int = 0

    def summary(self) -> dict[str, Any]:
        return {"computed": self.computed, "unreadable": self.unreadable,
                "products_updated": self.products_updated}

    def summary_line(self) -> str:
        total = sum(self.computed.values())
        return (f"placeholders: {total} images given one, {self.products_updated} product references "
                f"updated, {len(self.unreadable)} without a readable thumb")


def backfill_placeholders(db: Database[Document], *, media: Media,
                          progress: ProgressFn | None = None) -> PlaceholderReport:
    """Compute the placeholder of every original that has none, in every bucket (``media``: the
    app's, ``AppMedia.core``, whose owners of referring documents copy it and whose libraries
    read the originals; a ``Media()`` without owners raises before anything is written)."""
    refs = media.referrers(db)
    report = PlaceholderReport()
    for name, bucket in BUCKETS.items():
        report.computed[name] = 0
        for original, placeholder in computed_for_lacking(db, bucket, "placeholder", compute_placeholder,
                                                          report.unreadable, phase=f"Placeholders ({name})",
                                                          disabled=media.settings.disabled_formats,
                                                          progress=progress):
            meta = placeholder.as_metadata()
            set_file_metadata(db, bucket, original["_id"], {"placeholder": meta})
            report.computed[name] += 1
            for owner in refs.of_bucket(bucket):
                report.products_updated += owner.fill_placeholder(original["_id"], meta)
    # References that missed it (a run cut off between the two writes).
    report.products_updated += _lagging(db, refs, media)
    return report


def _lagging(db: Database[Document], refs: Referrers, media: Media) -> int:
    """References without a placeholder whose original has one (bounded: each owner's cursor
    a batch at a time, one files lookup per reference)."""
    updated = 0
    for owner in refs:
        library = Library(db, owner.bucket, media)
        for image_id in owner.lacking_placeholders(BATCH):
            original = library.get(image_id)
            if original is not None and original.placeholder:
                updated += owner.fill_placeholder(image_id, original.placeholder)
    return updated
