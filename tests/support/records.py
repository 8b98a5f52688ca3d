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


def _points_at(record: dict[str, Any]) -> tuple[Any, list[Any]]:
    """The file holding ``record``'s bytes (``metadata.content.id``, else its own id: the stock
    rule docs/operations.md gives) and the files its variants list (its source among them)."""
    meta = record.get("metadata") or {}
    content = meta.get("content") or {}
    variants = [info.get("id") for formats in (meta.get("variants") or {}).values()
                for info in formats.values() if isinstance(info, dict) and info.get("id") is not None]
    return content.get("id", record["_id"]), variants


def _holders(doc: dict[str, Any]) -> list[Any]:
    meta = doc.get("metadata") or {}
    return list(meta["holders"]) if meta.get("holders") is not None else [meta.get("original_id")]


def unheld(db: Any) -> list[str]:
    """What breaks "a file lives as long as anything points at it" (issue 75), at a quiet
    point: a record whose bytes file is missing; a file a record points at that does not count
    that record among its holders (a let-go by another could free it under the record); a
    holder listed that does not point at the file (the file would outlive every real user).
    A variant file not written yet (pending) is not looked for."""
    problems: list[str] = []
    buckets = sorted(n.removesuffix(".images") for n in db.list_collection_names() if n.endswith(".images"))
    for bucket in buckets:
        files = db[f"{bucket}.files"]
        pointing: dict[Any, set[Any]] = {}
        for doc in images(db, bucket).find({}, {"metadata.content": 1, "metadata.variants": 1}):
            own, variants = _points_at(doc)
            if files.find_one({"_id": own}, {"_id": 1}) is None:
                problems.append(f"{bucket} {doc['_id']}: its bytes file {own} is missing")
            for file_id in [own, *variants]:
                pointing.setdefault(file_id, set()).add(doc["_id"])
        for file_id, users in pointing.items():
            found = files.find_one({"_id": file_id}, {"metadata.holders": 1, "metadata.original_id": 1})
            if found is not None and not users <= set(_holders(found)):
                problems.append(f"{bucket} {file_id}: held by {_holders(found)}, "
                                f"pointed at by {sorted(users)}")
        for found in files.find({"metadata.holders": {"$exists": True}}, {"metadata.holders": 1}):
            stale = set(_holders(found)) - pointing.get(found["_id"], set())
            if stale:
                problems.append(f"{bucket} {found['_id']}: holders {sorted(stale)} do not point at it")
    return problems
