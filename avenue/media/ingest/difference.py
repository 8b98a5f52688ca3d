"""What changed between two pictures: a heat map and the share of pixels that differ.

Both pictures are drawn small first (at most :data:`SIDE` px on each side, through the
renditions' own decode, :func:`avenue.media.ingest.render.render_spec`: a 12 MP JPEG is
decoded at an eighth of its size with libvips' shrink-on-load), the second one at the first
one's size when their shapes differ. The difference of a pixel is the largest of its three
RGB channels' absolute differences (0-255); a pixel *changed* when it is over
:data:`THRESHOLD` (about 6 %: JPEG noise between two encodings of one picture stays under
it). The heat map is the first picture in dim grey with the difference over the threshold on
a black, red, yellow, white scale, as a PNG. Pure: bytes in, bytes out; no database, no Flask.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from avenue.media.ingest import decoders
from avenue.media.ingest.focal import FocalPoint
from avenue.media.ingest.images import Limits
from avenue.media.ingest.render import render_spec
from avenue.media.transform import Spec

#: The small renditions' largest side, in pixels.
SIDE = 512
#: A pixel's difference (0-255, its largest channel's) over which it counts as changed.
THRESHOLD = 16


@dataclass(frozen=True)
class Difference:
    """A heat map (PNG bytes, its size) and the share of pixels changed (0 to 1)."""

    data: bytes
    width: int
    height: int
    share: float


def small(data: bytes, limits: Limits, side: int = SIDE) -> Image.Image:
    """``data`` (an image this app stores) drawn at most ``side`` px on each side, as RGB on white."""
    rendered = render_spec(data, limits, Spec(side, side), "png", FocalPoint())
    with decoders.open_image(rendered.data, limits.disabled) as opened:
        picture = opened.convert("RGBA")
    flat = Image.new("RGB", picture.size, (255, 255, 255))
    flat.paste(picture, mask=picture.getchannel("A"))
    return flat


def heat_map(before: Image.Image, after: Image.Image) -> Difference:
    """How ``after`` differs from ``before`` (both RGB; ``after`` is resized to ``before``'s
    size when they differ)."""
    import numpy as np  # on first use: a tenth of every process's start (ingest/variants.py)

    if after.size != before.size:
        after = after.resize(before.size, Image.Resampling.BILINEAR)
    a = np.asarray(before, dtype=np.int16)
    b = np.asarray(after, dtype=np.int16)
    diff = np.abs(a - b).max(axis=2).astype(np.float32)  # 0-255 per pixel
    share = float((diff > THRESHOLD).mean()) if diff.size else 0.0
    # Under the threshold is not a change (noise stays dim); a quarter of the range over it is "hot".
    t = np.clip((diff - THRESHOLD) / 64.0, 0.0, 1.0)
    heat = np.stack([np.clip(3 * t, 0, 1), np.clip(3 * t - 1, 0, 1), np.clip(3 * t - 2, 0, 1)], axis=2)
    grey = np.asarray(before.convert("L"), dtype=np.float32)[..., None] / 255.0 * 0.35
    alpha = np.clip(t * 4, 0.0, 1.0)[..., None]
    out = (grey * (1 - alpha) + heat * alpha) * 255.0
    image = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=False, compress_level=6)
    return Difference(buffer.getvalue(), image.width, image.height, round(share, 6))

