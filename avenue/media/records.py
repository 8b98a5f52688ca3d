"""Typed records of stored images: what the rest of the app gets instead of files documents."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class MediaDoc:
    """What serving an original or its variants needs from the files document."""

    file_id: object
    length: int
    chunk_size: int
    sha256: str
    content_type: str
    upload_date: dt.datetime
    filename: str
    format: str
    visibility: str
    variants: dict

    @property
    def private(self) -> bool:
        """Served only with a valid signature, and never cached by shared caches."""
        return self.visibility == "private"

    @classmethod
    def from_files_doc(cls, doc: dict) -> MediaDoc:
        meta = doc.get("metadata") or {}
        return cls(
            file_id=doc["_id"],
            length=doc["length"],
            chunk_size=doc["chunkSize"],
            sha256=meta.get("sha256", ""),
            content_type=meta.get("content_type", "application/octet-stream"),
            upload_date=doc["uploadDate"],
            filename=meta.get("filename") or doc.get("filename") or "image",
            format=meta.get("format", ""),
            visibility=meta.get("visibility", "public"),
            variants=meta.get("variants") or {},
        )
