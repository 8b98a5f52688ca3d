"""HTTP views for /api/trash (editors: the library's; admins: everything)."""

from __future__ import annotations

from bson import ObjectId
from flask import Blueprint, Response, current_app, jsonify

from avenue import audit
from avenue.auth import edits_images, require, require_role
from avenue.http import app_media, page_args, takes_query
from avenue.presentation.objects import signer_from_config
from avenue.trash import service

bp = Blueprint("trash", __name__, url_prefix="/api/trash")

ITEM_ID = '<oid("trash_item_not_found", "No image with this id in the trash."):image_id>'


@bp.get("")
@require_role("editor")
@takes_query(service.TrashQuery)
def list_trash(query: service.TrashQuery) -> Response:
    window = page_args()
    items, page = service.list_trash(app_media(), window, role=require().role, source=query.from_)
    return jsonify(page.shape([service.trash_object(item) for item in items], window))


@bp.get(f"/{ITEM_ID}")
@require_role("editor")
def get_item(image_id: ObjectId) -> Response:
    return jsonify(service.trash_object(service.get_item(app_media(), image_id, role=require().role)))


@bp.post(f"/{ITEM_ID}/restore")
@require_role("editor")
def restore(image_id: ObjectId) -> Response:
    answer = service.restore(app_media(), image_id, role=require().role,
                             max_images=current_app.config["AVENUE_MAX_PRODUCT_IMAGES"],
                             signer=signer_from_config(current_app.config, sources=edits_images()))
    audit.log("trash_restored", image_id=str(image_id), source=answer["from"], product=answer.get("product"),
              reused=answer["reused"])
    return jsonify(answer)


@bp.delete(f"/{ITEM_ID}")
@require_role("editor")
def purge(image_id: ObjectId) -> tuple[str, int]:
    item = service.purge(app_media(), image_id, role=require().role)
    audit.log("trash_purged", image_id=str(image_id), source=item.image.bucket)
    return "", 204
