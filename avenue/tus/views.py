"""HTTP views for /api/tus: resumable uploads by the tus 1.0.0 protocol.

Core, creation, termination, expiration and checksum (https://tus.io/protocols/resumable-upload),
so tus-js-client, Uppy, TUSKit, tus-android and tuspy work unchanged. Implemented here rather
than taken from a library: the Flask/WSGI tus servers on PyPI (flask-tus and its forks,
last released 2016-2021) keep an upload's bytes in files on the local disk (and its state in
Redis or memory), tuspyserver is a FastAPI router writing to disk, and resumable-upload's
backends are SQLite, S3, GCS and Azure; none stores into MongoDB as the bytes arrive, which is
the point here (no local disk, any worker takes the next request). The protocol's HTTP part
is small; what needs care (the offset moved by one conditional update, pieces written as they
arrive, expiry) is ``avenue.media.resumable``, and a finished upload goes through the target's
own service call (avenue/tus/service.py).
"""

from __future__ import annotations

import binascii
import datetime
import email.utils
from base64 import b64decode
from collections.abc import Callable
from typing import IO, Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from werkzeug.exceptions import ClientDisconnected

from avenue import audit
from avenue.auth import edits_images, require, require_role
from avenue.db import get_db
from avenue.errors import AvenueError, BadRequest, EmptyFile, ImageTooLarge, UnsupportedImage
from avenue.http import tus_chunk
from avenue.media import limits_from_config, resumable, signer_from_config
from avenue.ratelimit import limit_uploads
from avenue.tus import service

bp = Blueprint("tus", __name__, url_prefix="/api/tus")
TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,termination,expiration,checksum"
OFFSET_TYPE = "application/offset+octet-stream"
UPLOAD_ID = "<string(length=24):upload_id>"
# Requests the protocol covers (OPTIONS is discovery, GET our own JSON): each names its version.
TUS_METHODS = frozenset({"POST", "HEAD", "PATCH", "DELETE"})


class PreconditionFailed(AvenueError):
    """A tus request without ``Tus-Resumable: 1.0.0`` (the protocol's own status)."""

    status, code = 412, "unsupported_tus_version"


def upload_settings() -> service.Settings:
    config = current_app.config
    return service.Settings(limits=limits_from_config(config),
                            max_product_images=config["AVENUE_MAX_PRODUCT_IMAGES"],
                            temp_ttl_seconds=config["AVENUE_TEMP_IMAGE_TTL_SECONDS"])


def check_version() -> None:
    """412 for a protocol request that does not name version 1.0.0 (after the login and rate
    checks, so a stranger learns nothing more than from any other route)."""
    if request.method in TUS_METHODS and request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise PreconditionFailed(f"Send Tus-Resumable: {TUS_VERSION} (the only version this server speaks).")


@bp.after_request
def tus_headers(response: Response) -> Response:
    response.headers["Tus-Resumable"] = TUS_VERSION
    if response.status_code == 412:
        response.headers["Tus-Version"] = TUS_VERSION
    response.headers["Cache-Control"] = "no-store"
    if not response.content_length and response.status_code in (200, 201, 204) and request.method != "GET":
        response.headers.pop("Content-Type", None)  # the protocol's answers have no body
    return response


def _http_date(value: datetime.datetime) -> str:
    return email.utils.format_datetime(value, usegmt=True)


def _integer(name: str) -> int:
    raw = request.headers.get(name, "")
    if not raw.isdigit() or len(raw) > 18:
        code = "invalid_" + name.lower().replace("-", "_")
        raise BadRequest(f"{name} must be a non-negative integer.", code=code)
    return int(raw)


@bp.route("", methods=["OPTIONS"])
def discover() -> Response:
    """What this server supports (the protocol's discovery request)."""
    response = Response(status=204)
    response.headers["Tus-Version"] = TUS_VERSION
    response.headers["Tus-Extension"] = EXTENSIONS
    response.headers["Tus-Max-Size"] = str(current_app.config["AVENUE_MAX_UPLOAD_BYTES"])
    response.headers["Tus-Checksum-Algorithm"] = ",".join(resumable.CHECKSUM_ALGORITHMS)
    return response


@bp.post("")
@require_role()
@limit_uploads
def create() -> Response:
    """Create an upload of Upload-Length bytes for the target its Upload-Metadata names."""
    check_version()
    user = require()
    length = declared_length(current_app.config["AVENUE_MAX_UPLOAD_BYTES"])
    metadata = service.parse_metadata(request.headers.get("Upload-Metadata"))
    target = service.target_of(get_db(), metadata, upload_settings())
    require(*service.ROLES[target["kind"]])
    return start(owner=user.id, length=length, target=target, metadata=metadata, endpoint="tus.status")


def declared_length(limit: int) -> int:
    """The creation request's Upload-Length, at most ``limit`` (413) and not 0 (400); 400
    for the extensions this server does not list (deferred length, concatenation)."""
    if "Upload-Concat" in request.headers:
        raise BadRequest("Upload-Concat is not supported: this server does not offer the concatenation "
                         "extension (see Tus-Extension); send the file as one upload.",
                         code="concatenation_not_supported")
    if "Upload-Defer-Length" in request.headers:
        raise BadRequest("Send Upload-Length: this server needs the size up front.",
                         code="invalid_upload_length")
    length = _integer("Upload-Length")
    if length > limit:
        raise ImageTooLarge(f"The file is larger than the {_size(limit)} limit.",
                            code="file_too_large", limit_bytes=limit)
    if length == 0:
        raise EmptyFile("The file is empty.", code="empty_file")
    return length


def _size(limit: int) -> str:
    mib = 1024 * 1024
    return f"{limit // mib} MB" if limit >= mib and limit % mib == 0 else f"{limit:,} bytes"


def caps() -> resumable.Caps:
    """What one user, or one upload link, may have unfinished at once."""
    config = current_app.config
    return resumable.Caps(uploads=config["AVENUE_TUS_MAX_OPEN_UPLOADS"],
                          bytes=config["AVENUE_TUS_MAX_OPEN_BYTES"])


def start(*, owner: str, length: int, target: dict[str, Any], metadata: dict[str, str],
          endpoint: str, holder: str | None = None) -> Response:
    """Create the upload and answer the creation request; its URL is ``endpoint``'s (the
    route the same caller continues it on: /api/tus, or an upload link's). ``holder``: whom
    it counts against (:func:`caps`; the owner unless an upload link's)."""
    upload = resumable.create(get_db(), owner=owner, length=length, target=target,
                              filename=service.filename_of(metadata), filetype=service.filetype_of(metadata),
                              lifetime_seconds=current_app.config["AVENUE_TUS_EXPIRY_SECONDS"],
                              holder=holder, caps=caps())
    response = Response(status=201)
    response.headers["Location"] = url_for(endpoint, upload_id=upload.id, _external=True)
    response.headers["Upload-Expires"] = _http_date(upload.expires_at)
    response.headers["Upload-Offset"] = "0"
    return response


def _own(upload_id: str) -> resumable.Resumable:
    """The caller's upload, still allowed by their role: 404 (not theirs, none), 410 (expired)."""
    check_version()
    user = require()
    upload = resumable.find(get_db(), upload_id, owner=user.id)
    require(*service.ROLES[upload.target.get("kind", "uploads")])
    return upload


def _offset_headers(response: Response, upload: resumable.Resumable) -> Response:
    response.headers["Upload-Offset"] = str(upload.offset)
    response.headers["Upload-Expires"] = _http_date(upload.expires_at)
    if upload.result and upload.result.get("image_id") is not None:
        response.headers["Avenue-Image-Id"] = str(upload.result["image_id"])
    return response


def head(upload: resumable.Resumable) -> Response:
    """How many bytes arrived (Upload-Offset) of how many (Upload-Length)."""
    response = _offset_headers(Response(status=200), upload)
    response.headers["Upload-Length"] = str(upload.length)
    return response


@bp.route(f"/{UPLOAD_ID}", methods=["GET", "HEAD"])
@require_role()
def status(upload_id: str) -> Response:
    """HEAD: the protocol's offset request. GET: the upload as JSON: offset, length, state,
    expiry and, once done, the image it became."""
    upload = _own(upload_id)
    if request.method == "HEAD":
        return head(upload)
    image = service.image_of(get_db(), upload.result) if upload.result else None
    kind = upload.target.get("kind", "uploads")
    return jsonify({
        "id": upload.id, "offset": upload.offset, "length": upload.length, "state": upload.state,
        "target": {key: value for key, value in upload.target.items() if value is not None},
        "filename": upload.filename, "expires_at": upload.expires_at.isoformat(),
        "created": upload.result.get("created") if upload.result else None,
        "image": service.image_json(get_db(), kind, image,
                                    signer_from_config(current_app.config,
                                                       sources=edits_images() or kind == "uploads"))
        if image is not None else None,
    })


class _Body:
    """The request body as pieces are read: a client that goes away mid-body ends it there
    (the bytes that arrived are kept), instead of failing the whole request."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        try:
            return self.stream.read(size)
        except ClientDisconnected:
            return b""


def _checksum() -> tuple[str, bytes] | None:
    header = request.headers.get("Upload-Checksum")
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in resumable.CHECKSUM_ALGORITHMS:
        raise BadRequest(f"Upload-Checksum's algorithm is one of {', '.join(resumable.CHECKSUM_ALGORITHMS)}.",
                         code="unsupported_checksum_algorithm")
    try:
        return algorithm, b64decode(encoded, validate=True)
    except binascii.Error:
        raise BadRequest("Upload-Checksum is 'algorithm base64digest'.", code="invalid_checksum") from None


@bp.patch(f"/{UPLOAD_ID}")
@tus_chunk
@require_role()
def append(upload_id: str) -> Response:
    """Bytes at Upload-Offset; the request that brings the last byte stores the image."""
    check_version()
    return receive(lambda: _own(upload_id))


def receive(find: Callable[[], resumable.Resumable], *, refused: Callable[[], None] | None = None,
            **audited: Any) -> Response:
    """A PATCH: the bytes at Upload-Offset into the upload ``find`` gives (after the request's
    own checks); the request that brings the last byte stores the image (:func:`_complete`,
    with ``refused`` and ``audited`` passed on)."""
    if request.mimetype != OFFSET_TYPE:
        raise UnsupportedImage(f"Send the bytes with Content-Type: {OFFSET_TYPE}.",
                               code="invalid_content_type")
    at = _integer("Upload-Offset")
    checksum = _checksum()
    upload = find()
    config = current_app.config  # the floor never above what one PATCH may carry
    floor = min(config["AVENUE_TUS_MIN_CHUNK_BYTES"], config["AVENUE_TUS_CHUNK_MAX_BYTES"])
    if request.content_length is not None:
        # Refused before a byte is read; a body that stops short is checked again as it is stored.
        resumable.check_piece_size(upload, at, request.content_length, floor)
    db = get_db()
    upload = resumable.append(db, upload, at, _Body(request.stream), checksum=checksum, min_bytes=floor)
    if upload.state == resumable.COMPLETING:
        upload = _complete(upload, refused=refused, **audited)
    return _offset_headers(Response(status=204), upload)


def _complete(upload: resumable.Resumable, *, refused: Callable[[], None] | None = None,
              **audited: Any) -> resumable.Resumable:
    """Store a finished upload as its target's multipart route would, audited the same way
    (``via: "tus"`` unless ``audited`` says otherwise); a refusal (not an image, too many
    pixels, a full product) removes the upload, then calls ``refused``."""
    db = get_db()
    try:
        with resumable.completing(db, upload):
            data = resumable.read_all(db, upload)
            done = service.complete(db, upload.target, upload.filename, data, owner=upload.owner,
                                    settings=upload_settings())
    except AvenueError as error:
        if not isinstance(error, resumable.UploadBusy):
            resumable.discard(db, upload.id)
            if refused is not None:
                refused()
        raise
    audit.log(service.AUDIT_ACTION[done.kind], **{"via": "tus", **audited}, tus_upload=upload.id,
              **done.audit)
    return resumable.finish(db, upload, done.result())


@bp.delete(f"/{UPLOAD_ID}")
@require_role()
def terminate(upload_id: str) -> Response:
    """Stop an upload: its bytes are deleted (an image it already became stays)."""
    upload = _own(upload_id)
    freed = resumable.discard(get_db(), upload.id)
    audit.log("tus_upload_terminated", tus_upload=upload.id, offset=upload.offset, length=upload.length,
              bytes_freed=freed)
    return Response(status=204)


OVERRIDES: dict[str, Callable[[str], Response]] = {"PATCH": append, "DELETE": terminate,
                             "HEAD": lambda upload_id: head(_own(upload_id))}


@bp.post(f"/{UPLOAD_ID}")
@tus_chunk
@require_role()
def override(upload_id: str) -> Response:
    """X-HTTP-Method-Override: PATCH, DELETE or HEAD sent as a POST (for clients and proxies
    that cannot send those methods)."""
    check_version()
    method = request.headers.get("X-HTTP-Method-Override", "").upper()
    if method not in OVERRIDES:
        raise BadRequest("POST to an upload carries X-HTTP-Method-Override: PATCH, DELETE or HEAD.",
                         code="invalid_method_override")
    return OVERRIDES[method](upload_id)
