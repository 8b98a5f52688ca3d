"""products-status: "is every product photo safe?".

Nothing runs a query per product or per image: the products are read once (``{sku,
images}``: totals, legacy string references and stored references from one pass) and every
files document of the products bucket once (:func:`avenue.media.scan.scan_files`); the cross
checks (references to missing files, orphans, listed variants whose file is gone) are set
lookups in Python.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo.database import Database

from avenue.clock import isoformat, now
from avenue.db import LEGACY_PATHS
from avenue.db import PRODUCTS as PRODUCTS_COLLECTION
from avenue.ids import parse_object_id
from avenue.media import LEGACY_PREFIX, PRODUCTS, Document, FilesScan, scan_files, temp_image_counts

READ_BATCH = 5000  # documents per cursor batch
LIST_LIMIT = 100  # entries per list in a report; counts are always complete


def _products(db: Database[Document]) -> dict[str, Any]:
    """Totals, legacy (string) references and stored references, from one read of the products.

    One pass instead of an aggregation per figure: on the embedded database each read
    decodes every product again.
    """
    totals = {"products": 0, "with_images": 0, "references": 0}
    legacy: dict[str, Any] = {"local": 0, "local_items": [], "external": 0, "external_items": []}
    refs: dict[str, Any] = {}  # stored file id -> [(sku, filename)]
    for product in db[PRODUCTS_COLLECTION].find({}, {"_id": 0, "sku": 1, "images": 1}).batch_size(READ_BATCH):
        images = product.get("images")
        images = images if isinstance(images, list) else []
        totals["products"] += 1
        totals["with_images"] += bool(images)
        totals["references"] += len(images)
        for entry in images:
            if isinstance(entry, str):
                kind = "local" if entry.startswith(LEGACY_PREFIX) else "external"
                legacy[kind] += 1
                if len(legacy[f"{kind}_items"]) < LIST_LIMIT:
                    legacy[f"{kind}_items"].append({"sku": product.get("sku"), "reference": entry})
            elif isinstance(entry, dict) and "id" in entry:
                refs.setdefault(_as_oid(entry["id"]), []).append((product.get("sku"), entry.get("filename")))
    return {"totals": totals, "legacy": legacy, "refs": refs}


def _as_oid(value: Any) -> Any:
    """A stored reference's id as an ObjectId (old documents may hold it as a string)."""
    return parse_object_id(value) or value


def _listing(count: int, items: list[Any]) -> dict[str, Any]:
    return {"count": count, "items": items[:LIST_LIMIT], "truncated": count > LIST_LIMIT}


def products_status(db: Database[Document], moment: dt.datetime | None = None,
                    scan: FilesScan | None = None) -> dict[str, Any]:
    """Counts and lists that answer "is every product photo safe?" (``scan``: a fresh
    :func:`scan_files` of the products bucket, to share one read with storage-status)."""
    moment = moment or now()
    products = _products(db)
    totals, legacy, refs = products["totals"], products["legacy"], products["refs"]
    scan = scan or scan_files(db, PRODUCTS)
    originals, variants = scan.originals, scan.variants

    missing = [{"sku": sku, "reference": str(file_id), "filename": filename}
               for file_id, users in refs.items() if file_id not in originals for sku, filename in users]
    orphan_ids = [file_id for file_id in originals if file_id not in refs]
    # An old /uploads/ path imported to this file still redirects to it: gc keeps those.
    # One read of legacy_paths (file_id has no index; an $in is quadratic on SecantusDB).
    redirected = set()
    if orphan_ids:
        redirected = {doc.get("file_id") for doc in db[LEGACY_PATHS].find({}, {"_id": 0, "file_id": 1})
                      .batch_size(READ_BATCH)} & set(orphan_ids)
    orphans = [{"id": str(i), "filename": originals[i].get("filename"), "bytes": originals[i].get("length"),
                "uploaded_at": isoformat(originals[i].get("uploadDate")), "legacy_redirect": i in redirected}
               for i in orphan_ids]

    # A listed variant is present when its files document is (the scan read every one).
    missing_variants = []
    for original_id, entries in variants.items():
        gone = [entry["name"] for entry in entries if _as_oid(entry["id"]) not in scan.ids]
        if gone:
            missing_variants.append({"id": str(original_id), "missing": sorted(gone),
                                     "skus": sorted({sku for sku, _ in refs.get(original_id, [])})})

    stored = sum(len(users) for users in refs.values())
    report = {
        "generated_at": isoformat(moment),
        "products": {"total": totals["products"], "with_images": totals["with_images"],
                     "without_images": totals["products"] - totals["with_images"]},
        "references": {"total": totals["references"], "stored": stored,
                       "local_filesystem": legacy["local"], "external": legacy["external"]},
        "missing_files": _listing(len(missing), missing),
        "local_filesystem": _listing(legacy["local"], legacy["local_items"]),
        "external": _listing(legacy["external"], legacy["external_items"]),
        "temp_images": temp_image_counts(db, moment),
        "orphans": {**_listing(len(orphans), orphans), "legacy_redirects": len(redirected),
                    "bytes": sum(originals[i].get("length") or 0 for i in orphan_ids)},
        "missing_variants": _listing(len(missing_variants), missing_variants),
        "stored_images": len(originals),
    }
    # Safe: every reference has its bytes (and variants) in MongoDB. External URLs are not
    # ours to lose, so they are reported but do not make the report unsafe.
    report["safe"] = not (missing or legacy["local"] or missing_variants)
    return report
