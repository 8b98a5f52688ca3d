"""The URLs the signer hands out (avenue/media/serve/urls.py's UrlSigner): canonical rendition
URLs, unsigned ones on the allow-list, the width ladder and a readable name's URL; pure, no
database."""

from __future__ import annotations

from bson import ObjectId

from avenue.media import UrlSigner
from avenue.media.transform import parse

ID = ObjectId("6b0000000000000000000001")


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
