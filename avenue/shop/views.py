"""HTTP views for /api/shop: products, their images, temp images, and the routes of the two status reports."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from flask import Blueprint, Response, current_app, jsonify, url_for

from avenue import audit, status
from avenue.auth import edits_images, require, require_role
from avenue.db import get_db
from avenue.http import (
    app_media,
    comparison_answer,
    one_file,
    page_args,
    private_picture,
    product_files,
    takes,
    takes_query,
    uploaded_files,
    versions_answer,
)
from avenue.media import Alt, Buckets, Library, Limits, UrlSigner
from avenue.presentation.objects import near_objects, signer_from_config
from avenue.ratelimit import limit_uploads
from avenue.shop import service

bp = Blueprint("shop", __name__, url_prefix="/api/shop")
IMAGE_ID = '<oid("image_not_found", "This product has no image with this id."):image_id>'


def _signer() -> UrlSigner:
    return signer_from_config(current_app.config, sources=edits_images())


def _settings() -> service.Settings:
    config = current_app.config
    return service.Settings(max_images=config["AVENUE_MAX_PRODUCT_IMAGES"],
                            temp_ttl_seconds=config["AVENUE_TEMP_IMAGE_TTL_SECONDS"],
                            limits=Limits.from_config(config))


def _product(doc: dict[str, Any]) -> Response:
    return jsonify(service.product_object(doc, _signer()))


@bp.get("/products")
def list_products() -> Response:
    """Products by sku, one page at a time (anyone)."""
    window = page_args()
    page = service.list_products(get_db(), window)
    return jsonify(page.shape([service.product_object(d, _signer()) for d in page.docs], window))


@bp.post("/products")
@require_role("admin")
@takes(service.NewProduct)
def create_product(new: service.NewProduct) -> tuple[Response, int]:
    """Create a product; ``temp_image_ids`` become its images in the given order."""
    user = require()
    doc = service.create_product(app_media(), new, owner=user.id, settings=_settings())
    audit.log("product_created", sku=doc["sku"], bucket=Buckets.PRODUCTS,
              image_ids=[str(i) for i in service.stored_ids(doc)] or None)
    return _product(doc), 201


@bp.get("/products/<sku>")
def get_product(sku: str) -> Response:
    """One product (anyone); each photo names the other products that use it (``also_on``)."""
    doc = service.get_product(get_db(), sku)
    return jsonify(service.product_object(doc, _signer(), also_on=service.photo_users(get_db(), doc)))


@bp.patch("/products/<sku>")
@require_role("admin")
@takes(service.ProductChange)
def update_product(change: service.ProductChange, sku: str) -> Response:
    """Change a product's name and/or price."""
    doc = service.update_product(get_db(), sku, change)
    audit.log("product_updated", sku=sku, fields=sorted(change.model_fields_set))
    return _product(doc)


@bp.delete("/products/<sku>")
@require_role("admin")
def delete_product(sku: str) -> tuple[str, int]:
    """Delete a product and every image file no other product uses."""
    doc = service.delete_product(app_media(), sku)
    audit.log("product_deleted", sku=sku, bucket=Buckets.PRODUCTS,
              image_ids=[str(i) for i in service.stored_ids(doc)] or None)
    return "", 204


@bp.post("/temp-images")
@product_files
@require_role("admin")
@limit_uploads
def upload_temp_images() -> tuple[Response, int]:
    """Photos uploaded before their product is saved; unclaimed ones expire."""
    user = require()
    images = service.store_temp_images(app_media(), uploaded_files("images"), owner=user.id,
                                       settings=_settings())
    audit.log("temp_images_uploaded", bucket=Buckets.TEMP, image_ids=[str(i.id) for i in images])
    return jsonify({"images": [service.temp_object(i, _signer()) for i in images]}), 201


@bp.post("/products/<sku>/images")
@product_files
@require_role("admin")
@limit_uploads
def add_images(sku: str) -> tuple[Response, int]:
    """Add images to a product (all or nothing, within its limit)."""
    user = require()
    added = service.add_images(app_media(), sku, uploaded_files("images"), owner=user.id,
                               settings=_settings())
    audit.log("product_images_added", sku=sku, bucket=Buckets.PRODUCTS,
              image_ids=[str(r["id"]) for r in added.refs])
    signer = _signer()
    return jsonify({"product": service.product_object(added.product, signer),
                    "added": added.entries(signer)}), 201


@bp.delete(f"/products/<sku>/images/{IMAGE_ID}")
@require_role("admin")
def delete_image(sku: str, image_id: ObjectId) -> Response:
    """Take an image off a product; the file goes unless another product uses it."""
    doc = service.delete_product_image(app_media(), sku, image_id)
    audit.log("product_image_deleted", sku=sku, bucket=Buckets.PRODUCTS, image_id=str(image_id))
    return _product(doc)


@bp.get(f"/products/<sku>/images/{IMAGE_ID}/near-duplicates")
@require_role("admin")
def image_near_duplicates(sku: str, image_id: ObjectId) -> Response:
    """The product photos that look like this one (an upload's answer leaves them out when its
    lookup was late: the console asks here then)."""
    near = service.product_image_near_duplicates(app_media(), sku, image_id)
    return jsonify({"near_duplicates": near_objects(near, _signer())})


@bp.put(f"/products/<sku>/images/{IMAGE_ID}")
@one_file
@require_role("admin")
@limit_uploads
def replace_image(sku: str, image_id: ObjectId) -> Response:
    """New bytes for a product photo, same id and place; its URLs change (the old ones redirect
    for AVENUE_REPLACED_REDIRECT_DAYS) and the old bytes go to the trash."""
    return _replace(sku, image_id, "product_image_replaced", file=uploaded_files("file", single=True)[0])


@bp.put(f"/products/<sku>/images/{IMAGE_ID}/focal-point")
@require_role("admin")
@takes(Library.FocalBody)
def set_image_focal_point(body: Library.FocalBody, sku: str, image_id: ObjectId) -> Response:
    """Where the subject is: the crops are cut again around it, and the URLs change."""
    return _replace(sku, image_id, "product_image_focal_point_set", focal=body.point)


@bp.put(f"/products/<sku>/images/{IMAGE_ID}/name")
@require_role("admin")
@takes(Library.NameBody)
def rename_image(named: Library.NameBody, sku: str, image_id: ObjectId) -> Response:
    """Give the photo a readable name in its public URL (null: none); the URLs of other names 301 to it."""
    name = named.name
    done = service.rename_product_image(app_media(), sku, image_id, name)
    return _photo(sku, image_id, "product_image_renamed", *done, name=name)


@bp.put(f"/products/<sku>/images/{IMAGE_ID}/edits")
@require_role("admin")
@takes(Library.EditsBody)
def edit_image(body: Library.EditsBody, sku: str, image_id: ObjectId) -> Response:
    """Rotate, flip and crop the photo's original (non-destructive): a new version, new URLs."""
    done = service.edit_product_image(app_media(), sku, image_id, body.edits)
    return _photo(sku, image_id, "product_image_edited", *done)


@bp.delete(f"/products/<sku>/images/{IMAGE_ID}/edits")
@require_role("admin")
def undo_image_edits(sku: str, image_id: ObjectId) -> Response:
    """Back to the photo's original: a new version without edits."""
    done = service.edit_product_image(app_media(), sku, image_id, None)
    return _photo(sku, image_id, "product_image_edits_undone", *done)


@bp.put(f"/products/<sku>/images/{IMAGE_ID}/crops/<name>")
@require_role("admin")
@takes(Library.CropBody)
def set_image_crop(body: Library.CropBody, sku: str, image_id: ObjectId, name: str) -> Response:
    """Set the photo's named crop ``name`` (fractions of the edited picture): a new version."""
    done = service.set_product_image_crop(app_media(), sku, image_id, name, body.named(name))
    return _photo(sku, image_id, "product_image_crop_set", *done, crop=name)


@bp.delete(f"/products/<sku>/images/{IMAGE_ID}/crops/<name>")
@require_role("admin")
def delete_image_crop(sku: str, image_id: ObjectId, name: str) -> Response:
    """Delete the photo's named crop ``name``: a new version."""
    done = service.set_product_image_crop(app_media(), sku, image_id, Library.CropBody.check_name(name), None)
    return _photo(sku, image_id, "product_image_crop_deleted", *done, crop=name)


VERSION = "<version_id>"


@bp.get(f"/products/<sku>/images/{IMAGE_ID}/versions")
@require_role("admin")
def list_image_versions(sku: str, image_id: ObjectId) -> Response:
    """The photo's current version and its earlier ones still kept (AVENUE_TRASH_DAYS), newest first."""
    listed = service.product_image_versions(app_media(), sku, image_id)
    return jsonify(versions_answer(listed, lambda v: url_for(
        "shop.image_version_preview", sku=sku, image_id=image_id, version_id=v)))


@bp.post(f"/products/<sku>/images/{IMAGE_ID}/versions/{VERSION}/restore")
@require_role("admin")
def restore_image_version(sku: str, image_id: ObjectId, version_id: str) -> Response:
    """An earlier version made current again, as a new version: the photo keeps its place."""
    done = service.restore_product_image_version(app_media(), sku, image_id, version_id,
                                                 limits=Limits.from_config(current_app.config))
    return _photo(sku, image_id, "product_image_version_restored", *done, restored=version_id)


@bp.get(f"/products/<sku>/images/{IMAGE_ID}/versions/{VERSION}/preview")
@require_role("admin")
def image_version_preview(sku: str, image_id: ObjectId, version_id: str) -> Response:
    """A small WebP of one version."""
    return private_picture(service.product_image_version_preview(app_media(), sku, image_id, version_id),
                           "image/webp")


@bp.get(f"/products/<sku>/images/{IMAGE_ID}/versions/{VERSION}/compare/<after>")
@require_role("admin")
def compare_image_versions(sku: str, image_id: ObjectId, version_id: str, after: str) -> Response:
    """The share of pixels that differ from one version to another, and the heat map's URL."""
    compared, _ = service.compare_product_image_versions(app_media(), sku, image_id, version_id, after)
    heat_map = url_for("shop.image_versions_heat_map", sku=sku, image_id=image_id, version_id=version_id,
                       after=after)
    return jsonify(comparison_answer(compared, heat_map))


@bp.get(f"/products/<sku>/images/{IMAGE_ID}/versions/{VERSION}/compare/<after>/heat-map")
@require_role("admin")
def image_versions_heat_map(sku: str, image_id: ObjectId, version_id: str, after: str) -> Response:
    """The heat map of what differs between two versions (PNG)."""
    _, data = service.compare_product_image_versions(app_media(), sku, image_id, version_id, after)
    return private_picture(data, "image/png")


def _photo(sku: str, image_id: ObjectId, action: str, ref: dict[str, Any], changed: bool,
           **details: Any) -> Response:
    """Audit a change of a product's photo and answer its image object."""
    audit.log(action, sku=sku, bucket=Buckets.PRODUCTS, image_id=str(image_id),
              version=ref.get("version", ""), changed=changed, **details)
    return jsonify(service.image_entry(ref, _signer()))


def _replace(sku: str, image_id: ObjectId, action: str, **change: Any) -> Response:
    """New bytes or a new focal point (``change``) for one of the product's photos; audited."""
    limits = Limits.from_config(current_app.config)
    doc = service.replace_product_image(app_media(), sku, image_id, limits=limits, **change)
    audit.log(action, sku=sku, bucket=Buckets.PRODUCTS, image_id=str(image_id))
    return _product(doc)


@bp.put("/products/<sku>/images/order")
@require_role("admin")
@takes(service.ImageOrder)
def reorder_images(order: service.ImageOrder, sku: str) -> Response:
    """Put the product's images in a new order (a permutation of their ids)."""
    doc = service.reorder_images(get_db(), sku, order)
    audit.log("product_images_reordered", sku=sku, image_ids=order.image_ids)
    return _product(doc)


@bp.get("/products/<sku>/alt-text")
@require_role("admin")
def list_missing_alt(sku: str) -> Response:
    """The product's photos without alt text, each with suggested alt texts (no model:
    the product's name and SKU, the photo's place, file name and colour)."""
    window = page_args()
    page = service.missing_alt(get_db(), sku, window)
    signer = _signer()
    items = [service.MissingPhotoAlt.filled({"image": service.image_entry(d["ref"], signer),
                                              "position": d["position"],
                                              "suggestions": d["suggestions"]}).answer() for d in page.docs]
    return jsonify(page.shape(items, window))


@bp.post("/products/<sku>/alt-text")
@require_role("admin")
@takes(Alt.Changes)
def set_alt_texts(asked: Alt.Changes, sku: str) -> Response:
    """Set the alt text of many of the product's photos: each the text given or a suggestion
    accepted; what happened to each."""
    results = service.set_alt_texts(get_db(), sku, asked.images)
    audit.log("product_alt_text_set", sku=sku, bucket=Buckets.PRODUCTS,
              image_ids=[result.id for result in results if result.status == "set"] or None)
    return jsonify({"results": [result.answer() for result in results]})


@bp.get("/debug/products-status")
@require_role("admin", "ops")
@takes_query(status.ReportQuery)
def products_status(query: status.ReportQuery) -> Response:
    """Is every product photo safe? Counts and lists (avenue/status/products.py)."""
    return jsonify(status.answer(current_app, get_db(), "products-status", refresh=query.refresh))


@bp.get("/debug/storage-status")
@require_role("admin", "ops")
@takes_query(status.ReportQuery)
def storage_status(query: status.ReportQuery) -> Response:
    """Where the bytes are and whether they survive a restart (avenue/status/storage.py)."""
    return jsonify(status.answer(current_app, get_db(), "storage-status", refresh=query.refresh))
