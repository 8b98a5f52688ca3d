"""fsck: damage made on purpose (a deleted chunk, a changed chunk, a wrong length) and its repair."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os

import gridfs
import pymongo
import pytest
from bson import Binary, ObjectId

from avenue.media import AppMedia, Buckets, Library, Media
from avenue.presentation.objects import image_ref
from tests.helpers import image_bytes
from tests.support.commands import Matching
from tests.support.gridfs_files import CHUNK_SIZE, file_bytes, put_file, remove_file
from tests.support.gridfs_read import stock_gridfs
from tests.support.records import images, record
from tests.support.stored import stored

# fsck's subject is damaged files, which its tests make: not checked whole at each test's end
# (tests/conftest.py).
pytestmark = pytest.mark.damages_files


def raw_file(db, bucket: str = Buckets.UPLOADS, chunks: float = 2.5) -> dict:
    """An image stored by hand: its bytes a file of a few chunks with their sha256 recorded,
    as every file of ours has, under the image's id, and its record in ``<bucket>.images``
    naming them (by that id). Returns the bytes' files document."""
    data = os.urandom(int(CHUNK_SIZE * chunks))
    image_id, digest = ObjectId(), hashlib.sha256(data).hexdigest()
    doc = put_file(db, bucket, data, filename="data.bin", file_id=image_id, metadata={
        "role": "variant", "variant": "original", "key": f"{image_id}/original", "original_id": image_id,
        "sha256": digest})
    images(db, bucket).insert_one({**doc, "metadata": {"role": "original", "key": os.urandom(8).hex(),
                                                       "sha256": digest}})
    return doc


def problems_of(report, doc) -> set[str]:
    for finding in report.findings:
        if finding.doc["_id"] == doc["_id"]:
            return finding.codes
    return set()


def test_a_healthy_store_passes(db, runner):
    stored(db, Buckets.PRODUCTS, image_bytes("good/png16.png"), filename="a.png")
    raw_file(db)
    report = AppMedia.on(db).maintenance.fsck()
    assert report.ok and report.findings == [] and report.index_problems == []
    # Files: the image's bytes and its 8 variants, the raw image's bytes; and their 2 records.
    assert (report.files_checked, report.images_checked) == (1 + 8 + 1, 2)
    result = runner.invoke(args=["fsck"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("fsck: 10 files")


def test_it_reports_a_deleted_chunk(db):
    doc = raw_file(db)
    db[f"{Buckets.UPLOADS}.chunks"].delete_one({"files_id": doc["_id"], "n": 1})
    report = AppMedia.on(db).maintenance.fsck()
    assert not report.ok
    assert problems_of(report, doc) == {"missing_chunks", "length_mismatch", "sha256_mismatch"}
    finding = report.findings[0]
    assert "chunks 1 to 1 are missing" in [p["detail"] for p in finding.problems]


def test_it_reports_a_corrupted_chunk(db):
    doc = raw_file(db)
    chunk = db[f"{Buckets.UPLOADS}.chunks"].find_one({"files_id": doc["_id"], "n": 2})
    damaged = bytearray(chunk["data"])
    damaged[10] ^= 0xFF
    db[f"{Buckets.UPLOADS}.chunks"].update_one({"_id": chunk["_id"]},
                                               {"$set": {"data": Binary(bytes(damaged))}})
    assert problems_of(AppMedia.on(db).maintenance.fsck(), doc) == {"sha256_mismatch"}


def test_it_reports_a_wrong_length(db):
    doc = raw_file(db)
    db[f"{Buckets.UPLOADS}.files"].update_one({"_id": doc["_id"]}, {"$set": {"length": doc["length"] + 7}})
    assert problems_of(AppMedia.on(db).maintenance.fsck(), doc) == {"length_mismatch"}


def test_it_reports_a_short_chunk_in_the_middle(db):
    doc = raw_file(db)
    chunk = db[f"{Buckets.UPLOADS}.chunks"].find_one({"files_id": doc["_id"], "n": 0})
    db[f"{Buckets.UPLOADS}.chunks"].update_one({"_id": chunk["_id"]},
                                               {"$set": {"data": Binary(chunk["data"][:100])}})
    assert {"short_chunk", "sha256_mismatch"} <= problems_of(AppMedia.on(db).maintenance.fsck(), doc)


def test_repair_corrects_a_wrong_length_when_the_bytes_are_intact(db, media_core):
    doc = raw_file(db)
    db[f"{Buckets.UPLOADS}.files"].update_one({"_id": doc["_id"]}, {"$set": {"length": 5}})
    report = AppMedia.on(db, media_core).maintenance.fsck(repair=True)
    assert report.ok
    assert report.repairs == [{"action": "length_corrected", "bucket": Buckets.UPLOADS, "id": str(doc["_id"]),
                               "filename": "data.bin", "reason": report.repairs[0]["reason"],
                               "old_length": 5, "new_length": doc["length"]}]
    assert db[f"{Buckets.UPLOADS}.files"].find_one({"_id": doc["_id"]})["length"] == doc["length"]


def test_repair_removes_an_image_replaced_in_place_whose_bytes_are_lost(db, media_core):
    # Until records left .files, a replace left the image's own document there with no chunks
    # (and, before that, at length 0, which stock GridFS read as an empty file: head_length).
    # Now the record is no GridFS file at all, and its bytes are a whole file of their own.
    doc = stored(db, Buckets.PRODUCTS, image_bytes("good/png16.png"), filename="a.png", kind="product")
    upload = Library.Upload("new.jpg", image_bytes("good/grayscale.jpg"))
    Library(db, Buckets.PRODUCTS, Media()).replace(doc["_id"], upload)
    head = record(db, Buckets.PRODUCTS, doc["_id"])
    content = db[f"{Buckets.PRODUCTS}.files"].find_one({"_id": head["metadata"]["content"]["id"]})
    assert head["length"] == content["length"] == head["metadata"]["content"]["length"] > 0
    assert db[f"{Buckets.PRODUCTS}.files"].count_documents({"metadata.role": "original"}) == 0
    with stock_gridfs(db):  # the bytes, a whole file of their own, read by stock GridFS
        current = gridfs.GridFSBucket(db, bucket_name=Buckets.PRODUCTS).open_download_stream(
            content["_id"]).read()
    assert hashlib.sha256(current).hexdigest() == head["metadata"]["sha256"]
    assert AppMedia.on(db).maintenance.fsck().findings == []  # no head to get a length wrong
    # Its bytes lost: the record names a file that is not there.
    remove_file(db, Buckets.PRODUCTS, content["_id"])
    assert problems_of(AppMedia.on(db).maintenance.fsck(), head) == {"missing_content"}
    report = AppMedia.on(db, media_core).maintenance.fsck(repair=True)
    assert report.ok
    assert [(r["action"], r["id"]) for r in report.repairs] == [("removed_with_variants", str(doc["_id"]))]
    assert record(db, Buckets.PRODUCTS, doc["_id"]) is None


def test_repair_removes_a_damaged_original_with_its_variants_and_names_who_used_it(db, media_core):
    doc = stored(db, Buckets.PRODUCTS, image_bytes("good/png16.png"), filename="a.png", kind="product")
    db.shop_products.insert_one({"sku": "S1", "name": "n", "price": 1, "images": [image_ref(doc)]})
    db[f"{Buckets.PRODUCTS}.chunks"].delete_many({"files_id": doc["_id"]})
    report = AppMedia.on(db, media_core).maintenance.fsck(repair=True)
    assert report.ok and report.remaining.problem_count == 0
    removal = [r for r in report.repairs if r["id"] == str(doc["_id"])]
    assert removal[0]["action"] == "removed_with_variants" and removal[0]["variants"] == 8
    assert removal[0]["referenced_by"] == {"products": ["S1"], "pages": []}
    assert db[f"{Buckets.PRODUCTS}.files"].count_documents({}) == 0
    assert db[f"{Buckets.PRODUCTS}.chunks"].count_documents({}) == 0
    assert images(db, Buckets.PRODUCTS).count_documents({}) == 0


def test_repair_renders_a_damaged_or_missing_variant_again_under_the_same_id(db, media_core):
    doc = stored(db, Buckets.BUILDER, image_bytes("good/png16.png"), filename="a.png", kind="builder")
    card = doc["metadata"]["variants"]["card"]["webp"]
    thumb = doc["metadata"]["variants"]["thumb"]["webp"]
    db[f"{Buckets.BUILDER}.chunks"].update_one({"files_id": card["id"]},
                                               {"$set": {"data": Binary(b"garbage")}})
    remove_file(db, Buckets.BUILDER, thumb["id"])
    found = AppMedia.on(db).maintenance.fsck()
    assert problems_of(found, {"_id": card["id"]}) >= {"sha256_mismatch"}
    assert problems_of(found, doc) == {"missing_variant"}

    report = AppMedia.on(db, media_core).maintenance.fsck(repair=True)
    assert report.ok, report.summary()
    assert [r["action"] for r in report.repairs] == ["variants_rendered_again"]
    for info in (card, thumb):
        variant = db[f"{Buckets.BUILDER}.files"].find_one({"_id": info["id"]})
        served = file_bytes(db, Buckets.BUILDER, variant)
        assert hashlib.sha256(served).hexdigest() == variant["metadata"]["sha256"]


def test_pending_variants_are_a_state_it_lists_and_the_command_exits_0(db, runner):
    # Left for after an answer that never came (a worker gone, or an image trashed before
    # its render): pending an hour on.
    class Unanswered(Media):
        def later(self, job):
            return False  # kept for after an answer that never comes

    doc = stored(db, Buckets.UPLOADS, image_bytes("good/png16.png"), filename="a.png", media=Unanswered())
    images(db, Buckets.UPLOADS).update_one({"_id": doc["_id"]}, {"$set": {
        "uploadDate": doc["uploadDate"] - dt.timedelta(hours=1)}})
    report = AppMedia.on(db).maintenance.fsck()
    assert report.ok and report.findings == [] and report.state_counts == {"pending_variant": 7}
    assert [(f.doc["_id"], len(f.states)) for f in report.states] == [(doc["_id"], 7)]
    checked = runner.invoke(args=["fsck"])
    assert checked.exit_code == 0, checked.output  # was 1: seven pending_variant problems
    assert checked.output.count(f"{Buckets.UPLOADS} {doc['_id']} (a.png): pending_variant: ") == 7
    assert "states (not problems):" in checked.output and "7 variants pending" in checked.output
    answer = json.loads(runner.invoke(args=["fsck", "--json"]).output)
    assert answer["ok"] and answer["problems"] == [] and answer["state_counts"] == {"pending_variant": 7}
    assert [len(item["states"]) for item in answer["states"]] == [7]
    # A fault beside them is one still.
    broken = raw_file(db)
    db[f"{Buckets.UPLOADS}.chunks"].delete_one({"files_id": broken["_id"], "n": 0})
    assert runner.invoke(args=["fsck"]).exit_code == 1


def test_repair_removes_a_variant_whose_original_is_gone(db, media_core):
    stray = put_file(db, Buckets.PRODUCTS, b"v" * 50, filename="og.webp", metadata={
        "role": "variant", "key": f"{ObjectId()}/og.webp", "original_id": ObjectId(), "sha256": "0" * 64})
    assert problems_of(AppMedia.on(db).maintenance.fsck(), stray) == {"orphan_variant", "sha256_mismatch"}
    report = AppMedia.on(db, media_core).maintenance.fsck(repair=True)
    assert report.ok and [r["action"] for r in report.repairs] == ["removed"]
    assert db[f"{Buckets.PRODUCTS}.files"].find_one({"_id": stray["_id"]}) is None


def test_it_reports_and_recreates_a_missing_index(db, media_core):
    db[f"{Buckets.PRODUCTS}.chunks"].drop_index("files_id_1_n_1")
    report = AppMedia.on(db).maintenance.fsck()
    assert report.index_problems == [
        {"collection": f"{Buckets.PRODUCTS}.chunks", "index": "{files_id: 1, n: 1} unique",
         "detail": "missing"}]
    repaired = AppMedia.on(db, media_core).maintenance.fsck(repair=True)
    assert repaired.ok and repaired.repairs[0]["action"] == "indexes_created"
    assert AppMedia.on(db).maintenance.fsck().index_problems == []


def test_the_command_exits_1_while_problems_remain_and_0_after_a_repair(db, runner):
    doc = raw_file(db)
    db[f"{Buckets.UPLOADS}.chunks"].delete_one({"files_id": doc["_id"], "n": 0})
    result = runner.invoke(args=["fsck"])
    assert result.exit_code == 1
    missing = f"{Buckets.UPLOADS} {doc['_id']} (data.bin): missing_chunks: chunks 0 to 0 are missing"
    assert missing in result.stdout
    repaired = runner.invoke(args=["fsck", "--repair", "--json"])
    assert repaired.exit_code == 0, repaired.output
    body = json.loads(repaired.stdout)
    assert body["ok"] and body["remaining"] == []
    assert [(r["action"], r["id"]) for r in body["repairs"]] == [("removed_with_variants", str(doc["_id"]))]
    assert runner.invoke(args=["fsck", "--quiet"]).exit_code == 0
    # The repair is audited by the command, once; the checks that repaired nothing are not.
    assert [entry["target"] for entry in db.audit_logs.find({"action": "storage_repaired"})] == [
        {"repairs": 1, "remaining": 0}]


def _small_files(db, n: int, bucket: str = Buckets.UPLOADS) -> list[dict]:
    """``n`` one-chunk files (a few bytes each, a file not of an image), in ``_id`` order."""
    docs = []
    for _ in range(n):
        data = os.urandom(16)
        docs.append(put_file(db, bucket, data, filename="s.bin", metadata={
            "key": os.urandom(8).hex(), "sha256": hashlib.sha256(data).hexdigest()}))
    return docs


def test_a_groups_small_files_are_read_in_one_fetch_of_one_range_of_chunks(backend, db_name, db):
    """A read of four chunks a round trip was a round trip per four small files (62 s per
    100,000 on the embedded database), and an $in of a group's 100 ids costs there with the
    square of its length: a group's chunks are one range of the chunk index, read in one
    fetch when they are small."""
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("command monitoring needs the wire protocol")
    seen = Matching(lambda event: event.database_name == db_name and event.command_name in ("find", "getMore")
                    and f"{Buckets.UPLOADS}.chunks" in (event.command.get("find"),
                                                        event.command.get("collection")))
    client = pymongo.MongoClient(backend[1], event_listeners=[seen])
    try:
        db = client[db_name]
        _small_files(db, 100)
        seen.commands.clear()
        report = AppMedia.on(db).maintenance.fsck()
        assert report.ok and report.files_checked == 100
        finds = [c for c in seen.commands if "find" in c]
        assert len(finds) == 1 and "$in" not in finds[0]["filter"]["files_id"]
        assert len(seen.commands) == 1  # no getMore: the group's 100 chunks came in the first fetch
    finally:
        client.close()


def test_orphan_chunks_among_a_groups_files_are_no_files_chunks(db):
    # One range of chunks holds everything between a group's first and last id: chunks whose
    # file is gone (gc's to collect) must not be taken for the next file's.
    first, gone, last = _small_files(db, 3)
    db[f"{Buckets.UPLOADS}.files"].delete_one({"_id": gone["_id"]})
    report = AppMedia.on(db).maintenance.fsck()
    assert report.ok and report.files_checked == 2, report.summary()
