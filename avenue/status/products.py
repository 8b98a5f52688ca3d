"""products-status: "is every product photo safe?".

Nothing here grows with the store. The counts (products with and without images, references
by kind, stored images) come from counters kept with every write (:mod:`avenue.status.counters`,
:mod:`avenue.media.effects.counters`): as fresh as the last write. Temp images pending and expired are
two counts on the expiry index. The lists (references to missing files, legacy references,
orphans, missing variants) come from the last background sweep (:mod:`avenue.status.sweep`),
whose age the ``sweep`` block states.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo.database import Database

from avenue.clock import isoformat, now
from avenue.media import PRODUCTS, Document
from avenue.media.effects.counters import counters as media_counters
from avenue.media.store.scan import temp_image_counts
from avenue.status import counters

LIST_LIMIT = 100  # entries per list in a report; counts are always complete


def _listing(found: dict[str, Any] | None, count: int | None = None) -> dict[str, Any]:
    """A list from the sweep: its count (``count``: a fresher one from the counters), the
    first :data:`LIST_LIMIT` entries, and whether it was cut."""
    found = found or {"count": 0, "items": []}
    total = found["count"] if count is None else count
    items = found["items"][:LIST_LIMIT]
    return {**{k: v for k, v in found.items() if k not in {"count", "items"}},
            "count": total, "items": items, "truncated": total > len(items)}


def products_status(db: Database[Document], swept: dict[str, Any] | None,
                    moment: dt.datetime | None = None) -> dict[str, Any]:
    """Counts and lists that answer "is every product photo safe?" (``swept``: the last sweep's
    result, None before the first one finished)."""
    moment = moment or now()
    figures = counters.product_counters(db)
    bucket = media_counters(db)[PRODUCTS]
    swept = swept or {}
    missing = _listing(swept.get("missing_files"))
    missing_variants = _listing(swept.get("missing_variants"))
    report = {
        "generated_at": isoformat(moment),
        "products": {"total": figures["products"], "with_images": figures["with_images"],
                     "without_images": figures["products"] - figures["with_images"]},
        "references": {"total": figures["references"], "stored": figures["stored"],
                       "local_filesystem": figures["local_filesystem"], "external": figures["external"]},
        "missing_files": missing,
        "local_filesystem": _listing(swept.get("local_filesystem"), figures["local_filesystem"]),
        "external": _listing(swept.get("external"), figures["external"]),
        "temp_images": temp_image_counts(db, moment),
        "orphans": _listing(swept.get("orphans") or {"count": 0, "items": [], "bytes": 0,
                                                     "legacy_redirects": 0}),
        "missing_variants": missing_variants,
        "stored_images": bucket["originals"],
    }
    # Safe: every reference has its bytes (and variants) in MongoDB. External URLs are not
    # ours to lose, so they are reported but do not make the report unsafe. Before the first
    # sweep nobody knows yet: None.
    if figures["local_filesystem"] or missing["count"] or missing_variants["count"]:
        report["safe"] = False
    else:
        report["safe"] = True if swept else None
    return report
