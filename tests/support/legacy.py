"""The old app's disk and documents, as import-legacy finds them (the test files' legacy part), an
import of them all, and a comparison of two imported databases that ids and dates do not upset."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator

import mongomock
from bson import ObjectId

from avenue.media import Buckets
from tests.helpers import FIXTURES, make_app
from tests.support import records

LEGACY_UPLOADS = FIXTURES / "legacy_uploads"


def load_legacy_db(db) -> None:
    """The old app's documents; its ``uploads`` list of paths becomes ``{path}`` documents."""
    data = json.loads((FIXTURES / "legacy_db.json").read_text())
    db.shop_products.insert_many(data["shop_products"])
    db.page_content.insert_many(data["page_content"])
    db.uploads.insert_many([{"path": path} for path in data["uploads"]])


def run(runner, *args):
    """``import-legacy`` with ``args`` through ``runner``: its result, and its report when --json."""
    result = runner.invoke(args=["import-legacy", *args])
    return result, (json.loads(result.stdout) if "--json" in args else None)


@contextlib.contextmanager
def uninterrupted_import() -> Iterator[tuple]:
    """One uninterrupted ``import-legacy --json`` of the whole legacy folder, on a mongomock
    database of its own: (its app, database, result, report), for a module's tests to share
    (each full import is 17 images stored with their variants)."""
    from avenue.db import get_db, get_mongo

    shared = mongomock.MongoClient()
    app = make_app(((lambda *args, **kwargs: shared), "mongodb://mongomock.invalid:27017"),
                   f"avenue_test_{uuid.uuid4().hex[:12]}")
    with app.app_context():
        get_mongo().ensure_indexes()
        db = get_db()
    load_legacy_db(db)
    result, report = run(app.test_cli_runner(), str(LEGACY_UPLOADS), "--json")
    try:
        yield app, db, result, report
    finally:
        shared.close()


def normalized_state(db) -> dict:
    """The database with ids and dates replaced by what they stand for, to compare two databases."""
    names: dict = {}
    buckets = (Buckets.PRODUCTS, Buckets.BUILDER, Buckets.UPLOADS)
    for bucket in buckets:
        for doc in records.images(db, bucket).find(records.IMAGE):
            names[doc["_id"]] = f"{bucket}:{doc['metadata']['key']}"
    for bucket in buckets:
        for doc in db[f"{bucket}.files"].find({"metadata.role": "variant"}):
            meta = doc["metadata"]
            # The file of an image's bytes has the image's id: it keeps the image's name.
            owner = names.get(meta["original_id"], "?")
            names.setdefault(doc["_id"], f"{owner}/{meta['variant']}.{meta['format']}")

    def clean(value):
        if isinstance(value, dict):
            if value.get("role") == "variant" or "chunk_size" in value:
                # A variant's encoded bytes are the media core's business (and may differ by a few
                # bytes between renders); which variants exist, where, and their sizes are ours.
                value = {k: v for k, v in value.items() if k not in ("length", "sha256")}
            return {k: clean(v) for k, v in value.items()
                    if k not in ("_id", "uploaded_at", "uploadDate", "updated_at", "imported_at")}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, ObjectId):
            return names.get(value, "unknown-id")
        if isinstance(value, str):
            # An id, or a variant key "<original id>/<variant>.<format>".
            head, slash, tail = value.partition("/")
            if ObjectId.is_valid(head) and ObjectId(head) in names:
                return names[ObjectId(head)] + slash + tail
        return value

    def file_entry(doc: dict) -> tuple:
        if doc["metadata"]["role"] == "variant":
            doc = {k: v for k, v in doc.items() if k != "length"}
        return names[doc["_id"]], json.dumps(clean(doc), sort_keys=True, default=str)

    return {
        "files": {bucket: sorted(file_entry(d) for d in db[f"{bucket}.files"].find()) for bucket in buckets},
        "images": {bucket: sorted(file_entry(d) for d in records.images(db, bucket).find())
                   for bucket in buckets},
        # The chunks of each image's bytes (the file under its id).
        "original_chunks": {bucket: sorted(
            (names[d["_id"]], db[f"{bucket}.chunks"].count_documents({"files_id": d["_id"]}))
            for d in records.images(db, bucket).find(records.IMAGE)) for bucket in buckets},
        "legacy_paths": sorted(json.dumps(clean(d), sort_keys=True) for d in db.legacy_paths.find()),
        "shop_products": {d["sku"]: clean(d) for d in db.shop_products.find()},
        "page_content": {d["slug"]: clean(d) for d in db.page_content.find()},
    }
