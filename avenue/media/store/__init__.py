"""Store: the GridFS files, the library over them, the trash and replace in place.

The store writes files and reports what it changed; the effects of a change (counters,
facets, cache tombstones, CDN purges) are applied by :mod:`avenue.media.effects`. It calls
ingest for the bytes and never imports serve.
"""
