"""The OpenAPI document (/api/openapi.json): valid, complete, and true to real responses.

Three ways it could lie, each tested: a URL rule or method missing from it (checked against
the app's URL map, so a new endpoint fails here until documented); a real response of a
scenario that calls every endpoint not matching it (every response validated with
openapi-core as the test client receives it); and schemathesis, which generates valid
(positive) and invalid (negative) requests from the document itself and checks that none
gets a 5xx or an answer the document does not describe.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Callable
from typing import NamedTuple

import mongomock
import pytest
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_spec_validator import validate
from pymongo.errors import ServerSelectionTimeoutError
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from avenue.apidoc import document
from tests.helpers import Auth, image_bytes, make_app
from tests.support.records import images

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def documented_operations() -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in document()["paths"].items()
            for method in item if method.upper() in METHODS}


def test_the_document_is_valid_openapi_3_1_and_served(client):
    served = client.get("/api/openapi.json")
    assert served.status_code == 200 and served.get_json() == document()
    assert document()["openapi"] == "3.1.0"
    validate(document())


@pytest.mark.parametrize("name, schema", [("products-status", "ProductsStatus"),
                                          ("storage-status", "StorageStatus")])
def test_the_status_report_schemas_name_only_fields_the_reports_answer(client, auth, name, schema):
    """Every field the schema lists is in the answer (none left from an older report), and the
    ``report`` and ``sweep`` blocks have exactly the fields documented."""
    schemas = document()["components"]["schemas"]
    common = schemas["Report"]["properties"]
    own = schemas[schema]["allOf"][1].get("properties", {})
    answer = client.get(f"/api/shop/debug/{name}", headers=auth.token("ops")).get_json()
    assert set(common) | set(own) == set(answer)
    for block in ("report", "sweep"):
        assert set(answer[block]) == set(common[block]["properties"]), block


def test_every_api_url_rule_and_method_is_documented_and_nothing_else(app):
    rules = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>:]+)>", r"{\1}", rule.rule)
            rules |= {(path, method) for method in rule.methods & METHODS}
    assert rules == documented_operations()


def test_a_body_a_view_declares_is_documented_from_its_model_alone(app):
    """Request shapes are declared once (avenue/shapes.py): every view taking a body model has
    its schema, as generated, as the operation's request body, and every view taking a query
    model its fields as the operation's parameters (besides the shared paging ones), each
    described; no operation documents a query parameter its view's model does not declare."""
    from avenue.shapes import parameters_of, schema_of

    paths, shaped, queried, by_hand = document()["paths"], 0, set(), set()
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>:]+)>", r"{\1}", rule.rule)
        for method in rule.methods & METHODS:
            operation = paths[path][method.lower()]
            if model := getattr(view, "body_shape", None):
                body = operation["requestBody"]["content"]
                assert body == {"application/json": {"schema": schema_of(model, {})}}, (method, path)
                shaped += 1
            declared = [parameter for parameter in operation.get("parameters", ()) if "$ref" not in parameter]
            if model := getattr(view, "query_shape", None):
                assert declared == parameters_of(model), (method, path)
                assert all(parameter.get("description") for parameter in declared), (method, path)
                queried.add((method, path))
            elif any(parameter["in"] == "query" for parameter in declared):
                by_hand.add((method, path))
    assert shaped >= 1 and queried == QUERIED_OPERATIONS and by_hand == set()


# The operations whose query a model declares (@takes_query).
QUERIED_OPERATIONS = {
    ("GET", "/api/builder/media"), ("GET", "/api/admin/audit"), ("GET", "/api/admin/history"),
    ("GET", "/api/admin/alerts"), ("GET", "/api/admin/deliveries/top"),
    ("GET", "/api/admin/deliveries/images/{alias}/{image_id}"), ("GET", "/api/admin/cleanup"),
    ("GET", "/api/admin/rerender"), ("GET", "/api/uploads"), ("GET", "/api/trash"),
    ("GET", "/api/builder/media/{media_id}/deliveries"), ("DELETE", "/api/builder/media/{media_id}"),
    ("GET", "/api/shop/debug/products-status"), ("GET", "/api/shop/debug/storage-status"),
}


class CheckedResponses:
    """Validates every response the test client gets against the document."""

    def __init__(self) -> None:
        self.openapi = OpenAPI.from_dict(document())
        self.seen: set[tuple[str, str, int]] = set()

    def check(self, response) -> None:
        sent = response.request
        # The operation is found by method and path; the body the app already read is not needed.
        bare = Request(EnvironBuilder(method=sent.method, path=sent.path,
                                      query_string=sent.query_string.decode()).get_environ())
        self.openapi.validate_response(WerkzeugOpenAPIRequest(bare), WerkzeugOpenAPIResponse(response))
        self.seen.add((sent.method, sent.path, response.status_code))


@pytest.fixture
def checked(app):
    """A test client whose every /api/ response is validated against the document."""
    from flask.testing import FlaskClient

    validator = CheckedResponses()

    class Client(FlaskClient):
        def open(self, *args, **kwargs):
            response = super().open(*args, **kwargs)
            if response.request.path.startswith("/api/"):
                response.get_data()
                validator.check(response)
            return response

    app.test_client_class = Client
    return app.test_client(), validator


def form(field, name="good/progressive.jpg", **extra):
    return {field: (io.BytesIO(image_bytes(name)), name.split("/")[-1]), **extra}


def test_every_response_of_a_scenario_over_every_endpoint_matches_the_document(app, checked):
    client, validator = checked
    auth = Auth(app)
    admin, editor, ops = auth.token("admin"), auth.token("editor"), auth.token("ops")
    multipart = {"content_type": "multipart/form-data"}
    # auth
    email, password = auth.user("editor")
    assert client.post("/api/auth/login", json={"email": email, "password": "wrong"}).status_code == 401
    assert client.post("/api/auth/login", json={}).status_code == 400
    session = client.post("/api/auth/login", json={"email": email, "password": password})
    csrf = {"X-CSRF-Token": session.get_json()["csrf_token"]}
    assert client.get("/api/auth/me").status_code == 200
    assert client.get("/api/auth/csrf").status_code == 200
    assert client.post("/api/auth/logout").status_code == 403  # no CSRF header
    assert client.post("/api/auth/logout", headers=csrf).status_code == 204
    assert client.get("/api/auth/me").status_code == 401
    # shop
    temp = client.post("/api/shop/temp-images", data=form("images"), headers=admin, **multipart)
    assert temp.status_code == 201
    temp_id = temp.get_json()["images"][0]["id"]
    body = {"sku": "AV-1", "name": "Lamp", "price": 12.5, "temp_image_ids": [temp_id]}
    assert client.post("/api/shop/products", json=body, headers=admin).status_code == 201
    again = body | {"temp_image_ids": []}
    assert client.post("/api/shop/products", json=again, headers=admin).status_code == 409
    assert client.post("/api/shop/products", json=body | {"sku": "AV-2"}, headers=admin).status_code == 422
    assert client.post("/api/shop/products", json=body, headers=editor).status_code == 403
    assert client.get("/api/shop/products?per_page=1").status_code == 200
    assert client.get("/api/shop/products?page=0").status_code == 400
    assert client.get("/api/shop/products/AV-1").status_code == 200
    assert client.get("/api/shop/products/NOPE").status_code == 404
    assert client.patch("/api/shop/products/AV-1", json={"price": 13}, headers=admin).status_code == 200
    added = client.post("/api/shop/products/AV-1/images", data=form("images", "good/alpha.png"),
                        headers=admin, **multipart)
    assert added.status_code == 201
    refused = client.post("/api/shop/products/AV-1/images", data=form("images", "bad/document.pdf"),
                          headers=admin, **multipart)
    assert refused.status_code == 415
    ids = [image["id"] for image in added.get_json()["product"]["images"]]
    order = "/api/shop/products/AV-1/images/order"
    assert client.put(order, json={"image_ids": ids[::-1]}, headers=admin).status_code == 200
    assert client.put(order, json={"image_ids": ids[:1]}, headers=admin).status_code == 422
    alt_text = "/api/shop/products/AV-1/alt-text"
    assert len(client.get(alt_text, headers=admin).get_json()["items"]) == 2
    changes = {"images": [{"id": ids[0], "suggestion": 0}, {"id": ids[1], "alt": "A lamp"},
                          {"id": "x", "alt": ""}]}
    assert client.post(alt_text, json=changes, headers=admin).status_code == 200
    assert client.post(alt_text, json={"images": []}, headers=admin).status_code == 400
    photo_name = f"/api/shop/products/AV-1/images/{ids[0]}/name"
    assert client.put(photo_name, json={"name": "Desk Lamp"}, headers=admin).status_code == 200
    assert client.put(photo_name, json={"name": "../x"}, headers=admin).status_code == 400
    assert client.delete(f"/api/shop/products/AV-1/images/{ids[0]}", headers=admin).status_code == 200
    assert client.get("/api/shop/debug/products-status", headers=ops).status_code == 200
    assert client.get("/api/shop/debug/storage-status?refresh=1", headers=ops).status_code == 200
    assert client.get("/api/shop/debug/storage-status", headers=editor).status_code == 403
    assert client.delete("/api/shop/products/AV-1", headers=admin).status_code == 204
    # builder
    labelled = form("file", alt="a lamp", folder="/shop", tags="red,lamp")
    media = client.post("/api/builder/media", data=labelled, headers=editor, **multipart)
    assert media.status_code == 201
    media_id = media.get_json()["id"]
    assert client.patch(f"/api/builder/media/{media_id}", json={"tags": ["red"], "folder": None},
                        headers=editor).status_code == 200
    media_name = f"/api/builder/media/{media_id}/name"
    named = client.put(media_name, json={"name": "Lamp"}, headers=editor)
    assert named.status_code == 200 and client.get(named.get_json()["named_url"]).status_code == 200
    assert client.put(media_name, json={"name": ""}, headers=editor).status_code == 400
    unknown = client.patch(f"/api/builder/media/{media_id}", json={"owner": "x"}, headers=editor)
    assert unknown.status_code == 400
    assert client.get("/api/builder/media?folder=/&tag=red", headers=editor).status_code == 200
    assert client.get("/api/builder/folders", headers=editor).status_code == 200
    assert client.get("/api/builder/tags", headers=editor).status_code == 200
    same = client.post("/api/builder/media", data=form("file"), headers=editor, **multipart)
    assert same.status_code == 200
    assert client.get("/api/builder/media?q=prog", headers=editor).status_code == 200
    assert client.get(f"/api/builder/media/{media_id}", headers=editor).status_code == 200
    assert client.get("/api/builder/media/nonsense", headers=editor).status_code == 404
    page = {"title": "Home", "blocks": [{"type": "image", "media_id": media_id}], "published": True}
    assert client.put("/api/builder/pages/home", json=page, headers=editor).status_code == 200
    missing = {"title": "x", "blocks": [{"type": "image", "media_id": "0" * 24}]}
    assert client.put("/api/builder/pages/home", json=missing, headers=editor).status_code == 422
    assert client.get("/api/builder/pages/home").status_code == 200
    assert client.get("/api/builder/pages/home/alt-text", headers=editor).status_code == 200
    assert client.post("/api/builder/pages/home/alt-text", json={"images": [{"id": media_id, "alt": None}]},
                       headers=editor).status_code == 200
    assert client.get("/api/builder/pages/home/alt-text", headers=editor).get_json()["total"] == 1
    assert client.get("/api/builder/pages/nothing").status_code == 404
    assert client.delete(f"/api/builder/media/{media_id}", headers=editor).status_code == 409
    assert client.delete(f"/api/builder/media/{media_id}?force=1", headers=editor).status_code == 204
    # uploads
    upload = client.post("/api/uploads", data=form("file", visibility="private"), headers=editor, **multipart)
    assert upload.status_code == 201
    upload_id = upload.get_json()["id"]
    assert client.post("/api/uploads", data=form("file", "bad/truncated.jpg"), headers=editor,
                       **multipart).status_code == 422
    assert client.get("/api/uploads", headers=editor).status_code == 200
    assert client.get(f"/api/uploads/{upload_id}", headers=editor).status_code == 200
    assert client.get(f"/api/uploads/{upload_id}", headers=ops).status_code == 404
    assert client.delete(f"/api/uploads/{upload_id}", headers=editor).status_code == 204
    # trash: the forced-deleted library image, the deleted upload and product photo are there
    assert client.get("/api/trash?per_page=2", headers=admin).status_code == 200
    assert client.get("/api/trash?from=nowhere", headers=admin).status_code == 400
    assert client.get("/api/trash", headers=editor).status_code == 200
    assert client.get(f"/api/trash/{media_id}", headers=editor).status_code == 200
    assert client.get(f"/api/trash/{upload_id}", headers=editor).status_code == 404  # not the library's
    assert client.post(f"/api/trash/{media_id}/restore", headers=editor).status_code == 200
    gone = client.post(f"/api/trash/{ids[0]}/restore", headers=admin)  # product AV-1 was deleted
    assert gone.status_code == 409 and gone.get_json()["error"]["code"] == "product_gone"
    assert client.delete(f"/api/trash/{upload_id}", headers=admin).status_code == 204
    assert client.post(f"/api/trash/{upload_id}/restore", headers=admin).status_code == 404
    # admin and the document itself
    assert client.get("/api/admin/audit?per_page=5", headers=admin).status_code == 200
    assert client.get("/api/admin/audit", headers=editor).status_code == 403
    assert client.get("/api/admin/history?range=24h", headers=ops).status_code == 200
    assert client.get("/api/admin/history?range=1y", headers=ops).status_code == 400
    assert client.get("/api/admin/alerts", headers=ops).status_code == 200
    assert client.post(f"/api/admin/alerts/{'0' * 24}/ack", headers=ops).status_code == 404
    assert client.get("/api/openapi.json").status_code == 200
    called = {(method, re.sub(r"/[0-9a-f]{24}", "/{id}", path)) for method, path, _ in validator.seen}
    assert len(called) >= 25 and {status for *_, status in validator.seen} >= {
        200, 201, 204, 400, 401, 403, 404, 409, 415, 422}


def test_a_link_holders_tus_upload_answers_as_the_document_says(app, checked):
    # The scenario above holds no upload link: a holder's tus routes are checked here, each
    # answer validated against the document (the GET's body is HolderTusUpload's).
    client, validator = checked
    editor = Auth(app).token("editor")
    photo = image_bytes("good/progressive.jpg")
    link = client.post("/api/upload-links", json={"target": {"kind": "builder"}}, headers=editor).get_json()
    holder = {"Authorization": f"UploadLink {link['secret']}", "Tus-Resumable": "1.0.0"}
    made = client.post("/api/upload-links/tus", headers={**holder, "Upload-Length": str(len(photo))})
    url = "/api/upload-links/tus/" + made.headers["Location"].rsplit("/", 1)[-1]
    assert client.get(url, headers=holder).status_code == 200
    sent = {**holder, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    assert client.patch(url, data=photo, headers=sent).status_code == 204
    assert client.get(url, headers=holder).get_json()["image"] is not None
    assert client.get(url, headers=editor).status_code == 403
    assert client.get(url, headers={"Authorization": "UploadLink avl_wrong"}).status_code == 401
    assert {status for method, _, status in validator.seen if method == "GET"} == {200, 401, 403}


# --- schemathesis -------------------------------------------------------------------------

SCHEMATHESIS_EXAMPLES = int(os.environ.get("AVENUE_SCHEMATHESIS_EXAMPLES", "12"))
# Only the operations whose path matches (a regular expression, searched): the ones a change
# touches, at more examples (docs/contributing.md). Unset: every operation.
SCHEMATHESIS_PATHS = re.compile(os.environ.get("AVENUE_SCHEMATHESIS_PATHS", ""))
SCHEMATHESIS_SHARDS = 4


# Hypothesis warns when the global ``random`` changes while it draws a case. Here that is not
# the strategies: a thread another test left on this xdist worker (a driver's server selection,
# Werkzeug's multipart boundary) may call ``random`` meanwhile; it once failed the suite that way
# ("Failed on the first call but did not on a subsequent one"). The cases stay derandomized.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
@pytest.mark.slow  # 100-110 s in all: left out of make test-fast
@pytest.mark.parametrize("shard", range(SCHEMATHESIS_SHARDS))
def test_schemathesis_finds_no_server_error_and_no_answer_the_document_does_not_describe(monkeypatch, shard):
    """Positive and negative requests for every operation, as an admin (past every role check).
    The operations are dealt into shards, each on an app of its own, so xdist's processes share
    them (one test of them all was the suite's longest, its last process's last two minutes);
    an operation's cases do not depend on its shard (derandomized, seeded by the test's code)."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode, checks
    from schemathesis.core.failures import FailureGroup

    # The zip imports take the archive itself as the body: schemathesis sends what it makes of
    # the binary schema as bytes (it has no serializer of its own for application/zip).
    from schemathesis.transport.serialization import serialize_binary

    schemathesis.serializer("application/zip")(lambda ctx, value: serialize_binary(value))
    shared = mongomock.MongoClient()
    # Imports from a URL fetch only from an allow-list's host that never resolves: a generated
    # public URL is refused (host_not_allowed) before any lookup, with or without a network.
    app = make_app(((lambda *args, **kwargs: shared), "mongodb://mongomock.invalid:27017"), "schemathesis",
                   AVENUE_ACCESS_LOG="off", AVENUE_URL_IMPORT_HOSTS=["supplier.invalid"])
    admin = Auth(app).token("admin")
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    # No credentials generated: every case is sent with the admin's token, which replaces them
    # (they were a third of the cases' generation, drawn and thrown away), and ignored_auth
    # takes the credentials to strip and forge from the document's security, not from the case.
    schema.config.generation.update(with_security_parameters=False)

    @schemathesis.serializer("application/offset+octet-stream")
    def tus_bytes(ctx, value):  # a tus PATCH's body: the bytes as they are (avenue/tus/)
        return value if isinstance(value, bytes) else str(value).encode()

    # status_code_conformance: a status the operation does not document fails; ignored_auth: an
    # operation that needs a login must refuse the same request without the token or with a bad one.
    wanted = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
              checks.response_schema_conformance, checks.response_headers_conformance, checks.ignored_auth]
    cases = {"positive": 0, "negative": 0}
    failures: list[str] = []
    started = time.monotonic()
    def explore(operation, mode) -> None:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=SCHEMATHESIS_EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case):
            cases[mode.value] += 1
            try:
                case.call_and_validate(headers=admin, checks=wanted)
            # Collected: one report of everything that failed. Several checks failing on one
            # answer raise a FailureGroup, a BaseExceptionGroup that `except Exception` misses.
            except (Exception, FailureGroup) as error:
                failures.append(f"{case.method} {case.formatted_path} ({mode.value}): "
                                f"{str(error).strip()[:600]}")

        try:
            run()
        except Unsatisfiable:  # nothing to make invalid (no parameters, no body): no negative case
            assert mode is GenerationMode.NEGATIVE, operation.label

    chosen = [operation for operation in (result.ok() for result in schema.get_all_operations())
              if SCHEMATHESIS_PATHS.search(operation.path)]
    mine = chosen[shard::SCHEMATHESIS_SHARDS]
    if not mine:
        pytest.skip(f"AVENUE_SCHEMATHESIS_PATHS leaves {len(chosen)} operation(s): none for shard {shard}")
    for operation in mine:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            explore(operation, mode)
    elapsed = time.monotonic() - started
    print(f"schemathesis, shard {shard}: {cases['positive']} positive + {cases['negative']} negative cases "
          f"in {elapsed:.1f} s")
    assert failures == [], "\n".join(sorted(set(failures))[:40])
    assert cases["positive"] >= len(mine) and cases["negative"] >= 1


# --- every status the code answers is documented ------------------------------------------

class Unreachable:
    """A MongoDB client whose every operation fails as it does while the database is down."""

    def __getattr__(self, name: str) -> Unreachable:
        return self

    def __getitem__(self, name: str) -> Unreachable:
        return self

    def __call__(self, *args, **kwargs):
        raise ServerSelectionTimeoutError("the test's database is down")


class Operation(NamedTuple):
    method: str
    path: str  # as the document names it
    url: str  # its path parameters filled: ids well formed, so a 404 is the resource's own
    view: Callable | None = None


def api_operations(app) -> list[Operation]:
    """Every /api/ operation of the app's URL map (not of the document: a new one is probed too)."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            url = re.sub(r"<(?:[^<>]+:)?([^<>:]+)>",
                         lambda m: "0" * 24 if m.group(1).endswith("_id") else "probe-1", rule.rule)
            path = re.sub(r"<(?:[^:<>]+:)?([^<>:]+)>", r"{\1}", rule.rule)
            found += [Operation(method, path, url, app.view_functions[rule.endpoint])
                      for method in sorted(rule.methods & METHODS)]
    return sorted(found)


class Answers:
    """The statuses each operation answered (with the first probe that got each); every
    error must be a JSON error."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], dict[int, str]] = {}
        self.not_json: list[str] = []

    def add(self, operation: Operation, probe: str, response) -> None:
        method, path = operation.method, operation.path
        self.seen.setdefault((method, path), {}).setdefault(response.status_code, probe)
        if response.status_code >= 400 and not (response.is_json and response.get_json()["error"]["message"]):
            self.not_json.append(f"{method} {path} ({probe}): {response.status_code} {response.content_type}")

    def undocumented(self) -> list[str]:
        paths = document()["paths"]
        return [f"{method} {path}: {status} ({probe})"
                for (method, path), statuses in sorted(self.seen.items())
                for status, probe in sorted(statuses.items())
                if str(status) not in paths[path][method.lower()]["responses"]]

    def got(self, status: int) -> set[tuple[str, str]]:
        return {operation for operation, statuses in self.seen.items() if status in statuses}


def probe_app(client_class):
    return make_app((client_class, "mongodb://mongomock.invalid:27017"), "probes", AVENUE_ACCESS_LOG="off",
                    RATELIMIT_ENABLED=True, AVENUE_UPLOAD_RATE_LIMIT="1000/minute")


def test_every_status_a_probe_of_every_operation_gets_is_documented_and_json():
    """Every operation called anonymously, with a bad token, in each role, by a session without
    its CSRF token, with a body too large, bad JSON, an empty form, a PDF or a truncated JPEG
    as its files, past the rate limits, with the database down after start and from the start:
    whatever each answers is in the document, and every error is JSON."""
    shared = mongomock.MongoClient()
    app = probe_app(lambda *args, **kwargs: shared)
    auth = Auth(app)
    tokens = {role: auth.token(role) for role in ("admin", "editor", "ops")}
    session, _ = auth.login("admin")
    admin = tokens["admin"]
    probes = {
        "anonymous": {},
        "a bad token": {"headers": {"Authorization": "Bearer av_not-a-token"}},
        **{f"as {role}": {"headers": headers} for role, headers in tokens.items()},
        "a body too large": {"headers": admin, "data": b"x",
                             "environ_overrides": {"CONTENT_LENGTH": "10000000000"}},
        "JSON that is not": {"headers": admin, "data": b"{", "content_type": "application/json"},
        "an empty JSON object": {"headers": admin, "json": {}},
        "an empty form": {"headers": admin, "data": {}, "content_type": "multipart/form-data"},
        "a text body": {"headers": admin, "data": b"hello", "content_type": "text/plain"},
    }
    files = {"a PDF": image_bytes("bad/document.pdf"), "a truncated JPEG": image_bytes("bad/truncated.jpg")}

    def with_file(data: bytes) -> dict:
        return {"file": (io.BytesIO(data), "a.jpg"), "images": (io.BytesIO(data), "a.jpg")}

    answers = Answers()
    client = app.test_client()
    operations = api_operations(app)
    for operation in operations:
        for probe, kwargs in probes.items():
            answers.add(operation, probe, client.open(operation.url, method=operation.method, **kwargs))
        for probe, data in files.items():
            answers.add(operation, probe, client.open(operation.url, method=operation.method, headers=admin,
                                                      data=with_file(data)))
        answers.add(operation, "a session without CSRF", session.open(operation.url, method=operation.method))
    # Past the limits: one upload an hour per user, one failed login an hour per account.
    app.config.update(AVENUE_UPLOAD_RATE_LIMIT="1/hour", AVENUE_LOGIN_RATE_LIMIT="1/hour")
    uploader = auth.token("admin")
    for operation in operations:
        for _ in range(2):
            answers.add(operation, "past the upload limit", client.open(
                operation.url, method=operation.method, headers=uploader, data=with_file(files["a PDF"])))
    login = next(operation for operation in operations if operation.path == "/api/auth/login")
    for _ in range(3):
        answers.add(login, "failed logins", client.post(login.url, json={"email": "nobody@example.com",
                                                                         "password": "wrong"}))
    # The database goes down after start (the indexes are ready); a worker starts without it.
    app.extensions["avenue.mongo"].db = Unreachable()
    cold = probe_app(lambda *args, **kwargs: Unreachable()).test_client()
    for operation in operations:
        for probe, caller in (("the database down", client), ("the database down at start", cold)):
            answers.add(operation, probe, caller.open(operation.url, method=operation.method, headers=admin))

    assert not answers.not_json, "\n".join(answers.not_json)
    assert not answers.undocumented(), "\n".join(answers.undocumented())
    # The probes reached what they aim at (or this test would prove nothing).
    everything = {(operation.method, operation.path) for operation in operations}
    assert answers.got(413) == everything
    # The document itself needs no database (avenue/readiness.py): it is served while it is down.
    assert answers.got(503) == everything - {("GET", "/api/openapi.json")}
    # ... and says so: the operations that document a 503 are those that answered one.
    paths = document()["paths"]
    assert answers.got(503) == {(method, path) for path, method in documented_operations()
                                if "503" in paths[path][method.lower()]["responses"]}
    logged_in = {(op.method, op.path) for op in operations if getattr(op.view, "required_roles", None)}
    assert len(logged_in) >= 35 and answers.got(401) >= logged_in
    # An upload link's file route is a holder's, not an account's: no probe holds a link.
    uploads = {(op.method, op.path) for op in operations
               if getattr(op.view, "body_limit", None) in ("one_file", "product_files", "zip_archive")
               and getattr(op.view, "required_roles", None)}
    # A tus upload is counted when it is created (avenue/tus/), not per PATCH of its bytes; the
    # imports from a URL count as uploads too (their body is JSON or a CSV, not files).
    url_imports = {("POST", "/api/builder/media/import-url"), ("POST", "/api/shop/import-urls"),
                   ("POST", "/api/shop/products/{sku}/images/import-url")}
    limited = uploads | url_imports | {("POST", "/api/auth/login"), ("POST", "/api/tus")}
    assert len(uploads) == 9 and answers.got(429) == limited
    assert answers.got(415) >= {("POST", "/api/shop/temp-images"), ("POST", "/api/uploads")}


def test_every_operation_documents_what_the_app_server_refuses_before_the_app():
    """What no in-process probe can show, answered to a request for any operation: gunicorn's
    414 for a request line over limit_request_line (4094 bytes: a long query string or path),
    431 for header fields over its limits, 417 and 501 for an Expect or a Transfer-Encoding it
    does not know, 400 for malformed HTTP, and avenue/server.py's 408 for a client too slow."""
    for path, method in documented_operations():
        responses = document()["paths"][path][method.lower()]["responses"]
        assert {"400", "408", "414", "417", "431", "501"} <= set(responses), (method, path)


def test_the_conflicts_a_state_causes_are_documented(app, db, auth):
    """409s that need a state to show: an image a replace holds (deleting it, or the product
    holding it, waits), a product with legacy images (no order by id)."""
    from bson import ObjectId

    from avenue.clock import now
    from avenue.media import Buckets

    client, admin = app.test_client(), auth.token("admin")
    photos = []
    for sku, name in (("C-1", "good/progressive.jpg"), ("C-2", "good/alpha.png")):
        assert client.post("/api/shop/products", json={"sku": sku, "name": "x", "price": 1},
                           headers=admin).status_code == 201
        added = client.post(f"/api/shop/products/{sku}/images", data=form("images", name), headers=admin)
        photos.append(added.get_json()["added"][0]["id"])
    media = client.post("/api/builder/media", data=form("file"), headers=admin).get_json()["id"]
    upload = client.post("/api/uploads", data=form("file"), headers=admin).get_json()["id"]
    being_replaced = {"$set": {"metadata.replacing_at": now()}}
    for bucket, image_id in ((Buckets.PRODUCTS, photos[0]), (Buckets.PRODUCTS, photos[1]),
                             (Buckets.BUILDER, media),
                             (Buckets.UPLOADS, upload)):
        images(db, bucket).update_one({"_id": ObjectId(image_id)}, being_replaced)
    db.shop_products.insert_one({"sku": "C-OLD", "name": "x", "price": 1, "images": ["/uploads/a.jpg"]})
    answers = Answers()
    for operation, body in (
            (Operation("DELETE", "/api/shop/products/{sku}/images/{image_id}",
                       f"/api/shop/products/C-1/images/{photos[0]}"), None),
            (Operation("DELETE", "/api/shop/products/{sku}", "/api/shop/products/C-2"), None),
            (Operation("DELETE", "/api/builder/media/{media_id}", f"/api/builder/media/{media}"), None),
            (Operation("DELETE", "/api/uploads/{upload_id}", f"/api/uploads/{upload}"), None),
            (Operation("PUT", "/api/shop/products/{sku}/images/order",
                       "/api/shop/products/C-OLD/images/order"), {"image_ids": []})):
        response = client.open(operation.url, method=operation.method, headers=admin, json=body)
        assert response.status_code == 409, (operation, response.get_json())
        answers.add(operation, "a state", response)
    assert not answers.undocumented(), "\n".join(answers.undocumented())
