"""Every file in a database checked against the GridFS specification, not the app's rules.

The specification (github.com/mongodb/specifications, source/gridfs/gridfs-spec.md): a
file is a document of ``<bucket>.files`` with ``length`` and ``chunkSize``; its bytes are the
documents of ``<bucket>.chunks`` whose ``files_id`` is its ``_id``, numbered ``n = 0..k-1``
with ``k = ceil(length / chunkSize)``, each ``chunkSize`` bytes long but the last, which holds
the rest. What a stock driver's download does (pymongo raises ``CorruptGridFile`` on a missing,
short or extra chunk) is what this checks, for every document of every ``*.files`` collection,
so a store it passes is one every stock GridFS tool reads in full.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Invalid:
    """One files document that is not a valid GridFS file, and why."""

    bucket: str
    file_id: Any
    problem: str


def buckets(db: Any) -> list[str]:
    """The buckets of ``db``: every ``<name>.files`` collection's ``<name>``."""
    names = db.list_collection_names()
    return sorted(name.removesuffix(".files") for name in names if name.endswith(".files"))


def check_file(db: Any, bucket: str, doc: dict[str, Any],
               chunks: list[dict[str, Any]] | None = None) -> str | None:
    """Why ``doc`` (a document of ``<bucket>.files``) is not a valid GridFS file; None: it is.
    ``chunks``: its chunks (``n`` and ``data``) when read already, else they are read here."""
    length, chunk_size = doc.get("length"), doc.get("chunkSize")
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        return f"length is {length!r}"
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size <= 0:
        return f"chunkSize is {chunk_size!r}"
    expected = math.ceil(length / chunk_size)
    seen: set[int] = set()
    if chunks is None:
        chunks = list(db[f"{bucket}.chunks"].find({"files_id": doc["_id"]}, {"n": 1, "data": 1}))
    for chunk in chunks:
        n = chunk.get("n")
        if not isinstance(n, int) or n in seen or n >= expected:
            return f"extra or repeated chunk n={n!r} (expected {expected})"
        seen.add(n)
        want = chunk_size if n < expected - 1 else length - chunk_size * (expected - 1)
        if len(chunk.get("data") or b"") != want:
            return f"chunk n={n} holds {len(chunk.get('data') or b'')} bytes, {want} expected"
    missing = sorted(set(range(expected)) - seen)
    if missing:
        return f"missing chunks n={missing[:5]}{'...' if len(missing) > 5 else ''} of {expected}"
    return None


def invalid_files(db: Any) -> list[Invalid]:
    """Every files document of ``db`` that is not a valid GridFS file: each bucket's files and
    chunks read in one pass each (a test's database is small; the suite checks every one)."""
    found = []
    for bucket in buckets(db):
        chunks: dict[Any, list[dict[str, Any]]] = {}
        for chunk in db[f"{bucket}.chunks"].find({}, {"files_id": 1, "n": 1, "data": 1}):
            chunks.setdefault(chunk.get("files_id"), []).append(chunk)
        for doc in db[f"{bucket}.files"].find({}, {"length": 1, "chunkSize": 1}):
            problem = check_file(db, bucket, doc, chunks.get(doc["_id"], []))
            if problem is not None:
                found.append(Invalid(bucket, doc["_id"], problem))
    return found
