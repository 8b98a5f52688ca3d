"""fsck: check every file of every bucket against its chunks, length and sha256, and its records' links.

Per file of ``<bucket>.files`` (checked in groups: three queries per hundred files): chunk
numbers contiguous from 0 with no duplicates, every chunk but the last exactly ``chunkSize``
bytes, the chunks adding up to ``length``, the sha256 of the bytes (streamed a few chunks at a
time: constant memory) equal to ``metadata.sha256``, and a variant's original (an image's
bytes are a file like a variant, named ``original``) present as a record in ``<bucket>.images``;
the renditions on request's files (``media_renditions``) too. Per image record of
``<bucket>.images`` (a second walk, two queries per hundred): the file holding its bytes
(``metadata.content.id``, else its own id) present in ``<bucket>.files`` (that file is whole
when the first walk found it so), and every variant it lists present. Per bucket: the unique
``{files_id, n}`` chunk index and the unique ``metadata.key`` index of the files and of the
records (the renditions bucket: its own unique index). The renditions' running total (what
the byte budget evicts by, kept with every store and removal) against a count of the bucket.

Faults (``problems``: the report is not ``ok``, the command exits 1) are apart from states
(``states``: reported and counted, never a fault). The one state: ``pending_variant``, a
variant its image lists *pending*, not rendered yet (avenue/media/store/pending.py): the
normal state right after an upload's answer, until its render after the answer or its first
GET; for good in the trash, whose copy of an image trashed before its render keeps them
pending until it is restored.

``--repair`` (``repair=True``), then checks everything again and reports what remains:
- a file whose only fault is its ``length`` (chunks intact, sha256 matches): length corrected;
- a variant that is damaged, or listed by its image but missing: rendered again from the
  image's intact bytes (same id, so every URL handed out still works); the pending variants
  of served images (a worker that died between storing an upload and rendering them, or a
  render still due) are rendered under the claim a GET of one shares, so each is rendered
  once (the trash's stay pending: rendered once restored);
- an image whose bytes are damaged or missing (``missing_content``): removed with its
  variants (documents that referenced it are listed, so their images can be uploaded again);
  a damaged file that is not an image's current bytes nor a variant of ours, a damaged
  rendition on request (rendered again on its next request), or a variant whose image is
  gone: removed;
- missing indexes: created (``avenue.db.ensure_indexes`` and ``avenue.media.store.indexes.ensure_indexes``);
- a wrong renditions total: counted again and replaced (``recount_bucket``).
Nothing is quarantined: a damaged file cannot be served, and its bytes are in the backups.
Chunks with no files document are not files; ``gc`` collects them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import PyMongoError

from avenue import db as database
from avenue.db import Document
from avenue.errors import AvenueError
from avenue.media.buckets import RENDITIONS, STORED, TRASH
from avenue.media.core import Media
from avenue.media.effects.counters import count_bucket
from avenue.media.effects.counters import of as bucket_counters
from avenue.media.effects.counters import recount as recount_bucket
from avenue.media.effects.invalidation import invalidate
from avenue.media.records import bytes_of, variant_ids
from avenue.media.references import Referrers
from avenue.media.store.indexes import ensure_indexes
from avenue.media.store.originals import delete_image
from avenue.media.store.regenerate import regenerate_variants
from avenue.media.store.renditions import remove as remove_renditions
from avenue.media.store.scan import (
    chunks_of,
    count_files,
    count_images,
    files_by_id,
    has_chunk_index,
    image,
    images_by_id,
    missing_indexes,
    set_length,
    walk_files,
    walk_images,
)
from avenue.media.store.storage import CHUNK_SIZE, delete_file

Progress = Callable[[str, int, int], None]

# Problems that mean the file's bytes are damaged (as opposed to a missing link).
DAMAGE = {"missing_chunks", "duplicate_chunk", "short_chunk", "length_mismatch", "sha256_mismatch"}


@dataclass
class _Finding:
    bucket: str
    doc: dict[str, Any]
    problems: list[dict[str, Any]]
    states: list[dict[str, Any]] = field(default_factory=list)  # reported, never a fault
    chunk_bytes: int = 0
    sha_ok: bool = False
    record: bool = False  # an image's record of ``<bucket>.images`` (else a files document)

    @property
    def codes(self) -> set[str]:
        return {problem["code"] for problem in self.problems}

    @property
    def role(self) -> str | None:
        return (self.doc.get("metadata") or {}).get("role")

    @property
    def image(self) -> bool:
        """Whether the document checked is an image's record (not a file)."""
        return self.record

    @property
    def original_id(self) -> Any:
        """The image a variant (or an image's bytes) belongs to."""
        return (self.doc.get("metadata") or {}).get("original_id")

    @property
    def holds_bytes(self) -> bool:
        """Whether the file checked holds an image's bytes (a file like a variant, named
        ``original``: originals.bytes_metadata)."""
        meta = self.doc.get("metadata") or {}
        return not self.record and meta.get("role") == "variant" and meta.get("variant") == "original"

    def to_dict(self, what: str = "problems") -> dict[str, Any]:
        """The file and its ``problems`` (or its ``states``) as JSON-ready data."""
        return {"bucket": self.bucket, "id": str(self.doc["_id"]), "filename": self.doc.get("filename"),
                "role": self.role, what: self.problems if what == "problems" else self.states}


@dataclass
class FsckReport:
    """What fsck found, what it repaired and what remains."""

    repair: bool
    files_checked: int = 0
    images_checked: int = 0  # image records (<bucket>.images), apart from the files
    bytes_checked: int = 0
    findings: list[_Finding] = field(default_factory=list)  # files with problems
    states: list[_Finding] = field(default_factory=list)  # files with states (a file may be in both)
    index_problems: list[dict[str, Any]] = field(default_factory=list)
    total_problems: list[dict[str, Any]] = field(default_factory=list)  # a running total that is wrong
    repairs: list[dict[str, Any]] = field(default_factory=list)
    remaining: FsckReport | None = None  # the check after repairing

    @property
    def checked(self) -> int:
        """Files and image records checked: what the progress and the checkpoints count."""
        return self.files_checked + self.images_checked

    @property
    def problem_count(self) -> int:
        return len(self.findings) + len(self.index_problems) + len(self.total_problems)

    @property
    def state_counts(self) -> dict[str, int]:
        """How many of each state (``pending_variant``: one per pending variant)."""
        counts: dict[str, int] = {}
        for finding in self.states:
            for state in finding.states:
                counts[state["code"]] = counts.get(state["code"], 0) + 1
        return counts

    @property
    def ok(self) -> bool:
        """No problem left (after the repair, when one was made)."""
        final = self.remaining if self.remaining is not None else self
        return final.problem_count == 0

    def summary(self) -> dict[str, Any]:
        """The whole report as JSON-ready data."""
        body = {"repair": self.repair, "ok": self.ok, "files_checked": self.files_checked,
                "images_checked": self.images_checked, "bytes_checked": self.bytes_checked,
                "problems": [f.to_dict() for f in self.findings],
                "index_problems": self.index_problems, "total_problems": self.total_problems,
                "state_counts": self.state_counts, "states": [f.to_dict("states") for f in self.states],
                "repairs": self.repairs}
        if self.remaining is not None:
            left = self.remaining
            body["remaining"] = [*(f.to_dict() for f in left.findings), *left.index_problems,
                                 *left.total_problems]
            body["remaining_state_counts"] = left.state_counts
        return body

    def summary_line(self) -> str:
        line = (f"fsck: {self.files_checked} files ({self.bytes_checked} bytes) and {self.images_checked} "
                f"image records checked, "
                f"{len(self.findings)} with problems, {len(self.index_problems)} index problems")
        if self.total_problems:
            line += f", {len(self.total_problems)} wrong totals"
        final = self.remaining if self.remaining is not None else self
        if pending := final.state_counts.get("pending_variant"):
            line += f", {pending} variants pending (a state, not a problem)"
        if self.remaining is not None:
            line += f"; {len(self.repairs)} repairs, {self.remaining.problem_count} problems remain"
        return line


def _check_bytes(bucket: str, doc: dict[str, Any], chunks: Iterator[dict[str, Any]]) -> _Finding:
    """Check one file against its chunks (``chunks``: its own, in ``n`` order, streamed)."""
    length, size = _length(doc), doc.get("chunkSize") or CHUNK_SIZE
    finding = _Finding(bucket, doc, [])
    digest = sha256()
    total = 0
    next_n = 0
    last_size = None  # size of the previous chunk, checked once we know it was not the last
    for chunk in chunks:
        n, data = chunk["n"], bytes(chunk["data"])
        if n < next_n:
            finding.problems.append({"code": "duplicate_chunk", "detail": f"chunk {n} is stored twice"})
            continue
        if n > next_n:
            finding.problems.append({"code": "missing_chunks",
                                     "detail": f"chunks {next_n} to {n - 1} are missing"})
        if last_size is not None and last_size != size:
            finding.problems.append({"code": "short_chunk",
                                     "detail": f"chunk {next_n - 1} has {last_size} bytes, not {size}"})
        digest.update(data)
        total += len(data)
        last_size = len(data)
        next_n = n + 1
    expected = math.ceil(length / size) if length else 0
    if next_n < expected:
        finding.problems.append({"code": "missing_chunks",
                                 "detail": f"chunks {next_n} to {expected - 1} are missing"})
    if total != length:
        finding.problems.append({
            "code": "length_mismatch",
            "detail": f"the files document says {length} bytes, the chunks hold {total}"})
    stored = (doc.get("metadata") or {}).get("sha256")  # none: a file not of ours, its bytes unchecked
    finding.sha_ok = bool(stored) and digest.hexdigest() == stored
    if stored and not finding.sha_ok:
        finding.problems.append({"code": "sha256_mismatch",
                                 "detail": f"the bytes hash to {digest.hexdigest()}, metadata says {stored}"})
    finding.chunk_bytes = total
    return finding


def _length(doc: dict[str, Any]) -> int:
    return int(doc.get("length") or 0)


def _fetch(docs: list[dict[str, Any]]) -> int:
    """How many chunks a read of the group's chunks may bring at once: :data:`FETCH_BYTES`
    of its largest chunk (at least 4). Four a read, whatever their size, was a round trip
    per four small files (62 s per 100,000 on the embedded database, issue 65)."""
    largest = max((min(_length(doc), int(doc.get("chunkSize") or CHUNK_SIZE)) for doc in docs), default=0)
    return max(4, min(FETCH_CHUNKS, FETCH_BYTES // max(1, largest)))


def _check_batch(db: Database[Document], bucket: str, docs: list[dict[str, Any]], *,
                 contiguous: bool = False) -> list[_Finding]:
    """Check a batch of files (in ``_id`` order) in a few queries, whatever its size: one
    streamed read of all their chunks (one range of the chunk index when the batch is
    ``contiguous``, every file between its first and last id), lookups of the variants'
    originals and of the originals' listed variants. (One file at a time took two round
    trips per file: 4.8 ms a file on the embedded database, 80 minutes for a million; over a
    network, worse.)"""
    # Sorted like the batch ({files_id, n} index): each file's chunks follow the previous
    # file's, so the stream is consumed in step, at most FETCH_BYTES of chunks in memory.
    stream = chunks_of(db, bucket, [doc["_id"] for doc in docs], contiguous=contiguous,
                            fetch=_fetch(docs))
    findings: list[_Finding] = []
    try:
        pending = next(stream, None)

        def own(file_id: Any) -> Iterator[dict[str, Any]]:
            nonlocal pending
            while pending is not None and pending["files_id"] == file_id:
                yield pending
                pending = next(stream, None)

        for doc in docs:
            findings.append(_check_bytes(bucket, doc, own(doc["_id"])))
    finally:
        stream.close()
    # A variant's image (and an image's bytes' own): a record of <bucket>.images.
    named = {f.original_id for f in findings if f.role == "variant"}
    originals = set(images_by_id(db, bucket, named, {"_id": 1}))
    for finding in findings:
        if finding.role == "variant" and finding.original_id not in originals:
            finding.problems.append({"code": "orphan_variant",
                                     "detail": f"its original {finding.original_id} does not exist"})
    return findings


def _check_records(db: Database[Document], bucket: str, records: list[dict[str, Any]]) -> list[_Finding]:
    """Check a batch of image records (in ``_id`` order) in one lookup, whatever its size: the
    file holding each one's bytes and every variant it lists are present in ``.files`` (their
    chunks are the files walk's to check)."""
    findings = [_Finding(bucket, record, [], record=True) for record in records]
    wanted = [file_id for record in records for file_id in [bytes_of(record).id, *variant_ids(record)]]
    present = set(files_by_id(db, bucket, wanted, {"_id": 1}))
    for finding in findings:
        meta = finding.doc.get("metadata") or {}
        for name, formats in (meta.get("variants") or {}).items():
            for fmt, info in formats.items():
                if info["id"] in present:
                    continue
                if info.get("pending"):
                    finding.states.append({"code": "pending_variant", "detail": (
                        f"variant {name}.{fmt} ({info['id']}) is listed, not rendered yet " + (
                            "(kept so in the trash: rendered once restored)" if bucket == TRASH else
                            "(after its upload's answer, by its first request or by --repair)"))})
                else:
                    finding.problems.append({"code": "missing_variant", "detail":
                                             f"variant {name}.{fmt} ({info['id']}) does not exist"})
        held_by = bytes_of(finding.doc).id
        if held_by not in present:
            finding.problems.append({"code": "missing_content", "detail":
                                     f"the file holding its bytes ({held_by}) does not exist"})
    return findings


def _check_indexes(db: Database[Document]) -> list[dict[str, Any]]:
    return missing_indexes(db)


def _check_rendition_total(db: Database[Document]) -> list[dict[str, Any]]:
    """The renditions' running total against a count of the bucket (on the server); nothing
    when a store or removal moved the total while we counted (not comparable: the next run
    checks again)."""
    held = bucket_counters(db, RENDITIONS)
    counted = count_bucket(db, RENDITIONS, chunk_index=has_chunk_index(db, RENDITIONS))
    if bucket_counters(db, RENDITIONS)["version"] != held["version"]:
        return []
    wrong = {name: {"held": held[name], "counted": counted[name]} for name in ("files", "bytes", "chunks")
             if held[name] != counted[name]}
    if not wrong:
        return []
    return [{"code": "rendition_total", "collection": "media_counters", "bucket": RENDITIONS,
             "detail": "the renditions' running total differs from the bucket: " + ", ".join(
                 f"{name} {v['held']} held, {v['counted']} counted" for name, v in wrong.items()),
             "figures": wrong}]


CHECKPOINTS = "ops_checkpoints"
FILES, IMAGES = "files", "images"  # the walks of a bucket, in order (a checkpoint names its walk)
CHECKPOINT_EVERY = 200  # files between two checkpoint writes (at a batch's end)
BATCH = 100  # files checked together (three queries per group)
GROUP_BYTES = 64 * 1024 * 1024  # ...or this much file data, so the cursor's next fetch stays near
FETCH_BYTES = 4 * 1024 * 1024  # chunk data a read of a group's chunks brings at most (_fetch)
FETCH_CHUNKS = 1000


def checkpoint(db: Database[Document]) -> dict[str, Any] | None:
    """Where the last fsck run that did not finish stopped (None once a run finished)."""
    return db[CHECKPOINTS].find_one({"_id": "fsck"})


def check(db: Database[Document], *, progress: Progress | None = None, since: dt.datetime | None = None,
          resume: bool = False) -> FsckReport:
    """Check every file and image record of every bucket and the required indexes (reads only).

    Per bucket, its files and then its image records are read in ``_id`` order through one
    cursor each and checked in groups of ``BATCH`` (or ``GROUP_BYTES`` of file data,
    whichever comes first), the files' bytes streamed a few chunks at a time: memory does not
    grow with the store, and the cursor's next fetch is never further away than one group's
    reading. One cursor, not a query per group: the embedded database materialises every
    index entry a query's bounds match before it limits, so a fresh ``_id > last`` query per
    group made the check quadratic there (400 files in 8 minutes at a million). ``since``:
    only files and records uploaded since then. After about every ``CHECKPOINT_EVERY``
    documents the position is saved (bucket, collection, last id); ``resume`` starts after the
    last saved position of a run that did not finish (an interrupted check of ten million
    files goes on where it stopped). A finished run clears the checkpoint.
    """
    progress = progress or (lambda phase, done, total: None)
    report = FsckReport(repair=False)
    start = checkpoint(db) if resume else None
    # The trash's files too (restoring them must give intact images), and the renditions on
    # request (a damaged one is removed: its next request renders it again; no records).
    buckets = [*STORED, RENDITIONS]
    total = sum(count_files(db, bucket, estimated=True) for bucket in buckets) + sum(
        count_images(db, bucket, estimated=True) for bucket in STORED)
    if start is not None and start.get("bucket") in buckets:
        buckets = buckets[buckets.index(start["bucket"]):]
    saved = 0

    def check_group(bucket: str, collection: str, docs: list[dict[str, Any]]) -> None:
        nonlocal saved
        if collection == IMAGES:
            for finding in _check_records(db, bucket, docs):
                report.images_checked += 1
                _keep(report, finding)
        else:
            # A walk of every file reads each group's chunks as one range; one of the files
            # uploaded since a date, by their ids.
            for finding in _check_batch(db, bucket, docs, contiguous=since is None):
                report.files_checked += 1
                report.bytes_checked += finding.chunk_bytes
                _keep(report, finding)
        if report.checked - saved >= CHECKPOINT_EVERY:
            db[CHECKPOINTS].replace_one({"_id": "fsck"}, {
                "bucket": bucket, "collection": collection, "last_id": docs[-1]["_id"],
                "at": dt.datetime.now(dt.UTC)}, upsert=True)
            saved = report.checked
        progress("Checking files", report.checked, max(total, report.checked))

    query = {"uploadDate": {"$gte": since}} if since is not None else {}
    for bucket in buckets:
        walks = [(FILES, walk_files)]
        if bucket != RENDITIONS:  # the renditions on request have no records
            walks.append((IMAGES, walk_images))
        after = None
        if start is not None and bucket == start.get("bucket"):
            # A checkpoint in the records: the bucket's files were all checked before it.
            at = start.get("collection", FILES)
            walks = walks[[name for name, _ in walks].index(at):] if at in dict(walks) else walks
            after = start["last_id"]
        for collection, walk in walks:
            group: list[dict[str, Any]] = []
            size = 0
            cursor = walk(db, bucket, query, after=after, batch=BATCH)
            after = None  # only the walk the checkpoint is in starts after it
            try:
                for doc in cursor:
                    group.append(doc)
                    size += _length(doc) if collection == FILES else 0
                    if len(group) >= BATCH or size >= GROUP_BYTES:
                        check_group(bucket, collection, group)
                        group, size = [], 0
                if group:
                    check_group(bucket, collection, group)
            finally:
                cursor.close()
    db[CHECKPOINTS].delete_one({"_id": "fsck"})
    report.index_problems = _check_indexes(db)
    report.total_problems = _check_rendition_total(db)
    return report


def _keep(report: FsckReport, finding: _Finding) -> None:
    if finding.problems:
        report.findings.append(finding)
    if finding.states:
        report.states.append(finding)


def _users_of(refs: Referrers, file_id: ObjectId) -> dict[str, Any]:
    """The documents that reference an original (they need a new image once it is removed),
    by kind, as their owners name them."""
    return {owner.kind: sorted(owner.users([file_id]).get(file_id, ())) for owner in refs}


def _renderable(report: FsckReport) -> list[tuple[str, ObjectId]]:
    """The served originals with pending variants (``--repair`` renders them; the trash's stay
    pending until a restore: nothing renders in the trash)."""
    return [(f.bucket, f.doc["_id"]) for f in report.states if f.bucket != TRASH]


def _broken_images(db: Database[Document], report: FsckReport) -> dict[tuple[str, Any], dict[str, Any]]:
    """The images that cannot be served, by (bucket, id), with their records: the file holding
    their bytes missing (``missing_content``) or damaged past a length's correction."""
    broken: dict[tuple[str, Any], dict[str, Any]] = {}
    for finding in report.findings:
        if finding.record and "missing_content" in finding.codes:
            broken[(finding.bucket, finding.doc["_id"])] = finding.doc
        elif finding.holds_bytes and finding.codes & DAMAGE and not _length_only(finding):
            record = image(db, finding.bucket, finding.original_id)
            if record is not None and bytes_of(record).id == finding.doc["_id"]:
                broken[(finding.bucket, record["_id"])] = record
    return broken


def _length_only(finding: _Finding) -> bool:
    """Whether a file's only damage is its ``length`` (its chunks hold the bytes it hashes to)."""
    return finding.codes & DAMAGE <= {"length_mismatch"} and finding.sha_ok


def _repair(db: Database[Document], report: FsckReport, refs: Referrers,
            media: Media) -> list[dict[str, Any]]:
    actions: list[dict[str, Any]] = []
    broken = _broken_images(db, report)
    removed: set[tuple[str, ObjectId]] = set()
    # (bucket, image id) -> variant ids to render again
    regenerate: dict[tuple[str, ObjectId | None], set[ObjectId]] = {}

    def act(action: str, doc: dict[str, Any], bucket: str, reason: str, **extra: Any) -> None:
        actions.append({"action": action, "bucket": bucket, "id": str(doc["_id"]),
                        "filename": doc.get("filename"), "reason": reason, **extra})

    for finding in report.findings:
        key = (finding.bucket, finding.doc["_id"])
        codes = finding.codes
        reason = "; ".join(problem["detail"] for problem in finding.problems)
        if key in removed:
            continue
        if not finding.record and codes & DAMAGE and _length_only(finding):
            set_length(db, finding.bucket, key[1], finding.chunk_bytes)
            # Every worker reloads the document (an image's too, when these are its bytes).
            invalidate(db, finding.bucket, [key[1], *([finding.original_id] if finding.holds_bytes else [])])
            act("length_corrected", finding.doc, finding.bucket, reason, old_length=finding.doc["length"],
                new_length=finding.chunk_bytes)
            continue
        image_key = key if finding.record else (finding.bucket, finding.original_id)
        if image_key in broken and (finding.record or finding.holds_bytes):
            if image_key in removed:
                continue
            record = broken[image_key]
            users = _users_of(refs, record["_id"])
            delete_image(db, finding.bucket, record, purges=media.purges)
            removed.update((finding.bucket, file_id) for file_id in
                           [record["_id"], bytes_of(record).id, *variant_ids(record)])
            act("removed_with_variants", record, finding.bucket, reason, variants=len(variant_ids(record)),
                referenced_by=users)
        elif finding.record:  # its bytes intact, but a listed variant is missing
            regenerate.setdefault(key, set())
        elif finding.role == "variant" and not finding.holds_bytes and "orphan_variant" not in codes:
            if image_key not in broken:
                regenerate.setdefault(image_key, set()).add(key[1])
        else:  # not ours, an orphan, a damaged rendition, or bytes no record holds now
            if finding.bucket == RENDITIONS:  # with its claim, which would hold the next render back
                remove_renditions(db, [finding.doc])
            else:
                delete_file(db, finding.bucket, key[1])
            removed.add(key)
            act("removed", finding.doc, finding.bucket, reason)
    for key in _renderable(report):  # pending variants (a state): rendered now, as a GET would
        regenerate.setdefault(key, set())
    for (bucket, original_id), replace in regenerate.items():
        original = image(db, bucket, original_id)
        if original is None or (bucket, original_id) in removed:
            continue
        try:
            written = regenerate_variants(db, bucket, original, replace, media)
        except (AvenueError, OSError) as error:
            actions.append({"action": "regeneration_failed", "bucket": bucket, "id": str(original_id),
                            "reason": str(error)})
            continue
        actions.append({"action": "variants_rendered_again", "bucket": bucket, "id": str(original_id),
                        "filename": original.get("filename"), "variants": written})
    if report.index_problems:
        try:
            database.ensure_indexes(db)
            ensure_indexes(db)
            actions.append({"action": "indexes_created",
                            "indexes": [f"{p['collection']} {p['index']}" for p in report.index_problems]})
        except PyMongoError as error:
            actions.append({"action": "index_creation_failed", "reason": str(error)})
    # A removed damaged rendition took from the total only the chunks it still had; on the
    # embedded database the recount takes a file's chunks as its document states them, so
    # recount after removing any (on MongoDB the total problem was already found).
    if report.total_problems or any(bucket == RENDITIONS for bucket, _ in removed):
        recounted = recount_bucket(db, RENDITIONS, chunk_index=has_chunk_index(db, RENDITIONS))
        actions.append({"action": "total_recounted" if recounted["applied"] else "total_recount_missed",
                        "bucket": RENDITIONS, "drift": recounted["drift"]})
    return actions


def fsck(db: Database[Document], *, repair: bool = False, progress: Progress | None = None,
         since: dt.datetime | None = None, resume: bool = False, media: Media | None = None) -> FsckReport:
    """Check everything (or what ``since``/``resume`` select); with ``repair`` fix what can be
    fixed, then check those files again. ``media``: the app's, whose owners of referring
    documents name what used a removed original and within whose decode budget lost variants
    are rendered again; a repair needs it (a check alone does not): without it, or with a
    ``Media()`` that has no owners, a repair raises before it checks. The command
    (avenue/ops/commands.py) audits a repair."""
    if repair and media is None:
        raise TypeError("fsck(repair=True) needs the app's Media (media=AppMedia.of(app).core)")
    # Asked before the check: a Media without owners raises before anything is read or changed.
    repairing = (media.referrers(db), media) if repair and media is not None else None
    report = check(db, progress=progress, since=since, resume=resume)
    report.repair = repair
    if repairing is not None and (report.problem_count or _renderable(report)):
        report.repairs = _repair(db, report, *repairing)
        report.remaining = check(db, progress=progress, since=since)
    return report
