"""SVG uploads: sniffed by content, sanitised, measured and rasterised within the limits.

An SVG is a document that can run script in the site's origin when it is opened on its own,
so what is stored is never what was uploaded. Three passes, each strict on its own:

1. **a strict parse** of the upload (expat, with a DOCTYPE's internal subset, every entity
   declaration and external entity refused and external DTDs never read: no billion laughs,
   no XXE; the bytes must be UTF-8 and well formed, the root an ``<svg>`` in the SVG
   namespace), which bounds the input as it reads it (:data:`MAX_ELEMENTS`, :data:`MAX_USES`,
   :data:`MAX_STYLE_RULES`, :data:`MAX_TEXT_CHARS`, :data:`MAX_DEPTH`: 413 ``svg_too_complex``
   before any other pass runs);
2. **svg-hush** (``py-svg-hush``, the binding of Cloudflare's filter that Cloudflare Images
   runs): an allow-list of SVG elements and attributes, scripts, event handlers,
   ``<foreignObject>`` and non-SVG namespaces removed, URLs to other documents cut down;
3. **our own pass** over its output, for what it leaves: only SVG elements, no
   ``<image>``/``<feImage>`` (their only targets are other documents), no animation of a
   link or a handler, no attribute with a ``javascript:``, ``vbscript:`` or ``data:`` URL,
   no reference that does not start with ``#`` (``href``, ``xlink:href``, ``src``, CSS
   ``url()`` in an attribute, ``style`` or ``<style>``; ``@import`` and legacy CSS code
   hooks refused), every reference written as ``#`` and a plain XML name (:func:`_reference`),
   and a budget for what drawing it costs (avenue/media/ingest/svg_cost.py: ``<use>`` bombs,
   nested markers, filters, nested patterns). The tree is then written out by
   :func:`_serialise` with nothing but elements, attributes and text (no comments, processing
   instructions or doctype).

The sanitised SVG is what is stored and served (avenue/media/serve/http.py adds its CSP);
a stored one is not sanitised again. Its intrinsic size is the one its root declares
(:func:`declared_size`, worked out as libvips does); librsvg (through libvips) reads it only
for a root that declares none, and rasterises it, at the size a caller asks for and never
above it, so a file that declares 100000x100000 is never drawn at that size. Every librsvg
call runs in a helper process, killed past a deadline of its own CPU time and held to a
memory allowance (:mod:`avenue.media.ingest.svgdraw`: librsvg cannot be stopped otherwise).
Pure: bytes in, bytes or pixels out; no database, no Flask.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from urllib.parse import unquote
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

import py_svg_hush
from PIL import Image

from avenue.errors import CorruptImage, ImageTooLarge, ServerBusy, SvgTooComplex, UnsupportedImage
from avenue.media.ingest import svg_cost, svgdraw

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"

#: How deep elements may nest (expat and our recursion stay far from Python's limit).
MAX_DEPTH = 200
#: How many elements a file may have: each is drawn at least once, so a file with more could
#: never pass the draw budget (svg_cost.MAX_INSTANCES); refused while it is parsed.
MAX_ELEMENTS = svg_cost.MAX_INSTANCES
#: How many ``<use>`` elements a file may have: an icon sheet uses a few hundred.
MAX_USES = 2_000
#: How many rules its ``<style>`` sheets may have (each ``{...}`` block): an editor's export
#: has one per distinct style, a few hundred at most.
MAX_STYLE_RULES = 1_000
#: How many characters its ``<text>`` elements may hold in all: librsvg lays a text run out in
#: time worse than quadratic in its length (a 36 KB run: 68 s); a logo or a label has tens.
MAX_TEXT_CHARS = 4_000
#: How far into a file the sniffer looks for the ``<svg`` root (past an editor's comments).
SNIFF_BYTES = 65536

# Elements dropped with everything inside them, whatever svg-hush kept: their only use in a
# logo would be to show another document (or to run one).
_DROPPED = frozenset({"script", "foreignObject", "iframe", "embed", "object", "image", "feImage",
                      "handler", "listener", "audio", "video", "canvas", "discard"})
# Animations: dropped when they animate a link or an event handler (or name nothing).
_ANIMATIONS = frozenset({"animate", "set", "animateTransform", "animateMotion", "animateColor"})
_LINKS = frozenset({"href", "src"})
# A URL scheme that runs or embeds a document, once whitespace and control characters (which
# browsers skip inside a scheme) are removed.
_ACTIVE = re.compile(r"(javascript|vbscript|data|livescript):", re.IGNORECASE)
_URL = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.IGNORECASE | re.DOTALL)
# CSS that fetches or runs something whatever its URLs say.
# (image-set() and @font-face take URLs as bare strings, without url().)
_CSS_HOOKS = re.compile(r"@import|@font-face|image-set|expression\s*\(|behavior\s*:|-moz-binding|\\",
                        re.IGNORECASE)
_SPACE = re.compile(r"[\x00-\x20\x7f]+")
# A plain XML name without a colon (an NCName, near enough): what a reference may name.
_NAME = re.compile(r"[^\W\d][\w.\-\u00b7]*")
_LENGTH = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(px|in|cm|mm|pt|pc)?\s*", re.IGNORECASE)
# Pixels per unit, at the 72 dpi libvips gives librsvg.
_UNITS = {"px": 1.0, "in": 72.0, "cm": 72 / 2.54, "mm": 72 / 25.4, "pt": 1.0, "pc": 12.0}
_BOX_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SNIFF = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?svg[\s/>]")


@dataclass
class _Node:
    """An element: its namespace and local name, attributes by (namespace, name), children."""

    ns: str
    name: str
    attrs: dict[tuple[str, str], str]
    children: list[_Node | str] = field(default_factory=list)


def looks_like_svg(data: bytes) -> bool:
    """Whether ``data`` is (or claims to be) an SVG document, by content alone: markup whose
    first 64 KB hold an ``<svg`` element (in UTF-8, or in UTF-16 by its byte order mark).
    Whatever its file name or Content-Type said, such a file is taken as SVG or refused."""
    head = data[:SNIFF_BYTES]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        head = head.decode("utf-16", "ignore").encode("utf-8", "ignore")
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return text.startswith(b"<") and _SNIFF.search(text) is not None


def _invalid(message: str) -> CorruptImage:
    return CorruptImage(f"This SVG cannot be read: {message}.", code="invalid_svg")


def _too_complex(message: str) -> ImageTooLarge:
    return ImageTooLarge(f"This SVG is too complex to draw: {message}.", code="svg_too_complex")


def _refuse_dtd(*_: object) -> int:
    raise UnsupportedImage("SVG files whose DOCTYPE declares anything (entities can expand without bound "
                           "or read other files) are not accepted; export the SVG without one.",
                           code="svg_doctype")


def _doctype(name: str, system_id: str | None, public_id: str | None, has_internal_subset: int) -> int:
    """A DOCTYPE that only names the SVG DTD (as Illustrator writes) is harmless: expat never
    loads it, and it is not written out. One with declarations of its own is refused."""
    if has_internal_subset:
        _refuse_dtd()
    return 0


def _parse(data: bytes) -> _Node:
    """The element tree of ``data``, parsed strictly: UTF-8 only, no DTD of its own, no entity but
    XML's own five and character references; comments and processing instructions are not kept."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid("it is not UTF-8 text") from exc
    parser = expat.ParserCreate(encoding="utf-8", namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _doctype
    parser.EntityDeclHandler = _refuse_dtd
    parser.UnparsedEntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    root: list[_Node] = []
    stack: list[_Node] = []
    counts = {"elements": 0, "use": 0, "rules": 0, "text": 0}
    in_text = [0]  # how many <text> elements the current one is inside (or is)

    def split(qualified: str) -> tuple[str, str]:
        ns, _, name = qualified.rpartition(" ")
        return ns, name

    def start(qualified: str, attrs: dict[str, str]) -> None:
        if len(stack) >= MAX_DEPTH:
            raise ImageTooLarge(f"This SVG nests elements more than {MAX_DEPTH} deep.",
                                code="svg_too_complex")
        node = _Node(*split(qualified), {split(key): value for key, value in attrs.items()})
        counts["elements"] += 1
        counts["use"] += node.name == "use"
        in_text[0] += in_text[0] > 0 or node.name == "text"
        if counts["elements"] > MAX_ELEMENTS:
            raise _too_complex(f"it has more than {MAX_ELEMENTS:,} elements")
        if counts["use"] > MAX_USES:
            raise _too_complex(f"it has more than {MAX_USES:,} <use>")
        (stack[-1].children if stack else root).append(node)
        stack.append(node)

    def end(_: str) -> None:
        node = stack.pop()
        in_text[0] -= in_text[0] > 0
        if node.name == "style":
            counts["rules"] += sum(child.count("{") for child in node.children if isinstance(child, str))
            if counts["rules"] > MAX_STYLE_RULES:
                raise _too_complex(f"its style sheets have more than {MAX_STYLE_RULES:,} rules")

    def text(chars: str) -> None:
        if stack:
            stack[-1].children.append(chars)
            counts["text"] += len(chars) if in_text[0] else 0
            if counts["text"] > MAX_TEXT_CHARS:
                raise _too_complex(f"its text is longer than {MAX_TEXT_CHARS:,} characters")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(data.removeprefix(b"\xef\xbb\xbf"), True)
    except expat.ExpatError as exc:
        reason = expat.errors.messages[exc.code]
        raise _invalid(f"it is not well-formed XML ({reason}, line {exc.lineno})") from exc
    if not root or root[0].ns != SVG_NS or root[0].name != "svg":
        raise _invalid(f'its root element is not <svg xmlns="{SVG_NS}">')
    return root[0]


def _reference_ok(value: str) -> bool:
    """A reference to this document only: ``#id``."""
    return _SPACE.sub("", value).startswith("#")


def _reference(value: str) -> str | None:
    """The reference ``value`` (``#id``) written the one way every reader takes it: ``#`` and a
    plain XML name, whitespace removed and percent-escapes decoded; None when it names no
    element (dropped). Rewritten rather than refused, so a file an editor escaped still draws;
    and so the budget (svg_cost.py) counts what a browser builds: Chromium decodes ``#%61N`` to
    ``aN`` where librsvg and a literal counter find no such id. ``#`` alone (a link to the top)
    stays. Entities (``&#x61;``) are already decoded by the parser."""
    squeezed = _SPACE.sub("", value)
    if not squeezed.startswith("#"):
        return None
    try:
        name = unquote(squeezed[1:], errors="strict")
    except UnicodeDecodeError:
        return None
    return f"#{name}" if not name or _NAME.fullmatch(name) else None


def _references_rewritten(value: str) -> str | None:
    """``value`` (an attribute or CSS text) with every ``url()`` written ``url(#name)``, or None
    when one names no element of this document."""
    targets = [_reference(target) for _, target in _URL.findall(value)]
    if any(target is None or target == "#" for target in targets):
        return None
    rewritten = iter(targets)
    return _URL.sub(lambda _: f"url({next(rewritten)})", value)


def _value_ok(value: str) -> bool:
    """An attribute value (or CSS text) that names no active URL, nothing outside the document
    and no CSS hook."""
    squeezed = _SPACE.sub("", value)
    if _ACTIVE.search(squeezed) or _CSS_HOOKS.search(value):
        return False
    return all(_reference_ok(target) for _, target in _URL.findall(value))


def _clean(node: _Node) -> None:
    """Drop from ``node``'s subtree (in place) every element and attribute :mod:`this module
    <avenue.media.ingest.svg>` refuses (its third pass)."""
    kept: dict[tuple[str, str], str] = {}
    for (ns, name), value in node.attrs.items():
        if ns not in {"", XLINK_NS, XML_NS} or (ns == XML_NS and name not in {"space", "lang"}):
            continue
        if name.lower().startswith("on") or not _value_ok(value):
            continue
        rewritten = _reference(value) if name in _LINKS else _references_rewritten(value)
        if rewritten is None:
            continue
        kept[(ns, name)] = rewritten
    node.attrs = kept
    children: list[_Node | str] = []
    for child in node.children:
        if isinstance(child, str):
            children.append(child)
        elif _keeps(child):
            _clean(child)
            children.append(child)
    node.children = children
    if node.name == "style":
        sheet = "".join(c for c in children if isinstance(c, str))
        rewritten = _references_rewritten(sheet) if _value_ok(sheet) else None
        node.children = [rewritten] if rewritten else []


def _keeps(node: _Node) -> bool:
    """Whether an element stays (its attributes and children are cleaned separately)."""
    if node.ns != SVG_NS or node.name in _DROPPED:
        return False
    if node.name in _ANIMATIONS:
        target = node.attrs.get(("", "attributeName"), "").strip().rpartition(":")[2].lower()
        return bool(target) and target not in _LINKS and not target.startswith("on")
    return True


def _qualified(ns: str, name: str) -> str:
    return {XLINK_NS: "xlink:", XML_NS: "xml:"}.get(ns, "") + name


def _uses_xlink(node: _Node) -> bool:
    return any(ns == XLINK_NS for ns, _ in node.attrs) or any(
        isinstance(child, _Node) and _uses_xlink(child) for child in node.children)


def _serialise(root: _Node) -> bytes:
    """The tree as an SVG document: elements, attributes and text, nothing else."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']

    def write(node: _Node, top: bool) -> None:
        attrs = "".join(f" {_qualified(ns, name)}={quoteattr(value)}"
                        for (ns, name), value in node.attrs.items())
        if top:
            attrs = f" xmlns={quoteattr(SVG_NS)}" + (f" xmlns:xlink={quoteattr(XLINK_NS)}"
                                                     if _uses_xlink(node) else "") + attrs
        if not node.children:
            out.append(f"<{node.name}{attrs}/>")
            return
        out.append(f"<{node.name}{attrs}>")
        for child in node.children:
            if isinstance(child, str):
                out.append(escape(child))
            else:
                write(child, False)
        out.append(f"</{node.name}>")

    write(root, True)
    return "".join(out).encode("utf-8")


def sanitise(data: bytes) -> bytes:
    """The SVG to store for the upload ``data``: parsed strictly, filtered by svg-hush, then
    by our own pass, written out anew (module docstring). 422 ``invalid_svg`` for a file that
    is not a well-formed UTF-8 SVG document, 415 ``svg_doctype`` for one whose DOCTYPE declares
    anything, 413 ``svg_too_complex`` for one that costs too much to draw (:func:`svg_cost.check`)."""
    _parse(data)  # the upload itself, before any other parser sees it
    try:
        hushed = py_svg_hush.filter_svg(data)
    except ValueError as exc:
        raise _invalid(str(exc)) from exc
    root = _parse(hushed)
    _clean(root)
    svg_cost.check(root)
    return _serialise(root)


class _Root(Exception):  # noqa: N818 (not an error: how the root's attributes leave expat)
    def __init__(self, attrs: dict[str, str]) -> None:
        self.attrs = attrs


def declared_size(data: bytes) -> tuple[int, int] | None:
    """The size librsvg (through libvips, at its 72 dpi) draws the sanitised SVG ``data`` at,
    worked out from its root's ``width``, ``height`` and ``viewBox`` as libvips does: both
    sides as absolute lengths; one side and the viewBox's aspect ratio; the viewBox's size;
    each rounded half up. None when the root declares no size so read (no viewBox and a side
    missing, in percent or in font units): librsvg would lay the content out to find it.
    Only the root element is parsed."""
    parser = expat.ParserCreate(encoding="utf-8")

    def start(_: str, attrs: dict[str, str]) -> None:
        raise _Root(attrs)

    parser.StartElementHandler = start
    try:
        parser.Parse(data, True)
    except _Root as root:
        attrs = root.attrs
    except expat.ExpatError:
        return None
    else:
        return None
    width, height = _length(attrs.get("width")), _length(attrs.get("height"))
    box = [float(number) for number in _BOX_NUMBER.findall(attrs.get("viewBox", ""))]
    box_size = box[2:] if len(box) == 4 and box[2] > 0 and box[3] > 0 else None
    if any(side is not None and not 0 < side < math.inf for side in (width, height, *(box_size or ()))):
        return None  # a side of 0 or overflowing: libvips's own answer (its refusal) is the one
    if width is not None and height is not None:
        size = (width, height)
    elif box_size is None:
        return None
    elif width is not None:
        size = (width, width * box_size[1] / box_size[0])
    elif height is not None:
        size = (height * box_size[0] / box_size[1], height)
    else:
        size = (box_size[0], box_size[1])
    if not all(0 < side < 1e9 for side in size):
        return None
    return math.floor(size[0] + 0.5), math.floor(size[1] + 0.5)


def _length(value: str | None) -> float | None:
    """An absolute length in libvips's pixels (72 dpi); None for none, a percentage, font
    units or anything else librsvg takes as relative (or refuses)."""
    found = _LENGTH.fullmatch(value or "")
    return float(found[1]) * _UNITS[(found[2] or "px").lower()] if found else None


def intrinsic_size(data: bytes, seconds: float) -> tuple[int, int]:
    """The size librsvg draws the sanitised SVG ``data`` at (its width and height, else its
    viewBox, else its content's box): :func:`declared_size` when the root declares it, read by
    no librsvg; otherwise read by librsvg in a draw helper within ``seconds``, as a draw
    (:func:`avenue.media.ingest.svgdraw.measure`: past them 413 ``svg_too_complex``)."""
    size = declared_size(data)
    if size is None:
        try:
            size = svgdraw.measure(data, seconds)
        except svgdraw.DrawTimedOut as exc:
            raise SvgTooComplex(f"This SVG declares no size, and librsvg takes longer than {seconds:g} s to "
                                "lay its content out to find one; give its root a width and a height or "
                                "a viewBox.", seconds=seconds) from exc
        except svgdraw.DrawTooLarge as exc:
            raise SvgTooComplex(f"This SVG declares no size, and librsvg needs more than "
                                f"{svgdraw.footprint(0, 0) / 2**20:.0f} MB of memory to lay its content out "
                                "to find one; give its root a width and a height or a viewBox.",
                                seconds=seconds) from exc
        except svgdraw.DrawBusy as exc:
            raise ServerBusy("The server is drawing other SVGs; try again in a few seconds.",
                             retry_after=5) from exc
        except svgdraw.DrawFailed as exc:
            raise _invalid("it has no drawable size") from exc
    if size[0] < 1 or size[1] < 1:
        raise _invalid("it has no drawable size")
    return size


def shown_size(intrinsic: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """What the image's width and height are: its intrinsic size, scaled down to
    ``max_pixels`` if it declares more (a vector has no pixels of its own; it is drawn at
    most at this size)."""
    width, height = intrinsic
    if width * height <= max_pixels:
        return width, height
    scale = (max_pixels / (width * height)) ** 0.5
    return max(1, int(width * scale)), max(1, int(height * scale))


def draw_bytes(size: tuple[int, int]) -> int:
    """The memory a draw at ``size`` takes in its helper process, at most: what the caller
    reserves in the decode budget for it beside its own copies (:func:`svgdraw.footprint`)."""
    return svgdraw.footprint(*size)


def rasterise(data: bytes, intrinsic: tuple[int, int], size: tuple[int, int],
              seconds: float) -> Image.Image:
    """The sanitised SVG ``data`` drawn at ``size`` (its aspect ratio kept: the scale is the
    width's), as RGBA pixels; only that many pixels are ever allocated. Drawn by one of the
    process's helpers (:mod:`avenue.media.ingest.svgdraw`) within ``seconds`` of its CPU time
    (AVENUE_SVG_DRAW_SECONDS) and :func:`draw_bytes` of memory: past either the draw is
    stopped and :class:`~avenue.errors.SvgTooComplex` raised (413 ``svg_too_complex``); a
    machine too busy to draw it now is :class:`~avenue.errors.ServerBusy` (503), no verdict."""
    scale = size[0] / intrinsic[0]
    allowed = draw_bytes(size)
    try:
        width, height, pixels = svgdraw.draw(data, scale, seconds, allowed)
    except svgdraw.DrawTimedOut as exc:
        raise SvgTooComplex(f"This SVG takes longer than {seconds:g} s to draw at {size[0]}x{size[1]} px.",
                            seconds=seconds) from exc
    except svgdraw.DrawTooLarge as exc:
        raise SvgTooComplex(f"This SVG needs more than {allowed / 2**20:.0f} MB of memory to draw at "
                            f"{size[0]}x{size[1]} px.", seconds=seconds, limit_bytes=allowed) from exc
    except svgdraw.DrawBusy as exc:
        raise ServerBusy("The server is drawing other SVGs; try again in a few seconds.",
                         retry_after=5) from exc
    except svgdraw.DrawFailed as exc:
        raise _invalid("librsvg could not draw it") from exc
    image = Image.frombytes("RGBA", (width, height), pixels)
    if image.size != size:  # librsvg rounds each side on its own
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image
