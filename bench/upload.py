"""Target 3a: one admin upload of a 12 MP JPEG against the bare Pillow variant time, and the
workers' peak extra RSS while it runs."""

from __future__ import annotations

import io
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil
from PIL import Image, ImageOps

from data import with_comment
from harness import request, rss_total

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


def time_pillow(data: bytes, *, draft: bool, repeat: int, warm: bool = True) -> list[float]:
    """Milliseconds of ``repeat`` runs of :func:`pillow_variants` (after a warm-up run)."""
    if warm:
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
    # Per counted upload: the workers' summed RSS peak above what they held just before it.
    peak_rss_mb: list[float] = field(default_factory=list)
    # The highest RSS seen above the workers' RSS before the first (warm-up) upload.
    peak_above_idle_mb: float | None = None

    # Per counted upload: CPU ms the workers used (all their threads), and the bare Pillow
    # draft pipeline's CPU ms run right after it (single-threaded, in this process).
    cpu_ms: list[float] = field(default_factory=list)
    pillow_cpu_ms: list[float] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.times_ms) if self.times_ms else None


def cpu_ms(pids: list[int]) -> float:
    """CPU time (user + system) used so far by ``pids``, all their threads, in ms."""
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total * 1000


class RssSampler:
    """The summed RSS of ``pids`` sampled every 5 ms on a thread, between start() and stop()."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, rss_total(self.pids))
            time.sleep(0.005)

    def start(self) -> int:
        before = rss_total(self.pids)
        self.peak = before
        self._thread.start()
        return before

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_total(self.pids))
        return self.peak


def time_app_uploads(port: int, headers: dict[str, str], data: bytes, *, repeat: int,
                     run_id: str, worker_pids: list[int] | None = None,
                     between: Callable[[], None] | None = None) -> UploadResult:
    """Create a product (not timed), then time POST /api/shop/products/<sku>/images, sampling
    the workers' RSS during each upload; ``between`` runs after each counted upload (the bare
    Pillow baseline, so that both see the same load on a shared machine)."""
    result = UploadResult()
    mb = 2**20
    idle = rss_total(worker_pids) if worker_pids else None
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
        sampler = RssSampler(worker_pids) if worker_pids else None
        before = sampler.start() if sampler else 0
        cpu_before = cpu_ms(worker_pids) if worker_pids else 0.0
        start = time.perf_counter()
        try:
            reply = request("POST", port, f"/api/shop/products/{sku}/images", body=payload,
                            timeout=120, headers={**headers, "Content-Type": ctype})
        finally:
            elapsed = (time.perf_counter() - start) * 1000
            peak = sampler.stop() if sampler else 0
            cpu_used = cpu_ms(worker_pids) - cpu_before if worker_pids else 0.0
        if sampler and idle is not None:
            above = (peak - idle) / mb
            result.peak_above_idle_mb = max(result.peak_above_idle_mb or 0.0, above)
            if i > 0:
                result.peak_rss_mb.append((peak - before) / mb)
        if reply.status not in (200, 201):
            result.problems.append(f"POST /api/shop/products/{sku}/images: HTTP {reply.status} "
                                   f"{reply.body[:160]!r}")
            return result
        if i > 0:
            result.times_ms.append(elapsed)
            if worker_pids:
                result.cpu_ms.append(cpu_used)
            if between is not None:
                between()
    return result
