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

import mongomock
import pytest
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_spec_validator import validate
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from avenue.apidoc import document
from tests.helpers import Auth, image_bytes, make_app

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def documented_operations() -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in document()["paths"].items()
            for method in item if method.upper() in METHODS}


def test_the_document_is_valid_openapi_3_1_and_served(client):
    served = client.get("/api/openapi.json")
    assert served.status_code == 200 and served.get_json() == document()
    assert document()["openapi"] == "3.1.0"
    validate(document())


def test_every_api_url_rule_and_method_is_documented_and_nothing_else(app):
    rules = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>:]+)>", r"{\1}", rule.rule)
            rules |= {(path, method) for method in rule.methods & METHODS}
    assert rules == documented_operations()


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


# --- schemathesis -------------------------------------------------------------------------

SCHEMATHESIS_EXAMPLES = int(os.environ.get("AVENUE_SCHEMATHESIS_EXAMPLES", "12"))


def test_schemathesis_finds_no_server_error_and_no_answer_the_document_does_not_describe(monkeypatch):
    """Positive and negative requests for every operation, as an admin (past every role check)."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode, checks
    from schemathesis.core.failures import FailureGroup

    from avenue.status import sweep

    # mongomock is not thread-safe: the sweep a ?refresh=1 starts in the background runs to
    # its end before the request reads on (run alongside it, a request at 100 examples failed
    # with a 500 from mongomock).
    in_background = sweep.run_in_background

    def to_its_end(db, settings):
        thread = in_background(db, settings)
        thread.join(30)
        return thread

    monkeypatch.setattr(sweep, "run_in_background", to_its_end)
    shared = mongomock.MongoClient()
    app = make_app(((lambda *args, **kwargs: shared), "mongodb://mongomock.invalid:27017"), "schemathesis",
                   AVENUE_ACCESS_LOG="off")
    admin = Auth(app).token("admin")
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
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

    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            explore(result.ok(), mode)
    elapsed = time.monotonic() - started
    print(f"schemathesis: {cases['positive']} positive + {cases['negative']} negative cases "
          f"in {elapsed:.1f} s")
    assert failures == [], "\n".join(sorted(set(failures))[:40])
    assert cases["positive"] >= 20 and cases["negative"] >= 20
