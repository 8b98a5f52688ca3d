"""The libvips path (avenue/media/ingest/vips.py): which uploads take it; it keeps every guarantee."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageCms

from avenue.errors import CorruptImage
from avenue.media.ingest import vips
from avenue.media.ingest.images import Limits, decode_budget, prepare
from avenue.media.ingest.variants import render
from tests.helpers import image_bytes


def jpeg(size=(3000, 2000), mode="RGB", **options) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize(size).convert(mode).save(out, "JPEG", quality=80, **options)
    return out.getvalue()


@pytest.mark.parametrize("name", ["photo_12mp.jpg", "photo_exif_rotated.jpg", "progressive.jpg",
                                  "grayscale.jpg", "panorama.jpg"])
def test_rgb_and_greyscale_jpegs_are_decoded_by_libvips(name):
    assert isinstance(prepare(image_bytes(f"good/{name}"), Limits()).pixels, vips.Frame)


@pytest.mark.parametrize("name", ["cmyk.jpg", "png16.png", "alpha.png", "palette_transparent.png",
                                  "animated.gif", "animated.webp", "lossless_alpha.webp", "phone.heic",
                                  "photo.avif"])
def test_every_other_upload_keeps_pillow(name):
    assert isinstance(prepare(image_bytes(f"good/{name}"), Limits()).pixels, Image.Image)


@pytest.mark.parametrize("name", ["photo_12mp.jpg", "photo_exif_rotated.jpg", "panorama.jpg"])
def test_the_same_jpeg_gives_the_same_variant_bytes_every_time(name):
    runs = [[(r.name, r.format, r.data) for r in render(prepare(image_bytes(f"good/{name}"), Limits()))]
            for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]


def test_the_shrink_on_load_is_the_smallest_jpeg_scale_that_feeds_every_variant():
    # 4000x3000: 1/2 (2000x1500) still covers the 1600 px gallery, 1/4 would not.
    assert vips.shrink_on_load(4000, 3000, (1600, 1200)) == (2, (2000, 1500))
    assert vips.shrink_on_load(8000, 500, (8000, 500)) == (1, (8000, 500))
    # libvips's shrunk size rounds down (13 // 4 = 3); the canvas reserved rounds up.
    assert vips.shrink_on_load(13, 9, (3, 2)) == (4, (4, 3))
    assert vips.shrink_on_load(13, 9, (4, 2)) == (2, (7, 5))


@pytest.mark.parametrize("size", [(13, 9), (4001, 3001), (3203, 2403), (801, 1799)])
def test_the_frame_is_never_upscaled_from_the_shrunk_decode(size):
    prepared = prepare(jpeg(size), Limits())
    assert prepared.pixels.size[0] <= size[0] and prepared.pixels.size[1] <= size[1]
    assert all(r.width <= size[0] and r.height <= size[1] for r in render(prepared))


def test_the_budget_reserved_is_the_shrink_on_load_canvas_and_it_is_given_back():
    data = jpeg((6000, 4000))
    # 24 MP declared (96 MB at 4 bytes a pixel); decoded at 1/2 it is 3000x2000: 24 MB.
    limits = Limits(decode_budget_bytes=24 * 2**20 + 17)
    prepared = prepare(data, limits)
    assert prepared.pixels.size == (1600, 1067)
    assert decode_budget(limits.decode_budget_bytes).in_use == 0
    with pytest.raises(Exception):  # noqa: B017 - ImageTooLarge: 24 MB do not fit in 20
        prepare(data, Limits(decode_budget_bytes=20 * 2**20 + 17))


def test_a_truncated_jpeg_is_refused_by_the_libvips_decode_and_the_budget_is_given_back():
    data = jpeg((1200, 900))
    limits = Limits(decode_budget_bytes=64 * 2**20 + 19)
    with pytest.raises(CorruptImage):
        prepare(data[: len(data) * 2 // 3], limits)
    assert decode_budget(limits.decode_budget_bytes).in_use == 0


def test_libvips_variants_keep_the_icc_profile_and_no_other_metadata():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0112] = 8
    prepared = prepare(jpeg((2400, 1600), icc_profile=icc, exif=exif.tobytes()), Limits())
    assert isinstance(prepared.pixels, vips.Frame)
    for rendition in render(prepared):
        im = Image.open(io.BytesIO(rendition.data))
        assert im.info.get("icc_profile") == icc, f"{rendition.name}.{rendition.format}"
        assert not im.getexif()
        # Orientation 8 turned the 2400x1600 stored pixels upright: portrait variants.
        assert im.height > im.width or rendition.name == "og"


def test_libvips_variants_have_the_pillow_paths_sizes():
    prepared = prepare(image_bytes("good/photo_12mp.jpg"), Limits())
    sizes = {(r.name, r.format): (r.width, r.height) for r in render(prepared)}
    assert sizes == {
        ("gallery", "webp"): (1600, 1200), ("gallery", "jpeg"): (1600, 1200),
        ("card", "webp"): (600, 450), ("card", "jpeg"): (600, 450),
        ("thumb", "webp"): (200, 150), ("thumb", "jpeg"): (200, 150),
        ("og", "webp"): (1200, 630), ("og", "jpeg"): (1200, 630),
    }


def test_a_greyscale_jpeg_stays_greyscale_in_its_jpeg_variants():
    for rendition in render(prepare(jpeg((900, 600), mode="L"), Limits())):
        if rendition.format == "jpeg":
            assert Image.open(io.BytesIO(rendition.data)).mode == "L"
