"""Rendering a rendition on request (avenue/media/ingest/render.py): bytes in, bytes out."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops, ImageStat

from avenue.media.ingest import images
from avenue.media.ingest.focal import CENTRE, FocalPoint
from avenue.media.ingest.images import Limits
from avenue.media.ingest.render import render_spec
from avenue.media.transform import normalise, parse
from tests.helpers import image_bytes

STORED = Limits.for_stored(50 * 1024 * 1024)


def opened(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@pytest.mark.parametrize("fmt, pil", [("webp", "WEBP"), ("avif", "AVIF"), ("jpeg", "JPEG"), ("png", "PNG")])
def test_a_width_on_the_ladder_comes_out_that_wide_in_the_format_asked(fmt, pil):
    made = render_spec(image_bytes("good/photo_12mp.jpg"), STORED, parse("w_800").spec, fmt, CENTRE)
    im = opened(made.data)
    assert (im.format, im.size) == (pil, (800, 600)) == (pil, (made.width, made.height))
    assert made.format == fmt


def test_a_large_rendition_is_decoded_at_its_own_scale_not_the_fixed_variants():
    made = render_spec(image_bytes("good/photo_12mp.jpg"), STORED, parse("w_2560").spec, "webp", CENTRE)
    assert (made.width, made.height) == (2560, 1920)  # the fixed variants decode 1600 at most


def test_a_small_rendition_decodes_only_what_it_needs(monkeypatch):
    sizes = []
    real = images.prepare

    def spy(data, limits, decode_scale=None, working=None, **kwargs):
        prepared = real(data, limits, decode_scale, working, **kwargs)
        sizes.append(prepared.pixels.size)
        return prepared

    monkeypatch.setattr("avenue.media.ingest.render.prepare", spy)
    render_spec(image_bytes("good/photo_12mp.jpg"), STORED, parse("w_320").spec, "webp", CENTRE)
    assert sizes and sizes[0][0] < 1600 and sizes[0][0] >= 320


def test_it_never_upscales_unless_asked():
    small = image_bytes("good/progressive.jpg")  # 1024x768
    assert opened(render_spec(small, STORED, parse("w_2560").spec, "webp", CENTRE).data).size == (1024, 768)
    bigger = render_spec(small, STORED, parse("w_2560,up_1").spec, "webp", CENTRE)
    assert opened(bigger.data).size == (2560, 1920)


def test_a_cover_has_the_aspect_asked_and_keeps_the_focal_point_side():
    data = image_bytes("good/photo_12mp.jpg")
    left = render_spec(data, STORED, parse("w_400,h_500,fit_cover").spec, "png", FocalPoint(0.0, 0.5))
    right = render_spec(data, STORED, parse("w_400,h_500,fit_cover").spec, "png", FocalPoint(1.0, 0.5))
    assert opened(left.data).size == opened(right.data).size == (400, 500)
    assert left.data != right.data  # cut from opposite sides of the photo


def test_the_exif_orientation_is_applied_before_the_geometry():
    data = image_bytes("good/photo_exif_rotated.jpg")
    made = render_spec(data, STORED, parse("w_400").spec, "jpeg", CENTRE)
    assert opened(made.data).size == (400, 600)  # stored 1200x800, shown 800x1200


@pytest.mark.parametrize("name", ["good/cmyk.jpg", "good/png16.png", "good/palette_transparent.png",
                                  "good/animated.gif", "good/lossless_alpha.webp", "good/phone.heic",
                                  "good/photo.avif", "good/tiny_1x1.png", "good/panorama.jpg",
                                  "good/grayscale.jpg"])
def test_every_accepted_kind_renders(name):
    made = render_spec(image_bytes(name), STORED, parse("w_160,h_160,fit_cover").spec, "webp", CENTRE)
    im = opened(made.data)
    assert im.format == "WEBP" and im.width <= 160 and im.height <= 160
    assert im.mode in {"RGB", "RGBA", "L"}


def test_transparency_survives_except_in_jpeg_which_is_flattened_on_white():
    data = image_bytes("good/alpha.png")
    assert opened(render_spec(data, STORED, parse("w_160").spec, "webp", CENTRE).data).mode == "RGBA"
    flat = opened(render_spec(data, STORED, parse("w_160").spec, "jpeg", CENTRE).data)
    assert flat.mode == "RGB"


def test_quality_changes_the_bytes_and_rendering_is_deterministic():
    data = image_bytes("good/progressive.jpg")
    spec = normalise(480)
    low = render_spec(data, STORED, spec, "webp", CENTRE, quality=30)
    high = render_spec(data, STORED, spec, "webp", CENTRE, quality=95)
    assert len(low.data) < len(high.data)
    again = render_spec(data, STORED, spec, "webp", CENTRE)
    assert render_spec(data, STORED, spec, "webp", CENTRE).data == again.data


@pytest.mark.parametrize("name", ["good/photo_12mp.jpg", "good/photo_exif_rotated.jpg", "good/png16.png",
                                  "good/phone.heic"])
def test_a_stored_original_is_decoded_without_being_stripped_or_hashed_again(monkeypatch, name):
    """A render wants only the pixels of an original that was validated and stripped at its
    upload: stripping it again (a re-encode for some kinds: a HEIC became a JPEG) and hashing
    it was work every cold render paid for nothing."""
    def refuse(*args, **kwargs):
        raise AssertionError("the stored original was stripped again")

    monkeypatch.setattr(images, "strip_jpeg", refuse)
    monkeypatch.setattr(images, "_sanitized", refuse)
    monkeypatch.setattr(images, "sha256", refuse)
    made = render_spec(image_bytes(name), STORED, parse("w_320").spec, "webp", CENTRE)
    assert opened(made.data).format == "WEBP" and made.width <= 320


def awkward_photo() -> bytes:
    """A 2040x1356 JPEG: fitted into 512x512 it is 512x340, where a scale that covers both
    sides decodes 512x341."""
    from tests.support.fixtures import scene

    out = io.BytesIO()
    scene((2040, 1356), 46).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_a_rendition_of_the_whole_picture_is_decoded_at_its_size_and_resized_once(monkeypatch):
    """Decoded at 1/2 by shrink-on-load, then resized once straight to 512x340 (it was resized
    to 512x341 in the decode and again to 512x340), and as close to the picture as a single
    Lanczos resize of the full decode."""
    from avenue.media.ingest import vips

    decoded, again = [], []
    real_prepare, real_resize = images.prepare, vips.resize

    def spy(*args, **kwargs):
        prepared = real_prepare(*args, **kwargs)
        decoded.append(prepared.pixels.size)
        return prepared

    monkeypatch.setattr("avenue.media.ingest.render.prepare", spy)
    def resized(*args, **kwargs):
        again.append(args[1:3])
        return real_resize(*args, **kwargs)

    monkeypatch.setattr(vips, "resize", resized)
    data = awkward_photo()
    made = render_spec(data, STORED, parse("w_512,h_512").spec, "png", CENTRE)
    assert decoded == [(512, 340)] and again == []
    assert (made.width, made.height) == (512, 340)
    reference = opened(data).resize((512, 340), Image.Resampling.LANCZOS)
    difference = ImageStat.Stat(ImageChops.difference(opened(made.data).convert("RGB"), reference)).mean
    assert max(difference) < 3.0, difference


def test_a_part_of_the_picture_is_still_cut_from_the_frame_decoded_to_cover_it():
    made = render_spec(awkward_photo(), STORED, parse("w_300,h_300,fit_cover").spec, "png", CENTRE)
    assert opened(made.data).size == (300, 300)


def test_a_jpeg_rendition_is_a_baseline_jpeg_of_the_same_pixels_as_a_progressive_one():
    """Renditions on request are baseline JPEGs (bench/results/jpeg-progressive-2026-11-26.md:
    2-4 % more bytes, 0.4x the encode); the fixed variants' encoder stays progressive."""
    from avenue.media.ingest.variants import encode_image

    made = render_spec(image_bytes("good/photo_12mp.jpg"), STORED, parse("w_512").spec, "jpeg", CENTRE)
    baseline = opened(made.data)
    assert "progressive" not in baseline.info and "progression" not in baseline.info
    progressive = opened(encode_image(baseline.copy(), "jpeg", None))
    assert progressive.info.get("progressive")
    again = opened(encode_image(baseline.copy(), "jpeg", None, progressive=False))
    assert ImageChops.difference(opened(encode_image(baseline.copy(), "jpeg", None)).convert("RGB"),
                                 again.convert("RGB")).getbbox() is None


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError):
        render_spec(image_bytes("good/progressive.jpg"), STORED, normalise(160), "gif", CENTRE)
