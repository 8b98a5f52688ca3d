"""The image engines (avenue/media/ingest/engine.py): Pillow and libvips behind one interface
give the same sizes and modes for the same operations, and the one choice between them."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image, ImageChops, ImageStat

from avenue.media.ingest import vips
from avenue.media.ingest.engine import LIBVIPS, PILLOW, engine_of
from avenue.media.ingest.images import Limits, prepare


def jpeg(mode: str, size: tuple[int, int] = (203, 131)) -> bytes:
    """A smooth picture (a gradient and a few shapes: resamplers agree on it) as a JPEG."""
    im = Image.linear_gradient("L").resize(size).convert("RGB")
    rng = random.Random(mode)
    for _ in range(6):
        x, y = rng.randrange(size[0] - 40), rng.randrange(size[1] - 40)
        im.paste((rng.randrange(256), rng.randrange(256), rng.randrange(256)), (x, y, x + 40, y + 40))
    out = io.BytesIO()
    im.convert(mode).save(out, "JPEG", quality=95)
    return out.getvalue()


def both(mode: str) -> tuple[vips.Frame, Image.Image]:
    """The same decoded pixels held by each engine: libvips's frame of a JPEG, and a Pillow copy."""
    frame = prepare(jpeg(mode), Limits()).pixels
    assert isinstance(frame, vips.Frame)
    return frame, LIBVIPS.pillow(frame)


def close(a: Image.Image, b: Image.Image) -> float:
    """The largest mean difference of a band between two pictures of one size and mode."""
    return max(ImageStat.Stat(ImageChops.difference(a, b)).mean)


def test_each_frame_is_held_by_its_engine():
    frame, image = both("RGB")
    assert engine_of(frame) is LIBVIPS and engine_of(image) is PILLOW
    assert engine_of(prepare(jpeg("CMYK"), Limits()).pixels) is PILLOW  # Pillow keeps CMYK's colours


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_the_same_operations_give_the_same_sizes_and_modes_on_both_engines(mode):
    frame, image = both(mode)
    assert LIBVIPS.size(frame) == PILLOW.size(image) == (203, 131)
    assert LIBVIPS.has_alpha(frame) is PILLOW.has_alpha(image) is False
    steps = [
        ("display", lambda engine, f: engine.display(f, None)[0]),
        ("orient 6", lambda engine, f: engine.orient(f, 6)),
        ("orient 2", lambda engine, f: engine.orient(f, 2)),
        ("crop", lambda engine, f: engine.crop(f, (10, 20, 50, 40))),
        ("resize", lambda engine, f: engine.resize(f, (101, 65))),
        ("resize a box", lambda engine, f: engine.resize(f, (30, 20), (40, 30, 90, 60))),
        ("resize to its size", lambda engine, f: engine.resize(f, (203, 131))),
    ]
    for name, step in steps:
        on_vips, on_pillow = LIBVIPS.pillow(step(LIBVIPS, frame)), step(PILLOW, image)
        assert (on_vips.size, on_vips.mode) == (on_pillow.size, on_pillow.mode), name
        assert close(on_vips, on_pillow) < 4.0, name  # the same picture, resampled a little apart
    sampled = LIBVIPS.sample(frame, 64), PILLOW.sample(image, 64)
    assert [(s.size, s.mode) for s in sampled] == [((64, 41), "RGB")] * 2


def test_an_orientation_turns_the_frame_the_same_way_on_both_engines():
    frame, image = both("RGB")
    for orientation in range(1, 9):
        on_vips = LIBVIPS.pillow(LIBVIPS.orient(frame, orientation))
        on_pillow = PILLOW.orient(image, orientation)
        assert on_vips.size == on_pillow.size and close(on_vips, on_pillow) < 0.5, orientation


def test_taking_a_box_gives_its_pixels_and_lets_the_libvips_canvas_go():
    frame, image = both("RGB")
    from_pillow = PILLOW.take(image, (10, 20, 50, 40))
    from_vips = LIBVIPS.take(frame, (10, 20, 50, 40))
    assert from_vips.size == from_pillow.size == (50, 40)
    assert ImageChops.difference(from_vips, from_pillow).getbbox() is None  # a cut, no resampling
    assert frame.image is None
    assert PILLOW.take(image) is image  # nothing to cut: the frame itself, given up


def test_each_hand_over_to_an_encoder_is_an_image_of_its_own():
    """Two threads encode two of them at once, and save() keeps per-call state on the image."""
    frame, image = both("RGB")
    for engine, held in ((LIBVIPS, frame), (PILLOW, image)):
        first, second = engine.pillow(held), engine.pillow(held)
        assert first is not second and first is not held
        assert first.tobytes() == second.tobytes()
    assert PILLOW.resize(image, image.size) is not image  # another thread may read the original


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "I;16", "I", "F"])
def test_pillow_tells_transparency_as_its_display_mode_shows_it(mode):
    """``has_alpha`` of a frame (what picks PNG over JPEG) says, without converting it, what
    ``display`` converts it to; a palette image has transparency by its ``transparency`` entry."""
    for transparency in (False, True):
        im = Image.new(mode, (4, 3))
        if transparency:
            im.info["transparency"] = 0
        shown, _ = PILLOW.display(im, None)
        assert shown.mode in {"RGB", "RGBA", "L"}
        assert PILLOW.has_alpha(im) is PILLOW.has_alpha(shown) is (shown.mode == "RGBA"), (mode, transparency)
