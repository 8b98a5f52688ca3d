"""What changed between two versions, drawn (avenue/media/ingest/difference.py): the heat map
and its share of changed area, without a database or HTTP."""

from __future__ import annotations

import io

from PIL import Image

from avenue.media.ingest import difference
from avenue.media.ingest.images import Limits


def grey(width: int = 200, height: int = 100) -> Image.Image:
    return Image.new("RGB", (width, height), (120, 120, 120))


def png(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def test_the_same_picture_changes_no_pixel():
    made = difference.heat_map(grey(), grey())
    assert made.share == 0
    assert Image.open(io.BytesIO(made.data)).size == (200, 100)


def test_the_share_is_the_area_that_changed_and_noise_under_the_threshold_is_not_change():
    after = grey()
    after.paste((250, 120, 120), (0, 0, 50, 100))  # a quarter, changed a lot
    after.paste((130, 125, 120), (100, 0, 200, 100))  # half, changed by JPEG-noise amounts
    made = difference.heat_map(grey(), after)
    assert made.share == 0.25
    heat = Image.open(io.BytesIO(made.data)).convert("RGB")
    assert heat.getpixel((10, 50))[0] > 200 and heat.getpixel((150, 50))[0] < 60  # hot, dim


def test_a_second_picture_of_another_size_is_compared_at_the_first_ones():
    made = difference.heat_map(grey(200, 100), grey(400, 200))
    assert (made.width, made.height, made.share) == (200, 100, 0)


def test_pictures_are_drawn_at_most_512_px():
    big = png(Image.new("RGB", (2000, 1000), (10, 200, 30)))
    small = difference.small(big, Limits.for_stored(len(big)))
    assert small.size == (512, 256) and small.mode == "RGB"
