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
own service call (avenue/targets.py). The protocol's helpers, shared with the upload
links' route, are avenue/tus/protocol.py; the routes are here.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response, current_app, jsonify, request

from avenue import audit, targets
from avenue.auth import edits_images, require, require_role
from avenue.db import get_db
from avenue.errors import BadRequest
from avenue.http import app_media, tus_chunk
from avenue.media import Resumables
from avenue.presentation.objects import signer_from_config
from avenue.ratelimit import limit_uploads
from avenue.tus import protocol, service

bp = Blueprint("tus", __name__, url_prefix="/api/tus")
UPLOAD_ID = "<string(length=24):upload_id>"


bp.after_request(protocol.tus_headers)


@bp.route("", methods=["OPTIONS"])
def discover() -> Response:
    """What this server supports (the protocol's discovery request)."""
    response = Response(status=204)
    response.headers["Tus-Version"] = protocol.TUS_VERSION
    response.headers["Tus-Extension"] = protocol.EXTENSIONS
    response.headers["Tus-Max-Size"] = str(current_app.config["AVENUE_MAX_UPLOAD_BYTES"])
    response.headers["Tus-Checksum-Algorithm"] = ",".join(Resumables.CHECKSUM_ALGORITHMS)
    return response


@bp.post("")
@require_role()
@limit_uploads
def create() -> Response:
    """Create an upload of Upload-Length bytes for the target its Upload-Metadata names."""
    protocol.check_version()
    user = require()
    length = protocol.declared_length(current_app.config["AVENUE_MAX_UPLOAD_BYTES"])
    metadata = service.parse_metadata(request.headers.get("Upload-Metadata"))
    target = targets.parse(get_db(), metadata, protocol.upload_settings())
    require(*target.row.roles)
    return protocol.start(owner=user.id, length=length, target=target, metadata=metadata,
                          endpoint="tus.status")


def _own(upload_id: str) -> Resumables.Resumable:
    """The caller's upload, still allowed by their role: 404 (not theirs, none), 410 (expired)."""
    protocol.check_version()
    user = require()
    upload = Resumables(get_db()).find(upload_id, owner=user.id)
    require(*targets.Target.from_dict(upload.target).row.roles)
    return upload


@bp.route(f"/{UPLOAD_ID}", methods=["GET", "HEAD"])
@require_role()
def status(upload_id: str) -> Response:
    """HEAD: the protocol's offset request. GET: the upload as JSON: offset, length, state,
    expiry and, once done, the image it became."""
    upload = _own(upload_id)
    if request.method == "HEAD":
        return protocol.head(upload)
    image = targets.image_of(app_media(), upload.result) if upload.result else None
    kind = targets.Target.from_dict(upload.target).row
    signer = signer_from_config(current_app.config, sources=edits_images() or kind.uploader_edits)
    shown = targets.image_json(get_db(), kind.name, image, signer) if image is not None else None
    return jsonify(service.upload_answer(upload, shown).answer())


@bp.patch(f"/{UPLOAD_ID}")
@tus_chunk
@require_role()
def append(upload_id: str) -> Response:
    """Bytes at Upload-Offset; the request that brings the last byte stores the image."""
    protocol.check_version()
    return protocol.receive(lambda: _own(upload_id))


@bp.delete(f"/{UPLOAD_ID}")
@require_role()
def terminate(upload_id: str) -> Response:
    """Stop an upload: its bytes are deleted (an image it already became stays)."""
    upload = _own(upload_id)
    freed = Resumables(get_db()).discard(upload.id)
    audit.log("tus_upload_terminated", tus_upload=upload.id, offset=upload.offset, length=upload.length,
              bytes_freed=freed)
    return Response(status=204)


OVERRIDES: dict[str, Callable[[str], Response]] = {"PATCH": append, "DELETE": terminate,
                             "HEAD": lambda upload_id: protocol.head(_own(upload_id))}


@bp.post(f"/{UPLOAD_ID}")
@tus_chunk
@require_role()
def override(upload_id: str) -> Response:
    """X-HTTP-Method-Override: PATCH, DELETE or HEAD sent as a POST (for clients and proxies
    that cannot send those methods)."""
    protocol.check_version()
    method = request.headers.get("X-HTTP-Method-Override", "").upper()
    if method not in OVERRIDES:
        raise BadRequest("POST to an upload carries X-HTTP-Method-Override: PATCH, DELETE or HEAD.",
                         code="invalid_method_override")
    return OVERRIDES[method](upload_id)
