"""An upload's answer decodes only what it needs (issue 63 item 5: the upload against bare
Pillow): its thumb and its focal point come from a frame at most ``ANSWER_DECODE_PX`` on its
longer side, while the sizes it lists for the variants rendered after it are the ones those
renders make from the original decoded at their own size."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from avenue.media.ingest import pipeline
from avenue.media.ingest.engine import engine_of
from avenue.media.ingest.focal import CENTRE
from avenue.media.ingest.images import Limits, prepare
from avenue.media.ingest.variants import plan, render
from tests.helpers import image_bytes

# Raster uploads of every decoder path: libvips (RGB, greyscale, EXIF-turned JPEGs), Pillow
# (CMYK JPEG, 16-bit and transparent PNG, animated GIF and WebP, HEIF, AVIF).
LARGE = ["photo_12mp.jpg", "photo_exif_rotated.jpg", "panorama.jpg", "progressive.jpg", "grayscale.jpg",
         "cmyk.jpg", "png16.png", "alpha.png", "animated.gif", "phone.heic", "photo.avif"]


def frame_size(prepared) -> tuple[int, int]:
    return engine_of(prepared.pixels).size(prepared.pixels)


@pytest.mark.parametrize("name", LARGE)
def test_a_preview_plans_the_variants_the_full_decode_makes(name):
    data = image_bytes(f"good/{name}")
    full = prepare(data, Limits())
    small = prepare(data, Limits(), preview=pipeline.ANSWER_DECODE_PX)
    assert max(frame_size(small)) <= max(pipeline.ANSWER_DECODE_PX, max(frame_size(full)))
    if small.variants_frame is not None:  # decoded smaller: it says the variants' frame
        assert small.variants_frame == frame_size(full)
        assert max(frame_size(small)) <= pipeline.ANSWER_DECODE_PX
    assert plan(small, CENTRE) == plan(full, CENTRE)
    # The thumb the answer makes is the size the render after it would make.
    (thumb,) = render(small, CENTRE, only=pipeline.ANSWERED)
    (planned,) = [p for p in plan(full, CENTRE) if (p.name, p.format) == ("thumb", "webp")]
    assert (thumb.width, thumb.height) == (planned.width, planned.height)


def test_a_12_mp_photo_s_answer_decodes_a_preview_not_the_gallerys_size(monkeypatch):
    """Before: the answer decoded the picture at the size of its largest variant (1600 px)."""
    seen = []
    real = pipeline.prepare
    monkeypatch.setattr(pipeline, "prepare",
                        lambda *args, **kwargs: seen.append(real(*args, **kwargs)) or seen[-1])
    answered = pipeline.ingest_for_answer(image_bytes("good/photo_12mp.jpg"), Limits())
    (prepared,) = seen
    assert prepared.variants_frame is not None
    assert max(prepared.variants_frame) >= 1600
    assert answered.prepared.width * answered.prepared.height == 4000 * 3000
    assert [r.name for r in answered.renditions] == ["thumb"]
    assert {(p.name, p.format) for p in answered.pending} >= {("gallery", "webp"), ("og", "jpeg")}


def test_a_preview_refuses_to_feed_a_variant_larger_than_its_frame():
    small = prepare(image_bytes("good/photo_12mp.jpg"), Limits(), preview=pipeline.ANSWER_DECODE_PX)
    with pytest.raises(ValueError, match="gallery"):
        render(small, CENTRE, only=frozenset({("gallery", "webp")}))
    with pytest.raises(ValueError, match="og"):
        render(small, CENTRE, only=frozenset({("og", "jpeg")}))


@pytest.mark.parametrize("size", [(10000, 20), (20, 10000), (9000, 150)])
def test_a_panorama_too_thin_for_a_preview_is_decoded_at_its_variants_size(size):
    out = io.BytesIO()
    Image.linear_gradient("L").resize(size).convert("RGB").save(out, "JPEG", quality=80)
    small = prepare(out.getvalue(), Limits(), preview=pipeline.ANSWER_DECODE_PX)
    assert small.variants_frame is None
    answered = pipeline.ingest_for_answer(out.getvalue(), Limits())
    (thumb,) = answered.renditions
    (planned,) = [p for p in plan(prepare(out.getvalue(), Limits()), CENTRE)
                  if (p.name, p.format) == ("thumb", "webp")]
    assert (thumb.width, thumb.height) == (planned.width, planned.height)
