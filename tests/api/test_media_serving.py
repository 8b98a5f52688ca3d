"""The streaming media route: headers, ranges, conditional requests, variants, deletion (the
cache and the front door before it: tests/media/serve/test_cache.py, test_frontdoor.py; the
chunks it reads: tests/media/store/test_storage.py)."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from avenue.media import AppMedia, Buckets
from tests.helpers import GOOD_NAMES, make_app, passed_to_route
from tests.support.serving import put


@pytest.fixture
def image(app):
    return put(app)


def test_it_serves_the_stored_bytes_with_every_header(client, image):
    response = client.get(image["obj"]["url"])
    assert response.status_code == 200
    assert response.data == image["bytes"]
    headers = response.headers
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["Content-Length"] == str(len(image["bytes"]))
    assert headers["ETag"] == f'"{hashlib.sha256(image["bytes"]).hexdigest()}"'
    assert headers["ETag"].strip('"') == image["obj"]["sha256"]
    assert headers["Last-Modified"]
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert headers["Content-Disposition"].startswith('inline; filename="progressive.jpg"')


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_every_good_fixture_is_served_back_with_its_variants(app, client, name):
    stored = put(app, f"good/{name}")
    obj = stored["obj"]
    response = client.get(obj["url"])
    assert response.status_code == 200 and response.data == stored["bytes"]
    assert len(response.data) == obj["bytes"]
    assert response.headers["Content-Type"] == obj["content_type"]
    served = Image.open(io.BytesIO(response.data))
    assert 0x8825 not in served.getexif()
    for variant, url in obj["variants"].items():
        for accept, expected in (("image/webp,*/*", "image/webp"), ("*/*", None)):
            got = client.get(url, headers={"Accept": accept})
            assert got.status_code == 200, (variant, got.status_code)
            if expected:
                assert got.headers["Content-Type"] == expected
            else:
                assert got.headers["Content-Type"] in {"image/jpeg", "image/png"}
            im = Image.open(io.BytesIO(got.data))
            size = obj["variant_sizes"][variant]
            assert im.size == (size["width"], size["height"])
            assert not im.getexif()


def test_head_answers_the_headers_without_a_body(client, image):
    response = client.head(image["obj"]["url"])
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["Content-Length"] == str(len(image["bytes"]))
    assert response.headers["ETag"]


@pytest.mark.parametrize(
    ("range_header", "slice_"),
    [
        ("bytes=0-99", slice(0, 100)),
        ("bytes=100-", slice(100, None)),
        ("bytes=-100", slice(-100, None)),
        ("bytes=500-99999999", slice(500, None)),  # an end past the file is clamped
    ],
)
def test_it_answers_206_for_a_byte_range(client, image, range_header, slice_):
    data = image["bytes"]
    response = client.get(image["obj"]["url"], headers={"Range": range_header})
    assert response.status_code == 206
    assert response.data == data[slice_]
    start = slice_.start if slice_.start >= 0 else len(data) + slice_.start
    assert response.headers["Content-Range"] == f"bytes {start}-{len(data) - 1}/{len(data)}" or \
        response.headers["Content-Range"] == f"bytes {start}-{start + len(response.data) - 1}/{len(data)}"
    assert response.headers["Content-Length"] == str(len(data[slice_]))


def test_a_suffix_longer_than_the_file_is_the_whole_file(client, image):
    response = client.get(image["obj"]["url"], headers={"Range": "bytes=-99999999"})
    assert response.status_code == 206
    assert response.data == image["bytes"]


def test_an_unsatisfiable_range_is_416_with_the_length(client, image):
    length = len(image["bytes"])
    response = client.get(image["obj"]["url"], headers={"Range": f"bytes={length}-"})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{length}"
    assert response.mimetype == "text/plain" and response.data == b"Range not satisfiable\n"


@pytest.mark.parametrize("range_header", ["bytes=0-10,20-30", "items=0-5", "bytes=abc", "bytes=9-2"])
def test_several_ranges_or_unknown_units_get_the_whole_body(client, image, range_header):
    response = client.get(image["obj"]["url"], headers={"Range": range_header})
    assert response.status_code == 200
    assert response.data == image["bytes"]


def test_if_range_with_the_strong_etag_gives_the_range(client, image):
    etag = client.get(image["obj"]["url"]).headers["ETag"]
    response = client.get(image["obj"]["url"], headers={"Range": "bytes=0-9", "If-Range": etag})
    assert response.status_code == 206 and response.data == image["bytes"][:10]


@pytest.mark.parametrize("validator", ['W/"{sha}"', '"0000"', "Tue, 01 Jan 2019 00:00:00 GMT"])
def test_if_range_with_a_weak_or_different_validator_gives_everything(client, image, validator):
    value = validator.format(sha=image["obj"]["sha256"])
    response = client.get(image["obj"]["url"], headers={"Range": "bytes=0-9", "If-Range": value})
    assert response.status_code == 200 and response.data == image["bytes"]


def test_if_none_match_gives_304_with_etag_and_cache_control(client, image):
    first = client.get(image["obj"]["url"])
    response = client.get(image["obj"]["url"], headers={"If-None-Match": first.headers["ETag"]})
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == first.headers["ETag"]
    assert response.headers["Cache-Control"] == first.headers["Cache-Control"]


@pytest.mark.parametrize("form", ['"other", {etag}', "W/{etag}", "*"])
def test_if_none_match_lists_weak_forms_and_star_give_304(client, image, form):
    etag = client.get(image["obj"]["url"]).headers["ETag"]
    response = client.get(image["obj"]["url"], headers={"If-None-Match": form.format(etag=etag)})
    assert response.status_code == 304 and response.headers["ETag"] == etag


def test_a_variant_304_keeps_vary(client, image):
    url = image["obj"]["variants"]["thumb"]
    etag = client.get(url, headers={"Accept": "image/webp"}).headers["ETag"]
    response = client.get(url, headers={"Accept": "image/webp", "If-None-Match": etag})
    assert response.status_code == 304 and "Accept" in response.headers["Vary"]


def test_if_modified_since_gives_304(client, image):
    first = client.get(image["obj"]["url"])
    response = client.get(image["obj"]["url"],
                          headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert response.status_code == 304


def test_if_none_match_wins_over_if_modified_since(client, image):
    first = client.get(image["obj"]["url"])
    response = client.get(image["obj"]["url"], headers={
        "If-None-Match": '"something-else"', "If-Modified-Since": first.headers["Last-Modified"]})
    assert response.status_code == 200


def test_a_matching_if_none_match_beats_a_range(client, image):
    etag = client.get(image["obj"]["url"]).headers["ETag"]
    response = client.get(image["obj"]["url"], headers={"If-None-Match": etag, "Range": "bytes=0-9"})
    assert response.status_code == 304


def test_variants_follow_accept_and_say_so(client, image):
    url = image["obj"]["variants"]["card"]
    webp = client.get(url, headers={"Accept": "image/avif,image/webp,*/*"})
    jpeg = client.get(url, headers={"Accept": "image/*,*/*;q=0.8"})
    assert webp.headers["Content-Type"] == "image/webp"
    assert jpeg.headers["Content-Type"] == "image/jpeg"
    assert "Accept" in webp.headers["Vary"] and "Accept" in jpeg.headers["Vary"]
    assert webp.headers["ETag"] != jpeg.headers["ETag"]
    explicit = client.get(url + ".jpg")
    assert explicit.headers["Content-Type"] == "image/jpeg" and "Vary" not in explicit.headers


@pytest.mark.parametrize(("accept", "expected"), [
    ("image/webp;q=0,*/*", "image/jpeg"),  # issue 62: q=0 is never (it got WebP)
    ("image/avif,image/webp;q=0.5,image/jpeg", "image/jpeg"),  # the higher q wins
    ("image/webp;q=0.9,*/*;q=0.9", "image/webp"),  # a tie: our order, WebP first
    ("IMAGE/WEBP", "image/webp"),
])
def test_a_variants_format_follows_the_accept_q_values(client, image, accept, expected):
    answer = client.get(image["obj"]["variants"]["card"], headers={"Accept": accept})
    assert answer.status_code == 200 and answer.headers["Content-Type"] == expected
    assert "Accept" in answer.headers["Vary"]


@pytest.mark.parametrize("path", [
    "/media/products/not-an-id", "/media/products/0123456789abcdef01234567",
    "/media/nowhere/0123456789abcdef01234567", "/media/products/0123456789abcdef01234567/huge",
    # No route matches these: the file addresses answer them the same way (avenue/errors.py).
    "/media", "/media/", "/media/products", "/media/products/0123456789abcdef01234567/a/b/c", "/uploads/",
])
def test_unknown_or_malformed_media_is_a_minimal_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "text/plain" and response.data == b"Not found\n"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"  # a CDN keeps no 404 an upload may fill
    assert response.headers["X-Request-ID"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_a_method_a_media_address_does_not_take_is_a_plain_405_naming_the_ones_it_does(client, method):
    response = client.open("/media/products/0123456789abcdef01234567", method=method, data=b"x")
    assert response.status_code == 405
    assert response.mimetype == "text/plain" and response.data == b"Method not allowed\n"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}
    assert response.headers["X-Content-Type-Options"] == "nosniff" and response.headers["X-Request-ID"]


@pytest.mark.parametrize("path", ["/media/products/0123456789abcdef01234567", "/uploads/a.jpg", "/media/x"])
def test_a_body_past_the_limit_at_a_file_address_is_a_plain_413_that_closes_the_connection(client, path):
    response = client.get(path, data=b"x", environ_overrides={"CONTENT_LENGTH": "10000000000"})
    assert response.status_code == 413
    assert response.mimetype == "text/plain" and response.data == b"Request entity too large\n"
    assert response.headers["Connection"] == "close"  # its body was not read


def test_a_wrong_extension_is_404(client, image):
    url = image["obj"]["url"].rsplit(".", 1)[0] + ".png"
    assert client.get(url).status_code == 404


def test_a_deleted_image_is_404_at_once_on_the_worker_that_deleted_it(app, client, image):
    assert client.get(image["obj"]["url"]).data == image["bytes"]  # now cached
    with app.app_context():
        from avenue.db import get_db

        AppMedia.on(get_db()).library(Buckets.PRODUCTS).delete(image["doc"]["_id"])
    assert client.get(image["obj"]["url"]).status_code == 404
    assert client.get(image["obj"]["variants"]["thumb"]).status_code == 404


def test_a_private_image_needs_a_valid_signature(app, client):
    stored = put(app, bucket=Buckets.UPLOADS, visibility="private", scope="owner")
    url = stored["obj"]["url"]
    assert "sig=" in url
    ok = client.get(url)
    assert ok.status_code == 200 and ok.headers["Cache-Control"].startswith("private")
    bare = url.split("?")[0]
    assert client.get(bare).status_code == 404
    assert client.get(url.replace("sig=", "sig=x")).status_code == 403


def test_a_restarted_embedded_server_still_serves_what_was_stored(tmp_path):
    import pymongo

    from avenue.embedded import EmbeddedServer

    server = EmbeddedServer(tmp_path / "db").start()
    try:
        backend = (pymongo.MongoClient, server.uri)
        before = make_app(backend, "avenue")
        stored = put(before)
        before.extensions["avenue.mongo"].client.close()
        server.stop()
        server = EmbeddedServer(tmp_path / "db", port=server.port).start()
        after = make_app(backend, "avenue")
        response = after.test_client().get(stored["obj"]["url"])
        after.extensions["avenue.mongo"].client.close()
        assert response.status_code == 200 and response.data == stored["bytes"]
    finally:
        server.stop()


# --- the front door: what it leaves to the route ---------------------------------------------


@pytest.mark.parametrize(("case", "headers"), [
    ("not cached yet", {}),
    ("a range", {"Range": "bytes=0-9"}),
    ("another validator", {"If-None-Match": '"other"'}),
    ("a date validator", {"If-Modified-Since": "Sun, 01 Jan 2034 00:00:00 GMT"}),
    ("a private image", {}),
    ("an unknown id", {}),
    ("another name", {}),
])
def test_the_front_door_leaves_everything_else_to_the_route(app, case, headers):
    private = case == "a private image"
    stored = put(app, bucket=Buckets.UPLOADS, visibility="private", scope="owner") if private \
        else put(app, readable="red-leather-boot")
    url = stored["obj"]["url"].split("?")[0]
    if case == "an unknown id":
        url = "/media/products/0123456789abcdef01234567"
    if case == "another name":
        url = stored["obj"]["named_url"].replace("red-leather-boot", "old-name")
    if case != "not cached yet":
        assert app.test_client().get(stored["obj"]["url"]).data
    assert passed_to_route(app, url, headers) == [url]
    # ... and the route then answers as the contract says.
    expected = {"a range": 206, "another validator": 200, "a date validator": 304,
                "a private image": 404, "an unknown id": 404, "another name": 301}.get(case, 200)
    assert app.test_client().get(url, headers=headers).status_code == expected
