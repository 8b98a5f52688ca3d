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
  bytes go only when no product references it. Deleting takes a short lease on the file
  (``metadata.deleting_at``) *before* counting references; adding pushes the reference
  *before* checking the file. Whatever the interleaving, either the deleter sees the new
  reference (and keeps the file) or the adder sees the lease, waits for it to resolve, and
  stores the bytes again if the file went.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic, sleep

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from avenue.clock import isoformat, maybe_utc, now
from avenue.errors import BadRequest, Conflict, NotFound, UnprocessableContent
from avenue.media import (
    PRODUCTS,
    TEMP,
    Limits,
    StoreResult,
    Upload,
    UrlSigner,
    delete_image,
    image_object,
    image_ref,
    ref_object,
    store,
    store_all,
    transfer,
)
from avenue.media.originals import dedupe_key
from avenue.media.storage import read_all

PRODUCTS_COLLECTION = "shop_products"
SKU_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_NAME_LENGTH = 200
LOCAL_PREFIX = "/uploads/"
# How long a deletion may hold its lease on a product file before others ignore it (a
# deleter that crashed mid-way); a live delete needs milliseconds.
DELETE_LEASE = dt.timedelta(seconds=60)
LEASE_WAIT_SECONDS = 5.0
RUN_IMPORT = "run `flask --app avenue import-legacy UPLOADS_DIR` first to move them into storage"


@dataclass(frozen=True)
class Settings:
    """What the shop needs from the app's configuration."""

    max_images: int
    temp_ttl_seconds: int
    limits: Limits


def products(db: Database):
    """The ``shop_products`` collection."""
    return db[PRODUCTS_COLLECTION]


# --- rendering -------------------------------------------------------------------------


def legacy_source(entry: str) -> str:
    """Where a legacy (plain string) image entry points: the old local disk or elsewhere."""
    return "local_filesystem" if entry.startswith(LOCAL_PREFIX) else "external"


def image_entry(entry, signer: UrlSigner) -> dict:
    """A product's image entry as the API shows it (legacy strings as they are, flagged)."""
    if isinstance(entry, str):
        return {"legacy": True, "url": entry, "source": legacy_source(entry)}
    return ref_object(entry, PRODUCTS, signer)


def product_object(doc: dict, signer: UrlSigner) -> dict:
    """The API's product: its images as image objects, the first one the primary."""
    images = [image_entry(entry, signer) for entry in doc.get("images") or []]
    return {
        "sku": doc["sku"],
        "name": doc.get("name"),
        "price": doc.get("price"),
        "images": images,
        "legacy_images": sum(1 for entry in doc.get("images") or [] if isinstance(entry, str)),
        "created_at": isoformat(doc.get("created_at")),
        "updated_at": isoformat(doc.get("updated_at")),
    }


def temp_object(doc: dict, signer: UrlSigner) -> dict:
    """A temp image: the image object with its ``expires_at``."""
    return image_object(doc, TEMP, signer)


# --- input -----------------------------------------------------------------------------


def _name(value) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_NAME_LENGTH:
        raise BadRequest(f"name must be a non-empty string of at most {MAX_NAME_LENGTH} characters.",
                         code="invalid_name")
    return value.strip()


def _price(value) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != value:
        raise BadRequest("price must be a number, zero or more.", code="invalid_price")
    return value


def _sku(value) -> str:
    if not isinstance(value, str) or not SKU_PATTERN.match(value):
        raise BadRequest("sku must be 1-64 letters, digits, '.', '_' or '-', starting with a letter "
                         "or digit.", code="invalid_sku")
    return value


def _oid(value) -> ObjectId | None:
    try:
        return ObjectId(value) if isinstance(value, str) else None
    except InvalidId:
        return None


# --- products --------------------------------------------------------------------------


def get_product(db: Database, sku: str) -> dict:
    """The product document, or a 404."""
    doc = products(db).find_one({"sku": sku})
    if doc is None:
        raise NotFound(f"There is no product with sku {sku!r}.", code="product_not_found")
    return doc


def list_products(db: Database, page: int, per_page: int) -> tuple[list[dict], int]:
    """One page of products by sku, and the total."""
    cursor = products(db).find({}).sort("sku", ASCENDING).skip((page - 1) * per_page).limit(per_page)
    return list(cursor), products(db).count_documents({})


def update_product(db: Database, sku: str, body: dict) -> dict:
    """Change a product's name and/or price."""
    unknown = sorted(set(body) - {"name", "price"})
    if unknown:
        raise BadRequest(f"Only name and price can be changed here, not {', '.join(unknown)}.",
                         code="invalid_fields", fields=unknown)
    changes = {}
    if "name" in body:
        changes["name"] = _name(body["name"])
    if "price" in body:
        changes["price"] = _price(body["price"])
    if not changes:
        raise BadRequest("Send name and/or price.", code="nothing_to_change")
    doc = products(db).find_one_and_update({"sku": sku}, {"$set": {**changes, "updated_at": now()}},
                                           return_document=ReturnDocument.AFTER)
    if doc is None:
        raise NotFound(f"There is no product with sku {sku!r}.", code="product_not_found")
    return doc


def _claimable(db: Database, raw_ids, owner: str, max_images: int) -> list[dict]:
    """The temp images ``raw_ids`` names, in order, or a 422 naming every unusable id."""
    if not isinstance(raw_ids, list) or not all(isinstance(i, str) for i in raw_ids):
        raise BadRequest("temp_image_ids must be a list of id strings.", code="invalid_temp_image_ids")
    if len(raw_ids) > max_images:
        raise UnprocessableContent(f"A product holds at most {max_images} images; {len(raw_ids)} "
                                   "temp images were given.", code="too_many_images", limit=max_images)
    duplicated = sorted({i for i in raw_ids if raw_ids.count(i) > 1})
    ids = [_oid(i) for i in raw_ids]
    found = {doc["_id"]: doc for doc in db[f"{TEMP}.files"].find(
        {"_id": {"$in": [i for i in ids if i]}, "metadata.role": "original"})}
    claimed = {doc["_id"] for doc in db[f"{PRODUCTS}.files"].find(
        {"_id": {"$in": [i for i in ids if i and i not in found]}}, {"_id": 1})}
    moment = now()
    unknown, expired, taken = [], [], []
    for raw, oid in zip(raw_ids, ids, strict=True):
        doc = found.get(oid)
        if oid in claimed:
            taken.append(raw)
        elif doc is None or doc["metadata"].get("owner") != owner:
            # Another admin's temp image counts as unknown: its id says nothing to this one.
            unknown.append(raw)
        elif (maybe_utc(doc["metadata"].get("expires_at")) or moment) <= moment:
            expired.append(raw)
    problems = {k: v for k, v in (("unknown", unknown), ("expired", expired),
                                  ("already_claimed", taken), ("duplicated", duplicated)) if v}
    if problems:
        named = "; ".join(f"{kind.replace('_', ' ')}: {', '.join(values)}"
                          for kind, values in problems.items())
        raise UnprocessableContent(f"These temp images cannot be used ({named}); nothing was created.",
                                   code="invalid_temp_images", **problems)
    return [found[oid] for oid in ids]


def create_product(db: Database, body: dict, *, owner: str, settings: Settings) -> dict:
    """Create a product; its temp images (in the given order) become its first images.

    Everything is checked before anything is written. The temp images are moved first and
    the product inserted last, with its references, so a crash in between leaves only
    unreferenced product files (orphans ``gc`` collects).
    """
    sku = _sku(body.get("sku"))
    name = _name(body.get("name"))
    price = _price(body.get("price"))
    temp_docs = _claimable(db, body.get("temp_image_ids") or [], owner, settings.max_images)
    if products(db).find_one({"sku": sku}, {"_id": 1}) is not None:
        raise Conflict(f"A product with sku {sku!r} already exists.", code="sku_taken")
    # A temp image whose bytes are already a product file is merged into that file, and its
    # own copy deleted: keep those bytes until the product is saved, in case that file is
    # being deleted by another product right now (see _ensure_stored).
    keys = [dedupe_key(doc["metadata"]["source_sha256"]) for doc in temp_docs]
    shared = {d["metadata"]["key"] for d in db[f"{PRODUCTS}.files"].find(
        {"metadata.key": {"$in": keys}}, {"metadata.key": 1})}
    kept = {doc["_id"]: Upload(doc["metadata"].get("filename"), io.BytesIO(read_all(db, TEMP, doc)))
            for doc, key in zip(temp_docs, keys, strict=True) if key in shared}
    moved: list[StoreResult] = [transfer(db, TEMP, PRODUCTS, doc, kind="product") for doc in temp_docs]
    refs = _unique_refs([image_ref(result.doc) for result in moved])
    source = {result.doc["_id"]: kept[doc["_id"]] for doc, result in zip(temp_docs, moved, strict=True)
              if doc["_id"] in kept}
    moment = now()
    doc = {"sku": sku, "name": name, "price": price, "images": refs,
           "created_at": moment, "updated_at": moment}
    try:
        products(db).insert_one(doc)
    except DuplicateKeyError:
        # Lost a race for the sku after the check above: give back what this call created.
        for result in moved:
            if result.created:
                delete_unreferenced(db, result.doc["_id"])
        raise Conflict(f"A product with sku {sku!r} already exists.", code="sku_taken") from None
    replaced = _ensure_stored(db, sku, [ref for ref in refs if ref["id"] in source], source,
                              owner=owner, limits=settings.limits)
    return get_product(db, sku) if replaced else doc


def delete_product(db: Database, sku: str) -> dict:
    """Delete a product, then every image file no other product uses."""
    doc = products(db).find_one_and_delete({"sku": sku})
    if doc is None:
        raise NotFound(f"There is no product with sku {sku!r}.", code="product_not_found")
    for entry in doc.get("images") or []:
        if isinstance(entry, dict) and entry.get("id") is not None:
            delete_unreferenced(db, entry["id"])
    return doc


# --- temp images -----------------------------------------------------------------------


def store_temp_images(db: Database, uploads: list[Upload], *, owner: str,
                      settings: Settings) -> list[dict]:
    """Store uploads in ``temp_images`` (all or nothing) with an expiry.

    Scoped per admin, so two admins' identical uploads are independent. Sending the same
    bytes again returns the existing temp image with a fresh expiry.
    """
    if len(uploads) > settings.max_images:
        raise UnprocessableContent(f"A product holds at most {settings.max_images} images; "
                                   f"{len(uploads)} were sent.", code="too_many_images",
                                   limit=settings.max_images)
    expires_at = now() + dt.timedelta(seconds=settings.temp_ttl_seconds)
    results = store_all(db, TEMP, uploads, owner=owner, kind="temp", scope=owner,
                        limits=settings.limits, extra={"expires_at": expires_at})
    docs = []
    for result in results:
        doc = result.doc
        if not result.created:
            doc = db[f"{TEMP}.files"].find_one_and_update(
                {"_id": doc["_id"]}, {"$set": {"metadata.expires_at": expires_at}},
                return_document=ReturnDocument.AFTER) or doc
        docs.append(doc)
    return docs


# --- product images --------------------------------------------------------------------


def _unique_refs(refs: list[dict]) -> list[dict]:
    seen, unique = set(), []
    for ref in refs:
        if ref["id"] not in seen:
            seen.add(ref["id"])
            unique.append(ref)
    return unique


def stored_ids(doc: dict) -> list:
    """The ids of a product's stored (non-legacy) images, in order."""
    return [entry["id"] for entry in doc.get("images") or [] if isinstance(entry, dict) and "id" in entry]


def _too_many(sku: str, have: int, adding: int, limit: int) -> UnprocessableContent:
    return UnprocessableContent(
        f"Product {sku} has {have} image(s); adding {adding} would pass the limit of {limit}. "
        "Nothing was stored.", code="too_many_images", limit=limit, current=have, sent=adding)


def add_images(db: Database, sku: str, uploads: list[Upload], *, owner: str,
               settings: Settings) -> tuple[dict, list[dict]]:
    """Store uploads (all or nothing) and append them to the product within its limit.

    Returns the updated product and the references added (images the product already had
    are not added twice).
    """
    limit = settings.max_images
    doc = get_product(db, sku)
    have = len(doc.get("images") or [])
    if have + len(uploads) > limit:
        raise _too_many(sku, have, len(uploads), limit)
    results = store_all(db, PRODUCTS, uploads, owner=owner, kind="product", limits=settings.limits)
    refs = _unique_refs([image_ref(result.doc) for result in results])
    source = {result.doc["_id"]: upload for result, upload in zip(results, uploads, strict=True)}
    try:
        updated, added = _push_refs(db, sku, refs, limit)
    except BaseException:
        # Refused (limit reached meanwhile, product deleted): files this call created go again.
        for result in results:
            if result.created:
                delete_unreferenced(db, result.doc["_id"])
        raise
    if added:
        replaced = _ensure_stored(db, sku, added, source, owner=owner, limits=settings.limits)
        if replaced:
            updated = get_product(db, sku)
            added = [replaced.get(ref["id"], ref) for ref in added]
    return updated, added


def _push_refs(db: Database, sku: str, refs: list[dict], limit: int) -> tuple[dict, list[dict]]:
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
            return updated, new
    raise Conflict(f"Product {sku}'s images keep changing; try again.", code="concurrent_change")


def _ensure_stored(db: Database, sku: str, refs: list[dict], source: dict[ObjectId, Upload], *,
                   owner: str, limits: Limits) -> dict:
    """After pushing refs: make sure each file still exists (see the module docstring).

    A deduplicated file may have been in the middle of being deleted by another product's
    delete. Wait for that lease to resolve; if the file went, store the bytes again (a new
    id) and point the reference at it. Returns the replaced references: old id -> new ref.
    """
    ids = [ref["id"] for ref in refs]
    if not ids:
        return {}
    deadline = monotonic() + LEASE_WAIT_SECONDS
    files = db[f"{PRODUCTS}.files"]
    while True:
        live = now() - DELETE_LEASE
        docs = {d["_id"]: d for d in files.find({"_id": {"$in": ids}}, {"metadata.deleting_at": 1})}
        leased = [i for i, d in docs.items() if (maybe_utc(d["metadata"].get("deleting_at")) or live) > live]
        if not leased or monotonic() > deadline:
            break
        sleep(0.02)
    replaced = {}
    for old_id in (i for i in ids if i not in docs):
        upload = source[old_id]
        upload.stream.seek(0)
        fresh = store(db, PRODUCTS, upload.stream, filename=upload.filename, owner=owner,
                      kind="product", limits=limits)
        replaced[old_id] = image_ref(fresh.doc)
        products(db).update_one({"sku": sku, "images.id": old_id}, {"$set": {"images.$": replaced[old_id]}})
    return replaced


def delete_unreferenced(db: Database, file_id) -> bool:
    """Delete a product file (and its variants) if no product references it any more.

    Takes a lease on the file before counting references, so a concurrent add that reuses
    the same bytes either is counted here or sees the lease (see :func:`_ensure_stored`).
    """
    files = db[f"{PRODUCTS}.files"]
    lease = now()
    live = lease - DELETE_LEASE
    taken = files.find_one_and_update(
        {"_id": file_id, "metadata.role": "original",
         "$or": [{"metadata.deleting_at": {"$exists": False}}, {"metadata.deleting_at": {"$lt": live}}]},
        {"$set": {"metadata.deleting_at": lease}})
    if taken is None:
        return False  # gone already, or someone else is deleting it
    if products(db).find_one({"images.id": file_id}, {"_id": 1}) is not None:
        files.update_one({"_id": file_id, "metadata.deleting_at": lease},
                         {"$unset": {"metadata.deleting_at": ""}})
        return False
    return delete_image(db, PRODUCTS, taken)


def delete_product_image(db: Database, sku: str, image_id: str) -> dict:
    """Take one image off a product; its file goes when no other product uses it."""
    doc = get_product(db, sku)
    oid = _oid(image_id)
    if oid is None or oid not in stored_ids(doc):
        has_legacy = any(isinstance(entry, str) for entry in doc.get("images") or [])
        hint = f" Its legacy images have no id: {RUN_IMPORT}." if has_legacy else ""
        raise NotFound(f"Product {sku} has no image {image_id}.{hint}", code="image_not_found")
    updated = products(db).find_one_and_update(
        {"sku": sku}, {"$pull": {"images": {"id": oid}}, "$set": {"updated_at": now()}},
        return_document=ReturnDocument.AFTER)
    if updated is None:
        raise NotFound(f"There is no product with sku {sku!r}.", code="product_not_found")
    delete_unreferenced(db, oid)
    return updated


def reorder_images(db: Database, sku: str, body: dict,
                   load: Callable[[Database, str], dict] = get_product) -> dict:
    """Put the product's images in the order of ``image_ids`` (a permutation of its ids).

    Compare-and-set: the write only applies if the images are still what was read, so a
    concurrent add or delete is never undone; then it answers 409.
    """
    raw = body.get("image_ids")
    if not isinstance(raw, list) or not all(isinstance(i, str) for i in raw):
        raise BadRequest("Send image_ids: a list of the product's image ids in the new order.",
                         code="invalid_image_ids")
    doc = load(db, sku)
    images = doc.get("images") or []
    legacy = [entry for entry in images if isinstance(entry, str)]
    if legacy:
        raise Conflict(f"Product {sku} still has {len(legacy)} legacy image(s) that cannot be "
                       f"ordered by id; {RUN_IMPORT}.", code="legacy_images", legacy=legacy)
    by_id = {str(entry["id"]): entry for entry in images}
    unknown = [i for i in raw if i not in by_id]
    missing = [i for i in by_id if i not in raw]
    if unknown or missing or len(raw) != len(by_id):
        raise UnprocessableContent(
            "image_ids must list each of the product's images exactly once.", code="invalid_order",
            unknown=unknown, missing=missing,
            duplicated=sorted({i for i in raw if raw.count(i) > 1}))
    updated = products(db).find_one_and_update(
        {"sku": sku, "images": images},
        {"$set": {"images": [by_id[i] for i in raw], "updated_at": now()}},
        return_document=ReturnDocument.AFTER)
    if updated is None:
        raise Conflict(f"Product {sku}'s images changed while reordering; reload and try again.",
                       code="concurrent_change")
    return updated
