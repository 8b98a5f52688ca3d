"""The one door to the decoders (avenue/media/ingest/decoders.py): ``Image.open`` is called there
alone, so no decode can bypass ``AVENUE_DISABLED_FORMATS``; the loaders Pillow does not own are
called only where ``images.prepare`` reaches them after its refusal. Read on the syntax tree of
every module, as tests/unit/test_ownership.py reads its owners."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from PIL import Image

from avenue.errors import UnsupportedImage
from avenue.media.ingest import decoders
from tests.helpers import image_bytes
from tests.support import source

ROOT = Path(__file__).resolve().parents[3] / "avenue"
DOOR = "avenue/media/ingest/decoders.py"
# The loaders of libvips (and librsvg through it) that read a file's bytes, and the only
# modules that call them: vips.decode_jpeg and the SVG draw helper (its size and draw), which images.prepare
# calls after decoders.refuse_disabled (JPEG and SVG can be turned off too).
FOREIGN = {"jpegload_buffer": {"avenue/media/ingest/vips.py"},
           "svgload_buffer": {"avenue/media/ingest/svgdraw.py"}}
# What names a decode on libvips's ``Image`` (its ``*load*`` operations, ``new_from_*``,
# ``thumbnail_*``) and in imagecodecs (``*_decode``, ``imread``).
VIPS_DECODES = ("load", "load_buffer", "load_source", "new_from_buffer", "new_from_file", "new_from_source",
                "thumbnail_buffer", "thumbnail_source")


def decodes(node: ast.Attribute) -> bool:
    """Whether ``node`` names a libvips or imagecodecs decode (Pillow's ``Image`` has no
    ``*load`` but ``load()``, which reads an image already opened)."""
    owner = ast.unparse(node.value)
    if owner.endswith("Image"):
        return node.attr.endswith(VIPS_DECODES) and node.attr != "load"
    return owner == "imagecodecs" and (node.attr.endswith("_decode") or node.attr == "imread")


def modules() -> list[tuple[str, ast.Module]]:
    return [(str(path.relative_to(ROOT.parent)), source.tree(path))
            for path in sorted(ROOT.rglob("*.py"))]


def pillow_image_names(tree: ast.Module) -> set[str]:
    """The names ``PIL.Image`` is bound to in a module (``from PIL import Image as PILImage``)."""
    names = set()
    for node in source.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "PIL":
            names |= {alias.asname or alias.name for alias in node.names if alias.name == "Image"}
        elif isinstance(node, ast.Import):
            names |= {alias.asname for alias in node.names if alias.name == "PIL.Image" and alias.asname}
    return names


def pillow_opens(tree: ast.Module) -> list[int]:
    """Lines calling ``Image.open`` (under any name of ``PIL.Image``, or ``PIL.Image.open``), or
    importing ``open`` from ``PIL.Image``."""
    names = pillow_image_names(tree)
    lines = []
    for node in source.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "open":
            owner = node.value
            if (isinstance(owner, ast.Name) and owner.id in names) or ast.unparse(owner) == "PIL.Image":
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "PIL.Image" \
                and any(alias.name == "open" for alias in node.names):
            lines.append(node.lineno)
    return lines


def test_pillow_opens_image_bytes_in_the_decoders_module_alone():
    found = {path: lines for path, tree in modules() if (lines := pillow_opens(tree))}
    assert set(found) == {DOOR}, found


def test_the_other_decoders_are_called_only_where_prepare_reaches_them_after_its_refusal():
    called: dict[str, set[str]] = {}
    for path, tree in modules():
        for node in source.walk(tree):
            if isinstance(node, ast.Attribute) and decodes(node):
                called.setdefault(node.attr, set()).add(path)
    assert called == FOREIGN


def test_the_finder_sees_a_call_under_another_name():
    tree = ast.parse("from PIL import Image as Picture\nPicture.open(b)\n"
                     "import PIL.Image\nPIL.Image.open(b)\n")
    assert pillow_opens(tree) == [2, 4]


def test_a_disabled_format_is_refused_by_its_leading_bytes_before_pillow_opens_it(monkeypatch):
    opened = []
    monkeypatch.setattr(Image, "open", lambda *args, **kwargs: opened.append(kwargs))
    with pytest.raises(UnsupportedImage) as refused:
        decoders.open_image(image_bytes("good/lossless_alpha.webp"), frozenset({"webp"}))
    assert refused.value.code == "format_disabled" and refused.value.details["format"] == "webp"
    assert opened == []


def test_pillow_is_handed_only_the_plugins_of_the_formats_still_on():
    assert "WEBP" not in decoders.plugins(frozenset({"webp"}))
    assert {"MPO", "JPEG"}.isdisjoint(decoders.plugins(frozenset({"jpeg"})))
    assert decoders.plugins(frozenset({"png"}), among=["PNG", "GIF"]) == ["GIF"]
    # Bytes that name no format (a WebP behind another signature) still never reach its plugin.
    disguised = b"\x00" * 4 + image_bytes("good/lossless_alpha.webp")[4:]
    with pytest.raises(Image.UnidentifiedImageError):
        decoders.open_image(disguised, frozenset({"webp"}))
    with decoders.open_image(image_bytes("good/tiny_1x1.png"), frozenset({"webp"})) as im:
        assert im.format == "PNG"
