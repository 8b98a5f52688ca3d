"""The ingest pipeline: an upload's steps in order, in one place; the store calls only this.

1. **read** within the byte limit (:func:`read`, ``images.read_limited``: 413 past it);
   the store hashes what was read and answers a duplicate here, before anything is decoded;
2. **sniff and validate** the header: format, pixels, frames (``images.prepare``:
   413/415/422 before any pixel is decoded), and reserve the decode budget;
3. **strip** the metadata (``images.prepare``: an allow-list per format, re-encoding only
   what cannot be stripped losslessly);
4. **decode** the first frame (libvips for JPEG photos, ``vips.py``; Pillow otherwise);
5. **focal point**: the one given, or estimated (``focal.py``);
6. **render** what the answer needs, the WebP thumb, and **plan** the other variants (their
   ids, sizes and formats are listed, pending: ``variants.plan``); they are rendered after the
   answer or on their first request (``render_stored`` with ``only``;
   avenue/media/store/pending.py). A replace renders every variant first (:func:`ingest`);
7. **placeholder**: blurhash and dominant colour from the WebP thumb (``placeholders.py``);
8. **near-duplicate hash**: perceptual hash and palette from the same thumb (``near_hash.py``).

Steps 2-4 are one call because they share one opened image (``images.prepare``); the steps'
own modules say how each is done. Pure: bytes in, an :class:`Ingested` out; no database,
no Flask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from avenue.errors import UnsupportedImage
from avenue.media.core import MediaSettings
from avenue.media.ingest import decoders, near_hash, placeholders
from avenue.media.ingest.engine import engine_of
from avenue.media.ingest.focal import SAMPLE, FocalPoint, estimate
from avenue.media.ingest.images import Limits, PreparedImage, prepare, read_limited
from avenue.media.ingest.near_hash import NearHash
from avenue.media.ingest.placeholders import Placeholder
from avenue.media.ingest.variants import Box, Only, Planned, Rendition, plan, render
from avenue.media.ingest.variants import canvases as variant_canvases
from avenue.metrics import timed_render


@dataclass
class Ingested:
    """What the store writes for one image: the stripped original, its renditions, the focal
    point its crops were cut around (None: none found) and its placeholder."""

    prepared: PreparedImage
    renditions: list[Rendition]
    focal: FocalPoint | None
    placeholder: Placeholder | None
    near_hash: NearHash | None = None  # perceptual hash and palette (step 8)
    # Variants listed but not rendered yet (:func:`ingest_for_answer`): rendered after the answer.
    pending: list[Planned] = field(default_factory=list)


def read(stream: BinaryIO | bytes, limits: Limits) -> bytes:
    """Step 1: the upload's bytes, at most ``limits.max_bytes`` of them (413 past it); a format
    turned off is refused here by its leading bytes (415 ``format_disabled``), before the store
    looks for the same bytes stored: the same answer whether or not they were stored before."""
    data = read_limited(stream, limits.max_bytes)
    decoders.refuse_disabled(data, limits.disabled, limits.accepted_label())
    return data


def ingest(data: bytes, limits: Limits, focal: FocalPoint | None = None,
           og_box: Box | None = None) -> Ingested:
    """Steps 2-8 for bytes already read: validated, stripped, decoded, rendered around
    ``focal`` (None: estimated for the ``og`` crop; ``og_box``: the image's crop named og,
    which the og variant is cut inside), with a placeholder."""
    prepared = prepare(data, limits)  # 2-4: sniff and validate, strip, decode
    with timed_render():
        renditions = render(prepared, focal, og_box=og_box)  # 5-6: og estimates the focal point
    prepared.first_frame = None  # release the decoded pixels; the renditions are encoded
    found = next((r.focal for r in renditions if r.name == "og" and r.focal is not None), focal)
    pixels = thumb_pixels(renditions, limits.disabled)  # decoded once for steps 7 and 8
    return Ingested(prepared, renditions, found, placeholder_of(renditions, limits.disabled, pixels),  # 7
                    near_hash_of(renditions, limits.disabled, pixels))  # 8


#: What an upload renders before it answers: the WebP thumb, which the placeholder is made of.
ANSWERED: frozenset[tuple[str, str]] = frozenset({("thumb", "webp")})
#: The longer side, in px, an upload decodes its picture to before it answers (``prepare``'s
#: ``preview``): the answer needs only its WebP thumb (at most 200 px) and the focal point's
#: 256 px sample (``focal.SAMPLE``); the other variants are decoded again at their own size
#: after the answer (``render_stored``). A 12 MP JPEG is decoded at 1/4 instead of 1/2
#: (bench/results/upload-answer-2026-11-27.md).
ANSWER_DECODE_PX = 2 * SAMPLE


def ingest_for_answer(data: bytes, limits: Limits, focal: FocalPoint | None = None,
                      og_box: Box | None = None) -> Ingested:
    """Steps 2-8 as an upload runs them before it answers: validated, stripped, decoded, the
    focal point (``focal``, or estimated), the WebP thumb rendered and its placeholder and
    near-duplicate hash, every
    other variant planned (``Ingested.pending``: sizes and formats, nothing encoded).

    Why not everything: the eight renditions of a 12 MP photo are about 500 ms of CPU, and the
    answer needs none of their bytes (bench/results/upload-answer-2026-11-24.md)."""
    prepared = prepare(data, limits, preview=ANSWER_DECODE_PX)  # 2-4: sniff and validate, strip, decode
    with timed_render():
        point = focal if focal is not None else estimate_focal(prepared)  # 5
        renditions = render(prepared, point, only=ANSWERED)  # 6
        planned = [p for p in plan(prepared, point, og_box) if (p.name, p.format) not in ANSWERED]
    prepared.first_frame = None  # release the decoded pixels
    pixels = thumb_pixels(renditions, limits.disabled)  # decoded once for steps 7 and 8
    return Ingested(prepared, renditions, point, placeholder_of(renditions, limits.disabled, pixels),  # 7
                    near_hash_of(renditions, limits.disabled, pixels), planned)  # 8


def estimate_focal(prepared: PreparedImage) -> FocalPoint:
    """Step 5: the focal point estimated on the frame the renditions are cut from (the one
    ``variants.render`` estimates on for the ``og`` crop, so the point is the same)."""
    pixels = prepared.pixels
    return estimate(engine_of(pixels).display(pixels, prepared.icc_profile)[0])


def render_stored(data: bytes, focal: FocalPoint, only: Only = None,
                  settings: MediaSettings | None = None, og_box: Box | None = None) -> list[Rendition]:
    """Steps 2-6 for bytes already stored (pending variants after the answer, a lost variant
    rendered again by ``fsck --repair``): the limits lowered to what was accepted once, so a
    render is never refused, within the decode budget of ``settings`` (the app's at hand when
    not given), held from the decode to the last encode (``variants.canvases``: the resized
    canvases and the encoders' copies count, as a rendition on request's do); ``only``: those
    (name, format) pairs; ``og_box``: as :func:`ingest`."""
    prepared = prepare(data, stored_limits(len(data), settings), working=variant_canvases, stored=True)
    try:
        return render(prepared, focal, only, og_box)
    finally:
        prepared.release()  # the frame and the budget: every rendition is encoded


def stored_limits(size: int, settings: MediaSettings | None = None) -> Limits:
    """:meth:`Limits.for_stored` within the decode budget of ``settings`` (the app's
    ``Media.settings``; None, no app: the defaults)."""
    given = settings or MediaSettings()
    return Limits.for_stored(size, given.decode_budget_bytes, given.decode_wait_seconds,
                             given.disabled_formats,
                             svg_draw_seconds=given.svg_draw_seconds)


def thumb_pixels(renditions: list[Rendition], disabled: frozenset[str]) -> Image.Image | None:
    """The WebP thumb's pixels (RGBA, at most 200 px), decoded once for steps 7 and 8; None
    without a thumb or when its bytes cannot be read (neither step refuses an upload), and
    with WebP in ``disabled``: the thumb is not decoded then (docs/security.md, "Turning a
    format off"), so the image has neither until ``flask placeholders`` and ``flask
    near-duplicates`` run with WebP on again."""
    thumb = next((r for r in renditions if r.name == "thumb" and r.format == "webp"), None)
    if thumb is None:
        return None
    try:
        with decoders.open_image(thumb.data, disabled) as im:
            return im.convert("RGBA")
    except (UnidentifiedImageError, UnsupportedImage, OSError, ValueError):
        return None


def placeholder_of(renditions: list[Rendition], disabled: frozenset[str],
                   pixels: Image.Image | None = None) -> Placeholder | None:
    """Step 7: the blurhash and dominant colour, from the smallest rendition (the WebP thumb;
    ``pixels``: its pixels already decoded; ``disabled``: :func:`thumb_pixels`)."""
    pixels = pixels if pixels is not None else thumb_pixels(renditions, disabled)
    return placeholders.of_image(pixels) if pixels is not None else None


def near_hash_of(renditions: list[Rendition], disabled: frozenset[str],
                 pixels: Image.Image | None = None) -> NearHash | None:
    """Step 8: the perceptual hash and palette, from the WebP thumb like the placeholder (its
    pixels decoded once for both: ``pixels``; ``disabled``: :func:`thumb_pixels`)."""
    pixels = pixels if pixels is not None else thumb_pixels(renditions, disabled)
    return near_hash.of_image(pixels) if pixels is not None else None
