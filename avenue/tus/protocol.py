"""The tus 1.0.0 protocol's HTTP part, shared by the two routes that speak it: ``/api/tus``
(avenue/tus/views.py) and an upload link's (avenue/links/views.py). Its headers, the creation
request's length, the creation answer, the offset request, a PATCH's bytes, and a finished
upload stored as its target's multipart route would (:func:`avenue.targets.store`). Helpers of a
request being handled (they read ``flask.request``); the routes are the views'.
"""

from __future__ import annotations

import binascii
import datetime
import email.utils
from base64 import b64decode
from collections.abc import Callable
from typing import IO, Any

from flask import Response, current_app, request, url_for
from werkzeug.exceptions import ClientDisconnected

from avenue import audit, targets
from avenue.db import get_db
from avenue.errors import AvenueError, BadRequest, EmptyFile, ImageTooLarge, UnsupportedImage
from avenue.media import AppMedia, Resumables
from avenue.tus import service

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,termination,expiration,checksum"
OFFSET_TYPE = "application/offset+octet-stream"
# Requests the protocol covers (OPTIONS is discovery, GET our own JSON): each names its version.
TUS_METHODS = frozenset({"POST", "HEAD", "PATCH", "DELETE"})



class PreconditionFailed(AvenueError):
    """A tus request without ``Tus-Resumable: 1.0.0`` (the protocol's own status)."""

    status, code = 412, "unsupported_tus_version"


def upload_settings() -> targets.Settings:
    return targets.settings_from_config(current_app.config)


def check_version() -> None:
    """412 for a protocol request that does not name version 1.0.0 (after the login and rate
    checks, so a stranger learns nothing more than from any other route)."""
    if request.method in TUS_METHODS and request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise PreconditionFailed(f"Send Tus-Resumable: {TUS_VERSION} (the only version this server speaks).")


def tus_headers(response: Response) -> Response:
    response.headers["Tus-Resumable"] = TUS_VERSION
    if response.status_code == 412:
        response.headers["Tus-Version"] = TUS_VERSION
    response.headers["Cache-Control"] = "no-store"
    if not response.content_length and response.status_code in (200, 201, 204) and request.method != "GET":
        response.headers.pop("Content-Type", None)  # the protocol's answers have no body
    return response


def http_date(value: datetime.datetime) -> str:
    return email.utils.format_datetime(value, usegmt=True)


def integer(name: str) -> int:
    raw = request.headers.get(name, "")
    # ASCII digits only: str.isdigit also takes "²" (a header's byte 0xB2 read as Latin-1),
    # which int() refuses: an Upload-Length of it was a 500.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        code = "invalid_" + name.lower().replace("-", "_")
        raise BadRequest(f"{name} must be a non-negative integer.", code=code)
    return int(raw)


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
    length = integer("Upload-Length")
    if length > limit:
        raise ImageTooLarge(f"The file is larger than the {_size(limit)} limit.",
                            code="file_too_large", limit_bytes=limit)
    if length == 0:
        raise EmptyFile("The file is empty.", code="empty_file")
    return length


def _size(limit: int) -> str:
    mib = 1024 * 1024
    return f"{limit // mib} MB" if limit >= mib and limit % mib == 0 else f"{limit:,} bytes"


def caps() -> Resumables.Caps:
    """What one user, or one upload link, may have unfinished at once."""
    config = current_app.config
    return Resumables.Caps(uploads=config["AVENUE_TUS_MAX_OPEN_UPLOADS"],
                           bytes=config["AVENUE_TUS_MAX_OPEN_BYTES"])


def start(*, owner: str, length: int, target: targets.Target, metadata: dict[str, str],
          endpoint: str, holder: str | None = None) -> Response:
    """Create the upload and answer the creation request; its URL is ``endpoint``'s (the
    route the same caller continues it on: /api/tus, or an upload link's). ``holder``: whom
    it counts against (:func:`caps`; the owner unless an upload link's)."""
    upload = Resumables(get_db()).create(owner=owner, length=length, target=target.as_dict(),
                              filename=service.filename_of(metadata), filetype=service.filetype_of(metadata),
                              lifetime_seconds=current_app.config["AVENUE_TUS_EXPIRY_SECONDS"],
                              holder=holder, caps=caps())
    response = Response(status=201)
    response.headers["Location"] = url_for(endpoint, upload_id=upload.id, _external=True)
    response.headers["Upload-Expires"] = http_date(upload.expires_at)
    response.headers["Upload-Offset"] = "0"
    return response


def offset_headers(response: Response, upload: Resumables.Resumable) -> Response:
    response.headers["Upload-Offset"] = str(upload.offset)
    response.headers["Upload-Expires"] = http_date(upload.expires_at)
    if upload.result and upload.result.get("image_id") is not None:
        response.headers["Avenue-Image-Id"] = str(upload.result["image_id"])
    return response


def head(upload: Resumables.Resumable) -> Response:
    """How many bytes arrived (Upload-Offset) of how many (Upload-Length)."""
    response = offset_headers(Response(status=200), upload)
    response.headers["Upload-Length"] = str(upload.length)
    return response


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
    known = Resumables.CHECKSUM_ALGORITHMS
    if algorithm not in known:
        raise BadRequest(f"Upload-Checksum's algorithm is one of {', '.join(known)}.",
                         code="unsupported_checksum_algorithm")
    try:
        return algorithm, b64decode(encoded, validate=True)
    except binascii.Error:
        raise BadRequest("Upload-Checksum is 'algorithm base64digest'.", code="invalid_checksum") from None


def receive(find: Callable[[], Resumables.Resumable], *, refused: Callable[[], None] | None = None,
            **audited: Any) -> Response:
    """A PATCH: the bytes at Upload-Offset into the upload ``find`` gives (after the request's
    own checks); the request that brings the last byte stores the image (:func:`_complete`,
    with ``refused`` and ``audited`` passed on)."""
    if request.mimetype != OFFSET_TYPE:
        raise UnsupportedImage(f"Send the bytes with Content-Type: {OFFSET_TYPE}.",
                               code="invalid_content_type")
    at = integer("Upload-Offset")
    checksum = _checksum()
    upload = find()
    # The offset before the bytes' size: a wrong Upload-Offset is the protocol's 409 (the client
    # asks HEAD and resumes) whatever the PATCH brings, not a 400 for a short chunk.
    Resumables.check_offset(upload, at)
    config = current_app.config  # the floor never above what one PATCH may carry
    floor = min(config["AVENUE_TUS_MIN_CHUNK_BYTES"], config["AVENUE_TUS_CHUNK_MAX_BYTES"])
    if request.content_length is not None:
        # Refused before a byte is read; a body that stops short is checked again as it is stored.
        Resumables.check_piece_size(upload, at, request.content_length, floor)
    db = get_db()
    upload = Resumables(db).append(upload, at, _Body(request.stream), checksum=checksum, min_bytes=floor)
    if upload.state == Resumables.COMPLETING:
        upload = _complete(upload, refused=refused, **audited)
    return offset_headers(Response(status=204), upload)


def _complete(upload: Resumables.Resumable, *, refused: Callable[[], None] | None = None,
              **audited: Any) -> Resumables.Resumable:
    """Store a finished upload as its target's multipart route would, audited the same way
    (``via: "tus"`` unless ``audited`` says otherwise); a refusal (not an image, too many
    pixels, a full product) removes the upload, then calls ``refused``."""
    db = get_db()
    uploads = Resumables(db)
    try:
        with uploads.completing(upload):
            data = uploads.read_all(upload)
            done = targets.store(AppMedia.of(current_app), targets.Target.from_dict(upload.target),
                                 upload.filename, data,
                                 owner=upload.owner, settings=upload_settings())
    except AvenueError as error:
        if not isinstance(error, Resumables.Busy):
            uploads.discard(upload.id)
            if refused is not None:
                refused()
        raise
    audit.log(targets.KIND[done.kind].audit_action, **{"via": "tus", **audited}, tus_upload=upload.id,
              **done.audit)
    return uploads.finish(upload, done.result())
