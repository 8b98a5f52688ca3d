"""What a resumable upload is for, and what a finished one becomes: the same service call as
the multipart upload to the same place.

A tus upload names its target in its metadata when it is created: ``uploads`` (the default:
any logged-in user's images, with ``visibility``), ``builder`` (the library, with ``alt``,
``folder``, ``tags``), ``temp`` (an admin's photos before their product is saved) or
``product`` (with ``sku``: added to that product). The target decides who may create and
continue it (the roles of the multipart route) and, once every byte arrived,
:func:`complete` hands the bytes to exactly the service function that route calls
(``avenue/uploads``, ``avenue/builder``, ``avenue/shop``): the same validation, stripping,
dedupe, rendering, limits and references. The upload's bytes and state are the media
package's (``avenue.media.resumable``).
"""

from __future__ import annotations

import binascii
import hashlib
from base64 import b64decode
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from pymongo.database import Database

from avenue.builder import service as builder
from avenue.db import Document
from avenue.errors import BadRequest
from avenue.media import (
    BUILDER,
    PRODUCTS,
    TEMP,
    UPLOADS,
    Image,
    Limits,
    Upload,
    UrlSigner,
    clean_alt,
    image_object,
)
from avenue.shop import service as shop
from avenue.uploads import service as uploads

TARGETS = ("uploads", "builder", "temp", "product")
# The roles of each target's multipart route (admins always may): ``()`` is any logged-in user.
ROLES: dict[str, tuple[str, ...]] = {"uploads": (), "builder": ("editor",), "temp": ("admin",),
                                     "product": ("admin",)}
BUCKET = {"uploads": UPLOADS, "builder": BUILDER, "temp": TEMP, "product": PRODUCTS}
# What the multipart route's audit entry is called: a finished tus upload is audited the same
# way, with ``via: "tus"``.
AUDIT_ACTION = {"uploads": "upload_created", "builder": "builder_media_uploaded",
                "temp": "temp_images_uploaded", "product": "product_images_added"}
MAX_METADATA_BYTES = 4096


def parse_metadata(header: str | None) -> dict[str, str]:
    """The Upload-Metadata header: comma-separated ``key base64value`` pairs (a key may come
    alone); 400 ``invalid_metadata`` when malformed."""
    if not header:
        return {}
    if len(header) > MAX_METADATA_BYTES:
        raise BadRequest(f"Upload-Metadata is at most {MAX_METADATA_BYTES} bytes.", code="invalid_metadata")
    found: dict[str, str] = {}
    for pair in header.split(","):
        parts = pair.strip().split(" ")
        if not parts[0] or len(parts) > 2 or parts[0] in found:
            raise BadRequest("Upload-Metadata is 'key base64value' pairs separated by commas, each key "
                             "once.", code="invalid_metadata")
        try:
            found[parts[0]] = b64decode(parts[1], validate=True).decode("utf-8") if len(parts) == 2 else ""
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest(f"Upload-Metadata {parts[0]!r} is not base64 of UTF-8 text.",
                             code="invalid_metadata") from None
    return found


@dataclass(frozen=True)
class Settings:
    """What completing an upload needs from the app's configuration."""

    limits: Limits
    max_product_images: int
    temp_ttl_seconds: int

    def shop(self) -> shop.Settings:
        return shop.Settings(max_images=self.max_product_images, temp_ttl_seconds=self.temp_ttl_seconds,
                             limits=self.limits)


def target_of(db: Database[Document], metadata: dict[str, str], settings: Settings) -> dict[str, Any]:
    """The target an upload's metadata names, checked now as its multipart route would check
    the form (400 for a bad field, 404 / 422 for a product that does not exist or is full)."""
    kind = metadata.get("target") or "uploads"
    if kind not in TARGETS:
        raise BadRequest(f"target is one of {', '.join(TARGETS)}.", code="invalid_target")
    target: dict[str, Any] = {"kind": kind}
    if kind == "uploads":
        target["visibility"] = uploads.parse_visibility(metadata.get("visibility"))
    elif kind == "builder":
        target["alt"] = clean_alt(metadata.get("alt"))
        target["folder"] = builder.clean_folder(metadata.get("folder"))
        target["tags"] = builder.clean_tags(metadata.get("tags"))
    elif kind == "product":
        sku = metadata.get("sku")
        if not sku:
            raise BadRequest("A product upload names its product: metadata sku.", code="invalid_sku")
        shop.check_room(db, sku, 1, settings.max_product_images)
        target["sku"] = sku
    return target


def filename_of(metadata: dict[str, str]) -> str | None:
    """The client's file name (tus-js-client and tuspy send ``filename``, Uppy ``name``)."""
    return metadata.get("filename") or metadata.get("name") or None


def filetype_of(metadata: dict[str, str]) -> str | None:
    return metadata.get("filetype") or metadata.get("type") or None


@dataclass
class Completed:
    """What a finished upload became: the image, whether it was new, and its audit entry."""

    kind: str
    image: Image | None
    created: bool
    audit: dict[str, Any] = field(default_factory=dict)

    def result(self) -> dict[str, Any]:
        """What the upload's record keeps (avenue.media.resumable.finish)."""
        return {"bucket": BUCKET[self.kind], "image_id": self.image.id if self.image else None,
                "created": self.created}


def complete(db: Database[Document], target: dict[str, Any], filename: str | None, data: bytes, *, owner: str,
             settings: Settings) -> Completed:
    """Store a finished upload's bytes exactly as its target's multipart route does; a target
    that names an upload link (``link``) only adds: an image already there keeps its labels
    and an image in the trash stays there (avenue/links/service.py)."""
    kind = target["kind"]
    add_only = bool(target.get("link"))
    file = Upload(filename, data)
    if kind == "uploads":
        stored = uploads.upload(db, file, owner=owner, visibility=target["visibility"],
                                limits=settings.limits, add_only=add_only)
        return Completed(kind, stored.image, stored.created,
                         {"bucket": UPLOADS, "image_id": str(stored.image.id),
                          "visibility": target["visibility"], "filename": stored.image.filename,
                          "created": stored.created})
    if kind == "builder":
        stored = builder.upload_media(db, file, owner=owner, alt=target.get("alt"), limits=settings.limits,
                                      folder=target.get("folder"), tags=target.get("tags"), add_only=add_only)
        return Completed(kind, stored.image, stored.created,
                         {"bucket": BUILDER, "image_id": str(stored.image.id),
                          "filename": stored.image.filename, "created": stored.created})
    if kind == "temp":
        images = shop.store_temp_images(db, [file], owner=owner, settings=settings.shop())
        return Completed(kind, images[0], True, {"bucket": TEMP, "image_ids": [str(images[0].id)]})
    sku = target["sku"]
    _, added = shop.add_images(db, sku, [file], owner=owner, settings=settings.shop(), add_only=add_only)
    image = (shop.product_images(db).get(added[0]["id"]) if added
             else shop.product_images(db).find_by_content(hashlib.sha256(data).hexdigest()))
    return Completed(kind, image, bool(added),
                     {"sku": sku, "bucket": PRODUCTS, "image_ids": [str(ref["id"]) for ref in added]})


def image_of(db: Database[Document], result: dict[str, Any]) -> Image | None:
    """The image a finished upload became (None: gone since, or not known)."""
    image_id = result.get("image_id")
    if not isinstance(image_id, ObjectId):
        return None
    library = {UPLOADS: uploads.library, BUILDER: builder.library, TEMP: shop.temp_images,
               PRODUCTS: shop.product_images}.get(result.get("bucket", ""))
    return library(db).get(image_id) if library is not None else None


def image_json(db: Database[Document], kind: str, image: Image, signer: UrlSigner) -> dict[str, Any]:
    """The image object its target's multipart route answers with."""
    if kind == "uploads":
        return uploads.upload_object(image, signer)
    if kind == "builder":
        return builder.media_object(db, image, signer)
    return image_object(image, signer)
