"""Resized renditions of a prepared image: thumb, card, gallery and og.

Each is rendered once, in WebP (served by default) and in a fallback that every browser
reads (JPEG, or PNG when the image has transparency). Never upscaled. An upload renders only
the WebP thumb before it answers (its placeholder is computed from it) and plans (:func:`plan`) the
others, sizes and formats without encoding a pixel; they are rendered right after the answer
or on their first request (avenue/media/store/pending.py), by :func:`render` with ``only``.

Two renderers with the same sizes, settings and guarantees: libvips for the frames libvips
decoded (RGB and greyscale JPEG photos, by far the most uploads; avenue/media/ingest/vips.py says
why), Pillow for every other frame (CMYK, 16-bit, palette, transparency, animations' first
frames, AVIF, HEIC).
"""

from __future__ import annotations

import hashlib
import io
import json
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image, ImageCms

from avenue import background
from avenue.media.formats import VARIANT_TYPES, save_options
from avenue.media.formats import recipe as encoder_recipe
from avenue.media.ingest import vips
from avenue.media.ingest.focal import FocalPoint, crop_box, estimate
from avenue.media.ingest.images import PreparedImage

# name -> (width, height, mode): "fit" keeps the aspect ratio inside the box, "cover" crops
# around the image's focal point (avenue/media/ingest/focal.py).
VARIANTS: dict[str, tuple[int, int, str]] = {
    "gallery": (1600, 1600, "fit"),
    "card": (600, 600, "fit"),
    "thumb": (200, 200, "fit"),
    "og": (1200, 630, "cover"),
}
VARIANT_NAMES = ("thumb", "card", "gallery", "og")
# The unedited original of an edited image is listed with its variants as ``SOURCE``
# (avenue/media/ingest/edits.py): not a rendition (never rendered), but found, served, moved and
# deleted like one, in the format it was uploaded as.


#: Bumped when the render itself changes in a way the table above does not show (resampling,
#: the chain): every variant made before is then stale (``flask rerender``).
RENDER_REVISION = 1
#: What each fit variant is resized from (the chain of :func:`render`): its recipe covers them all.
_CHAIN = {"gallery": ("gallery",), "card": ("gallery", "card"), "thumb": ("gallery", "card", "thumb"),
          "og": ("og",)}


def recipe(name: str, fmt: str) -> str:
    """A short fingerprint of what makes variant ``name`` in ``fmt`` now: the sizes of its
    chain (the variant table above), the format's encoder and default quality
    (:func:`avenue.media.formats.recipe`) and :data:`RENDER_REVISION`. Recorded with each
    variant file and its entry on the original; a variant whose recipe differs (or that has
    none: made before recipes were recorded) is stale (avenue/media/store/rerender.py)."""
    chain = [[step, *VARIANTS[step]] for step in _CHAIN.get(name, (name,)) if step in VARIANTS]
    described = json.dumps({"chain": chain, "encoder": encoder_recipe(fmt), "revision": RENDER_REVISION},
                           sort_keys=True)
    return hashlib.sha256(described.encode()).hexdigest()[:12]


_SRGB = ImageCms.createProfile("sRGB")


@dataclass(frozen=True)
class Rendition:
    """One encoded variant."""

    name: str
    format: str  # webp | jpeg | png
    data: bytes
    width: int
    height: int
    focal: FocalPoint | None = None  # crops: the point they were cut around

    @property
    def content_type(self) -> str:
        return VARIANT_TYPES[self.format]


@dataclass(frozen=True)
class Planned:
    """A variant an upload lists before it is rendered: its name, format and exact size (what
    :func:`render` gives it, from the same frame)."""

    name: str
    format: str
    width: int
    height: int

    @property
    def content_type(self) -> str:
        return VARIANT_TYPES[self.format]


#: (name, format) pairs; None: all of them.
Only = frozenset[tuple[str, str]] | None


def to_display_mode(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """Convert any decoded mode to RGB/RGBA/L with sane colours; return the ICC to embed."""
    mode = im.mode
    if mode == "CMYK":
        if icc:
            try:
                source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                converted = ImageCms.profileToProfile(im, source, _SRGB, outputMode="RGB")
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


def _fit(im: Image.Image, width: int, height: int) -> Image.Image:
    scale = min(width / im.width, height / im.height, 1.0)
    if scale >= 1.0:
        # A copy: each rendition is encoded on its own thread, and Image.save() keeps
        # per-call state on the image object (encoderinfo), so no two may share one.
        return im.copy()
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _cover(im: Image.Image, width: int, height: int, focal: FocalPoint) -> Image.Image:
    """Crop to the target aspect ratio around ``focal``; scale down to the target, never up."""
    left, top, crop_w, crop_h = crop_box(im.width, im.height, width, height, focal)
    size = (width, height) if crop_w >= width else (crop_w, crop_h)
    return im.resize(size, Image.Resampling.LANCZOS, box=(left, top, left + crop_w, top + crop_h),
                     reducing_gap=3.0)


def encode_image(im: Image.Image, fmt: str, icc: bytes | None, quality: int | None = None,
                 progressive: bool = True) -> bytes:
    """``im`` encoded as ``fmt`` (webp, jpeg, png, avif, jxl) with the house's settings, at
    ``quality`` or the format's default (PNG is lossless: no quality). JPEGs are progressive
    (what browsers show early) unless ``progressive`` is False (a source the server decodes again).
    The format's engine and settings are its entry in avenue/media/formats.py."""
    spec, options = save_options(fmt, quality, progressive)
    if spec.engine == "libjxl":
        return _encode_jpegxl(im, icc, options)
    out = io.BytesIO()
    im.save(out, spec.pillow, **options, **({"icc_profile": icc} if icc else {}))
    return out.getvalue()


def _encode_jpegxl(im: Image.Image, icc: bytes | None, options: dict[str, Any]) -> bytes:
    """JPEG XL by libjxl (imagecodecs, BSD-licensed like libjxl; Pillow has no JPEG XL and
    the plugin that adds it is GPL). imagecodecs embeds no ICC profile, so colours are
    converted to sRGB first (what a JPEG XL without a profile means)."""
    import imagecodecs  # imported on first use: JPEG XL is opt-in (AVENUE_JPEG_XL)

    if icc and im.mode in {"RGB", "RGBA"}:
        try:
            converted = ImageCms.profileToProfile(im, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _SRGB,
                                                  outputMode=im.mode)
            if converted is not None:  # None only when asked to convert in place
                im = converted
        except (ImageCms.PyCMSError, OSError):
            pass  # an unreadable profile: the pixels as they are (as the other encoders keep it)
    if im.mode not in {"RGB", "RGBA", "L"}:
        im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
    return bytes(imagecodecs.jpegxl_encode(np.asarray(im), **options))


# Pillow releases the GIL while resampling and encoding, so the renditions of one upload
# run in parallel (background.in_parallel: a thread per core): an upload answers in about the
# time of its longest chain (gallery resize + WebP encode) instead of the sum of all of them.


def _fit_size(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    scale = min(box_w / width, box_h / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


#: A named crop's box, (x, y, width, height) in 0..1 of the picture (avenue/media/ingest/edits.py).
Box = tuple[float, float, float, float]


def _region(width: int, height: int, box: Box,
            focal: FocalPoint) -> tuple[tuple[int, int, int, int], FocalPoint]:
    """The pixels (left, top, right, bottom) of ``box`` in a ``width`` x ``height`` picture, and
    ``focal`` as a point of that region (clamped into it)."""
    left, top = min(round(box[0] * width), width - 1), min(round(box[1] * height), height - 1)
    right = max(left + 1, min(width, round((box[0] + box[2]) * width)))
    bottom = max(top + 1, min(height, round((box[1] + box[3]) * height)))
    inner = FocalPoint(min(max((focal.x * width - left) / (right - left), 0.0), 1.0),
                       min(max((focal.y * height - top) / (bottom - top), 0.0), 1.0))
    return (left, top, right, bottom), inner


def _render_vips(frame: vips.Frame, icc: bytes | None, focal: FocalPoint | None,
                 only: Only = None, og_box: Box | None = None) -> list[Rendition]:
    """The renditions of a libvips frame: same sizes, chain, formats and encoder settings as
    the Pillow path. libvips resizes; Pillow encodes, because the libwebp and libjpeg-turbo
    built into Pillow's wheel encode these sizes up to twice as fast as the ones in the
    pyvips-binary wheel (measured, same output bytes for WebP: bench/results/perf-2026-11-23.md)."""
    base = frame.image
    fallback = "png" if frame.has_alpha else "jpeg"

    def encode(name: str, fmt: str, image: Image.Image) -> list[Rendition]:
        return [Rendition(name, fmt, encode_image(image, fmt, icc), image.width, image.height)]

    def og() -> list[Rendition]:
        point = focal if focal is not None else estimate(frame)
        target_w, target_h = VARIANTS["og"][:2]
        if og_box is None:
            box = crop_box(base.width, base.height, target_w, target_h, point)
        else:  # the image's crop named og: the og variant is cut inside it
            (left, top, right, bottom), inner = _region(base.width, base.height, og_box, point)
            sub = crop_box(right - left, bottom - top, target_w, target_h, inner)
            box = (left + sub[0], top + sub[1], sub[2], sub[3])
        size = (target_w, target_h) if box[2] >= target_w else (box[2], box[3])
        image = vips.to_pillow(vips.resize(base, *size, box=box))
        return [replace(r, focal=point) for fmt in ("webp", fallback) for r in encode("og", fmt, image)]

    # One task per encode, the gallery's WebP first: it is the longest, and the og, the
    # gallery's fallback, the card and the thumb fill the other core meanwhile. Each task
    # has its own Pillow image (save() keeps per-call state on the image object).
    def wanted(name: str, fmt: str) -> bool:
        return only is None or (name, fmt) in only

    gallery = vips.resize(base, *_fit_size(base.width, base.height, *VARIANTS["gallery"][:2]))
    tasks: list[Future[list[Rendition]]] = []
    if wanted("gallery", "webp"):
        tasks.append(background.in_parallel(encode, "gallery", "webp", vips.to_pillow(gallery)))
    if wanted("og", "webp") or wanted("og", fallback):
        tasks.append(background.in_parallel(og))
    if wanted("gallery", fallback):
        tasks.append(background.in_parallel(encode, "gallery", fallback, vips.to_pillow(gallery)))
    # Card from the gallery, thumb from the card (as the Pillow path chains them): the same
    # chain whichever of them are wanted, so a variant's bytes never depend on ``only``.
    source = gallery
    for name in ("card", "thumb"):
        source = vips.resize(source, *_fit_size(source.width, source.height, *VARIANTS[name][:2]))
        for fmt in ("webp", fallback):
            if wanted(name, fmt):
                tasks.append(background.in_parallel(encode, name, fmt, vips.to_pillow(source)))
    renditions = {(r.name, r.format): r for task in tasks for r in task.result()}
    return [renditions[(name, fmt)] for name in VARIANT_NAMES for fmt in ("webp", fallback)
            if (name, fmt) in renditions and wanted(name, fmt)]


def render(prepared: PreparedImage, focal: FocalPoint | None = None, only: Only = None,
           og_box: Box | None = None) -> list[Rendition]:
    """Every variant of ``prepared`` (``only``: those of these (name, format) pairs), in WebP
    and in the fallback format; the crops (``og``)
    are cut around ``focal``, or around the estimated one (:func:`avenue.media.ingest.focal.estimate`,
    about 10 ms of libvips whatever the size) when it is None. The estimate runs in the crop's
    own task, beside the longer gallery encode, so it adds no wait to an upload; the point
    used is on the crop's renditions (``Rendition.focal``). ``og_box``: the image's named crop
    ``og``, inside which the ``og`` variant is cut."""
    pixels = prepared.pixels
    if isinstance(pixels, vips.Frame):
        return _render_vips(pixels, prepared.icc_profile, focal, only, og_box)
    base, icc = to_display_mode(pixels, prepared.icc_profile)
    fallback = "png" if base.mode == "RGBA" else "jpeg"

    def wanted(name: str, fmt: str) -> bool:
        return only is None or (name, fmt) in only

    def encode(name: str, im: Image.Image) -> list[Rendition]:
        # Both formats of one image on one thread, one after the other (see _fit).
        return [Rendition(name, fmt, encode_image(im, fmt, icc), im.width, im.height)
                for fmt in ("webp", fallback) if wanted(name, fmt)]

    def og() -> list[Rendition]:
        point = focal if focal is not None else estimate(base)
        if og_box is None:
            return [replace(r, focal=point) for r in encode("og", _cover(base, *VARIANTS["og"][:2], point))]
        region, inner = _region(base.width, base.height, og_box, point)  # the image's crop named og
        return [replace(r, focal=point) for r in encode("og", _cover(base.crop(region), *VARIANTS["og"][:2],
                                                                     inner))]

    futures: list[Future[list[Rendition]]] = []
    if wanted("og", "webp") or wanted("og", fallback):
        futures.append(background.in_parallel(og))
    # Chain the fit variants from large to small: resizing the 1600 px gallery down to the
    # card and thumb is much cheaper than going back to the source and looks the same.
    source = base
    for name in ("gallery", "card", "thumb"):
        width, height, _ = VARIANTS[name]
        source = _fit(source, width, height)
        if wanted(name, "webp") or wanted(name, fallback):
            futures.append(background.in_parallel(encode, name, source))
    renditions = {(r.name, r.format): r for future in futures for r in future.result()}
    return [renditions[(name, fmt)] for name in VARIANT_NAMES for fmt in ("webp", fallback)
            if (name, fmt) in renditions]


def fallback_of(prepared: PreparedImage) -> str:
    """The format every browser reads that ``prepared``'s variants are stored in beside WebP:
    PNG when the frame has transparency, else JPEG (what :func:`render` chooses)."""
    pixels = prepared.pixels
    if isinstance(pixels, vips.Frame):
        return "png" if pixels.has_alpha else "jpeg"
    mode = pixels.mode  # as to_display_mode converts it
    if mode in {"P", "PA"}:
        alpha = mode == "PA" or "transparency" in pixels.info
    elif mode in {"CMYK", "I;16", "I;16B", "I;16L", "I", "1", "F", "RGB", "L"}:
        alpha = False
    else:
        alpha = "A" in mode
    return "png" if alpha else "jpeg"


def plan(prepared: PreparedImage, focal: FocalPoint, og_box: Box | None = None) -> list[Planned]:
    """Every variant :func:`render` makes of ``prepared`` around ``focal`` (the ``og`` one inside
    ``og_box`` when given), its size computed the way the render computes it (the fit chain
    gallery, card, thumb; the ``og`` crop box), without resizing or encoding anything: what an
    upload or an edit lists before the variants exist."""
    width, height = prepared.pixels.size
    sizes: dict[str, tuple[int, int]] = {}
    fit_w, fit_h = width, height
    for name in ("gallery", "card", "thumb"):
        fit_w, fit_h = _fit_size(fit_w, fit_h, *VARIANTS[name][:2])
        sizes[name] = (fit_w, fit_h)
    target_w, target_h = VARIANTS["og"][:2]
    if og_box is not None:  # as render cuts it: inside the image's crop named og
        (left, top, right, bottom), focal = _region(width, height, og_box, focal)
        width, height = right - left, bottom - top
    box = crop_box(width, height, target_w, target_h, focal)
    sizes["og"] = (target_w, target_h) if box[2] >= target_w else (box[2], box[3])
    fallback = fallback_of(prepared)
    return [Planned(name, fmt, *sizes[name]) for name in VARIANT_NAMES for fmt in ("webp", fallback)]
