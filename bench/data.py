"""Deterministic benchmark images, made with Pillow from a seeded PRNG (no downloads).

The same Pillow version gives byte-identical files on every run, so they are cached in the
work folder and only made again when missing.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image

KB = 1024
MB = 1024 * 1024


def photo_like(width: int, height: int, seed: int, noise: float) -> Image.Image:
    """Smooth gradients (sky, light falloff) mixed with ``noise`` of seeded grain (detail)."""
    rnd = random.Random(seed)
    g = Image.linear_gradient("L").resize((width, height))
    r = Image.radial_gradient("L").resize((width, height))
    b = Image.linear_gradient("L").rotate(90).resize((width, height))
    base = Image.merge("RGB", (g, r, b))
    grain = Image.frombytes("RGB", (width, height), rnd.randbytes(width * height * 3))
    return Image.blend(base, grain, noise)


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def jpeg_of_size(target: int, *, seed: int, aspect: float = 4 / 3, noise: float = 0.3,
                 quality: int = 90, tolerance: float = 0.04) -> bytes:
    """A photo-like JPEG within ``tolerance`` of ``target`` bytes (size scales with pixels)."""
    width = 1024
    data = b""
    for _ in range(12):
        height = max(16, round(width / aspect))
        data = _jpeg(photo_like(width, height, seed, noise), quality)
        if abs(len(data) - target) <= tolerance * target:
            return data
        width = max(16, round(width * (target / len(data)) ** 0.5))
    return data


def varied_jpeg(base: Image.Image, index: int, quality: int) -> bytes:
    """``base`` with a few pixels set from ``index``: a distinct, valid image each time."""
    image = base.copy()
    w = image.width
    for k in range(4):
        pos = (index * 4 + k) % (w * image.height)
        image.putpixel((pos % w, pos // w), ((index >> 16) & 255, (index >> 8) & 255, index & 255))
    return _jpeg(image, quality)


def ingest_base(target: int = MB, seed: int = 7) -> tuple[Image.Image, int]:
    """A grain-only image whose JPEG at the returned quality is about ``target`` bytes.

    Grain at quality 100 packs the most bytes into the fewest pixels (~2 bytes a pixel), so
    the per-file time is storage more than decoding and resizing.
    """
    quality = 100
    side = 720
    for _ in range(8):
        image = photo_like(side, side, seed, 1.0)
        size = len(_jpeg(image, quality))
        if abs(size - target) <= 0.04 * target:
            return image, quality
        side = max(64, round(side * (target / size) ** 0.5))
    return photo_like(side, side, seed, 1.0), quality


def ensure_files(folder: Path, only: tuple[str, ...] = ()) -> dict[str, Path]:
    """The served files: 100 KB and 2 MB JPEGs and a ~50 MB JPEG (25 MP, under 40 MP); or
    ``only`` those named (the 50 MB one takes a while to make)."""
    folder.mkdir(parents=True, exist_ok=True)
    specs = {
        "img100k.jpg": lambda: jpeg_of_size(100 * KB, seed=100, noise=0.12, quality=85),
        "img2m.jpg": lambda: jpeg_of_size(2 * MB, seed=2000, noise=0.3, quality=90),
        # Pure grain at quality 100 is ~2 bytes a pixel: 5000x5000 is ~50 MB.
        "img50m.jpg": lambda: jpeg_of_size(50 * MB, seed=50, aspect=1.0, noise=1.0,
                                           quality=100, tolerance=0.06),
    }
    paths = {}
    for name, make in specs.items():
        if only and name not in only:
            continue
        path = folder / name
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(make())
            tmp.replace(path)
        paths[name] = path
    return paths


def photo_12mp(project_root: Path, folder: Path) -> Path:
    """The test corpus's 12 MP photo (../shared/fixtures, else the one tests/support/fixtures.py
    made in .fixtures) if present, else a deterministic 4000x3000 photo-like JPEG."""
    for corpus in (project_root.parent / "shared" / "fixtures", project_root / ".fixtures"):
        shared = corpus / "images" / "good" / "photo_12mp.jpg"
        if shared.exists():
            return shared
    path = folder / "photo_12mp.jpg"
    if not path.exists():
        path.write_bytes(_jpeg(photo_like(4000, 3000, 12, 0.15), 88))
    return path


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The same JPEG with a COM segment after SOI: a different hash, the same pixels."""
    payload = text.encode()
    segment = b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload
    return jpeg[:2] + segment + jpeg[2:]
