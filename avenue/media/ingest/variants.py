"""Resized renditions of a prepared image: thumb, card, gallery and og.

Each is rendered once, in WebP (served by default) and in a fallback that every browser
reads (JPEG, or PNG when the image has transparency). Never upscaled. An upload renders only
the WebP thumb before it answers (its placeholder is computed from it) and plans (:func:`plan`) the
others, sizes and formats without encoding a pixel; they are rendered right after the answer
or on their first request (avenue/media/store/pending.py), by :func:`render` with ``only``.

One renderer for both engines (avenue/media/ingest/engine.py): the same sizes, chain,
settings and guarantees whether libvips holds the frame (RGB and greyscale JPEG photos, by far
the most uploads; avenue/media/ingest/vips.py says why) or Pillow does (CMYK, 16-bit, palette,
transparency, animations' first frames, AVIF, HEIC).
"""

from __future__ import annotations

import hashlib
import io
import json
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

from PIL import Image, ImageCms

from avenue import background
from avenue.media.formats import VARIANT_TYPES, save_options
from avenue.media.formats import recipe as encoder_recipe
from avenue.media.ingest.engine import SRGB, Pixels, engine_of
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
    # Both imported on first use: JPEG XL is opt-in (AVENUE_JPEG_XL), and numpy alone was a
    # tenth of every process's start (the app's import: about 70 of 650 ms, in each gunicorn
    # worker, CLI command and make run).
    import imagecodecs
    import numpy as np

    if icc and im.mode in {"RGB", "RGBA"}:
        try:
            converted = ImageCms.profileToProfile(im, ImageCms.ImageCmsProfile(io.BytesIO(icc)), SRGB,
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


def render(prepared: PreparedImage, focal: FocalPoint | None = None, only: Only = None,
           og_box: Box | None = None) -> list[Rendition]:
    """Every variant of ``prepared`` (``only``: those of these (name, format) pairs), in WebP
    and in the fallback format; the crops (``og``)
    are cut around ``focal``, or around the estimated one (:func:`avenue.media.ingest.focal.estimate`,
    about 10 ms of libvips whatever the size) when it is None. The estimate runs in the crop's
    own task, beside the longer gallery encode, so it adds no wait to an upload; the point
    used is on the crop's renditions (``Rendition.focal``). ``og_box``: the image's named crop
    ``og``, inside which the ``og`` variant is cut.

    The frame's engine (avenue/media/ingest/engine.py) resizes; Pillow encodes, because the
    libwebp and libjpeg-turbo built into Pillow's wheel encode these sizes up to twice as fast
    as the ones in the pyvips-binary wheel (measured, same output bytes for WebP:
    bench/results/perf-2026-11-23.md). A picture decoded smaller than its variants' frame (an
    upload's answer: ``prepare``'s ``preview``) has only its fit variants made, by
    :func:`_from_preview`."""
    if prepared.variants_frame is not None:
        return _from_preview(prepared, prepared.variants_frame, only)
    pixels = prepared.pixels
    engine = engine_of(pixels)
    base, icc = engine.display(pixels, prepared.icc_profile)
    fallback = "png" if engine.has_alpha(base) else "jpeg"

    def wanted(name: str, fmt: str) -> bool:
        return only is None or (name, fmt) in only

    def encode(name: str, fmt: str, image: Image.Image) -> list[Rendition]:
        return [Rendition(name, fmt, encode_image(image, fmt, icc), image.width, image.height)]

    def og() -> list[Rendition]:
        point = focal if focal is not None else estimate(base)
        source, inner = base, point
        if og_box is not None:  # the image's crop named og: the og variant is cut inside it
            (left, top, right, bottom), inner = _region(*engine.size(base), og_box, point)
            source = engine.crop(base, (left, top, right - left, bottom - top))
        target_w, target_h = VARIANTS["og"][:2]
        box = crop_box(*engine.size(source), target_w, target_h, inner)
        size = (target_w, target_h) if box[2] >= target_w else (box[2], box[3])
        image = engine.pillow(engine.resize(source, size, box))  # one image: its formats in turn
        return [replace(r, focal=point) for fmt in ("webp", fallback) if wanted("og", fmt)
                for r in encode("og", fmt, image)]

    # One task per encode, each with a Pillow image of its own (save() keeps per-call state on
    # the image object), the gallery's WebP first: it is the longest, and the og, the gallery's
    # fallback, the card and the thumb fill the other core meanwhile. The fit variants are
    # chained from large to small: resizing the 1600 px gallery down to the card and the card
    # to the thumb is much cheaper than going back to the source and looks the same; the same
    # chain whichever of them are wanted, so a variant's bytes never depend on ``only``.
    gallery = engine.resize(base, _fit_size(*engine.size(base), *VARIANTS["gallery"][:2]))
    tasks: list[Future[list[Rendition]]] = []

    def encoded(name: str, fmt: str, frame: Pixels) -> None:
        if wanted(name, fmt):
            tasks.append(background.in_parallel(encode, name, fmt, engine.pillow(frame)))

    encoded("gallery", "webp", gallery)
    if wanted("og", "webp") or wanted("og", fallback):
        tasks.append(background.in_parallel(og))
    encoded("gallery", fallback, gallery)
    source = gallery
    for name in ("card", "thumb"):
        source = engine.resize(source, _fit_size(*engine.size(source), *VARIANTS[name][:2]))
        for fmt in ("webp", fallback):
            encoded(name, fmt, source)
    renditions = {(r.name, r.format): r for task in tasks for r in task.result()}
    return [renditions[(name, fmt)] for name in VARIANT_NAMES for fmt in ("webp", fallback)
            if (name, fmt) in renditions]


def canvases(decoded: tuple[int, int], _shown: tuple[int, int]) -> int:
    """The bytes :func:`render` holds beside the decoded frame until its last encode, for a
    frame decoded at ``decoded`` (at least the frame's size; the picture's shown size does not
    change it): what :func:`~avenue.media.ingest.images.prepare` reserves as ``working`` with
    the decode, so a render of stored variants holds the decode budget through its resizes
    and encodes, as an edit's canvases and a rendition's resize do.

    At 4 bytes a pixel: the frame once more (its display-mode copy, the og crop's source), the
    gallery four times (itself, the Pillow copies its WebP and fallback encoders are handed,
    the WebP encoder's own buffers), the card and the thumb three times (themselves and their
    two copies) and the og picture twice (itself and its copy): what the decode's reservation
    alone left uncovered (docs/performance.md, "Measurements behind the code")."""
    gallery = _fit_size(*decoded, *VARIANTS["gallery"][:2])
    card = _fit_size(*gallery, *VARIANTS["card"][:2])
    thumb = _fit_size(*card, *VARIANTS["thumb"][:2])
    og_w, og_h = VARIANTS["og"][:2]
    pixels = (decoded[0] * decoded[1] + 4 * gallery[0] * gallery[1] + 3 * card[0] * card[1]
              + 3 * thumb[0] * thumb[1] + 2 * og_w * og_h)
    return pixels * 4


def fallback_of(prepared: PreparedImage) -> str:
    """The format every browser reads that ``prepared``'s variants are stored in beside WebP:
    PNG when the frame has transparency, else JPEG (what :func:`render` chooses)."""
    pixels = prepared.pixels
    return "png" if engine_of(pixels).has_alpha(pixels) else "jpeg"


def _fit_chain(width: int, height: int) -> dict[str, tuple[int, int]]:
    """The fit variants' sizes cut from a ``width`` x ``height`` frame: gallery, card, thumb,
    each fitted from the one before it, as :func:`render` resizes them."""
    sizes: dict[str, tuple[int, int]] = {}
    for name in ("gallery", "card", "thumb"):
        width, height = _fit_size(width, height, *VARIANTS[name][:2])
        sizes[name] = (width, height)
    return sizes


def _from_preview(prepared: PreparedImage, variants_frame: tuple[int, int], only: Only) -> list[Rendition]:
    """The fit variants ``only`` names, of a picture decoded smaller than its variants' frame
    (``prepare(..., preview=...)``: an upload's answer, which needs its thumb): each resized
    straight from the decoded frame to the size planned from the variants' frame
    (:func:`plan`, from ``variants_frame``: the full decode's size), so it is the size the
    answer lists; its pixels from a frame at least that large. The ``og`` crop and a variant
    larger than the frame are refused (ValueError): they are rendered from the original decoded
    at their size."""
    engine = engine_of(prepared.pixels)
    base, icc = engine.display(prepared.pixels, prepared.icc_profile)
    fallback = "png" if engine.has_alpha(base) else "jpeg"
    sizes, frame = _fit_chain(*variants_frame), engine.size(base)
    wanted = [(name, fmt) for name in VARIANT_NAMES for fmt in ("webp", fallback)
              if only is None or (name, fmt) in only]
    out = []
    for name, fmt in wanted:
        size = sizes.get(name)
        if size is None or size[0] > frame[0] or size[1] > frame[1]:
            raise ValueError(f"a preview decode of {frame} cannot feed the {name} variant")
        image = engine.pillow(engine.resize(base, size))
        out.append(Rendition(name, fmt, encode_image(image, fmt, icc), image.width, image.height))
    return out


def plan(prepared: PreparedImage, focal: FocalPoint, og_box: Box | None = None) -> list[Planned]:
    """Every variant :func:`render` makes of ``prepared`` around ``focal`` (the ``og`` one inside
    ``og_box`` when given), its size computed the way the render computes it (the fit chain
    gallery, card, thumb; the ``og`` crop box), without resizing or encoding anything: what an
    upload or an edit lists before the variants exist."""
    width, height = prepared.variants_frame or prepared.pixels.size
    sizes = _fit_chain(width, height)
    target_w, target_h = VARIANTS["og"][:2]
    if og_box is not None:  # as render cuts it: inside the image's crop named og
        (left, top, right, bottom), focal = _region(width, height, og_box, focal)
        width, height = right - left, bottom - top
    box = crop_box(width, height, target_w, target_h, focal)
    sizes["og"] = (target_w, target_h) if box[2] >= target_w else (box[2], box[3])
    fallback = fallback_of(prepared)
    return [Planned(name, fmt, *sizes[name]) for name in VARIANT_NAMES for fmt in ("webp", fallback)]
