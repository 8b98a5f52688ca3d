"""Where the tests read an image's record: the one place in the tests that spells its layout.

An image's record (its names, versions, edits, variants, folder, tags) is today its
original's files document in ``<bucket>.files`` (``metadata.role: "original"``), beside the
bucket's variants and the bytes of images replaced in place (``avenue/media/records.py``
names the same for the app). A test that reads or damages a record goes through here; one that
reads GridFS files as files (chunks, variants, a stock read) names ``<bucket>.files`` itself.
"""

from __future__ import annotations

from typing import Any

IMAGE: dict[str, Any] = {"metadata.role": "original"}  # selects the records among the documents


def images(db: Any, bucket: str) -> Any:
    """The collection holding ``bucket``'s image records."""
    return db[f"{bucket}.files"]


def record(db: Any, bucket: str, image_id: Any) -> dict[str, Any] | None:
    """The record of image ``image_id`` in ``bucket`` (None: there is none)."""
    found: dict[str, Any] | None = images(db, bucket).find_one({"_id": image_id, **IMAGE})
    return found
