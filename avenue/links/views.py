"""HTTP views for /api/upload-links: one-time upload links, and the holder's uploads through them.

Editors and admins (a session or an API token) create, list and revoke links. A holder sends
the link's secret, and nothing else of an account, with a file:

- ``Authorization: UploadLink <secret>``: what API clients and tus clients send (tuspy's and
  tus-js-client's ``headers`` option sets it on every request of an upload);
- or a multipart form field ``link``: what a plain HTML ``<form>`` can send, since a browser
  form cannot set a header.

Never in the URL: a URL ends up in access logs, proxies' logs, browser history and Referer
headers, where a secret that uploads must not be. The secret opens these routes only: it is
not a bearer token (``load_token_user`` ignores the scheme), so every other endpoint answers
the holder as anonymous (401).
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from flask import Blueprint, Response, current_app, jsonify, request, url_for
from flask_login import current_user

from avenue import audit, ratelimit, targets
from avenue.auth import require, require_role
from avenue.db import get_db
from avenue.errors import AvenueError, Forbidden, ImageTooLarge, NotFound, Unauthorized
from avenue.http import app_media, one_file, page_args, takes, tus_chunk, uploaded_files
from avenue.links import service, store
from avenue.media import Image, Resumables
from avenue.presentation.objects import signer_from_config
from avenue.tus import protocol as tus
from avenue.tus.service import parse_metadata

bp = Blueprint("links", __name__, url_prefix="/api/upload-links")
LINK_ID = '<oid("upload_link_not_found", "No upload link with this id."):link_id>'
SCHEME = "uploadlink"
GUESSES = "upload-link-guess"


def _rules() -> service.Rules:
    config = current_app.config
    return service.Rules(max_upload_bytes=config["AVENUE_MAX_UPLOAD_BYTES"],
                         default_seconds=config["AVENUE_UPLOAD_LINK_DEFAULT_SECONDS"],
                         max_seconds=config["AVENUE_UPLOAD_LINK_MAX_SECONDS"])


def _settings() -> targets.Settings:
    return targets.settings_from_config(current_app.config)


def _checks() -> service.Checks:
    return service.Checks(db=get_db(), rules=_rules(), settings=_settings())


@bp.post("")
@require_role("editor")
@takes(service.LinkBody, context=_checks)
def create_link(body: service.LinkBody) -> tuple[Response, int]:
    """A new link; its secret is in this answer only."""
    user = require()
    checked = service.check_request(body, _rules())
    require(*checked.target.row.roles)
    link, secret = store.create(get_db(), target=checked.target.as_dict(), label=checked.label,
                                max_bytes=checked.max_bytes, max_uses=checked.max_uses,
                                lifetime_seconds=checked.lifetime_seconds,
                                created_by={"id": user.id, "email": user.email})
    audit.log("upload_link_created", upload_link=str(link.id), label=link.label, upload_target=link.target,
              max_bytes=link.max_bytes, max_uses=link.max_uses, expires_at=link.to_dict()["expires_at"])
    return jsonify(link=link.to_dict(), secret=secret,
                   upload_url=url_for("links.upload_file", _external=True),
                   tus_url=url_for("links.tus_create", _external=True)), 201


@bp.get("")
@require_role("editor")
def list_links() -> Response:
    """Links newest first: admins every link, editors their own."""
    user = require()
    window = page_args()
    links, page = store.page(get_db(), window, creator=None if user.role == "admin" else user.id)
    for link in links:
        _note_expiry(link)
    return jsonify(page.shape([link.to_dict() for link in links], window))


@bp.delete(f"/{LINK_ID}")
@require_role("editor")
def revoke_link(link_id: ObjectId) -> Response:
    """Revoke a link (its creator's or, for admins, any): it takes no more uploads."""
    user = require()
    link = store.get(get_db(), link_id)
    if user.role != "admin" and link.created_by.get("id") != user.id:
        raise NotFound("No upload link with this id.", code="upload_link_not_found")
    link, revoked = store.revoke(get_db(), link_id)
    if revoked:
        audit.log("upload_link_revoked", upload_link=str(link.id), uses=link.uses, max_uses=link.max_uses)
    return jsonify(link.to_dict())


# --- the holder's side --------------------------------------------------------------------


def _note_expiry(link: store.Link) -> None:
    """One ``upload_link_expired`` audit entry per link, by whoever sees it expired first."""
    if store.note_expiry(get_db(), link):
        audit.log("upload_link_expired", upload_link=str(link.id), uses=link.uses, max_uses=link.max_uses,
                  expired_at=link.to_dict()["expires_at"])


def _secret(*, form: bool) -> str | None:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == SCHEME and secret.strip():
        return secret.strip()
    if form and request.mimetype == "multipart/form-data":
        return request.form.get("link") or None
    return None


def _holder(*, form: bool = False) -> store.Link:
    """The link this request's secret opens, whatever its state: 401 without one (403 for a
    logged-in caller: an account is not a link), 401 ``invalid_upload_link`` for a secret that
    opens none (counted per address: guessing is 429 after AVENUE_UPLOAD_LINK_GUESS_LIMIT).
    The secret is looked up before the count is checked, so an address that guessed wrong
    never locks out the right secret (a lookup by hash is one indexed read; a secret has 256
    random bits, so letting a right one through a locked address gives a guesser nothing)."""
    secret = _secret(form=form)
    if secret is None:
        message = ("Send the upload link's secret: Authorization: UploadLink <secret> "
                   "(or a form field 'link').")
        if current_user.is_authenticated:
            raise Forbidden(message, code="upload_link_required")
        raise Unauthorized(message, code="upload_link_required")
    link = store.by_secret(get_db(), secret)
    if link is None:
        throttle = ratelimit.failure_throttle(GUESSES, "AVENUE_UPLOAD_LINK_GUESS_LIMIT")
        throttle.check()
        throttle.failed()
        raise Unauthorized("This upload link is not valid.", code="invalid_upload_link")
    return link


def _usable(link: store.Link) -> store.Link:
    """The link, if it takes uploads now (410 revoked, expired, used up)."""
    refused = store.refusal(link)
    if refused is not None:
        _note_expiry(link)
        raise refused
    return link


def _limit_uploads(link: store.Link) -> None:
    """The uploads' own rate limit, per link (a holder has no account to count by)."""
    ratelimit.hit("uploads", current_app.config["AVENUE_UPLOAD_RATE_LIMIT"], f"link:{link.id}")


def _audited(link: store.Link) -> dict[str, Any]:
    return {"via": "link", "upload_link": str(link.id)}


def _read(stream: Any, limit: int) -> bytes:
    """The file's bytes, at most ``limit`` (413 past it)."""
    data = stream if isinstance(stream, bytes) else stream.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLarge(f"The file is larger than this link's {limit:,} bytes.", code="file_too_large",
                            limit_bytes=limit)
    return bytes(data)


@bp.post("/files")
@one_file
def upload_file() -> tuple[Response, int]:
    """A holder's file (multipart ``file``) into the link's target: one use of the link."""
    link = _usable(_holder(form=True))
    service.check_same_target(link, request.form)
    _limit_uploads(link)
    file = uploaded_files("file", single=True)[0]
    db = get_db()
    link = store.take_use(db, link)
    settings = _settings()
    try:
        data = _read(file.stream, service.settings_for(link, settings).limits.max_bytes)
        done = service.store_file(app_media(), link, file.filename, data, settings)
    except AvenueError:
        # The file was refused (too big, not an image, a full product): nothing was stored, so
        # the use goes back and the holder may try another file (store.py, write order 2).
        store.give_back(db, link)
        raise
    audit.log(targets.KIND[done.kind].audit_action, **_audited(link), **done.audit)
    answer = service.LinkUploaded(image=_shown(done.kind, done.loaded(app_media())), created=done.created,
                                  uses_left=link.remaining)
    return jsonify(answer.answer()), 201 if done.created else 200


def _shown(kind: str, image: Image | None) -> service.HolderImage | None:
    """What a holder's answer shows of the image its file became (None: none, or gone since)."""
    if image is None:
        return None
    signer = signer_from_config(current_app.config)
    return service.holder_image(targets.image_json(get_db(), kind, image, signer))


@bp.after_request
def tus_headers(response: Response) -> Response:
    """The tus protocol's headers on the link's tus routes."""
    if request.endpoint in ("links.tus_create", "links.tus_upload", "links.tus_patch"):
        return tus.tus_headers(response)
    return response


@bp.post("/tus")
def tus_create() -> Response:
    """tus creation through a link: Upload-Length at most the link's size; one use of the link
    (given back if the finished file is refused)."""
    link = _usable(_holder())
    tus.check_version()
    _limit_uploads(link)
    length = tus.declared_length(min(current_app.config["AVENUE_MAX_UPLOAD_BYTES"], link.max_bytes))
    metadata = parse_metadata(request.headers.get("Upload-Metadata"))
    service.check_same_target(link, metadata)
    db = get_db()
    link = store.take_use(db, link)
    try:
        return tus.start(owner=service.owner_of(link), length=length,
                         target=service.target_of(link), metadata=metadata,
                         endpoint="links.tus_upload", holder=f"link:{link.id}")
    except AvenueError:
        store.give_back(db, link)
        raise


def _upload_of(link: store.Link, upload_id: str) -> Resumables.Resumable:
    """The link's own tus upload (404 for any other: a link reaches nothing else)."""
    upload = Resumables(get_db()).find(upload_id, owner=None)
    if upload.target.get("link") != str(link.id):
        raise Resumables.NotFound()
    return upload


def _live(link: store.Link) -> store.Link:
    """A link whose upload may go on: not revoked, not expired (its use was taken at creation)."""
    refused = store.refusal(link)
    if refused is not None and refused.code not in ("upload_link_used_up", "upload_link_refused_out"):
        _note_expiry(link)
        raise refused
    return link


@bp.route("/tus/<string(length=24):upload_id>", methods=["GET", "HEAD"])
def tus_upload(upload_id: str) -> Response:
    """HEAD: how many bytes of the link's upload arrived (tus). GET: the upload as JSON, as its
    owner's GET at /api/tus shows it but cut to what a holder sees (:class:`service.HolderTusUpload`)."""
    link = _live(_holder())
    tus.check_version()
    upload = _upload_of(link, upload_id)
    if request.method == "HEAD":
        return tus.head(upload)
    image = targets.image_of(app_media(), upload.result) if upload.result else None
    kind = targets.Target.from_dict(upload.target).kind
    return jsonify(service.holder_upload(upload, _shown(kind, image)).answer())


@bp.patch("/tus/<string(length=24):upload_id>")
@tus_chunk
def tus_patch(upload_id: str) -> Response:
    """Bytes of the link's upload (tus PATCH); the last one stores the file into the link's target."""
    link = _live(_holder())
    tus.check_version()
    return tus.receive(lambda: _upload_of(link, upload_id), refused=lambda: store.give_back(get_db(), link),
                       **_audited(link))
