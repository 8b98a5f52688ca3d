"""The fixed variants an upload renders (avenue/media/ingest/variants.py): each fits its box,
never upscales, keeps transparency, colours, tones and orientation, and comes out the same
bytes every time; no database, no HTTP."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageStat

from avenue.media.ingest.images import Limits, prepare
from avenue.media.ingest.variants import render
from tests.helpers import IMAGES, image_bytes

GOOD = sorted(p.name for p in (IMAGES / "good").iterdir())


def open_served(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@pytest.mark.parametrize("name", GOOD)
def test_variants_fit_their_boxes_and_never_upscale(name):
    prepared = prepare(image_bytes(f"good/{name}"), Limits())
    renditions = render(prepared)
    assert {(r.name, r.format) for r in renditions} >= {
        ("thumb", "webp"), ("card", "webp"), ("gallery", "webp"), ("og", "webp")
    }
    for rendition in renditions:
        im = open_served(rendition.data)
        assert im.size == (rendition.width, rendition.height)
        assert im.format.lower() == {"jpeg": "jpeg", "png": "png", "webp": "webp"}[rendition.format]
        assert not im.getexif()
        box = {"thumb": (200, 200), "card": (600, 600), "gallery": (1600, 1600), "og": (1200, 630)}
        width, height = box[rendition.name]
        assert im.width <= min(width, prepared.width) + 1 and im.height <= min(height, prepared.height) + 1
        if rendition.name == "og" and prepared.width >= 1200 and prepared.height >= 630:
            assert im.size == (1200, 630)



@pytest.mark.parametrize("name", ["alpha.png", "palette_transparent.png", "lossless_alpha.webp"])
def test_transparency_survives_into_variants(name):
    renditions = render(prepare(image_bytes(f"good/{name}"), Limits()))
    for rendition in renditions:
        im = open_served(rendition.data).convert("RGBA")
        assert im.getextrema()[3][0] < 255, f"{rendition.name}.{rendition.format} lost its alpha"
    assert {r.format for r in renditions} == {"webp", "png"}



def test_cmyk_variants_are_rgb_with_the_same_colours():
    source = Image.open(IMAGES / "good" / "cmyk.jpg").convert("RGB")
    expected = ImageStat.Stat(source).mean
    for rendition in render(prepare(image_bytes("good/cmyk.jpg"), Limits())):
        im = open_served(rendition.data)
        assert im.mode == "RGB"
        got = ImageStat.Stat(im).mean
        assert all(abs(a - b) < 25 for a, b in zip(got, expected, strict=True)), (got, expected)



def test_16_bit_png_variants_keep_their_tones():
    source = Image.open(IMAGES / "good" / "png16.png")
    lo, hi = source.getextrema()
    for rendition in render(prepare(image_bytes("good/png16.png"), Limits())):
        im = open_served(rendition.data).convert("L")
        got_lo, got_hi = im.getextrema()
        assert abs(got_lo - lo / 256) < 8 and abs(got_hi - hi / 256) < 8



def test_rotated_photo_variants_are_upright():
    prepared = prepare(image_bytes("good/photo_exif_rotated.jpg"), Limits())
    renditions = {(r.name, r.format): r for r in render(prepared)}
    thumb = renditions[("thumb", "webp")]
    assert thumb.height > thumb.width



@pytest.mark.parametrize("name", ["grayscale.jpg", "tiny_1x1.png", "alpha.png"])
def test_rendering_is_deterministic_although_renditions_run_in_parallel(name):
    prepared_runs = [render(prepare(image_bytes(f"good/{name}"), Limits())) for _ in range(6)]
    first = [(r.name, r.format, r.data) for r in prepared_runs[0]]
    for run in prepared_runs[1:]:
        assert [(r.name, r.format, r.data) for r in run] == first
