"""Product figures kept with every product write (``status_counters``): products, products with
images, and image references by kind (stored, local filesystem, external).

products-status answers them from one document read, as fresh as the last write.

Write order, and why drift is bounded and corrected (the same rule as the media counters,
:mod:`avenue.media.effects.counters`):

- The shop service calls :func:`record_product_change` *after* each product write succeeded,
  with the product's images before and after it (:func:`product_figures` of each), so the
  ``$inc`` is the exact difference that write made. A crash between the write and the
  ``$inc``, a failed ``$inc`` (logged, never raised: the write stands), or a write behind the
  app's back (import-legacy rewriting references, restore, a hand edit) is drift.
- :func:`recount_products` is the reconciliation: the status sweep reads the products in
  batches anyway, adds up the same figures, and replaces the counters by compare-and-set on
  the ``version`` every ``$inc`` bumps, as read before its first batch. If a product write
  landed while it counted, the replace does not match (the count may or may not include that
  write) and the next sweep tries again; a replace is only ever exact.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from avenue.clock import now
from avenue.db import Document
from avenue.media import Buckets
from avenue.media.maintenance import References

log = logging.getLogger(__name__)
COLLECTION = "status_counters"
PRODUCTS_ID = "products"
FIELDS = ("products", "with_images", "references", "stored", "local_filesystem", "external")


def product_figures(product: Mapping[str, Any] | None) -> dict[str, int]:
    """What one product document adds to the product counters (nothing for None)."""
    if product is None:
        return dict.fromkeys(FIELDS, 0)
    images = product.get("images")
    images = images if isinstance(images, list) else []
    local = sum(1 for entry in images if isinstance(entry, str) and entry.startswith(Buckets.LEGACY_PREFIX))
    external = sum(1 for entry in images if isinstance(entry, str)) - local
    stored = sum(1 for entry in images if isinstance(entry, dict) and "id" in entry)
    return {"products": 1, "with_images": int(bool(images)), "references": len(images),
            "stored": stored, "local_filesystem": local, "external": external}


def record_product_change(db: Database[Document], before: Mapping[str, Any] | None,
                          after: Mapping[str, Any] | None) -> None:
    """Count a product write that succeeded: ``before`` and ``after`` are the product as it
    was and is (None: it did not exist / no longer exists)."""
    old, new = product_figures(before), product_figures(after)
    inc = {name: new[name] - old[name] for name in FIELDS if new[name] != old[name]}
    if not inc:
        return
    try:
        db[COLLECTION].update_one({"_id": PRODUCTS_ID}, {"$inc": {**inc, "version": 1}}, upsert=True)
    except PyMongoError as error:
        log.warning("product counters not updated (%s): the next reconciliation corrects them", error)


def product_counters(db: Database[Document]) -> dict[str, Any]:
    """The product counters (zeros before the first product write), their version and when
    they were last reconciled."""
    doc = db[COLLECTION].find_one({"_id": PRODUCTS_ID}) or {}
    return {**{name: int(doc.get(name) or 0) for name in FIELDS},
            "version": doc.get("version"), "reconciled_at": doc.get("reconciled_at")}


def replace_products(db: Database[Document], counted: Mapping[str, int], version: int | None,
                     moment: dt.datetime | None = None) -> dict[str, Any]:
    """Replace the product counters with a recount that began when they were at ``version``
    (None: no document existed), unless a write moved them since. Returns ``applied`` and
    ``drift`` (counted minus held)."""
    held = product_counters(db)
    drift = {name: int(counted[name]) - held[name] for name in FIELDS}
    values = {name: int(counted[name]) for name in FIELDS}
    stamp = moment or now()
    try:
        if version is None:
            db[COLLECTION].insert_one({"_id": PRODUCTS_ID, **values, "version": 0, "reconciled_at": stamp})
            applied = True
        else:
            applied = db[COLLECTION].update_one(
                {"_id": PRODUCTS_ID, "version": version},
                {"$set": {**values, "reconciled_at": stamp}}).matched_count == 1
    except DuplicateKeyError:
        applied = False  # the first product write created the document while we counted
    return {"applied": applied, "drift": drift}


def recount_products(db: Database[Document], products: References, batch: int) -> dict[str, Any]:
    """Count every product again, as their owner walks them by ``_id`` (one cursor, ``batch``
    documents a read; nothing but the running sums is kept), and replace the counters (see
    :func:`replace_products`)."""
    version = product_counters(db)["version"]
    sums = dict.fromkeys(FIELDS, 0)
    for doc in products.walk(None, batch):
        for name, value in product_figures(doc).items():
            sums[name] += value
    return replace_products(db, sums, version)
