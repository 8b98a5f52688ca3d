"""An image's current bytes as stock GridFS reads them, by the rule docs/operations.md states.

The rule ("Reading an image's bytes without the app"): read image ``<id>``'s record in
``<bucket>.images``; its bytes are the file of ``<bucket>``'s GridFS named by the record's
``metadata.content.id`` when present, else the file whose ``_id`` is the image's id. Every
document of ``<bucket>.files`` is a whole GridFS file (issue 75): the record is not one, and
no file is an image's record.

Only pymongo reads here (its collections, then its ``gridfs``), never the app's code: what an
ops person's script, a ``mongofiles`` or another service would do. Other tests (a model-based
one among them) import :func:`current_bytes` to check that the rule holds for every image
after any sequence of changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

import gridfs
import mongomock
from mongomock.gridfs import _create_grid_out_cursor
from pymongo.collection import Collection
from pymongo.database import Database

_GRID_FILE = "gridfs.synchronous.grid_file"


@contextlib.contextmanager
def stock_gridfs(db: Any) -> Iterator[None]:
    """Let pymongo's ``gridfs`` take ``db`` for the block: a pymongo database as it is; a
    mongomock one by widening ``gridfs``' isinstance checks for the block only (as mongomock's
    ``enable_gridfs_integration`` does, which never undoes it)."""
    if not isinstance(db, mongomock.Database):
        yield
        return
    with mock.patch(f"{_GRID_FILE}.Database", (Database, mongomock.Database)), \
            mock.patch(f"{_GRID_FILE}.Collection", (Collection, mongomock.Collection)), \
            mock.patch(f"{_GRID_FILE}.GridOutCursor", _create_grid_out_cursor):
        yield


def content_id(db: Any, bucket: str, image_id: Any) -> Any:
    """The id of the file holding image ``image_id``'s current bytes, by the documented rule:
    its record's (``<bucket>.images``) ``metadata.content.id`` when it has one, else
    ``image_id``. ``gridfs.NoFile`` when ``bucket`` has no such image."""
    found = db[f"{bucket}.images"].find_one({"_id": image_id}, {"metadata.content": 1})
    if found is None:
        raise gridfs.NoFile(f"no image {image_id!r} in {bucket}")
    content = (found.get("metadata") or {}).get("content") or {}
    return content.get("id", image_id)


def current_bytes(db: Any, bucket: str, image_id: Any) -> bytes:
    """Image ``image_id``'s current bytes in ``bucket`` (``"builder_media"``, ``"product_images"``,
    ...), read by the documented rule: the record in ``<bucket>.images``, then stock
    ``gridfs.GridFSBucket`` on the file its ``metadata.content.id`` names, else on the image's
    id. Raises what stock GridFS raises (``NoFile``, ``CorruptGridFile``), never answers with
    bytes it did not find."""
    with stock_gridfs(db):
        return gridfs.GridFSBucket(db, bucket_name=bucket).open_download_stream(
            content_id(db, bucket, image_id)).read()


def own_file_bytes(db: Any, bucket: str, image_id: Any) -> bytes:
    """What a stock read of the file with the image's id gives, ignoring the rule (the naive
    read an ops person might try): an image never changed in place, its bytes; one changed in
    place, its first version's bytes while a version keeps them, else ``NoFile``. Never a
    ``CorruptGridFile``: every files document is a whole file."""
    with stock_gridfs(db):
        return gridfs.GridFSBucket(db, bucket_name=bucket).open_download_stream(image_id).read()
