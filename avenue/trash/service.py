"""What was deleted, and bringing it back (avenue/media/store/trash.py keeps the files).

Who sees what: admins every trashed image; editors those of the builder library (their
library's). Restoring puts an image back in the bucket it was deleted from, with its id
(its URLs work again) and, where that still makes sense, its reference:

- a product photo goes back onto its product, at the end of its list, if that product
  exists and has room (otherwise 409/422 and the photo stays in the trash);
- library media comes back to the library; pages that a forced delete cleaned are *not*
  rewritten (their editors may have moved on); an image merged into another
  (``POST /api/builder/media/merge``) is shown again by the page blocks the merge moved to
  the image kept, those that still show it (``repointed``: the pages changed);
- an upload comes back to its owner.
"""

from __future__ import annotations

from typing import Annotated, Any

from bson import ObjectId
from pydantic import Field
from pymongo.database import Database

from avenue.builder import service as builder
from avenue.clock import isoformat
from avenue.db import Document
from avenue.errors import AvenueError, BadRequest, Conflict, NotFound
from avenue.media import AppMedia, Buckets, Library, UrlSigner
from avenue.paging import Page, Window
from avenue.presentation.objects import image_object
from avenue.shapes import QUERY, Absent, Answer, ObjectIdText, OneOf, Shape, cleaned, described_by
from avenue.shop import service as shop


class TrashItemNotFound(NotFound):
    code = "trash_item_not_found"

    def __init__(self) -> None:
        super().__init__("No image with this id in the trash.")


def clean_source(alias: str) -> str:
    """A trash list's ``?from=``: a bucket's alias; 400 otherwise."""
    if alias not in Buckets.BY_ALIAS:
        raise BadRequest(f"from must be one of {', '.join(sorted(Buckets.ALIASES.values()))}.",
                         code="invalid_from")
    return alias


class TrashQuery(Shape):
    """The query of ``GET /api/trash`` (:func:`list_trash`)."""

    model_config = QUERY

    from_: Annotated[str | None, cleaned(clean_source), Field(
        alias="from", description="Admins: only what was deleted from this bucket.",
        json_schema_extra={"enum": list(Buckets.ALIASES.values())})] = None


def _source(role: str, alias: str | None) -> str | None:
    """The bucket whose trashed images ``role`` may see (``?from=``); None: every bucket."""
    wanted = Buckets.BY_ALIAS[clean_source(alias)] if alias is not None else None
    if role == "admin":
        return wanted
    return Buckets.BUILDER  # editors: their library's only, whatever they ask


TIME = Field(json_schema_extra={"format": "date-time"})
SLUG = Field(pattern="^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
FROM = Field(serialization_alias="from", description="The bucket it was deleted from.")


class TrashReferences(Answer):
    """What referenced the image when it was deleted."""

    sku: Annotated[Absent[str], Field(description="The product it was taken off.")] = None
    pages: Annotated[Absent[list[Annotated[str, SLUG]]], Field(
        description="Pages a forced delete cleaned (not rewritten on restore).")] = None
    replaced_in: Annotated[Absent[ObjectIdText], Field(
        description="An earlier version of this image, replaced in place; restored, it comes back as an "
                    "image of its own (a product photo: onto its product again, at the end).")] = None
    merged_into: Annotated[Absent[ObjectIdText], Field(
        description="The image it was merged into; restored, the page blocks the merge moved show it "
                    "again.")] = None


class TrashItem(Answer):
    """Deleted media, restorable until purge_after (AVENUE_TRASH_DAYS); never served."""

    id: ObjectIdText
    from_: Annotated[str, OneOf(tuple(Buckets.ALIASES.values())), FROM]
    filename: str | None
    content_type: str | None
    format: str | None
    width: int | None
    height: int | None
    bytes: int | None
    owner: str | None
    alt: str | None
    placeholder: dict[str, Any] | None
    deleted_at: Annotated[str | None, TIME]
    purge_after: Annotated[str | None, TIME]
    references: TrashReferences


class Restored(Answer):
    """A trashed image put back: the image, where it went, and what else came back with it."""

    image: Annotated[dict[str, Any], described_by("Image")]
    from_: Annotated[str, OneOf(tuple(Buckets.ALIASES.values())), FROM]
    reused: Annotated[bool, Field(description="The same bytes were stored again meanwhile: that image.")]
    product: Annotated[Absent[str], Field(description="The product it went back onto.")] = None
    repointed: Annotated[Absent[list[Annotated[str, SLUG]]], Field(
        description="An image merged into another: the pages whose blocks show it again (those the merge "
                    "moved and nobody changed since).")] = None


def trash_object(item: Library.Trashed) -> dict[str, Any]:
    """The API's trash item: the image as it was (no URLs: nothing in the trash is served),
    when it goes for good, and what referenced it."""
    image = item.image
    return TrashItem(
        id=str(image.id), from_=Buckets.ALIASES[image.bucket], filename=image.filename,
        content_type=image.content_type, format=image.format, width=image.width,
        height=image.height, bytes=image.bytes, owner=image.owner, alt=image.alt,
        placeholder=image.placeholder, deleted_at=isoformat(item.deleted_at),
        purge_after=isoformat(item.purge_after),
        references=TrashReferences(**{key: item.refs[key] for key in TrashReferences.model_fields
                                      if key in item.refs}),
    ).answer()


def list_trash(media: AppMedia, window: Window, *, role: str,
               source: str | None = None) -> tuple[list[Library.Trashed], Page]:
    """Trashed images the user may see, last deleted first."""
    return media.trash.page(window, source=_source(role, source))


def get_item(media: AppMedia, image_id: ObjectId, *, role: str) -> Library.Trashed:
    """One trashed image the user may see; 404 otherwise (no existence leak)."""
    item = media.trash.get(image_id)
    if item is None or (role != "admin" and item.image.bucket != Buckets.BUILDER):
        raise TrashItemNotFound()
    return item


def restore(media: AppMedia, image_id: ObjectId, *, role: str, max_images: int,
            signer: UrlSigner) -> dict[str, Any]:
    """Put a trashed image back (see the module doc); what came back and where it went."""
    db = media.db
    item = get_item(media, image_id, role=role)
    sku = item.refs.get("sku") if item.image.bucket == Buckets.PRODUCTS else None
    if sku is not None:
        _room_on(db, sku, max_images)  # checked first: a restore that cannot attach does not start
    restored = media.trash.restore(image_id)
    if restored is None:
        raise Conflict("This image is being restored right now (or was just purged).",
                       code="restore_in_progress")
    product = None
    if sku is not None:
        try:
            shop.attach_image(db, sku, restored.image, max_images)
        except AvenueError:
            # The product went or filled up since the check: back into the trash, as it was.
            media.library(Buckets.PRODUCTS).delete(restored.image, to_trash=restored.refs)
            raise
        product = sku
    repointed = None
    if restored.image.bucket == Buckets.BUILDER and "merged_into" in restored.refs:
        repointed = builder.unmerge(db, restored.image, restored.refs)  # undo of a merge
    return Restored(image=image_object(restored.image, signer), from_=Buckets.ALIASES[restored.image.bucket],
                    reused=restored.reused, product=product, repointed=repointed).answer()


def _room_on(db: Database[Document], sku: str, max_images: int) -> None:
    try:
        shop.check_room(db, sku, 1, max_images)
    except NotFound:
        raise Conflict(f"Product {sku}, which this photo was deleted from, no longer exists. Create it "
                       "again with the same sku, then restore the photo.", code="product_gone",
                       sku=sku) from None


def purge(media: AppMedia, image_id: ObjectId, *, role: str) -> Library.Trashed:
    """Remove a trashed image for good now."""
    item = get_item(media, image_id, role=role)
    if not media.trash.purge(image_id):
        raise TrashItemNotFound()
    return item
