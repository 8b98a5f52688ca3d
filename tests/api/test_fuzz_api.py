"""Generated input against every /api/ endpoint: no input reaches a 500.

Hypothesis (chosen over a hand-written list of nasty values because it shrinks a failure to
its smallest input and keeps finding new shapes) builds JSON bodies of any nesting and
number size, raw bodies that are not JSON, multipart forms with random fields and files,
query strings and path parameters, and sends them as an admin (past every role check),
with a session cookie and as nobody. Every answer must be below 500 and every error a JSON
``{"error": {"code", "message"}}``; no answer may carry ``NaN``/``Infinity``. The endpoint
list comes from the app's URL map, so a new endpoint is fuzzed without touching this file.

The example count is bounded and derandomized, so a run is reproducible and takes seconds;
``AVENUE_FUZZ_EXAMPLES`` raises it for a longer hunt.
"""

from __future__ import annotations

import io
import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import GOOD_NAMES, image_bytes

EXAMPLES = int(os.environ.get("AVENUE_FUZZ_EXAMPLES", "30"))
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
QUERY_NAMES = ("page", "per_page", "q", "refresh", "action", "owner", "kind", "since", "until",
               "visibility", "force", "sku", "expires", "sig", "w", "format", "x")

# Numbers at and past every edge: huge, tiny, negative, beyond 64 bits, non-finite literals.
edge_numbers = st.one_of(
    st.integers(), st.integers(min_value=2**63 - 2, max_value=2**80), st.integers(max_value=-(2**63)),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0, -1, 1e308, -0.0, 2**64]),
)
scalars = st.one_of(st.none(), st.booleans(), edge_numbers, st.text(max_size=40))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(st.text(max_size=12), children, max_size=5)),
    max_leaves=25,
)
# Bodies shaped like the API's, with hostile values in the known fields.
known_fields = st.fixed_dictionaries({}, optional={
    name: json_values for name in ("sku", "name", "price", "temp_image_ids", "image_ids", "alt",
                                   "email", "password", "title", "blocks", "published", "visibility",
                                   "content", "images")
})
json_bodies = st.one_of(json_values, known_fields)
raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"", b"{", b"[" * 5000, b'{"price": NaN}', b'{"price": Infinity}',
                     b'{"price": 1e400}', b"\xff\xfe", b'{"a": "\\ud800"}', b"null", b"[]"]),
)
texts = st.text(max_size=30)
query_values = st.one_of(edge_numbers.map(str), texts, st.sampled_from(["", "-1", "0", "1e999", "NaN",
                                                                         "10" * 12, "\x00", "../"]))
queries = st.one_of(
    st.dictionaries(st.sampled_from(QUERY_NAMES), edge_numbers.map(str), min_size=1, max_size=3),
    st.dictionaries(st.sampled_from(QUERY_NAMES) | texts, query_values, max_size=4),
)
files = st.lists(
    st.tuples(st.sampled_from(["images", "image", "file", "files", "x"]),
              st.one_of(st.binary(max_size=64), st.just(b"\xff\xd8\xff" + b"\x00" * 40)),
              st.text(max_size=20)),
    max_size=3,
)
form_fields = st.dictionaries(st.sampled_from(["alt", "visibility", "title", "sku", "x"]) | texts,
                              texts, max_size=3)

VALID_ID = "0" * 24
RAW_TYPES = ["application/json", "text/plain", "multipart/form-data", "application/x-www-form-urlencoded"]


def api_endpoints(app) -> list[tuple[str, str, list[str]]]:
    """(rule, method, its path parameters) for every /api/ route of the app."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        for method in sorted(rule.methods & set(METHODS)):
            found.append((rule.rule, method, sorted(rule.arguments)))
    return sorted(found)


def fill(rule: str, values: dict[str, str]) -> str:
    """The rule with each ``<converter:name>`` replaced by its (URL-quoted) value."""
    from urllib.parse import quote

    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: quote(values[m.group(1)], safe=""), rule)


@pytest.fixture
def seeded(app, auth):
    """An app holding one product with an image, a builder image and a page, and the callers."""
    admin = auth.token("admin")
    client = app.test_client()
    photo = image_bytes(f"good/{next(name for name in GOOD_NAMES if name.endswith('.jpg'))}")
    known: dict[str, list[str]] = {"sku": ["FUZZ-1"], "slug": ["home"], "image_id": [], "id": [],
                                   "file_id": []}
    created = client.post("/api/shop/products", headers=admin,
                          json={"sku": "FUZZ-1", "name": "Fuzz", "price": 5})
    assert created.status_code == 201
    added = client.post("/api/shop/products/FUZZ-1/images", headers=admin,
                        data={"images": (io.BytesIO(photo), "p.jpg")})
    assert added.status_code == 201, added.get_json()
    known["image_id"] += [image["id"] for image in added.get_json()["added"]]
    media = client.post("/api/builder/media", headers=admin, data={"file": (io.BytesIO(photo), "b.jpg")})
    assert media.status_code == 201, media.get_json()
    known["id"].append(media.get_json()["id"])
    email, password = auth.user("editor")
    session = app.test_client()
    login = session.post("/api/auth/login", json={"email": email, "password": password})
    callers = {
        "admin": (client, admin),
        "session": (session, {"X-CSRF-Token": login.get_json()["csrf_token"]}),
        "anonymous": (app.test_client(), {}),
    }
    return app, known, callers


def check(response, label: str) -> None:
    assert response.status_code < 500, f"{label}: {response.status_code} {response.get_data()[:300]!r}"
    body = response.get_data()
    if response.status_code >= 400 and response.status_code != 405:
        assert response.is_json, f"{label}: a {response.status_code} that is not JSON"
        error = response.get_json()["error"]
        assert error["code"] and error["message"], label
    if response.is_json:
        # What a browser's JSON.parse takes: no NaN/Infinity literals anywhere.
        json.loads(body, parse_constant=lambda name: pytest.fail(f"{label}: {name} in the answer"))


def test_every_api_endpoint_is_fuzzed(app):
    """The URL map still has the endpoints this module seeds for (a guard on the fixture)."""
    rules = {rule for rule, _, _ in api_endpoints(app)}
    assert "/api/shop/products" in rules and len(rules) >= 15


@pytest.mark.slow
def test_no_generated_request_reaches_a_server_error(seeded):
    app, known, callers = seeded
    endpoints = api_endpoints(app)

    def path_values(names: list[str]):
        return st.fixed_dictionaries({
            name: st.one_of(st.sampled_from(known.get(name) or [VALID_ID]), st.just(VALID_ID), texts)
            for name in names
        })

    @settings(max_examples=EXAMPLES * len(endpoints), deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data):
        rule, method, names = data.draw(st.sampled_from(endpoints), label="endpoint")
        path = fill(rule, data.draw(path_values(names), label="path"))
        caller = data.draw(st.sampled_from(sorted(callers)), label="caller")
        client, headers = callers[caller]
        kind = data.draw(st.sampled_from(["json", "raw", "form", "none"]), label="body")
        kwargs: dict = {"query_string": data.draw(queries, label="query"), "headers": dict(headers)}
        if kind == "json":
            kwargs["data"] = json.dumps(data.draw(json_bodies, label="json"), allow_nan=False)
            kwargs["content_type"] = "application/json"
        elif kind == "raw":
            kwargs["data"] = data.draw(raw_bodies, label="raw")
            kwargs["content_type"] = data.draw(st.sampled_from(RAW_TYPES))
        elif kind == "form":
            form = dict(data.draw(form_fields, label="fields"))
            for field, payload, filename in data.draw(files, label="files"):
                form[field] = (io.BytesIO(payload), filename)
            kwargs["data"] = form
            kwargs["content_type"] = "multipart/form-data"
        response = client.open(path, method=method, **kwargs)
        check(response, f"{caller} {method} {path} ({kind})")

    run()
