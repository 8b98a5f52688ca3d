"""What every part of a :class:`~avenue.media.store.library.Library` stands on: one GridFS
bucket's image records (``images``) and files collection (``files``), the app's
:class:`Media`, and the originals read as :class:`Image` records.

The library is split by concern (reading, labels, storing, editing and versions, grouping
look-alikes, deleting and its leases), one class each, all handed one shelf; ``Library``
composes them. The delete lease's length is here because editing (the replace lease's checks)
and storing (the claim's wait) both honour it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database

from avenue.media.core import Media, MediaSettings
from avenue.media.records import Document, Image, images

DELETE_LEASE = dt.timedelta(seconds=60)


class Shelf:
    """The originals of one GridFS bucket: what each collaborator of the library reads and writes."""

    def __init__(self, db: Database[Document], bucket: str, media: Media) -> None:
        """``media``: the app's (``AppMedia.core``), whose settings the trash, replace
        and renders of stored originals follow and which runs the work left for after the
        answer; outside an app, ``Media()``: the defaults, that work done at once. Required:
        a library opened without it followed the defaults silently (the legacy import did)."""
        self.db = db
        self.bucket = bucket
        self.media = media
        self.settings: MediaSettings = self.media.settings

    @property
    def images(self) -> Collection[Document]:
        """The bucket's image records."""
        return images(self.db, self.bucket)

    @property
    def files(self) -> Collection[Document]:
        """The bucket's GridFS files collection (variants, bytes)."""
        return self.db[f"{self.bucket}.files"]

    def image(self, doc: dict[str, Any]) -> Image:
        """The record of the original ``doc``."""
        return Image.from_files_doc(self.bucket, doc)
