"""Edits and named crops without HTTP or a database (avenue/media/ingest/edits.py): the one
validation of every body, the points that follow the edits, and the pixels. The rendition
grammar's ``c_<name>`` is tests/media/test_transform.py's."""

from __future__ import annotations

import io
import math

import pytest
from PIL import Image

from avenue.errors import BadRequest
from avenue.media.ingest import edits as editing
from avenue.media.ingest.edits import Box, Edits, InvalidCrop, InvalidEdits, parse_crop, parse_edits
from avenue.media.ingest.focal import FocalPoint

RED = (220, 20, 30)


def cornered(size=(400, 200), fmt="PNG") -> bytes:
    im = Image.new("RGB", size, (128, 128, 128))
    im.paste(RED, (0, 0, size[0] // 4, size[1] // 4))
    out = io.BytesIO()
    im.save(out, fmt)
    return out.getvalue()


def test_an_empty_body_is_no_edit_and_the_whole_picture_is_no_crop():
    assert parse_edits({}).none
    assert parse_edits({"crop": {"x": 0, "y": 0, "width": 1, "height": 1}}).none
    assert parse_edits({"rotate": 270, "flip_vertical": True}) == Edits(270, False, True, None)


@pytest.mark.parametrize("body, field", [
    ({"rotate": 45}, "rotate"), ({"rotate": -90}, "rotate"), ({"rotate": 360}, "rotate"),
    ({"rotate": None}, "rotate"), ({"flip_horizontal": None}, "flip_horizontal"),
    ({"crop": {"x": math.nan, "y": 0, "width": 0.5, "height": 0.5}}, "crop.x"),
    ({"crop": {"x": 0, "y": math.inf, "width": 0.5, "height": 0.5}}, "crop.y"),
    ({"crop": {"x": 0, "y": 0, "width": 0.5, "height": 0.7, "depth": 1}}, "crop.depth"),
    ({"crop": {"x": 0, "y": 0.5, "width": 0.5, "height": 0.6}}, "crop"),
    ({"crop": "all"}, "crop"), ({"rotation": 90}, "rotation"),
])
def test_every_bad_edit_names_its_field(body, field):
    with pytest.raises(BadRequest) as refused:
        parse_edits(body)
    assert refused.value.details["field"] == field and refused.value.code == "invalid_edits"


def test_a_body_that_is_not_an_object_is_refused():
    for body in (None, [], "rotate", 90):
        with pytest.raises(BadRequest) as refused:
            parse_edits(body)
        assert refused.value.code == "invalid_edits"


@pytest.mark.parametrize("rotate", [False, True, 90.0, "90"])
def test_a_turn_is_a_whole_number_not_what_equals_one(rotate):
    with pytest.raises(BadRequest) as refused:
        parse_edits({"rotate": rotate})
    assert refused.value.details["field"] == "rotate"


def test_a_crop_under_sixteen_source_pixels_is_refused_on_the_turned_picture():
    tall = Edits(rotate=90, crop=Box(0, 0, 0.05, 1.0))  # 5 % of 200 px once turned: 10 px
    with pytest.raises(InvalidEdits, match="16 px"):
        tall.check(400, 200)
    Edits(crop=Box(0, 0, 0.05, 1.0)).check(400, 200)  # 5 % of 400: 20 px, fine


def test_crop_names_and_boxes():
    box = {"x": 0.1, "y": 0.2, "width": 0.3, "height": 0.4}
    assert parse_crop("hero_2-b", box) == Box(0.1, 0.2, 0.3, 0.4)
    for name in ("Hero", "2x", "", "a" * 33, "he ro"):
        with pytest.raises(InvalidCrop):
            parse_crop(name, {"x": 0, "y": 0, "width": 1, "height": 1})
    with pytest.raises(InvalidCrop):
        parse_crop("hero", {"x": 0.5, "y": 0, "width": 0.6, "height": 1})
    half = {"x": 0, "y": 0, "width": 0.5}
    for bad in (half, {**half, "height": 0.5, "z": 1}, [0, 0, 1, 1]):
        with pytest.raises(BadRequest) as refused:
            parse_crop("hero", bad)
        assert refused.value.code == "invalid_crop"


@pytest.mark.parametrize("edits", [
    Edits(90), Edits(180), Edits(270), Edits(0, True), Edits(90, True, True),
    Edits(270, False, True, Box(0.1, 0.2, 0.5, 0.6)),
])
def test_a_point_inside_the_crop_goes_to_the_edited_picture_and_back(edits):
    point = FocalPoint(0.3, 0.4)
    there = editing.to_edited(point, edits)
    back = editing.to_original(there, edits)
    assert (round(back.x, 3), round(back.y, 3)) == (0.3, 0.4)


def test_a_quarter_turn_moves_the_top_left_to_the_top_right():
    assert editing.to_edited(FocalPoint(0.0, 0.0), Edits(90)) == FocalPoint(1.0, 0.0)
    assert editing.to_edited(FocalPoint(0.9, 0.9), Edits(crop=Box(0, 0, 0.5, 0.5))) == FocalPoint(1.0, 1.0)


@pytest.mark.parametrize("edits, size, red_at", [
    (Edits(90), (200, 400), (199, 0)),
    (Edits(0, True), (400, 200), (399, 0)),
    (Edits(0, False, True), (400, 200), (0, 199)),
    (Edits(crop=Box(0, 0, 0.25, 0.25)), (100, 50), (99, 49)),
])
def test_the_pixels_are_rotated_flipped_and_cropped(edits, size, red_at):
    im = Image.open(io.BytesIO(editing.apply(cornered(), edits))).convert("RGB")
    assert im.size == size
    pixel = im.getpixel(red_at)
    assert pixel[0] > 170 and pixel[1] < 80


def test_an_edited_photo_stays_a_jpeg_and_a_png_stays_lossless():
    assert editing.apply(cornered(fmt="JPEG"), Edits(90))[:3] == b"\xff\xd8\xff"
    assert editing.apply(cornered(), Edits(90))[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_animated_image_cannot_be_edited():
    frames = [Image.new("RGB", (40, 40), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(InvalidEdits, match="animated"):
        editing.apply(out.getvalue(), Edits(90))


# --- the crop is cut before the turn ------------------------------------------------------------


def turned_first(data: bytes, edits: Edits) -> bytes:
    """``editing.apply`` as it was: the whole frame turned and flipped, then cropped."""
    from avenue.media.ingest import vips
    from avenue.media.ingest.engine import to_display_mode
    from avenue.media.ingest.variants import encode_image

    source = editing.source_of(data)
    try:
        pixels = source.pixels
        im = vips.to_pillow(pixels.image) if isinstance(pixels, vips.Frame) else pixels
        im, icc = to_display_mode(im, source.icc_profile)
        if edits.rotate:
            im = im.transpose({90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180,
                               270: Image.Transpose.ROTATE_90}[edits.rotate])
        if edits.flip_horizontal:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if edits.flip_vertical:
            im = im.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        if edits.crop is not None:
            im = im.crop(edits.crop.pixels(im.width, im.height))
        lossless = im.mode in {"RGBA", "LA"} or source.format in editing.LOSSLESS
        return encode_image(im, "png" if lossless else "jpeg", icc,
                            quality=None if lossless else editing.EDITED_JPEG_QUALITY, progressive=False)
    finally:
        source.release()


def noise(mode: str, size: tuple[int, int] = (97, 71), fmt: str = "PNG", **options) -> bytes:
    """Random pixels (every one tells where it came from) of an odd size, encoded as ``fmt``."""
    import random

    rng = random.Random(f"{mode}{size}{fmt}")
    im = Image.frombytes("RGBA", size, rng.randbytes(size[0] * size[1] * 4))
    if mode == "P":
        im = im.convert("RGB").quantize(64)
        options.setdefault("transparency", 3)
    elif mode != "RGBA":
        im = im.convert(mode)
    out = io.BytesIO()
    im.save(out, fmt, **options)
    return out.getvalue()


def exif_turned_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter: libvips turns the decoded frame upright
    return noise("RGB", (91, 67), "JPEG", quality=90, exif=exif.tobytes())


SOURCES = {
    "jpeg-rgb (libvips)": lambda: noise("RGB", fmt="JPEG", quality=90),
    "jpeg-grey (libvips)": lambda: noise("L", fmt="JPEG", quality=90),
    "jpeg-exif-turned (libvips)": exif_turned_jpeg,
    "jpeg-cmyk (Pillow)": lambda: noise("CMYK", fmt="JPEG", quality=90),
    "png-rgba": lambda: noise("RGBA"),
    "png-palette-transparent": lambda: noise("P"),
    "png-grey-alpha": lambda: noise("LA"),
}
BOXES = [Box(0.05, 0.05, 0.9, 0.9), Box(0.0, 0.5, 0.31, 0.5), Box(0.66, 0.0, 0.34, 0.27),
         Box(0.123, 0.456, 0.5, 0.432)]


@pytest.mark.parametrize("name", SOURCES)
def test_cutting_the_crop_before_the_turn_gives_the_very_same_picture(name):
    data = SOURCES[name]()
    for rotate in (0, 90, 180, 270):
        for flip_h in (False, True):
            for flip_v in (False, True):
                for box in [None, *BOXES]:
                    edits = Edits(rotate, flip_h, flip_v, box)
                    assert editing.apply(data, edits) == turned_first(data, edits), edits


def test_the_source_crop_of_a_turned_and_flipped_crop_is_the_same_rectangle_unturned():
    # 400x200 turned a quarter is 200x400; its top-left 50x100 (flipped: its top-right) was the
    # source's bottom-left 100x50 (bottom-right... before the flip), and so on.
    assert Edits(90, crop=Box(0, 0, 0.25, 0.25)).source_crop(400, 200) == (0, 150, 100, 200)
    assert Edits(90, True, crop=Box(0, 0, 0.25, 0.25)).source_crop(400, 200) == (0, 0, 100, 50)
    assert Edits(180, crop=Box(0, 0, 0.25, 0.25)).source_crop(400, 200) == (300, 150, 400, 200)
    assert Edits(270, crop=Box(0, 0, 0.25, 0.25)).source_crop(400, 200) == (300, 0, 400, 50)
    assert Edits(0, False, True, Box(0, 0, 0.25, 0.25)).source_crop(400, 200) == (0, 150, 100, 200)
    assert Edits(90).source_crop(400, 200) is None


def test_an_edited_jpeg_is_stored_baseline_so_its_renditions_decode_it_scaled():
    """A progressive JPEG is decoded only after libjpeg holds all its coefficients at full size
    (images.scan_buffer); the edited original is decoded again for every rendition."""
    from avenue.media.ingest.images import scan_buffer

    data = noise("RGB", (400, 300), "JPEG", quality=90, progressive=True)
    edited = editing.apply(data, Edits(90, crop=Box(0.1, 0.1, 0.8, 0.8)))
    with Image.open(io.BytesIO(edited)) as im:
        assert im.format == "JPEG" and not im.info.get("progressive")
        assert scan_buffer(im) == 0


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"], ids=["libvips frame", "Pillow frame"])
def test_an_edit_lets_the_decoded_frame_go_before_it_turns_and_encodes(monkeypatch, fmt):
    import weakref

    from avenue.media.ingest import vips
    from avenue.media.ingest.images import PreparedImage

    taken: list = []
    real_take, real_encode = PreparedImage.take_pixels, editing.encode_image

    def take(self):
        frame = real_take(self)
        taken.append(frame if isinstance(frame, vips.Frame) else weakref.ref(frame))
        return frame

    def encode(im, *args, **kwargs):
        frame = taken[0]
        if isinstance(frame, vips.Frame):
            assert frame.image is None  # its canvas was let go once the crop was copied out
        else:
            assert frame() is None  # no reference left to the uncut frame
        assert im.size == (27, 36)  # the crop's pixels, turned
        return real_encode(im, *args, **kwargs)

    monkeypatch.setattr(PreparedImage, "take_pixels", take)
    monkeypatch.setattr(editing, "encode_image", encode)
    data = noise("RGB", (80, 60), fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    editing.apply(data, Edits(90, crop=Box(0.25, 0.25, 0.45, 0.45)))
    assert len(taken) == 1
