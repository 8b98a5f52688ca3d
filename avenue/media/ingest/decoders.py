"""The one door to Pillow's decoders: every decode of image bytes, uploaded or stored, opens here.

``AVENUE_DISABLED_FORMATS`` (docs/security.md, "Turning a format off") is honoured in this one
place: :func:`open_image` refuses bytes whose leading bytes name a format turned off
(:func:`refuse_disabled`, 415 ``format_disabled``) and hands Pillow only the plugins of the
formats still on, so a file whose bytes name no format cannot reach a disabled decoder either.
Uploads and renders (``images.prepare``), the exact-duplicate key of a stored original
(``near_hash.full_pixels_sha256``), the thumbs behind placeholders and near-duplicate hashes
(at upload and in the backfills) and the versions' heat maps all open their bytes here. The
decoders Pillow does not own (libvips's JPEG load, librsvg) are reached only through
``images.prepare``, after its :func:`refuse_disabled`. tests/media/ingest/test_decoders.py keeps
``Image.open`` in this module alone.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

from PIL import Image

from avenue.errors import UnsupportedImage
from avenue.media.formats import BY_NAME, DISABLED_SETTING, FORMATS, VECTOR, Format, sniff
from avenue.media.ingest import svg

try:  # HEIC as iPhones send it.
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - pillow-heif is in requirements.txt
    pillow_heif = None  # type: ignore[assignment]  # HEIC is then refused as unsupported

Image.init()  # load every plugin now, so open(formats=...) knows AVIF


def _default_label(disabled: frozenset[str]) -> str:
    return ", ".join(fmt.label for fmt in FORMATS
                     if fmt.original and not fmt.vector and fmt.name not in disabled)


def refuse_disabled(data: bytes, disabled: frozenset[str], accepted_label: str | None = None) -> None:
    """Refuse ``data`` (415 ``format_disabled``) when its leading bytes name a format in
    ``disabled`` (``formats.sniff``; an SVG by its markup), before any decoder reads a byte;
    ``accepted_label``: what the message lists as still taken (the raster formats still on)."""
    if not disabled:
        return
    fmt: Format | None = sniff(data) or (VECTOR if svg.looks_like_svg(data) else None)
    if fmt is None or fmt.name not in disabled:
        return
    label = _default_label(disabled) if accepted_label is None else accepted_label
    raise UnsupportedImage(
        f"{fmt.label} images are turned off on this server ({DISABLED_SETTING}): this one is "
        f"refused unread. Accepted formats: {label or 'none'}.",
        code="format_disabled", format=fmt.name, setting=DISABLED_SETTING,
        accepted=label.split(", ") if label else [])


def plugins(disabled: frozenset[str], among: Iterable[str] | None = None) -> list[str]:
    """Pillow's plugins (its format ids) of ``among`` (None: every plugin Pillow has) but
    those of the formats in ``disabled``."""
    off = {pillow for name in disabled for pillow in (BY_NAME[name].pillow, *BY_NAME[name].pillow_aliases)}
    return [name for name in (Image.ID if among is None else among) if name not in off]


def open_image(data: bytes, disabled: frozenset[str], *, among: Iterable[str] | None = None,
               accepted_label: str | None = None) -> Image.Image:
    """``data`` opened by Pillow (lazily: its header read), tried only by the plugins of
    ``among`` (None: all) whose formats are not in ``disabled``; 415 ``format_disabled`` when
    its leading bytes name a disabled format (:func:`refuse_disabled`). Pillow's own errors
    (``UnidentifiedImageError`` and the rest) are the caller's to classify."""
    refuse_disabled(data, disabled, accepted_label)
    # Pillow's own mechanism: open(formats=...) tries those plugins' openers and no other, so
    # a disabled decoder never sees the bytes, whatever they claim to be.
    return Image.open(io.BytesIO(data), formats=plugins(disabled, among))
