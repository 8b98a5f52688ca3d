"""The document's hand-written components: the objects many answers share (the image object,
a trashed item, a page, a user...) and the status reports' shapes. The answers the code builds
as models are the models' own (``SHAPES`` in ``avenue/apidoc/common.py``)."""

from __future__ import annotations

from avenue.admin.deliveries import DeliveredImage
from avenue.admin.service import AuditEntry
from avenue.apidoc.common import (
    SHAPES,
    TIME,
    Schema,
    component,
    extension,
    ref,
)
from avenue.auth.service import User
from avenue.builder.service import ShownPage
from avenue.errors import ErrorBody
from avenue.links.store import UploadLink
from avenue.media import Alt
from avenue.monitoring.alerts import Alert
from avenue.presentation.objects import ImageObject, NearDuplicate, UnusedImage
from avenue.shapes import schema_of
from avenue.shop.service import LegacyImage, MissingPhotoAlt, Product
from avenue.status.products import ProductsStatus
from avenue.status.storage import StorageStatus
from avenue.trash.service import TrashItem

SCHEMAS: dict[str, Schema] = {
    "Error": schema_of(ErrorBody, SHAPES),
    "Report": {
        "type": "object", "required": ["report"],
        "properties": {"report": {
            "type": "object", "required": ["generated_at", "age_seconds", "stale", "counts", "compute_ms"],
            "properties": {"generated_at": TIME,
                           "age_seconds": {"type": "number", "minimum": 0,
                                           "description": "0: the counts were read for this answer; "
                                                          "else how old the held report is (stale)."},
                           "compute_ms": {"type": ["number", "null"]},
                           "stale": {"type": "boolean", "description":
                                     "True when the database did not answer within "
                                     "AVENUE_STATUS_ANSWER_MS: the worker's last report, answered "
                                     "again (counts says as of when)."},
                           "counts": {"type": "string"}},
        }, "sweep": {
            "type": "object",
            "required": ["generated_at", "age_seconds", "duration_seconds", "documents", "running",
                         "progress", "requested", "interval_seconds", "batch_size"],
            "properties": {"generated_at": TIME, "age_seconds": {"type": ["number", "null"]},
                           "running": {"type": "boolean"}, "requested": {"type": "boolean"},
                           "progress": {"type": ["object", "null"]},
                           "interval_seconds": {"type": ["number", "null"]},
                           "batch_size": {"type": ["integer", "null"]},
                           "documents": {"type": ["integer", "null"]},
                           "duration_seconds": {"type": ["number", "null"]}},
            "description": "The background sweep the lists come from: its age and progress.",
        }},
        "description": "A status report: counts from counters kept with every write (`report`), the "
                       "lists behind them from the last background sweep (`sweep`).",
    },
    "ProductsStatus": {"allOf": [ref("Report"), schema_of(ProductsStatus, SHAPES)]},
    "StorageStatus": {"allOf": [ref("Report"), schema_of(StorageStatus, SHAPES)]},
}


component(ImageObject, "Image")
SHAPES["UnusedImage"] = extension(UnusedImage, ImageObject, "Image")
component(LegacyImage)
component(ShownPage, "Page")
component(Alt.Result)
component(Alt.Missing)
component(MissingPhotoAlt)
component(Product)
component(NearDuplicate)
component(TrashItem)
component(AuditEntry)
component(DeliveredImage)
component(User)
component(Alert)


component(UploadLink)
