"""The one route every media URL points at: GridFS bytes streamed with HTTP caching and ranges.

werkzeug's ``make_conditional`` does Range/If-Range/304 once it knows the length; this
module only feeds it validators from the files document (a 304 reads no chunk), and
normalises the requests werkzeug 3.1 would answer differently from RFC 9110.

The hottest answers (a cached public image, a revalidation with our ETag) need neither the
database nor Flask: :class:`FrontDoor` answers them in front of the Flask app, from the same
:func:`resolve` and :func:`representation_headers` the route uses, so both answer alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from bson import ObjectId
from bson.errors import InvalidId
from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import http_date, is_resource_modified, parse_range_header

from avenue.db import get_db, get_mongo
from avenue.media import signing, storage
from avenue.media.buckets import BUCKETS
from avenue.media.cache import MediaCache
from avenue.media.invalidation import LOCAL_CACHES
from avenue.media.objects import EXTENSIONS
from avenue.media.records import MediaDoc
from avenue.media.variants import VARIANT_NAMES
from avenue.security import baseline_headers

log = logging.getLogger(__name__)
bp = Blueprint("media", __name__)

CACHE_EXTENSION = "avenue.media_cache"
PUBLIC_CACHE = "public, max-age=31536000, immutable"
CSP = "default-src 'none'; sandbox"
_FORMAT_BY_EXT = {"webp": "webp", "jpg": "jpeg", "jpeg": "jpeg", "png": "png"}


def get_cache(app=None) -> MediaCache:
    return (app or current_app).extensions[CACHE_EXTENSION]


def init_app(app) -> None:
    cache = MediaCache(
        app.config["AVENUE_MEDIA_CACHE_BYTES"], app.config["AVENUE_MEDIA_CACHE_MAX_OBJECT_BYTES"]
    )
    app.extensions[CACHE_EXTENSION] = cache
    LOCAL_CACHES.add(cache)
    app.register_blueprint(bp)
    app.wsgi_app = FrontDoor(app, app.wsgi_app)


class ChunkStream:
    """A seekable iterator over a GridFS file, fetching a few chunks per round trip.

    werkzeug's range wrapper seeks it to the first byte wanted, so a Range request reads
    only the chunks from there on, and closes it when the range is done.
    """

    def __init__(self, db, bucket: str, file_id, length: int, chunk_size: int, on_complete=None):
        self._args = (db, bucket, file_id, length, chunk_size)
        self._position = 0
        self._iterator = None
        self._pending: bytes | None = None
        self._on_complete = on_complete
        self._parts: list[bytes] | None = [] if on_complete else None

    def prime(self) -> bool:
        """Fetch the first chunks now; False when the file's chunks are gone (just deleted)."""
        try:
            first = next(self)
        except (StopIteration, OSError):
            return False
        self._pending = first
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, position: int) -> None:
        self._position = position
        self._on_complete = self._parts = None  # a partial read is not a cacheable whole

    def tell(self) -> int:
        return self._position

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        if self._pending is not None:
            data, self._pending = self._pending, None
            return data
        if self._iterator is None:
            db, bucket, file_id, length, chunk_size = self._args
            self._iterator = storage.read_range(db, bucket, file_id, length, chunk_size, self._position)
        try:
            data = next(self._iterator)
        except StopIteration:
            if self._on_complete is not None:
                self._on_complete(b"".join(self._parts))
                self._on_complete = None
            raise
        self._position += len(data)
        if self._parts is not None:
            self._parts.append(data)
        return data

    def close(self) -> None:
        if self._iterator is not None:
            self._iterator.close()


def _not_found() -> Response:
    return Response("Not found\n", status=404, mimetype="text/plain",
                    headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


def _parse_id(token: str) -> tuple[ObjectId | None, str]:
    stem, _, ext = token.partition(".")
    try:
        return ObjectId(stem), ext.lower()
    except (InvalidId, TypeError):
        return None, ""



def _normalise_range(environ: dict, etag: str, last_modified, length: int) -> None:
    """Make werkzeug's range handling follow RFC 9110 where 3.1 does not.

    Preconditions before Range (a matching If-None-Match is a 304, not a 206); an unknown
    unit, several ranges or a malformed header are ignored (200, full body) instead of
    416; a weak If-Range validator never matches; a suffix longer than the file is the
    whole file.
    """
    value = environ.get("HTTP_RANGE")
    if value is None:
        return
    drop = False
    if not is_resource_modified(environ, etag, last_modified=last_modified):
        drop = True
    elif not value.strip().lower().startswith("bytes=") or "," in value:
        drop = True
    elif parse_range_header(value) is None:
        drop = True
    elif environ.get("HTTP_IF_RANGE", "").strip().startswith("W/"):
        drop = True
    if drop:
        del environ["HTTP_RANGE"]
        return
    parsed = parse_range_header(value)
    start, end = parsed.ranges[0]
    if start < 0 and end is None and -start > length:
        environ["HTTP_RANGE"] = "bytes=0-"


def _disposition(filename: str) -> str:
    ascii_name = filename.encode("ascii", "ignore").decode().replace('"', "").replace("\\", "") or "image"
    return f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _check_signature(bucket: str, doc: MediaDoc, variant: str) -> Response | None:
    if not doc.private:
        return None
    keys = [current_app.config["SECRET_KEY"], *current_app.config.get("SECRET_KEY_FALLBACKS", [])]
    verdict = signing.verify(keys, bucket, str(doc.file_id), variant,
                             request.args.get("expires"), request.args.get("sig"))
    if verdict == "ok":
        return None
    if verdict == "missing":
        return _not_found()
    return Response("Forbidden: this link has expired or is not valid\n", status=403,
                    mimetype="text/plain", headers={"X-Content-Type-Options": "nosniff"})


_CONDITIONAL = ("HTTP_RANGE", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_RANGE",
                "HTTP_IF_MATCH", "HTTP_IF_UNMODIFIED_SINCE")
# What a 304 keeps of the 200's headers (RFC 9110 15.4.5), plus the ones every response carries.
_NOT_MODIFIED_HEADERS = {"etag", "cache-control", "vary", "x-content-type-options", "x-frame-options",
                         "referrer-policy", "strict-transport-security"}


@dataclass(frozen=True)
class Representation:
    """One servable file behind a media URL: the original, or one format of one variant."""

    bucket: str
    doc: MediaDoc  # the original's document (visibility, upload date, variants)
    variant: str  # "" for the original
    file_id: object
    length: int
    chunk_size: int
    sha256: str
    content_type: str
    filename: str
    vary: bool  # chosen by the Accept header, so the answer says ``Vary: Accept``

    @property
    def etag(self) -> str:
        """The strong validator: the SHA-256 of the served bytes, quoted."""
        return f'"{self.sha256}"'


def resolve(bucket: str, token: str, variant: str | None, load: Callable[[str, ObjectId], MediaDoc | None],
            accept: str) -> Representation | None:
    """What ``/media/<alias>/<token>[/<variant>]`` names, with ``load`` giving documents; None: 404."""
    file_id, ext = _parse_id(token)
    if file_id is None:
        return None
    if variant is None:
        doc = load(bucket, file_id)
        if doc is None or (ext and ext != EXTENSIONS.get(doc.format, "")):
            return None
        return Representation(bucket, doc, "", doc.file_id, doc.length, doc.chunk_size, doc.sha256,
                              doc.content_type, doc.filename, vary=False)
    name, _, ext = variant.partition(".")
    if name not in VARIANT_NAMES:
        return None
    doc = load(bucket, file_id)
    if doc is None or name not in doc.variants:
        return None
    formats = doc.variants[name]
    if ext:
        fmt = _FORMAT_BY_EXT.get(ext.lower())
        if fmt not in formats:
            return None
    else:
        # Explicit "image/webp" only: old browsers send */* or image/* and cannot show WebP.
        fallback = next((f for f in formats if f != "webp"), "webp")
        fmt = "webp" if "image/webp" in accept and "webp" in formats else fallback
    info = formats[fmt]
    stem = doc.filename.rsplit(".", 1)[0]
    return Representation(bucket, doc, name, info["id"], info["length"],
                          info.get("chunk_size", storage.CHUNK_SIZE), info["sha256"], info["content_type"],
                          f"{stem}-{name}.{EXTENSIONS.get(fmt, fmt)}", vary=not ext)


def representation_headers(cache: MediaCache, rep: Representation, config) -> list[tuple[str, str]]:
    """The 200 response's headers, computed once per file and then taken from the cache."""
    headers = cache.get_headers(rep.bucket, rep.file_id)
    if headers is None:
        doc = rep.doc
        headers = [
            ("Content-Type", rep.content_type),
            ("Content-Length", str(rep.length)),
            ("ETag", rep.etag),
            ("Last-Modified", http_date(doc.upload_date)),
            ("Cache-Control", "private, max-age=300" if doc.private else PUBLIC_CACHE),
            ("Accept-Ranges", "bytes"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", CSP),
            ("Content-Disposition", _disposition(rep.filename)),
            ("Cross-Origin-Resource-Policy", "cross-origin"),
        ]
        # The ones every response of the app carries, so both ways of answering send them.
        have = {name for name, _ in headers}
        headers += [(name, value) for name, value in baseline_headers(config) if name not in have]
        cache.put_headers(rep.bucket, rep.file_id, headers)
    return [*headers, ("Vary", "Accept")] if rep.vary else headers


def _not_modified(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [h for h in headers if h[0].lower() in _NOT_MODIFIED_HEADERS]


def _load(bucket: str, file_id: ObjectId) -> MediaDoc | None:
    cache = get_cache()
    cache.sync(get_db())
    doc = cache.get_doc(bucket, file_id)
    if doc is None:
        files_doc = get_db()[f"{bucket}.files"].find_one({"_id": file_id, "metadata.role": "original"})
        if files_doc is None:
            return None
        doc = MediaDoc.from_files_doc(files_doc)
        cache.put_doc(bucket, doc)
    return doc


@bp.route("/media/<alias>/<token>", methods=["GET"])
@bp.route("/media/<alias>/<token>/<variant>", methods=["GET"])
def media(alias: str, token: str, variant: str | None = None) -> Response:
    """Serve an original, or a variant (WebP when the client says it takes WebP, else JPEG or PNG)."""
    bucket = BUCKETS.get(alias)
    if bucket is None:
        return _not_found()
    rep = resolve(bucket, token, variant, _load, request.headers.get("Accept", ""))
    if rep is None:
        return _not_found()
    refused = _check_signature(bucket, rep.doc, rep.variant)
    if refused is not None:
        return refused
    return _send(rep)


def _body(cache: MediaCache, rep: Representation):
    data = cache.get_blob(rep.bucket, rep.file_id)
    if data is not None:
        return [data]
    on_complete = None
    if cache.cacheable(rep.length):
        def on_complete(whole: bytes) -> None:
            cache.put_blob(rep.bucket, rep.file_id, whole)
    return ChunkStream(get_db(), rep.bucket, rep.file_id, rep.length, rep.chunk_size, on_complete)


def _send(rep: Representation) -> Response:
    cache = get_cache()
    headers = representation_headers(cache, rep, current_app.config)
    environ = request.environ
    if not any(name in environ for name in _CONDITIONAL):
        # A plain GET/HEAD of a known file.
        body = _body(cache, rep)
        if isinstance(body, ChunkStream) and request.method == "GET" and not body.prime():
            # Deleted by another worker since this one cached the document: 404, not a
            # 200 whose body breaks off.
            cache.evict(rep.bucket, [rep.doc.file_id, rep.file_id])
            return _not_found()
        return Response(body, headers=headers, direct_passthrough=True)
    etag = rep.etag
    if environ.get("HTTP_IF_NONE_MATCH") == etag:
        # A revalidation with exactly our validator (what browsers and CDNs send): 304 at once.
        return Response(status=304, headers=_not_modified(headers))
    _normalise_range(environ, etag, rep.doc.upload_date, rep.length)
    response = Response(_body(cache, rep), headers=headers, direct_passthrough=True)
    try:
        response.make_conditional(environ, accept_ranges=True, complete_length=rep.length)
    except RequestedRangeNotSatisfiable:
        response.close()
        return Response(status=416, headers={
            "Content-Range": f"bytes */{rep.length}", "Accept-Ranges": "bytes",
            "X-Content-Type-Options": "nosniff", "ETag": etag,
        })
    if response.status_code == 304:
        response.close()
        response.response = []
    return response


class FrontDoor:
    """WSGI middleware answering, before Flask, the media requests this worker's cache answers.

    Those are a plain GET or HEAD of a public image whose document (and, for GET, bytes) is
    cached, and a revalidation carrying exactly its ETag (304). They need no database round
    trip, and skipping Flask's request context, routing and hooks is what makes them faster
    than Flask serving a file from disk. The answer is the route's own (same :func:`resolve`,
    same headers; a test compares them). Everything else (a miss, a private image, ranges
    and other conditional requests, any error) goes on to the Flask app unchanged. Deletions
    are honoured exactly as on the route: the cache polls tombstones before answering.
    """

    def __init__(self, app, wsgi_app) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/media/") and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            try:
                answer = self.answer(environ, path)
            except Exception:  # the Flask route answers instead, and reports properly
                log.exception("media front door failed on %s", path)
                answer = None
            if answer is not None:
                status, headers, body = answer
                start_response(status, headers)
                return body
        return self.wsgi_app(environ, start_response)

    def answer(self, environ: dict, path: str) -> tuple[str, list, list] | None:
        """(status, headers, body) when the cache answers this request alone, else None."""
        parts = path[len("/media/"):].split("/")
        bucket = BUCKETS.get(parts[0])
        if bucket is None or len(parts) not in (2, 3) or not all(parts):
            return None
        cache = get_cache(self.app)
        cache.sync(get_mongo(self.app).db)
        rep = resolve(bucket, parts[1], parts[2] if len(parts) == 3 else None, cache.get_doc,
                      environ.get("HTTP_ACCEPT", ""))
        if rep is None or rep.doc.private:
            return None
        headers = representation_headers(cache, rep, self.app.config)
        if not any(name in environ for name in _CONDITIONAL):
            if environ["REQUEST_METHOD"] == "HEAD":
                return "200 OK", headers, []
            data = cache.get_blob(rep.bucket, rep.file_id)
            return ("200 OK", headers, [data]) if data is not None else None
        if environ.get("HTTP_IF_NONE_MATCH") == rep.etag:
            return "304 NOT MODIFIED", _not_modified(headers), []
        return None
