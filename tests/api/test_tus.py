"""Resumable uploads (tus 1.0.0 at /api/tus): the protocol's rules and refusals, resuming on
another app, what one holder may park, and that a finished upload is what a multipart upload
stores. What each request leaves in the store, expiry and gc: tests/media/store/test_resumable.py."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from avenue.clock import now
from tests.helpers import image_bytes
from tests.support import tus
from tests.support.tus import PHOTO, PIECE


@pytest.fixture
def user(auth):
    return auth.token("ops")  # any logged-in role may upload to /api/uploads


@pytest.fixture
def photo():
    return image_bytes(PHOTO)


# --- discovery and creation ---------------------------------------------------------------


def test_options_announces_the_version_extensions_size_limit_and_checksums(client, app):
    response = client.options(tus.TUS)
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) == {"creation", "termination", "expiration",
                                                                 "checksum"}
    assert int(response.headers["Tus-Max-Size"]) == app.config["AVENUE_MAX_UPLOAD_BYTES"]
    assert "sha1" in response.headers["Tus-Checksum-Algorithm"].split(",")


def test_creation_answers_201_with_a_location_an_expiry_and_offset_zero(client, user, app):
    response = tus.create(client, user, 1000, filename="a.jpg", filetype="image/jpeg")
    assert response.status_code == 201
    assert response.headers["Location"].startswith("http://localhost/api/tus/")
    assert response.headers["Tus-Resumable"] == "1.0.0"
    expires = dt.datetime.strptime(response.headers["Upload-Expires"], "%a, %d %b %Y %H:%M:%S GMT")
    lifetime = expires.replace(tzinfo=dt.UTC) - now()
    assert abs(lifetime.total_seconds() - app.config["AVENUE_TUS_EXPIRY_SECONDS"]) < 120
    head = tus.head(client, user, tus.path(response.headers["Location"]))
    assert head.status_code == 200
    assert (head.headers["Upload-Offset"], head.headers["Upload-Length"]) == ("0", "1000")
    assert head.headers["Cache-Control"] == "no-store"


# --- the bytes --------------------------------------------------------------------------


def test_a_users_finished_upload_shows_its_unedited_original_as_the_multipart_routes_do(client, user, photo):
    # An upload is its owner's own to edit, whatever their role (user is ops): once edited, the
    # upload's answer names its unedited original, and so does the tus upload's.
    url, last = tus.send(client, user, photo)
    image_id = last.headers["Avenue-Image-Id"]
    edited = client.put(f"/api/uploads/{image_id}/edits", json={"rotate": 90}, headers=user)
    assert edited.status_code == 200 and "sig=" in edited.get_json()["source"]["url"]
    shown = client.get(url, headers=user).get_json()["image"]
    assert shown["version"] == edited.get_json()["version"] and "sig=" in shown["source"]["url"]


def test_the_finished_upload_is_audited_like_a_multipart_upload(client, user, photo, db):
    url, last = tus.send(client, user, photo)
    assert last.status_code == 204, last.get_json()
    entry = db.audit_logs.find_one({"action": "upload_created"})
    assert entry["target"]["via"] == "tus"
    assert entry["target"]["image_id"] == last.headers["Avenue-Image-Id"]


def test_a_builder_upload_lands_in_the_library_with_its_alt_folder_and_tags(client, editor, photo):
    url, last = tus.send(client, editor, photo, target="builder", alt="A photo", folder="/summer",
                         tags="beach,sun")
    assert last.status_code == 204
    media = client.get(f"/api/builder/media/{last.headers['Avenue-Image-Id']}", headers=editor).get_json()
    assert (media["alt"], media["folder"], media["tags"]) == ("A photo", "/summer", ["beach", "sun"])


def test_a_product_upload_is_added_to_the_product(client, admin, photo):
    assert client.post("/api/shop/products", json={"sku": "TUS-1", "name": "T", "price": 1},
                       headers=admin).status_code == 201
    url, last = tus.send(client, admin, photo, target="product", sku="TUS-1")
    assert last.status_code == 204
    product = client.get("/api/shop/products/TUS-1").get_json()
    assert [image["id"] for image in product["images"]] == [last.headers["Avenue-Image-Id"]]


def test_a_temp_upload_is_a_temp_image(client, admin, photo):
    url, last = tus.send(client, admin, photo, target="temp")
    assert last.status_code == 204
    state = client.get(url, headers=admin).get_json()
    assert state["image"]["id"] == last.headers["Avenue-Image-Id"]
    assert state["target"] == {"kind": "temp"}


def test_bytes_after_completion_are_409(client, user, photo):
    url, last = tus.send(client, user, photo)
    response = tus.patch(client, user, url, len(photo), b"more")
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "upload_finished"


def test_a_patch_over_the_per_request_limit_is_413(app_factory, auth, photo):
    app = app_factory(AVENUE_TUS_CHUNK_MAX_BYTES=64 * 1024)
    client, user = app.test_client(), auth.token("ops")
    url = tus.created(client, user, len(photo))
    assert tus.patch(client, user, url, 0, photo[:64 * 1024 + 1]).status_code == 413
    assert tus.patch(client, user, url, 0, photo[:64 * 1024]).status_code == 204


def test_a_patch_without_the_offset_content_type_is_415(client, user, photo):
    url = tus.created(client, user, len(photo))
    response = tus.patch(client, user, url, 0, photo[:100], **{"Content-Type": "application/octet-stream"})
    assert response.status_code == 415
    assert tus.patch(client, user, url, 0, photo[:100], **{"Upload-Offset": "x"}).status_code == 400


def test_a_body_cut_off_keeps_the_bytes_that_arrived(client, user, photo, db):
    url = tus.created(client, user, len(photo))
    half = len(photo) // 2
    # A client that announces the whole file and goes away after half of it.
    response = client.patch(url, input_stream=io.BytesIO(photo[:half]),
                            headers={**tus.VERSION, **user, "Upload-Offset": "0",
                                     "Content-Type": tus.OFFSET_TYPE, "Content-Length": str(len(photo))})
    assert response.status_code in (204, 400)
    assert tus.head(client, user, url).headers["Upload-Offset"] == str(half)
    last = tus.patch(client, user, url, half, photo[half:])
    assert last.status_code == 204 and last.headers["Avenue-Image-Id"]


# --- who, where, how long ---------------------------------------------------------------------


def test_an_upload_resumes_on_another_app_sharing_the_database(app_factory, auth, photo):
    first, second = app_factory(), app_factory()
    user = auth.token("ops")
    one, two = first.test_client(), second.test_client()
    url = tus.created(one, user, len(photo))
    assert tus.patch(one, user, url, 0, photo[:len(photo) // 2]).status_code == 204
    offset = int(tus.head(two, user, url).headers["Upload-Offset"])
    assert offset == len(photo) // 2
    last = tus.patch(two, user, url, offset, photo[offset:])
    assert last.status_code == 204
    stored = tus.multipart_upload(one, user, photo, "photo.jpg")
    assert stored.status_code == 200 and stored.get_json()["id"] == last.headers["Avenue-Image-Id"]


def test_another_users_upload_is_404(client, user, auth, photo):
    url = tus.created(client, user, len(photo))
    other = auth.token("ops")
    assert tus.head(client, other, url).status_code == 404
    assert tus.patch(client, other, url, 0, photo[:10]).status_code == 404
    assert client.delete(url, headers={**tus.VERSION, **other}).status_code == 404
    assert tus.head(client, user, "/api/tus/" + "x" * 24).status_code == 404


def test_method_override_carries_patch_head_and_delete_over_post(client, user, photo):
    url = tus.created(client, user, len(photo))
    patched = client.post(url, data=photo[:PIECE], headers={**tus.VERSION, **user, "Upload-Offset": "0",
                                                            "Content-Type": tus.OFFSET_TYPE,
                                                            "X-HTTP-Method-Override": "PATCH"})
    assert patched.status_code == 204 and patched.headers["Upload-Offset"] == str(PIECE)
    head = client.post(url, headers={**tus.VERSION, **user, "X-HTTP-Method-Override": "HEAD"})
    assert head.headers["Upload-Offset"] == str(PIECE)
    assert client.post(url, headers={**tus.VERSION, **user}).status_code == 400
    deleted = client.post(url, headers={**tus.VERSION, **user, "X-HTTP-Method-Override": "DELETE"})
    assert deleted.status_code == 204
    assert tus.head(client, user, url).status_code == 404


def test_a_session_client_sends_its_csrf_token(auth, photo):
    client, csrf = auth.login("editor")
    assert tus.create(client, {}, len(photo)).status_code == 403
    assert tus.create(client, csrf, len(photo)).status_code == 201


# --- what one holder may park ---------------------------------------------------------------


def test_the_floor_is_never_above_what_one_patch_may_carry(app_factory, auth, photo):
    app = app_factory(AVENUE_TUS_MIN_CHUNK_BYTES=10 * 2**20, AVENUE_TUS_CHUNK_MAX_BYTES=64 * 1024)
    client, user = app.test_client(), auth.token("ops")
    url = tus.created(client, user, len(photo))
    short = tus.patch(client, user, url, 0, photo[:64 * 1024 - 1])
    assert short.status_code == 400 and short.get_json()["error"]["min_bytes"] == 64 * 1024
    assert tus.patch(client, user, url, 0, photo[:64 * 1024]).status_code == 204


def test_a_user_has_at_most_the_configured_unfinished_uploads_then_429(app_factory, auth, photo):
    app = app_factory(AVENUE_TUS_MAX_OPEN_UPLOADS=2)
    client, user = app.test_client(), auth.token("ops")
    first = tus.created(client, user, len(photo))
    tus.created(client, user, len(photo))
    third = tus.create(client, user, len(photo))
    assert third.status_code == 429 and third.get_json()["error"]["code"] == "too_many_open_uploads"
    assert int(third.headers["Retry-After"]) > 0
    assert tus.patch(client, user, first, 0, photo).status_code == 204  # a finished one frees its place
    assert tus.create(client, user, len(photo)).status_code == 201
    other = auth.token("ops")  # per user: another user is not held up
    assert tus.create(client, other, len(photo)).status_code == 201


def test_a_users_unfinished_uploads_declare_at_most_the_configured_bytes_then_413(app_factory, auth, photo):
    app = app_factory(AVENUE_TUS_MAX_OPEN_BYTES=2 * len(photo))
    client, user = app.test_client(), auth.token("ops")
    tus.created(client, user, len(photo))
    tus.created(client, user, len(photo))
    over = tus.create(client, user, 1)
    assert over.status_code == 413 and over.get_json()["error"]["code"] == "open_uploads_too_large"
    assert over.get_json()["error"]["open_bytes"] == 2 * len(photo)


def test_storage_status_counts_the_bytes_unfinished_uploads_hold(client, user, auth, photo):
    url = tus.created(client, user, len(photo))
    assert tus.patch(client, user, url, 0, photo[:PIECE]).status_code == 204
    report = client.get("/api/shop/debug/storage-status", headers=auth.token("ops")).get_json()
    assert report["resumable"] == {"uploads": 1, "bytes": PIECE}


