"""Resumable uploads' store (avenue/media/store/resumable.py) as tus drives it: what each
request, refusal, expiry and gc leaves in its uploads and pieces, its leases, two writes at one
offset, and a piece whose insert is retried."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import threading
import time
from base64 import b64encode

import pytest

from avenue.clock import as_utc, now
from avenue.media import AppMedia
from avenue.media.store import resumable
from tests.helpers import bucket_snapshot, image_bytes
from tests.support import tus
from tests.support.tus import PHOTO, PIECE


@pytest.fixture
def user(auth):
    return auth.token("ops")  # any logged-in role may upload to /api/uploads


@pytest.fixture
def photo():
    return image_bytes(PHOTO)


def uploads_held(db) -> tuple[int, int]:
    """(upload documents, piece documents) the resumable store holds."""
    return db[resumable.UPLOADS].count_documents({}), db[resumable.CHUNKS].count_documents({})


def test_a_request_without_tus_resumable_is_412_naming_the_version(client, user, db):
    response = client.post(tus.TUS, headers={**user, "Upload-Length": "1000"})
    assert response.status_code == 412
    assert response.headers["Tus-Version"] == "1.0.0"
    assert response.get_json()["error"]["code"] == "unsupported_tus_version"
    wrong = client.post(tus.TUS, headers={**user, "Upload-Length": "1000", "Tus-Resumable": "0.2.2"})
    assert wrong.status_code == 412
    assert uploads_held(db) == (0, 0)


def test_a_declared_length_over_the_limit_is_413_and_creates_nothing(client, user, app, db):
    response = tus.create(client, user, app.config["AVENUE_MAX_UPLOAD_BYTES"] + 1)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "file_too_large"
    assert uploads_held(db) == (0, 0)


@pytest.mark.parametrize("headers", [{}, {"Upload-Length": "-1"}, {"Upload-Length": "ten"},
                                     {"Upload-Defer-Length": "1"}, {"Upload-Length": "0"},
                                     {"Upload-Length": "\u00b2"}, {"Upload-Length": "\u0663"}])  # ², ٣
def test_a_missing_or_bad_upload_length_is_400(client, user, db, headers):
    response = client.post(tus.TUS, headers={**tus.VERSION, **user, **headers})
    assert response.status_code == 400
    assert uploads_held(db) == (0, 0)


@pytest.mark.parametrize("header", ["filename !!!notbase64", "filename", "a Zm9v,a Zm9v", "x y z"])
def test_malformed_metadata_is_400(client, user, db, header):
    header = header if header != "filename" else "filename Zm9v,,"
    response = client.post(tus.TUS, headers={**tus.VERSION, **user, "Upload-Length": "10",
                                             "Upload-Metadata": header})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_metadata"
    assert uploads_held(db) == (0, 0)


def test_creation_needs_a_login_and_the_targets_role(client, auth, db):
    assert tus.create(client, {}, 10).status_code == 401
    ops = auth.token("ops")
    assert tus.create(client, ops, 10, target="builder").status_code == 403
    assert tus.create(client, auth.token("editor"), 10, target="temp").status_code == 403
    assert tus.create(client, ops, 10, target="nowhere").status_code == 400
    assert tus.create(client, ops, 10, visibility="secret").status_code == 400
    assert uploads_held(db) == (0, 0)


def test_a_product_upload_names_an_existing_product_with_room(client, admin, db):
    assert tus.create(client, admin, 10, target="product").status_code == 400
    missing = tus.create(client, admin, 10, target="product", sku="NOPE-1")
    assert missing.status_code == 404
    assert uploads_held(db) == (0, 0)


def test_an_upload_in_chunks_stores_the_same_image_as_a_multipart_upload(client, user, photo, db):
    url, last = tus.send(client, user, photo, chunk=len(photo) // 3 + 1, filename="photo.jpg",
                         visibility="public")
    assert last.status_code == 204
    assert last.headers["Upload-Offset"] == str(len(photo))
    image_id = last.headers["Avenue-Image-Id"]
    state = client.get(url, headers=user).get_json()
    assert state["state"] == "done" and state["created"] is True
    assert state["image"]["id"] == image_id and state["image"]["visibility"] == "public"
    assert state["image"]["filename"] == "photo.jpg"
    # The same bytes as a multipart upload by the same user: dedupe finds the tus upload's image.
    again = tus.multipart_upload(client, user, photo, "photo.jpg", visibility="public")
    assert again.status_code == 200 and again.get_json()["id"] == image_id
    original = client.get(state["image"]["url"])
    assert original.status_code == 200 and original.data == client.get(again.get_json()["url"]).data
    # The bytes it received are gone once the image is stored; its record stays until it expires.
    assert uploads_held(db) == (1, 0)
    assert tus.head(client, user, url).headers["Avenue-Image-Id"] == image_id


def test_a_patch_at_the_wrong_offset_is_409_and_changes_nothing(client, user, photo, db):
    url = tus.created(client, user, len(photo))
    assert tus.patch(client, user, url, 0, photo[:PIECE]).status_code == 204
    for wrong in (0, PIECE - 1, PIECE + 1):
        response = tus.patch(client, user, url, wrong, photo[wrong:wrong + PIECE])
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "offset_mismatch"
    assert tus.head(client, user, url).headers["Upload-Offset"] == str(PIECE)
    assert uploads_held(db) == (1, 1)


def test_a_patch_at_the_wrong_offset_is_409_whatever_the_size_of_its_chunk(client, user, photo, db):
    # tus 1.0.0 answers a wrong Upload-Offset 409, and a client resumes from it by asking HEAD; a
    # chunk short of the floor was refused 400 chunk_too_small first, which clients do not resume.
    url = tus.created(client, user, len(photo))
    assert tus.patch(client, user, url, 0, photo[:PIECE]).status_code == 204
    for wrong, size in ((0, 10), (PIECE + 1, 10), (PIECE - 1, PIECE - 1), (PIECE + 1, 0)):
        response = tus.patch(client, user, url, wrong, photo[wrong:wrong + size])
        assert response.status_code == 409, (wrong, size, response.get_json())
        error = response.get_json()["error"]
        assert (error["code"], error["offset"]) == ("offset_mismatch", PIECE)
    assert tus.head(client, user, url).headers["Upload-Offset"] == str(PIECE)
    assert uploads_held(db) == (1, 1)


def test_a_patch_while_another_request_holds_the_upload_is_409(client, user, photo, db):
    url = tus.created(client, user, len(photo))
    upload_id = url.rsplit("/", 1)[-1]
    lease = {"token": "another-writer", "until": now() + dt.timedelta(seconds=30)}
    db[resumable.UPLOADS].update_one({"_id": upload_id}, {"$set": {"lease": lease}})
    response = tus.patch(client, user, url, 0, photo[:PIECE])
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "upload_busy"
    # A lapsed lease (its writer died) frees the upload.
    db[resumable.UPLOADS].update_one({"_id": upload_id},
                                     {"$set": {"lease.until": now() - dt.timedelta(seconds=1)}})
    assert tus.patch(client, user, url, 0, photo[:PIECE]).status_code == 204


def test_a_completion_longer_than_the_lease_keeps_it_and_a_retried_patch_is_409(client, user, photo, db,
                                                                                   monkeypatch, lease_clock):
    """The request that brings the last byte renews its lease while it stores the image: a
    client that retries the final (empty) PATCH meanwhile is told the upload is busy, instead
    of taking the lapsed lease over and storing the image a second time.

    The leases' clock is stepped (tests/support/leaseclock.py), not slept: with a real 0.3 s
    lease, one renewal slower than 0.2 s on a loaded machine let it lapse."""
    from avenue import targets

    monkeypatch.setattr(resumable, "now", lease_clock)
    monkeypatch.setattr(resumable, "LEASE_SECONDS", 0.3)
    url = tus.created(client, user, len(photo))
    upload_id = url.rsplit("/", 1)[-1]
    real = targets.store
    retried: list[str] = []

    def slow_complete(*args, **kwargs):
        lease_clock.advance(1.2)  # four leases long: only the heartbeat's renewals keep it
        deadline = time.monotonic() + 30
        while as_utc(db[resumable.UPLOADS].find_one({"_id": upload_id})["lease"]["until"]) <= lease_clock() \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        current = resumable.find(db, upload_id, owner=None)
        try:
            resumable.append(db, current, len(photo), io.BytesIO(b""))
            retried.append("taken over")
        except resumable.UploadBusy:
            retried.append("busy")
        return real(*args, **kwargs)

    monkeypatch.setattr(targets, "store", slow_complete)
    response = tus.patch(client, user, url, 0, photo)
    assert response.status_code == 204, response.get_json()
    assert retried == ["busy"]
    done = resumable.find(db, upload_id, owner=None)
    assert done.state == resumable.DONE and done.lease_token is None
    assert not any(t.name == "avenue-tus-completion-lease" for t in threading.enumerate())


def test_a_body_past_the_declared_length_is_413_and_keeps_nothing_of_it(client, user, photo, db):
    url = tus.created(client, user, 1000)
    response = tus.patch(client, user, url, 0, photo[:1500])
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "exceeds_upload_length"
    assert tus.head(client, user, url).headers["Upload-Offset"] == "0"
    assert uploads_held(db) == (1, 0)


def test_a_finished_file_that_is_not_an_image_is_refused_and_leaves_nothing(client, user, db):
    before = bucket_snapshot(db)
    text = b"this is not an image at all " * 100
    url, last = tus.send(client, user, text, filename="notes.jpg")
    assert last.status_code == 415
    assert last.get_json()["error"]["code"] == "unsupported_type"
    assert tus.head(client, user, url).status_code == 404
    assert uploads_held(db) == (0, 0)
    assert bucket_snapshot(db) == before


def test_a_finished_product_upload_refused_for_room_leaves_nothing(client, admin, photo, db, app):
    assert client.post("/api/shop/products", json={"sku": "FULL-1", "name": "T", "price": 1},
                       headers=admin).status_code == 201
    url = tus.created(client, admin, len(photo), target="product", sku="FULL-1")
    for _ in range(app.config["AVENUE_MAX_PRODUCT_IMAGES"]):
        db.shop_products.update_one({"sku": "FULL-1"}, {"$push": {"images": "/uploads/old.jpg"}})
    response = tus.patch(client, admin, url, 0, photo)
    assert response.status_code == 422
    assert uploads_held(db) == (0, 0)


def test_a_checksum_that_does_not_match_is_460_and_keeps_nothing(client, user, photo, db):
    url = tus.created(client, user, len(photo))
    piece = photo[:PIECE]
    wrong = b64encode(hashlib.sha1(b"other").digest()).decode()
    response = tus.patch(client, user, url, 0, piece, **{"Upload-Checksum": f"sha1 {wrong}"})
    assert response.status_code == 460
    assert response.get_json()["error"]["code"] == "checksum_mismatch"
    assert tus.head(client, user, url).headers["Upload-Offset"] == "0"
    assert uploads_held(db) == (1, 0)
    right = b64encode(hashlib.sha256(piece).digest()).decode()
    assert tus.patch(client, user, url, 0, piece, **{"Upload-Checksum": f"sha256 {right}"}).status_code == 204
    assert tus.patch(client, user, url, PIECE, b"x", **{"Upload-Checksum": "crc32 AAAA"}).status_code == 400


def test_termination_deletes_the_upload_and_its_bytes(client, user, photo, db):
    url = tus.created(client, user, len(photo))
    assert tus.patch(client, user, url, 0, photo[:1_000_000]).status_code == 204
    response = client.delete(url, headers={**tus.VERSION, **user})
    assert response.status_code == 204
    assert tus.head(client, user, url).status_code == 404
    assert tus.patch(client, user, url, 1_000_000, photo[1_000_000:]).status_code == 404
    assert uploads_held(db) == (0, 0)
    assert db.audit_logs.find_one({"action": "tus_upload_terminated"})["target"]["offset"] == 1_000_000


def test_an_expired_upload_is_410_and_gc_removes_it_and_its_bytes(client, user, photo, db, media_core):
    # Two pieces parked (1 MiB and the rest of 1.1 MB), whatever the corpus photo's size: the
    # made corpus's is 1.04 MB, which the first PATCH would complete.
    body = (photo * 3)[:2_000_000]
    url = tus.created(client, user, len(body))
    assert tus.patch(client, user, url, 0, body[:1_100_000]).status_code == 204
    past = now() - dt.timedelta(seconds=1)
    db[resumable.UPLOADS].update_many({}, {"$set": {"expires_at": past}})
    db[resumable.CHUNKS].update_many({}, {"$set": {"expires_at": past}})
    assert tus.head(client, user, url).status_code == 410
    response = tus.patch(client, user, url, 1_100_000, body[1_100_000:])
    assert response.status_code == 410 and response.get_json()["error"]["code"] == "upload_expired"
    dry = AppMedia.on(db, media_core).maintenance.collect_garbage(dry_run=True)
    assert dry.counts == {"expired_resumable_upload": 1, "expired_resumable_bytes": 1}
    assert uploads_held(db) == (1, 2)
    report = AppMedia.on(db, media_core).maintenance.collect_garbage()
    assert report.counts == {"expired_resumable_upload": 1, "expired_resumable_bytes": 1}
    assert report.bytes_freed == 1_100_000
    assert uploads_held(db) == (0, 0)
    assert tus.head(client, user, url).status_code == 404


def test_gc_keeps_an_upload_that_has_not_expired(client, user, photo, db, media_core):
    url = tus.created(client, user, len(photo))
    assert tus.patch(client, user, url, 0, photo[:PIECE]).status_code == 204
    assert AppMedia.on(db, media_core).maintenance.collect_garbage().counts == {}
    assert uploads_held(db) == (1, 1)


def test_of_two_writes_at_one_offset_at_once_one_wins_and_the_other_is_409(db):
    upload = resumable.create(db, owner="u1", length=3000, target={"kind": "uploads"}, filename="a.jpg",
                              filetype=None, lifetime_seconds=3600)
    refused = []

    class SlowBody:
        """A body whose first read lets a second request try the same offset meanwhile."""

        def __init__(self) -> None:
            self.parts = [b"a" * 1000]

        def read(self, size: int = -1) -> bytes:
            if self.parts and not refused:
                with pytest.raises(resumable.UploadBusy):
                    current = resumable.find(db, upload.id, owner="u1")
                    resumable.append(db, current, 0, io.BytesIO(b"b" * 1000))
                refused.append(True)
            return self.parts.pop() if self.parts else b""

    done = resumable.append(db, upload, 0, SlowBody())
    assert refused and done.offset == 1000
    late = resumable.append(db, resumable.find(db, upload.id, owner="u1"), 1000, io.BytesIO(b"c" * 2000))
    assert late.state == resumable.COMPLETING
    assert resumable.read_all(db, late) == b"a" * 1000 + b"c" * 2000
    with pytest.raises(resumable.OffsetMismatch):
        resumable.append(db, done, 0, io.BytesIO(b"b" * 1000))


def test_a_patch_short_of_the_end_below_the_floor_is_400_and_keeps_nothing(client, user, photo, db):
    url = tus.created(client, user, len(photo))
    for size in (1, PIECE - 1):
        response = tus.patch(client, user, url, 0, photo[:size])
        assert response.status_code == 400 and response.get_json()["error"]["code"] == "chunk_too_small"
    assert tus.head(client, user, url).headers["Upload-Offset"] == "0"
    assert uploads_held(db) == (1, 0)
    assert tus.patch(client, user, url, 0, photo[:PIECE]).status_code == 204
    last = tus.patch(client, user, url, PIECE, photo[PIECE:])  # the final piece may be any size
    assert last.status_code == 204 and last.headers["Avenue-Image-Id"]


def test_a_body_cut_off_below_the_floor_keeps_nothing(client, user, photo, db):
    url = tus.created(client, user, len(photo))
    sent = {**tus.VERSION, **user, "Upload-Offset": "0", "Content-Type": tus.OFFSET_TYPE}
    response = client.patch(url, input_stream=io.BytesIO(photo[:1000]), headers=sent)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "chunk_too_small"
    assert uploads_held(db) == (1, 0)


class _Unread(io.BytesIO):
    """A request body that fails the request if anything reads it."""

    def read(self, *args: object) -> bytes:
        raise AssertionError("the body was read")

    read1 = readline = readinto = read  # type: ignore[assignment]


def test_a_patch_declaring_fewer_bytes_than_the_floor_is_refused_before_its_body_is_read(client, user, photo,
                                                                                       db):
    url = tus.created(client, user, len(photo))
    sent = {**tus.VERSION, **user, "Upload-Offset": "0", "Content-Type": tus.OFFSET_TYPE,
            "Content-Length": str(PIECE - 1)}
    response = client.patch(url, input_stream=_Unread(b"x" * (PIECE - 1)), headers=sent)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "chunk_too_small"
    assert response.get_json()["error"]["min_bytes"] == PIECE
    assert uploads_held(db) == (1, 0)


def test_an_upload_may_declare_exactly_the_open_bytes_cap_and_not_a_byte_more(app_factory, auth):
    app = app_factory(AVENUE_TUS_MAX_OPEN_BYTES=100_000)
    client, user = app.test_client(), auth.token("ops")
    over = tus.create(client, user, 100_001)  # alone over the cap: nothing open yet
    assert over.status_code == 413 and over.get_json()["error"]["code"] == "open_uploads_too_large"
    assert over.get_json()["error"]["open_bytes"] == 0
    tus.created(client, user, 100_000)
    assert tus.create(client, user, 1).status_code == 413
    with app.app_context():
        from avenue.db import get_db

        assert get_db()[resumable.UPLOADS].count_documents({}) == 1  # the refused ones created nothing


def test_an_expired_upload_no_longer_counts_and_the_apps_collector_removes_its_bytes(app_factory, auth, photo,
                                                                                    db):
    from avenue.tus import collector

    app = app_factory(AVENUE_TUS_MAX_OPEN_UPLOADS=1)
    client, user = app.test_client(), auth.token("ops")
    url = tus.created(client, user, len(photo))
    assert tus.patch(client, user, url, 0, photo[:PIECE]).status_code == 204
    assert tus.create(client, user, len(photo)).status_code == 429
    past = now() - dt.timedelta(seconds=1)
    db[resumable.UPLOADS].update_many({}, {"$set": {"expires_at": past}})
    db[resumable.CHUNKS].update_many({}, {"$set": {"expires_at": past}})
    with app.app_context():
        from avenue.db import get_db

        removed = collector.collect(get_db())
    assert len(removed.uploads) == 1 and removed.bytes == PIECE
    assert uploads_held(db) == (0, 0)
    assert tus.create(client, user, len(photo)).status_code == 201


def test_upload_concat_is_refused_as_unsupported(client, user, db):
    for value in ("partial", "final;/api/tus/a /api/tus/b"):
        response = client.post(tus.TUS, headers={**tus.VERSION, **user, "Upload-Length": "1000",
                                                 "Upload-Concat": value})
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "concatenation_not_supported"
    assert "concatenation" not in client.options(tus.TUS).headers["Tus-Extension"]
    assert uploads_held(db) == (0, 0)


def test_a_piece_whose_insert_is_retried_after_it_landed_is_kept_once(db):
    """The embedded database's supervisor restarts a stalled server: a PATCH's piece insert that
    landed before the cut, retried by the driver against a server that forgot the retry's
    session, meets itself (E11000). That is the piece written, not a 500."""
    upload = resumable.create(db, owner="someone", length=10, target={"kind": "uploads"}, filename=None,
                              filetype=None, lifetime_seconds=600)
    resumable._insert_piece(db, upload, 0, b"12345", "token-a")
    resumable._insert_piece(db, upload, 0, b"12345", "token-a")  # the retry of the same insert
    pieces = list(db[resumable.CHUNKS].find({"upload_id": upload.id}))
    assert [(piece["offset"], piece["writer"], bytes(piece["data"])) for piece in pieces] == [
        (0, "token-a", b"12345")]
    resumable._insert_piece(db, upload, 0, b"67890", "token-b")  # a later lease holder's still wins
    pieces = list(db[resumable.CHUNKS].find({"upload_id": upload.id}))
    assert [(piece["writer"], bytes(piece["data"])) for piece in pieces] == [("token-b", b"67890")]
