"""Resumable uploads (the tus protocol's storage): an upload's state and its bytes as they arrive.

``avenue/tus/`` speaks the protocol over HTTP and hands a finished upload's bytes to the same
service call as a multipart upload; this module keeps what is in between, in MongoDB, so any
worker of any instance can take an upload's next request and nothing touches the local disk:

- ``media_tus_uploads``: one document per upload: its owner, declared length, the offset
  received so far, its target (opaque to this module), filename and type, expiry, state
  (``open``, ``completing``, ``done``), the writer's lease and, once done, the result.
- ``media_tus_chunks``: the bytes, one document per piece of at most :data:`PIECE_BYTES`,
  keyed ``{upload_id, offset}`` (unique), written as a request's body is read (never a whole
  request in memory here).

Write order, and why concurrent requests are safe without transactions:

1. A PATCH takes the upload's lease by one conditional update on ``{offset, state, lease
   free or lapsed}``: of two PATCHes at the same offset one gets it, the other answers 409
   (its offset no longer matches, or the upload is busy). The holder first deletes pieces at
   or past the committed offset (what a writer that died mid-request left), then inserts its
   pieces, renewing the lease with each one (a writer that lost its lease stops and removes
   its own pieces, found by its token).
2. The offset moves forward only in the update that releases the lease, conditional on the
   lease token: a reader (HEAD, the next PATCH) sees the old offset or the new one, and every
   piece below the committed offset is written. A request cut off mid-body commits the whole
   pieces it had received (the protocol's SHOULD: the client resumes from there).
3. The PATCH that reaches the declared length keeps the lease (state ``completing``) while the
   bytes are validated and stored, renewed by a heartbeat (:func:`completing`), so a
   completion longer than the lease is never completed a second time meanwhile. Success marks
   the upload ``done`` with its result and then deletes its pieces; a refusal deletes the
   upload, then its pieces (nothing left behind). A worker that dies while completing stops
   renewing and leaves ``completing`` with a lapsing lease: an empty PATCH at the final offset
   completes it again (the store deduplicates, so a second completion finds the first one's
   image).
4. Creation counts what the holder (a user, or an upload link) has unfinished: its open
   uploads and their declared bytes, against :class:`Caps` (429, 413 past them), then inserts.
   Two creations at the same moment may both pass the count: the excess is bounded by the
   requests in flight, and the upload rate limit bounds those. A PATCH that does not reach the
   end keeps its bytes only when they are at least ``min_bytes`` (else none of them), so one
   piece document always holds a worthwhile number of bytes.
5. Termination deletes the state document first (the upload is 404 at once), then the pieces.
   Every document carries the upload's ``expires_at``: an expired upload answers 410 and takes
   no more bytes, and gc (:func:`collect_expired`) removes expired uploads and every expired
   piece, so a crash between the two deletes leaves pieces for at most the upload's lifetime;
   so does every app server worker, every ``COLLECT_SECONDS`` (``avenue/tus/collector.py``).
   (Not a TTL index: gc reports what it removed, and an expired upload stays a clear 410
   rather than a 404 until it is collected.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from bson import Binary
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from avenue.clock import as_utc, now
from avenue.errors import AvenueError, BadRequest, Conflict, ImageTooLarge, NotFound, RateLimited
from avenue.indexes import create_missing
from avenue.leases import Lease
from avenue.media.records import Document

UPLOADS = "media_tus_uploads"
CHUNKS = "media_tus_chunks"
#: Bytes per piece document: large enough that a 10 MB photo is ten inserts, far below BSON's 16 MB.
PIECE_BYTES = 1024 * 1024
#: A writer that stops renewing its lease (renewed with every piece) frees the upload after this.
LEASE_SECONDS = 60
#: Checksum algorithms of the protocol's checksum extension this store verifies (hashlib names).
CHECKSUM_ALGORITHMS = ("sha1", "sha256", "md5")
OPEN, COMPLETING, DONE = "open", "completing", "done"


class Body(Protocol):
    """What a piece of an upload is read from: a binary file, or the request's body."""

    def read(self, size: int, /) -> bytes: ...


class UploadGone(AvenueError):
    """The upload expired: its bytes are gone (or going)."""

    status, code = 410, "upload_expired"


class UploadNotFound(NotFound):
    code = "upload_not_found"

    def __init__(self) -> None:
        super().__init__("No resumable upload with this id (never created, terminated, or removed after "
                         "it expired).")


class OffsetMismatch(Conflict):
    code = "offset_mismatch"


class UploadBusy(Conflict):
    code = "upload_busy"


class UploadFinished(Conflict):
    code = "upload_finished"


class ChecksumMismatch(AvenueError):
    """The protocol's own status for a body whose Upload-Checksum does not match."""

    status, code = 460, "checksum_mismatch"


class ExceedsLength(ImageTooLarge):
    code = "exceeds_upload_length"


class TooManyOpen(RateLimited):
    """The holder has as many unfinished uploads as it may."""

    code = "too_many_open_uploads"


class OpenBytesExceeded(ImageTooLarge):
    """The holder's unfinished uploads would declare more bytes than it may park."""

    code = "open_uploads_too_large"


class ChunkTooSmall(BadRequest):
    """A PATCH that does not finish the upload brought fewer bytes than the floor."""

    code = "chunk_too_small"


@dataclass(frozen=True)
class Caps:
    """What one holder (a user, or an upload link) may have unfinished at once: ``uploads``
    open uploads declaring at most ``bytes`` together (what they may park here)."""

    uploads: int
    bytes: int


@dataclass(frozen=True)
class Resumable:
    """One resumable upload as stored."""

    id: str
    owner: str
    length: int
    offset: int
    target: dict[str, Any]
    filename: str | None
    filetype: str | None
    created_at: dt.datetime
    expires_at: dt.datetime
    state: str
    result: dict[str, Any] | None
    lease_token: str | None = None  # the request writing or completing it, while one does

    @property
    def received_all(self) -> bool:
        return self.offset == self.length

    def expired(self, at: dt.datetime | None = None) -> bool:
        return self.expires_at <= (at or now())


def _record(doc: Document) -> Resumable:
    return Resumable(id=doc["_id"], owner=doc["owner"], length=doc["length"], offset=doc["offset"],
                     target=dict(doc.get("target") or {}), filename=doc.get("filename"),
                     filetype=doc.get("filetype"), created_at=as_utc(doc["created_at"]),
                     expires_at=as_utc(doc["expires_at"]), state=doc["state"], result=doc.get("result"),
                     lease_token=(doc.get("lease") or {}).get("token"))


def completing(db: Database[Document], upload: Resumable) -> contextlib.AbstractContextManager[None]:
    """Keep a completing upload's lease (the one :func:`append` handed back) while its bytes
    are validated and stored: renewed every third of ``LEASE_SECONDS`` from a heartbeat
    (:meth:`avenue.leases.Lease.kept`, as the render claims), so a completion that takes
    longer than the lease (a big photo on a slow database) is never taken over by a retried
    PATCH and stored twice. A worker that dies stops renewing: the lease lapses as before."""
    if upload.state != COMPLETING or upload.lease_token is None:
        return contextlib.nullcontext()
    lease = Lease(db[UPLOADS], upload.id, upload.lease_token, LEASE_SECONDS,
                  owner_field="lease.token", until_field="lease.until")
    return lease.kept(LEASE_SECONDS / 3, "avenue-tus-completion-lease")


def indexes() -> dict[str, list[IndexModel]]:
    """The collections' indexes: pieces by upload and offset (unique: two writers cannot both
    hold one offset) and by writer (a failed request's own), and expiry for gc."""
    expiry = IndexModel([("expires_at", ASCENDING)], name="expires_at")
    holder = IndexModel([("holder", ASCENDING), ("expires_at", ASCENDING)], name="holder_expires_at")
    return {UPLOADS: [expiry, holder],
            CHUNKS: [IndexModel([("upload_id", ASCENDING), ("offset", ASCENDING)], unique=True,
                                name="upload_offset_unique"),
                     IndexModel([("upload_id", ASCENDING), ("writer", ASCENDING)], name="upload_writer"),
                     expiry]}


def ensure_indexes(db: Database[Document]) -> None:
    for name, models in indexes().items():
        create_missing(db[name], models)


def unfinished(db: Database[Document], holder: str, at: dt.datetime) -> list[Document]:
    """The holder's uploads not finished and not expired (their lengths and expiries)."""
    # Hinted: the embedded database's planner scans the collection for this filter (its ``$ne``) although
    # ``holder_expires_at`` serves it; mongod picks the index by itself.
    return list(db[UPLOADS].find({"holder": holder, "expires_at": {"$gt": at}, "state": {"$ne": DONE}},
                                 {"length": 1, "expires_at": 1}).hint("holder_expires_at"))


def _check_room(db: Database[Document], holder: str, length: int, caps: Caps, at: dt.datetime) -> None:
    """429 when ``holder`` has ``caps.uploads`` unfinished uploads, 413 when one more of
    ``length`` bytes would declare more than ``caps.bytes`` together."""
    open_ = unfinished(db, holder, at)
    if len(open_) >= caps.uploads:
        first_free = min(as_utc(doc["expires_at"]) for doc in open_)
        raise TooManyOpen(f"{len(open_)} resumable uploads are unfinished, the most one may have at once; "
                          "finish or terminate one first.", limit=caps.uploads,
                          retry_after=max(1, int((first_free - at).total_seconds()) + 1))
    parked = sum(int(doc["length"]) for doc in open_)
    if parked + length > caps.bytes:
        raise OpenBytesExceeded(f"Unfinished resumable uploads may declare {caps.bytes:,} bytes together; "
                                f"{parked:,} are declared already. Finish or terminate one first.",
                                limit_bytes=caps.bytes, open_bytes=parked)


def create(db: Database[Document], *, owner: str, length: int, target: dict[str, Any],
           filename: str | None, filetype: str | None, lifetime_seconds: int,
           holder: str | None = None, caps: Caps | None = None,
           at: dt.datetime | None = None) -> Resumable:
    """A new, empty upload of ``length`` bytes for ``owner``, expiring ``lifetime_seconds`` from
    now; ``holder`` (who it counts against: ``user:<id>``, ``link:<id>``; the owner's by
    default) within ``caps`` (429 / 413 past them)."""
    created = at or now()
    holder = holder or f"user:{owner}"
    if caps is not None:
        _check_room(db, holder, length, caps, created)
    doc: Document = {"_id": secrets.token_urlsafe(18), "owner": owner, "holder": holder, "length": length,
                     "offset": 0,
                     "target": target, "filename": filename, "filetype": filetype, "created_at": created,
                     "expires_at": created + dt.timedelta(seconds=lifetime_seconds), "state": OPEN,
                     "lease": None, "result": None}
    db[UPLOADS].insert_one(doc)
    return _record(doc)


def find(db: Database[Document], upload_id: str, *, owner: str | None,
         at: dt.datetime | None = None) -> Resumable:
    """The upload ``owner`` may use (None: anyone's): 404 when there is none (or it is not
    theirs: no existence leak), 410 once it expired."""
    doc = db[UPLOADS].find_one({"_id": upload_id})
    if doc is None or (owner is not None and doc["owner"] != owner):
        raise UploadNotFound()
    upload = _record(doc)
    if upload.expired(at):
        raise UploadGone("This upload expired; start a new one.", expired_at=upload.expires_at.isoformat())
    return upload


def _lease_free(at: dt.datetime) -> dict[str, Any]:
    return {"$or": [{"lease": None}, {"lease.until": {"$lt": at}}]}


def _take_lease(db: Database[Document], upload: Resumable, offset: int, token: str) -> Resumable:
    """The upload's lease at ``offset``, or the 409 that says why not."""
    at = now()
    doc = db[UPLOADS].find_one_and_update(
        {"_id": upload.id, "offset": offset, "state": {"$in": [OPEN, COMPLETING]}, "expires_at": {"$gt": at},
         **_lease_free(at)},
        {"$set": {"lease": {"token": token, "until": at + dt.timedelta(seconds=LEASE_SECONDS)}}},
        return_document=ReturnDocument.AFTER)
    if doc is not None:
        return _record(doc)
    current = find(db, upload.id, owner=None)
    if current.state == DONE:
        raise UploadFinished("This upload is complete; it takes no more bytes.")
    if current.offset != offset:
        raise OffsetMismatch(f"Upload-Offset {offset} does not match the upload's offset {current.offset}.",
                             offset=current.offset)
    raise UploadBusy("Another request is writing to this upload; ask its offset (HEAD) and try again.")


def _renew(db: Database[Document], upload_id: str, token: str) -> bool:
    until = now() + dt.timedelta(seconds=LEASE_SECONDS)
    return db[UPLOADS].update_one({"_id": upload_id, "lease.token": token},
                                  {"$set": {"lease.until": until}}).matched_count == 1


def _drop_own(db: Database[Document], upload_id: str, token: str) -> None:
    db[CHUNKS].delete_many({"upload_id": upload_id, "writer": token})


def _release(db: Database[Document], upload_id: str, token: str) -> None:
    db[UPLOADS].update_one({"_id": upload_id, "lease.token": token}, {"$set": {"lease": None}})


def _insert_piece(db: Database[Document], upload: Resumable, offset: int, data: bytes, token: str) -> None:
    piece = {"upload_id": upload.id, "offset": offset, "writer": token, "size": len(data),
             "data": Binary(data), "expires_at": upload.expires_at}
    try:
        db[CHUNKS].insert_one(piece)
    except DuplicateKeyError:
        mine = {"upload_id": upload.id, "offset": offset, "writer": token}
        if db[CHUNKS].find_one(mine, {"_id": 1}) is not None:
            # Our own insert landed before its connection was cut, and the driver's retry (a
            # retryable write) met it: a database restarted in between forgets the retry's
            # session (the embedded database's supervisor restarts it, avenue/embedded/supervisor.py).
            return
        # We hold the lease: a piece here is a lapsed writer's, never committed. Ours wins.
        db[CHUNKS].delete_one({"upload_id": upload.id, "offset": offset, "writer": {"$ne": token}})
        piece.pop("_id", None)
        db[CHUNKS].insert_one(piece)


def check_piece_size(upload: Resumable, offset: int, size: int, min_bytes: int) -> None:
    """400 ``chunk_too_small`` when ``size`` bytes at ``offset`` stop short of the upload's end
    and are fewer than ``min_bytes`` (a PATCH's declared length before its body is read, or
    the bytes it brought)."""
    if offset + size < upload.length and size < min_bytes:
        raise ChunkTooSmall(f"A PATCH that does not finish the upload brings at least {min_bytes:,} "
                            f"bytes; this one brings {size:,} (none were kept).", min_bytes=min_bytes)


def check_offset(upload: Resumable, offset: int) -> None:
    """409 when no bytes may go at ``offset``: the upload is done (``upload_finished``), or
    ``offset`` is not its offset (``offset_mismatch``, naming the upload's). A PATCH checks it
    before the size of its bytes (:func:`check_piece_size`): tus 1.0.0 answers a wrong offset
    409 whatever it brings, and a client resumes from a 409 by asking the offset (HEAD)."""
    if upload.state == DONE:
        raise UploadFinished("This upload is complete; it takes no more bytes.")
    if offset != upload.offset:
        raise OffsetMismatch(f"Upload-Offset {offset} does not match the upload's offset {upload.offset}.",
                             offset=upload.offset)


def append(db: Database[Document], upload: Resumable, offset: int, body: Body, *,
           checksum: tuple[str, bytes] | None = None, min_bytes: int = 0) -> Resumable:
    """Write the bytes ``body`` yields at ``offset`` and move the offset past them.

    409 when ``offset`` is not the upload's (or another request holds it), 413 past the
    declared length, 460 when ``checksum`` (algorithm, digest) does not match (nothing kept),
    400 when the bytes stop short of the end and are fewer than ``min_bytes`` (nothing kept).
    A body that ends early (a client cut off) keeps what arrived. An upload this request
    completes comes back in state ``completing``, its lease still held: the caller stores it
    and calls :func:`finish` or :func:`discard`.
    """
    check_offset(upload, offset)
    token = secrets.token_hex(12)
    upload = _take_lease(db, upload, offset, token)
    try:
        written = _write_body(db, upload, offset, body, token, checksum)
        check_piece_size(upload, offset, written, min_bytes)
    except BaseException:
        _drop_own(db, upload.id, token)
        _release(db, upload.id, token)
        raise
    end = offset + written
    state = COMPLETING if end == upload.length else OPEN
    change: dict[str, Any] = {"offset": end, "state": state}
    if state == OPEN:
        change["lease"] = None
    doc = db[UPLOADS].find_one_and_update({"_id": upload.id, "lease.token": token, "offset": offset},
                                          {"$set": change}, return_document=ReturnDocument.AFTER)
    if doc is None:
        _drop_own(db, upload.id, token)
        raise UploadBusy("This upload was taken over by another request; ask its offset (HEAD) and "
                         "try again.")
    return _record(doc)


def _write_body(db: Database[Document], upload: Resumable, offset: int, body: Body, token: str,
                checksum: tuple[str, bytes] | None) -> int:
    """Insert ``body``'s bytes as pieces from ``offset``; the number of bytes written."""
    db[CHUNKS].delete_many({"upload_id": upload.id, "offset": {"$gte": offset}})
    digest = hashlib.new(checksum[0]) if checksum else None
    room = upload.length - offset
    written = 0
    while True:
        data = _read_piece(body, PIECE_BYTES)
        if not data:
            break
        if written + len(data) > room:
            raise ExceedsLength(f"The body goes past the upload's declared length ({upload.length:,} bytes).",
                                limit_bytes=upload.length)
        if digest is not None:
            digest.update(data)
        _insert_piece(db, upload, offset + written, data, token)
        written += len(data)
        if not _renew(db, upload.id, token):
            raise UploadBusy("This upload was taken over by another request; ask its offset (HEAD) and "
                             "try again.")
    if checksum is not None and digest is not None and digest.digest() != checksum[1]:
        raise ChecksumMismatch(f"The body's {checksum[0]} does not match Upload-Checksum; nothing was kept.")
    return written


def _read_piece(body: Body, size: int) -> bytes:
    """Up to ``size`` bytes (fewer only at the body's end)."""
    parts: list[bytes] = []
    left = size
    while left:
        data = body.read(left)
        if not data:
            break
        parts.append(data)
        left -= len(data)
    return b"".join(parts)


def read_all(db: Database[Document], upload: Resumable) -> bytes:
    """The whole upload's bytes in order (checked to be contiguous, up to its length)."""
    parts: list[bytes] = []
    position = 0
    for piece in _pieces(db, upload):
        if piece["offset"] != position:
            raise UploadBusy("This upload's bytes are incomplete; ask its offset (HEAD) and send the rest.")
        parts.append(bytes(piece["data"]))
        position += len(piece["data"])
    if position != upload.length:
        raise UploadBusy("This upload's bytes are incomplete; ask its offset (HEAD) and send the rest.")
    return b"".join(parts)


def _pieces(db: Database[Document], upload: Resumable) -> Iterator[Document]:
    return db[CHUNKS].find({"upload_id": upload.id, "offset": {"$lt": upload.length}},
                           sort=[("offset", ASCENDING)])


def finish(db: Database[Document], upload: Resumable, result: dict[str, Any]) -> Resumable:
    """Mark a completing upload done with ``result`` (what the store made of it), then delete
    its pieces: the upload's record stays until it expires, so its client can ask what it became."""
    doc = db[UPLOADS].find_one_and_update({"_id": upload.id},
                                          {"$set": {"state": DONE, "result": result, "lease": None}},
                                          return_document=ReturnDocument.AFTER)
    db[CHUNKS].delete_many({"upload_id": upload.id})
    return _record(doc) if doc is not None else upload


def discard(db: Database[Document], upload_id: str) -> int:
    """Delete an upload (termination, a refused completion): its state first, then its pieces;
    the bytes its pieces held."""
    db[UPLOADS].delete_one({"_id": upload_id})
    held = sum(int(p.get("size", 0)) for p in db[CHUNKS].find({"upload_id": upload_id}, {"size": 1}))
    db[CHUNKS].delete_many({"upload_id": upload_id})
    return held


def parked(db: Database[Document]) -> dict[str, int]:
    """What unfinished uploads hold now: the uploads with bytes here, and those bytes (the
    storage report's ``resumable``)."""
    # From the uploads' offsets (the bytes each holds), on the expiry index: every upload
    # expires, and a walk of the pieces themselves would scan a collection of 1 MiB documents.
    uploads = held = 0
    for doc in db[UPLOADS].find({"expires_at": {"$gte": dt.datetime(1970, 1, 1, tzinfo=dt.UTC)},
                                 "state": {"$ne": DONE}}, {"offset": 1}).hint("expires_at"):
        if int(doc.get("offset") or 0) > 0:
            uploads += 1
            held += int(doc["offset"])
    return {"uploads": uploads, "bytes": held}


@dataclass(frozen=True)
class Expired:
    """What :func:`collect_expired` removed (or would remove)."""

    uploads: list[dict[str, Any]]
    pieces: int
    bytes: int


def collect_expired(db: Database[Document], at: dt.datetime, *, dry_run: bool = False) -> Expired:
    """Expired uploads and every expired piece (an unfinished upload's bytes, or pieces a crash
    left): listed, and removed unless ``dry_run``."""
    uploads = [{"id": doc["_id"], "owner": doc["owner"], "offset": doc["offset"], "length": doc["length"],
                "state": doc["state"], "expires_at": as_utc(doc["expires_at"]).isoformat()}
               for doc in db[UPLOADS].find({"expires_at": {"$lte": at}},
                                           {"owner": 1, "offset": 1, "length": 1, "state": 1,
                                            "expires_at": 1})]
    pieces = 0
    held = 0
    for piece in db[CHUNKS].find({"expires_at": {"$lte": at}}, {"size": 1}):
        pieces += 1
        held += piece.get("size", 0)
    if not dry_run:
        db[UPLOADS].delete_many({"expires_at": {"$lte": at}})
        db[CHUNKS].delete_many({"expires_at": {"$lte": at}})
    return Expired(uploads, pieces, held)


class Resumables:
    """The resumable uploads of a database, as tus and the upload links use them: the library
    door's (``avenue.media``) interface to this module, each call the module function of its
    name on the database it is bound to (gc and the storage report use the maintenance door's
    :func:`collect_expired` and :func:`parked`)."""

    # What its calls answer and refuse, reached through the class (one name through the door).
    Resumable: TypeAlias = Resumable
    Caps: TypeAlias = Caps
    Expired: TypeAlias = Expired
    Busy: TypeAlias = UploadBusy
    NotFound: TypeAlias = UploadNotFound
    CHECKSUM_ALGORITHMS = CHECKSUM_ALGORITHMS
    COMPLETING = COMPLETING
    check_offset = staticmethod(check_offset)
    check_piece_size = staticmethod(check_piece_size)

    def __init__(self, db: Database[Document]) -> None:
        self.db = db

    def create(self, *, owner: str, length: int, target: dict[str, Any], filename: str | None,
               filetype: str | None, lifetime_seconds: int, holder: str | None = None,
               caps: Caps | None = None, at: dt.datetime | None = None) -> Resumable:
        """A new upload (:func:`create`)."""
        return create(self.db, owner=owner, length=length, target=target, filename=filename,
                      filetype=filetype, lifetime_seconds=lifetime_seconds, holder=holder, caps=caps, at=at)

    def find(self, upload_id: str, *, owner: str | None, at: dt.datetime | None = None) -> Resumable:
        """The upload ``owner`` may use (:func:`find`: 404, or 410 once expired)."""
        return find(self.db, upload_id, owner=owner, at=at)

    def append(self, upload: Resumable, offset: int, body: Body, *,
               checksum: tuple[str, bytes] | None = None, min_bytes: int = 0) -> Resumable:
        """Write ``body``'s bytes at ``offset`` (:func:`append`)."""
        return append(self.db, upload, offset, body, checksum=checksum, min_bytes=min_bytes)

    def completing(self, upload: Resumable) -> contextlib.AbstractContextManager[None]:
        """Keep a completing upload's lease while it is stored (:func:`completing`)."""
        return completing(self.db, upload)

    def read_all(self, upload: Resumable) -> bytes:
        """The whole upload's bytes (:func:`read_all`)."""
        return read_all(self.db, upload)

    def finish(self, upload: Resumable, result: dict[str, Any]) -> Resumable:
        """Mark a completing upload done with ``result`` (:func:`finish`)."""
        return finish(self.db, upload, result)

    def discard(self, upload_id: str) -> int:
        """Delete an upload and its pieces: the bytes they held (:func:`discard`)."""
        return discard(self.db, upload_id)

    def collect_expired(self, at: dt.datetime, *, dry_run: bool = False) -> Expired:
        """Expired uploads and pieces, removed unless ``dry_run`` (:func:`collect_expired`)."""
        return collect_expired(self.db, at, dry_run=dry_run)
