"""The shop's operations: products and their photos, their imports, and the status reports."""

from __future__ import annotations

from avenue.apidoc.common import (
    ANYONE,
    IMAGE_FILES,
    LOGGED_IN_READ,
    LOGGED_IN_WRITE,
    MULTIPART,
    NO_CONTENT,
    ONE_FILE,
    REFRESH,
    URL_REFUSALS,
    Schema,
    _answer,
    _errors,
    _json,
    _list_of,
    _multipart,
    _op,
    _page_params,
    _path,
    _ref,
    _shaped,
)
from avenue.apidoc.images import (
    ALT_RESULTS,
    ALT_SUGGESTIONS,
    PRODUCT_PHOTO_EDITS,
    PRODUCT_PHOTO_FOCAL,
    PRODUCT_PHOTO_REPLACE,
    _edit_paths,
    _missing_alt_list,
    _version_paths,
    _zip_import,
)
from avenue.bulk.urls import URL_CODES, ProductUrlImport, UrlReport

# The document states the declared limits and registries as they are (the media-interface
# contract lets it read the kernel modules named in pyproject.toml).
from avenue.media.alttext import (
    AltChanges,
)
from avenue.media.names import NameBody
from avenue.shapes import OBJECT_ID
from avenue.shop.service import ImageOrder, NewProduct, ProductChange

CSV_BODY: Schema = {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}},
    MULTIPART: {"schema": {"type": "object", "properties": {"file": ONE_FILE}, "required": ["file"]}}}}


#: What adding images to a product answers: the product and the images added.
PRODUCT_ADDED: Schema = {"type": "object", "required": ["product", "added"], "properties": {
    "product": _ref("Product"), "added": {"type": "array", "items": {"allOf": [
        _ref("Image"), {"type": "object", "properties": {
            "near_duplicates": {"type": "array", "items": _ref("NearDuplicate"),
                                "description": "Product images that look like it, nearest first (left out "
                                               "when the lookup failed or was late: ask "
                                               "…/{image_id}/near-duplicates)."}}}]}}}}


PATHS: dict[str, Schema] = {  # path items: operations by method, and shared parameters
    "/api/shop/products": {
        "get": _op("Products by sku.", {"200": _json(_list_of("Product"), "A page of products.")},
                   security=ANYONE, tags=["shop"], parameters=_page_params()),
        "post": _op("Create a product; temp images become its images, in order.",
                    {"201": _json(_ref("Product"), "Created."), **_errors(404, 409, 422)},
                    security=LOGGED_IN_WRITE, tags=["shop"], roles="admin",
                    body=_shaped(NewProduct)),
    },
    "/api/shop/products/{sku}": {
        "parameters": [_path("sku", {"type": "string"})],
        "get": _op("One product; each photo names the other products that use it (also_on).",
                   {"200": _json(_ref("Product"), "The product."), **_errors(404)},
                   security=ANYONE, tags=["shop"]),
        "patch": _op("Change its name and/or price.", {"200": _json(_ref("Product"), "Updated."),
                                                       **_errors(404)},
                     security=LOGGED_IN_WRITE, tags=["shop"], roles="admin",
                     body=_shaped(ProductChange)),
        "delete": _op("Delete it and its images.", {"204": NO_CONTENT, **_errors(404, 409)},
                      security=LOGGED_IN_WRITE, tags=["shop"], roles="admin"),
    },
    "/api/shop/import-zip": {"post": _zip_import(
        "Put every image of a zip onto the product its name names (SKU_N.jpg, SKU.jpg, SKU/any.jpg).",
        "shop", "admin")},
    "/api/shop/import-urls": {"post": {**_op(
        "Add images to products from a CSV of sku,url rows (the body as text/csv, or the multipart file "
        "`file`): each row's image fetched by the server and added to its product, row by row; the report "
        "says what became of every row.",
        {"200": _answer(UrlReport, "Every row and what became of it."), **_errors(403, 415, 429)},
        security=LOGGED_IN_WRITE, tags=["shop"], roles="admin"), "requestBody": CSV_BODY}},
    "/api/shop/temp-images": {"post": _op(
        "Upload photos before their product exists; unclaimed ones expire. Private to the uploader: "
        "their URLs are signed (unsigned: 404) and served Cache-Control: private.",
        {"201": _json({"type": "object", "required": ["images"], "properties": {"images": {
            "type": "array", "items": {"allOf": [_ref("Image"), {"required": ["expires_at"]}]}}}},
            "Stored; each image's URLs signed."),
         **_errors(409)},
        security=LOGGED_IN_WRITE, tags=["shop"], roles="admin",
        body=_multipart({"images": IMAGE_FILES}, ["images"]))},
    "/api/shop/products/{sku}/images": {
        "parameters": [_path("sku", {"type": "string"})],
        "post": _op("Add images to a product (all or nothing, within its limit).",
                    {"201": _json(PRODUCT_ADDED, "Added, each with its look-alikes."), **_errors(404, 409)},
                    security=LOGGED_IN_WRITE, tags=["shop"], roles="admin",
                    body=_multipart({"images": IMAGE_FILES}, ["images"])),
    },
    "/api/shop/products/{sku}/images/import-url": {
        "parameters": [_path("sku", {"type": "string"})],
        "post": _op("Add the image at a URL to a product: the server fetches it through the SSRF guard "
                    "and adds it as an upload would (200 with added empty when the product already has it). "
                    "Refusals: " + URL_CODES + ".",
                    {"201": _json(PRODUCT_ADDED, "Added."), "200": _json(PRODUCT_ADDED, "Already there."),
                     **_errors(404, 409, *URL_REFUSALS)},
                    security=LOGGED_IN_WRITE, tags=["shop"], roles="admin",
                    body=_shaped(ProductUrlImport)),
    },
    "/api/shop/products/{sku}/images/{image_id}": {
        "parameters": [_path("sku", {"type": "string"}), _path("image_id", OBJECT_ID)],
        "delete": _op("Take an image off the product; its file goes unless another product uses it.",
                      {"200": _json(_ref("Product"), "The product without it."), **_errors(404, 409)},
                      security=LOGGED_IN_WRITE, tags=["shop"], roles="admin"),
        "put": PRODUCT_PHOTO_REPLACE,
    },
    "/api/shop/products/{sku}/images/{image_id}/near-duplicates": {
        "parameters": [_path("sku", {"type": "string"}), _path("image_id", OBJECT_ID)],
        "get": _op("The product images (of any product) that look like this photo, nearest first: "
                   "what its upload's answer names, when that answer left them out.",
                   {"200": _json({"type": "object", "required": ["near_duplicates"], "properties": {
                       "near_duplicates": {"type": "array", "items": _ref("NearDuplicate")}}},
                       "Its look-alikes."), **_errors(403, 404)},
                   security=LOGGED_IN_READ, tags=["shop"], roles="admin"),
    },
    "/api/shop/products/{sku}/images/{image_id}/name": {
        "parameters": [_path("sku", {"type": "string"}), _path("image_id", OBJECT_ID)],
        "put": _op("Give the photo a readable name in its public URL (null: none): every product using it "
                   "shows its named_url; the URL of any other name 301s to it. 400 invalid_name for a name "
                   "that cannot be one.",
                   {"200": _json(_ref("Image"), "The photo."), **_errors(404, 409)},
                   security=LOGGED_IN_WRITE, tags=["shop"], roles="admin", body=_shaped(NameBody)),
    },
    "/api/shop/products/{sku}/images/{image_id}/focal-point": {
        "parameters": [_path("sku", {"type": "string"}), _path("image_id", OBJECT_ID)],
        "put": PRODUCT_PHOTO_FOCAL,
    },
    **_edit_paths("/api/shop/products/{sku}/images/{image_id}",
                  [_path("sku", {"type": "string"}), _path("image_id", OBJECT_ID)], PRODUCT_PHOTO_EDITS),
    **_version_paths("/api/shop/products/{sku}/images/{image_id}",
                     [_path("sku", {"type": "string"}), _path("image_id", OBJECT_ID)], _ref("Image"),
                     tag="shop", roles="admin"),
    "/api/shop/products/{sku}/images/order": {
        "parameters": [_path("sku", {"type": "string"})],
        "put": _op("Reorder the images (a permutation of their ids).",
                   {"200": _json(_ref("Product"), "Reordered."), **_errors(404, 409, 422)},
                   security=LOGGED_IN_WRITE, tags=["shop"], roles="admin",
                   body=_shaped(ImageOrder)),
    },
    "/api/shop/products/{sku}/alt-text": {
        "parameters": [_path("sku", {"type": "string"})],
        "get": _op("The product's photos without alt text, in order, each with alt texts suggested from its "
                   "name, SKU, the photo's place, file name and colour.",
                   {"200": _json(_missing_alt_list({
                       "type": "object", "required": ["image", "position", "suggestions"], "properties": {
                           "image": _ref("Image"),
                           "position": {"type": "integer", "minimum": 1, "description": "1: the main photo."},
                           "suggestions": ALT_SUGGESTIONS}}), "A page of photos."), **_errors(403, 404)},
                   security=LOGGED_IN_READ, tags=["shop"], roles="admin",
                   parameters=_page_params()),
        "post": _op("Set the alt text of many of its photos at once, each the text given or a suggestion "
                    "accepted: the product's own, on its photo (a photo shared with another product keeps "
                    "that product's). What happened to each.",
                    {"200": _json(ALT_RESULTS, "Image by image."), **_errors(404)},
                    security=LOGGED_IN_WRITE, tags=["shop"], roles="admin", body=_shaped(AltChanges)),
    },
    "/api/shop/debug/products-status": {"get": _op(
        "Is every product photo safe?",
        {"200": _json(_ref("ProductsStatus"), "The report."), **_errors(403)},
        security=LOGGED_IN_READ, tags=["status"], roles="admin, ops", parameters=[REFRESH])},
    "/api/shop/debug/storage-status": {"get": _op(
        "Where the bytes are and whether they survive a restart.",
        {"200": _json(_ref("StorageStatus"), "The report."), **_errors(403)},
        security=LOGGED_IN_READ, tags=["status"], roles="admin, ops", parameters=[REFRESH])},
}
