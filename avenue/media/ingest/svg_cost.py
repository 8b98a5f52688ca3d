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
  (a morphology's or a convolution's kernel, a turbulence's octaves), and each CSS filter
  function of a ``filter`` property (``blur()``, ``drop-shadow()``: in an attribute, ``style``
  or a sheet) as the primitive it is, as passes over the whole canvas at the variants' largest
  side, :data:`DRAW_SIDE`; a mask's or a clip path's content is drawn for every element that
  names it, and counted so (its elements, and the passes of its filters);
- **pattern nesting**: a pattern painted with a pattern painted with a pattern...

Past a limit the upload is refused, 413 ``svg_too_complex``, with a message naming what was
counted and the limit. The limits and how they were chosen are below; the timings are
librsvg's (through libvips, :func:`avenue.media.ingest.svg.rasterise`) on the 2-core
development machine. References are counted as the sanitiser left them: ``#`` and a plain
XML name (avenue/media/ingest/svg.py rewrites every other spelling a browser would follow),
so what is counted is what a browser builds.

A ``<style>`` sheet's rules are not matched against the tree: a marker, a filter or a pattern
a sheet names is counted as if put on every element its selector's tag, class or id could
apply it to (a complex selector: every element; an upper bound). A transform's scale is taken
as the largest anywhere in the document, for every filter radius.

The count is linear in the document: each element's own references (and its sheet rules,
looked up by its tag, classes and id) are read once; each element is costed once per context
it is drawn in, and the walk counts its steps and stops, refused, past :data:`MAX_INSTANCES`
(every step adds an element drawn), or past :data:`MAX_COUNT_WORK` look-ups of references
(sheet rules that give every element many of them); a reference chain deeper than
:data:`MAX_DRAW_DEPTH` is refused rather than recursed into. The parse before it
(avenue/media/ingest/svg.py) bounds the input: elements, ``<use>``, style rules and text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
#: How deep drawing one element may nest: elements inside elements and the references
#: followed from them (a ``<use>`` of a ``<use>``..., a marker drawing a marker); the count
#: walks them recursively, and a logo nests a few tens deep.
MAX_DRAW_DEPTH = 200
#: How many look-ups the count may make in all: each element's references (its own and its
#: sheet rules') and, at each step, those it inherits. A logo makes a few per element; a sheet
#: of rules that each name another filter or marker for every element makes thousands each.
MAX_COUNT_WORK = 500_000
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
# The properties whose references draw something, and what each may name.
_TARGETS = {"fill": "pattern", "stroke": "pattern", "marker-start": "marker", "marker-mid": "marker",
            "marker-end": "marker", "mask": "mask", "clip-path": "clipPath", "filter": "filter"}
_DRAWING = frozenset({*_TARGETS, "marker"})
# Properties an element does not pass to its children.
_NOT_INHERITED = frozenset({"filter", "mask", "clip-path"})
# CSS filter functions (in a ``filter`` property) and their passes over the canvas: each is
# one filter primitive (drop-shadow() an feDropShadow: a blur, an offset and a merge).
_FUNCTION = re.compile(r"\b(blur|brightness|contrast|drop-shadow|grayscale|hue-rotate|invert|opacity|"
                       r"saturate|sepia)\s*\(", re.IGNORECASE)
_FUNCTION_PASSES = {"drop-shadow": 3}
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


def _references(properties: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (property, target) pairs among ``properties`` that draw something: ``url(#id)``
    markers (``marker`` standing for all three), fills, strokes, masks and clip paths, and the
    whole value of a ``filter`` (its ``url(#id)`` and its CSS filter functions, :func:`_filter_passes`).
    A property set twice counts as its last value (as CSS takes it)."""
    last: dict[str, str] = {}
    for name, value in properties:
        if name in _DRAWING:
            last[name] = value
    found: set[tuple[str, str]] = set()
    for name, value in last.items():
        if name == "filter":
            if _REF.search(value) or _FUNCTION.search(value):
                found.add((name, " ".join(value.split())))
            continue
        for target in (f"#{ref}" for ref in _REF.findall(value)):
            if name == "marker":
                found.update((position, target) for position in _POSITIONS)
            else:
                found.add((name, target))
    return found


_RULE = re.compile(r"([^{}]*)\{([^{}]*)\}")
_SIMPLE = re.compile(r"^([\w-]*)(?:([.#])([\w-]+))?$")


class _Sheet:
    """What the ``<style>`` sheets refer to, indexed by the simple selector (``tag``,
    ``.class``, ``#id``, ``tag.class``, ``tag#id``) that applies it; any other selector's
    references are taken as applying to every element. An element's are found by looking up
    its own tag, classes and id: one look-up per class, whatever the number of rules."""

    def __init__(self, root: _Node) -> None:
        self.everywhere: set[tuple[str, str]] = set()
        self.keyed: dict[tuple[str, str, str], set[tuple[str, str]]] = {}
        for node in [root, *_descendants(root)]:
            if node.name != "style":
                continue
            text = "".join(child for child in node.children if isinstance(child, str))
            for selectors, body in _RULE.findall(text):
                references = _references((name.lower(), value) for name, value in _DECLARATION.findall(body))
                for selector in selectors.split(",") if references else ():
                    simple = _SIMPLE.match(selector.strip())
                    if simple is None or simple.groups() == ("", None, None):
                        self.everywhere |= references
                    else:
                        tag, kind, name = simple.groups()
                        self.keyed.setdefault((tag, kind or "", name or ""), set()).update(references)

    def references(self, node: _Node) -> list[set[tuple[str, str]]]:
        """The references of the rules that may apply to ``node``, a set per selector matched."""
        found = [self.everywhere]
        if not self.keyed:
            return found
        keys = [(node.name, "", "")]
        ident = node.attrs.get(("", "id"), "").strip()
        if ident:
            keys += [("", "#", ident), (node.name, "#", ident)]
        for name in set(node.attrs.get(("", "class"), "").split()):
            keys += [("", ".", name), (node.name, ".", name)]
        return found + [self.keyed[key] for key in keys if key in self.keyed]


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
    """The cost of each element through its references, memoised per inherited context. The
    walk counts its own steps: every step adds at least one element to what the document draws,
    so it stops, refused, as soon as it has taken more than :data:`MAX_INSTANCES`, however
    many contexts (``<use>`` each with its own fill, say) the document makes."""

    def __init__(self, root: _Node) -> None:
        self.ids: dict[str, _Node] = {}
        for node in [root, *_descendants(root)]:
            self.ids.setdefault(node.attrs.get(("", "id"), "").strip(), node)
        self.sheet = _Sheet(root)
        self.scale = _scale(root)
        self.owns: dict[int, frozenset[tuple[str, str]]] = {}
        self.vertex_counts: dict[int, int] = {}
        self.filter_passes: dict[str, int] = {}
        self.primitive_passes: dict[int, int] = {}
        # What each element inherits where it stands in the tree (a marker's or a pattern's
        # content inherits from the marker's or the pattern's ancestors, not from its user).
        self.placed: dict[int, _Context] = {}
        self.costs: dict[tuple[int, _Context], _Cost] = {}
        self.open: set[tuple[int, _Context]] = set()
        self.steps = 0
        self.work = 0
        self._index(root, frozenset())

    def _own(self, node: _Node) -> frozenset[tuple[str, str]]:
        """The references ``node`` makes itself (its properties and the sheets' rules for it)
        that name something drawn: a gradient or a missing id is left out."""
        key = id(node)
        if key not in self.owns:
            sheet = self.sheet.references(node)
            self._work(sum(len(references) for references in sheet))  # before the union is made
            made = _references(_properties(node)).union(*sheet)
            self.owns[key] = frozenset((prop, target) for prop, target in made
                                       if prop == "filter" or self.target(target, _TARGETS[prop]) is not None)
        return self.owns[key]

    def _index(self, node: _Node, inherited: _Context) -> None:
        self.placed[id(node)] = inherited
        passed = _inheritable(inherited, self._own(node))
        self._work(len(passed))
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
        self.steps += 1
        if self.steps > MAX_INSTANCES:
            raise _refused(f"{_ELEMENTS}: more than {MAX_INSTANCES:,} (at most {MAX_INSTANCES:,})")
        key = (id(node), inherited)
        if key in self.costs:
            return self.costs[key]
        if key in self.open:
            raise _refused("its elements refer to one another in a cycle (through <use>, markers, "
                           "patterns, masks or clip paths)")
        if len(self.open) >= MAX_DRAW_DEPTH:  # the keys open are the walk's stack
            raise _refused(f"its drawing nests more than {MAX_DRAW_DEPTH} deep (elements inside elements "
                           "and references followed: a chain of <use>, markers or patterns)")
        self.open.add(key)
        own = self._own(node)
        passed = _inheritable(inherited, own)
        self._work(len(passed) + len(own))
        total = _Cost(elements=1)
        for child in node.children:
            if not isinstance(child, str):
                total += self.cost(child, passed)
        total += self._referred(node, passed, own)
        self.open.discard(key)
        self.costs[key] = total
        return total

    def _referred(self, node: _Node, passed: _Context, own: frozenset[tuple[str, str]]) -> _Cost:
        """What ``node`` draws through references: its ``<use>`` target or template, and the
        markers, filters, patterns, masks and clip paths it is drawn with (inherited or its own)."""
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
            if prop == "filter":
                if (prop, reference) in own:  # a filter is not inherited
                    total += _Cost(passes=self._filter_passes(reference))
            elif prop in {"mask", "clip-path"}:
                # Drawn (with its filters) for each element that names it; not inherited.
                content = self.target(reference, _TARGETS[prop])
                if (prop, reference) in own and content is not None:
                    total += self.placed_cost(content)
            elif prop in {"fill", "stroke"} and node.name in _PAINTED and (
                    pattern := self.target(reference, "pattern")) is not None:
                inside = self.placed_cost(pattern)
                total += _Cost(inside.elements, inside.markers, inside.passes, inside.nesting + 1)
            elif prop in _POSITIONS and node.name in _SHAPES and (
                    marker := self.target(reference, "marker")) is not None:
                draws = self._vertices(node) if prop == "marker-mid" else 1
                if draws:
                    total += (self.placed_cost(marker) + _Cost(markers=1)).times(draws)
        return total

    def _work(self, lookups: int) -> None:
        """Count ``lookups`` more; refused past :data:`MAX_COUNT_WORK`."""
        self.work += lookups
        if self.work > MAX_COUNT_WORK:
            raise _refused(f"counting it takes more than {MAX_COUNT_WORK:,} look-ups of references (style "
                           "rules that give many elements many markers, filters or patterns each)")

    def _vertices(self, node: _Node) -> int:
        if id(node) not in self.vertex_counts:
            self.vertex_counts[id(node)] = _vertices(node)
        return self.vertex_counts[id(node)]

    def _filter_passes(self, value: str) -> int:
        """The passes over the canvas of a ``filter`` value: its ``url(#id)`` filters'
        primitives and its CSS filter functions (``blur(4px) drop-shadow(...)``)."""
        if value not in self.filter_passes:
            passes = sum(_FUNCTION_PASSES.get(name.lower(), 1) for name in _FUNCTION.findall(value))
            for reference in _REF.findall(value):
                filter_ = self.target(f"#{reference}", "filter")
                if filter_ is not None and id(filter_) not in self.primitive_passes:
                    self.primitive_passes[id(filter_)] = sum(_primitive_passes(primitive, self.scale)
                                                             for primitive in _descendants(filter_))
                passes += self.primitive_passes.get(id(filter_), 0)
            self.filter_passes[value] = passes
        return self.filter_passes[value]


def _inheritable(inherited: _Context, own: frozenset[tuple[str, str]]) -> _Context:
    """What an element passes to its children: what it inherits and its own references but
    its filter, mask and clip path (the properties among them that are not inherited)."""
    return frozenset(inherited | {ref for ref in own if ref[0] not in _NOT_INHERITED})


def _descendants(node: _Node) -> Iterator[_Node]:
    """Every element below ``node``, in document order (a stack: no generator per level)."""
    stack = [child for child in reversed(node.children) if not isinstance(child, str)]
    while stack:
        child = stack.pop()
        yield child
        stack.extend(grandchild for grandchild in reversed(child.children) if not isinstance(grandchild, str))


_ELEMENTS = "elements drawn (through <use>, markers, patterns, masks and clip paths)"


def check(root: _Node) -> None:
    """Refuse (413 ``svg_too_complex``, naming what was counted and its limit) the SVG whose
    sanitised tree ``root`` draws more than the limits above allow, or refers to itself in a
    cycle."""
    counter = _Counter(root)
    cost = counter.placed_cost(root)
    for label, count, limit in (("marker draws", cost.markers, MAX_MARKER_DRAWS),
                                ("filter passes over the canvas", cost.passes, MAX_FILTER_PASSES),
                                ("patterns nested", cost.nesting, MAX_PATTERN_NESTING),
                                (_ELEMENTS, cost.elements, MAX_INSTANCES)):
        if count > limit:
            raise _refused(f"{label}: {count:,} (at most {limit:,})")
