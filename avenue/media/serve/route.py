"""The one Flask route every media URL points at, and the app's media core it is built with.

``init_app`` builds the app's :class:`~avenue.media.core.Media` once (:class:`MediaState`: what
the store is handed, with what serving needs: the cache, a way to reach the database, the
headers every response carries) and keeps it in ``app.extensions["avenue.media"]``, instead
of the package importing the app layer or keeping anything in a module (the
:class:`~avenue.media.AppMedia` views hand to services stands over it: avenue/media/app.py).
This module is the Flask edge of the package: the one that reads ``current_app``.

The route streams GridFS bytes (:class:`~avenue.media.serve.stream.ChunkStream`) with the
answers :func:`avenue.media.serve.http.decide` gives; what needs ranges or other validators goes
through werkzeug's ``make_conditional``, after :func:`~avenue.media.serve.http.normalise_range`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import pymongo
from bson import ObjectId
from flask import Blueprint, Flask, Response, current_app, g, has_request_context, request
from pymongo.database import Database
from werkzeug.exceptions import NotFound, RequestedRangeNotSatisfiable

from avenue import background
from avenue.clock import now
from avenue.errors import AvenueError, RenditionNotAllowed, ServerBusy, SourceNotAllowed, plain_error
from avenue.media.buckets import RENDITIONS
from avenue.media.core import Job, Media, Slot
from avenue.media.effects.invalidation import LOCAL_CACHES
from avenue.media.effects.served import FLUSH_SECONDS, Deliveries, from_console
from avenue.media.formats import DISABLED_SETTING, EXTENSIONS, disabled, opt_ins
from avenue.media.ingest import svgdraw
from avenue.media.ingest.focal import FocalPoint
from avenue.media.ingest.images import Limits
from avenue.media.ingest.render import Rendered, render_spec
from avenue.media.ingest.variants import VARIANT_NAMES
from avenue.media.records import SOURCE, Document, MediaDoc, images, is_image
from avenue.media.references import Owner
from avenue.media.serve import signing
from avenue.media.serve.cache import MediaCache
from avenue.media.serve.http import (
    NAMED_ROUTE,
    ROUTE,
    VARIANT_ROUTE,
    Headers,
    MediaUrl,
    Moved,
    Pending,
    RenditionTarget,
    Representation,
    decide,
    is_rendition,
    lasting_miss,
    normalise_range,
    refusable,
    representation_headers,
    resolve,
    resolve_named,
    resolve_rendition,
)
from avenue.media.serve.stream import ChunkStream
from avenue.media.store import deliveries as delivery_counts
from avenue.media.store import pending, renditions
from avenue.media.transform import AllowList, at_own_width, parse_presets
from avenue.metrics import count_cache, timed_rendition
from avenue.writes import Write

EXTENSION = "avenue.media"
bp = Blueprint("media", __name__)


@dataclass(frozen=True, kw_only=True)
class MediaState(Media):
    """The app's :class:`~avenue.media.core.Media` as ``init_app`` builds it: its config, its
    owners of referring documents, its work after the answer (after the request's answer, in a
    request) and its render slots, with what serving needs besides: the cache, the database,
    the baseline headers."""

    cache: MediaCache
    database: Callable[[], Database[Document]]
    baseline_headers: Callable[[Mapping[str, Any]], Headers]
    # Renditions on request: what is rendered unsigned, and how many renders run at once.
    allow: AllowList = AllowList()
    renders: threading.BoundedSemaphore = threading.BoundedSemaphore(2)
    # What this worker served, noted on every serving path and written in batches (the
    # renditions' last_used, which the byte budget evicts by).
    deliveries: Deliveries = field(default_factory=lambda: Deliveries({"renditions": renditions.record_used,
                                                                       "images": delivery_counts.record}))
    # Called before an unsigned rendition is rendered (not before one that is stored, nor a
    # signed one's): the app's limit of cold renders (avenue/ratelimit.py), which raises 429;
    # given the render's claim insert, it answers whether it sent it with its hits (renditions.Admit).
    admit_unsigned: renditions.Admit = field(default=lambda then: False)

    def later(self, job: Job) -> bool:
        """Once this request's answer is sent (:func:`_hand_over_pending`); outside a request
        (a CLI command, a test calling the library), at once (then True)."""
        return _after_answer(job)

    def render_slot(self) -> Slot:
        """One of the app's render slots (``AVENUE_RENDER_CONCURRENCY``), the ones renditions on
        request hold: a burst of uploads' pending renders never takes more of the process."""
        return RenderSlot(self)


# How long a rendition request waits for one of the process's render slots before 503.
RENDER_SLOT_WAIT_SECONDS = 10.0
# AVENUE_DELETIONS_POLL_MS's floor: each worker polls at most ten times a second (a poll is one
# indexed read; its background job polls twice per interval).
MIN_POLL_MS = 100


def init_app(app: Flask, *, database: Callable[[], Database[Document]],
             baseline_headers: Callable[[Mapping[str, Any]], Headers], owners: Iterable[Owner],
             admit_unsigned_render: renditions.Admit | None = None) -> None:
    """Give the media package its cache, its database, the app's baseline headers, the owners
    of the documents that refer to images (references.py) and its limit of unsigned cold
    renders (raises to refuse one); read the renditions' settings (a bad
    AVENUE_RENDITION_PRESETS stops the start) and the formats turned off (an unknown name in
    AVENUE_DISABLED_FORMATS stops it too)."""
    config = app.config
    poll_ms = int(config["AVENUE_DELETIONS_POLL_MS"])
    if poll_ms < MIN_POLL_MS:
        raise RuntimeError(f"AVENUE_DELETIONS_POLL_MS must be at least {MIN_POLL_MS}, got {poll_ms}")
    cache = MediaCache(config["AVENUE_MEDIA_CACHE_BYTES"], config["AVENUE_MEDIA_CACHE_MAX_OBJECT_BYTES"],
                       poll_interval=poll_ms / 1000, stream=config["AVENUE_DELETIONS_STREAM"])
    try:
        presets = parse_presets(config["AVENUE_RENDITION_PRESETS"], reserved=(*VARIANT_NAMES, SOURCE))
    except ValueError as error:
        raise RuntimeError(f"AVENUE_RENDITION_PRESETS: {error}") from None
    try:
        disabled(config.get(DISABLED_SETTING))
    except ValueError as error:
        raise RuntimeError(str(error)) from None
    concurrency = int(config["AVENUE_RENDER_CONCURRENCY"])
    if concurrency < 1:
        raise RuntimeError("AVENUE_RENDER_CONCURRENCY must be at least 1")
    # The SVG draws' helpers, uploads' and renditions' alike: as many as render slots.
    svgdraw.bound(concurrency)
    state = MediaState(config=config, owners=tuple(owners), cache=cache, database=database,
                       baseline_headers=baseline_headers,
                       allow=AllowList(presets=presets, opt_in=opt_ins(config)),
                       renders=threading.BoundedSemaphore(concurrency))
    if admit_unsigned_render is not None:
        state = replace(state, admit_unsigned=admit_unsigned_render)
    app.extensions[EXTENSION] = state
    LOCAL_CACHES.add(cache)
    app.after_request(_hand_over_pending)
    app.teardown_request(_start_left_over)


# --- the pending variants of an upload, rendered after its answer (store/pending.py) ---------
_PENDING_JOBS = "avenue_pending_variants"


def _after_answer(job: Job) -> bool:
    """Run ``job`` (an upload's pending variants) once this request's answer is sent; outside
    a request (a CLI command, a test calling the library), at once (then True)."""
    if not has_request_context():
        job()
        return True
    g.setdefault(_PENDING_JOBS, []).append(job)
    return False


def _hand_over_pending(response: Response) -> Response:
    """With ``AVENUE_VARIANTS_AFTER_ANSWER`` on, start the request's pending renders once the
    server has sent the answer and closed it (``call_on_close``: gunicorn calls it after the
    last byte), so they never compete with the answer; off, render them before answering (the
    answer lists the same URLs either way)."""
    jobs: list[Job] = g.pop(_PENDING_JOBS, [])
    if not jobs:
        return response
    if current_app.config["AVENUE_VARIANTS_AFTER_ANSWER"]:
        response.call_on_close(lambda: start_after_answer(jobs))
    else:
        for job in jobs:
            job()
    return response


def _start_left_over(error: BaseException | None) -> None:
    """At the request's end: the pending renders of a request whose answer never reached
    ``after_request`` (an exception after the images were stored)."""
    jobs: list[Job] = g.pop(_PENDING_JOBS, [])
    if jobs:
        start_after_answer(jobs)


# Every answered request's pending renders, in the order they were answered, on one thread
# of this process at lower priority (background.Lane says why: a thread per request let a
# burst of uploads' renders crowd out the event loop and threads reading and answering the
# next uploads). A stopping worker finishes them (gunicorn.conf.py worker_exit:
# finish_after_answer).
AFTER_ANSWER = background.Lane("avenue-pending-variants")


def start_after_answer(jobs: list[Job]) -> None:
    """Queue the pending renders of one answered request on :data:`AFTER_ANSWER`. A worker
    that exits before they run (killed, or out of ``graceful_timeout``) leaves them pending:
    the first GET or ``fsck --repair`` renders them."""
    def run() -> None:
        for job in jobs:
            job()  # each logs its own failures (pending.complete_later)

    AFTER_ANSWER.submit(run)


def finish_after_answer(seconds: float) -> bool:
    """Wait up to ``seconds`` for this process's pending renders queued after answers (a
    stopping worker); True when none is left."""
    return AFTER_ANSWER.drain(seconds)


def start_delivery_flush(app: Flask) -> background.PeriodicJob:
    """Write what this worker served every ``FLUSH_SECONDS`` from a background job (each app
    server worker runs one; :mod:`avenue.media.effects.served`)."""
    state = get_state(app)
    job = background.PeriodicJob("avenue-media-deliveries", lambda: state.deliveries.flush(state.database()),
                                 every=FLUSH_SECONDS, first_delay=FLUSH_SECONDS,
                                 failure="writing the media deliveries failed")
    job.start()
    return job


def start_deletion_sync(app: Flask) -> background.PeriodicJob:
    """Keep this worker's media cache current from a background job (each app server worker
    runs one): a sync every half ``poll_interval``, which costs nothing while the change
    stream is live and is a poll at each tick where deletions are polled (the embedded
    database: two indexed reads a second), so the cache is never past due between ticks.
    Without it only a request on a thread synced the cache, so while every thread was busy
    (slow bodies holding them all) the event loop's answers of cached media (avenue/server.py)
    stopped a second after the last such request: the cache was no longer known to be
    current, and those requests waited for a thread."""
    state = get_state(app)
    every = state.cache.poll_interval / 2
    job = background.PeriodicJob("avenue-media-deletions-sync",
                                 lambda: state.cache.sync(state.database(), margin=every),
                                 every=every, first_delay=every,
                                 failure="syncing the media cache's deletions failed")
    job.start()
    return job


def flush_deliveries(app: Flask, seconds: float = 2.0) -> dict[str, int]:
    """Write what this worker served and has not written yet, within ``seconds`` (a worker's
    exit: gunicorn.conf.py ``worker_exit``); what each sink wrote."""
    state = get_state(app)
    with pymongo.timeout(seconds):
        return state.deliveries.flush(state.database())


def get_state(app: Flask | None = None) -> MediaState:
    """The app's media core, with what serving needs (``app``: the current app by default)."""
    state: MediaState = (app or current_app).extensions[EXTENSION]
    return state


def get_cache(app: Flask | None = None) -> MediaCache:
    """The app's media cache (documents, headers, small hot files)."""
    return get_state(app).cache


def headers_for(app: Flask, rep: Representation) -> Headers:
    """``rep``'s 200 headers for this app (the same for the route and the front door)."""
    state = get_state(app)
    return representation_headers(state.cache, rep, state.baseline_headers(app.config))


def not_found() -> Response:
    return plain_error(NotFound())


def _signing_keys() -> list[str]:
    """The keys a media URL's signature may be made with: the current one and the fallbacks."""
    return [current_app.config["SECRET_KEY"], *current_app.config["SECRET_KEY_FALLBACKS"]]


def _verdict(bucket: str, doc: MediaDoc, variant: str) -> str:
    """The request's ``expires`` and ``sig`` checked for ``variant`` of ``doc``
    (:func:`signing.verify`). The document's version is the URL's: a private image's other
    versions resolve to nothing."""
    # Read by hand, not by a query model: the image-serving hot path, every request would pay it.
    return signing.verify(_signing_keys(), bucket, str(doc.file_id), variant, request.args.get("expires"),
                          request.args.get("sig"), version=doc.version)


def _check_signature(bucket: str, doc: MediaDoc, variant: str) -> Response | None:
    if not doc.private:
        return None
    verdict = _verdict(bucket, doc, variant)
    if verdict == "ok":
        return None
    if verdict == "missing":
        return not_found()
    return Response("Forbidden: this link has expired or is not valid\n", status=403,
                    mimetype="text/plain", headers={"X-Content-Type-Options": "nosniff"})


def _check_source_signature(bucket: str, doc: MediaDoc) -> None:
    """A public image's unedited original is for its editors: served only by the short-lived
    signed URL its image object gives them (``UrlSigner.source_url``); 403
    ``source_not_allowed`` (JSON) otherwise: none, a forged or expired one, another version's."""
    if _verdict(bucket, doc, SOURCE) != "ok":
        raise SourceNotAllowed("An image's unedited original is for its editors: ask the API for the "
                               "image (its source.url is signed for a few minutes).")


def _read(bucket: str, file_id: ObjectId) -> MediaDoc | None:
    """The image's record (``<bucket>.images``) as the database has it now (read after this call began, shared
    with concurrent requests for it: :class:`~avenue.media.serve.cache.SharedReads`), put in
    (or dropped from) the cache."""
    state = get_state()

    def load() -> MediaDoc | None:
        # By _id alone (the role is checked here): _id plus another field is a collection scan
        # on the embedded database's planner, and this runs on every cache miss.
        record = images(state.database(), bucket).find_one({"_id": file_id})
        if record is None or not is_image(record):
            state.cache.evict(bucket, [file_id])
            return None
        doc = MediaDoc.from_files_doc(bucket, record)
        state.cache.put_doc(bucket, doc)
        return doc

    found: MediaDoc | None = state.cache.reads.read((bucket, file_id), load)
    return found


Found = TypeVar("Found")
Loader = Callable[[str, ObjectId], MediaDoc | None]


def read_through(resolver: Callable[[Loader], Found], settled: Callable[[Found], bool],
                 url: MediaUrl | None = None) -> Found:
    """What ``resolver`` finds with this worker's cached document, unless that answer is not
    ``settled`` (a 404, a redirect, a name or crop the document lacks) and came from the
    cache: then what it finds with the document the database holds now. The cache learns of
    another worker's change by its next tombstone poll (up to AVENUE_DELETIONS_POLL_MS), so a
    URL the API just answered (a new version, a new name, a new crop) names what the cached
    document does not know yet; a 404 or a 301 for it would break read-your-writes across
    workers (docs/architecture.md, "Invariants"). Only the unsettled answers pay the read: the
    served ones stay the cache's.

    With ``url`` (the plain and named routes), a 404 pays no read when no write could make it
    a file (:func:`~avenue.media.serve.http.lasting_miss`: an extension no answer's URL
    carries, or the cached version's original in another format's), nor when the database's
    document refused this URL less than a poll interval ago (:meth:`MediaCache.refuse`, kept
    only for versions the image never had:
    :func:`~avenue.media.serve.http.refusable`): a flood of wrong URLs of a cached image
    reads once per URL and poll interval (and once per request that meets its lapse at the
    same moment), where it read once per request."""
    cached: list[MediaDoc] = []
    cache = get_state().cache

    def load(bucket: str, file_id: ObjectId) -> MediaDoc | None:
        state = get_state()
        state.cache.sync(state.database())
        doc = state.cache.get_doc(bucket, file_id)
        if doc is not None:
            cached.append(doc)
        return doc if doc is not None else _read(bucket, file_id)

    try:
        found = resolver(load)
    except AvenueError:
        if not cached:
            raise
    else:
        if settled(found) or not cached:
            return found
        if found is None and url is not None and (
                lasting_miss(cached[0], url) or cache.refused(url.bucket, cached[0], url)):
            return found
    read: list[MediaDoc | None] = []

    def reread(bucket: str, file_id: ObjectId) -> MediaDoc | None:
        read.append(_read(bucket, file_id))
        return read[-1]

    found = resolver(reread)
    fresh = read[0] if read else None
    if found is None and url is not None and fresh is not None and refusable(fresh, url):
        cache.refuse(url.bucket, fresh, url)
    return found


def _servable(found: object) -> bool:
    return isinstance(found, Representation | Pending | RenditionTarget)


@bp.route(ROUTE, methods=["GET"])
@bp.route(VARIANT_ROUTE, methods=["GET"])
def media(alias: str, token: str, variant: str | None = None) -> Response:
    """Serve an original, or a variant (WebP when the client says it takes WebP, else JPEG or PNG)."""
    url = MediaUrl.of(request.environ)  # the front door's parse, when it saw the request first
    if url is None:
        return not_found()
    bucket, token, variant = url.bucket, url.token, url.variant
    if variant is not None and is_rendition(variant, get_state().allow):
        return _rendition(bucket, token, variant)
    accept = request.headers.get("Accept", "")
    rep = read_through(lambda load: resolve(bucket, token, variant, load, accept), _servable, url)
    if rep is None:
        return not_found()
    name = (variant or "").partition(".")[0]
    refused = _check_signature(bucket, rep.doc, name)
    if refused is not None:
        return refused
    if name == SOURCE and not rep.doc.private:
        _check_source_signature(bucket, rep.doc)
    if isinstance(rep, Moved):
        return _redirect(rep)
    if isinstance(rep, Pending):
        done = _rendered(bucket, token, variant, rep)
        if done is None:
            return not_found()
        if isinstance(done, Moved):
            return _redirect(done)
        rep = done
    return _deliver(get_state(), bucket, rep) or not_found()


@bp.route(NAMED_ROUTE, methods=["GET"])
def named_media(alias: str, token: str, named: str) -> Response:
    """Serve a public original under its readable name; 301 from any other name."""
    url = MediaUrl.of(request.environ)
    if url is None or url.named is None:
        return not_found()
    bucket, token, named = url.bucket, url.token, url.named
    rep = read_through(lambda load: resolve_named(bucket, token, named, load), _servable, url)
    if rep is None:
        return not_found()
    if isinstance(rep, Moved):
        return _redirect(rep)
    return _deliver(get_state(), bucket, rep) or not_found()


def _rendered(bucket: str, token: str, variant: str | None, wanted: Pending) -> Representation | Moved | None:
    """A pending variant, rendered first (with the image's other pending ones, under the claim
    the render after the upload shares: avenue/media/store/pending.py), then resolved again
    from the original's new document (None: the image went meanwhile)."""
    state = get_state()
    pending.complete(state.database(), bucket, wanted.doc.file_id, state,
                     want=(wanted.variant, wanted.format))
    # Read again (and cached so); another worker whose cache still says pending comes here on
    # its next GET of the variant and finds it listed at once.
    rep = resolve(bucket, token, variant, _read, request.headers.get("Accept", ""))
    if isinstance(rep, Pending):  # defensive: complete() returns once it is listed
        raise ServerBusy("this image's variants are being rendered: try again shortly", retry_after=2)
    return rep


def _rendition(bucket: str, token: str, segment: str) -> Response:
    """A rendition on request: checked (allow-list or signature), then served from the
    renditions bucket, rendered first if this is its first request."""
    state = get_state()
    accept = request.headers.get("Accept", "")

    def settled(found: RenditionTarget | Moved | None) -> bool:  # a crop the cached image lacks
        return isinstance(found, RenditionTarget) and (
            found.doc.private or not found.asked.crop or found.asked.crop in found.doc.crops)

    found = read_through(lambda load: resolve_rendition(bucket, token, segment, state.allow, load, accept,
                                                        hint=request.headers.get), settled)
    if found is None:
        return not_found()
    if isinstance(found, Moved):
        return _redirect(found)  # the current version's URL is checked when it is asked for
    # Checked as the URL spelled it (found.asked); stored as found.spec (clamped to the
    # picture's width: w_1280 .. w_2560 of a 1000 px image are one file, w_1000).
    doc, key = found.doc, found.asked.key()

    def signed() -> bool:  # sig read by hand, not by a query model: the hot path (see _verdict)
        return signing.verify_rendition(_signing_keys(), bucket, str(doc.file_id), doc.version, key,
                                        request.args.get("sig"))

    admit: renditions.Admit | None = None
    if doc.private:
        # A private rendition's signature covers its format: the extension the URL names (or
        # none: the one negotiated by Accept), so a link for one format opens no other.
        named = key if found.vary else f"{key}.{EXTENSIONS.get(found.format, found.format)}"
        refused = _check_signature(bucket, doc, named)
        if refused is not None:
            return refused
    elif state.allow.allows(found.asked, doc.crops):
        # On the allow-list: rendered for anyone, so a cold render is counted against the
        # limits of unsigned renders, unless the URL carries a valid signature anyway. Called
        # only once the rendition is found not stored: a stored one costs no signature check.
        def count_unless_signed(then: Write | None = None) -> bool:
            return not signed() and state.admit_unsigned(then)

        admit = count_unless_signed
    elif not signed():
        raise RenditionNotAllowed(
            f"the rendition {key!r} is not one served unsigned (widths {list(state.allow.ladder)} "
            "with default quality, of the picture or of a named crop c_<name> this image has, or a "
            "named preset at 1x-3x): use one of those, or ask the API "
            "for a signed URL (its sig covers this image version and the options)")
    known = state.cache.get_rendition(found.cache_key(bucket))
    if known is not None:
        sent = _deliver(state, bucket, replace(known, vary=found.vary, hints=found.hints))
        if sent is not None:
            return sent
        # Evicted by the byte budget (or removed) since this worker cached it: rendered again.
    return _obtain(state, bucket, found, admit)


#: How many times a rendition is found (or rendered) and sent when its bytes are deleted
#: between finding it and reading them: once more, then 404.
OBTAIN_ATTEMPTS = 2


def _obtain(state: MediaState, bucket: str, found: RenditionTarget,
            admit: renditions.Admit | None) -> Response:
    """The stored rendition (rendered and stored first if it is not, once ``admit`` let it:
    the limit of unsigned cold renders), sent; found again when it is deleted between finding
    it and reading it, up to :data:`OBTAIN_ATTEMPTS` times."""
    for _ in range(OBTAIN_ATTEMPTS):
        sent = _deliver(state, bucket, *_stored_rendition(state, bucket, found, admit))
        if sent is not None:
            return sent
    return not_found()


def _stored_rendition(state: MediaState, bucket: str, found: RenditionTarget,
                      admit: renditions.Admit | None) -> tuple[Representation, bytes | None]:
    """The stored rendition (rendered and stored first if it is not), cached as known, and
    its bytes when this worker rendered them."""
    doc, key = found.doc, found.spec.key()
    size = (doc.width, doc.height) if doc.width and doc.height else None
    own = at_own_width(found.spec, size, doc.crops.get(found.spec.crop) if found.spec.crop else None)
    wanted = renditions.Wanted(bucket, doc.file_id, doc.version, key, found.format, own_width=own)
    obtained = renditions.answer(state.database(), wanted, doc, _renderer(state, found), admit=admit)
    stored = obtained.doc
    meta = stored["metadata"]
    stem = doc.filename.rsplit(".", 1)[0]
    filename = f"{stem}-{key.replace(',', '-')}.{EXTENSIONS.get(found.format, found.format)}"
    rep = Representation(RENDITIONS, doc, key, stored["_id"], stored["length"], stored["chunkSize"],
                         meta["sha256"], meta["content_type"], filename, vary=found.vary, hints=found.hints)
    # Known here from now on: the front door answers it from the cache (a public one), the
    # bytes too when this worker has them (it rendered them: they are not read back).
    state.cache.put_rendition(found.cache_key(bucket), rep.file_id, rep)
    if obtained.data is not None:
        state.cache.put_blob(RENDITIONS, rep.file_id, obtained.data)
    return rep, obtained.data


def _deliver(state: MediaState, bucket: str, rep: Representation,
             data: bytes | None = None) -> Response | None:
    """Send an original, a variant or a rendition and note its delivery (in memory:
    :mod:`avenue.media.effects.served`); ``data``: its bytes, at hand (a rendition just
    rendered, perhaps not stored yet). None: its bytes were deleted meanwhile."""
    response = _send(rep, data)
    if response is not None and request.method == "GET" and response.status_code in (200, 206):
        note_served(state, bucket, rep, response.content_length or 0, request.environ.get("QUERY_STRING", ""))
    return response


def note_served(state: MediaState, bucket: str, rep: Representation, sent: int, query: str = "") -> None:
    """One answer of ``rep`` (a file of an image of ``bucket``) that sent its bytes, ``sent``
    of them, asked with the query string ``query``: one deque append (every serving path calls
    this: the route and the front door; never for a HEAD or a 304), none for the console's own
    loads (:func:`~avenue.media.effects.served.from_console`)."""
    if from_console(query):
        return
    doc = rep.doc
    state.deliveries.served(rep.bucket, rep.file_id, (bucket, doc.file_id), sent,
                            name=rep.variant or "original", format=rep.content_type, private=doc.private,
                            version=doc.version, filename=doc.filename)


class RenderSlot:
    """One of the process's render slots (AVENUE_RENDER_CONCURRENCY) while in the ``with``,
    waited for at most :data:`RENDER_SLOT_WAIT_SECONDS` (then 503 busy). Reusable: the
    pending renders of one request take it once per image."""

    def __init__(self, state: MediaState) -> None:
        self.state = state

    def __enter__(self) -> None:
        if not self.state.renders.acquire(timeout=RENDER_SLOT_WAIT_SECONDS):
            raise ServerBusy("every rendering slot of this server is in use: try again shortly",
                             retry_after=5)

    def __exit__(self, *exc: object) -> None:
        self.state.renders.release()


def _renderer(state: MediaState, target: RenditionTarget) -> Callable[[bytes], Rendered]:
    """Render ``target`` from the original's bytes in one of the process's render slots
    (AVENUE_RENDER_CONCURRENCY): renders never take every thread from uploads and serving;
    decoded within the app's decode budget (AVENUE_DECODE_BUDGET_BYTES), the one uploads share."""
    given = state.settings  # read here, in the request: the render may run on another thread

    def render(data: bytes) -> Rendered:
        # Stored bytes passed validation when they were uploaded: limits by their size.
        limits = Limits.for_stored(len(data), given.decode_budget_bytes, given.decode_wait_seconds,
                                   given.disabled_formats,
                                   svg_draw_seconds=given.svg_draw_seconds)
        with RenderSlot(state), timed_rendition(target.format):
            crop = target.doc.crops.get(target.spec.crop) if target.spec.crop else None
            return render_spec(data, limits, target.spec, target.format, FocalPoint(*target.doc.focal),
                               crop=crop)
    return render


# How long a cache may keep the redirect from an earlier version's URL: short, so that the
# URL turns into a 404 soon after its window ends (AVENUE_REPLACED_REDIRECT_DAYS).
REDIRECT_MAX_AGE = 3600


def _redirect(moved: Moved) -> Response:
    """308 to the current version of what an earlier version's URL of a public image named
    (a private image's earlier versions are 404: :func:`~avenue.media.serve.http.resolve`), with
    the query it came with."""
    location = moved.location
    query = request.query_string.decode("latin-1")
    if query:
        location += f"?{query}"
    left = int((moved.until - now()).total_seconds())
    cache = f"public, max-age={max(0, min(REDIRECT_MAX_AGE, left))}"
    return Response("", status=moved.status, headers={"Location": location, "Cache-Control": cache,
                                             "X-Content-Type-Options": "nosniff"})


def _body(rep: Representation, data: bytes | None = None) -> list[bytes] | ChunkStream:
    if data is not None:
        return [data]
    state = get_state()
    cache = state.cache
    data = cache.get_blob(rep.bucket, rep.file_id)
    count_cache(hit=data is not None)
    if data is not None:
        return [data]
    on_complete = None
    if cache.cacheable(rep.length):
        def on_complete(whole: bytes) -> None:
            cache.put_blob(rep.bucket, rep.file_id, whole)
    return ChunkStream(state.database(), rep.bucket, rep.file_id, rep.length, rep.chunk_size, on_complete)


def _send(rep: Representation, data: bytes | None = None) -> Response | None:
    """``rep`` answered (from ``data`` when given, else from the cache or GridFS); None when
    its bytes were deleted meanwhile."""
    headers = headers_for(current_app, rep)
    environ = request.environ
    answer = decide(environ, rep, headers)
    if answer is not None and answer.status == 200:
        body = _body(rep, data)
        if isinstance(body, ChunkStream) and answer.with_body and not body.prime():
            # Deleted by another worker since this one cached the document: 404, not a
            # 200 whose body breaks off.
            get_cache().evict(rep.bucket, [rep.doc.file_id, rep.file_id])
            return None
        return Response(body, headers=answer.headers, direct_passthrough=True)
    if answer is not None:
        return Response(status=answer.status, headers=answer.headers)
    normalise_range(environ, rep.etag, rep.doc.upload_date, rep.length)
    response = Response(_body(rep, data), headers=headers, direct_passthrough=True)
    try:
        response.make_conditional(environ, accept_ranges=True, complete_length=rep.length)
    except RequestedRangeNotSatisfiable:
        response.close()
        # Plain text, as the route's 404 (an empty body went out labelled text/html).
        return Response("Range not satisfiable\n", status=416, mimetype="text/plain", headers={
            "Content-Range": f"bytes */{rep.length}", "Accept-Ranges": "bytes",
            "X-Content-Type-Options": "nosniff", "ETag": rep.etag,
        })
    if response.status_code == 304:
        response.close()
        response.response = []
    return response
