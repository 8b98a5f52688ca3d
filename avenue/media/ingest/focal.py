"""The focal point of an image, and crops cut around it.

A focal point is ``(x, y)`` in 0..1 of the displayed (upright) image: the spot every cropped
variant (``og``, 1200x630) keeps in view, so a product shot off-centre keeps its product.

The automatic estimate is libvips's *attention* strategy (``smartcrop``, the one imgproxy and
sharp use): it scores each part of a small sample for edges, skin tones and saturation and
reports the centre of the most interesting region. It is measured on a sample of at most
:data:`SAMPLE` px, so its cost does not depend on the upload's size (about 12 ms of CPU,
docs/performance.md, "Measurements behind the code").
Faces would be better still for portraits, but every face detector on PyPI brings a model
(OpenCV's cascades, dlib, mediapipe) and hundreds of MB for a shop whose photos are products;
attention finds a face by its skin tones anyway.

Pure: pixels in, numbers out; no Flask, no database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, cast

from PIL import Image
from pydantic import Field

from avenue.media.ingest import vips
from avenue.media.ingest.engine import Pixels, engine_of
from avenue.shapes import Refuse, Shape

SAMPLE = 256  # px on the longer side the estimate looks at


@dataclass(frozen=True)
class FocalPoint:
    """Where the subject is, in 0..1 of the displayed width and height."""

    x: float = 0.5
    y: float = 0.5

    def as_metadata(self) -> dict[str, float]:
        """What the original's files document keeps (``metadata.focal_point``)."""
        return {"x": self.x, "y": self.y}

    @classmethod
    def from_metadata(cls, value: object) -> FocalPoint | None:
        """The stored focal point, or None when absent or malformed."""
        if not isinstance(value, dict):
            return None
        x, y = value.get("x"), value.get("y")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1 for v in (x, y)):
            return None
        return cls(float(x), float(y))  # type: ignore[arg-type]


CENTRE = FocalPoint()


#: A fraction of the displayed width or height (an int is one too: 0 and 1 are).
Fraction = Annotated[float, Field(ge=0, le=1)]


class FocalBody(Shape):
    """``PUT …/focal-point``'s body, ``{"x": 0..1, "y": 0..1}`` (both, nothing else): where the
    subject is, in 0..1 of the displayed width and height. Any fault is 400
    ``invalid_focal_point``."""

    refusal = Refuse("invalid_focal_point", 'Send the focal point as {"x": 0..1, "y": 0..1}: where the '
                     "subject is, as fractions of the width and height.")

    x: Annotated[Fraction, Field(description="Across, from the left edge (0) to the right (1).")]
    y: Annotated[Fraction, Field(description="Down, from the top edge (0) to the bottom (1).")]

    @property
    def point(self) -> FocalPoint:
        return FocalPoint(float(self.x), float(self.y))


#: A sample whose every channel spans at most this many levels has nothing to find: attention
#: then reports its top-left corner (0, 0), which reads as a choice; the centre says "none".
FLAT_LEVELS = 8


def _flat(sample: Image.Image) -> bool:
    """Whether ``sample`` (RGB) is one colour, give or take JPEG's noise."""
    bands = cast("tuple[tuple[int, int], ...]", sample.getextrema())  # RGB: (low, high) per band
    return all(high - low <= FLAT_LEVELS for low, high in bands)


def estimate(im: Pixels) -> FocalPoint:
    """libvips's attention centre of ``im`` (a Pillow image of any mode, or the libvips frame
    of a JPEG photo), rounded to 3 decimals (stored values stay short and the same image
    always gives the same point); the centre for a picture of one colour."""
    sample = engine_of(im).sample(im, SAMPLE)
    width, height = sample.size
    if width < 2 or height < 2 or _flat(sample):
        return CENTRE
    return attention(sample)


def attention(sample: Image.Image) -> FocalPoint:
    """libvips's attention centre of an RGB ``sample`` (at least 2x2), in 0..1, to 3 decimals:
    the same pixels always give the same point."""
    width, height = sample.size
    image = vips.Image.new_from_memory(sample.tobytes(), width, height, 3, "uchar")
    # smartcrop needs a crop size, and its attention centre depends on it (libvips blurs the
    # score in proportion to the crop before it takes the maximum): 1x1, the least blur, is the
    # sharpest centre, and always this size, so the same picture always gives the same point.
    _, found = image.smartcrop(1, 1, interesting="attention", attention_x=True, attention_y=True)
    return FocalPoint(round(min(max(found["attention_x"] / (width - 1), 0.0), 1.0), 3),
                      round(min(max(found["attention_y"] / (height - 1), 0.0), 1.0), 3))


def crop_box(width: int, height: int, target_w: int, target_h: int,
             focal: FocalPoint = CENTRE) -> tuple[int, int, int, int]:
    """(left, top, crop width, crop height): the largest box of the target's aspect ratio in a
    ``width`` x ``height`` image, centred on ``focal`` as far as the edges allow."""
    target_ratio = target_w / target_h
    if width / height > target_ratio:
        crop_w, crop_h = round(height * target_ratio), height
    else:
        crop_w, crop_h = width, round(width / target_ratio)
    crop_w, crop_h = max(1, min(crop_w, width)), max(1, min(crop_h, height))
    left = min(max(round(focal.x * width - crop_w / 2), 0), width - crop_w)
    top = min(max(round(focal.y * height - crop_h / 2), 0), height - crop_h)
    return left, top, crop_w, crop_h
