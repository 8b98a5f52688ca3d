"""The media core's second door: maintenance, the jobs ops runs and the figures status reads.

The library (``avenue.media``: a :class:`~avenue.media.Library` per bucket, answering in
:class:`~avenue.media.Image` records) is the door of the blueprints. This is the other one, in
the manner of Warehouse's ``IFileStorage`` (warehouse/packaging/interfaces.py): a short list of
objects, and nothing past them. The jobs' storage work, what they do with files and chunks, is
the package's own wing (``upkeep/``, beside ``serve/``: it uses the store, never the Flask
side); ops (avenue/ops/) keeps what is not the store's: the click commands, the locks that make
a job one at a time on every instance, the audit records and the runs kept for ``/metrics``,
the API's background run. Ops and status import from here or from ``avenue.media`` only (the
``media-interface`` contract in pyproject.toml protects every other module of the package).

- :class:`Maintenance`: the jobs, run through the app's media (:attr:`AppMedia.maintenance`:
  gc, fsck and its repair, backup and restore, the re-render of what is stale, the backfills,
  the legacy import and its redirects, the rendition budget's eviction, the migration of a
  store written before layout 2), each answering a
  report (``summary()``, ``summary_line()``) that ops prints; the class holds the reports ops
  annotates, gc's default grace and the buckets a re-render may name;
- :class:`Figures`: what status and monitoring read (``AppMedia.figures``, or ``Figures(db)``):
  the counters and their recount, the renditions' total, parked uploads, temp images, uploads
  per hour, whether a bucket has its chunk index, and the status sweep's reads of the products'
  bucket (its originals newest first, which files exist, the variants an original lists, the
  lists whose fences it builds);
- who refers to images (``references.py``): the referrers' interface, which the sweep and the
  product counters ask (status hands them the app's, ``AppMedia.referrers()``).
"""

from __future__ import annotations

from avenue.media.app import Figures, Maintenance
from avenue.media.references import References, Referrers

__all__ = [
    # The jobs (AppMedia.maintenance) and, on the class, their reports, gc's grace, the
    # buckets a re-render may name.
    "Maintenance",
    # What status and monitoring read (AppMedia.figures): totals, counts, the sweep's reads.
    "Figures",
    # Who refers to images (references.py): the interface the sweep and the product counters ask.
    "References", "Referrers",
]
