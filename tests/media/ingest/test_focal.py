"""Focal points (avenue/media/ingest/focal.py): estimated from the pixels, the same again for the
same picture, and every crop cut around it."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from avenue.media.ingest.focal import CENTRE, FocalPoint, crop_box, estimate
from avenue.media.ingest.images import Limits, prepare
from avenue.media.ingest.variants import render
from tests.helpers import GOOD_NAMES, image_bytes
from tests.support.fixtures import product_shot


def red_share(data: bytes) -> float:
    """The share of pixels of the subject's red in an encoded image."""
    im = Image.open(io.BytesIO(data)).convert("RGB")
    pixels = im.tobytes()
    red = sum(1 for i in range(0, len(pixels), 3)
              if pixels[i] > 140 and pixels[i + 1] < 90 and pixels[i + 2] < 110)
    return red / (im.width * im.height)


def og(renditions) -> bytes:
    return next(r for r in renditions if r.name == "og" and r.format == "webp").data


def test_a_subject_in_a_corner_stays_inside_the_og_crop():
    prepared = prepare(product_shot(), Limits())
    focal = estimate(prepared.pixels)
    assert focal.x > 0.7 and focal.y > 0.7  # the bottom-right corner
    assert red_share(og(render(prepared, focal))) > 0.04
    # A centred crop (what og was before focal points) loses the product entirely.
    assert red_share(og(render(prepared, CENTRE))) == 0


@pytest.mark.parametrize("colour", [(10, 200, 10), (250, 250, 250)])
def test_a_picture_of_one_colour_has_its_focal_point_in_the_centre(colour):
    # libvips's attention finds nothing in it and reports the top-left corner.
    out = io.BytesIO()
    Image.new("RGB", (640, 480), colour).save(out, "JPEG", quality=80)
    assert estimate(prepare(out.getvalue(), Limits()).pixels) == CENTRE


def test_a_subject_in_the_top_left_of_a_wide_shot_is_kept_too():
    data = product_shot(size=(2400, 900), corner=(20, 60, 320, 360))
    prepared = prepare(data, Limits())
    focal = estimate(prepared.pixels)
    assert focal.x < 0.3
    assert red_share(og(render(prepared, focal))) > 0.02
    assert red_share(og(render(prepared, CENTRE))) == 0


@pytest.mark.parametrize("size, target, focal, box", [
    ((1200, 1200), (1200, 630), CENTRE, (0, 285, 1200, 630)),
    ((1200, 1200), (1200, 630), FocalPoint(0.9, 0.9), (0, 570, 1200, 630)),  # clamped at the edge
    ((1200, 1200), (1200, 630), FocalPoint(0.5, 0.0), (0, 0, 1200, 630)),
    ((2400, 900), (1200, 630), FocalPoint(0.1, 0.5), (0, 0, 1714, 900)),
    ((2400, 900), (1200, 630), FocalPoint(1.0, 0.5), (686, 0, 1714, 900)),
    ((300, 100), (1200, 630), FocalPoint(0.5, 0.5), (55, 0, 190, 100)),  # smaller than og: cropped only
])
def test_the_crop_box_is_the_largest_of_the_ratio_centred_on_the_point_within_the_image(size, target,
                                                                                         focal, box):
    assert crop_box(*size, *target, focal) == box


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_every_good_fixture_gets_a_focal_point_inside_the_image_and_the_same_one_again(name):
    prepared = prepare(image_bytes(f"good/{name}"), Limits())
    first, again = estimate(prepared.pixels), estimate(prepared.pixels)
    assert first == again
    assert 0 <= first.x <= 1 and 0 <= first.y <= 1


def test_the_same_upload_renders_the_same_og_bytes_again():
    data = product_shot()
    first = og(render(prepare(data, Limits()), estimate(prepare(data, Limits()).pixels)))
    again = og(render(prepare(data, Limits()), estimate(prepare(data, Limits()).pixels)))
    assert first == again


@pytest.mark.parametrize("value", [None, {}, {"x": 2, "y": 0.5}, {"x": "0.5", "y": 0.5}, {"x": True, "y": 0},
                                   [0.5, 0.5]])
def test_a_malformed_stored_focal_point_is_ignored(value):
    assert FocalPoint.from_metadata(value) is None
    assert FocalPoint.from_metadata({"x": 0, "y": 1}) == FocalPoint(0.0, 1.0)


def test_without_a_given_point_the_crop_estimates_it_and_says_which_it_used():
    prepared = prepare(product_shot(), Limits())
    renditions = render(prepared)
    crops = [r for r in renditions if r.name == "og"]
    assert {r.focal for r in crops} == {estimate(prepared.pixels)}
    assert all(r.focal is None for r in renditions if r.name != "og")
    assert og(renditions) == og(render(prepared, estimate(prepared.pixels)))
