"""``w_auto``: a rendition whose width the browser's client hints choose (Sec-CH-Width,
Sec-CH-Viewport-Width, Sec-CH-DPR), the smallest ladder step that covers them, one stored
file per step, ``Vary`` on the hints; through the route and through the front door."""

from __future__ import annotations

import io

from gunicorn.config import Config
from PIL import Image

from avenue.media import Buckets
from avenue.media.buckets import RENDITIONS
from avenue.media.serve.frontdoor import front_door_of
from avenue.media.store.originals import store
from avenue.server import loop_environ
from tests.helpers import image_bytes

VARY = "Sec-CH-Width, Sec-CH-Viewport-Width, Sec-CH-DPR"


def put(app, bucket=Buckets.PRODUCTS, **kwargs) -> dict:
    from avenue.db import get_db, get_mongo

    with app.app_context():
        get_mongo().ensure_indexes()
        return store(get_db(), bucket, image_bytes("good/photo_12mp.jpg"), filename="p.jpg", **kwargs).doc


def width_of(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as im:
        return im.width


def test_the_hints_choose_the_smallest_ladder_width_that_covers_them(app, client, db):
    doc = put(app)  # 4000 px wide
    url = f"/media/products/{doc['_id']}/w_auto.webp"
    cases = [({"Sec-CH-Width": "700"}, 800), ({"Sec-CH-Width": "1000", "Sec-CH-DPR": "2"}, 1280),
             ({"Sec-CH-Viewport-Width": "390", "Sec-CH-DPR": "3"}, 1280), ({}, 800),
             ({"Sec-CH-Width": "not a number"}, 800)]
    for hints, served in cases:
        answer = client.get(url, headers=hints)
        assert answer.status_code == 200, answer.get_data()[:300]
        assert width_of(answer.get_data()) == served, hints
        assert answer.headers["Vary"] == VARY  # a shared cache keys the answer on the hints
        assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # One stored file per ladder step, the same the plain width's URL answers.
    files = db[f"{RENDITIONS}.files"].find({"metadata.image_id": doc["_id"]})
    kept = sorted(f["metadata"]["spec"] for f in files)
    assert kept == ["w_1280", "w_800"]
    plain = client.get(f"/media/products/{doc['_id']}/w_800.webp")
    assert plain.get_data() == client.get(url, headers={"Sec-CH-Width": "700"}).get_data()
    assert "Vary" not in plain.headers


def test_without_an_extension_the_answer_varies_on_accept_and_the_hints(app, client):
    doc = put(app)
    answer = client.get(f"/media/products/{doc['_id']}/w_auto",
                        headers={"Accept": "image/avif,image/webp,*/*", "Sec-CH-Width": "300"})
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/avif"
    assert answer.headers["Vary"] == f"Accept, {VARY}"


def test_a_narrow_image_is_served_at_its_own_width(app, client):
    from avenue.db import get_db, get_mongo

    with app.app_context():
        get_mongo().ensure_indexes()
        doc = store(get_db(), Buckets.PRODUCTS, image_bytes("good/progressive.jpg"),
                    filename="p.jpg").doc  # 1024 px
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
    front = front_door_of(app)

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
