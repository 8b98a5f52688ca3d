"""Renditions on request, as a browser asks for them: ranges and 304s, never upscaled, the
format by Accept, presets, malformed options, and the limit of unsigned cold renders (what is
signed, rendered once, stored, claimed and removed: tests/media/store/test_renditions.py)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.helpers import Auth
from tests.support.on_request import limited, path, put


def test_it_answers_ranges_and_304_like_any_file(app, client, db):
    doc = put(app)
    url = path(doc, "w_320.jpg")
    whole = client.get(url)
    part = client.get(url, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.get_data() == whole.get_data()[:10]
    again = client.get(url, headers={"If-None-Match": whole.headers["ETag"]})
    assert again.status_code == 304


def test_a_rendition_is_never_upscaled(app, client):
    doc = put(app)  # 1024 x 768
    response = client.get(path(doc, "w_1920.png"))
    with Image.open(io.BytesIO(response.get_data())) as im:
        assert (im.format, im.size) == ("PNG", (1024, 768))


@pytest.mark.parametrize("accept,expected", [
    ("image/avif,image/webp,*/*", "image/avif"),
    ("image/webp,*/*", "image/webp"),
    ("*/*", "image/jpeg"),
    ("", "image/jpeg"),
    # q-values (issue 62: "image/avif;q=0" got AVIF): q=0 is never, the higher q wins.
    ("image/avif;q=0,image/webp,*/*", "image/webp"),
    ("image/avif;q=0,image/webp;q=0,*/*", "image/jpeg"),
    ("image/avif;q=0.5,image/webp,*/*;q=0.8", "image/webp"),
    ("image/avif;q=0.5,image/jpeg", "image/jpeg"),
])
def test_without_an_extension_the_format_follows_accept_and_says_so(app, client, accept, expected):
    doc = put(app)
    response = client.get(path(doc, "w_160"), headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == expected
    assert response.headers["Vary"] == "Accept"


def test_an_image_with_transparency_falls_back_to_png(app, client):
    doc = put(app, "good/alpha.png")
    response = client.get(path(doc, "w_160"), headers={"Accept": "*/*"})
    assert response.headers["Content-Type"] == "image/png"


@pytest.mark.parametrize("options", ["w_0", "w_800,w_800", "x_1", "w_08", "w_800.gif", "fit_cover", "w_abc"])
def test_malformed_options_are_400_bad_rendition(app, client, options):
    doc = put(app)
    response = client.get(path(doc, options))
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_rendition"


def test_presets_are_served_unsigned_at_1x_to_3x_and_by_name(app_factory):
    app = app_factory(AVENUE_RENDITION_PRESETS="hero=w_600,h_200,fit_cover")
    client = app.test_client()
    doc = put(app)
    assert client.get(path(doc, "w_600,h_200,fit_cover.webp")).status_code == 200
    assert client.get(path(doc, "w_600,h_200,fit_cover,dpr_2.webp")).status_code == 200
    named = client.get(path(doc, "hero.jpg"))
    assert named.status_code == 200
    with Image.open(io.BytesIO(named.get_data())) as im:
        assert im.size == (600, 200)
    assert client.get(path(doc, "w_600,h_201,fit_cover.webp")).status_code == 403


def test_a_preset_carrying_its_quality_is_served_unsigned(app_factory):
    app = app_factory(AVENUE_RENDITION_PRESETS="square=w_512,h_512,q_80")
    client = app.test_client()
    doc = put(app)
    for segment in ("square.webp", "w_512,h_512,q_80.webp"):
        answer = client.get(path(doc, segment))
        assert answer.status_code == 200, (segment, answer.get_data())
    refused = client.get(path(doc, "w_512,h_512,q_81.webp"))
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "rendition_not_allowed"


@pytest.mark.parametrize("presets", ["card=w_100", "Hero=w_100", "hero=w_0", "hero=w_100.webp", "hero"])
def test_a_bad_preset_setting_stops_the_start(app_factory, presets):
    with pytest.raises(RuntimeError, match="AVENUE_RENDITION_PRESETS"):
        app_factory(AVENUE_RENDITION_PRESETS=presets)


# --- the limit of unsigned cold renders ------------------------------------------------------


def test_the_instance_limit_holds_over_every_address(app_factory, monkeypatch):
    app = limited(app_factory, monkeypatch, address="100/minute", instance="2/minute")
    client = app.test_client()
    doc = put(app)
    answers = [client.get(path(doc, f"w_{width}.webp"), environ_base={"REMOTE_ADDR": f"10.0.0.{index}"})
               for index, width in enumerate((160, 320, 480))]
    assert [answer.status_code for answer in answers] == [200, 200, 429]


def test_an_editor_s_ended_or_replayed_session_is_counted_like_anyone(app_factory, monkeypatch):
    app = limited(app_factory, monkeypatch, address="1/hour")
    doc = put(app)
    session_client, csrf = Auth(app).login("admin")
    assert app.test_client().get(path(doc, "w_160.webp")).status_code == 200  # the address's one
    # The cookie sent by another browser is not the editor's session (bound to the browser).
    assert session_client.get(path(doc, "w_320.webp"), headers={"User-Agent": "curl/8.0"}).status_code == 429
    saved = app.test_client()
    saved.set_cookie("session", session_client.get_cookie("session").value)
    assert session_client.post("/api/auth/logout", headers=csrf).status_code == 204
    assert saved.get(path(doc, "w_480.webp")).status_code == 429  # a copy of an ended session
    assert saved.get("/api/auth/me").status_code == 401


