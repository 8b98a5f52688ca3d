"""Products (``shop_products``) and their images (GridFS ``temp_images`` and ``product_images_data``).

Consistency without transactions (GridFS cannot take part in one):

- Files are written before the product points at them, and a product's references are
  removed before its files: a crash in between leaves an unreferenced original in
  ``product_images_data`` (an orphan ``gc`` and products-status find), never a reference to
  nothing.
- Adding images is one conditional ``$push``: it only matches while the product has room
  (``images.<limit - n>`` does not exist) and holds none of the new ids, so two admins adding
  at once can neither lose each other's images nor pass the limit.
- Product images are content-addressed, so one file can be on several products. A file's
  bytes go only when no product references it. Deleting takes the media library's delete
  lease *before* counting references; adding goes through ``Library.claim``, which writes
  the reference *before* checking the file, waits for a lease to resolve and stores the
  bytes again if the file went (see avenue/media/store/library/). Temp images stay in their
  bucket until the product that claims them is saved, so there is always a source to store
  again from.
- Every product write that succeeded is counted once, right after it, with the product as it
  was and is (``status.record_product_change``): products-status answers from those counters.
  A crash in between is drift the status sweep's reconciliation corrects.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar

from bson import ObjectId
from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints, model_validator
from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from avenue.clock import isoformat, now
from avenue.db import PRODUCT_LIST, Document
from avenue.db import PRODUCTS as PRODUCTS_COLLECTION
from avenue.dialect import lister
from avenue.errors import BadRequest, Conflict, NotFound, UnprocessableContent
from avenue.ids import parse_object_id
from avenue.media import Alt, AppMedia, Buckets, Image, Library, Limits, Media, UrlSigner
from avenue.paging import Page, Window
from avenue.presentation.objects import image_object, near_objects, ref_object
from avenue.shapes import Answer, IfSet, ObjectIdText, Omittable, Refuse, Shape, described_by
from avenue.shop.references import ProductReferences
from avenue.status import product_counters, record_product_change

SKU_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_NAME_LENGTH = 200
LOCAL_PREFIX = Buckets.LEGACY_PREFIX
T = TypeVar("T")
RUN_IMPORT = "run `flask --app avenue import-legacy UPLOADS_DIR` first to move them into storage"


@dataclass(frozen=True)
class Settings:
    """What the shop needs from the app's configuration."""

    max_images: int
    temp_ttl_seconds: int
    limits: Limits


class ProductNotFound(NotFound):
    """The one answer for a sku that names no product."""

    code = "product_not_found"

    def __init__(self, sku: str) -> None:
        super().__init__(f"There is no product with sku {sku!r}.")


def products(db: Database[Document]) -> Collection[Document]:
    """The ``shop_products`` collection."""
    return db[PRODUCTS_COLLECTION]


def product_images(media: AppMedia) -> Library:
    """The bucket of the images products use."""
    return media.library(Buckets.PRODUCTS)


def temp_images(media: AppMedia) -> Library:
    """The bucket of photos uploaded before their product is saved."""
    return media.library(Buckets.TEMP)


# --- rendering -------------------------------------------------------------------------


def legacy_source(entry: str) -> str:
    """Where a legacy (plain string) image entry points: the old local disk or elsewhere."""
    return "local_filesystem" if entry.startswith(LOCAL_PREFIX) else "external"


def image_entry(entry: str | dict[str, Any], signer: UrlSigner, **extra: Any) -> dict[str, Any]:
    """A product's image entry as the API shows it (legacy strings as they are, flagged);
    ``extra``: the image object's further fields (its ``near_duplicates``, ``also_on``)."""
    if isinstance(entry, str):
        return LegacyImage(legacy=True, url=entry, source=legacy_source(entry)).answer()
    return ref_object(entry, Buckets.PRODUCTS, signer, **extra)


@dataclass(frozen=True)
class AddedImages:
    """What :func:`add_images` did: the product as updated, the references added (images
    the product already had are not added twice), and each stored image's look-alikes among
    the product images (found by the store, as for a library upload; None: the lookup did
    not answer in time), by image id."""

    product: dict[str, Any]
    refs: list[dict[str, Any]]
    near: dict[ObjectId, Sequence[Library.Near] | None]

    def entries(self, signer: UrlSigner) -> list[dict[str, Any]]:
        """The images added as the answer shows them: each one's entry and
        ``near_duplicates``, the product images that look like it (nearest first; as a
        library upload's answer names them; left out when the lookup did not answer in time)."""
        answered = []
        for ref in self.refs:
            found = self.near.get(ref["id"], ())
            answered.append(image_entry(ref, signer, near_duplicates=near_objects(found, signer)
                                        if found is not None else None))
        return answered


class MissingPhotoAlt(Alt.Missing):
    """A product's photo without alt text, with alt texts suggested for it."""

    position: Annotated[int, Field(ge=1, description="1: the main photo.")]


class LegacyImage(Answer):
    """An old /uploads/... reference not imported yet (see import-legacy)."""

    model_config = ConfigDict(extra="ignore")

    legacy: Literal[True]
    url: str
    source: IfSet[str | None] = None


#: A product's image in its answer: an image object (avenue/presentation/objects.py), or an old
#: /uploads/... reference not imported yet; both described in the document's components.
ProductImage = Annotated[dict[str, Any], described_by("Image", "LegacyImage")]


class Product(Answer):
    """The API's product."""

    sku: str
    name: str | None
    price: int | float | None
    images: list[ProductImage]
    legacy_images: Annotated[int, Field(ge=0)]
    created_at: Annotated[str | None, Field(json_schema_extra={"format": "date-time"})]
    updated_at: Annotated[str | None, Field(json_schema_extra={"format": "date-time"})]


def product_object(doc: dict[str, Any], signer: UrlSigner, *,
                   also_on: dict[ObjectId, set[str]] | None = None) -> dict[str, Any]:
    """The API's product: its images as image objects, the first one the primary; with
    ``also_on`` (:func:`photo_users`), each photo names the other products that use it."""
    images = [image_entry(entry, signer, also_on=sorted(also_on.get(entry["id"], set()) - {doc["sku"]})
                          if also_on is not None and isinstance(entry, dict) and "id" in entry else None)
              for entry in doc.get("images") or []]
    name = doc.get("name")  # a document loaded behind the API's back may hold anything
    return Product(sku=doc["sku"], name=name if isinstance(name, str) else None,
                   price=_shown_price(doc.get("price")), images=images,
                   legacy_images=sum(1 for entry in doc.get("images") or [] if isinstance(entry, str)),
                   created_at=isoformat(doc.get("created_at")),
                   updated_at=isoformat(doc.get("updated_at"))).answer()


def photo_users(db: Database[Document], doc: dict[str, Any]) -> dict[ObjectId, set[str]]:
    """Which products use each of this product's photos (a deduplicated photo is shared): the
    products' own answer, :class:`ProductReferences`, one indexed query per 50 photos."""
    ids = [entry["id"] for entry in doc.get("images") or [] if isinstance(entry, dict) and "id" in entry]
    found: dict[ObjectId, set[str]] = {}
    for start in range(0, len(ids), Media.IN_BATCH):
        found.update(ProductReferences(db).users(ids[start:start + Media.IN_BATCH]))
    return found


def temp_object(image: Image, signer: UrlSigner) -> dict[str, Any]:
    """A temp image: the image object with its ``expires_at``."""
    return image_object(image, signer)


# --- input -----------------------------------------------------------------------------


MAX_PRICE = 10**12
NAME_RULE = f"name must be a non-empty string of at most {MAX_NAME_LENGTH} characters."
PRICE_RULE = f"price must be a number from 0 to {MAX_PRICE:,}."
SKU_RULE = "sku must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."
#: A product's name as stored: trimmed, then 1 to MAX_NAME_LENGTH characters.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_LENGTH),
                 Refuse("invalid_name", NAME_RULE)]
#: A price: a JSON number (an integer stays one), finite, 0 to MAX_PRICE.
Price = Annotated[Annotated[int, Field(ge=0, le=MAX_PRICE)]
                  | Annotated[float, Field(ge=0, le=MAX_PRICE, allow_inf_nan=False)],
                  Refuse("invalid_price", PRICE_RULE)]


class NewProduct(Shape):
    """A product to create; ``temp_image_ids`` (temp images of the caller's) become its images,
    in order. Fields it does not name are left aside."""

    model_config = ConfigDict(extra="ignore")

    sku: Annotated[str, Field(pattern=f"^{SKU_PATTERN.pattern}$"), Refuse("invalid_sku", SKU_RULE)]
    name: Name
    price: Price
    temp_image_ids: Annotated[list[ObjectIdText] | None, BeforeValidator(lambda ids: ids or None),
                              Refuse("invalid_temp_image_ids", "temp_image_ids must be a list of id strings.")
                              ] = None


class ProductChange(Shape):
    """A product's new name and/or price (nothing else changes here)."""

    refusal = Refuse("invalid_fields", "Only name and price can be changed here.")
    unknown_key = "fields"

    name: Omittable[Name] = None
    price: Omittable[Price] = None

    @model_validator(mode="after")
    def _something(self) -> ProductChange:
        if not self.model_fields_set:
            raise BadRequest("Send name and/or price.", code="nothing_to_change")
        return self


def _shown_price(value: object) -> int | float | None:
    """A stored price as JSON can carry it: its number (an old non-finite one, or a value that is
    not a number, shows as null)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


# --- products --------------------------------------------------------------------------


def get_product(db: Database[Document], sku: str) -> dict[str, Any]:
    """The product document, or a 404."""
    doc = products(db).find_one({"sku": sku})
    if doc is None:
        raise ProductNotFound(sku)
    return doc


def list_products(db: Database[Document], window: Window) -> Page:
    """One page of products by sku (avenue/paging.py: by cursor or bounded offset)."""
    # The product counters once a reconciliation has counted them (a shop's products from
    # before the counters, or loaded behind the app's back, are only in them from then on).
    counters = product_counters(db)
    total = counters["products"] if counters["reconciled_at"] is not None else None
    return lister(db)(products(db), PRODUCT_LIST.query, PRODUCT_LIST.sort, window, index=PRODUCT_LIST.index,
                      total=total)


def update_product(db: Database[Document], sku: str, change: ProductChange) -> dict[str, Any]:
    """Change a product's name and/or price."""
    changes = change.model_dump(include=change.model_fields_set)
    doc = products(db).find_one_and_update({"sku": sku}, {"$set": {**changes, "updated_at": now()}},
                                           return_document=ReturnDocument.AFTER)
    if doc is None:
        raise ProductNotFound(sku)
    return doc


def _claimable(media: AppMedia, raw_ids: list[str], owner: str, max_images: int) -> list[Image]:
    """The temp images ``raw_ids`` names, in order, or a 422 naming every unusable id."""
    if len(raw_ids) > max_images:
        raise UnprocessableContent(f"A product holds at most {max_images} images; {len(raw_ids)} "
                                   "temp images were given.", code="too_many_images", limit=max_images)
    duplicated = sorted(i for i, n in Counter(raw_ids).items() if n > 1)
    ids = [parse_object_id(i) for i in raw_ids]
    found = temp_images(media).get_many(i for i in ids if i)
    claimed = product_images(media).existing_ids(i for i in ids if i and i not in found)
    moment = now()
    unknown, expired, taken = [], [], []
    for raw, oid in zip(raw_ids, ids, strict=True):
        image = found.get(oid) if oid else None
        if oid in claimed:
            taken.append(raw)
        elif image is None or image.owner != owner:
            # Another admin's temp image counts as unknown: its id says nothing to this one.
            unknown.append(raw)
        elif (image.expires_at or moment) <= moment:
            expired.append(raw)
    problems = {k: v for k, v in (("unknown", unknown), ("expired", expired),
                                  ("already_claimed", taken), ("duplicated", duplicated)) if v}
    if problems:
        named = "; ".join(f"{kind.replace('_', ' ')}: {', '.join(values)}"
                          for kind, values in problems.items())
        raise UnprocessableContent(f"These temp images cannot be used ({named}); nothing was created.",
                                   code="invalid_temp_images", **problems)
    return [found[oid] for oid in ids if oid]


@dataclass(frozen=True)
class _ProductClaim(Generic[T]):
    """One product's side of ``Library.claim``: ``write`` attaches the claimed images; an
    image created for a write that failed goes if nothing refers to it; an image deleted
    under the claim is replaced on this product alone."""

    media: AppMedia
    sku: str
    write: Callable[[list[Library.Stored]], tuple[T, list[Image]]]

    def attach(self, stored: list[Library.Stored]) -> tuple[T, list[Image]]:
        return self.write(stored)

    def release(self, image: Image) -> object:
        return delete_unreferenced(self.media, image.id)

    def repoint(self, old: Image, new: Image) -> None:
        ProductReferences(self.media.db).repoint(old.id, new, within=self.sku)


def create_product(media: AppMedia, new: NewProduct, *, owner: str,
                   settings: Settings) -> dict[str, Any]:
    """Create a product; its temp images (in the given order) become its first images.

    Everything is checked before anything is written. The temp images are copied first and
    the product inserted last, with its references, so a crash in between leaves only
    unreferenced product files (orphans ``gc`` collects) and the temp images, which expire.
    """
    db = media.db
    sku, name, price = new.sku, new.name, new.price
    temps = _claimable(media, new.temp_image_ids or [], owner, settings.max_images)
    if products(db).find_one({"sku": sku}, {"_id": 1}) is not None:
        raise Conflict(f"A product with sku {sku!r} already exists.", code="sku_taken")

    def insert(stored: list[Library.Stored]) -> tuple[dict[str, Any], list[Image]]:
        images = _unique([item.image for item in stored])
        moment = now()
        doc = {"sku": sku, "name": name, "price": price, "images": [image.ref() for image in images],
               "created_at": moment, "updated_at": moment}
        try:
            products(db).insert_one(doc)
        except DuplicateKeyError:
            # Lost a race for the sku after the check above (claim gives back what it created).
            raise Conflict(f"A product with sku {sku!r} already exists.", code="sku_taken") from None
        record_product_change(db, None, doc)
        return doc, images

    doc, replaced = product_images(media).claim(temps, _ProductClaim(media, sku, insert), kind="product",
                                                owner=owner, limits=settings.limits)
    return get_product(db, sku) if replaced else doc


def delete_product(media: AppMedia, sku: str) -> dict[str, Any]:
    """Delete a product, then every image file no other product uses.

    The images' delete leases are taken first: an image being replaced answers 409 before
    anything changes (deleting the product and then finding that out left its files
    unreferenced and out of the trash)."""
    db = media.db
    doc = get_product(db, sku)
    leases = _take_delete_leases(media, stored_ids(doc))
    try:
        deleted = products(db).find_one_and_delete({"sku": sku})
    except BaseException:
        _release_delete_leases(media, leases)
        raise
    if deleted is None:
        _release_delete_leases(media, leases)
        raise ProductNotFound(sku)
    record_product_change(db, deleted, None)
    for lease in leases:
        _delete_if_unreferenced(media, lease, trashed_from=sku)
    return deleted


def _take_delete_leases(media: AppMedia, image_ids: list[ObjectId]) -> list[Library.DeleteLease]:
    """The delete lease of each of ``image_ids`` that exists and no other delete holds; all
    given back, and :class:`ImageBusy` (409) raised, when one of them is being replaced."""
    library = product_images(media)
    leases: list[Library.DeleteLease] = []
    try:
        for image_id in dict.fromkeys(image_ids):
            lease = library.take_delete_lease(image_id)
            if lease is not None:
                leases.append(lease)
    except BaseException:
        _release_delete_leases(media, leases)
        raise
    return leases


def _release_delete_leases(media: AppMedia, leases: list[Library.DeleteLease]) -> None:
    library = product_images(media)
    for lease in leases:
        library.release_delete_lease(lease)


# --- temp images -----------------------------------------------------------------------


def store_temp_images(media: AppMedia, uploads: list[Library.Upload], *, owner: str,
                      settings: Settings) -> list[Image]:
    """Store uploads in ``temp_images`` (all or nothing) with an expiry.

    Scoped per admin, so two admins' identical uploads are independent. Sending the same
    bytes again returns the existing temp image with a fresh expiry.
    """
    if len(uploads) > settings.max_images:
        raise UnprocessableContent(f"A product holds at most {settings.max_images} images; "
                                   f"{len(uploads)} were sent.", code="too_many_images",
                                   limit=settings.max_images)
    expires_at = now() + dt.timedelta(seconds=settings.temp_ttl_seconds)
    library = temp_images(media)
    results = library.store_many(uploads, owner=owner, kind="temp", scope=owner, limits=settings.limits,
                                 expires_at=expires_at)
    return [result.image if result.created
            else library.set_metadata(result.image.id, expires_at=expires_at) or result.image
            for result in results]


# --- product images --------------------------------------------------------------------


def _unique(images: list[Image]) -> list[Image]:
    """Each image once, in first-seen order (identical uploads store one file)."""
    seen: dict[ObjectId, Image] = {}
    for image in images:
        seen.setdefault(image.id, image)
    return list(seen.values())


def stored_ids(doc: dict[str, Any]) -> list[ObjectId]:
    """The ids of a product's stored (non-legacy) images, in order."""
    return [entry["id"] for entry in doc.get("images") or [] if isinstance(entry, dict) and "id" in entry]


def _too_many(sku: str, have: int, adding: int, limit: int) -> UnprocessableContent:
    return UnprocessableContent(
        f"Product {sku} has {have} image(s); adding {adding} would pass the limit of {limit}. "
        "Nothing was stored.", code="too_many_images", limit=limit, current=have, sent=adding)


def add_images(media: AppMedia, sku: str, uploads: list[Library.Upload], *, owner: str,
               settings: Settings, add_only: bool = False) -> AddedImages:
    """Store uploads (all or nothing) and append them to the product within its limit.

    ``add_only`` (an upload link's files): bytes that sit in the trash are stored as a new
    image; the trashed one stays there.
    """
    db = media.db
    limit = settings.max_images
    doc = get_product(db, sku)
    have = len(doc.get("images") or [])
    if have + len(uploads) > limit:
        raise _too_many(sku, have, len(uploads), limit)
    near: dict[ObjectId, Sequence[Library.Near] | None] = {}

    def push(stored: list[Library.Stored]) -> tuple[tuple[dict[str, Any], list[dict[str, Any]]], list[Image]]:
        near.update((item.image.id, item.near) for item in stored)
        images = _unique([item.image for item in stored])
        updated, added = _push_refs(db, sku, [image.ref() for image in images], limit)
        added_ids = {ref["id"] for ref in added}
        return (updated, added), [image for image in images if image.id in added_ids]

    (updated, added), replaced = product_images(media).claim(
        uploads, _ProductClaim(media, sku, push), kind="product", owner=owner, limits=settings.limits,
        revive=not add_only)
    if replaced:
        updated = get_product(db, sku)
        added = [replaced[ref["id"]].ref() if ref["id"] in replaced else ref for ref in added]
    return AddedImages(updated, added, near)


def check_room(db: Database[Document], sku: str, adding: int, limit: int) -> dict[str, Any]:
    """The product, if it exists and has room for ``adding`` more images (404 / 422 if not)."""
    doc = get_product(db, sku)
    have = len(doc.get("images") or [])
    if have + adding > limit:
        raise _too_many(sku, have, adding, limit)
    return doc


def attach_image(db: Database[Document], sku: str, image: Image, limit: int) -> dict[str, Any]:
    """Put a stored product image back at the end of the product's list (a restore from the
    trash); the product as updated."""
    return _push_refs(db, sku, [image.ref()], limit)[0]


def _push_refs(db: Database[Document], sku: str, refs: list[dict[str, Any]],
               limit: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Append the refs the product does not have yet, atomically within ``limit``."""
    for _ in range(5):
        doc = get_product(db, sku)
        present = set(stored_ids(doc))
        new = [ref for ref in refs if ref["id"] not in present]
        have = len(doc.get("images") or [])
        if not new:
            return doc, []
        if have + len(new) > limit:
            raise _too_many(sku, have, len(new), limit)
        updated = products(db).find_one_and_update(
            # Matches only while there is room for all of them and none is there yet.
            {"sku": sku, f"images.{limit - len(new)}": {"$exists": False},
             "images.id": {"$nin": [ref["id"] for ref in new]}},
            {"$push": {"images": {"$each": new}}, "$set": {"updated_at": now()}},
            return_document=ReturnDocument.AFTER,
        )
        if updated is not None:
            # $push appended exactly ``new`` to what was there, so that is the product before.
            added = {ref["id"] for ref in new}
            before = {**updated, "images": [entry for entry in updated.get("images") or []
                                            if not (isinstance(entry, dict) and entry.get("id") in added)]}
            record_product_change(db, before, updated)
            return updated, new
    raise Conflict(f"Product {sku}'s images keep changing; try again.", code="concurrent_change")


def delete_unreferenced(media: AppMedia, file_id: ObjectId, *,
                        trashed_from: str | None = None) -> bool:
    """Delete a product file (and its variants) if no product references it any more; into
    the trash when it was taken off product ``trashed_from`` (restorable back onto it).

    Takes the delete lease before counting references, so a concurrent add that reuses the
    same bytes either is counted here or sees the lease (see ``Library.claim``).
    """
    lease = product_images(media).take_delete_lease(file_id)
    if lease is None:
        return False  # gone already, or someone else is deleting it
    return _delete_if_unreferenced(media, lease, trashed_from=trashed_from)


def _delete_if_unreferenced(media: AppMedia, lease: Library.DeleteLease, *, trashed_from: str | None) -> bool:
    """With ``lease`` held: delete the file when no product references it, else give the
    lease back."""
    db = media.db
    library = product_images(media)
    if products(db).find_one({"images.id": lease.image.id}, {"_id": 1}) is not None:
        library.release_delete_lease(lease)
        return False
    return library.delete(lease.image, to_trash=None if trashed_from is None else {"sku": trashed_from})



def _no_image(sku: str, image_id: object, hint: str = "") -> NotFound:
    """The 404 of an image that is not the product's (``hint``: what to do instead)."""
    return NotFound(f"Product {sku} has no image {image_id}.{hint}", code="image_not_found")

def delete_product_image(media: AppMedia, sku: str, image_id: ObjectId) -> dict[str, Any]:
    """Take one image off a product; its file goes when no other product uses it."""
    db = media.db
    doc = get_product(db, sku)
    oid = image_id
    if oid not in stored_ids(doc):
        has_legacy = any(isinstance(entry, str) for entry in doc.get("images") or [])
        hint = f" Its legacy images have no id: {RUN_IMPORT}." if has_legacy else ""
        raise _no_image(sku, image_id, hint)
    # The delete lease first: an image being replaced answers 409 before the reference is
    # taken off (taken off first, the file was left unreferenced and out of the trash).
    leases = _take_delete_leases(media, [oid])
    moment = now()
    try:
        before = products(db).find_one_and_update(
            {"sku": sku}, {"$pull": {"images": {"id": oid}}, "$set": {"updated_at": moment}},
            return_document=ReturnDocument.BEFORE)
    except BaseException:
        _release_delete_leases(media, leases)
        raise
    if before is None:
        _release_delete_leases(media, leases)
        raise ProductNotFound(sku)
    # The document after the $pull, built from the one before it (exact: the update is atomic).
    updated = {**before, "updated_at": moment,
               "images": [entry for entry in before.get("images") or []
                          if not (isinstance(entry, dict) and entry.get("id") == oid)]}
    record_product_change(db, before, updated)
    for lease in leases:
        _delete_if_unreferenced(media, lease, trashed_from=sku)
    return updated


def replace_product_image(media: AppMedia, sku: str, image_id: ObjectId, *,
                          file: Library.Upload | None = None, focal: Library.FocalPoint | None = None,
                          limits: Limits) -> dict[str, Any]:
    """New bytes (``file``) or a new focal point for one of a product's images, keeping its id
    and its place (avenue/media/store/replace.py); every product using it gets the new reference.
    Returns the product."""
    db = media.db
    doc = get_product(db, sku)
    if image_id not in stored_ids(doc):
        raise _no_image(sku, image_id)
    done = product_images(media).replace(image_id, file, focal=focal, limits=limits, refs={"sku": sku})
    if done is None:
        raise _no_image(sku, image_id)
    if done.changed:
        _refresh_refs(db, image_id, done.image)
    return get_product(db, sku)


def _refresh_refs(db: Database[Document], image_id: ObjectId, image: Image) -> None:
    """Every product using ``image_id`` gets the reference of its new version."""
    moment = now()
    for user in products(db).find({"images.id": image_id}, {"_id": 1, "images": 1}):
        old = next(e for e in user["images"] if isinstance(e, dict) and e.get("id") == image_id)
        # The product's own fields on its reference stay (its alt text too); what describes the
        # bytes is new. The edits, named crops and readable name are the image's: a reference
        # without them has none.
        fresh = {k: v for k, v in old.items() if k not in ("edits", "crops", "name")}
        own_alt = {"alt": old["alt"]} if old.get("alt") else {}
        products(db).update_one({"_id": user["_id"], "images.id": image_id},
                                {"$set": {"images.$": {**fresh, **image.ref(), **own_alt},
                                          "updated_at": moment}})


def _product_photo(db: Database[Document], sku: str, image_id: ObjectId) -> None:
    """404 unless the product ``sku`` has the photo ``image_id``."""
    if image_id not in stored_ids(get_product(db, sku)):
        raise _no_image(sku, image_id)


def product_image_near_duplicates(media: AppMedia, sku: str, image_id: ObjectId) -> list[Library.Near]:
    """The product photos (of any product) that look like the photo ``image_id`` of ``sku``,
    nearest first: what its upload's answer names, asked again when that answer's lookup was
    late and left them out (the console does). 404 unless the product has the photo."""
    db = media.db
    _product_photo(db, sku, image_id)
    library = product_images(media)
    image = library.get(image_id)
    if image is None:  # deleted between the two reads
        raise _no_image(sku, image_id)
    return library.near_duplicates(image)


def edit_product_image(media: AppMedia, sku: str, image_id: ObjectId,
                       edits: Library.Edits | None) -> tuple[dict[str, Any], bool]:
    """Apply ``edits`` (None: undo) to one of a product's photos as a new version; every
    product using it gets the new reference. Returns the photo's reference and whether it changed."""
    db = media.db
    _product_photo(db, sku, image_id)
    done = product_images(media).edit(image_id, edits, refs={"sku": sku})
    return _photo_changed(db, sku, image_id, done)


def set_product_image_crop(media: AppMedia, sku: str, image_id: ObjectId, name: str,
                           box: Library.Box | None) -> tuple[dict[str, Any], bool]:
    """Set (``box``) or delete (None) the named crop ``name`` of one of a product's photos."""
    db = media.db
    _product_photo(db, sku, image_id)
    done = product_images(media).set_crop(image_id, name, box, refs={"sku": sku})
    return _photo_changed(db, sku, image_id, done)


def _photo_changed(db: Database[Document], sku: str, image_id: ObjectId,
                   done: Library.Changed | None) -> tuple[dict[str, Any], bool]:
    if done is None:
        raise _no_image(sku, image_id)
    if done.changed:
        _refresh_refs(db, image_id, done.image)
    return done.image.ref(), done.changed


def product_image_versions(media: AppMedia, sku: str, image_id: ObjectId) -> list[Library.Version]:
    """A product photo's current version and its earlier ones still kept, newest first."""
    db = media.db
    _product_photo(db, sku, image_id)
    listed = product_images(media).versions(image_id)
    if listed is None:
        raise _no_image(sku, image_id)
    return listed


def restore_product_image_version(media: AppMedia, sku: str, image_id: ObjectId, version_id: str, *,
                                  limits: Limits) -> tuple[dict[str, Any], bool]:
    """Make an earlier version of a product photo current again, as a new version; every product
    using it gets the new reference. Returns the photo's reference and whether it changed."""
    db = media.db
    _product_photo(db, sku, image_id)
    done = product_images(media).restore_version(image_id, version_id, limits=limits, refs={"sku": sku})
    return _photo_changed(db, sku, image_id, done)


def product_image_version_preview(media: AppMedia, sku: str, image_id: ObjectId,
                                  version_id: str) -> bytes:
    """A small WebP of one version of a product photo."""
    db = media.db
    _product_photo(db, sku, image_id)
    data = product_images(media).version_preview(image_id, version_id)
    if data is None:
        raise _no_image(sku, image_id)
    return data


def compare_product_image_versions(media: AppMedia, sku: str, image_id: ObjectId, before: str,
                                   after: str) -> tuple[Library.Comparison, bytes]:
    """The share of pixels changed between two versions of a product photo, and the heat map."""
    db = media.db
    _product_photo(db, sku, image_id)
    compared = product_images(media).compare_versions(image_id, before, after)
    if compared is None:
        raise _no_image(sku, image_id)
    return compared


def rename_product_image(media: AppMedia, sku: str, image_id: ObjectId,
                         name: str | None) -> tuple[dict[str, Any], bool]:
    """Give one of a product's photos a readable name for its public named URL (None: none):
    the image's, so every product using it gets the new reference."""
    db = media.db
    _product_photo(db, sku, image_id)
    done = product_images(media).rename(image_id, name)
    return _photo_changed(db, sku, image_id, done)


class ImageOrder(Shape):
    """The product's image ids in their new order (a permutation of its ids); fields it does
    not name are left aside."""

    model_config = ConfigDict(extra="ignore")

    image_ids: Annotated[list[str], Refuse(
        "invalid_image_ids", "Send image_ids: a list of the product's image ids in the new order.")]


def reorder_images(db: Database[Document], sku: str, order: ImageOrder,
                   load: Callable[[Database[Document], str], dict[str, Any]] = get_product) -> dict[str, Any]:
    """Put the product's images in the order of ``order.image_ids`` (a permutation of its ids).

    Compare-and-set: the write only applies if the images are still what was read, so a
    concurrent add or delete is never undone; then it answers 409.
    """
    raw = order.image_ids
    doc = load(db, sku)
    images = doc.get("images") or []
    legacy = [entry for entry in images if isinstance(entry, str)]
    if legacy:
        raise Conflict(f"Product {sku} still has {len(legacy)} legacy image(s) that cannot be "
                       f"ordered by id; {RUN_IMPORT}.", code="legacy_images", legacy=legacy)
    by_id = {str(entry["id"]): entry for entry in images}
    if len(raw) != len(by_id):
        # Refused by its length alone: a hostile list of thousands of ids is neither walked
        # nor echoed back.
        raise UnprocessableContent(
            f"image_ids must list each of the product's {len(by_id)} images exactly once; "
            f"{len(raw)} ids were given.", code="invalid_order", expected=len(by_id), given=len(raw))
    counts = Counter(raw)  # linear: one pass
    unknown = [i for i in raw if i not in by_id]
    missing = [i for i in by_id if i not in counts]
    if unknown or missing or len(raw) != len(by_id):
        raise UnprocessableContent(
            "image_ids must list each of the product's images exactly once.", code="invalid_order",
            unknown=unknown, missing=missing, duplicated=sorted(i for i, n in counts.items() if n > 1))
    updated = products(db).find_one_and_update(
        {"sku": sku, "images": images},
        {"$set": {"images": [by_id[i] for i in raw], "updated_at": now()}},
        return_document=ReturnDocument.AFTER)
    if updated is None:
        raise Conflict(f"Product {sku}'s images changed while reordering; reload and try again.",
                       code="concurrent_change")
    return updated


# --- alt text ----------------------------------------------------------------------------


def _photo_context(doc: dict[str, Any], ref: dict[str, Any], position: int) -> Alt.Context:
    """What the product knows about its photo at ``position`` (1 = the main photo)."""
    placeholder = ref.get("placeholder") or {}
    return Alt.Context(filename=str(ref.get("filename") or ""), colour=placeholder.get("color"),
                       title=doc.get("name") if isinstance(doc.get("name"), str) else None,
                       sku=doc["sku"], position=position)


def photo_suggestions(doc: dict[str, Any], ref: dict[str, Any], position: int) -> list[str]:
    """Alt texts suggested for a product photo (avenue/media/ingest/alttext.py)."""
    return Alt.suggest(_photo_context(doc, ref, position))


def _photos(doc: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The product's stored photos with their positions (legacy entries count as places)."""
    entries = enumerate(doc.get("images") or [], start=1)
    return [(n, e) for n, e in entries if isinstance(e, dict) and "id" in e]


def missing_alt(db: Database[Document], sku: str, window: Window) -> Page:
    """The product's photos without alt text, in their order, numbered pages (a product holds
    few): each ``{"ref", "position", "suggestions"}``."""
    if window.after is not None:
        raise BadRequest("This list has numbered pages (page, per_page).", code="invalid_pagination")
    doc = get_product(db, sku)
    missing = [{"ref": ref, "position": n, "suggestions": photo_suggestions(doc, ref, n)}
               for n, ref in _photos(doc) if not ref.get("alt")]
    start = (window.page - 1) * window.per_page
    return Page(missing[start:start + window.per_page], len(missing), True, None)


def set_alt_texts(db: Database[Document], sku: str, changes: list[Alt.Change]) -> list[Alt.Result]:
    """Set the alt text of many of the product's photos, each the text given or the suggestion
    accepted; what happened to each (``set``, ``unchanged``, ``not_found``: not this product's
    photo, ``no_suggestion``). The alt text is the product's, on its reference: a photo shared
    by two products may read differently on each. Each write is conditional on the photo
    still being on the product."""
    doc = get_product(db, sku)
    photos = {ref["id"]: (n, ref) for n, ref in _photos(doc)}
    results: list[Alt.Result] = []
    for change in changes:
        oid = parse_object_id(change.id)
        found = photos.get(oid) if oid is not None else None
        if found is None:
            results.append(Alt.Result(id=change.id, status="not_found"))
            continue
        position, ref = found
        alt = Alt.chosen(change, photo_suggestions(doc, ref, position))
        if alt is None:
            results.append(Alt.Result(id=change.id, status="no_suggestion"))
            continue
        if (ref.get("alt") or "") == alt:
            results.append(Alt.Result(id=change.id, status="unchanged", alt=alt or None))
            continue
        update = {"$set": {"images.$.alt": alt, "updated_at": now()}} if alt else \
            {"$unset": {"images.$.alt": ""}, "$set": {"updated_at": now()}}
        written = products(db).update_one({"sku": sku, "images.id": oid}, update)
        if written.matched_count:
            results.append(Alt.Result(id=change.id, status="set", alt=alt or None))
        else:  # taken off the product since it was read
            results.append(Alt.Result(id=change.id, status="not_found"))
    return results
