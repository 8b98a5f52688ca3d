"""The front door (avenue/media/serve/frontdoor.py) before a stand-in for Flask: an SVG
answered exactly as the route does."""

from __future__ import annotations

import pytest
from werkzeug.test import Client

from avenue.media.serve.frontdoor import FrontDoor
from tests.support.client import MEDIA
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
