"""GridFS storage of an upload's original and variants (avenue/media/store/originals.py), on
every backend."""

from __future__ import annotations

import hashlib
import threading

import gridfs
import pymongo
import pytest
from bson import ObjectId
from pymongo import monitoring

from avenue.errors import CorruptImage, UnsupportedImage
from avenue.media import Buckets, Library, Limits
from avenue.media.core import NO_PURGES
from avenue.media.store import storage as storage_module
from avenue.media.store.originals import delete_image, store, store_all, transfer
from avenue.media.store.storage import read_all
from tests.helpers import GOOD_NAMES, bucket_snapshot, image_bytes
from tests.support.records import IMAGE, images


def test_a_stored_image_has_its_served_bytes_and_hash_and_all_variants(db):
    result = store(db, Buckets.PRODUCTS, image_bytes("good/photo_exif_rotated.jpg"), filename="photo.jpg",
                   owner="u1", kind="product")
    doc = result.doc
    meta = doc["metadata"]
    served = read_all(db, Buckets.PRODUCTS, doc)
    assert result.created
    assert hashlib.sha256(served).hexdigest() == meta["sha256"]
    assert len(served) == doc["length"]
    assert (meta["width"], meta["height"]) == (800, 1200)
    assert meta["filename"] == "photo.jpg" and meta["owner"] == "u1"
    assert set(meta["variants"]) == {"thumb", "card", "gallery", "og"}
    for formats in meta["variants"].values():
        for info in formats.values():
            variant = db[f"{Buckets.PRODUCTS}.files"].find_one({"_id": info["id"]})
            assert variant["metadata"]["original_id"] == doc["_id"]
            assert hashlib.sha256(read_all(db, Buckets.PRODUCTS, variant)).hexdigest() == info["sha256"]


def test_files_are_readable_by_stock_gridfs(db, backend):
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("stock GridFS reads need a real server")
    doc = store(db, Buckets.PRODUCTS, image_bytes("good/alpha.png"), filename="a.png").doc
    bucket = gridfs.GridFSBucket(db, bucket_name=Buckets.PRODUCTS)
    assert bucket.open_download_stream(doc["_id"]).read() == read_all(db, Buckets.PRODUCTS, doc)


def test_identical_uploads_are_stored_once(db):
    first = store(db, Buckets.PRODUCTS, image_bytes("good/grayscale.jpg"), filename="a.jpg")
    second = store(db, Buckets.PRODUCTS, image_bytes("good/grayscale.jpg"), filename="b.jpg")
    assert not second.created and second.doc["_id"] == first.doc["_id"]
    assert images(db, Buckets.PRODUCTS).count_documents(IMAGE) == 1


def test_a_dedupe_scope_keeps_owners_apart(db):
    a = store(db, Buckets.BY_ALIAS["uploads"], image_bytes("good/grayscale.jpg"), filename="a.jpg",
              scope="alice")
    b = store(db, Buckets.BY_ALIAS["uploads"], image_bytes("good/grayscale.jpg"), filename="b.jpg",
              scope="bob")
    assert a.doc["_id"] != b.doc["_id"]


@pytest.mark.parametrize("good", GOOD_NAMES)
def test_every_good_fixture_is_stored(db, good):
    doc = store(db, Buckets.PRODUCTS, image_bytes(f"good/{good}"), filename=good).doc
    assert doc["length"] > 0 and doc["metadata"]["variants"]


def test_an_upload_is_all_or_nothing(db):
    before = bucket_snapshot(db)
    uploads = [Library.Upload("ok.jpg", image_bytes("good/grayscale.jpg")),
               Library.Upload("evil.png", image_bytes("bad/elf_named.png"))]
    with pytest.raises(UnsupportedImage) as refused:
        store_all(db, Buckets.PRODUCTS, uploads)
    assert refused.value.details["file"] == "evil.png"
    assert "evil.png" in refused.value.message
    assert bucket_snapshot(db) == before


def test_a_failure_while_writing_leaves_nothing_behind(db, monkeypatch):
    before = bucket_snapshot(db)
    real = storage_module.write_image
    calls = {"n": 0}

    def failing(db_, bucket, files, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the first upload is stored, the second one fails
            raise pymongo.errors.AutoReconnect("connection lost mid-upload")
        return real(db_, bucket, files, *args, **kwargs)

    monkeypatch.setattr(storage_module, "write_image", failing)
    uploads = [Library.Upload("a.jpg", image_bytes("good/grayscale.jpg")),
               Library.Upload("b.jpg", image_bytes("good/progressive.jpg"))]
    with pytest.raises(pymongo.errors.AutoReconnect):
        store_all(db, Buckets.PRODUCTS, uploads)
    assert calls["n"] == 2
    assert bucket_snapshot(db) == before


def test_one_upload_is_written_in_two_commands(db, monkeypatch):
    """Chunks of the image's bytes' file and the variant its answer needs (the WebP thumb) in
    one insert, their files documents in another, the bytes' file last (write commands, not
    bytes, slow the embedded server), then the image's record; the 7 others are rendered
    after the answer (store/pending.py)."""
    seen = []
    real = storage_module.write_image

    def recording(db_, bucket, files, *args, **kwargs):
        seen.append([(f.metadata["role"], f.metadata["variant"]) for f in files])
        return real(db_, bucket, files, *args, **kwargs)

    monkeypatch.setattr(storage_module, "write_image", recording)
    doc = store(db, Buckets.PRODUCTS, image_bytes("good/grayscale.jpg"), filename="g.jpg").doc
    assert seen == [[("variant", "thumb"), ("variant", "original")]]
    assert images(db, Buckets.PRODUCTS).find_one({"_id": doc["_id"]})["metadata"]["role"] == "original"


def test_chunks_of_a_failed_file_write_are_removed(db, monkeypatch):
    collection_class = type(db[f"{Buckets.PRODUCTS}.files"])
    real = collection_class.insert_many

    def refuse_files(self, docs, *args, **kwargs):
        if self.name.endswith(".files"):
            raise pymongo.errors.AutoReconnect("lost before the files document")
        return real(self, docs, *args, **kwargs)

    monkeypatch.setattr(collection_class, "insert_many", refuse_files)
    with pytest.raises(pymongo.errors.AutoReconnect):
        storage_module.write_file(db, Buckets.PRODUCTS, b"x" * 600_000, filename="x", metadata={"key": "x"})
    assert db[f"{Buckets.PRODUCTS}.chunks"].count_documents({}) == 0


def test_refused_bad_files_leave_the_buckets_unchanged(db):
    before = bucket_snapshot(db)
    for name in ("truncated.jpg", "corrupt_chunk.png"):
        with pytest.raises(CorruptImage):
            store(db, Buckets.PRODUCTS, image_bytes(f"bad/{name}"), filename=name)
    assert bucket_snapshot(db) == before


def test_deleting_an_image_removes_its_variants_and_chunks(db):
    doc = store(db, Buckets.PRODUCTS, image_bytes("good/alpha.png"), filename="a.png").doc
    variant_ids = {info["id"] for formats in doc["metadata"]["variants"].values()
                   for info in formats.values()}
    assert len(variant_ids) == 8
    assert delete_image(db, Buckets.PRODUCTS, doc["_id"], purges=NO_PURGES)
    assert images(db, Buckets.PRODUCTS).count_documents({}) == 0  # its record, its bytes' file, its variants
    assert db[f"{Buckets.PRODUCTS}.files"].count_documents({}) == 0
    assert db[f"{Buckets.PRODUCTS}.chunks"].count_documents({}) == 0
    # One tombstone for the image, its original and every variant together, written before
    # the delete and dated ahead (a delete cut off halfway still evicts every file).
    (stone,) = db.media_deletions.find({})
    assert set(stone["file_ids"]) == {doc["_id"], *variant_ids}
    assert stone["file_ids"][0] == doc["_id"] and stone["lasting_s"] > 0


def test_transfer_moves_an_image_between_buckets_keeping_its_id(db):
    temp = store(db, Buckets.BY_ALIAS["temp"], image_bytes("good/grayscale.jpg"), filename="g.jpg",
                 kind="temp", extra={"expires_at": storage_module.now()}).doc
    served = read_all(db, Buckets.BY_ALIAS["temp"], temp)
    moved = transfer(db, Buckets.BY_ALIAS["temp"], Buckets.PRODUCTS, temp, kind="product")
    assert moved.doc["_id"] == temp["_id"]
    assert "expires_at" not in moved.doc["metadata"]
    assert db[f"{Buckets.BY_ALIAS['temp']}.files"].count_documents({}) == 0
    assert images(db, Buckets.BY_ALIAS["temp"]).count_documents({}) == 0
    assert images(db, Buckets.PRODUCTS).count_documents({"_id": temp["_id"]}) == 1
    # Its bytes' file moved with it, under its id, as the variants did.
    assert db[f"{Buckets.PRODUCTS}.files"].find_one({"_id": temp["_id"]})["metadata"]["variant"] == "original"
    assert read_all(db, Buckets.PRODUCTS, moved.doc) == served
    variant_id = moved.doc["metadata"]["variants"]["thumb"]["webp"]["id"]
    assert db[f"{Buckets.PRODUCTS}.files"].find_one({"_id": variant_id}) is not None


def test_concurrent_identical_uploads_store_one_file(db, backend):
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("needs a real server's unique index under concurrency")
    data = image_bytes("good/progressive.jpg")
    results, errors = [], []

    def upload():
        try:
            results.append(store(db, Buckets.PRODUCTS, data, filename="p.jpg"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({r.doc["_id"] for r in results}) == 1
    assert images(db, Buckets.PRODUCTS).count_documents(IMAGE) == 1
    # The losers' variants and bytes' files were removed again: exactly one set of 8 and one file.
    files = db[f"{Buckets.PRODUCTS}.files"]
    assert files.count_documents({"metadata.role": "variant", "metadata.variant": {"$ne": "original"}}) == 8
    assert files.count_documents({"metadata.variant": "original"}) == 1


class _Commands(monitoring.CommandListener):
    def __init__(self):
        self.finds = []

    def started(self, event):
        if event.command_name == "find":
            self.finds.append((event.command["find"], dict(event.command.get("filter", {}))))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def test_uploads_never_probe_a_bucket_with_an_unfiltered_query(backend, db_name):
    """The cause of uploads slowing as a bucket grows (EMBEDDED_DB.md item 1) is absent."""
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("command monitoring needs a real server")
    listener = _Commands()
    client = pymongo.MongoClient(backend[1], event_listeners=[listener])
    try:
        db = client[db_name]
        for name in ("grayscale.jpg", "alpha.png", "progressive.jpg"):
            store(db, Buckets.PRODUCTS, image_bytes(f"good/{name}"), filename=name, limits=Limits())
        assert listener.finds, "expected the dedupe lookups"
        assert all(flt for _, flt in listener.finds), listener.finds
    finally:
        client.drop_database(db_name)
        client.close()



def test_a_delete_that_meets_a_render_s_files_before_they_are_listed_keeps_the_counters_exact(
        db, monkeypatch):
    """Found by ``make model`` (temp_images' counters a file under a recount): a product's
    creation moved its temp image while the upload's pending variants were still rendering.
    The render wrote its files; the delete, finding them by ``original_id``, took them off the
    counters; the render, unable to list them any more, removed them. The render counted its
    files only once listed, so they were taken off without ever being on. It counts them as
    written now, and its take-back takes off what the delete did not."""
    from avenue.media.core import Media
    from avenue.media.maintenance import Figures
    from avenue.media.store import pending

    real_put = storage_module.put_files
    doc = {}

    def write_then_delete(*args, **kwargs):
        written = real_put(*args, **kwargs)
        delete_image(db, Buckets.TEMP, doc["record"], purges=NO_PURGES)  # the move, meanwhile
        return written

    monkeypatch.setattr(pending, "complete_later", lambda *args, **kwargs: None)  # rendered below
    stored = store(db, Buckets.TEMP, image_bytes("good/progressive.jpg"), filename="t.jpg").doc
    assert pending.pending_of(stored), "the upload left variants to render"
    doc["record"] = stored
    monkeypatch.setattr(pending.storage, "put_files", write_then_delete)
    assert pending._render(db, Buckets.TEMP, stored, Media().settings) is None  # the image went
    assert db[f"{Buckets.TEMP}.files"].count_documents({}) == 0
    drift = Figures(db).recount_media()[Buckets.TEMP]["drift"]
    assert drift == {"files": 0, "originals": 0, "bytes": 0, "chunks": 0}


class _TakeBackFirst:
    """A database on which, right before each delete command of ``bucket``'s files that names
    one of ``theirs`` (a pending render's files, written, not listed), the render's own
    take-back (pending._disown, on the real database) removes that file first: the render
    finding the image gone at the very moment the delete removes the same files."""

    def __init__(self, db, bucket, image_id, theirs) -> None:
        self.db, self.name, self.image_id, self.theirs = db, f"{bucket}.files", image_id, theirs
        self.took: list = []

    def __getattr__(self, attr):
        return getattr(self.db, attr)

    def __getitem__(self, name):
        collection = self.db[name]
        if name != self.name:
            return collection
        outer = self

        class Files:
            def __getattr__(self, attr):
                found = getattr(collection, attr)
                if attr not in ("delete_one", "delete_many"):
                    return found

                def deleting(flt, *args, **kwargs):
                    named = flt.get("_id")
                    ids = named.get("$in", []) if isinstance(named, dict) else [named]
                    first = next((i for i in ids if i in outer.theirs and i not in outer.took), None)
                    if first is not None:
                        from avenue.media.store import pending
                        outer.took.append(first)
                        pending._disown(outer.db, outer.name.removesuffix(".files"), outer.image_id, [first])
                    return found(flt, *args, **kwargs)
                return deleting

        return Files()


def test_a_delete_and_a_render_s_take_back_removing_the_same_files_keep_the_counters_exact(
        db, monkeypatch):
    """Found by ``make model`` (temp_images' bytes under a recount, files exact): the delete of
    a temp image and its pending render's take-back removed the same unlisted files at the same
    moment. A removal of several files in one command that meets another's can count only an
    even share of their bytes (effects._record_removed); the unlisted files, which both may
    remove, now go one a command on both sides, each counted by exactly one of them."""
    from avenue.media.core import Media
    from avenue.media.maintenance import Figures
    from avenue.media.store import pending

    real_put = storage_module.put_files
    state: dict = {}

    def write_then_delete(*args, **kwargs):
        docs, written = real_put(*args, **kwargs)
        racing = _TakeBackFirst(db, Buckets.TEMP, state["record"]["_id"], {d["_id"] for d in docs})
        state["racing"] = racing
        delete_image(racing, Buckets.TEMP, state["record"], purges=NO_PURGES)
        return docs, written

    monkeypatch.setattr(pending, "complete_later", lambda *args, **kwargs: None)  # rendered below
    stored = store(db, Buckets.TEMP, image_bytes("good/progressive.jpg"), filename="t.jpg").doc
    assert len(pending.pending_of(stored)) > 1, "the upload left several variants to render"
    state["record"] = stored
    monkeypatch.setattr(pending.storage, "put_files", write_then_delete)
    assert pending._render(db, Buckets.TEMP, stored, Media().settings) is None  # the image went
    assert state["racing"].took, "the take-back never met the delete"
    assert db[f"{Buckets.TEMP}.files"].count_documents({}) == 0
    assert db[f"{Buckets.TEMP}.chunks"].count_documents({}) == 0
    drift = Figures(db).recount_media()[Buckets.TEMP]["drift"]
    assert drift == {"files": 0, "originals": 0, "bytes": 0, "chunks": 0}


def test_an_upload_whose_twin_goes_before_its_hold_stores_the_bytes_itself(client, auth, db, monkeypatch):
    """The image holding those bytes in another scope deleted between the new upload's look-up
    of it and its hold (originals._twin_bytes): the hold fails, and the upload writes a file of
    its own, whole and counted, as before sharing existed."""
    from avenue.media.maintenance import Figures
    from tests.support.client import upload
    from tests.support.gridfs_spec import invalid_files
    from tests.support.records import unheld

    alice, bob = auth.token("editor"), auth.token("editor")
    first = upload(client, alice).get_json()
    real_hold, holds = storage_module.hold, []

    def twin_gone_first(db_, bucket, file_id, holder):
        if not holds:
            delete_image(db_, bucket, ObjectId(first["id"]), purges=NO_PURGES)
        holds.append(real_hold(db_, bucket, file_id, holder))
        return holds[-1]

    monkeypatch.setattr(storage_module, "hold", twin_gone_first)
    answer = upload(client, bob)
    assert answer.status_code == 201, answer.get_json()
    bobs = answer.get_json()
    assert holds == [False] and bobs["sha256"] == first["sha256"]
    (own,) = list(db[f"{Buckets.UPLOADS}.files"].find({"metadata.variant": "original"}))
    assert own["_id"] == ObjectId(bobs["id"]) and "holders" not in own["metadata"]
    assert client.get(first["url"]).status_code == 404
    assert client.get(bobs["url"], headers=bob).status_code == 200
    assert invalid_files(db) == [] and unheld(db) == []
    drift = Figures(db).recount_media()[Buckets.UPLOADS]["drift"]
    assert drift == {"files": 0, "originals": 0, "bytes": 0, "chunks": 0}
