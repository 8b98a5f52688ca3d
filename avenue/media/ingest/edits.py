"""Non-destructive edits (rotate, flip, crop) and named crops: their validation and their pixels.

An image's edits are parameters kept on its files document (``metadata.edits``); the original
bytes stay stored as they were uploaded (``metadata.variants.source``), and the *edited
picture* made from them here is what the variants, renditions, placeholder and hash are made
of (avenue/media/store/replace.py writes it). Edits always start from the original, in one
order: rotate clockwise by 0/90/180/270, then flip, then crop; the crop is fractions 0..1 of
the rotated and flipped picture, at least :data:`MIN_CROP_PX` source pixels on each side.

Named crops (``hero``, ``card``, ``og``: at most :data:`MAX_CROPS`) are boxes in fractions of
the *edited* picture that renditions ask for by name (``c_hero``, avenue/media/transform.py).

Every request body is declared here once (:class:`EditsBody`, :class:`CropBody`): the routes
of the three owners take them (``@takes``), the stored values and the unit tests read them
through the same models, and the API document shows their schemas. Pure: bytes in, bytes out; no Flask, no
database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Self

from PIL import Image
from pydantic import BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from avenue.errors import BadRequest, Conflict, NotFound
from avenue.media.ingest.engine import engine_of, to_display_mode
from avenue.media.ingest.focal import FocalPoint
from avenue.media.ingest.images import Limits, PreparedImage, prepare
from avenue.media.ingest.variants import encode_image
from avenue.media.transform import CROP_NAME
from avenue.shapes import Refuse, Shape, refused

MIN_CROP_PX = 16  # a crop's smallest side, in source pixels
MAX_CROPS = 16  # named crops per image
ROTATIONS = (0, 90, 180, 270)
# What the edited picture is stored as: PNG (lossless) for transparency and for originals that
# were lossless (PNG, GIF), else a JPEG at a quality well above the variants' (it is the
# source of every rendition). A baseline JPEG, not progressive: the server decodes it again for
# every rendition, and libjpeg holds all of a progressive one's coefficients at full size
# whatever the shrink-on-load scale (docs/performance.md, "Measurements behind the code").
EDITED_JPEG_QUALITY = 95
LOSSLESS = {"PNG", "GIF"}


class InvalidEdits(BadRequest):
    """A body of ``PUT .../edits`` that is not edits this app can apply."""

    code = "invalid_edits"


class InvalidCrop(BadRequest):
    """A named crop's name or box that is not valid."""

    code = "invalid_crop"


class TooManyCrops(Conflict):
    """The image has :data:`MAX_CROPS` named crops already."""

    code = "too_many_crops"

    def __init__(self) -> None:
        super().__init__(f"An image has at most {MAX_CROPS} named crops; delete one first.",
                         limit=MAX_CROPS)


class CropNotFound(NotFound):
    """The image has no named crop of that name."""

    code = "crop_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"This image has no crop named {name!r}.", name=name)


@dataclass(frozen=True)
class Box:
    """A rectangle in fractions 0..1 of a picture's width and height."""

    x: float
    y: float
    width: float
    height: float

    def as_metadata(self) -> dict[str, float]:
        """What the files document keeps, and the API answers."""
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) in a ``width`` x ``height`` picture, at least 1 px."""
        left, top = round(self.x * width), round(self.y * height)
        right = max(left + 1, min(width, round((self.x + self.width) * width)))
        bottom = max(top + 1, min(height, round((self.y + self.height) * height)))
        return left, top, right, bottom


@dataclass(frozen=True)
class Edits:
    """Rotate clockwise, then flip, then crop (fractions of the rotated, flipped picture)."""

    rotate: int = 0
    flip_horizontal: bool = False
    flip_vertical: bool = False
    crop: Box | None = None

    @property
    def none(self) -> bool:
        """Whether these edits leave the picture as it is."""
        return self == Edits()

    def as_metadata(self) -> dict[str, Any]:
        """The normalised edits: what is stored and answered."""
        return {"rotate": self.rotate, "flip_horizontal": self.flip_horizontal,
                "flip_vertical": self.flip_vertical, "crop": self.crop.as_metadata() if self.crop else None}

    @classmethod
    def from_metadata(cls, value: object) -> Edits | None:
        """The stored edits (None: none, or none that change anything)."""
        if not isinstance(value, dict):
            return None
        try:
            edits = parse_edits(value)
        except BadRequest:
            return None
        return None if edits.none else edits

    def turned_size(self, width: int, height: int) -> tuple[int, int]:
        """The size of a ``width`` x ``height`` picture once rotated (flips keep it)."""
        return (height, width) if self.rotate in (90, 270) else (width, height)

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The edited picture's size for a source of ``width`` x ``height``."""
        turned = self.turned_size(width, height)
        if self.crop is None:
            return turned
        left, top, right, bottom = self.crop.pixels(*turned)
        return right - left, bottom - top

    def source_crop(self, width: int, height: int) -> tuple[int, int, int, int] | None:
        """The crop as pixels (left, top, right, bottom) of the unturned ``width`` x ``height``
        picture: cut there, then turned and flipped, it gives the very pixels that turning,
        flipping and then cropping give (quarter turns and flips only move pixels). None: no
        crop."""
        if self.crop is None:
            return None
        turned_w, turned_h = self.turned_size(width, height)
        left, top, right, bottom = self.crop.pixels(turned_w, turned_h)
        if self.flip_horizontal:  # the flips act on the turned picture: undone first
            left, right = turned_w - right, turned_w - left
        if self.flip_vertical:
            top, bottom = turned_h - bottom, turned_h - top
        if self.rotate == 90:  # a turned pixel (x, y) was the source's (y, height - 1 - x)
            return top, height - right, bottom, height - left
        if self.rotate == 180:  # (width - 1 - x, height - 1 - y)
            return width - right, height - bottom, width - left, height - top
        if self.rotate == 270:  # (width - 1 - y, x)
            return width - bottom, left, width - top, right
        return left, top, right, bottom

    def check(self, width: int, height: int) -> None:
        """InvalidEdits when the crop is under :data:`MIN_CROP_PX` on a side of this source."""
        if self.crop is None:
            return
        turned_w, turned_h = self.turned_size(width, height)
        if self.crop.width * turned_w < MIN_CROP_PX or self.crop.height * turned_h < MIN_CROP_PX:
            raise InvalidEdits(f"crop: at least {MIN_CROP_PX} px on each side of the picture "
                               f"({turned_w}x{turned_h} once rotated)", field="crop",
                               min_px=MIN_CROP_PX)

    def signature(self) -> str:
        """A short, stable text of these edits (part of the image's version)."""
        box = self.crop
        crop = "-" if box is None else f"{box.x:.6f},{box.y:.6f},{box.width:.6f},{box.height:.6f}"
        return f"r{self.rotate}h{int(self.flip_horizontal)}v{int(self.flip_vertical)}c{crop}"


#: A box's side or corner: a finite fraction of the picture (an int is one too: 0 and 1 are).
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
BOX_RULE = 'an object {"x", "y", "width", "height"} of fractions 0..1 of the picture, inside it'


class BoxBody(Shape):
    """Fractions 0..1 of the picture: x + width and y + height at most 1, width and height
    above 0."""

    # (A little slack for fractions a client computed from pixels: 0.1 + 0.9 is
    # 1.0000000000000002. Each use names its refusal: EditsCrop, CropBody.)

    refusal = Refuse("invalid_crop", f"crop: {BOX_RULE}.")
    #: The refusal of a box that is empty or not inside the picture.
    outside: ClassVar[type[BadRequest]]

    x: Fraction
    y: Fraction
    width: Fraction
    height: Fraction

    @model_validator(mode="after")
    def _inside(self) -> Self:
        if self.width <= 0 or self.height <= 0:
            raise refused(self.outside("crop: width and height above 0", field="crop"))
        if self.x + self.width > 1 + 1e-9 or self.y + self.height > 1 + 1e-9:
            raise refused(self.outside("crop: inside the picture (x + width and y + height at most 1)",
                                       field="crop"))
        return self

    @property
    def box(self) -> Box:
        x, y = float(self.x), float(self.y)
        return Box(x, y, min(float(self.width), 1 - x), min(float(self.height), 1 - y))


class EditsCrop(BoxBody):
    """Of the rotated and flipped picture, in fractions 0..1 of it (x + width and y + height
    at most 1); at least 16 source pixels on each side."""

    refusal = Refuse("invalid_edits", f"crop: {BOX_RULE}, or null.")
    outside = InvalidEdits


class CropBody(BoxBody):
    """A named crop's box, in fractions 0..1 of the edited picture (x + width and y + height
    at most 1); at least 16 source pixels on each side."""

    refusal = Refuse("invalid_crop", f"A crop is {BOX_RULE}.")
    outside = InvalidCrop

    @staticmethod
    def check_name(name: str) -> str:
        """A named crop's name, ``[a-z][a-z0-9_-]{0,31}``; InvalidCrop otherwise."""
        if not CROP_NAME.fullmatch(name):
            raise InvalidCrop("A crop's name is a lower-case letter, then up to 31 letters, digits, "
                              "'_' or '-'.", field="name")
        return name

    def named(self, name: str) -> Box:
        """The box, once ``name`` is a crop's name (400 ``invalid_crop`` otherwise)."""
        self.check_name(name)
        return self.box


def _whole(value: object) -> object:
    """Only an integer: a literal's check takes what equals one of its values (false is 0,
    90.0 is 90)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("int_type", "a whole number of degrees")
    return value


class EditsBody(Shape):
    """Applied to the original in this order: rotate, flip, crop (every field optional)."""

    # Any fault is 400 invalid_edits naming its field; the crop's size in pixels is
    # Edits.check's (it needs the picture).

    refusal = Refuse("invalid_edits", 'Send the edits as a JSON object: {"rotate": 0|90|180|270, '
                     '"flip_horizontal": bool, "flip_vertical": bool, "crop": {"x", "y", "width", '
                     '"height"} | null}.')

    rotate: Annotated[Literal[0, 90, 180, 270], BeforeValidator(_whole), Refuse(
        "invalid_edits", "rotate: 0, 90, 180 or 270 (degrees clockwise)"),
        Field(description="Degrees clockwise, applied first.")] = 0
    flip_horizontal: Annotated[bool, Refuse("invalid_edits", "flip_horizontal: true or false")] = False
    flip_vertical: Annotated[bool, Refuse("invalid_edits", "flip_vertical: true or false")] = False
    crop: EditsCrop | None = None

    @property
    def edits(self) -> Edits:
        box = None if self.crop is None else self.crop.box
        if box is not None and box == Box(0.0, 0.0, 1.0, 1.0):
            box = None  # the whole picture is no crop
        return Edits(self.rotate, self.flip_horizontal, self.flip_vertical, box)


def parse_edits(body: object) -> Edits:
    """``body`` (a request's, or what a files document keeps) as :class:`Edits`; 400
    ``invalid_edits`` naming the field otherwise."""
    return EditsBody.parse(body).edits


def parse_crop(name: str, body: object) -> Box:
    """A named crop's name and box (``PUT .../crops/<name>``, or what a files document keeps);
    400 ``invalid_crop`` otherwise."""
    return CropBody.parse(body).named(name)


def check_crop_size(box: Box, width: object, height: object) -> None:
    """InvalidCrop (400) when a named crop's box is under :data:`MIN_CROP_PX` pixels on a side
    of the edited picture (``width`` x ``height``; not checked when unknown)."""
    if not (isinstance(width, int) and isinstance(height, int)):
        return
    if box.width * width < MIN_CROP_PX or box.height * height < MIN_CROP_PX:
        raise InvalidCrop(f"crop: at least {MIN_CROP_PX} px on each side of the picture ({width}x{height})",
                          field="crop", min_px=MIN_CROP_PX)


def stored_crops(value: object) -> dict[str, Box]:
    """The named crops a files document keeps (malformed ones left out)."""
    crops: dict[str, Box] = {}
    if isinstance(value, dict):
        for name, box in value.items():
            try:
                crops[str(name)] = parse_crop(str(name), box)
            except BadRequest:
                continue
    return crops


def og_box(meta: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """The box of the crop named ``og`` a files document's metadata keeps, which the ``og``
    variant is cut inside (None: none)."""
    box = stored_crops(meta.get("crops")).get("og")
    return None if box is None else (box.x, box.y, box.width, box.height)


# --- points: the focal point follows the edits --------------------------------------------


def _turn(x: float, y: float, rotate: int) -> tuple[float, float]:
    """A point of the picture once it is rotated ``rotate`` degrees clockwise."""
    if rotate == 90:
        return 1 - y, x
    if rotate == 180:
        return 1 - x, 1 - y
    if rotate == 270:
        return y, 1 - x
    return x, y


def to_edited(point: FocalPoint, edits: Edits | None) -> FocalPoint:
    """A point of the original as a point of the edited picture (clamped into the crop)."""
    if edits is None:
        return point
    x, y = _turn(point.x, point.y, edits.rotate)
    x = 1 - x if edits.flip_horizontal else x
    y = 1 - y if edits.flip_vertical else y
    if edits.crop is not None:
        box = edits.crop
        x = min(max((x - box.x) / box.width, 0.0), 1.0)
        y = min(max((y - box.y) / box.height, 0.0), 1.0)
    return FocalPoint(round(x, 4), round(y, 4))


def to_original(point: FocalPoint, edits: Edits | None) -> FocalPoint:
    """A point of the edited picture as a point of the original."""
    if edits is None:
        return point
    x, y = point.x, point.y
    if edits.crop is not None:
        x, y = edits.crop.x + x * edits.crop.width, edits.crop.y + y * edits.crop.height
    x = 1 - x if edits.flip_horizontal else x
    y = 1 - y if edits.flip_vertical else y
    x, y = _turn(x, y, (360 - edits.rotate) % 360)
    return FocalPoint(round(x, 4), round(y, 4))


# --- pixels ------------------------------------------------------------------------------


_TRANSPOSE = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}


def source_of(data: bytes, limits: Limits | None = None, edits: Edits | None = None) -> PreparedImage:
    """The stored original ``data`` decoded upright at full size (it passed the limits once;
    ``limits``: the app's decode budget, :meth:`Limits.for_stored`). Its reservation of the
    decode budget covers the canvases :func:`apply` makes for ``edits`` (for any edits when
    None), and is held until released."""
    return prepare(data, limits or Limits.for_stored(len(data)), decode_scale=lambda _w, _h: 1.0,
                   working=lambda _decoded, shown: _edit_canvases(edits or Edits(), shown))


def _edit_canvases(edits: Edits, shown: tuple[int, int]) -> int:
    """What :func:`apply` holds beside the decoded frame: the crop's pixels twice at 4 bytes
    (the crop copied out of the frame, then its turned, flipped or mode-converted copy; the
    frame is let go once the crop is out). Turning before cropping held the whole frame twice
    more: one 39.9 MP rotate 90 and 90 % crop of a JPEG, alone in a process, peaked 444 MB
    above its idle figure turned first, 268-281 MB cut first, and took 1.3-1.7 s instead of
    1.7-2.1 (the same encoded bytes)."""
    width, height = edits.size(*shown)
    return 2 * width * height * 4


def apply(data: bytes, edits: Edits, limits: Limits | None = None) -> bytes:
    """The edited picture of the stored original ``data``: decoded upright at full size (as
    its EXIF orientation shows it), rotated, flipped, cropped, and encoded (PNG when it has
    transparency or was lossless, else JPEG at :data:`EDITED_JPEG_QUALITY`), its ICC profile
    kept. The crop is cut first, from the decoded frame before it is turned
    (:meth:`Edits.source_crop`: the same pixels), and the frame is let go at once, so the
    turn, the flips and the encode hold the crop's pixels only. All of it is held within the
    decode budget of ``limits`` (a second large edit waits for room, then 503 ``busy``)."""
    source = source_of(data, limits, edits)
    try:
        if source.frames > 1:
            raise InvalidEdits("An animated image cannot be edited (its frames would be lost); "
                               "replace it instead.", field="frames")
        frame = source.take_pixels()
        edits.check(*frame.size)
        crop = edits.source_crop(*frame.size)
        box = None if crop is None else (crop[0], crop[1], crop[2] - crop[0], crop[3] - crop[1])
        cut = engine_of(frame).take(frame, box)  # libvips lets its canvas go before Pillow's copy
        del frame  # the uncut frame's last reference
        im, icc = to_display_mode(cut, source.icc_profile)
        del cut
        if edits.rotate:
            im = im.transpose(_TRANSPOSE[edits.rotate])
        if edits.flip_horizontal:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if edits.flip_vertical:
            im = im.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        lossless = im.mode in {"RGBA", "LA"} or source.format in LOSSLESS
        return encode_image(im, "png" if lossless else "jpeg", icc,
                            quality=None if lossless else EDITED_JPEG_QUALITY, progressive=False)
    finally:
        source.release()
