"""Logging in, the admins' and ops' operations (audit log, history, deliveries, clean-up,
alerts, re-render) and this document's own path."""

from __future__ import annotations

from avenue.admin.deliveries import CleanupQuery, TopDelivered, TopQuery
from avenue.admin.service import AuditQuery
from avenue.apidoc.common import (
    ANYONE,
    LOGGED_IN_READ,
    LOGGED_IN_WRITE,
    NO_CONTENT,
    Schema,
    answer,
    answer_of,
    errors,
    in_path,
    list_of,
    op,
    page_params,
    ref,
    shaped,
)
from avenue.auth.service import Caller, Credentials, CsrfToken, LoggedIn
from avenue.media import Deliveries
from avenue.monitoring.alerts import AlertList, AlertsQuery
from avenue.monitoring.history import History, HistoryQuery
from avenue.ops.rerender import RerenderRun, RerenderStatus, RunProgress, StatusQuery
from avenue.shapes import OBJECT_ID, parameters_of

PATHS: dict[str, Schema] = {  # path items: operations by method, and shared parameters
    "/api/openapi.json": {"get": op(
        "This document.", {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {
            "schema": {"type": "object", "required": ["openapi", "paths"]}}}}},
        security=[{}], tags=["meta"], database=False)},
    "/api/auth/login": {"post": op(
        "Log in: a session cookie and its CSRF token.",
        {"200": answer_of(LoggedIn, "Logged in."),
         **errors(401, 429)},
        security=[{}], tags=["auth"], body=shaped(Credentials))},
    "/api/auth/logout": {"post": op("End this session (every session of the user ends on the server).",
                                    {"204": NO_CONTENT}, security=LOGGED_IN_WRITE, tags=["auth"],
                                    roles="any logged-in user")},
    "/api/auth/me": {"get": op("Who is calling.", {"200": answer_of(Caller, "The user.")},
        security=LOGGED_IN_READ, tags=["auth"], roles="any logged-in user")},
    "/api/auth/csrf": {"get": op("This session's CSRF token (send it as X-CSRF-Token).", {
        "200": answer_of(CsrfToken, "The token.")}, security=ANYONE, tags=["auth"])},
    "/api/admin/audit": {"get": op(
        "The audit log, newest first.", {"200": answer(list_of("AuditEntry"), "A page of entries."),
                                        **errors(403)},
        security=LOGGED_IN_READ, tags=["admin"], roles="admin",
        parameters=page_params(*parameters_of(AuditQuery)))},
    "/api/admin/history": {"get": op(
        "The storage history over a range: points for charts and uploads per bar.",
        {"200": answer_of(History, "The series."),
         **errors(403)},
        security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops",
        parameters=parameters_of(HistoryQuery))},
    "/api/admin/deliveries/top": {"get": op(
        "The most served or heaviest images over a range of days (at most 92), one item per version "
        "served (`version`, `current`: a replaced image's earlier version is its own item, named by the "
        "file name it was served under). Counted: answers that sent the bytes (a GET's 200 or 206; never "
        "a HEAD or a 304, nor the console's own loads, `via=console`), of public images only.",
        {"200": answer_of(TopDelivered, "The images, most first."), **errors(400, 403)},
        security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops",
        parameters=parameters_of(TopQuery))},
    "/api/admin/deliveries/images/{alias}/{image_id}": {
        "parameters": [in_path("alias", {"type": "string"}), in_path("image_id", OBJECT_ID)],
        "get": op("One image's answers and bytes per day over a range, by file, and when it was last "
                  "served (answers that sent the bytes; a private image's are not kept: all zeros).",
                  {"200": answer_of(Deliveries.Series, "The series."),
                   **errors(400, 403, 404)},
                  security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops",
                  parameters=parameters_of(Deliveries.DayRange))},
    "/api/admin/deliveries/never-served": {"get": op(
        "The library's images never served, one library page at a time (a page may hold fewer).",
        {"200": answer(list_of("Image"), "A page."), **errors(400, 403)},
        security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops", parameters=page_params())},
    "/api/admin/cleanup": {"get": op(
        "The clean-up list: library images no page or product uses, not served for days days, one library "
        "page at a time (delete each to move it to the trash, restorable).",
        {"200": answer(list_of("UnusedImage"), "A page."), **errors(400, 403)},
        security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops",
        parameters=page_params(*parameters_of(CleanupQuery)))},
    "/api/admin/alerts": {"get": op(
        "Recorded threshold crossings, newest first, and the thresholds in force.",
        {"200": answer_of(AlertList, "The alerts."),
         **errors(403)},
        security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops",
        parameters=parameters_of(AlertsQuery))},
    "/api/admin/rerender": {
        "get": op("The last re-render run started from the API and its progress; stale=1 also counts the "
                  "stale variants and renditions (a read of every files document).",
                  {"200": answer_of(RerenderStatus, "The last run."),
                   **errors(403)},
                  security=LOGGED_IN_READ, tags=["admin"], roles="admin, ops",
                  parameters=parameters_of(StatusQuery)),
        "post": op("Start one bounded re-render run in the background (resuming where the last one "
                   "stopped): stale variants rendered again from their originals, stale renditions removed "
                   "(docs/operations.md, rerender).",
                   {"202": answer_of(RunProgress, "The run, started."), **errors(400, 409)},
                   security=LOGGED_IN_WRITE, tags=["admin"], roles="admin",
                   body=shaped(RerenderRun))},
    "/api/admin/alerts/{alert_id}/ack": {
        "parameters": [in_path("alert_id", OBJECT_ID)],
        "post": op("Acknowledge an alert (the first acknowledgement stays).",
                   {"200": answer(ref("Alert"), "The alert."), **errors(404)},
                   security=LOGGED_IN_WRITE, tags=["admin"], roles="admin, ops")},
}
