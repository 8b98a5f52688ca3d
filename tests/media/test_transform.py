"""Renditions on request: the transformation a URL names (avenue/media/transform.py), without
HTTP; and a spec naming a crop the image lacks renders around its focal point instead.

The width ladder (avenue/media/transform.py) as the image object's ``renditions`` offer it."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from avenue.errors import BadRequest
from avenue.media import Buckets, UrlSigner
from avenue.media.transform import (
    AUTO_DEFAULT_WIDTH,
    LADDER,
    MAX_SIDE,
    PARSED_CACHE_SIZE,
    AllowList,
    Spec,
    at_own_width,
    auto_width,
    clamp,
    clamped_by,
    ladder_for,
    looks_like_options,
    normalise,
    parse,
    parse_presets,
    plan,
)
from tests.support.client import uploaded
from tests.support.cornered import KEY, is_red, media, picture, red_corner


def test_it_reads_every_option_and_folds_the_pixel_ratio_into_the_box():
    request = parse("w_400,h_500,fit_cover,dpr_2,q_70,up_1.avif")
    assert request.format == "avif"
    assert request.spec == Spec(800, 1000, "cover", 70, True)
    assert request.spec.key() == "w_800,h_1000,fit_cover,q_70,up_1"



def test_a_segment_is_parsed_once_and_a_refused_one_every_time():
    # The front door answers a warm rendition on every request: its segment's parse is remembered
    # (a bounded cache), a refusal never is.
    assert parse("w_640,dpr_2.webp") is parse("w_640,dpr_2.webp")
    assert parse.cache_info().maxsize == PARSED_CACHE_SIZE
    for _ in range(2):
        with pytest.raises(BadRequest):
            parse("w_0640")

def test_every_spelling_of_one_rendition_has_one_key():
    spellings = ["w_800", "dpr_2,w_400", "w_400,dpr_2", "w_800,fit_contain", "w_800,fit_cover",
                 "w_200,dpr_4"]
    assert {parse(s).spec.key() for s in spellings} == {"w_800"}


def test_without_an_extension_the_format_is_left_to_accept():
    assert parse("w_800").format == ""
    assert parse("w_800.jpg").format == "jpeg"


@pytest.mark.parametrize("segment", [
    "", ".webp", "w_", "w_0", "w_-1", "w_+8", "w_08", "w_8e2", "w_8.0", "w_８００", "w_٨٠٠",
    f"w_{MAX_SIDE + 1}", "w_99999999999999999999", "w_800,w_900", "w_800,x_1", "W_800",
    "w_800,", ",w_800", "w_800,,h_10", "w 800", "w=800", "w_800;h_10", "w_800.gif", "w_800.svg",
    "w_800.webp.webp", "h_10,fit_fill", "w_10,fit_crop", "w_10,dpr_0", "w_10,dpr_5", "w_10,dpr_1.0",
    "w_10,dpr_1.50", "w_10,dpr_1.555", "w_10,dpr_.5", "w_10,dpr_nan", "w_10,dpr_inf", "w_10,q_0",
    "w_10,q_101", "w_10,up_0", "w_10,up_true", "fit_cover", "q_80", "dpr_2", "w_4096,dpr_3",
    "w_8192,h_8192", "w_" + "1" * 80,
])
def test_it_refuses_every_other_shape_with_a_clear_bad_request(segment):
    with pytest.raises(BadRequest) as refused:
        parse(segment)
    assert refused.value.status == 400
    assert refused.value.code == "bad_rendition"
    assert refused.value.message


def test_options_and_names_are_told_apart_by_the_underscore():
    assert looks_like_options("w_800.avif")
    assert not looks_like_options("card")
    assert not looks_like_options("card.webp")


@given(st.integers(1, 2000), st.integers(1, 2000) | st.none(), st.sampled_from(["contain", "cover"]),
       st.sampled_from(["1", "1.5", "2", "2.25", "3"]), st.integers(1, 100) | st.none(), st.booleans())
def test_the_key_parses_back_to_the_same_spec(width, height, fit, dpr, quality, upscale):
    try:
        spec = normalise(width, height, fit, Fraction(dpr), quality, upscale)
    except BadRequest:
        return  # over the limits: refused, nothing to round-trip
    assert parse(spec.key()).spec == spec


@given(st.integers(1, 6000), st.integers(1, 6000), st.integers(1, 3000), st.integers(1, 3000),
       st.sampled_from(["contain", "cover", "crop"]), st.booleans(),
       st.floats(0, 1), st.floats(0, 1))
def test_a_plan_stays_inside_the_source_and_never_upscales_unless_asked(
        src_w, src_h, width, height, fit, upscale, fx, fy):
    spec = normalise(width, height, fit, 1, None, upscale)
    made = plan(spec, (src_w, src_h), (fx, fy))
    left, top, box_w, box_h = made.box
    assert 0 <= left and 0 <= top and left + box_w <= src_w and top + box_h <= src_h
    assert box_w >= 1 and box_h >= 1 and made.size[0] >= 1 and made.size[1] >= 1
    if not upscale:
        assert made.size[0] <= box_w and made.size[1] <= box_h
    if fit == "contain":
        assert made.size[0] <= width or made.size[1] <= height or upscale
        assert made.box == (0, 0, src_w, src_h)
    if fit == "cover" and (upscale or made.size != (box_w, box_h)):
        assert made.size == (width, height)


def test_a_cover_keeps_the_focal_point_in_view():
    spec = normalise(400, 500, "cover")
    made = plan(spec, (4000, 3000), (0.9, 0.5))
    left, top, box_w, box_h = made.box
    assert (box_w, box_h) == (2400, 3000)  # the largest 4:5 box of a 4:3 photo
    assert left <= 0.9 * 4000 <= left + box_w
    assert left + box_w == 4000  # pushed against the right edge, not past it
    assert made.size == (400, 500)


def test_a_small_source_is_not_upscaled_but_keeps_the_aspect_asked_for():
    made = plan(normalise(800, 800, "cover"), (600, 300))
    assert made.box == (150, 0, 300, 300)
    assert made.size == (300, 300)
    assert plan(normalise(800, 800, "cover", upscale=True), (600, 300)).size == (800, 800)
    assert plan(normalise(1600), (600, 300)).size == (600, 300)
    assert plan(normalise(1600, upscale=True), (600, 300)).size == (1600, 800)


def test_a_crop_cuts_the_box_at_full_resolution():
    made = plan(normalise(300, 200, "crop"), (4000, 3000), (0.0, 1.0))
    assert made.box == (0, 2800, 300, 200)
    assert made.size == (300, 200)


def test_unsigned_renditions_are_the_ladder_and_the_presets_only():
    allow = AllowList(presets=parse_presets("hero=w_1920,h_800,fit_cover; card45=w_600,h_750,fit_cover",
                                            reserved=("thumb", "card")))
    for width in LADDER:
        assert allow.allows(parse(f"w_{width}").spec)
    assert allow.allows(parse("w_400,dpr_2").spec)  # 800 is on the ladder
    assert allow.allows(parse("w_600,h_750,fit_cover,dpr_2").spec)  # card45 at 2x
    assert allow.allows(parse("w_1920,h_800,fit_cover").spec)
    for refused in ("w_801", "w_800,h_600", "w_800,q_90", "w_800,up_1", "w_600,h_750,fit_cover,dpr_1.5",
                    "w_600,h_750", "h_800"):
        assert not allow.allows(parse(refused).spec), refused
    assert allow.preset("hero") == Spec(1920, 800, "cover")
    assert allow.preset("nope") is None


def test_a_preset_carrying_its_quality_is_served_unsigned_and_the_ladder_is_not():
    allow = AllowList(presets=parse_presets("square=w_512,h_512,q_80", reserved=("thumb",)))
    assert allow.allows(parse("w_512,h_512,q_80").spec)
    assert allow.allows(parse("w_512,h_512,q_80,dpr_2").spec)
    assert not allow.allows(parse("w_512,h_512,q_81").spec)
    assert not allow.allows(parse("w_800,q_80").spec)


@pytest.mark.parametrize("text", ["card=w_10", "Hero=w_10", "hero", "hero=", "hero=w_10.avif",
                                  "hero=w_0", "a=w_1;a=w_2", "x" * 30 + "=w_1"])
def test_a_bad_preset_setting_is_refused_at_start(text):
    with pytest.raises(ValueError):
        parse_presets(text, reserved=("thumb", "card", "gallery", "og"))


@pytest.mark.parametrize("width,expected", [
    (1, [(160, 1)]),
    (160, [(160, 160)]),
    (161, [(160, 160), (320, 161)]),
    (1024, [(160, 160), (320, 320), (480, 480), (640, 640), (800, 800), (960, 960), (1280, 1024)]),
    (2560, [(step, step) for step in LADDER]),
    (8000, [(step, step) for step in LADDER]),
])
def test_the_ladder_for_an_image_stops_at_its_own_width(width, expected):
    assert ladder_for(width) == expected


@given(st.integers(min_value=1, max_value=20000))
def test_the_ladder_for_any_width_is_on_the_allow_list_and_never_asks_for_more_than_the_image(width):
    steps = ladder_for(width)
    shown = [made for _, made in steps]
    assert shown == sorted(set(shown)) and max(shown) <= width
    assert all(AllowList().allows(Spec(width=step)) for step, _ in steps)
    assert all(plan(Spec(width=step), (width, 100)).size[0] == made for step, made in steps)


def test_a_width_alone_above_the_source_s_is_clamped_to_it_and_nothing_else_is():
    assert clamp(Spec(width=2560), (1000, 500)) == Spec(width=1000)
    assert clamp(Spec(width=960), (1000, 500)) == Spec(width=960)
    hero = (0.25, 0, 0.5, 1)
    assert clamp(Spec(width=2560, crop="hero"), (1000, 500), hero) == Spec(width=500, crop="hero")
    for spec in (Spec(2560, 2000), Spec(width=2560, upscale=True), Spec(height=2000)):
        assert clamp(spec, (1000, 500)) == spec
    assert clamp(Spec(width=2560), None) == Spec(width=2560)  # size unknown
    assert at_own_width(Spec(width=1000), (1000, 500)) and not at_own_width(Spec(width=960), (1000, 500))
    assert clamped_by("w_1000") == ["w_1280", "w_1600", "w_1920", "w_2560"]
    assert clamped_by("c_hero,w_2000") == ["c_hero,w_2560"] and clamped_by("w_100,h_100") == []


# --- w_auto: the width from the browser's client hints ----------------------------------------


def test_w_auto_is_parsed_with_a_crop_and_a_quality_and_nothing_else():
    auto = parse("c_hero,w_auto,q_70.webp")
    assert auto.auto and auto.format == "webp" and (auto.spec.crop, auto.spec.quality) == ("hero", 70)
    assert auto.spec.width == AUTO_DEFAULT_WIDTH  # until the hints say otherwise
    assert not parse("w_800").auto
    for other in ("w_auto,h_400", "w_auto,dpr_2", "w_auto,up_1", "w_auto,fit_cover,h_300"):
        with pytest.raises(BadRequest, match="w_auto takes its width from the browser's client hints"):
            parse(other)


@pytest.mark.parametrize(("width", "viewport", "dpr", "served"), [
    ("700", None, None, 800),  # the smallest step that covers the slot's device pixels
    ("800", None, None, 800),
    ("801", None, None, 960),
    ("1000", "400", "3", 1280),  # the slot's width wins over the viewport's
    (None, "400", "2", 800),  # a full-width image: the viewport times the pixel ratio
    (None, "390", "3", 1280),
    (None, "390", None, 480),
    ("9000", None, None, 2560),  # past the ladder: its largest step
    ("1", None, None, 160),
    (None, None, "2", AUTO_DEFAULT_WIDTH),  # no width hint: the documented default
    (None, None, None, AUTO_DEFAULT_WIDTH),
    ("abc", None, None, AUTO_DEFAULT_WIDTH),  # malformed hints count as absent, never an error
    ("-5", "0", "x", AUTO_DEFAULT_WIDTH),
    ("99999", None, None, 2560),
    ("1000000000", None, None, 2560),  # however large the number: once the default (issue 62)
    ("9" * 5000, None, None, 2560),  # past int()'s 4300 digits too
    (None, "1000000000", "2", 2560),
    ("0", None, None, AUTO_DEFAULT_WIDTH),
    ("1e9", None, None, AUTO_DEFAULT_WIDTH),
    ("1000000000.5", None, None, AUTO_DEFAULT_WIDTH),
    (None, "400", "10", 1600),  # a pixel ratio is held to 4
])
def test_w_auto_serves_the_smallest_ladder_width_that_covers_the_hints(width, viewport, dpr, served):
    assert auto_width(width, viewport, dpr) == served


# --- c_<name> in the rendition grammar --------------------------------------------------------


def test_a_crop_name_is_part_of_the_spec_and_its_key():
    request = parse("w_800,c_hero-2.webp")
    assert request.spec == Spec(width=800, crop="hero-2") and request.format == "webp"
    assert request.spec.key() == "c_hero-2,w_800"
    assert parse("c_hero").spec == Spec(crop="hero")
    for bad in ("c_Hero,w_800", "c_,w_800", "c_hero,c_card,w_800", "c_he.ro,w_8"):
        with pytest.raises(BadRequest):
            parse(bad)


def test_crop_renditions_are_unsigned_only_at_ladder_widths():
    allow = AllowList(presets={"og": Spec(1200, 630, "cover")})
    assert allow.allows(Spec(width=800, crop="hero"), crops={"hero"})
    assert not allow.allows(Spec(width=801, crop="hero"), crops={"hero"})
    assert not allow.allows(Spec(crop="hero"), crops={"hero"})
    assert not allow.allows(Spec(width=800, height=800, fit="cover", crop="hero"), crops={"hero"})
    assert allow.allows(Spec(1200, 630, "cover", crop="og"))  # the preset with its own crop
    assert not allow.allows(Spec(1200, 630, "cover", crop="hero"), crops={"hero"})


def test_a_crop_name_the_image_does_not_have_is_unsigned_only_for_a_preset_s_name():
    allow = AllowList(presets={"og": Spec(1200, 630, "cover")})
    assert not allow.allows(Spec(width=800, crop="hero"))
    assert not allow.allows(Spec(width=800, crop="hero"), crops={"card"})
    assert allow.allows(Spec(width=800, crop="og"))  # a preset's name: bounded by the presets


def test_the_plan_cuts_the_named_crop_then_fits_it():
    crop = (0.5, 0.5, 0.5, 0.5)  # the bottom-right quarter of 400x200: 200x100 at (200, 100)
    assert plan(Spec(width=100, crop="x"), (400, 200), crop=crop).box == (200, 100, 200, 100)
    assert plan(Spec(width=100, crop="x"), (400, 200), crop=crop).size == (100, 50)
    assert plan(Spec(crop="x"), (400, 200), crop=crop).size == (200, 100)
    covered = plan(Spec(50, 50, "cover", crop="x"), (400, 200), (1.0, 1.0), crop=crop)
    assert covered.box == (300, 100, 100, 100) and covered.size == (50, 50)


def test_without_the_crop_the_plan_falls_back_to_the_focal_point():
    assert plan(Spec(width=100, crop="x"), (400, 200)).box == (0, 0, 400, 200)
    assert plan(Spec(crop="x"), (400, 200)).size == (400, 200)
    covered = plan(Spec(50, 50, crop="x"), (400, 200), (0.0, 0.0))  # a box: cover around the point
    assert covered.box == (0, 0, 200, 200) and covered.size == (50, 50)


def test_without_that_crop_a_signed_rendition_falls_back_to_the_focal_point(client, editor):
    item = media(client, editor)
    client.put(f"/api/builder/media/{item['id']}/focal-point", json={"x": 0.0, "y": 0.0}, headers=editor)
    item = client.get(f"/api/builder/media/{item['id']}", headers=editor).get_json()
    signer = UrlSigner(key=KEY, ttl_seconds=3600)
    signed = signer.rendition_url(Buckets.BUILDER, item["id"], parse("c_hero,w_160").spec, "webp",
                                  version=item["version"])
    whole = picture(client, signed)  # no box: the whole picture
    assert whole.size == (160, 80) and red_corner(whole) == "tl"
    spec = parse("c_hero,w_50,h_50").spec
    url = signer.rendition_url(Buckets.BUILDER, item["id"], spec, "png", version=item["version"])
    covered = picture(client, url)  # a box: cover around the focal point (the red corner)
    assert covered.size == (50, 50) and is_red(covered.getpixel((5, 5)))
    assert not is_red(covered.getpixel((45, 45)))


def test_a_panorama_wider_than_the_ladder_stops_at_its_top(client, editor):
    panorama = uploaded(client, editor, "good/panorama.jpg", visibility="public", expect=(201,))  # 8000 wide
    assert panorama["renditions"]["widths"] == list(LADDER)
