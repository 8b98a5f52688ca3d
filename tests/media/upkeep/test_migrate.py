"""upkeep/migrate.py and store/layout.py: a store written before layout 2 (the records as the
``role: "original"`` documents of ``<bucket>.files``) converted by ``migrate-media``, and the
app's refusal to start on it before.

The old store is made by hand: images stored through the app, then each record written back
as the old layout had it (tests/support/gridfs_files.put_file): a head holding its bytes in
its own chunks, or, for an image replaced in place, a chunkless head whose ``metadata.content``
names its bytes' file, one of them with the ``length`` 0 heads had before they kept their
bytes' length. The trash's heads, and the variants, are as the old layout left them.
"""

from __future__ import annotations

import logging
from hashlib import sha256
from typing import Any

import pytest
from bson import ObjectId

from avenue.db import get_mongo
from avenue.errors import StoreNotMigrated
from avenue.media import Buckets
from avenue.media.buckets import STORED, TRASH
from avenue.media.store import layout
from avenue.media.upkeep.migrate import migrate
from avenue.readiness import prepare_at_start
from tests.helpers import form
from tests.support.client import UPLOADS, uploaded
from tests.support.gridfs_files import file_bytes, put_file
from tests.support.gridfs_read import current_bytes
from tests.support.gridfs_spec import invalid_files
from tests.support.records import images

# An old store has chunkless heads in .files, which the migration converts: not checked whole
# at each test's end (tests/conftest.py).
pytestmark = pytest.mark.damages_files

MEDIA = "/api/builder/media"


def downgrade(db) -> None:
    """Write ``db``'s image records back in the old layout (the module doc), and forget its marker."""
    for bucket in STORED:
        files, chunks = db[f"{bucket}.files"], db[f"{bucket}.chunks"]
        for record in list(images(db, bucket).find()):
            own = files.find_one({"_id": record["_id"]})
            if own is not None:  # the image's bytes file (of its first version, once replaced)
                data = file_bytes(db, bucket, own)
                files.delete_one({"_id": own["_id"]})
                chunks.delete_many({"files_id": own["_id"]})
            if (record["metadata"]).get("content"):
                files.insert_one(record)  # a chunkless head: its bytes are in the content file
            else:
                head = put_file(db, bucket, data, filename=record["filename"], metadata=record["metadata"],
                                file_id=record["_id"])
                files.update_one({"_id": head["_id"]}, {"$set": {"uploadDate": record["uploadDate"]}})
            images(db, bucket).delete_one({"_id": record["_id"]})
    db[layout.COLLECTION].delete_many({})


def snapshot(db) -> dict[str, list[Any]]:
    """Every document of the buckets and of the layout's collection, in a comparable order."""
    names = [f"{bucket}.{part}" for bucket in STORED for part in ("files", "chunks", "images")]
    return {name: sorted(db[name].find(), key=lambda doc: str(doc["_id"]))
            for name in (*names, layout.COLLECTION)}


def heads(db) -> dict[str, int]:
    return {bucket: db[f"{bucket}.files"].count_documents({"metadata.role": "original"}) for bucket in STORED}


@pytest.fixture
def old_store(app, client, db, editor):
    """A store in the old layout; what each image served before (media object, bytes), by id."""
    served: dict[str, tuple[dict, bytes]] = {}

    def keep(media: dict) -> None:
        answer = client.get(media["url"])
        assert answer.status_code == 200, media
        served[media["id"]] = (media, answer.data)

    keep(uploaded(client, editor, "good/progressive.jpg", to=MEDIA))
    keep(uploaded(client, editor, "good/png16.png", to=UPLOADS))
    for name, length_zero in (("good/alpha.png", False), ("good/cmyk.jpg", True)):
        media = uploaded(client, editor, name, to=MEDIA)
        answer = client.put(f"{MEDIA}/{media['id']}", headers=editor, data=form("good/grayscale.jpg"
                                                                                 if not length_zero else
                                                                                 "good/tiny_1x1.png"))
        assert answer.status_code == 200, answer.get_json()
        keep(answer.get_json())
    trashed = uploaded(client, editor, "good/palette_transparent.png", to=MEDIA)
    assert client.delete(f"{MEDIA}/{trashed['id']}", headers=editor).status_code in (200, 204)
    downgrade(db)
    zero = ObjectId(list(served)[-1])  # the second replaced image: a head with length 0, as before
    db[f"{Buckets.BUILDER}.files"].update_one({"_id": zero}, {"$set": {"length": 0}})
    return served


def trash_heads(db) -> list[dict]:
    return list(db[f"{TRASH}.files"].find({"metadata.role": "original"}))


def test_the_old_store_is_what_the_migration_starts_from(db, old_store):
    assert heads(db)[Buckets.BUILDER] == 3 and heads(db)[Buckets.UPLOADS] == 1 and trash_heads(db)
    chunkless = [doc for doc in db[f"{Buckets.BUILDER}.files"].find({"metadata.content": {"$exists": True}})]
    assert len(chunkless) == 2 and {doc["length"] == 0 for doc in chunkless} == {True, False}
    assert invalid_files(db)  # chunkless heads: not valid GridFS files
    assert db[layout.COLLECTION].count_documents({}) == 0


def test_the_app_refuses_to_start_on_an_old_store_naming_the_command_and_starts_after(
        app_factory, db, old_store, caplog):
    before = app_factory()
    with before.app_context(), pytest.raises(StoreNotMigrated) as refused:
        get_mongo().ensure_indexes()
    assert layout.COMMAND in refused.value.message
    for path in (MEDIA, "/readyz"):  # every request, and the probe a load balancer routes by
        answer = before.test_client().get(path)
        assert answer.status_code == 503, path
        assert answer.get_json()["error"]["code"] == "store_not_migrated"
        assert "migrate-media" in answer.get_json()["error"]["message"]
    with caplog.at_level(logging.CRITICAL):  # a worker's start (gunicorn.conf.py) says why
        assert prepare_at_start(before) is False
    assert any("migrate-media" in line.getMessage() for line in caplog.records)
    result = before.test_cli_runner().invoke(args=["gc"])  # every command but the migration refuses
    assert result.exit_code == 1 and "migrate-media" in result.output
    result = before.test_cli_runner().invoke(args=["migrate-media"])
    assert result.exit_code == 0, result.output
    after = app_factory()
    with after.app_context():
        get_mongo().ensure_indexes()
    assert after.test_client().get("/readyz").status_code == 200
    assert prepare_at_start(after) is True
    assert db[layout.COLLECTION].find_one({"_id": layout.MARKER_ID})["version"] == layout.VERSION


def test_a_new_store_is_marked_at_its_first_start(db):
    assert db[layout.COLLECTION].find_one({"_id": layout.MARKER_ID})["version"] == layout.VERSION


def test_the_command_migrates_every_bucket_and_every_image_serves_the_same_bytes(
        app_factory, db, old_store, editor):
    trashed = {doc["_id"]: doc["metadata"]["sha256"] for doc in trash_heads(db)}
    result = app_factory().test_cli_runner().invoke(args=["migrate-media"])
    assert result.exit_code == 0, result.output
    assert f"migrated {Buckets.BUILDER}: 3 records (1 heads became their bytes' file, 2 chunkless heads " \
           "removed, 1 lengths set)" in result.output
    assert f"migrated {Buckets.UPLOADS}: 1 records" in result.output
    assert f"migrated {TRASH}: {len(trashed)} records" in result.output
    assert f"migrated {3 + 1 + len(trashed)} image records to layout 2" in result.stdout
    # The layout: no head left, every files document a whole GridFS file, each record beside.
    assert heads(db) == dict.fromkeys(STORED, 0)
    assert invalid_files(db) == []
    for image_id, (media, body) in old_store.items():
        record = images(db, Buckets.BUILDER).find_one({"_id": ObjectId(image_id)}) or \
            images(db, Buckets.UPLOADS).find_one({"_id": ObjectId(image_id)})
        assert record is not None and record["length"] == len(body) == media["bytes"], media
    own = db[f"{Buckets.BUILDER}.files"].find_one({"_id": ObjectId(next(iter(old_store)))})
    assert own["metadata"] == {
        "role": "variant", "variant": "original", "key": f"{own['_id']}/original", "original_id": own["_id"],
        "format": "jpeg", "content_type": "image/jpeg", "sha256": old_store[str(own["_id"])][0]["sha256"],
        "width": own["metadata"]["width"], "height": own["metadata"]["height"]}
    # Through a fresh app: every image's URL serves what it served before.
    client = app_factory().test_client()
    for image_id, (media, body) in old_store.items():
        answer = client.get(media["url"])
        assert answer.status_code == 200 and answer.data == body, media
        bucket = Buckets.UPLOADS if images(db, Buckets.UPLOADS).find_one({"_id": ObjectId(image_id)}) \
            else Buckets.BUILDER
        assert current_bytes(db, bucket, ObjectId(image_id)) == body  # and stock GridFS, by the rule
    for image_id, digest in trashed.items():
        assert sha256(current_bytes(db, TRASH, image_id)).hexdigest() == digest
    audited = db.audit_logs.find_one({"action": "media_layout_migrated"})
    assert audited is not None and audited["target"]["records"] == 3 + 1 + len(trashed)


def test_a_second_run_changes_nothing(app_factory, db, old_store):
    runner = app_factory().test_cli_runner()
    assert runner.invoke(args=["migrate-media"]).exit_code == 0
    migrated = snapshot(db)
    result = runner.invoke(args=["migrate-media"])
    assert result.exit_code == 0, result.output
    assert "migrated 0 image records" in result.output
    assert snapshot(db) == migrated


def test_a_dry_run_changes_nothing_and_counts_what_a_run_would_do(app_factory, db, old_store):
    old = snapshot(db)
    result = app_factory().test_cli_runner().invoke(args=["migrate-media", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"would migrate {Buckets.BUILDER}: 3 records" in result.output
    assert snapshot(db) == old
    assert db.audit_logs.count_documents({"action": "media_layout_migrated"}) == 0


def test_a_run_cut_off_midway_is_finished_by_the_next(db, old_store, monkeypatch):
    from avenue.media.upkeep import migrate as module

    real, calls = module.migrate_one, []

    def cut_after_two(*args, **kwargs):
        if len(calls) == 2:
            raise RuntimeError("cut off")
        calls.append(args)
        return real(*args, **kwargs)

    total = sum(heads(db).values())
    monkeypatch.setattr(module, "migrate_one", cut_after_two)
    with pytest.raises(RuntimeError):
        migrate(db)
    assert db[layout.COLLECTION].count_documents({}) == 0  # not marked: the app still refuses
    monkeypatch.setattr(module, "migrate_one", real)
    report = migrate(db)
    assert report.migrated == total - 2  # the two done before the cut are not done again
    assert heads(db) == dict.fromkeys(STORED, 0) and invalid_files(db) == []
    assert db[layout.COLLECTION].count_documents({}) == 1


def test_a_chunkless_head_whose_bytes_file_is_missing_is_listed_and_migrated_all_the_same(db):
    meta = {"role": "original", "key": "k-own", "sha256": "ab" * 32, "content_type": "image/png",
            "format": "png", "width": 3, "height": 2, "variants": {}}
    own = put_file(db, Buckets.UPLOADS, b"\x89PNG-bytes", filename="own.png", metadata=meta)
    lost = ObjectId()
    chunkless = {"_id": ObjectId(), "length": 7, "chunkSize": 261120, "uploadDate": own["uploadDate"],
                 "filename": "lost.png", "metadata": {**meta, "key": "k-lost",
                                                       "content": {"id": lost, "length": 7}}}
    db[f"{Buckets.UPLOADS}.files"].insert_one(chunkless)
    report = migrate(db)
    assert report.missing_content == [{"bucket": Buckets.UPLOADS, "id": str(chunkless["_id"]),
                                       "content_id": str(lost)}]
    assert report.counts[Buckets.UPLOADS] == {"records": 2, "bytes_files": 1, "heads_removed": 1,
                                              "lengths_set": 0}
    assert images(db, Buckets.UPLOADS).find_one({"_id": chunkless["_id"]})["length"] == 7
    record = images(db, Buckets.UPLOADS).find_one({"_id": own["_id"]})
    assert {key: record[key] for key in ("length", "chunkSize", "filename", "metadata")} == \
        {key: own[key] for key in ("length", "chunkSize", "filename", "metadata")}  # the head as it was
    assert db[f"{Buckets.UPLOADS}.files"].find_one({"_id": own["_id"]})["metadata"] == {
        "role": "variant", "variant": "original", "key": f"{own['_id']}/original", "original_id": own["_id"],
        "format": "png", "content_type": "image/png", "sha256": "ab" * 32, "width": 3, "height": 2}
    assert current_bytes(db, Buckets.UPLOADS, own["_id"]) == b"\x89PNG-bytes"
    assert invalid_files(db) == []
