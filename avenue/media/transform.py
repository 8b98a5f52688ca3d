"""Renditions on request: a transformation named in a URL, parsed strictly and normalised once.

A rendition URL names an image version and a transformation as one path segment of
``key_value`` options, in the spirit of imgproxy's and Cloudinary's URLs::

    /media/<alias>/<id>~<version>/w_800,h_1000,fit_cover,dpr_2[.avif]

| option | values | meaning |
| --- | --- | --- |
| ``w_`` / ``h_`` | 1 .. :data:`MAX_SIDE` | the box, in CSS pixels (before ``dpr``) |
| ``fit_`` | ``contain`` (default), ``cover``, ``crop`` | see below |
| ``dpr_`` | 1 .. 4, at most two decimals | device pixel ratio: multiplies the box |
| ``q_`` | 1 .. 100 | encoder quality (each format has its own default) |
| ``up_1`` | | allow upscaling (never by default) |
| ``c_`` | a crop name, ``[a-z][a-z0-9_-]{0,31}`` | the image's named crop is the source (below) |

``contain`` fits the whole image inside the box; ``cover`` fills the box, cutting what
overflows around the focal point (a crop of any aspect ratio); ``crop`` cuts the box's pixels
around the focal point at full resolution, without scaling. The format is the extension
(``.webp``, ``.avif``, ``.jpg``, ``.png``) or, without one, chosen by the request's
``Accept`` where it is served.

``c_<name>`` (avenue/media/ingest/edits.py: the named crops an image keeps) makes the box of the
image's crop of that name the source the rest applies to (``c_hero,w_800``: the hero crop,
800 px wide; ``c_hero`` alone: the crop at full resolution). An image without that crop falls
back to its focal point: ``cover`` at the box given, or the whole picture when none is; unsigned,
only a preset's name may be asked for that way (:meth:`AllowList.allows`).

Why so strict: every accepted spelling is a distinct cache key, and a render costs CPU. So a
value has one spelling only (ASCII digits, no sign, no leading zero, no exponent: ``int()``
alone would take ``" 08"``, ``"+8"``, ``"٨"`` and ``"8_0"``), each option appears once, and
unknown options are refused rather than ignored. :func:`normalise` then folds what is
equivalent into one :class:`Spec` (``dpr`` into the box, a one-sided ``cover`` into
``contain``), and :meth:`Spec.key` is the one canonical string that names the stored
rendition and that signatures cover.

Abuse: a URL is rendered unsigned only when its normalised spec is on the
:class:`AllowList` (a width on the ladder, of the picture or of a crop the image has, or a
named preset at 1x, 2x or 3x): a bounded set per image. Anything else needs a signature over
the canonical key (the serving layer checks it), so nobody can make the service render a
million variants of one image.

Pure: no Flask, no database, no pixels. :func:`plan` gives the geometry (which box of the
source to cut, what size to make) that a renderer carries out.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from fractions import Fraction

from avenue.errors import BadRequest
from avenue.media.formats import RENDITION_BY_EXTENSION

#: The largest side a rendition may have, after ``dpr`` (the largest fixed rendition is 1600).
MAX_SIDE = 8192
#: The most pixels one rendition may have: 8192 x 4096; a render's memory is about 4 bytes a
#: pixel of the output plus the shrunk source, so this bounds what one request can cost.
MAX_PIXELS = 8192 * 4096
MAX_DPR = Fraction(4)
FITS = ("contain", "cover", "crop")
#: Widths rendered unsigned (CSS px times dpr): common storefront slots at 1x-3x.
LADDER: tuple[int, ...] = (160, 320, 480, 640, 800, 960, 1280, 1600, 1920, 2560)

_INT = re.compile(r"[1-9][0-9]{0,4}")
_DPR = re.compile(r"([1-9])(?:\.([0-9]{1,2}))?")
_OPTION = re.compile(r"([a-z]+)_([a-z0-9.]+)")
#: A named crop's name (``c_<name>``; avenue/media/ingest/edits.py checks names against it too).
CROP_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class Spec:
    """A normalised transformation: the box in output pixels (``dpr`` applied), how to fit it,
    the quality (``None``: the format's default) and whether upscaling is allowed."""

    width: int | None = None
    height: int | None = None
    fit: str = "contain"
    quality: int | None = None
    upscale: bool = False
    crop: str | None = None  # a named crop of the image: the source the rest applies to

    def key(self) -> str:
        """The canonical spelling: options in a fixed order, defaults left out."""
        parts = [] if self.crop is None else [f"c_{self.crop}"]
        if self.width is not None:
            parts.append(f"w_{self.width}")
        if self.height is not None:
            parts.append(f"h_{self.height}")
        if self.fit != "contain":
            parts.append(f"fit_{self.fit}")
        if self.quality is not None:
            parts.append(f"q_{self.quality}")
        if self.upscale:
            parts.append("up_1")
        return ",".join(parts)


@dataclass(frozen=True)
class Request:
    """What a rendition URL asked for: the spec, and the format (``""``: by ``Accept``)."""

    spec: Spec
    format: str = ""
    #: ``w_auto``: the width is the client's (its hints, :func:`auto_width`); the spec holds
    #: the width chosen without hints until the route resolves it (serve/http.py).
    auto: bool = False


def looks_like_options(segment: str) -> bool:
    """Whether a URL's last segment is a transformation (``w_800``) rather than a named
    rendition (``card``): options always hold an underscore, names never do."""
    return "_" in segment.split(".", 1)[0]


#: How many distinct segments :func:`parse` remembers per process (a few hundred bytes each).
PARSED_CACHE_SIZE = 4096


# Memoised (functools.lru_cache: bounded, thread-safe, and a refusal is never cached since it
# raises): a warm rendition is answered by the media front door on every request, and parsing
# and normalising its segment (regexes, Fractions) cost more than the rest of that answer
# (bench/results/renditions-load-2026-11-24.md). A Request is frozen, so sharing one is safe.
@functools.lru_cache(maxsize=PARSED_CACHE_SIZE)
def parse(segment: str) -> Request:
    """The transformation a URL segment names, normalised; :class:`BadRequest` naming what is
    wrong for anything else."""
    # The extension is letters after the last dot; dpr_1.5's dot is followed by digits.
    options, dot, ext = segment.rpartition(".")
    if not dot or not ext.isalpha():
        options, dot, ext = segment, "", ""
    fmt = ""
    if dot:
        if ext not in RENDITION_BY_EXTENSION:
            raise BadRequest(f"unknown rendition format {ext!r}: use one of "
                             f"{', '.join(RENDITION_BY_EXTENSION)}",
                             code="bad_rendition")
        fmt = RENDITION_BY_EXTENSION[ext]
    values = _split(options)
    if values.get("w") == "auto":
        extra = sorted(set(values) - {"w", "c", "q"})
        if extra:
            raise BadRequest(f"w_auto takes its width from the browser's client hints: it goes with c_ "
                             f"and q_ only, not {', '.join(extra)}", code="bad_rendition")
        return Request(normalise(width=AUTO_DEFAULT_WIDTH, quality=_quality(values), crop=values.get("c")),
                       fmt, auto=True)
    return Request(normalise(width=_side(values, "w"), height=_side(values, "h"),
                             fit=_fit(values), dpr=_dpr(values), quality=_quality(values),
                             upscale=_upscale(values), crop=values.get("c")), fmt)


#: ``w_auto`` without a usable hint: this width (the image object's ``<img src>`` fallback's).
AUTO_DEFAULT_WIDTH = 800
#: The client hints ``w_auto`` reads, as an answer's ``Vary`` names them.
HINTS = ("Sec-CH-Width", "Sec-CH-Viewport-Width", "Sec-CH-DPR")
#: A width hint: a positive whole number of any length. Five digits at most once made
#: ``Sec-CH-Width: 1000000000`` a malformed hint (the 800 px default) while 99999 got the
#: ladder's top (issue 62): a number, however large, is past the ladder.
_HINT_INT = re.compile(r"[1-9][0-9]*")
#: Digits past which a hint is past any ladder: it is read as this many digits' worth, never
#: handed whole to int() (which refuses a string of more than 4300 digits).
_HINT_DIGITS = 9
_HINT_DPR = re.compile(r"[0-9]{1,2}(?:\.[0-9]{1,3})?")


def auto_width(width: str | None, viewport: str | None, dpr: str | None,
               ladder: tuple[int, ...] = LADDER) -> int:
    """The ladder width ``w_auto`` serves: the smallest that covers what the hints ask for
    (``Sec-CH-Width``: the slot's width in device pixels; else ``Sec-CH-Viewport-Width`` times
    ``Sec-CH-DPR``: a full-width image's), the largest step when none does (however large the
    number), and :data:`AUTO_DEFAULT_WIDTH` when no hint is usable. A malformed hint counts as absent: a
    client's headers never make the request fail."""
    ratio = Fraction(1)
    if dpr is not None and _HINT_DPR.fullmatch(dpr.strip()):
        ratio = min(max(Fraction(dpr.strip()), Fraction(1, 10)), MAX_DPR)
    target: Fraction | None = None
    if (pixels := _hint_pixels(width)) is not None:
        target = Fraction(pixels)
    elif (pixels := _hint_pixels(viewport)) is not None:
        target = pixels * ratio
    if target is None:
        return AUTO_DEFAULT_WIDTH
    return next((step for step in ladder if step >= target), ladder[-1])


def _hint_pixels(hint: str | None) -> int | None:
    """A width hint's pixels (None: absent or malformed); one longer than :data:`_HINT_DIGITS`
    digits is held to the largest number of that many, already past any ladder."""
    if hint is None or not _HINT_INT.fullmatch(hint := hint.strip()):
        return None
    return int(hint) if len(hint) <= _HINT_DIGITS else 10 ** _HINT_DIGITS - 1


def _split(options: str) -> dict[str, str]:
    if not options or len(options) > 64:
        raise BadRequest("a rendition needs options such as w_800 (at most 64 characters)",
                         code="bad_rendition")
    values: dict[str, str] = {}
    for part in options.split(","):
        if part.startswith("c_"):  # a crop's name may hold "_" and "-"
            if CROP_NAME.fullmatch(part[2:]) is None:
                raise BadRequest(f"malformed crop name {part[2:]!r}: a lower-case letter, then up to 31 "
                                 "letters, digits, '_' or '-'", code="bad_rendition")
            if "c" in values:
                raise BadRequest("rendition option 'c' given twice", code="bad_rendition")
            values["c"] = part[2:]
            continue
        match = _OPTION.fullmatch(part)
        if match is None:
            raise BadRequest(f"malformed rendition option {part!r}: write key_value, e.g. w_800",
                             code="bad_rendition")
        name, value = match.groups()
        if name not in ("w", "h", "fit", "dpr", "q", "up"):
            raise BadRequest(f"unknown rendition option {name!r}: use c, w, h, fit, dpr, q or up",
                             code="bad_rendition")
        if name in values:
            raise BadRequest(f"rendition option {name!r} given twice", code="bad_rendition")
        values[name] = value
    return values


def _whole(values: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    value = values.get(name)
    if value is None:
        return None
    if _INT.fullmatch(value) is None or not low <= int(value) <= high:
        raise BadRequest(f"rendition option {name}_ must be a whole number from {low} to {high}, "
                         f"written plainly (got {value!r})", code="bad_rendition")
    return int(value)


def _side(values: Mapping[str, str], name: str) -> int | None:
    return _whole(values, name, 1, MAX_SIDE)


def _quality(values: Mapping[str, str]) -> int | None:
    return _whole(values, "q", 1, 100)


def _fit(values: Mapping[str, str]) -> str:
    fit = values.get("fit", "contain")
    if fit not in FITS:
        raise BadRequest(f"rendition fit must be one of {', '.join(FITS)} (got {fit!r})",
                         code="bad_rendition")
    return fit


def _dpr(values: Mapping[str, str]) -> Fraction:
    value = values.get("dpr")
    if value is None:
        return Fraction(1)
    match = _DPR.fullmatch(value)
    dpr = Fraction(value) if match else Fraction(0)
    if match is None or (match.group(2) or "").endswith("0") or not 1 <= dpr <= MAX_DPR:
        raise BadRequest(f"rendition option dpr_ must be from 1 to {MAX_DPR} with at most two "
                         f"decimals and no trailing zero, e.g. dpr_2 or dpr_1.5 (got {value!r})",
                         code="bad_rendition")
    return dpr


def _upscale(values: Mapping[str, str]) -> bool:
    value = values.get("up")
    if value is not None and value != "1":
        raise BadRequest("rendition option up_ takes only up_1 (allow upscaling)",
                         code="bad_rendition")
    return value == "1"


def normalise(width: int | None = None, height: int | None = None, fit: str = "contain",
              dpr: Fraction | int = 1, quality: int | None = None,
              upscale: bool = False, crop: str | None = None) -> Spec:
    """One :class:`Spec` for every spelling of the same rendition, checked against the limits."""
    if width is None and height is None and crop is None:
        raise BadRequest("a rendition needs a width (w_) or a height (h_)", code="bad_rendition")
    scaled = [None if side is None else round(side * Fraction(dpr)) for side in (width, height)]
    if any(side is not None and side > MAX_SIDE for side in scaled):
        raise BadRequest(f"a rendition side times dpr may be at most {MAX_SIDE} px",
                         code="bad_rendition")
    w, h = scaled
    if fit in ("cover", "crop") and (w is None or h is None):
        if fit == "crop":
            raise BadRequest("fit_crop cuts a box: give both w_ and h_", code="bad_rendition")
        fit = "contain"  # covering a one-sided box is fitting it
    if w is not None and h is not None and w * h > MAX_PIXELS:
        raise BadRequest(f"a rendition may have at most {MAX_PIXELS} pixels", code="bad_rendition")
    return Spec(w, h, fit, quality, upscale, crop)


@dataclass(frozen=True)
class AllowList:
    """The renditions served without a signature: widths on the ladder (any format, default
    quality, no upscaling) and named presets at 1x, 2x and 3x."""

    ladder: tuple[int, ...] = LADDER
    presets: Mapping[str, Spec] | None = None
    #: The opt-in formats this app renders (avenue/media/formats.py ``opt_ins``): any other
    #: opt-in format is refused by name and never negotiated.
    opt_in: frozenset[str] = frozenset()

    def allows(self, spec: Spec, crops: Collection[str] = ()) -> bool:
        """Whether ``spec`` is served unsigned for an image whose named crops are ``crops``: a
        ladder width (of the whole picture or of one of those crops: an image has at most 16,
        so the set stays bounded), or a preset at 1x-3x with whatever quality it carries
        (using the image's crop of the preset's name, when it has one). ``c_<name>`` is
        unsigned only for a crop the image has or the name of a preset: any other name would
        fall back to the focal point under a new stored key per name, an unbounded set."""
        presets = self.presets or {}
        if spec.crop is not None and spec.crop not in crops and spec.crop not in presets:
            return False
        # Presets first: a preset may carry its quality (q_80) or up_1, which the ladder may not.
        if any(spec in (_scaled(preset, dpr), replace(_scaled(preset, dpr), crop=name))
               for name, preset in presets.items() for dpr in (1, 2, 3)):
            return True
        if spec.quality is not None or spec.upscale:
            return False
        return spec.height is None and spec.width in self.ladder and spec.fit == "contain"

    def preset(self, name: str) -> Spec | None:
        return (self.presets or {}).get(name)


def clamp(spec: Spec, size: tuple[int, int] | None,
          crop: tuple[float, float, float, float] | None = None) -> Spec:
    """``spec`` under the one name its pixels have: a width alone (``contain``, no upscaling)
    wider than its source (the picture of ``size``, or its named crop's box ``crop``) renders
    the source at its own width, so it is that width (``w_1280`` .. ``w_2560`` of a 1000 px
    image are all ``w_1000``: one stored file, not four copies of one picture). Anything
    else, or an unknown size, is ``spec`` as it is."""
    if (size is None or spec.width is None or spec.height is not None or spec.fit != "contain"
            or spec.upscale):
        return spec
    own = size[0] if crop is None else _region(size, crop)[0]
    return replace(spec, width=own) if spec.width > own else spec


def at_own_width(spec: Spec, size: tuple[int, int] | None,
                 crop: tuple[float, float, float, float] | None = None) -> bool:
    """Whether ``spec`` is what :func:`clamp` makes of every wider width: its source at its own
    width (the rendition a CDN may also hold under those wider URLs)."""
    return spec.width is not None and clamp(replace(spec, width=MAX_SIDE), size, crop) == spec


def _region(size: tuple[int, int], crop: tuple[float, float, float, float]) -> tuple[int, int]:
    """The size in pixels of a crop's box (x, y, width, height in 0..1) on a source of ``size``,
    rounded as :func:`plan` cuts it."""
    src_w, src_h = size
    left, top = min(round(crop[0] * src_w), src_w - 1), min(round(crop[1] * src_h), src_h - 1)
    right = max(left + 1, min(src_w, round((crop[0] + crop[2]) * src_w)))
    bottom = max(top + 1, min(src_h, round((crop[1] + crop[3]) * src_h)))
    return right - left, bottom - top


def clamped_by(key: str, ladder: tuple[int, ...] = LADDER) -> list[str]:
    """The unsigned spellings :func:`clamp` folds into the stored ``key`` (``w_1000``: the
    ladder's ``w_1280`` .. ``w_2560``; ``c_hero,w_700``: the same under ``c_hero``): what a
    CDN may hold a rendition stored at its source's own width (:func:`at_own_width`) under,
    besides its own key."""
    crop, _, rest = key.rpartition(",") if key.startswith("c_") else ("", "", key)
    match = re.fullmatch(r"w_([0-9]+)", rest)
    if match is None:
        return []
    prefix = f"{crop}," if crop else ""
    return [f"{prefix}w_{step}" for step in ladder if step > int(match.group(1))]


def ladder_for(width: int, ladder: tuple[int, ...] = LADDER) -> list[tuple[int, int]]:
    """The ladder steps worth offering for an image ``width`` px wide, as (step, the width
    ``w_<step>`` renders): every step below ``width``, then the first step at or above it,
    which renders the image at its own width (never upscaled). So no two steps give the
    same width, none asks for more pixels than the image has, and the widest is the image at its
    own width (at the ladder's top, 2560, for a wider image)."""
    steps = [(step, step) for step in ladder if step < width]
    above = next((step for step in ladder if step >= width), None)
    if above is not None:
        steps.append((above, width))
    return steps


def _scaled(spec: Spec, dpr: int) -> Spec:
    return replace(spec, width=None if spec.width is None else spec.width * dpr,
                   height=None if spec.height is None else spec.height * dpr)


def parse_presets(text: str, reserved: Iterable[str] = ()) -> dict[str, Spec]:
    """``name=options;name=options`` (``AVENUE_RENDITION_PRESETS``) as named specs; a name
    must be a lowercase word not already taken by a fixed rendition."""
    presets: dict[str, Spec] = {}
    taken = set(reserved)
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        name, eq, options = entry.partition("=")
        if not eq or re.fullmatch(r"[a-z][a-z0-9]{0,23}", name) is None or name in taken:
            raise ValueError(f"rendition preset {entry!r}: write name=options with a new "
                             "lowercase name, e.g. hero=w_1920,h_800,fit_cover")
        try:
            request = parse(options)
        except BadRequest as refused:
            raise ValueError(f"rendition preset {name!r}: {refused.message}") from None
        if request.format:
            raise ValueError(f"rendition preset {name!r}: the format comes from the URL, not the preset")
        presets[name] = request.spec
        taken.add(name)
    return presets


@dataclass(frozen=True)
class Plan:
    """How to make a rendition from an upright ``source`` of a given size: cut ``box`` (left,
    top, width, height) out of it, then scale that to ``size``."""

    box: tuple[int, int, int, int]
    size: tuple[int, int]


def plan(spec: Spec, source: tuple[int, int], focal: tuple[float, float] = (0.5, 0.5),
         crop: tuple[float, float, float, float] | None = None) -> Plan:
    """The geometry of ``spec`` on a source of ``source`` pixels with its focal point at
    ``focal`` (0..1 of the upright image); ``crop``: the box (x, y, width, height in 0..1) of
    the image's crop that ``spec.crop`` names, None when it has none (the focal point then)."""
    src_w, src_h = source
    whole = (0, 0, src_w, src_h)
    if spec.crop is not None:
        rest = replace(spec, crop=None)
        if crop is None:  # no such crop: the focal point decides, as a cover of the box given
            if rest.width is not None and rest.height is not None and rest.fit == "contain":
                rest = replace(rest, fit="cover")
            return plan(rest, source, focal)
        left, top = min(round(crop[0] * src_w), src_w - 1), min(round(crop[1] * src_h), src_h - 1)
        region = _region(source, crop)
        inner = (min(max((focal[0] * src_w - left) / region[0], 0.0), 1.0),
                 min(max((focal[1] * src_h - top) / region[1], 0.0), 1.0))
        made = plan(rest, region, inner)
        return Plan((left + made.box[0], top + made.box[1], made.box[2], made.box[3]), made.size)
    if spec.width is None and spec.height is None:
        return Plan(whole, (src_w, src_h))  # a named crop's fallback with no box: the whole picture
    if spec.fit == "contain":
        scales = [Fraction(side, full) for side, full in ((spec.width, src_w), (spec.height, src_h))
                  if side is not None]
        scale = min(scales)
        if not spec.upscale:
            scale = min(scale, Fraction(1))
        return Plan(whole, (max(1, round(src_w * scale)), max(1, round(src_h * scale))))
    assert spec.width is not None and spec.height is not None  # normalise() guarantees both
    if spec.fit == "crop":
        box = _around(src_w, src_h, min(spec.width, src_w), min(spec.height, src_h), focal)
        return Plan(box, (box[2], box[3]))
    crop_w, crop_h = _largest(src_w, src_h, spec.width, spec.height)
    box = _around(src_w, src_h, crop_w, crop_h, focal)
    if spec.upscale or (crop_w >= spec.width and crop_h >= spec.height):
        return Plan(box, (spec.width, spec.height))
    return Plan(box, (crop_w, crop_h))  # smaller than asked, never upscaled, same aspect


def _largest(src_w: int, src_h: int, width: int, height: int) -> tuple[int, int]:
    """The largest box of ``width:height``'s aspect ratio inside the source."""
    if src_w * height > src_h * width:  # the source is wider than the target
        return max(1, min(src_w, round(src_h * width / height))), src_h
    return src_w, max(1, min(src_h, round(src_w * height / width)))


def _around(src_w: int, src_h: int, crop_w: int, crop_h: int,
            focal: tuple[float, float]) -> tuple[int, int, int, int]:
    """A ``crop_w`` x ``crop_h`` box centred on the focal point as far as the edges allow."""
    left = min(max(round(focal[0] * src_w - crop_w / 2), 0), src_w - crop_w)
    top = min(max(round(focal[1] * src_h - crop_h / 2), 0), src_h - crop_h)
    return left, top, crop_w, crop_h
