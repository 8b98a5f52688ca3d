"""What a rendition URL names (serve/http.py) and its signature (serve/signing.py): pure, no database."""

from __future__ import annotations

import datetime as dt

import pytest
from bson import ObjectId

from avenue.errors import BadRequest
from avenue.media import UrlSigner
from avenue.media.records import MediaDoc
from avenue.media.serve.http import (
    MediaUrl,
    Moved,
    RenditionTarget,
    is_rendition,
    negotiate,
    resolve_rendition,
)
from avenue.media.serve.signing import sign_rendition, verify_rendition
from avenue.media.transform import AllowList, parse, parse_presets

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


def test_a_rendition_signature_covers_bucket_id_version_and_options_and_every_key_verifies():
    sig = sign_rendition("old-key", "b", str(ID), "v1", "w_333")
    assert verify_rendition(["new-key", "old-key"], "b", str(ID), "v1", "w_333", sig)
    assert not verify_rendition(["new-key"], "b", str(ID), "v1", "w_333", sig)
    for other in (("c", str(ID), "v1", "w_333"), ("b", str(ObjectId()), "v1", "w_333"),
                  ("b", str(ID), "v2", "w_333"), ("b", str(ID), "v1", "w_334")):
        assert not verify_rendition(["old-key"], *other, sig)
    assert not verify_rendition(["old-key"], "b", str(ID), "v1", "w_333", None)


def test_the_signer_makes_canonical_urls():
    url = UrlSigner(base_url="https://cdn.example", key="k").rendition_url(
        "product_images_data", ID, parse("w_400,dpr_2").spec, "avif", version="0123abcd")
    assert url.startswith(f"https://cdn.example/media/products/{ID}~0123abcd/w_800.avif?sig=")


def test_a_public_url_on_the_allow_list_may_leave_its_signature_out():
    url = UrlSigner(key="k").rendition_url("product_images_data", ID, parse("w_320").spec, "webp",
                                           public_sig=False)
    assert url == f"/media/products/{ID}/w_320.webp"
    private = UrlSigner(key="k").rendition_url("product_images_data", ID, parse("w_320").spec, "webp",
                                               private=True, now=0, public_sig=False)
    assert "expires=" in private and "sig=" in private  # a private one is always signed


def test_the_ladder_s_urls_stop_at_the_image_s_own_width():
    signer = UrlSigner(key="k", ttl_seconds=3600)
    steps = signer.ladder_urls("product_images_data", ID, 700, ("webp", "jpeg"), version="v1")
    assert [(step, shown) for step, shown, _ in steps] == [(160, 160), (320, 320), (480, 480), (640, 640),
                                                           (800, 700)]
    assert steps[-1][2] == {"webp": f"/media/products/{ID}~v1/w_800.webp",  # on the allow-list: unsigned
                            "jpeg": f"/media/products/{ID}~v1/w_800.jpg"}
    private = signer.ladder_urls("product_images_data", ID, 700, ("webp",), private=True, now=1_800_000_000)
    expires = f"expires={signer.expiry(1_800_000_000)}&sig="
    assert all(expires in urls["webp"] for _, _, urls in private)


def test_a_readable_name_s_url_is_the_original_under_its_name():
    url = UrlSigner(base_url="https://cdn.example").named_url("product_images_data", ID, "v1", "red-shoe",
                                                               "jpg")
    assert url == f"https://cdn.example/media/products/{ID}~v1/name/red-shoe.jpg"


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
