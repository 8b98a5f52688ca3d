"""POST /api/auth/login, POST /api/auth/logout, GET /api/auth/me, GET /api/auth/csrf."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from avenue import audit, ratelimit
from avenue.auth import service
from avenue.auth.access import csrf_token, end_session, require, require_role, start_session
from avenue.db import get_db
from avenue.errors import Unauthorized
from avenue.http import takes

bp = Blueprint("auth", __name__, url_prefix="/api/auth")


@bp.post("/login")
@takes(service.Credentials)
def login(body: service.Credentials) -> Response:
    email = service.normalize_email(body.email)
    # Checked before the password: a refused attempt costs no hashing. Only failures count.
    throttle = ratelimit.login_throttle(email)
    throttle.check()
    doc = service.authenticate(get_db(), email, body.password)
    if doc is None:
        throttle.failed()
        audit.log("login_failed", email=email)
        raise Unauthorized("The email or password is not right.", code="invalid_credentials")
    throttle.succeeded()
    start_session(doc)
    audit.log("login", user_id=str(doc["_id"]))
    return jsonify(service.LoggedIn(user=service.public_user(doc), csrf_token=csrf_token()).answer())


@bp.post("/logout")
@require_role()
def logout() -> tuple[str, int]:
    user = require()
    audit.log("logout", user_id=user.id)
    end_session(user)
    return "", 204


@bp.get("/me")
@require_role()
def me() -> Response:
    return jsonify(service.Caller(user=service.public_user(require().doc)).answer())


@bp.get("/csrf")
def csrf() -> Response:
    return jsonify(service.CsrfToken(csrf_token=csrf_token()).answer())
