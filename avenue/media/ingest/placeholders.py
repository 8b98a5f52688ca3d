"""What a storefront shows while an image loads: a blurhash and the dominant colour.

Computed once per original at upload, from its ``thumb`` rendition (at most 200 px, already
encoded: decoding it costs about a millisecond whatever the original's size or the library
that rendered it), shrunk to :data:`SAMPLE` px. ``blurhash-python`` (Wolt's reference C
encoder behind cffi) does the transform, so the whole placeholder stays under the 5 ms an
upload may spend on it (bench/placeholders.py: 3.4 ms at worst). The dominant colour is the most
frequent colour of a median-cut palette of the opaque pixels (an average of a red product
on a white background would be pink, a colour that is in neither).

Bytes in, a :class:`Placeholder` out; no Flask, no database. Deterministic: the same thumb
gives the same strings (a re-upload of the same bytes is deduplicated anyway).
"""

from __future__ import annotations

from dataclasses import dataclass

# blurhash-python ships no type hints. Its encode() reads pixels with Image.getdata (deprecated
# in Pillow 13, an error under the tests' warnings filter) one Python int at a time; the same C
# encoder is called here with the image's raw bytes instead (pinned version: a change of those
# two names fails the tests, not production silently).
from blurhash import _ffi, _lib  # type: ignore[import-untyped]
from PIL import Image, UnidentifiedImageError

from avenue.errors import UnsupportedImage
from avenue.media.ingest import decoders

SAMPLE = 32  # px on the longer side: blurhash's components need no more
COMPONENTS = (4, 3)  # x, y: the usual choice for a landscape-or-square preview (28 characters)
PALETTE = 8  # colours in the median-cut palette the dominant colour is picked from
OPAQUE = 128  # alpha at or above which a pixel counts for the dominant colour


@dataclass(frozen=True)
class Placeholder:
    """A blurhash string and the dominant colour as ``#rrggbb``."""

    blurhash: str
    color: str

    def as_metadata(self) -> dict[str, str]:
        """What the original's files document keeps (``metadata.placeholder``)."""
        return {"blurhash": self.blurhash, "color": self.color}


def _frame(thumb: bytes, disabled: frozenset[str]) -> Image.Image:
    """The thumb's first frame, at most :data:`SAMPLE` px, as RGBA (``disabled``: the formats
    turned off, refused unread)."""
    with decoders.open_image(thumb, disabled) as im:
        im.draft("RGB", (SAMPLE, SAMPLE))  # JPEG thumbs: decode at a fraction of the size
        frame = im.convert("RGBA")
    frame.thumbnail((SAMPLE, SAMPLE), Image.Resampling.BOX)
    return frame


def _blurhash(rgb: Image.Image) -> str:
    """Wolt's C encoder over the RGB bytes of ``rgb``."""
    width, height = rgb.size
    pixels = _ffi.from_buffer("uint8_t[]", rgb.tobytes())
    destination = _ffi.new("char[]", 2 + 4 + (9 * 9 - 1) * 2 + 1)  # the longest hash, as encode() sizes it
    result = _lib.create_hash_from_pixels(COMPONENTS[0], COMPONENTS[1], width, height, pixels, width * 3,
                                          destination)
    if result == _ffi.NULL:
        raise ValueError("blurhash components out of range")
    return str(_ffi.string(result).decode())


def _dominant(rgb: Image.Image, alpha: Image.Image | None) -> str:
    # The colours themselves, not the composite: a shadow on transparency is not "white".
    palette_image = rgb.quantize(colors=PALETTE, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    indices = palette_image.tobytes()  # mode P: one palette index per pixel
    weights = alpha.tobytes() if alpha is not None else bytes([255]) * len(indices)
    counts: dict[int, int] = {}
    for index, weight in zip(indices, weights, strict=True):
        if weight >= OPAQUE:
            counts[index] = counts.get(index, 0) + 1
    if not counts:  # all but invisible: the colour it is drawn over
        return "#ffffff"
    best = min(counts, key=lambda index: (-counts[index], index))
    palette = palette_image.getpalette() or []
    red, green, blue = palette[best * 3:best * 3 + 3]
    return f"#{red:02x}{green:02x}{blue:02x}"


def compute(thumb: bytes, disabled: frozenset[str]) -> Placeholder | None:
    """The placeholder of an image whose ``thumb`` rendition is ``thumb`` (None when those
    bytes cannot be read, or are of a format in ``disabled``: a placeholder is never a reason
    to refuse an upload)."""
    try:
        frame = _frame(thumb, disabled)
    except (UnidentifiedImageError, UnsupportedImage, OSError, ValueError):
        return None
    return _of_frame(frame)


def of_image(image: Image.Image) -> Placeholder:
    """The placeholder of decoded pixels (an upload's thumb, decoded once for the placeholder
    and the near-duplicate hash)."""
    frame = image.convert("RGBA")
    frame.thumbnail((SAMPLE, SAMPLE), Image.Resampling.BOX)
    return _of_frame(frame)


def _of_frame(frame: Image.Image) -> Placeholder:
    alpha = frame.getchannel("A")
    lowest, _ = alpha.getextrema()  # one band: (min, max)
    if isinstance(lowest, int) and lowest >= 255:
        rgb = frame.convert("RGB")
        return Placeholder(_blurhash(rgb), _dominant(rgb, None))
    # The blur is drawn where the image will be: over the page (white, as a rule). The
    # colour is that of what is visible: transparent pixels keep whatever RGB they had.
    white = Image.new("RGBA", frame.size, (255, 255, 255, 255))
    over_white = Image.alpha_composite(white, frame).convert("RGB")
    return Placeholder(_blurhash(over_white), _dominant(frame.convert("RGB"), alpha))
