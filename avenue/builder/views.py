"""HTTP views for /api/builder: the media library and pages."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from flask import Blueprint, Response, current_app, jsonify, request, url_for
from flask_login import current_user

from avenue import audit
from avenue.auth import edits_images, require, require_role
from avenue.builder import service
from avenue.db import get_db
from avenue.http import (
    app_media,
    comparison_answer,
    one_file,
    page_args,
    private_picture,
    takes,
    takes_query,
    uploaded_files,
    versions_answer,
)
from avenue.media import Alt, Buckets, Deliveries, Library, Limits, UrlSigner
from avenue.presentation.objects import signer_from_config
from avenue.ratelimit import limit_uploads

bp = Blueprint("builder", __name__, url_prefix="/api/builder")

EDITOR_ROLES = ("editor", "admin")
MEDIA_ID = '<oid("media_not_found", "No builder media with this id."):media_id>'


def _signer() -> UrlSigner:
    return signer_from_config(current_app.config, sources=edits_images())


@bp.post("/media")
@one_file
@require_role("editor")
@limit_uploads
def upload_media() -> tuple[Response, int]:
    """Add an image to the library: 201 when stored, 200 when the same image was already there."""
    tags = request.form.getlist("tags")
    result = service.upload_media(app_media(), uploaded_files("file", single=True)[0], owner=require().id,
                                  alt=request.form.get("alt"), limits=Limits.from_config(current_app.config),
                                  folder=request.form.get("folder"),
                                  tags=",".join(tags) if tags else None)
    image = result.image
    audit.log("builder_media_uploaded", bucket=Buckets.BUILDER, image_id=str(image.id),
              filename=image.filename, created=result.created)
    return jsonify(service.media_object(get_db(), image, _signer(), near=result.near)), \
        201 if result.created else 200


@bp.get("/media")
@require_role("editor")
@takes_query(service.LibraryQuery)
def list_media(query: service.LibraryQuery) -> Response:
    window = page_args()
    images, page = service.list_media(app_media(), window, query, sort=query.sort)
    items = [service.media_object(get_db(), image, _signer()) for image in images]
    return jsonify(page.shape(items, window))


@bp.post("/media/bulk")
@require_role("editor")
@takes(service.Bulk)
def bulk_media(bulk: service.Bulk) -> Response:
    """Move, tag, untag, delete or restore many library images at once (ids, or a filter's
    images 500 at a time): what was done and each refusal with its reason."""
    result = service.bulk_media(app_media(), bulk)
    audit.log("builder_media_bulk", bucket=Buckets.BUILDER, operation=bulk.action, done=result.done,
              refused=len(result.refused), by_filter=bulk.ids is None, folder=bulk.folder,
              tags=bulk.tags or None, force=bulk.force or None)
    return jsonify(result.answer())


@bp.get("/media/near-duplicates")
@require_role("editor")
def list_near_duplicates() -> Response:
    """Groups of library images that look alike (re-encoded, resized, slightly cropped copies)."""
    return jsonify(service.near_groups(app_media(), page_args(), _signer()))


@bp.get("/media/duplicates")
@require_role("editor")
def list_duplicates() -> Response:
    """Groups of exact duplicates: the same bytes, or files decoding to the same pixels."""
    return jsonify(service.exact_groups(app_media(), page_args(), _signer()))


@bp.post("/media/merge")
@require_role("editor")
@takes(service.Merge)
def merge_media(merge: service.Merge) -> Response:
    """Merge duplicates into one: pages re-pointed to ``keep``, the others to the trash."""
    merged = service.merge_media(app_media(), merge)
    audit.log("builder_media_merged", bucket=Buckets.BUILDER, image_id=str(merge.keep),
              merged=[item.id for item in merged])
    return jsonify(service.Merged(keep=str(merge.keep), merged=merged).answer())


@bp.get(f"/media/{MEDIA_ID}")
@require_role("editor")
def get_media(media_id: ObjectId) -> Response:
    image = service.get_media(app_media(), media_id)
    return jsonify(service.media_object(get_db(), image, _signer(), with_used_in=True,
                                        near=service.near_duplicates(app_media(), image)))


@bp.get(f"/media/{MEDIA_ID}/deliveries")
@require_role("editor")
@takes_query(Deliveries.DayRange)
def get_media_deliveries(query: Deliveries.DayRange, media_id: ObjectId) -> Response:
    """A library image's answers and bytes per day over ``?from=&to=`` (the card's chart)."""
    return jsonify(service.media_deliveries(app_media(), media_id, query))


@bp.patch(f"/media/{MEDIA_ID}")
@require_role("editor")
@takes(service.MediaChange)
def update_media(change: service.MediaChange, media_id: ObjectId) -> Response:
    """Change alt text, folder or tags of a library image."""
    image = service.update_media(app_media(), media_id, change)
    audit.log("builder_media_updated", bucket=Buckets.BUILDER, image_id=str(media_id),
              fields=sorted(change.model_fields_set))
    return jsonify(service.media_object(get_db(), image, _signer(), with_used_in=True))


@bp.put(f"/media/{MEDIA_ID}")
@one_file
@require_role("editor")
@limit_uploads
def replace_media(media_id: ObjectId) -> Response:
    """New bytes for library media, same id: pages keep it; its URLs change (the old ones
    redirect for AVENUE_REPLACED_REDIRECT_DAYS) and the old bytes go to the trash."""
    return _replace(media_id, "builder_media_replaced", file=uploaded_files("file", single=True)[0])


@bp.put(f"/media/{MEDIA_ID}/focal-point")
@require_role("editor")
@takes(Library.FocalBody)
def set_media_focal_point(body: Library.FocalBody, media_id: ObjectId) -> Response:
    """Where the subject is: the crops are cut again around it, and the URLs change."""
    return _replace(media_id, "builder_media_focal_point_set", focal=body.point)


@bp.put(f"/media/{MEDIA_ID}/name")
@require_role("editor")
@takes(Library.NameBody)
def rename_media(named: Library.NameBody, media_id: ObjectId) -> Response:
    """Give it a readable name in its public URL (null: none); the URLs of other names 301 to it."""
    done = service.rename_media(app_media(), media_id, named.name)
    return _changed(media_id, "builder_media_renamed", done, name=done.image.name)


@bp.put(f"/media/{MEDIA_ID}/edits")
@require_role("editor")
@takes(Library.EditsBody)
def edit_media(body: Library.EditsBody, media_id: ObjectId) -> Response:
    """Rotate, flip and crop the original (non-destructive): a new version with new URLs."""
    done = service.edit_media(app_media(), media_id, body.edits)
    return _changed(media_id, "builder_media_edited", done)


@bp.delete(f"/media/{MEDIA_ID}/edits")
@require_role("editor")
def undo_media_edits(media_id: ObjectId) -> Response:
    """Back to the original: a new version without edits."""
    done = service.edit_media(app_media(), media_id, None)
    return _changed(media_id, "builder_media_edits_undone", done)


@bp.put(f"/media/{MEDIA_ID}/crops/<name>")
@require_role("editor")
@takes(Library.CropBody)
def set_media_crop(body: Library.CropBody, media_id: ObjectId, name: str) -> Response:
    """Set the named crop ``name`` (fractions of the edited picture): a new version."""
    done = service.set_media_crop(app_media(), media_id, name, body.named(name))
    return _changed(media_id, "builder_media_crop_set", done, crop=name)


@bp.delete(f"/media/{MEDIA_ID}/crops/<name>")
@require_role("editor")
def delete_media_crop(media_id: ObjectId, name: str) -> Response:
    """Delete the named crop ``name``: a new version."""
    done = service.set_media_crop(app_media(), media_id, Library.CropBody.check_name(name), None)
    return _changed(media_id, "builder_media_crop_deleted", done, crop=name)


def _changed(media_id: ObjectId, action: str, done: Library.Changed, **details: Any) -> Response:
    """Audit a change of library media and answer its object, with its near-duplicates: those
    a new picture was just grouped with, else looked up (the picture is the same)."""
    audit.log(action, bucket=Buckets.BUILDER, image_id=str(media_id), version=done.image.version,
              changed=done.changed, **details)
    near = service.near_duplicates(app_media(), done.image) if done.near is None else done.near
    return jsonify(service.media_object(get_db(), done.image, _signer(), with_used_in=True, near=near))


def _replace(media_id: ObjectId, action: str, **change: Any) -> Response:
    """New bytes or a new focal point (``change``) for library media; audited."""
    limits = Limits.from_config(current_app.config)
    done = service.replace_media(app_media(), media_id, limits=limits, **change)
    return _changed(media_id, action, done)


VERSION = "<version_id>"


@bp.get(f"/media/{MEDIA_ID}/versions")
@require_role("editor")
def list_media_versions(media_id: ObjectId) -> Response:
    """The media's current version and its earlier ones still kept (AVENUE_TRASH_DAYS), newest first."""
    listed = service.media_versions(app_media(), media_id)
    return jsonify(versions_answer(listed, lambda v: url_for(
        "builder.media_version_preview", media_id=media_id, version_id=v)))


@bp.post(f"/media/{MEDIA_ID}/versions/{VERSION}/restore")
@require_role("editor")
def restore_media_version(media_id: ObjectId, version_id: str) -> Response:
    """An earlier version made current again, as a new version: pages keep the media."""
    done = service.restore_media_version(app_media(), media_id, version_id,
                                         limits=Limits.from_config(current_app.config))
    return _changed(media_id, "builder_media_version_restored", done, restored=version_id)


@bp.get(f"/media/{MEDIA_ID}/versions/{VERSION}/preview")
@require_role("editor")
def media_version_preview(media_id: ObjectId, version_id: str) -> Response:
    """A small WebP of one version."""
    return private_picture(service.media_version_preview(app_media(), media_id, version_id), "image/webp")


@bp.get(f"/media/{MEDIA_ID}/versions/{VERSION}/compare/<after>")
@require_role("editor")
def compare_media_versions(media_id: ObjectId, version_id: str, after: str) -> Response:
    """The share of pixels that differ from one version to another, and the heat map's URL."""
    compared, _ = service.compare_media_versions(app_media(), media_id, version_id, after)
    return jsonify(comparison_answer(compared, url_for("builder.media_versions_heat_map", media_id=media_id,
                                                       version_id=version_id, after=after)))


@bp.get(f"/media/{MEDIA_ID}/versions/{VERSION}/compare/<after>/heat-map")
@require_role("editor")
def media_versions_heat_map(media_id: ObjectId, version_id: str, after: str) -> Response:
    """The heat map of what differs between two versions (PNG)."""
    _, data = service.compare_media_versions(app_media(), media_id, version_id, after)
    return private_picture(data, "image/png")


@bp.get("/folders")
@require_role("editor")
def list_folders() -> Response:
    """Every folder of the library with its image count."""
    return jsonify(service.folders(app_media()).answer())


@bp.get("/tags")
@require_role("editor")
def list_tags() -> Response:
    """Every tag of the library with its image count."""
    return jsonify(service.tags_in_use(app_media()).answer())


@bp.delete(f"/media/{MEDIA_ID}")
@require_role("editor")
@takes_query(service.DeleteQuery)
def delete_media(query: service.DeleteQuery, media_id: ObjectId) -> tuple[str, int]:
    pages = service.delete_media(app_media(), media_id, force=query.force)
    audit.log("builder_media_deleted", bucket=Buckets.BUILDER, image_id=str(media_id), force=query.force,
              pages=pages or None)
    return "", 204


@bp.get("/pages/<slug>/alt-text")
@require_role("editor")
def list_missing_alt(slug: str) -> Response:
    """The library images a page shows without alt text, each with suggested alt texts (no
    model: the pages using it and their block types, its file name, folder, tags and colour)."""
    window = page_args()
    page = service.missing_alt(app_media(), slug, window)
    signer = _signer()
    items = [Alt.Missing.filled({"image": service.media_object(get_db(), d["image"], signer),
                                 "suggestions": d["suggestions"]}).answer() for d in page.docs]
    return jsonify(page.shape(items, window))


@bp.post("/pages/<slug>/alt-text")
@require_role("editor")
@takes(Alt.Changes)
def set_alt_texts(asked: Alt.Changes, slug: str) -> Response:
    """Set the alt text of many of the library images a page shows: each the text given or a
    suggestion accepted; what happened to each."""
    results = service.set_alt_texts(app_media(), slug, asked.images)
    audit.log("page_alt_text_set", slug=slug, bucket=Buckets.BUILDER,
              image_ids=[result.id for result in results if result.status == "set"] or None)
    return jsonify({"results": [result.answer() for result in results]})


@bp.get("/pages/<slug>")
def get_page(slug: str) -> Response:
    """A page: anyone when published; editors and admins also see drafts."""
    editor = current_user.is_authenticated and current_user.role in EDITOR_ROLES
    page = service.get_page(get_db(), slug, include_drafts=editor)
    return jsonify(service.render_page(app_media(), page, _signer()))


@bp.put("/pages/<slug>")
@require_role("editor")
@takes(service.PageWrite)
def put_page(written: service.PageWrite, slug: str) -> Response:
    fields = service.page_fields(written)
    page = service.put_page(app_media(), slug, fields)
    audit.log("page_written", slug=slug, media_ids=[str(o) for o in page["media_ids"]],
              published=page.get("published"))
    return jsonify(service.render_page(app_media(), page, _signer()))
