"""The builder library organised: a folder per image and tags, set on upload and by PATCH,
filtered, counted, and refused in words when malformed."""

from __future__ import annotations

import io

from avenue.media import Buckets
from tests.helpers import bucket_snapshot, image_bytes
from tests.support.client import media_upload as upload
from tests.support.records import images

PHOTOS = ("good/progressive.jpg", "good/grayscale.jpg", "good/cmyk.jpg", "good/photo_exif_rotated.jpg")


def ids(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["items"]]


def test_an_upload_takes_a_folder_and_tags_and_shows_them(client, editor):
    created = upload(client, editor, PHOTOS[0], folder=" products//summer/ ", tags="Sale, Red\nlamp,sale")
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["folder"] == "/products/summer"
    assert body["tags"] == ["sale", "red lamp"]
    plain = upload(client, editor, PHOTOS[1]).get_json()
    assert plain["folder"] == "/" and plain["tags"] == []


def test_repeated_tags_fields_are_all_taken(client, editor):
    form = {"file": (io.BytesIO(image_bytes(PHOTOS[0])), "p.jpg"), "tags": ["one", "two"]}
    body = client.post("/api/builder/media", data=form, headers=editor).get_json()
    assert body["tags"] == ["one", "two"]


def test_lists_filter_by_folder_and_by_every_tag_given(client, editor):
    a = upload(client, editor, PHOTOS[0], folder="/products", tags="sale,red").get_json()["id"]
    b = upload(client, editor, PHOTOS[1], folder="/products", tags="red").get_json()["id"]
    c = upload(client, editor, PHOTOS[2], folder="/products/summer", tags="sale").get_json()["id"]
    d = upload(client, editor, PHOTOS[3]).get_json()["id"]
    get = lambda **query: ids(client.get("/api/builder/media", headers=editor, query_string=query))  # noqa: E731
    assert get(folder="/products") == [b, a]  # newest first; not the subfolder's
    assert get(folder="products/summer/") == [c]
    assert get(folder="/") == [d]
    assert get(tag="red") == [b, a]
    assert get(tag=["red", "sale"]) == [a]
    assert get(tag="SALE", folder="/products/summer") == [c]
    assert get(folder="/nowhere") == []
    # A cursor page of a filtered list stays in the filter.
    first = client.get("/api/builder/media", headers=editor, query_string={"tag": "red", "per_page": 1})
    after = first.get_json()["next"]
    assert ids(client.get("/api/builder/media", headers=editor,
                          query_string={"tag": "red", "per_page": 1, "after": after})) == [a]


def test_media_stored_before_folders_is_in_the_root(client, editor, db):
    media_id = upload(client, editor, PHOTOS[0]).get_json()["id"]
    images(db, Buckets.BUILDER).update_many({}, {"$unset": {"metadata.folder": "", "metadata.tags": ""}})
    assert ids(client.get("/api/builder/media", headers=editor, query_string={"folder": "/"})) == [media_id]
    assert client.get("/api/builder/folders", headers=editor).get_json() == {
        "folders": [{"folder": "/", "count": 1}]}
    assert client.get(f"/api/builder/media/{media_id}", headers=editor).get_json()["folder"] == "/"


def test_folders_and_tags_are_counted(client, editor):
    upload(client, editor, PHOTOS[0], folder="/products", tags="sale,red")
    upload(client, editor, PHOTOS[1], folder="/products", tags="red")
    upload(client, editor, PHOTOS[2], folder="/blog")
    upload(client, editor, PHOTOS[3])
    assert client.get("/api/builder/folders", headers=editor).get_json()["folders"] == [
        {"folder": "/", "count": 1}, {"folder": "/blog", "count": 1}, {"folder": "/products", "count": 2}]
    assert client.get("/api/builder/tags", headers=editor).get_json()["tags"] == [
        {"tag": "red", "count": 2}, {"tag": "sale", "count": 1}]


def test_patch_moves_retags_and_relabels_and_lists_follow(client, editor, db):
    media_id = upload(client, editor, PHOTOS[0], alt="Old").get_json()["id"]
    changed = client.patch(f"/api/builder/media/{media_id}", headers=editor,
                           json={"folder": "/archive/2026", "tags": ["Winter"], "alt": "  A lamp  "})
    assert changed.status_code == 200, changed.get_json()
    body = changed.get_json()
    assert (body["folder"], body["tags"], body["alt"]) == ("/archive/2026", ["winter"], "A lamp")
    assert body["used_in"] == []
    in_archive = client.get("/api/builder/media", headers=editor, query_string={"folder": "/archive/2026"})
    assert ids(in_archive) == [media_id]
    assert ids(client.get("/api/builder/media", headers=editor, query_string={"folder": "/"})) == []
    cleared = client.patch(f"/api/builder/media/{media_id}", headers=editor,
                           json={"folder": None, "tags": [], "alt": None}).get_json()
    assert (cleared["folder"], cleared["tags"], "alt" in cleared) == ("/", [], False)
    entry = db.audit_logs.find_one({"action": "builder_media_updated"})
    assert entry["target"]["fields"] == ["alt", "folder", "tags"]


def test_a_reupload_with_a_folder_or_tags_replaces_the_stored_ones(client, editor):
    first = upload(client, editor, PHOTOS[0], folder="/a", tags="x").get_json()
    again = upload(client, editor, PHOTOS[0], folder="/b")
    assert again.status_code == 200
    body = again.get_json()
    assert (body["id"], body["folder"], body["tags"]) == (first["id"], "/b", ["x"])


MALFORMED_UPLOADS = [
    ({"folder": "/a/../b"}, "invalid_folder"),
    ({"folder": "/" + "/".join("abcdefghi")}, "invalid_folder"),
    ({"folder": "/" + "x" * 65}, "invalid_folder"),
    ({"folder": "/a\x00b"}, "invalid_folder"),
    ({"folder": "/a<b>"}, "invalid_folder"),
    ({"tags": "a<script>"}, "invalid_tags"),
    ({"tags": ",".join(f"t{n}" for n in range(21))}, "invalid_tags"),
    ({"tags": "x" * 41}, "invalid_tags"),
]
MALFORMED_PATCHES = [
    ({}, "invalid_media_update"),
    ({"owner": "me"}, "invalid_media_update"),
    ({"folder": 7}, "invalid_folder"),
    ({"folder": "/.."}, "invalid_folder"),
    ({"tags": "a,b"}, "invalid_tags"),
    ({"tags": [1, 2]}, "invalid_tags"),
    ({"alt": ["x"]}, "invalid_alt"),
    ({"alt": "x" * 501}, "invalid_alt"),
    ({"alt": 5}, "invalid_alt"),
    ({"alt": "a\x07b"}, "invalid_alt"),
    ({"folder": ["/x"]}, "invalid_folder"),
    ({"tags": {"a": 1}}, "invalid_tags"),
    ({"tags": [f"t{n}" for n in range(21)]}, "invalid_tags"),
    ({"alt": "x", "owner": "me"}, "invalid_media_update"),
]


def test_a_malformed_folder_or_tag_on_upload_is_400_and_nothing_is_stored(client, editor, db):
    before = bucket_snapshot(db)
    for fields, code in MALFORMED_UPLOADS:
        response = upload(client, editor, PHOTOS[0], **fields)
        assert response.status_code == 400, fields
        assert response.get_json()["error"]["code"] == code, fields
    assert bucket_snapshot(db) == before


def test_a_malformed_patch_is_400_and_changes_nothing(client, editor, db):
    media_id = upload(client, editor, PHOTOS[0], folder="/keep", tags="keep").get_json()["id"]
    for body, code in MALFORMED_PATCHES:
        response = client.patch(f"/api/builder/media/{media_id}", headers=editor, json=body)
        assert response.status_code == 400, body
        assert response.get_json()["error"]["code"] == code, body
    kept = client.get(f"/api/builder/media/{media_id}", headers=editor).get_json()
    assert (kept["folder"], kept["tags"]) == ("/keep", ["keep"])


def test_patching_missing_media_is_404_and_a_bad_filter_is_400(client, editor):
    assert client.patch("/api/builder/media/" + "0" * 24, headers=editor,
                        json={"folder": "/x"}).status_code == 404
    bad = client.get("/api/builder/media", headers=editor, query_string={"folder": "/../x"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_folder"
    for tags in (["<script>"], ["x" * 41], [f"t{n}" for n in range(21)]):
        bad_tag = client.get("/api/builder/media", headers=editor, query_string={"tag": tags})
        assert bad_tag.status_code == 400 and bad_tag.get_json()["error"]["code"] == "invalid_tags"


def test_only_editors_and_admins_organise_the_library(client, auth, editor):
    media_id = upload(client, editor, PHOTOS[0]).get_json()["id"]
    for role in ("ops",):
        headers = auth.token(role)
        moved = client.patch(f"/api/builder/media/{media_id}", headers=headers, json={"folder": "/x"})
        assert moved.status_code == 403
        assert client.get("/api/builder/folders", headers=headers).status_code == 403
        assert client.get("/api/builder/tags", headers=headers).status_code == 403
    assert client.get("/api/builder/folders").status_code == 401
