"""General uploads: owners, visibility, signed expiring URLs with key rotation, bad input."""

from __future__ import annotations

import io
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from bson import ObjectId

from avenue.media import Buckets, UrlSigner
from tests.helpers import HOSTILE_NAMES, REFUSED, bucket_snapshot, error_body, image_bytes
from tests.support.client import upload
from tests.support.records import images

OLD_KEY = "test-secret-key-for-avenue"  # the key conftest's apps are built with
NEW_KEY = "a-brand-new-secret-key-for-avenue"


def query(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
def user(auth):
    return auth.token("ops")  # any logged-in role may upload


@pytest.fixture
def private(client, user):
    response = upload(client, user)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


# --- uploading and visibility ----------------------------------------------------------------


def test_any_logged_in_user_uploads_and_it_is_private_by_default(client, private, auth):
    assert private["visibility"] == "private"
    assert set(query(private["url"])) == {"expires", "sig"}
    assert all(set(query(url)) == {"expires", "sig"} for url in private["variants"].values())
    assert private["owner"] and private["content_type"] == "image/jpeg"
    for role in ("editor", "admin"):
        assert upload(client, auth.token(role), "good/alpha.png").status_code == 201
    assert upload(client, {}).status_code == 401


def test_a_private_url_serves_the_file_with_cache_control_private(client, private):
    response = client.get(private["url"])
    assert response.status_code == 200 and len(response.data) == private["bytes"]
    assert response.headers["Cache-Control"].startswith("private")
    assert "immutable" not in response.headers["Cache-Control"]
    for url in private["variants"].values():
        variant = client.get(url)
        assert variant.status_code == 200 and variant.headers["Cache-Control"].startswith("private")


def test_a_public_upload_behaves_like_a_product_image(client, user):
    response = upload(client, user, visibility="public")
    assert response.status_code == 201
    public = response.get_json()
    assert public["visibility"] == "public" and "?" not in public["url"]
    served = client.get(public["url"])
    assert served.status_code == 200
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert served.headers["ETag"] == f'"{public["sha256"]}"'


@pytest.mark.parametrize("visibility", ["PUBLIC", "secret", "public ", "0"])
def test_any_other_visibility_is_400_and_nothing_is_stored(client, user, db, visibility):
    before = bucket_snapshot(db)
    response = upload(client, user, visibility=visibility)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_visibility"
    assert bucket_snapshot(db) == before


def test_a_missing_file_field_is_400(client, user):
    response = client.post("/api/uploads", data={"visibility": "public"}, headers=user,
                           content_type="multipart/form-data")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "missing_file"


def test_dedupe_is_per_owner_and_visibility(client, auth, db):
    alice, bob = auth.token("editor"), auth.token("editor")
    first = upload(client, alice)
    again = upload(client, alice)
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    public = upload(client, alice, visibility="public").get_json()
    bobs = upload(client, bob).get_json()
    assert len({first.get_json()["id"], public["id"], bobs["id"]}) == 3
    assert client.delete(f"/api/uploads/{bobs['id']}", headers=bob).status_code == 204
    assert client.get(first.get_json()["url"]).status_code == 200
    assert images(db, Buckets.UPLOADS).count_documents({}) == 2


def test_the_same_bytes_in_another_scope_are_another_image_on_the_same_file(client, auth, db):
    """Dedupe is per owner and visibility, the bytes are the bucket's (issue 75): a second
    owner's upload of the same file is an image of its own whose record points at the first's
    bytes file, held by both, counted once; each delete lets go, the last removes it."""
    from tests.support.records import unheld

    alice, bob = auth.token("editor"), auth.token("editor")
    first = upload(client, alice).get_json()
    bobs = upload(client, bob).get_json()
    public = upload(client, alice, visibility="public").get_json()
    assert len({first["id"], bobs["id"], public["id"]}) == 3
    files = db[f"{Buckets.UPLOADS}.files"]
    (shared,) = list(files.find({"metadata.variant": "original"}))
    assert shared["_id"] == ObjectId(first["id"])
    assert sorted(map(str, shared["metadata"]["holders"])) == sorted([first["id"], bobs["id"], public["id"]])
    for image in (first, bobs, public):
        assert client.get(image["url"]).data == client.get(first["url"]).data
    assert unheld(db) == []
    for image, who in ((first, alice), (bobs, bob)):
        assert client.delete(f"/api/uploads/{image['id']}", headers=who).status_code == 204
        assert client.get(public["url"]).status_code == 200 and unheld(db) == []
    (left,) = list(files.find({"metadata.variant": "original"}))
    assert left["metadata"]["original_id"] == ObjectId(public["id"]) and "holders" not in left["metadata"]
    assert client.delete(f"/api/uploads/{public['id']}", headers=alice).status_code == 204
    assert files.count_documents({}) == 0 and db[f"{Buckets.UPLOADS}.chunks"].count_documents({}) == 0


def test_every_bad_and_unsupported_file_is_refused_and_nothing_is_stored(client, user, db):
    before = bucket_snapshot(db)
    for name, statuses in REFUSED.items():
        for visibility in ("public", "private"):
            response = upload(client, user, name, visibility=visibility)
            assert response.status_code in statuses, (name, response.status_code)
            assert response.get_json()["error"]["file"] == name.split("/")[-1]
            assert bucket_snapshot(db) == before, name


def test_hostile_filenames_are_stored_sanitized_and_never_reflected_raw(client, user, db):
    for index, name in enumerate(HOSTILE_NAMES):
        data = image_bytes("good/tiny_1x1.png") + bytes([index])
        response = upload(client, user, data=data, filename=name)
        assert response.status_code == 201
        raw = response.get_data(as_text=True).rstrip("\n")  # jsonify ends with one newline
        assert not any(ord(ch) < 32 or ch == "\u202e" for ch in raw)
        filename = images(db, Buckets.UPLOADS).find_one({"_id": ObjectId(response.get_json()["id"])})[
            "metadata"]["filename"]
        assert response.get_json()["filename"] == filename and len(filename) <= 120
        assert "/" not in filename and not any(ord(ch) < 32 or ch == "\u202e" for ch in filename)
        disposition = client.get(response.get_json()["url"]).headers["Content-Disposition"]
        assert disposition.isascii() and disposition.count('"') == 2


# --- signed URLs -----------------------------------------------------------------------------


def test_private_urls_live_at_least_the_configured_lifetime_and_at_most_a_window_more(client, private,
                                                                                   app_factory, user):
    expires = int(query(private["url"])["expires"])
    assert time.time() + 3600 - 5 <= expires <= time.time() + 3600 + 900  # window: a quarter
    short = app_factory(AVENUE_SIGNED_URL_TTL_SECONDS=60).test_client()
    again = short.get(f"/api/uploads/{private['id']}", headers=user).get_json()
    assert time.time() + 60 - 5 <= int(query(again["url"])["expires"]) <= time.time() + 60 + 60


def test_the_same_private_url_is_handed_out_within_a_window_so_browsers_can_cache_it():
    from avenue.media import UrlSigner

    signer = UrlSigner(key="k" * 32, ttl_seconds=3600)
    start = 1_800_000_000 - 1_800_000_000 % 900  # the start of a 15-minute window
    urls = {signer.media_url("uploads", "0" * 24, private=True, now=start + offset)
            for offset in (0, 60, 600, 899)}
    assert len(urls) == 1
    assert signer.media_url("uploads", "0" * 24, private=True, now=start + 900) not in urls


def test_an_expired_signature_is_403(client, private):
    signer = UrlSigner(key=OLD_KEY, ttl_seconds=3600)
    expired = signer.media_url(Buckets.UPLOADS, private["id"], ext="jpg", private=True,
                               now=time.time() - 7200)
    assert client.get(expired).status_code == 403
    fresh = signer.media_url(Buckets.UPLOADS, private["id"], ext="jpg", private=True)
    assert client.get(fresh).status_code == 200


def test_forged_or_tampered_signatures_are_403_and_no_signature_is_404(client, private):
    url = private["url"]
    path, params = url.split("?")[0], query(url)
    assert client.get(path).status_code == 404
    forged = {**params, "sig": "A" * len(params["sig"])}
    assert client.get(path, query_string=forged).status_code == 403
    later = {**params, "expires": str(int(params["expires"]) + 86400)}
    assert client.get(path, query_string=later).status_code == 403
    other_key = UrlSigner(key="someone-elses-key-entirely").media_url(Buckets.UPLOADS, private["id"],
                                                                      ext="jpg",
                                                                     private=True)
    assert client.get(other_key).status_code == 403
    # A thumb's signature does not open the gallery variant.
    thumb = query(private["variants"]["thumb"])
    gallery_path = private["variants"]["gallery"].split("?")[0]
    assert client.get(gallery_path, query_string=thumb).status_code == 403
    assert client.get(url).status_code == 200


def test_rotated_keys_keep_old_urls_working_until_the_old_key_is_dropped(app_factory, private, user):
    old_url = private["url"]
    rotated = app_factory(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]).test_client()
    assert rotated.get(old_url).status_code == 200
    new_url = rotated.get(f"/api/uploads/{private['id']}", headers=user).get_json()["url"]
    assert new_url != old_url and rotated.get(new_url).status_code == 200

    dropped = app_factory(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[]).test_client()
    assert dropped.get(old_url).status_code == 403
    assert dropped.get(new_url).status_code == 200
    still_old = app_factory(SECRET_KEY=OLD_KEY).test_client()
    assert still_old.get(new_url).status_code == 403


# --- owners ----------------------------------------------------------------------------------


def test_other_users_get_the_same_404_as_for_an_unknown_id(client, auth, private):
    stranger = auth.token("editor")
    unknown = client.get(f"/api/uploads/{ObjectId()}", headers=stranger)
    assert unknown.status_code == 404
    for method in ("GET", "DELETE"):
        response = client.open(f"/api/uploads/{private['id']}", method=method, headers=stranger)
        assert response.status_code == 404 and error_body(response) == error_body(unknown)
    assert client.get(private["url"]).status_code == 200


def test_malformed_ids_are_404(client, user):
    for upload_id in ("nope", "0" * 23, "z" * 24):
        for method in ("GET", "DELETE"):
            assert client.open(f"/api/uploads/{upload_id}", method=method, headers=user).status_code == 404


def test_users_list_their_own_uploads_and_admins_list_everyones(client, auth):
    alice, bob, admin = auth.token("editor"), auth.token("ops"), auth.token("admin")
    a1 = upload(client, alice, "good/alpha.png").get_json()
    a2 = upload(client, alice, "good/grayscale.jpg", visibility="public").get_json()
    b1 = upload(client, bob, "good/tiny_1x1.png").get_json()

    def ids(headers, **params):
        response = client.get("/api/uploads", headers=headers, query_string=params)
        assert response.status_code == 200
        return [item["id"] for item in response.get_json()["items"]]

    assert ids(alice) == [a2["id"], a1["id"]]
    assert ids(bob) == [b1["id"]]
    assert ids(bob, owner=a1["owner"]) == [b1["id"]]  # ?owner= is for admins only
    assert ids(admin) == [b1["id"], a2["id"], a1["id"]]
    assert ids(admin, owner=a1["owner"]) == [a2["id"], a1["id"]]
    assert ids(alice, per_page=1, page=2) == [a1["id"]]
    page = client.get("/api/uploads?per_page=1", headers=alice).get_json()
    assert page["total"] == 2 and page["per_page"] == 1


def test_an_admin_reads_and_deletes_anyones_upload(client, auth, private, db):
    admin = auth.token("admin")
    assert client.get(f"/api/uploads/{private['id']}", headers=admin).get_json()["id"] == private["id"]
    assert client.delete(f"/api/uploads/{private['id']}", headers=admin).status_code == 204
    assert client.get(private["url"]).status_code == 404


def test_the_owner_deletes_an_upload_with_its_variants(client, user, private, db):
    assert client.delete(f"/api/uploads/{private['id']}", headers=user).status_code == 204
    assert client.get(f"/api/uploads/{private['id']}", headers=user).status_code == 404
    assert client.get(private["url"]).status_code == 404
    assert client.get(private["variants"]["thumb"]).status_code == 404
    assert db[f"{Buckets.UPLOADS}.files"].count_documents({}) == 0
    assert images(db, Buckets.UPLOADS).count_documents({}) == 0
    assert db[f"{Buckets.UPLOADS}.chunks"].count_documents({}) == 0


def test_uploads_are_audited(client, user, private, db):
    client.delete(f"/api/uploads/{private['id']}", headers=user)
    created = db.audit_logs.find_one({"action": "upload_created"})
    deleted = db.audit_logs.find_one({"action": "upload_deleted"})
    assert created["target"]["image_id"] == private["id"] and created["target"]["visibility"] == "private"
    assert deleted["target"]["owner"] == private["owner"] and deleted["actor"]["role"] == "ops"


def test_uploads_to_both_endpoints_are_rate_limited_per_user(app_factory, auth):
    limited = app_factory(RATELIMIT_ENABLED=True, AVENUE_UPLOAD_RATE_LIMIT="2/minute")
    client = limited.test_client()
    user, other = auth.token("editor"), auth.token("editor")
    assert upload(client, user).status_code == 201
    builder = client.post("/api/builder/media", headers=user, content_type="multipart/form-data",
                          data={"file": (io.BytesIO(image_bytes("good/alpha.png")), "alpha.png")})
    assert builder.status_code == 201
    refused = upload(client, user, "good/alpha.png")
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert upload(client, other).status_code == 201
