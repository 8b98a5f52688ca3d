"""What an upload is stored as: one small typed record instead of eight keywords.

The blueprints say who owns an upload, what kind it is, how it is deduplicated and shown,
and its labels; those travel together from :class:`~avenue.media.store.library.Library`
to the files document the store writes, so they travel as one :class:`UploadOptions`.
The limits stay apart: they are the app's, not the upload's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class UploadOptions:
    """How one upload (or a batch) is stored.

    ``scope`` narrows deduplication (e.g. per owner and visibility: the same bytes uploaded
    by two users are two images); ``alt``, ``expires_at``, ``folder`` and ``tags`` are labels
    the original's metadata carries only when given. ``revive``: bytes that sit in the trash
    bring that image back (its id, URLs and labels); False stores them as a new image and
    leaves the trashed one as it is (an upload link only adds, avenue/links/service.py).
    """

    owner: str | None = None
    kind: str = "upload"
    scope: str = ""
    visibility: str = "public"
    alt: str | None = None
    expires_at: dt.datetime | None = None
    folder: str | None = None
    tags: tuple[str, ...] | None = None
    revive: bool = True

    def labels(self) -> dict[str, Any]:
        """The labels given, as the original's metadata keeps them (tags as a list)."""
        given = (("alt", self.alt), ("expires_at", self.expires_at), ("folder", self.folder),
                 ("tags", list(self.tags) if self.tags is not None else None))
        return {name: value for name, value in given if value is not None}
