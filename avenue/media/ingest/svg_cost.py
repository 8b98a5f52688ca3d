"""What drawing a sanitised SVG costs, counted on its tree before librsvg (or a browser) sees it.

A small SVG can ask for a great deal of drawing, because one element can make the renderer
draw another many times over. This module follows every such reference and counts, with exact
numbers, what the whole document draws:

- **elements drawn**: each element once, plus what a ``<use>`` instantiates, what a marker
  draws at each vertex it is put on and what a pattern paints (the existing ``<use>`` bomb
  counter, extended);
- **marker draws**: how many times a marker is drawn: the vertices of each ``<path>``,
  ``<line>``, ``<polyline>`` and ``<polygon>`` times the markers put on it
  (``marker-start``/``-mid``/``-end`` and ``marker``, as attributes, in ``style`` or a
  ``<style>`` sheet, inherited from a group), multiplied through nesting: a marker whose
  content has markers or ``<use>`` draws all of that at every vertex;
- **filter passes**: each filter primitive applied, weighted by what it costs per pixel
  (a morphology's or a convolution's kernel, a turbulence's octaves), as passes over the whole
  canvas at the variants' largest side, :data:`DRAW_SIDE`;
- **pattern nesting**: a pattern painted with a pattern painted with a pattern...

Past a limit the upload is refused, 413 ``svg_too_complex``, with a message naming what was
counted and the limit. The limits and how they were chosen are below; the timings are
librsvg's (through libvips, :func:`avenue.media.ingest.svg.rasterise`) on the 2-core
development machine. References are counted as the sanitiser left them: ``#`` and a plain
XML name (avenue/media/ingest/svg.py rewrites every other spelling a browser would follow),
so what is counted is what a browser builds.

A ``<style>`` sheet's rules are not matched against the tree: a marker, a filter or a pattern
a sheet names is counted as if put on every element it could apply to (an upper bound). A
transform's scale is taken as the largest anywhere in the document, for every filter radius.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from avenue.errors import ImageTooLarge

#: What may be drawn in all, each element once per copy (through ``<use>``, markers and
#: patterns): a logo has a few hundred; a nested ``<use>`` bomb has billions.
MAX_INSTANCES = 20_000
#: How many times markers may be drawn. A marker draw costs librsvg about 40 µs for a small
#: shape (3 levels of 10-vertex polylines, 800 draws: 32 ms at 400 px), and 4,990 draws of a
#: dot on a polyline 0.87 s at 1600 px (timed on the 2-core machine under a load of 9), so
#: 2,000 stay well under a second. A chart with a dot on each of a few hundred points passes;
#: the 4-level, 40-vertex marker logo (3.1 million draws counted, 16 s to upload) is refused.
MAX_MARKER_DRAWS = 2_000
#: How many canvas passes filters may take: a logo's drop shadow or glow is 3 to 5 primitives
#: (flood, composite, blur, offset, merge), so 8 takes two of them. This bounds what filters
#: multiply (2,000 chained blurs: 60 s at 400 px; a morphology of radius 200: 20,101 passes),
#: not the time of a draw: a pass over the whole canvas at 1600 px took librsvg 0.6 to 2.5 s
#: (one blur; 4 chained: 10 s under a load of 9), so a filter region as large as the canvas
#: can still take seconds. The region is not estimated here (it is the filtered element's box
#: unless the filter declares one); the draw deadline (AVENUE_SVG_DRAW_SECONDS) bounds that.
MAX_FILTER_PASSES = 8
#: How deep patterns may paint with patterns: one inside another drew in 42 ms at 1600 px, a
#: third level in 1.2 s and a fourth made librsvg give up.
MAX_PATTERN_NESTING = 2
#: The side, in pixels, filters are counted at: the variants' frame is drawn at most 1600 px a
#: side (a rendition on request at up to 2560 px costs (2560/1600)^2 = 2.56 times as much).
DRAW_SIDE = 1600
#: A kernel cell of a morphology or a convolution costs about an eighth of an ordinary
#: primitive's pixel (measured: radius 4 px, 81 cells, as much as 9 colour matrices).
_CELLS_PER_PASS = 8

_XLINK = "http://www.w3.org/1999/xlink"
_SHAPES = frozenset({"path", "line", "polyline", "polygon"})
_POSITIONS = ("marker-start", "marker-mid", "marker-end")
_REF = re.compile(r"url\(\s*['\"]?#([^'\")\s]+)['\"]?\s*\)", re.IGNORECASE)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_PATH_TOKEN = re.compile(r"[MmZzLlHhVvCcSsQqTtAa]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
# How many numbers each path command takes per vertex it adds.
_PATH_ARGS = {"m": 2, "l": 2, "t": 2, "h": 1, "v": 1, "c": 6, "s": 4, "q": 4, "a": 7}
_DECLARATION = re.compile(r"([\w-]+)\s*:\s*([^;]*)")
_TRANSFORM = re.compile(r"(matrix|scale|skewX|skewY)\s*\(([^)]*)\)", re.IGNORECASE)
# Filter primitives that cost nothing of their own (they are read by their parent).
_PAINTED = _SHAPES | {"rect", "circle", "ellipse", "text", "tspan", "textPath"}
_PAINT_SERVERS = frozenset({"pattern", "linearGradient", "radialGradient"})
# Elements that draw nothing where they stand (their content is drawn where it is used).
_NOT_DRAWN = frozenset({"defs", "marker", "pattern", "symbol", "clipPath", "mask", "filter", "style",
                        "linearGradient", "radialGradient"})
_FREE = frozenset({"feMergeNode", "feFuncR", "feFuncG", "feFuncB", "feFuncA", "feDistantLight",
                   "fePointLight", "feSpotLight"})


@dataclass(frozen=True)
class _Cost:
    """What one element draws, through everything it refers to."""

    elements: int = 0
    markers: int = 0
    passes: int = 0
    nesting: int = 0

    def __add__(self, other: _Cost) -> _Cost:
        return _Cost(self.elements + other.elements, self.markers + other.markers,
                     self.passes + other.passes, max(self.nesting, other.nesting))

    def times(self, count: int) -> _Cost:
        """This drawn ``count`` times over."""
        return _Cost(self.elements * count, self.markers * count, self.passes * count,
                     self.nesting if count else 0)


class _Node(Protocol):
    """An element of the sanitised tree (svg.py's): read here, never changed."""

    @property
    def name(self) -> str: ...
    @property
    def attrs(self) -> Mapping[tuple[str, str], str]: ...
    @property
    def children(self) -> Sequence[_Node | str]: ...


# Inherited references: (property, id) pairs a group passes to what it holds.
_Context = frozenset[tuple[str, str]]


def _refused(message: str) -> ImageTooLarge:
    return ImageTooLarge(f"This SVG is too complex to draw: {message}.", code="svg_too_complex")


def _properties(node: _Node) -> Iterator[tuple[str, str]]:
    """The presentation properties ``node`` sets, from its attributes then its ``style``."""
    for (ns, name), value in node.attrs.items():
        if not ns:
            yield name.lower(), value
    for name, value in _DECLARATION.findall(node.attrs.get(("", "style"), "")):
        yield name.lower(), value


def _references(properties: Iterator[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (property, id) pairs of the ``url(#id)`` references among ``properties`` that draw
    something: markers (``marker`` standing for all three), filters, fills and strokes."""
    found: set[tuple[str, str]] = set()
    for name, value in properties:
        for target in (f"#{name}" for name in _REF.findall(value)):
            if name == "marker":
                found.update((position, target) for position in _POSITIONS)
            elif name in {*_POSITIONS, "filter", "fill", "stroke"}:
                found.add((name, target))
    return found


_RULE = re.compile(r"([^{}]*)\{([^{}]*)\}")
_SIMPLE = re.compile(r"^([\w-]*)(?:([.#])([\w-]+))?$")


def _sheet_references(root: _Node) -> list[tuple[str, set[tuple[str, str]]]]:
    """What the ``<style>`` sheets refer to, by selector: a simple one (``tag``, ``.class``,
    ``#id``, ``tag.class``) kept to be matched, any other one as ``*`` (every element)."""
    found: list[tuple[str, set[tuple[str, str]]]] = []

    def walk(node: _Node) -> None:
        if node.name == "style":
            text = "".join(child for child in node.children if isinstance(child, str))
            for selectors, body in _RULE.findall(text):
                references = _references((name.lower(), value) for name, value in _DECLARATION.findall(body))
                found.extend((selector.strip() if _SIMPLE.match(selector.strip()) else "*", references)
                             for selector in selectors.split(",") if references)
        for child in node.children:
            if not isinstance(child, str):
                walk(child)

    walk(root)
    return found


def _matches(selector: str, node: _Node) -> bool:
    """Whether a simple selector (or ``*``) may match ``node``."""
    simple = _SIMPLE.match(selector)
    if selector == "*" or simple is None:
        return True
    tag, kind, name = simple.groups()
    if tag and tag != node.name:
        return False
    if kind == "#":
        return node.attrs.get(("", "id"), "").strip() == name
    return not kind or name in node.attrs.get(("", "class"), "").split()


def _vertices(node: _Node) -> int:
    """How many vertices a shape has, where ``marker-mid`` can be drawn (an upper bound)."""
    if node.name == "line":
        return 2
    if node.name != "path":
        return len(_NUMBER.findall(node.attrs.get(("", "points"), ""))) // 2 + (node.name == "polygon")
    count, command, numbers = 0, "", 0
    for token in [*_PATH_TOKEN.findall(node.attrs.get(("", "d"), "")), "M"]:
        if token.isalpha():
            if command in _PATH_ARGS:
                count += max(1, math.ceil(numbers / _PATH_ARGS[command]))
            count += command == "z"
            command, numbers = token.lower(), 0
        else:
            numbers += 1
    return count


def _numbers(value: str | None) -> list[float]:
    return [float(number) for number in _NUMBER.findall(value or "")]


def _scale(root: _Node) -> float:
    """Device pixels per user unit at :data:`DRAW_SIDE`, times the largest scale any transform
    in the document adds. A document with no viewBox and no size is taken at one unit a side."""
    box = _numbers(root.attrs.get(("", "viewBox")))
    sides = box[2:4] if len(box) == 4 else [*_numbers(root.attrs.get(("", "width")))[:1],
                                             *_numbers(root.attrs.get(("", "height")))[:1]]
    side = max((abs(side) for side in sides), default=0.0) or 1.0

    def largest(node: _Node, above: float) -> float:
        here = above
        transforms = " ".join(node.attrs.get(("", name), "") for name in ("transform", "patternTransform"))
        for kind, arguments in _TRANSFORM.findall(transforms):
            values = [abs(value) for value in _numbers(arguments)] or [1.0]
            if kind.lower() == "matrix" and len(values) >= 4:
                here *= max(math.hypot(values[0], values[1]), math.hypot(values[2], values[3]))
            elif kind.lower() == "scale":
                here *= max(values[:2])
            elif kind.lower() != "matrix":
                here *= 1 + abs(math.tan(math.radians(values[0])))
        return max([here, *(largest(child, here) for child in node.children if not isinstance(child, str))])

    return DRAW_SIDE / side * max(1.0, largest(root, 1.0))


def _primitive_passes(primitive: _Node, scale: float) -> int:
    """What one filter primitive costs, in passes over the canvas."""
    name, attrs = primitive.name, primitive.attrs
    if name in _FREE or not name.startswith("fe"):
        return 0
    if name == "feMorphology":
        radii = (_numbers(attrs.get(("", "radius"))) or [0.0])[:2]
        cells = math.prod(2 * math.ceil(abs(radius) * scale) + 1 for radius in (radii * 2)[:2])
        return max(1, math.ceil(cells / _CELLS_PER_PASS))
    if name == "feConvolveMatrix":
        order = [max(1, int(value)) for value in _numbers(attrs.get(("", "order"))) or [3.0]][:2]
        return max(1, math.ceil(math.prod((order * 2)[:2]) / _CELLS_PER_PASS))
    if name == "feTurbulence":
        return max(1, int((_numbers(attrs.get(("", "numOctaves"))) or [1.0])[0]))
    if name in {"feDiffuseLighting", "feSpecularLighting", "feDropShadow"}:
        return 3
    return 1


class _Counter:
    """The cost of each element through its references, memoised per inherited context."""

    def __init__(self, root: _Node) -> None:
        self.ids: dict[str, _Node] = {}
        self.sheet = _sheet_references(root)
        self.scale = _scale(root)
        # What each element inherits where it stands in the tree (a marker's or a pattern's
        # content inherits from the marker's or the pattern's ancestors, not from its user).
        self.placed: dict[int, _Context] = {}
        self.costs: dict[tuple[int, _Context], _Cost] = {}
        self.open: set[tuple[int, _Context]] = set()
        self._index(root, frozenset())

    def _own(self, node: _Node) -> set[tuple[str, str]]:
        """The references ``node`` makes itself: its properties and the sheets' rules for it."""
        own = _references(_properties(node))
        for selector, references in self.sheet:
            if _matches(selector, node):
                own |= references
        return own

    def _index(self, node: _Node, inherited: _Context) -> None:
        self.ids.setdefault(node.attrs.get(("", "id"), "").strip(), node)
        self.placed[id(node)] = inherited
        passed = _inheritable(inherited, self._own(node))
        for child in node.children:
            if not isinstance(child, str):
                self._index(child, passed)

    def target(self, href: str, *kinds: str) -> _Node | None:
        """The element ``#id`` names, if it is one of ``kinds`` (any when none given)."""
        node = self.ids.get(href[1:]) if href.startswith("#") and len(href) > 1 else None
        return node if node is not None and (not kinds or node.name in kinds) else None

    def placed_cost(self, node: _Node) -> _Cost:
        """What ``node`` draws with what it inherits where it stands."""
        return self.cost(node, self.placed[id(node)])

    def cost(self, node: _Node, inherited: _Context) -> _Cost:
        """What ``node`` draws, with the references its ancestors (or a ``<use>``) pass on."""
        key = (id(node), inherited)
        if key in self.costs:
            return self.costs[key]
        if key in self.open:
            raise _refused("its elements refer to one another in a cycle (through <use>, markers or "
                           "patterns)")
        self.open.add(key)
        own = self._own(node)
        passed = _inheritable(inherited, own)
        total = _Cost(elements=1)
        for child in node.children:
            if not isinstance(child, str):
                total += self.cost(child, passed)
        total += self._referred(node, passed, own)
        self.open.discard(key)
        self.costs[key] = total
        return total

    def _referred(self, node: _Node, passed: _Context, own: set[tuple[str, str]]) -> _Cost:
        """What ``node`` draws through references: its ``<use>`` target or template, and the
        markers, filters and patterns it is drawn with (inherited or its own)."""
        total = _Cost()
        href = node.attrs.get(("", "href")) or node.attrs.get((_XLINK, "href")) or ""
        if node.name == "use" and (instance := self.target(href)) is not None:
            # The copy inherits from the <use> (and, being a copy, from nowhere else).
            total += self.cost(instance, passed)
        empty = not any(not isinstance(child, str) for child in node.children)
        if node.name in _PAINT_SERVERS and empty and (template := self.target(href, node.name)) is not None:
            total += self.placed_cost(template)
        if node.name in _NOT_DRAWN:
            return total
        for prop, reference in passed | own:
            if prop == "filter" and (filter_ := self.target(reference, "filter")) is not None:
                if (prop, reference) in own:  # a filter is not inherited
                    total += _Cost(passes=sum(_primitive_passes(primitive, self.scale)
                                              for primitive in _descendants(filter_)))
            elif prop in {"fill", "stroke"} and node.name in _PAINTED and (
                    pattern := self.target(reference, "pattern")) is not None:
                inside = self.placed_cost(pattern)
                total += _Cost(inside.elements, inside.markers, inside.passes, inside.nesting + 1)
            elif prop in _POSITIONS and node.name in _SHAPES and (
                    marker := self.target(reference, "marker")) is not None:
                draws = _vertices(node) if prop == "marker-mid" else 1
                total += (self.placed_cost(marker) + _Cost(markers=1)).times(draws)
        return total


def _inheritable(inherited: _Context, own: set[tuple[str, str]]) -> _Context:
    """What an element passes to its children: what it inherits and its own references but
    its filter (the one property among them that is not inherited)."""
    return frozenset(inherited | {ref for ref in own if ref[0] != "filter"})


def _descendants(node: _Node) -> Iterator[_Node]:
    for child in node.children:
        if not isinstance(child, str):
            yield child
            yield from _descendants(child)


def check(root: _Node) -> None:
    """Refuse (413 ``svg_too_complex``, naming what was counted and its limit) the SVG whose
    sanitised tree ``root`` draws more than the limits above allow, or refers to itself in a
    cycle."""
    counter = _Counter(root)
    cost = counter.placed_cost(root)
    for label, count, limit in (("marker draws", cost.markers, MAX_MARKER_DRAWS),
                                ("filter passes over the canvas", cost.passes, MAX_FILTER_PASSES),
                                ("patterns nested", cost.nesting, MAX_PATTERN_NESTING),
                                ("elements drawn (through <use>, markers and patterns)", cost.elements,
                                 MAX_INSTANCES)):
        if count > limit:
            raise _refused(f"{label}: {count:,} (at most {limit:,})")
