"""Products as referrers: the shop's answer to "which products use this image?".

The shop owns ``shop_products``; nothing outside this package reads it. Everyone else who
needs a product's references (the library's claim, the status sweep, gc, fsck, placeholders,
backup) asks :class:`ProductReferences` through the owners the app factory hands the app's
media core (``Media.referrers``, :mod:`avenue.media.references`). Every write here that
changes a product's images is counted right after it (``record_product_change``), as the
service's own writes are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database

from avenue.clock import now
from avenue.db import PRODUCT_LIST, Document
from avenue.db import PRODUCTS as PRODUCTS_COLLECTION
from avenue.dialect import dialect_of
from avenue.embedded.fences import walk_fenced
from avenue.ids import parse_object_id
from avenue.media import Buckets, Image, Media
from avenue.status import record_product_change

ID_INDEX = [("_id", 1)]


def _stored_id(entry: Any, text_ids: bool) -> Any:
    """A reference's image id (as an ObjectId when stored as its string and ``text_ids``)."""
    if not isinstance(entry, dict) or "id" not in entry:
        return None
    value = entry["id"]
    return parse_object_id(value) if text_ids and isinstance(value, str) else value



def with_own_alt(ref: dict[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """``ref`` (what an image says of itself) with the product's own alt text of ``entry``,
    when it has one: a product photo's alt text is the product's (shop/service.py), and no
    image's own alt or change of image replaces it."""
    return {**ref, "alt": entry["alt"]} if entry.get("alt") else ref

class ProductReferences:
    """The images of the products bucket that products refer to (``images[].id``)."""

    kind = "products"
    bucket = Buckets.PRODUCTS
    collections = (PRODUCTS_COLLECTION,)

    def __init__(self, db: Database[Document]) -> None:
        self.db = db

    @property
    def _products(self) -> Collection[Document]:
        return self.db[PRODUCTS_COLLECTION]

    def users(self, image_ids: Sequence[ObjectId], *, text_ids: bool = False) -> dict[ObjectId, set[str]]:
        wanted = list(dict.fromkeys(image_ids))
        if not wanted:
            return {}
        asked = wanted + [str(i) for i in wanted] if text_ids else wanted
        found: dict[ObjectId, set[str]] = {}
        for product in self._products.find({"images.id": {"$in": asked}}, {"sku": 1, "images": 1}):
            for entry in product.get("images") or []:
                image_id = _stored_id(entry, text_ids)
                if image_id in wanted:
                    found.setdefault(image_id, set()).add(str(product.get("sku")))
        return found

    def repoint(self, old: ObjectId, new: Image, *, within: str | None = None) -> int:
        """Each product's reference to ``old`` becomes ``new``'s, the product's own alt text
        kept (one update per product: each may have its own; repoints are rare: gc,
        import-legacy, a claim that lost to a delete)."""
        query: dict[str, Any] = {"images.id": old} if within is None else {"sku": within, "images.id": old}
        repointed = 0
        for product in self._products.find(query, {"images": 1}):
            for entry in product.get("images") or []:
                if isinstance(entry, dict) and entry.get("id") == old:
                    held = {"$elemMatch": {"id": old, "alt": entry.get("alt")}}
                    repointed += self._products.update_one(
                        {"_id": product["_id"], "images": held},
                        {"$set": {"images.$": with_own_alt(new.ref(), entry)}}).modified_count
        return repointed

    def drop(self, image_id: ObjectId) -> list[str]:
        changed: list[str] = []
        for product in list(self._products.find({"images.id": image_id}, {"sku": 1})):
            moment = now()
            # By sku (its unique index), as every product write selects.
            before = self._products.find_one_and_update(
                {"sku": product["sku"], "images.id": image_id},
                {"$pull": {"images": {"id": image_id}}, "$set": {"updated_at": moment}},
                return_document=ReturnDocument.BEFORE)
            if before is None:
                continue  # changed meanwhile: the reference is gone already
            # The document after the $pull, built from the one before it (the update is atomic).
            after = {**before, "updated_at": moment,
                     "images": [entry for entry in before.get("images") or []
                                if not (isinstance(entry, dict) and entry.get("id") == image_id)]}
            record_product_change(self.db, before, after)
            changed.append(before["sku"])
        return changed

    def refresh(self, images: Sequence[Image]) -> int:
        heads = {image.id: image for image in images}
        if not heads:
            return 0
        repaired = 0
        asked = list(heads) + [str(i) for i in heads]
        for product in self._products.find({"images.id": {"$in": asked}}, {"images": 1}):
            for entry in product.get("images") or []:
                head = heads.get(_stored_id(entry, True))
                if head is not None and (entry.get("version") or None) != (head.version or None):
                    repaired += self._refresh_entry(product["_id"], entry, head)
        return repaired

    def _refresh_entry(self, product_id: Any, entry: dict[str, Any], head: Image) -> int:
        """A compare-and-set on the version ``entry`` holds; the product's own fields on its
        reference stay, what describes the bytes is the image's now (and its readable name: a
        name the image no longer has goes)."""
        held = {"$elemMatch": {"id": entry["id"], "version": entry.get("version")}}
        own = {key: value for key, value in entry.items() if key != "name"}
        done = self._products.update_one({"_id": product_id, "images": held},
                                         {"$set": {"images.$": with_own_alt({**own, **head.ref()}, entry)}})
        return done.modified_count

    def fill_placeholder(self, image_id: ObjectId, placeholder: Mapping[str, str]) -> int:
        result = self._products.update_many(
            {"images": {"$elemMatch": {"id": image_id, "placeholder": {"$exists": False}}}},
            {"$set": {"images.$.placeholder": dict(placeholder)}})
        return result.modified_count

    def lacking_placeholders(self, batch: int) -> Iterator[ObjectId]:
        lagging = self._products.find({"images": {"$elemMatch": {"id": {"$exists": True},
                                                                 "placeholder": {"$exists": False}}}},
                                      {"images": 1}).batch_size(batch)
        for product in lagging:
            for entry in product.get("images") or []:
                if isinstance(entry, dict) and "id" in entry and "placeholder" not in entry:
                    yield entry["id"]

    def walk(self, after: Any, batch: int) -> Iterator[dict[str, Any]]:
        if not dialect_of(self._products.database).whole_collection_reads:
            # By sku, a few hundred a read between the product list's fences: one cursor by
            # _id read all the products into its first batch on the embedded database (2.3 s for 12,525, every
            # request of make run waiting behind it; an _id range is a scan there, a sku range
            # an index range). Skus are validated strings (the API writes no other).
            for product in walk_fenced(self._products, "sku", {"sku": 1, "images": 1}, after,
                                       batch=batch, listed=PRODUCT_LIST):
                yield {"_id": product["_id"], "name": product.get("sku"), "images": product.get("images"),
                       "position": product.get("sku")}
            return
        # The hint: the embedded database's planner otherwise sorts the collection itself.
        query = {} if after is None else {"_id": {"$gt": after}}
        cursor = self._products.find(query, {"sku": 1, "images": 1}).sort("_id", 1).hint(ID_INDEX)
        try:
            for product in cursor.batch_size(batch):
                yield {"_id": product["_id"], "name": product.get("sku"), "images": product.get("images"),
                       "position": product["_id"]}
        finally:
            cursor.close()

    def rewrite(self, plan: Callable[[list[Any]], Any], *, dry_run: bool,
                progress: Callable[[int, int], None]) -> Iterator[tuple[dict[str, Any], Any]]:
        yield from Media.rewrite_lists(self._products, "images", "sku", plan, lambda images: {},
                                       dry_run=dry_run, progress=progress)
