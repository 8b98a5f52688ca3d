"""The request log: one structured line per request with its id; log lines cannot be forged."""

from __future__ import annotations

import json
import logging
import re

import pytest

FORGED = "[2026-11-22 10:00:00] INFO in auth: admin@avenue.local logged in"


def test_an_unhandled_errors_log_line_escapes_cr_and_lf_from_the_path(app_factory, caplog):
    app = app_factory()

    @app.before_request
    def explode():  # a bug anywhere, on any path (routes' converters refuse CR/LF themselves)
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger=app.logger.name):
        response = app.test_client().get(f"/api/explode/x%0d%0a{FORGED}%0a%1b[2J")
    assert response.status_code == 500
    [record] = [r for r in caplog.records if r.getMessage().startswith("unhandled error on GET")]
    line = record.getMessage()
    assert not any(ch in line for ch in "\r\n\x1b"), line
    assert "x\\r\\n[2026-11-22" in line and "\\x1b[2J" in line  # escaped, not dropped: still readable


# --- the request log: one structured line per request, one id everywhere ------------------


def json_lines(captured: str) -> list[dict]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


def test_a_safe_x_request_id_is_echoed_and_logged_with_the_request(app_factory, capsys):
    client = app_factory(AVENUE_LOG_FORMAT="json").test_client()
    response = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a:01.2_x"})
    assert response.headers["X-Request-ID"] == "lb-7f3a:01.2_x"
    [line] = [entry for entry in json_lines(capsys.readouterr().err) if entry.get("event") == "request"]
    assert line["request_id"] == "lb-7f3a:01.2_x"
    assert {k: line[k] for k in ("method", "route", "path", "status", "bytes", "user_id")} == {
        "method": "GET", "route": "/healthz", "path": "/healthz", "status": 200,
        "bytes": len(response.data), "user_id": None}
    assert line["duration_ms"] >= 0 and line["level"] == "info" and line["timestamp"].endswith("Z")


@pytest.mark.parametrize("sent", ["x" * 129, "two words", "id\tforged=1", "{\"json\":1}", "é", ""])
def test_an_unsafe_or_oversized_x_request_id_is_replaced_by_a_generated_one(client, sent):
    response = client.get("/healthz", headers={"X-Request-ID": sent})
    rid = response.headers["X-Request-ID"]
    assert rid != sent and re.fullmatch(r"[0-9a-f]{32}", rid)


def test_without_x_request_id_each_request_gets_its_own(client):
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3


def test_every_json_error_body_carries_the_request_id_and_keeps_its_fields(client, auth):
    cases = [
        client.get("/api/nothing", headers={"X-Request-ID": "req-404"}),  # routing 404
        client.get("/api/auth/me", headers={"X-Request-ID": "req-401"}),  # a domain error
        client.post("/api/shop/products", data="{", content_type="application/json",
                    headers={"X-Request-ID": "req-400", **auth.token("admin")}),
    ]
    for response, rid in zip(cases, ["req-404", "req-401", "req-400"], strict=True):
        error = response.get_json()["error"]
        assert error["request_id"] == rid == response.headers["X-Request-ID"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)


def test_the_user_id_of_a_logged_in_request_is_logged(app_factory, capsys):
    from tests.helpers import Auth

    app = app_factory(AVENUE_LOG_FORMAT="json")
    headers = Auth(app).token("editor")
    me = app.test_client().get("/api/auth/me", headers=headers).get_json()
    lines = [e for e in json_lines(capsys.readouterr().err) if e.get("route") == "/api/auth/me"]
    assert [line["user_id"] for line in lines] == [me["user"]["id"]]


def test_an_unhandled_error_is_logged_once_with_its_request_id_and_traceback(app_factory, capsys, own_routes):
    app = app_factory(AVENUE_LOG_FORMAT="json")

    @app.get("/api/explode-test")
    def explode():
        raise RuntimeError("boom")

    response = app.test_client().get("/api/explode-test", headers={"X-Request-ID": "req-boom"})
    assert response.status_code == 500 and response.get_json()["error"]["request_id"] == "req-boom"
    lines = json_lines(capsys.readouterr().err)
    errors = [e for e in lines if e.get("level") == "error"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "req-boom" and "RuntimeError: boom" in errors[0]["exception"]
    assert "Traceback" in errors[0]["exception"]
    [access] = [e for e in lines if e.get("event") == "request"]
    assert access["status"] == 500 and access["request_id"] == "req-boom" and "exception" not in access


def test_development_logs_are_readable_text_and_production_logs_json(app_factory, capsys):
    app_factory(AVENUE_ENV="development").test_client().get("/healthz")
    text = capsys.readouterr().err
    assert "request" in text and "route=/healthz" in text and not json_lines(text)
    app_factory(AVENUE_ENV="production", SECRET_KEY="p" * 40).test_client().get("/healthz")
    assert any(line.get("route") == "/healthz" for line in json_lines(capsys.readouterr().err))


def test_the_access_log_is_on_by_default_and_can_be_turned_off(app_factory, capsys, monkeypatch):
    from avenue.config import from_environment

    monkeypatch.delenv("AVENUE_ACCESS_LOG", raising=False)
    assert from_environment()["AVENUE_ACCESS_LOG"] == "on"
    app_factory(AVENUE_ACCESS_LOG="off", AVENUE_LOG_FORMAT="json").test_client().get("/healthz")
    assert not [e for e in json_lines(capsys.readouterr().err) if e.get("event") == "request"]


# --- every answer, whichever path gives it: one id, one count, one line -------------------


def test_every_answer_is_given_an_id_counted_and_logged_whichever_path_answers_it(app_factory, capsys,
                                                                                  monkeypatch):
    """N answers by Flask, by the media front door as WSGI middleware, and by the front door
    as gunicorn's event loop asks it (``answer_at_once``; end to end in
    tests/system/test_metrics_gunicorn.py): N more in the request counter, N distinct ids, N lines."""
    from prometheus_client import REGISTRY

    from avenue.media.wiring import Route
    from avenue.metrics import FRONT_DOOR
    from tests.helpers import Auth, form

    # No deletion check due once the first GET below has made one: the event loop's path answers.
    app = app_factory(AVENUE_LOG_FORMAT="json", AVENUE_DELETIONS_POLL_MS=3_600_000)
    client = app.test_client()
    created = client.post("/api/uploads", data=form("good/progressive.jpg") | {"visibility": "public"},
                          headers=Auth(app).token("editor"))
    assert created.status_code == 201, created.get_json()
    url = created.get_json()["url"]
    image = client.get(url).data  # read whole: cached from now on
    front = Route.front_door_of(app)
    n = 6

    def by_flask(index: int, sent: dict) -> dict:
        return dict(client.get("/healthz", headers=sent).headers)

    def by_front_door(index: int, sent: dict) -> dict:
        monkeypatch.setattr(front, "wsgi_app", lambda *a: pytest.fail("Flask ran"))  # Flask is done
        response = client.get(url, headers=sent)
        assert response.data == image
        return dict(response.headers)

    def by_event_loop(index: int, sent: dict) -> dict:
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": url, "HTTP_HOST": "x"}
        environ.update({"HTTP_" + name.upper().replace("-", "_"): value for name, value in sent.items()})
        answer = front.answer_at_once(environ)
        assert answer is not None and answer[2] == [image]
        return dict(answer[1])

    for answer, route in [(by_flask, "/healthz"), (by_front_door, "/media/<alias>/<token>"),
                          (by_event_loop, "/media/<alias>/<token>")]:
        labels = {"route": route, "method": "GET", "status": "200"}
        FRONT_DOOR.fold()
        before = REGISTRY.get_sample_value("avenue_http_requests_total", labels) or 0.0
        capsys.readouterr()
        # Every other request sends its own id (kept), or one unsafe to echo (replaced).
        sent = [{"X-Request-ID": f"{answer.__name__}-{i}" if i % 2 else "two words"} for i in range(n)]
        ids = [answer(i, headers).get("X-Request-ID") for i, headers in enumerate(sent)]
        assert None not in ids and len(set(ids)) == n, (answer.__name__, ids)
        assert [rid for rid, headers in zip(ids, sent, strict=True) if rid == headers["X-Request-ID"]] == \
            [f"{answer.__name__}-{i}" for i in range(1, n, 2)]
        FRONT_DOOR.fold()  # what the folding thread does every second (and a scrape at once)
        after = REGISTRY.get_sample_value("avenue_http_requests_total", labels)
        assert after - before == n, answer.__name__
        lines = [line for line in json_lines(capsys.readouterr().err) if line.get("event") == "request"]
        assert sorted(line["request_id"] for line in lines) == sorted(ids), answer.__name__
        for line in lines:
            assert {k: line[k] for k in ("method", "route", "status", "user_id")} == {
                "method": "GET", "route": route, "status": 200, "user_id": None}
            assert line["timestamp"].endswith("Z") and line["duration_ms"] >= 0
            if route != "/healthz":
                assert line["path"] == url and line["bytes"] == len(image)


def test_the_front_doors_lines_written_at_once_are_the_lines_structlog_writes(app_factory, monkeypatch):
    """In production the folding thread renders the front door's lines itself and writes them
    in one go (avenue/requestlog.py); they must be exactly what structlog would have written."""
    import io

    from avenue import requestlog
    from avenue.metrics import FrontDoorAnswer

    app_factory(AVENUE_LOG_FORMAT="json")
    [handler] = [h for h in logging.getLogger("avenue").handlers if h.get_name() == "avenue-structured"]
    answers = [FrontDoorAnswer("a1", "GET", "/media/<alias>/<token>", "/media/uploads/x.jpg", 200, 0.00123,
                               105413, 1_764_000_000.25),
               FrontDoorAnswer("a2", "HEAD", "/media/<alias>/<token>/<variant>", "/media/b/y/card", 304,
                               0.0004, 0, 1_764_000_001.5)]
    through_structlog = io.StringIO()
    handler.setStream(through_structlog)
    assert requestlog._only_json_handler() is None  # pytest's own handler listens on the root
    requestlog.log_front_door_answers(answers)
    at_once = io.StringIO()
    handler.setStream(at_once)
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # production: nobody else listens
    assert requestlog._only_json_handler() is handler
    requestlog.log_front_door_answers(answers)
    assert at_once.getvalue() == through_structlog.getvalue()
    lines = [json.loads(line) for line in at_once.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == ["a1", "a2"]
    assert lines[1]["timestamp"] == "2025-11-24T16:00:01.500000Z" and lines[0]["duration_ms"] == 1.23
