"""The files the tests read, made: the test corpus (``python -m tests.support.fixtures DEST``)
and distinct photos for the process tests."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import struct
import uuid
import zipfile
import zlib
from pathlib import Path

from PIL import Image, ImageDraw


def photo(index: int, side: int = 1100) -> bytes:
    """A distinct ~1-3 MB JPEG (noise compresses like a detailed photo)."""
    image = Image.effect_noise((side, side), 40 + index % 20).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92, comment=f"fault test {index} {uuid.uuid4().hex}".encode())
    return buffer.getvalue()


def noise_jpeg(width: int = 3000, height: int = 2250) -> bytes:
    """A JPEG of random pixels: about 6 MB, more than a socket's largest send buffer (4 MB)
    holds, so its answer cannot be handed to the kernel in one go."""
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(out, "JPEG", quality=90)
    return out.getvalue()


# --- the test corpus ----------------------------------------------------------------------------
# What ../shared/fixtures/README.md lists, made here so that a clone with nothing beside it can
# run its tests: every file name the tests read, with the format, size, mode and frames the
# README gives (tests/unit/test_fixtures.py checks them). Deterministic: a seeded generator
# draws every pixel, and the same bytes come out of every run on the same Pillow.

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "fixtures"
MADE = ROOT / ".fixtures"
VERSION = "2"  # bump when what is made changes: a made folder of another version is made again

PRODUCTS = {  # sku -> the photos on disk (the old app's products/<sku>/ folders)
    "AV-1001": ["1d3d5fbdfe261bd3", "6e559f7432d82b30"],
    "AV-1002": ["87051ebd784f02d1", "0dfc20a70ecbf45d", "f8e1b3edce9068ec"],
    "AV-1003": ["ffb94e2241911766"],
    "AV-1004": ["0c3cbccd20a3e193", "ac8751ecceb03c82"],
    "AV-1005": ["976da8975d30268d", "8744115391d67db8", "e604fca9a9ce91e1"],
    "AV-1006": ["7fa780b67d1e8c86"],
}
GENERAL = ["ffee7fbde40e6918", "88d4d23729fa6c92", "68bedb0a7acead34"]  # the old /api/uploads


def scene(size: tuple[int, int], seed: int, mode: str = "RGB", grain: float = 0.05) -> Image.Image:
    """A photo-like picture: a colour gradient, shapes, and ``grain``, all drawn from ``seed``."""
    from PIL import ImageDraw

    rng = random.Random(seed)
    width, height = size
    small = (max(1, min(width, 256)), max(1, min(height, 256)))
    channels = [Image.linear_gradient("L").rotate(rng.choice((0, 90, 180, 270))).resize(small)
                for _ in range(3)]
    image = Image.merge("RGB", channels).resize(size)
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randrange(1, max(2, width // 3)), rng.randrange(1, max(2, height // 3))
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x, y, x + w, y + h), fill=colour)
    noise = Image.frombytes("RGB", size, rng.randbytes(width * height * 3))
    image = Image.blend(image, noise, grain)
    if mode == "RGBA":
        alpha = Image.linear_gradient("L").resize(size)
        image.putalpha(alpha)
    elif mode != "RGB":
        image = image.convert(mode)
    return image


def encoded(image: Image.Image, format: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format, **options)
    return out.getvalue()


SUBJECT = (200, 30, 40)


def product_shot(size=(1200, 1200), corner=(940, 940, 1160, 1160)) -> bytes:
    """A plain light background with a detailed red product in one corner."""
    im = Image.new("RGB", size, (236, 236, 232))
    draw = ImageDraw.Draw(im)
    rng = random.Random(7)
    left, top, right, bottom = corner
    draw.rectangle(corner, fill=SUBJECT)
    for _ in range(400):  # texture: edges and saturation are what attention looks for
        x, y = rng.randint(left, right - 8), rng.randint(top, bottom - 8)
        colour = (rng.randint(150, 255), rng.randint(0, 60), rng.randint(0, 80))
        draw.ellipse((x, y, x + 8, y + 8), fill=colour)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=92)
    return out.getvalue()


def solid_png(side: int) -> bytes:
    """A ``side`` x ``side`` RGBA PNG of one colour: a few KB stored, ``side``² x 4 bytes decoded."""
    return encoded(Image.new("RGBA", (side, side), (10, 20, 30, 255)), "PNG", compress_level=9)


def exif_rotated() -> bytes:
    """1200x800 stored, Orientation 6 (shown 800x1200), a camera and a GPS position."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to show
    exif[0x010F] = "AvenueCam"
    exif[0x0110] = "X100"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (40.0, 26.0, 46.0), 3: "W", 4: (79.0, 58.0, 56.0)})
    return encoded(scene((1200, 800), 1), "JPEG", quality=90, exif=exif)


def frames(size: tuple[int, int], seed: int, count: int = 4) -> list[Image.Image]:
    return [scene(size, seed + index) for index in range(count)]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb() -> bytes:
    """A 1-bit PNG declaring 50000x50000 (2.5 gigapixels) in a few hundred bytes: its IDAT
    holds the first rows only."""
    header = struct.pack(">IIBBBBB", 50000, 50000, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 50000 // 8) * 16, 9)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows)
            + png_chunk(b"IEND", b""))


def zip_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("a.txt", date_time=(2025, 11, 21, 23, 48, 18)), "zip content")
    return out.getvalue()


def corpus() -> dict[str, bytes]:
    """Every file of the corpus by its path under the fixtures folder."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    progressive = encoded(scene((1024, 768), 5), "JPEG", quality=85, progressive=True)
    # Under 500 KB, as the shared one is: a larger form field is spooled to a temporary file.
    alpha = encoded(scene((512, 512), 6, "RGBA", grain=0.02), "PNG")
    gif = frames((160, 120), 20)
    animated_gif = encoded(gif[0].convert("P", palette=Image.Palette.ADAPTIVE), "GIF", save_all=True,
                           append_images=[f.convert("P", palette=Image.Palette.ADAPTIVE) for f in gif[1:]],
                           duration=120, loop=0)
    palette = scene((512, 512), 7).convert("P", palette=Image.Palette.ADAPTIVE, colors=255)
    palette.info["transparency"] = 0
    sixteen = Image.frombytes("I;16", (300, 300), b"".join(
        struct.pack("<H", (x * 218 + y * 1) % 65536) for y in range(300) for x in range(300)))
    files = {
        "images/good/photo_exif_rotated.jpg": exif_rotated(),
        "images/good/photo_12mp.jpg": encoded(scene((4000, 3000), 2), "JPEG", quality=85),
        "images/good/cmyk.jpg": encoded(scene((800, 600), 3, "CMYK"), "JPEG", quality=90),
        "images/good/grayscale.jpg": encoded(scene((640, 480), 4, "L"), "JPEG", quality=90),
        "images/good/progressive.jpg": progressive,
        "images/good/alpha.png": alpha,
        "images/good/palette_transparent.png": encoded(palette, "PNG", transparency=0),
        "images/good/lossless_alpha.webp": encoded(scene((512, 512), 8, "RGBA"), "WEBP", lossless=True),
        "images/good/png16.png": encoded(sixteen, "PNG"),
        "images/good/animated.gif": animated_gif,
        "images/good/animated.webp": encoded(gif[0], "WEBP", save_all=True, append_images=gif[1:],
                                             duration=120, loop=0, quality=80),
        "images/good/photo.avif": encoded(scene((800, 600), 9), "AVIF", quality=60),
        "images/good/phone.heic": encoded(scene((1008, 756), 10), "HEIF", quality=80),
        "images/good/tiny_1x1.png": encoded(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG"),
        "images/good/panorama.jpg": encoded(scene((8000, 500), 11), "JPEG", quality=85),
        "images/unsupported/bitmap.bmp": encoded(scene((200, 150), 12), "BMP"),
        "images/unsupported/scan.tiff": encoded(scene((200, 150), 13), "TIFF"),
        "images/unsupported/icon.ico": encoded(scene((64, 64), 14), "ICO", sizes=[(64, 64)]),
        "images/bad/empty.jpg": b"",
        "images/bad/truncated.jpg": progressive[: len(progressive) * 6 // 10],
        "images/bad/text_named.jpg": b"hello, this is not an image\n" * 10,
        "images/bad/document.pdf": b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\n"
                                   b"trailer<</Root 1 0 R>>\n%%EOF\n",
        "images/bad/archive_named.png": zip_archive(),
        "images/bad/elf_named.png": b"\x7fELF\x02\x01\x01\x00" + random.Random(15).randbytes(2048),
        "images/bad/html_polyglot.gif": b"GIF89a/*\x00\x00*/=1;<script>alert(document.domain)</script>"
                                        b"<html><body>x</body></html>\n",
        "images/bad/script.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
                                 b"<script>alert(1)</script><rect width=\"10\" height=\"10\"/></svg>\n",
        "images/bad/bomb_50000x50000.png": png_bomb(),
        # The animated GIF with its logical screen declared 65535x65535.
        "images/bad/bomb_screen.gif": animated_gif[:6] + b"\xff\xff\xff\xff" + animated_gif[10:],
        # The alpha PNG with its IDAT chunk's type damaged ("IDA\xab").
        "images/bad/corrupt_chunk.png": alpha[:40] + b"\xab" + alpha[41:],
        "legacy_uploads/general/notes.txt": b"not an image; the old /api/uploads accepted anything\n",
        "legacy_uploads/website_builder/hero-banner.png": encoded(scene((1600, 600), 30, "RGBA"), "PNG"),
        "legacy_uploads/website_builder/logo.webp": encoded(scene((512, 512), 31, "RGBA"), "WEBP",
                                                            lossless=True),
    }
    seed = 100
    for sku, names in PRODUCTS.items():
        for name in names:
            seed += 1
            jpeg = encoded(scene((900, 900), seed), "JPEG", quality=85)
            files[f"legacy_uploads/products/{sku}/{name}.jpg"] = jpeg
    for name in GENERAL:
        seed += 1
        files[f"legacy_uploads/general/{name}.png"] = encoded(scene((400, 300), seed), "PNG")
    # A byte-identical copy of an earlier upload under another name: stored once by the import.
    files["legacy_uploads/general/dup-of-first.png"] = files[f"legacy_uploads/general/{GENERAL[0]}.png"]
    files["legacy_db.json"] = (json.dumps(legacy_documents(), indent=2) + "\n").encode()
    return files


def legacy_documents() -> dict:
    """The old app's documents that named the files by URL path (``/uploads/...``): one
    product points at a file missing on disk, one has no photos, one an external URL."""
    products = []
    for index, (sku, names) in enumerate(PRODUCTS.items(), start=1):
        images = [f"/uploads/products/{sku}/{name}.jpg" for name in names]
        if sku == "AV-1002":
            images.append(f"/uploads/products/{sku}/missing-on-disk.jpg")
        products.append({"sku": sku, "name": f"Producto {index}", "price": 150000 + 1000 * index,
                         "images": images})
    products += [{"sku": "AV-2000", "name": "Sin fotos", "price": 99000, "images": []},
                 {"sku": "AV-3000", "name": "Foto externa", "price": 50000,
                  "images": ["https://images.example.com/ext/AV-3000.jpg"]}]
    pages = [{"slug": "home", "title": "Inicio", "blocks": [
        {"type": "hero", "image": "/uploads/website_builder/hero-banner.png", "title": "Avenue"},
        {"type": "image", "image": "/uploads/website_builder/logo.webp"},
        {"type": "text", "html": "<p>Bienvenidos</p>"}]}]
    return {"shop_products": products, "page_content": pages,
            "uploads": [f"/uploads/general/{name}.png" for name in GENERAL]}


def make(destination: Path) -> Path:
    """Write the corpus into ``destination`` (made whole in a sibling folder, then renamed
    into place, so a reader never sees half of it); ``destination``."""
    destination = Path(destination)
    building = destination.with_name(f"{destination.name}.{os.getpid()}.partial")
    shutil.rmtree(building, ignore_errors=True)
    for relative, data in corpus().items():
        path = building / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (building / ".version").write_text(VERSION)
    shutil.rmtree(destination, ignore_errors=True)
    building.rename(destination)
    return destination


def made(destination: Path = MADE) -> Path:
    """The corpus in ``destination``, made first unless a corpus of this version is there
    (one process makes it; the others, e.g. pytest-xdist's workers, wait for it)."""
    import fcntl

    destination.parent.mkdir(parents=True, exist_ok=True)
    with open(destination.with_name(f"{destination.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        version = destination / ".version"
        if not (version.is_file() and version.read_text() == VERSION):
            make(destination)
    return destination


def location() -> Path:
    """Where the tests read their files: ``AVENUE_FIXTURES`` (a folder, or ``made`` for the
    corpus this module makes), else ../shared/fixtures when it is there, else the made corpus."""
    chosen = os.environ.get("AVENUE_FIXTURES", "")
    if chosen and chosen != "made":
        return Path(chosen)
    if not chosen and SHARED.is_dir():
        return SHARED
    return made()


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.support.fixtures DEST")
    print(make(Path(sys.argv[1])))
