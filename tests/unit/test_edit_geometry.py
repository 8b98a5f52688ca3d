"""The image editor's geometry (avenue/console/static/js/editgeometry.js), run under node:
aspect ratios, keeping boxes inside the picture, the keyboard, and how boxes, points and the
edits follow a quarter turn or a flip (rotate then flip, as the editing API applies them)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "avenue" / "console" / "static" / "js" / "editgeometry.js"
NODE = shutil.which("node") or shutil.which("nodejs")
WIDE = {"width": 4000, "height": 2000}


def run(expression: str):
    """The JSON value of ``expression``, evaluated under node with the module imported as ``g``."""
    if NODE is None:
        pytest.fail("node is missing: run `make node` (apt-get install -y nodejs)")
    script = f"import * as g from {json.dumps(MODULE.as_uri())};\nconsole.log(JSON.stringify({expression}));"
    done = subprocess.run([NODE, "--input-type=module", "-e", script], capture_output=True, text=True,
                          timeout=60, check=False, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def js(value) -> str:
    return json.dumps(value)


def pixel_ratio(box: dict, size: dict) -> float:
    return box["width"] * size["width"] / (box["height"] * size["height"])


def approx(box: dict) -> dict:
    return {key: pytest.approx(value, abs=1e-9) for key, value in box.items()}


@pytest.mark.parametrize("ratio", [1, 4 / 5, 3 / 2, 16 / 9, 1.91])
def test_an_aspect_button_makes_the_largest_centred_box_of_that_ratio(ratio):
    box = run(f"g.fitRatio(g.FULL, {ratio}, {js(WIDE)})")
    assert pixel_ratio(box, WIDE) == pytest.approx(ratio)
    assert box["height"] == pytest.approx(1) or box["width"] == pytest.approx(1)
    assert box["x"] == pytest.approx((1 - box["width"]) / 2)
    assert box["y"] == pytest.approx((1 - box["height"]) / 2)


def test_the_aspect_buttons_are_the_ones_editors_know():
    labels = [choice["label"] for choice in run("g.RATIOS")]
    assert labels == ["Free", "1:1", "4:5", "3:2", "16:9", "1.91:1 (og)"]


def test_a_box_stays_inside_the_picture_and_at_least_16_pixels():
    assert run(f"g.clampBox({{x: 0.9, y: -0.2, width: 0.5, height: 0.001}}, {js(WIDE)})") == approx(
        {"x": 0.5, "y": 0, "width": 0.5, "height": 16 / 2000})
    assert run("g.moveBox({x: 0.6, y: 0.1, width: 0.3, height: 0.3}, 0.5, -0.5)") == approx(
        {"x": 0.7, "y": 0, "width": 0.3, "height": 0.3})


def test_dragging_a_corner_keeps_the_opposite_one_and_the_ratio():
    start = {"x": 0.25, "y": 0.25, "width": 0.5, "height": 0.5}
    free = run(f"g.dragCorner({js(start)}, 'nw', {{x: 0.1, y: 0.2}}, null, {js(WIDE)})")
    assert free == approx({"x": 0.1, "y": 0.2, "width": 0.65, "height": 0.55})
    square = run(f"g.dragCorner({js(start)}, 'se', {{x: 0.95, y: 0.3}}, 1, {js(WIDE)})")
    assert (square["x"], square["y"]) == (0.25, 0.25) and pixel_ratio(square, WIDE) == pytest.approx(1)
    # The bottom edge stops it: the width follows the height that is left.
    assert square["y"] + square["height"] <= 1 + 1e-9 and square["height"] == pytest.approx(0.75)


def test_arrows_move_the_box_and_shift_arrows_resize_it_keeping_the_ratio():
    start = {"x": 0.2, "y": 0.2, "width": 0.2, "height": 0.4}
    assert run(f"g.nudge({js(start)}, 'ArrowRight', false, null, {js(WIDE)})") == approx({**start, "x": 0.21})
    assert run(f"g.nudge({js(start)}, 'ArrowUp', false, null, {js(WIDE)})") == approx({**start, "y": 0.19})
    wider = run(f"g.nudge({js(start)}, 'ArrowRight', true, null, {js(WIDE)})")
    assert wider == approx({**start, "width": 0.21})
    kept = run(f"g.nudge({js(start)}, 'ArrowDown', true, 1, {js(WIDE)})")
    assert kept["height"] == pytest.approx(0.41) and pixel_ratio(kept, WIDE) == pytest.approx(1)
    assert (kept["x"], kept["y"]) == (0.2, 0.2)


def test_a_quarter_turn_and_a_flip_carry_the_crop_with_the_picture():
    box = {"x": 0.1, "y": 0.2, "width": 0.3, "height": 0.4}
    assert run(f"g.turnBox({js(box)}, 1)") == approx({"x": 0.4, "y": 0.1, "width": 0.4, "height": 0.3})
    assert run(f"g.turnBox(g.turnBox({js(box)}, 1), -1)") == approx(box)
    assert run(f"g.flipBox({js(box)}, 'horizontal')") == approx({**box, "x": 0.6})
    assert run(f"g.flipBox({js(box)}, 'vertical')") == approx({**box, "y": 0.4})
    # The top left corner of a picture turned clockwise is its top right corner.
    assert run("g.turnPoint({x: 0, y: 0}, 1)") == {"x": 1, "y": 0}


def corners(edits: dict) -> list:
    return run(f"[[0,0],[1,0],[0,1]].map(([x, y]) => g.orientPoint({{x, y}}, {js(edits)}))")


def test_turning_a_mirrored_picture_swaps_the_flip_as_rotate_then_flip_needs():
    mirrored = {"rotate": 0, "flip_horizontal": True, "flip_vertical": False, "crop": None}
    turned = run(f"g.turnEdits({js(mirrored)}, 1)")
    assert turned == {"rotate": 90, "flip_horizontal": False, "flip_vertical": True, "crop": None}
    # The same picture as mirroring first, then turning what is shown clockwise.
    shown_then_turned = run(
        f"[[0,0],[1,0],[0,1]].map(([x, y]) => g.turnPoint(g.orientPoint({{x, y}}, {js(mirrored)}), 1))")
    assert corners(turned) == shown_then_turned
    assert run(f"g.turnEdits(g.turnEdits({js(turned)}, -1), -1)")["rotate"] == 270


def test_the_focal_point_is_a_point_of_the_crop_clamped_into_it():
    crop = {"x": 0.5, "y": 0.25, "width": 0.5, "height": 0.5}
    assert run(f"g.intoCrop({{x: 0.75, y: 0.5}}, {js(crop)})") == {"x": 0.5, "y": 0.5}
    assert run(f"g.intoCrop({{x: 0.1, y: 0.9}}, {js(crop)})") == {"x": 0, "y": 1}
    assert run(f"g.outOfCrop({{x: 0.5, y: 0.5}}, {js(crop)})") == {"x": 0.75, "y": 0.5}


def test_edits_are_sent_normalised_a_whole_picture_crop_is_none():
    assert run("g.normalise({rotate: 0, flip_horizontal: false, flip_vertical: false, crop: g.FULL})") is None
    assert run("g.normalise({rotate: 90, crop: {x: 0.123456, y: 0, width: 0.5, height: 1}})") == {
        "rotate": 90, "flip_horizontal": False, "flip_vertical": False,
        "crop": {"x": 0.1235, "y": 0, "width": 0.5, "height": 1}}
    assert run("g.sameEdits(null, {rotate: 0, crop: null})") is True
    assert run("g.CROP_NAME.test('hero') && !g.CROP_NAME.test('Hero') && !g.CROP_NAME.test('1st')") is True
