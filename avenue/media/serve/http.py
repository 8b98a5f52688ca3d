"""What a media URL names and how HTTP answers it: pure functions, no Flask, no database.

:func:`resolve` turns ``/media/<alias>/<token>[/<variant>]`` into a :class:`Representation`
(one servable file) with documents from a loader it is given, and :func:`resolve_rendition`
does the same for a rendition on request (``/media/<alias>/<token>/w_800[.avif]``: which
image version, options and format, the format by ``Accept`` when the URL names none);
:func:`representation_headers`
gives its 200 headers (computed once per file, kept in the media cache); :func:`decide` is the
one decision both ways of answering share (the WSGI front door and the Flask route): a plain
GET/HEAD is a 200, a revalidation with exactly our ETag a 304, anything else needs the full
conditional machinery (ranges, dates, other validators), which only the route runs.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from bson import ObjectId
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import http_date, is_resource_modified, parse_accept_header, parse_range_header

from avenue.errors import BadRequest
from avenue.ids import parse_object_id
from avenue.media.buckets import BUCKETS
from avenue.media.formats import (
    BY_NAME,
    EXTENSIONS,
    NEGOTIATED,
    RENDITION_BY_EXTENSION,
    VARIANT_BY_EXTENSION,
    VECTOR,
    fallback,
)
from avenue.media.ingest.variants import VARIANT_NAMES
from avenue.media.names import NAME_SEGMENT, is_slug
from avenue.media.paths import VERSION_MARK, media_path, named_path
from avenue.media.records import SOURCE, MediaDoc
from avenue.media.serve.cache import MediaCache
from avenue.media.store.storage import CHUNK_SIZE
from avenue.media.transform import HINTS, AllowList, Spec, auto_width, clamp, looks_like_options, parse

Headers = list[tuple[str, str]]
PUBLIC_CACHE = "public, max-age=31536000, immutable"
PRIVATE_CACHE = "private, max-age=300"
CSP = "default-src 'none'; sandbox"
#: An SVG's: nothing fetched, no script, its own inline styles drawn (docs/security.md).
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
_VERSION = re.compile(r"[0-9a-f]{8}")  # what replace.version_of gives
# The extensions an original's URLs carry (one per stored format).
_ORIGINAL_EXTENSIONS = frozenset(EXTENSIONS.values())
# The request headers that make a GET conditional or partial (WSGI environ names).
CONDITIONAL = ("HTTP_RANGE", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_RANGE",
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
    file_id: Any
    length: int
    chunk_size: int
    sha256: str
    content_type: str
    filename: str
    vary: bool  # chosen by the Accept header, so the answer says ``Vary: Accept``
    hints: bool = False  # its width chosen by client hints (w_auto): ``Vary`` names them

    @property
    def etag(self) -> str:
        """The strong validator: the SHA-256 of the served bytes, quoted."""
        return f'"{self.sha256}"'

    @property
    def signed_only(self) -> bool:
        """Served only by a signed URL and never from a shared cache: a private image's file, or
        an image's unedited original (its editors', whatever the image's visibility)."""
        return self.doc.private or self.variant == SOURCE


@dataclass(frozen=True)
class Answer:
    """A complete answer: status, headers, and whether the representation's bytes follow."""

    status: int
    headers: Headers
    with_body: bool


@dataclass(frozen=True)
class Pending:
    """A variant the original lists but has not rendered yet (avenue/media/store/pending.py):
    only the route answers it (it renders it first); the front door and the event loop leave
    it to the route."""

    doc: MediaDoc
    variant: str
    format: str


@dataclass(frozen=True)
class Moved:
    """An earlier version's URL of a public image replaced in place: a 308 to the same thing in
    the current version, until ``until`` (then 404)."""

    doc: MediaDoc
    location: str  # a path
    until: dt.datetime
    status: int = 308  # 301: a named URL's name is not the image's (resolve_named)


#: Where :meth:`MediaUrl.of` keeps a request's parsed URL in its WSGI environ: parsed once,
#: by whichever of the front door and the Flask route sees the request first.
URL_KEY = "avenue.media.url"
#: The media route's URL rules, also the labels of its answers in the metrics.
ROUTE, VARIANT_ROUTE = "/media/<alias>/<token>", "/media/<alias>/<token>/<variant>"
NAMED_ROUTE = "/media/<alias>/<token>/name/<named>"


@dataclass(frozen=True)
class MediaUrl:
    """What a media path names: ``/media/<alias>/<token>[/<variant>]`` or
    ``/media/<alias>/<token>/name/<named>``, the alias already the bucket it stands for. The
    one parse of a media path the front door (which the event loop calls) and the route
    share: :meth:`of` keeps it in the request's environ."""

    bucket: str
    token: str
    variant: str | None = None
    named: str | None = None

    @property
    def route(self) -> str:
        """The URL rule it matches (the metrics' label)."""
        return NAMED_ROUTE if self.named is not None else VARIANT_ROUTE if self.variant is not None else ROUTE

    @staticmethod
    def parse(path: str) -> MediaUrl | None:
        """``path`` (a WSGI ``PATH_INFO``) parsed, or None: not a media path, an unknown
        alias, an empty segment or too many of them (the route's 404)."""
        if not path.startswith("/media/"):
            return None
        parts = path[len("/media/"):].split("/")
        bucket = BUCKETS.get(parts[0])
        if bucket is None or not all(parts):
            return None
        if len(parts) == 2:
            return MediaUrl(bucket, parts[1])
        if len(parts) == 3:
            return MediaUrl(bucket, parts[1], variant=parts[2])
        if len(parts) == 4 and parts[2] == NAME_SEGMENT:
            return MediaUrl(bucket, parts[1], named=parts[3])
        return None

    @staticmethod
    def of(environ: dict[str, Any]) -> MediaUrl | None:
        """The request's media URL: parsed from its ``PATH_INFO`` the first time it is asked,
        kept in ``environ`` for the next (the route after the front door declined)."""
        if URL_KEY not in environ:
            environ[URL_KEY] = MediaUrl.parse(environ.get("PATH_INFO", ""))
        found: MediaUrl | None = environ[URL_KEY]
        return found


def parse_token(token: str) -> tuple[ObjectId | None, str, str]:
    """``<id>[~<version>][.<ext>]`` as (ObjectId or None when malformed, version, lower-case
    extension)."""
    stem, _, ext = token.partition(".")
    stem, mark, version = stem.partition(VERSION_MARK)
    if mark and not _VERSION.fullmatch(version):
        return None, "", ""  # "<id>~" is not the unversioned URL under another name
    return parse_object_id(stem), version, ext.lower()


def _redirect_until(doc: MediaDoc, version: str, now: dt.datetime | None) -> dt.datetime | None:
    """Until when a URL of ``doc``'s earlier ``version`` redirects to the current one; None
    when it names nothing: an unknown version, a window that is over, or any earlier version
    of a private image. (A private link may have gone to someone it should not have, often
    why it was replaced, and a redirect would show them the new picture. 404 and not 410:
    what the URL answers once the window ends and what an unknown version answers, so it never
    tells a holder whether the image lives on, and the contract's media statuses stay 403 or
    404.)"""
    if doc.private:
        return None
    until = doc.versions.get(version)
    return until if until is not None and until > (now or dt.datetime.now(dt.UTC)) else None


def _moved(bucket: str, doc: MediaDoc, variant: str | None, until: dt.datetime) -> Moved | None:
    """Where an earlier version's URL points now (the same variant, in the format it had if the
    new bytes have it, else negotiated)."""
    path = media_path(bucket, doc.file_id, doc.version)
    if variant is None:
        ext = EXTENSIONS.get(doc.format, "")
        return Moved(doc, f"{path}.{ext}" if ext else path, until)
    name, _, ext = variant.partition(".")
    if name not in doc.variants:
        return None
    chosen = VARIANT_BY_EXTENSION.get(ext.lower(), "") if ext else ""
    suffix = f".{EXTENSIONS[chosen]}" if chosen in doc.variants[name] and chosen in EXTENSIONS else ""
    return Moved(doc, f"{path}/{name}{suffix}", until)


def resolve(bucket: str, token: str, variant: str | None,
            load: Callable[[str, ObjectId], MediaDoc | None], accept: str,
            now: dt.datetime | None = None) -> Representation | Pending | Moved | None:
    """What ``/media/<alias>/<token>[/<variant>]`` names, with ``load`` giving documents: a
    servable file, a variant still to be rendered (:class:`Pending`), a redirect (an earlier
    version of a public image replaced in place), or None: 404."""
    file_id, version, ext = parse_token(token)
    if file_id is None or (variant is not None and variant.partition(".")[0] not in (*VARIANT_NAMES, SOURCE)):
        return None
    doc = load(bucket, file_id)
    if doc is None:
        return None
    if version != doc.version:
        until = _redirect_until(doc, version, now)
        return None if until is None else _moved(bucket, doc, variant, until)
    if variant is None:
        if ext and ext != EXTENSIONS.get(doc.format, ""):
            return None
        return Representation(bucket, doc, "", doc.bytes_id, doc.length, doc.chunk_size, doc.sha256,
                              doc.content_type, doc.filename, vary=False)
    name, _, ext = variant.partition(".")
    if name not in doc.variants:
        return None
    formats = doc.variants[name]
    if ext:
        chosen = VARIANT_BY_EXTENSION.get(ext.lower())
        if chosen is None or chosen not in formats:
            return None
        fmt = chosen
    else:
        fallback = next((f for f in formats if f != "webp"), "webp")
        fmt = preferred(accept, ("webp",), fallback) if "webp" in formats and fallback != "webp" else fallback
    info = formats[fmt]
    if info.get("pending"):
        return Pending(doc, name, fmt)
    stem = doc.filename.rsplit(".", 1)[0]
    return Representation(bucket, doc, name, info["id"], info["length"], info.get("chunk_size", CHUNK_SIZE),
                          info["sha256"], info["content_type"], f"{stem}-{name}.{EXTENSIONS.get(fmt, fmt)}",
                          vary=not ext)


def lasting_miss(doc: MediaDoc, url: MediaUrl) -> bool:
    """Whether ``doc``'s 404 for ``url`` is one no answer's URL can turn into a file before
    this worker's poll brings the change: its extension is none an answer's URLs carry, or it
    names ``doc``'s own version's original in an extension not that one's (a version is one
    picture, so one format: ``replace.version_of``). A write can make such a URL at most a 308
    (the image replaced: an earlier version's URL redirects whatever its extension), which
    reaches this worker with its poll, as any earlier version's does ("earlier_urls")."""
    _, version, ext = parse_token(url.token)
    if url.variant is not None:
        ext = url.variant.partition(".")[2].lower()
        return bool(ext) and ext not in VARIANT_BY_EXTENSION
    if url.named is not None:
        ext = url.named.partition(".")[2].lower()
    elif not ext:
        return False
    own = EXTENSIONS.get(doc.format, "")
    return ext not in _ORIGINAL_EXTENSIONS or (version == doc.version and ext != own)


def refusable(doc: MediaDoc, url: MediaUrl) -> bool:
    """Whether the 404 the database's ``doc`` gives for ``url`` may be kept for a poll interval
    (:meth:`MediaCache.refuse`): not when the URL names a version the image had (still
    redirecting, or kept in its history), which a restore or an undo makes current again in
    one write whose answer gives this very URL."""
    _, version, _ = parse_token(url.token)
    return version not in doc.versions and version not in doc.history


# How long a named URL's 301 may be cached (a name can change again).
NAME_REDIRECT_SECONDS = 3600


def resolve_named(bucket: str, token: str, named: str, load: Callable[[str, ObjectId], MediaDoc | None],
                  now: dt.datetime | None = None) -> Representation | Moved | None:
    """What ``/media/<alias>/<token>/name/<name>.<ext>`` names (a public original under its
    readable name, avenue/media/names.py): the original when ``name`` is the image's name and
    ``ext`` its extension; a 301 to the right URL when the name is another (a former name, a
    mistyped one) or the image has none any more (to its plain URL); a 308 from an earlier
    version like the plain URLs'; None (404) for a private image, a malformed URL, a wrong
    extension or an unknown id."""
    file_id, version, token_ext = parse_token(token)
    stem, dot, ext = named.partition(".")
    if file_id is None or token_ext or not dot or not is_slug(stem):
        return None
    doc = load(bucket, file_id)
    if doc is None or doc.private:
        return None
    own_ext = EXTENSIONS.get(doc.format, "")
    if version != doc.version:
        until = _redirect_until(doc, version, now)
        if until is None:
            return None
        moved = _moved(bucket, doc, None, until)
        return moved if moved is None or doc.name is None else \
            replace(moved, location=named_path(bucket, doc.file_id, doc.version, doc.name, own_ext))
    if ext.lower() != own_ext or not own_ext:
        return None
    if stem != doc.name:
        later = (now or dt.datetime.now(dt.UTC)) + dt.timedelta(seconds=NAME_REDIRECT_SECONDS)
        path = media_path(bucket, doc.file_id, doc.version)
        location = f"{path}.{own_ext}" if doc.name is None else \
            named_path(bucket, doc.file_id, doc.version, doc.name, own_ext)
        return Moved(doc, location, later, status=301)
    # The plain URL's file with the plain URL's headers (its cached headers serve both).
    return Representation(bucket, doc, "", doc.bytes_id, doc.length, doc.chunk_size, doc.sha256,
                          doc.content_type, doc.filename, vary=False)


@dataclass(frozen=True)
class RenditionTarget:
    """A rendition on request a URL names: of the current version of ``doc``, ``spec`` in
    ``format`` (``vary``: chosen by ``Accept``; ``hints``: its width chosen by client hints,
    ``w_auto``). ``asked`` is the spec as the URL spelled it, its width the hints' for
    ``w_auto`` (what the allow-list and a signature are checked on); ``spec`` is what is
    rendered and stored, the same or that spec clamped to the picture's width
    (:func:`~avenue.media.transform.clamp`)."""

    doc: MediaDoc
    spec: Spec
    format: str
    vary: bool
    asked: Spec
    hints: bool = False

    def cache_key(self, bucket: str) -> tuple[Any, ...]:
        """What names the stored file in the media cache: the image version, options, format."""
        return (bucket, self.doc.file_id, self.doc.version, self.spec.key(), self.format)


def is_rendition(segment: str, allow: AllowList) -> bool:
    """Whether a media URL's last segment names a rendition on request: options (``w_800``)
    or a named preset that is not a fixed variant's name."""
    name = segment.partition(".")[0]
    return looks_like_options(segment) or (name not in VARIANT_NAMES and allow.preset(name) is not None)


def negotiate(accept: str, doc: MediaDoc, opt_in: frozenset[str] = frozenset()) -> str:
    """A rendition's format when the URL names none: of the registry's
    :data:`~avenue.media.formats.NEGOTIATED` (AVIF, JPEG XL when it is on, ``opt_in``, WebP) and
    the fallback (JPEG, or PNG for an image with transparency), the one ``accept`` ranks
    highest (:func:`preferred`)."""
    offered = tuple(name for name in NEGOTIATED if not BY_NAME[name].opt_in or name in opt_in)
    return preferred(accept, offered, fallback(doc.transparent))


# Accept is parsed by werkzeug's parse_accept_header (the parser Flask's own request.accept_mimetypes
# uses, kept by the pallets: RFC 9110 12.5.1's q-values, case, parameters, the most specific range
# deciding), not by a substring test, which served AVIF to "image/avif;q=0" (issue 62). The choice
# is cached per (Accept, formats): browsers send a handful of Accept strings, and the parse and
# matching took ~160 us a call (timeit of a Chrome Accept, uncached, on the 2-core dev box), more
# than the front door and the event loop spend answering a cached file; a cache hit is ~1 us.
# Bounded: a client's unique strings evict each other (256 keys of at most the 8 KB gunicorn lets
# a header be: 2 MB a worker at worst).
@functools.lru_cache(maxsize=256)
def preferred(accept: str, offered: tuple[str, ...], otherwise: str) -> str:
    """Of the formats ``offered`` (in our order of preference) and ``otherwise`` (the fallback,
    which every browser shows), the one the Accept header ``accept`` gives the highest q-value:
    a format in ``offered`` counts only when named by its own type (old browsers send ``*/*``
    or ``image/*`` and cannot show WebP or AVIF), the fallback by any range that covers it; q=0
    is never; ties go to the earlier in our order, the fallback last; ``otherwise`` when none
    is acceptable (a media URL answers, never 406)."""
    ranges = parse_accept_header(accept, MIMEAccept)
    best, best_q = otherwise, ranges.quality(BY_NAME[otherwise].mime) if otherwise in BY_NAME else 0.0
    for name in reversed(offered):  # reversed, with >=: a tie goes to the earlier
        quality = _named_quality(ranges, BY_NAME[name].mime)
        if quality > 0 and quality >= best_q:
            best, best_q = name, quality
    return best


def _named_quality(ranges: MIMEAccept, mime: str) -> float:
    """The q-value of ``mime`` named by its own type in ``ranges`` (not by a wildcard), 0 when
    it is not named (werkzeug sorts the ranges most specific first: the first naming it decides)."""
    for value, quality in ranges:
        if value.partition(";")[0].strip().lower() == mime:
            return float(quality)
    return 0.0


def _no_hints(name: str) -> str | None:
    return None


def resolve_rendition(bucket: str, token: str, segment: str, allow: AllowList,
                      load: Callable[[str, ObjectId], MediaDoc | None], accept: str,
                      now: dt.datetime | None = None,
                      hint: Callable[[str], str | None] = _no_hints) -> RenditionTarget | Moved | None:
    """What ``/media/<alias>/<token>/<options or preset>[.<ext>]`` names: the rendition of
    the image's current version, a redirect (an earlier version of a public image replaced
    in place, within its window: the same rendition of the current one), or None: 404. A
    malformed segment is :class:`~avenue.errors.BadRequest` (``bad_rendition``) before any
    document is read. ``hint``: a request header's value by name (the client hints of
    ``w_auto``, :func:`~avenue.media.transform.auto_width`)."""
    name, dot, ext = segment.partition(".")
    preset = None if looks_like_options(segment) else allow.preset(name)
    auto = False
    if preset is not None:
        if dot and ext not in RENDITION_BY_EXTENSION:
            raise BadRequest(f"unknown rendition format {ext!r}: use one of "
                             f"{', '.join(RENDITION_BY_EXTENSION)}",
                             code="bad_rendition")
        spec, fmt = preset, RENDITION_BY_EXTENSION.get(ext, "")
    else:
        request = parse(segment)
        spec, fmt, auto = request.spec, request.format, request.auto
        if auto:
            width, viewport, dpr = (hint(name) for name in HINTS)
            spec = replace(spec, width=auto_width(width, viewport, dpr, ladder=allow.ladder))
    named = BY_NAME.get(fmt)
    if named is not None and named.opt_in and fmt not in allow.opt_in:
        raise BadRequest(f"{named.label} renditions are off on this server ({named.opt_in}).",
                         code="bad_rendition")
    file_id, version, token_ext = parse_token(token)
    if file_id is None or token_ext:
        return None
    doc = load(bucket, file_id)
    if doc is None:
        return None
    if auto and doc.private:
        raise BadRequest("w_auto is for public images: a private image's renditions are signed for "
                         "one width", code="bad_rendition")
    if version != doc.version:
        until = _redirect_until(doc, version, now)
        if until is None:
            return None
        return Moved(doc, f"{media_path(bucket, doc.file_id, doc.version)}/{segment}", until)
    if preset is not None and name in doc.crops:  # a preset uses the image's crop of its name
        spec = replace(spec, crop=name)
    size = (doc.width, doc.height) if doc.width and doc.height else None
    stored = clamp(spec, size, doc.crops.get(spec.crop) if spec.crop else None)
    return RenditionTarget(doc, stored, fmt or negotiate(accept, doc, allow.opt_in), vary=not fmt, asked=spec,
                           hints=auto)


def disposition(filename: str) -> str:
    """``inline`` with the filename both as safe ASCII and as RFC 5987 UTF-8."""
    ascii_name = filename.encode("ascii", "ignore").decode().replace('"', "").replace("\\", "") or "image"
    return f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def representation_headers(cache: MediaCache, rep: Representation, baseline: Headers) -> Headers:
    """The 200 response's headers, computed once per file and then taken from the cache.
    ``baseline``: the headers every response of the app carries (added unless set here)."""
    headers = cache.get_headers(rep.bucket, rep.file_id)
    if headers is None:
        doc = rep.doc
        headers = [
            ("Content-Type", rep.content_type),
            ("Content-Length", str(rep.length)),
            ("ETag", rep.etag),
            ("Last-Modified", http_date(doc.upload_date)),
            ("Cache-Control", PRIVATE_CACHE if rep.signed_only else PUBLIC_CACHE),
            ("Accept-Ranges", "bytes"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", SVG_CSP if rep.content_type == VECTOR.mime else CSP),
            ("Content-Disposition", disposition(rep.filename)),
            ("Cross-Origin-Resource-Policy", "cross-origin"),
        ]
        have = {name for name, _ in headers}
        headers += [(name, value) for name, value in baseline if name not in have]
        cache.put_headers(rep.bucket, rep.file_id, headers)
    vary = [*(["Accept"] if rep.vary else []), *(HINTS if rep.hints else ())]
    return [*headers, ("Vary", ", ".join(vary))] if vary else headers


def not_modified_headers(headers: Headers) -> Headers:
    """What a 304 carries of the 200's headers."""
    return [h for h in headers if h[0].lower() in _NOT_MODIFIED_HEADERS]


def decide(environ: Mapping[str, Any], rep: Representation, headers: Headers) -> Answer | None:
    """The answer to a GET/HEAD of ``rep`` when no conditional machinery is needed, else None.

    A plain GET/HEAD is the 200 (with the bytes for a GET); a revalidation carrying exactly
    our ETag (what browsers and CDNs send) is a 304 at once. Ranges, dates and other
    validators go on to the route (:func:`normalise_range` and werkzeug's make_conditional).
    """
    if not any(name in environ for name in CONDITIONAL):
        return Answer(200, headers, with_body=environ.get("REQUEST_METHOD") != "HEAD")
    if environ.get("HTTP_IF_NONE_MATCH") == rep.etag:
        return Answer(304, not_modified_headers(headers), with_body=False)
    return None


def normalise_range(environ: dict[str, Any], etag: str, last_modified: Any, length: int) -> None:
    """Make werkzeug's range handling follow RFC 9110 where 3.1 does not (edits ``environ``).

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
    if parsed is None:
        return
    start, end = parsed.ranges[0]
    if start < 0 and end is None and -start > length:
        environ["HTTP_RANGE"] = "bytes=0-"
