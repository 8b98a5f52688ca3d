"""The streaming media route: headers, ranges, conditional requests, variants, deletion."""

from __future__ import annotations

import hashlib
import io
import time
import tracemalloc

import pytest
from gunicorn.config import Config
from PIL import Image
from werkzeug.test import Client

from avenue.media import Buckets, Library, Media
from avenue.media import Image as MediaImage
from avenue.media.core import NO_PURGES
from avenue.media.effects import invalidation
from avenue.media.serve.cache import MediaCache
from avenue.media.serve.frontdoor import FrontDoor, front_door_of
from avenue.media.serve.route import get_cache
from avenue.media.store import storage as storage_module
from avenue.media.store.originals import delete_image, store
from avenue.media.store.storage import read_all
from avenue.presentation.objects import image_object, signer_from_config
from avenue.server import loop_environ
from tests.helpers import GOOD_NAMES, image_bytes, make_app, passed_to_route


def put(app, name="good/progressive.jpg", bucket=Buckets.PRODUCTS, readable=None, **kwargs) -> dict:
    """Store a fixture through the media core (``readable``: then give it that readable name);
    return (files doc, image object)."""
    from avenue.db import get_db, get_mongo

    with app.app_context():
        get_mongo().ensure_indexes()
        doc = store(get_db(), bucket, image_bytes(name), filename=name.split("/")[-1], **kwargs).doc
        if readable is not None:
            Library(get_db(), bucket, Media()).rename(doc["_id"], readable)
            doc = get_db()[f"{bucket}.files"].find_one({"_id": doc["_id"]})
        obj = image_object(MediaImage.from_files_doc(bucket, doc), signer_from_config(app.config))
        return {"doc": doc, "obj": obj,
                "bytes": read_all(get_db(), bucket, doc)}


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


def test_a_304_reads_no_chunk(app, app_factory, monkeypatch):
    stored = put(app)
    # A fresh worker: nothing cached, so the validators must come from the files document.
    fresh = app_factory()
    monkeypatch.setattr(storage_module, "read_range",
                        lambda *a, **k: pytest.fail("a 304 must not read chunks"))
    response = fresh.test_client().get(stored["obj"]["url"],
                                       headers={"If-None-Match": f'"{stored["obj"]["sha256"]}"'})
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

        delete_image(get_db(), Buckets.PRODUCTS, image["doc"]["_id"], purges=NO_PURGES)
    assert client.get(image["obj"]["url"]).status_code == 404
    assert client.get(image["obj"]["variants"]["thumb"]).status_code == 404


def test_every_worker_honours_a_deletion(app_factory):
    deleter = app_factory()
    other = app_factory()  # another gunicorn worker: its own cache
    stored = put(deleter)
    other_client = other.test_client()
    assert other_client.get(stored["obj"]["url"]).data == stored["bytes"]
    assert get_cache(other).get_blob(Buckets.PRODUCTS, stored["doc"]["_id"]) is not None
    # Another process's cache would not hear this process's in-memory eviction.
    invalidation.LOCAL_CACHES.discard(get_cache(other))
    with deleter.app_context():
        from avenue.db import get_db

        delete_image(get_db(), Buckets.PRODUCTS, stored["doc"]["_id"], purges=NO_PURGES)
    # 10 s, not the promised 2: each request waits on the database, which can take a second on
    # a loaded machine. That a poll is due a second after the last one (so the promise holds)
    # is shown with an injected clock: test_the_cache_is_current_while_no_deletion_check_is_due.
    deadline = time.monotonic() + 10
    status = 200
    while time.monotonic() < deadline and status == 200:
        status = other_client.get(stored["obj"]["url"]).status_code
        time.sleep(0.05)
    assert status == 404


def test_a_file_deleted_behind_a_stale_cache_entry_is_a_clean_404(app_factory):
    from avenue.db import get_db

    deleter, other = app_factory(), app_factory()
    stored = put(deleter)
    other_client = other.test_client()
    assert other_client.head(stored["obj"]["url"]).status_code == 200  # document cached, bytes not
    invalidation.LOCAL_CACHES.discard(get_cache(other))  # as if in another process
    with deleter.app_context():
        get_db()[f"{Buckets.PRODUCTS}.chunks"].delete_many({"files_id": stored["doc"]["_id"]})
    response = other_client.get(stored["obj"]["url"])
    assert response.status_code == 404


def test_hot_small_images_are_served_from_memory(app, client, image, monkeypatch):
    assert client.get(image["obj"]["url"]).data == image["bytes"]
    monkeypatch.setattr(storage_module, "read_range",
                        lambda *a, **k: pytest.fail("a cached image must not touch GridFS"))
    assert client.get(image["obj"]["url"]).data == image["bytes"]


def test_streaming_a_50_mb_file_holds_about_one_batch_of_chunks(app, client, backend):
    import pymongo

    from avenue.db import get_db

    if backend[0] is not pymongo.MongoClient:
        pytest.skip("mongomock copies every matching document up front; the bound is the server cursor's")

    data = bytes(range(256)) * (50 * 4096)  # 50 MiB
    with app.app_context():
        doc = storage_module.write_file(get_db(), Buckets.PRODUCTS, data, filename="big.bin", metadata={
            "role": "original", "key": "big", "sha256": hashlib.sha256(data).hexdigest(),
            "content_type": "application/octet-stream", "visibility": "public"})
    del data
    tracemalloc.start()
    try:
        response = client.get(f"/media/products/{doc['_id']}", buffered=False)
        total = 0
        for piece in response.response:
            total += len(piece)
        response.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == doc["length"]
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while streaming 50 MB"


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


# --- the front door: cached answers before Flask ------------------------------------------

FRONT_DOOR_REQUESTS = [
    ("GET", "url", {}),
    ("HEAD", "url", {}),
    ("GET", "url", {"If-None-Match": "{etag}"}),
    ("GET", "card", {"Accept": "image/avif,image/webp,*/*"}),
    ("GET", "card", {"Accept": "*/*"}),
    ("GET", "card.jpg", {}),
    ("GET", "card", {"Accept": "image/webp", "If-None-Match": "{etag}"}),
    ("GET", "named", {}),
    ("HEAD", "named", {}),
    ("GET", "named", {"If-None-Match": "{etag}"}),
]


def _target(obj: dict, which: str) -> str:
    name, _, ext = which.partition(".")
    if name in ("url", "named"):
        return obj["url" if name == "url" else "named_url"]
    return obj["variants"][name] + (f".{ext}" if ext else "")


def _call(wsgi_app, method: str, url: str, headers: dict):
    response = Client(wsgi_app).open(url, method=method, headers=headers)
    return response.status, sorted(response.headers.items()), response.get_data()


@pytest.mark.parametrize("env", ["testing", "production"])
@pytest.mark.parametrize(("method", "which", "headers"), FRONT_DOOR_REQUESTS)
def test_the_front_door_answers_cached_media_exactly_as_the_route_does(app_factory, env, method, which,
                                                                       headers):
    app = app_factory(AVENUE_ENV=env)
    url = _target(put(app, readable="red-leather-boot")["obj"], which)
    front = app.wsgi_app
    assert isinstance(front, FrontDoor)
    for accept in ("image/webp", "*/*"):
        warm = app.test_client().get(url, headers={"Accept": accept})  # caches document, headers, bytes
        assert warm.status_code == 200 and warm.data
    etag = app.test_client().get(url, headers=headers | {"If-None-Match": ""}).headers["ETag"]
    # The same request id for both: each answer echoes it (without one each gets its own).
    headers = {name: value.format(etag=etag) for name, value in headers.items()} | {"X-Request-ID": "cmp-1"}

    def flask_must_not_run(environ, start_response):
        pytest.fail(f"the front door passed {method} {url} on to Flask")

    by_front = _call(FrontDoor(app, flask_must_not_run), method, url, headers)
    by_route = _call(front.wsgi_app, method, url, headers)
    assert by_front == by_route
    assert ("X-Request-ID", "cmp-1") in by_front[1]
    assert by_front[0] in ("200 OK", "304 NOT MODIFIED")
    if env == "production":
        assert ("Strict-Transport-Security", "max-age=31536000; includeSubDomains") in by_front[1]


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


def test_a_front_door_failure_is_answered_by_the_route(app, client, image, monkeypatch, caplog):
    client.get(image["obj"]["url"])

    def broken(self, environ, path, sync=True):
        raise RuntimeError("front door broke")

    monkeypatch.setattr(FrontDoor, "answer", broken)
    response = client.get(image["obj"]["url"])
    assert response.status_code == 200 and response.data == image["bytes"]
    assert "front door broke" in caplog.text


def test_the_front_door_needs_no_database_for_a_hot_image_or_a_304(app, client, image, monkeypatch):
    url = image["obj"]["url"]
    first = client.get(url)
    assert first.data == image["bytes"]  # now cached
    etag = first.headers["ETag"]
    get_cache(app).poll_interval = 3600  # no tombstone poll due: this test is about the rest
    monkeypatch.setattr(storage_module, "read_range", lambda *a, **k: pytest.fail("chunks read"))
    monkeypatch.setattr(app.wsgi_app, "wsgi_app", lambda *a: pytest.fail("Flask ran"))
    assert client.get(url).data == image["bytes"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304


# --- the front door from gunicorn's event loop: answers that wait for nothing ---------------


def _environ(method: str, url: str, headers: dict) -> dict:
    """What gunicorn's event loop hands the front door for such a request (avenue/server.py)."""
    head = "\r\n".join([f"{method} {url} HTTP/1.1", "Host: x", *(f"{k}: {v}" for k, v in headers.items())])
    environ = loop_environ(head.encode(), Config())
    assert environ is not None
    return environ


@pytest.mark.parametrize(("method", "which", "headers"), FRONT_DOOR_REQUESTS)
def test_an_answer_at_once_is_the_front_doors_own_and_reads_no_database(app, method, which, headers,
                                                                         monkeypatch):
    url = _target(put(app, readable="red-leather-boot")["obj"], which)
    for accept in ("image/webp", "*/*"):
        assert app.test_client().get(url, headers={"Accept": accept}).data  # read whole: now cached
    etag = app.test_client().get(url, headers=headers | {"If-None-Match": ""}).headers["ETag"]
    # No deletion poll due until the test ends: the warm-up's poll may be a second old by now on
    # a loaded machine, and a cache due to poll answers nothing at once (the next test's case).
    get_cache(app).poll_interval = 3600
    headers = {name: value.format(etag=etag) for name, value in headers.items()} | {"X-Request-ID": "cmp-2"}
    by_front = _call(app.wsgi_app, method, url, headers)
    monkeypatch.setattr(MediaCache, "sync", lambda *a, **k: pytest.fail("synced: a database read"))
    monkeypatch.setattr(storage_module, "read_range", lambda *a, **k: pytest.fail("chunks read"))
    answer = front_door_of(app).answer_at_once(_environ(method, url, headers))
    assert answer is not None
    status, answer_headers, body = answer
    assert (status, sorted(answer_headers), b"".join(body)) == by_front


def test_an_answer_at_once_is_given_only_by_a_current_cache_and_only_for_public_cached_media(
        app, client, monkeypatch, caplog):
    public, private = put(app), put(app, bucket=Buckets.UPLOADS, visibility="private", scope="owner")
    front = front_door_of(app)
    assert front is app.wsgi_app
    url = public["obj"]["url"]
    get = _environ("GET", url, {})
    assert front.answer_at_once(get) is None  # not cached yet: the route reads it
    assert client.get(url).data == public["bytes"]
    get_cache(app).poll_interval = 3600  # that GET's poll stays current (a loaded machine is slow)
    assert front.answer_at_once(get)[2] == [public["bytes"]]
    # Due to check for deletions: a request on the app's path does that first.
    monkeypatch.setattr(get_cache(app), "current", lambda: False)
    assert front.answer_at_once(get) is None
    monkeypatch.undo()
    assert client.get(private["obj"]["url"]).status_code == 200  # signed: cached, never at once
    assert front.answer_at_once(_environ("GET", private["obj"]["url"].split("?")[0], {})) is None
    # Never taken by the event loop, and refused if ever handed over.
    assert front.answer_at_once({"REQUEST_METHOD": "POST", "PATH_INFO": url}) is None
    assert front.answer_at_once({"REQUEST_METHOD": "GET", "PATH_INFO": "/api/uploads"}) is None
    # Logged answers too: the folding thread writes their lines, never the event loop.
    logged = FrontDoor(app, lambda *a: pytest.fail("not called"), access_log=lambda answers: None)
    assert logged.answer_at_once(get)[2] == [public["bytes"]]

    def broken(self, environ, path, sync=True):
        raise RuntimeError("front door broke")

    monkeypatch.setattr(FrontDoor, "answer", broken)
    assert front.answer_at_once(get) is None  # the route answers, and reports properly
    assert "front door broke" in caplog.text


def test_the_cache_is_current_while_no_deletion_check_is_due():
    cache = MediaCache(1 << 20, 1 << 20, poll_interval=1.0)
    assert not cache.current(lambda: 100.0)  # never polled
    cache._stream_tried = 100.0  # as sync() does before its first poll
    cache._poll(None, clock=lambda: 100.0)  # the first poll reads nothing: it starts afresh
    assert cache.current(lambda: 100.5)
    assert not cache.current(lambda: 101.0)  # a poll is due
    cache._checked = 161.0  # polled again, but ...
    assert not cache.current(lambda: 161.2)  # ... the change stream is due to be retried
    cache._streaming = True  # a live stream delivers deletions as they are written
    assert cache.current(lambda: 500.0)
    cache._repeat["stone"] = (600.0, Buckets.PRODUCTS, ["id"])  # a tombstone written before its delete
    cache._repeated = 499.5
    assert cache.current(lambda: 500.0)
    assert not cache.current(lambda: 500.6)  # ... due to be applied again


def _served_until_gone(client, url: str, seconds: float = 10.0) -> int:
    """Fetch ``url`` until it is gone or ``seconds`` passed; the last status. 10 s, not the
    promised 2: each request waits on the database, which can take a second on a loaded
    machine (the promise itself: test_the_cache_is_current_while_no_deletion_check_is_due)."""
    deadline = time.monotonic() + seconds
    status = 200
    while time.monotonic() < deadline and status == 200:
        status = client.get(url).status_code
        time.sleep(0.05)
    return status


def test_a_delete_cut_off_after_its_first_step_still_reaches_every_worker(app_factory, monkeypatch):
    """The database goes away between deleting the files document and the chunks: the other
    workers must stop serving the image anyway (the tombstone is written first)."""
    from pymongo.errors import AutoReconnect

    from avenue.db import get_db

    deleter, other = app_factory(), app_factory()
    stored = put(deleter)
    other_client = other.test_client()
    assert other_client.get(stored["obj"]["url"]).data == stored["bytes"]
    invalidation.LOCAL_CACHES.discard(get_cache(other))  # as if in another process
    with deleter.app_context():
        Collection = type(get_db()[f"{Buckets.PRODUCTS}.chunks"])  # pymongo's, or mongomock's
    real_delete_many = Collection.delete_many

    def cut_off(self, query, *args, **kwargs):
        if self.name.endswith(".chunks"):
            raise AutoReconnect("connection closed")
        return real_delete_many(self, query, *args, **kwargs)

    with deleter.app_context():
        monkeypatch.setattr(Collection, "delete_many", cut_off)
        with pytest.raises(AutoReconnect):
            delete_image(get_db(), Buckets.PRODUCTS, stored["doc"]["_id"], purges=NO_PURGES)
        monkeypatch.undo()
    assert _served_until_gone(other_client, stored["obj"]["url"]) == 404


def test_a_worker_that_reloads_between_the_tombstone_and_the_delete_evicts_again(app_factory):
    from avenue.db import get_db

    deleter, other = app_factory(), app_factory()
    stored = put(deleter)
    url, file_id = stored["obj"]["url"], stored["doc"]["_id"]
    other_client = other.test_client()
    invalidation.LOCAL_CACHES.discard(get_cache(other))
    with deleter.app_context():
        invalidation.invalidate(get_db(), Buckets.PRODUCTS, [file_id], lasting=storage_module.DELETE_WINDOW)
        time.sleep(1.1)  # the other worker polls and evicts...
        assert other_client.get(url).data == stored["bytes"]  # ...then reloads and caches it again
        get_db()[f"{Buckets.PRODUCTS}.files"].delete_one({"_id": file_id})  # the delete lands after
    assert _served_until_gone(other_client, url) == 404
