"""HTTP views for /api/uploads."""

from __future__ import annotations

from bson import ObjectId
from flask import Blueprint, current_app, jsonify, request

from avenue import audit
from avenue.auth import require, require_role
from avenue.db import get_db
from avenue.http import one_file, page_args, uploaded_files
from avenue.media import UPLOADS, limits_from_config, signer_from_config
from avenue.ratelimit import limit_uploads
from avenue.uploads import service

bp = Blueprint("uploads", __name__, url_prefix="/api/uploads")
UPLOAD_ID = '<oid("upload_not_found", "No upload with this id."):upload_id>'


def _signer():
    return signer_from_config(current_app.config)


@bp.post("")
@one_file
@require_role()
@limit_uploads
def create_upload():
    """Store an image: 201 when stored, 200 when this user already uploaded the same one."""
    user = require()
    visibility = service.parse_visibility(request.form.get("visibility"))
    result = service.upload(get_db(), uploaded_files("file", single=True)[0], owner=user.id,
                            visibility=visibility, limits=limits_from_config(current_app.config))
    image = result.image
    audit.log("upload_created", bucket=UPLOADS, image_id=str(image.id), visibility=visibility,
              filename=image.filename, created=result.created)
    return jsonify(service.upload_object(image, _signer())), 201 if result.created else 200


@bp.get("")
@require_role()
def list_uploads():
    user = require()
    window = page_args()
    images, page = service.list_uploads(get_db(), window, user_id=user.id, is_admin=user.role == "admin",
                                        owner=request.args.get("owner"))
    return jsonify(page.shape([service.upload_object(i, _signer()) for i in images], window))


@bp.get(f"/{UPLOAD_ID}")
@require_role()
def get_upload(upload_id: ObjectId):
    user = require()
    image = service.get_upload(get_db(), upload_id, user_id=user.id, is_admin=user.role == "admin")
    return jsonify(service.upload_object(image, _signer()))


@bp.delete(f"/{UPLOAD_ID}")
@require_role()
def delete_upload(upload_id: ObjectId):
    user = require()
    image = service.delete_upload(get_db(), upload_id, user_id=user.id, is_admin=user.role == "admin")
    audit.log("upload_deleted", bucket=UPLOADS, image_id=str(upload_id), owner=image.owner)
    return "", 204
