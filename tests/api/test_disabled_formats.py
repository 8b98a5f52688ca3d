"""A format turned off (AVENUE_DISABLED_FORMATS): the day its decoder's CVE lands, every upload
path refuses it 415 ``format_disabled`` by its leading bytes, before that decoder reads one;
what is stored of it still serves, but nothing new is decoded from it (docs/security.md,
"Turning a format off")."""

from __future__ import annotations

import io

import pytest
from bson import ObjectId

from tests.helpers import Auth, bucket_snapshot, image_bytes
from tests.support import tus
from tests.support.client import MEDIA, upload
from tests.support.formats import SETTING, forbid_decoders, originals, to_library, webp_and_png_twin
from tests.support.imageserver import ImageServer
from tests.support.zips import make_zip

HEIC, AVIF, PHOTO = (image_bytes(f"good/{name}") for name in ("phone.heic", "photo.avif", "progressive.jpg"))


@pytest.fixture
def forbid(monkeypatch):
    """``forbid("HEIF", ...)``: the named decoders raise if they read a file (tests/support/formats.py)."""
    return forbid_decoders(monkeypatch)


def refused(response, fmt: str, label: str) -> dict:
    assert response.status_code == 415, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "format_disabled", error
    assert label in error["message"] and SETTING in error["message"], error
    assert error["format"] == fmt and error["setting"] == SETTING
    assert label not in error["accepted"] and "JPEG" in error["accepted"]
    return error


@pytest.mark.parametrize("name, data, plugin, label", [("heic", HEIC, "HEIF", "HEIC"),
                                                       ("avif", AVIF, "AVIF", "AVIF")])
def test_an_upload_of_a_format_turned_off_is_415_format_disabled_and_its_decoder_never_runs(
        app_factory, auth, db, forbid, name, data, plugin, label):
    app = app_factory(**{SETTING: f"gif, {name}"})
    client, user = app.test_client(), Auth(app).token("ops")
    calls = forbid(plugin)
    before = bucket_snapshot(db)
    refused(upload(client, user, data=data, filename=f"photo.{name}"), name, label)
    # Under another name, or claiming another type, it is the bytes that are sniffed.
    refused(upload(client, user, data=data, filename="photo.jpg"), name, label)
    assert calls == [] and bucket_snapshot(db) == before
    assert upload(client, user).status_code == 201  # a JPEG still goes through


def test_the_other_formats_and_a_format_turned_on_again_are_taken_as_before(app_factory, forbid):
    off = app_factory(**{SETTING: "heic"})
    user = Auth(off).token("ops")
    assert upload(off.test_client(), user, "good/photo.avif").status_code == 201
    on = app_factory()
    assert upload(on.test_client(), Auth(on).token("ops"), "good/phone.heic").status_code == 201


def test_a_zip_imports_the_rest_and_reports_the_format_turned_off_as_refused(app_factory, forbid):
    app = app_factory(**{SETTING: "heic"})
    client, editor = app.test_client(), Auth(app).token("editor")
    calls = forbid("HEIF")
    archive = make_zip([("a.heic", HEIC), ("b.jpg", PHOTO), ("disguised.png", HEIC)])
    response = client.post("/api/builder/import-zip", data=archive, headers=editor,
                           content_type="application/zip")
    assert response.status_code == 200, response.get_json()
    entries = {entry["name"]: entry for entry in response.get_json()["entries"]}
    assert entries["b.jpg"]["outcome"] == "imported"
    for name in ("a.heic", "disguised.png"):
        assert entries[name]["outcome"] == "refused" and entries[name]["status"] == 415
        assert entries[name]["code"] == "format_disabled" and SETTING in entries[name]["message"]
    assert calls == []


def test_a_url_import_of_a_format_turned_off_is_the_uploads_refusal(app_factory, forbid):
    app = app_factory(**{SETTING: ["avif"], "AVENUE_URL_IMPORT_ALLOW_NETWORKS": ["127.0.0.1/32"],
                         "AVENUE_URL_IMPORT_PORTS": ""})
    client, editor = app.test_client(), Auth(app).token("editor")
    calls = forbid("AVIF")
    server = ImageServer()
    try:
        # Declared as a JPEG: the bytes decide.
        server.serve("/photo.jpg", body=AVIF, headers={"Content-Type": "image/jpeg"})
        response = client.post(f"{MEDIA}/import-url", json={"url": server.url("/photo.jpg")}, headers=editor)
    finally:
        server.close()
    refused(response, "avif", "AVIF")
    assert calls == []


def test_a_tus_upload_of_a_format_turned_off_is_refused_when_its_last_byte_arrives(app_factory, db, forbid):
    app = app_factory(**{SETTING: "heic"})
    client, user = app.test_client(), Auth(app).token("ops")
    calls = forbid("HEIF")
    before = bucket_snapshot(db)
    _, last = tus.send(client, user, HEIC, filename="phone.heic")
    refused(last, "heic", "HEIC")
    assert calls == [] and bucket_snapshot(db) == before


def test_a_stored_image_of_a_format_turned_off_serves_what_is_stored_and_no_new_rendition(
        app_factory, forbid):
    before = app_factory()
    admin = Auth(before).token("admin")
    client = before.test_client()
    assert client.post("/api/shop/products", json={"sku": "S1", "name": "S1", "price": 1},
                       headers=admin).status_code == 201
    added = client.post("/api/shop/products/S1/images", data={"images": (io.BytesIO(AVIF), "a.avif")},
                        headers=admin, content_type="multipart/form-data")
    assert added.status_code == 201, added.get_json()
    image = added.get_json()["product"]["images"][0]
    original = client.get(image["url"])
    variants = {name: client.get(url).data for name, url in image["variants"].items()}
    rendition = image["url"].rsplit(".", 1)[0]
    warm = client.get(f"{rendition}/w_320.webp")
    assert original.status_code == warm.status_code == 200

    after = app_factory(**{SETTING: "avif"})  # a restart with the format turned off
    calls = forbid("AVIF")
    served = after.test_client()
    again = served.get(image["url"])
    assert again.status_code == 200 and again.data == original.data
    assert {name: served.get(url).data for name, url in image["variants"].items()} == variants
    assert served.get(f"{rendition}/w_320.webp").data == warm.data  # stored before: served
    cold = served.get(f"{rendition}/w_480.webp")  # would need the decoder
    assert cold.status_code == 415 and cold.get_json()["error"]["code"] == "format_disabled"
    assert calls == []


@pytest.mark.parametrize("value", ["heic,bmp", "jxl", "webp;avif"])
def test_a_name_that_is_no_upload_format_stops_the_start(app_factory, value):
    with pytest.raises(RuntimeError, match=f"{SETTING} names no upload format"):
        app_factory(**{SETTING: value})


def test_the_setting_is_read_from_the_environment_in_any_case_and_by_suffix(monkeypatch):
    from avenue.config import from_environment
    from avenue.media import Limits

    monkeypatch.setenv(SETTING, " HEIF, jpg ")
    assert Limits.from_config(from_environment()).disabled == {"heic", "jpeg"}


# --- every decode, not only the upload's: the exact and near-duplicate keys, the backfills ----


def test_a_png_of_a_stored_webp_s_pixels_never_has_that_webp_decoded_while_webp_is_off(
        app_factory, db, forbid, monkeypatch):
    webp, png = webp_and_png_twin(11)
    before = app_factory()
    stored = to_library(before, webp, "a.webp")

    after = app_factory(**{SETTING: "webp"})
    calls = forbid("WEBP")
    twin = to_library(after, png, "a.png")
    assert calls == []  # neither the stored WebP nor the upload's own WebP thumb was decoded
    kept = originals(db)
    assert "pixels_full_sha256" not in kept[stored["id"]]
    assert kept[stored["id"]].get("exact_group") is None and kept[twin["id"]].get("exact_group") is None
    # Its thumb was not decoded: no placeholder, no near-duplicate hash (the backfills give them).
    assert "placeholder" not in kept[twin["id"]] and "phash" not in kept[twin["id"]]

    monkeypatch.undo()  # the decoder fixed
    again = app_factory()  # WebP on again: the backfills give what was left
    runner = again.test_cli_runner()
    assert runner.invoke(args=["placeholders"]).exit_code == 0
    assert runner.invoke(args=["near-duplicates"]).exit_code == 0
    kept = originals(db)
    assert "placeholder" in kept[twin["id"]] and "phash" in kept[twin["id"]]
    assert kept[stored["id"]]["exact_group"] == kept[twin["id"]]["exact_group"] == ObjectId(stored["id"])


def test_the_exact_bytes_of_a_stored_image_of_a_format_turned_off_are_refused_as_any_other(
        app_factory, db, forbid):
    webp, _ = webp_and_png_twin(13)
    other, _ = webp_and_png_twin(14)
    before = app_factory()
    stored = to_library(before, webp, "a.webp")

    after = app_factory(**{SETTING: "webp"})
    client, editor = after.test_client(), Auth(after).token("editor")
    calls = forbid("WEBP")
    snapshot = bucket_snapshot(db)
    # The same answer whether or not the bytes were stored before: the format is refused first.
    refused(upload(client, editor, data=webp, filename="a.webp", to=MEDIA), "webp", "WebP")
    refused(upload(client, editor, data=other, filename="b.webp", to=MEDIA), "webp", "WebP")
    assert calls == [] and bucket_snapshot(db) == snapshot
    assert client.get(stored["url"]).data  # what is stored still serves
