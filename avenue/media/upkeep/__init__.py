"""The upkeep wing: the jobs that look at every file of a bucket rather than one image, and
what they do with files and chunks.

``gc`` (garbage), ``fsck`` (every file against its chunks, and its repair), ``backup`` (one tar
archive of the buckets and the documents that use them, and its restore), ``stale`` (the
re-render of what other settings made), ``backfill`` (the walk of originals lacking a field)
with ``backfill_placeholders`` and ``backfill_near_duplicates``, ``legacy`` (the old uploads
folder imported, and its redirects' lookup), ``recount`` (every running total recounted),
``migrate`` (a store written before layout 2 converted: the records out of ``.files``). Each
job takes the database and the app's ``Media`` and answers a report; the maintenance door
(``avenue.media.maintenance``) names them, and ops (avenue/ops/) runs them: its commands, locks,
audit records and runs kept for ``/metrics``. The wing sits beside ``serve`` (the
``media-wings`` contract): it uses the store, the effects and ingest, never the Flask side.
"""
