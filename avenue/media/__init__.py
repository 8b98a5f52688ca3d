"""The media core: every image the app keeps, in GridFS, behind two doors.

This module is the first door, the library of a bucket: what the shop, the builder, uploads,
tus, upload links, the zip and URL imports and the trash use to upload, replace, edit, version,
name, delete, restore, list and serve. A :class:`Library` per bucket (store/library/: reading,
labels, storing, editing, grouping and deleting, one class each) answers in :class:`Image`
records; the app's media (:class:`AppMedia`) opens those libraries and holds the trash of
deleted originals and the delivery numbers (:class:`Deliveries`); :class:`Resumables`, bound to
a database, are resumable uploads' bytes; beside them the :class:`Buckets`, media URLs and the
facts the API's image object (avenue/presentation/) states, alt text's rules (:class:`Alt`) and
the limits an app is configured with. Every name is a class or a constant, never a module (a
module brings all its names); what a class takes and answers in is its attribute, not a name
of its own here (``Library.Stored``, ``Library.EditsBody``, ``Resumables.Busy``,
``Deliveries.DayRange``, ``Alt.Result``, ``Buckets.PRODUCTS``).

The second door, ``avenue.media.maintenance``, is what ops and status use beside the library:
the jobs over every file (gc, fsck, backup and restore, rerender, the backfills, the legacy
import, the rendition budget) and the figures status reads; ``avenue.media.wiring`` is the app factory's
plugs (the route and the app's media core, the front door, the indexes, the purge outbox).
Nothing outside the package imports anything else in it (the ``media-interface``,
``media-maintenance`` and ``media-wiring`` contracts in pyproject.toml, with no
``ignore_imports``), and nothing else reads ``*.files`` or ``*.chunks``.

Inside, the code is in wings, each importing only the ones below it (the ``media-wings``
import-linter contract):

- ``serve``: what a media URL names and the one HTTP decision (``http``), the Flask
  ``route``, the WSGI ``frontdoor``, every worker's ``cache``, media ``urls`` and their
  ``signing``;
- ``upkeep`` (beside ``serve``, never importing it): the jobs over every file of a bucket, gc,
  fsck, backup and restore, the re-render of what is stale, the backfills, the legacy import,
  every total recounted; ops runs them under its locks;
- ``store``: GridFS files (``storage``), an upload's original and variants in a crash-safe
  order (``originals``) as its ``options`` say, the ``library``, the ``trash``, ``replace`` in
  place, ``scan`` (indexed reads and the few writes the upkeep jobs and status make to a bucket);
- ``ingest`` (bytes in, what to write out: validation, stripping, decoding, variants, alt text
  suggested without a model) and ``effects`` (what follows a write: counters, facets, cache
  invalidation, CDN purges);
- ``app`` above them all: :class:`AppMedia`, the app's media that views hand to services (the
  database and its dialect, a library per bucket, the ops jobs), built once by the plugs'
  ``init_app``; so no service reads ``current_app``;
- the kernel here: ``buckets``, ``records``, ``names`` (readable names in public URLs),
  ``paths``, ``core`` (the app's :class:`Media` and the numbers the store needs, built once by
  ``serve.route``'s ``init_app``, kept in ``app.extensions`` and handed to what needs it: only
  ``serve.route``, the Flask side, reads ``current_app``; the app factory hands it the owners
  of referring documents), ``references`` (the interface those owners implement).

What the store does differently on each database is asked of ``avenue/dialect.py``'s policy.
"""

from __future__ import annotations

from avenue.media.app import AppMedia
from avenue.media.buckets import Buckets
from avenue.media.core import Media
from avenue.media.ingest.alttext import Alt
from avenue.media.ingest.images import Limits
from avenue.media.records import Image
from avenue.media.serve.facts import IMAGE_FACTS
from avenue.media.serve.urls import UrlSigner
from avenue.media.store.deliveries import Deliveries
from avenue.media.store.library import Library
from avenue.media.store.resumable import Resumables

__all__ = [
    # The buckets, by their names in the code and their aliases (buckets.py: Buckets.PRODUCTS...).
    "Buckets",
    # A bucket's originals (store/library/; what its methods take and answer in are its
    # attributes: Library.Stored, Library.Upload, Library.Edits, Library.EditsBody...), the image
    # record, and the limits an upload is checked against (Limits.from_config).
    "Image", "Library", "Limits",
    # The app's media (app.py), built once by the plugs' init_app: views hand it to services,
    # which open a bucket's Library and run the jobs through it; beneath it the kernel's Media
    # (core.py), which the store is handed and who refers to images is asked of (the owners
    # answering it use Media.IN_BATCH and Media.rewrite_lists).
    "AppMedia", "Media",
    # Media URLs, built and signed where the route reads them (serve/urls.py), and what the API's
    # image object (avenue/presentation/) states of images and the upload formats' file name
    # endings (serve/facts.py).
    "IMAGE_FACTS", "UrlSigner",
    # Resumable uploads' bytes (store/resumable.py: Resumables, bound to a database; what it
    # answers and refuses are its attributes) and delivery numbers (store/deliveries.py:
    # AppMedia.deliveries is one; Deliveries.DayRange and .Series, one image's query and answer).
    "Deliveries", "Resumables",
    # Alt text's rules (ingest/alttext.py): its bound, suggestions without a model from the context
    # the shop and the builder give, a bulk request's changes and results (Alt.suggest, Alt.Changes...).
    "Alt",
]

