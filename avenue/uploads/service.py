"""General uploads (bucket uploads): any logged-in user's images, public or private.

The stored original is the record: its owner is the uploader's user id, its visibility
"public" or "private". Uploads are deduplicated per owner and visibility, so one user's
identical files share storage and nobody else's ever do. Anyone but the owner (or an admin)
gets the same 404 as for an id that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from bson import ObjectId
from pydantic import Field

from avenue.errors import BadRequest, NotFound
from avenue.media import AppMedia, Buckets, Image, Library, Limits, UrlSigner
from avenue.paging import Page, Window
from avenue.presentation.objects import image_object, near_objects
from avenue.shapes import QUERY, Shape

VISIBILITIES = ("public", "private")


def library(media: AppMedia) -> Library:
    """The uploads bucket."""
    return media.library(Buckets.UPLOADS)


def parse_visibility(value: str | None) -> str:
    """``public`` or ``private`` (the default when not sent); 400 for anything else."""
    if value is None or value == "":
        return "private"
    if value not in VISIBILITIES:
        raise BadRequest("visibility must be 'public' or 'private'.", code="invalid_visibility")
    return value


def upload(media: AppMedia, file: Library.Upload, *, owner: str, visibility: str, limits: Limits,
           add_only: bool = False) -> Library.Stored:
    """Store one image for ``owner``; an identical earlier upload (same owner and visibility)
    is returned instead of a copy (``add_only``: never one from the trash, which stays there)."""
    return library(media).store(file, owner=owner, limits=limits, kind="upload",
                                scope=f"{owner}:{visibility}", visibility=visibility, revive=not add_only)


class UploadsQuery(Shape):
    """The query of ``GET /api/uploads`` (:func:`list_uploads`)."""

    model_config = QUERY

    owner: Annotated[str | None, Field(description="Admins: one owner's.")] = None


def list_uploads(media: AppMedia, window: Window, *, user_id: str, is_admin: bool,
                 owner: str | None = None) -> tuple[list[Image], Page]:
    """A user's own uploads, newest first; admins see everyone's, optionally one ``owner``'s."""
    scope = (owner or None) if is_admin else user_id
    return library(media).page(window, owner=scope)


def get_upload(media: AppMedia, upload_id: ObjectId, *, user_id: str, is_admin: bool) -> Image:
    """An upload the user may see; 404 otherwise (no existence leak)."""
    image = library(media).get(upload_id, owner=None if is_admin else user_id)
    if image is None:
        raise NotFound("No upload with this id.", code="upload_not_found")
    return image


def delete_upload(media: AppMedia, upload_id: ObjectId, *, user_id: str, is_admin: bool) -> Image:
    """Delete an upload the user may see (with its variants); returns what was deleted."""
    image = get_upload(media, upload_id, user_id=user_id, is_admin=is_admin)
    images = library(media)
    # The delete lease: of two deletes of one upload at once, one moves it to the trash and
    # the other answers 404, as if it came second (found by bench/soak.py: both copying it
    # into the trash collided).
    lease = images.take_delete_lease(upload_id)
    if lease is None:
        raise NotFound("No upload with this id.", code="upload_not_found")
    try:
        images.delete(lease.image, to_trash={})
    except BaseException:
        images.release_delete_lease(lease)
        raise
    return image


def replace_upload(media: AppMedia, upload_id: ObjectId, *, user_id: str, is_admin: bool,
                   file: Library.Upload | None = None, focal: Library.FocalPoint | None = None,
                   limits: Limits) -> Library.Changed:
    """New bytes (``file``) or a new focal point for an upload the user may see, keeping its
    id (avenue/media/store/replace.py): the upload, whether anything changed and its new
    picture's near-duplicates."""
    get_upload(media, upload_id, user_id=user_id, is_admin=is_admin)
    done = library(media).replace(upload_id, file, focal=focal, limits=limits)
    if done is None:
        raise NotFound("No upload with this id.", code="upload_not_found")
    return done


def edit_upload(media: AppMedia, upload_id: ObjectId, *, user_id: str, is_admin: bool,
                edits: Library.Edits | None) -> Library.Changed:
    """Apply ``edits`` (None: undo) to an upload the user may see, as a new version."""
    get_upload(media, upload_id, user_id=user_id, is_admin=is_admin)
    done = library(media).edit(upload_id, edits)
    if done is None:
        raise NotFound("No upload with this id.", code="upload_not_found")
    return done


def set_upload_crop(media: AppMedia, upload_id: ObjectId, *, user_id: str, is_admin: bool, name: str,
                    box: Library.Box | None) -> Library.Changed:
    """Set (``box``) or delete (None) the named crop ``name`` of an upload the user may see."""
    get_upload(media, upload_id, user_id=user_id, is_admin=is_admin)
    done = library(media).set_crop(upload_id, name, box)
    if done is None:
        raise NotFound("No upload with this id.", code="upload_not_found")
    return done


_T = TypeVar("_T")


def _found(result: _T | None) -> _T:
    if result is None:
        raise NotFound("No upload with this id.", code="upload_not_found")
    return result


def upload_versions(media: AppMedia, upload_id: ObjectId, *, user_id: str, is_admin: bool
                    ) -> list[Library.Version]:
    """An upload's current version and its earlier ones still kept, newest first."""
    get_upload(media, upload_id, user_id=user_id, is_admin=is_admin)
    return _found(library(media).versions(upload_id))


def restore_upload_version(media: AppMedia, upload_id: ObjectId, version_id: str, *, user_id: str,
                           is_admin: bool, limits: Limits) -> Library.Changed:
    """Make an earlier version of an upload the user may see current again, as a new version."""
    get_upload(media, upload_id, user_id=user_id, is_admin=is_admin)
    return _found(library(media).restore_version(upload_id, version_id, limits=limits))


def upload_version_preview(media: AppMedia, upload_id: ObjectId, version_id: str, *, user_id: str,
                           is_admin: bool) -> bytes:
    """A small WebP of one version of an upload the user may see."""
    get_upload(media, upload_id, user_id=user_id, is_admin=is_admin)
    return _found(library(media).version_preview(upload_id, version_id))


def compare_upload_versions(media: AppMedia, upload_id: ObjectId, before: str, after: str, *,
                            user_id: str, is_admin: bool) -> tuple[Library.Comparison, bytes]:
    """The share of pixels changed between two versions of an upload, and the heat map."""
    get_upload(media, upload_id, user_id=user_id, is_admin=is_admin)
    return _found(library(media).compare_versions(upload_id, before, after))


def near_duplicates(media: AppMedia, image: Image) -> list[Library.Near]:
    """The uploads of ``image``'s owner that look like it, nearest first: never itself, nor
    its own earlier versions (a replaced version's bytes are in the trash, never matched)."""
    return library(media).near_duplicates(image)


def upload_object(image: Image, signer: UrlSigner,
                  near: Sequence[Library.Near] | None = None) -> dict[str, Any]:
    """The image object of an upload (signed, expiring URLs when private), with its owner, and
    its ``near_duplicates`` when given (the same owner's uploads only)."""
    return image_object(image, signer, owner=image.owner,
                        near_duplicates=near_objects(near, signer) if near is not None else None)
