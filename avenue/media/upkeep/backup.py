"""backup / restore: one portable tar archive of every bucket and the documents that use them.

Layout (a stream: each file's bytes go from its chunks straight into the tar, and restore
writes them back chunk by chunk, so memory stays constant whatever the sizes):

- ``manifest.json``: format, version, created_at, database, buckets, collections, expected counts;
- per stored file, ``files/<bucket>/<id>.bin`` (its bytes; its PAX ``comment`` carries its
  bucket, id and chunk size as JSON) followed by ``files/<bucket>/<id>.json`` (its files
  document as canonical extended JSON, so ids, dates and number types survive, and the
  sha256 of exactly the bytes written). Coming after the bytes, the entry can carry their
  hash without a second read; restore writes the chunks first and the files document last,
  as uploads do;
- after each bucket's files, ``images/<bucket>.jsonl``: its image records (``<bucket>.images``,
  records.py), extended JSON, one a line; restore writes them after the bucket's files, as an
  upload writes the record last. An archive of version 2 or 1 (made before the records moved
  out of ``.files``) restores into this layout: an original's files document becomes its
  record, and its own chunks, if any, the file of its bytes (``originals.bytes_metadata``);
- ``collections/<name>.jsonl`` for every collection the app's owners of referring documents
  keep (``shop_products``, ``page_content``: each owner names its own,
  avenue/media/references.py; backup and restore are handed the app's Media, which has them),
  then ``legacy_paths``, then the collections the caller has the archive carry (``carried``: the
  accounts, ``users``, which ops names with their rules, avenue/ops/backup.py), extended JSON,
  one document a line;
- ``counts.json``: what was written. Restore refuses an archive without it (truncated).

A carried collection says what of each of its documents is saved and what a restore writes
back (the accounts: no password hash unless asked, no session epoch); the manifest's ``notes``
say so in words. Audit logs, rate-limit counters and cache tombstones are not part of a
backup. Neither are renditions on request (``media_renditions``), on purpose: they are derived
from the originals and rendered again on their first request after a restore (the manifest
says so), so an archive carries no bytes a restore would only have to evict under the byte
budget.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import tarfile
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from typing import IO, Any, BinaryIO, Protocol

from bson import ObjectId, json_util
from bson.json_util import CANONICAL_JSON_OPTIONS, JSONOptions
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from avenue import db as database
from avenue.clock import now
from avenue.db import Document, shard_key
from avenue.errors import AvenueError, Conflict
from avenue.media.buckets import BUCKETS, STORED, TRASH
from avenue.media.core import Media
from avenue.media.records import images, images_name, is_image, own_length
from avenue.media.references import Referrers
from avenue.media.store.indexes import ensure_indexes
from avenue.media.store.scan import (
    count_files,
    delete_chunks,
    gridfs_collections,
    has_file,
    insert_chunks,
    insert_file,
    rename_chunks,
    walk_files,
)
from avenue.media.store.storage import CHUNK_SIZE, delete_file, read_range

FORMAT = "avenue-backup"
# 2: a file's bucket, id and chunk size in its PAX header's ``comment`` (JSON). Version 1 put
# them under keywords of their own (``avenue.bucket``...), which stock GNU tar warns about once
# a file ("Ignoring unknown extended header keyword"): ``tar tf`` of a backup printed hundreds
# of lines. POSIX says a reader ignores ``comment``, and GNU tar and bsdtar do so quietly.
# Restore reads both; an earlier release refuses a version 2 archive by its version.
# 3: the image records, ``images/<bucket>.jsonl`` (an earlier release would restore the files
# and drop the records, so it must refuse it by its version).
VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
HEAD = "avenue"  # the key of a file's facts in its comment: {"avenue": {"bucket", "id", "chunk_size"}}
# After the owners' collections (see collections()): the legacy import's records.
OWN_COLLECTIONS = (database.LEGACY_PATHS,)
LOAD_OPTIONS = JSONOptions(json_mode=CANONICAL_JSON_OPTIONS.json_mode, tz_aware=True, tzinfo=dt.UTC)
SPOOL_BYTES = 8 * 1024 * 1024  # collection files are spooled to disk beyond this
INSERT_BATCH = 32  # chunks per insert while restoring (~8 MB)

Progress = Callable[[str, int, int], None]


class Carried(Protocol):
    """A collection the archive carries beside the media's (ops' accounts, avenue/ops/backup.py):
    what of each document a backup saves, and what a restore writes back."""

    @property
    def name(self) -> str: ...

    def saved(self, doc: Document) -> Document:
        """The document as the archive keeps it."""
        ...

    def restored(self, collection: Collection[Document], doc: Document) -> Document:
        """The document a restore writes, from the archive's and what ``collection`` holds."""
        ...


def collections(refs: Referrers, carried: Sequence[Carried] = ()) -> tuple[str, ...]:
    """The collections a backup saves and a restore writes, in order: those the owners of
    referring documents keep (``refs``: the app's; products, pages), then
    :data:`OWN_COLLECTIONS`, then the ``carried`` ones."""
    return (*refs.collections(), *OWN_COLLECTIONS, *(kept.name for kept in carried))


class ArchiveError(AvenueError):
    """The archive is not one restore can read (not ours, truncated, damaged)."""

    status, code = 422, "invalid_archive"


def _member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    """The bytes of an archive member restore reads; ArchiveError when it is not a regular
    file (a directory or a link where ours has a file: not an archive avenue backup made;
    ``extractfile`` gives None, which was read as if it were a file and raised AttributeError)."""
    reader = tar.extractfile(member)
    if reader is None:
        raise ArchiveError(f"{member.name} is not a file in this archive: it was not made by avenue backup.")
    return reader


def _dumps(value: object) -> str:
    return json_util.dumps(value, json_options=CANONICAL_JSON_OPTIONS)


def _loads(text: str | bytes) -> Any:  # whatever the JSON holds
    return json_util.loads(text, json_options=LOAD_OPTIONS)


def _member_name(bucket: str, file_id: object) -> str:
    if isinstance(file_id, ObjectId):
        stem = str(file_id)
    else:
        stem = "id-" + sha256(_dumps(file_id).encode()).hexdigest()[:24]
    return f"files/{bucket}/{stem}"


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(dt.datetime.now(dt.UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


class _ChunkReader(io.RawIOBase):
    """One stored file as exactly its chunks' bytes (``length`` of them: every files document
    is a whole GridFS file), read a few chunks at a time and hashed.

    If the chunks end early (the file was deleted while the backup ran, or is damaged), the
    rest is zeros, so the archive stays well-formed, and ``error`` says so.
    """

    def __init__(self, db: Database[Document], bucket: str, doc: dict[str, Any]) -> None:
        length = int(doc.get("length") or 0)
        self._pieces = read_range(db, bucket, doc["_id"], length, doc.get("chunkSize") or CHUNK_SIZE)
        self._current = memoryview(b"")
        self._remaining: int = length
        self.sha256 = sha256()
        self.error: str | None = None

    def readable(self) -> bool:
        return True

    # io hands a bytearray or a memoryview of bytes (any writable buffer, says typeshed: one
    # without len() or slicing).
    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._remaining == 0:
            return 0
        if not self._current and self.error is None:
            try:
                self._current = memoryview(next(self._pieces))
            except StopIteration:
                self.error = "the chunks end before the file's length"
            except OSError as error:
                self.error = str(error)
        if not self._current:
            size = min(len(buffer), self._remaining)
            buffer[:size] = bytes(size)
            self._remaining -= size
            return size
        size = min(len(buffer), len(self._current), self._remaining)
        buffer[:size] = self._current[:size]
        self.sha256.update(self._current[:size])
        self._current = self._current[size:]
        self._remaining -= size
        return size

    def close(self) -> None:
        self._pieces.close()
        super().close()


@dataclass
class BackupReport:
    """What a backup wrote."""

    database: str
    files: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    images: dict[str, int] = field(default_factory=dict)  # image records per bucket
    documents: dict[str, int] = field(default_factory=dict)
    incomplete: list[dict[str, Any]] = field(default_factory=list)
    checksum_mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.incomplete

    def summary(self) -> dict[str, Any]:
        """The whole report as JSON-ready data."""
        return {"database": self.database, "files": self.files, "bytes": self.bytes, "images": self.images,
                "documents": self.documents, "incomplete": self.incomplete,
                "checksum_mismatches": self.checksum_mismatches, "ok": self.ok}

    def summary_line(self) -> str:
        return (f"backup: {sum(self.files.values())} files ({sum(self.bytes.values())} bytes), "
                f"{sum(self.images.values())} images, {sum(self.documents.values())} documents; "
                f"{len(self.incomplete)} files could not be read, "
                f"{len(self.checksum_mismatches)} differ from their recorded sha256")


def backup(db: Database[Document], out: BinaryIO, *, media: Media, progress: Progress | None = None,
           carried: Sequence[Carried] = (), notes: Mapping[str, str] | None = None) -> BackupReport:
    """Write the archive (see the module doc) to the binary stream ``out``, with the collections
    of ``media``'s owners of referring documents (the app's; a ``Media()`` without owners
    raises before anything is written) and the ``carried`` ones; ``notes``: what the manifest
    says of those."""
    saved = collections(media.referrers(db), carried)
    progress = progress or (lambda phase, done, total: None)
    report = BackupReport(db.name)
    expected_files = {bucket: count_files(db, bucket) for bucket in STORED}
    expected_images = {bucket: images(db, bucket).count_documents({}) for bucket in STORED}
    saving = {kept.name: kept.saved for kept in carried}
    expected_docs = {name: db[name].count_documents({}) for name in saved}
    manifest = {
        "format": FORMAT, "version": VERSION, "created_at": now().isoformat(),
        "database": db.name, "buckets": {**BUCKETS, "trash": TRASH}, "collections": list(saved),
        "expected": {"files": expected_files, "images": expected_images, "documents": expected_docs},
        **(notes or {}),
        "renditions": "not included: rendered again on their first request",
    }
    total = sum(expected_files.values())
    done = 0
    # typeshed's tarfile.open() lacks copybufsize, which open() hands on to TarFile.
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,  # type: ignore[call-overload]
                      copybufsize=CHUNK_SIZE) as tar:
        _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=2).encode())
        for bucket in STORED:  # the trash too: what is restorable now stays restorable
            report.files[bucket] = report.bytes[bucket] = 0
            # Small batches: the cursor must not sit idle (and time out) while big files stream.
            for doc in walk_files(db, bucket, batch=16):
                _backup_file(db, tar, bucket, doc, report)
                done += 1
                progress("Backing up files", done, max(total, done))
            # Its records after its files: a restore writes them last, as an upload does.
            report.images[bucket] = _backup_collection(db, tar, images_name(bucket), None,
                                                       member=_images_member(bucket))
        for name in saved:
            report.documents[name] = _backup_collection(db, tar, name, saving.get(name))
        counts = {"files": report.files, "bytes": report.bytes, "images": report.images,
                  "documents": report.documents, "incomplete": report.incomplete}
        _add_bytes(tar, "counts.json", json.dumps(counts, indent=2).encode())
    return report


def _backup_file(db: Database[Document], tar: tarfile.TarFile, bucket: str, doc: dict[str, Any],
                 report: BackupReport) -> None:
    name = _member_name(bucket, doc["_id"])
    info = tarfile.TarInfo(name + ".bin")
    info.size = int(doc.get("length") or 0)
    info.mtime = int(doc["uploadDate"].timestamp()) if isinstance(doc.get("uploadDate"), dt.datetime) else 0
    info.pax_headers = {"comment": json.dumps({HEAD: {
        "bucket": bucket, "id": _dumps(doc["_id"]), "chunk_size": int(doc.get("chunkSize") or CHUNK_SIZE)}})}
    raw = _ChunkReader(db, bucket, doc)
    with io.BufferedReader(raw, buffer_size=CHUNK_SIZE) as stream:
        tar.addfile(info, stream)
    digest = raw.sha256.hexdigest()
    entry = {"bucket": bucket, "file": doc, "sha256": digest, "complete": raw.error is None}
    if raw.error is not None:
        entry["error"] = raw.error
        report.incomplete.append({"bucket": bucket, "id": str(doc["_id"]), "error": raw.error})
    else:
        report.files[bucket] += 1
        report.bytes[bucket] += int(doc.get("length") or 0)
        recorded = (doc.get("metadata") or {}).get("sha256")
        if recorded and recorded != digest:
            report.checksum_mismatches.append({"bucket": bucket, "id": str(doc["_id"]),
                                               "recorded": recorded, "actual": digest})
    _add_bytes(tar, name + ".json", _dumps(entry).encode())


def _images_member(bucket: str) -> str:
    """The archive member holding ``bucket``'s image records."""
    return f"images/{bucket}.jsonl"


def _backup_collection(db: Database[Document], tar: tarfile.TarFile, name: str,
                       saved: Callable[[Document], Document] | None, *, member: str | None = None) -> int:
    count = 0
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        for doc in db[name].find().sort("_id", 1):
            if saved is not None:
                doc = saved(doc)
            spool.write(_dumps(doc).encode() + b"\n")
            count += 1
        info = tarfile.TarInfo(member or f"collections/{name}.jsonl")
        info.size = spool.tell()
        info.mtime = int(dt.datetime.now(dt.UTC).timestamp())
        spool.seek(0)
        tar.addfile(info, spool)
    return count


# --- restore --------------------------------------------------------------------------------


@dataclass
class RestoreReport:
    """What a restore wrote, and what it refused."""

    database: str
    files: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    images: dict[str, int] = field(default_factory=dict)  # image records per bucket
    documents: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    complete_archive: bool = False

    @property
    def ok(self) -> bool:
        return self.complete_archive and not self.failures and not self.conflicts

    def summary(self) -> dict[str, Any]:
        """The whole report as JSON-ready data."""
        return {"database": self.database, "files": self.files, "bytes": self.bytes, "images": self.images,
                "documents": self.documents, "failures": self.failures, "conflicts": self.conflicts,
                "complete_archive": self.complete_archive, "ok": self.ok}

    def summary_line(self) -> str:
        line = (f"restore: {sum(self.files.values())} files ({self.bytes} bytes), "
                f"{sum(self.images.values())} images, {sum(self.documents.values())} documents restored; "
                f"{len(self.failures)} failures, "
                f"{len(self.conflicts)} conflicts")
        return line if self.complete_archive else line + "; the archive is incomplete"


def occupied(db: Database[Document], written: Sequence[str]) -> dict[str, int]:
    """The collections a restore would write to (the buckets' files, chunks and image records,
    and ``written``) that already hold documents."""
    names = [name for bucket in STORED for name in (*gridfs_collections(bucket), images_name(bucket))]
    counts = {name: db[name].estimated_document_count() for name in [*names, *written]}
    return {name: count for name, count in counts.items() if count}


@dataclass
class _Pending:
    """A file whose chunks are written and whose files document has not been read yet."""

    bucket: str
    file_id: object
    chunks_id: object  # the file id, or a temporary one when a file with that id exists (--force)
    length: int
    sha256: str


class _Restorer:
    def __init__(self, db: Database[Document], force: bool, progress: Progress | None,
                 written: Sequence[str], carried: Sequence[Carried]) -> None:
        self.db = db
        self.force = force
        self.written = written  # the collections a restore writes (collections())
        self.carried = carried
        self.progress = progress or (lambda phase, done, total: None)
        self.report = RestoreReport(db.name)
        self.expected_files = 0
        self.done = 0
        self.pending: _Pending | None = None
        self.trailer: dict[str, Any] | None = None
        self.entries: dict[str, int] = {}  # files entries read per bucket
        self.records: dict[str, int] = {}  # image records read per bucket

    def run(self, source: BinaryIO) -> RestoreReport:
        try:
            tar = tarfile.open(fileobj=source, mode="r|*")
        except tarfile.TarError as error:
            raise ArchiveError(f"This is not a readable archive: {error}") from error
        seen_manifest = False
        try:
            for member in tar:
                name = member.name
                if not seen_manifest:
                    if name != "manifest.json":
                        raise ArchiveError("This archive has no manifest: it was not made by avenue backup.")
                    self._manifest(_member(tar, member).read())
                    seen_manifest = True
                elif name.startswith("files/") and name.endswith(".bin"):
                    self._abandon_pending("no files entry follows its bytes")
                    self._write_chunks(member, _member(tar, member))
                elif name.startswith("files/") and name.endswith(".json"):
                    self._finish_file(_loads(_member(tar, member).read()))
                elif name.startswith("images/") and name.endswith(".jsonl"):
                    self._restore_images(name[len("images/"):-len(".jsonl")], _member(tar, member))
                elif name.startswith("collections/") and name.endswith(".jsonl"):
                    collection = name[len("collections/"):-len(".jsonl")]
                    self._restore_collection(collection, _member(tar, member))
                elif name == "counts.json":
                    self.trailer = json.loads(_member(tar, member).read())
        except (tarfile.TarError, EOFError) as error:
            self.report.failures.append({"error": f"the archive is damaged or truncated: {error}"})
        finally:
            self._abandon_pending("the archive ends inside this file")
            tar.close()
        if not seen_manifest:
            raise ArchiveError("This archive is empty or has no manifest.")
        self._check_trailer()
        return self.report

    def _manifest(self, data: bytes) -> None:
        manifest = json.loads(data)
        if manifest.get("format") != FORMAT or manifest.get("version") not in READABLE_VERSIONS:
            raise ArchiveError(f"Unknown archive format {manifest.get('format')!r} "
                               f"version {manifest.get('version')!r}.")
        self.expected_files = sum(manifest.get("expected", {}).get("files", {}).values())

    def _write_chunks(self, member: tarfile.TarInfo, stream: IO[bytes]) -> None:
        bucket, file_id, chunk_size = _file_head(member)
        chunks_id = file_id
        if has_file(self.db, bucket, file_id):
            chunks_id = ObjectId()  # --force: keep the existing file until this one is verified
        delete_chunks(self.db, bucket, chunks_id)  # leftovers of an earlier, interrupted restore
        # Pending from the first chunk on, so a damaged or truncated archive leaves no chunks behind.
        self.pending = _Pending(bucket, file_id, chunks_id, 0, "")
        digest = sha256()
        length = 0
        batch = []
        n = 0
        while True:
            data = stream.read(chunk_size)
            if not data:
                break
            digest.update(data)
            length += len(data)
            batch.append({"files_id": chunks_id, "n": n, "data": data})
            n += 1
            if len(batch) == INSERT_BATCH:
                insert_chunks(self.db, bucket, batch)
                batch = []
        if batch:
            insert_chunks(self.db, bucket, batch)
        self.pending.length, self.pending.sha256 = length, digest.hexdigest()

    def _abandon_pending(self, reason: str) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            delete_chunks(self.db, pending.bucket, pending.chunks_id)
            self.report.failures.append({"bucket": pending.bucket, "id": str(pending.file_id),
                                         "error": reason})

    def _finish_file(self, entry: dict[str, Any]) -> None:
        pending, self.pending = self.pending, None
        doc = entry["file"]
        if pending is None or pending.file_id != doc["_id"] or pending.bucket != entry["bucket"]:
            if pending is not None:
                self.pending = pending
                self._abandon_pending("its files entry is missing")
            self.report.failures.append({"bucket": entry.get("bucket"), "id": str(doc.get("_id")),
                                         "error": "files entry without bytes"})
            return
        self.entries[pending.bucket] = self.entries.get(pending.bucket, 0) + 1
        problem = None
        if not entry.get("complete", False):
            problem = f"not backed up: {entry.get('error', 'unreadable')}"
        # own_length: an original replaced in place, in an archive made before the records
        # moved out of .files, has a length and no chunks of its own.
        elif pending.sha256 != entry["sha256"] or pending.length != own_length(doc):
            problem = (f"the bytes in the archive hash to {pending.sha256} ({pending.length} bytes), "
                       f"the backup recorded {entry['sha256']} ({own_length(doc)} bytes)")
        if problem is not None:
            delete_chunks(self.db, pending.bucket, pending.chunks_id)
            self.report.failures.append({"bucket": pending.bucket, "id": str(doc["_id"]), "error": problem})
            self._step()
            return
        record = None
        if is_image(doc):  # an archive from before the records moved out of .files
            record, doc = doc, _bytes_file(doc, pending.sha256)
        if doc is None:  # replaced in place: no bytes of its own, its content file holds them
            delete_chunks(self.db, pending.bucket, pending.chunks_id)
        elif not self._insert_file(pending, doc):
            self._step()
            return
        if record is not None:
            self._restore_record(pending.bucket, record)
        self._step()

    def _insert_file(self, pending: _Pending, doc: Document) -> bool:
        """Write the files document of ``pending``'s chunks; False (a conflict) when another
        file holds its unique key."""
        if pending.chunks_id != pending.file_id:
            delete_file(self.db, pending.bucket, pending.file_id)
            rename_chunks(self.db, pending.bucket, pending.chunks_id, pending.file_id)
        try:
            # Last, as uploads do: a reader never sees a half file.
            insert_file(self.db, pending.bucket, doc)
        except DuplicateKeyError as error:
            delete_chunks(self.db, pending.bucket, pending.file_id)
            self.report.conflicts.append({
                "bucket": pending.bucket, "id": str(doc["_id"]),
                "error": f"another file holds the same unique key: {error.details}"})
            return False
        self.report.files[pending.bucket] = self.report.files.get(pending.bucket, 0) + 1
        self.report.bytes += pending.length
        return True

    def _restore_images(self, bucket: str, stream: IO[bytes]) -> None:
        if bucket not in STORED:
            self.report.failures.append({"bucket": bucket, "error": "image records of an unknown bucket"})
            return
        for line in stream:
            if line.strip():
                self._restore_record(bucket, _loads(line))

    def _restore_record(self, bucket: str, doc: Document) -> None:
        """Write one image record (by ``_id``: over what is there, with ``--force``)."""
        self.records[bucket] = self.records.get(bucket, 0) + 1
        try:
            images(self.db, bucket).replace_one({"_id": doc["_id"]}, doc, upsert=True)
        except DuplicateKeyError as error:
            self.report.conflicts.append({"bucket": bucket, "id": str(doc["_id"]), "error":
                                          f"another image holds the same unique key: {error.details}"})
            return
        self.report.images[bucket] = self.report.images.get(bucket, 0) + 1

    def _step(self) -> None:
        self.done += 1
        self.progress("Restoring files", self.done, max(self.expected_files, self.done))

    def _restore_collection(self, name: str, stream: IO[bytes]) -> None:
        if name not in self.written:
            self.report.failures.append({"collection": name, "error": "not a collection restore writes"})
            return
        collection = self.db[name]
        restored = next((kept.restored for kept in self.carried if kept.name == name), None)
        count = 0
        for line in stream:
            if not line.strip():
                continue
            doc = _loads(line)
            if restored is not None:
                doc = restored(collection, doc)
            try:
                # The shard key in the filter too: a sharded cluster refuses an upsert without it.
                selector = {"_id": doc["_id"], **{field: doc.get(field) for field in (shard_key(name) or ())}}
                collection.replace_one(selector, doc, upsert=True)
            except DuplicateKeyError as error:
                self.report.conflicts.append({"collection": name, "id": str(doc["_id"]),
                                              "error": f"another document holds the same unique key: "
                                                       f"{error.details}"})
                continue
            count += 1
        self.report.documents[name] = count

    def _check_trailer(self) -> None:
        if self.trailer is None:
            self.report.failures.append({"error": "the archive ends before its counts: it is truncated"})
            return
        self.report.complete_archive = True
        for bucket, count in self.trailer.get("files", {}).items():
            if self.entries.get(bucket, 0) < count:
                self.report.failures.append({
                    "bucket": bucket, "error": f"the archive holds {self.entries.get(bucket, 0)} of the "
                                               f"{count} files its counts list"})
        for bucket, count in self.trailer.get("images", {}).items():
            if self.records.get(bucket, 0) < count:
                self.report.failures.append({
                    "bucket": bucket, "error": f"the archive holds {self.records.get(bucket, 0)} of the "
                                               f"{count} image records its counts list"})


def _bytes_file(original: Document, digest: str) -> Document | None:
    """The files document of the bytes an original's files document of an archive made before
    the records moved out held in its own chunks (``digest``: their SHA-256), shaped as an
    upload writes them (``originals.bytes_metadata``: a variant named ``original``); None for
    one replaced in place (``metadata.content``: no bytes of its own, its content file is an
    entry of its own)."""
    meta = original.get("metadata") or {}
    if meta.get("content"):
        return None
    image_id = original["_id"]
    return {**{name: value for name, value in original.items() if name != "metadata"}, "metadata": {
        "role": "variant", "variant": "original", "key": f"{image_id}/original", "original_id": image_id,
        "format": meta.get("format"), "content_type": meta.get("content_type"), "sha256": digest,
        "width": meta.get("width"), "height": meta.get("height")}}


def _file_head(member: tarfile.TarInfo) -> tuple[str, Any, int]:
    """A file entry's bucket, id and chunk size: from its PAX ``comment`` (version 2), else
    from the ``avenue.*`` keywords a version 1 archive wrote."""
    headers = member.pax_headers
    try:
        if "comment" in headers:
            head = json.loads(headers["comment"])[HEAD]
            bucket, file_id, chunk_size = head["bucket"], head["id"], head["chunk_size"]
        else:
            bucket = headers.get("avenue.bucket")
            file_id, chunk_size = headers["avenue.id"], headers["avenue.chunk_size"]
        if bucket not in STORED:
            raise ArchiveError(f"{member.name}: unknown bucket {bucket!r}.")
        return bucket, _loads(file_id), int(chunk_size)
    except (KeyError, TypeError, ValueError) as error:
        raise ArchiveError(f"{member.name}: its bucket, id or chunk size is missing ({error}).") from None


def restore(db: Database[Document], source: BinaryIO, *, media: Media, force: bool = False,
            progress: Progress | None = None, carried: Sequence[Carried] = ()) -> RestoreReport:
    """Restore an archive from the binary stream ``source``: the collections of ``media``'s
    owners of referring documents (the app's; a ``Media()`` without owners raises before
    anything is written) and the ``carried`` ones (another collection's entry is a failure, as
    it was not saved by their rules); refuses a non-empty database unless ``force``. The
    command (avenue/ops/commands.py) audits the restore."""
    written = collections(media.referrers(db), carried)
    if not force:
        found = occupied(db, written)
        if found:
            listed = ", ".join(f"{name}: {count}" for name, count in sorted(found.items()))
            raise Conflict(f"The database {db.name!r} is not empty ({listed}); restore needs an empty "
                           "database, or --force to restore over what is there.", code="database_not_empty")
    database.ensure_indexes(db)
    ensure_indexes(db)
    return _Restorer(db, force, progress, written, carried).run(source)
