"""The image engines: the pixels every rendition is cut from, behind one interface.

A decoded frame is held by one of two engines (avenue/media/ingest/vips.py says which decodes
what, and why): **libvips** for RGB and greyscale JPEG photos (a :class:`vips.Frame`, decoded
with shrink-on-load), **Pillow** for every other frame (a Pillow ``Image``). The variants, the
renditions on request, the edits and the focal point work on either through :class:`Engine`:
the facts of a frame (its size, whether it shows transparency) and the operations on it
(display colours, orient, crop, resize, hand the pixels to an encoder, sample). Which engine
holds a frame is answered in one place, :func:`engine_of`; nothing else asks.

Encoding is not an engine's: every format is encoded by the encoder its entry in
avenue/media/formats.py names (``Format.engine``: Pillow's, or libjxl's from Pillow's pixels),
with the house's settings (:func:`avenue.media.ingest.variants.encode_image`); an engine hands
its pixels over as a Pillow image (:meth:`Engine.pillow`, :meth:`Engine.take`).

Boxes are ``(left, top, width, height)`` in the frame's pixels. Both engines resample with
Lanczos 3, so a frame gives the same sizes and modes on either; the pixels differ a little
(libvips resizes in one pass, Pillow with ``reducing_gap``): each path's outputs are its own,
and unchanged. Pure: pixels in, pixels out.
"""

from __future__ import annotations

import io
from typing import Protocol, TypeVar, cast

from PIL import Image, ImageCms

from avenue.media.ingest import vips

#: A box in a frame's pixels: (left, top, width, height).
Box = tuple[int, int, int, int]
#: A decoded frame, whichever engine holds it.
Pixels = Image.Image | vips.Frame
F = TypeVar("F")

SRGB = ImageCms.createProfile("sRGB")


class Engine(Protocol[F]):
    """What the renditions need of a decoded frame of type ``F``, whichever library holds it."""

    def size(self, frame: F) -> tuple[int, int]:
        """(width, height)."""

    def has_alpha(self, frame: F) -> bool:
        """Whether the frame shows transparency once in its display mode (:meth:`display`):
        what picks PNG over JPEG for the fallback format."""

    def display(self, frame: F, icc: bytes | None) -> tuple[F, bytes | None]:
        """The frame in RGB, RGBA or L with sane colours, and the ICC profile to embed."""

    def orient(self, frame: F, orientation: int) -> F:
        """The frame turned and flipped by an EXIF ``orientation`` (1-8; 1: as it is)."""

    def crop(self, frame: F, box: Box) -> F:
        """The frame's pixels inside ``box``."""

    def resize(self, frame: F, size: tuple[int, int], box: Box | None = None) -> F:
        """The frame (or its ``box``) resized to exactly ``size``, Lanczos; another thread may
        read the result while this one goes on (Pillow's is always a new image; libvips's images
        are immutable, so a resize that changes nothing gives the frame itself)."""

    def pillow(self, frame: F) -> Image.Image:
        """A new Pillow image of the frame's pixels, for one encoder (``Image.save`` keeps
        per-call state on the image: two threads never encode the same one)."""

    def take(self, frame: F, box: Box | None = None) -> Image.Image:
        """The frame's pixels (those of ``box``) as a Pillow image, the frame given up: the
        decoded canvas is let go as soon as it can be (the caller holds no other reference)."""

    def sample(self, frame: F, longest: int) -> Image.Image:
        """The frame in RGB, at most ``longest`` px on its longer side: what a measure looks at."""


class PillowEngine:
    """Frames Pillow decoded: every upload but RGB and greyscale JPEG photos."""

    def size(self, frame: Image.Image) -> tuple[int, int]:
        return frame.size

    def has_alpha(self, frame: Image.Image) -> bool:
        mode = frame.mode  # as display() converts it, without converting
        if mode in {"P", "PA"}:
            return mode == "PA" or "transparency" in frame.info
        if mode in {"CMYK", "I;16", "I;16B", "I;16L", "I", "1", "F", "RGB", "L"}:
            return False
        return "A" in mode

    def display(self, frame: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
        return to_display_mode(frame, icc)

    def orient(self, frame: Image.Image, orientation: int) -> Image.Image:
        for method in _TRANSPOSE.get(orientation, []):
            frame = frame.transpose(method)
        return frame

    def crop(self, frame: Image.Image, box: Box) -> Image.Image:
        left, top, width, height = box
        return frame.crop((left, top, left + width, top + height))

    def resize(self, frame: Image.Image, size: tuple[int, int], box: Box | None = None) -> Image.Image:
        left, top, width, height = box if box is not None else (0, 0, *frame.size)
        # Pillow gives a copy when nothing changes. reducing_gap: a box reduction by a whole
        # factor first, then Lanczos over at most 3x the output (about 2x faster, no visible loss).
        return frame.resize(size, Image.Resampling.LANCZOS, box=(left, top, left + width, top + height),
                            reducing_gap=3.0)

    def pillow(self, frame: Image.Image) -> Image.Image:
        return frame.copy()

    def take(self, frame: Image.Image, box: Box | None = None) -> Image.Image:
        return frame if box is None else self.crop(frame, box)

    def sample(self, frame: Image.Image, longest: int) -> Image.Image:
        # A box reduction by a whole factor first (cheap, no copy of the full frame), then a
        # small bilinear resize.
        if frame.mode not in ("RGB", "RGBA", "L", "LA"):
            frame = frame.convert("RGBA" if "A" in frame.mode or "transparency" in frame.info else "RGB")
        factor = max(1, max(frame.size) // longest)
        sample = frame.reduce(factor) if factor > 1 else frame
        if sample.mode != "RGB":
            sample = sample.convert("RGB")
        if max(sample.size) > longest:
            scale = longest / max(sample.size)
            size = max(1, round(sample.width * scale)), max(1, round(sample.height * scale))
            sample = sample.resize(size, Image.Resampling.BILINEAR)
        return sample


class LibvipsEngine:
    """Frames libvips decoded: RGB and greyscale JPEG photos (no alpha, no colour to convert:
    a JPEG's ICC profile is embedded as it is)."""

    def size(self, frame: vips.Frame) -> tuple[int, int]:
        return frame.size

    def has_alpha(self, frame: vips.Frame) -> bool:
        return frame.has_alpha

    def display(self, frame: vips.Frame, icc: bytes | None) -> tuple[vips.Frame, bytes | None]:
        return frame, icc

    def orient(self, frame: vips.Frame, orientation: int) -> vips.Frame:
        return frame if orientation == 1 else vips.Frame(vips.orient(frame.image, orientation))

    def crop(self, frame: vips.Frame, box: Box) -> vips.Frame:
        return vips.Frame(frame.image.crop(*box))  # lazy: computed by the next resize

    def resize(self, frame: vips.Frame, size: tuple[int, int], box: Box | None = None) -> vips.Frame:
        if size == frame.size and box in (None, (0, 0, *frame.size)):
            return frame  # nothing to do: an immutable libvips image is shared safely
        return vips.Frame(vips.resize(frame.image, *size, box=box))

    def pillow(self, frame: vips.Frame) -> Image.Image:
        return vips.to_pillow(frame.image)

    def take(self, frame: vips.Frame, box: Box | None = None) -> Image.Image:
        return frame.into_pillow(box)

    def sample(self, frame: vips.Frame, longest: int) -> Image.Image:
        width, height = frame.size
        scale = min(longest / max(width, height), 1.0)
        small = (max(1, round(width * scale)), max(1, round(height * scale)))
        return PILLOW.sample(vips.to_pillow(vips.resize(frame.image, *small)), longest)


PILLOW = PillowEngine()
LIBVIPS = LibvipsEngine()


def engine_of(frame: F) -> Engine[F]:
    """The engine that holds ``frame``: the one place an engine is chosen by the frame's type."""
    return cast("Engine[F]", LIBVIPS if isinstance(frame, vips.Frame) else PILLOW)


_TRANSPOSE = {
    2: [Image.Transpose.FLIP_LEFT_RIGHT],
    3: [Image.Transpose.ROTATE_180],
    4: [Image.Transpose.FLIP_TOP_BOTTOM],
    5: [Image.Transpose.TRANSPOSE],
    6: [Image.Transpose.ROTATE_270],
    7: [Image.Transpose.TRANSVERSE],
    8: [Image.Transpose.ROTATE_90],
}


def to_display_mode(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """Convert any decoded mode to RGB/RGBA/L with sane colours; return the ICC to embed."""
    mode = im.mode
    if mode == "CMYK":
        if icc:
            try:
                source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                converted = ImageCms.profileToProfile(im, source, SRGB, outputMode="RGB")
                if converted is not None:  # None only when asked to convert in place
                    return converted, None
            except (ImageCms.PyCMSError, OSError):
                pass
        return im.convert("RGB"), None
    if mode in {"I;16", "I;16B", "I;16L", "I"}:
        # 16-bit greyscale: scale to 8 bits instead of clipping everything above 255 to white.
        scaled = im.convert("I").point(lambda value: value / 256)
        return scaled.convert("L"), icc
    if mode in {"P", "PA"}:
        has_alpha = "transparency" in im.info or mode == "PA"
        return im.convert("RGBA" if has_alpha else "RGB"), icc
    if mode == "LA":
        return im.convert("RGBA"), icc
    if mode in {"1", "F"}:
        return im.convert("L"), icc
    if mode in {"RGB", "RGBA", "L"}:
        return im, icc
    return im.convert("RGBA" if "A" in mode else "RGB"), icc
