"""The apps of a test process share one URL map (tests/support/routing.py): each app routes
and builds URLs as one with werkzeug's map of its own would, and a test's own route reaches
no other test's app."""

from __future__ import annotations

import re

import mongomock
import pytest

from tests.helpers import make_app
from tests.support import routing


def _app():
    shared = mongomock.MongoClient()
    return make_app(((lambda *args, **kwargs: shared), "mongodb://mongomock.invalid:27017"), "shared_routes")


def _outcome(adapter, path: str, method: str):
    try:
        return adapter.match(path, method=method)
    except Exception as refused:  # a redirect, a 405: the same one from both
        return type(refused), getattr(refused, "new_url", None), getattr(refused, "valid_methods", None)


def test_an_app_on_the_shared_map_routes_and_builds_urls_as_one_with_its_own(request):
    first = _app()
    assert first.url_map is routing.ROUTES and _app().url_map is routing.ROUTES
    request.getfixturevalue("own_routes")
    second = _app()  # werkzeug's own map, every rule compiled for this app
    assert second.url_map is not routing.ROUTES
    assert sorted(map(routing.rule_key, first.url_map.iter_rules())) == \
        sorted(map(routing.rule_key, second.url_map.iter_rules()))
    one, other = first.url_map.bind("localhost"), second.url_map.bind("localhost")
    routed = 0
    for rule in first.url_map.iter_rules():
        path = re.sub(r"<(?:[^<>]+:)?([^<>:]+)>", lambda m: "0" * 24 if m.group(1).endswith("id") else "x-1",
                      rule.rule)
        for method in sorted(rule.methods or ()):
            for probe in (path, path + "/", path.rstrip("/")):
                outcome = _outcome(one, probe, method)
                assert outcome == _outcome(other, probe, method), (probe, method)
                routed += isinstance(outcome[1], dict)
        values = dict.fromkeys(rule.arguments, "0" * 24)
        assert one.build(rule.endpoint, values, method=sorted(rule.methods or ())[0]) == \
            other.build(rule.endpoint, values, method=sorted(rule.methods or ())[0])
    assert routed > 400, routed  # most probes matched a route (612 of them)
    # Each app still has its own view functions, extensions and config.
    assert first.view_functions is not second.view_functions and first.extensions is not second.extensions


def test_a_route_a_test_adds_to_a_shared_app_is_refused_and_reaches_no_other_app():
    app = _app()
    before = sorted(map(routing.rule_key, routing.ROUTES.iter_rules()))
    with pytest.raises(AssertionError, match="own_routes"):
        app.add_url_rule("/probe", endpoint="probe", view_func=lambda: "probe")
    assert sorted(map(routing.rule_key, routing.ROUTES.iter_rules())) == before
    assert "probe" not in app.view_functions


def test_a_test_with_routes_of_its_own_adds_them_to_its_app_alone(own_routes):
    app = _app()
    app.add_url_rule("/probe", endpoint="probe", view_func=lambda: "probe")
    assert app.test_client().get("/probe").get_data(as_text=True) == "probe"
    assert not any(rule.rule == "/probe" for rule in routing.ROUTES.iter_rules())
