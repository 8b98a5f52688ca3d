"""JPEG XL renditions (AVENUE_JPEG_XL, off by default): one entry in the format registry
(avenue/media/formats.py) and its encoder; refused by name while off, never negotiated then;
on, served to the browsers that ask for it, with its pixels, transparency and colours right
(stored once: tests/media/test_formats.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import pyvips
from PIL import Image, ImageCms

from tests.helpers import image_bytes
from tests.support.renditions import jxl_pixels as pixels
from tests.support.renditions import put, url

ALL = "image/jxl,image/avif,image/webp,*/*"  # what Safari 17+ sends for an <img>


def test_off_by_default_a_jxl_url_is_refused_by_name_and_never_negotiated(app, client):
    assert app.config["AVENUE_JPEG_XL"] is False
    doc = put(app, image_bytes("good/progressive.jpg"), "p.jpg")
    refused = client.get(url(doc, "w_320.jxl"))
    assert refused.status_code == 400
    error = refused.get_json()["error"]
    assert error["code"] == "bad_rendition" and "AVENUE_JPEG_XL" in error["message"]
    assert refused.headers.get("X-Request-ID")
    negotiated = client.get(url(doc, "w_320"), headers={"Accept": "image/jxl,image/webp,*/*"})
    assert negotiated.status_code == 200 and negotiated.headers["Content-Type"] == "image/webp"


@pytest.fixture
def jxl_app(app_factory):
    return app_factory(AVENUE_JPEG_XL=True)


def test_on_jpeg_xl_goes_to_a_browser_that_takes_it_but_not_avif(jxl_app):
    # AVIF first: smaller at the same SSIMULACRA2 (bench/results/jpegxl-2026-11-25.md).
    client = jxl_app.test_client()
    doc = put(jxl_app, image_bytes("good/progressive.jpg"), "p.jpg")
    no_avif = "image/jxl,image/webp,*/*"
    answers = {accept: client.get(url(doc, "w_480"), headers={"Accept": accept})
               for accept in (ALL, no_avif, "image/webp,*/*", "*/*")}
    assert {accept: answer.headers["Content-Type"] for accept, answer in answers.items()} == {
        ALL: "image/avif", no_avif: "image/jxl", "image/webp,*/*": "image/webp", "*/*": "image/jpeg"}
    assert all(answer.headers["Vary"] == "Accept" for answer in answers.values())
    assert pixels(answers[no_avif].get_data()).shape[1] == 480


def test_transparency_survives_in_a_jpeg_xl(jxl_app):
    doc = put(jxl_app, image_bytes("good/alpha.png"), "a.png")
    answer = jxl_app.test_client().get(url(doc, "w_160.jxl"))
    assert answer.status_code == 200
    decoded = pixels(answer.get_data())
    assert decoded.shape[2] == 4 and decoded[..., 3].min() < 255  # some of it is see-through


def display_p3() -> bytes:
    """libvips's own Display P3 profile (a built-in of libvips, embedded in a PNG it writes)."""
    png = pyvips.Image.black(4, 4, bands=3).copy(interpretation="srgb").pngsave_buffer(profile="p3")
    with Image.open(io.BytesIO(png)) as im:
        return im.info["icc_profile"]


def test_a_wide_gamut_photo_is_turned_to_srgb_since_the_jpeg_xl_carries_no_profile(jxl_app):
    # A flat green in Display P3: the JPEG XL must show the colour its sRGB conversion gives,
    # not the P3 numbers read as sRGB (a duller, shifted green).
    p3 = ImageCms.ImageCmsProfile(io.BytesIO(display_p3()))
    im = Image.new("RGB", (400, 300), (40, 170, 70))
    out = io.BytesIO()
    im.save(out, "PNG", icc_profile=display_p3())
    doc = put(jxl_app, out.getvalue(), "wide.png")
    answer = jxl_app.test_client().get(url(doc, "w_160.jxl"))
    assert answer.status_code == 200
    got = pixels(answer.get_data())[50, 80].astype(int)
    expected = np.asarray(ImageCms.profileToProfile(im, p3, ImageCms.createProfile("sRGB")))[0, 0].astype(int)
    assert np.abs(got - expected).max() <= 6, (got, expected)  # the converted colour (lossy: a few levels)
    assert np.abs(got - np.array([40, 170, 70])).max() > 10, got  # not the profile-less numbers
