"""Where the tests read an image's record: the one place in the tests that spells its layout.

An image's record (its names, versions, edits, variants, folder, tags) is a document of
``<bucket>.images``, apart from the GridFS files of ``<bucket>.files`` that hold its bytes and
its variants (``avenue/media/records.py`` names the same for the app). A test that reads or
damages a record goes through here; one that reads GridFS files as files (chunks, variants, a
stock read) names ``<bucket>.files`` itself.
"""

from __future__ import annotations

from typing import Any

IMAGE: dict[str, Any] = {"metadata.role": "original"}  # every record's role


def images(db: Any, bucket: str) -> Any:
    """The collection holding ``bucket``'s image records."""
    return db[f"{bucket}.images"]


def record(db: Any, bucket: str, image_id: Any) -> dict[str, Any] | None:
    """The record of image ``image_id`` in ``bucket`` (None: there is none)."""
    found: dict[str, Any] | None = images(db, bucket).find_one({"_id": image_id, **IMAGE})
    return found
