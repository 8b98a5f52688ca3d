"""The OpenAPI 3.1 document of the whole ``/api/`` surface, served at ``/api/openapi.json``.

Built in Python next to the views (rather than a YAML file) so its limits are the code's own
constants and one helper states the error responses every operation shares. It cannot drift
unnoticed: ``tests/api/test_openapi.py`` checks that every URL rule under ``/api/`` and each of
its methods is in it, validates every response of a scenario that calls every endpoint
against it, and runs schemathesis against the app. ``docs/api.md`` is the contract in prose
(its endpoint tables generated from this document by ``docs/generate.py``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

bp = Blueprint("apidoc", __name__, url_prefix="/api")


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a new dict each call), put together by
    :mod:`avenue.apidoc.openapi`: imported here on first use, so a process that never serves
    the document (most gunicorn workers, every CLI command) never builds its schemas (120 ms
    of a 500 ms start; tests/unit/test_start_cost.py)."""
    from avenue.apidoc import openapi

    return openapi.document()


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3.1 document of /api/."""
    return jsonify(document())
