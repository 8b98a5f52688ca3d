"""The ingest pipeline (avenue/media/ingest/pipeline.py): an upload's steps in one visible order,
the one way the store ingests bytes, and an answer that decodes only what it needs: its thumb
and focal point from a frame at most ``ANSWER_DECODE_PX`` on its longer side, while the sizes
it lists for the variants rendered after it are the ones those renders make from the original
decoded at their own size."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from avenue.errors import ImageTooLarge
from avenue.media import Buckets
from avenue.media.ingest import pipeline
from avenue.media.ingest.engine import engine_of
from avenue.media.ingest.focal import CENTRE, FocalPoint
from avenue.media.ingest.images import Limits, prepare
from avenue.media.ingest.variants import plan, render
from avenue.media.store.originals import store
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


def recording(monkeypatch) -> list[str]:
    """Wrap each step's function as the pipeline calls it; the names, in call order."""
    calls: list[str] = []
    for name, target in [("read_limited", pipeline), ("prepare", pipeline), ("render", pipeline),
                         ("thumb_pixels", pipeline), ("of_image", pipeline.placeholders)]:
        real = getattr(target, name)

        def step(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)
        monkeypatch.setattr(target, name, step)
    return calls


def test_the_steps_run_in_order_read_validate_and_decode_render_placeholder(monkeypatch):
    calls = recording(monkeypatch)
    data = pipeline.read(image_bytes("good/progressive.jpg"), Limits())
    ingested = pipeline.ingest(data, Limits())
    assert calls == ["read_limited", "prepare", "render", "thumb_pixels", "of_image"]  # thumb: one decode
    assert ingested.prepared.format == "JPEG" and ingested.prepared.first_frame is None  # pixels released
    assert {r.name for r in ingested.renditions} >= {"thumb", "card", "gallery", "og"}
    assert ingested.focal is not None and ingested.placeholder is not None


def test_an_upload_renders_only_the_webp_thumb_before_it_answers_and_plans_the_rest():
    data = image_bytes("good/alpha.png")
    answered = pipeline.ingest_for_answer(data, Limits())
    whole = pipeline.ingest(data, Limits())
    assert [(r.name, r.format) for r in answered.renditions] == [("thumb", "webp")]
    assert answered.placeholder == whole.placeholder and answered.focal == whole.focal
    rendered = {(r.name, r.format): (r.width, r.height) for r in whole.renditions}
    planned = {(p.name, p.format): (p.width, p.height) for p in answered.pending}
    assert planned == {key: size for key, size in rendered.items() if key != ("thumb", "webp")}
    assert ("card", "png") in planned  # transparency: the fallback is PNG, as rendered


def test_the_pending_variants_rendered_later_are_the_bytes_an_upload_rendered_before():
    data = image_bytes("good/photo_exif_rotated.jpg")
    answered = pipeline.ingest_for_answer(data, Limits())
    later = pipeline.render_stored(answered.prepared.data, answered.focal,
                                   only=frozenset((p.name, p.format) for p in answered.pending))
    whole = {(r.name, r.format): r.data for r in pipeline.ingest(data, Limits()).renditions}
    assert {(r.name, r.format): r.data for r in later} == {
        key: value for key, value in whole.items() if key != ("thumb", "webp")}


def test_a_given_focal_point_is_the_one_the_crops_are_cut_around():
    point = FocalPoint(0.25, 0.75)
    ingested = pipeline.ingest(image_bytes("good/progressive.jpg"), Limits(), point)
    assert ingested.focal == point


def test_reading_stops_at_the_limit_before_any_other_step(monkeypatch):
    calls = recording(monkeypatch)
    with pytest.raises(ImageTooLarge):
        pipeline.read(image_bytes("good/progressive.jpg"), Limits(max_bytes=100))
    assert calls == ["read_limited"]


def test_a_stored_image_is_rendered_again_without_a_placeholder(monkeypatch):
    calls = recording(monkeypatch)
    renditions = pipeline.render_stored(image_bytes("good/alpha.png"), FocalPoint(0.5, 0.5))
    assert calls == ["prepare", "render"] and renditions


def test_the_store_ingests_through_the_pipeline_once_and_not_for_a_duplicate(db, monkeypatch):
    calls = recording(monkeypatch)
    first = store(db, Buckets.PRODUCTS, image_bytes("good/grayscale.jpg"), filename="g.jpg")
    # What the answer needs (the thumb, the placeholder), then, outside a request at once, the
    # pending variants from the stored original (avenue/media/store/pending.py).
    assert first.created and calls == ["read_limited", "prepare", "render", "thumb_pixels", "of_image",
                                  "prepare", "render"]
    calls.clear()
    again = store(db, Buckets.PRODUCTS, image_bytes("good/grayscale.jpg"), filename="g.jpg")
    assert not again.created and calls == ["read_limited"]  # answered by its hash, nothing decoded
