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
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import ConfigDict, Field
from pymongo.database import Database

from avenue.clock import isoformat, now
from avenue.db import Document
from avenue.media import Buckets
from avenue.media.maintenance import Figures
from avenue.shapes import Answer
from avenue.status import counters

LIST_LIMIT = 100  # entries per list in a report; counts are always complete
Count = Annotated[int, Field(ge=0)]
TIME = Field(json_schema_extra={"format": "date-time"})


class Swept(Answer):
    """An entry of a list as the last sweep stored it. Read back as stored, never checked
    (:func:`_listing` builds it without validation): a sweep of an older version may have
    stored other fields, and a report must not refuse it."""

    model_config = ConfigDict(extra="allow")


class Reference(Swept):
    """A product's image reference: the product's name and what it names."""

    sku: str | None = None
    reference: str | None = None


class MissingFile(Reference):
    """A reference to a stored image whose bytes are gone."""

    filename: str | None = None


class Orphan(Swept):
    """A stored product image no product names."""

    id: str | None = None
    filename: str | None = None
    bytes: int | None = None
    uploaded_at: Annotated[str | None, TIME] = None
    legacy_redirect: bool | None = None


class MissingVariants(Swept):
    """An original one of whose listed variants is gone."""

    id: str | None = None
    missing: list[str] | None = None
    skus: list[str | None] | None = None


class Listing(Answer):
    """A list of a status report: its count, its first entries (``items``) and whether it was cut."""

    #: What its entries are.
    entry: ClassVar[type[Swept]] = Swept

    count: Count
    truncated: bool


class References(Listing):
    entry = Reference
    items: list[Reference]


class MissingFiles(Listing):
    entry = MissingFile
    items: list[MissingFile]


class Orphans(Listing):
    entry = Orphan
    items: list[Orphan]
    bytes: Count
    legacy_redirects: Count


class MissingVariantsList(Listing):
    entry = MissingVariants
    items: list[MissingVariants]


L = TypeVar("L", bound=Listing)


def _listing(kind: type[L], found: dict[str, Any] | None, count: int | None = None) -> L:
    """A list from the sweep: its count (``count``: a fresher one from the counters), the
    first :data:`LIST_LIMIT` entries, and whether it was cut; built as stored, unchecked."""
    found = found or {"count": 0, "items": []}
    total = found["count"] if count is None else count
    items = [kind.entry.model_construct(**entry) for entry in found["items"][:LIST_LIMIT]]
    return kind.model_construct(**{k: v for k, v in found.items() if k not in {"count", "items"}},
                                count=total, items=items, truncated=total > len(items))


class ProductCounts(Answer):
    total: Count
    with_images: Count
    without_images: Count


class ReferenceCounts(Answer):
    """Products' image references by kind, from the counters kept with every write."""

    total: Count
    stored: Count
    local_filesystem: Count
    external: Count


class TempCounts(Answer):
    total: Count
    pending: Count
    expired: Count


class ProductsStatus(Answer):
    """Is every product photo safe? Counts from the counters, lists from the last sweep."""

    # The answer adds the report's ``report`` and ``sweep`` blocks (avenue/status/__init__.py;
    # the document's allOf with Report): its schema leaves room for them.
    model_config = ConfigDict(extra="ignore")

    generated_at: Annotated[str | None, TIME]
    products: ProductCounts
    references: ReferenceCounts
    missing_files: Annotated[MissingFiles, Field(
        description="References to stored images whose bytes are gone.")]
    local_filesystem: Annotated[References, Field(
        description="References still naming the old local uploads/ folder.")]
    external: Annotated[References, Field(description="References to images outside Avenue (URLs).")]
    temp_images: TempCounts
    orphans: Annotated[Orphans, Field(
        description="Stored product images no product names (gc's candidates), with their bytes and how many "
                    "an old uploads/ path still redirects to.")]
    missing_variants: Annotated[MissingVariantsList, Field(
        description="Originals one of whose listed variants is gone.")]
    stored_images: Count
    safe: Annotated[bool | None, Field(
        description="Every product photo's bytes and variants are in MongoDB (external URLs are reported, "
                    "not ours to lose); null until the first sweep finished.")]


def products_status(db: Database[Document], swept: dict[str, Any] | None,
                    moment: dt.datetime | None = None) -> dict[str, Any]:
    """Counts and lists that answer "is every product photo safe?" (``swept``: the last sweep's
    result, None before the first one finished)."""
    moment = moment or now()
    figures = counters.product_counters(db)
    bucket = Figures(db).counters()[Buckets.PRODUCTS]
    swept = swept or {}
    missing = _listing(MissingFiles, swept.get("missing_files"))
    missing_variants = _listing(MissingVariantsList, swept.get("missing_variants"))
    # Safe: every reference has its bytes (and variants) in MongoDB. External URLs are not
    # ours to lose, so they are reported but do not make the report unsafe. Before the first
    # sweep nobody knows yet: None.
    if figures["local_filesystem"] or missing.count or missing_variants.count:
        safe: bool | None = False
    else:
        safe = True if swept else None
    return ProductsStatus(
        generated_at=isoformat(moment),
        products=ProductCounts(total=figures["products"], with_images=figures["with_images"],
                               without_images=figures["products"] - figures["with_images"]),
        references=ReferenceCounts(total=figures["references"], stored=figures["stored"],
                                   local_filesystem=figures["local_filesystem"],
                                   external=figures["external"]),
        missing_files=missing,
        local_filesystem=_listing(References, swept.get("local_filesystem"), figures["local_filesystem"]),
        external=_listing(References, swept.get("external"), figures["external"]),
        temp_images=TempCounts(**Figures(db).temp_image_counts(moment)),
        orphans=_listing(Orphans, swept.get("orphans") or {"count": 0, "items": [], "bytes": 0,
                                                           "legacy_redirects": 0}),
        missing_variants=missing_variants,
        stored_images=bucket["originals"],
        safe=safe,
    ).answer()
