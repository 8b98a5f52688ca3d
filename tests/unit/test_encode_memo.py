"""What the tests' memo of upload variants' encodes (tests/conftest.py) relies on: the encoders
give the same bytes for the same pixels, mode, info and options, in every format, on every
thread; and the memo hands out exactly those bytes."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from avenue.media.ingest import variants
from avenue.media.ingest.engine import to_display_mode
from tests.helpers import IMAGES

FORMATS = ["webp", "jpeg", "png", "avif"]


def noisy(mode: str, size=(320, 240)) -> Image.Image:
    rng = random.Random(7)
    bands = len(mode)
    return Image.frombytes(mode, size, bytes(rng.randrange(256) for _ in range(size[0] * size[1] * bands)))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_each_encoder_gives_the_same_bytes_for_the_same_input_on_any_thread(fmt, mode):
    if fmt == "jpeg" and mode == "RGBA":
        pytest.skip("JPEG has no alpha: the variants encode RGBA as PNG")
    real = getattr(variants.encode_image, "__wrapped__", variants.encode_image)
    im = noisy(mode)
    with ThreadPoolExecutor(4) as pool:
        results = set(pool.map(lambda _: real(im.copy(), fmt, None), range(4)))
    assert len(results) == 1


def test_a_corpus_photo_with_its_profile_encodes_to_the_same_bytes_again():
    real = getattr(variants.encode_image, "__wrapped__", variants.encode_image)
    with Image.open(IMAGES / "good" / "cmyk.jpg") as opened:
        im, icc = to_display_mode(opened.copy(), opened.info.get("icc_profile"))
    im.thumbnail((400, 400))
    assert real(im, "webp", icc) == real(im.copy(), "webp", icc)


def test_the_memo_hands_out_what_the_encoder_makes_and_tells_inputs_apart():
    if not hasattr(variants.encode_image, "__wrapped__"):
        pytest.skip("AVENUE_TEST_ENCODE_MEMO=off: no memo in this run")
    real = variants.encode_image.__wrapped__
    first, second = noisy("RGB"), noisy("RGB")
    second.putpixel((0, 0), (0, 0, 0) if second.getpixel((0, 0)) != (0, 0, 0) else (1, 1, 1))
    assert variants.encode_image(first, "webp", None) == real(first, "webp", None)
    assert variants.encode_image(first, "webp", None) == real(first, "webp", None)  # from the memo
    assert variants.encode_image(second, "webp", None) == real(second, "webp", None)
    assert variants.encode_image(first, "webp", None, 50) == real(first, "webp", None, 50)
    assert variants.encode_image(first, "webp", None, 50) != variants.encode_image(first, "webp", None)
    assert variants.encode_image(first, "png", None) == real(first, "png", None)


def test_the_attention_centre_depends_only_on_the_samples_pixels_on_any_thread():
    from avenue.media.ingest import focal

    real = getattr(focal.attention, "__wrapped__", focal.attention)
    with Image.open(IMAGES / "good" / "cmyk.jpg") as opened:
        im, _ = to_display_mode(opened.copy(), opened.info.get("icc_profile"))
    sample = im.convert("RGB")
    sample.thumbnail((focal.SAMPLE, focal.SAMPLE))
    with ThreadPoolExecutor(4) as pool:
        assert len(set(pool.map(lambda _: real(sample.copy()), range(4)))) == 1


def test_the_attention_memo_hands_out_what_libvips_finds_and_tells_samples_apart():
    from avenue.media.ingest import focal

    if not hasattr(focal.attention, "__wrapped__"):
        pytest.skip("AVENUE_TEST_ENCODE_MEMO=off: no memo in this run")
    real = focal.attention.__wrapped__
    left = Image.new("RGB", (64, 48), (40, 40, 40))
    left.paste((250, 30, 30), (4, 20, 14, 30))  # a red patch on the left
    right = left.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    assert focal.attention(left) == real(left)
    assert focal.attention(left.copy()) == real(left)  # from the memo
    assert focal.attention(right) == real(right)
    assert focal.attention(left).x < 0.5 < focal.attention(right).x
