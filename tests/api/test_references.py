"""Who refers to an image: the shop's products and the builder's pages, through one interface."""

from __future__ import annotations

import pytest
from bson import ObjectId

from avenue.builder.references import PageReferences
from avenue.clock import now
from avenue.db import PRODUCT_LIST
from avenue.dialect import dialect_of
from avenue.embedded.fences import build_fences, forget_fences
from avenue.media import AppMedia, Buckets, Image, Library, Media
from avenue.media.maintenance import Referrers
from avenue.shop.references import ProductReferences
from avenue.status import product_counters
from tests.helpers import image_bytes


def stored(db, bucket: str = Buckets.PRODUCTS, name: str = "good/png16.png") -> Image:
    return AppMedia.on(db).library(bucket).store(Library.Upload("a.png", image_bytes(name))).image


def product(db, sku: str, *entries) -> None:
    db.shop_products.insert_one({"sku": sku, "name": sku, "price": 1, "images": list(entries),
                                 "created_at": now(), "updated_at": now()})


def image_ids(db, sku: str) -> list:
    return [entry["id"] for entry in db.shop_products.find_one({"sku": sku})["images"]]


def page(db, slug: str, *media: ObjectId) -> None:
    db.page_content.insert_one({"slug": slug, "title": slug, "published": True, "updated_at": now(),
                                "blocks": [{"type": "image", "media_id": str(m)} for m in media],
                                "media_ids": list(media)})


def test_the_app_factory_hands_its_media_core_products_and_pages(app, db):
    registry = AppMedia.of(app).core.referrers(db)
    assert [owner.kind for owner in registry] == ["products", "pages"]
    assert registry.collections() == ("shop_products", "page_content")
    assert [owner.kind for owner in registry.of_bucket(Buckets.PRODUCTS)] == ["products"]
    assert [owner.kind for owner in registry.of_bucket(Buckets.BUILDER)] == ["pages"]
    assert [owner.db for owner in registry] == [db, db]  # built on the database asked about


def test_a_media_core_without_an_app_knows_no_owners_and_says_so(db):
    """``Media()`` (a script, a test of the store alone) cannot say who refers to an image:
    asking raises (a job that took its silence for "nobody" would delete what is used); a
    Media given no owners at all (``()``) answers that nobody does."""
    with pytest.raises(RuntimeError, match="no owners of referring documents"):
        Media().referrers(db)
    assert list(Media(owners=()).referrers(db)) == []
    assert [owner.kind for owner in Media(owners=(PageReferences,)).referrers(db)] == ["pages"]


def test_an_owner_is_registered_once(db):
    with pytest.raises(ValueError):
        Referrers([ProductReferences(db), ProductReferences(db)])


def test_products_name_the_skus_using_each_image_asked_about(db):
    a, b, unused = ObjectId(), ObjectId(), ObjectId()
    product(db, "one", {"id": a}, {"id": b}, "/uploads/legacy.jpg")
    product(db, "two", {"id": a})
    refs = ProductReferences(db)
    assert refs.users([a, unused]) == {a: {"one", "two"}}
    assert refs.users([]) == {}


def test_products_find_references_stored_as_text_only_when_asked(db):
    image_id = ObjectId()
    product(db, "old", {"id": str(image_id)})
    refs = ProductReferences(db)
    assert refs.users([image_id]) == {}
    assert refs.users([image_id], text_ids=True) == {image_id: {"old"}}


def test_a_product_repoint_within_one_sku_leaves_the_others(db):
    old, new = ObjectId(), stored(db)
    product(db, "one", {"id": old})
    product(db, "two", {"id": old})
    assert ProductReferences(db).repoint(old, new, within="one") == 1
    assert image_ids(db, "one") == [new.id]
    assert image_ids(db, "two") == [old]
    assert ProductReferences(db).repoint(old, new) == 1
    assert image_ids(db, "two") == [new.id]
    assert db.shop_products.find_one({"sku": "two"})["images"][0]["sha256"] == new.sha256


def test_a_repoint_keeps_each_product_s_own_alt_text(db):
    old, new = ObjectId(), stored(db)
    product(db, "one", {"id": old, "alt": "Red boot, side"})
    product(db, "two", {"id": old})
    assert ProductReferences(db).repoint(old, new) == 2
    one, two = (db.shop_products.find_one({"sku": sku})["images"][0] for sku in ("one", "two"))
    assert one["id"] == two["id"] == new.id and one["sha256"] == new.sha256
    assert one["alt"] == "Red boot, side" and "alt" not in two


def test_a_refreshed_reference_keeps_the_product_s_alt_over_the_image_s(db):
    from dataclasses import replace

    image = stored(db)
    product(db, "one", {**image.ref(), "version": "old", "alt": "The product's words"})
    product(db, "two", {**image.ref(), "version": "old"})
    head = replace(image, alt="The image's words", version="new")
    assert ProductReferences(db).refresh([head]) == 2
    one, two = (db.shop_products.find_one({"sku": sku})["images"][0] for sku in ("one", "two"))
    assert one["version"] == two["version"] == "new"
    assert one["alt"] == "The product's words" and two["alt"] == "The image's words"


def test_dropping_an_image_takes_it_off_every_product_and_counts_the_change(db):
    gone, kept = ObjectId(), ObjectId()
    product(db, "one", {"id": gone}, {"id": kept})
    product(db, "two", {"id": gone})
    before = product_counters(db)
    assert sorted(ProductReferences(db).drop(gone)) == ["one", "two"]
    assert db.shop_products.find_one({"sku": "one"})["images"] == [{"id": kept}]
    assert db.shop_products.find_one({"sku": "two"})["images"] == []
    after = product_counters(db)
    assert after["references"] - before["references"] == -2
    assert after["with_images"] - before["with_images"] == -1


def test_refresh_points_a_reference_on_another_version_at_the_image_as_it_is(db):
    image = stored(db)
    head = Image(**{**image.__dict__, "version": "v2"})
    product(db, "stale", {**image.ref(), "alt": "kept"})
    product(db, "fresh", head.ref())
    assert ProductReferences(db).refresh([head]) == 1
    entry = db.shop_products.find_one({"sku": "stale"})["images"][0]
    assert entry["version"] == "v2" and entry["alt"] == "kept"
    assert ProductReferences(db).refresh([head]) == 0


def test_refresh_takes_the_readable_name_the_image_has_now(db):
    image = stored(db)
    renamed = Image(**{**image.__dict__, "version": "v2", "name": "new-name"})
    unnamed = Image(**{**image.__dict__, "version": "v3"})
    product(db, "named", {**image.ref(), "name": "old-name", "alt": "kept"})
    assert ProductReferences(db).refresh([renamed]) == 1
    entry = db.shop_products.find_one({"sku": "named"})["images"][0]
    assert entry["name"] == "new-name" and entry["alt"] == "kept"
    assert ProductReferences(db).refresh([unnamed]) == 1
    entry = db.shop_products.find_one({"sku": "named"})["images"][0]
    assert "name" not in entry and entry["alt"] == "kept" and entry["version"] == "v3"


def test_placeholders_are_filled_in_where_a_reference_lacks_one(db):
    image_id, other = ObjectId(), ObjectId()
    product(db, "one", {"id": image_id}, {"id": other, "placeholder": {"blurhash": "x", "color": "#000"}})
    refs = ProductReferences(db)
    assert list(refs.lacking_placeholders(10)) == [image_id]
    assert refs.fill_placeholder(image_id, {"blurhash": "y", "color": "#fff"}) == 1
    assert list(refs.lacking_placeholders(10)) == []
    assert refs.fill_placeholder(image_id, {"blurhash": "z", "color": "#fff"}) == 0


def test_walking_products_goes_on_after_the_position_given(db):
    for sku in ("a", "b", "c"):
        product(db, sku, "/uploads/x.jpg")
    walked = list(ProductReferences(db).walk(None, 2))
    assert [doc["name"] for doc in walked] == ["a", "b", "c"]
    assert walked[0]["images"] == ["/uploads/x.jpg"]
    assert [doc["name"] for doc in ProductReferences(db).walk(walked[0]["position"], 1)] == ["b", "c"]


def test_walking_products_reads_between_the_fences_on_the_embedded_database(db, monkeypatch):
    skus = [f"sku-{n:03}" for n in range(40)]
    for sku in skus:
        product(db, sku, "/uploads/x.jpg")
    build_fences(db, PRODUCT_LIST, every=4)  # a fence every 4 products: 10 windows
    forget_fences()
    reads = []
    kind = type(db[PRODUCT_LIST.collection])  # pymongo's Collection, or mongomock's
    real_find = kind.find

    def find(self, *args, **kwargs):
        if self.name == PRODUCT_LIST.collection:
            reads.append(args[0] if args else kwargs.get("filter"))
        return real_find(self, *args, **kwargs)

    monkeypatch.setattr(kind, "find", find)
    walked = list(ProductReferences(db).walk(None, 1000))
    assert [doc["name"] for doc in walked] == skus
    resumed = list(ProductReferences(db).walk(walked[21]["position"], 1000))
    assert [doc["name"] for doc in resumed] == skus[22:]
    if not dialect_of(db).whole_collection_reads:  # a read per two windows, each fenced, but the last
        assert len(reads) > 5 and all(read for read in reads[1:])
    else:  # one cursor by _id, as mongod streams it
        assert len(reads) == 2


def test_pages_name_the_slugs_using_each_media_asked_about(db):
    a, b = ObjectId(), ObjectId()
    page(db, "home", a, b)
    page(db, "about", a)
    assert PageReferences(db).users([a, b, ObjectId()]) == {a: {"home", "about"}, b: {"home"}}


def test_a_page_repoint_rewrites_its_blocks_and_media_ids_together(db):
    old, kept = ObjectId(), ObjectId()
    new = stored(db, Buckets.BUILDER)
    page(db, "home", old, kept, old)
    assert PageReferences(db).repoint(old, new) == 1
    doc = db.page_content.find_one({"slug": "home"})
    assert [block["media_id"] for block in doc["blocks"]] == [str(new.id), str(kept), str(new.id)]
    assert doc["media_ids"] == [new.id, kept]
    assert PageReferences(db).repoint(old, new) == 0


def test_dropping_media_removes_its_blocks_from_every_page(db):
    gone, kept = ObjectId(), ObjectId()
    page(db, "home", gone, kept)
    page(db, "about", gone)
    assert PageReferences(db).drop(gone) == ["about", "home"]
    doc = db.page_content.find_one({"slug": "home"})
    assert [block["media_id"] for block in doc["blocks"]] == [str(kept)] and doc["media_ids"] == [kept]
    assert PageReferences(db).users([gone]) == {}


def test_pages_keep_no_copy_of_an_image_to_refresh(db):
    media = stored(db, Buckets.BUILDER)
    page(db, "home", media.id)
    refs = PageReferences(db)
    assert refs.refresh([media]) == 0
    assert refs.fill_placeholder(media.id, {"blurhash": "x", "color": "#000"}) == 0
    assert list(refs.lacking_placeholders(10)) == []
    assert [doc["images"] for doc in refs.walk(None, 10)] == [[{"id": media.id}]]


def test_the_registry_answers_which_images_any_owner_refers_to_in_short_batches(db):
    ids = [ObjectId() for _ in range(120)]
    product(db, "many", *({"id": i} for i in ids[::2]))
    page(db, "home", ids[1])
    registry = Referrers([ProductReferences(db), PageReferences(db)])
    assert registry.referenced(Buckets.PRODUCTS, ids) == set(ids[::2])
    assert registry.referenced(Buckets.BUILDER, ids) == {ids[1]}


class Planned:
    """A plan that names every string entry ``"rewritten"`` (what import-legacy's plans do)."""

    def __init__(self, entries: list, make) -> None:
        self.value = [make(entry) if isinstance(entry, str) else entry for entry in entries]
        self.rewritten = sum(1 for entry in entries if isinstance(entry, str))


def test_products_are_rewritten_by_their_owner_and_a_dry_run_writes_nothing(db):
    image_id = ObjectId()
    product(db, "old", "/uploads/a.jpg", {"id": ObjectId()})
    product(db, "done", {"id": ObjectId()})
    seen = []

    def plan(images):
        return Planned(images, lambda entry: {"id": image_id})

    dry = list(ProductReferences(db).rewrite(plan, dry_run=True,
                                             progress=lambda done, total: seen.append(total)))
    assert [(label, result.rewritten) for label, result in dry] == [({"sku": "old"}, 1), ({"sku": "done"}, 0)]
    assert db.shop_products.find_one({"sku": "old"})["images"][0] == "/uploads/a.jpg"
    assert seen == [2, 2]
    list(ProductReferences(db).rewrite(plan, dry_run=False, progress=lambda done, total: None))
    assert image_ids(db, "old")[0] == image_id


def test_a_rewritten_page_gets_its_media_ids_in_the_same_write(db):
    media_id = ObjectId()
    db.page_content.insert_one({"slug": "home", "updated_at": now(), "media_ids": [],
                                "blocks": ["/uploads/b.jpg", {"type": "text"}]})

    def plan(blocks):
        return Planned(blocks, lambda entry: {"type": "image", "media_id": str(media_id)})

    done = list(PageReferences(db).rewrite(plan, dry_run=False, progress=lambda done, total: None))
    assert [(label, result.rewritten) for label, result in done] == [({"slug": "home"}, 1)]
    doc = db.page_content.find_one({"slug": "home"})
    assert doc["blocks"][0]["media_id"] == str(media_id) and doc["media_ids"] == [media_id]
