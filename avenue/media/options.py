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
    the original's metadata carries only when given.
    """

    owner: str | None = None
    kind: str = "upload"
    scope: str = ""
    visibility: str = "public"
    alt: str | None = None
    expires_at: dt.datetime | None = None
    folder: str | None = None
    tags: tuple[str, ...] | None = None

    def labels(self) -> dict[str, Any]:
        """The labels given, as the original's metadata keeps them (tags as a list)."""
        given = (("alt", self.alt), ("expires_at", self.expires_at), ("folder", self.folder),
                 ("tags", list(self.tags) if self.tags is not None else None))
        return {name: value for name, value in given if value is not None}
