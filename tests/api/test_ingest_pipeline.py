"""The ingest pipeline (avenue/media/ingest/pipeline.py): an upload's steps in one visible order,
and the one way the store ingests bytes."""

from __future__ import annotations

import pytest

from avenue.errors import ImageTooLarge
from avenue.media import Buckets, Limits
from avenue.media.ingest import pipeline
from avenue.media.ingest.focal import FocalPoint
from avenue.media.store.originals import store
from tests.helpers import image_bytes


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
