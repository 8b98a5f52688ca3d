"""Near-duplicates at upload, their groups, the colour filter and the backfill command
(avenue/media/ingest/near_hash.py, avenue/media/store/near_duplicates.py,
avenue/media/upkeep/backfill_near_duplicates.py)."""

from __future__ import annotations

import functools
import io
import json
import threading
import time

import pymongo
import pytest
from PIL import Image, ImageDraw
from prometheus_client.parser import text_string_to_metric_families
from pymongo.errors import ServerSelectionTimeoutError

from avenue.media import Buckets, Media
from avenue.media.buckets import TRASH
from avenue.media.store import exact, near_duplicates, originals
from avenue.media.upkeep import backfill as walk
from avenue.media.upkeep import backfill_near_duplicates as backfill
from avenue.ops.lock import exclusive
from tests.support.client import MEDIA, uploaded
from tests.support.fixtures import scene
from tests.support.shots import RED, VARIANTS, encoded, product_shot, resaves

NEAR_HASH_FIELDS = ("phash", "phash_bands", "palette", "colour_cells", "near_group", "near_pending")
OWED = {"metadata.near_pending": True}


# The answers these tests read name their near-duplicates whatever the machine's load: the
# lookup is waited for up to its second. What a production answer waits has its own tests below.
pytestmark = pytest.mark.usefixtures("answers_wait_for_lookups")
PRODUCTION_FLOOR = near_duplicates.WAIT_FLOOR_SECONDS
PRODUCTION_CAP = near_duplicates.WAIT_SECONDS

def jpeg(im: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    im.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def photo(seed: int) -> Image.Image:
    return _photo(seed).copy()  # each caller's own: a caller may draw on it


@functools.cache  # drawn once a process: tests and backends draw the same seeds again (about 4 %)
def _photo(seed: int) -> Image.Image:
    return scene((1000, 750), seed)


def near_copy(im: Image.Image) -> bytes:
    """Re-encoded at quality 60, resized to 70 % and cropped by 3 %: another save of the same shot."""
    width, height = im.size
    cropped = im.crop((int(width * .03), 0, width, int(height * .97)))
    smaller = cropped.resize((cropped.width * 7 // 10, cropped.height * 7 // 10), Image.Resampling.LANCZOS)
    return jpeg(smaller, 60)


def plain(colour: tuple[int, int, int], seed: int) -> bytes:
    """Mostly one colour (a product on a coloured backdrop)."""
    im = Image.new("RGB", (400, 300), colour)
    ImageDraw.Draw(im).ellipse((150 + seed, 100, 250 + seed, 200), fill=(240, 240, 240))
    return jpeg(im, 90)


def media(client, headers, data: bytes, name: str = "a.jpg") -> dict:
    return uploaded(client, headers, data=data, filename=name, to=MEDIA)


def test_an_upload_names_its_near_copy_with_the_distance_and_not_a_distinct_image(client, editor):
    first = media(client, editor, jpeg(photo(1)), "first.jpg")
    other = media(client, editor, jpeg(photo(2)), "other.jpg")
    assert first["near_duplicates"] == [] and other["near_duplicates"] == []
    assert first["palette"] and all(entry["color"].startswith("#") for entry in first["palette"])

    copy = media(client, editor, near_copy(photo(1)), "copy.jpg")
    [match] = copy["near_duplicates"]
    assert match["id"] == first["id"] and match["url"] == first["url"]
    assert 0 <= match["distance"] <= 12
    # And the first one now lists the copy (the library's own page of it).
    shown = client.get(f"{MEDIA}/{first['id']}", headers=editor).get_json()
    assert [m["id"] for m in shown["near_duplicates"]] == [copy["id"]]
    assert client.get(f"{MEDIA}/{other['id']}", headers=editor).get_json()["near_duplicates"] == []


def test_the_same_bytes_again_name_the_near_copies_of_the_stored_image(client, editor):
    first = media(client, editor, jpeg(photo(3)))
    copy = media(client, editor, near_copy(photo(3)), "copy.jpg")
    again = uploaded(client, editor, data=jpeg(photo(3)), filename="again.jpg", to=MEDIA, expect=(200,))
    assert again["id"] == first["id"]
    assert [m["id"] for m in again["near_duplicates"]] == [copy["id"]]


def test_a_copy_in_another_bucket_is_not_listed(client, editor):
    uploaded(client, editor, data=jpeg(photo(4)), filename="mine.jpg")  # /api/uploads
    assert media(client, editor, near_copy(photo(4)))["near_duplicates"] == []


def test_another_user_s_upload_is_never_listed(client, auth):
    someone, me = auth.token("editor"), auth.token("editor")
    uploaded(client, someone, data=jpeg(photo(5)), filename="theirs.jpg", visibility="public")
    mine = uploaded(client, me, data=near_copy(photo(5)), filename="mine.jpg", visibility="public")
    assert mine["near_duplicates"] == []
    again = uploaded(client, me, data=jpeg(photo(5)), filename="mine-too.jpg", visibility="public")
    assert [m["id"] for m in again["near_duplicates"]] == [mine["id"]]


def test_a_trashed_image_is_not_listed(client, editor):
    first = media(client, editor, jpeg(photo(6)))
    assert client.delete(f"{MEDIA}/{first['id']}", headers=editor).status_code == 204
    assert media(client, editor, near_copy(photo(6)))["near_duplicates"] == []


def test_a_replaced_image_is_matched_by_its_new_picture(client, editor):
    first = media(client, editor, jpeg(photo(7)))
    other = media(client, editor, jpeg(photo(8)))
    replaced = client.put(f"{MEDIA}/{other['id']}", headers=editor,
                          data={"file": (io.BytesIO(near_copy(photo(7))), "r.jpg")})
    assert replaced.status_code == 200, replaced.get_json()
    assert [m["id"] for m in replaced.get_json()["near_duplicates"]] == [first["id"]]
    assert client.get(f"{MEDIA}/{first['id']}", headers=editor).get_json()["near_duplicates"][0]["id"] \
        == other["id"]


def test_a_replaced_upload_names_the_owner_s_uploads_that_look_like_its_new_picture(client, auth):
    me, someone = auth.token("editor"), auth.token("editor")
    first = uploaded(client, me, data=jpeg(photo(41)), filename="first.jpg")
    other = uploaded(client, me, data=jpeg(photo(42)), filename="other.jpg")
    uploaded(client, someone, data=jpeg(photo(41)), filename="theirs.jpg")  # another user's
    replaced = client.put(f"/api/uploads/{other['id']}", headers=me,
                          data={"file": (io.BytesIO(near_copy(photo(41))), "r.jpg")})
    assert replaced.status_code == 200, replaced.get_json()
    [match] = replaced.get_json()["near_duplicates"]
    assert match["id"] == first["id"] and match["filename"] == "first.jpg" and 0 <= match["distance"] <= 12
    assert match["url"].startswith("/media/uploads/") and match["thumb"]


def test_a_replaced_upload_never_names_itself_or_its_own_earlier_versions(client, editor, db):
    mine = uploaded(client, editor, data=jpeg(photo(43)), filename="mine.jpg")
    once = client.put(f"/api/uploads/{mine['id']}", headers=editor,
                      data={"file": (io.BytesIO(near_copy(photo(43))), "again.jpg")})
    assert once.status_code == 200 and once.get_json()["near_duplicates"] == []
    # Replaced again by yet another save of the same shot: both earlier versions look like it.
    twice = client.put(f"/api/uploads/{mine['id']}", headers=editor,
                       data={"file": (io.BytesIO(jpeg(photo(43), 70)), "third.jpg")})
    assert twice.status_code == 200 and twice.get_json()["near_duplicates"] == []
    # They are kept (in the trash), just never named.
    assert db[f"{TRASH}.files"].count_documents({"metadata.trash.from": Buckets.UPLOADS}) == 2


def test_groups_list_each_set_of_near_copies_once_page_by_page(client, editor):
    a = media(client, editor, jpeg(photo(9)), "a.jpg")
    a2 = media(client, editor, near_copy(photo(9)), "a2.jpg")
    b = media(client, editor, jpeg(photo(10)), "b.jpg")
    b2 = media(client, editor, near_copy(photo(10)), "b2.jpg")
    media(client, editor, jpeg(photo(11)), "alone.jpg")
    first = client.get(f"{MEDIA}/near-duplicates", headers=editor, query_string={"per_page": 1}).get_json()
    assert len(first["items"]) == 1 and first["next"]
    second = client.get(f"{MEDIA}/near-duplicates", headers=editor,
                        query_string={"per_page": 1, "after": first["next"]}).get_json()
    groups = [{image["id"] for image in group["images"]} for group in first["items"] + second["items"]]
    assert sorted(groups, key=sorted) == sorted([{a["id"], a2["id"]}, {b["id"], b2["id"]}], key=sorted)
    last = client.get(f"{MEDIA}/near-duplicates", headers=editor,
                      query_string={"per_page": 1, "after": second["next"]}).get_json()
    assert last == {"items": [], "per_page": 1, "next": None}


def test_a_group_whose_other_images_were_deleted_is_no_longer_listed(client, editor):
    a = media(client, editor, jpeg(photo(12)), "a.jpg")
    a2 = media(client, editor, near_copy(photo(12)), "a2.jpg")
    assert len(client.get(f"{MEDIA}/near-duplicates", headers=editor).get_json()["items"]) == 1
    assert client.delete(f"{MEDIA}/{a2['id']}", headers=editor).status_code == 204
    assert client.get(f"{MEDIA}/near-duplicates", headers=editor).get_json()["items"] == []
    assert client.get(f"{MEDIA}/{a['id']}", headers=editor).get_json()["near_duplicates"] == []


@pytest.mark.parametrize("query, code", [({"after": "not-a-cursor"}, "invalid_cursor"),
                                         ({"page": 2}, "invalid_pagination"),
                                         ({"per_page": 0}, "invalid_pagination")])
def test_a_bad_groups_page_is_a_400(client, editor, query, code):
    answer = client.get(f"{MEDIA}/near-duplicates", headers=editor, query_string=query)
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == code


def test_the_library_filters_images_mostly_close_to_a_colour(client, editor):
    red = media(client, editor, plain((200, 30, 35), 0), "red.jpg")
    dark_red = media(client, editor, plain((170, 25, 30), 10), "dark-red.jpg")
    blue = media(client, editor, plain((30, 60, 200), 20), "blue.jpg")
    found = client.get(MEDIA, headers=editor, query_string={"color": "#c81e23"}).get_json()
    assert {item["id"] for item in found["items"]} == {red["id"], dark_red["id"]}
    blues = client.get(MEDIA, headers=editor, query_string={"color": "1E3CC8"}).get_json()["items"]
    assert blue["id"] in {item["id"] for item in blues}
    with_name = client.get(MEDIA, headers=editor, query_string={"color": "#c81e23", "q": "dark"}).get_json()
    assert [item["id"] for item in with_name["items"]] == [dark_red["id"]]


@pytest.mark.parametrize("colour", ["red", "#12345", "#gggggg", ""])
def test_a_colour_that_is_not_rrggbb_is_a_400(client, editor, colour):
    answer = client.get(MEDIA, headers=editor, query_string={"color": colour})
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid_color"


# --- colour variants: a look-alike agrees in colour too (issue 64, item 5) ---------------


def shot(client, headers, colour: tuple[int, int, int], name: str) -> dict:
    return media(client, headers, encoded(product_shot(colour), quality=90), f"{name}.jpg")


def test_a_product_shot_in_three_colours_names_no_look_alike_and_forms_no_group(client, editor):
    red = shot(client, editor, RED, "red")
    green, blue = (shot(client, editor, colour, name) for name, colour in VARIANTS.items())
    assert [red["near_duplicates"], green["near_duplicates"], blue["near_duplicates"]] == [[], [], []]
    for image in (red, green, blue):  # the library's page of each asks again: none
        assert client.get(f"{MEDIA}/{image['id']}", headers=editor).get_json()["near_duplicates"] == []
    assert client.get(f"{MEDIA}/near-duplicates", headers=editor).get_json()["items"] == []


def test_a_product_shot_s_re_saves_are_still_named_and_grouped_apart_from_its_colour_variants(client, editor):
    red = shot(client, editor, RED, "red")
    variants = {shot(client, editor, colour, name)["id"] for name, colour in VARIANTS.items()}
    copies = []
    for what, data in resaves(product_shot(RED)).items():
        copy = media(client, editor, data, "copy.png" if what == "PNG" else "copy.jpg")
        named = {match["id"] for match in copy["near_duplicates"]}
        assert red["id"] in named and not named & variants, what
        copies.append(copy["id"])
    [group] = client.get(f"{MEDIA}/near-duplicates", headers=editor).get_json()["items"]
    assert {image["id"] for image in group["images"]} == {red["id"], *copies}


def test_images_stored_before_their_colour_shares_match_on_the_hash_until_the_backfill_parts_them(
        client, editor, db, runner):
    red = shot(client, editor, RED, "red")
    copy = media(client, editor, resaves(product_shot(RED))["JPEG q70"], "copy.jpg")
    blue = shot(client, editor, VARIANTS["blue"], "blue")
    db[f"{Buckets.BUILDER}.files"].update_many({"metadata.role": "original"},
                                               {"$unset": {"metadata.colour_shares": ""}})
    # Stored before the shares: the hash decides alone, as it did (and a group made so stays).
    green = shot(client, editor, VARIANTS["green"], "green")
    assert {match["id"] for match in green["near_duplicates"]} == {red["id"], copy["id"], blue["id"]}
    [group] = client.get(f"{MEDIA}/near-duplicates", headers=editor).get_json()["items"]
    assert len(group["images"]) == 4

    result = runner.invoke(args=["near-duplicates", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["colours"]["builder"] == 3 and report["owed"]["builder"] == 3
    [group] = client.get(f"{MEDIA}/near-duplicates", headers=editor).get_json()["items"]
    assert {image["id"] for image in group["images"]} == {red["id"], copy["id"]}
    for image in (green, blue):
        assert client.get(f"{MEDIA}/{image['id']}", headers=editor).get_json()["near_duplicates"] == []
    again = json.loads(runner.invoke(args=["near-duplicates", "--json"]).output)
    assert again["colours"]["builder"] == 0 and again["owed"]["builder"] == 0


def strip_near_hashes(db, bucket: str) -> None:
    db[f"{bucket}.files"].update_many({"metadata.role": "original"},
                                      {"$unset": {f"metadata.{name}": "" for name in NEAR_HASH_FIELDS}})


def test_the_backfill_gives_old_images_their_hash_and_groups_and_resumes_where_it_stopped(
        client, editor, db, runner, monkeypatch):
    a = media(client, editor, jpeg(photo(13)), "a.jpg")
    a2 = media(client, editor, near_copy(photo(13)), "a2.jpg")
    media(client, editor, jpeg(photo(14)), "b.jpg")
    strip_near_hashes(db, Buckets.BUILDER)
    assert client.get(f"{MEDIA}/near-duplicates", headers=editor).get_json()["items"] == []

    # A run cut off after its first image (a batch of one): that image is done, the rest not.
    monkeypatch.setattr(walk, "BATCH", 1)

    def stop(phase, done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backfill.backfill_near_duplicates(db, progress=stop)
    assert db[f"{Buckets.BUILDER}.files"].count_documents({"metadata.phash": {"$exists": True}}) == 1

    result = runner.invoke(args=["near-duplicates", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["computed"]["builder"] == 2 and report["unreadable"] == []
    assert report["linked"] == 1  # the copy found the first one, already done
    [group] = client.get(f"{MEDIA}/near-duplicates", headers=editor).get_json()["items"]
    assert {image["id"] for image in group["images"]} == {a["id"], a2["id"]}

    again = json.loads(runner.invoke(args=["near-duplicates", "--json"]).output)
    assert sum(again["computed"].values()) == 0 and again["linked"] == 0


def test_the_old_command_name_runs_the_same_backfill_under_the_same_lock_with_a_notice(
        client, editor, db, runner):
    """``flask likeness``, the command's name until issue 63, is a deprecated alias of
    ``flask near-duplicates``: the same report on stdout, one line on stderr naming the new
    name, and the same lock (a run under either name holds back the other)."""
    media(client, editor, jpeg(photo(16)), "a.jpg")
    media(client, editor, near_copy(photo(16)), "a2.jpg")
    strip_near_hashes(db, Buckets.BUILDER)

    old = runner.invoke(args=["likeness", "--json"])
    assert old.exit_code == 0, old.output
    report = json.loads(old.stdout)
    assert report["computed"]["builder"] == 2 and report["linked"] == 1
    [notice] = old.stderr.splitlines()
    assert "deprecated" in notice and "flask near-duplicates" in notice

    new = runner.invoke(args=["near-duplicates", "--json"])
    assert new.exit_code == 0 and new.stderr == ""
    assert sum(json.loads(new.stdout)["computed"].values()) == 0  # the old name's run did it all

    with exclusive(db, "near-duplicates"):
        held = runner.invoke(args=["likeness", "--quiet"])
    assert held.exit_code == 1 and "Another near-duplicates run holds the lock" in held.output


def test_an_image_whose_thumb_is_lost_is_reported_by_the_backfill(client, editor, db, runner):
    image = media(client, editor, jpeg(photo(15)))
    strip_near_hashes(db, Buckets.BUILDER)
    doc = db[f"{Buckets.BUILDER}.files"].find_one({"metadata.role": "original"})
    db[f"{Buckets.BUILDER}.files"].update_one({"_id": doc["_id"]},
                                              {"$unset": {"metadata.variants.thumb": ""}})
    report = json.loads(runner.invoke(args=["near-duplicates", "--json"]).output)
    assert report["unreadable"] == [{"bucket": Buckets.BUILDER, "id": image["id"]}]


def test_product_photos_brought_from_temp_images_are_grouped_in_the_products_bucket(client, admin, db):
    from avenue.media import Buckets, Library
    from avenue.paging import Window

    temp = client.post("/api/shop/temp-images", headers=admin, data={"images": [
        (io.BytesIO(jpeg(photo(16))), "a.jpg"), (io.BytesIO(near_copy(photo(16))), "b.jpg")]})
    assert temp.status_code == 201, temp.get_json()
    ids = [image["id"] for image in temp.get_json()["images"]]
    assert client.post("/api/shop/products", headers=admin, json={
        "sku": "ND-1", "name": "Shoe", "price": 1, "temp_image_ids": ids}).status_code == 201
    groups, _ = Library(db, Buckets.PRODUCTS, Media()).near_groups(Window())
    assert [{str(image.id) for image in group.images} for group in groups] == [set(ids)]
    assert str(groups[0].label) in ids  # this bucket's label, not the temp bucket's


def product_with(client, admin, sku: str, files: list[tuple[bytes, str]]):
    assert client.post("/api/shop/products", headers=admin,
                       json={"sku": sku, "name": sku, "price": 10}).status_code == 201
    return client.post(f"/api/shop/products/{sku}/images", headers=admin,
                       data={"images": [(io.BytesIO(data), name) for data, name in files]})


def test_a_product_photo_s_answer_names_its_near_copy_on_another_product_and_stores_it(client, auth):
    admin = auth.token("admin")
    first = product_with(client, admin, "NEAR-1",
                         [(jpeg(photo(21)), "shoe.jpg"), (jpeg(photo(22)), "bag.jpg")])
    assert first.status_code == 201
    assert [added["near_duplicates"] for added in first.get_json()["added"]] == [[], []]
    shoe = first.get_json()["added"][0]["id"]
    copy = product_with(client, admin, "NEAR-2", [(near_copy(photo(21)), "shoe-again.jpg")])
    assert copy.status_code == 201
    [added] = copy.get_json()["added"]
    [match] = added["near_duplicates"]
    assert match["id"] == shoe and 0 < match["distance"] <= 12 and match["filename"] == "shoe.jpg"
    assert match["url"].startswith("/media/products/") and match["thumb"]
    # Stored as usual all the same: the second product has its own photo.
    images = client.get("/api/shop/products/NEAR-2").get_json()["images"]
    assert [image["id"] for image in images] == [added["id"]]


def test_a_distinct_product_photo_names_no_look_alike(client, auth):
    admin = auth.token("admin")
    assert product_with(client, admin, "FAR-1", [(jpeg(photo(23)), "one.jpg")]).status_code == 201
    [added] = product_with(client, admin, "FAR-2", [(jpeg(photo(24)), "two.jpg")]).get_json()["added"]
    assert added["near_duplicates"] == []


def test_a_product_photo_s_look_alikes_are_asked_again_as_its_answer_named_them(client, auth):
    # What the console asks when an upload's answer left near_duplicates out (a late lookup).
    admin = auth.token("admin")
    [shoe] = product_with(client, admin, "ASK-1", [(jpeg(photo(26)), "shoe.jpg")]).get_json()["added"]
    [copy] = product_with(client, admin, "ASK-2", [(near_copy(photo(26)), "again.jpg")]).get_json()["added"]
    asked = client.get(f"/api/shop/products/ASK-2/images/{copy['id']}/near-duplicates", headers=admin)
    assert asked.status_code == 200
    assert asked.get_json()["near_duplicates"] == copy["near_duplicates"]
    assert [match["id"] for match in asked.get_json()["near_duplicates"]] == [shoe["id"]]
    back = client.get(f"/api/shop/products/ASK-1/images/{shoe['id']}/near-duplicates", headers=admin)
    assert [match["id"] for match in back.get_json()["near_duplicates"]] == [copy["id"]]


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/api/shop/products/NOPE/images/{shoe}/near-duplicates", 404, "product_not_found"),
    ("/api/shop/products/ASK-4/images/{shoe}/near-duplicates", 404, "image_not_found"),  # another product's
    ("/api/shop/products/ASK-3/images/0123456789abcdef01234567/near-duplicates", 404, "image_not_found"),
    ("/api/shop/products/ASK-3/images/not-an-id/near-duplicates", 404, "image_not_found"),
])
def test_a_photo_the_product_does_not_have_has_no_look_alikes_to_ask(client, auth, path, status, code):
    admin = auth.token("admin")
    [shoe] = product_with(client, admin, "ASK-3", [(jpeg(photo(27)), "shoe.jpg")]).get_json()["added"]
    assert product_with(client, admin, "ASK-4", [(jpeg(photo(28)), "bag.jpg")]).status_code == 201
    answer = client.get(path.format(shoe=shoe["id"]), headers=admin)
    assert (answer.status_code, answer.get_json()["error"]["code"]) == (status, code)


def test_a_refused_product_upload_stores_nothing_and_names_nothing(client, auth, db):
    admin = auth.token("admin")
    assert product_with(client, admin, "NEAR-3", [(jpeg(photo(25)), "a.jpg")]).status_code == 201
    before = db["product_images_data.files"].count_documents({})
    refused = client.post("/api/shop/products/NEAR-3/images", headers=admin,
                          data={"images": [(io.BytesIO(near_copy(photo(25))), "b.jpg"),
                                           (io.BytesIO(b"not an image"), "c.jpg")]})
    assert refused.status_code in (415, 422) and "near_duplicates" not in refused.get_json()
    assert db["product_images_data.files"].count_documents({}) == before


# --- the lookup beside the write (avenue/media/store/near_duplicates.py: Lookup) ---------------------


def lookups(client, auth) -> dict[str, float]:
    """``avenue_near_duplicate_lookups_total`` by outcome, as /metrics shows it."""
    text = client.get("/metrics", headers=auth.token("ops")).get_data(as_text=True)
    return {sample.labels["outcome"]: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == "avenue_near_duplicate_lookups_total"}


def threads_only(backend) -> None:
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("threads need a real server (mongomock is not thread-safe: its lookups run inline)")


def test_the_lookup_runs_while_the_original_is_written(client, editor, backend, monkeypatch):
    threads_only(backend)
    # As on mongod, which runs the two side by side (the embedded database does not: next test).
    monkeypatch.setattr(near_duplicates, "_one_operation_at_a_time", lambda db: False)
    first = media(client, editor, jpeg(photo(31)), "first.jpg")
    looking = threading.Event()
    real_near, real_write = near_duplicates.near, originals._write

    def near(*args, **kwargs):
        looking.set()
        return real_near(*args, **kwargs)

    def write(*args, **kwargs):
        # Run one after the other, the lookup would begin only after this returned.
        assert looking.wait(30), "the lookup had not begun while the original was being written"
        return real_write(*args, **kwargs)

    monkeypatch.setattr(near_duplicates, "near", near)
    monkeypatch.setattr(originals, "_write", write)
    copy = media(client, editor, near_copy(photo(31)), "copy.jpg")
    assert [match["id"] for match in copy["near_duplicates"]] == [first["id"]]


def test_on_the_embedded_database_the_lookup_begins_once_the_original_is_written(
        client, editor, backend, monkeypatch):
    threads_only(backend)  # the wire-protocol backend is the embedded SecantusDB
    first = media(client, editor, jpeg(photo(35)), "first.jpg")
    written = threading.Event()
    real_near, real_write = near_duplicates.near, originals._write

    def near(*args, **kwargs):
        assert written.is_set(), "the lookup began before the original was written"
        return real_near(*args, **kwargs)

    def write(*args, **kwargs):
        try:
            return real_write(*args, **kwargs)
        finally:
            written.set()

    monkeypatch.setattr(near_duplicates, "near", near)
    monkeypatch.setattr(originals, "_write", write)
    copy = media(client, editor, near_copy(photo(35)), "copy.jpg")
    assert [match["id"] for match in copy["near_duplicates"]] == [first["id"]]

def held_lookups(monkeypatch, hold: float) -> tuple[threading.Event, threading.Event]:
    """Every lookup held until the test sets the first event (at most ``hold`` s: an answer that
    waited for its lookup would hang there), and the second set once a late lookup linked its
    group."""
    answered, linked = threading.Event(), threading.Event()
    real_near, real_link_late = near_duplicates.near, near_duplicates.Lookup._link_late

    def held_up(*args, **kwargs):
        answered.wait(hold)
        return real_near(*args, **kwargs)

    def link_late(self, done, created):
        try:
            real_link_late(self, done, created)
        finally:
            linked.set()

    monkeypatch.setattr(near_duplicates, "near", held_up)
    monkeypatch.setattr(near_duplicates.Lookup, "_link_late", link_late)
    return answered, linked


def test_on_the_embedded_database_the_answer_does_not_wait_for_the_lookup_and_its_group_is_linked_after(
        client, editor, auth, backend, monkeypatch):
    threads_only(backend)
    monkeypatch.setattr(near_duplicates, "_one_operation_at_a_time", lambda db: True)  # as on SecantusDB
    first = media(client, editor, jpeg(photo(36)), "first.jpg")
    monkeypatch.setattr(near_duplicates, "EMBEDDED_WAIT_SECONDS", 0.0)  # production's (the fixture waits)
    before = lookups(client, auth)
    answered, linked = held_lookups(monkeypatch, 30)
    began = time.monotonic()
    copy = media(client, editor, near_copy(photo(36)), "copy.jpg")
    took = time.monotonic() - began
    answered.set()
    assert took < 30 and "near_duplicates" not in copy
    counted = lookups(client, auth)
    assert counted["after"] == before.get("after", 0) + 1
    assert counted.get("late", 0) == before.get("late", 0)  # by design here, not news
    assert linked.wait(60)
    [group] = client.get(f"{MEDIA}/near-duplicates", headers=editor).get_json()["items"]
    assert {image["id"] for image in group["images"]} == {first["id"], copy["id"]}
    # What the console asks next: the image's own page names the match.
    shown = client.get(f"{MEDIA}/{copy['id']}", headers=editor).get_json()
    assert [match["id"] for match in shown["near_duplicates"]] == [first["id"]]


def test_a_lookup_that_fails_leaves_the_upload_stored_and_names_nothing(client, editor, auth, monkeypatch):
    media(client, editor, jpeg(photo(32)), "first.jpg")
    before = lookups(client, auth)

    def broken(*args, **kwargs):
        raise ServerSelectionTimeoutError("the lookup's server went away")

    monkeypatch.setattr(near_duplicates, "near", broken)
    copy = media(client, editor, near_copy(photo(32)), "copy.jpg")
    # Stored and answered, without a list it could not make ("none" would be false).
    assert "near_duplicates" not in copy
    assert lookups(client, auth).get("failed", 0) == before.get("failed", 0) + 1
    monkeypatch.undo()  # the library's page of it looks its near-duplicates up too
    assert client.get(f"{MEDIA}/{copy['id']}", headers=editor).status_code == 200


def test_an_image_whose_lookup_failed_owes_its_grouping_and_the_backfill_links_it(
        client, editor, db, runner, monkeypatch):
    first = media(client, editor, jpeg(photo(35)), "first.jpg")
    assert db[f"{Buckets.BUILDER}.files"].count_documents(OWED) == 0  # its lookup answered: nothing owed

    def broken(*args, **kwargs):
        raise ServerSelectionTimeoutError("the lookup's server went away")

    monkeypatch.setattr(near_duplicates, "near", broken)
    copy = media(client, editor, near_copy(photo(35)), "copy.jpg")
    monkeypatch.undo()
    # Hashed (so the hash walk passes it by) but never compared: it says so.
    [owed] = db[f"{Buckets.BUILDER}.files"].find(OWED)
    assert str(owed["_id"]) == copy["id"] and owed["metadata"]["phash"]
    assert client.get(f"{MEDIA}/near-duplicates", headers=editor).get_json()["items"] == []

    result = runner.invoke(args=["near-duplicates", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["owed"]["builder"] == 1 and report["linked"] == 1 and sum(report["computed"].values()) == 0
    [group] = client.get(f"{MEDIA}/near-duplicates", headers=editor).get_json()["items"]
    assert {image["id"] for image in group["images"]} == {first["id"], copy["id"]}
    assert db[f"{Buckets.BUILDER}.files"].count_documents(OWED) == 0
    again = json.loads(runner.invoke(args=["near-duplicates", "--json"]).output)
    assert again["owed"]["builder"] == 0 and again["linked"] == 0


def test_a_worker_that_died_before_its_lookup_leaves_the_grouping_owed(client, editor, db, monkeypatch):
    """The flag is written with the original, so an upload whose process stopped after its
    write (here: a lookup that never runs) is found by the backfill all the same."""
    monkeypatch.setattr(near_duplicates.Lookup, "finish", lambda self, created: [None for _ in created])
    image = media(client, editor, jpeg(photo(36)), "lost.jpg")
    assert [str(d["_id"]) for d in db[f"{Buckets.BUILDER}.files"].find(OWED)] == [image["id"]]


def test_a_replaced_picture_owes_no_grouping_once_its_lookup_linked_it(client, editor, db):
    first = media(client, editor, jpeg(photo(37)))
    other = media(client, editor, jpeg(photo(38)))
    replaced = client.put(f"{MEDIA}/{other['id']}", headers=editor,
                          data={"file": (io.BytesIO(near_copy(photo(37))), "r.jpg")})
    assert [m["id"] for m in replaced.get_json()["near_duplicates"]] == [first["id"]]
    assert db[f"{Buckets.BUILDER}.files"].count_documents(OWED) == 0


@pytest.mark.parametrize(("bound", "patches", "hold"), [
    # The cap: a lookup past WAIT_SECONDS (shortened) is never waited for.
    ("cap", {"WAIT_SECONDS": 0.05}, 60.0),
    # The share: with the production floor and a minute's cap, a 5 s lookup is not waited for
    # either (an answer that waited would come after those 5 s and name the near copy).
    ("share", {"WAIT_FLOOR_SECONDS": PRODUCTION_FLOOR, "WAIT_SECONDS": 60.0}, 5.0),
])
def test_a_lookup_past_its_wait_does_not_hold_the_answer_and_links_its_group_later(
        client, editor, auth, backend, monkeypatch, bound, patches, hold):
    threads_only(backend)
    # The wait of a server that runs the lookup beside the writes, as mongod does (on the
    # embedded database the answer does not wait at all: the test before the next one).
    monkeypatch.setattr(near_duplicates, "_one_operation_at_a_time", lambda db: False)
    seed = 33 if bound == "cap" else 34
    first = media(client, editor, jpeg(photo(seed)), "first.jpg")
    before = lookups(client, auth)
    for name, value in patches.items():
        monkeypatch.setattr(near_duplicates, name, value)
    answered, linked = held_lookups(monkeypatch, hold)
    copy = media(client, editor, near_copy(photo(seed)), "copy.jpg")
    answered.set()
    assert "near_duplicates" not in copy
    assert lookups(client, auth)["late"] == before.get("late", 0) + 1
    assert linked.wait(60)
    [group] = client.get(f"{MEDIA}/near-duplicates", headers=editor).get_json()["items"]
    assert {image["id"] for image in group["images"]} == {first["id"], copy["id"]}


@pytest.mark.parametrize(("writes_took", "waited"), [
    (0.0, 0.005), (0.05, 0.005), (0.1, 0.005), (0.14, 0.007), (4.0, 0.2), (18.0, 0.9), (30.0, 1.0)])
def test_an_answer_waits_for_its_lookup_a_twentieth_of_its_store_between_the_floor_and_the_cap(
        writes_took, waited, monkeypatch):
    monkeypatch.setattr(near_duplicates, "WAIT_FLOOR_SECONDS", PRODUCTION_FLOOR)
    monkeypatch.setattr(near_duplicates, "WAIT_SECONDS", PRODUCTION_CAP)
    assert near_duplicates.wait_past_writes(writes_took) == pytest.approx(waited)


def test_a_store_that_fails_links_nothing_and_stores_nothing(client, auth, db, monkeypatch):
    admin = auth.token("admin")
    assert product_with(client, admin, "FAIL-1", [(jpeg(photo(34)), "a.jpg")]).status_code == 201
    before = db[f"{Buckets.PRODUCTS}.files"].count_documents({})

    def down(*args, **kwargs):
        raise ServerSelectionTimeoutError("the database went away mid-upload")

    monkeypatch.setattr(originals, "_write", down)
    failed = client.post("/api/shop/products/FAIL-1/images", headers=admin,
                         data={"images": [(io.BytesIO(near_copy(photo(34))), "b.jpg")]})
    assert failed.status_code == 503 and failed.get_json()["error"]["code"] == "database_unavailable"
    assert db[f"{Buckets.PRODUCTS}.files"].count_documents({}) == before
    assert db[f"{Buckets.PRODUCTS}.files"].count_documents({"metadata.near_group": {"$ne": None}}) == 0


def stoppable_lookups(monkeypatch) -> tuple[list[object], threading.Event, threading.Event]:
    """Each lookup's image id noted (``looked``), ``looking`` set when the first begins, which
    then runs on only once its store stops it (``Lookup.stop``: at most 60 s); ``ran`` set when
    the lookup's job ends."""
    looking, stopped, ran = threading.Event(), threading.Event(), threading.Event()
    looked: list[object] = []
    real_near, real_stop = near_duplicates.near, near_duplicates.Lookup.stop
    real_run = near_duplicates.Lookup._run

    def near(*args, **kwargs):
        looked.append(args[2]["_id"])
        looking.set()
        stopped.wait(60)  # still looking when the store fails
        return real_near(*args, **kwargs)

    def stop(self):
        real_stop(self)
        stopped.set()

    def run(self):
        try:
            return real_run(self)
        finally:
            ran.set()

    monkeypatch.setattr(near_duplicates, "near", near)
    monkeypatch.setattr(near_duplicates.Lookup, "stop", stop)
    monkeypatch.setattr(near_duplicates.Lookup, "_run", run)
    return looked, looking, ran


def test_a_store_that_fails_stops_its_lookup_before_the_next_upload_s(client, auth, db, backend, monkeypatch):
    threads_only(backend)
    # The lookup beside the writes, as on mongod (on the embedded database it begins after them).
    monkeypatch.setattr(near_duplicates, "_one_operation_at_a_time", lambda db: False)
    admin = auth.token("admin")
    assert product_with(client, admin, "FAIL-2", [(jpeg(photo(35)), "a.jpg")]).status_code == 201
    looked, looking, ran = stoppable_lookups(monkeypatch)

    def down(*args, **kwargs):
        assert looking.wait(60)  # (a lookup not begun yet is cancelled outright)
        raise ServerSelectionTimeoutError("the database went away mid-upload")

    monkeypatch.setattr(originals, "_write", down)
    failed = client.post("/api/shop/products/FAIL-2/images", headers=admin, data={"images": [
        (io.BytesIO(near_copy(photo(35))), "b.jpg"), (io.BytesIO(jpeg(photo(36))), "c.jpg")]})
    assert failed.status_code == 503
    assert ran.wait(60)
    assert len(looked) == 1  # the second upload was never looked up
    assert db[f"{Buckets.PRODUCTS}.files"].count_documents({"metadata.near_group": {"$ne": None}}) == 0


def test_a_store_whose_twins_query_fails_stops_its_lookup_and_links_nothing(client, auth, db, backend,
                                                                            monkeypatch):
    """The originals are written, then the exact twins' query fails (the database went away):
    the lookup begun beside the writes stops (Library.store_with), so the second upload is
    never looked up and no group is linked; the answer is 503 and the written originals owe
    their grouping (``near_pending``) to ``flask near-duplicates``."""
    threads_only(backend)
    monkeypatch.setattr(near_duplicates, "_one_operation_at_a_time", lambda db: False)  # beside, as on mongod
    admin = auth.token("admin")
    assert product_with(client, admin, "FAIL-4", [(jpeg(photo(38)), "a.jpg")]).status_code == 201
    looked, looking, ran = stoppable_lookups(monkeypatch)

    def twins_down(*args, **kwargs):
        assert looking.wait(60)
        raise ServerSelectionTimeoutError("the database went away after the writes")

    monkeypatch.setattr(exact, "candidates", twins_down)  # the query before the answer
    failed = client.post("/api/shop/products/FAIL-4/images", headers=admin, data={"images": [
        (io.BytesIO(near_copy(photo(38))), "b.jpg"), (io.BytesIO(jpeg(photo(39))), "c.jpg")]})
    assert failed.status_code == 503 and failed.get_json()["error"]["code"] == "database_unavailable"
    assert ran.wait(60)
    assert len(looked) == 1  # stopped: the second upload was never looked up
    assert db[f"{Buckets.PRODUCTS}.files"].count_documents({"metadata.near_group": {"$ne": None}}) == 0
    owed = db[f"{Buckets.PRODUCTS}.files"].count_documents({near_duplicates.PENDING: True})
    assert owed == 2  # owed, not lost


def test_on_the_embedded_database_a_store_that_fails_looks_nothing_up(client, auth, db, backend, monkeypatch):
    threads_only(backend)
    admin = auth.token("admin")
    assert product_with(client, admin, "FAIL-3", [(jpeg(photo(37)), "a.jpg")]).status_code == 201
    looked = counting_lookups(monkeypatch)

    def down(*args, **kwargs):
        # Give a lookup begun beside the write (as before, and on mongod) a second to show up
        # in ``looked``: on the embedded database none begins before the write is done.
        deadline = time.monotonic() + 1
        while not looked and time.monotonic() < deadline:
            time.sleep(0.01)
        raise ServerSelectionTimeoutError("the database went away mid-upload")

    monkeypatch.setattr(originals, "_write", down)
    failed = client.post("/api/shop/products/FAIL-3/images", headers=admin,
                         data={"images": [(io.BytesIO(near_copy(photo(37))), "b.jpg")]})
    assert failed.status_code == 503
    assert looked == []
    assert db[f"{Buckets.PRODUCTS}.files"].count_documents({"metadata.near_group": {"$ne": None}}) == 0

def counting_lookups(monkeypatch) -> list[str]:
    """Each near-duplicate lookup from now on, by the id of the image looked up."""
    calls: list[str] = []
    real = near_duplicates.near

    def near(db, bucket, doc, **options):
        calls.append(str(doc["_id"]))
        return real(db, bucket, doc, **options)

    monkeypatch.setattr(near_duplicates, "near", near)
    return calls


@pytest.mark.parametrize("path", [MEDIA, "/api/uploads"])
def test_a_replace_looks_its_new_picture_s_near_duplicates_up_once_and_answers_them(
        client, editor, path, monkeypatch):
    """The lookup that groups the new picture is the one its answer names (before, the view
    looked them up again: twice the index reads per replace)."""
    first = uploaded(client, editor, data=jpeg(photo(61)), filename="first.jpg", to=path)
    other = uploaded(client, editor, data=jpeg(photo(62)), filename="other.jpg", to=path)
    calls = counting_lookups(monkeypatch)
    replaced = client.put(f"{path}/{other['id']}", headers=editor,
                          data={"file": (io.BytesIO(near_copy(photo(61))), "r.jpg")})
    assert replaced.status_code == 200, replaced.get_json()
    assert [m["id"] for m in replaced.get_json()["near_duplicates"]] == [first["id"]]
    assert calls == [other["id"]]


def test_an_edit_looks_the_edited_picture_s_near_duplicates_up_once(client, editor, db, monkeypatch):
    first = media(client, editor, jpeg(photo(63)))
    other = media(client, editor, jpeg(photo(63).transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    calls = counting_lookups(monkeypatch)
    edited = client.put(f"{MEDIA}/{other['id']}/edits", headers=editor, json={"flip_horizontal": True})
    assert edited.status_code == 200, edited.get_json()
    # Flipped back: the first image's picture, grouped with it, named once looked up once.
    assert [m["id"] for m in edited.get_json()["near_duplicates"]] == [first["id"]]
    assert calls == [other["id"]] and db[f"{Buckets.BUILDER}.files"].count_documents(OWED) == 0


def test_a_new_focal_point_keeps_the_picture_s_group_and_names_its_near_duplicates(
        client, editor, monkeypatch):
    """The same picture: nothing to group again; the answer still names its look-alikes."""
    first = media(client, editor, jpeg(photo(64)))
    copy = media(client, editor, near_copy(photo(64)))
    calls = counting_lookups(monkeypatch)
    moved = client.put(f"{MEDIA}/{copy['id']}/focal-point", headers=editor, json={"x": 0.2, "y": 0.3})
    assert moved.status_code == 200, moved.get_json()
    assert [m["id"] for m in moved.get_json()["near_duplicates"]] == [first["id"]]
    assert calls == [copy["id"]]  # the answer's lookup only
