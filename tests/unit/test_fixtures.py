"""The corpus tests/support/fixtures.py makes is the one ../shared/fixtures/README.md lists: every
file, with its format, size, mode and frames, the refused ones refused for the listed reason,
and the old app's uploads folder and documents as the legacy import expects them."""

from __future__ import annotations

import json
import zipfile

import pytest
from PIL import Image

from tests.support import fixtures

# One xdist group: one process makes the corpus (12 s on a fresh clone) and runs these tests,
# rather than every process waiting on its lock (tests/support/fixtures.py's ``made``).
pytestmark = pytest.mark.xdist_group("made_corpus")

# name: (format, (width, height), mode, frames), as the shared README describes them.
GOOD = {
    "photo_exif_rotated.jpg": ("JPEG", (1200, 800), "RGB", 1),
    "photo_12mp.jpg": ("JPEG", (4000, 3000), "RGB", 1),
    "cmyk.jpg": ("JPEG", (800, 600), "CMYK", 1),
    "grayscale.jpg": ("JPEG", (640, 480), "L", 1),
    "progressive.jpg": ("JPEG", (1024, 768), "RGB", 1),
    "alpha.png": ("PNG", (512, 512), "RGBA", 1),
    "palette_transparent.png": ("PNG", (512, 512), "P", 1),
    "lossless_alpha.webp": ("WEBP", (512, 512), "RGBA", 1),
    "png16.png": ("PNG", (300, 300), "I;16", 1),
    "animated.gif": ("GIF", (160, 120), "P", 4),
    "animated.webp": ("WEBP", (160, 120), "RGB", 4),
    "photo.avif": ("AVIF", (800, 600), "RGB", 1),
    "phone.heic": ("HEIF", (1008, 756), "RGB", 1),
    "tiny_1x1.png": ("PNG", (1, 1), "RGB", 1),
    "panorama.jpg": ("JPEG", (8000, 500), "RGB", 1),
}
UNSUPPORTED = {"bitmap.bmp": "BMP", "scan.tiff": "TIFF", "icon.ico": "ICO"}
BAD = ["empty.jpg", "truncated.jpg", "text_named.jpg", "document.pdf", "archive_named.png", "elf_named.png",
       "html_polyglot.gif", "script.svg", "bomb_50000x50000.png", "bomb_screen.gif", "corrupt_chunk.png"]


@pytest.fixture(scope="module")
def corpus():
    import pillow_heif

    pillow_heif.register_heif_opener()
    return fixtures.made()


def test_the_made_corpus_has_every_listed_file_and_nothing_else(corpus):
    listed = ({f"images/good/{name}" for name in GOOD} | {f"images/bad/{name}" for name in BAD}
              | {f"images/unsupported/{name}" for name in UNSUPPORTED})
    made = {str(path.relative_to(corpus)) for path in (corpus / "images").rglob("*") if path.is_file()}
    assert made == listed


@pytest.mark.parametrize("name", sorted(GOOD))
def test_each_good_image_has_the_listed_format_size_mode_and_frames(corpus, name):
    with Image.open(corpus / "images" / "good" / name) as image:
        assert (image.format, image.size, image.mode, getattr(image, "n_frames", 1)) == GOOD[name]


def test_the_rotated_photo_is_shown_upright_and_carries_a_camera_and_a_position(corpus):
    with Image.open(corpus / "images" / "good" / "photo_exif_rotated.jpg") as image:
        exif = image.getexif()
        assert exif[0x0112] == 6 and exif[0x010F] and exif[0x0110]
        assert exif.get_ifd(0x8825)[2]  # GPSLatitude
    with Image.open(corpus / "images" / "good" / "progressive.jpg") as image:
        assert image.info["progressive"]
    with Image.open(corpus / "images" / "good" / "palette_transparent.png") as image:
        assert "transparency" in image.info


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_the_unsupported_ones_are_valid_images_of_other_formats(corpus, name):
    with Image.open(corpus / "images" / "unsupported" / name) as image:
        assert image.format == UNSUPPORTED[name]
        image.load()


def test_the_bad_ones_are_what_their_names_say(corpus):
    bad = {name: (corpus / "images" / "bad" / name).read_bytes() for name in BAD}
    progressive = (corpus / "images" / "good" / "progressive.jpg").read_bytes()
    assert bad["empty.jpg"] == b""
    assert progressive.startswith(bad["truncated.jpg"])
    assert len(bad["truncated.jpg"]) == len(progressive) * 6 // 10
    assert bad["text_named.jpg"].startswith(b"hello") and bad["document.pdf"].startswith(b"%PDF")
    assert zipfile.is_zipfile(corpus / "images" / "bad" / "archive_named.png")
    assert bad["elf_named.png"].startswith(b"\x7fELF")
    assert bad["html_polyglot.gif"].startswith(b"GIF89a") and b"<script>" in bad["html_polyglot.gif"]
    assert b"<svg" in bad["script.svg"] and b"<script>" in bad["script.svg"]
    bomb = bad["bomb_50000x50000.png"]
    width, height = int.from_bytes(bomb[16:20], "big"), int.from_bytes(bomb[20:24], "big")
    assert len(bomb) < 1000 and width == height == 50000
    assert bad["bomb_screen.gif"][6:10] == b"\xff\xff\xff\xff"  # a 65535x65535 logical screen
    alpha = (corpus / "images" / "good" / "alpha.png").read_bytes()
    assert len(bad["corrupt_chunk.png"]) == len(alpha) and bad["corrupt_chunk.png"] != alpha
    for name in ("bomb_50000x50000.png", "bomb_screen.gif"):
        with pytest.raises(Image.DecompressionBombError):
            Image.open(corpus / "images" / "bad" / name)


def test_the_legacy_folder_and_documents_are_what_the_import_expects(corpus):
    legacy = corpus / "legacy_uploads"
    documents = json.loads((corpus / "legacy_db.json").read_text())
    on_disk = {f"/uploads/{path.relative_to(legacy)}" for path in legacy.rglob("*") if path.is_file()}
    named = {ref for product in documents["shop_products"] for ref in product["images"]}
    named |= set(documents["uploads"])
    named |= {block["image"] for page in documents["page_content"] for block in page["blocks"]
              if "image" in block}
    assert named - on_disk == {"/uploads/products/AV-1002/missing-on-disk.jpg",
                               "https://images.example.com/ext/AV-3000.jpg"}
    assert on_disk - named == {"/uploads/general/notes.txt", "/uploads/general/dup-of-first.png"}
    assert any(product["images"] == [] for product in documents["shop_products"])
    general = legacy / "general"
    first = (general / f"{fixtures.GENERAL[0]}.png").read_bytes()
    assert (general / "dup-of-first.png").read_bytes() == first
    for path in legacy.rglob("*"):
        if path.is_file() and path.suffix != ".txt":
            with Image.open(path) as image:
                image.load()


def test_what_is_drawn_depends_on_the_seed_alone():
    """Deterministic: the same seed draws the same pixels (a whole corpus made twice was
    byte-identical when this was written; making one takes seconds, so only a picture is drawn here)."""
    first, again, other = (fixtures.encoded(fixtures.scene((64, 48), seed), "PNG") for seed in (3, 3, 4))
    assert first == again != other
    assert fixtures.legacy_documents() == fixtures.legacy_documents()
