#!/usr/bin/env python3
"""Which AVIF encoder, at which speed and quality: bytes at the same SSIM as today's WebP, and time.

For each photo, the 800 px wide rendition (or the photo itself where it is smaller) is made
once with Pillow (Lanczos), then encoded as today's WebP rendition is (Pillow, q82, method 4:
avenue/media/variants.py) and its SSIM against the rendition measured (scikit-image's
``structural_similarity`` on the luma channel, Gaussian window, the settings of Wang et al.).
For every AVIF candidate, the quality is searched (bisection) for the smallest file whose
SSIM is at least WebP's, and that file's bytes and encode time (median of ``--repeat``) are
reported: bytes as a ratio to WebP's, time in ms. ``--metric ssimulacra2`` uses SSIMULACRA2
instead (the ``ssimulacra2`` package, a NumPy port of the libjxl tool: closer to what people
see than SSIM by its authors' validation against human ratings). Candidates:

- Pillow's AVIF plugin (libavif with libaom, as Pillow's wheels ship it) at speeds 6 (its
  default), 8 and 9;
- libvips's ``heifsave`` with AV1 (libheif with libaom, as pyvips-binary ships it) at efforts
  2 and 4 (effort is 9 - speed);
- JPEG XL (libjxl, as imagecodecs ships it: the encoder behind ``AVENUE_JPEG_XL``) at efforts
  3, 5 and 7 (its quality is imagecodecs' ``level``, libjxl's quality scale).

``--candidates "speed 6,JPEG XL"`` runs only the candidates whose label holds one of those words.

Two sets of photos: the repository's photo fixtures (flat shapes over gradients, made by a
script: not what a camera takes, and easy for both codecs), and six real photographs that
scikit-image bundles (astronaut, coffee, chelsea, rocket, hubble_deep_field, retina), which
are what the target is about.

    python3 bench/avif.py                       # 3 timings per encode
    python3 bench/avif.py --repeat 5 --out bench/results/avif-DATE.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import imagecodecs
import numpy as np
import pyvips
from PIL import Image, ImageOps
from skimage import data as samples
from skimage.metrics import structural_similarity
from ssimulacra2 import compute_ssimulacra2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.fixtures import location  # noqa: E402

GOOD = location() / "images" / "good"  # ../shared/fixtures, else the corpus tests/support makes
FIXTURE_PHOTOS = ("photo_12mp.jpg", "photo_exif_rotated.jpg", "progressive.jpg", "grayscale.jpg",
                  "cmyk.jpg", "panorama.jpg")
REAL_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina")
WIDTH = 800

Encoder = Callable[[Image.Image, int], bytes]


def pillow_avif(speed: int) -> Encoder:
    def encode(im: Image.Image, quality: int) -> bytes:
        out = io.BytesIO()
        im.save(out, "AVIF", quality=quality, speed=speed, codec="aom")
        return out.getvalue()
    return encode


def vips_avif(effort: int) -> Encoder:
    def encode(im: Image.Image, quality: int) -> bytes:
        image = pyvips.Image.new_from_memory(im.tobytes(), im.width, im.height, 3, "uchar")
        return bytes(image.heifsave_buffer(Q=quality, compression="av1", effort=effort,
                                           subsample_mode="on"))
    return encode


def jpegxl(effort: int) -> Encoder:
    def encode(im: Image.Image, quality: int) -> bytes:
        return bytes(imagecodecs.jpegxl_encode(np.asarray(im), level=quality, effort=effort))
    return encode


def webp(im: Image.Image, quality: int = 82) -> bytes:
    out = io.BytesIO()
    im.save(out, "WEBP", quality=quality, method=4)
    return out.getvalue()


CANDIDATES: dict[str, Encoder] = {
    "Pillow AVIF speed 6": pillow_avif(6),
    "Pillow AVIF speed 8": pillow_avif(8),
    "Pillow AVIF speed 9": pillow_avif(9),
    "libvips heifsave effort 2": vips_avif(2),
    "libvips heifsave effort 4": vips_avif(4),
    "JPEG XL effort 3": jpegxl(3),
    "JPEG XL effort 5": jpegxl(5),
    "JPEG XL effort 7": jpegxl(7),
}


def luma(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("L"), dtype=np.float64)


class Reference:
    """A rendition as the metrics compare against it."""

    def __init__(self, im: Image.Image) -> None:
        self.luma = luma(im)
        out = io.BytesIO()
        im.save(out, "PNG")
        self.png = out.getvalue()


def decoded(encoded: bytes) -> Image.Image:
    if imagecodecs.jpegxl_check(encoded):  # Pillow reads no JPEG XL
        return Image.fromarray(imagecodecs.jpegxl_decode(encoded))
    return Image.open(io.BytesIO(encoded))


def ssim(reference: Reference, encoded: bytes) -> float:
    decoded_image = decoded(encoded)
    return float(structural_similarity(reference.luma, luma(decoded_image), data_range=255,
                                       gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def ssimulacra2(reference: Reference, encoded: bytes) -> float:
    if imagecodecs.jpegxl_check(encoded):  # the package reads files with Pillow: a PNG of it
        out = io.BytesIO()
        decoded(encoded).save(out, "PNG")
        encoded = out.getvalue()
    return float(compute_ssimulacra2(io.BytesIO(reference.png), io.BytesIO(encoded)))


METRICS: dict[str, Callable[[Reference, bytes], float]] = {"ssim": ssim, "ssimulacra2": ssimulacra2}


def timed(encode: Callable[[], bytes], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        encode()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def at_same_score(im: Image.Image, reference: Reference, target: float, encode: Encoder,
                  metric: Callable[[Reference, bytes], float]) -> tuple[int, bytes]:
    """The lowest quality (so the smallest file) whose score reaches ``target``: bisection over
    1..100 (the score grows with quality for these encoders)."""
    low, high = 1, 100
    best = (100, encode(im, 100))
    while low <= high:
        mid = (low + high) // 2
        made = encode(im, mid)
        if metric(reference, made) >= target:
            best, high = (mid, made), mid - 1
        else:
            low = mid + 1
    return best


def rendition(im: Image.Image) -> Image.Image:
    im = ImageOps.exif_transpose(im).convert("RGB")
    if im.width > WIDTH:
        im = im.resize((WIDTH, max(1, round(im.height * WIDTH / im.width))), Image.Resampling.LANCZOS)
    return im


def photos() -> list[tuple[str, str, Image.Image]]:
    found = [("fixture", name, rendition(Image.open(GOOD / name))) for name in FIXTURE_PHOTOS]
    found += [("real", name, rendition(Image.fromarray(getattr(samples, name)()))) for name in REAL_PHOTOS]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timings per encode (median)")
    parser.add_argument("--metric", choices=sorted(METRICS), default="ssim",
                        help="the score AVIF must reach: WebP's (default ssim)")
    parser.add_argument("--out", type=Path, help="also write the tables as markdown here")
    parser.add_argument("--candidates", default="",
                        help="comma-separated words: only the candidates whose label holds one")
    args = parser.parse_args()
    metric = METRICS[args.metric]
    if args.candidates:
        words = [word.strip() for word in args.candidates.split(",") if word.strip()]
        for label in [label for label in CANDIDATES if not any(word in label for word in words)]:
            del CANDIDATES[label]
    rows: list[str] = []
    ratios: dict[tuple[str, str], list[float]] = {}
    times: dict[tuple[str, str], list[float]] = {}
    webp_ms: dict[str, list[float]] = {}
    for kind, name, im in photos():
        reference = Reference(im)
        made = webp(im)
        target = metric(reference, made)
        webp_ms.setdefault(kind, []).append(timed(lambda: webp(im), args.repeat))  # noqa: B023 (used at once)
        cells = [f"{kind} {name} {im.width}x{im.height}", f"{len(made):,} B, {args.metric} {target:.4f}"]
        for label, encode in CANDIDATES.items():
            quality, avif = at_same_score(im, reference, target, encode, metric)
            ratio = len(avif) / len(made)
            ms = timed(lambda: encode(im, quality), args.repeat)  # noqa: B023 (used at once)
            ratios.setdefault((kind, label), []).append(ratio)
            times.setdefault((kind, label), []).append(ms)
            cells.append(f"q{quality}: {ratio:.2f}x, {ms:.0f} ms")
        rows.append("| " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    header = ["| photo | WebP q82 (today) | " + " | ".join(CANDIDATES) + " |",
              "| --- | --- | " + " | ".join("---" for _ in CANDIDATES) + " |"]
    summary = ["", "| photos | WebP encode, median ms | " + " | ".join(CANDIDATES) + " |",
               "| --- | --- | " + " | ".join("---" for _ in CANDIDATES) + " |"]
    for kind in ("fixture", "real"):
        if kind not in webp_ms:
            continue
        cells = [f"{kind} (median)", f"{statistics.median(webp_ms[kind]):.0f} ms"]
        for label in CANDIDATES:
            cells.append(f"{statistics.median(ratios[(kind, label)]):.2f}x bytes, "
                         f"{statistics.median(times[(kind, label)]):.0f} ms")
        summary.append("| " + " | ".join(cells) + " |")
    report = "\n".join([f"# AVIF and JPEG XL encoders against today's WebP, {dt.date.today()}", "",
                        f"Bytes at {args.metric} >= WebP q82's (800 px wide renditions); encode time "
                        f"median of {args.repeat}; Pillow {Image.__version__}, libvips "
                        f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}.", "",
                        *header, *rows, *summary, ""])
    print("\n".join(summary))
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
