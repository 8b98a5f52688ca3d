"""An image stored through the library door (``avenue.media``), answered as its record.

For tests that seed a bucket and then look at, or damage, what GridFS holds: the jobs over
every file (backup, fsck, gc), the legacy import, the counters.
"""

from __future__ import annotations

from typing import Any

from avenue.media import AppMedia, Library, Media
from tests.support.records import record


def stored(db: Any, bucket: str, data: bytes, *, filename: str, media: Media | None = None,
           **labels: Any) -> dict[str, Any]:
    """``data`` stored in ``bucket`` by its :class:`Library` (``labels``: ``Library.store``'s
    keywords, ``kind``, ``owner``, ``expires_at``...), as the record it wrote
    (:mod:`tests.support.records`)."""
    image = AppMedia.on(db, media).library(bucket).store(Library.Upload(filename, data), **labels).image
    doc = record(db, bucket, image.id)
    assert doc is not None, image.id
    return doc
