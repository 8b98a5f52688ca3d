"""Near-duplicates at upload, their groups, the colour filter and the backfill command
(avenue/media/ingest/near_hash.py, avenue/media/store/near_duplicates.py,
avenue/media/upkeep/backfill_near_duplicates.py)."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image, ImageDraw

from avenue.media import Buckets, Media
from avenue.media.maintenance import Figures
from avenue.ops.lock import exclusive
from tests.support.client import MEDIA, uploaded
from tests.support.near import (
    OWED,
    jpeg,
    media,
    near_copy,
    photo,
    product_with,
    strip_near_hashes,
)
from tests.support.records import IMAGE, images
from tests.support.shots import RED, VARIANTS, encoded, product_shot, resaves

# The answers these tests read name their near-duplicates whatever the machine's load: the
# lookup is waited for up to its second. What a production answer waits has its own tests
# (tests/media/store/test_near_duplicates.py).
pytestmark = pytest.mark.usefixtures("answers_wait_for_lookups")


def plain(colour: tuple[int, int, int], seed: int) -> bytes:
    """Mostly one colour (a product on a coloured backdrop)."""
    im = Image.new("RGB", (400, 300), colour)
    ImageDraw.Draw(im).ellipse((150 + seed, 100, 250 + seed, 200), fill=(240, 240, 240))
    return jpeg(im, 90)


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
    assert images(db, Figures.TRASH).count_documents({"metadata.trash.from": Buckets.UPLOADS}) == 2


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
    images(db, Buckets.BUILDER).update_many(IMAGE, {"$unset": {"metadata.colour_shares": ""}})
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
    doc = images(db, Buckets.BUILDER).find_one(IMAGE)
    images(db, Buckets.BUILDER).update_one({"_id": doc["_id"]}, {"$unset": {"metadata.variants.thumb": ""}})
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


# --- the lookup beside the write (its own tests: tests/media/store/test_near_duplicates.py) -------


def test_a_replaced_picture_owes_no_grouping_once_its_lookup_linked_it(client, editor, db):
    first = media(client, editor, jpeg(photo(37)))
    other = media(client, editor, jpeg(photo(38)))
    replaced = client.put(f"{MEDIA}/{other['id']}", headers=editor,
                          data={"file": (io.BytesIO(near_copy(photo(37))), "r.jpg")})
    assert [m["id"] for m in replaced.get_json()["near_duplicates"]] == [first["id"]]
    assert images(db, Buckets.BUILDER).count_documents(OWED) == 0


