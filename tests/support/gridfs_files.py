"""Raw GridFS files written and read as the specification lays them out, not through the app.

For the tests of the jobs over every file (backup, fsck, gc): a file that is not an image
(the app stores none, but a store may hold one), or damage made by hand. The chunks go in
before the files document, as GridFS writers do; no counter, cache or facet is told, as
none would be of a file written by another tool.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bson import Binary, ObjectId

# GridFS's default chunk size, which the app's store writes with too.
CHUNK_SIZE = 255 * 1024


def put_file(db: Any, bucket: str, data: bytes, *, filename: str, metadata: dict[str, Any],
             file_id: ObjectId | None = None) -> dict[str, Any]:
    """Store ``data`` as one GridFS file of ``bucket`` and return its files document."""
    file_id = file_id or ObjectId()
    chunks = [{"files_id": file_id, "n": n, "data": Binary(data[offset:offset + CHUNK_SIZE])}
              for n, offset in enumerate(range(0, len(data), CHUNK_SIZE))]
    if chunks:
        db[f"{bucket}.chunks"].insert_many(chunks)
    doc = {"_id": file_id, "length": len(data), "chunkSize": CHUNK_SIZE,
           "uploadDate": dt.datetime.now(dt.UTC).replace(microsecond=0), "filename": filename,
           "metadata": metadata}
    db[f"{bucket}.files"].insert_one(doc)
    return doc


def file_bytes(db: Any, bucket: str, doc: dict[str, Any]) -> bytes:
    """The bytes of the files document ``doc``'s chunks, in order (whatever its length says)."""
    chunks = db[f"{bucket}.chunks"].find({"files_id": doc["_id"]}).sort("n", 1)
    return b"".join(bytes(chunk["data"]) for chunk in chunks)


def remove_file(db: Any, bucket: str, file_id: Any) -> None:
    """Remove one file by hand, its files document first (damage as a lost file leaves it)."""
    db[f"{bucket}.files"].delete_one({"_id": file_id})
    db[f"{bucket}.chunks"].delete_many({"files_id": file_id})
