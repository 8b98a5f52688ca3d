"""Target 4: the two status endpoints with 10,000 products and 50,000 stored images.

The documents are bulk-inserted straight into MongoDB, shaped like the ones the media core
writes (a real stored image and its variants are the templates): per image an original and
its 8 variant files, each with one small chunk.
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
    first_ms: float | None = None  # the first call, right after the app started on this database
    first_waited: bool | None = None  # it waited for the compute the app's warm-up had started
    first_after_s: float | None = None  # seconds between the app answering /healthz and this call
    repeat_ms: list[float] = field(default_factory=list)  # the calls after it
    restart_ms: float | None = None  # the first call after an app restart (snapshot kept)
    restart_stale: bool = False  # that answer was a snapshot flagged stale
    compute_ms: float | None = None  # what the report says computing it took, if it says
    served_stale: bool = False  # a repeat call answered from a snapshot flagged stale
    counted: str = ""  # what the answer counted, to compare with what was seeded


@dataclass
class StatusResult:
    products: int = 0
    images: int = 0
    files_docs: int = 0  # files documents seeded (originals + variants)
    products_expected: int = 0  # products in the database after seeding
    files_expected: int = 0  # files documents in the products bucket after seeding
    seed_seconds: float = 0.0
    index_seconds: float | None = None
    times: dict[str, EndpointTimes] = field(default_factory=dict)
    summaries: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def seed(db, template: dict, reference: callable, *, products: int, per_product: int,
         batch: int = 1000) -> tuple[int, int, int]:
    """Insert ``products`` products with ``per_product`` images each, stored as the media core
    stores them: an original files document and 8 variant files documents (4 variants, each as
    WebP and a JPEG/PNG fallback), each file with one small chunk, the original listing its
    variants' ids. So 50,000 images are 450,000 files documents and 450,000 chunks.

    ``template`` is a real stored original; its variant files documents (read back from the
    bucket) are the templates of the seeded variants. Returns (products, images, files documents).
    """
    now = dt.datetime.now(dt.UTC)
    files_coll, chunks_coll = db[f"{BUCKET}.files"], db[f"{BUCKET}.chunks"]
    listed = (template.get("metadata") or {}).get("variants") or {}
    variant_docs = {doc["_id"]: doc for doc in files_coll.find(
        {"_id": {"$in": [info["id"] for formats in listed.values() for info in formats.values()]}})}
    # (name, format, template entry in the original, template variant files document)
    shapes = [(name, fmt, info, variant_docs.get(info["id"]))
              for name, formats in listed.items() for fmt, info in formats.items()]
    missing = [f"{name}.{fmt}" for name, fmt, _, doc in shapes if doc is None]
    if len(shapes) != 8 or missing:
        raise RuntimeError(f"the template image has {len(shapes)} variants listed, missing "
                           f"{missing}: not a stored original with its 8 variants")
    payload = b"\xff\xd8seed\xff\xd9"
    product_docs, file_docs, chunk_docs = [], [], []
    n_images = 0

    def flush(force: bool = False) -> None:
        # Chunks, then files documents (variants before their original), then products: the
        # media core's write order.
        if file_docs and (force or len(product_docs) >= batch):
            chunks_coll.insert_many(chunk_docs, ordered=False)
            files_coll.insert_many(file_docs, ordered=False)
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
            variants: dict[str, dict] = {}
            for name, fmt, info, vdoc in shapes:
                vid = ObjectId()
                vdigest = hashlib.sha256(f"{sku}/{j}/{name}.{fmt}".encode()).hexdigest()
                vmeta = {**vdoc["metadata"], "key": f"{fid}/{name}.{fmt}", "original_id": fid,
                         "sha256": vdigest}
                file_docs.append({**vdoc, "_id": vid, "length": len(payload), "uploadDate": now,
                                  "metadata": vmeta})
                chunk_docs.append({"files_id": vid, "n": 0, "data": payload})
                variants.setdefault(name, {})[fmt] = {**info, "id": vid, "length": len(payload),
                                                      "sha256": vdigest}
            doc = {**template, "_id": fid, "filename": f"{sku}_{j}.jpg", "length": len(payload),
                   "uploadDate": now}
            meta = doc["metadata"] = dict(template.get("metadata") or {})
            meta.update({"sha256": digest, "source_sha256": digest, "filename": doc["filename"],
                         "variants": variants})
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
    return products, n_images, n_images * (1 + len(shapes))


def _get(port: int, path: str, headers: dict[str, str], result: StatusResult) -> tuple[float, dict | None]:
    t0 = time.perf_counter()
    reply = request("GET", port, path, headers=headers, timeout=600)
    elapsed = (time.perf_counter() - t0) * 1000
    if reply.status != 200:
        result.problems.append(f"GET {path}: HTTP {reply.status} {reply.body[:160]!r}")
        return elapsed, None
    try:
        report = json.loads(reply.body)
    except ValueError:
        return elapsed, None
    return elapsed, report if isinstance(report, dict) else None


def _counted(report: dict) -> str:
    """The answer's own count of what was seeded (products, or the products bucket's files)."""
    products = report.get("products")
    if isinstance(products, dict) and "total" in products:
        return f"products.total={products['total']:,}, stored_images={report.get('stored_images', 0):,}"
    bucket = (report.get("buckets") or {}).get(BUCKET) or {}
    if "files" in bucket:
        return f"{BUCKET} files={bucket['files']:,}, originals={bucket.get('originals', 0):,}"
    return ""


def time_endpoints(port: int, headers: dict[str, str], *, repeat: int,
                   ready_at: float | None = None) -> StatusResult:
    """The first call to each endpoint, then ``repeat`` more (fewer if they are far too slow).
    ``ready_at``: when the app started answering (time.monotonic()), to say how long after
    its start each first call came."""
    result = StatusResult()
    for path in ENDPOINTS:
        times = result.times[path] = EndpointTimes()
        report = None
        for i in range(repeat + 1):
            if i == 0 and ready_at:
                times.first_after_s = time.monotonic() - ready_at
            elapsed, answer = _get(port, path, headers, result)
            if answer is None:
                break
            report = answer
            meta = report.get("report") if isinstance(report.get("report"), dict) else {}
            times.compute_ms = meta.get("compute_ms", times.compute_ms)
            if i == 0:
                times.first_ms = elapsed
                times.first_waited = meta.get("waited_for_compute")
                times.counted = _counted(report)
                continue
            times.served_stale = times.served_stale or bool(meta.get("stale"))
            times.repeat_ms.append(elapsed)
            if elapsed > 10 * TARGET_MS:  # far off already: more calls would only cost time
                break
        if isinstance(report, dict):
            result.summaries[path] = _summary(report)
    return result


def time_after_restart(port: int, headers: dict[str, str], result: StatusResult) -> None:
    """The first call to each endpoint of a freshly started app whose snapshots already exist."""
    for path in ENDPOINTS:
        times = result.times.setdefault(path, EndpointTimes())
        elapsed, answer = _get(port, path, headers, result)
        if answer is not None:
            times.restart_ms = elapsed
            times.restart_stale = bool((answer.get("report") or {}).get("stale"))


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
