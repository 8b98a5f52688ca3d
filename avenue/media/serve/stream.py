"""A GridFS file as a seekable response body, a few chunks per round trip."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from pymongo.database import Database

from avenue.media.records import Document
from avenue.media.store import storage


class ChunkStream:
    """A seekable iterator over a GridFS file, fetching a few chunks per round trip.

    werkzeug's range wrapper seeks it to the first byte wanted, so a Range request reads
    only the chunks from there on, and closes it when the range is done.
    """

    def __init__(self, db: Database[Document], bucket: str, file_id: Any, length: int, chunk_size: int,
                 on_complete: Callable[[bytes], None] | None = None) -> None:
        self._args = (db, bucket, file_id, length, chunk_size)
        self._position = 0
        self._iterator: Generator[bytes, None, None] | None = None
        self._pending: bytes | None = None
        self._on_complete = on_complete
        self._parts: list[bytes] | None = [] if on_complete else None

    def prime(self) -> bool:
        """Fetch the first chunks now; False when the file's chunks are gone (just deleted)."""
        try:
            first = next(self)
        except (StopIteration, OSError):
            return False
        self._pending = first
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, position: int) -> None:
        self._position = position
        self._on_complete = self._parts = None  # a partial read is not a cacheable whole

    def tell(self) -> int:
        return self._position

    def __iter__(self) -> ChunkStream:
        return self

    def __next__(self) -> bytes:
        if self._pending is not None:
            data, self._pending = self._pending, None
            return data
        if self._iterator is None:
            db, bucket, file_id, length, chunk_size = self._args
            self._iterator = storage.read_range(db, bucket, file_id, length, chunk_size, self._position)
        try:
            data = next(self._iterator)
        except StopIteration:
            if self._on_complete is not None and self._parts is not None:
                self._on_complete(b"".join(self._parts))
                self._on_complete = None
            raise
        self._position += len(data)
        if self._parts is not None:
            self._parts.append(data)
        return data

    def close(self) -> None:
        if self._iterator is not None:
            self._iterator.close()
