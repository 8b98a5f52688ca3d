"""Render a rendition on request: a stored original, a :class:`~avenue.media.transform.Spec`
and a format in, the encoded bytes out.

The steps are the upload's own, so a rendition looks like the fixed ones: the original is
decoded by :func:`~avenue.media.ingest.images.prepare` (libvips with shrink-on-load for JPEG
photos, Pillow for the rest, the same colour handling), but only at the scale the rendition
needs (a 320 px rendition of a 12 MP photo decodes an eighth of it; a 2560 px one more than
the fixed variants' 1600), and as a stored original (``stored``: validated and stripped at
its upload, so its bytes are neither stripped again nor hashed: only its pixels are wanted).
:func:`avenue.media.transform.plan` gives the box to cut around the focal point and the size
to make, in the displayed image's pixels. A rendition of the whole picture (``fit`` contain,
no crop) is decoded straight to its size (``exact``): shrink-on-load, then one resize; one cut
from a part of it has its box mapped onto the decoded frame, cut and resized (Lanczos). Then
it is encoded with the fixed renditions' settings
(:func:`avenue.media.ingest.variants.encode_image`; AVIF at speed 6, q64), but a JPEG as a
baseline one (:data:`avenue.media.formats.RENDITION_PROGRESSIVE`: the same pixels, 2-3 %
more bytes, 0.4x the encode).

A JPEG asked of an image with transparency is flattened onto white (JPEG has no alpha);
every other format keeps it. Pure: bytes in, bytes out; no database, no Flask.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from avenue.media.formats import RENDITION_PROGRESSIVE, RENDITION_TYPES
from avenue.media.ingest import vips
from avenue.media.ingest.focal import FocalPoint
from avenue.media.ingest.images import Limits, prepare
from avenue.media.ingest.variants import encode_image, to_display_mode
from avenue.media.transform import Plan, Spec, plan


@dataclass(frozen=True)
class Rendered:
    """An encoded rendition: its bytes, pixel size and format (webp, avif, jpeg or png)."""

    data: bytes
    width: int
    height: int
    format: str


def render_spec(data: bytes, limits: Limits, spec: Spec, fmt: str, focal: FocalPoint,
                quality: int | None = None,
                crop: tuple[float, float, float, float] | None = None) -> Rendered:
    """``spec`` of the original ``data`` (already stored: ``limits`` are usually
    ``Limits.for_stored``) as ``fmt``, cut around ``focal``; ``quality`` overrides the
    spec's and the format's default; ``crop``: the box of the named crop ``spec.crop`` names
    (None: the image has none)."""
    if fmt not in RENDITION_TYPES:
        raise ValueError(f"cannot render {fmt!r}: one of {', '.join(RENDITION_TYPES)}")
    point = (focal.x, focal.y)

    def decode_scale(width: int, height: int) -> float:
        made = plan(spec, (width, height), point, crop)
        return max(made.size[0] / made.box[2], made.size[1] / made.box[3])

    def canvases(decoded: tuple[int, int], shown: tuple[int, int]) -> int:
        # Beside the decoded frame, until the encode: the frame in the display mode (a copy
        # when its mode converts), the resized picture and its flattened copy (a JPEG of a
        # transparent image), 4 bytes a pixel each.
        out = plan(spec, shown, point, crop).size
        return (decoded[0] * decoded[1] + 2 * out[0] * out[1]) * 4

    def exact(width: int, height: int) -> tuple[int, int] | None:
        made = plan(spec, (width, height), point, crop)
        return made.size if made.box == (0, 0, width, height) else None

    prepared = prepare(data, limits, decode_scale, working=canvases, exact=exact, stored=True)
    try:
        made = plan(spec, (prepared.width, prepared.height), point, crop)
        pixels = prepared.pixels
        if isinstance(pixels, vips.Frame):
            if pixels.size == made.size and made.box == (0, 0, prepared.width, prepared.height):
                image = vips.to_pillow(pixels.image)  # decoded at its size: nothing left to resize
            else:
                box = _on_frame(made, (prepared.width, prepared.height), pixels.size)
                image = vips.to_pillow(vips.resize(pixels.image, *made.size, box=box))
            icc = prepared.icc_profile
        else:
            base, icc = to_display_mode(pixels, prepared.icc_profile)
            left, top, width, height = _on_frame(made, (prepared.width, prepared.height), base.size)
            image = base.resize(made.size, Image.Resampling.LANCZOS,
                                box=(left, top, left + width, top + height), reducing_gap=3.0)
            del base
        del pixels
        prepared.first_frame = None  # the decoded frame is no longer needed
        if fmt == "jpeg" and image.mode in {"RGBA", "LA"}:
            flat = Image.new("RGB", image.size, (255, 255, 255))
            flat.paste(image, mask=image.getchannel("A"))
            image = flat
        encoded = encode_image(image, fmt, icc, quality if quality is not None else spec.quality,
                               progressive=RENDITION_PROGRESSIVE)
        return Rendered(encoded, image.width, image.height, fmt)
    finally:
        # The decode budget held from the decode to the encode: the resize and the encode
        # count against it as the decode does (a second large render waits for room).
        prepared.release()


def _on_frame(made: Plan, shown: tuple[int, int], frame: tuple[int, int]) -> tuple[int, int, int, int]:
    """The plan's box (in the displayed image's pixels) on a frame decoded at another scale:
    scaled, rounded, and kept inside the frame and at least a pixel wide."""
    sx, sy = frame[0] / shown[0], frame[1] / shown[1]
    left, top, width, height = made.box
    x0, y0 = min(round(left * sx), frame[0] - 1), min(round(top * sy), frame[1] - 1)
    x1 = max(x0 + 1, min(round((left + width) * sx), frame[0]))
    y1 = max(y0 + 1, min(round((top + height) * sy), frame[1]))
    return x0, y0, x1 - x0, y1 - y0
