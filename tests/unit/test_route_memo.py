"""The tests' memo of werkzeug's rule parsing (tests/conftest.py, ``_memoised_rule_parsing``)
gives every app the routing werkzeug's own parse would: the memo makes apps cheaper, not
different."""

from __future__ import annotations

import re

import mongomock
from werkzeug.routing.rules import Rule

from tests.helpers import make_app


def _app():
    shared = mongomock.MongoClient()
    return make_app(((lambda *args, **kwargs: shared), "mongodb://mongomock.invalid:27017"), "route_memo")


def _state(rule: Rule) -> tuple:
    converters = {name: (type(converter), {key: value for key, value in vars(converter).items()
                                           if key != "map"})
                  for name, converter in rule._converters.items()}
    return rule._parts, rule._trace, converters, rule.arguments


def test_each_app_s_rules_are_what_werkzeug_s_own_parse_makes():
    parse = Rule._parse_rule.__wrapped__  # werkzeug's
    _app()  # the memo filled
    app = _app()  # every rule's parse replayed from it
    rules = list(app.url_map.iter_rules())
    assert len(rules) > 100 and any(rule._converters for rule in rules)
    for rule in rules:
        fresh = Rule(rule.rule, endpoint=rule.endpoint, methods=rule.methods, defaults=rule.defaults)
        fresh.map = app.url_map
        fresh._trace, fresh._converters = [(False, "|")], {}
        fresh.arguments = set(fresh.defaults or ())
        fresh._parts = list(parse(fresh, rule.rule))
        replayed = rule._parts[1:], rule._trace[1:], *_state(rule)[2:]  # past the (empty) domain's
        assert replayed == (fresh._parts, fresh._trace[1:], *_state(fresh)[2:]), rule.rule
        # Its converters are its own map's, as werkzeug binds them; none is shared between apps.
        assert all(converter.map is app.url_map for converter in rule._converters.values()), rule.rule


def _outcome(adapter, path: str, method: str):
    try:
        return adapter.match(path, method=method)
    except Exception as refused:  # a redirect, a 405: the same one from both
        return type(refused), getattr(refused, "new_url", None), getattr(refused, "valid_methods", None)


def test_an_app_routes_and_builds_urls_as_one_werkzeug_parsed_itself(monkeypatch):
    # The memo's app against one built with werkzeug's own parse (two memoised apps would
    # both be replays of the same memo, and agree whatever it held).
    first = _app()
    monkeypatch.setattr(Rule, "_parse_rule", Rule._parse_rule.__wrapped__)
    second = _app()
    monkeypatch.undo()
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
