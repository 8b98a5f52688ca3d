"""Upload bodies are parsed in memory, never spooled to the local disk, and stay capped by the
route's body limit (avenue/http.py: ``Request``, ``limit_request_body``)."""

from __future__ import annotations

import io
import tempfile

import pytest
from werkzeug import formparser

from tests.support.client import UPLOADS, multipart
from tests.support.fixtures import photo


@pytest.fixture
def spooled(monkeypatch) -> list[str]:
    """The temporary files anything opens while the test runs (they are still made)."""
    opened: list[str] = []

    def spy(name, make):
        def opening(*args, **kwargs):
            opened.append(name)
            return make(*args, **kwargs)
        return opening

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, spy(name, getattr(tempfile, name)))
    # Werkzeug's default stream factory holds its own reference to the spooling class.
    monkeypatch.setattr(formparser, "SpooledTemporaryFile", spy("SpooledTemporaryFile",
                                                               formparser.SpooledTemporaryFile))
    return opened


def test_an_upload_over_half_a_megabyte_is_parsed_without_a_temporary_file(client, editor, spooled):
    data = photo(1)
    assert len(data) > 500 * 1024  # past Werkzeug's spooling threshold
    body, content_type = multipart({"visibility": "public"}, "file", "big.jpg", data)
    answer = client.post(UPLOADS, data=body, headers={**editor, "Content-Type": content_type})
    assert answer.status_code == 201, answer.get_json()
    assert spooled == []


def test_a_body_past_the_routes_limit_is_still_refused(app_factory, auth, spooled):
    app = app_factory(AVENUE_MAX_UPLOAD_BYTES=200 * 1024)
    editor = type(auth)(app).token("editor")
    body, content_type = multipart({}, "file", "big.jpg", photo(2))
    answer = app.test_client().post(UPLOADS, data=body, headers={**editor, "Content-Type": content_type})
    assert answer.status_code == 413 and answer.get_json()["error"]["code"] == "request_entity_too_large"
    assert spooled == []


def test_a_chunked_body_past_the_routes_limit_is_refused_while_it_is_parsed(app_factory, auth, db_name):
    """No Content-Length to refuse it from: Werkzeug stops reading at the limit, so the form
    held in memory is never larger than the route takes."""
    app = app_factory(AVENUE_MAX_UPLOAD_BYTES=200 * 1024)
    editor = type(auth)(app).token("editor")
    body, content_type = multipart({}, "file", "big.jpg", photo(3))
    answer = app.test_client().post(UPLOADS, input_stream=io.BytesIO(body),
                                    headers={**editor, "Content-Type": content_type,
                                             "Transfer-Encoding": "chunked"},
                                    environ_overrides={"wsgi.input_terminated": True})
    assert answer.status_code == 413, answer.get_json()
    listed = app.test_client().get(UPLOADS, headers=editor).get_json()
    assert listed["items"] == []
