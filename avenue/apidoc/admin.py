"""Logging in, the admins' and ops' operations (audit log, history, deliveries, clean-up,
alerts, re-render) and this document's own path."""

from __future__ import annotations

from avenue.admin.deliveries import TopDelivered
from avenue.apidoc.common import (
    ANYONE,
    LOGGED_IN_READ,
    LOGGED_IN_WRITE,
    NO_CONTENT,
    Schema,
    _answer,
    _errors,
    _json,
    _list_of,
    _op,
    _page_params,
    _path,
    _query,
    _ref,
    _shaped,
)
from avenue.apidoc.images import (
    RANGES_FROM,
    RANGES_TO,
)
from avenue.auth.service import Caller, Credentials, CsrfToken, LoggedIn
from avenue.media import deliveries
from avenue.monitoring.alerts import AlertList
from avenue.monitoring.history import History
from avenue.ops.rerender import RerenderRun, RerenderStatus, RunProgress
from avenue.shapes import OBJECT_ID

PATHS: dict[str, Schema] = {  # path items: operations by method, and shared parameters
    "/api/openapi.json": {"get": _op(
        "This document.", {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {
            "schema": {"type": "object", "required": ["openapi", "paths"]}}}}},
        security=[{}], tags=["meta"])},
    "/api/auth/login": {"post": _op(
        "Log in: a session cookie and its CSRF token.",
        {"200": _answer(LoggedIn, "Logged in."),
         **_errors(401, 429)},
        security=[{}], tags=["auth"], body=_shaped(Credentials))},
    "/api/auth/logout": {"post": _op("End this session (every session of the user ends on the server).",
                                     {"204": NO_CONTENT}, security=LOGGED_IN_WRITE, tags=["auth"],
                                     roles="any logged-in user")},
    "/api/auth/me": {"get": _op("Who is calling.", {"200": _answer(Caller, "The user.")},
        security=LOGGED_IN_READ, tags=["auth"], roles="any logged-in user")},
    "/api/auth/csrf": {"get": _op("This session's CSRF token (send it as X-CSRF-Token).", {
        "200": _answer(CsrfToken, "The token.")}, security=ANYONE, tags=["auth"])},
    "/api/admin/audit": {"get": _op(
        "The audit log, newest first.", {"200": _json(_list_of("AuditEntry"), "A page of entries."),
                                         **_errors(403)},
        security=LOGGED_IN_READ, tags=["admin"], roles="admin",
        parameters=_page_params(_query("user", {"type": "string"}, "An email or user id."),
                                _query("action", {"type": "string"}, "One action, e.g. upload_created.")))},
    "/api/admin/history": {"get": _op(
        "The storage history over a range: points for charts and uploads per bar.",
        {"200": _answer(History, "The series."),
         **_errors(403)},
        security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops",
        parameters=[_query("range", {"enum": ["24h", "7d", "30d"]}, "How far back (default 7d).")])},
    "/api/admin/deliveries/top": {"get": _op(
        "The most served or heaviest images over a range of days (at most 92). Counted: answers that "
        "sent the bytes (a GET's 200 or 206; never a HEAD or a 304), of public images only.",
        {"200": _answer(TopDelivered, "The images, most first."), **_errors(400, 403)},
        security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops",
        parameters=[RANGES_FROM, RANGES_TO,
                    _query("by", {"enum": ["requests", "bytes"]}, "Most served (default) or heaviest."),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100},
                           "How many (default 20).")])},
    "/api/admin/deliveries/images/{alias}/{image_id}": {
        "parameters": [_path("alias", {"type": "string"}), _path("image_id", OBJECT_ID)],
        "get": _op("One image's answers and bytes per day over a range, by file, and when it was last "
                   "served (answers that sent the bytes; a private image's are not kept: all zeros).",
                   {"200": _answer(deliveries.DeliverySeries, "The series."),
                    **_errors(400, 403, 404)},
                   security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops",
                   parameters=[RANGES_FROM, RANGES_TO])},
    "/api/admin/deliveries/never-served": {"get": _op(
        "The library's images never served, one library page at a time (a page may hold fewer).",
        {"200": _json(_list_of("Image"), "A page."), **_errors(400, 403)},
        security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops", parameters=_page_params())},
    "/api/admin/cleanup": {"get": _op(
        "The clean-up list: library images no page or product uses, not served for days days, one library "
        "page at a time (delete each to move it to the trash, restorable).",
        {"200": _json(_list_of("UnusedImage"), "A page."), **_errors(400, 403)},
        security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops",
        parameters=_page_params(_query("days", {"type": "integer", "minimum": 1, "maximum": 3650},
                                       "Not served for this many days (default 90).")))},
    "/api/admin/alerts": {"get": _op(
        "Recorded threshold crossings, newest first, and the thresholds in force.",
        {"200": _answer(AlertList, "The alerts."),
         **_errors(403)},
        security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops",
        parameters=[_query("open", {"enum": ["1", "true", "yes", "0", "false", "no"]},
                           "Only those not acknowledged.")])},
    "/api/admin/rerender": {
        "get": _op("The last re-render run started from the API and its progress; stale=1 also counts the "
                   "stale variants and renditions (a read of every files document).",
                   {"200": _answer(RerenderStatus, "The last run."),
                    **_errors(403)},
                   security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops",
                   parameters=[_query("stale", {"enum": ["1", "true", "yes", "0", "false", "no"]},
                                      "Also count what is stale.")]),
        "post": _op("Start one bounded re-render run in the background (resuming where the last one "
                    "stopped): stale variants rendered again from their originals, stale renditions removed "
                    "(docs/operations.md, rerender).",
                    {"202": _answer(RunProgress, "The run, started."), **_errors(400, 409)},
                    security=LOGGED_IN_WRITE, tags=["admin"], roles="admin",
                    body=_shaped(RerenderRun))},
    "/api/admin/alerts/{alert_id}/ack": {
        "parameters": [_path("alert_id", OBJECT_ID)],
        "post": _op("Acknowledge an alert (the first acknowledgement stays).",
                    {"200": _json(_ref("Alert"), "The alert."), **_errors(404)},
                    security=LOGGED_IN_WRITE, tags=["admin"], roles="admin, ops")},
}
