"""The ingest pipeline: an upload's steps in order, in one place; the store calls only this.

1. **read** within the byte limit (:func:`read`, ``images.read_limited``: 413 past it);
   the store hashes what was read and answers a duplicate here, before anything is decoded;
2. **sniff and validate** the header: format, pixels, frames (``images.prepare``:
   413/415/422 before any pixel is decoded), and reserve the decode budget;
3. **strip** the metadata (``images.prepare``: an allow-list per format, re-encoding only
   what cannot be stripped losslessly);
4. **decode** the first frame (libvips for JPEG photos, ``vips.py``; Pillow otherwise);
5. **focal point**: the one given, or estimated for the ``og`` crop (``focal.py``);
6. **render** the variants on a small thread pool (``variants.render``);
7. **placeholder**: blurhash and dominant colour from the WebP thumb (``placeholders.py``);
8. **likeness**: perceptual hash and palette from the same thumb (``likeness.py``).

Steps 2-4 are one call because they share one opened image (``images.prepare``); the steps'
own modules say how each is done. Pure: bytes in, an :class:`Ingested` out; no database,
no Flask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from avenue.media.ingest import likeness, placeholders
from avenue.media.ingest.focal import FocalPoint
from avenue.media.ingest.images import Limits, PreparedImage, prepare, read_limited
from avenue.media.ingest.likeness import Likeness
from avenue.media.ingest.placeholders import Placeholder
from avenue.media.ingest.variants import Rendition, render
from avenue.metrics import timed_render


@dataclass
class Ingested:
    """What the store writes for one image: the stripped original, its renditions, the focal
    point its crops were cut around (None: none found) and its placeholder."""

    prepared: PreparedImage
    renditions: list[Rendition]
    focal: FocalPoint | None
    placeholder: Placeholder | None
    likeness: Likeness | None = None  # perceptual hash and palette (step 8)


def read(stream: BinaryIO | bytes, limits: Limits) -> bytes:
    """Step 1: the upload's bytes, at most ``limits.max_bytes`` of them (413 past it)."""
    return read_limited(stream, limits.max_bytes)


def ingest(data: bytes, limits: Limits, focal: FocalPoint | None = None) -> Ingested:
    """Steps 2-8 for bytes already read: validated, stripped, decoded, rendered around
    ``focal`` (None: estimated for the ``og`` crop), with a placeholder."""
    prepared = prepare(data, limits)  # 2-4: sniff and validate, strip, decode
    with timed_render():
        renditions = render(prepared, focal)  # 5-6: the og crop estimates the focal point
    prepared.first_frame = None  # release the decoded pixels; the renditions are encoded
    found = next((r.focal for r in renditions if r.name == "og" and r.focal is not None), focal)
    return Ingested(prepared, renditions, found, placeholder_of(renditions), likeness_of(renditions))  # 7, 8


def render_stored(data: bytes, focal: FocalPoint) -> list[Rendition]:
    """Steps 2-6 for bytes already stored (a lost variant rendered again, ``fsck --repair``):
    the limits lowered to what was accepted once, so a repair is never refused."""
    return render(prepare(data, Limits.for_stored(len(data))), focal)


def placeholder_of(renditions: list[Rendition]) -> Placeholder | None:
    """Step 7: the blurhash and dominant colour, from the smallest rendition (the WebP thumb)."""
    thumb = next((r for r in renditions if r.name == "thumb" and r.format == "webp"), None)
    return placeholders.compute(thumb.data) if thumb is not None else None


def likeness_of(renditions: list[Rendition]) -> Likeness | None:
    """Step 8: the perceptual hash and palette, from the WebP thumb like the placeholder."""
    thumb = next((r for r in renditions if r.name == "thumb" and r.format == "webp"), None)
    return likeness.compute(thumb.data) if thumb is not None else None
