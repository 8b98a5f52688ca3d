"""Placeholders (avenue/media/ingest/placeholders.py): a blurhash and the dominant colour of an
image's thumb, the same ones again for the same thumb."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from avenue.media.ingest.placeholders import compute
from tests.helpers import BLURHASH, COLOR, GOOD_NAMES, image_bytes

NONE_OFF: frozenset[str] = frozenset()  # no format turned off (AVENUE_DISABLED_FORMATS)


def encoded(im: Image.Image, fmt: str = "WEBP") -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, lossless=True) if fmt == "WEBP" else im.save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_every_good_fixture_gets_a_blurhash_and_a_colour_and_the_same_ones_again(name):
    from avenue.media.ingest.images import Limits, prepare
    from avenue.media.ingest.variants import render

    prepared = prepare(image_bytes(f"good/{name}"), Limits())
    thumb = next(r for r in render(prepared) if r.name == "thumb" and r.format == "webp")
    first, again = compute(thumb.data, NONE_OFF), compute(thumb.data, NONE_OFF)
    assert first is not None and first == again
    assert BLURHASH.match(first.blurhash) and COLOR.match(first.color)


def test_the_colour_is_the_most_frequent_one_not_the_average():
    im = Image.new("RGB", (200, 200), (255, 255, 255))
    ImageDraw.Draw(im).rectangle((0, 0, 199, 139), fill=(200, 20, 30))  # 70 % red, 30 % white
    placeholder = compute(encoded(im), NONE_OFF)
    assert placeholder is not None
    red, green, blue = (int(placeholder.color[i:i + 2], 16) for i in (1, 3, 5))
    assert red > 180 and green < 50 and blue < 60  # the average would be pink (~217, 90, 97)


def test_transparent_pixels_do_not_count_for_the_colour():
    # A blue disc on transparency whose hidden pixels are black (what many encoders leave).
    im = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(im).ellipse((60, 60, 140, 140), fill=(20, 60, 220, 255))
    placeholder = compute(encoded(im), NONE_OFF)
    assert placeholder is not None and placeholder.color != "#000000"
    red, green, blue = (int(placeholder.color[i:i + 2], 16) for i in (1, 3, 5))
    assert blue > 180 and red < 60


def test_bytes_that_are_not_an_image_give_no_placeholder():
    assert compute(b"not an image", NONE_OFF) is None
    assert compute(b"", NONE_OFF) is None
