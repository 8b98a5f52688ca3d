"""import-legacy: move the old local ``uploads/`` folder into GridFS and rewrite every reference.

The old app kept files at ``uploads/<relative path>`` and documents pointed at them as
``/uploads/<relative path>``. The import walks the folder and stores each file through the
same validation as an upload: ``products/...`` into ``product_images_data``,
``website_builder/...`` into ``builder_media``, everything else into ``uploads`` (public, as
the old app served it). Each old path is recorded in ``legacy_paths`` (the redirects read it),
then products' image entries become image references and pages' blocks trade ``image`` for
``media_id``, each rewritten by its owner (the shop, the builder: ``References.rewrite``).

Every step is idempotent, so a run that dies anywhere resumes to the same final state: store
is content-addressed (the same bytes are the same file), ``legacy_paths`` is upserted by path
after its file is stored, and each document is rewritten by a compare-and-swap on the array
it changes. A path already in ``legacy_paths`` is not read again. The source folder is only
ever read.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pymongo.database import Database

from avenue.clock import now
from avenue.db import Document
from avenue.errors import AvenueError, UnsupportedImage
from avenue.media.buckets import BUILDER, LEGACY_PREFIX, PRODUCTS, UPLOADS
from avenue.media.core import Media
from avenue.media.ingest.images import Limits, prepare, read_limited, sanitize_filename
from avenue.media.records import Image
from avenue.media.references import References
from avenue.media.store.library import Library
from avenue.media.store.originals import Upload, dedupe_key

PREFIX = LEGACY_PREFIX  # the old app's URL path of a stored file: /uploads/<relative path>
# General uploads are deduplicated per owner and visibility; the old ones have no owner.
GENERAL_SCOPE = "legacy:public"
KINDS = {PRODUCTS: "product", BUILDER: "builder", UPLOADS: "upload"}

# progress(phase, done, total)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Destination:
    bucket: str
    kind: str
    scope: str


def destination(relative: str) -> Destination:
    """Where a file of the old folder goes, from its path relative to that folder."""
    top = relative.split("/", 1)[0]
    if top == "products":
        return Destination(PRODUCTS, "product", "")
    if top == "website_builder":
        return Destination(BUILDER, "builder", "")
    return Destination(UPLOADS, "upload", GENERAL_SCOPE)


def legacy_path(reference: object) -> str | None:
    """The old URL path a stored reference names, or None (external URLs, anything else)."""
    if not isinstance(reference, str):
        return None
    path = unquote(reference.split("?", 1)[0].split("#", 1)[0])
    return path if path.startswith(PREFIX) else None


LINK_OUTSIDE = "link_outside_folder"


def scan(root: Path) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """(old URL path, file to read) for every regular file under ``root``, sorted by path, and
    (old URL path, reason) for every symbolic link that leads out of ``root``.

    Links are never followed out of the folder: a link planted in it (to ``/etc/passwd``, to
    the app's own secrets, to ``/``) would otherwise be published as an image or walked. A
    link to a file inside the folder is read where it points (the old app served it under
    the link's path); linked folders are not entered, inside or out (os.walk's default):
    their files inside the folder are imported under their own paths.
    """
    base = root.resolve()
    found, outside = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in dirnames + filenames:
            entry = Path(dirpath) / name
            path = PREFIX + entry.relative_to(root).as_posix()
            file = entry
            if entry.is_symlink():
                try:
                    file = entry.resolve()
                except (OSError, RuntimeError):  # a loop of links
                    outside.append((path, "a symbolic link that resolves nowhere (a loop); not followed"))
                    continue
                if not file.is_relative_to(base):
                    what = "folder" if name in dirnames else "file"
                    outside.append((path, f"a symbolic link to a {what} outside the import folder; "
                                          "not followed"))
                    continue
            if name in filenames and file.is_file():
                found.append((path, file))
    return sorted(found), sorted(outside)


def redirect_target(db: Database[Document], path: str, media: Media) -> Image | None:
    """The stored original an old URL path was imported as, or None (``media``: the app's)."""
    recorded = db.legacy_paths.find_one({"path": path})
    if recorded is None:
        return None
    return Library(db, recorded["bucket"], media).get(recorded["file_id"])


@dataclass
class _Target:
    """The stored file an old path resolves to; in a dry run possibly one not stored yet."""

    bucket: str
    identity: str  # the file id; in a dry run "new:<bucket>:<key>" for a file not stored yet
    image: Image | None
    source: Path | None = None

    @property
    def planned(self) -> bool:
        return self.identity.startswith("new:")


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do)."""

    source: str
    dry_run: bool
    files: list[dict[str, Any]] = field(default_factory=list)
    missing_references: list[dict[str, Any]] = field(default_factory=list)
    skipped_references: list[dict[str, Any]] = field(default_factory=list)
    external_references: list[dict[str, Any]] = field(default_factory=list)
    rewritten: list[dict[str, Any]] = field(default_factory=list)
    copies: list[dict[str, Any]] = field(default_factory=list)

    def _count(self, action: str) -> int:
        return sum(1 for entry in self.files if entry["action"] == action)

    def _listed(self, action: str) -> list[dict[str, Any]]:
        return [entry for entry in self.files if entry["action"] == action]

    @property
    def counts(self) -> dict[str, Any]:
        return {
            "files": len(self.files),
            "imported": self._count("imported"),
            "duplicates": self._count("duplicate"),
            "already_imported": self._count("already_imported"),
            "skipped_non_images": self._count("skipped_non_image"),
            "invalid": self._count("invalid"),
            "missing_references": len(self.missing_references),
            "skipped_references": len(self.skipped_references),
            "external_references": len(self.external_references),
            "rewritten_documents": len(self.rewritten),
            "rewritten_references": sum(entry["references"] for entry in self.rewritten),
            "copied_between_buckets": len(self.copies),
        }

    @property
    def needs_attention(self) -> bool:
        """Images that could not be moved or references left pointing at nothing."""
        return bool(self._count("invalid") or self.missing_references or self.skipped_references)

    def summary(self) -> dict[str, Any]:
        """The whole report as JSON-ready data."""
        return {
            "dry_run": self.dry_run,
            "source": self.source,
            "counts": self.counts,
            "skipped_non_images": self._listed("skipped_non_image"),
            "invalid": self._listed("invalid"),
            "missing_references": self.missing_references,
            "skipped_references": self.skipped_references,
            "external_references": self.external_references,
            "rewritten": self.rewritten,
            "copies": self.copies,
            "files": self.files,
        }

    def summary_line(self) -> str:
        c = self.counts
        verb = "would import" if self.dry_run else "imported"
        return (
            f"import-legacy: {c['files']} files: {verb} {c['imported']}, {c['duplicates']} duplicates, "
            f"{c['already_imported']} already imported, {c['skipped_non_images']} non-images skipped, "
            f"{c['invalid']} invalid; {c['rewritten_documents']} documents "
            f"{'to rewrite' if self.dry_run else 'rewritten'} ({c['rewritten_references']} references), "
            f"{c['missing_references']} missing references, {c['external_references']} external left alone"
        )


@dataclass
class _Plan:
    """A document's new array and what rewriting it found."""

    value: list[Any]
    rewritten: int = 0
    missing: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    external: list[dict[str, Any]] = field(default_factory=list)


class _Importer:
    def __init__(self, db: Database[Document], root: Path, limits: Limits, dry_run: bool,
                 progress: Progress | None, media: Media) -> None:
        self.db = db
        self.media = media
        # Asked before any file is imported: a Media without owners raises here, not after.
        self.referrers = media.referrers(db)
        self.root = root
        self.limits = limits
        self.dry_run = dry_run
        self.progress = progress or (lambda phase, done, total: None)
        self.report = ImportReport(str(root), dry_run)
        self.targets: dict[str, _Target] = {}
        self.skipped: dict[str, str] = {}  # old path -> why its file was not imported
        self.planned: dict[tuple[str, str], _Target] = {}  # dry run: (bucket, key) -> target
        self.copied: dict[tuple[str, str], _Target] = {}

    def run(self) -> ImportReport:
        files, links_outside = scan(self.root)
        for path, reason in links_outside:
            self.skipped[path] = "invalid"
            self._file(path, "invalid", destination(path[len(PREFIX):]).bucket, None, code=LINK_OUTSIDE,
                       reason=reason)
        for index, (path, file) in enumerate(files, 1):
            self._import_file(path, file)
            self.progress("Importing files", index, len(files))
        plans = {"products": self._plan_product, "pages": self._plan_page}
        for owner in self.referrers:
            self._rewrite_all(owner, plans[owner.kind])
        self._check_upload_records()
        return self.report

    # --- files ------------------------------------------------------------------------

    def _import_file(self, path: str, file: Path) -> None:
        dest = destination(path[len(PREFIX):])
        recorded = self.db.legacy_paths.find_one({"path": path})
        if recorded is not None:
            image = Library(self.db, recorded["bucket"], self.media).get(recorded["file_id"])
            self.targets[path] = _Target(recorded["bucket"], str(recorded["file_id"]), image, file)
            self._file(path, "already_imported", recorded["bucket"], str(recorded["file_id"]))
            return
        try:
            target, created = self._predict(dest, file) if self.dry_run else self._store(path, dest, file)
        except AvenueError as error:
            action = "skipped_non_image" if isinstance(error, UnsupportedImage) else "invalid"
            self.skipped[path] = action
            self._file(path, action, dest.bucket, None, code=error.code, reason=error.message)
            return
        except OSError as error:
            self.skipped[path] = "invalid"
            self._file(path, "invalid", dest.bucket, None, code="unreadable", reason=str(error))
            return
        self.targets[path] = target
        self._file(path, "imported" if created else "duplicate", dest.bucket,
                   None if target.planned else target.identity)

    def _file(self, path: str, action: str, bucket: str, file_id: str | None, **extra: Any) -> None:
        self.report.files.append({"path": path, "action": action, "bucket": bucket, "id": file_id, **extra})

    def _store(self, path: str, dest: Destination, file: Path) -> tuple[_Target, bool]:
        with file.open("rb") as stream:
            result = Library(self.db, dest.bucket, self.media).store(
                Upload(file.name, stream), limits=self.limits, kind=dest.kind, scope=dest.scope)
        image = result.image
        # Recorded only once the file is stored: a path in legacy_paths always has its file.
        self.db.legacy_paths.update_one(
            {"path": path},
            {"$set": {"bucket": dest.bucket, "file_id": image.id, "sha256": image.source_sha256},
             "$setOnInsert": {"imported_at": now()}},
            upsert=True,
        )
        return _Target(dest.bucket, str(image.id), image, file), result.created

    def _predict(self, dest: Destination, file: Path) -> tuple[_Target, bool]:
        """What ``_store`` would do, without writing: the same checks, the same dedupe."""
        try:
            with file.open("rb") as stream:
                data = read_limited(stream, self.limits.max_bytes)
            digest = sha256(data).hexdigest()
            key = dedupe_key(digest, dest.scope)
            existing = Library(self.db, dest.bucket, self.media).find_by_content(digest, scope=dest.scope)
            if existing is not None:
                return _Target(dest.bucket, str(existing.id), existing, file), False
            if (dest.bucket, key) in self.planned:
                return self.planned[(dest.bucket, key)], False
            prepare(data, self.limits)
        except AvenueError as error:
            # Worded as store() words it.
            error.message = f"{sanitize_filename(file.name)}: {error.message}"
            raise
        target = _Target(dest.bucket, f"new:{dest.bucket}:{key}", None, file)
        self.planned[(dest.bucket, key)] = target
        return target, True

    def _resolve(self, path: str, bucket: str | None) -> _Target | str:
        """The file ``path`` stands for, in ``bucket`` when given; or why there is none."""
        target = self.targets.get(path)
        if target is None:
            if path in self.skipped:
                return self.skipped[path]
            recorded = self.db.legacy_paths.find_one({"path": path})
            if recorded is None:
                return "missing_on_disk"
            image = Library(self.db, recorded["bucket"], self.media).get(recorded["file_id"])
            target = self.targets[path] = _Target(recorded["bucket"], str(recorded["file_id"]), image)
        if target.image is None and not target.planned:
            return "deleted_since_import"
        if bucket is not None and target.bucket != bucket:
            return self._copy_into(path, target, bucket)
        return target

    def _copy_into(self, path: str, target: _Target, bucket: str) -> _Target:
        """The same image in ``bucket`` (a product photo used on a page, and the like)."""
        cache_key = (target.identity, bucket)
        if cache_key in self.copied:
            return self.copied[cache_key]
        if self.dry_run:
            copy = _Target(bucket, f"new:{bucket}:copy-of:{target.identity}", None, target.source)
            self.report.copies.append({"path": path, "bucket": bucket, "id": None})
        else:
            if target.source is not None and target.source.is_file():
                data = target.source.read_bytes()
            else:  # a target that is not planned has its image (see _resolve)
                data = Library(self.db, target.bucket, self.media).read(target.image) if target.image else b""
            name = (target.image.filename if target.image else None) or Path(path).name
            result = Library(self.db, bucket, self.media).store(Upload(name, io.BytesIO(data)),
                                                                limits=self.limits, kind=KINDS[bucket])
            copy = _Target(bucket, str(result.image.id), result.image, target.source)
            self.report.copies.append({"path": path, "bucket": bucket, "id": copy.identity})
        self.copied[cache_key] = copy
        return copy

    # --- references -------------------------------------------------------------------

    def _rewrite_all(self, owner: References, plan: Callable[[list[Any]], _Plan]) -> None:
        """Each of the owner's documents gets its references planned and, when one changed,
        rewritten by its owner (a compare-and-swap on the list, see ``References.rewrite``)."""
        collection_name = owner.collections[0]
        phase = f"Rewriting {owner.kind}"
        done = owner.rewrite(plan, dry_run=self.dry_run,
                             progress=lambda index, total: self.progress(phase, index, total))
        for label, result in done:
            for entry in result.missing:
                self.report.missing_references.append({"collection": collection_name, **label, **entry})
            for entry in result.skipped:
                self.report.skipped_references.append({"collection": collection_name, **label, **entry})
            for entry in result.external:
                self.report.external_references.append({"collection": collection_name, **label, **entry})
            if result.rewritten:
                self.report.rewritten.append({"collection": collection_name, **label,
                                              "references": result.rewritten})

    def _note(self, plan: _Plan, reference: str, resolved: str) -> None:
        entry = {"path": reference, "reason": resolved}
        (plan.skipped if resolved in ("skipped_non_image", "invalid") else plan.missing).append(entry)

    def _plan_product(self, images: list[Any]) -> _Plan:
        plan = _Plan([])
        seen = {str(entry["id"]) for entry in images if isinstance(entry, dict) and "id" in entry}
        for entry in images:
            path = legacy_path(entry)
            if path is None:
                if isinstance(entry, str):
                    plan.external.append({"url": entry})
                plan.value.append(entry)
                continue
            resolved = self._resolve(path, PRODUCTS)
            if isinstance(resolved, str):
                self._note(plan, entry, resolved)
                plan.value.append(entry)
                continue
            plan.rewritten += 1
            if resolved.identity in seen:
                continue  # two old paths of the same bytes: one image, listed once
            seen.add(resolved.identity)
            # In a dry run a file not stored yet has no document: a placeholder is never written.
            plan.value.append(resolved.image.ref() if resolved.image is not None
                              else {"id": resolved.identity})
        return plan

    def _plan_page(self, blocks: list[Any]) -> _Plan:
        """Blocks trade ``image`` for ``media_id`` (the builder derives its ``media_ids``)."""
        plan = _Plan([])
        for block in blocks:
            image = block.get("image") if isinstance(block, dict) and "media_id" not in block else None
            path = legacy_path(image)
            if path is None:
                if isinstance(image, str):
                    plan.external.append({"url": image})
                plan.value.append(block)
                continue
            resolved = self._resolve(path, BUILDER)
            if isinstance(resolved, str):
                assert isinstance(image, str)  # legacy_path found a path in it: only a string has one
                self._note(plan, image, resolved)
                plan.value.append(block)
                continue
            plan.rewritten += 1
            # media_id takes the place of image, so the block keeps its key order.
            plan.value.append({("media_id" if key == "image" else key): (resolved.identity if key == "image"
                                                                          else value)
                               for key, value in block.items()})
        return plan

    def _check_upload_records(self) -> None:
        """The old app's list of general uploads: report the ones whose file is gone."""
        for record in self.db.uploads.find({}, {"path": 1}).sort("_id", 1):
            path = legacy_path(record.get("path"))
            if path is None:
                continue
            resolved = self._resolve(path, None)
            if isinstance(resolved, str):
                entry = {"collection": "uploads", "path": record["path"], "reason": resolved}
                if resolved in ("skipped_non_image", "invalid"):
                    self.report.skipped_references.append(entry)
                else:
                    self.report.missing_references.append(entry)


def import_legacy(db: Database[Document], root: str | Path, *, media: Media, limits: Limits | None = None,
                  dry_run: bool = False, progress: Progress | None = None) -> ImportReport:
    """Import the old uploads folder at ``root`` and rewrite references to it (see module doc);
    ``media``: the app's (``AppMedia.core``), whose owners of referring documents rewrite their
    references (a ``Media()`` without owners raises before anything is imported). The command
    (avenue/ops/commands.py) audits a run that changed anything."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    return _Importer(db, root, limits or Limits(), dry_run, progress, media).run()
