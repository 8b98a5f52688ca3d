"""effects/counters.py: the buckets' counters kept with every write, exact after any mix of
writes, drift corrected by reconciliation, counted between fences on the embedded database.
(The products' counters alone: tests/api/test_status_counters.py.)"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections import Counter

import pytest
from bson import ObjectId
from pymongo.errors import OperationFailure

from avenue.dialect import dialect_of
from avenue.embedded import fences as fenced
from avenue.media import Buckets
from avenue.media.buckets import STORED, TRASH
from avenue.media.effects import counters as bucket_counters
from avenue.media.effects.counters import count_bucket
from avenue.media.effects.counters import counters as media_counters
from avenue.media.store.originals import store
from avenue.status import counters as product_counters
from avenue.status import reconcile
from tests.helpers import Auth, image_bytes
from tests.support import records


def photo(name: str = "good/alpha.png") -> tuple[io.BytesIO, str]:
    return io.BytesIO(image_bytes(name)), name.split("/")[-1]


def held_and_counted(db) -> tuple[dict, dict]:
    """The counters as held, and a full recount of the same figures."""
    held = {bucket: {k: v for k, v in row.items() if k in bucket_counters.FIELDS}
            for bucket, row in media_counters(db).items()}
    counted = {bucket: {k: v for k, v in count_bucket(db, bucket, chunk_index=True).items()
                        if k in bucket_counters.FIELDS} for bucket in STORED}
    held["products"] = {k: product_counters.product_counters(db)[k] for k in product_counters.FIELDS}
    counted["products"] = dict.fromkeys(product_counters.FIELDS, 0)
    for doc in db.shop_products.find():
        for name, value in product_counters.product_figures(doc).items():
            counted["products"][name] += value
    return held, counted


@pytest.mark.damages_files
def test_counters_match_a_recount_after_a_mix_of_writes(app, client, db, referrers):
    auth = Auth(app)
    admin = auth.token("admin")
    for sku in ("MIX-1", "MIX-2", "MIX-3"):
        assert client.post("/api/shop/products", headers=admin,
                           json={"sku": sku, "name": "x", "price": 1}).status_code == 201
    added = client.post("/api/shop/products/MIX-1/images", headers=admin,
                        data={"images": [photo("good/alpha.png"), photo("good/grayscale.jpg")]})
    assert added.status_code == 201
    # The same bytes on a second product: one file, two references.
    assert client.post("/api/shop/products/MIX-2/images", headers=admin,
                       data={"images": [photo("good/alpha.png")]}).status_code == 201
    temp = client.post("/api/shop/temp-images", headers=admin, data={"images": [photo("good/tiny_1x1.png")]})
    temp_id = temp.get_json()["images"][0]["id"]
    assert client.post("/api/shop/products", headers=admin, json={
        "sku": "MIX-4", "name": "x", "price": 1, "temp_image_ids": [temp_id]}).status_code == 201
    client.post("/api/shop/temp-images", headers=admin, data={"images": [photo("good/cmyk.jpg")]})
    first = added.get_json()["added"][0]["id"]
    assert client.delete(f"/api/shop/products/MIX-1/images/{first}", headers=admin).status_code == 200
    renamed = client.patch("/api/shop/products/MIX-3", headers=admin, json={"name": "renamed"})
    assert renamed.status_code == 200
    assert client.delete("/api/shop/products/MIX-2", headers=admin).status_code == 204
    media = client.post("/api/builder/media", headers=admin, data={"file": photo("good/progressive.jpg")})
    assert client.delete(f"/api/builder/media/{media.get_json()['id']}", headers=admin).status_code == 204
    client.post("/api/uploads", headers=admin, data={"file": photo("good/alpha.png")})
    held, counted = held_and_counted(db)
    assert held == counted
    assert counted["products"]["products"] == 3 and counted[Buckets.PRODUCTS]["originals"] == 2
    # Deleted, kept restorable: the photo no product uses any more and the library image.
    assert counted[TRASH]["originals"] == 2
    for result in reconcile(db, app.config, referrers).values():
        # Buckets and products list every figure (all 0); the facets list only what differs.
        assert result["applied"] and all(value == 0 for value in result["drift"].values())


def test_a_lost_increment_is_drift_the_reconciliation_corrects(app, client, db, monkeypatch, referrers):
    admin = Auth(app).token("admin")
    ops = Auth(app).token("ops")
    real = bucket_counters.record
    monkeypatch.setattr(bucket_counters, "record", lambda *args, **kwargs: None)  # the process died
    client.post("/api/uploads", headers=admin, data={"file": photo()})
    monkeypatch.setattr(bucket_counters, "record", real)
    db.shop_products.insert_one({"sku": "BEHIND", "images": ["/uploads/x.jpg"]})  # a hand edit
    storage = client.get("/api/shop/debug/storage-status", headers=ops).get_json()
    assert storage["buckets"][Buckets.UPLOADS]["files"] == 0
    result = reconcile(db, app.config, referrers)
    assert result[Buckets.UPLOADS]["applied"] and result[Buckets.UPLOADS]["drift"]["files"] == 9
    assert result["products"]["drift"]["local_filesystem"] == 1
    held, counted = held_and_counted(db)
    assert held == counted
    report = client.get("/api/shop/debug/products-status", headers=ops).get_json()
    assert report["references"]["local_filesystem"] == 1 and report["safe"] is False


def test_a_recount_that_a_write_raced_is_not_applied(db, monkeypatch):
    store(db, Buckets.UPLOADS, image_bytes("good/alpha.png"), filename="a.png")
    # Drift: 8 files gone behind its back (the variants, not the file of the image's bytes).
    db[f"{Buckets.UPLOADS}.files"].delete_many({"metadata.role": "variant",
                                                "metadata.variant": {"$ne": "original"}})
    real = bucket_counters.count_bucket

    def raced(*args, **kwargs):
        counted = real(*args, **kwargs)
        store(db, Buckets.UPLOADS, image_bytes("good/grayscale.jpg"), filename="b.jpg")  # lands meanwhile
        return counted

    monkeypatch.setattr(bucket_counters, "count_bucket", raced)
    assert bucket_counters.recount(db, Buckets.UPLOADS)["applied"] is False
    monkeypatch.setattr(bucket_counters, "count_bucket", real)
    assert bucket_counters.recount(db, Buckets.UPLOADS)["applied"] is True
    files = db[f"{Buckets.UPLOADS}.files"].count_documents({})
    assert media_counters(db)[Buckets.UPLOADS]["files"] == files == 10


class Unwritable:
    """A database whose every write fails (the counters' collection is unreachable)."""

    def __getitem__(self, name):
        return self

    def update_one(self, *args, **kwargs):
        raise OperationFailure("not writable")


def test_a_failed_increment_is_logged_and_the_write_stands(caplog):
    with caplog.at_level(logging.WARNING):
        bucket_counters.record(Unwritable(), Buckets.UPLOADS, {"files": 1})
        product_counters.record_product_change(Unwritable(), None, {"images": []})
    assert sum("reconciliation corrects" in record.getMessage() for record in caplog.records) == 2


def test_the_chunk_count_is_exact_and_on_the_embedded_database_decodes_no_chunk(db, monkeypatch):
    """SecantusDB answers a count hinted on the chunk index by decoding every chunk (all the
    stored bytes in one operation): there the chunks are counted by a count with no filter."""
    import datetime as dt

    from bson import ObjectId

    bucket, size = "chunk_count", 255 * 1024  # a bucket of its own, chunked as GridFS does
    for length in (0, size, 600 * 1024 + 1):  # 0, 1 and 3 chunks
        file_id = ObjectId()
        db[f"{bucket}.files"].insert_one({"_id": file_id, "length": length, "chunkSize": size,
                                          "filename": "raw", "uploadDate": dt.datetime.now(dt.UTC),
                                          "metadata": {"role": "variant", "variant": "original"}})
        chunks = [{"files_id": file_id, "n": n, "data": b"\0" * min(size, length - at)}
                  for n, at in enumerate(range(0, length, size))]
        if chunks:
            db[f"{bucket}.chunks"].insert_many(chunks)
    counted_on: list[str] = []
    collection = type(db[f"{bucket}.chunks"])  # pymongo's, or mongomock's
    real_count = collection.count_documents

    def count_documents(self, *args, **kwargs):
        counted_on.append(self.name)
        return real_count(self, *args, **kwargs)

    monkeypatch.setattr(collection, "count_documents", count_documents)
    counted = count_bucket(db, bucket, chunk_index=True)
    monkeypatch.undo()
    assert counted["chunks"] == db[f"{bucket}.chunks"].count_documents({}) == 4
    assert counted["files"] == 3 and counted["bytes"] == size + 600 * 1024 + 1
    # On the embedded database: estimated_document_count, a count command with no filter.
    chunks_counted = [name for name in counted_on if name == f"{bucket}.chunks"]  # not the records' count
    assert chunks_counted == ([] if not dialect_of(db).whole_collection_reads else [f"{bucket}.chunks"])


def _spread(db, bucket: str) -> None:
    """Files over a year of upload dates, as a shop's library grows (and the counters' dates
    kept as every write keeps them)."""
    base = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    for n, doc in enumerate(db[f"{bucket}.files"].find({}, {"_id": 1}).sort("_id", 1)):
        moved = {"$set": {"uploadDate": base + dt.timedelta(days=7 * n)}}
        db[f"{bucket}.files"].update_one({"_id": doc["_id"]}, moved)
        records.images(db, bucket).update_one({"_id": doc["_id"]}, moved)  # an image: as its bytes
    dates = [doc["uploadDate"] for doc in db[f"{bucket}.files"].find({}, {"uploadDate": 1})]
    db["media_counters"].update_one({"_id": bucket}, {"$set": {"oldest": min(dates), "newest": max(dates)}})


def _reads(monkeypatch, db, bucket: str) -> list:
    """The finds and pipelines asked of the bucket's files and image records from now on."""
    seen: list = []
    kind = type(db[f"{bucket}.files"])  # pymongo's Collection, or mongomock's
    real_find, real_aggregate = kind.find, kind.aggregate
    names = {f"{bucket}.files", records.images(db, bucket).name}

    def find(self, *args, **kwargs):
        if self.name in names:
            seen.append(("find", args[0] if args else kwargs.get("filter")))
        return real_find(self, *args, **kwargs)

    def aggregate(self, pipeline, *args, **kwargs):
        if self.name in names:
            seen.append(("aggregate", pipeline))
        return real_aggregate(self, pipeline, *args, **kwargs)

    monkeypatch.setattr(kind, "find", find)
    monkeypatch.setattr(kind, "aggregate", aggregate)
    return seen


def test_on_the_embedded_database_a_bucket_is_counted_between_fences_of_dates(db, monkeypatch):
    for name in ("good/alpha.png", "good/grayscale.jpg", "good/cmyk.jpg"):
        store(db, Buckets.UPLOADS, image_bytes(name), filename=name.split("/")[-1])  # 27 files, 3 records
    _spread(db, Buckets.UPLOADS)
    whole = bucket_counters._group_whole(db, Buckets.UPLOADS)
    monkeypatch.setattr(fenced, "FENCE_EVERY", 3)
    first = count_bucket(db, Buckets.UPLOADS, chunk_index=True)  # no fences yet: it samples them
    reads = _reads(monkeypatch, db, Buckets.UPLOADS)
    counted = count_bucket(db, Buckets.UPLOADS, chunk_index=True)
    for figures in (first, counted):
        assert {k: figures[k] for k in whole} == whole  # the same figures, dates included
        assert figures["chunks"] == db[f"{Buckets.UPLOADS}.chunks"].count_documents({})
    if not dialect_of(db).whole_collection_reads:  # a read per fence of each role, each bounded by dates
        variants = [query for kind, query in reads if query.get("metadata.role") == "variant"]
        assert {kind for kind, _ in reads} == {"find"} and len(variants) > 5
        assert all("uploadDate" in query for query in variants)
    else:  # one $group, as mongod runs it without holding anyone up
        assert [kind for kind, _ in reads if kind == "aggregate"] == ["aggregate"]
        assert not [query for kind, query in reads if kind == "find" and "uploadDate" in (query or {})]


@pytest.mark.damages_files
def test_on_the_embedded_database_chunks_gone_behind_the_app_s_back_are_left_to_fsck(db):
    doc = store(db, Buckets.UPLOADS, image_bytes("good/photo_12mp.jpg"), filename="big.jpg").doc
    assert db[f"{Buckets.UPLOADS}.chunks"].count_documents({"files_id": doc["_id"]}) > 1
    db[f"{Buckets.UPLOADS}.chunks"].delete_one({"files_id": doc["_id"], "n": 1})
    counted = count_bucket(db, Buckets.UPLOADS, chunk_index=True)["chunks"]
    actual = db[f"{Buckets.UPLOADS}.chunks"].count_documents({})
    # The embedded database counts what the files documents say they hold (a walk of every
    # chunk there holds make run's one connection for seconds); fsck reads the chunks.
    assert counted == (actual + 1 if not dialect_of(db).whole_collection_reads else actual)


def _inserted(db, bucket: str, docs: list[dict]) -> list[dict]:
    """Insert ``docs`` as the app lays them out: each ``role: original`` one is an image's
    record (``<bucket>.images``) and the file of its bytes (a variant named ``original``, under
    the image's id); the rest are files. Returns the records and files inserted."""
    written = []
    for doc in docs:
        if doc["metadata"]["role"] == "original":
            records.images(db, bucket).insert_one(doc)
            written.append(doc)
            doc = {**doc, "metadata": {"role": "variant", "variant": "original", "original_id": doc["_id"]}}
        db[f"{bucket}.files"].insert_one(doc)
        written.append(doc)
    return written


def _seeded_behind_the_back(db, bucket: str, images: int) -> list[dict]:
    """``images`` images of 9 files each (its bytes and 8 variants, and its record, under one
    upload date, an image a second), inserted as a bulk load does, the counters moved as the
    app moves them (bench/scale.py seeds so); no fences."""
    base = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    docs = _inserted(db, bucket, [
        {"_id": ObjectId(), "length": 10, "chunkSize": 255 * 1024, "filename": f"s{n}.jpg",
         "uploadDate": base + dt.timedelta(seconds=n),
         "metadata": {"role": "original" if k == 0 else "variant"}}
        for n in range(images) for k in range(9)])
    bucket_counters.record(db, bucket, bucket_counters.figures(docs))
    return docs


def _within(date: dt.datetime, query: dict) -> bool:
    """Whether a walk's query holds a file uploaded at ``date`` (no condition: any date)."""
    if "uploadDate" not in query:
        return True
    condition = query["uploadDate"]
    if not isinstance(condition, dict):  # an equality: the undated files' read (None)
        return condition == date
    checks = {"$gt": date.__gt__, "$gte": date.__ge__, "$lt": date.__lt__, "$lte": date.__le__}
    return all(checks[op](bound) for op, bound in condition.items())


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.damages_files
def test_a_first_walk_of_a_role_asks_no_query_for_much_more_than_a_fence_s_worth(db, monkeypatch, descending):
    """SecantusDB reads every document a query's bounds hold before it returns one, under its
    one lock: a walk without fences (the first sweep after a bulk load) was one query of the
    whole role (67,200 variants of a products bucket: 8.7 s, every status call waiting)."""
    bucket = "first_walk"
    docs = _seeded_behind_the_back(db, bucket, 120)  # 1,080 variants (960, and 120 images' bytes)
    monkeypatch.setattr(fenced, "FIRST_READ", 40)
    reads = _reads(monkeypatch, db, bucket)
    walked = [doc["_id"] for docs in bucket_counters.walk_role(db, bucket, "variant", {"_id": 1},
                                                               descending=descending) for doc in docs]
    monkeypatch.undo()
    variants = [doc for doc in docs if doc["metadata"]["role"] == "variant"]
    order = sorted(variants, key=lambda doc: (doc["uploadDate"], doc["_id"]), reverse=descending)
    assert walked == [doc["_id"] for doc in order]  # each once, in walk order
    asked = [sum(1 for doc in variants if _within(doc["uploadDate"], query))
             for kind, query in reads if kind == "find" and query.get("metadata.role") == "variant"]
    assert max(asked) <= fenced.FIRST_GROWTH * 40, asked  # before: one query of all 1,080
    assert len(asked) < 2 * len(variants) / 40 + 60


@pytest.mark.damages_files
def test_a_first_count_across_a_year_without_uploads_reads_each_role_in_a_few_windows(db, monkeypatch):
    """As bench/scale.py seeds: images a second apart from a year ago, then today's upload.
    Each window across the year covered an eighth of what was left to today: 150-220 reads a
    walk, a role with no files as many (the seed test's first count: 2,592 reads, 9 s)."""
    bucket = "first_walk"
    year_ago = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=365)
    docs = _inserted(db, bucket, [
        {"_id": ObjectId(), "length": 10, "chunkSize": 255 * 1024, "filename": f"s{n}.jpg",
         "uploadDate": year_ago + dt.timedelta(seconds=n) if n < 8 else dt.datetime.now(dt.UTC),
         "metadata": {"role": "original" if k == 0 else "variant"}} for n in range(9) for k in range(8)])
    bucket_counters.record(db, bucket, bucket_counters.figures(docs))
    # 9 images of 8 files each (its bytes and 7 variants: 8 of role variant an image, as before
    # the records moved out) and a record. Reads of 4: the bucket's 72 files are many, a role's
    # few (none of two): the counters' originals, the rest less what the walks before counted.
    monkeypatch.setattr(fenced, "FIRST_READ", 4)
    reads = _reads(monkeypatch, db, bucket)
    counted = bucket_counters._count_in_windows(db, bucket)
    newest_first = [doc["_id"] for docs in bucket_counters.walk_role(db, bucket, "original", {"_id": 1},
                                                                     descending=True) for doc in docs]
    monkeypatch.undo()
    assert counted["files"] == 72 and counted["originals"] == 9 and len(newest_first) == 9
    per_role = Counter(query.get("metadata.role", "?") for _kind, query in reads)
    # A walk: the undated files, a read beyond each end, one up to the counters' dates, a few
    # inside them, the day past them (9); newest first, the 56 years before them (16).
    assert per_role.keys() == {"original", "variant", "rendition", None}
    assert per_role["original"] <= 45, per_role  # walked twice: up, then down
    assert per_role["variant"] <= 30 and per_role["rendition"] <= 16 and per_role[None] <= 16, per_role
    asked = [sum(1 for doc in docs if doc["metadata"]["role"] == query.get("metadata.role")
                 and _within(doc["uploadDate"], query)) for kind, query in reads]
    assert max(asked) <= fenced.FIRST_GROWTH * 4, asked  # and no read holds more than 4 reads' worth


@pytest.mark.damages_files
def test_a_first_count_of_a_bulk_loaded_bucket_equals_a_recount(db, monkeypatch):
    bucket = "first_walk"
    _seeded_behind_the_back(db, bucket, 50)
    db[f"{bucket}.files"].insert_one({"_id": ObjectId(), "length": 3, "filename": "undated",
                                      "metadata": {"role": "variant"}})  # no upload date at all
    monkeypatch.setattr(fenced, "FIRST_READ", 20)
    counted = count_bucket(db, bucket, chunk_index=False)
    assert counted["files"] == db[f"{bucket}.files"].count_documents({}) == 451
    assert counted["originals"] == 50 and counted["bytes"] == 4503


@pytest.mark.damages_files
def test_a_first_build_of_a_library_list_s_fences_reads_it_in_windows(db, monkeypatch):
    from avenue.media.store.library import listed

    bucket = "first_walk"
    docs = _seeded_behind_the_back(db, bucket, 400)
    monkeypatch.setattr(fenced, "FIRST_READ", 40)
    reads = _reads(monkeypatch, db, bucket)
    built = fenced.build_fences(db, listed(bucket), every=25)
    monkeypatch.undo()
    originals = sorted((doc for doc in docs if doc["metadata"]["role"] == "original"),
                       key=lambda doc: (doc["uploadDate"], doc["_id"]), reverse=True)
    assert built["items"] == 400
    # The same fences as one read of the whole list samples: every 25th date, newest first.
    fences = [doc["uploadDate"] for doc in originals[24::25]]
    assert sorted(fenced.fences(records.images(db, bucket), "uploadDate")) == sorted(fences)
    asked = [sum(1 for doc in originals if _within(doc["uploadDate"], query)) for kind, query in reads]
    assert max(asked) <= fenced.FIRST_GROWTH * 40, asked  # before: one read of all 400
