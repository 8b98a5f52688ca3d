"""What a media URL names (avenue/media/serve/http.py): renditions and their format, the one
parse of a media path, and ``w_auto``: the width the client hints choose, one stored rendition
per ladder step (the signature: test_signing.py; the signer's URLs: test_urls.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from bson import ObjectId

from avenue.errors import BadRequest
from avenue.media.buckets import RENDITIONS
from avenue.media.records import MediaDoc
from avenue.media.serve.http import (
    MediaUrl,
    Moved,
    RenditionTarget,
    is_rendition,
    negotiate,
    resolve_rendition,
)
from avenue.media.transform import AllowList, parse_presets
from tests.support.renditions import HINTS_VARY as VARY
from tests.support.renditions import put, width_of

ID = ObjectId("6b0000000000000000000001")
NOW = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
ALLOW = AllowList(presets=parse_presets("hero=w_600,h_200,fit_cover"))


def doc(version: str = "", private: bool = False, png: bool = False, **kwargs) -> MediaDoc:
    fallback = "png" if png else "jpeg"
    return MediaDoc(file_id=ID, length=10, chunk_size=10, sha256="0" * 64, content_type="image/jpeg",
                    upload_date=NOW, filename="shoe.jpg", format="jpeg",
                    visibility="private" if private else "public",
                    variants={"thumb": {"webp": {}, fallback: {}}}, version=version, **kwargs)


def load(found: MediaDoc | None):
    return lambda bucket, file_id: found if file_id == ID else None


@pytest.mark.parametrize("segment,expected", [
    ("w_800", True), ("w_800.webp", True), ("hero", True), ("hero.jpg", True),
    ("thumb", False), ("card.webp", False), ("nothing", False),
])
def test_options_and_presets_are_renditions_and_fixed_names_are_not(segment, expected):
    assert is_rendition(segment, ALLOW) is expected


@pytest.mark.parametrize("accept,png,expected", [
    ("image/avif,image/webp,*/*", False, "avif"), ("image/webp,*/*", False, "webp"),
    ("*/*", False, "jpeg"), ("*/*", True, "png"), ("", True, "png"),
    # q-values (issue 62): q=0 is never, the higher q wins, a tie goes to our order.
    ("image/avif;q=0,image/webp,*/*", False, "webp"), ("image/avif;q=0, image/webp;q=0, */*", False, "jpeg"),
    ("image/avif;q=0", True, "png"), ("image/webp, image/avif;q=0.9", False, "webp"),
    ("image/avif;q=0.8, image/png, */*;q=0.5", True, "png"),
    ("image/avif;q=0.8, image/png, */*;q=0.5", False, "avif"),
    ("Image/AVIF;Q=1, image/*", False, "avif"), ("image/webp;q=0.5, image/*;q=0.5", False, "webp"),
])
def test_the_format_follows_accept_then_transparency(accept, png, expected):
    assert negotiate(accept, doc(png=png)) == expected


def test_the_extension_wins_over_accept_and_says_no_vary():
    found = resolve_rendition("b", str(ID), "w_320.jpg", ALLOW, load(doc()), "image/avif")
    assert isinstance(found, RenditionTarget)
    assert (found.spec.key(), found.format, found.vary) == ("w_320", "jpeg", False)


def test_a_preset_by_name_is_its_spec():
    found = resolve_rendition("b", str(ID), "hero.webp", ALLOW, load(doc()), "")
    assert isinstance(found, RenditionTarget) and found.spec == ALLOW.preset("hero")


def test_malformed_options_are_refused_before_any_document_is_read():
    def never(bucket, file_id):
        pytest.fail("a document was read")

    with pytest.raises(BadRequest) as refused:
        resolve_rendition("b", str(ID), "w_08", ALLOW, never, "")
    assert refused.value.code == "bad_rendition"
    with pytest.raises(BadRequest):
        resolve_rendition("b", str(ID), "hero.gif", ALLOW, never, "")


@pytest.mark.parametrize("token", [str(ID) + ".jpg", "nonsense", f"{ID}~zz", "6b0000000000000000000002"])
def test_tokens_that_name_nothing_are_404(token):
    assert resolve_rendition("b", token, "w_320", ALLOW, load(doc()), "") is None


def test_an_earlier_version_redirects_within_its_window_then_is_404():
    current = doc(version="bbbbbbbb", versions={"aaaaaaaa": NOW + dt.timedelta(days=1)})
    moved = resolve_rendition("product_images_data", f"{ID}~aaaaaaaa", "w_320.webp", ALLOW, load(current), "",
                              now=NOW)
    assert isinstance(moved, Moved) and moved.location.endswith(f"{ID}~bbbbbbbb/w_320.webp")
    assert resolve_rendition("b", f"{ID}~aaaaaaaa", "w_320", ALLOW, load(current), "",
                             now=NOW + dt.timedelta(days=2)) is None
    private = doc(version="bbbbbbbb", private=True, versions={"aaaaaaaa": NOW + dt.timedelta(days=1)})
    assert resolve_rendition("b", f"{ID}~aaaaaaaa", "w_320", ALLOW, load(private), "", now=NOW) is None


# --- the one parse of a media path (MediaUrl), shared by the front door and the route -------


@pytest.mark.parametrize(("path", "expected"), [
    ("/media/products/abc", MediaUrl("product_images_data", "abc")),
    ("/media/products/abc/w_800.avif", MediaUrl("product_images_data", "abc", variant="w_800.avif")),
    ("/media/uploads/abc/name/red-shoe.jpg", MediaUrl("uploads", "abc", named="red-shoe.jpg")),
    ("/media/uploads/abc/name", MediaUrl("uploads", "abc", variant="name")),
    ("/media/nope/abc", None),  # an unknown alias
    ("/media/products/abc/", None),  # an empty segment
    ("/media/products//abc", None),
    ("/media/products", None),
    ("/media/uploads/abc/other/red-shoe.jpg", None),  # four segments, not a name
    ("/media/uploads/abc/name/x/y", None),
    ("/api/uploads", None),
])
def test_a_media_path_is_parsed_into_what_it_names(path, expected):
    assert MediaUrl.parse(path) == expected


def test_a_media_url_names_the_route_rule_it_matches():
    assert MediaUrl("uploads", "abc").route == "/media/<alias>/<token>"
    assert MediaUrl("uploads", "abc", variant="thumb").route == "/media/<alias>/<token>/<variant>"
    assert MediaUrl("uploads", "abc", named="a.jpg").route == "/media/<alias>/<token>/name/<named>"


def test_a_request_s_media_path_is_parsed_once_whoever_reads_it(monkeypatch):
    parses = []
    real = MediaUrl.parse

    def counted(path):
        parses.append(path)
        return real(path)

    monkeypatch.setattr(MediaUrl, "parse", staticmethod(counted))
    environ = {"PATH_INFO": "/media/products/abc/w_800"}
    first, second = MediaUrl.of(environ), MediaUrl.of(environ)
    assert first is second and first == MediaUrl("product_images_data", "abc", variant="w_800")
    assert parses == ["/media/products/abc/w_800"]
    assert MediaUrl.of({"PATH_INFO": "/media/nope/x"}) is None


def test_the_hints_choose_the_smallest_ladder_width_that_covers_them(app, client, db):
    doc = put(app)  # 4000 px wide
    url = f"/media/products/{doc['_id']}/w_auto.webp"
    cases = [({"Sec-CH-Width": "700"}, 800), ({"Sec-CH-Width": "1000", "Sec-CH-DPR": "2"}, 1280),
             ({"Sec-CH-Viewport-Width": "390", "Sec-CH-DPR": "3"}, 1280), ({}, 800),
             ({"Sec-CH-Width": "not a number"}, 800)]
    for hints, served in cases:
        answer = client.get(url, headers=hints)
        assert answer.status_code == 200, answer.get_data()[:300]
        assert width_of(answer.get_data()) == served, hints
        assert answer.headers["Vary"] == VARY  # a shared cache keys the answer on the hints
        assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # One stored file per ladder step, the same the plain width's URL answers.
    files = db[f"{RENDITIONS}.files"].find({"metadata.image_id": doc["_id"]})
    kept = sorted(f["metadata"]["spec"] for f in files)
    assert kept == ["w_1280", "w_800"]
    plain = client.get(f"/media/products/{doc['_id']}/w_800.webp")
    assert plain.get_data() == client.get(url, headers={"Sec-CH-Width": "700"}).get_data()
    assert "Vary" not in plain.headers
