"""The image object's ``renditions``: a ``srcset`` per format (AVIF, WebP, a JPEG or PNG
fallback) over the width ladder, up to the image's own width, for one ``<picture>`` (issue 28)."""

from __future__ import annotations

import io
from urllib.parse import urlsplit

from PIL import Image

from tests.helpers import form
from tests.support.client import uploaded

TYPES = {"avif": "image/avif", "webp": "image/webp", "jpg": "image/jpeg", "png": "image/png"}
PIL_FORMATS = {"avif": "AVIF", "webp": "WEBP", "jpg": "JPEG", "png": "PNG"}


def entries(srcset: str) -> list[tuple[str, int]]:
    """A ``srcset`` value as (URL, width) pairs."""
    pairs = []
    for entry in srcset.split(", "):
        url, descriptor = entry.rsplit(" ", 1)
        assert descriptor.endswith("w"), entry
        pairs.append((url, int(descriptor[:-1])))
    return pairs


def local(url: str) -> str:
    """A URL as the test client asks for it (path and query)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def assert_every_url_serves_its_format_and_width(client, image: dict) -> None:
    renditions = image["renditions"]
    assert set(renditions["srcset"]) == {"avif", "webp", renditions["fallback"]}
    for ext, srcset in renditions["srcset"].items():
        pairs = entries(srcset)
        assert [width for _, width in pairs] == renditions["widths"]
        for url, width in pairs:
            served = client.get(local(url))
            assert served.status_code == 200, (url, served.status_code, served.get_data()[:200])
            assert served.headers["Content-Type"] == TYPES[ext]
            assert "Accept" not in served.headers.get("Vary", "")  # the URL names its format
            with Image.open(io.BytesIO(served.get_data())) as im:
                assert (im.format, im.width) == (PIL_FORMATS[ext], width), url


def test_a_public_photo_lists_every_ladder_width_up_to_its_own_in_avif_webp_and_jpeg(client, editor):
    photo = uploaded(client, editor, "good/grayscale.jpg", visibility="public", expect=(201,))  # 640 x 480
    renditions = photo["renditions"]
    assert renditions["widths"] == [160, 320, 480, 640]
    assert renditions["fallback"] == "jpg"
    first = entries(renditions["srcset"]["avif"])[0][0]
    assert urlsplit(first).path == f"/media/uploads/{photo['id']}/w_160.avif"
    assert "?" not in renditions["srcset"]["webp"]  # on the allow-list: no signature needed
    assert urlsplit(renditions["src"]).path == f"/media/uploads/{photo['id']}/w_640.jpg"
    assert_every_url_serves_its_format_and_width(client, photo)
    # The fixed variants' srcset is still there, unchanged, for the clients that use it.
    assert set(photo["srcset"]) == {"webp", "jpg"} and "/thumb.webp 200w" in photo["srcset"]["webp"]


def test_the_widest_entry_is_the_image_at_its_own_width_never_upscaled(client, editor):
    photo = uploaded(client, editor, "good/progressive.jpg", visibility="public", expect=(201,))  # 1024 wide
    renditions = photo["renditions"]
    assert renditions["widths"] == [160, 320, 480, 640, 800, 960, 1024]
    widest_url, widest = entries(renditions["srcset"]["webp"])[-1]
    # The next step up, which renders the image at its own width (never upscaled).
    assert widest == 1024 and urlsplit(widest_url).path.endswith("/w_1280.webp")
    assert urlsplit(renditions["src"]).path.endswith("/w_800.jpg")
    with Image.open(io.BytesIO(client.get(local(widest_url)).get_data())) as im:
        assert im.size == (1024, 768)


def test_a_small_image_has_no_ladder_step_above_its_width(client, editor):
    tiny = uploaded(client, editor, "good/tiny_1x1.png", visibility="public", expect=(201,))
    assert tiny["renditions"]["widths"] == [1]
    for srcset in tiny["renditions"]["srcset"].values():
        assert [width for _, width in entries(srcset)] == [1]
    assert_every_url_serves_its_format_and_width(client, tiny)


def test_an_image_with_transparency_falls_back_to_png_not_jpeg(client, editor):
    alpha = uploaded(client, editor, "good/alpha.png", visibility="public", expect=(201,))  # 512 x 512
    renditions = alpha["renditions"]
    assert renditions["fallback"] == "png" and set(renditions["srcset"]) == {"avif", "webp", "png"}
    assert renditions["widths"] == [160, 320, 480, 512]
    assert urlsplit(renditions["src"]).path.endswith("/w_640.png")
    assert_every_url_serves_its_format_and_width(client, alpha)
    with Image.open(io.BytesIO(client.get(local(renditions["src"])).get_data())) as im:
        assert "A" in im.mode  # the transparency is kept


def test_a_private_images_renditions_are_signed_and_the_signed_urls_serve(client, editor):
    private = uploaded(client, editor, "good/grayscale.jpg", visibility="private", expect=(201,))
    renditions = private["renditions"]
    for srcset in renditions["srcset"].values():
        for url, _ in entries(srcset):
            assert "expires=" in url and "sig=" in url
    assert_every_url_serves_its_format_and_width(client, private)
    url = entries(renditions["srcset"]["webp"])[0][0]
    bare = local(url).split("?")[0]
    assert client.get(bare).status_code == 404  # as every private URL without its signature
    assert client.get(local(url).replace("sig=", "sig=x")).status_code == 403
    # One width's signature does not open another width.
    other = entries(renditions["srcset"]["webp"])[1][0]
    assert client.get(bare + "?" + urlsplit(other).query).status_code == 403


def test_after_a_replace_the_renditions_name_the_new_version_and_serve_its_bytes(client, editor):
    photo = uploaded(client, editor, "good/progressive.jpg", visibility="public", expect=(201,))
    answer = client.put(f"/api/uploads/{photo['id']}", data=form("good/grayscale.jpg"), headers=editor)
    assert answer.status_code == 200, answer.get_json()
    new = answer.get_json()
    assert len(new["version"]) == 8
    assert new["renditions"]["widths"] == [160, 320, 480, 640]  # the new bytes are 640 wide
    for srcset in new["renditions"]["srcset"].values():
        for url, _ in entries(srcset):
            assert f"/{photo['id']}~{new['version']}/w_" in url
    assert_every_url_serves_its_format_and_width(client, new)
    with Image.open(io.BytesIO(client.get(local(new["renditions"]["src"])).get_data())) as im:
        assert im.mode == "L"  # the new, greyscale bytes
    # The earlier version's URL redirects to the same rendition of the new one.
    old = entries(photo["renditions"]["srcset"]["avif"])[1][0]
    moved = client.get(local(old))
    assert moved.status_code == 308
    assert moved.headers["Location"] == f"/media/uploads/{photo['id']}~{new['version']}/w_320.avif"


def test_a_product_photo_and_library_media_carry_renditions_too(client, auth, editor):
    media = uploaded(client, editor, "good/grayscale.jpg", to="/api/builder/media")
    assert urlsplit(media["renditions"]["src"]).path == f"/media/builder/{media['id']}/w_640.jpg"
    admin = auth.token("admin")
    created = client.post("/api/shop/products", headers=admin,
                          json={"sku": "SRC-1", "name": "Lamp", "price": 10})
    assert created.status_code == 201, created.get_json()
    answer = client.post("/api/shop/products/SRC-1/images", data=form("good/grayscale.jpg", "images"),
                         headers=admin, content_type="multipart/form-data")
    assert answer.status_code == 201, answer.get_json()
    photo = answer.get_json()["product"]["images"][-1]
    assert photo["renditions"]["widths"] == [160, 320, 480, 640]
    assert "/media/products/" in photo["renditions"]["srcset"]["avif"]
