"""The one route every media URL points at: GridFS bytes streamed with HTTP caching and ranges.

werkzeug's ``make_conditional`` does Range/If-Range/304 once it knows the length; this
module only feeds it validators from the files document (a 304 reads no chunk), and
normalises the requests werkzeug 3.1 would answer differently from RFC 9110.
"""

from __future__ import annotations

from urllib.parse import quote

from bson import ObjectId
from bson.errors import InvalidId
from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import http_date, is_resource_modified, parse_range_header

from avenue.db import get_db
from avenue.media import signing, storage
from avenue.media.buckets import BUCKETS
from avenue.media.cache import MediaCache, MediaDoc
from avenue.media.objects import EXTENSIONS
from avenue.media.variants import VARIANT_NAMES

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
    storage.LOCAL_CACHES.add(cache)
    app.register_blueprint(bp)


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
    if doc.visibility != "private":
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


@bp.route("/media/<alias>/<token>", methods=["GET"])
def original(alias: str, token: str) -> Response:
    """Serve an original image."""
    bucket = BUCKETS.get(alias)
    file_id, ext = _parse_id(token)
    if bucket is None or file_id is None:
        return _not_found()
    doc = _load(bucket, file_id)
    if doc is None or (ext and ext != EXTENSIONS.get(doc.format, "")):
        return _not_found()
    refused = _check_signature(bucket, doc, "")
    if refused is not None:
        return refused
    return _send(bucket, doc.file_id, doc.length, doc.chunk_size, doc.sha256, doc.content_type,
                 doc, doc.filename)


@bp.route("/media/<alias>/<token>/<variant>", methods=["GET"])
def variant(alias: str, token: str, variant: str) -> Response:
    """Serve a variant: WebP when the client says it takes WebP, else JPEG or PNG."""
    bucket = BUCKETS.get(alias)
    file_id, _ = _parse_id(token)
    name, _, ext = variant.partition(".")
    if bucket is None or file_id is None or name not in VARIANT_NAMES:
        return _not_found()
    doc = _load(bucket, file_id)
    if doc is None or name not in doc.variants:
        return _not_found()
    refused = _check_signature(bucket, doc, name)
    if refused is not None:
        return refused
    formats = doc.variants[name]
    if ext:
        fmt = _FORMAT_BY_EXT.get(ext.lower())
        if fmt not in formats:
            return _not_found()
    else:
        # Explicit "image/webp" only: old browsers send */* or image/* and cannot show WebP.
        takes_webp = "image/webp" in request.headers.get("Accept", "")
        fallback = next((f for f in formats if f != "webp"), "webp")
        fmt = "webp" if takes_webp and "webp" in formats else fallback
    info = formats[fmt]
    stem = doc.filename.rsplit(".", 1)[0]
    return _send(bucket, info["id"], info["length"], info.get("chunk_size", storage.CHUNK_SIZE),
                 info["sha256"], info["content_type"], doc,
                 f"{stem}-{name}.{EXTENSIONS.get(fmt, fmt)}", vary=not ext)


_CONDITIONAL = ("HTTP_RANGE", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_RANGE",
                "HTTP_IF_MATCH", "HTTP_IF_UNMODIFIED_SINCE")
_NOT_MODIFIED_HEADERS = {"etag", "cache-control", "vary", "x-content-type-options"}


def _headers(bucket: str, file_id, length: int, sha: str, content_type: str, doc: MediaDoc,
             filename: str) -> list[tuple[str, str]]:
    """The response headers of one representation (computed once, then cached)."""
    cache = get_cache()
    headers = cache.get_headers(bucket, file_id)
    if headers is None:
        headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(length)),
            ("ETag", f'"{sha}"'),
            ("Last-Modified", http_date(doc.upload_date)),
            ("Cache-Control", "private, max-age=300" if doc.visibility == "private" else PUBLIC_CACHE),
            ("Accept-Ranges", "bytes"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", CSP),
            ("Content-Disposition", _disposition(filename)),
            ("Cross-Origin-Resource-Policy", "cross-origin"),
        ]
        cache.put_headers(bucket, file_id, headers)
    return headers


def _body(bucket: str, file_id, length: int, chunk_size: int):
    cache = get_cache()
    data = cache.get_blob(bucket, file_id)
    if data is not None:
        return [data]
    on_complete = None
    if cache.cacheable(length):
        def on_complete(whole: bytes) -> None:
            cache.put_blob(bucket, file_id, whole)
    return ChunkStream(get_db(), bucket, file_id, length, chunk_size, on_complete)


def _send(bucket: str, file_id, length: int, chunk_size: int, sha: str, content_type: str,
          doc: MediaDoc, filename: str, vary: bool = False) -> Response:
    headers = _headers(bucket, file_id, length, sha, content_type, doc, filename)
    if vary:
        headers = [*headers, ("Vary", "Accept")]
    environ = request.environ
    if not any(name in environ for name in _CONDITIONAL):
        # The hot path: a plain GET/HEAD of a known file.
        body = _body(bucket, file_id, length, chunk_size)
        if isinstance(body, ChunkStream) and request.method == "GET" and not body.prime():
            # Deleted by another worker since this one cached the document: 404, not a
            # 200 whose body breaks off.
            get_cache().evict(bucket, [doc.file_id, file_id])
            return _not_found()
        return Response(body, headers=headers, direct_passthrough=True)
    etag = headers[2][1]
    if environ.get("HTTP_IF_NONE_MATCH") == etag:
        # A revalidation with exactly our validator (what browsers and CDNs send): 304 at once.
        return Response(status=304, headers=[h for h in headers if h[0].lower() in _NOT_MODIFIED_HEADERS])
    _normalise_range(environ, etag, doc.upload_date, length)
    response = Response(_body(bucket, file_id, length, chunk_size), headers=headers,
                        direct_passthrough=True)
    try:
        response.make_conditional(environ, accept_ranges=True, complete_length=length)
    except RequestedRangeNotSatisfiable:
        response.close()
        return Response(status=416, headers={
            "Content-Range": f"bytes */{length}", "Accept-Ranges": "bytes",
            "X-Content-Type-Options": "nosniff", "ETag": etag,
        })
    if response.status_code == 304:
        response.close()
        response.response = []
    return response
