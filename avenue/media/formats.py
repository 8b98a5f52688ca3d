"""The image formats: one declaration each, read by everything that needs a format's facts.

Validation (which uploads are accepted, and the message that lists them), the stored originals,
the eager variants, the renditions on request, content types, URL extensions, the encoders'
settings and the OpenAPI document all derive their tables from :data:`FORMATS` below, so a
format is added by one entry here (plus, for a new encoder, its settings function). imgproxy
keeps its formats the same way (``imagetype/defs.go``: name, extension, MIME, alpha, animation).

The kernel of the media package: it imports nothing of Avenue's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Pillow's save options for a format: ``(quality or None for the default, progressive)``.
SaveOptions = Callable[[int | None, bool], dict[str, Any]]


def _jpeg(quality: int | None, progressive: bool) -> dict[str, Any]:
    return {"quality": quality or 85, "optimize": True, "progressive": progressive}


def _webp(quality: int | None, progressive: bool) -> dict[str, Any]:
    return {"quality": quality or 82, "method": 4}


#: AVIF's encoder speed: bench/results/avif-2026-11-24.md (q64 at speed 6 matched WebP q82's
#: score on real photos at 0.75x its bytes by SSIMULACRA2; speed 8 gave up most of that gain).
AVIF_SPEED = 6


def _avif(quality: int | None, progressive: bool) -> dict[str, Any]:
    return {"quality": quality or 64, "speed": AVIF_SPEED}


def _png(quality: int | None, progressive: bool) -> dict[str, Any]:
    # Level 3: within 10 % of level 6 in size at a third of the time (a fallback few need).
    return {"compress_level": 3}


#: JPEG XL's encoder effort and default quality (libjxl's scale, imagecodecs' ``level``):
#: bench/results/jpegxl-2026-11-25.md.
JPEG_XL_EFFORT = 3
JPEG_XL_QUALITY = 80


def _jpegxl(quality: int | None, progressive: bool) -> dict[str, Any]:
    return {"level": quality or JPEG_XL_QUALITY, "effort": JPEG_XL_EFFORT}


@dataclass(frozen=True)
class Format:
    """One image format's facts.

    ``name``: how the database and the code name it (``metadata.format``, variant keys);
    ``extension``: its URL suffix, ``aliases`` other suffixes a URL may use for it;
    ``pillow``: Pillow's name for it (what ``Image.format`` says and ``save`` takes), and
    ``pillow_aliases`` other names Pillow identifies it by; ``label``: how messages name it.
    ``original``: accepted as an upload; ``stored``: kept as an original in this format (HEIC
    is accepted but stored as JPEG); ``variant``: an eager variant may be encoded to it;
    ``rendition``: a rendition on request may be. ``engine``: what encodes it (``pillow``, or
    ``libjxl`` through imagecodecs: Pillow has no JPEG XL); ``save``: that engine's settings
    (None: the house never encodes it). ``quality``: its default lossy quality (None:
    lossless). ``opt_in``: the setting that turns it on (empty: always on); a format that is
    off is refused by name in a URL and never negotiated. ``vector``: a document, not pixels
    (SVG): sniffed, sanitised and rasterised by avenue/media/ingest/svg.py instead of Pillow,
    accepted only where the upload's limits say so (``Limits.vector``: the builder's library).
    """

    name: str
    extension: str
    mime: str
    pillow: str
    label: str
    alpha: bool
    animation: bool
    original: bool
    stored: bool
    variant: bool
    rendition: bool
    save: SaveOptions | None = None
    quality: int | None = None
    aliases: tuple[str, ...] = ()
    pillow_aliases: tuple[str, ...] = ()
    engine: str = "pillow"
    opt_in: str = ""
    vector: bool = False


FORMATS: tuple[Format, ...] = (
    # iPhone JPEGs with a depth or gain map are identified by Pillow as MPO.
    Format("jpeg", "jpg", "image/jpeg", "JPEG", "JPEG", alpha=False, animation=False, original=True,
           stored=True, variant=True, rendition=True, save=_jpeg, quality=85, aliases=("jpeg",),
           pillow_aliases=("MPO",)),
    Format("png", "png", "image/png", "PNG", "PNG", alpha=True, animation=False, original=True,
           stored=True, variant=True, rendition=True, save=_png),
    Format("webp", "webp", "image/webp", "WEBP", "WebP", alpha=True, animation=True, original=True,
           stored=True, variant=True, rendition=True, save=_webp, quality=82),
    Format("gif", "gif", "image/gif", "GIF", "GIF", alpha=True, animation=True, original=True,
           stored=True, variant=False, rendition=False),
    Format("avif", "avif", "image/avif", "AVIF", "AVIF", alpha=True, animation=False, original=True,
           stored=True, variant=False, rendition=True, save=_avif, quality=64),
    Format("heic", "heic", "image/heic", "HEIF", "HEIC", alpha=True, animation=False, original=True,
           stored=False, variant=False, rendition=False, aliases=("heif",)),
    # Safari shows it; Chromium and Firefox do not by default: off unless a shop turns it on.
    Format("jxl", "jxl", "image/jxl", "", "JPEG XL", alpha=True, animation=False, original=False,
           stored=False, variant=False, rendition=True, save=_jpegxl, quality=JPEG_XL_QUALITY,
           engine="libjxl", opt_in="AVENUE_JPEG_XL"),
    # Logos and icons for the builder's library only: stored sanitised, every variant and
    # rendition rasterised from it (never encoded to SVG).
    Format("svg", "svg", "image/svg+xml", "", "SVG", alpha=True, animation=False, original=True,
           stored=True, variant=False, rendition=False, engine="librsvg", vector=True),
)

BY_NAME: Mapping[str, Format] = {fmt.name: fmt for fmt in FORMATS}

#: Stored format -> URL extension (originals, variants and renditions are served under it).
EXTENSIONS: Mapping[str, str] = {fmt.name: fmt.extension for fmt in FORMATS if fmt.stored}
#: Every format -> its URL extension (a rendition's too: JPEG XL is no stored format).
EXTENSION_OF: Mapping[str, str] = {fmt.name: fmt.extension for fmt in FORMATS}
#: The formats an original is stored in (an edited image's unedited source among them).
STORED_FORMATS: tuple[str, ...] = tuple(EXTENSIONS)
#: Pillow's name (and aliases) -> content type, of every accepted raster upload format.
ACCEPTED: Mapping[str, str] = {name: fmt.mime for fmt in FORMATS if fmt.original and not fmt.vector
                               for name in (fmt.pillow, *fmt.pillow_aliases)}
#: The accepted raster formats as messages name them (every upload route takes these).
ACCEPTED_LABEL = ", ".join(fmt.label for fmt in FORMATS if fmt.original and not fmt.vector)
#: The accepted vector format (SVG), taken only where an upload's limits allow it.
VECTOR: Format = next(fmt for fmt in FORMATS if fmt.vector)
#: The file name extensions of every accepted upload format (a zip import's entries are told
#: apart by them: avenue/bulk/archive.py), with their dots.
UPLOAD_EXTENSIONS: frozenset[str] = frozenset(f".{ext}" for fmt in FORMATS if fmt.original
                                               for ext in (fmt.extension, *fmt.aliases))
#: Every accepted format as messages name them where vectors are taken too.
ACCEPTED_WITH_VECTOR_LABEL = ", ".join(fmt.label for fmt in FORMATS if fmt.original)
#: Eager variants' formats -> content type.
VARIANT_TYPES: Mapping[str, str] = {fmt.name: fmt.mime for fmt in FORMATS if fmt.variant}
#: A variant's URL extension (or alias) -> its format.
VARIANT_BY_EXTENSION: Mapping[str, str] = {ext: fmt.name for fmt in FORMATS if fmt.variant
                                           for ext in (fmt.extension, *fmt.aliases)}
#: Renditions' formats -> content type.
RENDITION_TYPES: Mapping[str, str] = {fmt.name: fmt.mime for fmt in FORMATS if fmt.rendition}
#: A rendition's URL extension -> its format (one spelling each: a rendition's key is canonical).
RENDITION_BY_EXTENSION: Mapping[str, str] = {fmt.extension: fmt.name for fmt in FORMATS if fmt.rendition}
#: What a ``<picture>`` offers before its fallback, best first (browsers that say they show them).
OFFERED: tuple[str, ...] = ("avif", "webp")
#: What a rendition whose URL names no format is answered in, best first, the first the client
#: takes (its Accept names the type; ``*/*`` is sent by browsers that show none of these), an
#: opt-in one only when it is on; else the fallback. By bytes at the same SSIMULACRA2 on real
#: photos (bench/results/jpegxl-2026-11-25.md: AVIF about 0.75x WebP's, JPEG XL about 0.86x).
NEGOTIATED: tuple[str, ...] = ("avif", "jxl", "webp")
#: What a browser that shows none of them gets: JPEG, or PNG for an image with transparency.
FALLBACKS: tuple[str, ...] = ("jpeg", "png")
#: Each encoded format's default quality.
QUALITY: Mapping[str, int] = {fmt.name: fmt.quality for fmt in FORMATS if fmt.quality is not None}


def fallback(transparent: bool) -> str:
    """The format shown to browsers that take none of :data:`OFFERED`: PNG for an image with
    transparency (JPEG has no alpha), else JPEG."""
    return FALLBACKS[1] if transparent else FALLBACKS[0]


def opt_ins(config: Mapping[str, Any]) -> frozenset[str]:
    """The opt-in formats ``config`` turns on."""
    return frozenset(fmt.name for fmt in FORMATS if fmt.opt_in and config.get(fmt.opt_in))


#: The setting that turns upload formats off: a decoder with a known hole is out of reach the
#: day its CVE is published, before its fix ships (docs/security.md, "Turning a format off").
DISABLED_SETTING = "AVENUE_DISABLED_FORMATS"
#: The formats that setting may name: every accepted upload format, by its name or a URL suffix.
DISABLEABLE: Mapping[str, str] = {spelling: fmt.name for fmt in FORMATS if fmt.original
                                  for spelling in (fmt.name, fmt.extension, *fmt.aliases)}


def disabled(value: str | Iterable[str] | None) -> frozenset[str]:
    """The upload formats :data:`DISABLED_SETTING`'s ``value`` turns off (a comma-separated
    text or a list, names or URL suffixes, any case), by name; ValueError naming a word that
    is no upload format."""
    words = value.split(",") if isinstance(value, str) else list(value or ())
    names = [word.strip().lower() for word in words if word.strip()]
    unknown = [name for name in names if name not in DISABLEABLE]
    if unknown:
        raise ValueError(f"{DISABLED_SETTING} names no upload format {', '.join(map(repr, unknown))}: "
                         f"name some of {', '.join(fmt.name for fmt in FORMATS if fmt.original)}")
    return frozenset(DISABLEABLE[name] for name in names)


# ISO-BMFF brands (the ``ftyp`` box) of AVIF and of HEIC/HEIF with HEVC pictures; ``mif1`` and
# ``msf1`` name the container alone, so the compatible brands after them decide.
_BRANDS = {b"avif": "avif", b"avis": "avif",
           **dict.fromkeys((b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"), "heic")}


def sniff(data: bytes) -> Format | None:
    """The raster upload format ``data`` is by its leading bytes alone (its signature; an
    ISO-BMFF file's ``ftyp`` brands), read before any decoder sees it; None for anything else
    (an SVG is told by ``ingest/svg.py``'s own sniff)."""
    if data.startswith(b"\xff\xd8\xff"):
        return BY_NAME["jpeg"]
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return BY_NAME["png"]
    if data.startswith((b"GIF87a", b"GIF89a")):
        return BY_NAME["gif"]
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return BY_NAME["webp"]
    if data[4:8] != b"ftyp":
        return None
    end = min(int.from_bytes(data[:4], "big"), len(data), 4096)
    # The major brand, then the compatible ones (after the 4-byte minor version).
    brands = [data[8:12], *(data[at:at + 4] for at in range(16, end - 3, 4))]
    name = next((_BRANDS[brand] for brand in brands if brand in _BRANDS), None)
    return BY_NAME[name] if name else None


#: Renditions on request are baseline JPEGs (Huffman-optimised), the fixed variants progressive:
#: the same pixels (checked), a few % more bytes at under half the encode time
#: (bench/results/jpeg-progressive-2026-11-26.md).
RENDITION_PROGRESSIVE = False


def recipe(name: str, quality: int | None = None, progressive: bool = True) -> str:
    """A short fingerprint of how ``name`` is encoded at ``quality`` (None: its default): the
    engine and every option it is given. Stored with each variant and rendition, so a change
    of a default quality or of an encoder setting finds what was made before it (``rerender``)."""
    fmt, options = save_options(name, quality, progressive)
    described = json.dumps({"format": fmt.name, "engine": fmt.engine, "options": options}, sort_keys=True,
                           default=str)
    return hashlib.sha256(described.encode()).hexdigest()[:12]


def save_options(name: str, quality: int | None = None,
                 progressive: bool = True) -> tuple[Format, dict[str, Any]]:
    """The format ``name`` and its engine's options for encoding it; ValueError when the house
    does not encode it."""
    fmt = BY_NAME.get(name)
    if fmt is None or fmt.save is None:
        encoded = ", ".join(each.name for each in FORMATS if each.save)
        raise ValueError(f"cannot encode {name!r}: one of {encoded}")
    return fmt, fmt.save(quality, progressive)
