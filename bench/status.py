"""Target 4: the two status endpoints with 10,000 products and 50,000 stored images.

The documents are bulk-inserted straight into MongoDB, shaped like the ones the media core
writes (a real stored image is the template), each original with one small chunk.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass, field

from bson import ObjectId

from harness import request

PRODUCTS = "shop_products"
BUCKET = "product_images_data"
TARGET_MS = 300
ENDPOINTS = ("/api/shop/debug/products-status", "/api/shop/debug/storage-status")


@dataclass
class EndpointTimes:
    first_ms: float | None = None  # the first call on this database
    repeat_ms: list[float] = field(default_factory=list)  # the calls after it
    compute_ms: float | None = None  # what the report says computing it took, if it says
    served_stale: bool = False  # a repeat call answered from a snapshot flagged stale


@dataclass
class StatusResult:
    products: int = 0
    images: int = 0
    seed_seconds: float = 0.0
    times: dict[str, EndpointTimes] = field(default_factory=dict)
    summaries: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def seed(db, template: dict, reference: callable, *, products: int, per_product: int,
         batch: int = 2000) -> tuple[int, int]:
    """Insert ``products`` products with ``per_product`` images each (files + one chunk each)."""
    now = dt.datetime.now(dt.UTC)
    files_coll, chunks_coll = db[f"{BUCKET}.files"], db[f"{BUCKET}.chunks"]
    payload = b"\xff\xd8seed\xff\xd9"
    product_docs, file_docs, chunk_docs = [], [], []
    n_images = 0

    def flush(force: bool = False) -> None:
        if file_docs and (force or len(file_docs) >= batch * per_product):
            files_coll.insert_many(file_docs, ordered=False)
            chunks_coll.insert_many(chunk_docs, ordered=False)
            file_docs.clear()
            chunk_docs.clear()
        if product_docs and (force or len(product_docs) >= batch):
            db[PRODUCTS].insert_many(product_docs, ordered=False)
            product_docs.clear()

    for p in range(products):
        sku = f"SEED-{p:06d}"
        images = []
        for j in range(per_product):
            fid = ObjectId()
            digest = hashlib.sha256(f"{sku}/{j}".encode()).hexdigest()
            # Shallow copies: the nested parts (variants) may be shared, BSON encodes each anyway.
            doc = {**template, "_id": fid, "filename": f"{sku}_{j}.jpg", "length": len(payload),
                   "uploadDate": now}
            meta = doc["metadata"] = dict(template.get("metadata") or {})
            meta.update({"sha256": digest, "source_sha256": digest, "filename": doc["filename"]})
            if "key" in meta:
                meta["key"] = f"seed:{digest}"
            for k in ("product", "sku"):
                if k in meta:
                    meta[k] = sku
            file_docs.append(doc)
            chunk_docs.append({"files_id": fid, "n": 0, "data": payload})
            images.append(reference(doc))
            n_images += 1
        product_docs.append({"sku": sku, "name": f"Seeded product {p}", "price": 10 + p % 90,
                             "images": images, "created_at": now, "updated_at": now})
        flush()
    flush(force=True)
    return products, n_images


def time_endpoints(port: int, headers: dict[str, str], *, repeat: int) -> StatusResult:
    """The first call to each endpoint, then ``repeat`` more (fewer if they are far too slow)."""
    result = StatusResult()
    for path in ENDPOINTS:
        times = result.times[path] = EndpointTimes()
        report = None
        for i in range(repeat + 1):
            t0 = time.perf_counter()
            reply = request("GET", port, path, headers=headers, timeout=180)
            elapsed = (time.perf_counter() - t0) * 1000
            if reply.status != 200:
                result.problems.append(f"GET {path}: HTTP {reply.status} {reply.body[:160]!r}")
                break
            try:
                report = json.loads(reply.body)
            except ValueError:
                report = None
            meta = report.get("report") if isinstance(report, dict) else None
            if isinstance(meta, dict):
                times.compute_ms = meta.get("compute_ms", times.compute_ms)
                times.served_stale = times.served_stale or (i > 0 and bool(meta.get("stale")))
            if i == 0:
                times.first_ms = elapsed
                continue
            times.repeat_ms.append(elapsed)
            if elapsed > 10 * TARGET_MS:  # far off already: more calls would only cost time
                break
        if isinstance(report, dict):
            result.summaries[path] = _summary(report)
    return result


def _summary(report: dict) -> str:
    """A short line of the report's top-level numbers, to show it counted what was seeded."""
    parts = []
    for key, value in report.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            parts.append(f"{key}={value}")
        elif isinstance(value, dict):
            nums = [f"{k}={v}" for k, v in value.items()
                    if isinstance(v, int | float) and not isinstance(v, bool)]
            if nums:
                parts.append(f"{key}: " + ", ".join(nums[:4]))
    return "; ".join(parts)[:400]
