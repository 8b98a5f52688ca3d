"""Renditions on request: each rendered once, stored in a bucket of its own, served like a file.

A rendition URL (``/media/<alias>/<id>[~<version>]/w_800,fit_cover[.avif]``,
:mod:`avenue.media.transform`) names an image version, a canonical spec key and a format.
The first request renders it; the result goes into the GridFS bucket
:data:`~avenue.media.buckets.RENDITIONS` (never served by an alias of its own), and every
later request finds its files document and streams it like any variant. The files document's
metadata names the source bucket, the image id, its version, the spec key and the format;
a unique index on those (``rendition_unique``) means one stored file per rendition whatever
the number of writers.

One render per rendition across workers and instances: whoever renders first takes a claim,
a document of :data:`CLAIMS` with the rendition's key as ``_id`` (a unique insert,
:class:`avenue.leases.Lease`), renewed every third of its length while the render runs
(however long it waits for a render slot or decodes) and lapsing :data:`CLAIM_SECONDS` after
its last renewal, so a renderer that died blocks the rendition for seconds, not minutes.
The others wait (bounded by ``wait``) and serve what the claimant stored, or take over a
lapsed claim and render it themselves: in the claimant's process on an event it sets, in
another process by polling with backoff, one thread per process (:mod:`avenue.media.store.claims`).

Write order:

1. take the claim (a lapsed one may be taken over: two renders of one rendition are then
   possible, and harmless, because of 3); an unsigned render's insert goes after the hits on
   the limits of cold renders in their command where the dialect allows (:data:`Admit`): a
   refused render writes no claim, and a claim refused by its ``_id`` was counted all the
   same, as when they were two commands;
2. look once more for the stored rendition (stored between our first look and the claim),
   unless the claim was taken on no claim document at all (:attr:`avenue.leases.Lease.inserted`):
   see 4, a claim whose rendition was stored outlives the store, so none means nobody
   stored it since our first look (short of a pause of :data:`CLAIM_SECONDS` and the TTL
   sweep between that look and the claim: then a second render, harmless because of 3);
3. render, then write chunks first and the files document last (``storage.put_files``), and
   the renditions' counters after it, the three in one command where the dialect takes
   several collections' writes in one (``Dialect.cross_collection_writes``; executed in
   order, stopping at the first that fails): a crash leaves chunks ``gc`` collects; a
   second writer's files document hits the unique index, its own chunks are removed, its
   counters' update is never made, and the first one's file is served;
4. once the rendition is stored, the claim is left to lapse (:meth:`avenue.leases.Lease.leave`;
   the claims' TTL index removes it), not deleted: one command fewer, and 2's look is saved
   too; whoever comes meanwhile finds the stored file first, or fails to take the claim and
   looks. A render or store that failed releases (deletes) it: the next request renders at
   once. Counters through :func:`avenue.media.effects.apply`, after the write.

The request that rendered is answered from the rendered bytes once they are stored
(:func:`answer`), never read back from GridFS. Stored before the answer, not after it:
bench/results/mechanisms-2026-11-28-lane-latency.md.

Removal: :func:`remove_for` takes an image's renditions away when the image is deleted (to
the trash or for good) and, with ``keep_version``, those of earlier versions when it is
replaced, and queues a CDN purge of their URLs (:func:`avenue.media.effects.purge.rendition_paths`);
a rendition of a version that is not the image's current one is never served (the URL's
version must be the current one), so removal is clean-up, and a crash before it leaves
orphans ``gc`` finds with :func:`orphans`. Every removal (this one, :func:`remove_stale`,
:func:`evict`, fsck's repair) goes through :func:`remove`, which deletes the removed renditions'
claims after their files (:func:`forget_claims`): a claim left to lapse would hold the next
render back until it lapses.

The byte budget (``AVENUE_RENDITION_BUDGET_BYTES``): :func:`evict` removes the least recently
used renditions, in batches, until the bucket is under the budget minus :data:`MARGIN`.
Recency is ``metadata.last_used``: set when the rendition is stored, then moved forward by
:func:`record_used`, the sink of every worker's :class:`~avenue.media.effects.served.Deliveries`
(each serving path notes a hit in memory; a flush moves ``last_used`` of every rendition
served since the last one with a few ``update_many``), so a rendition served only from a
worker's cache or the front door stays recent.
The bucket's bytes are the running total :mod:`avenue.media.effects.counters` keeps with every
store and removal (``media_counters``, ``_id`` :data:`~avenue.media.buckets.RENDITIONS`), one
read at any size; the status sweep and ``fsck --repair`` recount it. An eviction is a removal
like any other (tombstone first, files document, chunks; counters after) and is harmless to a
request serving the rendition at that moment: what it read is sent, a worker whose cache
still knew it renders it again (:func:`obtain`), and its next request renders it again with
the same bytes. No CDN purge: the URL stays valid and names the same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bson import ObjectId
from pymongo import ASCENDING, IndexModel, WriteConcern
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from avenue import writes
from avenue.clock import now
from avenue.leases import Lease
from avenue.media import effects, formats
from avenue.media.buckets import RENDITIONS
from avenue.media.core import Purges
from avenue.media.effects import Changes, counters
from avenue.media.effects.served import Delivered
from avenue.media.formats import RENDITION_TYPES
from avenue.media.records import Document, MediaDoc, images, is_image
from avenue.media.store import claims, storage, undrawable
from avenue.writes import Write

#: The claims: one document per rendition being rendered.
CLAIMS = "media_rendition_claims"
#: A claim lapses this long after it was taken or last renewed: then another worker may take
#: it over. Its holder renews it every third of that while it renders
#: (:meth:`avenue.leases.Lease.kept`), so a render of any length keeps it, and a worker killed
#: mid-render holds the image's renders back for at most this long. It was 60 s without
#: renewal: a killed worker's pending variants then answered 503 for a minute, and a render
#: longer than that could be taken over while it ran.
CLAIM_SECONDS = 15.0
#: How a rendition's claim is written (taken, renewed, released): acknowledged by the primary,
#: not waiting for the journal or a majority as the app's writes do (avenue/db.py). A claim
#: is coordination, not data: one that a crash or a failover loses lets a second render
#: start, which is harmless as a lapsed claim taken over is (the unique index keeps one
#: file); the claim's insert is in front of every cold render, where the journal's sync cost
#: 3.6 ms against 0.8 ms on the embedded database.
CLAIM_WRITES = WriteConcern(w=1, j=False)
#: How long a request waits for a rendition another worker is rendering before answering 503.
WAIT_SECONDS = 15.0
#: Evicting stops this far under the budget (a fraction of it), so that the next few renders
#: do not start another eviction at once.
MARGIN = 0.1
#: Renditions removed per round of an eviction (one query, one delete of files, one of chunks).
EVICT_BATCH = 200
#: Renditions whose ``last_used`` one write of a flush moves (an ``$in`` of their ids).
FLUSH_BATCH = 500
#: The eviction's order, and its index: least recently used first, those never noted as used by
#: upload date (a document without ``last_used`` sorts before any date).
RECENCY = [("metadata.last_used", ASCENDING), ("uploadDate", ASCENDING)]


class Encoded(Protocol):
    """What a renderer gives back (``avenue.media.ingest.render.Rendered``)."""

    @property
    def data(self) -> bytes: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def format(self) -> str: ...


@dataclass(frozen=True)
class Wanted:
    """One rendition: which image (bucket, id, version), which spec (its canonical key) and
    which format."""

    bucket: str
    image_id: Any
    version: str
    key: str
    format: str
    # The source at its own width (transform.at_own_width): the ladder's wider widths name it
    # too, which a CDN purge names (effects/purge.py).
    own_width: bool = False

    def query(self) -> dict[str, Any]:
        """The files document's filter (the unique index's fields)."""
        return {"metadata.image_id": self.image_id, "metadata.version": self.version,
                "metadata.spec": self.key, "metadata.format": self.format, "metadata.source": self.bucket}

    def claim_id(self) -> str:
        return claim_id(self.bucket, self.image_id, self.version, self.key, self.format)


def claim_id(bucket: str, image_id: Any, version: str, key: str, fmt: str) -> str:
    """The claim's ``_id`` of a rendition: one per rendition, the files document's unique fields."""
    return f"{bucket}/{image_id}~{version}/{key}.{fmt}"


#: The metadata a rendition's claim id is made of (:func:`forget_claims`).
CLAIM_FIELDS = [f"metadata.{name}" for name in ("source", "image_id", "version", "spec", "format")]


def forget_claims(db: Database[Document], docs: list[dict[str, Any]]) -> None:
    """Delete the claims of the renditions ``docs`` (files documents with their metadata),
    once they are removed: a stored rendition's claim is left to lapse (step 4 of the module
    doc), so a rendition removed within a claim's length of its store would otherwise keep
    its next request waiting for that lapse (up to :data:`CLAIM_SECONDS`) instead of rendering
    it. A claim a renderer holds now (it renders the same rendition again) may go too: a
    second render is then possible, which is harmless."""
    ids = []
    for doc in docs:
        meta = doc.get("metadata") or {}
        source, image_id, version, key, fmt = (meta.get(name) for name in
                                               ("source", "image_id", "version", "spec", "format"))
        if None not in (source, image_id, version, key, fmt):
            ids.append(claim_id(str(source), image_id, str(version), str(key), str(fmt)))
    if ids:
        db.get_collection(CLAIMS, write_concern=CLAIM_WRITES).delete_many({"_id": {"$in": ids}})


def remove(db: Database[Document], docs: list[dict[str, Any]]) -> None:
    """Delete the stored renditions ``docs`` (files documents with their metadata): their files
    and chunks (``storage.delete_file``: every worker's cache told), then their claims
    (:func:`forget_claims`). Every removal of renditions goes through here (a stale one, an
    image's old versions, the byte budget's eviction, fsck's repair), so none can leave a claim
    that holds the next render back."""
    if docs:
        storage.delete_file(db, RENDITIONS, docs[0]["_id"], with_ids=[doc["_id"] for doc in docs[1:]])
        forget_claims(db, docs)


def recipe(key: str, fmt: str) -> str:
    """What a rendition of the spec ``key`` in ``fmt`` is made with now: the format's encoder
    settings at the spec's quality (``q_``) or the format's default (:func:`formats.recipe`;
    a JPEG baseline, :data:`formats.RENDITION_PROGRESSIVE`).
    Its geometry is its key: a changed preset names another key (its old renditions are no
    longer asked for, and go with the byte budget's eviction)."""
    quality = next((int(part[2:]) for part in key.split(",") if part.startswith("q_") and part[2:].isdigit()),
                   None)
    return formats.recipe(fmt, quality, progressive=formats.RENDITION_PROGRESSIVE)


def is_stale(doc: Mapping[str, Any]) -> bool:
    """Whether a stored rendition was made with other settings than its spec gets now (or
    before recipes were recorded)."""
    meta = doc.get("metadata") or {}
    if meta.get("role") != "rendition" or not meta.get("spec") or not meta.get("format"):
        return False
    try:
        return bool(meta.get("recipe") != recipe(str(meta["spec"]), str(meta["format"])))
    except ValueError:  # a format the house no longer encodes: made again on request as what it is
        return True


def remove_stale(db: Database[Document], docs: list[Document], *, purges: Purges) -> int:
    """Remove the stale renditions ``docs`` (their next request renders them again with the
    settings of now), as :func:`remove_for` removes: files documents, chunks, every worker's
    cache told, then a CDN purge of the public ones' URLs queued (their bytes change)."""
    if not docs:
        return 0
    remove(db, docs)
    by_image: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for doc in docs:
        meta = doc.get("metadata") or {}
        by_image.setdefault((str(meta.get("source")), meta.get("image_id")), []).append(dict(doc))
    effects.apply(db, Changes(purged_renditions=[(bucket, image_id, gone)
                                                 for (bucket, image_id), gone in by_image.items()]), purges)
    return len(docs)


def indexes() -> list[IndexModel]:
    """The renditions bucket's files indexes: one file per rendition, an image's renditions
    found by image (removal, gc), and the least recently used first (the budget's eviction)."""
    return [
        IndexModel([("metadata.image_id", ASCENDING), ("metadata.version", ASCENDING),
                    ("metadata.spec", ASCENDING), ("metadata.format", ASCENDING),
                    ("metadata.source", ASCENDING)], unique=True, name="rendition_unique"),
        IndexModel([("metadata.source", ASCENDING), ("metadata.image_id", ASCENDING)], name="rendition_of"),
        IndexModel(RECENCY, name="rendition_recency"),
    ]


def claims_indexes() -> list[IndexModel]:
    """The claims' TTL index: a claim whose rendition was stored is left to lapse, not
    deleted (step 4 of the module doc); lapsed ones go with the TTL sweep (pending
    variants' claims, deleted on release, only if their holder died)."""
    return [IndexModel([("until", ASCENDING)], expireAfterSeconds=0, name="ttl")]


def find(db: Database[Document], wanted: Wanted) -> dict[str, Any] | None:
    """The stored rendition's files document, if it is stored."""
    return db[f"{RENDITIONS}.files"].find_one(wanted.query())


def record_used(db: Database[Document], delivered: Mapping[tuple[str, Any], Delivered]) -> int:
    """The deliveries' sink for renditions: move each served rendition's ``last_used`` forward
    to when it was last served, to the minute (an LRU needs no finer clock), so that one flush
    is a few ``update_many`` by ``_id`` (a minute's renditions, :data:`FLUSH_BATCH` at a time),
    not a write per rendition (not ``bulk_write``: mongomock's does not take pymongo 4's
    ``UpdateOne``). ``$max``: a late flush never moves it back; a rendition removed meanwhile
    matches nothing. Returns how many writes were sent."""
    by_minute: dict[dt.datetime, list[Any]] = {}
    for (bucket, file_id), seen in delivered.items():
        if bucket == RENDITIONS:
            minute = dt.datetime.fromtimestamp(seen.last - seen.last % 60, dt.UTC)
            by_minute.setdefault(minute, []).append(file_id)
    files = db[f"{RENDITIONS}.files"]
    writes = 0
    for minute, ids in sorted(by_minute.items()):
        for start in range(0, len(ids), FLUSH_BATCH):
            files.update_many({"_id": {"$in": ids[start:start + FLUSH_BATCH]}},
                              {"$max": {"metadata.last_used": minute}})
            writes += 1
    return writes


#: The limits of unsigned cold renders (the app's, ``avenue.ratelimit.cold_render_gate``),
#: asked once a rendition is found not stored: raises to refuse the render; given the write
#: the render starts with (its claim's insert), answers whether it made it, in the command
#: that counted the render (then a claim already held raises ``DuplicateKeyError``); False:
#: the caller makes it.
Admit = Callable[[Write | None], bool]


class _Admission:
    """One request's pass through :data:`Admit`, made once: with the claim's first insert
    (the hits first, in one command where the dialect allows: a refused render writes no
    claim), or alone before this thread waits on another of this process rendering it."""

    def __init__(self, admit: Admit, claims: Collection[Document]) -> None:
        self.admit, self.claims, self.done = admit, claims, False

    def alone(self) -> None:
        if not self.done:
            self.done = True
            self.admit(None)

    def insert(self, claim: Document) -> None:
        """The claim's insert (:class:`~avenue.leases.Lease`'s), the first with the admission."""
        first, self.done = not self.done, True
        if not (first and self.admit(writes.insert(CLAIMS, claim))):
            self.claims.insert_one(claim)


@dataclass(frozen=True)
class Obtained:
    """A rendition's files document, and its bytes when this process has them at hand (it
    rendered them): answered from those, not read back from GridFS."""

    doc: dict[str, Any]
    data: bytes | None = None


def obtain(db: Database[Document], wanted: Wanted, original: MediaDoc,
           render: Callable[[bytes], Encoded], *, wait: float = WAIT_SECONDS,
           claim_seconds: float = CLAIM_SECONDS,
           admit: Admit | None = None) -> dict[str, Any]:
    """The stored rendition's files document (:func:`answer`, stored before it returns)."""
    return answer(db, wanted, original, render, wait=wait, claim_seconds=claim_seconds, admit=admit).doc


def answer(db: Database[Document], wanted: Wanted, original: MediaDoc,
           render: Callable[[bytes], Encoded], *, wait: float = WAIT_SECONDS,
           claim_seconds: float = CLAIM_SECONDS, admit: Admit | None = None) -> Obtained:
    """The rendition: found stored, or rendered from ``original``'s bytes by ``render`` and
    stored under the claim (see the module doc), or stored meanwhile by whoever held it. A
    rendition of an SVG whose draw ran past the deadline
    (:class:`~avenue.errors.SvgTooComplex`) is remembered and answered
    :class:`~avenue.errors.NotDrawable` from then on, without drawing
    (:mod:`avenue.media.store.undrawable`). ``admit`` is called once it is not stored and not
    remembered so, before anything else (it raises to refuse: the limit of unsigned cold
    renders): with the claim's insert, in one command where the dialect allows, or before
    this thread waits for another of this process rendering it.
    :class:`~avenue.errors.ServerBusy` when another worker's render took longer than ``wait``."""
    found = find(db, wanted)
    if found is not None:
        return Obtained(found)
    # A stored SVG drawn past the deadline before: answered at once, not drawn again.
    if undrawable.drawn(original.format):
        undrawable.check(db, wanted.claim_id())
    held_claims = db.get_collection(CLAIMS, write_concern=CLAIM_WRITES)
    admission = _Admission(admit, held_claims) if admit is not None else None
    claim = Lease(held_claims, wanted.claim_id(), uuid.uuid4().hex, claim_seconds,
                  insert=admission.insert if admission is not None else None)

    def look() -> tuple[bool, Obtained | None]:
        if claim.inserted:
            # Just taken on no claim document: nobody stored it since find() above (step 2).
            return False, None
        stored = find(db, wanted)
        return stored is not None, Obtained(stored) if stored is not None else None

    def work(_: Obtained | None) -> Obtained:
        if undrawable.drawn(original.format):  # a waiter after a leader's draw that timed out
            undrawable.check(db, wanted.claim_id())
        try:
            rendered = render(_source(db, wanted, original))
        except undrawable.FAILURES as error:
            raise undrawable.remember(db, wanted.claim_id(), error) from error
        new = _new_file(wanted, rendered, private=original.private)
        stored = _put(db, wanted, new)
        claim.leave()  # stored: the claim lapses (step 4)
        # Another's file stored first (a lapsed claim taken over): that one is the answer.
        return Obtained(stored, new.data if stored["_id"] == new.file_id else None)

    obtained = claims.once(claim, look, work, wait=wait,
                           busy="this rendition is being rendered by another request: try again shortly",
                           thread_name="avenue-render-claim",
                           waiting=admission.alone if admission is not None else None)
    assert obtained is not None
    return obtained


def _source(db: Database[Document], wanted: Wanted, original: MediaDoc) -> bytes:
    """The original's bytes, in one round trip (:func:`storage.read_whole`)."""
    return storage.read_whole(db, wanted.bucket, original.bytes_id, original.length, original.chunk_size)


def _render_and_store(db: Database[Document], wanted: Wanted, original: MediaDoc,
                      render: Callable[[bytes], Encoded]) -> dict[str, Any]:
    return keep(db, wanted, render(_source(db, wanted, original)), private=original.private)


def keep(db: Database[Document], wanted: Wanted, rendered: Encoded, *, private: bool,
         extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Store ``rendered`` as the rendition ``wanted`` (``extra``: more metadata), unless it is
    stored already (then that one is kept and returned): chunks first, files document last
    under the unique index, counters after."""
    return _put(db, wanted, _new_file(wanted, rendered, private=private, extra=extra))


def _new_file(wanted: Wanted, rendered: Encoded, *, private: bool,
              extra: Mapping[str, Any] | None = None) -> storage.NewFile:
    """The GridFS file of the rendition ``wanted`` (its id chosen now)."""
    metadata: dict[str, Any] = {**(extra or {}),
        "role": "rendition", "source": wanted.bucket, "image_id": wanted.image_id,
        "version": wanted.version, "spec": wanted.key, "format": rendered.format,
        "content_type": RENDITION_TYPES[rendered.format], "sha256": hashlib.sha256(rendered.data).hexdigest(),
        "width": rendered.width, "height": rendered.height, "last_used": now(),
        # The encoder settings it was made with (formats.recipe of its quality): rerender
        # removes the renditions whose settings changed since.
        "recipe": recipe(wanted.key, rendered.format),
        # Whether its URLs may sit at a CDN (a removal purges only a public image's).
        "visibility": "private" if private else "public",
    }
    if wanted.own_width:
        metadata["own_width"] = True
    return storage.NewFile(rendered.data, f"{wanted.image_id}-{wanted.key}.{rendered.format}", metadata)


def _put(db: Database[Document], wanted: Wanted, new: storage.NewFile) -> dict[str, Any]:
    """Store ``new`` as the rendition ``wanted`` unless it is stored already (then that one's
    files document): chunks first, files document last under the unique index, counters after
    (in the same command where the dialect allows: ``put_files``'s ``counted``; a files
    document the unique index refuses stops it before the counters)."""
    try:
        docs, changes = storage.put_files(db, RENDITIONS, [new], counted=True)
    except (DuplicateKeyError, BulkWriteError) as error:
        # Another renderer (a lapsed claim taken over) stored it first; put_files took back
        # this one's chunks.
        found = find(db, wanted) if storage.is_duplicate_key(error) else None
        if found is None:
            raise
        return found
    effects.apply(db, changes)
    return docs[0]


def remove_for(db: Database[Document], bucket: str, image_id: Any, *, keep_version: str | None = None,
               purges: Purges) -> int:
    """Delete the renditions of image ``image_id`` of ``bucket`` (``keep_version``: all but
    that version's); how many went. Files documents first, then chunks, every worker's cache
    told (``storage.delete_file``), then a CDN purge of the public ones' URLs queued (only
    with a purge hook configured)."""
    # By image alone (the index's equality keys), the version compared here: a ``$ne`` in the
    # filter is a scan on the embedded database's planner.
    found = db[f"{RENDITIONS}.files"].find({"metadata.source": bucket, "metadata.image_id": image_id},
                                           {"metadata": 1})
    gone = [doc for doc in found
            if keep_version is None or (doc.get("metadata") or {}).get("version") != keep_version]
    if not gone:
        return 0
    remove(db, gone)
    effects.apply(db, Changes(purged_renditions=[(bucket, image_id, gone)]), purges)
    return len(gone)


@dataclass(frozen=True)
class Evicted:
    """What one :func:`evict` did: the bucket's bytes before and after (the running total), the
    renditions and bytes it removed."""

    budget: int
    before: int
    after: int
    files: int = 0
    bytes: int = 0


def total(db: Database[Document]) -> dict[str, int]:
    """The renditions bucket's files and bytes, as kept with every store and removal (one
    small read)."""
    held = counters.of(db, RENDITIONS)
    return {"files": max(0, held["files"]), "bytes": max(0, held["bytes"])}


def evict(db: Database[Document], budget: int, *, margin: float = MARGIN,
          batch: int = EVICT_BATCH) -> Evicted:
    """Remove the least recently used renditions until the bucket holds at most ``budget``
    bytes less ``margin`` of it, if it holds more than ``budget`` (nothing with a budget of 0:
    unbounded). Rounds of ``batch``: the oldest ``last_used`` first (:data:`RECENCY`, an index
    walk, never a scan), each round one removal (``storage.delete_file``). Runs under the
    budget job's lease; a second evictor at once would only evict a little more."""
    before = total(db)["bytes"]
    if budget <= 0 or before <= budget:
        return Evicted(budget, before, before)
    target = int(budget * (1 - margin))
    files = freed = 0
    collection = db[f"{RENDITIONS}.files"]
    while before - freed > target:
        oldest = list(collection.find({}, {"length": 1, **dict.fromkeys(CLAIM_FIELDS, 1)})
                      .sort(RECENCY).limit(batch))
        chosen, size = [], 0
        for doc in oldest:
            if before - freed - size <= target:
                break
            chosen.append(doc)
            size += int(doc.get("length") or 0)
        if not chosen:
            break  # the running total is ahead of the bucket: the next recount corrects it
        remove(db, chosen)
        files += len(chosen)
        freed += size
    return Evicted(budget, before, total(db)["bytes"], files, freed)


def orphans(db: Database[Document], batch: int = 500) -> Iterator[dict[str, Any]]:
    """The renditions whose image is gone from its bucket, or is at another version now:
    what a crash between a delete (or a replace) and :func:`remove_for` left behind."""
    cursor = db[f"{RENDITIONS}.files"].find(
        {}, {"metadata.source": 1, "metadata.image_id": 1, "metadata.version": 1}).batch_size(batch)
    pending: list[dict[str, Any]] = []
    for doc in cursor:
        pending.append(doc)
        if len(pending) >= batch:
            yield from _orphaned(db, pending)
            pending = []
    if pending:
        yield from _orphaned(db, pending)


def _orphaned(db: Database[Document], docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    by_bucket: dict[str, set[Any]] = {}
    for doc in docs:
        meta = doc.get("metadata") or {}
        by_bucket.setdefault(str(meta.get("source")), set()).add(meta.get("image_id"))
    versions: dict[tuple[str, Any], str] = {}
    for bucket, ids in by_bucket.items():
        for head in images(db, bucket).find({"_id": {"$in": [i for i in ids if isinstance(i, ObjectId)]}},
                                            {"metadata.role": 1, "metadata.version": 1}):
            if is_image(head):
                versions[(bucket, head["_id"])] = head["metadata"].get("version") or ""
    for doc in docs:
        meta = doc.get("metadata") or {}
        current = versions.get((str(meta.get("source")), meta.get("image_id")))
        if current is None or current != (meta.get("version") or ""):
            yield doc
