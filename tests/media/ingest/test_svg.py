"""The SVG pipeline (avenue/media/ingest/svg.py and images.prepare): sniffed by content,
sanitised and measured once, on upload, its parse bounded before anything else reads it, the
house's sanitiser's own passes, and rasterised within the limits."""

from __future__ import annotations

import io
import re
import time

import pytest
from PIL import Image

from avenue.errors import CorruptImage, ImageTooLarge, UnsupportedImage
from avenue.media.ingest import svg, svg_cost
from avenue.media.ingest.images import Limits, prepare
from tests.helpers import image_bytes
from tests.support.client import MEDIA
from tests.support.svg import doc, post, served

LOGO = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 24"><title>Avenue</title>'
        b'<path d="M0 24 L24 0 L48 24 Z" fill="#123456"/></svg>')


@pytest.mark.parametrize("data", [
    LOGO,
    b"\xef\xbb\xbf  \n" + LOGO,
    b'<?xml version="1.0"?>\n<!-- exported -->\n' + LOGO,
    b"<!--" + b"x" * 20_000 + b"-->" + LOGO,  # an editor's long comment first
    b'<svg:svg xmlns:svg="http://www.w3.org/2000/svg"/>',
    "\ufeff<svg xmlns='http://www.w3.org/2000/svg'/>".encode("utf-16-le"),
])
def test_an_svg_is_recognised_by_its_content(data):
    assert svg.looks_like_svg(data)


@pytest.mark.parametrize("name", ["good/alpha.png", "good/progressive.jpg", "bad/text_named.jpg",
                                  "bad/html_polyglot.gif", "bad/document.pdf"])
def test_other_files_are_not_taken_for_svg(name):
    assert not svg.looks_like_svg(image_bytes(name))


def test_an_svg_is_refused_unless_the_limits_take_vectors():
    with pytest.raises(UnsupportedImage) as refused:
        prepare(LOGO, Limits())
    assert refused.value.code == "svg_not_accepted" and "SVG" not in refused.value.details["accepted"]
    prepared = prepare(LOGO, Limits().with_vector())
    assert (prepared.format, prepared.content_type) == ("SVG", "image/svg+xml")
    assert (prepared.width, prepared.height) == (48, 24) and prepared.pixels.size == (48, 24)
    assert prepared.pixels.mode == "RGBA"
    assert prepared.pixels.getpixel((24, 20))[:3] == (0x12, 0x34, 0x56)  # drawn, inside the triangle
    assert prepared.pixels.getpixel((1, 1))[3] == 0  # transparent outside it


def test_the_stored_svg_keeps_the_drawing_and_nothing_else():
    cleaned = svg.sanitise(b'<?xml version="1.0"?><?xml-stylesheet href="x.css"?><!-- hi -->' + LOGO)
    assert re.sub(rb">\s+<", b"><", cleaned) == (b'<?xml version="1.0" encoding="UTF-8"?>'
                       b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 24"><title>Avenue</title>'
                       b'<path d="M0 24 L24 0 L48 24 Z" fill="#123456"/></svg>')


@pytest.mark.parametrize(("inner", "gone"), [
    ('<a href="#top"><animate attributeName="href" to="javascript:alert(1)"/></a>', b"javascript"),
    ('<set attributeName="onclick" to="alert(1)"/>', b"alert"),
    ('<animate to="javascript:alert(1)"/>', b"javascript"),  # what svg-hush leaves of the one above
    ('<use href="/sprite.svg#a"/>', b"sprite"),
    ('<rect fill="url(/p.svg#g)"/>', b"p.svg"),
    ('<rect style="fill:url( \'https://e.example/x\' )"/>', b"e.example"),
    ('<rect style="fill:\\75rl(x)"/>', b"rl(x)"),  # a CSS escape hiding url(
    ('<style>rect{fill:url(/x)}</style>', b"url(/x)"),
    ('<style>svg{background-image:image-set("https://e.example/x.png" 1x)}</style>', b"e.example"),
    ('<style>@font-face{font-family:f;src:local(x)}</style>', b"font-face"),
    ('<image href="#a"/>', b"<image"),
    ('<feImage href="#a"/>', b"feImage"),
    ('<rect xml:base="https://e.example/"/>', b"e.example"),
])
def test_our_pass_removes_what_svg_hush_keeps(inner, gone):
    cleaned = svg.sanitise(LOGO.replace(b"</svg>", inner.encode() + b"</svg>"))
    assert gone not in cleaned, cleaned
    assert b'fill="#123456"' in cleaned


def test_local_references_and_inline_styles_are_kept():
    inner = (b'<defs><linearGradient id="g"><stop offset="0"/></linearGradient></defs>'
             b'<rect id="r" fill="url(#g)" style="stroke:url(#g);opacity:.5"/><use href="#r" x="2"/>'
             b'<text>x &lt; y</text><style>rect{fill:#fff}</style>')
    cleaned = svg.sanitise(LOGO.replace(b"</svg>", inner + b"</svg>"))
    for kept in (b'fill="url(#g)"', b'style="stroke:url(#g);opacity:.5"', b'<use href="#r" x="2"/>',
                 b"x &lt; y", b"<style>rect{fill:#fff}</style>"):
        assert kept in cleaned, kept


@pytest.mark.parametrize(("data", "error", "code"), [
    (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg"/>',
     UnsupportedImage, "svg_doctype"),
    (b'<!DOCTYPE svg [ ]><svg xmlns="http://www.w3.org/2000/svg"/>', UnsupportedImage, "svg_doctype"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><g></svg>', CorruptImage, "invalid_svg"),
    (b"<svg><rect/></svg>", CorruptImage, "invalid_svg"),  # no SVG namespace: a browser would not draw it
    (b'<svg xmlns="http://www.w3.org/2000/svg"><text>caf\xe9</text></svg>', CorruptImage, "invalid_svg"),
    (b'<svg xmlns="http://www.w3.org/2000/svg">' + b"<g>" * 300 + b"</g>" * 300 + b"</svg>",
     ImageTooLarge, "svg_too_complex"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><g id="a"><use href="#b"/></g>'
     b'<g id="b"><use href="#a"/></g></svg>', ImageTooLarge, "svg_too_complex"),
])
def test_unsafe_or_broken_svgs_are_refused_with_a_clear_code(data, error, code):
    with pytest.raises(error) as refused:
        svg.sanitise(data)
    assert refused.value.code == code and refused.value.message


def test_a_use_bomb_is_refused_before_librsvg_sees_it():
    groups = "".join(f'<g id="l{n}">' + f'<use href="#l{n - 1}"/>' * 10 + "</g>" for n in range(1, 10))
    bomb = (f'<svg xmlns="http://www.w3.org/2000/svg"><defs><rect id="l0"/>{groups}</defs>'
            '<use href="#l9"/></svg>')
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge, match="through <use>"):
        prepare(bomb.encode(), Limits().with_vector())
    assert time.perf_counter() - started < 1.0


def test_an_svg_declaring_a_huge_size_is_drawn_at_the_size_the_variants_need():
    huge = (b'<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000" viewBox="0 0 10 10">'
            b'<circle cx="5" cy="5" r="5" fill="red"/></svg>')
    limits = Limits(max_pixels=40_000_000).with_vector()
    prepared = prepare(huge, limits)
    assert prepared.width == prepared.height and prepared.width * prepared.height <= 40_000_000
    assert prepared.pixels.size == (1600, 1600)
    # A rendition on request asks for a fraction of the shown size; it gets that, no more.
    wide = prepare(huge, limits, decode_scale=lambda width, height: 640 / width)
    assert wide.pixels.size == (640, 640)


def test_shown_size_keeps_the_aspect_ratio_within_the_pixel_limit():
    assert svg.shown_size((48, 24), 1000) == (44, 22)
    assert svg.shown_size((48, 24), 10_000) == (48, 24)
    width, height = svg.shown_size((100_000, 1_000), 40_000_000)
    assert width * height <= 40_000_000 and 99 <= width / height <= 101


@pytest.mark.parametrize("doctype", [
    b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">',
    b'<!DOCTYPE svg SYSTEM "file:///etc/passwd">',
])
def test_a_doctype_that_only_names_a_dtd_is_dropped_and_never_read(doctype):
    cleaned = svg.sanitise(b'<?xml version="1.0"?>\n' + doctype + b"\n" + LOGO)
    assert b"DOCTYPE" not in cleaned and b"passwd" not in cleaned and b'fill="#123456"' in cleaned


def nested_markers(levels: int = 4, vertices: int = 40) -> bytes:
    """A 2 KB logo whose every vertex of each level's polyline draws the level below."""
    points = " ".join(f"{n % 7} {n // 7}" for n in range(vertices))
    markers = "".join(f'<marker id="m{n}"><polyline points="{points}" marker-start="url(#m{n - 1})" '
                      f'marker-mid="url(#m{n - 1})" marker-end="url(#m{n - 1})"/></marker>'
                      for n in range(1, levels))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><defs>'
            f'<marker id="m0"><rect width="1" height="1"/></marker>{markers}</defs>'
            f'<polyline points="{points}" marker-mid="url(#m{levels - 1})"/></svg>').encode()


def filtered(primitives: str, view_box: str = "0 0 100 100") -> bytes:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{view_box}">'
            f'<filter id="f">{primitives}</filter>'
            '<rect width="100" height="100" filter="url(#f)"/></svg>').encode()


def nested_patterns(levels: int) -> bytes:
    tile = 'width="10" height="10" patternUnits="userSpaceOnUse"'
    patterns = "".join(f'<pattern id="p{n}" {tile}><rect width="5" height="5" fill="url(#p{n - 1})"/>'
                       "</pattern>" for n in range(1, levels))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100"><defs>'
            f'<pattern id="p0" {tile}><rect width=".5" height=".5"/></pattern>{patterns}</defs>'
            f'<rect width="100" height="100" fill="url(#p{levels - 1})"/></svg>').encode()


def percent_use_bomb(levels: int = 6, fan_out: int = 10) -> bytes:
    """``fan_out ** levels`` rectangles in a browser, which decodes ``#%61N`` to ``#aN``."""
    groups = "".join(f'<g id="a{n}">' + f'<use href="#%61{n - 1}"/>' * fan_out + "</g>"
                     for n in range(1, levels + 1))
    return (f'<svg xmlns="http://www.w3.org/2000/svg"><defs><rect id="a0" width="1" height="1"/>{groups}'
            f'</defs><use href="#a{levels}"/></svg>').encode()


def refused_by_the_count(monkeypatch, data: bytes) -> ImageTooLarge:
    """The sanitiser's refusal of ``data``, librsvg never asked to read or draw it."""
    def must_not_draw(*args, **kwargs):
        pytest.fail("librsvg was asked to read or draw it")

    monkeypatch.setattr(svg, "intrinsic_size", must_not_draw)
    monkeypatch.setattr(svg, "rasterise", must_not_draw)
    with pytest.raises(ImageTooLarge) as refused:
        prepare(data, Limits().with_vector())
    return refused.value


@pytest.mark.parametrize(("data", "counted"), [
    (nested_markers(), "marker draws: 3,113,542 (at most 2,000)"),
    (filtered('<feGaussianBlur stdDeviation="1"/>' * 2000),
     "filter passes over the canvas: 2,000 (at most 8)"),
    (filtered('<feMorphology radius="200"/>', "0 0 1600 1600"), "filter passes over the canvas: 20,101"),
    (filtered('<feConvolveMatrix order="30" kernelMatrix="1"/>'), "filter passes over the canvas: 113"),
    (nested_patterns(4), "patterns nested: 4 (at most 2)"),
    (percent_use_bomb(), "elements drawn (through <use>, markers, patterns, masks and clip paths): "
                         "4,691,351"),
    # markers put on by a group or a style sheet are counted as much as an attribute's
    (nested_markers().rpartition(b"<polyline")[0]
     + b'<g style="marker:url(#m3)"><polyline points="0 0 1 0 2 0 3 0 4 0 5 0 6 0"/></g></svg>',
     "marker draws"),
    (nested_markers().replace(b'marker-mid="url(#m3)"', b'class="c"').replace(
        b"</defs>", b"</defs><style>.c{marker-mid:url(#m3)}</style>"), "marker draws"),
])
def test_what_costs_too_much_to_draw_is_refused_by_the_sanitiser_s_count_naming_it(monkeypatch, data,
                                                                                    counted):
    refused = refused_by_the_count(monkeypatch, data)
    assert refused.code == "svg_too_complex" and refused.status == 413
    assert counted in refused.message, refused.message


@pytest.mark.parametrize("inner", [
    '<marker id="a" markerWidth="4" markerHeight="4"><circle cx="2" cy="2" r="2"/></marker>'
    '<path d="M2 2 L20 10 L40 4 L46 20" stroke="#123456" marker-mid="url(#a)" marker-end="url(#a)"/>',
    '<filter id="s"><feFlood flood-color="#000"/><feComposite in2="SourceAlpha" operator="in"/>'
    '<feGaussianBlur stdDeviation="1"/><feOffset dx="1" dy="1" result="o"/>'
    '<feMerge><feMergeNode in="o"/><feMergeNode in="SourceGraphic"/></feMerge></filter>'
    '<circle cx="24" cy="12" r="6" fill="#123456" filter="url(#s)"/>',
    '<pattern id="q" width="4" height="4" patternUnits="userSpaceOnUse"><rect width="2" height="2" '
    'fill="#123456"/></pattern><pattern id="p" width="8" height="8" patternUnits="userSpaceOnUse">'
    '<rect width="8" height="8" fill="url(#q)"/></pattern><rect width="48" height="24" fill="url(#p)"/>',
])
def test_a_logo_with_a_marker_a_shadow_or_a_pattern_is_kept_and_drawn(inner):
    prepared = prepare(LOGO.replace(b"</svg>", inner.encode() + b"</svg>"), Limits().with_vector())
    assert inner.split(" ", 1)[0].encode() in prepared.data
    assert prepared.pixels.getpixel((24, 20))[:3] == (0x12, 0x34, 0x56)


@pytest.mark.parametrize(("written", "stored"), [
    ('<use href="#%61"/>', b'<use href="#a"/>'),
    ('<use xlink:href=" #a\t"/>', b'<use href="#a"/>'),  # (svg-hush writes xlink:href as href)
    ('<use href="# a"/>', b"<use/>"),  # svg-hush drops this one before our pass
    ('<use href="#&#x61;"/>', b'<use href="#a"/>'),  # the parser decodes entities
    ('<rect fill="url( \'#%61\' )" style="stroke:url(#%61)"/>',
     b'<rect fill="url(#a)" style="stroke:url(#a)"/>'),
    ('<style>rect{fill:url("#%61")}</style>', b"<style>rect{fill:url(#a)}</style>"),
    ('<use href="#%2561"/>', b"<use/>"),  # decodes to "%61": no element can be named so
    ('<use href="#a%20b"/>', b"<use/>"),
    ('<rect fill="url(#%FF)"/>', b"<rect/>"),
])
def test_a_reference_is_stored_as_a_plain_name_or_dropped(written, stored):
    logo = LOGO.replace(b"<svg ", b'<svg xmlns:xlink="http://www.w3.org/1999/xlink" ')
    cleaned = svg.sanitise(logo.replace(b"</svg>", f'<rect id="a"/>{written}</svg>'.encode()))
    assert stored in cleaned, cleaned


# --- every SVG's work bounded (issue 73) ----------------------------------------------------


def sheet_svg(groups: int = 4_000, rules: int = 2_000) -> bytes:
    """4,000 empty groups and 2,000 style rules naming a gradient: 55 KB, counted as elements x
    rules (8 million selector matches) before the parse bounded the rules."""
    sheet = "".join(f".c{n}{{fill:url(#a)}}" for n in range(rules))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><defs><linearGradient id="a"/>'
            f'</defs><style>{sheet}</style>{"<g/>" * groups}</svg>').encode()


def use_contexts(uses: int = 1_000, elements: int = 1_000) -> bytes:
    """``uses`` copies of a group of ``elements`` rectangles, each with a fill pattern of its own
    (so each copy is a context of its own for the count): 1,000 x 1,000 in under 100 KB."""
    patterns = "".join(f'<pattern id="p{n}" width="1" height="1"><rect width="1" height="1"/></pattern>'
                       for n in range(uses))
    copies = "".join(f'<use href="#g" fill="url(#p{n})"/>' for n in range(uses))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><defs>{patterns}'
            f'<g id="g">{"<rect/>" * elements}</g></defs>{copies}</svg>').encode()


def sizeless_text(chars: int = 36_000) -> bytes:
    """A text run and no width, height or viewBox: librsvg lays all of it out to find a size."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg"><text x="0" y="20">{"a b " * (chars // 4)}</text>'
            "</svg>").encode()


@pytest.mark.parametrize(("data", "said"), [
    (sheet_svg(), "more than 1,000 rules"),
    (sizeless_text(), "longer than 4,000 characters"),
    (b'<svg xmlns="http://www.w3.org/2000/svg">' + b"<g/>" * 20_001 + b"</svg>", "more than 20,000 elements"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><rect id="r"/>' + b'<use href="#r"/>' * 2_001 + b"</svg>",
     "more than 2,000 <use>"),
])
def test_input_past_its_bounds_is_refused_while_it_is_parsed(monkeypatch, data, said):
    def must_not_run(*args, **kwargs):
        pytest.fail("svg-hush or the cost count ran: the upload was not refused at its parse")

    monkeypatch.setattr(svg.py_svg_hush, "filter_svg", must_not_run)
    monkeypatch.setattr(svg.svg_cost, "check", must_not_run)
    with pytest.raises(ImageTooLarge) as refused:
        prepare(data, Limits().with_vector())
    assert refused.value.code == "svg_too_complex" and refused.value.status == 413
    assert said in refused.value.message, refused.value.message


def test_the_count_stops_as_soon_as_its_walk_passes_the_budget(monkeypatch):
    steps = []
    real = svg_cost._Counter.cost

    def counted(self, node, inherited):
        steps.append(1)
        if len(steps) > 10 * svg_cost.MAX_INSTANCES:
            pytest.fail("the count walked on far past the budget")
        return real(self, node, inherited)

    monkeypatch.setattr(svg_cost._Counter, "cost", counted)
    with pytest.raises(ImageTooLarge, match="elements drawn") as refused:
        svg.sanitise(use_contexts())
    assert refused.value.code == "svg_too_complex"
    assert len(steps) <= svg_cost.MAX_INSTANCES + 1


def test_style_rules_apply_by_their_selector_once_looked_up():
    """A sheet's marker on one class, tag or id is counted on those elements only."""
    marker = '<marker id="m"><rect width="1" height="1"/></marker>'
    points = " ".join(f"{n} 0" for n in range(2_100))
    for selector, attrs, refused in ((".c", 'class="c"', True), (".c", 'class="d"', False),
                                     ("polyline", "", True), ("rect", "", False), ("#p", 'id="p"', True),
                                     ("polyline.c", 'class="c"', True), ("rect.c", 'class="c"', False),
                                     ("g > polyline", "", True)):
        data = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><defs>{marker}</defs>'
                f'<style>{selector}{{marker-mid:url(#m)}}</style><polyline {attrs} points="{points}"/></svg>')
        if refused:
            with pytest.raises(ImageTooLarge, match="marker draws"):
                svg.sanitise(data.encode())
        else:
            svg.sanitise(data.encode())


ROOTS = ['width="100" height="50"', 'width="10.5" height="7.4"', 'width="10cm" height="5mm"',
         'width="1in" height="72pt"', 'width="2pc" height="3px"', 'viewBox="0 0 33.3 20.6"',
         'width="100%" height="100%" viewBox="0 0 40 30"', 'width="100" viewBox="0 0 40 30"',
         'height="100" viewBox="0 0 40 30"', 'width="100" height="50%" viewBox="0 0 40 30"',
         'width="100" height="50" viewBox="0 0 7 9"', 'width=" 100 " height="50"', 'width="1e2" height="5E1"',
         'viewBox="0,0,40,30"', 'width="100.5" height="50.5"', 'width="100PX" height="2IN"',
         'viewBox=" 1 , 2 3e1 4.5e1 "', 'viewBox="0 0 10 10" width="auto" height="auto"']


@pytest.mark.parametrize("root", ROOTS)
def test_the_size_declared_by_the_root_is_the_one_librsvg_reads(root):
    import pyvips

    data = svg.sanitise(f'<svg xmlns="http://www.w3.org/2000/svg" {root}><rect width="3" height="4"/></svg>'
                        .encode())
    read = pyvips.Image.svgload_buffer(data, unlimited=False)
    assert svg.declared_size(data) == (read.width, read.height)


@pytest.mark.parametrize("root", ['', 'width="10"', 'width="2em" height="3ex"', 'width="50%"',
                                  'width="0" height="10"', 'viewBox="0 0 10"'])
def test_a_root_without_a_size_of_its_own_is_measured_by_librsvg_in_a_helper(monkeypatch, root):
    measured = []
    real = svg.svgdraw.measure

    def counted(data: bytes, seconds: float):
        measured.append(seconds)
        return real(data, seconds)

    monkeypatch.setattr(svg.svgdraw, "measure", counted)
    data = svg.sanitise(f'<svg xmlns="http://www.w3.org/2000/svg" {root}><rect x="3" width="20" height="10"/>'
                        "</svg>".encode())
    assert svg.declared_size(data) is None
    try:
        svg.intrinsic_size(data, 5.0)
    except CorruptImage:
        pass  # width 0: librsvg refuses it, in the helper
    assert measured == [5.0]


def test_no_librsvg_runs_in_the_worker_to_read_an_svg_s_size(monkeypatch):
    import pyvips

    def must_not_load(*args, **kwargs):
        pytest.fail("librsvg read the SVG in the worker, outside the helper's deadline")

    monkeypatch.setattr(pyvips.Image, "svgload_buffer", must_not_load)
    prepared = prepare(LOGO, Limits().with_vector())
    assert (prepared.width, prepared.height) == (48, 24)


def test_a_stored_svg_is_not_sanitised_or_counted_again(monkeypatch):
    stored = prepare(LOGO, Limits().with_vector()).data

    def must_not_run(*args, **kwargs):
        pytest.fail("the stored SVG was sanitised or counted again")

    monkeypatch.setattr(svg, "sanitise", must_not_run)
    monkeypatch.setattr(svg.svg_cost, "check", must_not_run)
    again = prepare(stored, Limits().with_vector(), decode_scale=lambda width, height: 0.5, stored=True)
    assert again.pixels.size == (24, 12) and again.data == stored


def blurred(functions: str, where: str = "attribute") -> bytes:
    """A rectangle filtered by CSS filter functions, written in an attribute, a style or a sheet."""
    put = {"attribute": f'filter="{functions}"', "style": f'style="filter:{functions}"', "sheet": 'class="b"'}
    sheet = f"<style>.b{{filter:{functions}}}</style>" if where == "sheet" else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="1600" height="1600">{sheet}'
            f'<rect width="1600" height="1600" fill="#0a7" {put[where]}/></svg>').encode()


def shared_mask(uses: int = 8) -> bytes:
    """``uses`` rectangles masked by one blurred mask: the mask is drawn for each of them."""
    rects = "".join(f'<rect x="{n}" width="90" height="90" mask="url(#m)"/>' for n in range(uses))
    return ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100"><defs>'
            '<filter id="f"><feGaussianBlur stdDeviation="5"/></filter><mask id="m">'
            '<rect width="100" height="100" fill="#fff" filter="url(#f)"/></mask>'
            f"</defs>{rects}</svg>").encode()


def shared_clip(uses: int = 200, shapes: int = 200) -> bytes:
    rects = "".join(f'<rect x="{n % 10}" width="90" height="90" style="clip-path:url(#c)"/>'
                    for n in range(uses))
    return ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100"><defs><clipPath id="c">'
            + '<circle cx="50" cy="50" r="40"/>' * shapes + f"</clipPath></defs>{rects}</svg>").encode()


@pytest.mark.parametrize(("data", "counted"), [
    (blurred(" ".join(["blur(20px)"] * 10)), "filter passes over the canvas: 10 (at most 8)"),
    (blurred(" ".join(["blur(20px)"] * 10), "style"), "filter passes over the canvas: 10 (at most 8)"),
    (blurred(" ".join(["blur(20px)"] * 10), "sheet"), "filter passes over the canvas: 10 (at most 8)"),
    (blurred("drop-shadow(2px 2px 4px #000) " * 3), "filter passes over the canvas: 9 (at most 8)"),
    (shared_mask(), "filter passes over the canvas: 9 (at most 8)"),
    (shared_clip(), "elements drawn (through <use>, markers, patterns, masks and clip paths): 40,"),
])
def test_filter_functions_masks_and_clip_paths_are_counted_as_what_they_draw(monkeypatch, data, counted):
    refused = refused_by_the_count(monkeypatch, data)
    assert refused.code == "svg_too_complex"
    assert counted in refused.message, refused.message


def test_a_logo_with_a_blur_a_mask_and_a_clip_path_is_kept():
    inner = ('<mask id="m"><rect width="48" height="24" fill="#fff"/></mask><clipPath id="c">'
             '<circle cx="24" cy="12" r="12"/></clipPath>'
             '<rect width="48" height="24" fill="#123456" mask="url(#m)" clip-path="url(#c)" '
             'style="filter:blur(0.5px) drop-shadow(1px 1px 1px #000)"/>')
    prepared = prepare(LOGO.replace(b"</svg>", inner.encode() + b"</svg>"), Limits().with_vector())
    assert b"clip-path" in prepared.data and b"blur(" in prepared.data


def test_a_long_chain_of_references_is_refused_not_recursed_into():
    """Each ``<use>`` names the next one, first to last: the count would recurse 600 deep."""
    chain = "".join(f'<use id="u{n}" href="#u{n + 1}"/>' for n in range(600))
    data = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><defs>{chain}'
            '<rect id="u600" width="1" height="1"/></defs></svg>').encode()
    with pytest.raises(ImageTooLarge, match="nests more than 200 deep") as refused:
        svg.sanitise(data)
    assert refused.value.code == "svg_too_complex"


def test_sheet_rules_naming_a_filter_each_for_every_element_are_refused_by_the_count_s_look_ups():
    """1,000 rules (at the parse's bound), each another filter for every rect: a million
    references to look up, bounded by MAX_COUNT_WORK rather than counted through."""
    rules = "".join(f"g > rect.x, rect{{filter:blur({n}px)}}" for n in range(1_000))
    data = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><style>{rules}</style>'
            f'{"<rect/>" * 5_000}</svg>').encode()
    with pytest.raises(ImageTooLarge, match="500,000 look-ups") as refused:
        svg.sanitise(data)
    assert refused.value.code == "svg_too_complex"


def test_a_stored_svg_s_renditions_neither_sanitise_nor_measure_it_again(client, editor, monkeypatch):
    media = post(client, editor, MEDIA, doc(""), "logo.svg", "image/svg+xml").get_json()
    import pyvips

    def must_not_run(*args, **kwargs):
        pytest.fail("a rendition sanitised, counted or measured the stored SVG in the worker")

    monkeypatch.setattr(svg, "sanitise", must_not_run)
    monkeypatch.setattr(svg.svg_cost, "check", must_not_run)
    monkeypatch.setattr(pyvips.Image, "svgload_buffer", must_not_run)  # the worker's; the helper draws
    status, _, rendition = served(client, f"{media['url'].rsplit('.', 1)[0]}/w_640.png")
    assert status == 200
    with Image.open(io.BytesIO(rendition)) as im:
        assert im.size == (64, 64) and im.convert("RGB").getpixel((32, 16)) == (0, 0xaa, 0x77)


def test_an_svg_past_the_parse_bounds_is_refused_413_before_anything_else_reads_it(client, editor,
                                                                                   monkeypatch):
    def must_not_run(*args, **kwargs):
        pytest.fail("svg-hush or the count read an SVG the parse should have refused")

    monkeypatch.setattr(svg.py_svg_hush, "filter_svg", must_not_run)
    monkeypatch.setattr(svg.svg_cost, "check", must_not_run)
    sheet = "".join(f".c{n}{{fill:url(#a)}}" for n in range(2_000))
    response = post(client, editor, MEDIA, doc(f"<style>{sheet}</style>" + "<g/>" * 4_000), "sheet.svg",
                    "image/svg+xml")
    assert response.status_code == 413, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "svg_too_complex" and "1,000 rules" in error["message"]


def test_the_sanitiser_s_passes_each_remove_what_svg_hush_leaves():
    # svg-hush keeps an animation's target value and rewrites external URLs to paths on our
    # own origin; the house's pass removes both.
    cleaned = svg.sanitise(doc('<animate attributeName="href" to="javascript:alert(1)"/>'
                               '<use href="http://evil.example/x.svg#a"/><rect fill="url(/p.svg#g)"/>'))
    assert b"javascript" not in cleaned and b"/x.svg" not in cleaned and b"p.svg" not in cleaned
    assert b"<use/>" in cleaned and b"<rect/>" in cleaned
