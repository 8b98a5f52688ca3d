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
    URL_REFUSALS,
    Schema,
    answer,
    answer_of,
    errors,
    in_path,
    list_of,
    multipart,
    op,
    page_params,
    ref,
    shaped,
)
from avenue.apidoc.images import (
    ALT_RESULTS,
    PRODUCT_PHOTO_EDITS,
    PRODUCT_PHOTO_FOCAL,
    PRODUCT_PHOTO_REPLACE,
    edit_paths,
    missing_alt_list,
    version_paths,
    zip_import,
)
from avenue.bulk.urls import URL_CODES, ProductUrlImport, UrlReport
from avenue.media import Alt, Library
from avenue.shapes import OBJECT_ID, parameters_of
from avenue.shop.service import ImageOrder, NewProduct, ProductChange
from avenue.status import ReportQuery

CSV_BODY: Schema = {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}},
    MULTIPART: {"schema": {"type": "object", "properties": {"file": ONE_FILE}, "required": ["file"]}}}}


#: What adding images to a product answers: the product and the images added.
PRODUCT_ADDED: Schema = {"type": "object", "required": ["product", "added"], "properties": {
    "product": ref("Product"), "added": {"type": "array", "items": {"allOf": [
        ref("Image"), {"type": "object", "properties": {
            "near_duplicates": {"type": "array", "items": ref("NearDuplicate"),
                                "description": "Product images that look like it, nearest first (left out "
                                               "when the lookup failed or was late: ask "
                                               "…/{image_id}/near-duplicates)."}}}]}}}}


PATHS: dict[str, Schema] = {  # path items: operations by method, and shared parameters
    "/api/shop/products": {
        "get": op("Products by sku.", {"200": answer(list_of("Product"), "A page of products.")},
                  security=ANYONE, tags=["shop"], parameters=page_params()),
        "post": op("Create a product; temp images become its images, in order.",
                   {"201": answer(ref("Product"), "Created."), **errors(404, 409, 422)},
                   security=LOGGED_IN_WRITE, tags=["shop"], roles="admin",
                   body=shaped(NewProduct)),
    },
    "/api/shop/products/{sku}": {
        "parameters": [in_path("sku", {"type": "string"})],
        "get": op("One product; each photo names the other products that use it (also_on).",
                  {"200": answer(ref("Product"), "The product."), **errors(404)},
                  security=ANYONE, tags=["shop"]),
        "patch": op("Change its name and/or price.", {"200": answer(ref("Product"), "Updated."),
                                                      **errors(404)},
                    security=LOGGED_IN_WRITE, tags=["shop"], roles="admin",
                    body=shaped(ProductChange)),
        "delete": op("Delete it and its images.", {"204": NO_CONTENT, **errors(404, 409)},
                     security=LOGGED_IN_WRITE, tags=["shop"], roles="admin"),
    },
    "/api/shop/import-zip": {"post": zip_import(
        "Put every image of a zip onto the product its name names (SKU_N.jpg, SKU.jpg, SKU/any.jpg).",
        "shop", "admin")},
    "/api/shop/import-urls": {"post": {**op(
        "Add images to products from a CSV of sku,url rows (the body as text/csv, or the multipart file "
        "`file`): each row's image fetched by the server and added to its product, row by row; the report "
        "says what became of every row.",
        {"200": answer_of(UrlReport, "Every row and what became of it."), **errors(403, 415, 429)},
        security=LOGGED_IN_WRITE, tags=["shop"], roles="admin"), "requestBody": CSV_BODY}},
    "/api/shop/temp-images": {"post": op(
        "Upload photos before their product exists; unclaimed ones expire. Private to the uploader: "
        "their URLs are signed (unsigned: 404) and served Cache-Control: private.",
        {"201": answer({"type": "object", "required": ["images"], "properties": {"images": {
            "type": "array", "items": {"allOf": [ref("Image"), {"required": ["expires_at"]}]}}}},
            "Stored; each image's URLs signed."),
         **errors(409)},
        security=LOGGED_IN_WRITE, tags=["shop"], roles="admin",
        body=multipart({"images": IMAGE_FILES}, ["images"]))},
    "/api/shop/products/{sku}/images": {
        "parameters": [in_path("sku", {"type": "string"})],
        "post": op("Add images to a product (all or nothing, within its limit).",
                   {"201": answer(PRODUCT_ADDED, "Added, each with its look-alikes."), **errors(404, 409)},
                   security=LOGGED_IN_WRITE, tags=["shop"], roles="admin",
                   body=multipart({"images": IMAGE_FILES}, ["images"])),
    },
    "/api/shop/products/{sku}/images/import-url": {
        "parameters": [in_path("sku", {"type": "string"})],
        "post": op("Add the image at a URL to a product: the server fetches it through the SSRF guard "
                   "and adds it as an upload would (200 with added empty when the product already has it). "
                   "Refusals: " + URL_CODES + ".",
                   {"201": answer(PRODUCT_ADDED, "Added."), "200": answer(PRODUCT_ADDED, "Already there."),
                    **errors(404, 409, *URL_REFUSALS)},
                   security=LOGGED_IN_WRITE, tags=["shop"], roles="admin",
                   body=shaped(ProductUrlImport)),
    },
    "/api/shop/products/{sku}/images/{image_id}": {
        "parameters": [in_path("sku", {"type": "string"}), in_path("image_id", OBJECT_ID)],
        "delete": op("Take an image off the product; its file goes unless another product uses it.",
                     {"200": answer(ref("Product"), "The product without it."), **errors(404, 409)},
                     security=LOGGED_IN_WRITE, tags=["shop"], roles="admin"),
        "put": PRODUCT_PHOTO_REPLACE,
    },
    "/api/shop/products/{sku}/images/{image_id}/near-duplicates": {
        "parameters": [in_path("sku", {"type": "string"}), in_path("image_id", OBJECT_ID)],
        "get": op("The product images (of any product) that look like this photo, nearest first: "
                  "what its upload's answer names, when that answer left them out.",
                  {"200": answer({"type": "object", "required": ["near_duplicates"], "properties": {
                      "near_duplicates": {"type": "array", "items": ref("NearDuplicate")}}},
                      "Its look-alikes."), **errors(403, 404)},
                  security=LOGGED_IN_READ, tags=["shop"], roles="admin"),
    },
    "/api/shop/products/{sku}/images/{image_id}/name": {
        "parameters": [in_path("sku", {"type": "string"}), in_path("image_id", OBJECT_ID)],
        "put": op("Give the photo a readable name in its public URL (null: none): every product using it "
                  "shows its named_url; the URL of any other name 301s to it. 400 invalid_name for a name "
                  "that cannot be one.",
                  {"200": answer(ref("Image"), "The photo."), **errors(404, 409)},
                  security=LOGGED_IN_WRITE, tags=["shop"], roles="admin", body=shaped(Library.NameBody)),
    },
    "/api/shop/products/{sku}/images/{image_id}/focal-point": {
        "parameters": [in_path("sku", {"type": "string"}), in_path("image_id", OBJECT_ID)],
        "put": PRODUCT_PHOTO_FOCAL,
    },
    **edit_paths("/api/shop/products/{sku}/images/{image_id}",
                 [in_path("sku", {"type": "string"}), in_path("image_id", OBJECT_ID)], PRODUCT_PHOTO_EDITS),
    **version_paths("/api/shop/products/{sku}/images/{image_id}",
                    [in_path("sku", {"type": "string"}), in_path("image_id", OBJECT_ID)], ref("Image"),
                    tag="shop", roles="admin"),
    "/api/shop/products/{sku}/images/order": {
        "parameters": [in_path("sku", {"type": "string"})],
        "put": op("Reorder the images (a permutation of their ids).",
                  {"200": answer(ref("Product"), "Reordered."), **errors(404, 409, 422)},
                  security=LOGGED_IN_WRITE, tags=["shop"], roles="admin",
                  body=shaped(ImageOrder)),
    },
    "/api/shop/products/{sku}/alt-text": {
        "parameters": [in_path("sku", {"type": "string"})],
        "get": op("The product's photos without alt text, in order, each with alt texts suggested from its "
                  "name, SKU, the photo's place, file name and colour.",
                  {"200": answer(missing_alt_list(ref("MissingPhotoAlt")), "A page of photos."),
                   **errors(403, 404)},
                  security=LOGGED_IN_READ, tags=["shop"], roles="admin",
                  parameters=page_params()),
        "post": op("Set the alt text of many of its photos at once, each the text given or a suggestion "
                   "accepted: the product's own, on its photo (a photo shared with another product keeps "
                   "that product's). What happened to each.",
                   {"200": answer(ALT_RESULTS, "Image by image."), **errors(404)},
                   security=LOGGED_IN_WRITE, tags=["shop"], roles="admin", body=shaped(Alt.Changes)),
    },
    "/api/shop/debug/products-status": {"get": op(
        "Is every product photo safe?",
        {"200": answer(ref("ProductsStatus"), "The report."), **errors(403)},
        security=LOGGED_IN_READ, tags=["status"], roles="admin, ops", parameters=parameters_of(ReportQuery))},
    "/api/shop/debug/storage-status": {"get": op(
        "Where the bytes are and whether they survive a restart.",
        {"200": answer(ref("StorageStatus"), "The report."), **errors(403)},
        security=LOGGED_IN_READ, tags=["status"], roles="admin, ops", parameters=parameters_of(ReportQuery))},
}
