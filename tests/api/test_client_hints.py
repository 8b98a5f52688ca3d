"""``w_auto``: a rendition whose width the browser's client hints choose (Sec-CH-Width,
Sec-CH-Viewport-Width, Sec-CH-DPR), the smallest ladder step that covers them, ``Vary`` on
the hints; through the route and through the front door (the widths chosen and the one stored
file per step: tests/media/serve/test_http.py)."""

from __future__ import annotations

from gunicorn.config import Config

from avenue.media import Buckets
from avenue.media.wiring import Route
from avenue.server import loop_environ
from tests.helpers import image_bytes
from tests.support.renditions import HINTS_VARY as VARY
from tests.support.renditions import put, width_of


def test_without_an_extension_the_answer_varies_on_accept_and_the_hints(app, client):
    doc = put(app)
    answer = client.get(f"/media/products/{doc['_id']}/w_auto",
                        headers={"Accept": "image/avif,image/webp,*/*", "Sec-CH-Width": "300"})
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/avif"
    assert answer.headers["Vary"] == f"Accept, {VARY}"


def test_a_narrow_image_is_served_at_its_own_width(app, client):
    doc = put(app, image_bytes("good/progressive.jpg"), "p.jpg")  # 1024 px
    answer = client.get(f"/media/products/{doc['_id']}/w_auto.webp", headers={"Sec-CH-Width": "2000"})
    assert answer.status_code == 200 and width_of(answer.get_data()) == 1024


def test_any_width_past_the_ladder_gets_its_largest_step_however_large(app, client):
    """Sec-CH-Width: 1000000000 once answered the 800 px default while 99999 got 2560 (issue 62)."""
    doc = put(app)  # 4000 px wide
    url = f"/media/products/{doc['_id']}/w_auto.webp"
    for hint in ("5000", "99999", "1000000000", "9" * 40):
        answer = client.get(url, headers={"Sec-CH-Width": hint})
        assert answer.status_code == 200 and width_of(answer.get_data()) == 2560, hint
    assert width_of(client.get(url, headers={"Sec-CH-Width": "1e9"}).get_data()) == 800  # garbage: default


def test_w_auto_is_refused_with_other_sizes_and_on_a_private_image(app, client, auth):
    doc = put(app)
    for segment in ("w_auto,h_300.webp", "w_auto,dpr_2.webp"):
        refused = client.get(f"/media/products/{doc['_id']}/{segment}")
        assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "bad_rendition"
    private = put(app, bucket=Buckets.UPLOADS, visibility="private", scope="owner")
    refused = client.get(f"/media/uploads/{private['_id']}/w_auto.webp")
    assert refused.status_code == 400
    assert "public images" in refused.get_json()["error"]["message"]
    assert refused.headers.get("X-Request-ID")


def test_the_front_door_answers_w_auto_from_its_cache_by_the_hints(app, client):
    doc = put(app)
    url = f"/media/products/{doc['_id']}/w_auto.webp"
    assert client.get(url, headers={"Sec-CH-Width": "1000"}).get_data()  # w_1280, read whole: now cached
    front = Route.front_door_of(app)

    def loop(width: str) -> dict:  # what gunicorn's event loop hands the front door
        environ = loop_environ(f"GET {url} HTTP/1.1\r\nHost: x\r\nSec-CH-Width: {width}".encode(),
                               Config())
        assert environ is not None
        return environ

    answered = front.answer(loop("1100"), url, sync=False)
    assert answered is not None
    status, headers, body = answered
    assert status.startswith("200") and dict(headers)["Vary"] == VARY
    assert width_of(b"".join(body)) == 1280
    # Another step, not rendered yet: the route's to render.
    assert front.answer(loop("500"), url, sync=False) is None
