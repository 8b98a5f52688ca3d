"""Validate uploaded bytes as an image and produce the bytes that will be served.

Pure domain code: bytes in, results out; no Flask, no database.

How served originals stay private and upright:
we *strip metadata segments* rather than re-encode. JPEG, PNG, WebP and GIF originals keep
their compressed pixel data bit for bit (no generation loss, no decode at full size, so a
12 MP upload stays fast). What is kept is an allow-list per format (what displays the
image: pixels, palette, transparency, colour and ICC, animation); EXIF, XMP, IPTC, comments,
text, thumbnails and every private or unknown chunk are dropped. A JPEG whose EXIF says it
is rotated keeps a fresh EXIF block holding only the Orientation tag, which every current
browser applies (CSS ``image-orientation: from-image`` is the default), so it displays
upright with no GPS, camera or serial data.
Formats whose metadata we cannot strip losslessly are re-encoded: HEIC becomes JPEG
(browsers other than Safari cannot show HEIC at all), and an AVIF carrying anything but
image items (Exif, XMP, unknown boxes), or a PNG/WebP whose EXIF rotates it, is re-encoded
upright. Variants are always re-encoded
upright from pixels, so they carry no metadata but the ICC profile.

Which library decodes what: Pillow reads every header here (classification, limits,
orientation, ICC, the decode budget); RGB and greyscale JPEG photos are then decoded by
libvips with shrink-on-load, everything else by Pillow (avenue/media/ingest/vips.py says why).
"""

from __future__ import annotations

import io
import math
import struct
import unicodedata
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from hashlib import sha256
from typing import Any, BinaryIO

from PIL import Image, ImageFile, UnidentifiedImageError

from avenue.config import DEFAULTS
from avenue.errors import CorruptImage, EmptyFile, ImageTooLarge, ServerBusy, UnsupportedImage
from avenue.media.formats import (
    ACCEPTED,
    ACCEPTED_LABEL,
    ACCEPTED_WITH_VECTOR_LABEL,
    DISABLED_SETTING,
    FORMATS,
    VECTOR,
    disabled,
)
from avenue.media.ingest import decoders, svg, vips
from avenue.media.ingest.decode_budget import Reservation, decode_budget
from avenue.media.ingest.engine import LIBVIPS, PILLOW, Pixels

ImageFile.LOAD_TRUNCATED_IMAGES = False

# Decoders tried on uploads: the accepted formats' own (MPO comes out of the JPEG opener).
_OPENERS = [fmt.pillow for fmt in FORMATS if fmt.original and not fmt.vector]

# Leading bytes of accepted formats: a file that starts like one of these but does not open
# is corrupt (422), anything else is not an accepted image (415).
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")

ORIENTATION = 0x0112


@dataclass(frozen=True)
class Limits:
    """Upload limits; the app builds one from its configuration (the defaults are the
    settings' own: avenue/config.py)."""

    max_bytes: int = DEFAULTS["AVENUE_MAX_UPLOAD_BYTES"]
    max_pixels: int = DEFAULTS["AVENUE_MAX_PIXELS"]
    max_frames: int = DEFAULTS["AVENUE_MAX_FRAMES"]
    max_total_pixels: int = DEFAULTS["AVENUE_MAX_TOTAL_PIXELS"]
    # Bytes of decoded pixels this process holds at once over all its requests (DecodeBudget).
    decode_budget_bytes: int = DEFAULTS["AVENUE_DECODE_BUDGET_BYTES"]
    decode_wait_seconds: float = float(DEFAULTS["AVENUE_DECODE_WAIT_SECONDS"])
    # Whether an SVG is taken (sanitised, avenue/media/ingest/svg.py): the builder's library
    # only; everywhere else an SVG is a 415 that says so.
    vector: bool = False
    # How long one raster draw of an SVG may take (AVENUE_SVG_DRAW_SECONDS): past it, 413
    # svg_too_complex (avenue/media/ingest/svgdraw.py).
    svg_draw_seconds: float = float(DEFAULTS["AVENUE_SVG_DRAW_SECONDS"])
    # Formats turned off (AVENUE_DISABLED_FORMATS, by name): refused by their leading bytes
    # before any decoder reads them, stored originals' renders too (docs/security.md).
    disabled: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Limits:
        """The upload limits an app is configured with."""
        return cls(max_bytes=config["AVENUE_MAX_UPLOAD_BYTES"], max_pixels=config["AVENUE_MAX_PIXELS"],
                   max_frames=config["AVENUE_MAX_FRAMES"], max_total_pixels=config["AVENUE_MAX_TOTAL_PIXELS"],
                   decode_budget_bytes=config.get("AVENUE_DECODE_BUDGET_BYTES", cls.decode_budget_bytes),
                   decode_wait_seconds=config.get("AVENUE_DECODE_WAIT_SECONDS", cls.decode_wait_seconds),
                   svg_draw_seconds=config.get("AVENUE_SVG_DRAW_SECONDS", cls.svg_draw_seconds),
                   disabled=disabled(config.get(DISABLED_SETTING)))

    def with_vector(self) -> Limits:
        """These limits, SVG taken too."""
        return replace(self, vector=True)

    @classmethod
    def for_stored(cls, size: int, decode_budget_bytes: int | None = None,
                   decode_wait_seconds: float | None = None,
                   disabled: frozenset[str] = frozenset(), *,
                   svg_draw_seconds: float | None = None) -> Limits:
        """The limits to decode an original already stored with: it passed the limits of its
        day, and limits lowered since must not block re-rendering it (a repair, a new crop).
        Its decoded pixels still count against the app's decode budget (given; the default's
        otherwise), the one its uploads share: renders are no exception to the process's bound.
        ``svg_draw_seconds``: the app's deadline of an SVG's draw (the default's otherwise).
        A format turned off since (``disabled``) is refused all the same: its decoder is what
        the setting keeps from running, whoever's bytes it would read."""
        return cls(max_bytes=max(size, 1), max_pixels=10**10, max_frames=10**5, max_total_pixels=10**12,
                   vector=True, decode_budget_bytes=decode_budget_bytes or cls.decode_budget_bytes,
                   decode_wait_seconds=cls.decode_wait_seconds if decode_wait_seconds is None
                   else decode_wait_seconds, disabled=disabled,
                   svg_draw_seconds=cls.svg_draw_seconds if svg_draw_seconds is None else svg_draw_seconds)

    def accepted_label(self) -> str:
        """The formats these limits take, as messages name them."""
        if not self.disabled:
            return ACCEPTED_WITH_VECTOR_LABEL if self.vector else ACCEPTED_LABEL
        return ", ".join(fmt.label for fmt in FORMATS if fmt.original and fmt.name not in self.disabled
                         and (self.vector or not fmt.vector))


# Modes whose shrinking makes a full-size copy first: RGBA/LA are premultiplied for resampling,
# palette and bilevel images are converted to RGB(A) (resampling them directly would pick
# nearest pixels), 32-bit integer/float images are scaled to 8 bits.
_COPYING_MODES = {"RGBA", "LA", "PA", "P", "1", "I", "F", "I;16", "I;16B", "I;16L"}


def decode_cost(im: Image.Image, frames: int, draft: tuple[int, int] | None, rotate_copy: bool) -> int:
    """The bytes of pixels preparing ``im`` holds at its peak: the decoded canvas (Pillow
    keeps 4 bytes a pixel for every multi-band mode; a JPEG at its draft size), doubled when
    shrinking copies it first (``_COPYING_MODES``), for animations (the previous frame is kept
    to compose the next) and for a rotated re-encode."""
    width, height = draft or im.size
    canvas = width * height * 4
    copies = 1 + (im.mode in _COPYING_MODES) + (frames > 1) + bool(rotate_copy)
    return canvas * copies


def scan_buffer(im: Image.Image) -> int:
    """The bytes libjpeg holds beside the canvas to decode ``im`` when it is a progressive
    JPEG: every DCT coefficient of every component at full size, 2 bytes each, whatever the
    draft or shrink-on-load scale (a baseline JPEG is decoded in strips and holds none). A
    32 MP 4:2:0 one holds 97 MB this way: measured, its decode at shrink 2 peaked +93-104 MB
    above idle against +0-11 MB for the same picture saved baseline. Read before ``draft``
    (it changes ``im.size``); 0 for any other image."""
    layers: list[tuple[Any, int, int, Any]] = getattr(im, "layer", None) or []
    if im.format not in {"JPEG", "MPO"} or not im.info.get("progressive") or not layers:
        return 0
    width, height = im.size
    h_max, v_max = max(layer[1] for layer in layers), max(layer[2] for layer in layers)
    return sum(math.ceil(width * h / h_max / 8) * math.ceil(height * v / v_max / 8) * 64 * 2
               for _, h, v, _ in layers)


@dataclass
class PreparedImage:
    """A validated upload: what to store and serve, and the decoded first frame."""

    source_sha256: str
    data: bytes  # the bytes that will be served
    format: str  # JPEG, PNG, WEBP, GIF, AVIF, SVG
    content_type: str
    width: int  # as displayed (EXIF orientation applied)
    height: int
    frames: int
    # Upright, possibly reduced (Pillow's draft() or libvips's shrink-on-load): a Pillow image,
    # or a libvips frame for the JPEG photos libvips decodes (avenue/media/ingest/engine.py
    # works on either). None once released (after the variants are encoded).
    first_frame: Pixels | None = field(repr=False)
    icc_profile: bytes | None = field(default=None, repr=False)
    # The decode budget still held for the pixels (``prepare(..., working=...)``): given back
    # by :meth:`release` once the caller's canvases are encoded.
    reservation: Reservation | None = field(default=None, repr=False)
    # With ``prepare(..., preview=...)``: the size (as displayed) of the frame the fixed
    # variants are cut from, larger than the frame decoded here (an upload's answer decodes only
    # what its thumb and focal point need); the variants' sizes are planned from it. None: the
    # frame decoded is that frame.
    variants_frame: tuple[int, int] | None = None

    def release(self) -> None:
        """Drop the decoded pixels and give back what the decode budget holds for them."""
        self.first_frame = None
        if self.reservation is not None:
            self.reservation.release()

    @property
    def sha256(self) -> str:
        return sha256(self.data).hexdigest()

    @property
    def pixels(self) -> Pixels:
        """The decoded first frame (renditions are cut from it)."""
        if self.first_frame is None:
            raise RuntimeError("the decoded pixels of this image were released")
        return self.first_frame

    def take_pixels(self) -> Pixels:
        """The decoded first frame, which this image no longer keeps: the caller's last
        reference is the last one, so it can drop the frame before it is done (its reservation
        is still held until :meth:`release`)."""
        frame, self.first_frame = self.pixels, None
        return frame


def read_limited(stream: BinaryIO | bytes | bytearray | memoryview, max_bytes: int) -> bytes:
    """Read at most ``max_bytes`` from ``stream``; refuse anything longer without buffering it."""
    if isinstance(stream, bytes | bytearray | memoryview):
        data = bytes(stream)
    else:
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageTooLarge(
            f"The file is larger than the {max_bytes // (1024 * 1024)} MB limit.",
            code="file_too_large",
            limit_bytes=max_bytes,
        )
    return data


def _looks_like_accepted(data: bytes) -> bool:
    if data.startswith(_MAGIC):
        return True
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return True
    return data[4:8] == b"ftyp" and data[8:12] in {
        b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1", b"hevc", b"hevx",
    }


def _open(data: bytes, limits: Limits) -> Image.Image:
    """Open with the accepted decoders only (those of formats turned off are never tried,
    even for a file whose bytes named none: ``decoders.open_image``); classify every failure."""
    try:
        return decoders.open_image(data, limits.disabled, among=_OPENERS,
                                   accepted_label=limits.accepted_label())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(
            f"The image declares far more pixels than the {limits.max_pixels / 1e6:g} "
            "megapixel limit.", code="too_many_pixels") from exc
    except UnidentifiedImageError:
        pass
    except Exception as exc:  # a decoder choked on a header it recognised
        raise CorruptImage("The image is damaged and cannot be read.") from exc
    if _looks_like_accepted(data):
        raise CorruptImage("The image is damaged or truncated and cannot be read.")
    other = None
    try:  # every plugin Pillow has but those of the formats turned off
        with decoders.open_image(data, limits.disabled, accepted_label=limits.accepted_label()) as probe:
            other = probe.format
    except Exception:  # not an image of any kind Pillow knows
        pass
    label = limits.accepted_label()
    if other:
        raise UnsupportedImage(
            f"{other} images are not accepted. Accepted formats: {label}.",
            accepted=label.split(", "),
        )
    raise UnsupportedImage(
        f"This file is not an image. Accepted formats: {label}.",
        accepted=label.split(", "),
    )


def _check_size(im: Image.Image, limits: Limits) -> int:
    width, height = im.size
    pixels = width * height
    if pixels > limits.max_pixels:
        raise ImageTooLarge(
            f"The image is {width}x{height} ({pixels / 1e6:.1f} megapixels); "
            f"the limit is {limits.max_pixels / 1e6:g} megapixels.",
            code="too_many_pixels",
        )
    frames = getattr(im, "n_frames", 1)
    if frames > limits.max_frames:
        raise ImageTooLarge(
            f"The image has {frames} frames; the limit is {limits.max_frames}.",
            code="too_many_frames",
        )
    if pixels * frames > limits.max_total_pixels:
        raise ImageTooLarge(
            f"The image has {pixels * frames / 1e6:.0f} megapixels over {frames} frames; "
            f"the limit is {limits.max_total_pixels / 1e6:g}.",
            code="too_many_pixels",
        )
    return frames


def _png_exif(data: bytes) -> Image.Exif:
    """A PNG's eXIf chunk, read from the bytes: Pillow's ``getexif()`` on a PNG decodes every
    pixel to look for one after the image data, before the decode budget is reserved."""
    exif = Image.Exif()
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"eXIf":
            exif.load(data[pos + 8 : pos + 8 + length])
            break
        if kind == b"IEND":
            break
        pos += 12 + length
    return exif


def _orientation(im: Image.Image, data: bytes) -> int:
    try:
        exif = _png_exif(data) if im.format == "PNG" else im.getexif()
        value = int(exif.get(ORIENTATION, 1))
    except Exception:  # unreadable EXIF: treat as upright rather than refuse the photo
        return 1
    return value if 1 <= value <= 8 else 1


def _shrunk(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A copy of the current frame no larger than ``size`` needs (what every variant is cut
    from), made straight from the decoded canvas."""
    if im.size[0] <= size[0] and im.size[1] <= size[1]:
        return im.copy()
    frame: Image.Image = im
    if im.mode in {"P", "PA", "1"}:  # resampled as pixels, not palette indexes
        has_alpha = im.mode == "PA" or "transparency" in im.info
        frame = im.convert("RGBA" if has_alpha else "RGB")
    return frame.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _draft_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """The smallest stored size that still feeds every variant without upscaling."""
    dw, dh = (height, width) if orientation >= 5 else (width, height)
    scale = max(min(1600 / dw, 1600 / dh), 1200 / dw, 630 / dh)
    scale = min(scale, 1.0)
    return max(1, int(width * scale + 0.999)), max(1, int(height * scale + 0.999))


#: The shorter side, in px, below which a preview decode is not made: the fit variants' sizes
#: are rounded at each step of their chain (gallery, card, thumb), so a thumb cut from a
#: frame this thin could be a pixel taller than it.
PREVIEW_MIN_SIDE = 64


def _preview(width: int, height: int, needed: tuple[int, int], preview: int,
             *, turned: bool) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """What ``prepare(..., preview=...)`` decodes a ``width`` x ``height`` picture (as stored)
    to, and the displayed size of the frame the fixed variants are cut from (``needed``, what
    it decodes without a preview; ``turned``: shown on its side); ``needed`` and None when the
    preview is not smaller, or too thin to cut a thumb from whatever its rounding (a
    panorama narrower than :data:`PREVIEW_MIN_SIDE` at the preview's scale)."""
    scale = min(1.0, preview / max(width, height, 1))
    small = max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))
    if small[0] >= needed[0] or small[1] >= needed[1] or min(small) < PREVIEW_MIN_SIDE:
        return needed, None
    return small, ((needed[1], needed[0]) if turned else needed)


DecodeScale = Callable[[int, int], float]
# The bytes of the canvases a caller makes from a frame decoded at (width, height), of an image
# displayed at (width, height): (decoded, shown) -> bytes.
Working = Callable[[tuple[int, int], tuple[int, int]], int]
# The displayed size to decode the whole picture to, exactly, given the displayed (width,
# height); None: no such size (the caller cuts a part of it), ``decode_scale`` decides.
ExactSize = Callable[[int, int], tuple[int, int] | None]


@dataclass(frozen=True)
class _Request:
    """What :func:`prepare`'s caller asks of one decode (its docstring says what each means)."""

    decode_scale: DecodeScale | None = None
    working: Working | None = None
    exact: ExactSize | None = None
    stored: bool = False
    preview: int | None = None


@dataclass(frozen=True)
class _Header:
    """What an opened raster picture's header says, read once before anything is decoded."""

    format: str
    frames: int
    width: int
    height: int
    scans: int
    orientation: int
    icc: bytes | None

    @property
    def turned(self) -> bool:
        """Shown on its side. pillow-heif has turned HEIF frames already (their EXIF
        orientation is informational)."""
        return self.orientation >= 5 and self.format != "HEIF"

    @property
    def shown(self) -> tuple[int, int]:
        """The displayed (width, height)."""
        return (self.height, self.width) if self.turned else (self.width, self.height)


def prepare(data: bytes, limits: Limits, decode_scale: DecodeScale | None = None,
            working: Working | None = None, *, exact: ExactSize | None = None,
            stored: bool = False, preview: int | None = None) -> PreparedImage:
    """Validate ``data`` by content and return what to store; raise a typed error otherwise.

    The first frame is decoded at the size the fixed variants need (``_draft_size``), or,
    with ``decode_scale``, at least at the fraction of full size it gives for the displayed
    width and height (a rendition on request: a 2560 px rendition needs more than 1600), or,
    with ``exact``, at exactly the size it gives when it gives one no larger than the picture
    (a rendition of the whole picture: decoded and resized once, at its own size).
    ``working``: the bytes of the canvases the caller makes from the frame (given the decoded
    size and the displayed one), reserved with the decode and held until the caller's
    :meth:`PreparedImage.release` (which it must call); without it the reservation ends with
    the decode. ``stored``: ``data`` is an original already stored (validated and stripped at
    its upload): only the pixels are wanted, so the bytes to serve are neither made again nor
    hashed (the result's ``data`` is ``data`` as given, its ``source_sha256`` empty).
    ``preview``: a raster picture larger than the fixed variants need is decoded only to this
    many px on its longer side (an upload's answer), and ``variants_frame`` says the size of
    the frame the variants are cut from (an SVG is drawn as without it)."""
    if not data:
        raise EmptyFile("The file is empty.")
    decoders.refuse_disabled(data, limits.disabled, limits.accepted_label())
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(
            f"The file is larger than the {limits.max_bytes // (1024 * 1024)} MB limit.",
            code="file_too_large",
        )
    ask = _Request(decode_scale, working, exact, stored, preview)
    if svg.looks_like_svg(data):
        return _prepare_svg(data, limits, ask)
    with warnings.catch_warnings():
        # Our own limits are checked from the header below; Pillow's bomb warning is an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        im = _open(data, limits)
        try:
            return _prepare_opened(im, data, limits, ask)
        except (ImageTooLarge, UnsupportedImage, CorruptImage, ServerBusy):
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageTooLarge(
                f"The image declares more pixels than the {limits.max_pixels / 1e6:g} "
                "megapixel limit.", code="too_many_pixels") from exc
        except Exception as exc:  # truncated data, bad CRC, broken frames...
            raise CorruptImage("The image is damaged or truncated and cannot be read.") from exc
        finally:
            im.close()


def _prepare_opened(im: Image.Image, data: bytes, limits: Limits, ask: _Request) -> PreparedImage:
    head = _read_header(im, data, limits)
    needed, variants_frame = _decode_size(head, ask)
    if _libvips_decodes(im, head.format, head.frames):
        prepared = _prepare_with_libvips(data, im, limits, head, needed, ask)
    else:
        prepared = _prepare_with_pillow(data, im, limits, head, needed, ask)
    prepared.variants_frame = variants_frame
    return prepared


def _read_header(im: Image.Image, data: bytes, limits: Limits) -> _Header:
    frames = _check_size(im, limits)  # refused here before anything else is read
    width, height = im.size
    scans = scan_buffer(im)
    return _Header(format=im.format or "",  # identified by _open: never empty here
                   frames=frames, width=width, height=height, scans=scans,
                   orientation=_orientation(im, data), icc=im.info.get("icc_profile") or None)


def _decode_size(head: _Header, ask: _Request) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """The stored size to decode the first frame to (see :func:`prepare`), and the displayed
    size of the frame the variants are cut from when it is a preview (else None)."""
    width, height = head.width, head.height
    needed = _draft_size(width, height, head.orientation)
    if ask.decode_scale is not None:
        scale = min(max(ask.decode_scale(*head.shown), 0.0), 1.0)
        needed = max(1, min(width, math.ceil(width * scale))), max(1, min(height, math.ceil(height * scale)))
    if ask.exact is not None:
        size = ask.exact(*head.shown)
        if size is not None:
            stored_size = (size[1], size[0]) if head.turned else size
            if 0 < stored_size[0] <= width and 0 < stored_size[1] <= height:  # never enlarged here
                needed = stored_size
    if ask.preview is not None and ask.decode_scale is None and ask.exact is None:
        return _preview(width, height, needed, ask.preview, turned=head.turned)
    return needed, None


def _prepare_with_pillow(data: bytes, im: Image.Image, limits: Limits, head: _Header,
                         needed: tuple[int, int], ask: _Request) -> PreparedImage:
    """Decode every frame with Pillow (the validation), keep the first at ``needed``."""
    draft = None
    if head.format in {"JPEG", "MPO"}:
        im.draft(None, needed)
        draft = im.size  # the scale the decoder will produce (at least ``needed``)
    cost = decode_cost(im, head.frames, draft,
                       rotate_copy=head.orientation != 1 and head.format not in {"JPEG", "MPO"})
    with _reserved(limits, cost, ask.working, draft or im.size, head.shown, head.scans) as kept:
        # Decoding every frame once is the validation: truncated or corrupt data fails here.
        im.seek(0)
        im.load()
        # The variants need no more than ``needed``: keep that, not a second full canvas.
        first = _shrunk(im, needed)
        for index in range(1, head.frames):
            im.seek(index)
            im.load()
        im.seek(0)
        served = data if ask.stored else _sanitized(data, im, head.format, head.orientation, head.icc)
        # A turned copy (counted in the cost: rotate_copy); HEIF frames come upright already.
        frame = PILLOW.orient(first, 1 if head.format == "HEIF" else head.orientation)
    served_format = "JPEG" if head.format in {"MPO", "HEIF"} else head.format
    return PreparedImage(
        source_sha256="" if ask.stored else sha256(data).hexdigest(),
        data=served,
        format=served_format,
        content_type=ACCEPTED[served_format],
        width=head.shown[0],
        height=head.shown[1],
        frames=head.frames,
        first_frame=frame,
        icc_profile=head.icc,
        reservation=kept,
    )


def _prepare_svg(data: bytes, limits: Limits, ask: _Request) -> PreparedImage:
    """An SVG upload (sniffed by content): refused unless ``limits.vector``; otherwise
    sanitised (what is stored and served; ``stored``: it is that already, and is not sanitised
    again), its size read (:func:`svg.intrinsic_size`: from its root, or by librsvg in a draw
    helper under the deadline) and scaled down to ``limits.max_pixels`` if it declares more
    (what the image says it is), and drawn at the size the variants need (or
    ``decode_scale``'s), under the decode budget like any decode."""
    if not limits.vector:
        raise UnsupportedImage(
            "SVG images are accepted only as new uploads to the builder's media library "
            "(POST /api/builder/media). "
            f"Accepted formats here: {limits.accepted_label()}.",
            code="svg_not_accepted", accepted=limits.accepted_label().split(", "))
    clean = data if ask.stored else svg.sanitise(data)
    intrinsic = svg.intrinsic_size(clean, limits.svg_draw_seconds)
    width, height = svg.shown_size(intrinsic, limits.max_pixels)
    needed = _draft_size(width, height, 1)
    if ask.decode_scale is not None:
        scale = min(max(ask.decode_scale(width, height), 0.0), 1.0)
        needed = max(1, min(width, math.ceil(width * scale))), max(1, min(height, math.ceil(height * scale)))
    # The helper's draw (svg.draw_bytes), then the drawn pixels and Pillow's copy of them here.
    cost = svg.draw_bytes(needed) + needed[0] * needed[1] * 4 * 2
    with _reserved(limits, cost, ask.working, needed, (width, height)) as kept:
        frame = svg.rasterise(clean, intrinsic, needed, limits.svg_draw_seconds)
    return PreparedImage(
        source_sha256="" if ask.stored else sha256(data).hexdigest(),
        data=clean,
        format=VECTOR.name.upper(),
        content_type=VECTOR.mime,
        width=width,
        height=height,
        frames=1,
        first_frame=frame,
        reservation=kept,
    )


@contextmanager
def _reserved(limits: Limits, cost: int, working: Working | None, decoded: tuple[int, int],
              shown: tuple[int, int], scans: int = 0) -> Iterator[Reservation | None]:
    """The decode budget held while the block decodes ``cost`` bytes: given back when it
    ends, or, with ``working`` (the caller's canvases, reserved with it), yielded for the
    caller to keep until its :meth:`PreparedImage.release` (None without it). Given back
    whatever the block raises. A progressive JPEG's coefficients (``scans``,
    :func:`scan_buffer`) count with the canvases, not with ``cost``: with them a decode that
    needs more than the budget takes all of it and runs alone, it is not refused (413 stays
    for canvases that do not fit)."""
    extra = (working(decoded, shown) if working is not None else 0) + scans
    held = decode_budget(limits.decode_budget_bytes).hold(cost, extra, limits.decode_wait_seconds)
    kept = False
    try:
        yield held if working is not None else None
        kept = working is not None
    finally:
        if not kept:
            held.release()


def _libvips_decodes(im: Image.Image, fmt: str, frames: int) -> bool:
    """Whether libvips decodes this upload (see avenue/media/ingest/vips.py): single-image RGB and
    greyscale JPEGs. CMYK keeps Pillow's conversion (libvips would convert through its own
    CMYK profile, changing the colours of every existing CMYK upload's variants), an MPO's
    extra images are validated frame by frame by Pillow, and other formats keep Pillow's
    handling of 16-bit, palette, transparency and animation."""
    return fmt in {"JPEG", "MPO"} and frames == 1 and im.mode in {"RGB", "L"}


def _prepare_with_libvips(data: bytes, im: Image.Image, limits: Limits, head: _Header,
                          needed: tuple[int, int], ask: _Request) -> PreparedImage:
    """Decode a JPEG photo with libvips's shrink-on-load (the validation), strip its metadata
    (unless it is ``stored`` already)."""
    shrink, decoded = vips.shrink_on_load(head.width, head.height, needed)
    # Reserved as if the whole shrink-on-load canvas were held at 4 bytes a pixel, like a
    # Pillow draft decode. libvips holds less: it decodes sequentially in strips and keeps
    # only the resized frame (at most the canvas's pixels, 1 or 3 bytes each), so the 4th
    # byte per canvas pixel more than covers the strips in flight.
    cost = decode_cost(im, 1, decoded, rotate_copy=False)
    with _reserved(limits, cost, ask.working, decoded, head.shown, head.scans) as kept:
        try:
            frame = LIBVIPS.orient(vips.Frame(vips.decode_jpeg(data, shrink, needed)), head.orientation)
        except vips.Error as exc:
            raise CorruptImage("The image is damaged or truncated and cannot be read.") from exc
        served = data if ask.stored else strip_jpeg(data, head.orientation)
    return PreparedImage(
        source_sha256="" if ask.stored else sha256(data).hexdigest(),
        data=served,
        format="JPEG",
        content_type=ACCEPTED["JPEG"],
        width=head.shown[0],
        height=head.shown[1],
        frames=1,
        first_frame=frame,
        icc_profile=head.icc,
        reservation=kept,
    )


def _sanitized(data: bytes, im: Image.Image, fmt: str, orientation: int, icc: bytes | None) -> bytes:
    """The bytes to serve: metadata stripped, upright in a browser."""
    if fmt in {"JPEG", "MPO"}:
        return strip_jpeg(data, orientation)
    if fmt == "PNG":
        return strip_png(data) if orientation == 1 else _reencode(im, "PNG", orientation, icc)
    if fmt == "WEBP":
        if orientation == 1 or getattr(im, "n_frames", 1) > 1:
            return strip_webp(data)
        return _reencode(im, "WEBP", orientation, icc)
    if fmt == "GIF":
        return strip_gif(data)
    if fmt == "HEIF":
        return _reencode(im, "JPEG", 1, icc)
    if fmt == "AVIF":
        if im.info.get("exif") or im.info.get("xmp") or orientation != 1 or not avif_is_plain(data):
            return _reencode(im, "AVIF", orientation, icc)
        return data
    raise UnsupportedImage(f"{fmt} images are not accepted. Accepted formats: {ACCEPTED_LABEL}.")


def _reencode(im: Image.Image, fmt: str, orientation: int, icc: bytes | None) -> bytes:
    im.seek(0)
    pixels = PILLOW.orient(im, orientation)  # a new image only when it turns (counted in decode_cost)
    if fmt == "JPEG" and pixels.mode not in {"RGB", "L", "CMYK"}:
        pixels = pixels.convert("RGB")
    out = io.BytesIO()
    options: dict[str, Any] = {"icc_profile": icc} if icc else {}
    if fmt == "JPEG":
        options.update(quality=90, subsampling="4:2:0", optimize=True)
    elif fmt == "WEBP":
        lossless = im.info.get("lossless", False)
        options.update(lossless=lossless, quality=90 if not lossless else 100)
    elif fmt == "AVIF":
        options.update(quality=80, speed=8)
    pixels.save(out, fmt, **options)
    return out.getvalue()


# --- lossless metadata stripping -------------------------------------------------------


def strip_jpeg(data: bytes, orientation: int = 1) -> bytes:
    """Drop EXIF/XMP/IPTC/comment segments and anything after the first image's EOI.

    Keeps JFIF (APP0), ICC (APP2 ``ICC_PROFILE``), Adobe (APP14: needed to read CMYK right)
    and every coding segment; every other APPn (EXIF, XMP, Photoshop/IPTC, MPF, JFXX
    thumbnails, vendors'), comments and the images an MPO appends after the first are
    dropped. A rotated photo gets an EXIF block with only Orientation.
    """
    if data[:2] != b"\xff\xd8":
        raise CorruptImage("The JPEG data does not start with a JPEG marker.")
    out = bytearray(b"\xff\xd8")
    if orientation != 1:
        exif = Image.Exif()
        exif[ORIENTATION] = orientation
        payload = exif.tobytes()
        out += b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    pos = 2
    size = len(data)
    while pos < size:
        if data[pos] != 0xFF:
            raise CorruptImage("The JPEG data is damaged (bad segment marker).")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI: the first image ends here; trailing data is dropped
            out += b"\xff\xd9"
            return bytes(out)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out += data[pos : pos + 2]
            pos += 2
            continue
        if pos + 4 > size:
            break
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        segment = data[pos : pos + 2 + length]
        keep = True
        if 0xE0 <= marker <= 0xEF:
            body = segment[4:]
            keep = (
                (marker == 0xE0 and body.startswith(b"JFIF\x00"))  # not JFXX: it holds a thumbnail
                or (marker == 0xE2 and body.startswith(b"ICC_PROFILE\x00"))
                or (marker == 0xEE and body.startswith(b"Adobe"))
            )
        elif marker == 0xFE:  # COM
            keep = False
        if keep:
            out += segment
        pos += 2 + length
        if marker == 0xDA:  # SOS: copy entropy-coded data up to the next real marker
            start = pos
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= size:
                    pos = size
                    break
                follower = data[pos + 1]
                if follower == 0x00 or 0xD0 <= follower <= 0xD7:  # stuffed byte, restart
                    pos += 2
                    continue
                break
            out += data[start:pos]
    raise CorruptImage("The JPEG data ends before its end-of-image marker.")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What displays the image: pixels and palette, transparency, colour (ICC, sRGB, gamma,
# chromaticities, significant bits, CICP and HDR levels) and APNG's animation. Everything
# else goes: text (tEXt/zTXt/iTXt), eXIf, tIME, pHYs (print size), bKGD/hIST/sPLT (viewer
# hints) and every private or unknown chunk.
_PNG_KEEP = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP",
             b"sBIT", b"cICP", b"mDCV", b"cLLI", b"acTL", b"fcTL", b"fdAT"}


def strip_png(data: bytes) -> bytes:
    """Keep only the chunks that display the image (``_PNG_KEEP``), nothing after IEND."""
    out = bytearray(_PNG_SIGNATURE)
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if kind in _PNG_KEEP:
            out += data[pos:end]
        pos = end
        if kind == b"IEND":
            break
    return bytes(out)


# Bitstreams, alpha, animation and the ICC profile; EXIF, XMP and unknown chunks go.
_WEBP_KEEP = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP"}


# An AVIF served as uploaded holds only these: top-level boxes, and item types in its meta
# box (AV1 images, grids, overlays; alpha and depth maps are av01 items too).
_AVIF_BOXES = {b"ftyp", b"meta", b"mdat", b"moov"}
_AVIF_ITEMS = {b"av01", b"grid", b"iovl"}


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the ISOBMFF boxes in ``data[start:end]``."""
    found = []
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1 and pos + 16 <= end:
            size, header = struct.unpack(">Q", data[pos + 8 : pos + 16])[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise CorruptImage("The AVIF data is damaged (bad box size).")
        found.append((kind, pos + header, pos + size))
        pos += size
    return found


def avif_is_plain(data: bytes) -> bool:
    """Whether an AVIF holds nothing but image items: no Exif, XMP (``mime``), URI or unknown
    items, no unknown top-level boxes. Otherwise it is re-encoded (metadata items cannot be
    cut out losslessly: the item locations are absolute file offsets)."""
    boxes = _boxes(data, 0, len(data))
    if any(kind not in _AVIF_BOXES for kind, _, _ in boxes):
        return False
    for kind, start, end in boxes:
        if kind != b"meta":
            continue
        for child, child_start, child_end in _boxes(data, start + 4, end):  # +4: version, flags
            if child != b"iinf":
                continue
            version = data[child_start]
            first = child_start + 4 + (2 if version == 0 else 4)  # entry count
            for entry, entry_start, _ in _boxes(data, first, child_end):
                if entry != b"infe" or data[entry_start] < 2:
                    return False
                id_size = 2 if data[entry_start] == 2 else 4
                type_at = entry_start + 4 + id_size + 2
                if data[type_at : type_at + 4] not in _AVIF_ITEMS:
                    return False
    return True


def strip_webp(data: bytes) -> bytes:
    """Keep only the chunks that display the image (``_WEBP_KEEP``); clear the VP8X EXIF and
    XMP flags."""
    chunks = []
    pos = 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        length = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        end = pos + 8 + length + (length & 1)
        if kind in _WEBP_KEEP:
            chunk = bytearray(data[pos:end])
            if kind == b"VP8X":
                chunk[8] &= ~(0x08 | 0x04) & 0xFF
            chunks.append(bytes(chunk))
        pos = end
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def strip_gif(data: bytes) -> bytes:
    """Keep image data, graphic control and the looping extension; drop comments, plain text
    (no browser draws it), every other application extension (XMP lives in one) and anything
    after the trailer."""
    if len(data) < 13:
        raise CorruptImage("The GIF data is too short.")
    flags = data[10]
    pos = 13 + (3 * (2 ** ((flags & 7) + 1)) if flags & 0x80 else 0)
    out = bytearray(data[:pos])

    def sub_blocks(at: int) -> int:
        while at < len(data) and data[at] != 0:
            at += data[at] + 1
        return at + 1

    while pos < len(data):
        block = data[pos]
        if block == 0x3B:  # trailer
            out += b"\x3b"
            return bytes(out)
        if block == 0x21:
            label = data[pos + 1]
            end = sub_blocks(pos + 2)
            keep = label == 0xF9  # graphic control (frame delay, transparency)
            if label == 0xFF:
                app = data[pos + 3 : pos + 14]
                keep = app in {b"NETSCAPE2.0", b"ANIMEXTS1.0"}
            if keep:
                out += data[pos:end]
            pos = end
        elif block == 0x2C:
            local = data[pos + 9]
            header_end = pos + 10 + (3 * (2 ** ((local & 7) + 1)) if local & 0x80 else 0)
            end = sub_blocks(header_end + 1)  # +1: LZW minimum code size
            out += data[pos:end]
            pos = end
        else:
            raise CorruptImage("The GIF data is damaged (unknown block).")
    out += b"\x3b"
    return bytes(out)


# --- filenames ---------------------------------------------------------------------------

_BIDI_AND_CONTROL = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def sanitize_filename(name: str | None, default: str = "image") -> str:
    """A display filename with no path, control or bidi characters, at most 120 characters."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _BIDI_AND_CONTROL)
    name = " ".join(name.split()).strip(" .")
    if len(name) > 120:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 120 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else name[:120]
    return name or default
