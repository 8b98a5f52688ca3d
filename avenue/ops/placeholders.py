"""``flask --app avenue placeholders``: give every stored image made before placeholders its
blurhash and dominant colour.

Originals without ``metadata.placeholder`` are read in batches in ``_id`` order (a keyset, so
memory is one batch whatever the store's size and a rerun starts over cheaply: done images
no longer match). Each gets its placeholder from its WebP thumb (read from GridFS; a few KB)
and a single-document ``$set``; then the products that reference it get the same in their
stored image reference (``images.$.placeholder``), since product answers are built from that
copy. The two writes are idempotent: a run cut off between them leaves a product without the
placeholder until the next run, which finds the original done and fills in only what is
missing (products are matched on the reference lacking it).

Originals whose thumb is missing or unreadable are counted and left (``fsck --repair``
renders lost variants again; run this afterwards).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pymongo.database import Database

from avenue.media import BUCKETS
from avenue.media.ingest.placeholders import compute
from avenue.media.store.storage import read_all

BATCH = 200
ProgressFn = Callable[[str, int, int], None]


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


def _thumb(db: Database, bucket: str, original: dict[str, Any]) -> bytes | None:
    info = (((original.get("metadata") or {}).get("variants") or {}).get("thumb") or {}).get("webp")
    if not info:
        return None
    variant = db[f"{bucket}.files"].find_one({"_id": info["id"]})
    return read_all(db, bucket, variant) if variant is not None else None


def _missing(db: Database, bucket: str, after: Any) -> list[dict[str, Any]]:
    query: dict[str, Any] = {"metadata.role": "original", "metadata.placeholder": {"$exists": False}}
    if after is not None:
        query["_id"] = {"$gt": after}
    return list(db[f"{bucket}.files"].find(query, {"metadata.variants.thumb": 1})
                .sort("_id", 1).limit(BATCH))


def backfill_placeholders(db: Database, *, progress: ProgressFn | None = None) -> PlaceholderReport:
    """Compute the placeholder of every original that has none, in every bucket."""
    report = PlaceholderReport()
    for name, bucket in BUCKETS.items():
        phase = f"Placeholders ({name})"
        report.computed[name] = 0
        after: Any = None
        done = 0
        while batch := _missing(db, bucket, after):
            after = batch[-1]["_id"]
            for original in batch:
                thumb = _thumb(db, bucket, original)
                placeholder = compute(thumb) if thumb is not None else None
                if placeholder is None:
                    report.unreadable.append({"bucket": bucket, "id": str(original["_id"])})
                    continue
                meta = placeholder.as_metadata()
                db[f"{bucket}.files"].update_one({"_id": original["_id"]},
                                                 {"$set": {"metadata.placeholder": meta}})
                report.computed[name] += 1
                if bucket == BUCKETS["products"]:
                    report.products_updated += _update_products(db, original["_id"], meta)
            done += len(batch)
            if progress:
                progress(phase, done, done + (BATCH if len(batch) == BATCH else 0))
    # Products whose reference missed it (a run cut off between the two writes).
    report.products_updated += _products_lagging(db)
    return report


def _update_products(db: Database, image_id: Any, meta: dict[str, str]) -> int:
    result = db.shop_products.update_many(
        {"images": {"$elemMatch": {"id": image_id, "placeholder": {"$exists": False}}}},
        {"$set": {"images.$.placeholder": meta}})
    return result.modified_count


def _products_lagging(db: Database) -> int:
    """References without a placeholder whose original has one (bounded: one batch of
    products at a time, one files lookup per reference)."""
    updated = 0
    files = db[f"{BUCKETS['products']}.files"]
    lagging = db.shop_products.find({"images": {"$elemMatch": {"id": {"$exists": True},
                                                               "placeholder": {"$exists": False}}}},
                                    {"images.id": 1, "images.placeholder": 1}).batch_size(BATCH)
    for product in lagging:
        for entry in product.get("images") or []:
            if not isinstance(entry, dict) or "id" not in entry or "placeholder" in entry:
                continue
            original = files.find_one({"_id": entry["id"]}, {"metadata.placeholder": 1})
            meta = ((original or {}).get("metadata") or {}).get("placeholder")
            if meta:
                updated += _update_products(db, entry["id"], meta)
    return updated
