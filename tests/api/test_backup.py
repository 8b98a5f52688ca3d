"""backup -> restore: the same ids, bytes, metadata and documents; refusals; damaged archives."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tracemalloc

import pytest
from bson import ObjectId

from avenue.clock import now as clock_now
from avenue.media import Buckets
from avenue.ops import backup as backup_module
from avenue.presentation.objects import image_ref
from tests.helpers import image_bytes
from tests.support import records
from tests.support.gridfs_files import CHUNK_SIZE, file_bytes, put_file
from tests.support.stored import stored


def populate(db, auth) -> None:
    """A little of everything: each bucket, products, a page, a legacy path, users and a token."""
    product = stored(db, Buckets.PRODUCTS, image_bytes("good/png16.png"), filename="p.png", kind="product")
    media = stored(db, Buckets.BUILDER, image_bytes("good/tiny_1x1.png"), filename="b.png", kind="builder",
                   alt="a dot")
    stored(db, Buckets.UPLOADS, image_bytes("good/png16.png"), filename="u.png", owner="u1",
           scope="u1:private",
           visibility="private")
    stored(db, Buckets.TEMP, image_bytes("good/tiny_1x1.png"), filename="t.png",
           expires_at=clock_now())
    put_file(db, Buckets.UPLOADS, os.urandom(CHUNK_SIZE + 5), filename="two-chunks.bin",
             metadata={"key": "raw", "sha256": None})
    now = clock_now()
    db.shop_products.insert_one({"sku": "AV-1", "name": "Uno", "price": 1000, "images": [image_ref(product)],
                                 "created_at": now, "updated_at": now})
    db.page_content.insert_one({"slug": "home", "title": "Home", "published": True,
                                "blocks": [{"type": "image", "media_id": str(media["_id"])}],
                                "media_ids": [media["_id"]], "created_at": now, "updated_at": now})
    db.legacy_paths.insert_one({"path": "/uploads/products/AV-1/p.png", "bucket": Buckets.PRODUCTS,
                                "file_id": product["_id"], "sha256": "ab" * 32, "imported_at": now})
    auth.token("editor")


def files_state(db) -> dict:
    """Every files document and the sha256 of its bytes, per bucket."""
    state = {}
    for bucket in Buckets.BY_ALIAS.values():
        for doc in db[f"{bucket}.files"].find():
            data = file_bytes(db, bucket, doc)
            state[(bucket, doc["_id"])] = (doc, hashlib.sha256(data).hexdigest(), len(data))
    return state


def records_state(db) -> dict:
    """Every image record, per bucket."""
    return {(bucket, doc["_id"]): doc for bucket in Buckets.BY_ALIAS.values()
            for doc in records.images(db, bucket).find()}


def documents(db, name: str) -> list[dict]:
    return sorted(db[name].find(), key=lambda doc: str(doc["_id"]))


@pytest.fixture
def target(app_factory, db_name):
    """A second, empty database on the same server to restore into."""
    other = app_factory(MONGO_DB=f"{db_name}_restore")
    yield other
    other.extensions["avenue.mongo"].client.drop_database(f"{db_name}_restore")


def invoke(other, *args):
    """Run a command on ``other`` (the ``db`` fixture has the first app's context pushed)."""
    with other.app_context():
        return other.test_cli_runner().invoke(args=list(args))


def target_db(other):
    from avenue.db import get_mongo

    return get_mongo(other).db


def backed_up_and_restored(db, target, tmp_path, media_core):
    """``db`` backed up to a file and restored into ``target``'s empty database: that database."""
    archive = tmp_path / "a.tar"
    with open(archive, "wb") as out:
        backup_module.backup(db, out, media=media_core)
    other = target_db(target)
    with open(archive, "rb") as source:
        assert backup_module.restore(other, source, media=media_core).ok
    return other


def test_a_backup_restores_the_same_ids_bytes_metadata_and_documents(db, auth, runner, target, tmp_path):
    populate(db, auth)
    archive = tmp_path / "avenue.tar"
    result = runner.invoke(args=["backup", str(archive)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("backup: 37 files")
    assert ", 4 images, " in result.stdout.splitlines()[-1]
    assert not (tmp_path / "avenue.tar.partial").exists()

    restored = invoke(target, "restore", str(archive), "--json")
    assert restored.exit_code == 0, restored.output
    report = json.loads(restored.stdout)
    assert report["ok"] and report["complete_archive"]
    other = target_db(target)

    assert files_state(other) == files_state(db)
    assert len(records_state(db)) == 4 and records_state(other) == records_state(db)
    for name in ("shop_products", "page_content", "legacy_paths"):
        assert documents(other, name) == documents(db, name)
    # Users come back without their password hash, API tokens not at all.
    users = documents(db, "users")
    # Neither the hash nor the session epoch travels (a restore ends every session).
    left_out = {"password_hash", "session_epoch"}
    assert [{k: v for k, v in u.items() if k not in left_out} for u in users] == [
        {k: v for k, v in u.items() if k not in left_out} for u in documents(other, "users")]
    assert not any("session_epoch" in u for u in documents(other, "users"))
    assert all(u["password_hash"] == "" for u in documents(other, "users"))
    assert other.api_tokens.count_documents({}) == 0


def test_restored_media_is_served_like_the_original(db, auth, client, target, tmp_path, media_core):
    populate(db, auth)
    other = backed_up_and_restored(db, target, tmp_path, media_core)
    product = other.shop_products.find_one({"sku": "AV-1"})
    url = f"/media/products/{product['images'][0]['id']}.png"
    assert target.test_client().get(url).data == client.get(url).data


def test_password_hashes_are_kept_only_when_asked(db, auth, runner, target, tmp_path):
    email, password = auth.user("admin")
    archive = tmp_path / "with-secrets.tar"
    assert runner.invoke(args=["backup", str(archive), "--include-password-hashes", "--quiet"]).exit_code == 0
    assert invoke(target, "restore", str(archive), "--quiet").exit_code == 0
    response = target.test_client().post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200


def test_it_refuses_to_restore_over_a_database_that_is_not_empty(db, auth, runner, tmp_path):
    populate(db, auth)
    archive = tmp_path / "a.tar"
    runner.invoke(args=["backup", str(archive), "--quiet"])
    before = files_state(db), documents(db, "shop_products")
    result = runner.invoke(args=["restore", str(archive)])
    assert result.exit_code == 1
    assert "is not empty" in result.stderr and "--force" in result.stderr
    assert (files_state(db), documents(db, "shop_products")) == before


def test_force_restores_over_what_is_there(db, auth, runner, tmp_path):
    populate(db, auth)
    archive = tmp_path / "a.tar"
    runner.invoke(args=["backup", str(archive), "--quiet"])
    before = files_state(db)
    db.shop_products.update_one({"sku": "AV-1"}, {"$set": {"name": "changed"}})
    result = runner.invoke(args=["restore", str(archive), "--force", "--quiet"])
    assert result.exit_code == 0, result.output
    assert files_state(db) == before
    audited = db.audit_logs.find_one({"action": "backup_restored"})  # by the command
    assert audited["actor"] == {"via": "cli"} and audited["target"]["ok"] is True
    assert db.shop_products.find_one({"sku": "AV-1"})["name"] == "Uno"


def test_a_damaged_file_in_the_archive_is_refused_and_the_rest_restored(db, target, tmp_path, media_core):
    good = stored(db, Buckets.PRODUCTS, image_bytes("good/tiny_1x1.png"), filename="a.png")
    raw = put_file(db, Buckets.UPLOADS, b"0123456789" * 100, filename="x.bin", metadata={"key": "x"})
    buffer = io.BytesIO()
    backup_module.backup(db, buffer, media=media_core)
    data = buffer.getvalue()
    damaged = data.replace(b"0123456789" * 3, b"0123456789" * 2 + b"XXXXXXXXXX", 1)
    assert damaged != data
    other = target_db(target)
    report = backup_module.restore(other, io.BytesIO(damaged), media=media_core)
    assert not report.ok
    assert [f["id"] for f in report.failures] == [str(raw["_id"])]
    assert other[f"{Buckets.UPLOADS}.files"].find_one({"_id": raw["_id"]}) is None
    assert other[f"{Buckets.UPLOADS}.chunks"].count_documents({"files_id": raw["_id"]}) == 0
    assert other[f"{Buckets.PRODUCTS}.files"].find_one({"_id": good["_id"]}) is not None


def test_a_truncated_archive_is_reported_and_leaves_no_half_file(db, target, tmp_path, media_core):
    put_file(db, Buckets.UPLOADS, os.urandom(CHUNK_SIZE * 3), filename="big.bin", metadata={"key": "b"})
    buffer = io.BytesIO()
    backup_module.backup(db, buffer, media=media_core)
    other = target_db(target)
    report = backup_module.restore(other, io.BytesIO(buffer.getvalue()[: CHUNK_SIZE * 2]),
                                   media=media_core)
    assert not report.ok and not report.complete_archive
    assert other[f"{Buckets.UPLOADS}.files"].count_documents({}) == 0
    assert other[f"{Buckets.UPLOADS}.chunks"].count_documents({}) == 0


def test_it_refuses_a_file_that_is_not_a_backup(db, target, runner, tmp_path):
    bogus = tmp_path / "bogus.tar"
    with tarfile.open(bogus, "w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    result = invoke(target, "restore", str(bogus))
    assert result.exit_code == 1 and "no manifest" in result.stderr


@pytest.mark.parametrize(("kind", "said"), [
    (tarfile.DIRTYPE, "manifest.json is not a file in this archive"),
    # A link in a streamed archive cannot be followed: tarfile's own error, reported as damage.
    (tarfile.SYMTYPE, "This archive is empty or has no manifest")])
def test_it_refuses_an_archive_whose_manifest_is_not_a_file(db, target, runner, tmp_path, kind, said):
    # extractfile() gives None for a directory: read as a file, it raised AttributeError.
    bogus = tmp_path / "bogus.tar"
    with tarfile.open(bogus, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.type = kind
        info.linkname = "elsewhere" if kind == tarfile.SYMTYPE else ""
        tar.addfile(info)
    result = invoke(target, "restore", str(bogus))
    assert result.exit_code == 1 and said in result.stderr

@pytest.mark.skipif(shutil.which("tar") is None, reason="no tar binary")
def test_stock_tar_lists_a_backup_quietly(db, auth, tmp_path, media_core):
    """Version 1 wrote each file's bucket, id and chunk size under PAX keywords of its own
    (avenue.*): GNU tar warned "Ignoring unknown extended header keyword" for each, three lines
    a file. A backup is listed by any tar without a word on stderr."""
    populate(db, auth)
    archive = tmp_path / "a.tar"
    with open(archive, "wb") as out:
        backup_module.backup(db, out, media=media_core)
    listed = subprocess.run(["tar", "tf", str(archive)], capture_output=True, text=True, check=False)
    assert listed.returncode == 0 and listed.stderr == ""
    names = listed.stdout.splitlines()
    assert names[0] == "manifest.json" and sum(name.endswith(".bin") for name in names) == 37


def as_version_1(archive: bytes) -> bytes:
    """``archive`` as version 1 wrote it: each file's facts under avenue.* PAX keywords, the
    manifest's version 1."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r") as old, \
            tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as new:
        for member in old:
            data = old.extractfile(member).read()
            if member.name == "manifest.json":
                data = json.dumps({**json.loads(data), "version": 1}).encode()
                member.size = len(data)
            if "comment" in member.pax_headers:
                head = json.loads(member.pax_headers["comment"])["avenue"]
                member.pax_headers = {"avenue.bucket": head["bucket"], "avenue.id": head["id"],
                                      "avenue.chunk_size": str(head["chunk_size"])}
            new.addfile(member, io.BytesIO(data))
    return out.getvalue()


def test_an_archive_of_version_1_still_restores(db, auth, target, media_core):
    populate(db, auth)
    buffer = io.BytesIO()
    backup_module.backup(db, buffer, media=media_core)
    old = as_version_1(buffer.getvalue())
    assert b"avenue.bucket" in old and b" comment=" not in old
    other = target_db(target)
    report = backup_module.restore(other, io.BytesIO(old), media=media_core)
    assert report.ok and report.complete_archive
    assert files_state(other) == files_state(db)
    assert records_state(other) == records_state(db)


def as_before_the_records(archive: bytes) -> bytes:
    """``archive`` as version 2 wrote it, before the image records moved out of ``.files``: an
    image's record was the files document of its bytes (``role: original``), no ``images/``."""
    from bson import json_util

    found = {}
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r") as old:
        for member in old:
            if member.name.startswith("images/"):
                bucket = member.name[len("images/"):-len(".jsonl")]
                for line in old.extractfile(member).read().splitlines():
                    doc = json_util.loads(line)
                    found[(bucket, str(doc["_id"]))] = line
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r") as old, \
            tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as new:
        for member in old:
            data = old.extractfile(member).read()
            if member.name.startswith("images/"):
                continue
            if member.name == "manifest.json":
                data = json.dumps({**json.loads(data), "version": 2}).encode()
            if member.name == "counts.json":
                data = json.dumps({k: v for k, v in json.loads(data).items() if k != "images"}).encode()
            if member.name.startswith("files/") and member.name.endswith(".json"):
                entry = json.loads(data)
                record = found.get((entry["bucket"], str(json_util.loads(json.dumps(entry["file"]))["_id"])))
                if record is not None:
                    entry["file"] = json.loads(record)
                    data = json.dumps(entry).encode()
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))
    return out.getvalue()


def test_an_archive_made_before_the_records_moved_out_restores_into_images(db, auth, target, media_core):
    populate(db, auth)
    buffer = io.BytesIO()
    backup_module.backup(db, buffer, media=media_core)
    old = as_before_the_records(buffer.getvalue())
    with tarfile.open(fileobj=io.BytesIO(old), mode="r") as tar:
        assert not [name for name in tar.getnames() if name.startswith("images/")]
    other = target_db(target)
    report = backup_module.restore(other, io.BytesIO(old), media=media_core)
    assert report.ok and report.complete_archive
    # Each original's files document is its record again, and its chunks the file of its bytes.
    assert records_state(other) == records_state(db)
    assert files_state(other) == files_state(db)
    assert not other[f"{Buckets.PRODUCTS}.files"].find_one({"metadata.role": "original"})


def test_the_archive_is_streamed_in_constant_memory(db, target, media_core):
    size = 12 * 1024 * 1024
    block = os.urandom(CHUNK_SIZE)
    file_id = ObjectId()
    chunks = (size + CHUNK_SIZE - 1) // CHUNK_SIZE
    db[f"{Buckets.UPLOADS}.chunks"].insert_many([{"files_id": file_id, "n": n, "data": block}
                                                 for n in range(chunks)])
    db[f"{Buckets.UPLOADS}.files"].insert_one({"_id": file_id, "length": chunks * CHUNK_SIZE,
                                               "chunkSize": CHUNK_SIZE, "uploadDate": clock_now(),
                                               "filename": "big.bin", "metadata": {"key": "big"}})

    class Sink(io.RawIOBase):
        """Counts what it is given and keeps none of it."""

        def __init__(self):
            self.count = 0

        def writable(self):
            return True

        def write(self, data):
            self.count += len(data)
            return len(data)

    tracemalloc.start()
    try:
        sink = Sink()
        backup_module.backup(db, sink, media=media_core)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.count > size
    assert peak < size / 2


def test_bytes_two_images_share_come_back_shared_and_held_by_both(client, db, editor, target, tmp_path,
                                                                 media_core):
    """A file a restored version shares with another image (issue 75) travels once, holders and
    all: after the restore both images serve it, it is one file, and each record is among its
    holders (so neither's delete frees it under the other)."""
    from avenue.media import AppMedia
    from tests.helpers import Auth, form, library_upload
    from tests.support.records import unheld
    from tests.support.versions import MEDIA, PHOTO, replace, restore, sha_of, versions

    x = library_upload(client, editor)
    first = versions(client, editor, x["id"])[0]["id"]
    replace(client, editor, x["id"])
    y = client.post(MEDIA, data=form(PHOTO), headers=editor).get_json()
    assert restore(client, editor, x["id"], first).status_code == 200
    shared = {"metadata.variant": "original", "metadata.sha256": x["sha256"]}
    assert db[f"{Buckets.BUILDER}.files"].count_documents(shared) == 1
    other = backed_up_and_restored(db, target, tmp_path, media_core)
    assert other[f"{Buckets.BUILDER}.files"].count_documents(shared) == 1 and unheld(other) == []
    served, theirs = target.test_client(), Auth(target).token("editor")  # tokens do not travel
    for image in (x, y):
        got = served.get(f"{MEDIA}/{image['id']}", headers=theirs).get_json()
        assert sha_of(served, got["url"]) == x["sha256"]
    assert AppMedia.on(other).maintenance.fsck().findings == []
