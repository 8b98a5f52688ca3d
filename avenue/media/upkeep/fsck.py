"""fsck: check every file of every bucket against its chunks, length and sha256, and their links.

Per file (checked in groups: three queries per hundred files): chunk numbers contiguous from 0
with no duplicates, every chunk but the last exactly
``chunkSize`` bytes, the chunks adding up to ``length``, the sha256 of the bytes (streamed a
few chunks at a time: constant memory) equal to ``metadata.sha256``, a variant's original
present, an original's listed variants present; the renditions on request's files
(``media_renditions``) too. Per bucket: the unique ``{files_id, n}`` chunk index and the
unique ``metadata.key`` files index (the renditions bucket: its own unique index). The
renditions' running total (what the byte budget evicts by, kept with every store and
removal) against a count of the bucket.

Faults (``problems``: the report is not ``ok``, the command exits 1) are apart from states
(``states``: reported and counted, never a fault). The one state: ``pending_variant``, a
variant its original lists *pending*, not rendered yet (avenue/media/store/pending.py): the
normal state right after an upload's answer, until its render after the answer or its first
GET; for good in the trash, whose copy of an image trashed before its render keeps them
pending until it is restored.

``--repair`` (``repair=True``), then checks everything again and reports what remains:
- a file whose only fault is its ``length`` (chunks intact, sha256 matches): length corrected;
- an original replaced in place whose ``length`` is not its bytes' (``metadata.content.length``;
  stored before a head kept it, when it was 0, which a stock GridFS read took for an empty
  file): length set to its bytes' (code ``head_length``);
- a variant that is damaged, or listed by its original but missing: rendered again from the
  intact original (same id, so every URL handed out still works); the pending variants of
  served images (a worker that died between storing an upload and rendering them, or a render
  still due) are rendered under the claim a GET of one shares, so each is rendered once (the
  trash's stay pending: rendered once restored);
- any other damaged original: removed with its variants (documents that referenced it are
  listed, so their images can be uploaded again); a damaged file that is not an image of
  ours, a damaged rendition on request (rendered again on its next request), or a variant
  whose original is gone: removed;
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
from avenue.media.records import content_length, is_image, own_length, own_sha256, variant_ids
from avenue.media.references import Referrers
from avenue.media.store.indexes import ensure_indexes
from avenue.media.store.originals import delete_image
from avenue.media.store.regenerate import regenerate_variants
from avenue.media.store.renditions import remove as remove_renditions
from avenue.media.store.scan import (
    chunks_of,
    count_files,
    files_by_id,
    has_chunk_index,
    missing_indexes,
    set_length,
    walk_files,
)
from avenue.media.store.scan import file as file_doc
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

    @property
    def codes(self) -> set[str]:
        return {problem["code"] for problem in self.problems}

    @property
    def role(self) -> str | None:
        return (self.doc.get("metadata") or {}).get("role")

    @property
    def image(self) -> bool:
        """Whether the file checked is an image's record (records.is_image)."""
        return is_image(self.doc)

    def to_dict(self, what: str = "problems") -> dict[str, Any]:
        """The file and its ``problems`` (or its ``states``) as JSON-ready data."""
        return {"bucket": self.bucket, "id": str(self.doc["_id"]), "filename": self.doc.get("filename"),
                "role": self.role, what: self.problems if what == "problems" else self.states}


@dataclass
class FsckReport:
    """What fsck found, what it repaired and what remains."""

    repair: bool
    files_checked: int = 0
    bytes_checked: int = 0
    findings: list[_Finding] = field(default_factory=list)  # files with problems
    states: list[_Finding] = field(default_factory=list)  # files with states (a file may be in both)
    index_problems: list[dict[str, Any]] = field(default_factory=list)
    total_problems: list[dict[str, Any]] = field(default_factory=list)  # a running total that is wrong
    repairs: list[dict[str, Any]] = field(default_factory=list)
    remaining: FsckReport | None = None  # the check after repairing

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
                "bytes_checked": self.bytes_checked, "problems": [f.to_dict() for f in self.findings],
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
        line = (f"fsck: {self.files_checked} files ({self.bytes_checked} bytes) checked, "
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
    """Check one file against its chunks (``chunks``: its own, in ``n`` order, streamed): an
    original replaced in place has none (records.own_length), its content file is checked."""
    length, size = own_length(doc), doc.get("chunkSize") or CHUNK_SIZE
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
    stored = own_sha256(doc)  # none for an original replaced in place: its content file is checked
    finding.sha_ok = bool(stored) and digest.hexdigest() == stored
    if stored and not finding.sha_ok:
        finding.problems.append({"code": "sha256_mismatch",
                                 "detail": f"the bytes hash to {digest.hexdigest()}, metadata says {stored}"})
    finding.chunk_bytes = total
    return finding


def _fetch(docs: list[dict[str, Any]]) -> int:
    """How many chunks a read of the group's chunks may bring at once: :data:`FETCH_BYTES`
    of its largest chunk (at least 4). Four a read, whatever their size, was a round trip
    per four small files (62 s per 100,000 on the embedded database, issue 65)."""
    largest = max((min(own_length(doc), int(doc.get("chunkSize") or CHUNK_SIZE)) for doc in docs), default=0)
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
    named = {(f.doc.get("metadata") or {}).get("original_id") for f in findings if f.role == "variant"}
    originals = {file_id for file_id, doc in files_by_id(db, bucket, named, {"metadata.role": 1}).items()
                 if is_image(doc)}
    listed = [vid for f in findings if f.image for vid in variant_ids(f.doc)]
    present = set(files_by_id(db, bucket, listed, {"_id": 1}))
    for finding in findings:
        meta = finding.doc.get("metadata") or {}
        if finding.role == "variant" and meta.get("original_id") not in originals:
            finding.problems.append({"code": "orphan_variant",
                                     "detail": f"its original {meta.get('original_id')} does not exist"})
        elif finding.image:
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
            content = meta.get("content") or {}
            if content.get("id") is not None and content["id"] not in present:
                finding.problems.append({"code": "missing_content", "detail":
                                         f"the file holding its bytes ({content['id']}) does not exist"})
            if content and finding.doc.get("length") != content_length(finding.doc):
                finding.problems.append({"code": "head_length", "detail": (
                    f"its files document says {finding.doc.get('length')} bytes, its bytes (in "
                    f"{content.get('id')}) are {content_length(finding.doc)}: a stock GridFS read "
                    "by its id would not fail, and could read an empty file")})
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
    """Check every file of every bucket and the required indexes (reads only).

    Files are read in ``_id`` order through one cursor per bucket and checked in groups of
    ``BATCH`` (or ``GROUP_BYTES`` of file data, whichever comes first), their bytes streamed a
    few chunks at a time: memory does not grow with the store, and the cursor's next fetch is
    never further away than one group's reading. One cursor, not a query per group: the
    embedded database materialises every index entry a query's bounds match before it
    limits, so a fresh ``_id > last`` query per group made the check quadratic there (400
    files in 8 minutes at a million). ``since``: only files uploaded since then. After
    about every ``CHECKPOINT_EVERY`` files the position is saved; ``resume`` starts after the
    last saved position of a run that did not finish (an interrupted check of ten million
    files goes on where it stopped). A finished run clears the checkpoint.
    """
    progress = progress or (lambda phase, done, total: None)
    report = FsckReport(repair=False)
    start = checkpoint(db) if resume else None
    # The trash's files too (restoring them must give intact images), and the renditions on
    # request (a damaged one is removed: its next request renders it again).
    buckets = [*STORED, RENDITIONS]
    total = sum(count_files(db, bucket, estimated=True) for bucket in buckets)
    if start is not None and start.get("bucket") in buckets:
        buckets = buckets[buckets.index(start["bucket"]):]
    saved = 0

    def check_group(bucket: str, docs: list[dict[str, Any]]) -> None:
        nonlocal saved
        # A walk of every file reads each group's chunks as one range; one of the files
        # uploaded since a date, by their ids.
        for finding in _check_batch(db, bucket, docs, contiguous=since is None):
            report.files_checked += 1
            report.bytes_checked += finding.chunk_bytes
            if finding.problems:
                report.findings.append(finding)
            if finding.states:
                report.states.append(finding)
        if report.files_checked - saved >= CHECKPOINT_EVERY:
            db[CHECKPOINTS].replace_one({"_id": "fsck"}, {"bucket": bucket, "last_id": docs[-1]["_id"],
                                                          "at": dt.datetime.now(dt.UTC)}, upsert=True)
            saved = report.files_checked
        progress("Checking files", report.files_checked, max(total, report.files_checked))

    for bucket in buckets:
        after = start["last_id"] if start is not None and bucket == start.get("bucket") else None
        query = {"uploadDate": {"$gte": since}} if since is not None else {}
        group: list[dict[str, Any]] = []
        size = 0
        cursor = walk_files(db, bucket, query, after=after, batch=BATCH)
        try:
            for doc in cursor:
                group.append(doc)
                size += own_length(doc)
                if len(group) >= BATCH or size >= GROUP_BYTES:
                    check_group(bucket, group)
                    group, size = [], 0
            if group:
                check_group(bucket, group)
        finally:
            cursor.close()
    db[CHECKPOINTS].delete_one({"_id": "fsck"})
    report.index_problems = _check_indexes(db)
    report.total_problems = _check_rendition_total(db)
    return report


def _users_of(refs: Referrers, file_id: ObjectId) -> dict[str, Any]:
    """The documents that reference an original (they need a new image once it is removed),
    by kind, as their owners name them."""
    return {owner.kind: sorted(owner.users([file_id]).get(file_id, ())) for owner in refs}


def _renderable(report: FsckReport) -> list[tuple[str, ObjectId]]:
    """The served originals with pending variants (``--repair`` renders them; the trash's stay
    pending until a restore: nothing renders in the trash)."""
    return [(f.bucket, f.doc["_id"]) for f in report.states if f.bucket != TRASH]


def _repair(db: Database[Document], report: FsckReport, refs: Referrers,
            media: Media) -> list[dict[str, Any]]:
    actions: list[dict[str, Any]] = []
    damaged = {(f.bucket, f.doc["_id"]) for f in report.findings if f.codes & DAMAGE}
    removed: set[tuple[str, ObjectId]] = set()
    # (bucket, original id) -> variant ids to render again
    regenerate: dict[tuple[str, ObjectId | None], set[ObjectId]] = {}

    def act(action: str, finding: _Finding, reason: str, **extra: Any) -> None:
        actions.append({"action": action, "bucket": finding.bucket, "id": str(finding.doc["_id"]),
                        "filename": finding.doc.get("filename"), "reason": reason, **extra})

    for finding in report.findings:
        key = (finding.bucket, finding.doc["_id"])
        codes = finding.codes
        reason = "; ".join(problem["detail"] for problem in finding.problems)
        if "head_length" in codes:  # stored before heads kept their bytes' length (replace.py)
            set_length(db, finding.bucket, key[1], content_length(finding.doc))
            act("length_corrected", finding, reason, old_length=finding.doc.get("length"),
                new_length=content_length(finding.doc))
            if codes == {"head_length"}:
                continue
        if codes & DAMAGE and codes & DAMAGE <= {"length_mismatch"} and finding.sha_ok:
            set_length(db, finding.bucket, key[1], finding.chunk_bytes)
            invalidate(db, finding.bucket, [key[1]])  # every worker reloads the document
            act("length_corrected", finding, reason, old_length=finding.doc["length"],
                new_length=finding.chunk_bytes)
            if "missing_variant" in codes:
                regenerate.setdefault(key, set())
            continue
        original_id = (finding.doc.get("metadata") or {}).get("original_id")
        if finding.image and codes & DAMAGE:
            users = _users_of(refs, key[1])
            delete_image(db, finding.bucket, finding.doc, purges=media.purges)
            removed.update((finding.bucket, vid) for vid in [key[1], *variant_ids(finding.doc)])
            act("removed_with_variants", finding, reason, variants=len(variant_ids(finding.doc)),
                referenced_by=users)
        elif finding.role == "variant" and "orphan_variant" not in codes and (finding.bucket, original_id) \
                not in damaged:
            regenerate.setdefault((finding.bucket, original_id), set()).add(key[1])
        elif finding.image:  # intact, but a listed variant is missing
            regenerate.setdefault(key, set())
        elif key not in removed:
            if finding.bucket == RENDITIONS:  # with its claim, which would hold the next render back
                remove_renditions(db, [finding.doc])
            else:
                delete_file(db, finding.bucket, key[1])
            removed.add(key)
            act("removed", finding, reason)
    for key in _renderable(report):  # pending variants (a state): rendered now, as a GET would
        regenerate.setdefault(key, set())
    for (bucket, original_id), replace in regenerate.items():
        original = file_doc(db, bucket, original_id)
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
