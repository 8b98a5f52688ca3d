"""Render a rendition on request: a stored original, a :class:`~avenue.media.transform.Spec`
and a format in, the encoded bytes out.

The steps are the upload's own, so a rendition looks like the fixed ones; :func:`render_spec`
runs them in this order, one function each, on whichever engine holds the decoded frame
(avenue/media/ingest/engine.py):

1. **decode** (:func:`_decode`): :func:`~avenue.media.ingest.images.prepare` (libvips with
   shrink-on-load for JPEG photos, Pillow for the rest), but only at the scale the rendition
   needs (a 320 px rendition of a 12 MP photo decodes an eighth of it; a 2560 px one more than
   the fixed variants' 1600), and as a stored original (``stored``: validated and stripped at
   its upload, so its bytes are neither stripped again nor hashed: only its pixels are
   wanted). A rendition of the whole picture (``fit`` contain, no crop) is decoded straight to
   its size (``exact``): shrink-on-load, then one resize, and nothing is left to do in step 3;
2. **display** (:func:`_display`): the frame in RGB, RGBA or L with the upload's colour
   handling (a CMYK JPEG converted through its profile), the ICC profile to embed;
3. **cut and resize** (:func:`_cut`): :func:`avenue.media.transform.plan`'s box (around the
   focal point, in the displayed image's pixels) mapped onto the decoded frame, cut and
   resized (Lanczos) to the plan's size;
4. **flatten** (:func:`_flatten`): a JPEG asked of an image with transparency is flattened
   onto white (JPEG has no alpha); every other format keeps it;
5. **encode** (:func:`_encode`): the fixed renditions' settings
   (:func:`avenue.media.ingest.variants.encode_image`; AVIF at speed 6, q64), but a JPEG as a
   baseline one (:data:`avenue.media.formats.RENDITION_PROGRESSIVE`: the same pixels, 2-3 %
   more bytes, 0.4x the encode).

Pure: bytes in, bytes out; no database, no Flask.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from avenue.media.formats import RENDITION_PROGRESSIVE, RENDITION_TYPES
from avenue.media.ingest.engine import Pixels, engine_of
from avenue.media.ingest.focal import FocalPoint
from avenue.media.ingest.images import Limits, PreparedImage, prepare
from avenue.media.ingest.variants import encode_image
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
    prepared = _decode(data, limits, spec, (focal.x, focal.y), crop)  # 1
    try:
        made = plan(spec, (prepared.width, prepared.height), (focal.x, focal.y), crop)
        frame, icc = _display(prepared)  # 2
        prepared.first_frame = None  # the frame's last reference is ``frame``
        image = _cut(frame, made, (prepared.width, prepared.height))  # 3
        del frame  # the decoded frame is no longer needed
        image = _flatten(image, fmt)  # 4
        encoded = _encode(image, fmt, icc, quality if quality is not None else spec.quality)  # 5
        return Rendered(encoded, image.width, image.height, fmt)
    finally:
        # The decode budget held from the decode to the encode: the resize and the encode
        # count against it as the decode does (a second large render waits for room).
        prepared.release()


def _decode(data: bytes, limits: Limits, spec: Spec, point: tuple[float, float],
            crop: tuple[float, float, float, float] | None) -> PreparedImage:
    """Step 1: ``data`` decoded at the scale ``spec`` needs, the decode budget reserved for the
    canvases of the steps after it (held until the caller releases it)."""

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

    return prepare(data, limits, decode_scale, working=canvases, exact=exact, stored=True)


def _display(prepared: PreparedImage) -> tuple[Pixels, bytes | None]:
    """Step 2: the decoded frame in its display mode, and the ICC profile to embed."""
    frame = prepared.pixels
    return engine_of(frame).display(frame, prepared.icc_profile)


def _cut(frame: Pixels, made: Plan, shown: tuple[int, int]) -> Image.Image:
    """Step 3: the plan's box (in the ``shown`` picture's pixels) cut from ``frame`` and resized
    to the plan's size, as a Pillow image for the encoder; ``frame`` is given up (a frame
    decoded at the plan's size is handed over as it is)."""
    engine = engine_of(frame)
    box = _on_frame(made, shown, engine.size(frame))
    return engine.take(engine.resize(frame, made.size, box))


def _flatten(image: Image.Image, fmt: str) -> Image.Image:
    """Step 4: ``image`` onto white when ``fmt`` is JPEG and it has transparency."""
    if fmt != "jpeg" or image.mode not in {"RGBA", "LA"}:
        return image
    flat = Image.new("RGB", image.size, (255, 255, 255))
    flat.paste(image, mask=image.getchannel("A"))
    return flat


def _encode(image: Image.Image, fmt: str, icc: bytes | None, quality: int | None) -> bytes:
    """Step 5: ``image`` encoded as ``fmt`` at ``quality`` (None: the format's default)."""
    return encode_image(image, fmt, icc, quality, progressive=RENDITION_PROGRESSIVE)


def _on_frame(made: Plan, shown: tuple[int, int], frame: tuple[int, int]) -> tuple[int, int, int, int]:
    """The plan's box (in the displayed image's pixels) on a frame decoded at another scale:
    scaled, rounded, and kept inside the frame and at least a pixel wide."""
    sx, sy = frame[0] / shown[0], frame[1] / shown[1]
    left, top, width, height = made.box
    x0, y0 = min(round(left * sx), frame[0] - 1), min(round(top * sy), frame[1] - 1)
    x1 = max(x0 + 1, min(round((left + width) * sx), frame[0]))
    y1 = max(y0 + 1, min(round((top + height) * sy), frame[1]))
    return x0, y0, x1 - x0, y1 - y0
