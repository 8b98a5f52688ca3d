"""backup / restore with the accounts: the media package's archive, carrying ``users`` by their rules.

The archive (its layout, the buckets' files streamed chunk by chunk, the documents that use
them, its restore) is the media package's (``backup`` and ``restore`` through the maintenance
door, avenue/media/upkeep/backup.py); the accounts are not the media's, so ops hands them to it
with their rules. Users are saved without their password hash unless asked
(``include_password_hashes``) and API tokens are never saved: an archive often travels further
than the database. A user restored without a hash keeps the one this database has for it, if
any; otherwise no password opens the account until a new one is set. No session epoch is saved:
a restored user gets a fresh one, so no session from before the restore (one that was ended
after the backup was taken, say) comes back to life.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from pymongo.collection import Collection
from pymongo.database import Database

from avenue.db import USERS, Document
from avenue.media import AppMedia, Media
from avenue.media.maintenance import Maintenance

SECRET_USER_FIELDS = ("password_hash",)
SESSION_USER_FIELDS = ("session_epoch",)  # never saved (the module doc)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Accounts:
    """The users, as the archive carries them (the media's ``Carried``)."""

    include_password_hashes: bool = False
    name: str = USERS

    def saved(self, doc: Document) -> Document:
        """A user without its session epoch, and without its password hash unless asked."""
        left_out = SESSION_USER_FIELDS + (() if self.include_password_hashes else SECRET_USER_FIELDS)
        return {key: value for key, value in doc.items() if key not in left_out}

    def restored(self, collection: Collection[Document], doc: Document) -> Document:
        """A user saved without its hash keeps the one ``collection`` has for it, else none."""
        if "password_hash" not in doc:
            existing = collection.find_one({"_id": doc["_id"]}, {"password_hash": 1}) or {}
            doc["password_hash"] = existing.get("password_hash", "")
        return doc


def backup(db: Database[Document], out: BinaryIO, *, media: Media, include_password_hashes: bool = False,
           progress: Progress | None = None) -> Maintenance.BackupReport:
    """Write the archive, with the users, to the binary stream ``out`` (``media``: the app's,
    whose owners of referring documents name the collections saved beside the files)."""
    notes = {"users": "with password hashes" if include_password_hashes else "without password hashes",
             "api_tokens": "not included"}
    return AppMedia.on(db, media).maintenance.backup(out, progress=progress,
                                                     carried=[Accounts(include_password_hashes)], notes=notes)


def restore(db: Database[Document], source: BinaryIO, *, media: Media, force: bool = False,
            progress: Progress | None = None) -> Maintenance.RestoreReport:
    """Restore an archive, with its users, from the binary stream ``source`` (``media``: the
    app's, whose owners of referring documents name the collections restored); refuses a
    non-empty database unless ``force``."""
    return AppMedia.on(db, media).maintenance.restore(source, force=force, progress=progress,
                                                      carried=[Accounts()])
