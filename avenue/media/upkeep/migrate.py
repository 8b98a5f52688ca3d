"""The migration of a store written before layout 2 (issue 75): ``flask --app avenue migrate-media``.

Before, an image's record was its original's document in ``<bucket>.files`` (``metadata.role:
"original"``, the "head"): with its bytes in its own chunks, or, once replaced in place, with
no chunks of its own and ``metadata.content`` naming the file that holds its bytes. Now the
record lives in ``<bucket>.images`` and every ``.files`` document is a whole GridFS file
(avenue/media/store/layout.py). For each head of every stored bucket, the trash's included:

1. its record is upserted into ``<bucket>.images`` by ``_id``: the head as it is, but a head
   that kept ``length`` 0 from before heads held their bytes' length (fsck's ``head_length``)
   gets its content file's length;
2. in ``.files``: a head with chunks of its own becomes the file of the image's bytes, shaped
   as an upload's (originals.bytes_metadata: ``role: variant``, ``variant: original``,
   ``original_id``, ``key: "<id>/original"``, ``sha256``, ``content_type``, ``format``,
   ``width``, ``height``; ``_id``, ``length``, ``chunkSize``, ``uploadDate``, ``filename``
   kept, chunks untouched); a chunkless head is removed (its bytes stay in
   ``metadata.content``'s file, which the record names).

Resumable and idempotent without a checkpoint: a head migrated no longer has ``role:
"original"``, so a run cut off anywhere goes on where it stopped, and a crash between the two
steps leaves a head whose record is upserted again, the same. Heads are read in ``_id`` order
in batches (a keyset: memory is one batch whatever the store's size). A real run ends by
writing the layout marker and recounting the buckets' totals (a chunkless head counted as a
file of no bytes; now it is none). A dry run reads, counts and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pymongo.database import Database

from avenue.db import Document
from avenue.media.buckets import STORED
from avenue.media.records import IMAGE, content_length, images
from avenue.media.store import layout
from avenue.media.upkeep.recount import recount_media

BATCH = 200
PHASE = "Migrating image records"
ProgressFn = Callable[[str, int, int], None]
#: What each bucket's counts say: records written, heads that became their image's bytes
#: file, chunkless heads removed, heads whose length 0 was corrected.
COUNTS = ("records", "bytes_files", "heads_removed", "lengths_set")


@dataclass
class MigrateReport:
    """What a run did (or, dry, would do), per bucket; chunkless heads whose bytes file is missing."""

    dry_run: bool
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    missing_content: list[dict[str, Any]] = field(default_factory=list)

    @property
    def migrated(self) -> int:
        return sum(bucket["records"] for bucket in self.counts.values())

    def summary(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "migrated": self.migrated, "buckets": self.counts,
                "missing_content": self.missing_content, "layout": layout.VERSION}

    def summary_line(self) -> str:
        verb = "would migrate" if self.dry_run else "migrated"
        per = ", ".join(f"{bucket} {counts['records']}" for bucket, counts in self.counts.items()
                        if counts["records"])
        missing = f"; {len(self.missing_content)} without their bytes file" if self.missing_content else ""
        return f"{verb} {self.migrated} image records to layout {layout.VERSION}" + (
            f" ({per})" if per else "") + missing


def bytes_metadata(head: Document) -> dict[str, Any]:
    """The metadata of the file holding the bytes of the image whose old head is ``head``: the
    shape an upload gives that file (avenue/media/store/originals.py ``bytes_metadata``)."""
    meta = head.get("metadata") or {}
    return {"role": "variant", "variant": "original", "key": f"{head['_id']}/original",
            "original_id": head["_id"], "format": meta.get("format"),
            "content_type": meta.get("content_type"), "sha256": meta.get("sha256"),
            "width": meta.get("width"), "height": meta.get("height")}


def content_id(head: Document) -> Any:
    """The file holding the bytes of a head replaced in place (a chunkless head); None: its own."""
    return ((head.get("metadata") or {}).get("content") or {}).get("id")


def record_of(db: Database[Document], bucket: str, head: Document) -> tuple[Document, bool | None]:
    """The record ``head`` becomes, and whether its length was corrected (None: a chunkless head
    whose bytes file is missing, its length left as recorded)."""
    if content_id(head) is None:
        return dict(head), False
    found = db[f"{bucket}.files"].find_one({"_id": content_id(head)}, {"length": 1})
    length = int(found["length"]) if found is not None else content_length(head)
    return {**head, "length": length}, (None if found is None else length != head.get("length"))


def migrate_one(db: Database[Document], bucket: str, head: Document, record: Document) -> None:
    """Both steps for one head (the module doc): the record first, then the head's own document."""
    images(db, bucket).replace_one({"_id": head["_id"]}, record, upsert=True)
    files = db[f"{bucket}.files"]
    if content_id(head) is not None:
        files.delete_one({"_id": head["_id"], **IMAGE})
        # None are expected (its bytes are the content file's); any would be orphans now.
        db[f"{bucket}.chunks"].delete_many({"files_id": head["_id"]})
    else:
        files.update_one({"_id": head["_id"], **IMAGE}, {"$set": {"metadata": bytes_metadata(head)}})


def _heads(db: Database[Document], bucket: str, after: Any) -> list[Document]:
    """The next batch of ``bucket``'s old heads after ``after`` (None: from the first), by ``_id``."""
    past = {"_id": {"$gt": after}} if after is not None else {}
    return list(db[f"{bucket}.files"].find({**IMAGE, **past}).sort("_id", 1).limit(BATCH))


def migrate(db: Database[Document], *, dry_run: bool = False,
            progress: ProgressFn | None = None) -> MigrateReport:
    """Move every old head's record into ``<bucket>.images`` (the module doc), or count what
    would move (``dry_run``); mark the store as in the current layout after a real run."""
    report = MigrateReport(dry_run)
    total = sum(db[f"{bucket}.files"].count_documents(IMAGE) for bucket in STORED)
    done = 0
    if progress:
        progress(PHASE, 0, total)
    for bucket in STORED:
        counts = report.counts.setdefault(bucket, dict.fromkeys(COUNTS, 0))
        after: Any = None
        while batch := _heads(db, bucket, after):
            after = batch[-1]["_id"]
            for head in batch:
                record, corrected = record_of(db, bucket, head)
                if corrected is None:
                    report.missing_content.append({"bucket": bucket, "id": str(head["_id"]),
                                                   "content_id": str(content_id(head))})
                if not dry_run:
                    migrate_one(db, bucket, head, record)
                counts["records"] += 1
                counts["lengths_set"] += bool(corrected)
                counts["bytes_files" if content_id(head) is None else "heads_removed"] += 1
            done += len(batch)
            if progress:
                progress(PHASE, done, max(total, done))
    if not dry_run:
        layout.mark(db)
        if report.migrated:
            recount_media(db)
    return report
