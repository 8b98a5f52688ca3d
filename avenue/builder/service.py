"""The website builder's media library (bucket builder_media) and its pages (page_content).

Where-used is derived, never bookkept separately: a page's ``media_ids`` is the distinct set
of its blocks' ``media_id`` values and is written in the same single-document update as the
blocks, so ``used_in`` (a query on that indexed field) is exact under concurrent edits.

Deleting media and writing a page that references it can still interleave. Both sides are
closed with the media library's delete lease (``avenue.media.Library.take_delete_lease``):

- delete: take the lease, *then* look for pages using the media (409, or remove the blocks
  with ``force``), then delete the files;
- page write: only media without a live lease counts as existing; after the write the ids
  are checked again, and any that vanished or went into deletion meanwhile are pulled from
  the page again and the write answers 409.

Whichever order the steps run in, either the delete sees the page or the page write sees
the lease, so no page is left pointing at deleted media. A crashed delete leaves a lease
that simply lapses after ``DELETE_LEASE``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar, get_args

import bson
from bson import ObjectId
from pydantic import BeforeValidator, ConfigDict, Field, model_validator
from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from avenue.clock import isoformat, now
from avenue.db import PAGES, Document
from avenue.errors import AvenueError, BadRequest, Conflict, ImageTooLarge, NotFound, UnprocessableContent
from avenue.ids import parse_object_id
from avenue.media import Alt, AppMedia, Buckets, Deliveries, Image, Library, Limits, UrlSigner
from avenue.paging import Page, Window
from avenue.presentation.objects import image_object, near_objects
from avenue.shapes import (
    QUERY,
    Absent,
    Answer,
    Flag,
    IfSet,
    ObjectIdField,
    ObjectIdText,
    Omittable,
    Refuse,
    Shape,
    cleaned,
)

_T = TypeVar("_T")
REPOINT_ATTEMPTS = 5
# Folders: "/" or "/segment/segment…", each segment letters, digits, space, "-", "_" or ".",
# not "." or ".." (a folder is a label, not a file path, but clients will show it as one).
FOLDER_SEGMENT = re.compile(r"^[\w .-]{1,64}$")
MAX_FOLDER_DEPTH = 8
MAX_TAGS = 20
TAG = re.compile(r"^[\w .:+#&'-]{1,40}$")
MAX_TITLE_LENGTH = 300
MAX_BLOCKS = 500
MAX_PAGE_BYTES = 2 * 1024 * 1024
MAX_BLOCK_DEPTH = 16
SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
# Fields a page read adds to a media block; dropped again when a client writes the block back.
RESOLVED_KEYS = ("url", "variants", "variant_sizes", "width", "height", "content_type", "missing")
LEGACY_FLAG = "legacy"


# --- media library ---------------------------------------------------------------------------


def library(media: AppMedia) -> Library:
    """The builder's media library bucket."""
    return media.library(Buckets.BUILDER)


FOLDER_RULE = (f"folder is /name/name… with at most {MAX_FOLDER_DEPTH} names of 1 to 64 letters, digits, "
               "spaces, '-', '_' or '.'.")


def clean_folder(folder: str | None) -> str | None:
    """A folder as stored: ``/`` or ``/a/b`` (slashes trimmed and collapsed, spaces folded);
    None when not given; 400 ``invalid_folder`` otherwise."""
    if folder is None:
        return None
    if not isinstance(folder, str):
        raise BadRequest("folder is a string like /products/summer.", code="invalid_folder")
    segments = [" ".join(part.split()) for part in folder.split("/")]
    segments = [part for part in segments if part]
    if len(segments) > MAX_FOLDER_DEPTH or any(
            part in (".", "..") or not FOLDER_SEGMENT.match(part) for part in segments):
        raise BadRequest(FOLDER_RULE, code="invalid_folder")
    return "/" + "/".join(segments)


def clean_tags(tags: list[str] | str | None) -> list[str] | None:
    """Tags as stored: trimmed, lower case, distinct, in the order given; a string is split on
    commas; None when not given; 400 ``invalid_tags`` otherwise."""
    if tags is None:
        return None
    if isinstance(tags, str):
        tags = tags.split(",")
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise BadRequest("tags is a list of strings.", code="invalid_tags")
    cleaned = list(dict.fromkeys(" ".join(tag.split()).casefold() for tag in tags if tag.strip()))
    if len(cleaned) > MAX_TAGS or not all(TAG.match(tag) for tag in cleaned):
        raise BadRequest(f"At most {MAX_TAGS} tags of 1 to 40 letters, digits, spaces or .:+#&'-",
                         code="invalid_tags")
    return cleaned


def upload_media(media: AppMedia, file: Library.Upload, *, owner: str, alt: str | None, limits: Limits,
                 folder: str | None = None, tags: list[str] | str | None = None,
                 add_only: bool = False) -> Library.Stored:
    """Store one image in the library (an SVG too); an identical file returns the existing media.

    Re-uploading an image that is already there creates nothing (``created`` is False); an
    ``alt``, ``folder`` or ``tags`` sent with it replaces the stored one, since it is the
    editor's latest wording. New media without a folder goes to the root (``/``).
    ``add_only`` (an upload link's file: its holder is not an editor) changes nothing of an
    image already there, and stores bytes that sit in the trash as new media instead of
    bringing the trashed image back.
    """
    alt, folder, cleaned_tags = Alt.clean(alt), clean_folder(folder), clean_tags(tags)
    # The library is the one place SVG logos and icons go (sanitised: avenue/media/ingest/svg.py).
    result = library(media).store(file, owner=owner, limits=limits.with_vector(), kind="builder",
                                  alt=alt or None, folder=folder or Library.ROOT_FOLDER, tags=cleaned_tags,
                                  revive=not add_only)
    if not result.created and not add_only:
        changes = {key: value for key, value, current in (
            ("alt", alt or None, result.image.alt), ("folder", folder, result.image.folder),
            ("tags", cleaned_tags, list(result.image.tags))) if value is not None and value != current}
        if changes:
            image = library(media).set_metadata(result.image.id, **changes)
            result = Library.Stored(image or result.image, False, result.near)
    return result


class MediaChange(Shape):
    """A library image's new ``alt``, ``folder`` and/or ``tags``; null (or ``""`` for alt) removes
    the alt text, puts it in the root folder, clears its tags."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})
    refusal = Refuse("invalid_media_update", "Send one or more of alt, folder, tags.")

    alt: Annotated[str | None, cleaned(Alt.clean), Refuse("invalid_alt", "alt is a string."), Field(
        description="Stored with its whitespace collapsed; too long or a control character: invalid_alt.")
        ] = None
    folder: Annotated[str | None, cleaned(clean_folder), Refuse("invalid_folder", FOLDER_RULE)] = None
    tags: Annotated[Annotated[list[str], Field(max_length=MAX_TAGS)] | None, cleaned(clean_tags),
                    Refuse("invalid_tags", "tags is a list of strings.")] = None

    @model_validator(mode="after")
    def _something(self) -> MediaChange:
        if not self.model_fields_set:
            raise BadRequest("Send one or more of alt, folder, tags.", code="invalid_media_update",
                             unknown_fields=[])
        return self


def update_media(media: AppMedia, media_id: ObjectId, change: MediaChange) -> Image:
    """Change a library image's ``alt``, ``folder`` and/or ``tags`` (404 when gone)."""
    sent = change.model_fields_set
    changes: dict[str, Any] = {}
    if "alt" in sent:
        changes["alt"] = change.alt or None
    if "folder" in sent:
        changes["folder"] = change.folder or Library.ROOT_FOLDER
    if "tags" in sent:
        changes["tags"] = change.tags or []
    image = library(media).set_metadata(media_id, **changes)
    if image is None:
        raise NotFound("No builder media with this id.", code="media_not_found")
    return image


def rename_media(media: AppMedia, media_id: ObjectId, name: str | None) -> Library.Changed:
    """Give a library image a readable name for its public named URL (None: none); 404 when gone."""
    done = library(media).rename(media_id, name)
    if done is None:
        raise NotFound("No builder media with this id.", code="media_not_found")
    return done


def replace_media(media: AppMedia, media_id: ObjectId, *, file: Library.Upload | None = None,
                  focal: Library.FocalPoint | None = None, limits: Limits) -> Library.Changed:
    """New bytes (``file``) or a new focal point for library media, keeping its id, so every
    page that uses it shows the new image (avenue/media/store/replace.py); 404 when it is gone.
    Returns the media, whether anything changed and its new picture's near-duplicates."""
    done = library(media).replace(media_id, file, focal=focal, limits=limits)
    if done is None:
        raise NotFound("No builder media with this id.", code="media_not_found")
    return done


def edit_media(media: AppMedia, media_id: ObjectId, edits: Library.Edits | None) -> Library.Changed:
    """Apply ``edits`` (None: undo) to library media as a new version; every page using it
    shows the edited picture. 404 when it is gone. Returns the media, whether it changed and
    the edited picture's near-duplicates."""
    done = library(media).edit(media_id, edits)
    if done is None:
        raise NotFound("No builder media with this id.", code="media_not_found")
    return done


def set_media_crop(media: AppMedia, media_id: ObjectId, name: str,
                   box: Library.Box | None) -> Library.Changed:
    """Set (``box``) or delete (None) the named crop ``name`` of library media, as a new version."""
    done = library(media).set_crop(media_id, name, box)
    if done is None:
        raise NotFound("No builder media with this id.", code="media_not_found")
    return done


def _found(result: _T | None) -> _T:
    if result is None:
        raise NotFound("No builder media with this id.", code="media_not_found")
    return result


def media_versions(media: AppMedia, media_id: ObjectId) -> list[Library.Version]:
    """Library media's current version and its earlier ones still kept (newest first); 404 when
    it is gone."""
    return _found(library(media).versions(media_id))


def restore_media_version(media: AppMedia, media_id: ObjectId, version_id: str, *,
                          limits: Limits) -> Library.Changed:
    """Make an earlier version of library media current again, as a new version (pages keep the
    media, its URLs change as after a replace); 404 when it is gone."""
    return _found(library(media).restore_version(media_id, version_id, limits=limits))


def media_version_preview(media: AppMedia, media_id: ObjectId, version_id: str) -> bytes:
    """A small WebP of one version of library media."""
    return _found(library(media).version_preview(media_id, version_id))


def compare_media_versions(media: AppMedia, media_id: ObjectId, before: str, after: str
                           ) -> tuple[Library.Comparison, bytes]:
    """The share of pixels changed between two versions of library media, and the heat map."""
    return _found(library(media).compare_versions(media_id, before, after))


def clean_colour(colour: str | None) -> str | None:
    """A colour filter as ``#rrggbb`` (None: not sent); 400 for anything else."""
    if colour is None:
        return None
    parsed = Library.parse_colour(colour)
    if parsed is None:
        raise BadRequest("color is a colour as #rrggbb (e.g. #c0392b).", code="invalid_color")
    return parsed


MAX_UNUSED_DAYS = 3650


def _days(days: object) -> object:
    """A query spells ``unused`` as text, and a bulk call's filter may too (``"30"``; ``""``: none).
    ASCII digits only: ``str.isdigit`` also takes other scripts' digits (``"٣"``, which ``int``
    reads as 3) and superscripts (``"²"``, which it refuses)."""
    if isinstance(days, str):
        digits = days.strip()
        return int(digits) if digits.isascii() and digits.isdigit() else None if days == "" else days
    return days


class LibraryFilter(Shape):
    """The library list's filters, each refused as the list refuses it: the query of
    ``GET /api/builder/media`` (:class:`LibraryQuery`) and a bulk call's ``filter``
    (:class:`BulkFilter`)."""

    q: Annotated[str, Field(description="Filename word starts."),
                 Refuse("invalid_bulk", "filter.q is a string.")] = ""  # (a query's is always text)
    folder: Annotated[str | None, Field(description="Only the media in this folder (not its subfolders)."),
                      cleaned(clean_folder), Refuse("invalid_folder", FOLDER_RULE)] = None
    tag: Annotated[str | list[str] | None, Field(description="Only media carrying every tag."),
                   cleaned(clean_tags), Refuse("invalid_tags", "tag is a tag or a list of tags.")] = None
    color: Annotated[str | None, Field(examples=["#c0392b"], description=(
        "Only media mostly close to this colour (#rrggbb): a colour covering a quarter of the picture or "
        "more, within about 20-40 CIELAB units of it.")),
        cleaned(clean_colour), Refuse("invalid_color", "color is a colour as #rrggbb (e.g. #c0392b).")] = None
    unused: Annotated[Annotated[int, Field(ge=0, le=MAX_UNUSED_DAYS)] | None, BeforeValidator(_days), Field(
        description="Only media uploaded more than this many days ago that no page or product refers to. A "
                    "page may then hold fewer than per_page items (the used ones are left out); go on with "
                    "next; total counts the candidates."),
        Refuse("invalid_unused", f"unused is a number of days, 0 to {MAX_UNUSED_DAYS}.")] = None

    @property
    def tags(self) -> list[str]:
        """``tag`` as cleaned: a list (a string was split on commas)."""
        return clean_tags(self.tag) or []


class LibraryQuery(LibraryFilter):
    """The query of ``GET /api/builder/media``: the filters, and the order."""

    model_config = QUERY

    sort: Annotated[str, Field(description="newest (the default), oldest, name, or size (largest first); "
                                           "with q or color, newest only (400 invalid_sort).")] = "newest"


def list_media(media: AppMedia, window: Window, chosen: LibraryFilter, sort: str = "newest"
               ) -> tuple[list[Image], Page]:
    """Library originals, newest first, that ``chosen`` selects: ``q`` finds filenames with words
    starting with its words, ``folder`` those in that folder (not its subfolders), ``tags`` those
    carrying every tag, ``color`` those mostly close to that ``#rrggbb``, ``unused`` (days) those
    uploaded more than that many days ago that no page or product refers to; ``sort``: newest
    (the default), oldest, name or size (largest first).

    ``unused`` costs one page of candidates (the list's own index walk, bounded below by the
    age) and one question to the referrers for that page's ids (:data:`IN_BATCH` ids a query,
    on the referrers' indexes): at a million images a page costs the same as any other page.
    A page may so hold fewer than ``per_page`` items (the used ones are left out); ``next``
    goes on from the last candidate, and ``total`` counts candidates (``total_exact`` false).
    """
    days = chosen.unused
    older_than = None if days is None else now() - dt.timedelta(days=days)
    images, page = library(media).page(window, search=chosen.q, folder=chosen.folder, tags=chosen.tags,
                                       colour=chosen.color, older_than=older_than, order=sort)
    if days is None or not images:
        return images, page
    used = media.referrers().referenced(Buckets.BUILDER, [image.id for image in images])
    return [image for image in images if image.id not in used], \
        Page(page.docs, page.total, False, page.next)


def near_groups(media: AppMedia, window: Window, signer: UrlSigner) -> dict[str, Any]:
    """The library's groups of near-duplicates (``after`` paging), each with its images."""
    db = media.db
    groups, next_cursor = library(media).near_groups(window)
    items = [{"id": str(group.label), "images": [media_object(db, image, signer) for image in group.images]}
             for group in groups]
    return {"items": items, "per_page": window.per_page, "next": next_cursor}


def exact_groups(media: AppMedia, window: Window, signer: UrlSigner) -> dict[str, Any]:
    """The library's groups of exact duplicates (same bytes, or same pixels), ``after`` paging."""
    db = media.db
    groups, next_cursor = library(media).exact_groups(window)
    items = [{"id": str(group.label), "kind": group.kind,
              "images": [media_object(db, image, signer) for image in group.images]} for group in groups]
    return {"items": items, "per_page": window.per_page, "next": next_cursor}


def near_duplicates(media: AppMedia, image: Image) -> list[Library.Near]:
    """The library images that look like ``image``, nearest first."""
    return library(media).near_duplicates(image)


class FolderCount(Answer):
    folder: str
    count: Annotated[int, Field(ge=0)]


class Folders(Answer):
    """Every folder of the library with its media count."""

    folders: list[FolderCount]


class TagCount(Answer):
    tag: str
    count: Annotated[int, Field(ge=0)]


class Tags(Answer):
    """Every tag of the library with its media count."""

    tags: list[TagCount]


def folders(media: AppMedia) -> Folders:
    """Every folder in use with how many images it holds."""
    return Folders(folders=[FolderCount(folder=folder, count=count)
                            for folder, count in library(media).folder_counts()])


def tags_in_use(media: AppMedia) -> Tags:
    """Every tag in use with how many images carry it."""
    return Tags(tags=[TagCount(tag=tag, count=count) for tag, count in library(media).tag_counts()])


def get_media(media: AppMedia, media_id: ObjectId) -> Image:
    """One library original, or 404."""
    image = library(media).get(media_id)
    if image is None:
        raise NotFound("No builder media with this id.", code="media_not_found")
    return image




def media_deliveries(media: AppMedia, media_id: ObjectId, days: Deliveries.DayRange) -> dict[str, Any]:
    """A library image's answers and bytes per day over ``days`` (UTC days, the last 30 by
    default; 400 for a bad range), its totals and last served date: the card's chart."""
    image = get_media(media, media_id)
    first, after = days.days(now())
    return media.deliveries.daily(Buckets.BUILDER, image.id, first, after)


def used_in(db: Database[Document], media_id: ObjectId) -> list[str]:
    """The slugs of the pages whose blocks reference this media, sorted."""
    return sorted(p["slug"] for p in db[PAGES].find({"media_ids": media_id}, {"slug": 1}))


class DeleteQuery(Shape):
    """The query of ``DELETE /api/builder/media/{media_id}`` (:func:`delete_media`)."""

    model_config = QUERY

    force: Annotated[Flag, Field(
        description="Delete even while pages use it (their blocks are marked missing).")] = False


def delete_media(media: AppMedia, media_id: ObjectId, *, force: bool = False) -> list[str]:
    """Delete library media; 409 naming the pages that use it unless ``force``.

    With ``force`` the blocks referencing it are removed from those pages (and the id from
    their ``media_ids``) before the files go. Returns the slugs of the pages changed.
    """
    db = media.db
    images = library(media)
    lease = images.take_delete_lease(media_id)
    if lease is None:  # gone, or another delete of it is under way
        raise NotFound("No builder media with this id.", code="media_not_found")
    try:
        pages = used_in(db, media_id)
        if pages and not force:
            raise Conflict(f"This media is used on {len(pages)} page(s): {', '.join(pages)}. Remove it "
                           "from them first, or delete with ?force=1 to remove those blocks.",
                           code="media_in_use", pages=pages)
        if pages:
            _pull_media(db, {"media_ids": media_id}, [media_id])
        images.delete(lease.image, to_trash={"pages": pages})  # restored, the pages stay as they are
    except BaseException:
        images.release_delete_lease(lease)
        raise
    return pages


# --- bulk -------------------------------------------------------------------------------------

MAX_BULK_IDS = 500  # per call, by ids or by a filter (a filter goes on with ``next``)
BULK_PAGE = 100  # images read at a time when a filter selects them
BulkAction = Literal["move", "tag", "untag", "delete", "restore"]
BULK_ACTIONS: tuple[str, ...] = get_args(BulkAction)


OBJECT_ID_TEXT = re.compile(r"[0-9a-fA-F]{24}")


def _image_ids(ids: list[str]) -> list[str]:
    """Each id once, spelled as ObjectId spells it (lower case); 400 ``invalid_bulk`` naming the
    malformed ones. (Checked as text: a bulk call's ids become ObjectIds as they are done.)"""
    malformed = [i for i in ids if not OBJECT_ID_TEXT.fullmatch(i)]
    if malformed:
        raise BadRequest("Some ids are not image ids.", code="invalid_bulk", invalid_ids=malformed[:10])
    return list(dict.fromkeys(i.lower() for i in ids))


class BulkFilter(LibraryFilter):
    """The library list's filters as a bulk call's object: strict JSON, no other field."""

    refusal = Refuse("invalid_bulk", "filter is an object of q, folder, tag, color, unused.")


class Bulk(Shape):
    """One bulk call, checked whole before anything is done (400 otherwise): ``action`` on
    ``ids`` or on every image ``filter`` selects (not for ``restore``), ``folder`` for
    ``move``, ``tags`` for ``tag`` / ``untag``, ``force`` for ``delete``."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["ids"]}, {"required": ["filter"]}]})
    refusal = Refuse("invalid_bulk", "Unknown fields in a bulk call.")

    action: Annotated[BulkAction,
                      Refuse("invalid_bulk_action", f"action is one of {', '.join(BULK_ACTIONS)}.")]
    ids: Annotated[Omittable[Annotated[list[ObjectIdText], Field(min_length=1, max_length=MAX_BULK_IDS)]],
        Field(description="The images (for restore: ids in the trash). More is a 400 too_many_ids, and "
                          "nothing is done."),
        cleaned(_image_ids),
        Refuse("too_many_ids", f"At most {MAX_BULK_IDS} ids a call; send the rest in another call, or select "
               "them by a filter.", when=("too_long",), details={"max_ids": MAX_BULK_IDS}),
        Refuse("invalid_bulk", "ids is a list of image ids.")] = None
    filter: Annotated[Omittable[BulkFilter], Refuse(
        "invalid_bulk", "filter is an object of q, folder, tag, color, unused.")] = None
    after: Annotated[str | None, Field(description="With filter: the previous call's next."),
                     Refuse("invalid_bulk", "after is the next cursor of a previous filter call.")] = None
    folder: Annotated[Omittable[str], Field(description="move: where to."), cleaned(clean_folder),
                      Refuse("invalid_folder", "move needs a folder, like /products/summer.")] = None
    tags: Annotated[Omittable[Annotated[list[str], Field(min_length=1, max_length=MAX_TAGS)]],
        Field(description="tag / untag: the tags added or removed."), cleaned(clean_tags),
        Refuse("invalid_tags", "tag and untag need tags, a list of strings.")] = None
    force: Annotated[bool, Field(description="delete: also the images pages use (their blocks go)."),
                     Refuse("invalid_bulk", "force is true or false.")] = False

    @model_validator(mode="after")
    def _whole(self) -> Bulk:
        """The rules between fields (each field passed its own)."""
        if (self.ids is None) == (self.filter is None):
            raise BadRequest("Send ids (a list) or filter (an object), one of them.", code="invalid_bulk")
        if self.filter is not None and self.action == "restore":
            raise BadRequest("restore takes ids (of the trash), not a filter.", code="invalid_bulk")
        if self.after is not None and self.ids is not None:
            raise BadRequest("after is the next cursor of a previous filter call.", code="invalid_bulk")
        if self.action == "move" and self.folder is None:
            raise BadRequest("move needs a folder, like /products/summer.", code="invalid_folder")
        if self.action in ("tag", "untag") and not self.tags:
            raise BadRequest(f"{self.action} needs tags, a list of strings.", code="invalid_tags")
        return self


class BulkRefusal(Answer):
    """One image a bulk call did not do, and why (the code and message of its single operation)."""

    id: ObjectIdText
    code: str
    message: str
    pages: Absent[list[Annotated[str, Field(pattern=SLUG.pattern)]]] = Field(
        default=None, description="media_in_use: the pages using it.")


class BulkResult(Answer):
    """What a bulk call did: how many were done, each refusal with its reason, and where a
    filter-selected set goes on (None: nothing left)."""

    action: BulkAction
    done: Annotated[int, Field(ge=0)]
    refused: list[BulkRefusal]
    next: Annotated[str | None, Field(
        description="With filter: more images matched; send as after. Null: all done.")]


def bulk_media(media: AppMedia, bulk: Bulk) -> BulkResult:
    """Do ``bulk`` to each image it names, one at a time through the same functions the single
    operations use (so counts, facets, leases, the trash and the in-use protection are theirs):
    a refusal of one image (gone, in use, busy, too many tags) is noted and the next goes on."""
    result = BulkResult(action=bulk.action, done=0, refused=[], next=None)
    if bulk.ids is not None:
        ids = [ObjectId(i) for i in bulk.ids]
        for start in range(0, len(ids), BULK_PAGE):
            _bulk_batch(media, bulk, ids[start:start + BULK_PAGE], result)
        return result
    chosen = bulk.filter or BulkFilter()
    after, seen = bulk.after, 0
    while seen < MAX_BULK_IDS:
        window = Window(per_page=min(BULK_PAGE, MAX_BULK_IDS - seen), after=after)
        images, page = list_media(media, window, chosen)
        _bulk_batch(media, bulk, [image.id for image in images], result)
        seen += len(page.docs)
        after = page.next
        if after is None:
            break
    result.next = after
    return result


def _bulk_batch(media: AppMedia, bulk: Bulk, ids: list[ObjectId], result: BulkResult) -> None:
    for media_id in ids:
        try:
            _bulk_one(media, bulk, media_id)
        except AvenueError as error:
            result.refused.append(BulkRefusal(id=str(media_id), code=error.code, message=error.message,
                                              pages=error.details.get("pages")))
        else:
            result.done += 1


def _bulk_one(media: AppMedia, bulk: Bulk, media_id: ObjectId) -> None:
    if bulk.action == "delete":
        delete_media(media, media_id, force=bulk.force)
    elif bulk.action == "restore":
        restore_media(media, media_id)
    else:
        image = library(media).relabel(media_id, folder=bulk.folder,
                                       add_tags=bulk.tags or () if bulk.action == "tag" else (),
                                       remove_tags=bulk.tags or () if bulk.action == "untag" else (),
                                       max_tags=MAX_TAGS)
        if image is None:
            raise NotFound("No builder media with this id.", code="media_not_found")


def restore_media(media: AppMedia, media_id: ObjectId) -> Image:
    """Library media back from the trash with its id (pages a forced delete cleaned stay as they
    are); 404 when the trash holds no library media with this id."""
    item = media.trash.get(media_id)
    if item is None or item.image.bucket != Buckets.BUILDER:
        raise NotFound("No library media with this id in the trash.", code="trash_item_not_found")
    restored = media.trash.restore(media_id)
    if restored is None:
        raise Conflict("This image is being restored right now (or was just purged).",
                       code="restore_in_progress")
    unmerge(media.db, restored.image, restored.refs)
    return restored.image


# --- merge ----------------------------------------------------------------------------------
#
# Merge re-points every page using the others to the keeper, then moves the others to the trash,
# each trash entry naming the keeper and, per page, the blocks that were moved (``merged``):
# restoring it moves those blocks back (``unmerge``). Order: validate the body, take the delete
# leases of every image involved in id order (two merges, or a merge and a delete, never wait on
# each other: the second finds a lease and answers 409), check them all, and only then write.
# A concurrent page write sees the leased others as "being deleted" (409) and does not add them.

MAX_MERGE = 50
BlockChange = Callable[[list[Any]], tuple[list[Any], list[int]]]


def _distinct(others: list[ObjectId]) -> list[ObjectId]:
    if len(set(others)) != len(others):
        raise BadRequest("others names an image twice.", code="duplicate_ids", field="others")
    return others


class Merge(Shape):
    """``{keep: id, others: [id, ...]}``, checked before anything is read (400)."""

    refusal = Refuse("unknown_fields", "Send keep and others, nothing else.")

    keep: Annotated[ObjectIdField, Refuse("invalid_id", "keep must be a media id.")]
    # uniqueItems: what _distinct checks (ids compared as ObjectIds), stated for the document.
    others: Annotated[list[ObjectIdField], Field(min_length=1, max_length=MAX_MERGE,
                                                 json_schema_extra={"uniqueItems": True}),
                      cleaned(_distinct),
                      Refuse("too_many_ids", f"At most {MAX_MERGE} images are merged at once.",
                             when=("too_long",), details={"limit": MAX_MERGE}),
                      Refuse("invalid_ids", "others must be a non-empty list of media ids.")]

    @model_validator(mode="after")
    def _keep_apart(self) -> Merge:
        if self.keep in self.others:
            raise BadRequest("The image kept cannot be among the others.", code="keep_in_others")
        return self


class MergedImage(Answer):
    """One image merged into the keeper, and the pages whose blocks now show the keeper."""

    id: ObjectIdText
    merged: bool
    pages: Annotated[list[Annotated[str, Field(pattern=SLUG.pattern)]], Field(
        description="The pages whose blocks now show keep.")]


class Merged(Answer):
    """What a merge did, image by image."""

    keep: ObjectIdText
    merged: list[MergedImage]


def merge_media(media: AppMedia, merge: Merge) -> list[MergedImage]:
    """Merge ``merge.others`` into ``merge.keep`` (see above): per other image, the pages whose
    blocks now show the keeper. 404 when one is not in the library, 409 when one is being
    deleted, replaced or merged: then nothing has changed. A page that kept changing while it
    was re-pointed (``page_busy``, 409) stops the merge at that image, its pages put back; the
    images merged before it stay merged (``merged`` in the error names them)."""
    db = media.db
    images = library(media)
    leases: dict[ObjectId, Library.DeleteLease] = {}
    try:
        for media_id in sorted([merge.keep, *merge.others]):
            lease = images.take_delete_lease(media_id)
            if lease is None:
                if images.get(media_id) is not None:
                    raise Conflict(f"Media {media_id} is being deleted or merged; nothing was merged.",
                                   code="media_busy", id=str(media_id))
                raise NotFound(f"No builder media with id {media_id}; nothing was merged.",
                               code="media_not_found", id=str(media_id))
            leases[media_id] = lease
        keeper = leases[merge.keep].image
        done: list[MergedImage] = []
        for other in merge.others:
            try:
                moved = _repoint_pages(db, other, keeper.id)
            except Conflict as busy:  # this image's pages were put back: it stays, as do the rest
                busy.message += f" Merged before it: {len(done)} image(s); {other} and the rest were not."
                busy.details["merged"] = [item.id for item in done]
                raise
            images.delete(leases[other].image, to_trash={
                "pages": [], "merged_into": str(keeper.id),
                "merged": [{"slug": slug, "blocks": blocks} for slug, blocks in moved.items()]})
            del leases[other]  # deleted: its lease went with it
            done.append(MergedImage(id=str(other), merged=True, pages=sorted(moved)))
        return done
    finally:
        for lease in leases.values():  # the keeper's; the others' only if something failed
            images.release_delete_lease(lease)


def _set_blocks(db: Database[Document], slug: str, change: BlockChange) -> list[int]:
    """Rewrite one page's blocks by ``change(blocks) -> (blocks, indexes changed)`` as a
    compare-and-set on ``updated_at`` (a concurrent edit is read again, never undone), with the
    ``media_ids`` derived from them in the same update; the indexes changed."""
    for _ in range(REPOINT_ATTEMPTS):
        page = db[PAGES].find_one({"slug": slug}, {"blocks": 1, "updated_at": 1})
        if page is None:
            return []
        blocks, changed = change(list(page.get("blocks") or []))
        if not changed:
            return []
        ids = [b["media_id"] for b in blocks if isinstance(b, dict) and ObjectId.is_valid(b.get("media_id"))]
        done = db[PAGES].update_one(
            {"_id": page["_id"], "updated_at": page.get("updated_at")},
            {"$set": {"blocks": blocks, "media_ids": [ObjectId(i) for i in dict.fromkeys(ids)],
                      "updated_at": now()}})
        if done.modified_count:
            return changed
    raise Conflict(f"Page {slug} kept changing; try the merge again.", code="page_busy", page=slug)


def _swap(old: ObjectId, new: ObjectId, only: list[int] | None = None) -> BlockChange:
    def change(blocks: list[Any]) -> tuple[list[Any], list[int]]:
        changed = [i for i, b in enumerate(blocks) if isinstance(b, dict) and b.get("media_id") == str(old)
                   and (only is None or i in only)]
        return [{**b, "media_id": str(new)} if i in changed else b for i, b in enumerate(blocks)], changed
    return change


def _repoint_pages(db: Database[Document], old: ObjectId, new: ObjectId) -> dict[str, list[int]]:
    """Every page block showing ``old`` shows ``new``: per page slug, the blocks changed."""
    moved: dict[str, list[int]] = {}
    try:
        for page in list(db[PAGES].find({"media_ids": old}, {"slug": 1})):
            blocks = _set_blocks(db, page["slug"], _swap(old, new))
            if blocks:
                moved[page["slug"]] = blocks
    except Conflict:
        for slug, blocks in moved.items():  # a page that kept changing: the ones done go back
            _set_blocks(db, slug, _swap(new, old, blocks))
        raise
    return moved


def unmerge(db: Database[Document], image: Image, refs: dict[str, Any]) -> list[str]:
    """A merged image back from the trash: the blocks its merge moved to the keeper (those that
    still show the keeper) show it again. The slugs of the pages changed."""
    keeper = refs.get("merged_into")
    if not isinstance(keeper, str) or not ObjectId.is_valid(keeper):
        return []
    changed = []
    for entry in refs.get("merged") or []:
        slug, blocks = entry.get("slug"), entry.get("blocks")
        if isinstance(slug, str) and isinstance(blocks, list) and \
                _set_blocks(db, slug, _swap(ObjectId(keeper), image.id, [int(b) for b in blocks])):
            changed.append(slug)
    return sorted(changed)


def _pull_media(db: Database[Document], query: dict[str, Any], oids: list[ObjectId]) -> None:
    """Remove the blocks referencing ``oids`` and the ids themselves, in one update per page."""
    db[PAGES].update_many(query, {
        "$pull": {"blocks": {"media_id": {"$in": [str(o) for o in oids]}}, "media_ids": {"$in": oids}},
        "$set": {"updated_at": now()},
    })


def usable_media(media: AppMedia, oids: list[ObjectId]) -> dict[ObjectId, Image]:
    """The library media among ``oids`` a page may reference: existing, not being deleted."""
    return library(media).usable(oids)


# --- pages -----------------------------------------------------------------------------------


def check_slug(slug: str) -> str:
    """A slug pages can be written under: letters, digits, ``-`` and ``_``, up to 100."""
    if not isinstance(slug, str) or not SLUG.fullmatch(slug):
        raise BadRequest("A page slug is 1 to 100 letters, digits, '-' or '_', starting with a letter "
                         "or digit.", code="invalid_slug")
    return slug


def _check_keys(value: object, where: str, depth: int = 0) -> None:
    """Refuse what MongoDB cannot store or would read as an operator."""
    if depth > MAX_BLOCK_DEPTH:
        raise BadRequest(f"{where} is nested too deeply.", code="invalid_block")
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("$") or "." in key or "\x00" in key:
                raise BadRequest(f"{where} has a field name MongoDB cannot store: {key!r}.",
                                 code="invalid_block")
            _check_keys(item, where, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_keys(item, where, depth + 1)


class Block(Shape):
    """One block of a page: its ``type``, the library image it shows (``media_id``), and any
    other fields its editor keeps (stored as they are)."""

    model_config = ConfigDict(extra="allow")
    refusal = Refuse("invalid_block", "Each block is an object with a 'type' (a string).")

    type: Annotated[str, Field(min_length=1, max_length=50, pattern=r"\S"),
                    Refuse("invalid_block", "A block needs a 'type' (a string).")]
    media_id: Annotated[Omittable[ObjectIdText], Refuse("invalid_block", "A block's media_id is a string id.")
                        ] = None


class PageWrite(Shape):
    """A page write: ``title``, ``blocks`` and, optionally, ``published``; fields it does not
    name are left aside."""

    model_config = ConfigDict(extra="ignore")

    title: Annotated[str, Field(max_length=MAX_TITLE_LENGTH), Refuse(
        "invalid_title", f"title must be a string of at most {MAX_TITLE_LENGTH} characters.")]
    blocks: Annotated[list[Block], Field(max_length=MAX_BLOCKS),
                      Refuse("invalid_blocks", f"A page has at most {MAX_BLOCKS} blocks.",
                             when=("too_long",)),
                      Refuse("invalid_blocks", "blocks must be a list of objects.")]
    published: Annotated[bool | None, Refuse("invalid_published", "published must be true or false.")] = None


def page_fields(page: PageWrite) -> dict[str, Any]:
    """The fields to store of a page write: its blocks as written (without what a read adds,
    media ids as ObjectId spells them), refused when MongoDB could not store them."""
    cleaned = []
    for index, written in enumerate(page.blocks):
        where = f"blocks[{index}]"
        block = written.model_dump(exclude_unset=True)
        block.pop(LEGACY_FLAG, None)
        if "media_id" in block:
            for key in RESOLVED_KEYS:
                block.pop(key, None)
            oid = parse_object_id(block["media_id"])
            block["media_id"] = str(oid) if oid else block["media_id"]
        _check_keys(block, where)
        cleaned.append(block)
    try:
        size = len(bson.encode({"blocks": cleaned, "title": page.title}))
    except (OverflowError, bson.errors.InvalidDocument) as exc:
        raise BadRequest(f"The page holds a value MongoDB cannot store: {exc}", code="invalid_block") from exc
    if size > MAX_PAGE_BYTES:
        raise ImageTooLarge(f"A page is at most {MAX_PAGE_BYTES // 1024} KB.", code="page_too_large")
    return {"title": page.title, "blocks": cleaned, "published": page.published}


def block_media_ids(blocks: list[dict[str, Any]]) -> tuple[list[ObjectId], list[str]]:
    """The distinct media ids the blocks reference (in order), and the malformed ones."""
    valid: dict[ObjectId, None] = {}
    malformed: list[str] = []
    for block in blocks:
        if "media_id" in block:
            oid = parse_object_id(block["media_id"])
            if oid is None:
                malformed.append(block["media_id"])
            else:
                valid.setdefault(oid, None)
    return list(valid), list(dict.fromkeys(malformed))


def put_page(media: AppMedia, slug: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Create or replace a page's title and blocks (upsert by slug) in one update.

    Every referenced media must exist in the library (422 naming the unknown ids). Blocks and
    ``media_ids`` are written together; ``published`` is kept when not sent (new pages start
    as drafts).
    """
    db = media.db
    check_slug(slug)
    oids, malformed = block_media_ids(fields["blocks"])
    found = usable_media(media, oids)
    unknown = malformed + [str(o) for o in oids if o not in found]
    if unknown:
        raise UnprocessableContent(f"Unknown builder media: {', '.join(unknown)}.", code="unknown_media",
                                   unknown_media_ids=unknown)
    stamp = now()
    update: dict[str, Any] = {
        "$set": {"title": fields["title"], "blocks": fields["blocks"], "media_ids": oids,
                 "updated_at": stamp},
        "$setOnInsert": {"slug": slug, "created_at": stamp},
    }
    if fields.get("published") is None:
        update["$setOnInsert"]["published"] = False
    else:
        update["$set"]["published"] = fields["published"]
    page = _upsert(db, slug, update)
    # The media may have gone into deletion between the check above and the write.
    vanished = [o for o in oids if o not in usable_media(media, oids)]
    if vanished:
        _pull_media(db, {"_id": page["_id"]}, vanished)
        ids = [str(o) for o in vanished]
        raise Conflict(f"Media was deleted while the page was being saved: {', '.join(ids)}. Its blocks "
                       "were left out; reload the page.", code="media_deleted", unknown_media_ids=ids)
    return page


def _upsert(db: Database[Document], slug: str, update: dict[str, Any]) -> dict[str, Any]:
    def write() -> dict[str, Any] | None:
        return db[PAGES].find_one_and_update({"slug": slug}, update, upsert=True,
                                             return_document=ReturnDocument.AFTER)

    for _ in range(3):
        try:
            page = write()
        except DuplicateKeyError:
            # Two first writes of the same slug raced on the unique index: the loser updates.
            page = write()
        # mongod always returns the document; the embedded database, under concurrent writes
        # of one page, sometimes returns none (test_where_used_stays_exact_under_concurrent_page_writes
        # caught it once mypy's assert stood here). The write sets the same fields: done again.
        if page is not None:
            return page
    raise RuntimeError(f"the page {slug!r} was written but the database returned no document, three times")


def get_page(db: Database[Document], slug: str, *, include_drafts: bool) -> dict[str, Any]:
    """A page document; drafts are 404 unless ``include_drafts`` (so they do not leak).

    Pages without a ``published`` field come from the old builder, which had no drafts:
    they were live, so they count as published.
    """
    page = db[PAGES].find_one({"slug": slug}) if isinstance(slug, str) else None
    if page is None or (not include_drafts and page.get("published", True) is not True):
        raise NotFound("No page with this slug.", code="page_not_found")
    return page


_TIME = Field(json_schema_extra={"format": "date-time"})


class ShownBlock(Answer):
    """A block as a page's read answers it: as written (its editor's fields too, of any type),
    and for a library image its URLs, sizes and alt text."""

    model_config = ConfigDict(extra="allow")

    type: str
    media_id: IfSet[Annotated[str, Field(description="The library image it shows.")]] = None
    url: IfSet[Annotated[str, Field(description="A media block's: its image's URL.")]] = None
    variants: IfSet[Annotated[dict[str, Any], Field(
        description="A media block's: its image's variants.")]] = None
    # What a read adds to a media block (RESOLVED_KEYS): their types hold for media blocks only,
    # since another block keeps whatever its editor wrote under these names.
    variant_sizes: IfSet[Annotated[Any, Field(
        description="A media block's: its image's variant sizes.")]] = None
    width: IfSet[Annotated[Any, Field(description="A media block's: its image's width.")]] = None
    height: IfSet[Annotated[Any, Field(description="A media block's: its image's height.")]] = None
    content_type: IfSet[Annotated[Any, Field(description="A media block's: its image's type.")]] = None
    alt: IfSet[Annotated[Any, Field(description="The block's own, as written; else its image's alt text, "
                                                "when it has one.")]] = None
    missing: IfSet[Annotated[Literal[True], Field(description="Its image is gone (deleted).")]] = None
    legacy: IfSet[Annotated[Literal[True], Field(description=(
        "An old builder's block (image: /uploads/...), as it is until import-legacy rewrites it."))]] = None


class ShownPage(Answer):
    """A page, its media blocks resolved."""

    slug: str
    title: str
    published: bool
    blocks: list[ShownBlock]
    media_ids: IfSet[list[str]] = None
    created_at: Annotated[str | None, _TIME]
    updated_at: Annotated[str | None, _TIME]
    legacy: IfSet[Annotated[Literal[True], Field(description="A block is an old builder's.")]] = None


def render_page(media: AppMedia, page: dict[str, Any], signer: UrlSigner) -> dict[str, Any]:
    """A page as clients get it: each media block carries its media's URLs, sizes and alt.

    All the page's media are read with one query. A block whose media is gone is marked
    ``missing``; a block from the old builder (``image: "/uploads/..."``) is returned as it
    is, marked ``legacy``, until ``import-legacy`` rewrites it.
    """
    blocks = page.get("blocks") or []
    oids, _ = block_media_ids([b for b in blocks if isinstance(b, dict)])
    found = library(media).get_many(oids)
    rendered = []
    legacy = False
    for block in blocks:
        if not isinstance(block, dict):
            rendered.append(block)
            continue
        block = dict(block)
        if "media_id" in block:
            oid = parse_object_id(block["media_id"])
            image = found.get(oid) if oid is not None else None  # an unparsable id: missing
            if image is None:
                block["missing"] = True
            else:
                obj = image_object(image, signer)
                for key in ("url", "variants", "variant_sizes", "width", "height", "content_type"):
                    block[key] = obj[key]
                if "alt" not in block and obj.get("alt") is not None:
                    block["alt"] = obj["alt"]
        elif isinstance(block.get("image"), str):
            block[LEGACY_FLAG] = legacy = True
        rendered.append(block)
    shown = {
        "slug": page["slug"],
        "title": page.get("title", ""),
        "published": page.get("published", True) is True,
        "blocks": rendered,  # as read: plain values (ShownBlock declares them for the document)
        "media_ids": [str(o) for o in page.get("media_ids") or []],
        "created_at": isoformat(page.get("created_at")),
        "updated_at": isoformat(page.get("updated_at")),
    }
    if legacy:
        shown[LEGACY_FLAG] = True
    return ShownPage.filled(shown).answer()


def media_object(db: Database[Document], image: Image, signer: UrlSigner, *, with_used_in: bool = False,
                 near: Sequence[Library.Near] | None = None) -> dict[str, Any]:
    """A library entry as the API shows it (the image object, plus ``used_in`` when asked and
    ``near_duplicates`` when given)."""
    return image_object(image, signer, folder=image.folder or Library.ROOT_FOLDER, tags=list(image.tags),
                        used_in=used_in(db, image.id) if with_used_in else None,
                        near_duplicates=near_objects(near, signer) if near is not None else None)


# --- alt text --------------------------------------------------------------------------------

MAX_CONTEXT_PAGES = 20  # the pages read for each image's suggestions (its uses beyond are not)


def _colour(image: Image) -> str | None:
    """The image's dominant colour: its placeholder's, else its palette's first."""
    colour = (image.placeholder or {}).get("color")
    if colour is None and image.palette:
        colour = image.palette[0].get("color")
    return colour if isinstance(colour, str) else None


def _uses(db: Database[Document], oids: list[ObjectId]) -> dict[ObjectId, list[tuple[str, str]]]:
    """For each image, the (page title, block type) of its uses: the pages found through their
    ``media_ids`` (where-used, one indexed query), the first :data:`MAX_CONTEXT_PAGES` per image."""
    found: dict[ObjectId, list[tuple[str, str]]] = {oid: [] for oid in oids}
    for page in db[PAGES].find({"media_ids": {"$in": oids}}, {"title": 1, "blocks": 1}).sort("_id", 1):
        title = page["title"] if isinstance(page.get("title"), str) else ""
        for block in page.get("blocks") or []:
            oid = parse_object_id(block.get("media_id")) if isinstance(block, dict) else None
            if oid in found and len(found[oid]) < MAX_CONTEXT_PAGES:
                use = (title, str(block.get("type") or ""))
                if use not in found[oid]:
                    found[oid].append(use)
    return found


def alt_suggestions(image: Image, uses: list[tuple[str, str]]) -> list[str]:
    """Alt texts suggested for a library image (avenue/media/ingest/alttext.py): its file name,
    folder, tags and colour, and the pages using it."""
    return Alt.suggest(Alt.Context(filename=image.filename, colour=_colour(image), pages=uses,
                                   folder=image.folder, tags=image.tags))


def _page_media(media: AppMedia, slug: str) -> tuple[dict[str, Any], dict[ObjectId, Image]]:
    """A page (drafts included) and the library images its blocks use, in block order."""
    db = media.db
    page = get_page(db, check_slug(slug), include_drafts=True)
    oids, _ = block_media_ids([b for b in page.get("blocks") or [] if isinstance(b, dict)])
    images = library(media).get_many(oids)
    return page, {oid: images[oid] for oid in oids if oid in images}


def missing_alt(media: AppMedia, slug: str, window: Window) -> Page:
    """The library images a page uses that have no alt text (neither their own nor on each of
    the page's blocks showing them), in block order, numbered pages: each ``{"image",
    "suggestions"}``."""
    db = media.db
    if window.after is not None:
        raise BadRequest("This list has numbered pages (page, per_page).", code="invalid_pagination")
    page, images = _page_media(media, slug)
    covered = {oid: True for oid in images}
    for block in page.get("blocks") or []:
        oid = parse_object_id(block.get("media_id")) if isinstance(block, dict) else None
        if oid in covered and not (isinstance(block.get("alt"), str) and block["alt"].strip()):
            covered[oid] = False
    lacking = [oid for oid, image in images.items() if not image.alt and not covered[oid]]
    start = (window.page - 1) * window.per_page
    shown = lacking[start:start + window.per_page]
    uses = _uses(db, shown) if shown else {}
    docs = [{"image": images[oid], "suggestions": alt_suggestions(images[oid], uses[oid])} for oid in shown]
    return Page(docs, len(lacking), True, None)


def set_alt_texts(media: AppMedia, slug: str, changes: list[Alt.Change]) -> list[Alt.Result]:
    """Set the alt text of many of the library images a page uses (as ``PATCH /media/<id>``
    does: on the image, for every page showing it), each the text given or the suggestion
    accepted; what happened to each (``set``, ``unchanged``, ``not_found``: not on this page
    or gone, ``no_suggestion``)."""
    db = media.db
    _, images = _page_media(media, slug)
    asked = [oid for oid in (parse_object_id(c.id) for c in changes) if oid in images]
    uses = _uses(db, asked) if asked else {}
    results: list[Alt.Result] = []
    for change in changes:
        oid = parse_object_id(change.id)
        image = images.get(oid) if oid is not None else None
        if oid is None or image is None:
            results.append(Alt.Result(id=change.id, status="not_found"))
            continue
        alt = Alt.chosen(change, alt_suggestions(image, uses[oid]) if change.alt is None else [])
        if alt is None:
            results.append(Alt.Result(id=change.id, status="no_suggestion"))
        elif (image.alt or "") == alt:
            results.append(Alt.Result(id=change.id, status="unchanged", alt=alt or None))
        elif library(media).set_metadata(oid, alt=alt or None) is None:
            results.append(Alt.Result(id=change.id, status="not_found"))
        else:
            results.append(Alt.Result(id=change.id, status="set", alt=alt or None))
    return results
