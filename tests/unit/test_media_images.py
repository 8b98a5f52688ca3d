"""Validation, metadata stripping and variants: pure functions, no database, no HTTP."""

from __future__ import annotations

import io
import tracemalloc

import pytest
from PIL import Image, ImageStat

from avenue.errors import CorruptImage, EmptyFile, ImageTooLarge, UnsupportedImage
from avenue.media.ingest.images import (
    Limits,
    prepare,
    read_limited,
    sanitize_filename,
    strip_gif,
    strip_jpeg,
    strip_png,
    strip_webp,
)
from avenue.media.ingest.variants import render
from tests.helpers import IMAGES, REFUSED, image_bytes

GOOD = sorted(p.name for p in (IMAGES / "good").iterdir())
UNSUPPORTED = sorted(p.name for p in (IMAGES / "unsupported").iterdir())
# file -> statuses the fixtures README allows
BAD = {path.split("/", 1)[1]: statuses for path, statuses in REFUSED.items() if path.startswith("bad/")}
GPS_IFD = 0x8825
EXPECTED_DISPLAY = {
    "photo_exif_rotated.jpg": (800, 1200),
    "photo_12mp.jpg": (4000, 3000),
    "panorama.jpg": (8000, 500),
    "tiny_1x1.png": (1, 1),
}


def open_served(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def test_every_bad_file_is_named_in_the_table():
    assert set(BAD) == {p.name for p in (IMAGES / "bad").iterdir()}


@pytest.mark.parametrize("name", GOOD)
def test_it_accepts_every_good_image_and_serves_bytes_without_location_data(name):
    prepared = prepare(image_bytes(f"good/{name}"), Limits())
    served = open_served(prepared.data)
    exif = served.getexif()
    assert GPS_IFD not in exif
    assert not {0x010F, 0x0110, 0xA431, 0x9003} & set(exif)  # make, model, serial, date
    assert b"GPS" not in prepared.data[:65536]
    assert prepared.content_type.startswith("image/")
    displayed = (served.height, served.width) if exif.get(0x0112, 1) >= 5 else served.size
    assert displayed == (prepared.width, prepared.height)
    if name in EXPECTED_DISPLAY:
        assert (prepared.width, prepared.height) == EXPECTED_DISPLAY[name]


def test_a_rotated_photo_keeps_only_its_orientation_so_browsers_show_it_upright():
    original = image_bytes("good/photo_exif_rotated.jpg")
    prepared = prepare(original, Limits())
    exif = open_served(prepared.data).getexif()
    assert dict(exif) == {0x0112: 6}
    assert prepared.first_frame.size == (800, 1200)
    # The compressed pixels are untouched: only metadata segments changed.
    assert original.count(b"\xff\xda") == prepared.data.count(b"\xff\xda")


def test_heic_becomes_a_jpeg_every_browser_can_show():
    prepared = prepare(image_bytes("good/phone.heic"), Limits())
    assert prepared.content_type == "image/jpeg"
    assert open_served(prepared.data).format == "JPEG"


@pytest.mark.parametrize("name", ["animated.gif", "animated.webp"])
def test_an_animation_keeps_its_frames(name):
    prepared = prepare(image_bytes(f"good/{name}"), Limits())
    assert prepared.frames == 4
    assert getattr(open_served(prepared.data), "n_frames", 1) == 4


@pytest.mark.parametrize("name", UNSUPPORTED)
def test_valid_images_of_other_formats_are_refused_with_the_accepted_list(name):
    with pytest.raises(UnsupportedImage) as refused:
        prepare(image_bytes(f"unsupported/{name}"), Limits())
    assert refused.value.status == 415
    assert "JPEG, PNG, WebP, GIF, AVIF, HEIC" in refused.value.message


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_are_refused_with_the_right_status(name):
    with pytest.raises((EmptyFile, UnsupportedImage, CorruptImage, ImageTooLarge)) as refused:
        prepare(image_bytes(f"bad/{name}"), Limits())
    assert refused.value.status in BAD[name]


@pytest.mark.parametrize("name", ["bomb_50000x50000.png", "bomb_screen.gif"])
def test_a_decompression_bomb_is_refused_without_allocating_its_pixels(name):
    data = image_bytes(f"bad/{name}")
    tracemalloc.start()
    try:
        with pytest.raises(ImageTooLarge):
            prepare(data, Limits())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024  # the pixels would be gigabytes


def _gif(frames: int, size=(20, 20)) -> bytes:
    images = [Image.new("RGB", size, color=(i * 7 % 256, i * 13 % 256, 90)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=10)
    return out.getvalue()


def test_too_many_frames_are_refused():
    with pytest.raises(ImageTooLarge) as refused:
        prepare(_gif(12), Limits(max_frames=10))
    assert refused.value.code == "too_many_frames"


def test_pixels_summed_over_frames_are_limited():
    with pytest.raises(ImageTooLarge) as refused:
        prepare(_gif(5, (100, 100)), Limits(max_total_pixels=40_000))
    assert refused.value.code == "too_many_pixels"


def test_the_pixel_limit_is_checked_from_the_header():
    with pytest.raises(ImageTooLarge) as refused:
        prepare(image_bytes("good/photo_12mp.jpg"), Limits(max_pixels=10_000_000))
    assert refused.value.status == 413


def test_reading_stops_one_byte_past_the_limit():
    class Stream(io.BytesIO):
        requested: list[int] = []

        def read(self, size=-1):
            self.requested.append(size)
            return super().read(size)

    stream = Stream(b"x" * 5000)
    with pytest.raises(ImageTooLarge):
        read_limited(stream, 1000)
    assert stream.requested == [1001]


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


def _jpeg_with_metadata() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0112] = 1
    exif.get_ifd(GPS_IFD)[2] = (52.0, 21.0, 0.0)
    out = io.BytesIO()
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.new("RGB", (64, 48), "red").save(out, "JPEG", exif=exif.tobytes(), icc_profile=icc,
                                            comment=b"secret comment")
    return out.getvalue() + b"<html>trailing</html>"


def test_jpeg_stripping_drops_exif_comment_and_trailing_bytes_but_keeps_icc():
    stripped = strip_jpeg(_jpeg_with_metadata())
    im = open_served(stripped)
    assert not im.getexif()
    assert im.info.get("icc_profile")
    assert b"secret comment" not in stripped and b"<html>" not in stripped
    assert stripped.endswith(b"\xff\xd9")


def test_png_stripping_drops_text_chunks():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Author", "someone@example.com")
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "PNG", pnginfo=info)
    stripped = strip_png(out.getvalue() + b"garbage")
    assert b"someone@example.com" not in stripped and not stripped.endswith(b"garbage")
    assert open_served(stripped).size == (8, 8)


def test_webp_stripping_drops_exif():
    exif = Image.Exif()
    exif.get_ifd(GPS_IFD)[2] = (52.0, 21.0, 0.0)
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "WEBP", exif=exif.tobytes())
    stripped = strip_webp(out.getvalue())
    assert b"EXIF" not in stripped
    assert not open_served(stripped).getexif().get_ifd(GPS_IFD)


def test_gif_stripping_drops_comments_and_data_after_the_trailer():
    data = _gif(3)
    im = Image.open(io.BytesIO(data))
    out = io.BytesIO()
    im.save(out, "GIF", save_all=True, comment=b"private note")
    stripped = strip_gif(out.getvalue() + b"<script>alert(1)</script>")
    assert b"private note" not in stripped and b"<script>" not in stripped
    assert Image.open(io.BytesIO(stripped)).n_frames == 3


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\photo.jpg", "photo.jpg"),
        ("evil\u202egpj.exe", "evilgpj.exe"),
        ("line\nbreak\x00.png", "linebreak.png"),
        ("", "image"),
        ("   ", "image"),
    ],
)
def test_filenames_are_sanitized(raw, expected):
    assert sanitize_filename(raw) == expected


def test_long_filenames_are_cut_keeping_the_extension():
    name = sanitize_filename("a" * 1000 + ".jpg")
    assert len(name) == 120 and name.endswith(".jpg")


@pytest.mark.parametrize("name", ["grayscale.jpg", "tiny_1x1.png", "alpha.png"])
def test_rendering_is_deterministic_although_renditions_run_in_parallel(name):
    prepared_runs = [render(prepare(image_bytes(f"good/{name}"), Limits())) for _ in range(6)]
    first = [(r.name, r.format, r.data) for r in prepared_runs[0]]
    for run in prepared_runs[1:]:
        assert [(r.name, r.format, r.data) for r in run] == first


def test_the_decode_reservation_is_kept_only_with_working_and_given_back_on_failure():
    from avenue.media.ingest.images import _reserved, decode_budget

    limits = Limits(decode_budget_bytes=10_000_019)  # a budget of its own
    budget = decode_budget(limits.decode_budget_bytes)
    with _reserved(limits, 1000, None, (10, 10), (10, 10)) as kept:
        assert budget.in_use == 1000
    assert kept is None and budget.in_use == 0

    with _reserved(limits, 1000, lambda decoded, shown: 400, (10, 10), (10, 10)) as kept:
        pass
    assert kept is not None and budget.in_use == 1400  # held for the caller's canvases
    kept.release()
    assert budget.in_use == 0

    with pytest.raises(CorruptImage), _reserved(limits, 1000, lambda d, s: 400, (10, 10), (10, 10)):
        raise CorruptImage("broken")
    assert budget.in_use == 0
