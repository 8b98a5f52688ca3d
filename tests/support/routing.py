"""One URL map per test process, shared by every app the tests build.

A test builds an app of its own (``create_app``, about 3,000 a run), with its own config,
extensions, caches and database: nothing of one test's app reaches the next. What every app
has the same is its routing, and werkzeug compiling each of its ~120 rules (parse, then a
URL builder from an ast) was 97 % of an app's start (74 ms of 76). So one app built as the
process starts compiles the routing as Flask always does, and every app is handed the same
``Map`` (Flask's ``url_map_class``, the documented way to choose an app's map): Flask still
registers every blueprint, view, hook and handler on each app; only a rule the map already
holds is not compiled again.

A rule the map does not hold, added after that first app (a test's own stand-in view),
would route in every later test's app, so it is refused: a test that adds routes asks
for the ``own_routes`` fixture (tests/conftest.py), and its apps get a map of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing import Map, Rule, RuleFactory


def rule_key(rule: Rule) -> tuple[Any, ...]:
    """What makes two rules route alike: the arguments Flask builds a ``Rule`` with."""
    return (rule.rule, rule.endpoint, frozenset(rule.methods or ()), repr(rule.defaults), rule.subdomain,
            rule.host, rule.strict_slashes, rule.merge_slashes, rule.build_only, rule.alias,
            repr(rule.redirect_to), rule.websocket, getattr(rule, "provide_automatic_options", None))


class SharedRoutes(Map):
    """The process's map: the first app's rules compiled and kept; later apps' equal rules
    are already there; any other rule is refused once the first app is built (``fill``)."""

    def __init__(self) -> None:
        super().__init__()
        self.held: set[tuple[Any, ...]] = set()
        self.complete = False

    def add(self, rulefactory: RuleFactory) -> None:
        for rule in rulefactory.get_rules(self):
            key = rule_key(rule)
            if key in self.held:
                continue
            if self.complete:
                raise AssertionError(
                    f"{rule.rule!r} is not one of the app's routes: the apps of this process share "
                    "one URL map (tests/support/routing.py), so a test that adds routes asks for "
                    "the own_routes fixture")
            self.held.add(key)
            super().add(rule)

    def fill(self, build: Callable[[], object]) -> None:
        """Build one app (``build``) onto this map; from then on it holds every route an app has."""
        build()
        self.complete = True


ROUTES = SharedRoutes()


def shared_map(host_matching: bool = False) -> Map:
    """Flask's ``url_map_class`` while the tests run: the process's one map (Flask builds every
    app without host matching here; an app that asked for it gets a map of its own)."""
    return Map(host_matching=True) if host_matching else ROUTES

