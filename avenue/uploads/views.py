"""HTTP views for /api/uploads."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from flask import Blueprint, Response, current_app, jsonify, request, url_for

from avenue import audit
from avenue.auth import require, require_role
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
from avenue.media import Buckets, Library, Limits, UrlSigner
from avenue.presentation.objects import signer_from_config
from avenue.ratelimit import limit_uploads
from avenue.uploads import service

bp = Blueprint("uploads", __name__, url_prefix="/api/uploads")
UPLOAD_ID = '<oid("upload_not_found", "No upload with this id."):upload_id>'


def _signer() -> UrlSigner:
    # Every route here answers the caller's own uploads (or an admin's): their editor.
    return signer_from_config(current_app.config, sources=True)


@bp.post("")
@one_file
@require_role()
@limit_uploads
def create_upload() -> tuple[Response, int]:
    """Store an image: 201 when stored, 200 when this user already uploaded the same one."""
    user = require()
    visibility = service.parse_visibility(request.form.get("visibility"))
    result = service.upload(app_media(), uploaded_files("file", single=True)[0], owner=user.id,
                            visibility=visibility, limits=Limits.from_config(current_app.config))
    image = result.image
    audit.log("upload_created", bucket=Buckets.UPLOADS, image_id=str(image.id), visibility=visibility,
              filename=image.filename, created=result.created)
    return jsonify(service.upload_object(image, _signer(), result.near)), 201 if result.created else 200


@bp.get("")
@require_role()
@takes_query(service.UploadsQuery)
def list_uploads(query: service.UploadsQuery) -> Response:
    user = require()
    window = page_args()
    images, page = service.list_uploads(app_media(), window, user_id=user.id, is_admin=user.role == "admin",
                                        owner=query.owner)
    return jsonify(page.shape([service.upload_object(i, _signer()) for i in images], window))


@bp.get(f"/{UPLOAD_ID}")
@require_role()
def get_upload(upload_id: ObjectId) -> Response:
    user = require()
    image = service.get_upload(app_media(), upload_id, user_id=user.id, is_admin=user.role == "admin")
    return jsonify(service.upload_object(image, _signer()))


@bp.put(f"/{UPLOAD_ID}")
@one_file
@require_role()
@limit_uploads
def replace_upload(upload_id: ObjectId) -> Response:
    """New bytes for an upload, same id and visibility; its URLs change (the old ones redirect
    for AVENUE_REPLACED_REDIRECT_DAYS) and the old bytes go to the trash."""
    return _replace(upload_id, "upload_replaced", file=uploaded_files("file", single=True)[0])


@bp.put(f"/{UPLOAD_ID}/focal-point")
@require_role()
@takes(Library.FocalBody)
def set_upload_focal_point(body: Library.FocalBody, upload_id: ObjectId) -> Response:
    """Where the subject is: the crops are cut again around it, and the URLs change."""
    return _replace(upload_id, "upload_focal_point_set", focal=body.point)


@bp.put(f"/{UPLOAD_ID}/edits")
@require_role()
@takes(Library.EditsBody)
def edit_upload(body: Library.EditsBody, upload_id: ObjectId) -> Response:
    """Rotate, flip and crop the original (non-destructive): a new version with new URLs."""
    edits = body.edits
    user = require()
    done = service.edit_upload(app_media(), upload_id, user_id=user.id, is_admin=user.role == "admin",
                               edits=edits)
    return _changed(upload_id, "upload_edited", done)


@bp.delete(f"/{UPLOAD_ID}/edits")
@require_role()
def undo_upload_edits(upload_id: ObjectId) -> Response:
    """Back to the original: a new version without edits."""
    user = require()
    done = service.edit_upload(app_media(), upload_id, user_id=user.id, is_admin=user.role == "admin",
                               edits=None)
    return _changed(upload_id, "upload_edits_undone", done)


@bp.put(f"/{UPLOAD_ID}/crops/<name>")
@require_role()
@takes(Library.CropBody)
def set_upload_crop(body: Library.CropBody, upload_id: ObjectId, name: str) -> Response:
    """Set the named crop ``name`` (fractions of the edited picture): a new version."""
    box = body.named(name)
    user = require()
    done = service.set_upload_crop(app_media(), upload_id, user_id=user.id, is_admin=user.role == "admin",
                                   name=name, box=box)
    return _changed(upload_id, "upload_crop_set", done, crop=name)


@bp.delete(f"/{UPLOAD_ID}/crops/<name>")
@require_role()
def delete_upload_crop(upload_id: ObjectId, name: str) -> Response:
    """Delete the named crop ``name``: a new version."""
    user = require()
    done = service.set_upload_crop(app_media(), upload_id, user_id=user.id, is_admin=user.role == "admin",
                                   name=Library.CropBody.check_name(name), box=None)
    return _changed(upload_id, "upload_crop_deleted", done, crop=name)


VERSION = "<version_id>"


@bp.get(f"/{UPLOAD_ID}/versions")
@require_role()
def list_upload_versions(upload_id: ObjectId) -> Response:
    """The upload's current version and its earlier ones still kept (AVENUE_TRASH_DAYS), newest first."""
    user = require()
    listed = service.upload_versions(app_media(), upload_id, user_id=user.id, is_admin=user.role == "admin")
    return jsonify(versions_answer(listed, lambda v: url_for(
        "uploads.upload_version_preview", upload_id=upload_id, version_id=v)))


@bp.post(f"/{UPLOAD_ID}/versions/{VERSION}/restore")
@require_role()
def restore_upload_version(upload_id: ObjectId, version_id: str) -> Response:
    """An earlier version made current again, as a new version: the upload keeps its id."""
    user = require()
    done = service.restore_upload_version(app_media(), upload_id, version_id, user_id=user.id,
                                          is_admin=user.role == "admin",
                                          limits=Limits.from_config(current_app.config))
    return _changed(upload_id, "upload_version_restored", done, name_near=True, restored=version_id)


@bp.get(f"/{UPLOAD_ID}/versions/{VERSION}/preview")
@require_role()
def upload_version_preview(upload_id: ObjectId, version_id: str) -> Response:
    """A small WebP of one version."""
    user = require()
    return private_picture(service.upload_version_preview(app_media(), upload_id, version_id, user_id=user.id,
                                                          is_admin=user.role == "admin"), "image/webp")


@bp.get(f"/{UPLOAD_ID}/versions/{VERSION}/compare/<after>")
@require_role()
def compare_upload_versions(upload_id: ObjectId, version_id: str, after: str) -> Response:
    """The share of pixels that differ from one version to another, and the heat map's URL."""
    user = require()
    compared, _ = service.compare_upload_versions(app_media(), upload_id, version_id, after, user_id=user.id,
                                                  is_admin=user.role == "admin")
    heat_map = url_for("uploads.upload_versions_heat_map", upload_id=upload_id, version_id=version_id,
                       after=after)
    return jsonify(comparison_answer(compared, heat_map))


@bp.get(f"/{UPLOAD_ID}/versions/{VERSION}/compare/<after>/heat-map")
@require_role()
def upload_versions_heat_map(upload_id: ObjectId, version_id: str, after: str) -> Response:
    """The heat map of what differs between two versions (PNG)."""
    user = require()
    _, data = service.compare_upload_versions(app_media(), upload_id, version_id, after, user_id=user.id,
                                              is_admin=user.role == "admin")
    return private_picture(data, "image/png")


def _changed(upload_id: ObjectId, action: str, done: Library.Changed, *, name_near: bool = False,
             **details: Any) -> Response:
    """Audit a change of an upload and answer its object; ``name_near`` (a replace): with its
    near-duplicates, as an upload's answer names them: those its new picture was just grouped
    with, else (a new focal point: the same picture) looked up."""
    audit.log(action, bucket=Buckets.UPLOADS, image_id=str(upload_id), version=done.image.version,
              changed=done.changed, **details)
    near = None
    if name_near:
        near = service.near_duplicates(app_media(), done.image) if done.near is None else done.near
    return jsonify(service.upload_object(done.image, _signer(), near))


def _replace(upload_id: ObjectId, action: str, **change: Any) -> Response:
    """New bytes or a new focal point (``change``) for an upload the user may see; audited."""
    user = require()
    limits = Limits.from_config(current_app.config)
    done = service.replace_upload(app_media(), upload_id, user_id=user.id, is_admin=user.role == "admin",
                                  limits=limits, **change)
    return _changed(upload_id, action, done, name_near=True)


@bp.delete(f"/{UPLOAD_ID}")
@require_role()
def delete_upload(upload_id: ObjectId) -> tuple[str, int]:
    user = require()
    image = service.delete_upload(app_media(), upload_id, user_id=user.id, is_admin=user.role == "admin")
    audit.log("upload_deleted", bucket=Buckets.UPLOADS, image_id=str(upload_id), owner=image.owner)
    return "", 204
