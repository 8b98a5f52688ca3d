"""The media core's second door: maintenance, the jobs ops runs and the figures status reads.

The library (``avenue.media``: a :class:`~avenue.media.Library` per bucket, answering in
:class:`~avenue.media.Image` records) is the door of the blueprints. This is the other one, in
the manner of Warehouse's ``IFileStorage`` (warehouse/packaging/interfaces.py): a short list of
jobs and the reads status needs, and nothing past it. The jobs' storage work, what they do with
files and chunks, is the package's own wing (``upkeep/``, beside ``serve/``: it uses the store,
never the Flask side); ops (avenue/ops/) keeps what is not the store's: the click commands, the
locks that make a job one at a time on every instance, the audit records and the runs kept for
``/metrics``, the API's background run. Ops and status import from here or from
``avenue.media`` only (the ``media-interface`` contract in pyproject.toml protects every other
module of the package). A name keeps the name it has where it is defined, but where that name
only means something inside its module (``renditions.evict``, ``resumable.parked``): there the door
gives it its full name once, and every caller uses that.

Grouped as ``__all__`` below lists them:

- **the jobs' reports**: the jobs are methods of the app's media
  (:attr:`avenue.media.AppMedia.maintenance`: gc, fsck and its repair, backup and restore, ops
  handing them the accounts to carry, the re-render of what is stale, the backfills of
  placeholders and near-duplicates, the legacy import and the redirects it leaves), each
  run on the app's database with its Media and answering a report (``summary()``,
  ``summary_line()``); ops prints it. Here are the reports ops annotates, gc's default grace
  and the rendition budget's eviction (``store/renditions.py``, answering an ``Evicted``);
- **the figures status and monitoring read** (``effects/``, ``store/``, ``upkeep/recount.py``):
  the counters and their recount, the renditions' total, parked uploads, temp images, uploads
  per hour, whether a bucket has its chunk index;
- **the sweep's reads** (``store/scan.py``, ``store/library/``): the products bucket's
  originals newest first, which files exist, the variants an original lists, the lists whose
  fences it builds;
- **who refers to images** (``references.py``): the referrers' interface, which the sweep and
  the product counters ask (status hands them the app's, ``Media.referrers``).
"""

from __future__ import annotations

from avenue.media.buckets import RENDITIONS, TRASH
from avenue.media.effects.counters import counters
from avenue.media.effects.uploads import per_hour as uploads_per_hour
from avenue.media.references import References, Referrers
from avenue.media.store.library import LISTS
from avenue.media.store.renditions import Evicted
from avenue.media.store.renditions import evict as evict_renditions
from avenue.media.store.renditions import total as rendition_total
from avenue.media.store.resumable import parked as parked_uploads
from avenue.media.store.scan import (
    VARIANT_PATHS,
    existing_ids,
    has_chunk_index,
    originals_newest_first,
    temp_image_counts,
)
from avenue.media.upkeep.backup import BackupReport, RestoreReport
from avenue.media.upkeep.gc import DEFAULT_GRACE_SECONDS
from avenue.media.upkeep.recount import recount_media
from avenue.media.upkeep.stale import RerenderReport

__all__ = [
    # The jobs themselves are the app's media's (AppMedia.maintenance: gc, fsck, backup and
    # restore, the re-render of what is stale, the backfills, the legacy import and its
    # redirects); here the reports ops annotates (ops' own backup and restore, which add the
    # accounts, and its re-render under its lock answer them), gc's default grace, and the
    # rendition budget's eviction. RENDITIONS: the renditions' bucket, which rerender's
    # --bucket may name beside the library's buckets.
    "DEFAULT_GRACE_SECONDS", "BackupReport", "RestoreReport", "RerenderReport", "Evicted",
    "evict_renditions", "RENDITIONS",
    # What status and monitoring read: the counters (effects/counters.py) and every total
    # recounted (upkeep/recount.py), the trash's bucket among them, the renditions' total, parked
    # uploads, temp images, uploads per hour, a bucket's chunk index.
    "TRASH", "counters", "recount_media", "rendition_total", "parked_uploads", "temp_image_counts",
    "uploads_per_hour", "has_chunk_index",
    # The sweep's reads (store/scan.py) and the lists whose fences it builds (store/library/).
    "LISTS", "VARIANT_PATHS", "existing_ids", "originals_newest_first",
    # Who refers to images (references.py): the interface the sweep and the product counters ask.
    "References", "Referrers",
]
