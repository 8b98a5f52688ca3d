"""The app's media: the one object views hand to services and ops to its jobs.

:class:`AppMedia` is built once per app by ``avenue.media.wiring.init_app`` and kept in
``app.extensions``; a view or a CLI command asks for it (:meth:`AppMedia.of`) and hands it on,
as Warehouse's views hand on what ``request.find_service`` gives them, so nothing below a
view reads ``current_app``. It owns the app's database and its dialect, opens a bucket's
:class:`~avenue.media.store.library.Library` (:meth:`AppMedia.library`), the trash and the
delivery numbers, runs the ops jobs (:attr:`AppMedia.maintenance`) and reads the figures status
and monitoring show (:attr:`AppMedia.figures`). Underneath is the
kernel's :class:`~avenue.media.core.Media` (the settings, the work after the answer, the render
slots, the owners of referring documents), which the store is handed; this module sits above
the store and the upkeep jobs (the ``media-wings`` contract), which is why it is not the
kernel's class itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Protocol, TypeAlias

from pymongo.database import Database

from avenue.dialect import Dialect, dialect_of
from avenue.media import buckets
from avenue.media.core import Media
from avenue.media.effects import counters as media_counters
from avenue.media.effects import uploads
from avenue.media.ingest.images import Limits
from avenue.media.records import Document, Image
from avenue.media.references import Referrers
from avenue.media.store import library, renditions, resumable, scan
from avenue.media.store.deliveries import Deliveries
from avenue.media.store.library import Library, Trash
from avenue.media.upkeep import backfill_near_duplicates as near
from avenue.media.upkeep import backfill_placeholders as placeholders
from avenue.media.upkeep import backup as archive
from avenue.media.upkeep import fsck as check
from avenue.media.upkeep import gc, legacy, migrate, recount, stale
from avenue.paging import Listed

#: Where ``init_app`` keeps the app's :class:`AppMedia` in ``app.extensions``.
EXTENSION = "avenue.media.app"


class HasExtensions(Protocol):
    """A Flask app, as far as :meth:`AppMedia.of` reads it (the media package stays Flask-free)."""

    extensions: dict[str, Any]


@dataclass(frozen=True)
class AppMedia:
    """The app's media: its database, the dialect of that database, a library per bucket, the
    ops jobs. ``AppMedia.on(db)``: one on a bare database (a script, a test of a service),
    with the kernel's defaults and no owners of referring documents."""

    core: Media
    database: Callable[[], Database[Document]]

    @classmethod
    def on(cls, db: Database[Document], core: Media | None = None) -> AppMedia:
        """The media of ``db`` (``core``: the kernel's defaults unless given)."""
        return cls(core or Media(), lambda: db)

    @staticmethod
    def of(app: HasExtensions) -> AppMedia:
        """The app's, as ``init_app`` built it (a view passes ``current_app``)."""
        media: AppMedia = app.extensions[EXTENSION]
        return media

    @property
    def db(self) -> Database[Document]:
        """The app's database (built once by avenue/db.py; the client connects on first use)."""
        return self.database()

    @property
    def dialect(self) -> Dialect:
        """What the store does differently on this database (avenue/dialect.py), detected with
        the first command and remembered on the client."""
        return dialect_of(self.db)

    @property
    def config(self) -> Mapping[str, Any]:
        """The app's configuration."""
        return self.core.config

    @property
    def maintenance(self) -> Maintenance:
        """The ops jobs, run on this media (a small object each time: it holds only this one)."""
        return Maintenance(self)

    @property
    def figures(self) -> Figures:
        """What status and monitoring read of this media's store."""
        return Figures(self.db)

    def library(self, bucket: str) -> Library:
        """The originals of ``bucket`` (buckets.py), under the app's settings."""
        return Library(self.db, bucket, self.core)

    @property
    def trash(self) -> Trash:
        """Deleted originals, restorable for ``AVENUE_TRASH_DAYS`` (store/trash.py)."""
        return Trash(self.db)

    @property
    def deliveries(self) -> Deliveries:
        """The delivery numbers (store/deliveries.py), for the admin's and the builder's reports."""
        return Deliveries(self.db)

    def referrers(self) -> Referrers:
        """Who refers to images (references.py): the app's owners of referring documents."""
        return self.core.referrers(self.db)


class Maintenance:
    """The ops jobs on the app's media (upkeep/), each given its database and its Media; every
    keyword is the job's own (see each job's docstring), and each answers its report. The
    reports ops annotates, gc's default grace and the buckets a re-render may name are the
    class's, so ops reaches them where it reaches the jobs."""

    BackupReport: TypeAlias = archive.BackupReport
    RestoreReport: TypeAlias = archive.RestoreReport
    RerenderReport: TypeAlias = stale.RerenderReport
    Evicted: TypeAlias = renditions.Evicted
    DEFAULT_GRACE_SECONDS: ClassVar[int] = gc.DEFAULT_GRACE_SECONDS
    RERENDER_BUCKETS: ClassVar[tuple[str, ...]] = stale.RERENDER_BUCKETS

    __slots__ = ("media",)

    def __init__(self, media: AppMedia) -> None:
        self.media = media

    def collect_garbage(self, **options: Any) -> gc.GcReport:
        return gc.collect_garbage(self.media.db, media=self.media.core, **options)

    def fsck(self, **options: Any) -> check.FsckReport:
        return check.fsck(self.media.db, media=self.media.core, **options)

    def backup(self, out: BinaryIO, **options: Any) -> archive.BackupReport:
        return archive.backup(self.media.db, out, media=self.media.core, **options)

    def restore(self, source: BinaryIO, **options: Any) -> archive.RestoreReport:
        return archive.restore(self.media.db, source, media=self.media.core, **options)

    def rerender_stale(self, **options: Any) -> stale.RerenderReport:
        return stale.rerender_stale(self.media.db, media=self.media.core, **options)

    def backfill_placeholders(self, **options: Any) -> placeholders.PlaceholderReport:
        return placeholders.backfill_placeholders(self.media.db, media=self.media.core, **options)

    def backfill_near_duplicates(self, **options: Any) -> near.NearDuplicatesReport:
        return near.backfill_near_duplicates(self.media.db, media=self.media.core, **options)

    def import_legacy(self, root: str | Path, *, limits: Limits | None = None,
                      **options: Any) -> legacy.ImportReport:
        return legacy.import_legacy(self.media.db, root, media=self.media.core, limits=limits, **options)

    def migrate_layout(self, **options: Any) -> migrate.MigrateReport:
        """A store written before layout 2 converted (upkeep/migrate.py): its records moved to
        ``<bucket>.images``, every ``.files`` document a whole GridFS file."""
        return migrate.migrate(self.media.db, **options)

    def redirect_target(self, path: str) -> Image | None:
        """The image a legacy upload path now is (the import's redirects)."""
        return legacy.redirect_target(self.media.db, path, self.media.core)

    def evict_renditions(self, budget: int) -> renditions.Evicted:
        """The renditions' byte budget kept: the least recently used evicted down to ``budget``
        less the margin, if they hold more (store/renditions.py)."""
        return renditions.evict(self.media.db, budget)


@dataclass(frozen=True)
class Figures:
    """What status and monitoring read of the store, on ``db``: the running totals kept with
    every write and their recount, and the status sweep's reads of the products' bucket.
    Each read answers from an index or a counter (store/scan.py), never a whole bucket."""

    # The trash's bucket, a key of counters() beside BUCKETS' (buckets.py).
    TRASH: ClassVar[str] = buckets.TRASH
    # The lists whose fences the sweep builds (store/library/), and the exact paths of every
    # variant id an original can list (store/scan.py).
    LISTS: ClassVar[tuple[Listed, ...]] = library.LISTS
    VARIANT_PATHS: ClassVar[list[tuple[str, str]]] = scan.VARIANT_PATHS

    db: Database[Document]

    def counters(self) -> dict[str, dict[str, Any]]:
        """Every bucket's counters, the trash's included (effects/counters.py), one read."""
        return media_counters.counters(self.db)

    def recount_media(self) -> dict[str, Any]:
        """Every running total recounted (upkeep/recount.py): what each recount corrected."""
        return recount.recount_media(self.db)

    def rendition_total(self) -> dict[str, int]:
        """The renditions' files and bytes, as kept with every store and removal."""
        return renditions.total(self.db)

    def parked_uploads(self) -> dict[str, int]:
        """What unfinished resumable uploads hold now: the uploads and their bytes."""
        return resumable.parked(self.db)

    def temp_image_counts(self, moment: dt.datetime) -> dict[str, int]:
        """Temp images in all, still pending, and expired (not collected yet) at ``moment``."""
        return scan.temp_image_counts(self.db, moment)

    def uploads_per_hour(self, start: dt.datetime,
                         end: dt.datetime) -> tuple[dict[dt.datetime, int], dt.datetime | None]:
        """Uploads counted per hour from ``start`` to ``end``, and since when counting runs."""
        return uploads.per_hour(self.db, start, end)

    def has_chunk_index(self, bucket: str) -> bool:
        """Whether ``bucket``'s chunks have the index GridFS readers need."""
        return scan.has_chunk_index(self.db, bucket)

    def existing_ids(self, bucket: str, ids: Iterable[Any]) -> set[Any]:
        """Which of ``ids`` name a GridFS file of ``bucket`` (a variant, an image's bytes)."""
        return scan.existing_ids(self.db, bucket, ids)

    def existing_images(self, bucket: str, ids: Iterable[Any]) -> set[Any]:
        """Which of ``ids`` name an image record of ``bucket``."""
        return scan.existing_images(self.db, bucket, ids)

    def originals_newest_first(self, bucket: str, after: list[Any] | None, batch: int) -> Iterator[Document]:
        """``bucket``'s originals newest first, after ``[uploadDate, _id]`` ``after``, ``batch``
        at a time."""
        return scan.originals_newest_first(self.db, bucket, after, batch)
