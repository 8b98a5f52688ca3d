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

Everything about a target is one row of :data:`TARGET` (its bucket, roles, audit action,
fields, store, library and answer): the upload links (avenue/links/) use the same rows, so a
new target is one row and its three functions here.
"""

from __future__ import annotations

import binascii
import hashlib
from base64 import b64decode
from collections.abc import Callable
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
    if kind not in TARGET:
        raise BadRequest(f"target is one of {', '.join(TARGETS)}.", code="invalid_target")
    return {"kind": kind, **TARGET[kind].fields(db, metadata, settings)}


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
        return {"bucket": TARGET[self.kind].bucket, "image_id": self.image.id if self.image else None,
                "created": self.created}


@dataclass(frozen=True)
class Finished:
    """A finished upload on its way to its target: what the target's service call needs."""

    target: dict[str, Any]
    filename: str | None
    data: bytes
    owner: str
    settings: Settings
    add_only: bool

    def file(self) -> Upload:
        return Upload(self.filename, self.data)


def complete(db: Database[Document], target: dict[str, Any], filename: str | None, data: bytes, *, owner: str,
             settings: Settings) -> Completed:
    """Store a finished upload's bytes exactly as its target's multipart route does; a target
    that names an upload link (``link``) only adds: an image already there keeps its labels
    and an image in the trash stays there (avenue/links/service.py)."""
    done = Finished(target, filename, data, owner, settings, add_only=bool(target.get("link")))
    return TARGET[target["kind"]].store(db, done)


def image_of(db: Database[Document], result: dict[str, Any]) -> Image | None:
    """The image a finished upload became (None: gone since, or not known)."""
    image_id = result.get("image_id")
    if not isinstance(image_id, ObjectId):
        return None
    library = next((t.library for t in TARGET.values() if t.bucket == result.get("bucket")), None)
    return library(db).get(image_id) if library is not None else None


def image_json(db: Database[Document], kind: str, image: Image, signer: UrlSigner) -> dict[str, Any]:
    """The image object its target's multipart route answers with."""
    return TARGET[kind].answer(db, image, signer)


# --- the targets: what each one checks, stores and answers --------------------------------

def _uploads_fields(db: Database[Document], metadata: dict[str, str], settings: Settings) -> dict[str, Any]:
    return {"visibility": uploads.parse_visibility(metadata.get("visibility"))}


def _builder_fields(db: Database[Document], metadata: dict[str, str], settings: Settings) -> dict[str, Any]:
    return {"alt": clean_alt(metadata.get("alt")), "folder": builder.clean_folder(metadata.get("folder")),
            "tags": builder.clean_tags(metadata.get("tags"))}


def _product_fields(db: Database[Document], metadata: dict[str, str], settings: Settings) -> dict[str, Any]:
    sku = metadata.get("sku")
    if not sku:
        raise BadRequest("A product upload names its product: metadata sku.", code="invalid_sku")
    shop.check_room(db, sku, 1, settings.max_product_images)
    return {"sku": sku}


def _store_upload(db: Database[Document], done: Finished) -> Completed:
    visibility = done.target["visibility"]
    stored = uploads.upload(db, done.file(), owner=done.owner, visibility=visibility,
                            limits=done.settings.limits, add_only=done.add_only)
    return Completed("uploads", stored.image, stored.created,
                     {"bucket": UPLOADS, "image_id": str(stored.image.id), "visibility": visibility,
                      "filename": stored.image.filename, "created": stored.created})


def _store_builder(db: Database[Document], done: Finished) -> Completed:
    stored = builder.upload_media(db, done.file(), owner=done.owner, alt=done.target.get("alt"),
                                  limits=done.settings.limits, folder=done.target.get("folder"),
                                  tags=done.target.get("tags"), add_only=done.add_only)
    return Completed("builder", stored.image, stored.created,
                     {"bucket": BUILDER, "image_id": str(stored.image.id),
                      "filename": stored.image.filename, "created": stored.created})


def _store_temp(db: Database[Document], done: Finished) -> Completed:
    images = shop.store_temp_images(db, [done.file()], owner=done.owner, settings=done.settings.shop())
    return Completed("temp", images[0], True, {"bucket": TEMP, "image_ids": [str(images[0].id)]})


def _store_product(db: Database[Document], done: Finished) -> Completed:
    sku = done.target["sku"]
    _, added = shop.add_images(db, sku, [done.file()], owner=done.owner, settings=done.settings.shop(),
                               add_only=done.add_only)
    image = (shop.product_images(db).get(added[0]["id"]) if added
             else shop.product_images(db).find_by_content(hashlib.sha256(done.data).hexdigest()))
    return Completed("product", image, bool(added),
                     {"sku": sku, "bucket": PRODUCTS, "image_ids": [str(ref["id"]) for ref in added]})


def _no_fields(db: Database[Document], metadata: dict[str, str], settings: Settings) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Target:
    """One place an upload can go, everything about it in one row of :data:`TARGET`: the
    bucket it lands in, the roles of its multipart route (admins always may; ``()`` is any
    logged-in user), that route's audit action (a finished tus upload is audited the same way,
    ``via: "tus"``), the metadata fields it takes (checked as the route checks its form), how a
    finished upload is stored (the route's own service call), its library, and the image
    object the route answers with."""

    kind: str
    bucket: str
    roles: tuple[str, ...]
    audit_action: str
    fields: Callable[[Database[Document], dict[str, str], Settings], dict[str, Any]]
    store: Callable[[Database[Document], Finished], Completed]
    library: Callable[[Database[Document]], Any]
    answer: Callable[[Database[Document], Image, UrlSigner], dict[str, Any]]


TARGET: dict[str, Target] = {target.kind: target for target in (
    Target("uploads", UPLOADS, (), "upload_created", _uploads_fields, _store_upload, uploads.library,
           lambda db, image, signer: uploads.upload_object(image, signer)),
    Target("builder", BUILDER, ("editor",), "builder_media_uploaded", _builder_fields, _store_builder,
           builder.library, builder.media_object),
    Target("temp", TEMP, ("admin",), "temp_images_uploaded", _no_fields, _store_temp, shop.temp_images,
           lambda db, image, signer: image_object(image, signer)),
    Target("product", PRODUCTS, ("admin",), "product_images_added", _product_fields, _store_product,
           shop.product_images, lambda db, image, signer: image_object(image, signer)),
)}
TARGETS = tuple(TARGET)
