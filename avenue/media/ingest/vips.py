"""libvips (pyvips with the pyvips-binary wheel): the fast path for JPEG photos.

Which library does what, and why (docs/media.md; the figures: bench/results/perf-2026-11-23.md):

- **Pillow** still opens every upload: it reads the header only (format, size, frames, EXIF
  orientation, ICC) to classify and refuse files, check the limits and reserve the decode
  budget before a pixel is decoded. It also keeps every path libvips would change the result
  of: CMYK JPEGs (today's colour conversion), multi-frame MPOs, PNG (16-bit, palette
  transparency), WebP, GIF (animation rules), AVIF and HEIC (pillow-heif), and the
  re-encodes of originals.
- **libvips** decodes RGB and greyscale JPEGs with shrink-on-load (libjpeg's DCT scaling, the
  same 1/2, 1/4, 1/8 sizes as Pillow's ``draft``) in one sequential pass, which is also the
  validation: a truncated or damaged scan fails the decode. It resizes (Lanczos 3) to the
  frame every rendition is cut from, turns it upright, and resizes the renditions from it.
  Against Pillow it saves the full-size intermediate copy of ``reducing_gap`` and streams
  the decode in strips instead of holding the decoded canvas.
- **Pillow encodes** every rendition (WebP, JPEG, PNG), libvips's pixels handed over with one
  copy: the libwebp and libjpeg-turbo in Pillow's wheel encode these sizes up to twice as
  fast as the ones in the pyvips-binary wheel, for the same WebP bytes. Only the ICC profile
  is written, as before.

libvips's resizes are deterministic: every output pixel is computed the same way whichever
thread computes its tile, and the encoders have no random state, so the same upload gives
the same variant bytes (content-addressed dedupe and ETags rely on it; tested).
"""

from __future__ import annotations

import os
from typing import Any

import pyvips  # type: ignore[import-untyped]  # no type information in the wheel
from PIL import Image as PILImage

# Threads per libvips operation: one. A worker already runs several request threads and the
# variants' pool, and the JPEG decode that is most of libvips's work here runs on one thread:
# a second one saves a lone render some wall time and costs 4-10 % more CPU a cold render
# (bench/results/mechanisms-2026-11-28-vips.md). libvips's own VIPS_CONCURRENCY wins if set.
if "VIPS_CONCURRENCY" not in os.environ:
    pyvips.concurrency_set(1)
# No operation cache: every upload is different bytes, so cached operations would never be
# hit and would only keep their decoded pixels alive (libvips's default keeps 100 of them,
# up to 100 MB) after the request ended.
pyvips.cache_set_max(0)
pyvips.cache_set_max_mem(0)
pyvips.cache_set_max_files(0)

Image = pyvips.Image
Error = pyvips.Error

# The JPEG shrink factors libjpeg decodes at directly (DCT scaling).
_SHRINKS = (8, 4, 2, 1)


def shrink_on_load(width: int, height: int, needed: tuple[int, int]) -> tuple[int, tuple[int, int]]:
    """The largest JPEG shrink whose decoded size still covers ``needed``, and the size of the
    canvas libjpeg decodes at that shrink (what the decode budget reserves)."""
    for shrink in _SHRINKS:
        # libvips gives width // shrink pixels (rounded down, so that is what must cover
        # ``needed``); libjpeg decodes a canvas rounded up, a few pixels more at most.
        if width // shrink >= needed[0] and height // shrink >= needed[1]:
            return shrink, (-(-width // shrink), -(-height // shrink))
    return 1, (width, height)


def decode_jpeg(data: bytes, shrink: int, needed: tuple[int, int]) -> Any:
    """The JPEG's pixels decoded at ``shrink`` and resized to ``needed``, as stored (not yet
    turned by its EXIF orientation: :func:`orient`), held in memory; pyvips.Error when the data
    is damaged or truncated."""
    # Sequential: libjpeg decodes top to bottom once, and the resize reads it in strips, so
    # the decoded canvas is never held whole. fail_on="truncated": refuse what Pillow refuses
    # (a scan that ends early) and accept what it accepts (libjpeg's recoverable warnings).
    image = Image.jpegload_buffer(data, shrink=shrink, access="sequential", fail_on="truncated",
                                  autorotate=False)
    if (image.width, image.height) != needed:
        image = image.resize(needed[0] / image.width, vscale=needed[1] / image.height,
                             kernel="lanczos3")
    return image.copy_memory()  # runs the decode: the validation happens here


def orient(image: Any, orientation: int) -> Any:
    """``image`` turned and flipped by an EXIF ``orientation`` (2-8), held in memory."""
    image = image.copy()  # libvips images are immutable: the tag goes on a copy
    image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return image.autorot().copy_memory()


def resize(image: Any, width: int, height: int, box: tuple[int, int, int, int] | None = None) -> Any:
    """``image`` (or its ``box``: left, top, width, height) resized to exactly width x height."""
    if box is not None:
        image = image.crop(*box)
    if (image.width, image.height) == (width, height):
        return image.copy_memory()
    return image.resize(width / image.width, vscale=height / image.height,
                        kernel="lanczos3").copy_memory()


_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def to_pillow(image: Any) -> PILImage.Image:
    """An 8-bit libvips image as a Pillow image (one copy of its pixels), for Pillow to encode."""
    mode = _MODES[image.bands]
    return PILImage.frombytes(mode, (image.width, image.height), image.write_to_memory())


class Frame:
    """An upright frame held by libvips: what the renditions of a JPEG photo are cut from."""

    def __init__(self, image: Any) -> None:
        self.image = image

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as Pillow's ``Image.size``."""
        return int(self.image.width), int(self.image.height)

    @property
    def has_alpha(self) -> bool:
        """Whether the frame has an alpha band."""
        return bool(self.image.hasalpha())

    def into_pillow(self, box: tuple[int, int, int, int] | None = None) -> PILImage.Image:
        """The frame's pixels, or those of ``box`` (left, top, width, height), as a Pillow image;
        the frame is empty after. Its libvips image is let go as soon as the pixels are copied
        out, before Pillow's copy is made: the decoded canvas, the copied bytes and Pillow's
        canvas are never held all three at once (:func:`to_pillow` holds them together)."""
        image, self.image = self.image, None
        if box is not None:
            image = image.crop(*box)
        mode, size = _MODES[image.bands], (image.width, image.height)
        raw = image.write_to_memory()
        del image  # the last reference to the decoded canvas (libvips's cache is off)
        return PILImage.frombytes(mode, size, raw)
