"""Upload targets: where an upload lands, named one way, stored by one dispatch.

A :class:`Target` is a kind and its parameters: ``uploads`` (any logged-in user's images, with
``visibility``), ``builder`` (the library, with ``alt``, ``folder``, ``tags``), ``temp`` (an
admin's photos before their product is saved) or ``product`` (with ``sku``: added to that
product), and ``link`` when an upload link sends it. Everything else about a kind is one row
of :data:`KIND`: its bucket, the roles of its multipart route (admins always may; ``()`` is
any logged-in user), that route's audit action, the fields it takes, whether an upload link
may open it, its library and the image object the route answers with.

:func:`store` is the one dispatch from a target to the service function its multipart route
calls (``avenue/uploads``, ``avenue/builder``, ``avenue/shop``): the same validation,
stripping, dedupe, rendering, limits and references. A resumable upload's completion
(avenue/tus/), an upload link's file (avenue/links/) and the zip import (avenue/bulk/) call
it. The multipart routes call those service functions themselves: each route is one fixed
kind, and this module sits above the blueprints (it calls their services), so they cannot
import it.

A target is stored, in an upload's and in a link's document and shown in their JSON, as
``{"kind": ..., **parameters, "link": ...}`` (:meth:`Target.as_dict`); older spellings (the
zip import's ``library`` and ``products``) are mapped onto these kinds where the API takes
them. No Flask here: what it needs of the configuration comes as :class:`Settings`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from pymongo.database import Database

from avenue.builder import service as builder
from avenue.db import Document
from avenue.errors import BadRequest
from avenue.media import Alt, AppMedia, Buckets, Image, Library, Limits, UrlSigner
from avenue.presentation.objects import image_object
from avenue.shop import service as shop
from avenue.uploads import service as uploads

DEFAULT_KIND = "uploads"  # what an upload that names no target is


@dataclass(frozen=True)
class Settings:
    """What storing an upload needs from the app's configuration."""

    limits: Limits
    max_product_images: int
    temp_ttl_seconds: int

    def shop(self) -> shop.Settings:
        return shop.Settings(max_images=self.max_product_images, temp_ttl_seconds=self.temp_ttl_seconds,
                             limits=self.limits)


def settings_from_config(config: Mapping[str, Any]) -> Settings:
    """The upload settings the app is configured with."""
    return Settings(limits=Limits.from_config(config), max_product_images=config["AVENUE_MAX_PRODUCT_IMAGES"],
                    temp_ttl_seconds=config["AVENUE_TEMP_IMAGE_TTL_SECONDS"])


@dataclass(frozen=True)
class Target:
    """Where one upload goes: a kind of :data:`KIND` and its checked parameters; ``link``:
    the upload link that sends it (its store then only adds: an image already there keeps its
    labels, an image in the trash stays there; avenue/links/service.py)."""

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    link: str | None = None

    @property
    def row(self) -> Kind:
        return KIND[self.kind]

    def as_dict(self) -> dict[str, Any]:
        """As an upload's or a link's document keeps it."""
        return {"kind": self.kind, **self.params, **({"link": self.link} if self.link else {})}

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> Target:
        """A target as :meth:`as_dict` wrote it (an upload stored without one is ``uploads``)."""
        params = {key: value for key, value in stored.items() if key not in ("kind", "link")}
        return cls(stored.get("kind") or DEFAULT_KIND, params, stored.get("link"))


def parse(db: Database[Document], fields: Mapping[str, str], settings: Settings) -> Target:
    """The target ``fields`` name (``target``, default ``uploads``, and the kind's own fields,
    as text: tus metadata, or a link's target), checked now as its multipart route checks the
    form: 400 ``invalid_target`` for a kind that is none, 400 for a bad field, 404 / 422 for a
    product that does not exist or is full."""
    kind = fields.get("target") or DEFAULT_KIND
    if kind not in KIND:
        raise BadRequest(f"target is one of {', '.join(KIND)}.", code="invalid_target")
    return Target(kind, KIND[kind].parse(db, fields, settings))


@dataclass
class Completed:
    """What a stored upload became: its image's id (None: not known), whether it was new, its
    audit entry's details and, when the service call returned it, the image itself."""

    kind: str
    image_id: ObjectId | None
    created: bool
    audit: dict[str, Any]
    image: Image | None = None

    def result(self) -> dict[str, Any]:
        """What a resumable upload's record keeps (avenue.media.Resumables.finish)."""
        return {"bucket": KIND[self.kind].bucket, "image_id": self.image_id, "created": self.created}

    def loaded(self, media: AppMedia) -> Image | None:
        """The image, read from its library when the service call did not return it."""
        if self.image is None and self.image_id is not None:
            self.image = KIND[self.kind].library(media).get(self.image_id)
        return self.image


@dataclass(frozen=True)
class Incoming:
    """An upload on its way to its target's service call."""

    target: Target
    filename: str | None
    data: bytes
    owner: str
    settings: Settings

    @property
    def file(self) -> Library.Upload:
        return Library.Upload(self.filename, self.data)

    @property
    def add_only(self) -> bool:
        return bool(self.target.link)


def store(media: AppMedia, target: Target, filename: str | None, data: bytes, *, owner: str,
          settings: Settings) -> Completed:
    """Store one file's bytes exactly as ``target``'s multipart route does (its own service call)."""
    return KIND[target.kind].store(media, Incoming(target, filename, data, owner, settings))


def image_of(media: AppMedia, result: Mapping[str, Any]) -> Image | None:
    """The image a finished resumable upload became (None: gone since, or not known)."""
    image_id = result.get("image_id")
    if not isinstance(image_id, ObjectId):
        return None
    row = next((row for row in KIND.values() if row.bucket == result.get("bucket")), None)
    return row.library(media).get(image_id) if row is not None else None


def image_json(db: Database[Document], kind: str, image: Image, signer: UrlSigner) -> dict[str, Any]:
    """The image object ``kind``'s multipart route answers with."""
    return KIND[kind].answer(db, image, signer)


# --- the kinds: what each one checks, stores and answers -------------------------------------

def _uploads_fields(db: Database[Document], fields: Mapping[str, str], settings: Settings) -> dict[str, Any]:
    return {"visibility": uploads.parse_visibility(fields.get("visibility"))}


def _builder_fields(db: Database[Document], fields: Mapping[str, str], settings: Settings) -> dict[str, Any]:
    return {"alt": Alt.clean(fields.get("alt")), "folder": builder.clean_folder(fields.get("folder")),
            "tags": builder.clean_tags(fields.get("tags"))}


def _product_fields(db: Database[Document], fields: Mapping[str, str], settings: Settings) -> dict[str, Any]:
    sku = fields.get("sku")
    if not sku:
        raise BadRequest("A product upload names its product: metadata sku.", code="invalid_sku")
    shop.check_room(db, sku, 1, settings.max_product_images)
    return {"sku": sku}


def _no_fields(db: Database[Document], fields: Mapping[str, str], settings: Settings) -> dict[str, Any]:
    return {}


def _store_upload(media: AppMedia, incoming: Incoming) -> Completed:
    visibility = incoming.target.params["visibility"]
    stored = uploads.upload(media, incoming.file, owner=incoming.owner, visibility=visibility,
                            limits=incoming.settings.limits, add_only=incoming.add_only)
    return Completed("uploads", stored.image.id, stored.created,
                     {"bucket": Buckets.UPLOADS, "image_id": str(stored.image.id), "visibility": visibility,
                      "filename": stored.image.filename, "created": stored.created}, stored.image)


def _store_builder(media: AppMedia, incoming: Incoming) -> Completed:
    params = incoming.target.params
    stored = builder.upload_media(media, incoming.file, owner=incoming.owner, alt=params.get("alt"),
                                  limits=incoming.settings.limits, folder=params.get("folder"),
                                  tags=params.get("tags"), add_only=incoming.add_only)
    return Completed("builder", stored.image.id, stored.created,
                     {"bucket": Buckets.BUILDER, "image_id": str(stored.image.id),
                      "filename": stored.image.filename, "created": stored.created}, stored.image)


def _store_temp(media: AppMedia, incoming: Incoming) -> Completed:
    images = shop.store_temp_images(media, [incoming.file], owner=incoming.owner,
                                    settings=incoming.settings.shop())
    image = images[0]
    return Completed("temp", image.id, True, {"bucket": Buckets.TEMP, "image_ids": [str(image.id)]}, image)


def _store_product(media: AppMedia, incoming: Incoming) -> Completed:
    sku = incoming.target.params["sku"]
    added = shop.add_images(media, sku, [incoming.file], owner=incoming.owner,
                            settings=incoming.settings.shop(), add_only=incoming.add_only).refs
    if added:
        image_id = added[0]["id"]
    else:  # the product already had these bytes: the image they are
        found = shop.product_images(media).find_by_content(hashlib.sha256(incoming.data).hexdigest())
        image_id = found.id if found is not None else None
    return Completed("product", image_id, bool(added),
                     {"sku": sku, "bucket": Buckets.PRODUCTS, "image_ids": [str(ref["id"]) for ref in added]})


@dataclass(frozen=True)
class Kind:
    """One kind of target: the bucket it lands in, the roles of its multipart route (admins
    always may; ``()`` is any logged-in user), that route's audit action (an upload stored
    through :func:`store` is audited the same way, with where it came from), the fields it
    takes (checked as the route checks its form), whether an upload link may name it (temp
    photos wait for their admin's product form, which a link holder has not got), whether its
    uploader edits the image whatever their role (an upload is its owner's own: its answer
    carries the unedited original's URL), how an upload is stored (the route's own service
    call), its library, and the image object the route answers with."""

    name: str
    bucket: str
    roles: tuple[str, ...]
    audit_action: str
    fields: tuple[str, ...]
    linkable: bool
    uploader_edits: bool
    parse: Callable[[Database[Document], Mapping[str, str], Settings], dict[str, Any]]
    store: Callable[[AppMedia, Incoming], Completed]
    library: Callable[[AppMedia], Library]
    answer: Callable[[Database[Document], Image, UrlSigner], dict[str, Any]]


KIND: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("uploads", Buckets.UPLOADS, (), "upload_created", ("visibility",), True, True, _uploads_fields,
         _store_upload, uploads.library, lambda db, image, signer: uploads.upload_object(image, signer)),
    Kind("builder", Buckets.BUILDER, ("editor",), "builder_media_uploaded", ("folder", "tags", "alt"),
         True, False, _builder_fields, _store_builder, builder.library, builder.media_object),
    Kind("temp", Buckets.TEMP, ("admin",), "temp_images_uploaded", (), False, False, _no_fields, _store_temp,
         shop.temp_images, lambda db, image, signer: image_object(image, signer)),
    Kind("product", Buckets.PRODUCTS, ("admin",), "product_images_added", ("sku",), True, False,
         _product_fields, _store_product, shop.product_images,
         lambda db, image, signer: image_object(image, signer)),
)}
LINKABLE = tuple(name for name, kind in KIND.items() if kind.linkable)
