"""Target 3a: one admin upload of a 12 MP JPEG against the bare Pillow variant time."""

from __future__ import annotations

import io
import json
import statistics
import time
import uuid
from dataclasses import dataclass, field

from PIL import Image, ImageOps

from data import with_comment
from harness import request

# name -> (width, height, mode): the contract's variants.
VARIANTS = {"thumb": (200, 200, "fit"), "card": (600, 600, "fit"),
            "gallery": (1600, 1600, "fit"), "og": (1200, 630, "cover")}


def _fit_size(w: int, h: int, box_w: int, box_h: int) -> tuple[int, int]:
    scale = min(box_w / w, box_h / h, 1.0)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _cover_box(w: int, h: int, tw: int, th: int) -> tuple[float, float, float, float]:
    ratio = tw / th
    if w / h > ratio:
        cw, ch = h * ratio, h
    else:
        cw, ch = w, w / ratio
    left, top = (w - cw) / 2, (h - ch) / 2
    return left, top, left + cw, top + ch


def pillow_variants(data: bytes, *, draft: bool) -> list[bytes]:
    """The four WebP variants straight from Pillow: the least any upload path has to do.

    ``draft=True`` lets libjpeg decode at 1/2, 1/4 or 1/8 scale (as long as the result still
    covers the largest variant) and resizes with ``reducing_gap``; ``draft=False`` decodes
    every pixel and resizes with plain LANCZOS.
    """
    gap = 3.0 if draft else None
    with Image.open(io.BytesIO(data)) as src:
        if draft:
            gw, gh = _fit_size(*src.size, 1600, 1600)
            src.draft("RGB", (max(gw, min(1200, src.width)), max(gh, min(630, src.height))))
        im = ImageOps.exif_transpose(src).convert("RGB")
    out = []
    for name in ("thumb", "card", "gallery", "og"):
        tw, th, mode = VARIANTS[name]
        if mode == "fit":
            size = _fit_size(im.width, im.height, tw, th)
            resized = im if size == im.size else im.resize(
                size, Image.Resampling.LANCZOS, reducing_gap=gap)
        else:
            box = _cover_box(im.width, im.height, tw, th)
            size = (tw, th) if box[2] - box[0] >= tw else (round(box[2] - box[0]),
                                                              round(box[3] - box[1]))
            resized = im.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=gap)
        buf = io.BytesIO()
        resized.save(buf, "WEBP", quality=82, method=4)
        out.append(buf.getvalue())
    return out


def time_pillow(data: bytes, *, draft: bool, repeat: int) -> list[float]:
    pillow_variants(data, draft=draft)  # warm the codecs
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        pillow_variants(data, draft=draft)
        times.append((time.perf_counter() - start) * 1000)
    return times


def _multipart(field_name: str, filename: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    boundary = f"bench{uuid.uuid4().hex}"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field_name}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@dataclass
class UploadResult:
    times_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.times_ms) if self.times_ms else None


def time_app_uploads(port: int, headers: dict[str, str], data: bytes, *, repeat: int,
                     run_id: str) -> UploadResult:
    """Create a product (not timed), then time POST /api/shop/products/<sku>/images."""
    result = UploadResult()
    for i in range(repeat + 1):  # the first one warms the worker and is not counted
        sku = f"BENCH-UP-{run_id}-{i}"
        body = json.dumps({"sku": sku, "name": f"Bench upload {i}", "price": 10}).encode()
        created = request("POST", port, "/api/shop/products", body=body, timeout=60,
                          headers={**headers, "Content-Type": "application/json"})
        if created.status not in (200, 201):
            result.problems.append(f"POST /api/shop/products: HTTP {created.status} "
                                   f"{created.body[:160]!r}")
            return result
        # A distinct file each time (a JPEG comment), so content dedupe cannot short-cut it.
        payload, ctype = _multipart("images", f"photo_{i}.jpg",
                                    with_comment(data, f"bench {run_id} {i}"), "image/jpeg")
        start = time.perf_counter()
        reply = request("POST", port, f"/api/shop/products/{sku}/images", body=payload,
                        timeout=120, headers={**headers, "Content-Type": ctype})
        elapsed = (time.perf_counter() - start) * 1000
        if reply.status not in (200, 201):
            result.problems.append(f"POST /api/shop/products/{sku}/images: HTTP {reply.status} "
                                   f"{reply.body[:160]!r}")
            return result
        if i > 0:
            result.times_ms.append(elapsed)
    return result
