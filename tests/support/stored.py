"""An image stored through the library door (``avenue.media``), answered as its files document.

For tests that seed a bucket and then look at, or damage, what GridFS holds: the jobs over
every file (backup, fsck, gc), the legacy import, the counters.
"""

from __future__ import annotations

from typing import Any

from avenue.media import AppMedia, Library, Media


def stored(db: Any, bucket: str, data: bytes, *, filename: str, media: Media | None = None,
           **labels: Any) -> dict[str, Any]:
    """``data`` stored in ``bucket`` by its :class:`Library` (``labels``: ``Library.store``'s
    keywords, ``kind``, ``owner``, ``expires_at``...), as the files document it wrote."""
    image = AppMedia.on(db, media).library(bucket).store(Library.Upload(filename, data), **labels).image
    doc: dict[str, Any] = db[f"{bucket}.files"].find_one({"_id": image.id})
    return doc
