"""What makes two images near-duplicates: a perceptual hash (and colour shares), a palette for colour.

Computed once per original at upload, like the placeholder, from its WebP ``thumb`` (at most
200 px, already rendered: no second decode of the original; the thumb's pixels are decoded
once for both, ``pipeline.thumb_pixels``, about half a millisecond whatever the original's
size).

**pHash.** The 64-bit DCT hash of ``imagehash.phash`` (the same steps: greyscale, 32x32
Lanczos, 2-D DCT-II, the 8x8 lowest frequencies against their median), written here with
Pillow and plain Python because ``imagehash`` needs numpy, scipy and PyWavelets at run time
(about 220 MB installed, for one 32x32 transform) and its pHash calls ``scipy.fftpack``; the
8 rows of the DCT that are kept cost about 10,000 multiplications, under a millisecond
(``tests/media/ingest/test_near_hash.py`` checks the bits against ``imagehash`` itself, a test-only
dependency). dHash was measured too and rejected (docs/performance.md, "Measurements behind
the code").

**Bands** (the index). The hash is cut into its four 4x4 quadrants of DCT coefficients, 16
bits each; the low-frequency quadrant changes least under re-encoding, resizing and crops.
Each band is stored as ``band << 16 | value`` in one array (``metadata.phash_bands``, a
multikey index), and a lookup asks for every value within one bit of the image's own in each
band (4 x 17 = 68 index keys): by the pigeonhole principle every hash within a distance of 7
shares a band within one bit; the recall at :data:`NEAR` (12) is in
bench/results/near-duplicates-2026-11-24.md.

**Palette.** Up to :data:`PALETTE` colours (median cut over the 32 px sample, the
placeholder's method) with their share of the opaque pixels. Each colour covering at least
:data:`MOSTLY` of the picture is also stored as a cell of a coarse CIELAB grid
(``metadata.colour_cells``, multikey): "mostly close to #rrggbb" asks for the target's cell
and its 26 neighbours, one index bound per cell.

**Colour shares** (what a near-duplicate must agree on besides the hash). The hash sees only
the grey picture, so a product shot in red, blue and green is one hash. Every colour of the
32 px sample drawn over white is put in a finer CIELAB cell (:data:`TONE_L_STEP` L by
:data:`TONE_AB_STEP` a and b units), and each cell holding at least :data:`SHARE_FLOOR` of the
sample is stored as ``cell << 10 | share in thousandths`` (``metadata.colour_shares``, not
indexed: read only for the few candidates already within :data:`NEAR` bits). Two pictures
agree in colour (:func:`same_colours`) when every cell covering :data:`COLOUR_MATTERS` of
either has at least :data:`COLOUR_KEPT` of its share in the same cell or a neighbouring one in
the other. Why this and not the palette: the median cut splits the largest population, so a
product on a pale backdrop gets four near-identical whites and one muddy mix of the product,
the table and its shadow (a red mug: ``#c58e86``), and an adaptive quantizer's colours (8,
maximum coverage) moved by a median 37 ΔE between two saves of one generated scene; and not
the layout of mean colours (a 4 x 4 grid): re-saves moved a cell by up to 26 ΔE, and a product
covering 2 % of the picture in another hue by 17-26. Counted in fixed cells, a colour keeps its share through
re-encoding, resizing and cropping: over 263 such copies (bench/near_colour.py) the least kept
was 0.65 of a colour's share, a hue-rotated product 0.0. Measured figures: docs/media.md.

Bytes in, a :class:`NearHash` out; no Flask, no database.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from operator import mul
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from avenue.errors import UnsupportedImage
from avenue.media.ingest import decoders

SIDE = 32  # px: the DCT's input, as imagehash.phash
LOW = 8  # the LOW x LOW lowest frequencies make the 64 bits
BAND_BITS = 16
NEAR = 12  # the largest Hamming distance called a near-duplicate (chosen by the recall measurement)
PROBE_RADIUS = 1  # a lookup by a hash alone asks for every band value within this many bits
WEAK_FLIPS = 6  # with the hash's order: each band's 6 least certain bits flipped one at a time
WEAK_PAIRS = 4  # ... and every two of its 4 least certain bits (4 x (1 + 6 + 6) = 52 keys)
SAMPLE = 32  # px of the palette's sample (the placeholder's)
PALETTE = 5
MOSTLY = 0.25  # the share at which a colour counts for the colour filter
OPAQUE = 128
# CIELAB grid: L in steps of 20 (0..100), a and b in steps of 24 (-128..127).
L_STEP = 20.0
AB_STEP = 24.0
# The colour shares' finer grid: colours within one step of each axis are one colour to a
# look-alike (a re-save moves them 1-3 ΔE; red and a darker red 20 ΔE apart: one step on each
# axis, the same colour; red and orange 37 ΔE apart: three steps of a, another).
TONE_L_STEP = 10.0
TONE_AB_STEP = 12.0
SHARE_BITS = 10  # a stored colour share: cell << SHARE_BITS | thousandths
SHARE_FLOOR = 0.005  # the least share of the sample a stored cell holds (a photo keeps 30-90 cells)
COLOUR_MATTERS = 0.03  # a colour covering this share of either picture must be in the other ...
COLOUR_KEPT = 0.5  # ... with at least this part of its share, within one step (measured: 0.65 and 0.0)

# DCT-II basis rows for the LOW lowest frequencies over SIDE samples (scipy's unnormalised
# type-II DCT, as imagehash uses, up to a constant factor that no comparison sees).
_BASIS = [[math.cos(math.pi * (2 * x + 1) * u / (2 * SIDE)) for x in range(SIDE)] for u in range(LOW)]


@dataclass(frozen=True)
class Colour:
    """One palette entry: ``#rrggbb`` and its share of the picture (0..1)."""

    hex: str
    share: float


@dataclass(frozen=True)
class NearHash:
    """An image's perceptual hash and palette: what near-duplicates are found by (the hash, its
    bands and colour shares), with the colours the colour filter reads and the exact-duplicate
    key, all from the one decoded thumb. Called "likeness" until issue 63 gave the feature one
    name."""

    phash: int
    palette: tuple[Colour, ...]
    order: str = ""  # each band's bits, least certain first (:func:`phash_order`); "" unknown
    pixels: str = ""  # :func:`pixels_sha256` of the same picture; "" unknown
    shares: tuple[int, ...] = ()  # :func:`colour_shares` of the same picture; () unknown

    def as_metadata(self) -> dict[str, Any]:
        """What the original's files document keeps: the hash as 16 hex digits (BSON has no
        unsigned 64-bit integer), its bands and their bits' order, the palette and its colour
        cells, and the colour shares a look-alike must agree on."""
        return {
            "phash": f"{self.phash:016x}",
            "phash_bands": bands(self.phash),
            "phash_order": self.order,
            "palette": [{"color": c.hex, "share": round(c.share, 3)} for c in self.palette],
            "colour_cells": sorted({cell(c.hex) for c in self.palette if c.share >= MOSTLY}),
            **({"pixels_sha256": self.pixels} if self.pixels else {}),
            **({"colour_shares": list(self.shares)} if self.shares else {}),
        }


def pixels_sha256(image: Image.Image) -> str:
    """The exact-duplicate key of a decoded picture: SHA-256 of its size and its RGBA pixels.
    Computed on the WebP thumb (at most 200 px, rendered the same way from the same pixels),
    so two files that decode to the same pixels (a re-save with other metadata) share it; a
    picture differing in a detail the thumb cannot show shares it too (docs/media.md)."""
    frame = image.convert("RGBA")
    digest = sha256(f"{frame.width}x{frame.height}:".encode())
    digest.update(frame.tobytes())
    return digest.hexdigest()


def full_pixels_sha256(data: bytes, hold: Callable[[int, int], Any], disabled: frozenset[str]) -> str | None:
    """The exact-duplicate key at full resolution: :func:`pixels_sha256` of the upright first
    frame of the stored original ``data`` (the thumb's key only finds the candidates: two
    pictures that differ in a detail the 200 px thumb cannot show share it). ``hold(decoding,
    working)`` reserves the decoded frame and its two copies in the decode budget (as a
    decode does: over the budget it runs alone) and gives back what ``.release()`` frees. None when
    the bytes do not decode as a raster (an SVG: its bytes are its key, store/exact.py).
    ``disabled``: the formats turned off, whose bytes are refused unread (415
    ``format_disabled``, ``decoders.open_image``): the key is unknown for now, not "none"."""
    try:
        with decoders.open_image(data, disabled) as im:
            width, height = im.size
            held = hold(width * height * 4, width * height * 8)  # the frame; its upright and RGBA copies
            try:
                return pixels_sha256(ImageOps.exif_transpose(im))
            finally:
                held.release()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def phash(image: Image.Image) -> int:
    """The 64-bit DCT hash of ``image`` (``imagehash.phash``'s bits, first bit highest)."""
    return phash_order(image)[0]


def phash_order(image: Image.Image) -> tuple[int, str]:
    """The hash of ``image`` and, for each of its four bands, the band's 16 bit positions
    from the least certain (its DCT coefficient nearest the median) to the most, one hex digit
    each: 64 hex digits. A copy of the picture flips the least certain bits first."""
    grey = image.convert("L").resize((SIDE, SIDE), Image.Resampling.LANCZOS)
    pixels = grey.tobytes()
    rows = [pixels[y * SIDE:(y + 1) * SIDE] for y in range(SIDE)]
    # Along each row first (only the LOW frequencies kept), then down the columns. sum(map(mul))
    # multiplies in C: the same products in the same order as a generator, three times faster.
    across = [[sum(map(mul, basis, row)) for basis in _BASIS] for row in rows]
    columns = [[across[y][v] for y in range(SIDE)] for v in range(LOW)]
    coefficients = [sum(map(mul, _BASIS[u], columns[v])) for u in range(LOW) for v in range(LOW)]
    ordered = sorted(coefficients)
    median = (ordered[31] + ordered[32]) / 2
    value = 0
    for coefficient in coefficients:
        value = (value << 1) | (coefficient > median)
    certainty = [abs(coefficient - median) for coefficient in coefficients]
    order = "".join(f"{k:x}" for positions in _BAND_POSITIONS
                    for k in _least_certain_first(positions, certainty))
    return value, order


def _least_certain_first(positions: list[int], certainty: list[float]) -> list[int]:
    """A band's bits (0: its highest) by their coefficient's distance from the median."""
    return sorted(range(BAND_BITS), key=lambda k: (certainty[positions[k]], k))


def distance(a: int, b: int) -> int:
    """The Hamming distance of two hashes."""
    return (a ^ b).bit_count()


# The 64 coefficients' positions (u * LOW + v) of each band: the four 4x4 quadrants, low
# frequencies first; a band's first position is its highest bit.
_BAND_POSITIONS = [[u * LOW + v for u in range(top, top + 4) for v in range(left, left + 4)]
                   for top in (0, 4) for left in (0, 4)]


def _quadrants(value: int) -> list[int]:
    """The four 4x4 quadrants of the 8x8 coefficients, 16 bits each (low frequencies first)."""
    out = []
    for positions in _BAND_POSITIONS:
        band = 0
        for position in positions:
            band = (band << 1) | ((value >> (63 - position)) & 1)
        out.append(band)
    return out


def bands(value: int) -> list[int]:
    """The hash's bands as stored: ``band << 16 | bits``, one per quadrant."""
    return [index << BAND_BITS | band for index, band in enumerate(_quadrants(value))]


def probes(value: int, order: str = "") -> list[int]:
    """Every stored band value a lookup for ``value`` asks the index for.

    With the hash's ``order`` (:func:`phash_order`, what an upload computes and stores): in
    each band its own value, those with one of its :data:`WEAK_FLIPS` least certain bits
    flipped, and those with two of its :data:`WEAK_PAIRS` least certain flipped: 52 keys.
    Without (a hash stored before the order was): each band's own and those one bit away, 68.

    Why: a copy's bits flip where the coefficient was near the median, so the least certain
    bits find more copies with fewer keys (bench/results/near-duplicates-2026-11-24.md)."""
    keys = []
    for index, band in enumerate(_quadrants(value)):
        tag = index << BAND_BITS
        keys.append(tag | band)
        if len(order) != 4 * BAND_BITS:
            keys.extend(tag | (band ^ (1 << bit)) for bit in range(BAND_BITS))
            continue
        # Positions in the band (0: its highest bit), least certain first.
        weak = [int(digit, 16) for digit in order[index * BAND_BITS:(index + 1) * BAND_BITS]]
        masks = [1 << (BAND_BITS - 1 - k) for k in weak]
        keys.extend(tag | (band ^ mask) for mask in masks[:WEAK_FLIPS])
        keys.extend(tag | (band ^ masks[a] ^ masks[b])
                    for a in range(WEAK_PAIRS) for b in range(a + 1, WEAK_PAIRS))
    return keys


def parse_colour(text: str | None) -> str | None:
    """``#rrggbb`` (or ``rrggbb``, any case) as lower-case ``#rrggbb``; None when it is not one."""
    value = (text or "").strip().lstrip("#").lower()
    if len(value) != 6 or any(ch not in "0123456789abcdef" for ch in value):
        return None
    return f"#{value}"


def parse_hash(text: str) -> int:
    """A stored hash (16 hex digits) as an integer."""
    return int(text, 16)


def _srgb_to_lab(red: int, green: int, blue: int) -> tuple[float, float, float]:
    """CIELAB (D65) of an sRGB colour."""
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = linear(red), linear(green), linear(blue)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    fx, fy, fz = f(x), f(y), f(z)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def lab(hex_colour: str) -> tuple[float, float, float]:
    """CIELAB of ``#rrggbb``."""
    value = int(hex_colour.lstrip("#"), 16)
    return _srgb_to_lab(value >> 16, (value >> 8) & 0xFF, value & 0xFF)


def _grid(hex_colour: str) -> tuple[int, int, int]:
    light, a, b = lab(hex_colour)
    return (min(4, max(0, int(light // L_STEP))), min(10, max(0, int((a + 128) // AB_STEP))),
            min(10, max(0, int((b + 128) // AB_STEP))))


def _cell_id(light: int, a: int, b: int) -> int:
    return light * 256 + a * 16 + b


def cell(hex_colour: str) -> int:
    """The CIELAB grid cell of ``#rrggbb``."""
    return _cell_id(*_grid(hex_colour))


def cells_near(hex_colour: str) -> list[int]:
    """The cell of ``#rrggbb`` and its neighbours: what "mostly close to" asks the index for."""
    light, a, b = _grid(hex_colour)
    return sorted({_cell_id(max(0, min(4, light + dl)), max(0, min(10, a + da)), max(0, min(10, b + db)))
                   for dl in (-1, 0, 1) for da in (-1, 0, 1) for db in (-1, 0, 1)})


def colour_distance(first: str, second: str) -> float:
    """CIE76 ΔE between two ``#rrggbb`` colours."""
    return math.dist(lab(first), lab(second))


def _tone(red: int, green: int, blue: int) -> tuple[int, int, int]:
    """The colour shares' cell of an sRGB colour: L, a and b steps from 0."""
    light, a, b = _srgb_to_lab(red, green, blue)
    return (min(10, max(0, int(light // TONE_L_STEP))), min(21, max(0, int((a + 128) // TONE_AB_STEP))),
            min(21, max(0, int((b + 128) // TONE_AB_STEP))))


def colour_shares(sample: Image.Image) -> tuple[int, ...]:
    """Each colour cell holding at least :data:`SHARE_FLOOR` of ``sample`` (the palette's 32 px
    sample, drawn over white as the hash sees it) as ``cell << 10 | thousandths``, ascending."""
    rgb = sample.convert("RGB")
    total = rgb.width * rgb.height
    counts: dict[tuple[int, int, int], int] = {}
    # At most 1,024 distinct colours (a photo has about 700): one CIELAB conversion each.
    for count, colour in rgb.getcolors(total) or []:
        red, green, blue = colour  # type: ignore[misc]  # an RGB image's colours are triples
        tone = _tone(red, green, blue)
        counts[tone] = counts.get(tone, 0) + count
    return tuple(sorted(((light << 10 | a << 5 | b) << SHARE_BITS) | round(1000 * n / total)
                        for (light, a, b), n in counts.items() if n >= SHARE_FLOOR * total))


def _unpacked(shares: Shares) -> dict[tuple[int, int, int], float]:
    cells: dict[tuple[int, int, int], float] = {}
    for packed in shares:
        key = packed >> SHARE_BITS
        cells[(key >> 10, (key >> 5) & 31, key & 31)] = (packed & ((1 << SHARE_BITS) - 1)) / 1000
    return cells


def _kept(mine: dict[tuple[int, int, int], float], theirs: dict[tuple[int, int, int], float]) -> bool:
    for (light, a, b), share in mine.items():
        if share < COLOUR_MATTERS:
            continue
        around = sum(theirs.get((light + dl, a + da, b + db), 0.0)
                     for dl in (-1, 0, 1) for da in (-1, 0, 1) for db in (-1, 0, 1))
        if around < COLOUR_KEPT * share:
            return False
    return True


Shares = list[int] | tuple[int, ...]


def same_colours(first: Shares | None, second: Shares | None) -> bool:
    """Whether two pictures' stored :func:`colour_shares` agree (the module docstring): every
    colour covering :data:`COLOUR_MATTERS` of either keeps :data:`COLOUR_KEPT` of its share within
    one step in the other. True when either is unknown (stored before the shares were: the hash
    decides alone until ``flask near-duplicates`` gives them)."""
    if not first or not second:
        return True
    mine, theirs = _unpacked(first), _unpacked(second)
    return _kept(mine, theirs) and _kept(theirs, mine)


def _palette(frame: Image.Image) -> tuple[Colour, ...]:
    """Up to :data:`PALETTE` median-cut colours of the opaque pixels, with their shares,
    largest first."""
    rgb = frame.convert("RGB")
    quantized = rgb.quantize(colors=PALETTE, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    indices = quantized.tobytes()
    weights = frame.getchannel("A").tobytes()
    counts: dict[int, int] = {}
    for index, weight in zip(indices, weights, strict=True):
        if weight >= OPAQUE:
            counts[index] = counts.get(index, 0) + 1
    total = sum(counts.values())
    if not total:
        return ()
    colours = quantized.getpalette() or []
    ranked = sorted(counts, key=lambda index: (-counts[index], index))
    return tuple(Colour("#{:02x}{:02x}{:02x}".format(*colours[i * 3:i * 3 + 3]), counts[i] / total)
                 for i in ranked)


def of_image(image: Image.Image) -> NearHash:
    """The hash, palette and colour shares of a decoded picture (its first frame)."""
    frame = image.convert("RGBA")
    # The hash sees the picture as drawn over a white page (transparent pixels have any RGB).
    over_white = Image.alpha_composite(Image.new("RGBA", frame.size, (255, 255, 255, 255)), frame)
    sample = frame.copy()
    sample.thumbnail((SAMPLE, SAMPLE), Image.Resampling.BOX)
    value, order = phash_order(over_white)
    white = Image.new("RGBA", sample.size, (255, 255, 255, 255))
    shares = colour_shares(Image.alpha_composite(white, sample))
    return NearHash(value, _palette(sample), order, pixels_sha256(frame), shares)


def compute(thumb: bytes, disabled: frozenset[str]) -> NearHash | None:
    """The near-duplicate hash of an image whose ``thumb`` rendition is ``thumb`` (None when those bytes
    cannot be read, or are of a format in ``disabled``: a hash is never a reason to refuse an upload)."""
    try:
        with decoders.open_image(thumb, disabled) as im:
            im.load()
            return of_image(im)
    except (UnidentifiedImageError, UnsupportedImage, OSError, ValueError):
        return None
