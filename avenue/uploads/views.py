"""HTTP views for /api/uploads."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from avenue import audit
from avenue.auth import require, require_role
from avenue.db import get_db
from avenue.http import page_args, paginated, uploaded_files
from avenue.media import UPLOADS, limits_from_config, signer_from_config
from avenue.ratelimit import limit_uploads
from avenue.uploads import service

bp = Blueprint("uploads", __name__, url_prefix="/api/uploads")


def _signer():
    return signer_from_config(current_app.config)


@bp.post("")
@require_role()
@limit_uploads
def create_upload():
    """Store an image: 201 when stored, 200 when this user already uploaded the same one."""
    user = require()
    visibility = service.parse_visibility(request.form.get("visibility"))
    upload = uploaded_files("file", single=True)[0]
    result = service.upload(get_db(), upload.stream, filename=upload.filename, owner=user.id,
                            visibility=visibility, limits=limits_from_config(current_app.config))
    doc = result.doc
    audit.log("upload_created", bucket=UPLOADS, image_id=str(doc["_id"]), visibility=visibility,
              filename=doc["metadata"]["filename"], created=result.created)
    return jsonify(service.upload_object(doc, _signer())), 201 if result.created else 200


@bp.get("")
@require_role()
def list_uploads():
    user = require()
    page, per_page = page_args()
    docs, total = service.list_uploads(get_db(), user_id=user.id, is_admin=user.role == "admin",
                                       owner=request.args.get("owner"), page=page, per_page=per_page)
    return jsonify(paginated([service.upload_object(d, _signer()) for d in docs], total, page, per_page))


@bp.get("/<upload_id>")
@require_role()
def get_upload(upload_id: str):
    user = require()
    doc = service.get_upload(get_db(), upload_id, user_id=user.id, is_admin=user.role == "admin")
    return jsonify(service.upload_object(doc, _signer()))


@bp.delete("/<upload_id>")
@require_role()
def delete_upload(upload_id: str):
    user = require()
    doc = service.delete_upload(get_db(), upload_id, user_id=user.id, is_admin=user.role == "admin")
    audit.log("upload_deleted", bucket=UPLOADS, image_id=upload_id, owner=doc["metadata"].get("owner"))
    return "", 204
