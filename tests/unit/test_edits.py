"""Edits and named crops without HTTP or a database (avenue/media/ingest/edits.py): the one
validation of every body, the points that follow the edits, the pixels, and the rendition
grammar's ``c_<name>`` (avenue/media/transform.py)."""

from __future__ import annotations

import io
import math

import pytest
from PIL import Image

from avenue.errors import BadRequest
from avenue.media.ingest import edits as editing
from avenue.media.ingest.edits import Box, Edits, InvalidCrop, InvalidEdits, parse_crop, parse_edits
from avenue.media.ingest.focal import FocalPoint
from avenue.media.transform import AllowList, Spec, parse, plan

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
    with pytest.raises(InvalidEdits) as refused:
        parse_edits(body)
    assert refused.value.details["field"] == field and refused.value.code == "invalid_edits"


def test_a_body_that_is_not_an_object_is_refused():
    for body in (None, [], "rotate", 90):
        with pytest.raises(InvalidEdits):
            parse_edits(body)


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


# --- c_<name> in the rendition grammar --------------------------------------------------------


def test_a_crop_name_is_part_of_the_spec_and_its_key():
    request = parse("w_800,c_hero-2.webp")
    assert request.spec == Spec(width=800, crop="hero-2") and request.format == "webp"
    assert request.spec.key() == "c_hero-2,w_800"
    assert parse("c_hero").spec == Spec(crop="hero")
    for bad in ("c_Hero,w_800", "c_,w_800", "c_hero,c_card,w_800", "c_he.ro,w_8"):
        with pytest.raises(BadRequest):
            parse(bad)


def test_crop_renditions_are_unsigned_only_at_ladder_widths():
    allow = AllowList(presets={"og": Spec(1200, 630, "cover")})
    assert allow.allows(Spec(width=800, crop="hero"), crops={"hero"})
    assert not allow.allows(Spec(width=801, crop="hero"), crops={"hero"})
    assert not allow.allows(Spec(crop="hero"), crops={"hero"})
    assert not allow.allows(Spec(width=800, height=800, fit="cover", crop="hero"), crops={"hero"})
    assert allow.allows(Spec(1200, 630, "cover", crop="og"))  # the preset with its own crop
    assert not allow.allows(Spec(1200, 630, "cover", crop="hero"), crops={"hero"})


def test_a_crop_name_the_image_does_not_have_is_unsigned_only_for_a_preset_s_name():
    allow = AllowList(presets={"og": Spec(1200, 630, "cover")})
    assert not allow.allows(Spec(width=800, crop="hero"))
    assert not allow.allows(Spec(width=800, crop="hero"), crops={"card"})
    assert allow.allows(Spec(width=800, crop="og"))  # a preset's name: bounded by the presets


def test_the_plan_cuts_the_named_crop_then_fits_it():
    crop = (0.5, 0.5, 0.5, 0.5)  # the bottom-right quarter of 400x200: 200x100 at (200, 100)
    assert plan(Spec(width=100, crop="x"), (400, 200), crop=crop).box == (200, 100, 200, 100)
    assert plan(Spec(width=100, crop="x"), (400, 200), crop=crop).size == (100, 50)
    assert plan(Spec(crop="x"), (400, 200), crop=crop).size == (200, 100)
    covered = plan(Spec(50, 50, "cover", crop="x"), (400, 200), (1.0, 1.0), crop=crop)
    assert covered.box == (300, 100, 100, 100) and covered.size == (50, 50)


def test_without_the_crop_the_plan_falls_back_to_the_focal_point():
    assert plan(Spec(width=100, crop="x"), (400, 200)).box == (0, 0, 400, 200)
    assert plan(Spec(crop="x"), (400, 200)).size == (400, 200)
    covered = plan(Spec(50, 50, crop="x"), (400, 200), (0.0, 0.0))  # a box: cover around the point
    assert covered.box == (0, 0, 200, 200) and covered.size == (50, 50)
