"""SVG logos in the builder's library: sanitised on upload, served under their CSP, rasterised
for every variant and rendition, refused by every other upload route (the pipeline's own
steps: tests/media/ingest/test_svg.py; the front door's answer:
tests/media/serve/test_frontdoor.py)."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from avenue.media import Buckets
from tests.helpers import bucket_snapshot, image_bytes
from tests.support import tus
from tests.support.client import MEDIA, UPLOADS
from tests.support.records import IMAGE, images
from tests.support.svg import OPEN, SHAPE, SVG_CSP, doc, post, served
from tests.support.zips import make_zip


def use_bomb(levels: int = 12, fan_out: int = 10) -> bytes:
    """``fan_out ** levels`` rectangles through nested ``<use>``: a few hundred bytes."""
    groups = "".join(f'<g id="l{n}">' + f'<use href="#l{n - 1}"/>' * fan_out + "</g>"
                     for n in range(1, levels + 1))
    return doc(f'<defs><rect id="l0" width="1" height="1"/>{groups}</defs><use href="#l{levels}"/>')


def percent_use_bomb(levels: int = 6, fan_out: int = 10) -> bytes:
    """The same bomb through ``#%61N``: librsvg finds no such id, a browser decodes it to ``#aN``."""
    groups = "".join(f'<g id="a{n}">' + f'<use href="#%61{n - 1}"/>' * fan_out + "</g>"
                     for n in range(1, levels + 1))
    return doc(f'<defs><rect id="a0" width="1" height="1"/>{groups}</defs><use href="#a{levels}"/>')


def nested_markers(levels: int = 4, vertices: int = 40) -> bytes:
    """Each vertex of each level's polyline draws the level below: 16 s to draw, in 2 KB."""
    points = " ".join(f"{n % 7} {n // 7}" for n in range(vertices))
    markers = "".join(f'<marker id="m{n}"><polyline points="{points}" marker-mid="url(#m{n - 1})"/></marker>'
                      for n in range(1, levels))
    return doc(f'<defs><marker id="m0"><rect width="1" height="1"/></marker>{markers}</defs>'
               f'<polyline points="{points}" marker-mid="url(#m{levels - 1})"/>')


def laughs(levels: int = 10) -> bytes:
    entities = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">' for n in range(1, levels))
    return doc(f"<text>&l{levels - 1};</text>", head=f'<?xml version="1.0"?><!DOCTYPE svg [{entities}]>')


# From recent SVG stored-XSS advisories (image libraries, CMS media uploads, avatar services).
# (name, bytes, filename, Content-Type the client claims)
HOSTILE = [
    ("script element", doc("<script>alert(document.domain)</script>"), "logo.svg", "image/svg+xml"),
    ("script in CDATA", doc("<script><![CDATA[alert(1)]]></script>"), "logo.svg", "image/svg+xml"),
    ("onload on the root", f'{OPEN[:-1]} onload="alert(1)">{SHAPE}</svg>'.encode(), "logo.svg",
     "image/svg+xml"),
    ("handlers on shapes", doc('<circle r="5" onclick="alert(1)" onmouseover="alert(2)" '
                               'onfocusin="alert(3)"/>'), "logo.svg", "image/svg+xml"),
    ("javascript links", doc('<a href="javascript:alert(1)"><text y="60">a</text></a>'
                             '<a xlink:href="javascript:alert(2)"><circle r="3"/></a>'
                             '<a href=" JaVaScRiPt:alert(3)"><circle r="2"/></a>'
                             '<a href="jav&#x09;ascript:alert(4)"><circle r="1"/></a>'),
     "logo.svg", "image/svg+xml"),
    ("javascript on other elements", doc('<use href="javascript:alert(1)"/>'
                                         '<image href="javascript:alert(2)"/>'
                                         '<feImage xlink:href="javascript:alert(3)"/>'
                                         '<pattern id="p" href="javascript:alert(4)"/>'),
     "logo.svg", "image/svg+xml"),
    ("animate and set to javascript", doc('<a><animate attributeName="href" to="javascript:alert(1)"/>'
                                          '<set attributeName="xlink:href" to="javascript:alert(2)"/>'
                                          '<animate attributeName="href" values="javascript:alert(3)"/>'
                                          '<set attributeName="onclick" to="alert(4)"/>'
                                          '<text y="60">click</text></a>'), "logo.svg", "image/svg+xml"),
    ("foreignObject with HTML", doc('<foreignObject width="64" height="64"><body xmlns="http://www.w3.org/1999/xhtml">'
                                    '<img src="x" onerror="alert(1)"/><script>alert(2)</script></body>'
                                    '</foreignObject>'), "logo.svg", "image/svg+xml"),
    ("iframe, embed, object", doc('<iframe xmlns="http://www.w3.org/1999/xhtml" src="javascript:alert(1)"/>'
                                  '<embed src="https://evil.example/x.swf"/><object data="https://evil.example/"/>'),
     "logo.svg", "image/svg+xml"),
    ("external use", doc('<use href="http://evil.example/sprite.svg#a"/>'
                         '<use xlink:href="//evil.example/sprite.svg#b"/>'), "logo.svg", "image/svg+xml"),
    ("image with a data URL", doc('<image href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;"/>'
                                  '<image xlink:href="data:image/svg+xml;base64,'
                                  'PHN2Zz48c2NyaXB0PmFsZXJ0KDEpPC9zY3JpcHQ+PC9zdmc+"/>'
                                  '<image href="data:image/png;base64,iVBORw0KGgo="/>'),
     "logo.svg", "image/svg+xml"),
    ("style url javascript", doc('<rect width="9" height="9" '
                                 'style="background:url(javascript:alert(1));fill:red"/>'
                                 '<rect width="8" height="8" fill="url(http://evil.example/p.svg#g)"/>'
                                 '<style>@import url(https://evil.example/x.css); '
                                 'rect{fill:url(/x#y)}</style>'),
     "logo.svg", "image/svg+xml"),
    ("processing instruction stylesheet", doc("", head='<?xml-stylesheet href="https://evil.example/x.css"?>'),
     "logo.svg", "image/svg+xml"),
    ("svg named png", doc("<script>alert(1)</script>"), "logo.png", "image/png"),
    ("billion laughs", laughs(), "logo.svg", "image/svg+xml"),
    ("external entity", doc("<text>&x;</text>", head='<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'),
     "logo.svg", "image/svg+xml"),
    ("nested use bomb", use_bomb(), "logo.svg", "image/svg+xml"),
    ("percent-encoded use bomb", percent_use_bomb(), "logo.svg", "image/svg+xml"),
    ("nested markers", nested_markers(), "logo.svg", "image/svg+xml"),
    ("chained blurs", doc('<filter id="f">' + '<feGaussianBlur stdDeviation="1"/>' * 2000 + "</filter>"
                          '<rect width="64" height="64" filter="url(#f)"/>'), "logo.svg", "image/svg+xml"),
    ("not well formed", b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9">'
                        b'<script>alert(1)</svg>',
     "logo.svg", "image/svg+xml"),
]

# What must not be in any byte served: markup or URLs that run, load or embed anything.
ACTIVE = re.compile(
    rb"<\s*script|<\s*foreignObject|<\s*iframe|<\s*embed|<\s*object|<\s*image\b|<\s*feImage|javascript\s*:"
    rb"|data\s*:|alert\(|[\s\"']on[a-z]+\s*=|<!DOCTYPE|<!ENTITY|<\?xml-stylesheet|@import|evil\.example"
    rb"|href\s*=\s*[\"'](?!#)|url\(\s*['\"]?(?!#)",
    re.IGNORECASE)


def every_variant_url(media: dict) -> list[str]:
    return [url for formats in media["variant_urls"].values() for url in formats.values()]


@pytest.mark.parametrize(("vector", "data", "filename", "content_type"), HOSTILE, ids=[v[0] for v in HOSTILE])
def test_nothing_active_survives_in_any_served_byte_of_a_hostile_svg(client, editor, db, vector, data,
                                                                     filename, content_type):
    before = bucket_snapshot(db)
    response = post(client, editor, MEDIA, data, filename, content_type)
    assert response.status_code == 201 or 400 <= response.status_code < 500, (vector, response.status_code)
    body = response.get_json()
    if response.status_code != 201:
        assert body["error"]["code"] in {"invalid_svg", "svg_doctype", "svg_too_complex"}, body
        assert body["error"]["message"] and body["error"]["file"] == filename
        assert bucket_snapshot(db) == before
        return
    assert body["content_type"] == "image/svg+xml" and body["url"].endswith(".svg")
    status, headers, original = served(client, body["url"])
    assert status == 200 and headers["Content-Type"] == "image/svg+xml"
    assert headers["Content-Security-Policy"] == SVG_CSP and headers["X-Content-Type-Options"] == "nosniff"
    assert original.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"')
    assert ACTIVE.search(original) is None, (vector, original)
    assert b"<rect" in original  # the drawing itself is kept
    base = body["url"].rsplit(".", 1)[0]
    urls = [*every_variant_url(body), f"{base}/w_320.webp", f"{base}/og"]
    for url in urls:
        status, headers, raster = served(client, url)
        assert status == 200, (url, status)
        assert headers["Content-Type"] in {"image/webp", "image/png", "image/jpeg", "image/avif"}, url
        assert b"<svg" not in raster and ACTIVE.search(raster[:64]) is None
        with Image.open(io.BytesIO(raster)) as im:
            assert im.format in {"WEBP", "PNG", "JPEG", "AVIF"} and im.width >= 1


def test_the_refusals_are_the_expected_ones(client, editor):
    expected = {"billion laughs": (415, "svg_doctype"), "external entity": (415, "svg_doctype"),
                "nested use bomb": (413, "svg_too_complex"), "not well formed": (422, "invalid_svg"),
                **dict.fromkeys(["percent-encoded use bomb", "nested markers", "chained blurs"],
                                (413, "svg_too_complex"))}
    for vector, data, filename, content_type in HOSTILE:
        response = post(client, editor, MEDIA, data, filename, content_type)
        answer = (response.status_code, response.get_json().get("error", {}).get("code"))
        assert answer == expected.get(vector, (201, None)), vector


def test_an_svg_sent_as_a_png_is_stored_as_the_svg_it_is(client, editor, db):
    response = post(client, editor, MEDIA, doc("<script>alert(1)</script>"), "logo.png", "image/png")
    assert response.status_code == 201, response.get_json()
    media = response.get_json()
    assert media["content_type"] == "image/svg+xml" and media["url"].endswith(".svg")
    stored = images(db, Buckets.BUILDER).find_one(IMAGE)
    assert stored["metadata"]["format"] == "svg" and stored["metadata"]["content_type"] == "image/svg+xml"
    assert client.get(media["url"].rsplit(".", 1)[0] + ".png").status_code == 404


@pytest.mark.parametrize(("route", "field"), [(UPLOADS, "file"), ("/api/shop/temp-images", "images")])
def test_every_other_upload_route_refuses_svg_with_415_saying_where_it_goes(client, editor, admin, db, route,
                                                                             field):
    before = bucket_snapshot(db)
    for filename, content_type in (("logo.svg", "image/svg+xml"), ("logo.png", "image/png")):
        response = post(client, admin if "shop" in route else editor, route, doc(""), filename, content_type,
                        field)
        assert response.status_code == 415, (route, response.get_json())
        error = response.get_json()["error"]
        assert error["code"] == "svg_not_accepted"
        assert "builder's media library" in error["message"] and "SVG" not in error["accepted"]
    assert bucket_snapshot(db) == before


def test_a_product_photo_cannot_be_an_svg(client, admin, db):
    created = client.post("/api/shop/products", json={"sku": "AV-SVG1", "name": "Lamp", "price": 100},
                          headers=admin)
    assert created.status_code == 201, created.get_json()
    before = bucket_snapshot(db)
    response = post(client, admin, "/api/shop/products/AV-SVG1/images", doc(""), "logo.svg", "image/svg+xml",
                    "images")
    assert response.status_code == 415 and response.get_json()["error"]["code"] == "svg_not_accepted"
    assert bucket_snapshot(db) == before


def test_a_clean_logo_keeps_its_drawing_and_gets_rasters_placeholder_and_hash(client, editor, db):
    logo = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 60">'
            b'<defs><linearGradient id="g"><stop offset="0" stop-color="#f00"/>'
            b'<stop offset="1" stop-color="#00f"/></linearGradient></defs>'
            b'<rect width="120" height="60" fill="url(#g)"/>'
            b'<text x="10" y="40" style="font-size:20px;fill:#fff">Avenue</text></svg>')
    response = post(client, editor, MEDIA, logo, "logo.svg", "image/svg+xml")
    assert response.status_code == 201, response.get_json()
    media = response.get_json()
    assert (media["width"], media["height"]) == (120, 60)
    assert media["blurhash"] and re.fullmatch(r"#[0-9a-f]{6}", media["color"])
    meta = images(db, Buckets.BUILDER).find_one(IMAGE)["metadata"]
    assert meta["phash"] and meta["format"] == "svg"
    original = served(client, media["url"])[2]
    assert b'fill="url(#g)"' in original and b"Avenue</text>" in original and b"font-size:20px" in original
    status, headers, thumb = served(client, media["variant_urls"]["thumb"]["webp"])
    assert status == 200 and headers["Content-Type"] == "image/webp"
    with Image.open(io.BytesIO(thumb)) as im:
        assert im.size == (120, 60)
        left, right = im.convert("RGB").getpixel((2, 30)), im.convert("RGB").getpixel((117, 30))
        assert left[0] > 200 > left[2] and right[2] > 200 > right[0]  # the gradient was drawn
    assert set(media["variant_urls"]["card"]) == {"webp", "png"}  # transparency: PNG fallback


def test_an_svg_declaring_100000_px_a_side_is_drawn_within_the_pixel_limit(client, editor, app):
    huge = (b'<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000" viewBox="0 0 10 10">'
            b'<circle cx="5" cy="5" r="4" fill="red"/></svg>')
    response = post(client, editor, MEDIA, huge, "huge.svg", "image/svg+xml")
    assert response.status_code == 201, response.get_json()
    media = response.get_json()
    assert media["width"] == media["height"]
    assert media["width"] * media["height"] <= app.config["AVENUE_MAX_PIXELS"]
    assert media["variant_sizes"]["gallery"] == {"width": 1600, "height": 1600}
    status, _, rendition = served(client, f"{media['url'].rsplit('.', 1)[0]}/w_640.webp")
    assert status == 200
    with Image.open(io.BytesIO(rendition)) as im:
        assert im.size == (640, 640) and im.convert("RGB").getpixel((320, 320))[0] > 200


def test_raster_media_keeps_the_strict_policy(client, editor):
    media = post(client, editor, MEDIA, image_bytes("good/alpha.png"), "alpha.png", "image/png").get_json()
    assert client.get(media["url"]).headers["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_the_library_lists_an_svg_with_a_raster_thumbnail(client, editor):
    post(client, editor, MEDIA, doc(""), "logo.svg", "image/svg+xml")
    item = client.get("/api/builder/media", headers=editor).get_json()["items"][0]
    assert item["content_type"] == "image/svg+xml"
    status, headers, _ = served(client, item["variants"]["thumb"])
    assert status == 200 and headers["Content-Type"] in {"image/webp", "image/png"}


def test_a_resumable_upload_into_the_library_takes_an_svg_and_one_for_temp_images_refuses_it(client, editor,
                                                                                              admin, db):
    url, last = tus.send(client, editor, doc("<script>alert(1)</script>"), target="builder")
    assert last.status_code == 204
    media = client.get(f"/api/builder/media/{last.headers['Avenue-Image-Id']}", headers=editor).get_json()
    assert media["content_type"] == "image/svg+xml"
    original = served(client, media["url"])[2]
    assert b"<rect" in original and ACTIVE.search(original) is None
    before = bucket_snapshot(db)
    url, last = tus.send(client, admin, doc(""), target="temp")
    assert last.status_code == 415 and last.get_json()["error"]["code"] == "svg_not_accepted"
    assert bucket_snapshot(db) == before


def test_a_zip_brings_an_svg_into_the_library_sanitised_and_refuses_it_onto_a_product(client, editor, admin):
    archive = make_zip([("brand/logo.svg", doc("<script>alert(1)</script>"))])
    report = client.post("/api/builder/import-zip", data=archive, headers=editor,
                         content_type="application/zip").get_json()
    [entry] = report["entries"]
    assert entry["outcome"] == "imported", entry
    media = client.get(f"/api/builder/media/{entry['id']}", headers=editor).get_json()
    assert media["content_type"] == "image/svg+xml" and media["folder"] == "/brand"
    assert ACTIVE.search(served(client, media["url"])[2]) is None
    assert client.post("/api/shop/products", json={"sku": "AV-SVG2", "name": "Lamp", "price": 100},
                       headers=admin).status_code == 201
    report = client.post("/api/shop/import-zip", data=make_zip([("AV-SVG2.svg", doc(""))]), headers=admin,
                         content_type="application/zip").get_json()
    [entry] = report["entries"]
    assert (entry["outcome"], entry["status"], entry["code"]) == ("refused", 415, "svg_not_accepted")
