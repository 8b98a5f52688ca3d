#!/usr/bin/env python3
"""How soon an upload of a 12 MP JPEG is answered, against the bare Pillow pipeline, in one run.

Issue 28, item 4's target: the upload is answered in at most 0.5x the time bare Pillow takes
to make the four WebP variants (open, ``draft`` + ``reducing_gap``, WebP q80 at 200, 600 and
1600 px wide and the 1200x630 crop), measured in the same run, with every URL of the answer
fetchable at once.

(a) **bare Pillow**: :func:`bare_pillow`, in this process, single-threaded.
(b) **the upload answered**: ``POST /api/uploads`` through the app in this process (Flask's
    test client: no socket, no gunicorn) on **mongomock**, from the request to the JSON answer:
    validation, metadata stripping, the decode, the focal point, the WebP thumb and its
    placeholder, the original's write, the answer. The other seven variants are rendered after
    the answer (``AVENUE_VARIANTS_AFTER_ANSWER=true``, set here); that render is timed too,
    outside the answer, and so is the upload with them rendered before the answer (the setting
    off: what every upload did before), for scale.

(a) and (b) alternate, ``--repeat`` times each (after a warm-up of each); medians and their
ratio. Then ``--check`` more uploads are answered with the render after the answer held back,
and every URL of each answer (the original, each variant negotiated and by explicit format) is
fetched at once: 200, decodable, the size and format the answer says, the bytes the original
lists once rendered.

On mongod the original's write (1.2 MB in five 255 KB chunks and one files document, two
commands) adds a few ms of round trips and disk to (b) that mongomock's in-memory copy does not
cost; the embedded SecantusDB (pure Python) costs more (bench/results/upload-answer-2026-11-24.md).

    python3 bench/upload_answer.py                  # 7 timings each, 2 answers checked
    python3 bench/upload_answer.py --repeat 9 --out bench/results/upload-answer-DATE.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import mongomock  # noqa: E402
from avenue import create_app  # noqa: E402
from avenue.media import Buckets  # noqa: E402
from avenue.media.serve import route  # noqa: E402
from bson import ObjectId  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402
from tests.support.fixtures import location  # noqa: E402
from tests.support.records import record  # noqa: E402
from tests.support.tokens import issue  # noqa: E402

from data import with_comment  # noqa: E402

TARGET = 0.5
QUALITY = 80
# name -> (width, height, mode): the four fixed variants.
VARIANTS = {"thumb": (200, 200, "fit"), "card": (600, 600, "fit"), "gallery": (1600, 1600, "fit"),
            "og": (1200, 630, "cover")}


def _fit(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    scale = min(box_w / width, box_h / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def bare_pillow(data: bytes) -> list[bytes]:
    """The four WebP q80 variants straight from Pillow: draft (libjpeg's DCT scaling to the
    smallest size that still covers the gallery), upright, then each resized from the decoded
    image with ``reducing_gap`` (the crop centred) and encoded."""
    with Image.open(io.BytesIO(data)) as source:
        gallery = _fit(*source.size, 1600, 1600)
        needed = (max(gallery[0], min(1200, source.width)), max(gallery[1], min(630, source.height)))
        source.draft("RGB", needed)
        image = ImageOps.exif_transpose(source).convert("RGB")
    out = []
    for box_w, box_h, mode in VARIANTS.values():
        if mode == "fit":
            size = _fit(image.width, image.height, box_w, box_h)
            resized = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        else:
            ratio = box_w / box_h
            crop_w, crop_h = (image.height * ratio, image.height) if image.width / image.height > ratio \
                else (image.width, image.width / ratio)
            left, top = (image.width - crop_w) / 2, (image.height - crop_h) / 2
            resized = image.resize((box_w, box_h), Image.Resampling.LANCZOS,
                                   box=(left, top, left + crop_w, top + crop_h), reducing_gap=3.0)
        buffer = io.BytesIO()
        resized.save(buffer, "WEBP", quality=QUALITY, method=4)
        out.append(buffer.getvalue())
    return out


class App:
    """The app in this process on a mongomock database, and an editor's token."""

    def __init__(self, after_answer: bool) -> None:
        shared = mongomock.MongoClient()  # one in-memory server for the app and this script
        self.app = create_app({
            "TESTING": True, "AVENUE_ENV": "testing", "SECRET_KEY": "bench-upload-answer",
            "MONGO_URI": "mongodb://localhost", "MONGO_DB": f"bench_{uuid.uuid4().hex[:8]}",
            "MONGO_CLIENT_CLASS": lambda *args, **kwargs: shared,
            "RATELIMIT_ENABLED": False, "AVENUE_STATUS_WARM_UP": False, "SESSION_COOKIE_SECURE": False,
            "AVENUE_VARIANTS_AFTER_ANSWER": after_answer, "AVENUE_HISTORY_INTERVAL_SECONDS": 0,
            "AVENUE_ACCESS_LOG": "off",
        })
        self.client = self.app.test_client()
        with self.app.app_context():
            from avenue.db import get_db, get_mongo

            get_mongo().ensure_indexes()
            self.headers = issue(get_db(), "editor")
        self.held: list = []

    def upload(self, data: bytes, label: str) -> tuple[float, dict]:
        """Milliseconds from the request to the answer, and the answer."""
        form = {"file": (io.BytesIO(data), f"{label}.jpg"), "visibility": "public"}
        route.start_after_answer = self.held.extend  # the render after the answer: run by us
        start = time.perf_counter()
        response = self.client.post("/api/uploads", data=form, headers=self.headers,
                                    content_type="multipart/form-data")
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 201:
            raise SystemExit(f"upload refused: {response.status_code} {response.get_data()[:300]!r}")
        body = response.get_json()
        response.close()  # what the server does once the answer is sent: hands the render over
        return elapsed, body

    def render_after_answer(self) -> float:
        """Run the held render after the answer; its milliseconds."""
        jobs, self.held[:] = list(self.held), []
        start = time.perf_counter()
        for job in jobs:
            job()
        return (time.perf_counter() - start) * 1000

    def check(self, body: dict) -> list[str]:
        """Every URL of the answer fetched at once (nothing rendered yet): what is wrong."""
        problems = []
        formats = {"WEBP": "webp", "JPEG": "jpeg", "PNG": "png"}
        urls = [("original", "", body["url"])] + [(n, "", u) for n, u in body["variants"].items()]
        urls += [(n, ext, u) for n, by_ext in body["variant_urls"].items() for ext, u in by_ext.items()]
        for name, ext, url in urls:
            for accept in ("image/webp,*/*", "*/*"):
                response = self.client.get(url, headers={"Accept": accept})
                if response.status_code != 200:
                    problems.append(f"{url} ({accept}): HTTP {response.status_code}")
                    continue
                try:
                    image = Image.open(io.BytesIO(response.data))
                    image.load()
                except Exception as error:  # noqa: BLE001 - reported
                    problems.append(f"{url}: not an image ({error})")
                    continue
                want = (body["width"], body["height"]) if name == "original" else \
                    (body["variant_sizes"][name]["width"], body["variant_sizes"][name]["height"])
                if image.size != want:
                    problems.append(f"{url}: {image.size}, the answer says {want}")
                if ext and formats.get(str(image.format)) != {"jpg": "jpeg"}.get(ext, ext):
                    problems.append(f"{url}: {image.format}")
                if name != "original":
                    with self.app.app_context():
                        from avenue.db import get_db

                        doc = record(get_db(), Buckets.UPLOADS, ObjectId(body["id"]))
                    listed = doc["metadata"]["variants"][name][formats[str(image.format)]]
                    if hashlib.sha256(response.data).hexdigest() != listed.get("sha256"):
                        problems.append(f"{url}: not the bytes the original lists")
        return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timings of each (median)")
    parser.add_argument("--check", type=int, default=2, help="answers whose every URL is fetched at once")
    parser.add_argument("--out", type=Path, help="also write the table as markdown here")
    args = parser.parse_args()
    photo = location() / "images" / "good" / "photo_12mp.jpg"  # made from the fixtures' seeds if missing
    data = photo.read_bytes()
    with Image.open(io.BytesIO(data)) as probe:
        size = probe.size
    run = uuid.uuid4().hex[:8]
    fast, before = App(after_answer=True), App(after_answer=False)
    bare_pillow(data), fast.upload(with_comment(data, f"warm {run}"), "warm"), fast.render_after_answer()
    before.upload(with_comment(data, f"warm {run}"), "warm")
    pillow, answered, rendered, old = [], [], [], []
    for i in range(args.repeat):
        start = time.perf_counter()
        bare_pillow(data)
        pillow.append((time.perf_counter() - start) * 1000)
        answered.append(fast.upload(with_comment(data, f"{run} {i}"), f"p{i}")[0])  # distinct bytes
        rendered.append(fast.render_after_answer())
        old.append(before.upload(with_comment(data, f"{run} old {i}"), f"o{i}")[0])
    problems: list[str] = []
    for i in range(args.check):
        _, body = fast.upload(with_comment(data, f"{run} check {i}"), f"c{i}")
        fast.held.clear()  # nothing rendered after the answer: every URL is asked for at once
        problems += fast.check(body)
    a, b = statistics.median(pillow), statistics.median(answered)
    c, d = statistics.median(rendered), statistics.median(old)
    ratio = b / a
    verdict = "met" if ratio <= TARGET and not problems else "missed"
    margin = (f"{(TARGET - ratio) / TARGET:.0%} under the target" if ratio <= TARGET
              else f"{(ratio - TARGET) / TARGET:.0%} over the target")
    lines = [
        f"# An upload answered against the bare Pillow pipeline, {dt.date.today()}", "",
        f"12 MP JPEG ({size[0]}x{size[1]}, {len(data):,} B; a distinct JPEG comment per upload); "
        f"median of {args.repeat}, alternating; {os.cpu_count()} cores; app in-process on mongomock.", "",
        "| what | median ms |", "| --- | ---: |",
        f"| (a) bare Pillow: draft + reducing_gap, four WebP q{QUALITY} | {a:.0f} |",
        f"| (b) `POST /api/uploads` answered (thumb + placeholder + original stored) | {b:.0f} |",
        f"| the seven pending variants rendered after the answer (not in (b)) | {c:.0f} |",
        f"| for scale: the upload with every variant rendered before the answer | {d:.0f} |", "",
        f"**Ratio (b)/(a): {ratio:.2f}x, target <= {TARGET}x: {verdict}** ({margin}).", "",
        f"Every URL of {args.check} answers fetched at once, before any render after the answer "
        f"(original, each variant by Accept and by extension, two Accept headers each): "
        + ("all 200, decodable, the answer's size and format, the bytes the original then lists."
           if not problems else f"{len(problems)} problems:"),
    ]
    lines += [f"- {problem}" for problem in problems[:20]]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
