"""The front door (avenue/media/serve/frontdoor.py) before the route: cached media (an SVG
too) answered exactly as the route does, its failure answered by the route, and answers at
once from gunicorn's event loop that read no database."""

from __future__ import annotations

import pytest
from gunicorn.config import Config
from werkzeug.test import Client

from avenue.media import Buckets
from avenue.media.serve.cache import MediaCache
from avenue.media.serve.frontdoor import FrontDoor, front_door_of
from avenue.media.serve.route import get_cache
from avenue.media.store import storage as storage_module
from avenue.server import loop_environ
from tests.support.client import MEDIA
from tests.support.serving import put
from tests.support.svg import SVG_CSP, doc, post


def test_the_front_door_answers_an_svg_exactly_as_the_route_does(app, client, editor):
    media = post(client, editor, MEDIA, doc(""), "logo.svg", "image/svg+xml").get_json()
    warm = client.get(media["url"])  # caches the document, headers and bytes (once read whole)
    assert warm.status_code == 200 and warm.data and warm.headers["Content-Security-Policy"] == SVG_CSP

    def flask_must_not_run(environ, start_response):
        pytest.fail("the front door passed the SVG on to Flask")

    def call(wsgi_app):
        answer = Client(wsgi_app).get(media["url"], headers={"X-Request-ID": "svg-1"})
        return answer.status, sorted(answer.headers.items()), answer.get_data()

    by_front, by_route = call(FrontDoor(app, flask_must_not_run)), call(app.wsgi_app.wsgi_app)
    assert by_front == by_route
    for header in (("Content-Security-Policy", SVG_CSP), ("X-Content-Type-Options", "nosniff"),
                   ("Content-Type", "image/svg+xml")):
        assert header in by_front[1]



@pytest.fixture
def image(app):
    return put(app)


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
