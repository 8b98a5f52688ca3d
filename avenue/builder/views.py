"""HTTP views for /api/builder: the media library and pages."""

from __future__ import annotations

from bson import ObjectId
from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user

from avenue import audit
from avenue.auth import require, require_role
from avenue.builder import service
from avenue.db import get_db
from avenue.errors import BadRequest
from avenue.http import json_body, one_file, page_args, uploaded_files
from avenue.media import BUILDER, limits_from_config, signer_from_config
from avenue.ratelimit import limit_uploads

bp = Blueprint("builder", __name__, url_prefix="/api/builder")

EDITOR_ROLES = ("editor", "admin")
MEDIA_ID = '<oid("media_not_found", "No builder media with this id."):media_id>'


def _signer():
    return signer_from_config(current_app.config)


@bp.post("/media")
@one_file
@require_role("editor")
@limit_uploads
def upload_media():
    """Add an image to the library: 201 when stored, 200 when the same image was already there."""
    result = service.upload_media(get_db(), uploaded_files("file", single=True)[0], owner=require().id,
                                  alt=request.form.get("alt"), limits=limits_from_config(current_app.config))
    image = result.image
    audit.log("builder_media_uploaded", bucket=BUILDER, image_id=str(image.id), filename=image.filename,
              created=result.created)
    return jsonify(service.media_object(get_db(), image, _signer())), 201 if result.created else 200


@bp.get("/media")
@require_role("editor")
def list_media():
    window = page_args()
    images, page = service.list_media(get_db(), window, q=request.args.get("q", ""))
    items = [service.media_object(get_db(), image, _signer()) for image in images]
    return jsonify(page.shape(items, window))


@bp.get(f"/media/{MEDIA_ID}")
@require_role("editor")
def get_media(media_id: ObjectId):
    image = service.get_media(get_db(), media_id)
    return jsonify(service.media_object(get_db(), image, _signer(), with_used_in=True))


@bp.patch(f"/media/{MEDIA_ID}")
@require_role("editor")
def update_media(media_id: ObjectId):
    """``{alt}``: replace the alt text (the console's library edits it)."""
    body = json_body()
    alt = body.get("alt")
    if alt is not None and not isinstance(alt, str):
        raise BadRequest("alt must be a string.", code="invalid_alt")
    image = service.set_alt(get_db(), media_id, alt)
    audit.log("builder_media_updated", bucket=BUILDER, image_id=str(media_id))
    return jsonify(service.media_object(get_db(), image, _signer(), with_used_in=True))


@bp.delete(f"/media/{MEDIA_ID}")
@require_role("editor")
def delete_media(media_id: ObjectId):
    force = request.args.get("force", "").lower() in {"1", "true", "yes"}
    pages = service.delete_media(get_db(), media_id, force=force)
    audit.log("builder_media_deleted", bucket=BUILDER, image_id=str(media_id), force=force,
              pages=pages or None)
    return "", 204


@bp.get("/pages/<slug>")
def get_page(slug: str):
    """A page: anyone when published; editors and admins also see drafts."""
    editor = current_user.is_authenticated and current_user.role in EDITOR_ROLES
    page = service.get_page(get_db(), slug, include_drafts=editor)
    return jsonify(service.render_page(get_db(), page, _signer()))


@bp.put("/pages/<slug>")
@require_role("editor")
def put_page(slug: str):
    fields = service.parse_page(json_body())
    page = service.put_page(get_db(), slug, fields)
    audit.log("page_written", slug=slug, media_ids=[str(o) for o in page["media_ids"]],
              published=page.get("published"))
    return jsonify(service.render_page(get_db(), page, _signer()))
